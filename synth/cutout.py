"""Regions cut out of real photos along their own edges: what occluders and distractors are made of.

A cut (`CutParams`) is one region of one photo of the background pool, as fitted to the canvas
(synth.backdrops.fit_background with the recorded variant). `cut_mask(photo, cut)` finds it again
without randomness:

1. the window ``cut.window`` of the photo is reduced so its longer side is at most ``WORK_SIDE``
   px (factor f <= 1) and split into superpixels that follow its edges (skimage's Felzenszwalb
   graph segmentation, scale ``cut.segment_scale``);
2. each superpixel gets a feature: its mean CIELAB colour and its mean edge density (the local
   mean of the lightness gradient, which is high over text, print and fine patterns and low over
   plain surfaces); "object" cuts weigh colour, "busy" cuts weigh edge density, so that a busy cut
   keeps letters and the gaps between them together;
3. a region grows from the superpixel under ``cut.seed`` (or, when that one touches the window's
   border, the nearest one that does not): the frontier superpixel nearest to the
   region's mean feature joins it, one at a time, until the region holds ``cut.target_area``
   window pixels or no superpixel is left to join; superpixels that touch the window's border
   never join (a real object's outline lies inside the window, not along it). The region's holes
   are filled (an object in front hides what is behind it entirely);
4. it is limited to a rounded envelope (an ellipse a margin inside the window), so that where the
   region still reaches the window's border (a seed superpixel with no inner neighbour) its
   outline is a curve, not the window's straight side; `cut_region` reports how much of the
   outline is the photo's own, and the samplers refuse cuts whose outline is mostly the envelope's;
5. it is enlarged back to the window's size and its edge softened with a Gaussian of sigma
   ``cut.feather``.

The outline therefore runs along superpixel boundaries, which are the photo's own edges, to
within about 1/f px. `Cutter` keeps fitted photos and masks of a run (least recently used go
first), so that the mask a sampler measured is not computed again to draw it.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace

import cv2
import numpy as np
from scipy import ndimage
from skimage.segmentation import felzenszwalb

from synth.errors import ConfigError

CUT_KINDS = ("object", "busy")
WORK_SIDE = 96  # segmentation resolution: the window's longer side, px
ENVELOPE_POWER = 2.0  # superellipse exponent of the envelope (2: an ellipse; larger: squarer)
_FEATURE_WEIGHTS = {"object": (1.0, 0.35), "busy": (0.35, 1.5)}  # (colour, edge density)


@dataclass(frozen=True)
class CutParams:
    source_index: int  # the photo: its index in the background pool
    source_variant: int  # its fit to the canvas (synth.backdrops.fit_background)
    window: tuple  # (y0, x0, y1, x1) in the fitted photo, end exclusive
    kind: str  # one of CUT_KINDS
    seed: tuple  # (y, x) window pixel the region grows from
    segment_scale: float  # Felzenszwalb scale (larger: larger superpixels)
    target_area: int  # window pixels the region grows to
    feather: float  # Gaussian sigma of the edge, window pixels


def check_cut(cut: CutParams, photo_hw) -> None:
    y0, x0, y1, x1 = (int(v) for v in cut.window)
    h, w = (int(v) for v in photo_hw)
    if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
        raise ConfigError(f"cut window {tuple(cut.window)} must lie inside the {h}x{w} photo (y0, x0, y1, x1)")
    sy, sx = (int(v) for v in cut.seed)
    if not (0 <= sy < y1 - y0 and 0 <= sx < x1 - x0):
        raise ConfigError(f"cut seed {tuple(cut.seed)} must lie inside its {y1 - y0}x{x1 - x0} window")
    if cut.kind not in CUT_KINDS:
        raise ConfigError(f"cut kind {cut.kind!r} is unknown; valid kinds are {', '.join(CUT_KINDS)}")


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) * np.float32(1.0 / 255.0), cv2.COLOR_RGB2Lab)


def edge_density(rgb: np.ndarray, sigma: float = 2.0, lab: np.ndarray | None = None) -> np.ndarray:
    """The local mean of the lightness gradient magnitude (L in 0..100 per pixel step), float32."""
    lab = _lab(rgb) if lab is None else lab
    gx = cv2.Sobel(lab[..., 0], cv2.CV_32F, 1, 0, ksize=3) * np.float32(0.125)
    gy = cv2.Sobel(lab[..., 0], cv2.CV_32F, 0, 1, ksize=3) * np.float32(0.125)
    return cv2.GaussianBlur(np.sqrt(gx * gx + gy * gy), (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def _features(small: np.ndarray, labels: np.ndarray, kind: str):
    n = int(labels.max()) + 1
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n).astype(np.float64)
    lab = _lab(small)
    e = edge_density(small, lab=lab)
    wc, wt = _FEATURE_WEIGHTS[kind]
    cols = [np.bincount(flat, lab[..., k].ravel(), n) / area * wc for k in range(3)]
    cols.append(np.bincount(flat, e.ravel(), n) / area * wt)
    border = np.zeros(n, bool)
    border[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    return np.stack(cols, axis=1), area, border, e


def _interior_seed(labels: np.ndarray, border: np.ndarray, sy: int, sx: int) -> int:
    """The superpixel under (sy, sx), or, when that one touches the window's border, the nearest
    one that does not (a region grown from it is more likely to be an object inside the window)."""
    lab = int(labels[sy, sx])
    if not border[lab] or border.all():
        return lab
    ys, xs = np.nonzero(~border[labels])
    k = int(np.argmin((ys - sy) ** 2 + (xs - sx) ** 2))
    return int(labels[ys[k], xs[k]])


def _neighbours(labels: np.ndarray) -> list:
    n = int(labels.max()) + 1
    pairs = [np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], 1),
             np.stack([labels[:-1].ravel(), labels[1:].ravel()], 1)]
    p = np.concatenate(pairs)
    p = p[p[:, 0] != p[:, 1]]
    p = np.unique(np.sort(p, axis=1), axis=0)
    out = [[] for _ in range(n)]
    for a, b in p.tolist():
        out[a].append(b)
        out[b].append(a)
    return out


def grow_region(labels: np.ndarray, feats: np.ndarray, area: np.ndarray, border: np.ndarray, seed_label: int,
                target: float) -> np.ndarray:
    """The superpixels (bool per label) of the region grown from `seed_label` to `target` pixels:
    the frontier superpixel nearest to the region's mean feature joins first; superpixels that touch
    the window's border never join (growth stops short of `target` when only they are left)."""
    n = feats.shape[0]
    nbrs = _neighbours(labels)
    inside = np.zeros(n, bool)
    frontier = np.zeros(n, bool)
    inside[seed_label] = True
    frontier[nbrs[seed_label]] = True
    total, mean = area[seed_label], feats[seed_label].copy()
    while total < target:
        cand = np.flatnonzero(frontier & ~inside & ~border)
        if cand.size == 0:
            break
        d = np.sqrt(((feats[cand] - mean) ** 2).sum(axis=1))
        j = int(cand[int(np.argmin(d))])
        inside[j] = True
        frontier[nbrs[j]] = True
        mean = (mean * total + feats[j] * area[j]) / (total + area[j])
        total += area[j]
    return inside


