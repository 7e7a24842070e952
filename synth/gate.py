"""Recognisability gate: is a pasted logo still something a person would recognise?

`score` measures four things for one object; `GateScores.passes(cfg)` compares them with
the thresholds of a `GateConfig`. An object that fails is re-sampled by the caller and
never emitted as a label; the scores of emitted objects go into the manifest.

- ``visible_fraction``: pixels with visible opacity >= 0.5 (after every later occluder,
  distractor or logo) over pixels with pasted opacity >= 0.5. Default minimum 0.6.
- ``size_px``: the shorter side, in pixels, of the box of the visible pixels. Default
  minimum 16 (SynthText keeps characters of 8 px and more; a logo needs more detail).
- ``contrast``: how well the logo's silhouette stands out from what surrounds it in the
  composite. At every visible pixel on the boundary of the visible region, the mean
  CIELAB colour of the logo pixels and of the non-logo pixels inside a window of
  (2 ``ring_px`` + 1)^2 around it are compared (Euclidean distance, divided by 100, so
  0.05 is a delta-E of 5, a difference most people see at a glance); the score is the
  mean over boundary points. Local windows make it work on textured backgrounds, where
  a global inside/outside mean can cancel out; colour (not only grey) keeps a red logo on
  an equally bright green wall visible. Boundary points at the canvas edge have no
  outside pixels and are skipped. Default minimum 0.05.
- ``match``: how well the logo's own pattern survives, at about the pasted resolution:
  the composite is warped back to the front with inv(H) (cv2.warpPerspective onto the
  logo's frame) and compared with the logo, both at the pasted size (the logo is first
  reduced to it, at most 256 px on its longer side, so a small paste is not penalised
  for detail it cannot hold), over the pixels that are opaque (alpha >= 0.5) in the logo
  and visible in the composite (the kept pixels). The score is the larger of:

  (a) the normalised cross-correlation (NCC) of grey levels;
  (b) a shading-discounted colour correlation. In each CIELAB channel (L in 0..100, a, b)
      of both images, every kept pixel loses its local mean: a Gaussian low-pass of
      standard deviation ``COLOUR_SIGMA_FRAC`` = 0.08 x the working logo's longer side
      (at least ``COLOUR_MIN_SIGMA`` = 1.5 px) taken over the kept pixels only,
      blur(image * keep) / blur(keep), so occluders and the surround do not leak in (the
      blur runs on a grid reduced so that its longer side is at most 32 px, which a blur
      this wide does not notice). The three residual channels, each minus its mean, are
      stacked and correlated once (one NCC over 3 x the kept pixels). The channels are
      weighed equally in CIELAB units (``LAB_WEIGHTS``): CIELAB is built so that one
      unit of L and one unit of a or b are about equally visible differences (delta-E,
      as ``contrast`` uses), so lightness and hue structure each count by how visible
      they are and neither swamps the other by its numeric range; weighing L less would
      let a paste pass on its hue layout alone, weighing it more would bring back the
      problem below. If the reference's residual is weaker than ``COLOUR_FLAT_RMS`` = 2
      delta-E RMS over the kept pixels (a logo that is itself a smooth gradient: one
      running 60 delta-E corner to corner leaves about 1, where the low-pass lags it
      along the silhouette), it has no pattern here and (b) is 0, so (a) decides.

  Why (b): the light stage multiplies a paste by a smooth shading field and adds glare,
  a low-frequency change whose grey variance can exceed that of a logo with little grey
  contrast. skimage's logo (green and orange halves of nearly the same luminance, grey
  standard deviation 0.063, its identity carried by hue and dark outlines) scored (a) =
  0.07 pasted 105 px wide under strong shading and a glare spot although it aligned
  perfectly, and 0.85 on (b). (b) discards what varies more slowly than the logo's
  detail and sees hue; taking the larger keeps every paste that (a) accepted. A logo
  with almost no grey texture (grey standard deviation under ``FLAT_STD`` = 0.04, e.g.
  the all-white colourway) is matched by its silhouette instead of (a) and (b): its
  match is the grey correlation, over the logo's box plus a 15 % margin, between the
  composite and the logo drawn over the mean grey of that margin, i.e. how well the
  silhouette survives. Default minimum 0.5.

The work is done on the region of interest given by H's projection of the logo's
corners, never the whole canvas. `prepare_logo` computes a logo's grey, opacity and
CIELAB pyramids once, so scoring many pastes of a large logo does not reduce it every
time. `check_thresholds_feasible` refuses thresholds that no placement can meet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from synth.boxes import VISIBLE_ALPHA
from synth.errors import ConfigError, InputImageError

RING_PX = 4
FLAT_STD = 0.04
MAX_WORK_SIDE = 256
COLOUR_SIGMA_FRAC = 0.08  # low-pass sigma of the colour match, x the working logo's longer side
COLOUR_MIN_SIGMA = 1.5  # px, its floor at the working resolution
COLOUR_FLAT_RMS = 2.0  # delta-E: a reference residual weaker than this has no pattern for (b)
LAB_WEIGHTS = (1.0, 1.0, 1.0)  # L, a, b: CIELAB units are about equally visible differences
_LOWPASS_SIDE = 32  # the low-pass runs on a grid of at most this longer side (it is smooth there)
_LAB8_UNITS = np.array([100.0 / 255.0, 1.0, 1.0])  # OpenCV's 8-bit Lab (L x 2.55, a, b + 128) to CIELAB units


@dataclass(frozen=True)
class GateConfig:
    min_visible_fraction: float = 0.6
    min_size_px: float = 16.0
    min_contrast: float = 0.05
    min_match: float = 0.5

    def __post_init__(self):
        limits = {"min_visible_fraction": (0.0, 1.0), "min_size_px": (0.0, 1e5),
                  "min_contrast": (0.0, 2.0), "min_match": (-1.0, 1.0)}
        for name, (lo, hi) in limits.items():
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi):
                raise ConfigError(f"gate {name} {v!r} must be a number in [{lo:g}, {hi:g}]")


@dataclass(frozen=True)
class GateScores:
    visible_fraction: float
    size_px: float
    contrast: float
    match: float

    def reasons(self, cfg: GateConfig) -> list[str]:
        """One line per failed threshold, naming it; empty when the object passes."""
        out = []
        for name, value in (("visible_fraction", self.visible_fraction), ("size_px", self.size_px),
                            ("contrast", self.contrast), ("match", self.match)):
            limit = getattr(cfg, "min_" + name)
            if not value >= limit:
                out.append(f"min_{name}: {name} {value:.3g} < {limit:g}")
        return out

    def passes(self, cfg: GateConfig) -> bool:
        return not self.reasons(cfg)


@dataclass(frozen=True)
class PreparedLogo:
    """A logo's grey levels and opacity (float32 in [0, 1]) and its CIELAB colours at 1, 1/2,
    1/4, ... of its size, down to 16 px; made once per logo by `prepare_logo` so `score` never
    reduces a big logo. The colours are reduced in sRGB (as the paste is), then converted."""
    shape: tuple  # (h, w) of the original logo
    levels: tuple  # ((grey, alpha), ...), level k about 2^-k of the original
    colour_levels: tuple  # (lab_alpha, ...), the same sizes: float32 HxWx4, CIELAB (L in 0..100) and alpha


def prepare_logo(logo_rgba: np.ndarray) -> PreparedLogo:
    if not (isinstance(logo_rgba, np.ndarray) and logo_rgba.dtype == np.uint8 and logo_rgba.ndim == 3
            and logo_rgba.shape[2] == 4 and min(logo_rgba.shape[:2]) > 0):
        raise InputImageError(f"gate: logo must be RGBA uint8 HxWx4, got shape {getattr(logo_rgba, 'shape', None)}")
    grey = cv2.cvtColor(np.ascontiguousarray(logo_rgba[..., :3]), cv2.COLOR_RGB2GRAY)
    level = cv2.merge([grey, np.ascontiguousarray(logo_rgba[..., 3])]).astype(np.float32) * np.float32(1.0 / 255.0)
    rgb = logo_rgba[..., :3].astype(np.float32) * np.float32(1.0 / 255.0)
    levels, colours = [level], [cv2.merge([cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab), level[..., 1]])]
    while min(level.shape[:2]) >= 32:
        h, w = level.shape[:2]
        level = cv2.resize(level, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        rgb = cv2.resize(rgb, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        levels.append(level)
        colours.append(cv2.merge([cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab), level[..., 1]]))
    return PreparedLogo(tuple(logo_rgba.shape[:2]),
                        tuple((np.ascontiguousarray(lv[..., 0]), np.ascontiguousarray(lv[..., 1])) for lv in levels),
                        tuple(colours))


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
    ya, yb = np.maximum(ys - r, 0), np.minimum(ys + r + 1, h)
    xa, xb = np.maximum(xs - r, 0), np.minimum(xs + r + 1, w)
    return integral[yb, xb] - integral[ya, xb] - integral[yb, xa] + integral[ya, xa]


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
    return float(np.sqrt((diff * diff).sum(axis=1)).mean() / 100.0)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 4:
        return 0.0
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-9 else 0.0


def _coarse_blur(img: np.ndarray, sigma: float, q: int) -> np.ndarray:
    """A Gaussian blur of sigma px, zero outside the image, of an HxWxC (C <= 4) float32 image, on a
    grid reduced by the integer factor q (block means of the image zero-padded to a multiple of q);
    `_upsample` brings a result back. A blur of large sigma is smooth, so the grid does not show,
    and the cost no longer grows with sigma."""
    if q > 1:
        h, w = img.shape[:2]
        hs, ws = -(-h // q), -(-w // q)
        img = cv2.copyMakeBorder(img, 0, hs * q - h, 0, ws * q - w, cv2.BORDER_CONSTANT, value=0)
        img = cv2.resize(img, (ws, hs), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(img, (0, 0), sigma / q, borderType=cv2.BORDER_CONSTANT)


def _upsample(img: np.ndarray, q: int, hw) -> np.ndarray:
    if q == 1:
        return img
    hs, ws = img.shape[:2]
    return cv2.resize(img, (ws * q, hs * q), interpolation=cv2.INTER_LINEAR)[:hw[0], :hw[1]]


def _colour_match(ref: np.ndarray, back: np.ndarray, keep: np.ndarray) -> float:
    """Score (b) of `match` (see the module docstring): the correlation of the CIELAB residuals
    left after each image loses its low-pass over the kept pixels; 0 when the reference's residual
    is flat. `ref` is the reference, HxWx4 float32 (CIELAB, alpha); `back` the warped-back
    composite, HxWx3 float32 in OpenCV's 8-bit Lab units (L x 2.55, a and b + 128) and 0 outside
    `keep`. Removing a low-pass and a mean is linear per channel, so back's units are converted
    on the sums at the end. blur(x * keep) / blur(keep) weighs kept values only, so it stays within
    their range even where blur(keep) is tiny. Written with OpenCV's per-pixel arithmetic and few
    full-size temporaries: numpy broadcasting over a last axis of 3 is several times slower."""
    mask = keep.view(np.uint8)
    if cv2.countNonZero(mask) < 4:
        return 0.0
    hw = keep.shape
    sigma = max(COLOUR_MIN_SIGMA, COLOUR_SIGMA_FRAC * max(hw))
    q = -(-max(hw) // _LOWPASS_SIDE)  # the blur's grid: longer side at most _LOWPASS_SIDE
    ref_k = cv2.bitwise_and(ref, ref, mask=mask)
    ref_k[..., 3] = mask  # channel 3 blurred is then blur(keep), the normaliser
    low_ref = _coarse_blur(ref_k, sigma, q)
    den = np.maximum(low_ref[..., 3], np.float32(1e-12))
    den = cv2.merge([den, den, den])
    r_ref = cv2.cvtColor(ref, cv2.COLOR_BGRA2BGR)  # a copy, without alpha
    r_ref -= _upsample(cv2.divide(cv2.cvtColor(low_ref, cv2.COLOR_BGRA2BGR), den), q, hw)
    # per-channel means and second moments over the kept pixels (cv2.mean sums in float64)
    m_ref = np.array(cv2.mean(r_ref, mask)[:3])
    tmp = np.empty_like(r_ref)
    s_rr = np.array(cv2.mean(np.multiply(r_ref, r_ref, out=tmp), mask)[:3])
    w2 = np.square(np.asarray(LAB_WEIGHTS, np.float64))
    var_ref = float(w2 @ (s_rr - m_ref * m_ref))
    if var_ref < COLOUR_FLAT_RMS ** 2:  # no pattern in the reference: the composite is not needed
        return 0.0
    r_back = _upsample(cv2.divide(_coarse_blur(back, sigma, q), den), q, hw)
    np.subtract(back, r_back, out=r_back)
    m_back = np.array(cv2.mean(r_back, mask)[:3])
    s_bb = np.array(cv2.mean(np.multiply(r_back, r_back, out=tmp), mask)[:3])
    s_rb = np.array(cv2.mean(np.multiply(r_ref, r_back, out=tmp), mask)[:3])
    unit = _LAB8_UNITS  # back's units to CIELAB's
    var_back = float((w2 * unit * unit) @ (s_bb - m_back * m_back))
    cov = float((w2 * unit) @ (s_rb - m_ref * m_back))
    return cov / math.sqrt(var_ref * var_back) if var_back > 1e-12 else 0.0


def _match(logo: PreparedLogo, H_roi, grey_roi, lab_roi, vis_roi, quad_area) -> float:
    lh, lw = logo.shape
    s = min(1.0, math.sqrt(max(quad_area, 1.0) / (lh * lw)), MAX_WORK_SIDE / max(lh, lw))
    wh, ww = max(2, int(round(lh * s))), max(2, int(round(lw * s)))
    # The smallest prepared level still at least the working size, reduced the rest of the way
    # (alpha from the colour level: resized with it, it is the same as resized alone).
    k = next(i for i in reversed(range(len(logo.levels)))
             if logo.levels[i][0].shape[0] >= wh and logo.levels[i][0].shape[1] >= ww)
    ref, colour = logo.levels[k][0], logo.colour_levels[k]
    if ref.shape != (wh, ww):
        ref = cv2.resize(ref, (ww, wh), interpolation=cv2.INTER_AREA)
        colour = cv2.resize(colour, (ww, wh), interpolation=cv2.INTER_AREA)
    alpha = colour[..., 3]
    opaque = alpha >= VISIBLE_ALPHA
    if not opaque.any():
        return 0.0
    # Output pixel -> working (reduced) logo pixel -> logo pixel -> roi pixel, in cv2's convention
    # (integer coordinates at pixel centres), the one H has when it pasted the logo with warpPerspective.
    sx, sy = lw / ww, lh / wh  # as cv2.resize maps centres: x = (u + 0.5) * sx - 0.5
    S_c = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    flat = float(ref[opaque].std()) < FLAT_STD
    m = max(2, int(round(0.15 * max(wh, ww)))) if flat else 0
    T = np.array([[1.0, 0.0, -m], [0.0, 1.0, -m], [0.0, 0.0, 1.0]])
    M = H_roi @ S_c @ T
    size = (ww + 2 * m, wh + 2 * m)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    back = cv2.warpPerspective(grey_roi, M, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    vis_back = cv2.warpPerspective(vis_roi, M, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if not flat:
        keep = opaque & (vis_back >= VISIBLE_ALPHA)
        back_lab = cv2.warpPerspective(lab_roi, M, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        back_lab = cv2.bitwise_and(back_lab, back_lab, mask=keep.view(np.uint8)).astype(np.float32)  # masked in 8 bits
        return max(_ncc(ref[keep], back[keep]), _colour_match(colour, back_lab, keep))
    valid = cv2.warpPerspective(np.ones_like(grey_roi), M, size, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.5
    a = np.zeros((wh + 2 * m, ww + 2 * m), np.float32)
    a[m:m + wh, m:m + ww] = alpha
    g = np.zeros_like(a)
    g[m:m + wh, m:m + ww] = ref
    ring = valid & (a < VISIBLE_ALPHA)
    keep = ring | (valid & (a >= VISIBLE_ALPHA) & (vis_back >= VISIBLE_ALPHA))
    if not ring.any():
        return 0.0
    predicted = a * g + (1.0 - a) * float(back[ring].mean())
    return _ncc(predicted[keep], back[keep])


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
        return GateScores(0.0, 0.0, 0.0, 0.0)
    pasted = pasted_alpha[y0:y1, x0:x1] >= VISIBLE_ALPHA
    n_pasted = int(np.count_nonzero(pasted))
    vis_roi = np.ascontiguousarray(visible_alpha[y0:y1, x0:x1], dtype=np.float32)
    vis = vis_roi >= VISIBLE_ALPHA
    n_vis = int(np.count_nonzero(vis))
    if n_pasted == 0 or n_vis == 0:
        return GateScores(0.0, 0.0, 0.0, 0.0)
    rows, cols = np.flatnonzero(vis.any(axis=1)), np.flatnonzero(vis.any(axis=0))
    size_px = float(min(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1))
    rgb = np.ascontiguousarray(composite_rgb[y0:y1, x0:x1])
    # per-pixel conversions on the ROI as one row: OpenCV's row-by-row path is several times slower on
    # narrow images
    lab = cv2.cvtColor(rgb.reshape(1, -1, 3), cv2.COLOR_RGB2Lab).reshape(rgb.shape)
    contrast = _contrast(lab, vis, ring_px)
    grey = cv2.cvtColor(rgb.reshape(1, -1, 3), cv2.COLOR_RGB2GRAY).reshape(rgb.shape[:2]).astype(np.float32) \
        * np.float32(1.0 / 255.0)
    H_roi = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]]) @ H
    qx, qy = quad[:, 0], quad[:, 1]
    area = 0.5 * abs(float(np.dot(qx, np.roll(qy, -1)) - np.dot(qy, np.roll(qx, -1))))
    match = _match(logo, H_roi, grey, lab, vis_roi, area)
    return GateScores(round(n_vis / n_pasted, 6), size_px, round(contrast, 6), round(match, 6))


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
