"""Camera stage of the realism engine: a pasted logo imaged like its surroundings, with the same blur and
the same noise.

Inputs, per object, all for one region of interest (ROI) of the canvas (as in synth.photometric):
  * `logo_rgb`   float32 (h, w, 3) in 0..255, the warped logo colour (undefined where alpha is 0);
  * `alpha`      float32 (h, w) in [0, 1], the warped logo opacity;
  * `canvas_roi` float32 (h, w, 3) in 0..255, the canvas under that ROI BEFORE this logo is pasted.
Give the ROI a margin of at least `context_px` around the footprint (synth.photometric.needed_margin and
pad_roi) so that the context ring lies inside it: blur and noise are read on that ring, and without a
margin it holds only what the ROI has around the footprint (when nothing, nothing is matched).
Call `match_optics` on the logo before blending, on the canvas before the logo's shadow is drawn
(synth.photometric.shadow: its blur is not read from its own shadow), then blend, then `match_sensor` on
the blended composite (the sensor adds its noise to the finished scene, so the noise is matched after
blending has had its effect). `match_camera` does optics and sensor on the logo alone, against the canvas
before the paste.

Local background ("context"): the ROI pixels within `context_px` of the footprint (alpha > 0.01), under and
around it. The readings it builds on (noise_level's estimator, sharpness, the masks) are in synth.measure.

`sample_camera` -> `CameraParams`; optics: `match_optics`, sensor: `match_sensor`; both: `match_camera`:
  * blur (optics): the target is the content sharpness (synth.measure.sharpness) of the ring
    2..context_px px around the footprint, what the logo is seen against (its noise removed); the
    logo (inside, inset 2 px; assumed clean, as artwork is) is blurred by the Gaussian sigma in
    [0, max_blur_sigma], found by a secant search, that brings its sharpness down to it.
    A logo already softer than the context is left as it is (no sharpening), as is any logo on a context
    with no measurable structure (sharpness NaN: a plain, noisy wall says nothing about blur).
  * noise matching (`match_sensor`) reads the noise_level estimator where the signal is flat, on the image
    as it is stored (8 bits: the rounding is part of what any reading of the stored image sees). Background:
    the flat pixels (|r| / 70 under FLAT_TOL = 3 gray levels, or under CLIP_SIGMAS = 3.5 noise sigmas where
    the noise is stronger, so the cut does not truncate it) of the ring 2..context_px px around the
    footprint, in the composite after blending (a plain MAD over the whole context reads texture as
    noise and overshoots). Logo: its inner pixels where the artwork as drawn is flat. The noise the
    logo lacks is added in proportion to the logo's share of each pixel, as a
    shared (luminance) part plus an independent per-channel part split as the background's, with its
    scale found by simulating the reading (regula falsi): at the sub-gray-level noise of everyday photos
    8-bit rounding alone reads as noise on a smooth ramp, so adding the whole estimated variance would
    count it twice. A logo whose own artwork already reads noisier is left as it is. Its pixels come from a
    generator seeded with `noise_seed`, drawn once in `sample_camera`, so matching is deterministic.
  * motion blur (optional): a line kernel of `motion_length` px at `motion_angle` degrees, on the logo only
    (as Cut-Paste-Learn's motion-blur mode), applied after the sharpness blur and before the noise.
  * blurs are normalised convolutions weighted by alpha, so the logo's edge never mixes with the undefined
    colour outside it; `match_camera_rgba` also returns the alpha blurred the same way.
  * the composite's JPEG quality is not this stage's: it is drawn once per composite (the config's
    realism.camera.jpeg_quality_min/max) and recorded as synth.scene.SceneParams.jpeg_quality.

Every effect has an on/off switch in `CameraConfig`; with all switches off the stage is the identity.
`sample_camera` draws the same numbers in the same order whatever the switches, so turning one effect off
does not change the others' draws.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.special import ndtri

from synth.errors import check_field_int as _check_int, check_field_number as _check_value, \
    check_field_pair as _check_range
from synth.measure import (ALPHA_EPS, HP, HP_NORM, LUMA, check_inputs, distance_outside, energies,
                           footprint_box, gaussian, inner_mask, interior, mad_sigma, signal_sharpness, to_gray)
from synth.pixels import clip_to

_LUMA_SQ = float(sum(w * w for w in LUMA))  # gray variance of unit independent per-channel noise
FLAT_TOL = 3.0  # gray levels: an HP residual under this (or under CLIP_SIGMAS noise sigmas) is flat signal
CLIP_SIGMAS = 3.5
MIN_NOISE_PIXELS = 50  # fewest flat pixels a noise reading is made on
NOISE_MATCH_TOL = 0.03  # the matched logo's noise reading is within this share of the background's


# ---------------------------------------------------------------- config and parameters

@dataclass(frozen=True)
class CameraConfig:
    match_blur: bool = True
    max_blur_sigma: float = 4.0  # px
    match_noise: bool = True
    motion_blur_prob: float = 0.1
    motion_length_range: tuple = (3.0, 9.0)  # px
    context_px: int = 12

    def __post_init__(self):
        o = "CameraConfig"
        _check_value(o, "max_blur_sigma", self.max_blur_sigma, 0.0, 20.0)
        _check_value(o, "motion_blur_prob", self.motion_blur_prob, 0.0, 1.0)
        _check_range(o, "motion_length_range", self.motion_length_range, 1.0, 64.0)
        _check_int(o, "context_px", self.context_px, 1, 256)


@dataclass(frozen=True)
class CameraParams:
    match_blur: bool
    match_noise: bool
    noise_seed: int  # seeds the noise pixels
    motion_blur: bool
    motion_length: float
    motion_angle: float  # degrees
    max_blur_sigma: float = 4.0
    context_px: int = 12


def sample_camera(rng: np.random.Generator, cfg: CameraConfig) -> CameraParams:
    seed = int(rng.integers(0, 2 ** 63 - 1))
    motion = bool(rng.random() < cfg.motion_blur_prob)
    length = float(rng.uniform(*cfg.motion_length_range))
    angle = float(rng.uniform(0.0, 180.0))
    return CameraParams(bool(cfg.match_blur), bool(cfg.match_noise), seed, motion, length, angle,
                        float(cfg.max_blur_sigma), int(cfg.context_px))


# ---------------------------------------------------------------- noise readings

def _gray_noise_var(gray, valid):
    """Gray noise variance of a gray image (`to_gray`) over the valid pixels (every other row and column
    of them: the MAD of a few thousand samples is within a few per cent), texture included: what the
    blur match subtracts."""
    r = cv2.filter2D(gray, -1, HP)[::2, ::2]
    return mad_sigma(r[valid[::2, ::2]]) ** 2


def stored(rgb: np.ndarray) -> np.ndarray:
    """A float image as the composite stores it: rounded to uint8 (synth.scene rounds the same way)."""
    return clip_to(rgb + np.float32(0.5), 255.0, out=None).astype(np.uint8)


def _residual(img: np.ndarray) -> np.ndarray:
    """The fine-scale (HP) residual of a gray or RGB image, float32."""
    return cv2.filter2D(img if img.dtype == np.float32 else img.astype(np.float32), -1, HP)


def _box(mask: np.ndarray, pad: int):
    """(y0, y1, x0, x1) slice bounds of the mask's pixels grown by pad, clipped; None if empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    h, w = mask.shape
    return max(0, rows[0] - pad), min(h, rows[-1] + 1 + pad), max(0, cols[0] - pad), min(w, cols[-1] + 1 + pad)


