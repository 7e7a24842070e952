"""Surface analysis of a background: homogeneous regions, strong edges and a plane per region.

`analyse(rgb, cfg)` is deterministic. It works on a copy whose longest side is `cfg.work_size`
(320 px) and maps its results back to full resolution:

1. Gradient: Sobel of the Gaussian-blurred (sigma `blur_sigma`) CIELab image, per channel, in
   Lab units per pixel; the magnitude is the root sum of squares over the channels.
2. Strong edges: Canny on those gradients with thresholds relative to the image's own statistics:
   high = max(`edge_min`, `edge_percentile`-th percentile of the gradient), low = `edge_low_ratio`
   * high; dilated by `edge_dilate` work pixels.
3. Regions: marker-based watershed (cv2.watershed). Markers are the 4-connected components, of at
   least `marker_min_px` pixels, of the "flat" pixels, gradient < clip(`flat_factor` * median
   gradient, `flat_min`, `flat_max`), eroded once. Adjacent regions whose mean Lab colours differ
   by less than `merge_delta_e` and whose shared boundary is weaker than the Canny low threshold
   are merged (one union-find pass). Boundaries between the final regions form `boundaries`.
4. Usable regions (after SynthText): area >= `min_area_px` (full-resolution pixels), bounding-box
   aspect (width / height) within `min_aspect`..`max_aspect`, filling >= `min_fill` of that box,
   and at most `max_edge_density` of its pixels on (undilated) Canny edges. A region that is large
   but fails only aspect or fill (say the wall around a person) is cut along an even grid of cells
   at most `split_tile` of the longest side, and its parts are judged again; the cuts separate
   labels but are not boundaries. At most the `max_regions` largest are kept. `labels` holds their
   ids 0..n-1 and -1 elsewhere (every boundary pixel included). `distance_to_edge` is the distance
   in pixels to the nearest strong edge or region boundary (the canvas border does not count).
5. Plane per usable region: line segments (cv2 LSD on the work copy, once, at least
   `min_segment_px` long) whose midpoints lie in the region's box grown on each side by
   `plane_context` * sqrt(area), at most `plane_context_max` of the longest side; the
   `max_segments` longest are kept. Every pair of the 16 longest proposes a vanishing point (the
   intersection of their lines, possibly at infinity); a proposal's score is the total length of
   the segments pointing at it within `vp_inlier_deg`. The best proposal outside the region's box
   with `min_family_segments` inliers on `min_family_lines[0]` distinct lines, refined by least
   squares, is the first vanishing point; the same search on the other segments (with
   `min_family_lines[1]` lines) gives the second; seen from the region their directions must
   differ by `min_family_angle_deg`. The line through both is the vanishing line l. With a pinhole
   camera K (focal `focal_factor` * longest side, principal point at the centre) the plane normal
   is n = K^T l. Its tilt from the viewing ray through the region's anchor is bounded by
   `max_tilt_deg` (n is turned towards the ray); a tilt over `reject_tilt_deg` is not trusted.
   Plane axis e1 follows the vanishing direction that looks most horizontal, e2 = n x e1, and
   H_plane = K [e1 e2 X0] (X0: the anchor on the plane), scaled so that one plane unit is one
   image pixel at the anchor. Without that evidence H_plane is the pure translation to the anchor
   ("fallback_frontal"). The anchor is the region's pixel farthest from edges, boundaries and the
   canvas border. `Region.plane_size` is the square root of the region's area in plane units.
   The vanishing line is projective evidence and does not depend on K; K only fixes the
   remaining affine part (how a square on the plane looks), so it is right for ordinary cameras.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage

from synth import geometry
from synth.errors import InputImageError, check_fields

EVIDENCE_VP = "vanishing_points"
EVIDENCE_FRONTAL = "fallback_frontal"
_PAIRS = [np.triu_indices(n, 1) for n in range(17)]  # index pairs among the 16 longest segments


@dataclass(frozen=True)
class SurfaceConfig:
    work_size: int = 320  # longest side of the analysed copy, px
    blur_sigma: float = 1.0  # Gaussian blur before the gradient, work px
    edge_min: float = 6.0  # floor of Canny's high threshold, Lab units / px
    edge_percentile: float = 85.0  # Canny's high threshold follows this gradient percentile
    edge_low_ratio: float = 0.4  # Canny low threshold = this * high
    edge_dilate: int = 1  # dilation of the edge map, work px
    flat_factor: float = 2.0  # flat pixels: gradient < clip(flat_factor * median, flat_min, flat_max)
    flat_min: float = 2.0
    flat_max: float = 6.0
    marker_min_px: int = 12  # smallest watershed marker, work px
    merge_delta_e: float = 8.0  # merge neighbours closer than this in mean Lab colour
    min_area_px: int = 1024  # usable region: at least this many full-resolution pixels
    min_aspect: float = 0.3  # usable region: bounding-box width / height within these
    max_aspect: float = 7.0
    min_fill: float = 0.6  # usable region: share of its bounding box it fills
    max_edge_density: float = 0.08  # usable region: share of its pixels on strong edges
    max_regions: int = 12  # keep at most this many (largest) usable regions
    split_tile: float = 0.34  # a large region failing only aspect/fill is cut into grid cells at
    #                          most this share of the longest side (0: never)
    plane_context: float = 1.5  # segment window: region box grown by this * sqrt(area) ...
    plane_context_max: float = 0.25  # ... but by at most this share of the longest image side
    min_segment_px: float = 10.0  # shortest line segment used, full-resolution px
    max_segments: int = 32  # longest segments kept per region
    vp_inlier_deg: float = 2.0  # a segment points at a vanishing point within this angle
    min_family_segments: int = 3  # segments needed per vanishing point, lying on at least
    min_family_lines: tuple[int, int] = (3, 2)  # ... this many distinct lines (first, second)
    line_merge_px: float = 3.0  # segments this close to one line count as one line
    min_family_angle_deg: float = 20.0  # the two vanishing directions differ by at least this
    focal_factor: float = 1.0  # assumed focal length / longest image side
    max_tilt_deg: float = 60.0  # bound on the plane's tilt from the viewing ray
    reject_tilt_deg: float = 75.0  # an estimate tilted more than this is not trusted (frontal)

    def __post_init__(self):
        checks = [("work_size", self.work_size >= 32, ">= 32"),
                  ("blur_sigma", self.blur_sigma >= 0, ">= 0"),
                  ("edge_min", self.edge_min > 0, "> 0"),
                  ("edge_percentile", 0 < self.edge_percentile < 100, "in (0, 100)"),
                  ("edge_low_ratio", 0 < self.edge_low_ratio <= 1, "in (0, 1]"),
                  ("edge_dilate", self.edge_dilate >= 0, ">= 0"),
                  ("flat_min", 0 < self.flat_min <= self.flat_max, "> 0 and <= flat_max"),
                  ("min_area_px", self.min_area_px >= 1, ">= 1"),
                  ("min_aspect", 0 < self.min_aspect < self.max_aspect, "> 0 and < max_aspect"),
                  ("min_fill", 0 <= self.min_fill <= 1, "in [0, 1]"),
                  ("max_edge_density", 0 <= self.max_edge_density <= 1, "in [0, 1]"),
                  ("max_regions", self.max_regions >= 1, ">= 1"),
                  ("split_tile", 0 <= self.split_tile <= 1, "in [0, 1]"),
                  ("plane_context", self.plane_context >= 0, ">= 0"),
                  ("max_segments", self.max_segments >= 4, ">= 4"),
                  ("min_family_segments", self.min_family_segments >= 2, ">= 2"),
                  ("min_family_lines", len(self.min_family_lines) == 2 and min(self.min_family_lines) >= 2,
                   "two ints >= 2"),
                  ("focal_factor", self.focal_factor > 0, "> 0"),
                  ("max_tilt_deg", 0 <= self.max_tilt_deg < 85, "in [0, 85)"),
                  ("reject_tilt_deg", self.max_tilt_deg <= self.reject_tilt_deg < 90,
                   ">= max_tilt_deg and < 90")]
        check_fields("SurfaceConfig", self, checks)


@dataclass(frozen=True)
class Plane:
    H_plane: np.ndarray  # 3x3 float64, plane coordinates -> image pixels; 1 unit = 1 px at anchor
    evidence: str  # EVIDENCE_VP or EVIDENCE_FRONTAL
    tilt_deg: float  # angle between the plane normal and the viewing ray at the anchor
    vanishing_points: tuple = ()  # homogeneous (x, y, w) image points, when evidence is VP


@dataclass(frozen=True)
class Region:
    id: int
    area_px: int  # full-resolution pixels
    bbox: tuple[int, int, int, int]  # y0, x0, y1, x1 full-resolution pixels (end exclusive)
    fill: float  # area / bbox area
    anchor_xy: tuple[float, float]  # the region's pixel farthest from edges and boundaries
    clearance_px: float  # distance to the nearest edge, boundary or canvas border at the anchor
    plane_size: float  # sqrt of the region's area in plane units
    mean_rgb: tuple[float, float, float]
    plane: Plane


@dataclass(frozen=True)
class Surface:
    shape: tuple[int, int]  # (H, W) of the analysed image
    labels: np.ndarray  # int32 HxW: usable region id, -1 elsewhere
    edges: np.ndarray  # bool HxW: strong (dilated) edges
    boundaries: np.ndarray  # bool HxW: boundaries between segmented regions (usable or not)
    distance_to_edge: np.ndarray  # float32 HxW: px to the nearest edge or boundary
    regions: tuple[Region, ...]  # regions[i].id == i
    # Memo of what later stages derive from this surface alone (synth.placement's candidate
    # centres per region): computed once per backdrop, never part of the analysis itself.
    derived: dict = field(default_factory=dict, repr=False, compare=False)


def _upsample(a: np.ndarray, shape) -> np.ndarray:
    """Centre-aligned nearest-neighbour resize of a bool or int32 map."""
    if a.shape == tuple(shape):
        return a.copy()
    src = a.astype(np.uint8) if a.dtype == bool else a
    out = cv2.resize(src, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST_EXACT)
    return out > 0 if a.dtype == bool else out


def _gradients(small: np.ndarray, sigma: float):
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2Lab)
    if sigma > 0:
        lab = cv2.GaussianBlur(lab, (0, 0), sigma)
    dx = cv2.Sobel(lab, cv2.CV_16S, 1, 0)
    dy = cv2.Sobel(lab, cv2.CV_16S, 0, 1)
    mag = np.sqrt((dx.astype(np.float32) ** 2 + dy.astype(np.float32) ** 2).sum(axis=2)) / 8.0
    return lab, dx, dy, mag


def _segment(lab, mag, low, cfg):
    """Watershed from flat markers, then one pass of merging similar, weakly separated neighbours.
    Returns compact int32 labels 0..R-1 covering every pixel."""
    flat_thr = float(np.clip(cfg.flat_factor * np.median(mag), cfg.flat_min, cfg.flat_max))
    flat = cv2.erode((mag < flat_thr).astype(np.uint8), np.ones((3, 3), np.uint8))
    n, cc, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=4)
    keep = np.zeros(n, np.int32)
    big = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= cfg.marker_min_px)
    big = big[big > 0]
    keep[big] = np.arange(1, big.size + 1)
    markers = keep[cc]
    if big.size == 0:
        return np.zeros(mag.shape, np.int32)
    ws = cv2.watershed(lab, markers)  # -1 on ridges
    k = big.size + 1
    # Give ridge pixels (and the canvas frame, which watershed marks too) a neighbouring region:
    # the largest id among their 4-neighbours, repeated; the nearest region for any left over.
    seg = ws
    for _ in range(3):
        if seg.min() > 0:
            break
        pad = np.pad(seg, 1, constant_values=-1)
        nb = np.maximum.reduce([pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]])
        seg = np.where(seg > 0, seg, nb)
    if seg.min() <= 0:
        idx = ndimage.distance_transform_edt(seg <= 0, return_distances=False, return_indices=True)
        seg = seg[tuple(idx)]
    # Mean colour per region, and boundary strength (the gradient there) per adjacent pair.
    flat_seg = seg.ravel()
    cnt = np.bincount(flat_seg, minlength=k).astype(np.float64)
    means = np.stack([np.bincount(flat_seg, lab[..., c].ravel(), k) for c in range(3)], 1)
    means /= np.maximum(cnt, 1)[:, None]
    pa, pb, pg = [], [], []
    for a, b, ga, gb in ((seg[:, :-1], seg[:, 1:], mag[:, :-1], mag[:, 1:]),
                         (seg[:-1], seg[1:], mag[:-1], mag[1:])):
        d = a != b
        a, b = a[d], b[d]
        pa.append(np.minimum(a, b)); pb.append(np.maximum(a, b)); pg.append(np.maximum(ga[d], gb[d]))
    pa, pb, pg = np.concatenate(pa), np.concatenate(pb), np.concatenate(pg)
    parent = np.arange(k)
    if pa.size:
        code = pa.astype(np.int64) * k + pb
        uniq, inv = np.unique(code, return_inverse=True)
        strength = np.bincount(inv, pg) / np.bincount(inv)
        ua, ub = uniq // k, uniq % k
        delta = np.linalg.norm(means[ua] - means[ub], axis=1) * (100.0 / 255.0)  # ~ CIE76 units

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in np.flatnonzero((delta < cfg.merge_delta_e) & (strength < low)):
            ra, rb = find(ua[i]), find(ub[i])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        roots = np.array([find(i) for i in range(k)])
    else:
        roots = parent
    _, compact = np.unique(roots, return_inverse=True)
    return compact.astype(np.int32)[seg]


def analyse(rgb: np.ndarray, cfg: SurfaceConfig = SurfaceConfig()) -> Surface:
    """Regions, edges and per-region planes of an RGB uint8 image (deterministic)."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputImageError(f"analyse needs an RGB uint8 HxWx3 image, got "
                              f"{getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}")
    H, W = rgb.shape[:2]
    if min(H, W) < 8:
        raise InputImageError(f"analyse needs an image at least 8x8 pixels, got {H}x{W}")
    f = min(1.0, cfg.work_size / max(H, W))
    sw, sh = max(8, round(W * f)), max(8, round(H * f))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA) if (sw, sh) != (W, H) else rgb
    sy, sx = H / sh, W / sw
    lab, dx, dy, mag = _gradients(small, cfg.blur_sigma)
    high = max(cfg.edge_min, float(np.percentile(mag, cfg.edge_percentile)))
    low = cfg.edge_low_ratio * high
    canny = cv2.Canny(dx, dy, low * 8.0, high * 8.0, L2gradient=True) > 0
    edges_s = canny
    if cfg.edge_dilate > 0:
        kd = 2 * cfg.edge_dilate + 1
        edges_s = cv2.dilate(canny.astype(np.uint8), np.ones((kd, kd), np.uint8)) > 0
    seg = _segment(lab, mag, low, cfg)
    bnd_s = np.zeros_like(edges_s)
    bnd_s[:, :-1] |= seg[:, :-1] != seg[:, 1:]
    bnd_s[:-1, :] |= seg[:-1, :] != seg[1:, :]

    # Usable regions, judged on the work copy; large regions that fail only their shape are split.
    cand = _usable_regions(seg, canny & ~bnd_s, sx, sy, cfg)[:cfg.max_regions]
    lab_s = np.full(seg.shape, -1, np.int32)
    for i, (_, sl, piece, _) in enumerate(cand):
        lab_s[sl][piece] = i
    lab_s[bnd_s] = -1

    labels = _upsample(lab_s, (H, W))
    edges = _upsample(edges_s, (H, W))
    boundaries = _upsample(bnd_s, (H, W))
    dist = cv2.distanceTransform((~(edges | boundaries)).astype(np.uint8), cv2.DIST_L2, 5)

    segments = _line_segments(small, sx, sy, cfg) if cand else np.zeros((0, 4))
    regions = []
    for i, (area, sl, piece, fill) in enumerate(cand):
        y0, x0 = int(sl[0].start * sy), int(sl[1].start * sx)
        y1, x1 = min(H, math.ceil(sl[0].stop * sy)), min(W, math.ceil(sl[1].stop * sx))
        # Anchor: the pixel farthest from edges, boundaries and the canvas border.
        rr, cc = np.arange(y0, y1)[:, None], np.arange(x0, x1)[None, :]
        border = np.minimum(np.minimum(rr + 1, H - rr), np.minimum(cc + 1, W - cc))
        d = np.minimum(dist[y0:y1, x0:x1], border) * (labels[y0:y1, x0:x1] == i)
        k = int(np.argmax(d))
        ay, ax = y0 + k // (x1 - x0), x0 + k % (x1 - x0)
        plane = _estimate_plane(segments, (y0, x0, y1, x1), area, (float(ax), float(ay)), (H, W), cfg)
        rows, cols = np.nonzero(piece)
        pts = np.stack([(cols + sl[1].start + 0.5) * sx - 0.5, (rows + sl[0].start + 0.5) * sy - 0.5], 1)
        plane_area = _plane_area(plane.H_plane, pts) * sx * sy
        mean = small[sl][piece].reshape(-1, 3).mean(axis=0)
        regions.append(Region(i, int(round(area)), (y0, x0, y1, x1), float(fill), (float(ax), float(ay)),
                              float(d.flat[k]), math.sqrt(plane_area), tuple(float(m) for m in mean), plane))
    return Surface((H, W), labels, edges, boundaries, dist, tuple(regions))


