"""Framing: how large a logo is in the image and whether the image border cuts it.

Real photos of a brand are very often photos *of* the logo (a can, a sign, a shirt, a shop front),
so logos are much larger than a "logo somewhere in a scene" generator makes them. The default size
prior is measured on real photos: the widths of the 1,146 hand-drawn boxes of FlickrLogos-27
(26 brands, 884 Flickr photos, `../shared/data/flickrlogos27/instances.json`) as a share of the
image width, at the probabilities 0, 0.1, ..., 1 (`REAL_WIDTH_QUANTILES`; median 0.28, 31 % wider
than half the image). Measured with:

    python tools/compare_to_real.py --real=../shared/data/flickrlogos27/instances.json

`sample_framing(rng, cfg, logo_aspect, out_hw)` draws, in a fixed order, the visible width share
(inverse CDF, piecewise linear between the quantiles), whether the border cuts the logo
(`truncation_probability`), and if so which side and how much of the logo's width or height
(`[MIN_CUT, max_cut_fraction]`). The result is a `FramingParams` record: the full width of the
logo in pixels (before the cut) and the cut. Pure functions, no state.

`frontal_quad(rng, fp, logo_hw, out_hw, ...)` places such a logo as a close-up: a frontal quad,
slightly rotated, at a uniformly random position that honours the cut (the logo's cut side runs
off that border by the drawn share, every other side stays inside).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from synth.errors import ConfigError

# Width of the visible logo box / image width at probabilities 0, 0.1, ..., 1, FlickrLogos-27
# (1,146 boxes). The 0 quantile (0.01) is raised to 0.03: a logo narrower than 3 % of a 640 px
# image is under 20 px and fails the recognisability gate anyway.
REAL_WIDTH_QUANTILES = (0.03, 0.072, 0.112, 0.148, 0.202, 0.276, 0.38, 0.518, 0.726, 0.915, 1.0)
MIN_CUT = 0.05  # smallest share of the logo cut off by the border when it is cut
FILL = 0.97  # an uncut logo's box is at most this share of the image's width and height
SIDES = ("left", "right", "top", "bottom")
MIN_SIDE_MARGIN = 1.6  # a drawn logo's shorter side is at least this times the gate's min_size_px
MAX_CLOSEUP_CANDIDATES = 64


@dataclass(frozen=True)
class FramingConfig:
    width_quantiles: tuple = REAL_WIDTH_QUANTILES
    truncation_probability: float = 0.05
    max_cut_fraction: float = 0.4
    closeup_candidates: int = 1  # frontal_quad: positions drawn, the one on the fewest edges kept

    def __post_init__(self):
        q = tuple(self.width_quantiles)
        if len(q) < 2 or not all(0 < v <= 1 for v in q) or any(a > b for a, b in zip(q, q[1:])):
            raise ConfigError(f"framing width_quantiles {list(q)} must be >= 2 non-decreasing shares in (0, 1]")
        if not 0 <= self.truncation_probability <= 1:
            raise ConfigError(f"framing truncation_probability {self.truncation_probability!r} must be in [0, 1]")
        if not MIN_CUT <= self.max_cut_fraction <= 0.9:
            raise ConfigError(f"framing max_cut_fraction {self.max_cut_fraction!r} must be in [{MIN_CUT}, 0.9]")
        if not (isinstance(self.closeup_candidates, int) and 1 <= self.closeup_candidates <= MAX_CLOSEUP_CANDIDATES):
            raise ConfigError(f"framing closeup_candidates {self.closeup_candidates!r} must be an integer in "
                              f"[1, {MAX_CLOSEUP_CANDIDATES}]")


@dataclass(frozen=True)
class FramingParams:
    visible_width_share: float  # drawn: the visible box's width / image width
    width_px: float  # the whole logo's width in pixels, frontal (before any cut)
    cut_side: str | None  # one of SIDES, or None when the border does not cut the logo
    cut_fraction: float  # share of the logo's width (left/right) or height (top/bottom) cut off


def quantile_draw(u: float, quantiles) -> float:
    """Inverse CDF of the piecewise-linear distribution with these quantiles at evenly spaced
    probabilities 0..1, at u in [0, 1]."""
    q = np.asarray(quantiles, np.float64)
    pos = min(max(u, 0.0), 1.0) * (q.size - 1)
    i = min(int(pos), q.size - 2)
    return float(q[i] + (pos - i) * (q[i + 1] - q[i]))


def sample_framing(rng: np.random.Generator, cfg: FramingConfig, logo_aspect: float, out_hw,
                   min_side_px: float = 0.0) -> FramingParams:
    """logo_aspect: the logo's height / width. Four draws in a fixed order: the width share, the
    cut (a uniform against truncation_probability), its side and its fraction. `min_side_px`: the
    smallest shorter side a logo may have (the gate's min_size_px); smaller draws are raised to
    MIN_SIDE_MARGIN times it (perspective, rotation and blur shrink the visible box) instead of
    being drawn only to be rejected."""
    oh, ow = out_hw
    share = quantile_draw(float(rng.random()), cfg.width_quantiles)
    if min_side_px > 0:
        share = max(share, min(1.0, MIN_SIDE_MARGIN * min_side_px / min(1.0, logo_aspect) / ow))
    cut = float(rng.random()) < cfg.truncation_probability
    side = SIDES[int(rng.integers(len(SIDES)))]
    frac = float(rng.uniform(MIN_CUT, cfg.max_cut_fraction))
    visible_w = share * ow
    width = visible_w
    if cut and side in ("left", "right"):
        width = visible_w / (1.0 - frac)  # the cut share of the width is off the image
    # A logo taller than the image (a tall logo drawn wide) is shrunk to fit its height,
    # unless the cut takes its excess off at the top or bottom.
    max_h = oh / (1.0 - frac) if cut and side in ("top", "bottom") else FILL * oh
    width = min(width, max_h / max(logo_aspect, 1e-6))
    if not cut:  # an uncut logo stays inside the image: real photos' largest logos nearly fill it
        width = min(width, FILL * ow)
    return FramingParams(share, float(width), side if cut else None, frac if cut else 0.0)


def edge_integral(edges: np.ndarray) -> np.ndarray:
    """The integral image of `edges` (bool HxW, the canvas' size), for edge_share."""
    return cv2.integral(edges.astype(np.uint8))


def edge_share(integral: np.ndarray, quad) -> float:
    """The share of edge pixels (edge_integral's) inside the quad's axis-aligned box clipped to the
    canvas; 1.0 for a box wholly off it."""
    h, w = integral.shape[0] - 1, integral.shape[1] - 1
    q = np.asarray(quad, np.float64)
    x0, x1 = int(np.clip(np.floor(q[:, 0].min() + 0.5), 0, w)), int(np.clip(np.ceil(q[:, 0].max() + 0.5), 0, w))
    y0, y1 = int(np.clip(np.floor(q[:, 1].min() + 0.5), 0, h)), int(np.clip(np.ceil(q[:, 1].max() + 0.5), 0, h))
    if x1 <= x0 or y1 <= y0:
        return 1.0
    on = int(integral[y1, x1]) - int(integral[y0, x1]) - int(integral[y1, x0]) + int(integral[y0, x0])
    return on / ((x1 - x0) * (y1 - y0))


def frontal_quad(rng: np.random.Generator, fp: FramingParams, logo_hw, out_hw, max_rotation_deg: float = 5.0,
                 candidates: int = 1, edge_share=None):
    """A close-up: the logo frontal, rotated by at most `max_rotation_deg`, at a uniformly random
    position; a cut side runs off its border by `fp.cut_fraction` of the logo, the other sides
    stay inside where the logo fits. Two draws (rotation, then a 2-vector of positions). With
    `candidates` > 1 and `edge_share` (a function of a quad: edge_share of the surface's edges), the second draw is
    `candidates` 2-vectors and the position whose box has the least share of edges is kept (the
    first of equals). Returns ((x, y) TL, TR, BR, BL) in pixel-centre coordinates."""
    oh, ow = out_hw
    lh, lw = logo_hw
    w = fp.width_px
    h = w * lh / lw
    rot = math.radians(float(rng.uniform(-max_rotation_deg, max_rotation_deg)))
    many = candidates > 1 and edge_share is not None
    us = rng.random((candidates, 2)) if many else rng.random(2)[None]
    c, s = math.cos(rot), math.sin(rot)
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    corners = corners @ np.array([[c, s], [-s, c]])
    ext_x = corners[:, 0].max()  # half extents of the rotated quad's box
    ext_y = corners[:, 1].max()
    if fp.cut_side is None and max(2 * ext_x / ow, 2 * ext_y / oh) > FILL:  # rotated past the image: shrink
        f = FILL / max(2 * ext_x / ow, 2 * ext_y / oh)
        corners, ext_x, ext_y = corners * f, ext_x * f, ext_y * f
    bw, bh = 2 * ext_x, 2 * ext_y

    def axis(extent, size, lo_cut, hi_cut, frac, uu):
        if lo_cut:  # the low side runs off by frac of the extent
            return extent / 2 - frac * extent
        if hi_cut:
            return size - extent / 2 + frac * extent
        if extent >= size:
            return size / 2 + (uu - 0.5) * (extent - size)
        return extent / 2 + uu * (size - extent)

    side = fp.cut_side

    def at(u):
        cx = axis(bw, ow, side == "left", side == "right", fp.cut_fraction, u[0])
        cy = axis(bh, oh, side == "top", side == "bottom", fp.cut_fraction, u[1])
        return tuple((float(x), float(y)) for x, y in corners + [cx - 0.5, cy - 0.5])

    quads = [at(u) for u in us]
    if not many:
        return quads[0]
    costs = [edge_share(q) for q in quads]
    return quads[int(np.argmin(costs))]
