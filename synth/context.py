"""Context: the logo on its own product, in the brand's colours, filling a large part of the image.

Real photos of a brand are very often photos *of* its product: a can, a sign, a shirt, a shop front,
in the brand's colours, with the logo on it. This stage draws such a surface under the first logo of
a composite (a share `probability` of composites) and places that logo on it.

Shapes (drawn by weight), each a surface in the photo rather than a flat sticker:
  sign     a panel with rounded corners, in perspective (tilt up to 30 degrees), a drop shadow on the
           backdrop, a light gradient across it and a lighter rim
  band     a can or bottle body seen slightly from above: elliptic top and bottom edges, a metal lid,
           cylinder shading across its width (diffuse light and a specular stripe), a drop shadow
  shirt    a soft-edged blob of fabric: a wobbly outline, feathered edge, folds, coarse grain
  closeup  the whole frame is the product's surface (a tilted plane with a light gradient)

Colours come from the artwork (`brand_colours`): the logo's dominant colours (`palette`), its plate
colour (`logo { plate_colour }` when given), a light tint and a dark shade of its dominant colour,
and, at a low weight (NEUTRAL_WEIGHT), white and near-black, the commonest colours of products.
Only those that swallow at most MAX_LOST_SHARE of the logo as drawn in its colourway (`lost_share`:
its pixels within MIN_COLOUR_DISTANCE in RGB) are used, so a red logo is not drawn on red; where
every colour swallows more, the one that swallows least. A logo in the "plate" colourway, or
`colour_source: "plate"`, sits on its plate colour (plate_colour, else its dominant colour).

How the surface looks in the photo (lit by the backdrop, with its grain, noise and shadow) is
synth.context_draw's part.

The surface maps a plane (units: pixels before `scale`) to the canvas with the homography
T(centre) S(scale) Tilt(tilt) R(roll) (`homography`); `scale` is fitted when sampling so that the
part inside the image covers the drawn `area_share` of it (a close-up covers all of it).
`sample_logo_quad` lays the logo on that plane inside the shape's inner part (never crossing its
edge) at the width the size prior asks for (synth.framing), held between `min_logo_share` and
`max_logo_share` of the inner part's width, and inside the image.

`sample_context(rng, cfg, ...)` draws everything once (one uniform against `probability`, then a
fixed block of draws) into a `ContextParams` record; synth.context_draw.render(backdrop, params)
draws it, deterministically (the grain's noise comes from the record's seed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from synth import colourway, geometry
from synth.errors import ConfigError, check_fields

SHAPES = ("sign", "band", "shirt", "closeup")
COLOUR_SOURCES = ("brand", "plate")
MIN_COLOUR_DISTANCE = 120.0  # an ink of the logo nearer than this (RGB) to the context colour is lost on it
MAX_LOST_SHARE = 0.15  # a context colour may lose at most this share of the logo's pixels as drawn
NEUTRALS = (("white", (244, 243, 238)), ("black", (24, 24, 27)))
NEUTRAL_WEIGHT = 0.2  # white and near-black, the commonest colours of products and signs, beside the brand's
TRIES = 24  # logo positions tried per size
SHRINK_ROUNDS = 3  # ... and sizes (each 0.75 of the last) before a placement fails
MARGIN_PX = 3  # the logo stays this far inside the image
INNER_WIDTH = {"sign": 0.85, "band": 0.72, "shirt": 0.57}  # about the inner part's share of the shape's width
CENTRE_SPREAD = 0.6  # the logo's centre lies in the middle 60 % of the room its inner part leaves it


@dataclass(frozen=True)
class ContextConfig:
    probability: float = 0.0  # share of composites whose first logo sits on a context
    min_area_share: float = 0.25  # share of the image a sign, band or shirt covers, drawn uniformly
    max_area_share: float = 0.9
    shape_weights: tuple = (1.0, 1.0, 1.0, 1.0)  # in SHAPES order
    colour_source: str = "brand"
    min_logo_share: float = 0.5  # the logo's width / the width of the shape's inner part
    max_logo_share: float = 0.9
    backdrop_shading: float = 0.6  # exponent of the backdrop's low-frequency luminance on the context

    def __post_init__(self):
        w = tuple(self.shape_weights)
        check_fields("ContextConfig", self, [
            ("probability", 0 <= self.probability <= 1, "in [0, 1]"),
            ("min_area_share", 0.05 <= self.min_area_share <= self.max_area_share, "in [0.05, max_area_share]"),
            ("max_area_share", self.max_area_share <= 1, "<= 1"),
            ("shape_weights", len(w) == len(SHAPES) and all(math.isfinite(v) and v >= 0 for v in w) and sum(w) > 0,
             f"{len(SHAPES)} weights ({', '.join(SHAPES)}) >= 0, not all 0"),
            ("colour_source", self.colour_source in COLOUR_SOURCES, f"one of {', '.join(COLOUR_SOURCES)}"),
            ("min_logo_share", 0.05 <= self.min_logo_share <= self.max_logo_share, "in [0.05, max_logo_share]"),
            ("max_logo_share", self.max_logo_share <= 1, "<= 1"),
            ("backdrop_shading", 0 <= self.backdrop_shading <= 1, "in [0, 1]")])


@dataclass(frozen=True)
class ContextParams:
    shape: str  # one of SHAPES
    logo_index: int  # the logo it is the product of, and that logo's colourway
    colourway: str
    colour: tuple  # (r, g, b) 0..255, before lighting
    colour_source: str  # which brand colour: "palette:K", "plate", "tint", "shade", "white", "black"
    area_share: float  # share of the image it covers (1.0: a close-up)
    centre: tuple  # (x, y) canvas pixels
    size: tuple  # (w, h) in plane units
    scale: float  # canvas pixels per plane unit (after the tilt), fitted to area_share
    roll_deg: float
    tilt_deg: tuple  # (about the plane's x axis, about its y axis)
    corner: float  # sign: corner radius / shorter side; band: lid depth / width; else 0
    wobble: tuple  # shirt: (amplitude, phase) of outline harmonics 2, 3, 4; else ()
    light_deg: float  # direction of the light across the surface (band: its angle to the viewer)
    gradient: float  # strength of the light gradient (band: the ambient share of the cylinder's light)
    gloss: float  # band: specular stripe; sign: lighter rim; else 0
    backdrop_shading: float  # exponent of the backdrop's low-frequency luminance
    edge_px: float  # edge softness (Gaussian sigma, px)
    shadow: tuple  # (dx, dy, blur sigma px, opacity) of its shadow on the backdrop
    texture: float  # amplitude of the material's grain, gray levels
    seed: int  # the grain's (and a shirt's folds') noise seed


# -- colours --------------------------------------------------------------------------------

def palette(logo_rgba: np.ndarray, k: int = 4, min_share: float = 0.05) -> list:
    """The logo's dominant colours: [((r, g, b), share of its opaque pixels)], most common first.
    Colours binned at 32 levels per channel (as colourway.dominant_colour); bins whose means lie
    within 48 of a commoner one are merged into it; shares under `min_share` are left out."""
    rgb = logo_rgba[..., :3][logo_rgba[..., 3] >= 128].astype(np.int32)
    if rgb.size == 0:
        return []
    bins = (rgb[:, 0] >> 5) * 64 + (rgb[:, 1] >> 5) * 8 + (rgb[:, 2] >> 5)
    counts = np.bincount(bins, minlength=512)
    out = []  # [mean float3, count]
    for b in np.argsort(-counts, kind="stable")[:16]:
        if counts[b] == 0:
            break
        mean = rgb[bins == b].mean(axis=0)
        for entry in out:
            if np.linalg.norm(entry[0] - mean) < 48:
                entry[1] += int(counts[b])
                break
        else:
            out.append([mean, int(counts[b])])
    n = float(len(rgb))
    res = [(tuple(int(round(v)) for v in m), c / n) for m, c in sorted(out, key=lambda e: -e[1])]
    return [(c, s) for c, s in res if s >= min_share][:k]


def _mix(a, b, t: float) -> tuple:
    return tuple(int(round((1 - t) * x + t * y)) for x, y in zip(a, b))


def _distance(a, b) -> float:
    return float(np.linalg.norm(np.subtract(a, b, dtype=np.float64)))


def brand_colours(logo_rgba: np.ndarray, drawn_rgba: np.ndarray, cw: str, plate_rgb, source: str = "brand") -> list:
    """[(name, (r, g, b), weight)]: the context colours for this logo in colourway `cw`
    (`drawn_rgba`: the logo as that colourway draws it), see the module docstring."""
    if source not in COLOUR_SOURCES:
        raise ConfigError(f"context colour_source {source!r} is unknown; valid values are {', '.join(COLOUR_SOURCES)}")
    plate = tuple(plate_rgb) if plate_rgb is not None else colourway.dominant_colour(logo_rgba)
    if source == "plate" or cw == "plate":
        return [("plate", plate, 1.0)]
    own = palette(logo_rgba)
    inks = palette(drawn_rgba, k=8, min_share=0.02)
    dom = own[0][0] if own else plate
    cands = [(f"palette:{i}", c, share) for i, (c, share) in enumerate(own)]
    if plate_rgb is not None:
        cands.append(("plate", plate, 1.0))
    cands += [("tint", _mix(dom, (255, 255, 255), 0.6), 0.3), ("shade", _mix(dom, (0, 0, 0), 0.8), 0.2)]
    cands += [(n, c, NEUTRAL_WEIGHT) for n, c in NEUTRALS]
    lost = [lost_share(c[1], inks) for c in cands]
    keep = [c for c, q in zip(cands, lost) if q <= MAX_LOST_SHARE]
    if not keep:  # every colour loses much of the logo: the one that loses least
        best = int(np.argmin(lost))
        keep = [(cands[best][0], cands[best][1], 1.0)]
    return keep


def lost_share(rgb, inks) -> float:
    """The share of the logo's pixels (`inks`: palette of the logo as drawn) whose colour lies within
    MIN_COLOUR_DISTANCE of `rgb`: what a context of that colour would swallow."""
    return float(sum(share for ink, share in inks if _distance(rgb, ink) < MIN_COLOUR_DISTANCE))


# -- geometry -------------------------------------------------------------------------------

def homography(p: ContextParams) -> np.ndarray:
    """Plane (units of p.size, origin at the shape's centre) -> canvas pixels."""
    w, h = p.size
    a = math.radians(p.roll_deg)
    c, s = math.cos(a), math.sin(a)
    R = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])  # counter-clockwise on a y-down screen
    T = geometry.tilt_homography(p.tilt_deg, geometry.TILT_DISTANCE * max(w, h))
    S = np.diag([p.scale, p.scale, 1.0])
    C = np.array([[1.0, 0.0, p.centre[0]], [0.0, 1.0, p.centre[1]], [0.0, 0.0, 1.0]])
    H = C @ S @ T @ R
    return H / H[2, 2]


