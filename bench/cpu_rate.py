"""CPU seconds per composite of the embedded default, in this process (issue 14: keep generation fast).

    taskset -c 0 .venv/bin/python bench/cpu_rate.py [N] [REALISM] [PLACEMENT]

Makes N (default 200) train composites of the embedded default (640x480, its stages as configured
by default) with synth.engine.Engine in one process, one BLAS thread, after 10 val composites that
warm the imports and caches, and serialises each record (JPEG encoding and the tf.Example included; nothing is
written). Prints one JSON line: cpu_s_per_composite (process CPU time, which other processes on a
busy machine inflate less than the wall clock), wall_s_per_composite, the objects made, and the
first 16 hex digits of a SHA-256 over the serialised records: two runs of one commit print the same
digest (generation is deterministic), and a change that keeps every byte keeps it too.
Surface analysis and the background audit run once per backdrop and background and are included.

REALISM, optional, is text-format `Realism` merged into the default's `realism { }`, to measure
another set of stages on the same inputs, e.g. the defaults before 2026-12-05 (camera and light on):
    taskset -c 0 .venv/bin/python bench/cpu_rate.py 200 'camera { enabled: true } light { enabled: true }'
PLACEMENT, optional, is text-format `Placement` merged into the default's `placement { }`:
    taskset -c 0 .venv/bin/python bench/cpu_rate.py 200 '' 'closeup_candidates: 8'
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from synth import config as configlib, engine, job  # noqa: E402
from synth.inputs import load_inputs  # noqa: E402


def measure(n: int = 200, realism: str = "", placement: str = "") -> dict:
    cfg = configlib.apply_overrides(configlib.load_config(None), num_images=n)
    proto = cfg.proto
    if realism:
        proto.realism.MergeFrom(configlib.parse_message(type(proto.realism), realism, "REALISM (argument 2)"))
    if placement:
        proto.placement.MergeFrom(configlib.parse_message(type(proto.placement), placement, "PLACEMENT (argument 3)"))
    if realism or placement:
        configlib.validate(proto, "<embedded default> with REALISM / PLACEMENT")
    inputs = load_inputs(cfg)
    with job.single_threaded_blas():
        eng = engine.Engine(inputs, cfg.proto)
        for i in range(10):
            engine.serialize(eng.make("val", i))
        digest, objects = hashlib.sha256(), 0
        c0, w0 = time.process_time(), time.perf_counter()
        for i in range(n):
            comp = eng.make("train", i)
            digest.update(engine.serialize(comp))
            objects += len(comp.class_ids)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return {"composites": n, "realism": realism, "placement": placement, "objects": objects, "cpu_s_per_composite": round(cpu / n, 4),
            "wall_s_per_composite": round(wall / n, 4), "records_sha256": digest.hexdigest()[:16]}


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 200, sys.argv[2] if len(sys.argv) > 2 else "",
                             sys.argv[3] if len(sys.argv) > 3 else "")))
