"""Occluders over logos and unlabelled distractors, made of real photo content.

Both are regions cut out of other photos of the background pool along those photos' own
edges (synth.cutout: superpixels, a region grown from a seed, holes filled, edge feathered),
pasted at their own scale, optionally with a soft contact shadow. No flat colours, geometric
shapes or random strings: a detector cannot tell them from the photo by their look.

Occluders. With probability ``p_occluder`` an object gets one occluder. A target share
``fraction`` of the object's box is drawn from ``occluded_fraction``; a cut is drawn that grows
toward 1.6 to 3 times that many pixels (in a window spanning 0.7 to 1.5 times the box along the
side it enters by), and it enters the box from one side (top, bottom, left or right): it slides
in from outside, at a drawn position along that side, to the first place where it covers at
least the target share of the box. The share it covers there is recorded as ``fraction`` and
lies in ``occluded_fraction``. A cut whose outline is mostly not its photo's own
(``MIN_OWN_OUTLINE``) or that cannot reach the share (its object is too small) is replaced: by
another seed in the same window, then by another window (``SEEDS_PER_WINDOW`` x
``MAX_CUT_TRIES``); after that the object stays unoccluded.

The occluder changes only the canvas. The caller multiplies each covered logo's opacity by
``1 - occ_alpha``; a box is then the tight box of the pixels whose visible opacity is still
>= synth.boxes.VISIBLE_ALPHA, and the gate's visible fraction counts those pixels.

Distractors. ``distractor_count`` (inclusive) cuts per image, each about ``distractor_size`` x
the canvas's shorter side (their objects may be smaller: a cut is kept when its outline is its
own, it holds at least 100 px and a tenth of what it grew toward, and fills a quarter of its
bounding box; up to ``MAX_DISTRACTOR_CUTS`` are drawn), half of them "busy" (text, print and
patterns: the busiest of a few windows, seeds drawn by edge density). Each is placed where it
covers at most ``max_distractor_overlap`` of any logo box given to `sample_distractors` (a few
positions are tried; one that finds none is left out). They carry no label; `render_distractors` returns their combined opacity, which a
caller that draws them over logos multiplies into the logos' visible opacity like an occluder's.

Light. A cut keeps its texture but takes on the scene's light: its mean colour moves part of the
way toward the mean colour of the background where it is pasted (a per-channel ``gain``).

Shadows. With probability ``p_shadow`` a patch casts a contact shadow: its mask, blurred and
shifted down-right or down-left by a few per cent of its size, darkens what is under it by
``shadow_opacity`` before the patch is drawn.

Every drawn choice is in the params records (which photo and fit, which window, seed,
segmentation scale, region size and feather; where it is pasted; the gain; the shadow), and rendering
them again needs no randomness. Drawing is done on each patch's region, never the whole canvas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from synth import cutout
from synth.errors import ConfigError, InputImageError, check_range_pair

SIDES = ("top", "bottom", "left", "right")
MAX_CUT_TRIES = 4  # windows drawn for one occluder before the object stays unoccluded
SEEDS_PER_WINDOW = 3  # seeds tried in one window (its segmentation is computed once)
MAX_DISTRACTOR_CUTS = 12  # cuts (4 windows x 3 seeds) drawn for one distractor before it is left out
MIN_OWN_OUTLINE = 0.65  # share of a cut's outline that must follow its photo's own edges
MAX_PLACE_TRIES = 8  # positions tried for one distractor


def _range(value, what: str, lo: float, hi: float, integer: bool = False) -> None:
    check_range_pair(what, value, lo, hi, integer)


@dataclass(frozen=True)
class OcclusionConfig:
    p_occluder: float = 0.3  # probability that an object gets an occluder
    occluded_fraction: tuple = (0.1, 0.4)  # share of the object's box the occluder covers
    feather_px: tuple = (0.6, 2.0)  # Gaussian sigma of a patch's edge
    p_shadow: float = 0.5  # probability that a patch casts a contact shadow
    distractor_count: tuple = (0, 3)  # inclusive
    distractor_size: tuple = (0.08, 0.3)  # share of the canvas's shorter side
    max_distractor_overlap: float = 0.05  # share of a logo box one distractor may cover
    p_busy_occluder: float = 0.3  # occluders cut from text/print/patterns
    p_busy_distractor: float = 0.5
    num_variants: int = 6  # fits of a photo to the canvas (synth.backdrops.NUM_FIT_VARIANTS)

    def __post_init__(self):
        for name in ("p_occluder", "p_shadow", "max_distractor_overlap", "p_busy_occluder", "p_busy_distractor"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0):
                raise ConfigError(f"occlusion {name} {v!r} must be a probability in [0, 1]")
        _range(self.occluded_fraction, "occlusion occluded_fraction", 0.0, 0.95)
        if self.occluded_fraction[0] <= 0:
            raise ConfigError(f"occlusion occluded_fraction {tuple(self.occluded_fraction)} must start above 0")
        _range(self.feather_px, "occlusion feather_px", 0.0, 20.0)
        _range(self.distractor_count, "occlusion distractor_count", 0, 100, integer=True)
        _range(self.distractor_size, "occlusion distractor_size", 0.01, 1.0)
        if not (isinstance(self.num_variants, int) and self.num_variants >= 1):
            raise ConfigError(f"occlusion num_variants {self.num_variants!r} must be an int >= 1")


@dataclass(frozen=True)
class PatchParams:
    cut: cutout.CutParams  # what is cut out, from which photo
    top: int  # canvas pixel of the cut window's top-left corner
    left: int
    shadow_opacity: float  # 0: no shadow
    shadow_dy: float  # shadow offset, canvas pixels
    shadow_dx: float
    shadow_blur: float  # Gaussian sigma of the shadow, pixels
    gain: tuple = (1.0, 1.0, 1.0)  # per-channel factor on the cut's pixels (toward the scene's light)


@dataclass(frozen=True)
class OccluderParams:
    side: str  # where it enters the object's box
    fraction: float  # share of the object's box it covers (pixels with opacity >= 0.5)
    patch: PatchParams


@dataclass(frozen=True)
class DistractorParams:
    patch: PatchParams


def _sample_shadow(rng: np.random.Generator, cfg: OcclusionConfig, window_hw) -> tuple:
    size = math.sqrt(float(window_hw[0]) * float(window_hw[1]))
    if rng.random() >= cfg.p_shadow:
        return 0.0, 0.0, 0.0, 0.0
    opacity = float(rng.uniform(0.2, 0.5))
    dist = size * float(rng.uniform(0.015, 0.05))
    angle = float(rng.uniform(math.radians(35), math.radians(145)))  # light from above: the shadow falls down
    blur = max(1.0, size * float(rng.uniform(0.02, 0.05)))
    return (round(opacity, 4), round(dist * math.sin(angle), 3), round(dist * math.cos(angle), 3), round(blur, 3))


def _gain(rng, alpha: np.ndarray, src: np.ndarray, backdrop, top: int, left: int) -> tuple:
    """Per-channel factor that moves the cut's mean colour part of the way (a drawn exponent of
    0.3 to 0.7) toward the mean colour of the backdrop where it is pasted: a cut keeps its own
    texture but takes on the scene's light, as an object in front would. Clipped to [0.5, 1.6]."""
    k = float(rng.uniform(0.3, 0.7))
    if backdrop is None:
        return (1.0, 1.0, 1.0)
    h, w = backdrop.shape[:2]
    wh, ww = alpha.shape
    y0, x0, y1, x1 = max(0, top), max(0, left), min(h, top + wh), min(w, left + ww)
    on = alpha >= 0.5
    if y1 <= y0 or x1 <= x0 or not on.any():
        return (1.0, 1.0, 1.0)
    mp = src[on].reshape(-1, 3).astype(np.float64).mean(axis=0)
    mb = backdrop[y0:y1, x0:x1].reshape(-1, 3).astype(np.float64).mean(axis=0)
    g = np.clip(((mb + 1.0) / (mp + 1.0)) ** k, 0.5, 1.6)
    return tuple(round(float(v), 4) for v in g)


