"""Curved surfaces: a logo wrapped around a cylinder (cans, bottles, cups) or bent by a gentle fold
(cloth, paper), shaded across the wrap.

The logo is curved in its own plane first, into a "frame" (an RGBA image holding the curved
logo); the planar placement then lays that frame on the image with its homography, exactly as it
lays a flat logo (synth.geometry, synth.scene). Everything downstream (the warp, the light and
camera stages, blending, the tight box of visible pixels, the gate) works on the frame as it works
on a flat logo: the gate compares the composite with the curved, shaded artwork as pasted (its
homography is the frame's). The background audit (synth.audit) looks for logos in backgrounds
before anything is pasted, so curved objects never meet it.

Coordinates. A logo of lh x lw pixels is taken in units of its width, centred: the pixel-centre
point (u, v) is (a, b) = ((u + 0.5 - lw / 2) / lw, (v + 0.5 - lh / 2) / lw), so the logo spans
a in [-1/2, 1/2] and b in [-lh / (2 lw), lh / (2 lw)]. A curve maps (a, b) to (x, y) in the same
units (orthographic view; the perspective comes from the placement's homography afterwards):

- cylinder: the axis runs along the logo's vertical, the logo covers `wrap_deg` of the
  circumference, so the radius is r = 1 / wrap (radians) and the logo's arc length is its width.
      theta = a * wrap + azimuth       (azimuth: the logo's centre turned away from the viewer)
      x = r sin(theta),   depth z = r (1 - cos(theta))
      y = b cos(tilt) + z sin(tilt)    (tilt: the axis pitched toward the viewer; rows become arcs)
  The front (theta = 0) keeps unit scale; |theta| stays under 90 degrees (every point faces the
  camera), so the map is one-to-one. Shading is Lambertian with the light at `light_deg` around the
  axis (0: from the camera): shade = 1 - shading + shading * max(0, cos(theta - light)), which
  darkens toward the limbs; a glossy `highlight` adds a vertical band toward white at the half
  angle theta = light / 2, Gaussian of HIGHLIGHT_SIGMA_RAD.
- fold: a height field across the direction at `fold_angle_deg` in the logo's plane,
  z(s) = height sin(2 pi periods s + phase), s = a cos(angle) + b sin(angle) (height in units of
  the logo's width), seen at a slant: every point moves along that direction by z(s) sin(slant).
  The map is one-to-one while height * 2 pi periods * |sin(slant)| < 1 (validation keeps
  height * 2 pi periods <= MAX_FOLD_STEEPNESS). Shading by slope: the normal (-z', 1) lit from
  `light_deg` across the folds, Lambert relative to the brightest slope the fold has,
  shade = 1 - shading * (1 - lambert / lambert_max).

The frame is the bounding rectangle of the curved logo (its extents found on its outline, sampled
OUTLINE_SAMPLES times per side, in units of the width, so the same for every resolution), stretched
to whole pixels: frame pixel (fx, fy) = ((x - x0) / (x1 - x0) * fw - 0.5, (y - y0) / (y1 - y0) * fh - 0.5)
with fw = round(k lw (x1 - x0)), fh = round(k lw (y1 - y0)), k the frame's `scale` over the logo's
resolution (a logo pasted larger than its artwork is enlarged by the curve's own resampling).
`forward_map` gives where a logo pixel lands in the frame (compose it with the homography for the
image: `to_image`); `warp` renders the frame by the inverse map (closed form for the cylinder,
Newton's method on a table for the fold) with premultiplied alpha, and the shading and highlight
maps; `apply` gives the shaded RGBA frame.
`sample_curvature` draws a CurvatureParams record (or None: flat) from an explicit generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from synth.errors import ConfigError

KINDS = ("cylinder", "fold")
MAX_WRAP_DEG = 160.0  # the most of a circumference a logo may cover
MAX_THETA_DEG = 85.0  # |wrap / 2| + |azimuth| stays under this: the limbs are seen, not grazed
MAX_TILT_DEG = 45.0
MAX_FOLD_STEEPNESS = 0.9  # height * 2 pi * periods: under 1 the fold never folds over itself
HIGHLIGHT_SIGMA_RAD = 0.12
OUTLINE_SAMPLES = 257
_NEWTON_STEPS = 12
FOLD_TABLE = 4097
MAX_SCALE = 16.0  # the largest enlargement of a frame over its logo's resolution


@dataclass(frozen=True)
class CurvatureConfig:
    cylinder_probability: float = 0.0
    fold_probability: float = 0.0
    wrap_deg: tuple = (40.0, 140.0)  # share of the circumference the logo covers, drawn uniformly
    max_tilt_deg: float = 20.0  # the cylinder's axis pitched toward or away from the viewer
    max_azimuth_deg: float = 15.0  # the logo's centre turned away from the front
    max_light_deg: float = 50.0  # the light's direction around the axis (cylinder) or across the folds
    max_highlight: float = 0.35  # strength of a cylinder's glossy band, drawn in [0, max]
    fold_height: tuple = (0.02, 0.06)  # the fold's height amplitude, share of the logo's width
    fold_periods: tuple = (0.5, 2.0)  # waves across the logo's width
    max_fold_angle_deg: float = 30.0  # the folds' direction, from the logo's vertical
    max_fold_slant_deg: float = 45.0  # the view's slant across the folds (moves points by the height)
    shading: tuple = (0.15, 0.5)  # how much darker the darkest point is, drawn uniformly

    def __post_init__(self):
        def fail(name, allowed):
            raise ConfigError(f"curvature {name} = {getattr(self, name)!r} is invalid: {allowed}")

        def pair(name, lo, hi):
            v = getattr(self, name)
            if not (isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(x, (int, float))
                    and not isinstance(x, bool) and math.isfinite(x) for x in v) and lo <= v[0] <= v[1] <= hi):
                fail(name, f"need two numbers (min, max) with {lo:g} <= min <= max <= {hi:g}")

        for name in ("cylinder_probability", "fold_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                fail(name, "must be a probability in [0, 1]")
        if self.cylinder_probability + self.fold_probability > 1.0 + 1e-6:
            fail("fold_probability", f"cylinder_probability + fold_probability must be <= 1 "
                 f"(cylinder_probability is {self.cylinder_probability:g})")
        pair("wrap_deg", 1.0, MAX_WRAP_DEG)
        if not 0.0 <= self.max_azimuth_deg or self.wrap_deg[1] / 2 + self.max_azimuth_deg > MAX_THETA_DEG:
            fail("max_azimuth_deg", f"must be >= 0 with max wrap / 2 + max_azimuth_deg <= {MAX_THETA_DEG:g} "
                 f"(max wrap is {self.wrap_deg[1]:g}): beyond it the logo runs round the limb")
        for name, hi in (("max_tilt_deg", MAX_TILT_DEG), ("max_light_deg", 90.0), ("max_fold_angle_deg", 90.0),
                         ("max_fold_slant_deg", 75.0), ("max_highlight", 1.0)):
            if not 0.0 <= getattr(self, name) <= hi:
                fail(name, f"must be in [0, {hi:g}]")
        pair("fold_height", 0.0, 0.5)
        pair("fold_periods", 0.05, 10.0)
        if self.fold_height[1] * 2 * math.pi * self.fold_periods[1] > MAX_FOLD_STEEPNESS:
            fail("fold_height", f"max height x 2 pi x max periods ({self.fold_periods[1]:g}) must be <= "
                 f"{MAX_FOLD_STEEPNESS:g}: steeper folds fold the logo over itself")
        pair("shading", 0.0, 0.95)


@dataclass(frozen=True)
class CurvatureParams:
    kind: str  # one of KINDS
    light_deg: float  # the light's direction around the axis (cylinder) or across the folds (fold)
    shading: float  # 0: no shading; the darkest point keeps 1 - shading of its colour
    wrap_deg: float = 0.0  # cylinder: the share of the circumference the logo covers
    tilt_deg: float = 0.0  # cylinder: the axis pitched toward the viewer
    azimuth_deg: float = 0.0  # cylinder: the logo's centre turned away from the front
    highlight: float = 0.0  # cylinder: the glossy band's strength
    fold_height: float = 0.0  # fold: height amplitude, share of the logo's width
    fold_periods: float = 0.0  # fold: waves across the logo's width
    fold_phase_deg: float = 0.0
    fold_angle_deg: float = 0.0  # fold: the waves run along this direction (0: the logo's x axis)
    fold_slant_deg: float = 0.0  # fold: the view's slant across the folds

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"curvature kind {self.kind!r} must be one of {', '.join(KINDS)}")
        if self.kind == "cylinder" and not (0 < self.wrap_deg <= MAX_WRAP_DEG
                                            and self.wrap_deg / 2 + abs(self.azimuth_deg) <= MAX_THETA_DEG
                                            and abs(self.tilt_deg) <= MAX_TILT_DEG):
            raise ConfigError(f"cylinder wrap_deg {self.wrap_deg!r}, azimuth_deg {self.azimuth_deg!r}, "
                              f"tilt_deg {self.tilt_deg!r} out of range (wrap in (0, {MAX_WRAP_DEG:g}], "
                              f"wrap / 2 + |azimuth| <= {MAX_THETA_DEG:g}, |tilt| <= {MAX_TILT_DEG:g})")
        if self.kind == "fold" and not (self.fold_height * 2 * math.pi * self.fold_periods
                                        * abs(math.sin(math.radians(self.fold_slant_deg))) < 1.0):
            raise ConfigError(f"fold height {self.fold_height!r} x 2 pi x periods {self.fold_periods!r} x "
                              f"sin(slant {self.fold_slant_deg!r}) must be < 1 (the fold would fold over)")


def sample_curvature(rng: np.random.Generator, cfg: CurvatureConfig) -> CurvatureParams | None:
    """One draw of the kind (cylinder, fold or flat, by the probabilities), then that kind's
    values in a fixed order. None: the logo stays flat."""
    u = float(rng.random())
    sym = lambda m: float(rng.uniform(-m, m))  # noqa: E731
    if u < cfg.cylinder_probability:
        wrap = float(rng.uniform(*cfg.wrap_deg))
        tilt, az, light = sym(cfg.max_tilt_deg), sym(cfg.max_azimuth_deg), sym(cfg.max_light_deg)
        shading = float(rng.uniform(*cfg.shading))
        highlight = float(rng.uniform(0.0, cfg.max_highlight))
        return CurvatureParams("cylinder", light, shading, wrap_deg=wrap, tilt_deg=tilt, azimuth_deg=az,
                               highlight=highlight)
    if u < cfg.cylinder_probability + cfg.fold_probability:
        height, periods = float(rng.uniform(*cfg.fold_height)), float(rng.uniform(*cfg.fold_periods))
        phase = float(rng.uniform(0.0, 360.0))
        angle, slant, light = sym(cfg.max_fold_angle_deg), sym(cfg.max_fold_slant_deg), sym(cfg.max_light_deg)
        shading = float(rng.uniform(*cfg.shading))
        return CurvatureParams("fold", light, shading, fold_height=height, fold_periods=periods,
                               fold_phase_deg=phase, fold_angle_deg=angle, fold_slant_deg=slant)
    return None


# -- the map in units of the logo's width ----------------------------------------------------

def _curve(cp: CurvatureParams, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) -> (x, y), both in units of the logo's width (see the module docstring)."""
    if cp.kind == "cylinder":
        wrap = math.radians(cp.wrap_deg)
        r, tilt = 1.0 / wrap, math.radians(cp.tilt_deg)
        theta = a * wrap + math.radians(cp.azimuth_deg)
        z = r * (1.0 - np.cos(theta))
        return r * np.sin(theta), b * math.cos(tilt) + z * math.sin(tilt)
    c, s = math.cos(math.radians(cp.fold_angle_deg)), math.sin(math.radians(cp.fold_angle_deg))
    shift = _fold_shift(cp, a * c + b * s)
    return a + shift * c, b + shift * s