def outline(p: ContextParams) -> np.ndarray | None:
    """The shape's outline in plane coordinates, (N, 2); None for a close-up (the whole frame)."""
    w, h = p.size
    if p.shape == "sign":
        r = p.corner * min(w, h)
        pts = []
        for cx, cy, a0 in ((w / 2 - r, -h / 2 + r, -90), (w / 2 - r, h / 2 - r, 0),
                           (-w / 2 + r, h / 2 - r, 90), (-w / 2 + r, -h / 2 + r, 180)):
            for k in range(9):
                a = math.radians(a0 + 90 * k / 8)
                pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
        return np.array(pts)
    if p.shape == "band":  # the body's silhouette with the lid: far arc of the top, near arc of the bottom
        e = p.corner * w
        t = np.linspace(-1.0, 1.0, 33)
        arc = np.sqrt(np.clip(1 - t * t, 0, 1))
        top = np.stack([t * w / 2, -h / 2 - e * arc], 1)
        bottom = np.stack([t[::-1] * w / 2, h / 2 + e * arc[::-1]], 1)
        return np.concatenate([top, bottom])
    if p.shape == "shirt":  # a torso: neckline, sloping shoulders, sleeve seams, sides, hem; wobbled
        right = [(0.18, -0.5), (0.5, -0.38), (0.46, -0.2), (0.43, 0.0), (0.44, 0.5)]
        neck = [(0.18 * math.cos(a), -0.5 + 0.1 * math.sin(a)) for a in np.linspace(math.pi, 0, 9)[1:-1]]
        half = [(-x, y) for x, y in reversed(right)] + neck + right
        pts = _densify(np.array(half) * [w, h], 6)
        th = np.arctan2(pts[:, 1] / h, pts[:, 0] / w)
        r = np.ones(len(pts))
        for k, (amp, ph) in enumerate(p.wobble, start=2):
            r += amp * np.cos(k * th + ph)
        return pts * r[:, None]
    return None