def envelope(h: int, w: int, margin: float) -> np.ndarray:
    """A superellipse filling the h x w window less `margin` px on every side (bool)."""
    ry, rx = max(h / 2.0 - margin, 1.0), max(w / 2.0 - margin, 1.0)
    yy = (np.arange(h, dtype=np.float32) + 0.5 - h / 2.0) / np.float32(ry)
    xx = (np.arange(w, dtype=np.float32) + 0.5 - w / 2.0) / np.float32(rx)
    return (np.abs(yy)[:, None] ** ENVELOPE_POWER + np.abs(xx)[None, :] ** ENVELOPE_POWER) <= 1.0


def cut_mask(photo: np.ndarray, cut: CutParams) -> np.ndarray:
    """The cut's opacity over its window (float32 in [0, 1], window-sized): see the module docstring."""
    return cut_region(photo, cut)[0]


def _real_outline_share(region: np.ndarray, env: np.ndarray) -> float:
    """Share of the outline of region & env that is the region's own (not the envelope's)."""
    kept = region & env
    if not kept.any():
        return 0.0
    pad = np.pad(kept, 1)
    inner = pad[1:-1, 1:-1] & pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    outline = kept & ~inner
    # cut off: region pixels outside the envelope, and the region running on past the window's side
    cut_off = np.pad(region, 1, mode="edge") & ~np.pad(env, 1)
    by_env = outline & (cut_off[:-2, 1:-1] | cut_off[2:, 1:-1] | cut_off[1:-1, :-2] | cut_off[1:-1, 2:])
    return 1.0 - float(np.count_nonzero(by_env)) / float(max(1, np.count_nonzero(outline)))