def _patch(rng, cut, alpha, cutter, backdrop, top, left, shadow) -> PatchParams:
    gain = _gain(rng, alpha, cutter.pixels(cut), backdrop, top, left)
    return PatchParams(cut, int(top), int(left), *shadow, gain=gain)


def _enter(rng, alpha: np.ndarray, box: tuple, side: str, target: float, hi: float):
    """(top, left, covered share) of the first place, sliding in from `side`, where the mask
    covers at least `target` of the whole-pixel box, or None."""
    ext = cutout.mask_rows_cols(alpha)
    if ext is None:
        return None
    rmin, rmax, cmin, cmax = ext
    y0, x0, y1, x1 = box
    box_area = float((y1 - y0) * (x1 - x0))
    ii = cutout.integral(alpha)
    u = float(rng.uniform(0.25, 0.75))
    if side in ("left", "right"):
        oy = int(round(y0 + u * (y1 - y0) - (rmin + rmax + 1) / 2.0))
        ox = np.arange(x0 - cmax - 1, x1 - cmin) if side == "left" else np.arange(x1 - cmin, x0 - cmax - 1, -1)
        share = cutout.covered(ii, oy, ox, box) / box_area
        oy = np.full(ox.shape, oy)
    else:
        ox = int(round(x0 + u * (x1 - x0) - (cmin + cmax + 1) / 2.0))
        oy = np.arange(y0 - rmax - 1, y1 - rmin) if side == "top" else np.arange(y1 - rmin, y0 - rmax - 1, -1)
        share = cutout.covered(ii, oy, ox, box) / box_area
        ox = np.full(oy.shape, ox)
    hit = np.flatnonzero(share >= target)
    if hit.size == 0 or share[hit[0]] > hi:
        return None
    k = int(hit[0])
    return int(oy[k]), int(ox[k]), float(share[k])


