"""Blending a prepared logo into the canvas with one of several modes, mixed per object.

Cut, Paste and Learn (Dwibedi et al., 2017) found that rendering with several blend modes and keeping them
all stops a detector from keying on the artefacts of any one of them. `sample_blend` draws a mode by weight
and every mode's parameters once (so turning a mode's weight to 0 does not change the other draws), and
`blend` applies them deterministically:

  * "hard":      out = bg (1 - a) + logo a, with a = alpha >= 0.5 when `hard_binary` (Cut-Paste-Learn's
                 "no blending": a binary cut-out), otherwise the alpha as given. Changes only the footprint.
  * "feather":   a = Gaussian blur (sigma r / 2) of alpha grey-eroded by a disc of radius round(r), r the
                 drawn `feather_radius` in px, lowered for a logo whose strokes it would wipe out
                 (`feather_cap`: the largest of r, 7r/8, .. 0 that leaves 80 % of the footprint at
                 alpha >= 0.5). The 0.5 contour moves about r px inward; pixels more than r + 1 px
                 outside the footprint are unchanged. Without the cap, a drawn radius of
                 3 px wiped out the letters of a logo 60 px wide (google's letters left as dots, heineken's
                 word gone, its star kept) while the box stayed on what was left: a label of no logo.
  * "poisson":   cv2.seamlessClone's clone (NORMAL_CLONE, or MIXED_CLONE when `poisson_mixed`; the same
                 equation solved by `_seamless_clone`, a few times faster) on the ROI plus a margin.
                 Source: the logo over a flat field of the mean background colour around it; mask: the
                 footprint (alpha > 0.01) dilated by `poisson_pad_px` (> OpenCV's internal 3-px erosion of
                 the mask, so the logo's outline stays in the guidance field). The logo's outline and inner
                 edges are kept while the flat band around it and the low frequencies follow the background.
                 Poisson's margin: pixels inside the bounding rectangle of that dilated mask may change (the
                 solver works on the whole rectangle); pixels outside it never do. With NORMAL_CLONE the
                 flat surround makes the solver fill the band around the logo with a smooth membrane, so
                 the background's fine detail (its texture and noise: the image minus a Gaussian blur of
                 sigma POISSON_DETAIL_SIGMA) is put back there, except within POISSON_EDGE_PX of the
                 footprint; otherwise every Poisson logo would sit in a noise-free halo. When the dilated mask
                 would reach the canvas border (a logo truncated by or close to the border) the Dirichlet
                 boundary would cut the logo, so the object falls back to "feather" (see `effective_mode`).
                 MIXED_CLONE keeps, pixel by pixel, the stronger of the logo's and the background's
                 gradient: on a textured background the logo's flat areas take the background's texture
                 and its edges lose to stronger ones, and a logo can come out translucent, less logo than
                 background (in 400 composites of the embedded default, 12 of the 46 mixed clones
                 matched their artwork below 0.5). When the logo's share of the guidance
                 (`mixed_logo_share`) is below MIXED_KEEP the object gets NORMAL_CLONE; deterministic
                 from the pixels, so the drawn `poisson_mixed` is still what is recorded.
  * "laplacian": Laplacian-pyramid blend (Burt & Adelson) of the hard composite (logo over background by
                 alpha) with the background, with `laplacian_levels` levels and the mask pyramid of alpha, on
                 the ROI plus a margin of 2 ** (levels + 1) px. Coarse levels soften the outline over a wider
                 band: pixels farther than that margin from the footprint change by less than half a grey
                 level, and pixels outside the ROI plus margin do not change at all.

Effective opacity (returned with the canvas, for boxes: a pixel shows the logo where it is >= 0.5):
hard and feather return the alpha they blended with. Poisson and Laplacian return the input alpha: both keep
the logo's outline at alpha's 0.5 contour (Poisson reproduces the logo's gradients inside the mask; the
finest Laplacian level switches at alpha), while the logo's colours may shift, so a per-pixel colour
comparison would under-report a logo that is plainly visible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.fft

from synth.errors import ConfigError, InputImageError, check_range_pair
from synth.pixels import clip_to

BLEND_MODES = ("hard", "feather", "poisson", "laplacian")
ALPHA_EPS = 0.01
POISSON_DETAIL_SIGMA = 1.5  # px: the background detail put back in the band a normal Poisson clone smooths
POISSON_EDGE_PX = 2  # ... except this close to the footprint
# A mixed clone whose logo gives less than this share of the guidance inside its mask (mixed_logo_share)
# shows more background than logo: the object gets the normal clone instead.
MIXED_KEEP = 0.5


def _check_range(name, value, lo, hi, integer=False):
    check_range_pair(f"BlendConfig.{name}", value, lo, hi, integer)


@dataclass(frozen=True)
class BlendConfig:
    hard_weight: float = 1.0  # relative frequency of each mode; 0 turns a mode off
    feather_weight: float = 1.0
    poisson_weight: float = 1.0
    laplacian_weight: float = 1.0
    hard_binary_prob: float = 0.5  # hard mode: threshold alpha at 0.5 (else keep its soft edge)
    feather_radius_range: tuple = (1.0, 4.0)  # px
    poisson_mixed_prob: float = 0.3  # MIXED_CLONE instead of NORMAL_CLONE
    poisson_pad_px: int = 6
    laplacian_levels_range: tuple = (2, 4)  # inclusive integers

    def __post_init__(self):
        weights = self.weights()
        if not all(isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0
                   for w in weights) or sum(weights) <= 0:
            raise ConfigError(f"BlendConfig weights {dict(zip(BLEND_MODES, weights))} are invalid: expected "
                              "finite numbers >= 0 with a positive sum")
        for name in ("hard_binary_prob", "poisson_mixed_prob"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0):
                raise ConfigError(f"BlendConfig.{name} = {v!r} is invalid: expected a probability in [0, 1]")
        _check_range("feather_radius_range", self.feather_radius_range, 0.0, 32.0)
        _check_range("laplacian_levels_range", self.laplacian_levels_range, 1, 6, integer=True)
        if not isinstance(self.poisson_pad_px, int) or isinstance(self.poisson_pad_px, bool) \
                or not 4 <= self.poisson_pad_px <= 64:
            raise ConfigError(f"BlendConfig.poisson_pad_px = {self.poisson_pad_px!r} is invalid: expected an "
                              "integer in [4, 64] (OpenCV erodes the clone mask by 3 px)")

    def weights(self) -> tuple:
        return (self.hard_weight, self.feather_weight, self.poisson_weight, self.laplacian_weight)


@dataclass(frozen=True)
class BlendParams:
    mode: str  # one of BLEND_MODES
    hard_binary: bool  # used by "hard"
    feather_radius: float  # used by "feather" (and by "poisson" when it falls back to feather)
    poisson_mixed: bool  # used by "poisson"
    laplacian_levels: int  # used by "laplacian"
    poisson_pad_px: int = 6


def sample_blend(rng: np.random.Generator, cfg: BlendConfig) -> BlendParams:
    w = np.asarray(cfg.weights(), np.float64)
    cdf = np.cumsum(w / w.sum())  # the inverse-CDF draw of Generator.choice(4, p=w / w.sum())
    cdf /= cdf[-1]
    mode = BLEND_MODES[int(cdf.searchsorted(rng.random(), side="right"))]
    binary = bool(rng.random() < cfg.hard_binary_prob)
    radius = float(rng.uniform(*cfg.feather_radius_range))
    mixed = bool(rng.random() < cfg.poisson_mixed_prob)
    levels = int(rng.integers(int(cfg.laplacian_levels_range[0]), int(cfg.laplacian_levels_range[1]) + 1))
    return BlendParams(mode, binary, radius, mixed, levels, int(cfg.poisson_pad_px))


# ---------------------------------------------------------------- helpers

def _check(canvas, logo_rgb, alpha, roi, params):
    if not (isinstance(canvas, np.ndarray) and canvas.dtype == np.float32 and canvas.ndim == 3
            and canvas.shape[2] == 3):
        raise InputImageError(f"canvas: expected a float32 (H, W, 3) array in 0..255, got "
                              f"{getattr(canvas, 'dtype', type(canvas))} {getattr(canvas, 'shape', '')}")
    H, W = canvas.shape[:2]
    if len(roi) != 4 or not all(isinstance(v, (int, np.integer)) for v in roi):
        raise InputImageError(f"roi = {roi!r} is invalid: expected 4 integers (y0, x0, y1, x1)")
    y0, x0, y1, x1 = (int(v) for v in roi)
    if not (0 <= y0 < y1 <= H and 0 <= x0 < x1 <= W):
        raise InputImageError(f"roi = {roi!r} is invalid: expected 0 <= y0 < y1 <= {H}, 0 <= x0 < x1 <= {W}")
    shape = (y1 - y0, x1 - x0)
    for name, arr, want in (("alpha", alpha, shape), ("logo_rgb", logo_rgb, shape + (3,))):
        if not (isinstance(arr, np.ndarray) and arr.dtype == np.float32 and arr.shape == want):
            raise InputImageError(f"{name}: expected a float32 {want} array (the roi's size), got "
                                  f"{getattr(arr, 'dtype', type(arr))} {getattr(arr, 'shape', '')}")
    if params.mode not in BLEND_MODES:
        raise ConfigError(f"BlendParams.mode = {params.mode!r} is invalid: expected one of "
                          f"{', '.join(BLEND_MODES)}")
    return y0, x0, y1, x1


def _disc(r):
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


FEATHER_KEEP = 0.8  # share of a footprint (alpha >= 0.5) that a feather must leave at alpha >= 0.5
FEATHER_STEPS = 8  # feather_cap tries radius * (1 - k / FEATHER_STEPS), k = 0, 1, ...


def feather_cap(alpha: np.ndarray, radius: float, at_border=(False, False, False, False)) -> float:
    """The feather radius applied to this footprint: the largest of radius * (1 - k / FEATHER_STEPS),
    k = 0 .. FEATHER_STEPS, whose feather leaves at least FEATHER_KEEP of the footprint's pixels
    (alpha >= 0.5) at alpha >= 0.5 (0, a hard edge, always does). A large logo, whose strokes are
    wide, keeps the drawn radius; a small one with thin strokes gets a softer feather or none."""
    return _capped_feather(alpha, radius, at_border)[0]


def _capped_feather(alpha, radius, at_border):
    """(feather_cap's radius, the feathered alpha at that radius)."""
    mask = alpha >= 0.5
    n = int(mask.sum())
    if n == 0:
        return 0.0, _feather_alpha(alpha, 0.0, at_border)
    for k in range(FEATHER_STEPS):
        r = radius * (1.0 - k / FEATHER_STEPS)
        a = _feather_alpha(alpha, r, at_border)
        if int((a[mask] >= 0.5).sum()) >= FEATHER_KEEP * n:
            return float(r), a
    return 0.0, _feather_alpha(alpha, 0.0, at_border)


def _feather_alpha(alpha, radius, at_border=(False, False, False, False)):
    """`at_border`: (top, left, bottom, right) sides of the ROI that lie on the canvas border. The
    logo there is cut by the image border, not ended: it is continued past that side (edge
    replicated) before the erosion and blur, so that its opacity stays whole up to the border.
    `radius` is used as given: `blend` caps it first (`_capped_feather`)."""
    if any(at_border):
        r = int(round(radius))
        pad = r + 2 * int(math.ceil(3 * radius / 2.0)) + 2
        t, lft, b, rgt = (pad if f else 0 for f in at_border)
        big = cv2.copyMakeBorder(alpha, t, b, lft, rgt, cv2.BORDER_REPLICATE)
        h, w = alpha.shape
        return _feather_alpha(big, radius)[t:t + h, lft:lft + w]
    r = int(round(radius))
    a = cv2.erode(alpha, _disc(r), borderType=cv2.BORDER_CONSTANT, borderValue=0) if r > 0 else alpha
    sigma = radius / 2.0
    if sigma >= 0.3:
        k = 2 * int(math.ceil(3 * sigma)) + 1
        a = cv2.GaussianBlur(a, (k, k), sigma, borderType=cv2.BORDER_CONSTANT)
    return clip_to(a, 1.0)


def _expand(roi, margin, H, W):
    y0, x0, y1, x1 = roi
    return max(0, y0 - margin), max(0, x0 - margin), min(H, y1 + margin), min(W, x1 + margin)


def _in_crop(roi, crop, arr, fill):
    """`arr` (ROI-sized) placed into an array of the crop's size, `fill` elsewhere."""
    y0, x0, y1, x1 = roi
    cy0, cx0, cy1, cx1 = crop
    out = np.full((cy1 - cy0, cx1 - cx0) + arr.shape[2:], fill, arr.dtype)
    out[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0] = arr
    return out


def _poisson_fits(shape, alpha, roi, pad):
    """True when the footprint dilated by pad (+1 for OpenCV's zeroed mask border) stays off the canvas border."""
    m = alpha > ALPHA_EPS
    if not m.any():
        return False
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    y0, x0 = roi[0] + rows[0], roi[1] + cols[0]
    y1, x1 = roi[0] + rows[-1] + 1, roi[1] + cols[-1] + 1
    return y0 - pad - 1 >= 0 and x0 - pad - 1 >= 0 and y1 + pad + 1 <= shape[0] and x1 + pad + 1 <= shape[1]


def effective_mode(canvas_shape, alpha: np.ndarray, roi, params: BlendParams) -> str:
    """The mode `blend` really applies: params.mode, except "poisson" -> "feather" near the canvas border."""
    if params.mode == "poisson" and not _poisson_fits(canvas_shape, alpha, roi, params.poisson_pad_px):
        return "feather"
    return params.mode


_GRAD_X = np.array([[0, -1, 1]], np.float32)  # forward differences (as OpenCV's seamlessClone)
_GRAD_Y = _GRAD_X.T.copy()
_DIV_X = np.array([[-1, 1, 0]], np.float32)  # backward differences: the divergence
_DIV_Y = _DIV_X.T.copy()


def _mixed_fields(src, dst, mask):
    """The two sides of MIXED_CLONE's choice on the mask eroded as the clone erodes it: |gx - gy| of
    the source (zero outside the mask) and of the destination, per channel, forward differences."""
    keep = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=3, borderType=cv2.BORDER_CONSTANT,
                     borderValue=0).astype(np.float32)
    keep = cv2.merge([keep, keep, keep])  # (numpy broadcasting over a last axis of 3 is several times slower)
    inside = (mask > 0).astype(np.float32)
    s = src * cv2.merge([inside, inside, inside])
    sx, sy = cv2.filter2D(s, -1, _GRAD_X), cv2.filter2D(s, -1, _GRAD_Y)
    dx, dy = cv2.filter2D(dst, -1, _GRAD_X), cv2.filter2D(dst, -1, _GRAD_Y)
    return keep, sx, sy, dx, dy