def _judge(piece, sl, inner_edges, sx, sy, cfg):
    """(area_px, fill, shape_ok, edges_ok) of a piece (bool mask over the work slice `sl`)."""
    area = float(np.count_nonzero(piece))
    rows, cols = np.flatnonzero(piece.any(1)), np.flatnonzero(piece.any(0))
    bh, bw = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    fill = area / (bh * bw)
    shape_ok = cfg.min_aspect <= (bw * sx) / (bh * sy) <= cfg.max_aspect and fill >= cfg.min_fill
    edges_ok = np.count_nonzero(inner_edges[sl] & piece) <= cfg.max_edge_density * area
    return area * sx * sy, fill, shape_ok, edges_ok


def _tiles(mask: np.ndarray, tile: float):
    """Cuts a region into the connected parts of its intersections with an even grid of cells at
    most `tile` px wide (aligned with the region's box). Yields (slice, part mask) in the mask."""
    h, w = mask.shape
    ny, nx = max(1, math.ceil(h / tile)), max(1, math.ceil(w / tile))
    ys, xs = np.linspace(0, h, ny + 1).round().astype(int), np.linspace(0, w, nx + 1).round().astype(int)
    for i in range(ny):
        for j in range(nx):
            cell = mask[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].astype(np.uint8)
            n, cc, stats, _ = cv2.connectedComponentsWithStats(cell, connectivity=4)
            for c in range(1, n):
                x, y, cw, ch = stats[c, :4]
                sl = (slice(ys[i] + y, ys[i] + y + ch), slice(xs[j] + x, xs[j] + x + cw))
                yield sl, cc[y:y + ch, x:x + cw] == c


