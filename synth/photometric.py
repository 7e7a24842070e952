"""Light stage of the realism engine: a pasted logo lit like its surroundings.

Inputs, per object, all for one region of interest (ROI) of the canvas:
  * `logo_rgb`   float32 (h, w, 3) in 0..255, the warped logo colour (undefined where alpha is 0);
  * `alpha`      float32 (h, w) in [0, 1], the warped logo opacity;
  * `canvas_roi` float32 (h, w, 3) in 0..255, the canvas under that ROI BEFORE this logo is pasted.
Give the ROI a margin around the footprint (`needed_margin`, `pad_roi`) so that the context ring and the
whole soft shadow lie inside it: `shadow` cannot darken pixels outside the ROI, so without a margin the
shadow ends in a straight cut at the ROI's edge. The estimates also use the background under the footprint
(not yet covered), so relighting still works on a ROI without margin.
Call `relight` (and the camera stage's `synth.camera.match_optics`) on the unshadowed canvas, then `shadow`
(a logo is not darkened by its own shadow, nor its blur read from it), then blend (then the camera stage's
`match_sensor` on the blended composite).

Local background ("context"): the ROI pixels within `context_px` of the footprint (alpha > 0.01), under and
around it, found with one distance transform (synth.measure.distance_outside).

`sample_light` -> `LightParams`, `relight`, `shadow`:
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

Every effect has an on/off switch in `LightConfig`; with all switches off the stage is the identity.
`sample_light` draws the same numbers in the same order whatever the switches, so turning one effect off
does not change the others' draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from synth.errors import ConfigError, InputImageError
from synth.errors import check_field_int as _check_int, check_field_number as _check_value, \
    check_field_pair as _check_range
from synth.pixels import clip_to
from synth.measure import (LUMA, check_alpha, check_inputs, distance_outside, footprint_box, gaussian,
                           kernel_size, to_gray)

DEFAULT_REFERENCE_LUMA = 118.0
_SHADING_SIGMA_PX = 3.0  # the shading field is computed on a copy downsampled to make its sigma this
_GAMMA_STEPS = 4096  # gamma through a lookup table of this many steps over 0..255


# ---------------------------------------------------------------- config and parameters

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


# ---------------------------------------------------------------- ROI margin

def needed_margin(alpha: np.ndarray, params: LightParams) -> int:
    """Margin in px a ROI needs around this footprint so that the context ring and the whole soft shadow
    (offset + 3 sigma of blur) fit inside it."""
    box = footprint_box(check_alpha(alpha))
    reach = 0.0
    if box is not None and params.shadow:
        reach = (math.hypot(params.shadow_dx, params.shadow_dy) + 3.0 * params.shadow_blur) * box[4]
    return int(math.ceil(max(float(params.context_px), reach))) + 1


def pad_roi(logo_rgb: np.ndarray, alpha: np.ndarray, roi, margin_px: int, canvas_hw):
    """Grows roi = (y0, x0, y1, x1) by margin_px on each side (clipped to the canvas) and pads `logo_rgb`
    and `alpha` to match with zeros. Returns (logo_rgb, alpha, roi)."""
    check_inputs(alpha, logo_rgb=logo_rgb)
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
    k = kernel_size(s)
    num, den = cv2.GaussianBlur(ys, (k, k), s), cv2.GaussianBlur(ms, (k, k), s)
    mean = float(cv2.sumElems(luma * m)[0] / max(cv2.sumElems(m)[0], 1.0))
    field = np.where(den > 1e-3, num / np.maximum(den, 1e-3), mean).astype(np.float32)
    return cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)


def relight(logo_rgb: np.ndarray, alpha: np.ndarray, canvas_roi: np.ndarray, params: LightParams,
            reference_luma: float | None = None) -> np.ndarray:
    """Lights the logo like its local background (shading, colour cast), then jitter and glare.
    Returns a new float32 (h, w, 3) array in 0..255. `reference_luma` overrides params.reference_luma."""
    check_inputs(alpha, logo_rgb=logo_rgb, canvas_roi=canvas_roi)
    out = logo_rgb.astype(np.float32, copy=True)
    box = footprint_box(alpha)
    if box is None:
        return out
    y0, x0, y1, x1, size = box
    p = params
    if p.shading_strength > 0 or p.cast_strength > 0:
        context = distance_outside(alpha) <= p.context_px
        scale = np.ones(3, np.float32)  # per-channel colour cast
        if p.cast_strength > 0:
            mean = np.asarray(cv2.mean(canvas_roi, mask=context.astype(np.uint8))[:3], np.float64)
            luma = float(np.dot(mean, LUMA))
            if luma > 1.0:
                c = np.clip(mean / luma, 0.5, 2.0) ** p.cast_strength
                scale = (c / float(np.dot(c, LUMA))).astype(np.float32)
        if p.shading_strength > 0:
            ref = float(reference_luma if reference_luma is not None else p.reference_luma)
            if not ref > 0:
                raise ConfigError(f"reference_luma = {ref!r} is invalid: expected a positive luminance")
            field = _light_field(to_gray(canvas_roi), context, p.shading_blur_frac * size)
            gain = cv2.pow(np.maximum(field, 1e-3) * np.float32(1.0 / ref), p.shading_strength)
            np.clip(gain, p.min_gain, p.max_gain, out=gain)
            out *= cv2.merge([gain * scale[0], gain * scale[1], gain * scale[2]])
        else:
            out *= scale
    if p.gamma != 1.0:
        lut = (255.0 * np.linspace(0.0, 1.0, _GAMMA_STEPS + 1) ** p.gamma).astype(np.float32)
        clip_to(out, 255.0, out=out)
        idx = out * np.float32(_GAMMA_STEPS / 255.0)
        idx += np.float32(0.5)
        out = lut.take(idx.astype(np.intp))  # (take converts any other index type to intp first)
    if p.contrast != 1.0 or p.brightness != 0.0:  # contrast about the logo's mean luminance
        g = to_gray(clip_to(out, 255.0))
        m = float(cv2.sumElems(g * alpha)[0]) / max(float(cv2.sumElems(alpha)[0]), 1e-6)
        out *= np.float32(p.contrast)
        out += np.float32(m * (1.0 - p.contrast) + p.brightness)
    clip_to(out, 255.0, out=out)
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
    check_inputs(alpha, canvas_roi=canvas_roi)
    out = canvas_roi.astype(np.float32, copy=True)
    box = footprint_box(alpha)
    if not params.shadow or params.shadow_opacity <= 0 or box is None:
        return out
    size = box[4]
    h, w = alpha.shape
    m = np.float32([[1, 0, params.shadow_dx * size], [0, 1, params.shadow_dy * size]])
    a = cv2.warpAffine(alpha, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    sigma = params.shadow_blur * size
    if sigma >= 0.3:
        a = gaussian(sigma)(a)
    keep = 1.0 - np.float32(params.shadow_opacity) * a
    return out * cv2.merge([keep, keep, keep])
