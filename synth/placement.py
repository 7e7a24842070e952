"""Where a logo goes: on ONE usable region of a background, sized by that region's plane.

`sample_placement(rng, surface, logo_hw, out_hw, cfg, taken, max_overlap_iou)` draws every
random choice of one placement from `rng` and returns a JSON-serialisable `PlacementParams`, or
None after at most `cfg.max_attempts` attempts. Each attempt draws, in a fixed order:

1. a region, with probability proportional to its area (synth.surface.Region.area_px);
2. a width, log-uniform in `min_width_frac`..`max_width_frac` of the region's plane size (the
   square root of its area in plane units), so the logo follows the region's size; at a centre
   c the width in image pixels is that times the plane's local scale at c, so the same logo looks
   smaller where the surface is farther away. It is capped at `max_width_canvas` * the canvas'
   shorter side, and a centre where it comes out under `min_width_px` is ruled out;
3. an in-plane rotation within +-`max_rotation_deg` and an extra tilt about the logo's own axes
   within +-`max_extra_tilt_deg` each;
4. a centre, uniformly among the region's pixels (on a grid of `center_stride` px, coarser in
   large regions so that about MAX_CENTRES are considered; jittered) whose distance to the nearest
   edge or boundary is at least half the logo's shorter side plus `margin_px`, and without
   `allow_truncation` as far from the canvas border (necessary conditions only).

The quad is built with synth.geometry.logo_quad and accepted only if: geometry.distortion_ok
holds (`min_side_px`, `aspect_change`, `min_angle_deg`); at least `min_region_fraction` of its
footprint's pixels carry the region's label; its footprint grown by `margin_px` touches no strong
edge or region boundary; it lies inside the canvas, or with `allow_truncation` at most
`max_truncated_fraction` of its area lies outside; and the IoU of its box with the box of every
quad in `taken` is at most `max_overlap_iou`, and its box lies at most half inside another's
(`boxes.crowds`).

`straddles(quad, surface)` is the measure a benchmark compares against placement at random: the
footprint, shrunk by `tolerance_px`, crosses a strong edge or a region boundary.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from synth import boxes as boxlib, geometry
from synth.errors import ConfigError, InputImageError, check_fields
from synth.surface import Region, Surface

MAX_CENTRES = 4096  # candidate centres per region, at most about this many


@dataclass(frozen=True)
class PlacementConfig:
    min_width_frac: float = 0.15  # logo width / the region's plane size, lower bound
    max_width_frac: float = 0.6  # ... upper bound
    min_width_px: float = 16.0  # logo width in image pixels at its centre, lower bound
    max_width_canvas: float = 0.5  # ... upper bound, share of the canvas' shorter side
    margin_px: int = 3  # clearance between the logo and any strong edge or region boundary
    max_rotation_deg: float = 10.0  # in-plane rotation within +- this
    max_extra_tilt_deg: float = 8.0  # extra tilt about the logo's x and y axes within +- this
    max_attempts: int = 30
    allow_truncation: bool = False  # may the logo run off the canvas?
    max_truncated_fraction: float = 0.25  # ... by at most this share of its area
    min_region_fraction: float = 0.97  # share of the footprint that must carry the region's label
    min_side_px: float = 8.0  # distortion limits, see geometry.distortion_ok
    aspect_change: tuple[float, float] = (0.4, 2.5)
    min_angle_deg: float = 30.0
    center_stride: int = 2  # candidate centres are sampled on this pixel grid

    def __post_init__(self):
        checks = [("min_width_frac", 0 < self.min_width_frac <= self.max_width_frac,
                   "> 0 and <= max_width_frac"),
                  ("max_width_frac", self.max_width_frac <= 1.0, "<= 1"),
                  ("min_width_px", self.min_width_px >= 1, ">= 1"),
                  ("max_width_canvas", 0 < self.max_width_canvas <= 1, "in (0, 1]"),
                  ("margin_px", isinstance(self.margin_px, int) and self.margin_px >= 0, "an int >= 0"),
                  ("max_rotation_deg", 0 <= self.max_rotation_deg <= 180, "in [0, 180]"),
                  ("max_extra_tilt_deg", 0 <= self.max_extra_tilt_deg <= 30, "in [0, 30]"),
                  ("max_attempts", isinstance(self.max_attempts, int) and self.max_attempts >= 1,
                   "an int >= 1"),
                  ("max_truncated_fraction", 0 <= self.max_truncated_fraction < 1, "in [0, 1)"),
                  ("min_region_fraction", 0 < self.min_region_fraction <= 1, "in (0, 1]"),
                  ("aspect_change", len(self.aspect_change) == 2
                   and 0 < self.aspect_change[0] <= 1 <= self.aspect_change[1], "(lo <= 1, hi >= 1)"),
                  ("center_stride", isinstance(self.center_stride, int) and self.center_stride >= 1,
                   "an int >= 1")]
        check_fields("PlacementConfig", self, checks)


@dataclass(frozen=True)
class PlacementParams:
    region_id: int
    quad: tuple  # ((x, y) TL, TR, BR, BL) image pixels, pixel-centre coordinates (synth.geometry)
    center_xy: tuple  # (x, y)
    width_px: float  # logo width in image pixels at its centre
    rotation_deg: float
    tilt_deg: tuple  # (about the logo's x axis, about its y axis)
    evidence: str  # the region's plane evidence
    attempts: int  # attempts used, this one included
    region_kind: str = "flat"  # the region's kind: synth.surface.KIND_FLAT or KIND_TEXTURE

    def quad_array(self) -> np.ndarray:
        return np.asarray(self.quad, np.float64)


def _footprint_roi(quad, out_hw, pad: int):
    """(uint8 mask of the quad's pixel centres, (y0, x0, y1, x1)) over its box grown by `pad`."""
    y0, x0, y1, x1 = geometry.quad_roi(quad, out_hw)
    h, w = out_hw
    y0, x0, y1, x1 = max(0, y0 - pad), max(0, x0 - pad), min(h, y1 + pad), min(w, x1 + pad)
    mask = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), np.uint8)
    if mask.size:
        pts = np.round((np.asarray(quad, np.float64) - [x0, y0]) * 16).astype(np.int32)
        cv2.fillConvexPoly(mask, pts, 1, cv2.LINE_8, 4)
    return mask, (y0, x0, y1, x1)