def mixed_logo_share(src, dst, mask) -> float:
    """The logo's share of the guidance that a MIXED_CLONE of `src` into `dst` would follow (arguments
    as `_seamless_clone`'s): where the logo's |gx - gy| is the stronger it is kept, elsewhere the
    background's; the share is sum(kept logo's squared) / sum(the stronger's squared) over the eroded
    mask. 1 on a flat background; low where the background's texture fills the logo's flat areas and
    its stronger edges cut the logo's (the translucent logos the label audit found), 0 on no guidance."""
    return _logo_share(_mixed_fields(src, dst, mask))


def _logo_share(fields) -> float:
    keep, sx, sy, dx, dy = fields
    a, b = np.abs(sx - sy) * keep, np.abs(dx - dy) * keep
    logo = float(np.sum(np.where(a > b, a, 0.0) ** 2))
    total = float(np.sum(np.maximum(a, b) ** 2))
    return logo / total if total > 0 else 0.0


def _seamless_clone(src, dst, mask, mixed, fields=None):
    """What cv2.seamlessClone (NORMAL_CLONE, or MIXED_CLONE when `mixed`) computes on the bounding
    rectangle of its mask, here with the mask's rectangle given: float32 (h, w, 3) `src` and `dst`
    (whole gray levels), uint8 0/1 `mask` touching every side of the rectangle. Same equation and
    discretisation as OpenCV: the source (zero outside the mask) and destination gradients by forward
    differences, the mask eroded by 3 px (3x3, three times) selecting the source's (MIXED: where
    |gx - gy| of the source's channel beats the destination's), the divergence by backward
    differences, the Poisson equation on the rectangle with the destination on its outer ring
    (Dirichlet), solved with DST-I. Solved for the change to dst (zero on the ring) with scipy's FFT
    instead of OpenCV's DFT of twice the size: 2 to 3 times faster. Returns the float32 result
    truncated to whole gray levels in 0..255 as OpenCV's 8-bit output is (they agree to within one
    gray level, on about 1 % of the pixels). `fields`: `_mixed_fields(src, dst, mask)` when already made."""
    h, w = mask.shape
    keep, sx, sy, dx, dy = _mixed_fields(src, dst, mask) if fields is None else fields
    gx, gy = sx - dx, sy - dy  # the guidance field minus dst's own gradient: zero where dst's is kept
    if mixed:
        keep = keep * (np.abs(sx - sy) > np.abs(dx - dy))
    gx *= keep
    gy *= keep
    rhs = (cv2.filter2D(gx, -1, _DIV_X) + cv2.filter2D(gy, -1, _DIV_Y))[1:-1, 1:-1]
    n, m = h - 2, w - 2
    if n <= 0 or m <= 0:
        return np.floor(clip_to(dst, 255.0))
    lam = ((2.0 * np.cos(np.pi * np.arange(1, n + 1) / (n + 1)) - 2.0)[:, None]
           + (2.0 * np.cos(np.pi * np.arange(1, m + 1) / (m + 1)) - 2.0)[None, :]).astype(np.float32)
    # channel planes first: the same transforms over (rows, columns) of each channel, run on contiguous
    # lines (up to twice as fast as over a last axis of 3)
    f = scipy.fft.dstn(np.stack(cv2.split(rhs)), type=1, axes=(1, 2), workers=1)
    f /= lam
    out = dst.copy()
    out[1:-1, 1:-1] += cv2.merge(list(scipy.fft.idstn(f, type=1, axes=(1, 2), workers=1)))
    return np.floor(clip_to(out, 255.0, out=out), out=out)


