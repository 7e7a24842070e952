"""Recognisability gate: would a person read this pasted logo as the logo?

`score` measures one object in the final composite; `GateScores.reasons(cfg)` compares the
scores with the thresholds of a `GateConfig`. An object that fails is re-drawn by the caller
(in the same colourway and size) and never emitted as a label; the scores of emitted objects
go into the params record, and the reasons of the rejected draws into its "rejected" counts.

- ``visible_fraction``: pixels with visible opacity >= 0.5 (after every later occluder,
  distractor or logo) over pixels with pasted opacity >= 0.5. Default minimum 0.6.
- ``size_px``: the shorter side, in pixels, of the box of the visible pixels. Default minimum 16.
- ``contrast``: how well the logo's outline stands out from what surrounds it. At every visible
  pixel on the boundary of the visible region, the mean CIELAB colour of the logo pixels and of
  the non-logo pixels inside a window of (2 ``ring_px`` + 1)^2 around it are compared
  (Euclidean distance / 100: 0.05 is a delta-E of 5); the score is the mean over boundary
  points. Default minimum 0.02: only a logo whose outline vanishes fails here; a logo with a
  pale rim on a pale wall but a strong inner pattern (a BMW roundel, a Starbucks badge) is read
  by its pattern, which ``legibility`` judges.
- ``match``: how much of the artwork's structure the composite shows, at the rendered
  resolution. The composite is warped back onto the logo's frame with inv(H) at the size the
  logo was pasted at (at most ``MAX_WORK_SIDE`` = 160 px), with ``MARGIN_PX`` around it. The reference
  is the artwork in the colourway in use, reduced to that size and drawn over an estimate of
  what lies under it (a normalised blur of the composite's pixels outside the logo), so that its
  outline is predicted as well as its inner pattern. Both are smoothed (``GRAD_SIGMA`` px) and
  differentiated (Sobel) in the three CIELAB channels. In the outline band (within ``BAND_PX``
  of the silhouette) and in the interior, r is the normalised correlation of the two gradient
  fields (the larger of all three channels' and of lightness alone, so a relit or desaturated
  logo keeps its score; unsigned, since an outline steps up or down with the surround); the
  score is the mean of the two r^2 (the share of the artwork's structure the composite
  explains), or the band's alone when the interior holds under ``INTERIOR_SHARE`` of the
  reference's gradient energy (a flat shape). Pixels near a covered part of the logo and outside
  the canvas are left out. Shading, colour casts and glare change slowly and hardly move
  gradients; mild blur, noise and JPEG cost a little (0.85-0.95); a filled silhouette of an
  artwork with an inner pattern scores at most 0.5 (its interior explains nothing), a
  blurred-away, washed-out or different pattern scores low. Default minimum 0.6.
- ``detail_px``: the paste's scale times the artwork's ``fine_width_px``, defined from its
  readable width: the narrowest width at which the artwork, reduced to it and enlarged back,
  keeps ``RETAIN`` of the structure it shows at ``READ_RATIO`` times that width; that width
  gives a detail_px of 2. Default minimum 2: a paste narrower than the readable width fails.
  (FlickrLogos-27 artwork: readable widths from about 10 px for Apple's silhouette, 20-30 px
  for bold word marks such as intel, FedEx, DHL, PUMA, to 53 px for Starbucks and BMW and 76 px
  for MINI's thin wings.)
- ``edge_contrast``: the median, over the reference's edges (centre lines of gradients at
  least ``EDGE_FRACTION`` of its strongest), of the composite's CIELAB distance / 100 between
  the two sides of the edge (``EDGE_STEP_PX`` either side): the contrast a reader sees across
  the artwork's outline and inner pattern alike.
- ``legibility``: ``edge_contrast`` x min(``detail_px``, ``DETAIL_CAP_PX``). Size and contrast
  trade against each other for a reader: a large logo is read at low contrast, a small one needs
  a strong one; beyond ``DETAIL_CAP_PX`` size no longer helps. Default minimum 0.4: delta-E 20
  at the readable width (detail 2 px), delta-E 10 at 4 px, delta-E 7 from 6 px up.

`colourway_identity` scores, once per logo and colourway, how much of the original artwork's
structure a colourway keeps (white, black, a plate: a silhouette): a disc whose identity is
in its inner pattern, drawn white, keeps only its outline. A colourway under
``min_colourway_identity`` is refused when an engine starts (synth.logo_bank), rather than
drawn and rejected, which would shift the colourway mix the config asks for.

The work is done on the region of interest given by H's projection of the logo's corners.
`prepare_logo` computes a logo's CIELAB pyramid and fine-structure width once. The structure
comparison itself (gradients, the band/interior score, `fine_width`, `colourway_identity`, and the
constants in ``double backquotes`` above that are not defined here) lives in synth.structure.
`check_thresholds_feasible` refuses thresholds that no placement can meet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from synth.boxes import VISIBLE_ALPHA
from synth.errors import ConfigError, InputImageError
from synth.pixels import channel_sum
from synth.structure import (BAND_PX, MARGIN_PX, MAX_WORK_SIDE, MID_GREY, check_logo, colourway_identity,  # noqa: F401
                             fine_width, gradients, lab_alpha, over, band_and_interior, structure_score)

RING_PX = 4
SURROUND_SIGMA_FRAC = 0.15  # the surround's fill-in blur, x the working logo's longer side
DETAIL_SIDE = 512  # the fine-structure width is measured on a level at most this long
DETAIL_CAP_PX = 6.0  # legibility counts detail up to this size: larger does not help a reader more
EDGE_FRACTION = 0.3  # edge pixels of the reference: at least this x its strongest gradient
MAX_EDGE_SAMPLES = 3000  # edge pixels read by edge_contrast, at most
EDGE_STEP_PX = 1.0  # px either side of an edge where the composite is read
_LOWPASS_SIDE = 32  # the surround's fill-in runs on a grid of at most this longer side
_LAB8_UNITS = np.array([100.0 / 255.0, 1.0, 1.0])  # OpenCV's 8-bit Lab (L x 2.55, a, b + 128) to CIELAB units
# the same per 8-bit value, as a cv2.LUT table: float32(v) x float32(100 / 255), v - 128, v - 128
_LAB8_TABLE = cv2.merge([np.arange(256, dtype=np.float32) * np.float32(_LAB8_UNITS[0]),
                         np.arange(256, dtype=np.float32) - np.float32(128.0),
                         np.arange(256, dtype=np.float32) - np.float32(128.0)]).reshape(256, 1, 3)


@dataclass(frozen=True)
class GateConfig:
    min_visible_fraction: float = 0.6
    min_size_px: float = 16.0
    min_contrast: float = 0.02
    min_match: float = 0.6
    min_detail_px: float = 2.0
    min_legibility: float = 0.4
    min_colourway_identity: float = 0.55

    def __post_init__(self):
        limits = {"min_visible_fraction": (0.0, 1.0), "min_size_px": (0.0, 1e5),
                  "min_contrast": (0.0, 2.0), "min_match": (-1.0, 1.0), "min_detail_px": (0.0, 1e4),
                  "min_legibility": (0.0, 1e4), "min_colourway_identity": (-1.0, 1.0)}
        for name, (lo, hi) in limits.items():
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi):
                raise ConfigError(f"gate {name} {v!r} must be a number in [{lo:g}, {hi:g}]")


SCORED = ("visible_fraction", "size_px", "contrast", "match", "detail_px", "legibility")


@dataclass(frozen=True)
class GateScores:
    visible_fraction: float
    size_px: float
    contrast: float
    match: float
    detail_px: float = 0.0
    edge_contrast: float = 0.0
    legibility: float = 0.0

    def reasons(self, cfg: GateConfig) -> list[str]:
        """One line per failed threshold, naming it; empty when the object passes."""
        out = []
        for name in SCORED:
            value, limit = getattr(self, name), getattr(cfg, "min_" + name)
            if not value >= limit:
                out.append(f"min_{name}: {name} {value:.3g} < {limit:g}")
        return out

    def passes(self, cfg: GateConfig) -> bool:
        return not self.reasons(cfg)


ZERO = GateScores(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class PreparedLogo:
    """A logo's CIELAB colours and opacity at 1, 1/2, 1/4, ... of its size, down to 16 px, and the
    width of its finest structure; made once per logo by `prepare_logo`, so `score` never reduces
    a big logo. The colours are reduced in sRGB (as the paste is), then converted."""
    shape: tuple  # (h, w) of the original logo
    colour_levels: tuple  # (lab_alpha, ...): float32 HxWx4, CIELAB (L in 0..100) and alpha in [0, 1]
    fine_width_px: float  # the artwork's finest structure, in px of the original (see `fine_width`)


def prepare_logo(logo_rgba: np.ndarray) -> PreparedLogo:
    check_logo(logo_rgba, "gate: logo")
    rgb = logo_rgba[..., :3].astype(np.float32) * np.float32(1.0 / 255.0)
    alpha = logo_rgba[..., 3].astype(np.float32) * np.float32(1.0 / 255.0)
    colours = [lab_alpha(rgb, alpha)]
    while min(rgb.shape[:2]) >= 32:
        h, w = rgb.shape[:2]
        rgb = cv2.resize(rgb, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        colours.append(lab_alpha(rgb, alpha))
    k = next((i for i, c in enumerate(colours) if max(c.shape[:2]) <= DETAIL_SIDE), len(colours) - 1)
    fine = fine_width(colours[k]) * logo_rgba.shape[1] / colours[k].shape[1]
    return PreparedLogo(tuple(logo_rgba.shape[:2]), tuple(colours), float(fine))


def _det3(m: np.ndarray) -> float:
    return float(m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1])
                 - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0])
                 + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]))


def _check_inputs(H, composite_rgb, visible_alpha, pasted_alpha) -> np.ndarray:
    if not (isinstance(composite_rgb, np.ndarray) and composite_rgb.dtype == np.uint8
            and composite_rgb.ndim == 3 and composite_rgb.shape[2] == 3):
        raise InputImageError(f"gate.score: composite must be RGB uint8 HxWx3, got shape "
                              f"{getattr(composite_rgb, 'shape', None)}")
    for what, a in (("visible_alpha", visible_alpha), ("pasted_alpha", pasted_alpha)):
        if getattr(a, "shape", None) != composite_rgb.shape[:2]:
            raise InputImageError(f"gate.score: {what} has shape {getattr(a, 'shape', None)}; it must be the "
                                  f"composite's height x width {composite_rgb.shape[:2]}")
    H = np.asarray(H, np.float64)
    if H.shape != (3, 3) or not np.all(np.isfinite(H)) or abs(_det3(H)) < 1e-12:
        raise InputImageError(f"gate.score: H must be an invertible 3x3 homography, got {H.tolist()}")
    return H


def _project(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ H.T
    if np.any(p[:, 2] <= 1e-12):
        raise InputImageError(f"gate.score: H {H.tolist()} maps a logo corner to or behind the horizon "
                              "(w <= 0); it is not a paste of the whole logo")
    return p[:, :2] / p[:, 2:3]


def _window_sums(integral: np.ndarray, ys: np.ndarray, xs: np.ndarray, r: int) -> np.ndarray:
    """Sums over the (2r+1)^2 windows centred on (ys, xs), clipped to the image, from cv2.integral."""
    h, w = integral.shape[0] - 1, integral.shape[1] - 1
    ya, yb = np.maximum(ys - r, 0) * (w + 1), np.minimum(ys + r + 1, h) * (w + 1)
    xa, xb = np.maximum(xs - r, 0), np.minimum(xs + r + 1, w)
    # rows of the flattened table (one take per corner; 2-D fancy indexing is several times slower)
    flat = integral.reshape((h + 1) * (w + 1), -1) if integral.ndim == 3 else integral.ravel()
    return (flat.take(yb + xb, axis=0) - flat.take(ya + xb, axis=0) - flat.take(yb + xa, axis=0)
            + flat.take(ya + xa, axis=0))


def _contrast(lab: np.ndarray, vis: np.ndarray, ring_px: int) -> float:
    eroded = cv2.erode(vis.view(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    ys, xs = np.nonzero(vis & ~eroded.view(bool))  # boundary of the visible region
    if ys.size == 0:
        return 0.0
    inside = vis.view(np.uint8)
    lab_in = cv2.bitwise_and(lab, lab, mask=inside)  # logo pixels' colours, 0 elsewhere
    n_in = _window_sums(cv2.integral(inside), ys, xs, ring_px).astype(np.float64)
    n_all = ((np.minimum(ys + ring_px + 1, vis.shape[0]) - np.maximum(ys - ring_px, 0))
             * (np.minimum(xs + ring_px + 1, vis.shape[1]) - np.maximum(xs - ring_px, 0)))
    n_out = n_all - n_in
    keep = n_out >= 2 * ring_px + 1  # at least a window's side of surroundings
    if not keep.any():
        return 0.0
    ys, xs, n_in, n_out = ys[keep], xs[keep], n_in[keep], n_out[keep]
    s_in = _window_sums(cv2.integral(lab_in), ys, xs, ring_px)
    s_all = _window_sums(cv2.integral(lab), ys, xs, ring_px)
    diff = s_in / n_in[:, None] - (s_all - s_in) / n_out[:, None]
    diff *= _LAB8_UNITS
    return float(np.sqrt(channel_sum(diff * diff)).mean() / 100.0)


def _fill_in(lab: np.ndarray, known: np.ndarray) -> np.ndarray:
    """`lab` where `known`, elsewhere a normalised blur of the known pixels (blur(x * known) /
    blur(known)), on a grid whose longer side is at most _LOWPASS_SIDE: what lies under the logo,
    guessed from around it. All unknown: the mean grey."""
    h, w = known.shape
    if not known.any():
        return np.full(lab.shape, MID_GREY, np.float32)
    q = max(1, -(-max(h, w) // _LOWPASS_SIDE))
    hs, ws = -(-h // q), -(-w // q)
    k = known.astype(np.float32)
    stack = cv2.merge([lab[..., 0] * k, lab[..., 1] * k, lab[..., 2] * k, k])
    stack = cv2.copyMakeBorder(stack, 0, hs * q - h, 0, ws * q - w, cv2.BORDER_CONSTANT, value=0)
    small = cv2.resize(stack, (ws, hs), interpolation=cv2.INTER_AREA)
    sigma = max(1.0, SURROUND_SIGMA_FRAC * max(h, w) / q)
    small = cv2.GaussianBlur(small, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    den = np.maximum(small[..., 3:4], 1e-6)
    filled = small[..., :3] / den
    if small[..., 3].max() < 1e-4:  # too far from any known pixel for the blur: the known mean
        filled[...] = lab[known].mean(axis=0)
    filled = np.ascontiguousarray(cv2.resize(filled, (ws * q, hs * q), interpolation=cv2.INTER_LINEAR)[:h, :w])
    return cv2.copyTo(lab, known.view(np.uint8), filled)  # lab where known (np.where, per pixel)


def _working(logo: PreparedLogo, quad_area: float):
    """The logo's colour level at the rendered size (at most MAX_WORK_SIDE): HxWx4 CIELAB + alpha."""
    lh, lw = logo.shape
    s = min(1.0, math.sqrt(max(quad_area, 1.0) / (lh * lw)), MAX_WORK_SIDE / max(lh, lw))
    wh, ww = max(2, int(round(lh * s))), max(2, int(round(lw * s)))
    k = next(i for i in reversed(range(len(logo.colour_levels)))
             if logo.colour_levels[i].shape[0] >= wh and logo.colour_levels[i].shape[1] >= ww)
    colour = logo.colour_levels[k]
    if colour.shape[:2] != (wh, ww):
        colour = cv2.resize(colour, (ww, wh), interpolation=cv2.INTER_AREA)
    return colour