def _densify(poly: np.ndarray, per_side: int) -> np.ndarray:
    """The closed polygon with `per_side` points on each side (so that a wobble bends its sides)."""
    out = []
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):
        for t in np.arange(per_side) / per_side:
            out.append(a + t * (b - a))
    return np.array(out)


def _clip_area(poly: np.ndarray, out_hw) -> float:
    """Area of a polygon (canvas pixel-centre coordinates) inside the image (Sutherland-Hodgman)."""
    oh, ow = out_hw
    pts = [tuple(v) for v in poly]
    for axis, lim, keep_less in ((0, -0.5, False), (0, ow - 0.5, True), (1, -0.5, False), (1, oh - 0.5, True)):
        out = []
        for i, cur in enumerate(pts):
            prev = pts[i - 1]
            cin = cur[axis] <= lim if keep_less else cur[axis] >= lim
            pin = prev[axis] <= lim if keep_less else prev[axis] >= lim
            if cin != pin:
                t = (lim - prev[axis]) / (cur[axis] - prev[axis])
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            if cin:
                out.append(cur)
        pts = out
        if not pts:
            return 0.0
    x, y = np.array(pts).T
    return 0.5 * abs(float(x @ np.roll(y, -1) - y @ np.roll(x, -1)))


def visible_share(p: ContextParams, out_hw) -> float:
    """The share of the image that the shape covers (its outline clipped to the image)."""
    poly = outline(p)
    if poly is None:
        return 1.0
    return _clip_area(geometry.apply_h(homography(p), poly), out_hw) / float(out_hw[0] * out_hw[1])