def _fold_k_phase(cp: CurvatureParams) -> tuple[float, float, float]:
    """(wave number, phase, displacement amplitude) of a fold."""
    return (2 * math.pi * cp.fold_periods, math.radians(cp.fold_phase_deg),
            cp.fold_height * math.sin(math.radians(cp.fold_slant_deg)))


def _fold_shift(cp: CurvatureParams, s: np.ndarray) -> np.ndarray:
    k, ph, amp = _fold_k_phase(cp)
    return amp * np.sin(k * s + ph)


def _uncurve(cp: CurvatureParams, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of `_curve`: (x, y) -> (a, b). Points no logo point maps to come back outside
    the logo (the cylinder's x beyond its radius is clipped to the limb)."""
    if cp.kind == "cylinder":
        wrap = math.radians(cp.wrap_deg)
        r, tilt = 1.0 / wrap, math.radians(cp.tilt_deg)
        theta = np.arcsin(np.clip(x / r, -1.0, 1.0))
        a = (theta - math.radians(cp.azimuth_deg)) / wrap
        a = np.where(np.abs(x / r) > 1.0, 10.0, a)  # beyond the limb: outside the logo
        z = r * (1.0 - np.cos(theta))
        return a, (y - z * math.sin(tilt)) / math.cos(tilt)
    c, s = math.cos(math.radians(cp.fold_angle_deg)), math.sin(math.radians(cp.fold_angle_deg))
    target = x * c + y * s  # s' = s + amp sin(k s + ph): monotone in s, the root within amp of s'
    across = -x * s + y * c
    t = _fold_unshift(cp, target)
    return t * c - across * s, t * s + across * c


def _fold_unshift(cp: CurvatureParams, target: np.ndarray) -> np.ndarray:
    """s with s + shift(s) = target. Newton's method (kept within amp of target, where the root is)
    on a table of FOLD_TABLE values spanning target's range, then linear interpolation in it (its
    error stays under 1e-5 of the logo's width for the folds validation allows)."""
    k, ph, amp = _fold_k_phase(cp)
    lo, hi = float(np.min(target)), float(np.max(target))
    table = np.linspace(lo, hi, FOLD_TABLE) if target.size > FOLD_TABLE else np.asarray(target, np.float64)
    t = table.copy()
    for _ in range(_NEWTON_STEPS):
        f = t + amp * np.sin(k * t + ph) - table
        t = np.clip(t - f / (1.0 + amp * k * np.cos(k * t + ph)), table - abs(amp), table + abs(amp))
    if target.size > FOLD_TABLE:
        return np.interp(target, table, t)
    return t.reshape(np.shape(target))


def _extents(cp: CurvatureParams, aspect_hw: float) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1): the curved logo's bounding rectangle in units of its width."""
    t = np.linspace(-0.5, 0.5, OUTLINE_SAMPLES)
    hb = 0.5 * aspect_hw
    a = np.concatenate([t, np.full_like(t, 0.5), t, np.full_like(t, -0.5)])
    b = np.concatenate([np.full_like(t, -hb), t * 2 * hb, np.full_like(t, hb), t * 2 * hb])
    x, y = _curve(cp, a, b)
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def frame_size(cp: CurvatureParams, logo_hw) -> tuple[float, float]:
    """(height, width) of the curved logo's frame, in the logo's pixels (not rounded): what the
    placement lays on the image in place of the flat logo's (lh, lw)."""
    lh, lw = (float(v) for v in logo_hw)
    x0, y0, x1, y1 = _extents(cp, lh / lw)
    return (y1 - y0) * lw, (x1 - x0) * lw


def frame_hw(cp: CurvatureParams, logo_hw, scale: float = 1.0) -> tuple[int, int]:
    """(fh, fw): the frame's whole-pixel size for a logo of `logo_hw` pixels, drawn `scale` times
    the logo's own resolution (an enlarged paste is then resampled once, by the curve, not twice)."""
    h, w = frame_size(cp, logo_hw)
    return max(2, int(round(h * scale))), max(2, int(round(w * scale)))


def forward_map(cp: CurvatureParams, logo_hw, uv, scale: float = 1.0) -> np.ndarray:
    """(N, 2) logo pixel-centre points (x = column, y = row) -> (N, 2) pixel coordinates of the
    frame drawn at `scale` (see frame_hw)."""
    lh, lw = (float(v) for v in logo_hw)
    p = np.asarray(uv, np.float64).reshape(-1, 2)
    x, y = _curve(cp, (p[:, 0] + 0.5 - lw / 2) / lw, (p[:, 1] + 0.5 - lh / 2) / lw)
    x0, y0, x1, y1 = _extents(cp, lh / lw)
    fh, fw = frame_hw(cp, logo_hw, scale)
    return np.stack([(x - x0) / (x1 - x0) * fw - 0.5, (y - y0) / (y1 - y0) * fh - 0.5], axis=1)


def to_image(cp: CurvatureParams, logo_hw, H: np.ndarray, uv, scale: float = 1.0) -> np.ndarray:
    """Logo pixel points -> image pixels: `forward_map` then the frame's homography H."""
    f = forward_map(cp, logo_hw, uv, scale)
    q = f @ np.asarray(H, np.float64)[:, :2].T + np.asarray(H, np.float64)[:, 2]
    return q[:, :2] / q[:, 2:3]


def _frame_grid(cp: CurvatureParams, logo_hw, scale: float):
    """Per frame pixel: its (a, b) on the logo and the logo pixel it samples (map_x, map_y). (The
    cylinder's inverse is one value per column and a shift of the rows: computed per column.)"""
    lh, lw = (float(v) for v in logo_hw)
    x0, y0, x1, y1 = _extents(cp, lh / lw)
    fh, fw = frame_hw(cp, logo_hw, scale)
    xs = x0 + (np.arange(fw) + 0.5) / fw * (x1 - x0)
    ys = y0 + (np.arange(fh) + 0.5) / fh * (y1 - y0)
    if cp.kind == "cylinder":
        a_col, b_top = _uncurve(cp, xs, np.zeros_like(xs))  # b = (y - z sin(tilt)) / cos(tilt)
        a = np.broadcast_to(a_col[None, :], (fh, fw))
        b = b_top[None, :] + ys[:, None] / math.cos(math.radians(cp.tilt_deg))
    else:
        x, y = np.meshgrid(xs, ys)
        a, b = _uncurve(cp, x, y)
    return a, b, (a * lw + lw / 2 - 0.5).astype(np.float32), (b * lw + lh / 2 - 0.5).astype(np.float32)


def _shading_maps(cp: CurvatureParams, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shade, highlight) float32 maps at logo points (a, b): colour x shade, then toward white by highlight."""
    light = math.radians(cp.light_deg)
    if cp.kind == "cylinder":  # a cylinder's maps depend on the column alone
        a_row = np.asarray(a)[:1] if np.ndim(a) == 2 else np.asarray(a)
        theta = np.clip(a_row, -0.5, 0.5) * math.radians(cp.wrap_deg) + math.radians(cp.azimuth_deg)
        shade = 1.0 - cp.shading + cp.shading * np.maximum(0.0, np.cos(theta - light))
        hl = cp.highlight * np.exp(-0.5 * ((theta - light / 2) / HIGHLIGHT_SIGMA_RAD) ** 2)
        return (np.broadcast_to(shade.astype(np.float32), np.shape(a)),
                np.broadcast_to(hl.astype(np.float32), np.shape(a)))
    k, ph, _ = _fold_k_phase(cp)
    c, s = math.cos(math.radians(cp.fold_angle_deg)), math.sin(math.radians(cp.fold_angle_deg))
    steep = cp.fold_height * k
    slope = steep * np.cos(k * (a * c + b * s) + ph)
    lam = np.maximum(0.0, (math.cos(light) - slope * math.sin(light)) / np.sqrt(1.0 + slope ** 2))
    lam_max = math.cos(max(0.0, abs(light) - math.atan(steep)))
    shade = 1.0 - cp.shading * (1.0 - lam / lam_max)
    return shade.astype(np.float32), np.zeros(np.shape(a), np.float32)


def _check_logo(logo_rgba) -> None:
    if not (isinstance(logo_rgba, np.ndarray) and logo_rgba.ndim == 3 and logo_rgba.shape[2] == 4
            and logo_rgba.dtype == np.uint8):
        raise ValueError(f"curvature needs an RGBA uint8 logo, got {getattr(logo_rgba, 'dtype', None)} "
                         f"{getattr(logo_rgba, 'shape', None)}")


def _remap(logo_rgba: np.ndarray, cp: CurvatureParams, premultiplied: np.ndarray | None, scale: float):
    """(the frame, premultiplied float32 (fh, fw, 4) with opacity 0..1; a; b)."""
    _check_logo(logo_rgba)
    if not (math.isfinite(scale) and 0 < scale <= MAX_SCALE):
        raise ValueError(f"curvature: frame scale {scale!r} must be in (0, {MAX_SCALE:g}]")
    a, b, mx, my = _frame_grid(cp, logo_rgba.shape[:2], scale)
    if premultiplied is None:
        alpha = logo_rgba[..., 3:4].astype(np.float32) / 255.0
        premultiplied = np.concatenate([logo_rgba[..., :3].astype(np.float32) * alpha, alpha], axis=2)
    out = cv2.remap(premultiplied, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                    borderValue=(0, 0, 0, 0))
    np.clip(out[..., 3], 0.0, 1.0, out=out[..., 3])
    return out, a, b


def _to_uint8(pre: np.ndarray, factor: np.ndarray, add: np.ndarray | None) -> np.ndarray:
    """RGBA uint8 of a premultiplied frame: colour = premultiplied x factor / opacity (+ add)."""
    al = pre[..., 3]
    empty = al <= 1e-6
    f = factor / np.maximum(al, np.float32(1e-6))
    rgba = np.empty(pre.shape, np.float32)
    np.multiply(pre[..., :3], f[..., None], out=rgba[..., :3])
    if add is not None:
        rgba[..., :3] += add[..., None]
    rgba[..., 3] = al * np.float32(255.0)
    rgba += np.float32(0.5)
    out = np.clip(rgba, 0, 255, out=rgba).astype(np.uint8)
    out[empty] = 0
    return out


def warp(logo_rgba: np.ndarray, cp: CurvatureParams, scale: float = 1.0):
    """The curved frame of an RGBA uint8 logo, unshaded, and its maps: (rgba uint8 (fh, fw, 4),
    shade float32 (fh, fw), highlight float32 (fh, fw)); the maps are 1 and 0 where the frame holds no logo."""
    pre, a, b = _remap(logo_rgba, cp, None, scale)
    shade, hl = _shading_maps(cp, a, b)
    inside = pre[..., 3] > 0
    return (_to_uint8(pre, np.ones(pre.shape[:2], np.float32), None),
            np.where(inside, shade, 1.0).astype(np.float32), np.where(inside, hl, 0.0).astype(np.float32))


def apply(logo_rgba: np.ndarray, cp: CurvatureParams, premultiplied: np.ndarray | None = None,
          scale: float = 1.0) -> np.ndarray:
    """The curved, shaded RGBA uint8 frame of a logo: what the placement lays on the image. Colour
    = logo colour x shade, then toward white by the highlight: c x shade x (1 - hl) + 255 hl.
    `premultiplied`: geometry.premultiply(logo_rgba) when the caller keeps it; `scale`: see frame_hw."""
    pre, a, b = _remap(logo_rgba, cp, premultiplied, scale)
    shade, hl = _shading_maps(cp, a, b)
    if cp.highlight > 0:
        return _to_uint8(pre, shade * (1.0 - hl), hl * np.float32(255.0))
    return _to_uint8(pre, shade, None)
