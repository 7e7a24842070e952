"""Compositing logos into backgrounds: sample parameters once, then render them.

`sample_image_params` draws every random choice for one composite from an explicit
`np.random.Generator` into an `ImageParams` record; `render` applies a record
deterministically. The record is JSON-serialisable and goes into the dataset's
params.jsonl, so any single composite can be regenerated from it.

Boxes are the tight boxes of the logo pixels still visible after every later paste
(see synth.boxes.VISIBLE_ALPHA), so a logo partly covered by another gets the box of
its visible part.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from synth import boxes as boxlib


@dataclass(frozen=True)
class ObjectParams:
    logo_index: int  # index into the config's logos
    width: int  # pasted logo size in pixels
    height: int
    x: int  # top-left corner on the output canvas
    y: int


@dataclass(frozen=True)
class ImageParams:
    image_seed: int
    background_index: int
    # Background fit: resize by `bg_scale`, then crop at (crop_x, crop_y).
    bg_scale: float
    crop_x: int
    crop_y: int
    objects: tuple[ObjectParams, ...] = field(default_factory=tuple)
    # Objects the sampler gave up on after placement.max_attempts tries.
    dropped_objects: int = 0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Rendered:
    image: np.ndarray  # RGB uint8, canvas size
    boxes: np.ndarray  # [N, 4] float32 normalised ymin, xmin, ymax, xmax
    logo_indices: np.ndarray  # [N] int, which logo each box shows
    visible_fraction: np.ndarray  # [N] share of each pasted logo's pixels still visible


def image_seed(base_seed: int, split_id: int, index: int) -> int:
    """The seed of one composite, derived from (base seed, split, index)."""
    ss = np.random.SeedSequence(entropy=int(base_seed), spawn_key=(int(split_id), int(index)))
    return int(ss.generate_state(1, dtype=np.uint64)[0])


def _sample_background_fit(rng, bg_shape, out_h, out_w):
    bh, bw = bg_shape
    scale = max(out_h / bh, out_w / bw)  # cover the canvas
    scale *= float(rng.uniform(1.0, 1.3))  # and a little random zoom
    rh, rw = max(out_h, math.ceil(bh * scale)), max(out_w, math.ceil(bw * scale))
    return scale, int(rng.integers(0, rw - out_w + 1)), int(rng.integers(0, rh - out_h + 1))


def sample_image_params(rng: np.random.Generator, seed: int, background_shapes, logo_shapes,
                        out_size: tuple[int, int], placement) -> ImageParams:
    """Draws one composite's parameters. `background_shapes`/`logo_shapes` are (h, w) lists;
    `placement` is the config's Placement message."""
    out_h, out_w = out_size
    bg_index = int(rng.integers(len(background_shapes)))
    bg_scale, cx, cy = _sample_background_fit(rng, background_shapes[bg_index], out_h, out_w)
    n = int(rng.integers(placement.min_objects, placement.max_objects + 1))
    short = min(out_h, out_w)
    lo, hi = math.log(placement.min_scale), math.log(placement.max_scale)
    objects: list[ObjectParams] = []
    placed_boxes: list[np.ndarray] = []
    dropped = 0
    for _ in range(n):
        for _attempt in range(placement.max_attempts):
            li = int(rng.integers(len(logo_shapes)))
            lh, lw = logo_shapes[li]
            w = short * math.exp(rng.uniform(lo, hi))
            h = w * lh / lw
            if h > out_h or w > out_w:  # tall logos: fit the height instead
                f = min(out_h / h, out_w / w)
                w, h = w * f, h * f
            w, h = max(1, int(round(w))), max(1, int(round(h)))
            x = int(rng.integers(0, out_w - w + 1))
            y = int(rng.integers(0, out_h - h + 1))
            box = boxlib.from_pixels(y, x, y + h, x + w, out_h, out_w)
            if all(boxlib.iou(box, b) <= placement.max_overlap_iou for b in placed_boxes):
                objects.append(ObjectParams(li, w, h, x, y))
                placed_boxes.append(box)
                break
        else:
            dropped += 1
    return ImageParams(seed, bg_index, float(bg_scale), cx, cy, tuple(objects), dropped)


def fit_background(bg: np.ndarray, p: ImageParams, out_size: tuple[int, int]) -> np.ndarray:
    out_h, out_w = out_size
    bh, bw = bg.shape[:2]
    rh, rw = max(out_h, math.ceil(bh * p.bg_scale)), max(out_w, math.ceil(bw * p.bg_scale))
    interp = cv2.INTER_AREA if p.bg_scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(bg, (rw, rh), interpolation=interp)
    return resized[p.crop_y:p.crop_y + out_h, p.crop_x:p.crop_x + out_w]


def render(p: ImageParams, background: np.ndarray, logos: list[np.ndarray],
           out_size: tuple[int, int]) -> Rendered:
    """Applies `p` deterministically: alpha-blends each logo, then computes exact boxes."""
    out_h, out_w = out_size
    canvas = fit_background(background, p, out_size).astype(np.float32)
    alphas = []  # full-canvas opacity of each pasted logo
    for o in p.objects:
        logo = logos[o.logo_index]
        interp = cv2.INTER_AREA if o.width < logo.shape[1] else cv2.INTER_LINEAR
        patch = cv2.resize(logo, (o.width, o.height), interpolation=interp).astype(np.float32)
        a = patch[..., 3:4] / 255.0
        region = canvas[o.y:o.y + o.height, o.x:o.x + o.width]
        region[...] = region * (1.0 - a) + patch[..., :3] * a
        full = np.zeros((out_h, out_w), np.float32)
        full[o.y:o.y + o.height, o.x:o.x + o.width] = a[..., 0]
        alphas.append(full)
    image = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    out_boxes, out_logos, fractions = [], [], []
    for i, o in enumerate(p.objects):
        visible = alphas[i].copy()
        for later in alphas[i + 1:]:
            visible *= 1.0 - later
        mask = visible >= boxlib.VISIBLE_ALPHA
        box = boxlib.tight_box(mask)
        if box is None:
            continue  # completely covered by later logos: no label
        pasted = np.count_nonzero(alphas[i] >= boxlib.VISIBLE_ALPHA)
        out_boxes.append(box)
        out_logos.append(o.logo_index)
        fractions.append(np.count_nonzero(mask) / max(1, pasted))
    return Rendered(image, np.array(out_boxes, np.float32).reshape(-1, 4),
                    np.array(out_logos, np.int64), np.array(fractions, np.float32))


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    return buf.tobytes()
