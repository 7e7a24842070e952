"""Gate calibration by eye: contact sheets of the gate's decisions near its thresholds, and the
share of composites that placement or gate failures leave empty.

    python bench/gate_sheet.py --logos_dir=L --backgrounds_dir=B --brands=apple,bmw --out=bench/out/gate
    python bench/gate_sheet.py --stats=200 [--logos_dir=L --backgrounds_dir=B --brands=...]

Sheets: every object draw the engine makes (the same sampling and rendering as synth.scene.compose:
a slot, then a placement, light, camera, blend and occluder, rendered onto a backdrop) is scored by
synth.gate; the sheet shows the draws whose scores lie nearest a threshold (the smallest relative
margin over match, detail_px, contrast and legibility), passes framed green and fails red, each
tile the object's box grown by half its size, scaled to TILE px, with its scores printed:
m match, d detail_px, c contrast, e edge_contrast, L legibility, v visible_fraction. `sheet_near.png` holds the
nearest ones, `sheet_random.png` a random sample. Without --logos_dir the embedded default is used.

--stats=N: N composites through synth.engine (the same runner as make_tfrecords) and the share of
them that hold no logo although not drawn as negatives, with the gate's rejection counts.

The gate is switched on in the config this tool builds (it is off by default since 2026-12-05).

Images made from FlickrLogos-27 (or any data set under its own terms) stay local: bench/out/ is
not committed.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter

import cv2
import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from synth import config as configlib, engine, gate, placement, scene  # noqa: E402
from synth.backdrops import NUM_FIT_VARIANTS  # noqa: E402
from synth.inputs import load_inputs  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("logos_dir", None, "folder of <brand>.png artwork; unset: the embedded default config")
flags.DEFINE_string("backgrounds_dir", None, "folder of background photos (with --logos_dir)")
flags.DEFINE_list("brands", [], "brands (file names without .png) to use; empty: every PNG in --logos_dir")
flags.DEFINE_string("extra", "", "extra config text appended to the generated config, e.g. realism { gate { ... } }")
flags.DEFINE_string("out", "bench/out/gate", "output folder of the sheets")
flags.DEFINE_integer("draws", 600, "object draws to score for the sheets")
flags.DEFINE_integer("tiles", 48, "tiles per sheet")
flags.DEFINE_integer("stats", 0, "if > 0: measure empty composites over this many composites instead")
flags.DEFINE_integer("seed", 0, "seed of the draws")

TILE = 160


def config_text(logos_dir, backgrounds_dir, brands, extra="") -> str:
    logos = "\n".join(f'logo {{ class_name: "{b}" path: "{os.path.join(logos_dir, b + ".png")}" '
                      f'border_matte {{ tolerance: 40 }} }}' for b in brands)
    return (f'{logos}\nbackground {{ directory: "{backgrounds_dir}" }}\nimage_size {{ height: 480 width: 640 }}\n'
            f'num_images: 10\nseed: 1\nplacement {{ min_objects: 1 max_objects: 2 }}\n{extra}\n')


def load_engine(tmp: str):
    if FLAGS.logos_dir is None:
        cfg = configlib.load_config(None)
    else:
        brands = FLAGS.brands or sorted(f[:-4] for f in os.listdir(FLAGS.logos_dir) if f.endswith(".png"))
        path = os.path.join(tmp, "gate_sheet.config")
        with open(path, "w") as f:
            f.write(config_text(FLAGS.logos_dir, FLAGS.backgrounds_dir, brands, FLAGS.extra))
        cfg = configlib.load_config(path)
    cfg.proto.realism.gate.enabled = True  # the gate is what this tool calibrates (it is off by default)
    inputs = load_inputs(cfg)
    return cfg, inputs, engine.Engine(inputs, cfg.proto)


def draws(eng: engine.Engine, inputs, n: int, seed: int):
    """(tile RGB, GateScores, colourway) of n object draws, each on a fresh backdrop."""
    s, rng = eng.settings, np.random.default_rng(seed)
    out = []
    while len(out) < n:
        bi, variant = int(rng.integers(len(inputs.background_paths))), int(rng.integers(NUM_FIT_VARIANTS))
        _, backdrop, surf = eng.backdrops.get(bi, variant)
        slot = scene.sample_slot(rng, s, inputs, eng.bank)
        o = scene._sample_object(rng, s, inputs, surf, [], slot)
        if isinstance(o, str):
            continue
        trial, la = scene._render_object(backdrop, backdrop, o, eng.bank, s)
        v = la.pasted * (1.0 - la.occluder) if la.occluder is not None else la.pasted
        sc = gate.score(la.prepared, la.H, trial, v, la.pasted)
        y0, x0, y1, x1 = placement.quad_box(np.asarray(o.quad), s.out_hw)
        oh, ow = s.out_hw
        cy, cx, hh, hw = (y0 + y1) / 2 * oh, (x0 + x1) / 2 * ow, (y1 - y0) * oh, (x1 - x0) * ow
        half = max(hh, hw, 24) * 0.75
        ya, yb = int(max(0, cy - half)), int(min(oh, cy + half))
        xa, xb = int(max(0, cx - half)), int(min(ow, cx + half))
        crop = trial[ya:yb, xa:xb]
        f = TILE / max(crop.shape[:2])
        crop = cv2.resize(crop, (max(1, int(crop.shape[1] * f)), max(1, int(crop.shape[0] * f))),
                          interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_NEAREST)
        tile = np.zeros((TILE, TILE, 3), np.uint8)
        tile[:crop.shape[0], :crop.shape[1]] = crop
        out.append((tile, sc, o.colourway))
    return out


def margin(sc: gate.GateScores, cfg: gate.GateConfig) -> float:
    return min(abs(getattr(sc, k) / max(getattr(cfg, "min_" + k), 1e-6) - 1.0)
               for k in ("match", "detail_px", "contrast", "legibility"))


def sheet(items, cfg: gate.GateConfig, cols: int = 8) -> np.ndarray:
    rows = -(-len(items) // cols)
    img = np.full((rows * (TILE + 34), cols * (TILE + 4), 3), 255, np.uint8)
    for k, (tile, sc, cw) in enumerate(items):
        r, c = divmod(k, cols)
        y, x = r * (TILE + 34), c * (TILE + 4)
        ok = sc.passes(cfg)
        framed = cv2.copyMakeBorder(tile, 2, 2, 2, 2, cv2.BORDER_CONSTANT,
                                    value=(0, 170, 0) if ok else (220, 0, 0))
        img[y:y + TILE + 4, x:x + TILE + 4] = framed[:TILE + 4, :TILE + 4]
        why = "" if ok else " " + ",".join(r.split(":")[0][4:][:5] for r in sc.reasons(cfg))
        cv2.putText(img, f"m{sc.match:.2f} d{sc.detail_px:.1f} c{sc.contrast:.2f}", (x + 2, y + TILE + 15),
                    cv2.FONT_HERSHEY_PLAIN, 0.85, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, f"e{sc.edge_contrast:.2f} L{sc.legibility:.2f} v{sc.visible_fraction:.1f}{why}",
                    (x + 2, y + TILE + 29), cv2.FONT_HERSHEY_PLAIN, 0.85, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def stats(eng: engine.Engine, n: int) -> None:
    empty, negatives, rejected, objects = 0, 0, Counter(), 0
    for i in range(n):
        comp = eng.make("train", i)
        p = comp.params["params"]
        negatives += bool(p.get("negative"))
        empty += (not p.get("negative")) and len(comp.boxes) == 0
        objects += len(comp.boxes)
        rejected.update(comp.rejected)
    print(f"composites {n}  objects {objects}  negatives {negatives}  empty by accident {empty} "
          f"({100.0 * empty / n:.1f} %)")
    for k, v in rejected.most_common():
        print(f"  rejected {k}: {v}")


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as tmp:
        cfg, inputs, eng = load_engine(tmp)
        if FLAGS.stats > 0:
            stats(eng, FLAGS.stats)
            return
        items = draws(eng, inputs, FLAGS.draws, FLAGS.seed)
    gcfg = eng.settings.gate_cfg
    passes = sum(sc.passes(gcfg) for _, sc, _ in items)
    print(f"{len(items)} draws, {passes} pass ({100.0 * passes / len(items):.0f} %)")
    for k in ("match", "detail_px", "contrast", "legibility", "visible_fraction", "size_px"):
        failing = sum(any(r.startswith("min_" + k) for r in sc.reasons(gcfg)) for _, sc, _ in items)
        print(f"  failing min_{k}: {failing}")
    os.makedirs(FLAGS.out, exist_ok=True)
    near = sorted(items, key=lambda it: margin(it[1], gcfg))
    ok = [it for it in near if it[1].passes(gcfg)][:FLAGS.tiles // 2]
    bad = [it for it in near if not it[1].passes(gcfg)][:FLAGS.tiles - len(ok)]
    rng = np.random.default_rng(FLAGS.seed + 1)
    pick = [items[i] for i in rng.choice(len(items), min(FLAGS.tiles, len(items)), replace=False)]
    for name, chosen in (("sheet_near.png", ok + bad), ("sheet_random.png", pick)):
        path = os.path.join(FLAGS.out, name)
        cv2.imwrite(path, cv2.cvtColor(sheet(chosen, gcfg), cv2.COLOR_RGB2BGR))
        print("wrote", path)


if __name__ == "__main__":
    app.run(main)