def _fit_scale(p: ContextParams, out_hw) -> float:
    """The scale at which the shape covers p.area_share of the image (bisection: the shape is
    star-shaped about its centre, which lies in the image, so the share grows with the scale)."""
    lo, hi = 1e-3, 1.0
    while visible_share(replace(p, scale=hi), out_hw) < p.area_share and hi < 1e4:
        hi *= 2.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if visible_share(replace(p, scale=mid), out_hw) < p.area_share:
            lo = mid
        else:
            hi = mid
    return hi


def _inner(p: ContextParams):
    """(x0, y0, x1, y1) in plane coordinates: the part of the shape a logo may cover."""
    w, h = p.size
    if p.shape == "sign":
        m = max(0.6 * p.corner * min(w, h), 0.06 * min(w, h))
        return -w / 2 + m, -h / 2 + m, w / 2 - m, h / 2 - m
    if p.shape == "band":  # the front of the cylinder, below the lid's near arc
        e = p.corner * w
        return -0.36 * w, -h / 2 + e + 0.05 * h, 0.36 * w, h / 2 - 0.05 * h
    if p.shape == "shirt":  # the chest, below the neckline and between the sleeves
        rmin = 1.0 - sum(abs(a) for a, _ in p.wobble)
        return -0.3 * rmin * w, -0.28 * rmin * h, 0.3 * rmin * w, 0.25 * rmin * h
    return -w / 2, -h / 2, w / 2, h / 2


