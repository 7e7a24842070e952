"""Is the gate's reference where the compositor put the logo? For each logo the engine pasted and
the gate accepted, the gate's `match` at the recorded homography and with it moved by (dx, dy) px
on the canvas (a grid of --step px over +-2 px): where the match peaks, overall and per stage that
moves pixels (shadow, motion blur, curvature).

    python bench/gate_shift.py --logos_dir=../shared/data/flickrlogos27/logos \
        --backgrounds_dir=../shared/data/flickrlogos27/images --brands=nike,puma,adidas --n=60
    python bench/gate_shift.py --n=60     # the embedded default config

Each logo's peak shift is found on the grid, then refined to sub-pixel by a parabola through the
best grid point and its neighbours along x and along y. Prints one line per logo where the peak is
over 0.75 px from zero, the histogram of peak shifts, and the mean match on the grid. Images made
from FlickrLogos-27 stay local: nothing is written.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from synth import composite, dataset, gate, scene  # noqa: E402
from bench.gate_sheet import load_engine  # noqa: E402

FLAGS = flags.FLAGS
# --logos_dir, --backgrounds_dir, --brands, --extra and --seed (here: of the composites) are
# bench.gate_sheet's flags, with the config it writes.
flags.DEFINE_integer("n", 40, "composites to render")
flags.DEFINE_float("step", 0.5, "grid step of the shifts, px")


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as tmp:
        _, inputs, eng = load_engine(tmp)
    s = eng.settings
    shifts = np.arange(-2.0, 2.0 + 1e-9, FLAGS.step)
    total, peaks, by_stage = np.zeros((len(shifts), len(shifts))), [], {}
    for i in range(FLAGS.n):
        seed = composite.image_seed(FLAGS.seed, dataset.SPLIT_IDS["train"], i)
        bseed = composite.image_seed(FLAGS.seed, dataset.SPLIT_IDS["train"] + len(dataset.SPLITS), i)
        params, r = scene.compose(np.random.default_rng(seed), seed, inputs, eng.backdrops, eng.bank, s,
                                  np.random.default_rng(bseed))
        for k, o in enumerate(params.objects):
            if not r.scores[k].passes(s.gate_cfg):
                continue
            _, prepared, _ = scene.pasted_logo(o, eng.bank)
            grid = gate.shifted_matches(prepared, r.homographies[k], r.image, r.visible[k], r.pasted[k], shifts)
            total += grid
            dx, dy = gate.grid_peak(grid, shifts)
            tags = [t for t, on in (("shadow", o.light is not None and o.light.shadow),
                                    ("motion", o.camera is not None and o.camera.motion_blur),
                                    ("curved", o.curvature is not None)) if on] or ["plain"]
            peaks.append((dx, dy))
            for t in tags:
                by_stage.setdefault(t, []).append(np.hypot(dx, dy))
            if np.hypot(dx, dy) > 0.75:
                c = len(shifts) // 2
                print(f"composite {i} object {k} ({inputs.class_names[inputs.logo_class_ids[o.logo_index] - 1]}, "
                      f"{o.colourway}, {'+'.join(tags)}): match {grid[c, c]:.3f} at 0, {grid.max():.3f} at "
                      f"({dx:+.2f}, {dy:+.2f}) px")
    if not peaks:
        print("no accepted logo")
        return
    p = np.array(peaks)
    print(f"\n{len(p)} accepted logos; peak shift dx mean {p[:, 0].mean():+.3f} median {np.median(p[:, 0]):+.3f}, "
          f"dy mean {p[:, 1].mean():+.3f} median {np.median(p[:, 1]):+.3f} px; |shift| median "
          f"{np.median(np.hypot(p[:, 0], p[:, 1])):.3f}, over 0.75 px: {int((np.hypot(p[:, 0], p[:, 1]) > 0.75).sum())}")
    hist = Counter((round(float(dx) / FLAGS.step) * FLAGS.step, round(float(dy) / FLAGS.step) * FLAGS.step)
                   for dx, dy in p)
    print("peak (dx, dy) on the grid: " + ", ".join(f"({a:+g},{b:+g}) {n}" for (a, b), n in hist.most_common(10)))
    for t, v in sorted(by_stage.items()):
        print(f"  {t}: {len(v)} logos, |shift| median {np.median(v):.3f} px, max {np.max(v):.3f}")
    mean = total / len(p)
    print("mean match (rows dy, columns dx = " + " ".join(f"{v:+g}" for v in shifts) + "):")
    for iy, dy in enumerate(shifts):
        print(f"  dy {dy:+.1f}: " + " ".join(f"{v:.3f}" for v in mean[iy]))


if __name__ == "__main__":
    app.run(main)