def _usable_pieces(piece, sl, inner_edges, sx, sy, cfg, tile):
    """[(area_px, slice, piece mask, fill)] of the usable parts of one region: itself, or when it
    is large but fails the shape test (say a wall around a person), its grid cells."""
    area, fill, shape_ok, edges_ok = _judge(piece, sl, inner_edges, sx, sy, cfg)
    if area < cfg.min_area_px or not edges_ok:
        return []
    if shape_ok:
        return [(area, sl, piece, fill)]
    if tile <= 0 or area < 2 * cfg.min_area_px:
        return []
    out = []
    for psl, sub in _tiles(piece, tile):
        gsl = (slice(sl[0].start + psl[0].start, sl[0].start + psl[0].stop),
               slice(sl[1].start + psl[1].start, sl[1].start + psl[1].stop))
        out += _usable_pieces(sub, gsl, inner_edges, sx, sy, cfg, 0)
    return out


def _usable_regions(seg, inner_edges, sx, sy, cfg):
    """[(area_px, slice, piece mask over the slice, fill)] of usable regions, largest first."""
    tile = cfg.split_tile * max(seg.shape)
    big = np.bincount(seg.ravel()) * (sx * sy) >= cfg.min_area_px
    out = []
    for r, sl in enumerate(ndimage.find_objects(seg + 1)):
        if sl is not None and big[r]:
            out += _usable_pieces(seg[sl] == r, sl, inner_edges, sx, sy, cfg, tile)
    return sorted(out, key=lambda t: (-t[0], t[1][0].start, t[1][1].start))