def _mad_sigma_8bit(residual: np.ndarray) -> float:
    """mad_sigma of the HP residual of an image as stored (8 bits), whose values are whole numbers
    (integer kernel on integer pixels, |r| <= 255 x 256, exact in float32): the same median, found by
    counting each value (np.bincount) instead of partitioning (several times faster). Use it only on
    residuals of stored images (`stored`, or gray levels converted from them)."""
    if residual.size == 0:
        return 0.0
    counts = np.cumsum(np.bincount(np.abs(residual).astype(np.int32).ravel()))
    k = residual.size // 2  # the median is the k-th smallest value (odd size), or the mean of the
    hi = int(np.searchsorted(counts, k, side="right"))  # (k-1)-th and k-th (even size), counting from 0
    med = hi if residual.size % 2 else 0.5 * (int(np.searchsorted(counts, k - 1, side="right")) + hi)
    return med / (0.6745 * HP_NORM)


def _flat_noise(resid: np.ndarray, region: np.ndarray):
    """(noise sigma, mask used) over the pixels of `region` where the signal is flat, or (0.0, None) when
    fewer than MIN_NOISE_PIXELS are, whatever the cut. Flat: |residual| under FLAT_TOL gray levels, or
    under CLIP_SIGMAS noise sigmas where the noise itself is stronger than FLAT_TOL (a fixed cut would
    truncate it): the cut is raised (by half while too few pixels pass it, then to CLIP_SIGMAS x the
    sigma read) until it stops moving. The mask is eroded by 2 px so that every residual's 5x5 support
    lies inside it (as `noise_level` does)."""
    thr, best = FLAT_TOL, (0.0, None)
    for _ in range(16):
        m = interior(region & (np.abs(resid) < np.float32(thr * HP_NORM)), 2)
        if np.count_nonzero(m) < MIN_NOISE_PIXELS:
            if best[1] is not None or thr > 64 * FLAT_TOL:
                break
            thr *= 1.5
            continue
        best = (_mad_sigma_8bit(resid[m]), m)
        new = max(FLAT_TOL, CLIP_SIGMAS * best[0])
        if new <= 1.05 * thr:
            break
        thr = new
    return best


