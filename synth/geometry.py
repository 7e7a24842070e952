"""Geometry of a logo laid on a surface: its quadrilateral, homography, distortion limits, warp.

Conventions. A homography is a 3x3 float64 matrix mapping (x, y, 1) column vectors, x = column,
y = row, in OpenCV's pixel-centre coordinates (pixel (row i, column j) has its centre at
(x=j, y=i), so an image of width W spans x in [-0.5, W - 0.5]). A quad is a (4, 2) float64 array
of (x, y) corners in the order TL, TR, BR, BL of the logo, and marks the logo's outer edges, so
the logo's pixel corners (-0.5, -0.5) ... (W - 0.5, H - 0.5) map onto it.

A surface's plane is described by `H_plane`, mapping fronto-parallel "plane coordinates" to image
pixels (see synth.surface). `logo_quad` lays the logo rectangle on that plane around a centre:

1. the centre is mapped into the plane with H_plane^-1;
2. the requested width in image pixels is turned into plane units with the plane's local scale
   there (the square root of the Jacobian determinant of H_plane), so the logo keeps the size the
   caller asked for while its shape follows the plane's foreshortening;
3. the rectangle is rotated in the plane by `rotation_deg` (positive = counter-clockwise on
   screen, as in cv2.getRotationMatrix2D) and given a small extra tilt (a 3-D rotation about the
   logo's own x and y axes, seen from `TILT_DISTANCE` logo sizes away), then mapped to the image.

`distortion_ok` applies SynthText-style limits to the result: convex, no side shorter than
`min_side_px`, no interior angle under `min_angle_deg`, and the quad's aspect (mean height over
mean width) within 0.4..2.5 times the logo's own. `warp_rgba` warps only the quad's bounding
rectangle, with premultiplied alpha so that bilinear interpolation does not pull the transparent
pixels' (arbitrary) colour into the logo's rim; a logo shrunk by more than 2x is first reduced
with INTER_AREA so that the warp does not alias.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from synth.pixels import clip_to

# Extra tilt is rendered as seen by a virtual camera this many logo sizes away from the logo.
TILT_DISTANCE = 3.0


def det3(H) -> float:
    """Determinant of a 3x3 matrix, in closed form. (np.linalg's LAPACK path costs 30 us per call
    and, with a multi-threaded OpenBLAS on busy cores, often milliseconds.)"""
    (a, b, c), (d, e, f), (g, h, i) = np.asarray(H, np.float64).tolist()
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def inv3(H) -> np.ndarray:
    """Inverse of an invertible 3x3 matrix (adjugate over determinant), float64."""
    (a, b, c), (d, e, f), (g, h, i) = np.asarray(H, np.float64).tolist()
    A, B, C = e * i - f * h, f * g - d * i, d * h - e * g
    det = a * A + b * B + c * C
    if det == 0.0 or not math.isfinite(det):
        raise ValueError(f"the 3x3 matrix {np.asarray(H).tolist()} is not invertible (determinant {det!r})")
    r = 1.0 / det
    return np.array([[A * r, (c * h - b * i) * r, (b * f - c * e) * r],
                     [B * r, (a * i - c * g) * r, (c * d - a * f) * r],
                     [C * r, (b * g - a * h) * r, (a * e - b * d) * r]])


def apply_h(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Maps (N, 2) points through homography H; returns (N, 2) float64."""
    p = np.asarray(pts, np.float64).reshape(-1, 2)
    q = p @ H[:, :2].T + H[:, 2]
    return q[:, :2] / q[:, 2:3]