def _line_segments(small, sx, sy, cfg) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 line segments in full-resolution pixel-centre coordinates."""
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    lines = cv2.createLineSegmentDetector(cv2.LSD_REFINE_NONE).detect(gray)[0]
    if lines is None:
        return np.zeros((0, 4))
    s = lines.reshape(-1, 4).astype(np.float64)
    s = (s + 0.5) * np.array([sx, sy, sx, sy]) - 0.5
    length = np.hypot(s[:, 2] - s[:, 0], s[:, 3] - s[:, 1])
    return s[length >= cfg.min_segment_px]


def _plane_area(H_plane: np.ndarray, pts: np.ndarray) -> float:
    """Area in plane units of the image pixels `pts`: the sum of the image-to-plane area scale,
    over pixels on the anchor's side of the vanishing line, each clipped to 1/16..16 (1 at the
    anchor) so that a surface seen at a grazing angle does not dominate."""
    front = geometry.same_side_as_origin(H_plane, pts)
    return float(np.clip(geometry.area_scale(geometry.inv3(H_plane), pts[front]), 1 / 16, 16).sum())


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of (N, 3) arrays (np.cross is slow on small arrays)."""
    return np.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1], a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                     a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], axis=1)


def _inliers(v, mids, dirs, sin_thr):
    """(C, N) bool: segment n points at candidate vanishing point v[c] (unit homogeneous)."""
    dx = v[:, 0:1] - mids[None, :, 0] * v[:, 2:3]
    dy = v[:, 1:2] - mids[None, :, 1] * v[:, 2:3]
    dn = np.sqrt(dx * dx + dy * dy)
    return (np.abs(dx * dirs[None, :, 1] - dy * dirs[None, :, 0]) < sin_thr * dn) & (dn > 1e-9)