def _stored_residuals(image: np.ndarray):
    """(gray, per-channel) HP residuals of `image` as stored (8 bits), over the whole image. Every reading
    takes them on pixels at least 2 px inside its mask and the image (`interior(.., 2)`), whose 5x5
    support lies inside any box around the mask: read here once, they equal what a reading computes on
    such a box."""
    img8 = stored(image)
    return _residual(cv2.cvtColor(img8, cv2.COLOR_RGB2GRAY)), _residual(img8)


def _background_noise(image: np.ndarray, dist: np.ndarray, context_px: int, residuals=None):
    """(gray noise sigma, mean per-channel noise variance) of the background around a footprint as
    stored (8 bits; `dist`: distance to the footprint), read on the flat pixels of the ring 2..context_px
    px around it (`_flat_noise`), else on every pixel of that ring; (0, 0) when there is no ring.
    `residuals`: `_stored_residuals(image)` when the caller has them."""
    rg, r3 = residuals if residuals is not None else _stored_residuals(image)
    ring = (dist > 2) & (dist <= context_px)
    sigma, m = _flat_noise(rg, ring)
    if m is None:
        m = interior(ring, 2)
        if not m.any():
            return 0.0, 0.0
        sigma = _mad_sigma_8bit(rg[m])
    return sigma, _channels_sigma(r3, m) ** 2


def _channels_sigma(resid3: np.ndarray, m: np.ndarray) -> float:
    """mad_sigma of the (h, w, 3) residual of a stored image over the pixels of m, all three channels
    pooled: the same median as mad_sigma(resid3[m]), indexing one plane at a time (several times faster)."""
    at = np.flatnonzero(m)  # found once for the three planes
    return _mad_sigma_8bit(np.concatenate([c.ravel().take(at) for c in cv2.split(resid3)]))


