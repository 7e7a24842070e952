"""Light and camera stages of the realism engine: a pasted logo lit and imaged like its surroundings.

Inputs, per object, all for one region of interest (ROI) of the canvas:
  * `logo_rgb`   float32 (h, w, 3) in 0..255, the warped logo colour (undefined where alpha is 0);
  * `alpha`      float32 (h, w) in [0, 1], the warped logo opacity;
  * `canvas_roi` float32 (h, w, 3) in 0..255, the canvas under that ROI BEFORE this logo is pasted.
Give the ROI a margin around the footprint (`needed_margin`, `pad_roi`) so that the context ring and the
whole soft shadow lie inside it: `shadow` cannot darken pixels outside the ROI, so without a margin the
shadow ends in a straight cut at the ROI's edge. The estimates also use the background under the footprint
(not yet covered), so relighting and camera matching still work on a ROI without margin.
Call `relight` and `match_optics` on the unshadowed canvas, then `shadow` (a logo is not darkened by its
own shadow, nor its blur read from it), then blend, then `match_sensor` on the blended composite (the
sensor adds its noise to the finished scene, so the noise is matched after blending has had its effect).
`match_camera` does optics and sensor on the logo alone, against the canvas before the paste.

Local background ("context"): the ROI pixels within `context_px` of the footprint (alpha > 0.01), under and
around it, found with one distance transform.

Light (`sample_light` -> `LightParams`, `relight`, `shadow`):
  * shading: luminance of the context, blurred by a normalised convolution (blur(Y*m) / blur(m) on a copy
    downsampled so that the blur is 3 px there; sigma = `shading_blur_frac` x footprint size, footprint
    size = sqrt(bbox h x w)), gives a low-frequency light field L(y, x). The logo is multiplied by
    gain = clip((L / reference_luma) ** shading_strength, min_gain, max_gain). The reference is an absolute
    mid-grey (118, about the mean luminance of everyday photos), not the local mean: normalising by the local
    mean would give the same logo on a dark and on a bright region. The orchestrator may pass the canvas's
    mean luminance as `reference_luma` for image-relative lighting instead.
  * colour cast: c = mean context RGB / its luminance (grey -> 1, 1, 1, clipped to 0.5..2); the logo is
    multiplied per channel by c ** cast_strength, renormalised to keep its luminance.
  * jitter: gamma on x/255 (a 4096-step lookup table, within 0.25 grey levels), then contrast about the
    logo's alpha-weighted mean luminance, then an additive brightness (0..255 units).
  * glare: screen-like highlight x + s * g * (255 - x), g a Gaussian blob at (glare_x, glare_y) in
    footprint-bbox-relative coordinates, sigma = glare_radius x footprint size.
  * shadow: the alpha shifted by (shadow_dx, shadow_dy) x footprint size, blurred by sigma shadow_blur x size,
    darkens the background: bg * (1 - shadow_opacity * a_shadow).

Camera (`sample_camera` -> `CameraParams`; optics: `match_optics`, sensor: `match_sensor`; both: `match_camera`):
  * sharpness(gray, mask, noise_sigma) = sqrt(E[lap^2] / E[|grad|^2]) over the mask (3x3 Laplacian, Sobel/8
    gradients), after subtracting what white noise of noise_sigma adds to each energy (20 and 0.375 x
    sigma^2): a characteristic spatial frequency in 1/px, independent of contrast; a blurred edge or texture
    reads lower, a crisp one higher (white noise alone: 7.3). The target is the content sharpness of the
    ring 2..context_px px around the footprint, what the logo is seen against (its noise removed); the
    logo (inside, inset 2 px; assumed clean, as artwork is) is blurred by the Gaussian sigma in
    [0, max_blur_sigma], found by a secant search, that brings its sharpness down to it.
    A logo already softer than the context is left as it is (no sharpening), as is any logo on a context
    with no measurable structure (gradient energy < MIN_GRAD_ENERGY once the noise part is removed: a plain,
    noisy wall says nothing about blur). To compare a composite's logo with its ring, pass each region's own
    noise_level as noise_sigma (or 0 on clean images); where the noise energy dwarfs the content's (a flat
    logo under strong noise) the difference is unstable or NaN. The measure depends on content as well as on
    blur (a step edge and a random texture blurred alike read differently), so it matches what a
    ring-vs-logo comparison sees rather than recovering the optical blur.
  * noise_level(gray, mask) = median(|r|) / (0.6745 x 70), r the response of the 5x5 high-pass
    outer([1,-4,6,-4,1], [1,-4,6,-4,1]) (4th differences, norm 70): a robust (MAD) Gaussian sigma. The
    3x3 second-difference kernel mistakes fine texture for noise (sigma 3 read on a noiseless texture
    blurred by 1.2 px); this one reads 0.6 there and is exact on white noise.
  * noise matching (`match_sensor`) reads that estimator where the signal is flat, on the image as it is
    stored (8 bits: the rounding is part of what any reading of the stored image sees). Background: the
    flat pixels (|r| / 70 under FLAT_TOL = 3 gray levels, or under CLIP_SIGMAS = 3.5 noise sigmas where
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
  * jpeg / jpeg_quality: the quality the orchestrator encodes the finished composite with
    (synth.composite.encode_jpeg); nothing here applies it.

Every effect has an on/off switch in its config; with all switches off the stages are the identity. Each
sampler draws the same numbers in the same order whatever the switches, so turning one effect off does not
change the others' draws.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.special import ndtri

from synth.errors import ConfigError, InputImageError, check_range_pair

ALPHA_EPS = 0.01  # alpha above this is "logo footprint"
DEFAULT_REFERENCE_LUMA = 118.0
MIN_GRAD_ENERGY = 1.0  # context gradient energy (gray levels^2) below which no blur is matched
_SHADING_SIGMA_PX = 3.0  # the shading field is computed on a copy downsampled to make its sigma this
_GAMMA_STEPS = 4096  # gamma through a lookup table of this many steps over 0..255
_LAP = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)
_HP3 = np.array([1, -4, 6, -4, 1], np.float32)
_HP = np.outer(_HP3, _HP3)  # 4th differences in x and y: rejects all but the finest detail
_HP_NORM = float(np.sqrt((_HP ** 2).sum()))  # 70
_LAP_NOISE = float((_LAP ** 2).sum())  # E[lap^2] of unit white noise
_GRAD_NOISE = 2 * 12.0 / 64.0  # E[|grad|^2] of unit white noise with Sobel/8 in x and y
_LUMA = (0.299, 0.587, 0.114)
_LUMA_SQ = float(sum(w * w for w in _LUMA))  # gray variance of unit independent per-channel noise
FLAT_TOL = 3.0  # gray levels: an HP residual under this (or under CLIP_SIGMAS noise sigmas) is flat signal
CLIP_SIGMAS = 3.5
MIN_NOISE_PIXELS = 50  # fewest flat pixels a noise reading is made on
NOISE_MATCH_TOL = 0.03  # the matched logo's noise reading is within this share of the background's


# ---------------------------------------------------------------- configs and parameters

def _check_range(owner, name, value, lo, hi, integer=False):
    check_range_pair(f"{owner}.{name}", value, lo, hi, integer)


def _check_int(owner, name, value, lo, hi):
    if not (isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi):
        raise ConfigError(f"{owner}.{name} = {value!r} is invalid: expected an integer in [{lo}, {hi}]")


def _check_value(owner, name, value, lo, hi):
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi):
        raise ConfigError(f"{owner}.{name} = {value!r} is invalid: expected a number in [{lo}, {hi}]")


@dataclass(frozen=True)
class LightConfig:
    shading: bool = True  # multiply the logo by the local light field
    shading_strength_range: tuple = (0.4, 0.9)  # exponent on L / reference, 0 = off, 1 = full
    shading_blur_frac: float = 0.35  # light-field sigma as a fraction of the footprint size
    reference_luma: float = DEFAULT_REFERENCE_LUMA  # luminance that means gain 1
    min_gain: float = 0.3
    max_gain: float = 1.6
    color_cast: bool = True
    cast_strength_range: tuple = (0.0, 0.5)  # exponent on the context's chroma, 0 = off
    jitter: bool = True  # brightness / contrast / gamma
    brightness_range: tuple = (-12.0, 12.0)  # added, in 0..255 units
    contrast_range: tuple = (0.85, 1.15)
    gamma_range: tuple = (0.85, 1.18)  # drawn log-uniformly
    glare_prob: float = 0.15
    glare_radius_range: tuple = (0.15, 0.5)  # fraction of the footprint size
    glare_strength_range: tuple = (0.15, 0.5)
    shadow_prob: float = 0.3
    shadow_offset_range: tuple = (0.02, 0.08)  # fraction of the footprint size, any direction
    shadow_blur_range: tuple = (0.01, 0.05)  # fraction of the footprint size
    shadow_opacity_range: tuple = (0.15, 0.45)
    context_px: int = 12  # width of the local background around the footprint

    def __post_init__(self):
        o = "LightConfig"
        _check_range(o, "shading_strength_range", self.shading_strength_range, 0.0, 2.0)
        _check_value(o, "shading_blur_frac", self.shading_blur_frac, 0.01, 10.0)
        _check_value(o, "reference_luma", self.reference_luma, 1.0, 255.0)
        _check_range(o, "(min_gain, max_gain)", (self.min_gain, self.max_gain), 0.01, 10.0)
        _check_range(o, "cast_strength_range", self.cast_strength_range, 0.0, 1.0)
        _check_range(o, "brightness_range", self.brightness_range, -128.0, 128.0)
        _check_range(o, "contrast_range", self.contrast_range, 0.1, 3.0)
        _check_range(o, "gamma_range", self.gamma_range, 0.2, 5.0)
        for name in ("glare_prob", "shadow_prob"):
            _check_value(o, name, getattr(self, name), 0.0, 1.0)
        _check_range(o, "glare_radius_range", self.glare_radius_range, 0.01, 5.0)
        _check_range(o, "glare_strength_range", self.glare_strength_range, 0.0, 1.0)
        _check_range(o, "shadow_offset_range", self.shadow_offset_range, 0.0, 1.0)
        _check_range(o, "shadow_blur_range", self.shadow_blur_range, 0.0, 1.0)
        _check_range(o, "shadow_opacity_range", self.shadow_opacity_range, 0.0, 1.0)
        _check_int(o, "context_px", self.context_px, 1, 256)


@dataclass(frozen=True)
class LightParams:
    shading_strength: float  # exponent on light field / reference; 0 = off
    cast_strength: float  # exponent on the context's chroma; 0 = off
    brightness: float  # added, 0..255 units
    contrast: float  # factor about the logo's mean luminance
    gamma: float
    glare: bool
    glare_x: float  # centre, 0..1 across the footprint's bounding box
    glare_y: float
    glare_radius: float  # sigma, fraction of the footprint size
    glare_strength: float  # 0..1, share of the way to white at the centre
    shadow: bool
    shadow_dx: float  # offset, fraction of the footprint size (+x right, +y down)
    shadow_dy: float
    shadow_blur: float  # sigma, fraction of the footprint size
    shadow_opacity: float  # 0..1, darkening under a fully covered shadow
    # copied from the config, so that a params record alone re-renders the stage
    shading_blur_frac: float = 0.35
    reference_luma: float = DEFAULT_REFERENCE_LUMA
    min_gain: float = 0.3
    max_gain: float = 1.6
    context_px: int = 12


def sample_light(rng: np.random.Generator, cfg: LightConfig) -> LightParams:
    u = lambda r: float(rng.uniform(r[0], r[1]))  # noqa: E731
    shading = u(cfg.shading_strength_range)
    cast = u(cfg.cast_strength_range)
    brightness, contrast = u(cfg.brightness_range), u(cfg.contrast_range)
    gamma = float(math.exp(rng.uniform(math.log(cfg.gamma_range[0]), math.log(cfg.gamma_range[1]))))
    glare = bool(rng.random() < cfg.glare_prob)
    gx, gy = float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.1, 0.9))
    g_radius, g_strength = u(cfg.glare_radius_range), u(cfg.glare_strength_range)
    shadow = bool(rng.random() < cfg.shadow_prob)
    offset, angle = u(cfg.shadow_offset_range), float(rng.uniform(0.0, 2.0 * math.pi))
    s_blur, s_opacity = u(cfg.shadow_blur_range), u(cfg.shadow_opacity_range)
    if not cfg.jitter:
        brightness, contrast, gamma = 0.0, 1.0, 1.0
    return LightParams(
        shading_strength=shading if cfg.shading else 0.0,
        cast_strength=cast if cfg.color_cast else 0.0,
        brightness=brightness, contrast=contrast, gamma=gamma,
        glare=glare, glare_x=gx, glare_y=gy, glare_radius=g_radius, glare_strength=g_strength,
        shadow=shadow, shadow_dx=offset * math.cos(angle), shadow_dy=offset * math.sin(angle),
        shadow_blur=s_blur, shadow_opacity=s_opacity,
        shading_blur_frac=float(cfg.shading_blur_frac), reference_luma=float(cfg.reference_luma),
        min_gain=float(cfg.min_gain), max_gain=float(cfg.max_gain), context_px=int(cfg.context_px))


@dataclass(frozen=True)
class CameraConfig:
    match_blur: bool = True
    max_blur_sigma: float = 4.0  # px
    match_noise: bool = True
    motion_blur_prob: float = 0.1
    motion_length_range: tuple = (3.0, 9.0)  # px
    jpeg: bool = True
    jpeg_quality_range: tuple = (60, 95)  # integers, inclusive
    context_px: int = 12

    def __post_init__(self):
        o = "CameraConfig"
        _check_value(o, "max_blur_sigma", self.max_blur_sigma, 0.0, 20.0)
        _check_value(o, "motion_blur_prob", self.motion_blur_prob, 0.0, 1.0)
        _check_range(o, "motion_length_range", self.motion_length_range, 1.0, 64.0)
        _check_range(o, "jpeg_quality_range", self.jpeg_quality_range, 1, 100, integer=True)
        _check_int(o, "context_px", self.context_px, 1, 256)


@dataclass(frozen=True)
class CameraParams:
    match_blur: bool
    match_noise: bool
    noise_seed: int  # seeds the noise pixels
    motion_blur: bool
    motion_length: float
    motion_angle: float  # degrees
    jpeg: bool
    jpeg_quality: int
    max_blur_sigma: float = 4.0
    context_px: int = 12


def sample_camera(rng: np.random.Generator, cfg: CameraConfig) -> CameraParams:
    seed = int(rng.integers(0, 2 ** 63 - 1))
    motion = bool(rng.random() < cfg.motion_blur_prob)
    length = float(rng.uniform(*cfg.motion_length_range))
    angle = float(rng.uniform(0.0, 180.0))
    quality = int(rng.integers(int(cfg.jpeg_quality_range[0]), int(cfg.jpeg_quality_range[1]) + 1))
    return CameraParams(bool(cfg.match_blur), bool(cfg.match_noise), seed, motion, length, angle,
                        bool(cfg.jpeg), quality, float(cfg.max_blur_sigma), int(cfg.context_px))


# ---------------------------------------------------------------- measurements

def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb, np.float32), cv2.COLOR_RGB2GRAY)


def _distance_outside(alpha: np.ndarray) -> np.ndarray:
    """Distance in px of every pixel to the footprint (0 inside it)."""
    outside = (alpha <= ALPHA_EPS).astype(np.uint8)
    if not outside.all():
        return cv2.distanceTransform(outside, cv2.DIST_L2, 3)
    return np.full(alpha.shape, np.inf, np.float32)


def ring_mask(alpha: np.ndarray, width_px: int, gap_px: int = 2) -> np.ndarray:
    """Pixels more than gap_px and at most gap_px + width_px from the footprint (alpha > 0.01): around it,
    never inside it. The gap keeps the logo's own edge out of ring measurements."""
    d = _distance_outside(_check_alpha(alpha))
    return (d > gap_px) & (d <= gap_px + width_px)


