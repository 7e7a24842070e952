"""Stage benchmark (bench/out/stages.json): where a composite's time goes.

Times each stage's entry point while the embedded default is generated in this process
(640x480, every stage on, records encoded but not written): each function is wrapped with a
wall-clock timer for the run and restored afterwards. Per stage: calls, ms per call, calls and
ms per composite. Surface analysis and the background audit run once per backdrop and once per
background, so their share falls as runs grow. The wrappers cost about a microsecond a call;
cProfile, which times every call below them too, inflates these figures by a third or more.
BENCH_STAGES_IMAGES sets the number of composites (default 300).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from synth import (audit, blending, camera, composite, config as configlib, cutout, engine, gate,  # noqa: E402
                   job, geometry, occlusion, photometric, placement, surface)
from synth.inputs import load_inputs  # noqa: E402

# (owner, attribute, stage): the entry points synth.scene and synth.engine call through their modules
STAGES = (
    (surface, "analyse", "surface analysis"),
    (audit.LogoMatcher, "find", "background audit"),
    (placement, "sample_placement", "placement"),
    (geometry, "warp_rgba", "geometry warp"),
    (photometric, "relight", "light"),
    (photometric, "shadow", "light: shadow"),
    (camera, "match_optics", "camera: optics"),
    (camera, "match_sensor", "camera: sensor"),
    (blending, "blend", "blending"),
    (gate, "score", "gate"),
    (occlusion, "render_occluder", "occluder"),
    (occlusion, "render_distractors", "distractors"),
    (cutout, "cut_region", "occlusion: photo cuts"),
    (composite, "encode_jpeg", "jpeg encode"),
    (engine, "serialize", "tf.Example"),
)


@contextlib.contextmanager
def timed(stages=STAGES):
    """Wraps each stage with a timer while the block runs; yields {stage: [calls, seconds]}."""
    seconds, calls = defaultdict(float), Counter()
    saved = []

    def wrap(fn, label):
        def timed_fn(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[label] += time.perf_counter() - t
                calls[label] += 1
        return timed_fn

    for owner, name, label in stages:
        fn = owner.__dict__[name]
        saved.append((owner, name, fn))
        setattr(owner, name, wrap(fn, label))
    out: dict = {}
    try:
        yield out
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)
        out.update({k: [calls[k], seconds[k]] for k in calls})


def measure(n: int | None = None) -> dict:
    n = n or int(os.environ.get("BENCH_STAGES_IMAGES", "300"))
    cfg = configlib.apply_overrides(configlib.load_config(None), num_images=n)
    inputs = load_inputs(cfg)
    with job.single_threaded_blas(), timed() as stages:
        eng = engine.Engine(inputs, cfg.proto)
        t = time.perf_counter()
        objects = 0
        for i in range(n):
            comp = eng.make("train", i)
            engine.serialize(comp)
            objects += len(comp.class_ids)
        total = time.perf_counter() - t
    res = {"composites": n, "objects": objects, "ms_per_composite": round(1000 * total / n, 2)}
    for label, (calls, s) in sorted(stages.items(), key=lambda kv: -kv[1][1]):
        res[label] = {"calls": calls, "ms_per_call": round(1000 * s / calls, 2),
                      "calls_per_composite": round(calls / n, 2), "ms_per_composite": round(1000 * s / n, 2)}
    return res


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=2))