def area_scale(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """|det| of the Jacobian of the map x -> H x at the (N, 2) points: the local area magnification."""
    p = np.asarray(pts, np.float64).reshape(-1, 2)
    w = p @ H[2, :2] + H[2, 2]
    return np.abs(det3(H) / w ** 3)


def same_side_as_origin(plane_H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(N,) bool: the image points lie on the same side of the plane's vanishing line as the image
    of the plane's origin (points beyond the horizon have no place on the plane)."""
    G = inv3(plane_H)
    o = plane_H[:2, 2] / plane_H[2, 2]
    w0 = G[2, :2] @ o + G[2, 2]
    p = np.asarray(pts, np.float64).reshape(-1, 2)
    return (p @ G[2, :2] + G[2, 2]) * w0 > 0


def logo_quad(plane_H: np.ndarray, center_xy, width_px: float, aspect_hw: float,
              rotation_deg: float = 0.0, extra_tilt=(0.0, 0.0)) -> np.ndarray:
    """Corners TL, TR, BR, BL (4, 2) in image pixels of a logo `width_px` wide at `center_xy`
    (image pixels), `aspect_hw` = logo height / width, laid on the plane `plane_H`.
    `extra_tilt` = (about the logo's x axis, about its y axis) in degrees. (Scalar arithmetic: a
    placement tries many quads, and numpy's per-call cost dominates on 4 points.)"""
    H = np.asarray(plane_H, np.float64)
    if H.shape != (3, 3) or not np.all(np.isfinite(H)) or abs(det3(H)) < 1e-12:
        raise ValueError(f"plane_H must be a finite, invertible 3x3 homography, got {H!r}")
    if not (width_px > 0 and aspect_hw > 0):
        raise ValueError(f"width_px ({width_px}) and aspect_hw ({aspect_hw}) must be positive")
    h_ = H.tolist()
    g = inv3(H).tolist()
    cx, cy = (float(v) for v in np.asarray(center_xy, np.float64).reshape(2))
    wc = g[2][0] * cx + g[2][1] * cy + g[2][2]
    px, py = (g[0][0] * cx + g[0][1] * cy + g[0][2]) / wc, (g[1][0] * cx + g[1][1] * cy + g[1][2]) / wc
    w_at = h_[2][0] * px + h_[2][1] * py + h_[2][2]
    scale = math.sqrt(abs(det3(H) / w_at ** 3))  # image px per plane unit at the centre (area_scale)
    w = width_px / scale
    h = w * aspect_hw
    a = math.radians(rotation_deg)
    c, s = math.cos(a), math.sin(a)
    # the tilt: tilt_homography(extra_tilt, d) written out
    tx, ty = (math.radians(float(t)) for t in extra_tilt)
    d = TILT_DISTANCE * max(w, h)
    r00, r01, r10, r11 = math.cos(ty), math.sin(ty) * math.sin(tx), 0.0, math.cos(tx)
    r20, r21 = -math.sin(ty), math.cos(ty) * math.sin(tx)
    out = []
    for u, v in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
        u, v = u * c + v * s, -u * s + v * c  # counter-clockwise on a y-down screen
        q = r20 * u + r21 * v + d
        u, v = d * (r00 * u + r01 * v) / q + px, d * (r10 * u + r11 * v) / q + py
        q = h_[2][0] * u + h_[2][1] * v + h_[2][2]
        out.append(((h_[0][0] * u + h_[0][1] * v + h_[0][2]) / q, (h_[1][0] * u + h_[1][1] * v + h_[1][2]) / q))
    return np.array(out)


def tilt_homography(extra_tilt, distance: float) -> np.ndarray:
    """Homography (local plane units, origin fixed) of a 3-D rotation by extra_tilt = (tx, ty)
    degrees about the x and y axes, seen by a camera `distance` units away."""
    tx, ty = (math.radians(float(t)) for t in extra_tilt)
    rx = np.array([[1, 0, 0], [0, math.cos(tx), -math.sin(tx)], [0, math.sin(tx), math.cos(tx)]])
    ry = np.array([[math.cos(ty), 0, math.sin(ty)], [0, 1, 0], [-math.sin(ty), 0, math.cos(ty)]])
    r = ry @ rx
    m = np.array([[r[0, 0], r[0, 1], 0.0], [r[1, 0], r[1, 1], 0.0], [r[2, 0], r[2, 1], distance]])
    return np.diag([distance, distance, 1.0]) @ m


def logo_corners(logo_hw) -> np.ndarray:
    """The logo's outer pixel corners TL, TR, BR, BL in its own pixel-centre coordinates."""
    h, w = logo_hw
    return np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])


