"""The plane of one surface region, estimated from line segments and vanishing points.

For each usable region of synth.surface (either kind), `cfg` being its SurfaceConfig: line
segments (`line_segments`: cv2 LSD on the work copy, once per backdrop, at least
`min_segment_px` long) whose midpoints lie in the region's box grown on each side by
`plane_context` * sqrt(area), at most `plane_context_max` of the longest side; the
`max_segments` longest are kept. Every pair of the 16 longest proposes a vanishing point (the
intersection of their lines, possibly at infinity); a proposal's score is the total length of
the segments pointing at it within `vp_inlier_deg`. The best proposal outside the region's box
with `min_family_segments` inliers on `min_family_lines[0]` distinct lines, refined by least
squares, is the first vanishing point; the same search on the other segments (with
`min_family_lines[1]` lines) gives the second; seen from the region their directions must
differ by `min_family_angle_deg`. For a texture region the two families must also hold at
least `texture_min_vp_share` of the segments' total length (brick joints do; the short segments
of grass or gravel point everywhere, and a few of them meet by chance). The line through both
is the vanishing line l (`estimate_plane`). With a pinhole camera K (focal `focal_factor` * longest side,
principal point at the centre) the plane normal is n = K^T l. Its tilt from the viewing ray
through the region's anchor is bounded by `max_tilt_deg` (n is turned towards the ray); a tilt
over `reject_tilt_deg` is not trusted.
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
from dataclasses import dataclass

import cv2
import numpy as np

from synth import geometry

EVIDENCE_VP = "vanishing_points"
EVIDENCE_FRONTAL = "fallback_frontal"
_PAIRS = [np.triu_indices(n, 1) for n in range(17)]  # index pairs among the 16 longest segments


@dataclass(frozen=True)
class Plane:
    H_plane: np.ndarray  # 3x3 float64, plane coordinates -> image pixels; 1 unit = 1 px at anchor
    evidence: str  # EVIDENCE_VP or EVIDENCE_FRONTAL
    tilt_deg: float  # angle between the plane normal and the viewing ray at the anchor
    vanishing_points: tuple = ()  # homogeneous (x, y, w) image points, when evidence is VP


def line_segments(small, sx, sy, cfg) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 line segments in full-resolution pixel-centre coordinates."""
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    lines = cv2.createLineSegmentDetector(cv2.LSD_REFINE_NONE).detect(gray)[0]
    if lines is None:
        return np.zeros((0, 4))
    s = lines.reshape(-1, 4).astype(np.float64)
    s = (s + 0.5) * np.array([sx, sy, sx, sy]) - 0.5
    length = np.hypot(s[:, 2] - s[:, 0], s[:, 3] - s[:, 1])
    return s[length >= cfg.min_segment_px]


def area_on_plane(H_plane: np.ndarray, pts: np.ndarray) -> float:
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


def estimate_plane(segments, bbox, area, anchor, shape, cfg, min_share: float = 0.0) -> Plane:
    """The region's plane from the vanishing points of the line segments around it; frontal without
    that evidence, or when the two families hold under `min_share` of the segments' length."""
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
    v2, in2 = _vp_search(lines, mids, dirs, w, ~in1, cfg, nbox, tol, cfg.min_family_lines[1])
    if v2 is None or w[in1 | in2].sum() < min_share * w.sum():
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