def _distinct_lines(lines, mids, members, tol) -> int:
    """How many different lines the member segments (longest first) lie on."""
    kept = []
    for n in np.flatnonzero(members):
        if all(abs(lines[k, :2] @ mids[n] + lines[k, 2]) > tol for k in kept):
            kept.append(n)
    return len(kept)


def _vp_search(lines, mids, dirs, weights, usable, cfg, nbox, tol, min_lines):
    """Best vanishing point (unit homogeneous, normalised coords) of the `usable` segments (sorted
    longest first): proposals from pairs of the 16 longest, scored by inlier length; it must lie
    outside the region's box and gather `min_family_segments` segments on `min_lines` lines.
    Returns (vp, inlier mask) or (None, None)."""
    idx = np.flatnonzero(usable)
    if idx.size < cfg.min_family_segments:
        return None, None
    top = idx[:16]
    i, j = _PAIRS[top.size]
    cand = _cross(lines[top[i]], lines[top[j]])
    nrm = np.sqrt((cand * cand).sum(axis=1))
    cand = cand[nrm > 1e-9] / nrm[nrm > 1e-9, None]
    if cand.shape[0] == 0:
        return None, None
    sin_thr = math.sin(math.radians(cfg.vp_inlier_deg))
    inl = _inliers(cand, mids, dirs, sin_thr) & usable[None]
    score = inl @ weights
    fin = np.abs(cand[:, 2]) > 1e-9
    px = cand[fin, :2] / cand[fin, 2:3]
    score[np.flatnonzero(fin)[(px[:, 0] >= nbox[1]) & (px[:, 0] <= nbox[3])
                              & (px[:, 1] >= nbox[0]) & (px[:, 1] <= nbox[2])]] = -1
    for b in np.argsort(-score, kind="stable")[:5]:
        if score[b] <= 0:
            break
        members = inl[b]
        if (members.sum() < cfg.min_family_segments
                or _distinct_lines(lines, mids, members, tol) < min_lines):
            continue
        # Least-squares refinement: v minimising sum w (l . v)^2 over the inliers.
        _, _, vt = np.linalg.svd(lines[members] * weights[members, None])
        v = vt[-1]
        refined = _inliers(v[None], mids, dirs, sin_thr)[0] & usable
        if refined.sum() >= members.sum():
            return v, refined
        return cand[b], members
    return None, None