def inner_outline(p: ContextParams) -> np.ndarray:
    """The inner part's corners in canvas pixels (TL, TR, BR, BL)."""
    x0, y0, x1, y1 = _inner(p)
    return geometry.apply_h(homography(p), np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))


# -- sampling -------------------------------------------------------------------------------

def sample_context(rng: np.random.Generator, cfg: ContextConfig, out_hw, logo_index: int, cw: str,
                   logo_hw, colours, logo_width_share: float | None = None,
                   cut_side: str | None = None) -> ContextParams | None:
    """One uniform against cfg.probability (None: no context), then one block of 27 uniforms and a
    seed. `colours`: brand_colours(...) of the logo in its colourway; `logo_hw`: its size as drawn;
    `logo_width_share`: the width the size prior drew for the logo, as a share of the image width:
    the area share is then drawn in [what a shape holding that logo needs, max_area_share] (clamped
    to [min_area_share, max_area_share]), so that large logos get large contexts. `cut_side`: the
    side of the image whose border the size prior cuts the logo by: the shape's centre is then drawn
    near that border, so that the photo cuts the product there too."""
    if float(rng.random()) >= cfg.probability:
        return None
    u = rng.random(27)
    seed = int(rng.integers(2 ** 31))
    oh, ow = out_hw
    w8 = np.asarray(cfg.shape_weights, np.float64)
    cum = np.cumsum(w8 / w8.sum())
    shape = SHAPES[min(int(np.searchsorted(cum, u[0], side="right")), len(SHAPES) - 1)]
    lin = lambda k, a, b: float(a + u[k] * (b - a))  # noqa: E731
    logo_ratio = logo_hw[1] / logo_hw[0]
    corner, wobble, gloss = 0.0, (), 0.0
    if shape == "sign":
        ratio = float(np.clip(logo_ratio * math.exp(lin(2, -0.3, 0.45)), 0.5, 4.0))
        corner, gloss = lin(3, 0.0, 0.18), lin(4, 0.0, 0.25)
        tilt = (lin(5, -20, 20), lin(6, -30, 30))
        roll = lin(7, -6, 6)
    elif shape == "band":
        ratio = 1.0 / lin(2, 1.15, 2.0)
        corner, gloss = lin(3, 0.05, 0.16), lin(4, 0.1, 0.5)
        tilt, roll = (0.0, 0.0), lin(7, -6, 6)
    elif shape == "shirt":
        ratio = 1.0 / lin(2, 0.9, 1.3)
        wobble = tuple((lin(20 + k, 0.0, 0.035), float(u[24 + k] * 2 * math.pi)) for k in range(3))
        tilt = (lin(5, -10, 10), lin(6, -10, 10))
        roll = lin(7, -10, 10)
    else:
        ratio, share = ow / oh, 1.0
        tilt = (lin(5, -15, 15), lin(6, -15, 15))
        roll = lin(7, -4, 4)
    lo = cfg.min_area_share
    if logo_width_share is not None and shape != "closeup":
        need_w = logo_width_share / (cfg.max_logo_share * INNER_WIDTH[shape])  # the shape's width share
        lo = min(max(need_w * need_w * ow / (ratio * oh), cfg.min_area_share), cfg.max_area_share)
    if shape != "closeup":
        share = lo + u[1] * (cfg.max_area_share - lo)
    size = (100.0 * math.sqrt(ratio), 100.0 / math.sqrt(ratio)) if shape != "closeup" else (float(ow), float(oh))
    if shape == "closeup":
        centre = (ow / 2 - 0.5, oh / 2 - 0.5)
    else:
        fx, fy = lin(8, 0.3, 0.7), lin(9, 0.3, 0.7)
        fx = {"left": fx - 0.3, "right": fx + 0.3}.get(cut_side, fx)  # 0..0.4 or 0.6..1 of the width
        fy = {"top": fy - 0.3, "bottom": fy + 0.3}.get(cut_side, fy)
        centre = (fx * ow - 0.5, fy * oh - 0.5)
    names = [c[0] for c in colours]
    cw_ = np.cumsum(np.asarray([c[2] for c in colours], np.float64))
    pick = min(int(np.searchsorted(cw_ / cw_[-1], u[13], side="right")), len(colours) - 1)
    light = lin(14, -50, 50) if shape == "band" else lin(14, 0, 360)
    gradient = {"sign": lin(15, 0.05, 0.3), "band": lin(15, 0.3, 0.55), "shirt": lin(15, 0.05, 0.2),
                "closeup": lin(15, 0.1, 0.35)}[shape]
    edge = {"sign": lin(16, 0.5, 1.2), "band": lin(16, 0.5, 1.0), "shirt": lin(16, 1.0, 2.5), "closeup": 0.0}[shape]
    short = min(oh, ow)
    if shape in ("sign", "band"):
        shadow = (lin(17, -0.03, 0.03) * short, lin(18, 0.0, 0.03) * short, lin(19, 3, 10), lin(12, 0.2, 0.5))
    elif shape == "shirt":
        shadow = (0.0, 0.0, 6.0, lin(12, 0.1, 0.25))
    else:
        shadow = (0.0, 0.0, 0.0, 0.0)
    texture = {"sign": lin(11, 1, 3), "band": lin(11, 0.5, 2), "shirt": lin(11, 3, 7), "closeup": lin(11, 1, 4)}[shape]
    p = ContextParams(shape, int(logo_index), cw, tuple(int(v) for v in colours[pick][1]), names[pick],
                      float(share), tuple(float(v) for v in centre), size, 1.0, float(roll),
                      tuple(float(t) for t in tilt), float(corner), wobble, float(light), float(gradient),
                      float(gloss), float(cfg.backdrop_shading * (0.6 + 0.4 * u[10])), float(edge),
                      tuple(float(v) for v in shadow), float(texture), seed)
    if shape == "closeup":  # the plane fills the frame at its centre's scale
        return replace(p, scale=1.0)
    return replace(p, scale=float(_fit_scale(p, out_hw)))