def footprint_mask(quad, out_hw) -> np.ndarray:
    """bool HxW: the canvas pixels whose centres lie inside the quad."""
    full = np.zeros(tuple(out_hw), bool)
    mask, (y0, x0, y1, x1) = _footprint_roi(quad, out_hw, 0)
    full[y0:y1, x0:x1] = mask > 0
    return full


def quad_box(quad, out_hw) -> np.ndarray:
    """Normalised [ymin, xmin, ymax, xmax] of the quad's bounding box, clipped to the canvas."""
    pts = np.asarray(quad, np.float64).reshape(4, 2).tolist()
    xs = [p[0] + 0.5 for p in pts]  # pixel-centre -> pixel-edge coordinates
    ys = [p[1] + 0.5 for p in pts]
    h, w = out_hw
    clip = lambda v, hi: min(max(v, 0.0), hi)  # noqa: E731
    return boxlib.from_pixels(clip(min(ys), h), clip(min(xs), w), clip(max(ys), h), clip(max(xs), w), h, w)


def _polygon_area(quad) -> float:
    x, y = np.asarray(quad, np.float64).reshape(-1, 2).T
    return 0.5 * abs(float(x @ np.roll(y, -1) - y @ np.roll(x, -1)))


def _obstacles(surface: Surface, roi):
    """bool: strong edges or region boundaries over roi (the map is made once per surface)."""
    if "placement.obstacles" not in surface.derived:
        surface.derived["placement.obstacles"] = surface.edges | surface.boundaries
    y0, x0, y1, x1 = roi
    return surface.derived["placement.obstacles"][y0:y1, x0:x1]


@functools.lru_cache(maxsize=16)
def _disc(radius: int) -> np.ndarray:
    k = 2 * radius + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))


def straddles(quad, surface: Surface, tolerance_px: int = 1) -> bool:
    """True when the quad's footprint on the canvas, shrunk by `tolerance_px`, contains a strong
    edge or region-boundary pixel (the logo crosses the border of an object)."""
    mask, roi = _footprint_roi(quad, surface.shape, 0)
    if not mask.any():
        return False
    if tolerance_px > 0:
        mask = cv2.erode(mask, _disc(tolerance_px), borderType=cv2.BORDER_CONSTANT, borderValue=1)
    return bool(np.any(_obstacles(surface, roi) & (mask > 0)))