def _estimate_plane(segments, bbox, area, anchor, shape, cfg) -> Plane:
    ax, ay = anchor
    frontal = Plane(np.array([[1.0, 0, ax], [0, 1.0, ay], [0, 0, 1.0]]), EVIDENCE_FRONTAL, 0.0)
    H, W = shape
    y0, x0, y1, x1 = bbox
    grow = min(cfg.plane_context * math.sqrt(area), cfg.plane_context_max * max(H, W))
    mid = 0.5 * (segments[:, :2] + segments[:, 2:])
    sel = ((mid[:, 0] >= x0 - grow) & (mid[:, 0] <= x1 + grow) & (mid[:, 1] >= y0 - grow)
           & (mid[:, 1] <= y1 + grow))
    seg = segments[sel]
    if seg.shape[0] < 2 * cfg.min_family_segments:
        return frontal
    length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    order = np.argsort(-length, kind="stable")[:cfg.max_segments]
    seg, length = seg[order], length[order]
    # Normalised coordinates (centre 0, longest side 1) keep the algebra well conditioned.
    c = np.array([(W - 1) / 2, (H - 1) / 2])
    s = float(max(H, W))
    p1, p2 = (seg[:, :2] - c) / s, (seg[:, 2:] - c) / s
    ones = np.ones((seg.shape[0], 1))
    lines = _cross(np.hstack([p1, ones]), np.hstack([p2, ones]))
    lines /= np.linalg.norm(lines[:, :2], axis=1, keepdims=True)
    dirs = (p2 - p1) / np.linalg.norm(p2 - p1, axis=1, keepdims=True)
    mids = 0.5 * (p1 + p2)
    w = length / length.max()
    nbox = ((y0 - c[1]) / s, (x0 - c[0]) / s, (y1 - c[1]) / s, (x1 - c[0]) / s)
    tol = cfg.line_merge_px / s
    v1, in1 = _vp_search(lines, mids, dirs, w, np.ones(seg.shape[0], bool), cfg, nbox, tol,
                         cfg.min_family_lines[0])
    if v1 is None:
        return frontal
    v2, _ = _vp_search(lines, mids, dirs, w, ~in1, cfg, nbox, tol, cfg.min_family_lines[1])
    if v2 is None:
        return frontal
    a = np.array([(ax - c[0]) / s, (ay - c[1]) / s])
    d1, d2 = v1[:2] - a * v1[2], v2[:2] - a * v2[2]
    cosang = abs(d1 @ d2) / (np.linalg.norm(d1) * np.linalg.norm(d2) + 1e-12)
    if cosang > math.cos(math.radians(cfg.min_family_angle_deg)):
        return frontal
    T = np.array([[1 / s, 0, -c[0] / s], [0, 1 / s, -c[1] / s], [0, 0, 1.0]])  # pixel -> normalised
    l_pix = T.T @ np.cross(v1, v2)
    T_inv = geometry.inv3(T)
    vps = tuple(tuple(float(t) for t in T_inv @ v) for v in (v1, v2))
    Hp, tilt = _plane_from_vanishing_line(l_pix, [T_inv @ v for v in (v1, v2)],
                                          anchor, shape, cfg)
    if Hp is None:
        return frontal
    return Plane(Hp, EVIDENCE_VP, tilt, vps)