def inner_mask(alpha: np.ndarray, inset_px: int = 2) -> np.ndarray:
    """Logo pixels (alpha >= 0.5) at least inset_px inside the footprint edge."""
    inside = (_check_alpha(alpha) >= 0.5).astype(np.uint8)
    return cv2.distanceTransform(inside, cv2.DIST_L2, 3) > inset_px


def _valid(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """Mask pixels whose whole (2 radius + 1)^2 neighbourhood is in the mask (and inside the image)."""
    m = mask.astype(np.uint8)
    k = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.erode(m, k, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def _mad_sigma(residual: np.ndarray) -> float:
    if residual.size == 0:
        return 0.0
    return float(np.median(np.abs(residual))) / (0.6745 * _HP_NORM)


def noise_level(gray: np.ndarray, mask: np.ndarray) -> float:
    """Robust Gaussian noise sigma (gray levels) of `gray` over `mask`; 0.0 when the mask is empty."""
    r = cv2.filter2D(np.asarray(gray, np.float32), -1, _HP)
    return _mad_sigma(r[_valid(mask, 2)])


def _energies(gray: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """(E[lap^2], E[|grad|^2]) over the `valid` pixels (bool or uint8 mask)."""
    m = valid if valid.dtype == np.uint8 else valid.astype(np.uint8)
    if not m.any():
        return 0.0, 0.0
    lap = cv2.filter2D(gray, -1, _LAP)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    return cv2.mean(lap * lap, mask=m)[0], cv2.mean(gx * gx + gy * gy, mask=m)[0]


def _signal_sharpness(lap_e, grad_e, noise_var):
    lap_e, grad_e = lap_e - _LAP_NOISE * noise_var, grad_e - _GRAD_NOISE * noise_var
    return math.sqrt(lap_e / grad_e) if grad_e >= MIN_GRAD_ENERGY and lap_e > 0 else math.nan


def sharpness(gray: np.ndarray, mask: np.ndarray, noise_sigma: float = 0.0) -> float:
    """sqrt(E[lap^2] / E[|grad|^2]) over `mask`, in 1/px, independent of contrast. The part that white noise
    of `noise_sigma` adds to each energy is subtracted first (0: the raw value, noise included; pass the
    region's own noise_level to compare regions by their content only). NaN where no structure is
    left to measure (gradient energy below MIN_GRAD_ENERGY, e.g. a flat or empty region)."""
    lap_e, grad_e = _energies(np.asarray(gray, np.float32), _valid(mask))
    return _signal_sharpness(lap_e, grad_e, float(noise_sigma) ** 2)


# ---------------------------------------------------------------- checks and helpers

def _check_alpha(alpha):
    a = np.asarray(alpha)
    if a.ndim != 2 or a.dtype != np.float32:
        raise InputImageError(f"alpha: expected a float32 (h, w) array in [0, 1], got {a.dtype} {a.shape}")
    return a


def _check_inputs(alpha, **images):
    a = _check_alpha(alpha)
    for name, img in images.items():
        if not isinstance(img, np.ndarray) or img.dtype != np.float32 or img.shape != a.shape + (3,):
            raise InputImageError(f"{name}: expected a float32 {a.shape + (3,)} array in 0..255 matching alpha, "
                                  f"got {getattr(img, 'dtype', type(img))} {getattr(img, 'shape', '')}")


def _footprint_box(alpha):
    """(y0, x0, y1, x1, size) of the alpha >= 0.5 pixels (alpha > 0.01 if none), size = sqrt(h * w)."""
    m = alpha >= 0.5
    if not m.any():
        m = alpha > ALPHA_EPS
    if not m.any():
        return None
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return int(y0), int(x0), int(y1), int(x1), math.sqrt(float((y1 - y0) * (x1 - x0)))


def _ksize(sigma):
    return 2 * int(math.ceil(3.0 * sigma)) + 1


def _masked_filter(img, weight, blur):
    """Normalised convolution: blur(img * w) / blur(w); img kept where blur(w) is ~0."""
    den = blur(weight)
    keep = (den <= 1e-3).astype(np.float32)
    inv = (1.0 - keep) / np.maximum(den, 1e-3)
    if img.ndim == 3:
        inv, keep = cv2.merge([inv, inv, inv]), cv2.merge([keep, keep, keep])
        weight = cv2.merge([weight, weight, weight])
    return blur(img * weight) * inv + img * keep


def _gauss(sigma):
    k = _ksize(sigma)
    return lambda x: cv2.GaussianBlur(x, (k, k), sigma)


# ---------------------------------------------------------------- ROI margin

def needed_margin(alpha: np.ndarray, params: LightParams) -> int:
    """Margin in px a ROI needs around this footprint so that the context ring and the whole soft shadow
    (offset + 3 sigma of blur) fit inside it."""
    box = _footprint_box(_check_alpha(alpha))
    reach = 0.0
    if box is not None and params.shadow:
        reach = (math.hypot(params.shadow_dx, params.shadow_dy) + 3.0 * params.shadow_blur) * box[4]
    return int(math.ceil(max(float(params.context_px), reach))) + 1


def pad_roi(logo_rgb: np.ndarray, alpha: np.ndarray, roi, margin_px: int, canvas_hw):
    """Grows roi = (y0, x0, y1, x1) by margin_px on each side (clipped to the canvas) and pads `logo_rgb`
    and `alpha` to match with zeros. Returns (logo_rgb, alpha, roi)."""
    _check_inputs(alpha, logo_rgb=logo_rgb)
    y0, x0, y1, x1 = (int(v) for v in roi)
    H, W = (int(v) for v in canvas_hw)
    if alpha.shape != (y1 - y0, x1 - x0) or not (0 <= y0 <= y1 <= H and 0 <= x0 <= x1 <= W):
        raise InputImageError(f"roi = {tuple(roi)!r} does not match alpha {alpha.shape} inside a canvas {(H, W)}")
    m = int(margin_px)
    ny0, nx0, ny1, nx1 = max(0, y0 - m), max(0, x0 - m), min(H, y1 + m), min(W, x1 + m)
    rgb = np.zeros((ny1 - ny0, nx1 - nx0, 3), np.float32)
    a = np.zeros((ny1 - ny0, nx1 - nx0), np.float32)
    rgb[y0 - ny0:y1 - ny0, x0 - nx0:x1 - nx0] = logo_rgb
    a[y0 - ny0:y1 - ny0, x0 - nx0:x1 - nx0] = alpha
    return rgb, a, (ny0, nx0, ny1, nx1)


# ---------------------------------------------------------------- light

def _light_field(luma, context, sigma):
    """Low-frequency luminance of the context pixels, normalised convolution on a copy downsampled so that
    sigma becomes _SHADING_SIGMA_PX (the field has no detail finer than sigma anyway)."""
    h, w = luma.shape
    f = min(1.0, _SHADING_SIGMA_PX / max(sigma, 1e-6))
    sw, sh = max(4, round(w * f)), max(4, round(h * f))
    f = min(sw / w, sh / h)
    m = context.astype(np.float32)
    ys = cv2.resize(luma * m, (sw, sh), interpolation=cv2.INTER_AREA)
    ms = cv2.resize(m, (sw, sh), interpolation=cv2.INTER_AREA)
    s = max(0.5, sigma * f)
    k = _ksize(s)
    num, den = cv2.GaussianBlur(ys, (k, k), s), cv2.GaussianBlur(ms, (k, k), s)
    mean = float(cv2.sumElems(luma * m)[0] / max(cv2.sumElems(m)[0], 1.0))
    field = np.where(den > 1e-3, num / np.maximum(den, 1e-3), mean).astype(np.float32)
    return cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)


def relight(logo_rgb: np.ndarray, alpha: np.ndarray, canvas_roi: np.ndarray, params: LightParams,
            reference_luma: float | None = None) -> np.ndarray:
    """Lights the logo like its local background (shading, colour cast), then jitter and glare.
    Returns a new float32 (h, w, 3) array in 0..255. `reference_luma` overrides params.reference_luma."""
    _check_inputs(alpha, logo_rgb=logo_rgb, canvas_roi=canvas_roi)
    out = logo_rgb.astype(np.float32, copy=True)
    box = _footprint_box(alpha)
    if box is None:
        return out
    y0, x0, y1, x1, size = box
    p = params
    if p.shading_strength > 0 or p.cast_strength > 0:
        context = _distance_outside(alpha) <= p.context_px
        scale = np.ones(3, np.float32)  # per-channel colour cast
        if p.cast_strength > 0:
            mean = np.asarray(cv2.mean(canvas_roi, mask=context.astype(np.uint8))[:3], np.float64)
            luma = float(np.dot(mean, _LUMA))
            if luma > 1.0:
                c = np.clip(mean / luma, 0.5, 2.0) ** p.cast_strength
                scale = (c / float(np.dot(c, _LUMA))).astype(np.float32)
        if p.shading_strength > 0:
            ref = float(reference_luma if reference_luma is not None else p.reference_luma)
            if not ref > 0:
                raise ConfigError(f"reference_luma = {ref!r} is invalid: expected a positive luminance")
            field = _light_field(_gray(canvas_roi), context, p.shading_blur_frac * size)
            gain = cv2.pow(np.maximum(field, 1e-3) * np.float32(1.0 / ref), p.shading_strength)
            np.clip(gain, p.min_gain, p.max_gain, out=gain)
            out *= cv2.merge([gain * scale[0], gain * scale[1], gain * scale[2]])
        else:
            out *= scale
    if p.gamma != 1.0:
        lut = (255.0 * np.linspace(0.0, 1.0, _GAMMA_STEPS + 1) ** p.gamma).astype(np.float32)
        np.clip(out, 0.0, 255.0, out=out)
        out = lut[(out * np.float32(_GAMMA_STEPS / 255.0) + np.float32(0.5)).astype(np.int32)]
    if p.contrast != 1.0 or p.brightness != 0.0:  # contrast about the logo's mean luminance
        g = _gray(np.clip(out, 0.0, 255.0))
        m = float(cv2.sumElems(g * alpha)[0]) / max(float(cv2.sumElems(alpha)[0]), 1e-6)
        out *= np.float32(p.contrast)
        out += np.float32(m * (1.0 - p.contrast) + p.brightness)
    np.clip(out, 0.0, 255.0, out=out)
    if p.glare and p.glare_strength > 0:  # screen-like: x + g (255 - x)
        h, w = alpha.shape
        cy, cx = y0 + p.glare_y * (y1 - y0), x0 + p.glare_x * (x1 - x0)
        r = max(1.0, p.glare_radius * size)
        gy = np.exp(-0.5 * ((np.arange(h, dtype=np.float32) - cy) / r) ** 2) * np.float32(p.glare_strength)
        gx = np.exp(-0.5 * ((np.arange(w, dtype=np.float32) - cx) / r) ** 2)
        g = np.outer(gy, gx).astype(np.float32)
        g3 = cv2.merge([g, g, g])
        out = out * (1.0 - g3) + g3 * np.float32(255.0)
    return out


def shadow(canvas_roi: np.ndarray, alpha: np.ndarray, params: LightParams) -> np.ndarray:
    """Soft drop shadow: the background darkened under the offset, blurred alpha. Returns a new array."""
    _check_inputs(alpha, canvas_roi=canvas_roi)
    out = canvas_roi.astype(np.float32, copy=True)
    box = _footprint_box(alpha)
    if not params.shadow or params.shadow_opacity <= 0 or box is None:
        return out
    size = box[4]
    h, w = alpha.shape
    m = np.float32([[1, 0, params.shadow_dx * size], [0, 1, params.shadow_dy * size]])
    a = cv2.warpAffine(alpha, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    sigma = params.shadow_blur * size
    if sigma >= 0.3:
        a = _gauss(sigma)(a)
    keep = 1.0 - np.float32(params.shadow_opacity) * a
    return out * cv2.merge([keep, keep, keep])


# ---------------------------------------------------------------- camera: noise readings

def _gray_noise_var(rgb, valid):
    """Gray noise variance over the valid pixels (every other row and column of them: the MAD of a few
    thousand samples is within a few per cent), texture included: what the blur match subtracts."""
    r = cv2.filter2D(_gray(rgb), -1, _HP)[::2, ::2]
    return _mad_sigma(r[valid[::2, ::2]]) ** 2


def stored(rgb: np.ndarray) -> np.ndarray:
    """A float image as the composite stores it: rounded to uint8 (synth.scene rounds the same way)."""
    return np.clip(rgb + np.float32(0.5), 0, 255).astype(np.uint8)


def _residual(img: np.ndarray) -> np.ndarray:
    """The fine-scale (HP) residual of a gray or RGB image, float32."""
    return cv2.filter2D(img if img.dtype == np.float32 else img.astype(np.float32), -1, _HP)


def _box(mask: np.ndarray, pad: int):
    """(y0, y1, x0, x1) slice bounds of the mask's pixels grown by pad, clipped; None if empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    h, w = mask.shape
    return max(0, rows[0] - pad), min(h, rows[-1] + 1 + pad), max(0, cols[0] - pad), min(w, cols[-1] + 1 + pad)


def _flat_noise(resid: np.ndarray, region: np.ndarray):
    """(noise sigma, mask used) over the pixels of `region` where the signal is flat, or (0.0, None) when
    fewer than MIN_NOISE_PIXELS are, whatever the cut. Flat: |residual| under FLAT_TOL gray levels, or
    under CLIP_SIGMAS noise sigmas where the noise itself is stronger than FLAT_TOL (a fixed cut would
    truncate it): the cut is raised (by half while too few pixels pass it, then to CLIP_SIGMAS x the
    sigma read) until it stops moving. The mask is eroded by 2 px so that every residual's 5x5 support
    lies inside it (as `noise_level` does)."""
    thr, best = FLAT_TOL, (0.0, None)
    for _ in range(16):
        m = _valid(region & (np.abs(resid) < np.float32(thr * _HP_NORM)), 2)
        if np.count_nonzero(m) < MIN_NOISE_PIXELS:
            if best[1] is not None or thr > 64 * FLAT_TOL:
                break
            thr *= 1.5
            continue
        best = (_mad_sigma(resid[m]), m)
        new = max(FLAT_TOL, CLIP_SIGMAS * best[0])
        if new <= 1.05 * thr:
            break
        thr = new
    return best


def _background_noise(image: np.ndarray, dist: np.ndarray, context_px: int):
    """(gray noise sigma, mean per-channel noise variance) of the background around a footprint as
    stored (8 bits; `dist`: distance to the footprint), read on the flat pixels of the ring 2..context_px
    px around it (`_flat_noise`), else on every pixel of that ring; (0, 0) when there is no ring."""
    img8 = stored(image)
    rg = _residual(cv2.cvtColor(img8, cv2.COLOR_RGB2GRAY))
    ring = (dist > 2) & (dist <= context_px)
    sigma, m = _flat_noise(rg, ring)
    if m is None:
        m = _valid(ring, 2)
        if not m.any():
            return 0.0, 0.0
        sigma = _mad_sigma(rg[m])
    y0, y1, x0, x1 = _box(m, 2)
    return sigma, _mad_sigma(_residual(img8[y0:y1, x0:x1])[m[y0:y1, x0:x1]]) ** 2


def _flat_inner(artwork: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The logo's inner pixels (inner_mask, 2 px) where its artwork is flat (HP residual under FLAT_TOL
    gray levels), eroded by 2 px; all inner pixels (eroded) when fewer than MIN_NOISE_PIXELS are flat.
    Give the artwork as drawn (before light and camera): a blurred edge is still detail, not noise."""
    inner = inner_mask(alpha, 2)
    r = _residual(_gray(artwork))
    m = _valid(inner & (np.abs(r) < np.float32(FLAT_TOL * _HP_NORM)), 2)
    return m if np.count_nonzero(m) >= MIN_NOISE_PIXELS else _valid(inner, 2)


def _reading(rgb: np.ndarray, m: np.ndarray) -> float:
    """Gray noise sigma of `rgb` as stored (8 bits), over the pixels of m."""
    return _mad_sigma(_residual(cv2.cvtColor(stored(rgb), cv2.COLOR_RGB2GRAY))[m])


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
    return _gauss_table()[rng.integers(0, 65536, size=shape, dtype=np.uint16)]


def _chol3(c: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a symmetric positive definite 3x3 matrix, float32 (closed form)."""
    (a, b, d), (_, e, f), (_, _, g) = np.asarray(c, np.float64).tolist()
    l00 = math.sqrt(a)
    l10, l20 = b / l00, d / l00
    l11 = math.sqrt(max(e - l10 * l10, 1e-12))
    l21 = (f - l20 * l10) / l11
    l22 = math.sqrt(max(g - l20 * l20 - l21 * l21, 1e-12))
    return np.array([[l00, 0, 0], [l10, l11, 0], [l20, l21, l22]], np.float32)


# ---------------------------------------------------------------- camera: sensor (noise, coring)

def _add_matched_noise(out, w, m, y_now, bg_sigma, bg_var_c, seed) -> None:
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
    vc = max(0.0, bg_var_c - _mad_sigma(_residual(stored(base))[m_box]) ** 2)
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
    gain = np.sqrt(np.maximum(np.float32(1.0) - (np.float32(1.0) - wf) ** 2, np.float32(0.0)))
    noise = cv2.transform(z, _chol3(cov + 1e-9 * np.eye(3))) * gain[..., None]
    part = np.zeros(base.shape, np.float32)  # the noise over the measured box
    ny0, ny1, nx0, nx1 = max(y0, fy0), min(y1, fy1), max(x0, fx0), min(x1, fx1)
    part[ny0 - y0:ny1 - y0, nx0 - x0:nx1 - x0] = noise[ny0 - fy0:ny1 - fy0, nx0 - fx0:nx1 - fx0]
    scale = _solve_increasing(lambda t: _reading(base + np.float32(t) * part, m_box) - bg_sigma,
                              y_now - bg_sigma, math.sqrt(vy), 4.0 * math.sqrt(vy), NOISE_MATCH_TOL * bg_sigma)
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
    _check_inputs(alpha, composite=composite)
    if artwork is not None:
        _check_inputs(alpha, artwork=artwork)
    out = np.clip(composite, 0.0, 255.0).astype(np.float32)
    foot = alpha > ALPHA_EPS
    if not params.match_noise or not foot.any():
        return out
    # everything read lies within context_px of the footprint, plus the residual's 2 px support
    y0, y1, x0, x1 = _box(foot, int(params.context_px) + 4)
    crop, a = out[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    bg_sigma, bg_var_c = _background_noise(crop, _distance_outside(a), params.context_px)
    _sensor(crop, np.clip(a, 0.0, 1.0), _flat_inner(crop if artwork is None else artwork[y0:y1, x0:x1], a),
            bg_sigma, bg_var_c, params.noise_seed)
    return np.clip(out, 0.0, 255.0, out=out)


def _sensor(out, w, m, bg_sigma, bg_var_c, seed) -> None:
    """The noise `out` lacks (in place) so that, as stored, it reads bg_sigma on the pixels m."""
    if bg_sigma <= 0 or not m.any():
        return
    y0, y1, x0, x1 = _box(m, 2)
    y_now = _reading(out[y0:y1, x0:x1], m[y0:y1, x0:x1])
    if y_now < bg_sigma:
        _add_matched_noise(out, w, m, y_now, bg_sigma, bg_var_c, seed)


# ---------------------------------------------------------------- camera: optics (blur)

def _motion_kernel(length, angle_deg):
    n = int(math.ceil(length)) | 1
    k = np.zeros((n, n), np.float32)
    c, t = (n - 1) / 2.0, math.radians(angle_deg)
    dx, dy = 0.5 * (length - 1) * math.cos(t), 0.5 * (length - 1) * math.sin(t)
    sh = 4  # sub-pixel line end points
    p0 = (int(round((c - dx) * 2 ** sh)), int(round((c - dy) * 2 ** sh)))
    p1 = (int(round((c + dx) * 2 ** sh)), int(round((c + dy) * 2 ** sh)))
    cv2.line(k, p0, p1, 1.0, 1, cv2.LINE_AA, sh)
    return k / k.sum()


def _match_blur_sigma(logo_gray, alpha, valid, target, max_sigma):
    """Gaussian sigma that brings the (clean) logo's sharpness down to `target`. Blurring widens edges:
    1/sharpness^2 grows about linearly in sigma^2, so a secant search on u = sigma^2 of
    F(u) = 1/sharpness^2 - 1/target^2 converges in two or three steps."""

    def inv_sq(u):
        g = logo_gray
        if u > 0:
            blur = _gauss(math.sqrt(u))
            g = blur(logo_gray * alpha) / np.maximum(blur(alpha), 1e-3)  # read only inside the logo
        lap_e, grad_e = _energies(g, valid)
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
    _check_inputs(alpha, logo_rgb=logo_rgb, canvas_roi=canvas_roi)
    out, a = logo_rgb.astype(np.float32, copy=True), alpha.astype(np.float32, copy=True)
    p = params
    if not (p.match_blur or p.motion_blur) or _footprint_box(alpha) is None:
        return out, a
    if p.match_blur and p.max_blur_sigma > 0:
        dist = _distance_outside(alpha)
        near = dist <= p.context_px
        # the background the logo is seen against: the ring around it, not what it will cover
        ring, inner = _valid(near & (dist > 2)), _valid(inner_mask(alpha, 2))
        if inner.any():
            # the ring's content sharpness (its noise removed) against the logo's (artwork: clean)
            target = _signal_sharpness(*_energies(_gray(canvas_roi), ring),
                                       _gray_noise_var(canvas_roi, _valid(near, 2)))
            if not math.isnan(target):  # else: no structure around the logo to read a blur from
                sigma = _match_blur_sigma(_gray(out), alpha, inner, target, p.max_blur_sigma)
                if sigma >= 0.2:
                    blur = _gauss(sigma)
                    out, a = _masked_filter(out, alpha, blur), np.clip(blur(a), 0, 1)
    if p.motion_blur and p.motion_length > 1:
        k = _motion_kernel(p.motion_length, p.motion_angle)
        blur = lambda x: cv2.filter2D(x, -1, k)  # noqa: E731
        out, a = _masked_filter(out, a, blur), np.clip(blur(a), 0, 1)
    return out, a


def match_camera_rgba(logo_rgb: np.ndarray, alpha: np.ndarray, canvas_roi: np.ndarray,
                      params: CameraParams) -> tuple[np.ndarray, np.ndarray]:
    """`match_camera`, also returning the alpha blurred by the same sharpness/motion blur."""
    out, a = match_optics(logo_rgb, alpha, canvas_roi, params)
    np.clip(out, 0.0, 255.0, out=out)
    if params.match_noise and _footprint_box(alpha) is not None:
        # the sensor half on the logo's own pixels, against the background around it before the paste
        bg_sigma, bg_var_c = _background_noise(canvas_roi, _distance_outside(alpha), params.context_px)
        _sensor(out, (a > ALPHA_EPS).astype(np.float32), _flat_inner(logo_rgb, a), bg_sigma, bg_var_c,
                params.noise_seed)
    return np.clip(out, 0.0, 255.0, out=out), a


def match_camera(logo_rgb: np.ndarray, alpha: np.ndarray, canvas_roi: np.ndarray,
                 params: CameraParams) -> np.ndarray:
    """Blur the logo to the local background's sharpness, optional motion blur, then give it the noise of
    the background around it (`match_optics`, then `match_sensor` on the logo laid over `canvas_roi`).
    Returns a new float32 (h, w, 3) array in 0..255; use `match_camera_rgba` to get the blurred alpha too."""
    return match_camera_rgba(logo_rgb, alpha, canvas_roi, params)[0]
