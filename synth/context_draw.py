"""Drawing a context (synth.context) into the photo: pixels from a ContextParams record, no randomness.

The backdrop lights the surface: its low-frequency luminance (a Gaussian of 12 % of the image's
shorter side) shades the context (exponent `backdrop_shading`), its mean level sets the context's
exposure and its mean colour a colour cast; its noise level (synth.measure.noise_level) is added as
sensor noise, so that the camera stage finds a surface that reads like the photo. The surface's own
light: a gradient (sign, shirt, close-up), cylinder shading with a specular stripe and a metal lid
(band), folds (shirt), a vignette (close-up); a lighter rim (sign); a drop shadow on the backdrop;
a grain (woven threads on fabric). `render` returns, besides the image and the coverage, the light
and grain that a logo printed on the surface shares (synth.scene uses them).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

from synth import geometry, measure
from synth.context import ContextParams, homography, outline

LID_RGB = (186, 188, 192)  # the metal lid of a can
MID_GREY = 118.0  # the light stage's reference luminance (synth.photometric.DEFAULT_REFERENCE_LUMA)


def coverage(p: ContextParams, out_hw) -> np.ndarray:
    """float32 (h, w) in [0, 1]: how much of each canvas pixel the context covers (soft edge)."""
    oh, ow = out_hw
    poly = outline(p)
    if poly is None:
        return np.ones((oh, ow), np.float32)
    pts = np.round(geometry.apply_h(homography(p), poly) * 16).astype(np.int32)
    m = np.zeros((oh, ow), np.uint8)
    cv2.fillPoly(m, [pts], 255, cv2.LINE_AA, 4)
    cover = m.astype(np.float32) / 255.0
    if p.edge_px > 0.3:
        cover = cv2.GaussianBlur(cover, (0, 0), p.edge_px)
    return cover


def _plane_coords(H: np.ndarray, out_hw):
    """(u, v) plane coordinates of every canvas pixel centre, float32 (h, w) each."""
    oh, ow = out_hw
    G = geometry.inv3(H)
    xs, ys = np.meshgrid(np.arange(ow, dtype=np.float64), np.arange(oh, dtype=np.float64))
    wz = G[2, 0] * xs + G[2, 1] * ys + G[2, 2]
    u = (G[0, 0] * xs + G[0, 1] * ys + G[0, 2]) / wz
    v = (G[1, 0] * xs + G[1, 1] * ys + G[1, 2]) / wz
    return u.astype(np.float32), v.astype(np.float32)


def _surface_light(p: ContextParams, u, v, rng) -> tuple:
    """(multiplicative shading (h, w), additive highlight share (h, w) or None) of the surface itself."""
    w, h = p.size
    a = math.radians(p.light_deg)
    if p.shape == "band":  # cylinder: diffuse light from angle light_deg, a specular stripe at half of it
        theta = np.arcsin(np.clip(2.0 * u / w, -1.0, 1.0))
        diffuse = np.maximum(np.cos(theta - a), 0.0)
        amb = p.gradient
        shade = (amb + (1.0 - amb) * diffuse) / (amb + (1.0 - amb))
        spec = p.gloss * np.exp(-((theta - 0.5 * a) / 0.12) ** 2)
        return shade.astype(np.float32), spec.astype(np.float32)
    half = 0.5 * math.hypot(w, h)
    t = (u * math.cos(a) + v * math.sin(a)) / half
    shade = 1.0 + p.gradient * np.clip(t, -1.5, 1.5)
    if p.shape == "shirt":  # folds: a few low-frequency ridges across the fabric
        for _ in range(3):
            ang, lam, ph, amp = rng.uniform(0, math.pi), rng.uniform(0.25, 0.6) * min(w, h), \
                rng.uniform(0, 2 * math.pi), rng.uniform(0.04, 0.12)
            shade = shade * (1.0 + amp * np.cos(2 * math.pi * (u * math.cos(ang) + v * math.sin(ang)) / lam + ph))
    if p.shape == "closeup":  # a soft vignette of the lens
        r2 = (u / (w / 2)) ** 2 + (v / (h / 2)) ** 2
        shade = shade * (1.0 - (0.1 + 0.3 * rng.random()) * np.clip(r2 / 2.0, 0, 1))
    return shade.astype(np.float32), None


def _backdrop_light(backdrop: np.ndarray, cover: np.ndarray, k: float):
    """(shading field (h, w), per-channel gain (3,)) that the backdrop's low-frequency light puts
    on the context: its luminance relative to the mean under the context, to the power k; the
    exposure of that mean (against a mid gray of 118) and a colour cast, to the powers k and k/2."""
    oh, ow = cover.shape
    small = cv2.resize(backdrop, (max(8, ow // 4), max(8, oh // 4)), interpolation=cv2.INTER_AREA).astype(np.float32)
    sigma = 0.12 * min(oh, ow) / 4
    blur = cv2.GaussianBlur(small, (0, 0), sigma)
    blur = cv2.resize(blur, (ow, oh), interpolation=cv2.INTER_LINEAR)
    luma = measure.to_gray(blur)
    wgt = cover >= 0.5
    if not wgt.any():
        wgt = np.ones_like(wgt)
    mean_l = max(float(luma[wgt].mean()), 8.0)
    field = np.clip(luma / mean_l, 0.5, 1.5) ** k
    mean_rgb = blur[wgt].mean(axis=0)
    cast = np.clip(mean_rgb / max(float(mean_rgb.mean()), 8.0), 0.8, 1.25) ** (0.5 * k)
    exposure = float(np.clip(mean_l / 118.0, 0.4, 1.05)) ** k
    return field.astype(np.float32), (cast * exposure).astype(np.float32)


class Drawn(NamedTuple):
    image: np.ndarray  # RGB uint8: the backdrop with the context drawn on it
    cover: np.ndarray  # float32 (h, w) in [0, 1]: how much of each pixel the context covers
    light: np.ndarray  # float32 (h, w, 3): a mid-grey (MID_GREY) surface lit as the context is, what the
    # light stage reads instead of the context's paint for a logo printed on it
    grain: np.ndarray  # float32 (h, w): the material's grain (gray levels), which a print on it shares
    backdrop: np.ndarray  # RGB uint8: the photo without the context, whose optics (blur) a print on it shares


def render(backdrop: np.ndarray, p: ContextParams) -> Drawn:
    """The backdrop (RGB uint8, not changed) with the context drawn on it, and what a logo printed on
    it needs (`Drawn`). Deterministic: every random detail comes from p.seed."""
    out_hw = backdrop.shape[:2]
    rng = np.random.default_rng(p.seed)
    H = homography(p)
    cover = coverage(p, out_hw)
    u, v = _plane_coords(H, out_hw)
    shade, spec = _surface_light(p, u, v, rng)
    field, gain = _backdrop_light(backdrop, cover, p.backdrop_shading)
    colour = np.asarray(p.colour, np.float32)
    lit = (shade * field)[..., None] * gain[None, None, :]
    ctx = colour[None, None, :] * lit
    light = MID_GREY * lit
    if p.shape == "band":  # the metal lid above the body's near arc
        w, h = p.size
        e = max(p.corner * w, 1e-3)
        lid = ((u / (w / 2)) ** 2 + ((v + h / 2) / e) ** 2) <= 1.0
        sheen = 0.75 + 0.35 * np.clip(0.5 - (v + h / 2) / (2 * e), 0, 1)  # brighter toward its far rim
        lid_rgb = np.asarray(LID_RGB, np.float32) * sheen[..., None]
        ctx = np.where(lid[..., None], lid_rgb * field[..., None] * gain[None, None, :], ctx)
        spec = np.where(lid, 0.0, spec)
    if spec is not None:
        ctx = ctx + spec[..., None] * (255.0 - ctx) * np.minimum(field, 1.0)[..., None]
        light = light + spec[..., None] * (255.0 - light) * np.minimum(field, 1.0)[..., None]
    if p.shape == "sign" and p.gloss > 0:  # a lighter rim along the panel's edge
        hard = (cover >= 0.5).astype(np.uint8)
        rim = hard - cv2.erode(hard, np.ones((3, 3), np.uint8), iterations=2)
        ctx = ctx + (p.gloss * rim.astype(np.float32))[..., None] * (255.0 - ctx)
    # the material's grain (a woven fabric's threads, in the plane's perspective) and the photo's own sensor noise
    grain = cv2.GaussianBlur(rng.standard_normal(out_hw).astype(np.float32), (0, 0), 0.5) * (p.texture * 1.5)
    if p.shape == "shirt" or (p.shape == "closeup" and rng.random() < 0.5):
        period = rng.uniform(2.5, 5.0) / p.scale  # px -> plane units
        twill = rng.random() < 0.5
        a, b = (u + v, u - v) if twill else (u, v)
        weave = np.cos(2 * math.pi * a / period) * np.cos(2 * math.pi * b / period)
        grain = grain + (p.texture * 2.0) * weave.astype(np.float32)
    gray = measure.to_gray(backdrop.astype(np.float32))
    sigma = measure.noise_level(gray, cover >= 0.5)
    noise = rng.standard_normal(out_hw).astype(np.float32) * sigma
    ctx = ctx + (grain + noise)[..., None]
    grain = grain * cover
    bg = backdrop.astype(np.float32)
    dx, dy, blur, opacity = p.shadow
    if opacity > 0:
        M = np.float32([[1, 0, dx], [0, 1, dy]])
        sh = cv2.warpAffine(cover, M, (out_hw[1], out_hw[0]), flags=cv2.INTER_LINEAR, borderValue=0)
        sh = cv2.GaussianBlur(sh, (0, 0), max(blur, 0.5))
        bg = bg * (1.0 - opacity * sh)[..., None]
    c3 = cover[..., None]
    img = bg * (1.0 - c3) + ctx * c3
    return Drawn(np.clip(img + 0.5, 0, 255).astype(np.uint8), cover, np.clip(light, 0, 255).astype(np.float32),
                 grain.astype(np.float32), backdrop)


def logo_inside(quad, cover: np.ndarray, min_cover: float = 0.95) -> bool:
    """True when every canvas pixel whose centre lies in the quad is covered at least `min_cover`."""
    oh, ow = cover.shape
    m = np.zeros((oh, ow), np.uint8)
    cv2.fillConvexPoly(m, np.round(np.asarray(quad, np.float64) * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    return bool(m.any()) and float(cover[m > 0].min()) >= min_cover


def overlap(quad, cover: np.ndarray) -> float:
    """Share of the quad's footprint covered by the context (mean coverage over its pixels)."""
    oh, ow = cover.shape
    m = np.zeros((oh, ow), np.uint8)
    cv2.fillConvexPoly(m, np.round(np.asarray(quad, np.float64) * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    return float(cover[m > 0].mean()) if m.any() else 0.0