def _poisson(canvas, logo_rgb, alpha, roi, params):
    H, W = canvas.shape[:2]
    pad = params.poisson_pad_px
    crop = _expand(roi, pad + 2, H, W)
    cy0, cx0, cy1, cx1 = crop
    dst = canvas[cy0:cy1, cx0:cx1]
    a = _in_crop(roi, crop, alpha, 0.0)
    foot = (a > ALPHA_EPS).astype(np.uint8)
    mask = cv2.dilate(foot, _disc(pad))
    band = (mask - foot).astype(np.uint8)  # dilated minus footprint: never empty
    surround = np.float32(cv2.mean(dst, mask=band)[:3])
    a3 = cv2.merge([a, a, a])
    src = surround * (1.0 - a3) + _in_crop(roi, crop, logo_rgb, 0.0) * a3
    q8 = lambda x: np.floor(clip_to(x + np.float32(0.5), 255.0))  # noqa: E731  (the 8-bit images OpenCV's clone reads)
    bx, by, bw, bh = cv2.boundingRect(mask)
    rect = (slice(by, by + bh), slice(bx, bx + bw))
    src8, dst8 = q8(src[rect]), q8(dst[rect])
    fields = _mixed_fields(src8, dst8, mask[rect])  # the clone's gradients, and the mixed guard's
    mixed = params.poisson_mixed and _logo_share(fields) >= MIXED_KEEP
    out = _seamless_clone(src8, dst8, mask[rect], mixed, fields)
    if not mixed:
        # The flat surround has no detail, so the solver fills the band around the logo with a smooth
        # membrane: the background's texture and noise would stop short of the logo. Its fine detail
        # goes back there (not within POISSON_EDGE_PX of the footprint, where the logo's edge is).
        d = dst[by:by + bh, bx:bx + bw]
        k = 2 * int(math.ceil(3 * POISSON_DETAIL_SIGMA)) + 1
        fine = lambda x: x - cv2.GaussianBlur(x, (k, k), POISSON_DETAIL_SIGMA)  # noqa: E731
        near = cv2.dilate(a[by:by + bh, bx:bx + bw], _disc(POISSON_EDGE_PX))
        w = clip_to(1.0 - near, 1.0) * mask[by:by + bh, bx:bx + bw]
        out += (fine(d) - fine(out)) * cv2.merge([w, w, w])
    canvas[cy0 + by:cy0 + by + bh, cx0 + bx:cx0 + bx + bw] = clip_to(out, 255.0, out=out)