def _fits(quad, surface: Surface, region_id: int, cfg: PlacementConfig) -> bool:
    h, w = surface.shape
    pts = np.asarray(quad, np.float64).reshape(4, 2).tolist()
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    inside = min(xs) >= -0.5 and min(ys) >= -0.5 and max(xs) <= w - 0.5 and max(ys) <= h - 0.5
    if not inside and not cfg.allow_truncation:
        return False
    mask, roi = _footprint_roi(quad, surface.shape, cfg.margin_px)
    n = cv2.countNonZero(mask) if mask.size else 0
    if not inside:
        if not cfg.allow_truncation:
            return False
        if n < (1.0 - cfg.max_truncated_fraction) * _polygon_area(quad):
            return False
    if n == 0:
        return False
    y0, x0, y1, x1 = roi
    labels = surface.labels[y0:y1, x0:x1]
    if np.count_nonzero((labels == region_id) & mask.view(bool)) < cfg.min_region_fraction * n:
        return False
    return not touches_obstacle(surface, mask, roi, cfg.margin_px)


def touches_obstacle(surface: Surface, mask: np.ndarray, roi, margin_px: int) -> bool:
    """Whether the footprint `mask` (uint8 0/1 over roi = (y0, x0, y1, x1)), grown by a disc of
    `margin_px`, meets a strong edge or region boundary inside roi. When every footprint pixel's
    disc lies inside roi (or off the canvas), the footprint is read against the obstacle map grown
    once per surface by the same (symmetric) disc instead: the same answer, without a dilation per
    draw."""
    y0, x0, y1, x1 = roi
    inside = mask.view(bool)
    if margin_px <= 0:
        return bool(np.any(_obstacles(surface, roi) & inside))
    h, w = surface.shape
    bx, by, bw, bh = cv2.boundingRect(mask)
    m = margin_px
    if bw and (max(0, y0 + by - m) >= y0 and min(h, y0 + by + bh + m) <= y1
               and max(0, x0 + bx - m) >= x0 and min(w, x0 + bx + bw + m) <= x1):
        key = ("placement.obstacles_grown", m)
        if key not in surface.derived:
            full = _obstacles(surface, (0, 0, h, w))
            surface.derived[key] = cv2.dilate(full.view(np.uint8), _disc(m)).view(bool)
        return bool(np.any(surface.derived[key][y0:y1, x0:x1] & inside))
    return bool(np.any(_obstacles(surface, roi) & cv2.dilate(mask, _disc(m)).view(bool)))


def _centres(surface: Surface, region: Region, stride: int):
    """Candidate centres of a region, on a grid of at least `stride` px and at most about
    MAX_CENTRES points: (x, y, distance to edge, image px per plane unit, grid step, distance to
    the canvas border). They depend on the surface alone, so they are kept in `surface.derived`."""
    key = ("placement.centres", region.id, stride)
    if key not in surface.derived:
        surface.derived[key] = _compute_centres(surface, region, stride)
    return surface.derived[key]


def _compute_centres(surface: Surface, region: Region, stride: int):
    stride = max(stride, math.ceil(math.sqrt(region.area_px / MAX_CENTRES)))
    y0, x0, y1, x1 = region.bbox
    lab = surface.labels[y0:y1:stride, x0:x1:stride]
    rows, cols = np.nonzero(lab == region.id)
    ys, xs = (rows * stride + y0).astype(np.float64), (cols * stride + x0).astype(np.float64)
    dist = surface.distance_to_edge[ys.astype(np.intp), xs.astype(np.intp)]
    G = geometry.inv3(region.plane.H_plane)
    pts = np.stack([xs, ys], 1)
    wsign = geometry.same_side_as_origin(region.plane.H_plane, pts)
    scale = np.zeros_like(xs)
    scale[wsign] = np.clip(1.0 / np.sqrt(geometry.area_scale(G, pts[wsign])), 0.25, 4.0)
    h, w = surface.shape
    border = np.minimum(np.minimum(xs + 0.5, w - 0.5 - xs), np.minimum(ys + 0.5, h - 0.5 - ys))
    return xs, ys, np.where(wsign, dist, 0.0), scale, stride, border


def _max_clearance(surface: Surface, region: Region, stride: int) -> float:
    """The largest distance to an edge among a region's candidate centres (cached with them)."""
    key = ("placement.max_clearance", region.id, stride)
    if key not in surface.derived:
        dist = _centres(surface, region, stride)[2]
        surface.derived[key] = float(dist.max()) if dist.size else 0.0
    return surface.derived[key]