def _plane_from_vanishing_line(l_pix, vps_pix, anchor, shape, cfg):
    """H_plane from a vanishing line (pixel coords) with the assumed camera; (None, 0) if degenerate."""
    H, W = shape
    f = cfg.focal_factor * max(H, W)
    K = np.array([[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1.0]])
    Kinv = geometry.inv3(K)
    n = K.T @ l_pix
    if np.linalg.norm(n) < 1e-12:
        return None, 0.0
    n /= np.linalg.norm(n)
    r = Kinv @ np.array([anchor[0], anchor[1], 1.0])
    r /= np.linalg.norm(r)
    if n @ r < 0:
        n = -n
    tilt = math.degrees(math.acos(min(1.0, float(n @ r))))
    if tilt > cfg.reject_tilt_deg:
        return None, 0.0
    if tilt > cfg.max_tilt_deg:  # rotate n towards the viewing ray
        u = n - (n @ r) * r
        u /= np.linalg.norm(u)
        t = math.radians(cfg.max_tilt_deg)
        n = math.cos(t) * r + math.sin(t) * u
        tilt = cfg.max_tilt_deg
    X0 = r / (n @ r)
    best = None
    for v in vps_pix:  # e1: the in-plane vanishing direction that looks most horizontal
        D = Kinv @ v
        D = D - (D @ n) * n
        if np.linalg.norm(D) < 1e-9:
            continue
        D /= np.linalg.norm(D)
        img = K @ (X0 + 1e-4 * D)
        step = img[:2] / img[2] - np.asarray(anchor)
        horiz = abs(step[0]) / (np.linalg.norm(step) + 1e-12)
        if best is None or horiz > best[0]:
            best = (horiz, D if step[0] >= 0 else -D)
    if best is None:
        return None, 0.0
    e1 = best[1]
    e2 = np.cross(n, e1)
    Hp = K @ np.column_stack([e1, e2, X0])
    if geometry.det3(Hp) < 0:  # no mirror image: e2 must point "down" when e1 points right
        e2 = -e2
        Hp = K @ np.column_stack([e1, e2, X0])
    scale = math.sqrt(float(geometry.area_scale(Hp, np.zeros((1, 2)))[0]))
    if not np.isfinite(scale) or scale <= 0:
        return None, 0.0
    Hp = Hp @ np.diag([1 / scale, 1 / scale, 1.0])
    return Hp / Hp[2, 2], tilt