def _pyramid_blend_delta(delta, mask, levels):
    """The Laplacian-pyramid blend of fg = bg + delta with bg, minus bg. The pyramids are linear, so
    G(m) L(fg) + (1 - G(m)) L(bg) = L(bg) + G(m) L(delta): only delta's pyramid is needed."""
    masks, laps, d = [mask], [], delta
    for _ in range(levels):
        down = cv2.pyrDown(d)
        laps.append(d - cv2.pyrUp(down, dstsize=(d.shape[1], d.shape[0])))
        masks.append(cv2.pyrDown(masks[-1]))
        d = down
    m = masks[levels]
    out = d * cv2.merge([m, m, m])
    for k in range(levels - 1, -1, -1):
        m = masks[k]
        out = cv2.pyrUp(out, dstsize=(m.shape[1], m.shape[0])) + laps[k] * cv2.merge([m, m, m])
    return out


def _laplacian(canvas, logo_rgb, alpha, roi, levels):
    H, W = canvas.shape[:2]
    crop = _expand(roi, 2 ** (levels + 1), H, W)
    cy0, cx0, cy1, cx1 = crop
    y0, x0, y1, x1 = roi
    bg = canvas[cy0:cy1, cx0:cx1]
    a = _in_crop(roi, crop, alpha, 0.0)
    delta = np.zeros(bg.shape, np.float32)  # hard composite - background: zero off the footprint
    delta[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0] = (logo_rgb - canvas[y0:y1, x0:x1]) * cv2.merge([alpha] * 3)
    canvas[cy0:cy1, cx0:cx1] = clip_to(bg + _pyramid_blend_delta(delta, a, levels), 255.0)