def _flat_inner(artwork: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The logo's inner pixels (inner_mask, 2 px) where its artwork is flat (HP residual under FLAT_TOL
    gray levels), eroded by 2 px; all inner pixels (eroded) when fewer than MIN_NOISE_PIXELS are flat.
    Give the artwork as drawn (before light and camera): a blurred edge is still detail, not noise."""
    inner = inner_mask(alpha, 2)
    r = _residual(to_gray(artwork))
    m = interior(inner & (np.abs(r) < np.float32(FLAT_TOL * HP_NORM)), 2)
    return m if np.count_nonzero(m) >= MIN_NOISE_PIXELS else interior(inner, 2)


def _reading(rgb: np.ndarray, m: np.ndarray) -> float:
    """Gray noise sigma of `rgb` as stored (8 bits), over the pixels of m."""
    return _mad_sigma_8bit(_residual(cv2.cvtColor(stored(rgb), cv2.COLOR_RGB2GRAY))[m])


def _solve_increasing(f, f0: float, x_guess: float, x_max: float, tol: float, steps: int = 4) -> float:
    """x in [0, x_max] with f(x) ~ 0, for a non-decreasing f with f(0) = f0 < 0 that is a step function
    (a noise reading): tries x_guess, doubles it while f < 0, then regula falsi in the bracket. Returns
    the x of the smallest |f| seen (x_max when f stays below 0)."""
    lo, f_lo = 0.0, f0
    hi = min(x_guess, x_max)
    f_hi = f(hi)
    best = min((abs(f_lo), lo), (abs(f_hi), hi))
    while f_hi < 0 and hi < x_max:
        lo, f_lo, hi = hi, f_hi, min(2.0 * hi, x_max)
        f_hi = f(hi)
        best = min(best, (abs(f_hi), hi))
    if f_hi < 0:
        return hi
    for _ in range(steps):
        if best[0] <= tol or hi - lo <= 0.05 * hi:
            break
        x = lo + (hi - lo) * (-f_lo) / (f_hi - f_lo) if f_hi > f_lo else 0.5 * (lo + hi)
        x = min(max(x, lo + 0.1 * (hi - lo)), hi - 0.1 * (hi - lo))  # keep the bracket shrinking
        fx = f(x)
        best = min(best, (abs(fx), x))
        if fx < 0:
            lo, f_lo = x, fx
        else:
            hi, f_hi = x, fx
    return best[1]


@functools.lru_cache(maxsize=1)
def _gauss_table() -> np.ndarray:
    """The standard normal's quantiles at the centres of 65536 equal-probability bins."""
    return ndtri((np.arange(65536) + 0.5) / 65536).astype(np.float32)


def _gaussian_noise(rng: np.random.Generator, shape) -> np.ndarray:
    """Standard normal float32 samples, via uint16 draws and a quantile table: half the time of
    Generator.standard_normal, and indistinguishable at image precision."""
    return _gauss_table().take(rng.integers(0, 65536, size=shape, dtype=np.uint16))