def _match(logo: PreparedLogo, H_roi, lab_roi, vis_roi, quad_area) -> float:
    colour = _working(logo, quad_area)
    wh, ww = colour.shape[:2]
    lh, lw = logo.shape
    m = MARGIN_PX
    # Output pixel -> working logo pixel -> logo pixel -> roi pixel, in cv2's convention (integer
    # coordinates at pixel centres), the one H has when it pasted the logo with warpPerspective.
    sx, sy = lw / ww, lh / wh  # as cv2.resize maps centres: x = (u + 0.5) * sx - 0.5
    S_c = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    T = np.array([[1.0, 0.0, -m], [0.0, 1.0, -m], [0.0, 0.0, 1.0]])
    M = H_roi @ S_c @ T
    size = (ww + 2 * m, wh + 2 * m)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    back = cv2.LUT(cv2.warpPerspective(lab_roi, M, size, flags=flags, borderMode=cv2.BORDER_REPLICATE), _LAB8_TABLE)
    vis_back = cv2.warpPerspective(vis_roi, M, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    valid = cv2.warpPerspective(np.ones(lab_roi.shape[:2], np.uint8), M, size,
                                flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=0)
    alpha = np.zeros((wh + 2 * m, ww + 2 * m), np.float32)
    alpha[m:m + wh, m:m + ww] = colour[..., 3]
    ref = np.zeros((wh + 2 * m, ww + 2 * m, 4), np.float32)
    ref[m:m + wh, m:m + ww] = colour
    opaque = alpha >= VISIBLE_ALPHA
    covered = opaque & (vis_back < VISIBLE_ALPHA) & (valid > 0)
    reach = np.ones((2 * BAND_PX + 3, 2 * BAND_PX + 3), np.uint8)
    near_covered = cv2.dilate(covered.view(np.uint8), reach).view(bool)
    inside_canvas = cv2.erode(valid, reach, borderType=cv2.BORDER_CONSTANT, borderValue=0).view(bool)
    keep = inside_canvas & ~near_covered
    surround = (alpha < 0.02) & (valid > 0)
    under = _fill_in(back, surround)
    predicted = over(ref, under)
    ref_g = gradients(predicted)
    regions = band_and_interior(alpha, keep)
    return structure_score(ref_g, gradients(back), regions), _edge_contrast(ref_g, back, regions[0] | regions[1])


def _edge_contrast(ref_g, back: np.ndarray, keep: np.ndarray) -> float:
    """The median, over the reference's edge pixels in `keep` (gradient magnitude at least
    EDGE_FRACTION of its maximum there), of the CIELAB distance / 100 between the composite
    EDGE_STEP_PX to either side of the pixel across the edge (the structure tensor's direction):
    the contrast a person sees across the artwork's edges, outline and inner pattern alike."""
    gx, gy = ref_g
    jxx = channel_sum(gx * gx)
    jyy = channel_sum(gy * gy)
    jxy = channel_sum(gx * gy)
    mag = np.sqrt(jxx + jyy)
    if np.count_nonzero(keep) < 4:
        return 0.0
    top = float(mag[keep].max())
    if top < 0.5:  # under half a delta-E per px: the reference has no edges here
        return 0.0
    ys, xs = np.nonzero(keep & (mag >= EDGE_FRACTION * top))
    if ys.size > MAX_EDGE_SAMPLES:  # a median needs no more: an even stride over them
        step = -(-ys.size // MAX_EDGE_SAMPLES)
        ys, xs = ys[::step], xs[::step]
    at = ys * mag.shape[1] + xs  # flat positions: take is faster than 2-D fancy indexing
    theta = 0.5 * np.arctan2(2.0 * jxy.ravel().take(at), jxx.ravel().take(at) - jyy.ravel().take(at))
    cx, cy = np.cos(theta), np.sin(theta)
    # the edges' centre lines: pixels whose magnitude is not below either neighbour across the edge
    nb = cv2.remap(mag, np.stack([xs + cx, xs - cx]).astype(np.float32),
                   np.stack([ys + cy, ys - cy]).astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    ridge = mag.ravel().take(at) >= nb.max(axis=0)
    if not ridge.any():
        return 0.0
    xs, ys, cx, cy = xs[ridge], ys[ridge], cx[ridge] * EDGE_STEP_PX, cy[ridge] * EDGE_STEP_PX
    sides = cv2.remap(back, np.stack([xs + cx, xs - cx]).astype(np.float32),
                      np.stack([ys + cy, ys - cy]).astype(np.float32), cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
    step = np.sqrt(channel_sum((sides[0] - sides[1]) ** 2))
    return float(np.median(step)) / 100.0


def _roi(logo_hw, H, canvas_hw, ring_px):
    """(the logo's corners projected by H, (y0, x0, y1, x1) canvas region `score` reads)."""
    lh, lw = logo_hw
    corners = np.array([[0, 0], [lw, 0], [lw, lh], [0, lh]], np.float64) - 0.5
    quad = _project(H, corners)
    pad = ring_px + 2
    ch, cw = canvas_hw
    x0 = max(0, int(math.floor(quad[:, 0].min())) - pad)
    y0 = max(0, int(math.floor(quad[:, 1].min())) - pad)
    x1 = min(cw, int(math.ceil(quad[:, 0].max())) + pad)
    y1 = min(ch, int(math.ceil(quad[:, 1].max())) + pad)
    return quad, (y0, x0, y1, x1)


def score_region(logo, H, canvas_hw, ring_px: int = RING_PX) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1): the only canvas pixels (of the composite and of both opacities) that
    `score` reads for this paste; a caller may reuse a score while they are unchanged."""
    shape = logo.shape if isinstance(logo, PreparedLogo) else logo.shape[:2]
    return _roi(shape, np.asarray(H, np.float64), canvas_hw, ring_px)[1]


def score(logo, H, composite_rgb: np.ndarray, visible_alpha: np.ndarray,
          pasted_alpha: np.ndarray, ring_px: int = RING_PX) -> GateScores:
    """Scores one pasted logo. H maps logo pixel (x, y, 1) to canvas pixel coordinates, in the
    convention of cv2.warpPerspective(logo, H, ...) (integer coordinates at pixel centres);
    visible_alpha / pasted_alpha are this logo's full-canvas opacity after / before later layers.
    `logo` is the RGBA logo as pasted (after its colourway), or `prepare_logo(logo)` of it (faster
    when one logo is scored many times)."""
    logo = logo if isinstance(logo, PreparedLogo) else prepare_logo(logo)
    H = _check_inputs(H, composite_rgb, visible_alpha, pasted_alpha)
    quad, (y0, x0, y1, x1) = _roi(logo.shape, H, composite_rgb.shape[:2], ring_px)
    if x1 <= x0 or y1 <= y0:
        return ZERO
    pasted = pasted_alpha[y0:y1, x0:x1] >= VISIBLE_ALPHA
    n_pasted = int(np.count_nonzero(pasted))
    vis_roi = np.ascontiguousarray(visible_alpha[y0:y1, x0:x1], dtype=np.float32)
    vis = vis_roi >= VISIBLE_ALPHA
    n_vis = int(np.count_nonzero(vis))
    if n_pasted == 0 or n_vis == 0:
        return ZERO
    rows, cols = np.flatnonzero(vis.any(axis=1)), np.flatnonzero(vis.any(axis=0))
    size_px = float(min(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1))
    rgb = np.ascontiguousarray(composite_rgb[y0:y1, x0:x1])
    # per-pixel conversions on the ROI as one row: OpenCV's row-by-row path is several times slower on
    # narrow images
    lab = cv2.cvtColor(rgb.reshape(1, -1, 3), cv2.COLOR_RGB2Lab).reshape(rgb.shape)
    contrast = _contrast(lab, vis, ring_px)
    H_roi = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]]) @ H
    qx, qy = quad[:, 0], quad[:, 1]
    area = 0.5 * abs(float(np.dot(qx, np.roll(qy, -1)) - np.dot(qy, np.roll(qx, -1))))
    match, edge = _match(logo, H_roi, lab, vis_roi, area)
    detail = logo.fine_width_px * math.sqrt(area / (logo.shape[0] * logo.shape[1]))
    return GateScores(round(n_vis / n_pasted, 6), size_px, round(contrast, 6), round(match, 6),
                      round(detail, 4), round(edge, 6), round(edge * min(detail, DETAIL_CAP_PX), 6))


def readable_side_px(logo: PreparedLogo, cfg: GateConfig) -> float:
    """The shorter side, in px, below which a paste of `logo` (frontal) cannot reach
    cfg.min_detail_px: its finest structure would be thinner than that."""
    return cfg.min_detail_px * min(logo.shape) / max(logo.fine_width_px, 1e-6)


def check_thresholds_feasible(cfg: GateConfig, logo_hw, out_hw, max_scale: float,
                              occluded_fraction=None) -> None:
    """Raises ConfigError, naming the threshold, when no placement can meet `cfg`.

    `max_scale` is the placement's largest logo width as a share of the canvas's shorter
    side (as in synth.composite); `occluded_fraction` the occlusion config's (low, high)."""
    lh, lw = (int(v) for v in logo_hw)
    out_h, out_w = (int(v) for v in out_hw)
    if min(lh, lw, out_h, out_w) <= 0 or not (max_scale > 0):
        raise ConfigError(f"check_thresholds_feasible: logo size {tuple(logo_hw)}, canvas size {tuple(out_hw)} "
                          f"and max_scale {max_scale!r} must be positive")
    if cfg.min_size_px > min(out_h, out_w):
        raise ConfigError(f"gate min_size_px {cfg.min_size_px:g} is larger than the canvas's shorter side "
                          f"{min(out_h, out_w)} (image_size {out_h}x{out_w}); no logo can be that large")
    w = min(out_h, out_w) * max_scale  # the largest paste, fitted like synth.composite does
    h = w * lh / lw
    f = min(1.0, out_h / h, out_w / w)
    largest = min(w * f, h * f)
    if cfg.min_size_px > largest:
        raise ConfigError(f"gate min_size_px {cfg.min_size_px:g} is larger than the largest logo the placement "
                          f"allows ({largest:.1f} px on its shorter side at max_scale {max_scale:g} for a "
                          f"{lh}x{lw} logo on {out_h}x{out_w}); lower min_size_px or raise max_scale")
    if occluded_fraction is not None:
        lo = float(occluded_fraction[0])
        if 1.0 - lo < cfg.min_visible_fraction:
            raise ConfigError(f"gate min_visible_fraction {cfg.min_visible_fraction:g} cannot be met by any "
                              f"occluded object: occlusion occluded_fraction starts at {lo:g}, leaving at most "
                              f"{1.0 - lo:.2f} visible; lower one of them")


def shifted_matches(prepared, H, canvas, visible, pasted, shifts) -> np.ndarray:
    """The gate's `match` with the homography `H` moved by (dx, dy) px on the canvas, for every dx
    and dy in `shifts`: grid[iy, ix]. Where it peaks says whether the reference lies where the
    compositor put the logo (bench/gate_shift.py)."""
    grid = np.zeros((len(shifts), len(shifts)))
    for iy, dy in enumerate(shifts):
        for ix, dx in enumerate(shifts):
            T = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])
            grid[iy, ix] = score(prepared, T @ H, canvas, visible, pasted).match
    return grid


def grid_peak(grid: np.ndarray, shifts) -> tuple[float, float]:
    """(dx, dy) of the maximum of shifted_matches' grid, refined to sub-pixel by a parabola through
    it and its neighbours along each axis (the grid point itself at an edge or a flat top)."""
    shifts = np.asarray(shifts, np.float64)
    iy, ix = np.unravel_index(int(np.argmax(grid)), grid.shape)

    def refine(v, i):
        if 0 < i < len(v) - 1:
            den = v[i - 1] - 2 * v[i] + v[i + 1]
            if den < 0:
                return float(shifts[i] + 0.5 * (v[i - 1] - v[i + 1]) / den * (shifts[1] - shifts[0]))
        return float(shifts[i])

    return refine(grid[iy, :], ix), refine(grid[:, ix], iy)