def sample_occluder(rng: np.random.Generator, obj_box_px, out_hw, cfg: OcclusionConfig, cutter: cutout.Cutter,
                    exclude: int | None = None, backdrop: np.ndarray | None = None) -> OccluderParams | None:
    """Draws an occluder for the object in pixel box (y0, x0, y1, x1), or None (no occluder).
    `exclude` is the composite's own background: the cut comes from another photo of the pool;
    `backdrop` its pixels (the cut's colour moves part of the way toward them; None: unchanged)."""
    out_h, out_w = (int(v) for v in out_hw)
    y0, x0, y1, x1 = (float(v) for v in obj_box_px)
    if not (y1 > y0 and x1 > x0 and out_h > 0 and out_w > 0):
        raise ConfigError(f"sample_occluder: object box {tuple(obj_box_px)} must be (y0, x0, y1, x1) with "
                          f"y0 < y1, x0 < x1 on a canvas of size {tuple(out_hw)}")
    if rng.random() >= cfg.p_occluder:
        return None
    side = SIDES[int(rng.integers(4))]
    lo, hi = (float(v) for v in cfg.occluded_fraction)
    target = float(rng.uniform(lo, hi))
    box = cutout.whole_pixels((y0, x0, y1, x1))
    box_area = (box[2] - box[0]) * (box[3] - box[1])
    for _ in range(MAX_CUT_TRIES):
        region = target * box_area * float(rng.uniform(1.6, 3.0))
        share = float(rng.uniform(0.12, 0.3))  # of the window the region fills
        # along the side it enters by, the window spans 0.7 to 1.5 times the box: some cuts cross the
        # whole side (an arm, a pole), others only part of it (a corner)
        along = (box[2] - box[0] if side in ("left", "right") else box[3] - box[1]) * float(rng.uniform(0.7, 1.5))
        across = min(region / share / along, 3.0 * along)
        wh, ww = (along, across) if side in ("left", "right") else (across, along)
        wh, ww = min(wh, out_h), min(ww, out_w)
        share = min(0.4, region / (wh * ww))
        kind = "busy" if rng.random() < cfg.p_busy_occluder else "object"
        cut = cutout.sample_cut(rng, cutter, exclude, (wh, ww), share, kind, cfg.feather_px, cfg.num_variants)
        for k in range(SEEDS_PER_WINDOW):
            cut = cut if k == 0 else cutout.reseed(rng, cutter, cut)
            alpha, own = cutter.region(cut)
            if own < MIN_OWN_OUTLINE:
                continue
            placed = _enter(rng, alpha, box, side, target, hi)
            if placed is not None:
                top, left, got = placed
                shadow = _sample_shadow(rng, cfg, alpha.shape)
                return OccluderParams(side, round(got, 6),
                                      _patch(rng, cut, alpha, cutter, backdrop, top, left, shadow))
    return None


def _solid(alpha: np.ndarray, ext, target_area: float) -> bool:
    """An object rather than a sliver or a speck: at least 100 px and a tenth of the area it was grown
    toward, filling at least a quarter of its bounding box."""
    rmin, rmax, cmin, cmax = ext
    area = float(cutout.integral(alpha)[-1, -1])
    return area >= max(100.0, 0.1 * target_area) and area >= 0.25 * (rmax - rmin + 1) * (cmax - cmin + 1)