@dataclass
class Segmentation:
    """A window's superpixels at the work resolution, with what region growing needs."""
    labels: np.ndarray  # work-resolution label map
    feats: np.ndarray  # per superpixel: weighted mean CIELAB and edge density
    area: np.ndarray  # per superpixel: work pixels
    border: np.ndarray  # per superpixel: touches the window's border
    edges: np.ndarray  # work-resolution edge density
    window_hw: tuple  # the window's size, pixels


def segment(photo: np.ndarray, cut: CutParams) -> Segmentation:
    """The superpixels of the cut's window (what depends on its photo, window, kind and scale only)."""
    check_cut(cut, photo.shape[:2])
    y0, x0, y1, x1 = (int(v) for v in cut.window)
    win = photo[y0:y1, x0:x1]
    h, w = win.shape[:2]
    f = min(1.0, WORK_SIDE / max(h, w))
    sh, sw = max(2, int(round(h * f))), max(2, int(round(w * f)))
    small = win if (sh, sw) == (h, w) else cv2.resize(win, (sw, sh), interpolation=cv2.INTER_AREA)
    labels = felzenszwalb(small, scale=float(cut.segment_scale), sigma=0.6, min_size=max(6, sh * sw // 600))
    feats, area, border, edges = _features(small, labels, cut.kind)
    return Segmentation(labels, feats, area, border, edges, (h, w))


def segment_key(cut: CutParams) -> tuple:
    return (cut.source_index, cut.source_variant, tuple(cut.window), cut.kind, cut.segment_scale)


def cut_region(photo: np.ndarray, cut: CutParams, seg: Segmentation | None = None) -> tuple[np.ndarray, float]:
    """(cut_mask, the share of its outline that follows the photo's own edges rather than the
    envelope: near 1 for an object inside the window, low for a flat area cut to a rounded shape).
    `seg`: the window's `segment`, when already computed."""
    seg = segment(photo, cut) if seg is None else seg
    check_cut(cut, photo.shape[:2])
    labels, (h, w) = seg.labels, seg.window_hw
    sh, sw = labels.shape
    sy = min(sh - 1, int(cut.seed[0] * sh / h))
    sx = min(sw - 1, int(cut.seed[1] * sw / w))
    scale = (sh * sw) / float(h * w)
    inside = grow_region(labels, seg.feats, seg.area, seg.border, _interior_seed(labels, seg.border, sy, sx),
                         cut.target_area * scale)
    region = ndimage.binary_fill_holes(inside[labels])
    margin = 2.5 * float(cut.feather) + 1.0
    real = _real_outline_share(region, envelope(sh, sw, margin * sh / h))
    a = region.astype(np.float32)
    if (sh, sw) != (h, w):
        a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
    a = np.where(envelope(h, w, margin) & (a >= 0.5), np.float32(1.0), np.float32(0.0))
    if cut.feather > 0:
        a = cv2.GaussianBlur(a, (0, 0), float(cut.feather), borderType=cv2.BORDER_CONSTANT)
        a[a > 0.999] = 1.0  # the interior shows the photo's pixels exactly, the outside nothing
        a[a < 0.001] = 0.0
    return a, real


class Cutter:
    """The photos of a background pool fitted to the canvas, and the masks of cuts from them,
    kept while a run uses them (least recently used go first).

    `photo_fn(index, variant)` returns (index used, fitted RGB uint8): synth.backdrops gives the
    pool's own (skipping photos that fail to decode or already show a logo); `count` is the pool's
    size."""

    def __init__(self, photo_fn, count: int, max_masks: int = 64):
        self.photo_fn, self.count, self.max_masks = photo_fn, int(count), int(max_masks)
        self._masks: OrderedDict = OrderedDict()
        self._segments: OrderedDict = OrderedDict()
        self.computed = 0  # masks computed (not found in the cache)

    def photo(self, index: int, variant: int) -> tuple[int, np.ndarray]:
        return self.photo_fn(int(index), int(variant))

    def _photo_of(self, cut: CutParams) -> np.ndarray:
        used, photo = self.photo(cut.source_index, cut.source_variant)
        if used != cut.source_index:
            raise ConfigError(f"cut from photo {cut.source_index} of the pool: that photo cannot be used now "
                              f"(the pool gave photo {used} instead)")
        return photo

    def pixels(self, cut: CutParams) -> np.ndarray:
        """The window of the cut's photo (RGB uint8, a view)."""
        y0, x0, y1, x1 = (int(v) for v in cut.window)
        return self._photo_of(cut)[y0:y1, x0:x1]

    def segmentation(self, cut: CutParams) -> Segmentation:
        """segment of the cut's window (cached: cuts of one window with other seeds share it)."""
        key = segment_key(cut)
        if key in self._segments:
            self._segments.move_to_end(key)
            return self._segments[key]
        seg = segment(self._photo_of(cut), cut)
        self._segments[key] = seg
        if len(self._segments) > 16:
            self._segments.popitem(last=False)
        return seg

    def mask(self, cut: CutParams) -> np.ndarray:
        """cut_mask of the cut (cached; do not change the returned array)."""
        return self.region(cut)[0]

    def region(self, cut: CutParams) -> tuple[np.ndarray, float]:
        """cut_region of the cut (cached; do not change the returned array)."""
        if cut in self._masks:
            self._masks.move_to_end(cut)
            return self._masks[cut]
        m = cut_region(self._photo_of(cut), cut, self.segmentation(cut))
        self.computed += 1
        self._masks[cut] = m
        if len(self._masks) > self.max_masks:
            self._masks.popitem(last=False)
        return m


def _draw_seed(rng: np.random.Generator, seg: Segmentation, cut: CutParams) -> tuple:
    """A seed pixel (window coordinates) inside the envelope on a superpixel that does not touch
    the window's border: a pixel drawn with weight its superpixel's area (larger objects more
    often, specks rarely), times the edge density squared for a "busy" cut (text and print)."""
    labels, (h, w) = seg.labels, seg.window_hw
    sh, sw = labels.shape
    kind = cut.kind
    ok = ~seg.border[labels] & envelope(sh, sw, (3.0 * float(cut.feather) + 2.0) * sh / h)
    if not ok.any():
        ok = np.ones_like(ok)
    weight = (ok * seg.area[labels]).astype(np.float64).ravel()  # by area squared: specks rarely
    if kind == "busy":
        weight *= seg.edges.ravel().astype(np.float64) ** 2
    if weight.sum() <= 0:
        weight = ok.astype(np.float64).ravel()
    k = int(rng.choice(weight.size, p=weight / weight.sum()))
    y, x = divmod(k, sw)
    return (min(h - 1, int((y + 0.5) * h / sh)), min(w - 1, int((x + 0.5) * w / sw)))


def reseed(rng: np.random.Generator, cutter: "Cutter", cut: CutParams) -> CutParams:
    """The same window with another seed (its segmentation is reused)."""
    return replace(cut, seed=_draw_seed(rng, cutter.segmentation(cut), cut))


def sample_cut(rng: np.random.Generator, cutter: Cutter, exclude: int | None, window_hw, target_share: float,
               kind: str, feather_range, num_variants: int) -> CutParams:
    """Draws a cut of about `window_hw` (clipped to the photo) from a photo of the pool other than
    `exclude` (the composite's own background; a pool of one photo cuts from it anyway), growing to
    `target_share` of the window. A "busy" cut's window is the busiest of a few drawn (edge
    density); the seed is drawn by `_draw_seed`."""
    n = cutter.count
    if n > 1 and exclude is not None and 0 <= exclude < n:
        index = int(rng.integers(n - 1))
        index += index >= exclude
    else:
        index = int(rng.integers(n))
    variant = int(rng.integers(num_variants))
    used, photo = cutter.photo(index, variant)
    ph, pw = photo.shape[:2]
    wh = int(min(ph, max(8, round(window_hw[0]))))
    ww = int(min(pw, max(8, round(window_hw[1]))))
    best, best_e = None, -1.0
    for _ in range(4 if kind == "busy" else 1):
        wy, wx = int(rng.integers(ph - wh + 1)), int(rng.integers(pw - ww + 1))
        score = 0.0
        if kind == "busy":
            win = photo[wy:wy + wh, wx:wx + ww]
            f = min(1.0, 64.0 / max(wh, ww))
            small = cv2.resize(win, (max(2, round(ww * f)), max(2, round(wh * f))), interpolation=cv2.INTER_AREA)
            score = float(edge_density(small, 1.5).mean())
        if score > best_e:
            best, best_e = (wy, wx), score
    wy, wx = best
    feather = float(rng.uniform(*feather_range))
    f = min(1.0, WORK_SIDE / max(wh, ww))
    feather = max(feather, 0.4 / f)  # hides the staircase of a mask enlarged from the work resolution
    cut = CutParams(source_index=int(used), source_variant=variant, window=(wy, wx, wy + wh, wx + ww), kind=kind,
                    seed=(0, 0), segment_scale=round(float(rng.uniform(60.0, 200.0)), 3),
                    target_area=int(round(target_share * wh * ww)), feather=round(feather, 4))
    return reseed(rng, cutter, cut)


def mask_rows_cols(alpha: np.ndarray):
    """(rmin, rmax, cmin, cmax) of the pixels with alpha >= 0.5, or None."""
    on = alpha >= 0.5
    rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def integral(alpha: np.ndarray) -> np.ndarray:
    """Summed-area table of alpha >= 0.5 ((h + 1) x (w + 1), int64)."""
    return cv2.integral((alpha >= 0.5).astype(np.uint8), sdepth=cv2.CV_64F).astype(np.int64)


def covered(ii: np.ndarray, oy, ox, box) -> np.ndarray:
    """Pixels of the mask (summed-area table `ii`) inside canvas box (y0, x0, y1, x1) (whole pixels,
    end exclusive) when the mask's window has its top-left at canvas (oy, ox) (arrays allowed)."""
    h, w = ii.shape[0] - 1, ii.shape[1] - 1
    y0, x0, y1, x1 = box
    r0, r1 = np.clip(y0 - np.asarray(oy), 0, h), np.clip(y1 - np.asarray(oy), 0, h)
    c0, c1 = np.clip(x0 - np.asarray(ox), 0, w), np.clip(x1 - np.asarray(ox), 0, w)
    return ii[r1, c1] - ii[r0, c1] - ii[r1, c0] + ii[r0, c0]


def whole_pixels(box) -> tuple:
    """(y0, x0, y1, x1) floats -> the whole pixels they touch, end exclusive."""
    y0, x0, y1, x1 = box
    return (int(math.floor(y0)), int(math.floor(x0)), int(math.ceil(y1)), int(math.ceil(x1)))
