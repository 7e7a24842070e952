"""Surface analysis of a background: homogeneous regions, strong edges and a plane per region.

`analyse(rgb, cfg)` is deterministic. It works on a copy whose longest side is `cfg.work_size`
(320 px) and maps its results back to full resolution. Regions come from two passes: a fine pass
finds surfaces that are flat at pixel level (kind "flat"); a texture pass finds, where the fine
pass found none, surfaces that are homogeneous in texture (kind "texture": a brick wall, a lawn,
gravel, carpet). A strong edge is an edge that is not part of a stationary texture.

1. Gradient: Sobel of the Gaussian-blurred (sigma `blur_sigma`) CIELab image, per channel, in
   Lab units per pixel; the magnitude is the root sum of squares over the channels.
2. Fine edges: Canny on those gradients with thresholds relative to the image's own statistics:
   high = max(`edge_min`, `edge_percentile`-th percentile of the gradient), low = `edge_low_ratio`
   * high; dilated by `edge_dilate` work pixels.
3. Fine regions: marker-based watershed (cv2.watershed). Markers are the 4-connected components,
   of at least `marker_min_px` pixels, of the "flat" pixels, gradient < clip(`flat_factor` *
   median gradient, `flat_min`, `flat_max`), eroded once. Adjacent regions whose mean Lab colours
   differ by less than `merge_delta_e` and whose shared boundary is weaker than the Canny low
   threshold are merged (one union-find pass). Boundaries between the final regions are the fine
   boundaries.
4. Usable flat regions (after SynthText): area >= `min_area_px` (full-resolution pixels),
   bounding-box aspect (width / height) within `min_aspect`..`max_aspect`, filling >= `min_fill` of
   that box, and at most `max_edge_density` of its pixels on (undilated) Canny edges off the fine
   boundaries. A region that is large but fails only aspect or fill (say the wall around a person)
   is cut along an even grid of cells at most `split_tile` of the longest side, and its parts are
   judged again; the cuts separate labels but are not boundaries. At most the `max_regions`
   largest are kept, with ids 0..n-1.
5. Texture pass (`max_texture_regions` > 0), on the texture grid (the work copy reduced by
   TEXTURE_STEP = 2 by area averaging). Per pixel, from the work copy: L*, a*, b* (the blurred Lab
   image of step 1, L* in 0..100), L*^2, the squared gradient magnitude of step 1, and the
   structure tensor of L (gx^2 + gy^2, gx^2 - gy^2, 2 gx gy); each is averaged over the texture
   scale (Gaussian, sigma `texture_sigma` work px). Features, constant over a stationary texture:
   the mean L*, a*, b*; `texture_log_weight` * log2(1 + v / `texture_floor`) of the RMS gradient
   and of the local contrast (the RMS of L* about its mean), so that a doubling of either weighs
   like a colour step of `texture_log_weight`; and the orientation (gx^2 - gy^2, 2 gx gy) / (gx^2 +
   gy^2 + `texture_floor`^2) times `texture_orientation_weight` (0 for an isotropic texture). The
   texture gradient is the Sobel gradient magnitude of those features (root sum of squares over
   them) times sqrt(2 pi) * sigma: the height of the feature step that would give it, so a boundary
   between two textures whose features differ by D peaks at about D. Texture segments: watershed
   (skimage) of the texture gradient from markers, the 4-connected components of at least
   `texture_marker_min_px` (work px) of pixels under `texture_flat`, eroded once; then adjacent
   segments whose mean features differ by less than `texture_merge` and whose shared boundary
   (mean texture gradient) is under `texture_edge` are merged. Texture regions are the
   4-connected parts of each segment outside the usable flat regions, judged by the rules of step
   4 (area, aspect, fill, the same grid split) and usable when also: stationary (at most
   `max_texture_edge_density` of its pixels have a texture gradient over `texture_edge`, not
   counting those within `texture_sigma` of the part's own outline, which are its boundary);
   busier than the fine pass allows (more than `max_edge_density` of its pixels on fine Canny
   edges, or the fine pass would have taken it); and not clutter (mean local contrast at most
   `max_texture_contrast`). At most the `max_texture_regions` largest are kept, with ids n, n+1...
6. Edges and boundaries: inside a texture region (eroded by `texture_erode` work px, and where
   the texture gradient stays under `texture_edge`) the fine edges and fine boundaries are the
   texture's own and are dropped: `edges` is the fine edge map of step 2 without them. A texture
   region's outline (where it meets anything else, or another texture segment) joins the fine
   boundaries in `boundaries`. `labels` holds the region ids and -1 elsewhere (every boundary
   pixel included). `distance_to_edge` is the distance in pixels to the nearest strong edge or
   region boundary (the canvas border does not count).
7. Plane per usable region (either kind): synth.surface_plane, from line segments and vanishing
   points (its docstring says how); `Region.plane_size` is the square root of the region's area in
   plane units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage
from skimage import segmentation

from synth.errors import InputImageError, check_fields
from synth.pixels import channel_sum
# EVIDENCE_VP and EVIDENCE_FRONTAL stay importable from here: they are the values of Region.plane.evidence.
from synth.surface_plane import (EVIDENCE_FRONTAL, EVIDENCE_VP, Plane,  # noqa: F401
                                 area_on_plane, estimate_plane, line_segments)

KIND_FLAT = "flat"  # a region found by the fine pass: flat at pixel level
KIND_TEXTURE = "texture"  # a region found by the texture pass: a stationary texture
TEXTURE_STEP = 2  # the texture pass works on a grid of this many work pixels


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


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
    # Texture pass (step 5 of the module docstring). Feature units: CIELab for colour (L* 0..100).
    max_texture_regions: int = 8  # keep at most this many (largest) texture regions (0: no texture pass)
    texture_sigma: float = 8.0  # texture scale: Gaussian averaging of the texture features, work px
    texture_log_weight: float = 10.0  # feature units per doubling of the RMS gradient or contrast ...
    texture_floor: float = 2.0  # ... above this floor (Lab units / px; L* units); orientation's too
    texture_orientation_weight: float = 10.0  # feature units of a fully oriented texture's orientation
    texture_flat: float = 10.0  # texture markers: texture gradient under this (feature units)
    texture_marker_min_px: int = 64  # smallest texture marker, work px
    texture_edge: float = 20.0  # texture boundary: texture gradient over this (feature units)
    texture_merge: float = 10.0  # merge texture neighbours closer than this in mean features
    max_texture_edge_density: float = 0.05  # stationary: share of a region's pixels on texture boundaries
    max_texture_contrast: float = 20.0  # not clutter: mean local RMS of L* at most this
    texture_erode: int = 2  # fine edges are dropped in texture regions eroded by this, work px
    texture_min_vp_share: float = 0.5  # a texture's two vanishing points hold at least this share of
    #                                    its segments' length (a random texture's point everywhere)

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
                   ">= max_tilt_deg and < 90"),
                  ("max_texture_regions", _is_int(self.max_texture_regions) and self.max_texture_regions >= 0,
                   "an int >= 0"),
                  ("texture_sigma", 1 <= self.texture_sigma <= 32, "in [1, 32]"),
                  ("texture_log_weight", self.texture_log_weight >= 0, ">= 0"),
                  ("texture_floor", self.texture_floor > 0, "> 0"),
                  ("texture_orientation_weight", self.texture_orientation_weight >= 0, ">= 0"),
                  ("texture_flat", 0 < self.texture_flat <= self.texture_edge, "> 0 and <= texture_edge"),
                  ("texture_marker_min_px",
                   _is_int(self.texture_marker_min_px) and self.texture_marker_min_px >= 4, "an int >= 4"),
                  ("texture_merge", self.texture_merge >= 0, ">= 0"),
                  ("max_texture_edge_density", 0 <= self.max_texture_edge_density <= 1, "in [0, 1]"),
                  ("max_texture_contrast", self.max_texture_contrast > 0, "> 0"),
                  ("texture_erode", _is_int(self.texture_erode) and self.texture_erode >= 0, "an int >= 0"),
                  ("texture_min_vp_share", 0 <= self.texture_min_vp_share <= 1, "in [0, 1]")]
        check_fields("SurfaceConfig", self, checks)


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
    kind: str = KIND_FLAT  # KIND_FLAT (fine pass) or KIND_TEXTURE (texture pass)


@dataclass(frozen=True)
class Surface:
    shape: tuple[int, int]  # (H, W) of the analysed image
    labels: np.ndarray  # int32 HxW: usable region id, -1 elsewhere
    edges: np.ndarray  # bool HxW: strong (dilated) edges: not those of a texture region's own texture
    boundaries: np.ndarray  # bool HxW: boundaries between segmented regions (usable or not) and of
    #                         texture regions; none inside a texture region
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
    mag = np.sqrt(channel_sum(dx.astype(np.float32) ** 2 + dy.astype(np.float32) ** 2)) / 8.0
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
    return _merge(seg, k, lab, mag, 100.0 / 255.0, cfg.merge_delta_e, low)  # lab: ~ CIE76 units


def _merge(seg, k, feats, strength, delta_scale, max_delta, max_strength):
    """One union-find pass over the regions 0..k-1 of `seg` (every pixel labelled): adjacent regions
    whose mean features (HxWxC `feats`) differ by less than `max_delta` (Euclidean, times
    `delta_scale`) and whose shared boundary is weaker than `max_strength` (the mean over the
    boundary's pixel pairs of the larger `strength` of the two) are merged. Returns compact int32
    labels 0..R-1."""
    flat_seg = seg.ravel()
    cnt = np.bincount(flat_seg, minlength=k).astype(np.float64)
    means = np.stack([np.bincount(flat_seg, feats[..., c].ravel(), k) for c in range(feats.shape[2])], 1)
    means /= np.maximum(cnt, 1)[:, None]
    pa, pb, pg = [], [], []
    for a, b, ga, gb in ((seg[:, :-1], seg[:, 1:], strength[:, :-1], strength[:, 1:]),
                         (seg[:-1], seg[1:], strength[:-1], strength[1:])):
        d = a != b
        a, b = a[d], b[d]
        pa.append(np.minimum(a, b)); pb.append(np.maximum(a, b)); pg.append(np.maximum(ga[d], gb[d]))
    pa, pb, pg = np.concatenate(pa), np.concatenate(pb), np.concatenate(pg)
    parent = np.arange(k)
    if pa.size:
        code = pa.astype(np.int64) * k + pb
        uniq, inv = np.unique(code, return_inverse=True)
        mean_strength = np.bincount(inv, pg) / np.bincount(inv)
        ua, ub = uniq // k, uniq % k
        delta = np.linalg.norm(means[ua] - means[ub], axis=1) * delta_scale

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in np.flatnonzero((delta < max_delta) & (mean_strength < max_strength)):
            ra, rb = find(ua[i]), find(ub[i])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        roots = np.array([find(i) for i in range(k)])
    else:
        roots = parent
    _, compact = np.unique(roots, return_inverse=True)
    return compact.astype(np.int32)[seg]


def _texture(lab, dx, dy, mag, cfg):
    """The texture pass on the texture grid (the work copy reduced by TEXTURE_STEP). Returns, on
    the work copy: texture segment labels (int32, 0..R-1, every pixel), the texture gradient and
    the local contrast (float32)."""
    h, w = mag.shape
    gh, gw = max(1, round(h / TEXTURE_STEP)), max(1, round(w / TEXTURE_STEP))
    f = lab.astype(np.float32)
    gx, gy = dx[..., 0].astype(np.float32) / 8.0, dy[..., 0].astype(np.float32) / 8.0  # L, per px
    L = f[..., 0] * (100.0 / 255.0)
    raw = np.dstack([L, f[..., 1] - 128.0, f[..., 2] - 128.0, L * L, mag * mag,
                     gx * gx + gy * gy, gx * gx - gy * gy, 2.0 * gx * gy])
    sig = cfg.texture_sigma / TEXTURE_STEP
    grid = np.dstack([cv2.resize(raw[..., c:c + 4], (gw, gh), interpolation=cv2.INTER_AREA)
                      for c in (0, 4)])  # cv2.resize takes at most 4 channels
    m = cv2.GaussianBlur(grid, (0, 0), sig)
    g0 = cfg.texture_floor
    contrast = np.sqrt(np.maximum(m[..., 3] - m[..., 0] * m[..., 0], 0))
    energy = np.sqrt(np.maximum(m[..., 4], 0))
    logs = cfg.texture_log_weight * np.log2(1.0 + np.dstack([energy, contrast]) / g0)
    tensor = np.maximum(m[..., 5], 0) + g0 * g0
    orient = m[..., 6:8] * (cfg.texture_orientation_weight / tensor)[..., None]
    feats = np.ascontiguousarray(np.dstack([m[..., :3], logs, orient]), np.float32)
    # Texture gradient: the height of the feature step that gives the local gradient at this scale.
    gfx = cv2.Sobel(feats, cv2.CV_32F, 1, 0, borderType=cv2.BORDER_REPLICATE)
    gfy = cv2.Sobel(feats, cv2.CV_32F, 0, 1, borderType=cv2.BORDER_REPLICATE)
    tgrad = np.sqrt(channel_sum(gfx * gfx + gfy * gfy)) * (math.sqrt(2 * math.pi) * sig / 8.0)
    # Watershed of the texture gradient from its flat basins, then merging as in the fine pass.
    flat = cv2.erode((tgrad < cfg.texture_flat).astype(np.uint8), np.ones((3, 3), np.uint8))
    n, cc, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=4)
    keep = np.zeros(n, np.int32)
    big = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] * TEXTURE_STEP ** 2 >= cfg.texture_marker_min_px)
    big = big[big > 0]
    if big.size <= 1:  # one basin (a single texture) or none: one segment
        tseg = np.zeros((gh, gw), np.int32)
    else:
        keep[big] = np.arange(1, big.size + 1)
        ws = segmentation.watershed(tgrad, keep[cc]) - 1  # every pixel reached: 0..k-1
        tseg = _merge(ws.astype(np.int32), big.size, feats, tgrad, 1.0, cfg.texture_merge, cfg.texture_edge)
    up = (w, h)
    return (cv2.resize(tseg, up, interpolation=cv2.INTER_NEAREST_EXACT),
            cv2.resize(tgrad, up, interpolation=cv2.INTER_LINEAR),
            cv2.resize(contrast, up, interpolation=cv2.INTER_LINEAR))


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
    kinds = [KIND_FLAT] * len(cand)
    if cfg.max_texture_regions > 0 and min(seg.shape) >= 2 * TEXTURE_STEP:
        # Texture regions where the fine pass found none; inside them their own texture is no obstacle.
        tseg, tgrad, contrast = _texture(lab, dx, dy, mag, cfg)
        tex = _texture_regions(tseg, tgrad, contrast, canny, lab_s < 0, sx, sy, cfg)[:cfg.max_texture_regions]
        for i, (_, sl, piece, _) in enumerate(tex):
            lab_s[sl][piece] = len(cand) + i
        if tex:
            edges_s, bnd_s = _texture_obstacles(lab_s >= len(cand), tseg, tgrad, edges_s, bnd_s, cfg)
        cand += tex
        kinds += [KIND_TEXTURE] * len(tex)
    lab_s[bnd_s] = -1

    labels = _upsample(lab_s, (H, W))
    edges = _upsample(edges_s, (H, W))
    boundaries = _upsample(bnd_s, (H, W))
    dist = cv2.distanceTransform((~(edges | boundaries)).astype(np.uint8), cv2.DIST_L2, 5)

    segments = line_segments(small, sx, sy, cfg) if cand else np.zeros((0, 4))
    regions = []
    for i, (area, sl, piece, fill) in enumerate(cand):
        y0, x0 = int(sl[0].start * sy), int(sl[1].start * sx)
        y1, x1 = min(H, math.ceil(sl[0].stop * sy)), min(W, math.ceil(sl[1].stop * sx))
        # Anchor: the pixel farthest from edges, boundaries and the canvas border.
        rr, cc = np.arange(y0, y1)[:, None], np.arange(x0, x1)[None, :]
        # (in float32: every value is a float32 distance or a whole number of px, so the same as in float64)
        border = np.minimum(np.minimum(rr + 1, H - rr), np.minimum(cc + 1, W - cc)).astype(np.float32)
        d = np.minimum(dist[y0:y1, x0:x1], border)
        d[labels[y0:y1, x0:x1] != i] = 0.0
        k = int(np.argmax(d))
        ay, ax = y0 + k // (x1 - x0), x0 + k % (x1 - x0)
        plane = estimate_plane(segments, (y0, x0, y1, x1), area, (float(ax), float(ay)), (H, W), cfg,
                                cfg.texture_min_vp_share if kinds[i] == KIND_TEXTURE else 0.0)
        if plane.evidence == EVIDENCE_FRONTAL:  # a translation: one plane unit per pixel everywhere
            plane_area = float(np.count_nonzero(piece)) * sx * sy
        else:
            rows, cols = np.nonzero(piece)
            pts = np.stack([(cols + sl[1].start + 0.5) * sx - 0.5, (rows + sl[0].start + 0.5) * sy - 0.5], 1)
            plane_area = area_on_plane(plane.H_plane, pts) * sx * sy
        mean = small[sl][piece].reshape(-1, 3).mean(axis=0)
        regions.append(Region(i, int(round(area)), (y0, x0, y1, x1), float(fill), (float(ax), float(ay)),
                              float(d.flat[k]), math.sqrt(plane_area), tuple(float(m) for m in mean), plane,
                              kinds[i]))
    return Surface((H, W), labels, edges, boundaries, dist, tuple(regions))


def _texture_obstacles(inside, tseg, tgrad, edges_s, bnd_s, cfg):
    """(edges, boundaries) on the work copy once texture regions (`inside`) are known: the fine edges
    and fine boundaries in their interior (eroded by `texture_erode`, texture gradient under
    `texture_edge`) are the texture's own and are dropped; their outline becomes a boundary."""
    outline = np.zeros_like(inside)
    for a, b, ta, tb, o in ((inside[:, :-1], inside[:, 1:], tseg[:, :-1], tseg[:, 1:], outline[:, :-1]),
                            (inside[:-1], inside[1:], tseg[:-1], tseg[1:], outline[:-1])):
        o |= (a != b) | (a & b & (ta != tb))
    interior = inside
    if cfg.texture_erode > 0:
        ke = 2 * cfg.texture_erode + 1
        interior = cv2.erode(inside.astype(np.uint8), np.ones((ke, ke), np.uint8)) > 0  # border: no erosion
    interior = interior & (tgrad < cfg.texture_edge)
    return edges_s & ~interior, (bnd_s & ~interior) | outline


def _judge(piece, sl, inner_edges, sx, sy, cfg, max_density):
    """(area_px, fill, shape_ok, edges_ok) of a piece (bool mask over the work slice `sl`)."""
    area = float(np.count_nonzero(piece))
    rows, cols = np.flatnonzero(piece.any(1)), np.flatnonzero(piece.any(0))
    bh, bw = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    fill = area / (bh * bw)
    shape_ok = cfg.min_aspect <= (bw * sx) / (bh * sy) <= cfg.max_aspect and fill >= cfg.min_fill
    edges_ok = np.count_nonzero(inner_edges[sl] & piece) <= max_density * area
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


def _usable_pieces(piece, sl, inner_edges, sx, sy, cfg, tile, max_density, accept=None):
    """[(area_px, slice, piece mask, fill)] of the usable parts of one region: itself, or when it
    is large but fails the shape test (say a wall around a person), its grid cells. A part is
    usable when at most `max_density` of its pixels are on `inner_edges` and `accept(part, slice)`
    (when given) holds."""
    area, fill, shape_ok, edges_ok = _judge(piece, sl, inner_edges, sx, sy, cfg, max_density)
    if area < cfg.min_area_px or not edges_ok:
        return []
    if shape_ok:
        return [(area, sl, piece, fill)] if accept is None or accept(piece, sl) else []
    if tile <= 0 or area < 2 * cfg.min_area_px:
        return []
    out = []
    for psl, sub in _tiles(piece, tile):
        gsl = (slice(sl[0].start + psl[0].start, sl[0].start + psl[0].stop),
               slice(sl[1].start + psl[1].start, sl[1].start + psl[1].stop))
        out += _usable_pieces(sub, gsl, inner_edges, sx, sy, cfg, 0, max_density, accept)
    return out


def _usable_regions(seg, inner_edges, sx, sy, cfg):
    """[(area_px, slice, piece mask over the slice, fill)] of usable regions, largest first."""
    tile = cfg.split_tile * max(seg.shape)
    big = np.bincount(seg.ravel()) * (sx * sy) >= cfg.min_area_px
    out = []
    for r, sl in enumerate(ndimage.find_objects(seg + 1)):
        if sl is not None and big[r]:
            out += _usable_pieces(seg[sl] == r, sl, inner_edges, sx, sy, cfg, tile, cfg.max_edge_density)
    return sorted(out, key=lambda t: (-t[0], t[1][0].start, t[1][1].start))


def _texture_regions(tseg, tgrad, contrast, canny, free, sx, sy, cfg):
    """[(area_px, slice, piece mask over the slice, fill)] of usable texture regions, largest first:
    the connected parts of each texture segment within `free` (not in a fine usable region), judged
    by the same area/aspect/fill rules and grid split as the fine pass, that are stationary (at
    most `max_texture_edge_density` of their pixels on texture boundaries), busier than the fine pass
    allows (more than `max_edge_density` on fine Canny edges) and not clutter (mean local contrast
    at most `max_texture_contrast`)."""
    masked = np.where(free, tseg, -1)
    # Texture boundaries within texture_sigma of a segment's own outline belong to that outline.
    outline = np.zeros(tseg.shape, bool)
    outline[:, :-1] |= masked[:, :-1] != masked[:, 1:]
    outline[:-1, :] |= masked[:-1, :] != masked[1:, :]
    near = cv2.distanceTransform((~outline).astype(np.uint8), cv2.DIST_L2, 3) <= cfg.texture_sigma
    tedges = (tgrad > cfg.texture_edge) & ~near
    tile = cfg.split_tile * max(tseg.shape)

    def accept(piece, sl):
        n = np.count_nonzero(piece)
        return (np.count_nonzero(canny[sl] & piece) > cfg.max_edge_density * n
                and float(contrast[sl][piece].mean()) <= cfg.max_texture_contrast)

    out = []
    for r, sl in enumerate(ndimage.find_objects(masked + 1)):
        if sl is None:
            continue
        n, cc, stats, _ = cv2.connectedComponentsWithStats((masked[sl] == r).astype(np.uint8), connectivity=4)
        for c in range(1, n):
            x, y, cw, ch, a = stats[c]
            if a * sx * sy < cfg.min_area_px:
                continue
            psl = (slice(sl[0].start + y, sl[0].start + y + ch), slice(sl[1].start + x, sl[1].start + x + cw))
            out += _usable_pieces(cc[y:y + ch, x:x + cw] == c, psl, tedges, sx, sy, cfg, tile,
                                  cfg.max_texture_edge_density, accept)
    return sorted(out, key=lambda t: (-t[0], t[1][0].start, t[1][1].start))
