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

# Extra tilt is rendered as seen by a virtual camera this many logo sizes away from the logo.
TILT_DISTANCE = 3.0


def apply_h(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Maps (N, 2) points through homography H; returns (N, 2) float64."""
    p = np.asarray(pts, np.float64).reshape(-1, 2)
    q = p @ H[:, :2].T + H[:, 2]
    return q[:, :2] / q[:, 2:3]


def area_scale(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """|det| of the Jacobian of the map x -> H x at the (N, 2) points: the local area magnification."""
    p = np.asarray(pts, np.float64).reshape(-1, 2)
    w = p @ H[2, :2] + H[2, 2]
    return np.abs(np.linalg.det(H) / w ** 3)


def same_side_as_origin(plane_H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(N,) bool: the image points lie on the same side of the plane's vanishing line as the image
    of the plane's origin (points beyond the horizon have no place on the plane)."""
    G = np.linalg.inv(plane_H)
    o = plane_H[:2, 2] / plane_H[2, 2]
    w0 = G[2, :2] @ o + G[2, 2]
    p = np.asarray(pts, np.float64).reshape(-1, 2)
    return (p @ G[2, :2] + G[2, 2]) * w0 > 0


def logo_quad(plane_H: np.ndarray, center_xy, width_px: float, aspect_hw: float,
              rotation_deg: float = 0.0, extra_tilt=(0.0, 0.0)) -> np.ndarray:
    """Corners TL, TR, BR, BL (4, 2) in image pixels of a logo `width_px` wide at `center_xy`
    (image pixels), `aspect_hw` = logo height / width, laid on the plane `plane_H`.
    `extra_tilt` = (about the logo's x axis, about its y axis) in degrees."""
    H = np.asarray(plane_H, np.float64)
    if H.shape != (3, 3) or not np.all(np.isfinite(H)) or abs(np.linalg.det(H)) < 1e-12:
        raise ValueError(f"plane_H must be a finite, invertible 3x3 homography, got {H!r}")
    if not (width_px > 0 and aspect_hw > 0):
        raise ValueError(f"width_px ({width_px}) and aspect_hw ({aspect_hw}) must be positive")
    G = np.linalg.inv(H)
    pc = apply_h(G, np.asarray(center_xy, np.float64))[0]
    scale = math.sqrt(float(area_scale(H, pc)[0]))  # image px per plane unit at the centre
    w = width_px / scale
    h = w * aspect_hw
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    a = math.radians(rotation_deg)
    c, s = math.cos(a), math.sin(a)
    corners = corners @ np.array([[c, s], [-s, c]]).T  # counter-clockwise on a y-down screen
    corners = apply_h(tilt_homography(extra_tilt, TILT_DISTANCE * max(w, h)), corners)
    return apply_h(H, corners + pc)


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


def _interior_angles(q: np.ndarray) -> np.ndarray:
    prev, nxt = np.roll(q, 1, axis=0) - q, np.roll(q, -1, axis=0) - q
    cos = (prev * nxt).sum(1) / (np.linalg.norm(prev, axis=1) * np.linalg.norm(nxt, axis=1) + 1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def is_convex(quad: np.ndarray) -> bool:
    """True for a strictly convex, non-self-intersecting quad (either orientation)."""
    q = np.asarray(quad, np.float64).reshape(4, 2)
    e = np.roll(q, -1, axis=0) - q
    cross = e[:, 0] * np.roll(e, -1, axis=0)[:, 1] - e[:, 1] * np.roll(e, -1, axis=0)[:, 0]
    if not (np.all(cross > 0) or np.all(cross < 0)):
        return False
    return abs(_interior_angles(q).sum() - 360.0) < 1e-3  # a bow-tie can have same-sign turns


def distortion_ok(quad: np.ndarray, aspect_hw: float, min_side_px: float = 8.0,
                  aspect_change=(0.4, 2.5), min_angle_deg: float = 30.0) -> bool:
    """SynthText-style limits on a warped logo: convex; every side >= min_side_px; every interior
    angle >= min_angle_deg; (mean left/right side) / (mean top/bottom side) within
    aspect_change times aspect_hw."""
    q = np.asarray(quad, np.float64).reshape(4, 2)
    if not np.all(np.isfinite(q)) or not is_convex(q):
        return False
    sides = np.linalg.norm(np.roll(q, -1, axis=0) - q, axis=1)  # top, right, bottom, left
    if sides.min() < min_side_px:
        return False
    if _interior_angles(q).min() < min_angle_deg:
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


def warp_rgba(logo_rgba: np.ndarray, H: np.ndarray, out_hw):
    """Warps an RGBA uint8 logo with H (logo pixels -> canvas pixels) over the canvas `out_hw`,
    computing only the quad's bounding rectangle. Returns (rgb float32 (h, w, 3) in 0..255,
    straight (not premultiplied) colour, 0 where alpha is 0; alpha float32 (h, w) in [0, 1];
    roi (y0, x0, y1, x1) of that rectangle on the canvas, possibly empty)."""
    if logo_rgba.ndim != 3 or logo_rgba.shape[2] != 4 or logo_rgba.dtype != np.uint8:
        raise ValueError(f"warp_rgba needs an RGBA uint8 logo, got {logo_rgba.dtype} {logo_rgba.shape}")
    H = np.asarray(H, np.float64)
    lh, lw = logo_rgba.shape[:2]
    quad = apply_h(H, logo_corners((lh, lw)))
    y0, x0, y1, x1 = quad_roi(quad, out_hw)
    if y1 <= y0 or x1 <= x0:
        return np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32), (y0, x0, y1, x1)
    alpha = logo_rgba[..., 3:4].astype(np.float32) / 255.0
    pre = np.concatenate([logo_rgba[..., :3].astype(np.float32) * alpha, alpha], axis=2)
    # Reduce first when the warp shrinks the logo a lot: bilinear sampling alone would alias.
    sides = np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1)
    shrink = max(sides[0] / lw, sides[2] / lw, sides[1] / lh, sides[3] / lh)
    if shrink < 0.5:
        k = max(2.0 * shrink, 2.0 / min(lh, lw))
        sw, sh = max(1, round(lw * k)), max(1, round(lh * k))
        pre = cv2.resize(pre, (sw, sh), interpolation=cv2.INTER_AREA)
        # pixel-centre coordinates: x_small = (x + 0.5) * sw / lw - 0.5
        S = np.array([[sw / lw, 0, 0.5 * sw / lw - 0.5], [0, sh / lh, 0.5 * sh / lh - 0.5], [0, 0, 1]])
        H = H @ np.linalg.inv(S)
    T = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]])
    out = cv2.warpPerspective(pre, T @ H, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    a = np.clip(out[..., 3], 0.0, 1.0)
    rgb = np.where(a[..., None] > 1e-6, out[..., :3] / np.maximum(a, 1e-6)[..., None], 0.0)
    return np.clip(rgb, 0, 255).astype(np.float32), a.astype(np.float32), (y0, x0, y1, x1)