def _rotated(corners: np.ndarray, deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return corners @ np.array([[c, -s], [s, c]])  # u' = u c + v s, v' = -u s + v c


def _cut_shift(quad: np.ndarray, cut, out_hw) -> np.ndarray:
    """The quad slid across the canvas so that the border of side cut[0] cuts cut[1] of its extent."""
    side, frac = cut
    oh, ow = out_hw
    q = quad.copy()
    k = 0 if side in ("left", "right") else 1
    lo, hi = q[:, k].min(), q[:, k].max()
    ext = hi - lo
    size = ow if k == 0 else oh
    if side in ("left", "top"):
        q[:, k] += (-0.5 - frac * ext) - lo
    else:
        q[:, k] += (size - 0.5 + frac * ext) - hi
    return q


def _placed(quad: np.ndarray, out_hw, cut) -> bool:
    """Inside the image (by MARGIN_PX), except on the cut side; convex."""
    oh, ow = out_hw
    lo_x, lo_y = quad[:, 0].min() >= MARGIN_PX - 0.5, quad[:, 1].min() >= MARGIN_PX - 0.5
    hi_x, hi_y = quad[:, 0].max() <= ow - 0.5 - MARGIN_PX, quad[:, 1].max() <= oh - 0.5 - MARGIN_PX
    side = cut[0] if cut else None
    ok = ((lo_x or side == "left") and (hi_x or side == "right") and (lo_y or side == "top")
          and (hi_y or side == "bottom"))
    return bool(ok and geometry.is_convex(quad))


def sample_logo_quad(rng: np.random.Generator, p: ContextParams, cfg: ContextConfig, logo_hw, out_hw,
                     target_width_px: float | None = None, cut=None):
    """A quad (TL, TR, BR, BL canvas pixels) of the logo on the context, inside its inner part and
    inside the image, or None. Draws: the width share, the rotation, TRIES centres (fixed count).
    `target_width_px`: the width the size prior drew (None: a share drawn in [min, max]_logo_share).
    `cut`: (side, fraction) of a logo the size prior framed as cut by the image border: the logo is
    slid across the canvas until that border cuts that share of it, where the context's inner part
    runs on past the border (a sign or can that the photo cuts too); else it is placed uncut."""
    share_u, rot_u = float(rng.random()), float(rng.random())
    cu = rng.random((TRIES, 2))
    lh, lw = logo_hw
    aspect = lh / lw
    H = homography(p)
    G = geometry.inv3(H)
    x0, y0, x1, y1 = ix0, iy0, ix1, iy1 = _inner(p)
    oh, ow = out_hw
    # keep to the part of the plane that the image shows (its corners' pre-image, second-outermost
    # values: the box inside a near-rectangle), where it is smaller
    m = MARGIN_PX
    pre = geometry.apply_h(G, np.array([[m, m], [ow - 1 - m, m], [ow - 1 - m, oh - 1 - m],
                                                       [m, oh - 1 - m]], np.float64))
    xs, ys = np.sort(pre[:, 0]), np.sort(pre[:, 1])
    x0, x1, y0, y1 = max(x0, xs[1]), min(x1, xs[2]), max(y0, ys[1]), min(y1, ys[2])
    iw, ih = x1 - x0, y1 - y0
    if iw <= 0 or ih <= 0:
        return None
    max_rot = {"shirt": 6.0, "closeup": 5.0}.get(p.shape, 3.0)
    rot = (2 * rot_u - 1) * max_rot
    c, s = abs(math.cos(math.radians(rot))), abs(math.sin(math.radians(rot)))
    lo, hi = cfg.min_logo_share * iw, cfg.max_logo_share * iw
    if target_width_px is not None:
        centre = geometry.apply_h(H, np.array([[0.5 * (x0 + x1), 0.5 * (y0 + y1)]]))
        local = math.sqrt(float(geometry.area_scale(H, centre)[0]))  # canvas px per plane unit
        width = min(max(target_width_px / local, lo), hi)
    else:
        width = lo + share_u * (hi - lo)
    # the rotated logo's box must fit the inner part
    fit = min(iw / (c + s * aspect), ih / (s + c * aspect))
    width = min(width, fit)
    for cut_now in ((cut, None) if cut else (None,)):
        w_now = width
        for _ in range(SHRINK_ROUNDS):
            hgt = w_now * aspect
            ex, ey = 0.5 * (w_now * c + hgt * s), 0.5 * (w_now * s + hgt * c)
            corners = _rotated(np.array([[-w_now / 2, -hgt / 2], [w_now / 2, -hgt / 2], [w_now / 2, hgt / 2],
                                         [-w_now / 2, hgt / 2]]), rot)
            for cx, cy in cu:
                px = 0.5 * (x0 + x1) + (cx - 0.5) * CENTRE_SPREAD * max(0.0, iw - 2 * ex)
                py = 0.5 * (y0 + y1) + (cy - 0.5) * CENTRE_SPREAD * max(0.0, ih - 2 * ey)
                quad = geometry.apply_h(H, corners + [px, py])
                if cut_now:
                    quad = _cut_shift(quad, cut_now, out_hw)
                    back = geometry.apply_h(G, quad)  # still on the shape's inner part (a close-up's is endless)?
                    if p.shape != "closeup" and not (back[:, 0].min() >= ix0 and back[:, 0].max() <= ix1
                            and back[:, 1].min() >= iy0 and back[:, 1].max() <= iy1):
                        continue
                if _placed(quad, out_hw, cut_now):
                    return tuple((float(x), float(y)) for x, y in quad)
            w_now *= 0.75
    return None
