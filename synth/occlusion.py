"""Occluders over logos and unlabelled distractors.

Occluders. With probability ``p_occluder`` an object gets one occluder: an irregular
polygon that enters the object's box from one side (top, bottom, left or right) and
reaches a depth of ``fraction`` x the box extent across that side, where ``fraction``
is drawn from ``occluded_fraction`` (so about that share of the box is covered). The
inner edge is a wavy line of ``EDGE_VERTICES`` points whose depths vary by up to
+-25 % of the mean depth plus a random tilt; the polygon runs out past the box by 0.3
to 1.0 box extents on the outer side (two independently drawn corners, sides slanted by up
to 15 % of the box) and 5 to 30 % along the side, so it looks like
something passing in front rather than a patch cut to the box. Its edge is softened
with a Gaussian of sigma ``edge_softness_px`` (drawn from the range). Its fill is
either ("texture", probability ``p_texture``) the background itself at another place
(``source_dx, source_dy``, at least one box extent away where the canvas allows), times
a shade factor 0.6..1.15, so it looks like a real object in front; or a "flat" colour;
or a linear "gradient" between two colours.

The occluder changes only the canvas. The caller multiplies each covered logo's
opacity by ``1 - occ_alpha``; a box is then the tight box of the pixels whose visible
opacity is still >= synth.boxes.VISIBLE_ALPHA.

Distractors. ``distractor_count`` (inclusive range) shapes per image that a detector
must learn not to fire on: filled ellipses, filled polygons, thick lines and random
text strings (cv2.putText with a random Hershey font, scale, thickness and a rotation
of +-30 degrees). Each is at most ``distractor_size`` x the canvas's shorter side.
They carry no label; `render_distractors` returns their combined opacity so a caller
that draws them over logos can reduce the logos' visible opacity the same way.

All drawing is done on the region of interest of each shape, never the whole canvas.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

import cv2
import numpy as np

from synth.errors import ConfigError, InputImageError, check_range_pair

SIDES = ("top", "bottom", "left", "right")
OCCLUDER_FILLS = ("texture", "flat", "gradient")
DISTRACTOR_KINDS = ("ellipse", "polygon", "line", "text")
EDGE_VERTICES = 7
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX,
         cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL,
         cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX)
_TEXT_CHARS = string.ascii_letters + string.digits
_SHIFT = 4  # cv2 fixed-point bits for sub-pixel polygon vertices


def _range(value, what: str, lo: float, hi: float, integer: bool = False) -> None:
    check_range_pair(what, value, lo, hi, integer)


@dataclass(frozen=True)
class OcclusionConfig:
    p_occluder: float = 0.3  # probability that an object gets an occluder
    occluded_fraction: tuple = (0.1, 0.4)  # share of the object's box the occluder reaches across
    p_texture: float = 0.6  # fill from another patch of the background; else flat or gradient
    edge_softness_px: tuple = (0.6, 2.0)  # Gaussian sigma of the occluder's edge
    distractor_count: tuple = (0, 3)  # inclusive
    distractor_size: tuple = (0.05, 0.3)  # share of the canvas's shorter side

    def __post_init__(self):
        for name in ("p_occluder", "p_texture"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise ConfigError(f"occlusion {name} {v!r} must be a probability in [0, 1]")
        _range(self.occluded_fraction, "occlusion occluded_fraction", 0.0, 0.95)
        _range(self.edge_softness_px, "occlusion edge_softness_px", 0.0, 20.0)
        _range(self.distractor_count, "occlusion distractor_count", 0, 100, integer=True)
        _range(self.distractor_size, "occlusion distractor_size", 0.005, 1.0)


@dataclass(frozen=True)
class OccluderParams:
    side: str  # where it enters the object's box
    fraction: float  # drawn depth as a share of the box extent across the side
    vertices: tuple  # ((x, y), ...) canvas pixel coordinates, x = column
    softness: float  # Gaussian sigma of the edge, pixels
    fill: str  # one of OCCLUDER_FILLS
    source_dx: int  # texture: pixel (x, y) takes background (x + dx, y + dy)
    source_dy: int
    shade: float  # texture: brightness factor
    colour_a: tuple  # flat colour, or gradient start (r, g, b)
    colour_b: tuple  # gradient end
    gradient_angle: float  # radians, direction from colour_a to colour_b


@dataclass(frozen=True)
class DistractorParams:
    kind: str  # one of DISTRACTOR_KINDS
    colour: tuple  # (r, g, b)
    opacity: float
    points: tuple  # ellipse: ((cx, cy), (ax, ay)) centre and semi-axes; polygon/line: vertices; text: ((x, y),) origin
    angle: float  # degrees: ellipse and text rotation (polygon and line vertices are already placed)
    thickness: int  # line and text stroke width, pixels
    text: str = ""
    font: int = 0
    font_scale: float = 1.0


def _colour(rng: np.random.Generator) -> tuple:
    return tuple(int(v) for v in rng.integers(0, 256, size=3))


def sample_occluder(rng: np.random.Generator, obj_box_px, out_hw, cfg: OcclusionConfig) -> OccluderParams | None:
    """Draws an occluder for the object in pixel box (y0, x0, y1, x1), or None (no occluder)."""
    out_h, out_w = (int(v) for v in out_hw)
    y0, x0, y1, x1 = (float(v) for v in obj_box_px)
    if not (y1 > y0 and x1 > x0 and out_h > 0 and out_w > 0):
        raise ConfigError(f"sample_occluder: object box {tuple(obj_box_px)} must be (y0, x0, y1, x1) with "
                          f"y0 < y1, x0 < x1 on a canvas of size {tuple(out_hw)}")
    if rng.random() >= cfg.p_occluder:
        return None
    side = SIDES[int(rng.integers(4))]
    fraction = float(rng.uniform(*cfg.occluded_fraction))
    # Work in a frame where the occluder enters from "left": u runs into the box, v along the side.
    horizontal = side in ("left", "right")
    ext_u, ext_v = (x1 - x0, y1 - y0) if horizontal else (y1 - y0, x1 - x0)
    depth = fraction * ext_u
    t = np.linspace(0.0, 1.0, EDGE_VERTICES)
    tilt = float(rng.uniform(-0.25, 0.25))
    wobble = rng.uniform(-0.25, 0.25, size=EDGE_VERTICES)
    depths = depth * (1.0 + tilt * (t - 0.5) * 2.0 + wobble)
    depths = np.clip(depths, 0.0, ext_u)
    depths *= depth / max(float(depths.mean()), 1e-6)  # keep the mean depth at the drawn fraction
    v_lo = -ext_v * float(rng.uniform(0.05, 0.3))
    v_hi = ext_v * (1.0 + float(rng.uniform(0.05, 0.3)))
    outer = -ext_u * rng.uniform(0.3, 1.0, size=2)  # the two outer corners, slanted sides
    slant = ext_v * rng.uniform(-0.15, 0.15, size=2)
    frame = [(float(outer[0]), v_lo + float(slant[0]))] \
        + [(float(d), float(v_lo + (v_hi - v_lo) * s)) for d, s in zip(depths, t)] \
        + [(float(outer[1]), v_hi + float(slant[1]))]

    def to_canvas(u: float, v: float) -> tuple:
        if side == "left":
            return (x0 + u, y0 + v)
        if side == "right":
            return (x1 - u, y0 + v)
        if side == "top":
            return (x0 + v, y0 + u)
        return (x0 + v, y1 - u)

    vertices = tuple((round(x, 3), round(y, 3)) for x, y in (to_canvas(u, v) for u, v in frame))
    softness = float(rng.uniform(*cfg.edge_softness_px))
    u = rng.random()
    fill = "texture" if u < cfg.p_texture else ("flat" if rng.random() < 0.5 else "gradient")
    # Texture source: a place for the occluder's bounding box elsewhere on the canvas, preferably
    # at least one box extent away from the object (a few tries, then the farthest).
    xs, ys = [p[0] for p in vertices], [p[1] for p in vertices]
    bx0, by0, bw, bh = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    best, best_d = (0, 0), -1.0
    for _ in range(8):
        sx = float(rng.uniform(0.0, max(0.0, out_w - bw)))
        sy = float(rng.uniform(0.0, max(0.0, out_h - bh)))
        dx, dy = int(round(sx - bx0)), int(round(sy - by0))
        d = max(abs(dx) / max(x1 - x0, 1.0), abs(dy) / max(y1 - y0, 1.0))
        if d > best_d:
            best, best_d = (dx, dy), d
        if d >= 1.0:
            break
    return OccluderParams(side=side, fraction=round(fraction, 6), vertices=vertices,
                          softness=round(softness, 6), fill=fill, source_dx=best[0], source_dy=best[1],
                          shade=round(float(rng.uniform(0.6, 1.15)), 6), colour_a=_colour(rng),
                          colour_b=_colour(rng), gradient_angle=round(float(rng.uniform(0, 2 * math.pi)), 6))


def _roi_of_points(points, pad: float, h: int, w: int):
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    rx0 = max(0, int(math.floor(min(xs) - pad)))
    ry0 = max(0, int(math.floor(min(ys) - pad)))
    rx1 = min(w, int(math.ceil(max(xs) + pad)) + 1)
    ry1 = min(h, int(math.ceil(max(ys) + pad)) + 1)
    if rx1 <= rx0 or ry1 <= ry0:
        return None
    return ry0, rx0, ry1, rx1


def _check_canvas(canvas: np.ndarray, what: str) -> None:
    if not (isinstance(canvas, np.ndarray) and canvas.dtype == np.uint8 and canvas.ndim == 3
            and canvas.shape[2] == 3):
        raise InputImageError(f"{what} must be an RGB uint8 HxWx3 array, got shape "
                              f"{getattr(canvas, 'shape', None)} dtype {getattr(canvas, 'dtype', None)}")


def _reflect(idx: np.ndarray, n: int) -> np.ndarray:
    period = 2 * n
    idx = np.mod(idx, period)
    return np.where(idx < n, idx, period - 1 - idx)


def occluder_region(params: OccluderParams, canvas_hw):
    """(y0, x0, y1, x1): the canvas region `render_occluder` may change (its opacity is 0 outside
    it), or None when the occluder misses the canvas."""
    return _roi_of_points(params.vertices, 3.0 * params.softness + 2.0, int(canvas_hw[0]), int(canvas_hw[1]))


def render_occluder(canvas: np.ndarray, background: np.ndarray, params: OccluderParams, inplace: bool = False):
    """Draws the occluder; returns (canvas, occ_alpha HxW float32). The canvas is copied first
    unless `inplace`; the background is never changed.

    ``background`` supplies the texture fill (normally the fitted background of this canvas;
    indices outside it are mirrored)."""
    _check_canvas(canvas, "render_occluder: canvas")
    _check_canvas(background, "render_occluder: background")
    h, w = canvas.shape[:2]
    out = canvas if inplace else canvas.copy()
    occ = np.zeros((h, w), np.float32)
    roi = occluder_region(params, (h, w))
    if roi is None:
        return out, occ
    ry0, rx0, ry1, rx1 = roi
    mask = np.zeros((ry1 - ry0, rx1 - rx0), np.uint8)
    # Pixel (c, r) covers [c, c + 1); its centre is c + 0.5, hence the -0.5 shift for cv2's centres.
    pts = np.array([[(x - rx0 - 0.5) * (1 << _SHIFT), (y - ry0 - 0.5) * (1 << _SHIFT)]
                    for x, y in params.vertices]).round().astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, shift=_SHIFT)
    a = mask.astype(np.float32) / 255.0
    if params.softness > 0:
        a = cv2.GaussianBlur(a, (0, 0), params.softness, borderType=cv2.BORDER_REPLICATE)
    if params.fill == "texture":
        sy0, sx0 = ry0 + params.source_dy, rx0 + params.source_dx
        sy1, sx1 = sy0 + (ry1 - ry0), sx0 + (rx1 - rx0)
        bh, bw = background.shape[:2]
        if 0 <= sy0 and sy1 <= bh and 0 <= sx0 and sx1 <= bw:
            src = background[sy0:sy1, sx0:sx1]
        else:  # partly outside the background: mirror the indices
            src = background[_reflect(np.arange(sy0, sy1), bh)[:, None], _reflect(np.arange(sx0, sx1), bw)[None, :]]
        fill = src.astype(np.float32) * np.float32(params.shade)
    elif params.fill == "flat":
        fill = np.empty((ry1 - ry0, rx1 - rx0, 3), np.float32)
        fill[...] = params.colour_a
    elif params.fill == "gradient":
        cy = np.arange(ry0, ry1, dtype=np.float32)[:, None] * np.float32(math.sin(params.gradient_angle))
        cx = np.arange(rx0, rx1, dtype=np.float32)[None, :] * np.float32(math.cos(params.gradient_angle))
        proj = cy + cx  # position along the gradient direction
        lo, hi = float(proj.min()), float(proj.max())
        t = ((proj - lo) * np.float32(1.0 / max(hi - lo, 1e-6)))[..., None]
        ca, cb = np.float32(params.colour_a), np.float32(params.colour_b)
        fill = ca + (cb - ca) * t
    else:
        raise ConfigError(f"occluder fill {params.fill!r} is unknown; valid fills are {', '.join(OCCLUDER_FILLS)}")
    region = out[ry0:ry1, rx0:rx1].astype(np.float32)
    a3 = a[..., None]
    out[ry0:ry1, rx0:rx1] = np.clip(region * (1.0 - a3) + fill * a3 + 0.5, 0, 255).astype(np.uint8)
    occ[ry0:ry1, rx0:rx1] = a
    return out, occ


def sample_distractors(rng: np.random.Generator, out_hw, n_range=None,
                       cfg: OcclusionConfig | None = None) -> list[DistractorParams]:
    """Draws unlabelled distractors; `n_range` (inclusive) overrides cfg.distractor_count."""
    cfg = cfg if cfg is not None else OcclusionConfig()
    out_h, out_w = (int(v) for v in out_hw)
    if out_h <= 0 or out_w <= 0:
        raise ConfigError(f"sample_distractors: canvas size {tuple(out_hw)} must be positive (height, width)")
    n_range = tuple(n_range) if n_range is not None else tuple(cfg.distractor_count)
    _range(n_range, "sample_distractors n_range", 0, 100, integer=True)
    n = int(rng.integers(int(n_range[0]), int(n_range[1]) + 1))
    short = min(out_h, out_w)
    out = []
    for _ in range(n):
        kind = DISTRACTOR_KINDS[int(rng.integers(len(DISTRACTOR_KINDS)))]
        size = short * float(rng.uniform(*cfg.distractor_size))
        cx, cy = float(rng.uniform(0, out_w)), float(rng.uniform(0, out_h))
        colour, opacity = _colour(rng), round(float(rng.uniform(0.6, 1.0)), 6)
        angle = round(float(rng.uniform(-30.0, 30.0)), 6)
        thickness = max(1, int(round(size * float(rng.uniform(0.03, 0.12)))))
        if kind == "ellipse":
            ax, ay = size / 2.0, size / 2.0 * float(rng.uniform(0.3, 1.0))
            points = ((round(cx, 3), round(cy, 3)), (round(ax, 3), round(ay, 3)))
            out.append(DistractorParams(kind, colour, opacity, points, angle, thickness))
        elif kind in ("polygon", "line"):
            k = int(rng.integers(3, 7)) if kind == "polygon" else int(rng.integers(2, 4))
            if kind == "polygon":  # a star-shaped polygon around the centre
                ang = np.sort(rng.uniform(0, 2 * math.pi, size=k))
                rad = size / 2.0 * rng.uniform(0.4, 1.0, size=k)
            else:  # a polyline through points spread over `size`
                ang = rng.uniform(0, 2 * math.pi, size=k)
                rad = size / 2.0 * rng.uniform(0.3, 1.0, size=k)
            points = tuple((round(cx + r * math.cos(t), 3), round(cy + r * math.sin(t), 3)) for r, t in zip(rad, ang))
            out.append(DistractorParams(kind, colour, opacity, points, angle, thickness))
        else:
            length = int(rng.integers(3, 11))
            text = "".join(_TEXT_CHARS[int(i)] for i in rng.integers(len(_TEXT_CHARS), size=length))
            font = FONTS[int(rng.integers(len(FONTS)))] | (cv2.FONT_ITALIC if rng.random() < 0.2 else 0)
            # Scale so the text height is about `size` / 3 (Hershey glyphs are ~22 px tall at scale 1).
            font_scale = round(max(0.3, size / 3.0 / 22.0), 4)
            thick = max(1, int(round(font_scale * float(rng.uniform(1.0, 3.0)))))
            out.append(DistractorParams(kind, colour, opacity, ((round(cx, 3), round(cy, 3)),), angle, thick,
                                        text=text, font=int(font), font_scale=font_scale))
    return out


def _distractor_mask(p: DistractorParams, h: int, w: int):
    """(roi, uint8 coverage mask over the roi) of one distractor, or None when off-canvas."""
    if p.kind == "text":
        (tw, th), base = cv2.getTextSize(p.text, p.font, p.font_scale, p.thickness)
        ph, pw = th + base + 2 * p.thickness + 2, tw + 2 * p.thickness + 2
        patch = np.zeros((ph, pw), np.uint8)
        cv2.putText(patch, p.text, (p.thickness + 1, th + p.thickness + 1), p.font, p.font_scale, 255,
                    p.thickness, cv2.LINE_AA)
        cx, cy = p.points[0]
        half = 0.5 * math.hypot(pw, ph) + 1
        roi = _roi_of_points([(cx - half, cy - half), (cx + half, cy + half)], 0.0, h, w)
        if roi is None:
            return None
        ry0, rx0, ry1, rx1 = roi
        m = cv2.getRotationMatrix2D((pw / 2.0, ph / 2.0), p.angle, 1.0)
        m[0, 2] += cx - rx0 - pw / 2.0
        m[1, 2] += cy - ry0 - ph / 2.0
        mask = cv2.warpAffine(patch, m, (rx1 - rx0, ry1 - ry0), flags=cv2.INTER_LINEAR)
        return roi, mask
    if p.kind == "ellipse":
        (cx, cy), (ax, ay) = p.points
        r = max(ax, ay)
        roi = _roi_of_points([(cx - r, cy - r), (cx + r, cy + r)], 2.0, h, w)
    else:
        roi = _roi_of_points(p.points, p.thickness + 2.0, h, w)
    if roi is None:
        return None
    ry0, rx0, ry1, rx1 = roi
    mask = np.zeros((ry1 - ry0, rx1 - rx0), np.uint8)
    s = 1 << _SHIFT
    if p.kind == "ellipse":
        (cx, cy), (ax, ay) = p.points
        cv2.ellipse(mask, (int(round((cx - rx0) * s)), int(round((cy - ry0) * s))),
                    (int(round(ax * s)), int(round(ay * s))), p.angle, 0, 360, 255, -1, cv2.LINE_AA, _SHIFT)
    else:
        pts = np.array([[(x - rx0) * s, (y - ry0) * s] for x, y in p.points]).round().astype(np.int32)
        if p.kind == "polygon":
            cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, shift=_SHIFT)
        else:
            cv2.polylines(mask, [pts], False, 255, p.thickness, cv2.LINE_AA, shift=_SHIFT)
    return roi, mask


def render_distractors(canvas: np.ndarray, params_list, opacity: bool = True):
    """Draws distractors in order; returns (new canvas, combined opacity HxW float32, or None when
    `opacity` is False)."""
    _check_canvas(canvas, "render_distractors: canvas")
    h, w = canvas.shape[:2]
    out = canvas.copy()
    alpha = np.zeros((h, w), np.float32) if opacity else None
    for p in params_list:
        if p.kind not in DISTRACTOR_KINDS:
            raise ConfigError(f"distractor kind {p.kind!r} is unknown; valid kinds are {', '.join(DISTRACTOR_KINDS)}")
        got = _distractor_mask(p, h, w)
        if got is None:
            continue
        (ry0, rx0, ry1, rx1), mask = got
        a = mask.astype(np.float32) * (p.opacity / 255.0)
        region = out[ry0:ry1, rx0:rx1].astype(np.float32)
        a3 = a[..., None]
        out[ry0:ry1, rx0:rx1] = np.clip(region * (1.0 - a3) + np.float32(p.colour) * a3 + 0.5, 0, 255).astype(np.uint8)
        if alpha is not None:
            prev = alpha[ry0:ry1, rx0:rx1]
            alpha[ry0:ry1, rx0:rx1] = 1.0 - (1.0 - prev) * (1.0 - a)
    return out, alpha