def logo_homography(logo_hw, quad: np.ndarray) -> np.ndarray:
    """3x3 float64 homography mapping logo pixel coordinates onto `quad` (TL, TR, BR, BL)."""
    q = np.asarray(quad, np.float64).reshape(4, 2)
    return cv2.getPerspectiveTransform(logo_corners(logo_hw).astype(np.float32),
                                       q.astype(np.float32)).astype(np.float64)


_NEXT = [1, 2, 3, 0]  # np.roll(q, -1) of 4 corners


def _corners4(quad) -> list:
    return np.asarray(quad, np.float64).reshape(4, 2).tolist()


def _interior_angles(pts: list) -> list:
    """Interior angle in degrees at each of the 4 corners (lists of (x, y))."""
    out = []
    for i in range(4):
        (xp, yp), (x, y), (xn, yn) = pts[i - 1], pts[i], pts[(i + 1) % 4]
        ax, ay, bx, by = xp - x, yp - y, xn - x, yn - y
        cos = (ax * bx + ay * by) / (math.hypot(ax, ay) * math.hypot(bx, by) + 1e-12)
        out.append(math.degrees(math.acos(min(1.0, max(-1.0, cos)))))
    return out


def _convex(pts: list) -> bool:
    e = [(pts[(i + 1) % 4][0] - pts[i][0], pts[(i + 1) % 4][1] - pts[i][1]) for i in range(4)]
    cross = [e[i][0] * e[(i + 1) % 4][1] - e[i][1] * e[(i + 1) % 4][0] for i in range(4)]
    if not (all(c > 0 for c in cross) or all(c < 0 for c in cross)):
        return False
    return abs(sum(_interior_angles(pts)) - 360.0) < 1e-3  # a bow-tie can have same-sign turns


def is_convex(quad: np.ndarray) -> bool:
    """True for a strictly convex, non-self-intersecting quad (either orientation)."""
    return _convex(_corners4(quad))


def distortion_ok(quad: np.ndarray, aspect_hw: float, min_side_px: float = 8.0,
                  aspect_change=(0.4, 2.5), min_angle_deg: float = 30.0) -> bool:
    """SynthText-style limits on a warped logo: convex; every side >= min_side_px; every interior
    angle >= min_angle_deg; (mean left/right side) / (mean top/bottom side) within
    aspect_change times aspect_hw."""
    pts = _corners4(quad)
    if not all(math.isfinite(v) for p in pts for v in p) or not _convex(pts):
        return False
    sides = [math.hypot(pts[(i + 1) % 4][0] - pts[i][0], pts[(i + 1) % 4][1] - pts[i][1])
             for i in range(4)]  # top, right, bottom, left
    if min(sides) < min_side_px:
        return False
    if min(_interior_angles(pts)) < min_angle_deg:
        return False
    ratio = (0.5 * (sides[1] + sides[3])) / (0.5 * (sides[0] + sides[2])) / aspect_hw
    return bool(aspect_change[0] <= ratio <= aspect_change[1])