# ---------------------------------------------------------------- blend

def blend(canvas: np.ndarray, logo_rgb: np.ndarray, alpha: np.ndarray, roi, params: BlendParams,
          inplace: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Blends the logo (ROI-sized `logo_rgb`, `alpha`) into `canvas` (float32 (H, W, 3), 0..255) at
    roi = (y0, x0, y1, x1). Returns (canvas, effective opacity of the logo in the ROI, float32 (h, w)).
    The input canvas is copied unless `inplace`."""
    y0, x0, y1, x1 = _check(canvas, logo_rgb, alpha, roi, params)
    out = canvas if inplace else canvas.copy()
    roi = (y0, x0, y1, x1)
    mode = effective_mode(canvas.shape, alpha, roi, params)
    if mode in ("hard", "feather"):
        if mode == "feather":
            H, W = canvas.shape[:2]
            border = (y0 == 0, x0 == 0, y1 == H, x1 == W)
            a = _capped_feather(alpha, params.feather_radius, border)[1]
        else:
            a = (alpha >= 0.5).astype(np.float32) if params.hard_binary else clip_to(alpha, 1.0)
        region = out[y0:y1, x0:x1]
        region += (logo_rgb - region) * cv2.merge([a, a, a])
        return out, a
    if mode == "poisson":
        _poisson(out, logo_rgb, alpha, roi, params)
    else:
        _laplacian(out, logo_rgb, alpha, roi, params.laplacian_levels)
    return out, clip_to(alpha, 1.0).astype(np.float32)