def sample_placement(rng: np.random.Generator, surface: Surface, logo_hw, out_hw,
                     cfg: PlacementConfig = PlacementConfig(), taken=(),
                     max_overlap_iou: float = 0.0, target_width_px: float | None = None) -> PlacementParams | None:
    """One logo placement on one usable region of `surface`, or None after cfg.max_attempts.
    `target_width_px`: the logo's width at its centre, drawn by a size prior (synth.framing)
    instead of as a share of the region; only regions that can hold that width are used."""
    if tuple(out_hw) != tuple(surface.shape):
        raise InputImageError(f"out_hw {tuple(out_hw)} differs from the analysed image's size "
                              f"{tuple(surface.shape)}: analyse the canvas the logo goes on")
    if len(logo_hw) != 2 or min(logo_hw) < 1:
        raise InputImageError(f"logo_hw {tuple(logo_hw)} must be a (height, width) of positive sizes")
    if not 0.0 <= max_overlap_iou <= 1.0:
        raise ConfigError(f"max_overlap_iou = {max_overlap_iou} is not allowed: must be in [0, 1]")
    if not surface.regions:
        return None
    aspect = logo_hw[0] / logo_hw[1]
    ids = list(range(len(surface.regions)))
    if target_width_px is not None:  # only regions with a centre far enough from every edge
        need = 0.5 * target_width_px * min(1.0, aspect) + cfg.margin_px
        ids = [rid for rid in ids if _max_clearance(surface, surface.regions[rid], cfg.center_stride) >= need]
        if not ids:
            return None
    areas = np.array([surface.regions[rid].area_px for rid in ids], np.float64)
    # A region with probability proportional to its area: the inverse-CDF draw that
    # Generator.choice(n, p=probs) makes (one rng.random() each), without its per-call checks.
    cdf = np.cumsum(areas / areas.sum())
    cdf /= cdf[-1]
    taken_boxes = [quad_box(q, out_hw) for q in taken]
    lo, hi = math.log(cfg.min_width_frac), math.log(cfg.max_width_frac)
    max_w = cfg.max_width_canvas * min(out_hw)
    a = min(1.0, aspect)
    usable = {}  # region id -> its centres that some width can make fit (same order)

    def centres(rid, region):
        if rid not in usable:
            xs, ys, dist, scale, step, border = _centres(surface, region, cfg.center_stride)
            # a fitting width is at least min_width_px, so half of it at least half that (1e-6: margin
            # for float round-off; the exact test below decides)
            half_min = 0.5 * cfg.min_width_px * a - 1e-6
            keep = dist >= half_min + cfg.margin_px
            if target_width_px is None:
                keep &= (np.minimum(cfg.max_width_frac * (1 + 1e-9) * region.plane_size * scale, max_w)
                         >= cfg.min_width_px - 1e-6)
            if not cfg.allow_truncation:
                keep &= border >= half_min
            usable[rid] = (xs[keep], ys[keep], dist[keep], scale[keep], step, border[keep])
        return usable[rid]

    for attempt in range(1, cfg.max_attempts + 1):
        rid = ids[int(cdf.searchsorted(rng.random(), side="right"))]
        frac = math.exp(rng.uniform(lo, hi))
        rot = float(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
        tilt = tuple(float(t) for t in rng.uniform(-cfg.max_extra_tilt_deg, cfg.max_extra_tilt_deg, 2))
        pick, jitter = float(rng.random()), rng.random(2)
        region = surface.regions[rid]
        xs, ys, dist, scale, step, border = centres(rid, region)
        width = (np.minimum(frac * region.plane_size * scale, max_w) if target_width_px is None
                 else np.full(xs.shape, float(target_width_px)))
        half = 0.5 * width * a
        ok = (width >= cfg.min_width_px) & (dist >= half + cfg.margin_px)
        if not cfg.allow_truncation:
            ok &= border >= half
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            continue
        k = idx[min(idx.size - 1, int(pick * idx.size))]
        cx = float(xs[k] + (jitter[0] - 0.5) * (step - 1))
        cy = float(ys[k] + (jitter[1] - 0.5) * (step - 1))
        quad = geometry.logo_quad(region.plane.H_plane, (cx, cy), float(width[k]), aspect, rot, tilt)
        if not geometry.distortion_ok(quad, aspect, cfg.min_side_px, cfg.aspect_change, cfg.min_angle_deg):
            continue
        if not _fits(quad, surface, rid, cfg):
            continue
        box = quad_box(quad, out_hw)
        if any(boxlib.crowds(box, b, max_overlap_iou) for b in taken_boxes):
            continue
        return PlacementParams(rid, tuple((float(x), float(y)) for x, y in quad), (cx, cy),
                               float(width[k]), rot, tilt, region.plane.evidence, attempt, region.kind)
    return None