def _chol3(c: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a symmetric positive definite 3x3 matrix, float32 (closed form)."""
    (a, b, d), (_, e, f), (_, _, g) = np.asarray(c, np.float64).tolist()
    l00 = math.sqrt(a)
    l10, l20 = b / l00, d / l00
    l11 = math.sqrt(max(e - l10 * l10, 1e-12))
    l21 = (f - l20 * l10) / l11
    l22 = math.sqrt(max(g - l20 * l20 - l21 * l21, 1e-12))
    return np.array([[l00, 0, 0], [l10, l11, 0], [l20, l21, l22]], np.float32)


# ---------------------------------------------------------------- sensor (noise)

def _add_matched_noise(out, w, m, y_now, bg_sigma, bg_var_c, seed, resid3=None) -> None:
    """Adds to `out` (in place) the noise it lacks where it is the logo's (weight w: the logo's share of
    each pixel; a pixel that is a share w of a clean logo over a noisy background gets sigma x
    sqrt(1 - (1 - w)^2)), so that the stored image reads the background's gray noise `bg_sigma` on the
    logo's flat inner pixels m (reading `y_now` before), with a shared (luminance) and an independent
    per-channel part split as the background's. The scale is found by simulating that reading, 8-bit
    rounding included: rounding alone reads as noise on a smooth ramp, so adding the whole estimated
    variance would count it twice."""
    y0, y1, x0, x1 = _box(m, 2)
    m_box, base = m[y0:y1, x0:x1], out[y0:y1, x0:x1]
    vy = bg_sigma ** 2 - y_now ** 2
    now_c = _channels_sigma(resid3, m) if resid3 is not None else _channels_sigma(_residual(stored(base)), m_box)
    vc = max(0.0, bg_var_c - now_c ** 2)
    # covariance s2 * ones + i2 * I between channels: gray var = s2 + LUMA_SQ * i2, channel var = s2 + i2
    i2 = max(0.0, (vc - vy) / (1.0 - _LUMA_SQ))
    s2 = max(0.0, vy - _LUMA_SQ * i2)
    gray_var = s2 + _LUMA_SQ * i2
    if gray_var <= 0:
        return
    fy0, fy1, fx0, fx1 = _box(w > ALPHA_EPS, 0)
    cov = (s2 * np.ones((3, 3)) + i2 * np.eye(3)) / gray_var  # unit gray variance
    z = _gaussian_noise(np.random.default_rng(seed), (fy1 - fy0, fx1 - fx0, 3))
    wf = w[fy0:fy1, fx0:fx1]
    gain = np.float32(1.0) - wf  # sqrt(max(1 - (1 - w)^2, 0)), in place
    np.multiply(gain, gain, out=gain)
    np.subtract(np.float32(1.0), gain, out=gain)
    np.sqrt(np.maximum(gain, np.float32(0.0), out=gain), out=gain)
    noise = cv2.multiply(cv2.transform(z, _chol3(cov + 1e-9 * np.eye(3))), cv2.merge([gain, gain, gain]))
    part = np.zeros(base.shape, np.float32)  # the noise over the measured box
    ny0, ny1, nx0, nx1 = max(y0, fy0), min(y1, fy1), max(x0, fx0), min(x1, fx1)
    part[ny0 - y0:ny1 - y0, nx0 - x0:nx1 - x0] = noise[ny0 - fy0:ny1 - fy0, nx0 - fx0:nx1 - fx0]
    at, buf = np.flatnonzero(m_box), np.empty(base.shape, np.float32)

    def reading(t):  # _reading(base + t x part, m_box), in one buffer: the same bits
        np.multiply(part, np.float32(t), out=buf)
        np.add(buf, base, out=buf)  # (t x part + base: addition commutes exactly)
        np.add(buf, np.float32(0.5), out=buf)  # stored(): + 0.5, clipped, truncated
        gray = cv2.cvtColor(clip_to(buf, 255.0, out=buf).astype(np.uint8), cv2.COLOR_RGB2GRAY)
        return _mad_sigma_8bit(_residual(gray).ravel().take(at)) - bg_sigma

    scale = _solve_increasing(reading, y_now - bg_sigma, math.sqrt(vy), 4.0 * math.sqrt(vy),
                              NOISE_MATCH_TOL * bg_sigma)
    out[fy0:fy1, fx0:fx1] += np.float32(scale) * noise


def match_sensor(composite: np.ndarray, alpha: np.ndarray, params: CameraParams,
                 artwork: np.ndarray | None = None) -> np.ndarray:
    """The sensor half of the camera stage, on a composite after blending (the logo's optics, `match_optics`,
    come before it): the logo's stored (8-bit) image is made to read the same noise as the background
    around it in the same image (`context_px` ring, flat pixels, robust MAD of the HP residual; blending
    and shadows included). On the logo's flat inner pixels (flat in `artwork`, the logo as drawn before
    light and camera, aligned with `alpha`; the composite itself when None) a logo reading below the
    background gets the noise it lacks (`_add_matched_noise`); one reading above it (its artwork's own
    fine texture) is left as it is. `alpha`: the logo's share of each composite pixel (its effective
    opacity). Returns a new float32 (h, w, 3) array in 0..255; the background's pixels are unchanged."""
    check_inputs(alpha, composite=composite)
    if artwork is not None:
        check_inputs(alpha, artwork=artwork)
    out = clip_to(composite, 255.0)  # a new float32 array (checked above)
    foot = alpha > ALPHA_EPS
    if not params.match_noise or not foot.any():
        return out
    # everything read lies within context_px of the footprint, plus the residual's 2 px support
    y0, y1, x0, x1 = _box(foot, int(params.context_px) + 4)
    crop, a = out[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    residuals = _stored_residuals(crop)  # what each reading before the noise is added reads
    bg_sigma, bg_var_c = _background_noise(crop, distance_outside(a), params.context_px, residuals)
    _sensor(crop, clip_to(a, 1.0), _flat_inner(crop if artwork is None else artwork[y0:y1, x0:x1], a),
            bg_sigma, bg_var_c, params.noise_seed, residuals)
    return clip_to(out, 255.0, out=out)


def _sensor(out, w, m, bg_sigma, bg_var_c, seed, residuals=None) -> None:
    """The noise `out` lacks (in place) so that, as stored, it reads bg_sigma on the pixels m (eroded by
    2 px, as `_flat_inner` gives them). `residuals`: `_stored_residuals(out)` when the caller has them."""
    if bg_sigma <= 0 or not m.any():
        return
    if residuals is not None:
        y_now = _mad_sigma_8bit(residuals[0][m])
    else:
        y0, y1, x0, x1 = _box(m, 2)
        y_now = _reading(out[y0:y1, x0:x1], m[y0:y1, x0:x1])
    if y_now < bg_sigma:
        _add_matched_noise(out, w, m, y_now, bg_sigma, bg_var_c, seed, None if residuals is None else residuals[1])


# ---------------------------------------------------------------- optics (blur)

def _masked_filter(img, weight, blur):
    """Normalised convolution: blur(img * w) / blur(w); img kept where blur(w) is ~0."""
    den = blur(weight)
    inv = np.float32(1.0) / np.maximum(den, 1e-3)
    if img.ndim == 3:
        out = blur(img * cv2.merge([weight, weight, weight])) * cv2.merge([inv, inv, inv])
    else:
        out = blur(img * weight) * inv
    far = den <= 1e-3
    if far.any():  # img itself there (what blur x 0 + img x 1 gave; written over, not added)
        out = cv2.copyTo(np.ascontiguousarray(img), far.view(np.uint8), out)
    return out


def _motion_kernel(length, angle_deg):
    n = int(math.ceil(length)) | 1
    k = np.zeros((n, n), np.float32)
    c, t = (n - 1) / 2.0, math.radians(angle_deg)
    dx, dy = 0.5 * (length - 1) * math.cos(t), 0.5 * (length - 1) * math.sin(t)
    sh = 4  # sub-pixel line end points
    p0 = (int(round((c - dx) * 2 ** sh)), int(round((c - dy) * 2 ** sh)))
    p1 = (int(round((c + dx) * 2 ** sh)), int(round((c + dy) * 2 ** sh)))
    cv2.line(k, p0, p1, 1.0, 1, cv2.LINE_AA, sh)
    # OpenCV's anti-aliased line with sub-pixel end points is not drawn symmetrically (its centroid
    # lies up to 0.5 px off the centre, which shifts the blurred logo off its box and the gate's
    # reference): a segment centred on the kernel is symmetric about its centre, so make it so.
    k = k + k[::-1, ::-1]
    return k / k.sum()


def _match_blur_sigma(logo_gray, alpha, valid, target, max_sigma):
    """Gaussian sigma that brings the (clean) logo's sharpness down to `target`. Blurring widens edges:
    1/sharpness^2 grows about linearly in sigma^2, so a secant search on u = sigma^2 of
    F(u) = 1/sharpness^2 - 1/target^2 converges in two or three steps."""

    weighted = logo_gray * alpha

    def inv_sq(u):
        g = logo_gray
        if u > 0:
            blur = gaussian(math.sqrt(u))
            g = blur(weighted) / np.maximum(blur(alpha), 1e-3)  # read only inside the logo
        lap_e, grad_e = energies(g, valid)
        return grad_e / max(lap_e, 1e-12)

    valid = valid.astype(np.uint8)
    goal, u_max = 1.0 / target ** 2, float(max_sigma) ** 2
    u0, f0 = 0.0, inv_sq(0.0) - goal
    if f0 >= 0:  # already as soft as the context, or softer: no sharpening
        return 0.0
    u1 = min(u_max, 1.0)
    f1 = inv_sq(u1) - goal
    for _ in range(4):
        if abs(f1) <= 0.1 * goal or f1 == f0:  # sharpness within 5 %
            break
        u2 = min(u_max, max(0.0, u1 - f1 * (u1 - u0) / (f1 - f0)))
        if u2 == u1:
            break
        u0, f0, u1, f1 = u1, f1, u2, inv_sq(u2) - goal
    return math.sqrt(u1)


def match_optics(logo_rgb: np.ndarray, alpha: np.ndarray, canvas_roi: np.ndarray,
                 params: CameraParams) -> tuple[np.ndarray, np.ndarray]:
    """The optics half of the camera stage, on the logo before blending: blur to the local background's
    sharpness, then the optional motion blur. Returns (rgb, alpha), both blurred alike (new arrays)."""
    check_inputs(alpha, logo_rgb=logo_rgb, canvas_roi=canvas_roi)
    out, a = logo_rgb.astype(np.float32, copy=True), alpha.astype(np.float32, copy=True)
    p = params
    if not (p.match_blur or p.motion_blur) or footprint_box(alpha) is None:
        return out, a
    if p.match_blur and p.max_blur_sigma > 0:
        dist = distance_outside(alpha)
        near = dist <= p.context_px
        # the background the logo is seen against: the ring around it, not what it will cover
        ring, inner = interior(near & (dist > 2)), interior(inner_mask(alpha, 2))
        if inner.any():
            # the ring's content sharpness (its noise removed) against the logo's (artwork: clean)
            gray = to_gray(canvas_roi)
            target = signal_sharpness(*energies(gray, ring), _gray_noise_var(gray, interior(near, 2)))
            if not math.isnan(target):  # else: no structure around the logo to read a blur from
                sigma = _match_blur_sigma(to_gray(out), alpha, inner, target, p.max_blur_sigma)
                if sigma >= 0.2:
                    blur = gaussian(sigma)
                    out, a = _masked_filter(out, alpha, blur), clip_to(blur(a), 1.0)
    if p.motion_blur and p.motion_length > 1:
        k = _motion_kernel(p.motion_length, p.motion_angle)
        blur = lambda x: cv2.filter2D(x, -1, k)  # noqa: E731
        out, a = _masked_filter(out, a, blur), clip_to(blur(a), 1.0)
    return out, a


def match_camera_rgba(logo_rgb: np.ndarray, alpha: np.ndarray, canvas_roi: np.ndarray,
                      params: CameraParams) -> tuple[np.ndarray, np.ndarray]:
    """`match_camera`, also returning the alpha blurred by the same sharpness/motion blur."""
    out, a = match_optics(logo_rgb, alpha, canvas_roi, params)
    np.clip(out, 0.0, 255.0, out=out)
    if params.match_noise and footprint_box(alpha) is not None:
        # the sensor half on the logo's own pixels, against the background around it before the paste
        bg_sigma, bg_var_c = _background_noise(canvas_roi, distance_outside(alpha), params.context_px)
        _sensor(out, (a > ALPHA_EPS).astype(np.float32), _flat_inner(logo_rgb, a), bg_sigma, bg_var_c,
                params.noise_seed)
    return np.clip(out, 0.0, 255.0, out=out), a


def match_camera(logo_rgb: np.ndarray, alpha: np.ndarray, canvas_roi: np.ndarray,
                 params: CameraParams) -> np.ndarray:
    """Blur the logo to the local background's sharpness, optional motion blur, then give it the noise of
    the background around it (`match_optics`, then `match_sensor` on the logo laid over `canvas_roi`).
    Returns a new float32 (h, w, 3) array in 0..255; use `match_camera_rgba` to get the blurred alpha too."""
    return match_camera_rgba(logo_rgb, alpha, canvas_roi, params)[0]