def quad_roi(quad: np.ndarray, out_hw) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) integer pixel range covering the quad, clipped to the canvas (may be empty)."""
    q = np.asarray(quad, np.float64).reshape(-1, 2)
    h, w = out_hw
    eps = 1e-4  # float32 round-off of a corner on a pixel border must not add a pixel
    x0 = max(0, int(math.floor(q[:, 0].min() + 0.5 + eps)))
    y0 = max(0, int(math.floor(q[:, 1].min() + 0.5 + eps)))
    x1 = min(w, int(math.ceil(q[:, 0].max() + 0.5 - eps)))
    y1 = min(h, int(math.ceil(q[:, 1].max() + 0.5 - eps)))
    return y0, x0, max(y0, y1), max(x0, x1)


def premultiply(logo_rgba: np.ndarray) -> np.ndarray:
    """float32 (h, w, 4): colour times opacity (0..255) and opacity (0..1), what `warp_rgba` warps."""
    if logo_rgba.ndim != 3 or logo_rgba.shape[2] != 4 or logo_rgba.dtype != np.uint8:
        raise ValueError(f"warp_rgba needs an RGBA uint8 logo, got {logo_rgba.dtype} {logo_rgba.shape}")
    alpha = logo_rgba[..., 3:4].astype(np.float32) / 255.0
    return np.concatenate([logo_rgba[..., :3].astype(np.float32) * alpha, alpha], axis=2)


def warp_rgba(logo_rgba: np.ndarray, H: np.ndarray, out_hw, premultiplied: np.ndarray | None = None):
    """Warps an RGBA uint8 logo with H (logo pixels -> canvas pixels) over the canvas `out_hw`,
    computing only the quad's bounding rectangle. Returns (rgb float32 (h, w, 3) in 0..255,
    straight (not premultiplied) colour, 0 where alpha is 0; alpha float32 (h, w) in [0, 1];
    roi (y0, x0, y1, x1) of that rectangle on the canvas, possibly empty). `premultiplied`:
    `premultiply(logo_rgba)` when the caller keeps it (a logo pasted many times)."""
    if logo_rgba.ndim != 3 or logo_rgba.shape[2] != 4 or logo_rgba.dtype != np.uint8:
        raise ValueError(f"warp_rgba needs an RGBA uint8 logo, got {logo_rgba.dtype} {logo_rgba.shape}")
    H = np.asarray(H, np.float64)
    lh, lw = logo_rgba.shape[:2]
    quad = apply_h(H, logo_corners((lh, lw)))
    y0, x0, y1, x1 = quad_roi(quad, out_hw)
    if y1 <= y0 or x1 <= x0:
        return np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32), (y0, x0, y1, x1)
    pre = premultiply(logo_rgba) if premultiplied is None else premultiplied
    if pre.shape != (lh, lw, 4) or pre.dtype != np.float32:
        raise ValueError(f"premultiplied must be premultiply(logo_rgba): float32 {(lh, lw, 4)}, "
                         f"got {pre.dtype} {pre.shape}")
    # Reduce first when the warp shrinks the logo a lot: bilinear sampling alone would alias.
    sides = np.linalg.norm(quad[_NEXT] - quad, axis=1)
    shrink = max(sides[0] / lw, sides[2] / lw, sides[1] / lh, sides[3] / lh)
    if shrink < 0.5:
        k = max(2.0 * shrink, 2.0 / min(lh, lw))
        sw, sh = max(1, round(lw * k)), max(1, round(lh * k))
        pre = cv2.resize(pre, (sw, sh), interpolation=cv2.INTER_AREA)
        # pixel-centre coordinates: x_small = (x + 0.5) * sw / lw - 0.5
        S = np.array([[sw / lw, 0, 0.5 * sw / lw - 0.5], [0, sh / lh, 0.5 * sh / lh - 0.5], [0, 0, 1]])
        H = H @ inv3(S)
    T = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]])
    out = cv2.warpPerspective(pre, T @ H, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    r, g, b, a = cv2.split(out)
    clip_to(a, 1.0, out=a)
    # straight colour: premultiplied / alpha, 0 where alpha is 0 (per plane: numpy broadcasting over a
    # last axis of 3 is several times slower)
    inv = np.divide(np.float32(1.0), a, out=np.zeros_like(a), where=a > np.float32(1e-6))
    rgb = cv2.merge([r * inv, g * inv, b * inv])
    return clip_to(rgb, 255.0, out=rgb), a, (y0, x0, y1, x1)