def sample_distractors(rng: np.random.Generator, out_hw, cfg: OcclusionConfig, cutter: cutout.Cutter,
                       exclude: int | None = None, avoid_px=(), n_range=None,
                       backdrop: np.ndarray | None = None) -> list[DistractorParams]:
    """Draws unlabelled distractors, each covering at most cfg.max_distractor_overlap of every pixel
    box (y0, x0, y1, x1) in `avoid_px`; `n_range` (inclusive) overrides cfg.distractor_count;
    `exclude` and `backdrop` as for `sample_occluder`."""
    out_h, out_w = (int(v) for v in out_hw)
    if out_h <= 0 or out_w <= 0:
        raise ConfigError(f"sample_distractors: canvas size {tuple(out_hw)} must be positive (height, width)")
    n_range = tuple(n_range) if n_range is not None else tuple(cfg.distractor_count)
    _range(n_range, "sample_distractors n_range", 0, 100, integer=True)
    boxes = [cutout.whole_pixels(b) for b in avoid_px]
    limits = [cfg.max_distractor_overlap * (b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    n = int(rng.integers(int(n_range[0]), int(n_range[1]) + 1))
    short = min(out_h, out_w)
    out = []
    for _ in range(n):
        size = short * float(rng.uniform(*cfg.distractor_size))
        aspect = float(rng.uniform(0.6, 1.6))
        wh, ww = min(out_h, size * math.sqrt(aspect)), min(out_w, size / math.sqrt(aspect))
        kind = "busy" if rng.random() < cfg.p_busy_distractor else "object"
        for k in range(MAX_DISTRACTOR_CUTS):
            if k % SEEDS_PER_WINDOW == 0:
                cut = cutout.sample_cut(rng, cutter, exclude, (wh, ww), float(rng.uniform(0.15, 0.4)), kind,
                                        cfg.feather_px, cfg.num_variants)
            else:
                cut = cutout.reseed(rng, cutter, cut)
            alpha, own = cutter.region(cut)
            ext = cutout.mask_rows_cols(alpha)
            if ext is not None and own >= MIN_OWN_OUTLINE and _solid(alpha, ext, cut.target_area):
                break
        else:
            continue
        rmin, rmax, cmin, cmax = ext
        ii = cutout.integral(alpha)
        slack_y, slack_x = (rmax - rmin) // 4, (cmax - cmin) // 4  # up to a quarter may run off the canvas
        for _try in range(MAX_PLACE_TRIES):
            top = int(rng.integers(-rmin - slack_y, max(-rmin - slack_y, out_h - rmax - 1 + slack_y) + 1))
            left = int(rng.integers(-cmin - slack_x, max(-cmin - slack_x, out_w - cmax - 1 + slack_x) + 1))
            if all(cutout.covered(ii, top, left, b) <= lim for b, lim in zip(boxes, limits)):
                shadow = _sample_shadow(rng, cfg, alpha.shape)
                out.append(DistractorParams(_patch(rng, cut, alpha, cutter, backdrop, top, left, shadow)))
                break
    return out


def _check_canvas(canvas: np.ndarray, what: str) -> None:
    if not (isinstance(canvas, np.ndarray) and canvas.dtype == np.uint8 and canvas.ndim == 3
            and canvas.shape[2] == 3):
        raise InputImageError(f"{what} must be an RGB uint8 HxWx3 array, got shape "
                              f"{getattr(canvas, 'shape', None)} dtype {getattr(canvas, 'dtype', None)}")


def _shadow_pad(p: PatchParams) -> int:
    if p.shadow_opacity <= 0:
        return 0
    return int(math.ceil(3.0 * p.shadow_blur + max(abs(p.shadow_dy), abs(p.shadow_dx)))) + 1


def patch_region(p: PatchParams, canvas_hw):
    """(y0, x0, y1, x1): the canvas region drawing the patch may change (its opacity is 0 outside
    it), or None when it misses the canvas."""
    h, w = int(canvas_hw[0]), int(canvas_hw[1])
    wy0, wx0, wy1, wx1 = p.cut.window
    pad = _shadow_pad(p)
    y0, x0 = max(0, p.top - pad), max(0, p.left - pad)
    y1, x1 = min(h, p.top + (wy1 - wy0) + pad), min(w, p.left + (wx1 - wx0) + pad)
    if y1 <= y0 or x1 <= x0:
        return None
    return y0, x0, y1, x1


def draw_patch(out: np.ndarray, p: PatchParams, cutter: cutout.Cutter):
    """Draws one patch onto `out` in place; returns (region (y0, x0, y1, x1), its opacity over the
    region, float32) or None when it misses the canvas."""
    h, w = out.shape[:2]
    roi = patch_region(p, (h, w))
    if roi is None:
        return None
    ry0, rx0, ry1, rx1 = roi
    alpha = cutter.mask(p.cut)
    src = cutter.pixels(p.cut)
    wh, ww = alpha.shape
    a = np.zeros((ry1 - ry0, rx1 - rx0), np.float32)
    fill = np.zeros((ry1 - ry0, rx1 - rx0, 3), np.float32)
    # the window's part on the canvas, in region and window coordinates
    cy0, cx0 = max(ry0, p.top), max(rx0, p.left)
    cy1, cx1 = min(ry1, p.top + wh), min(rx1, p.left + ww)
    region = out[ry0:ry1, rx0:rx1].astype(np.float32)
    if cy1 > cy0 and cx1 > cx0:
        a[cy0 - ry0:cy1 - ry0, cx0 - rx0:cx1 - rx0] = alpha[cy0 - p.top:cy1 - p.top, cx0 - p.left:cx1 - p.left]
        fill[cy0 - ry0:cy1 - ry0, cx0 - rx0:cx1 - rx0] = src[cy0 - p.top:cy1 - p.top, cx0 - p.left:cx1 - p.left]
        fill *= np.float32(p.gain)
    if p.shadow_opacity > 0:
        pad = _shadow_pad(p)
        big = np.zeros((wh + 2 * pad, ww + 2 * pad), np.float32)
        big[pad:pad + wh, pad:pad + ww] = alpha
        m = np.float32([[1, 0, p.shadow_dx], [0, 1, p.shadow_dy]])
        big = cv2.warpAffine(big, m, (big.shape[1], big.shape[0]), flags=cv2.INTER_LINEAR)
        big = cv2.GaussianBlur(big, (0, 0), p.shadow_blur, borderType=cv2.BORDER_CONSTANT)
        by0, bx0 = ry0 - (p.top - pad), rx0 - (p.left - pad)
        shade = big[by0:by0 + (ry1 - ry0), bx0:bx0 + (rx1 - rx0)]
        region *= (1.0 - np.float32(p.shadow_opacity) * shade)[..., None]
    a3 = a[..., None]
    out[ry0:ry1, rx0:rx1] = np.clip(region * (1.0 - a3) + fill * a3 + 0.5, 0, 255).astype(np.uint8)
    return roi, a


def occluder_region(params: OccluderParams, canvas_hw):
    """(y0, x0, y1, x1): the canvas region `render_occluder` may change, or None."""
    return patch_region(params.patch, canvas_hw)


def render_occluder(canvas: np.ndarray, cutter: cutout.Cutter, params: OccluderParams, inplace: bool = False):
    """Draws the occluder; returns (canvas, occ_alpha HxW float32). The canvas is copied first
    unless `inplace`."""
    _check_canvas(canvas, "render_occluder: canvas")
    h, w = canvas.shape[:2]
    out = canvas if inplace else canvas.copy()
    occ = np.zeros((h, w), np.float32)
    got = draw_patch(out, params.patch, cutter)
    if got is not None:
        (ry0, rx0, ry1, rx1), a = got
        occ[ry0:ry1, rx0:rx1] = a
    return out, occ


def render_distractors(canvas: np.ndarray, cutter: cutout.Cutter, params_list, opacity: bool = True):
    """Draws distractors in order; returns (new canvas, combined opacity HxW float32 or None when
    `opacity` is False, the regions they changed)."""
    _check_canvas(canvas, "render_distractors: canvas")
    h, w = canvas.shape[:2]
    out = canvas.copy()
    alpha = np.zeros((h, w), np.float32) if opacity else None
    rects = []
    for p in params_list:
        got = draw_patch(out, p.patch, cutter)
        if got is None:
            continue
        (ry0, rx0, ry1, rx1), a = got
        rects.append((ry0, rx0, ry1, rx1))
        if alpha is not None:
            prev = alpha[ry0:ry1, rx0:rx1]
            alpha[ry0:ry1, rx0:rx1] = 1.0 - (1.0 - prev) * (1.0 - a)
    return out, alpha, rects
