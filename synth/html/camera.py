"""A rendered page as photographed or scanned: a slight rotation and perspective (a
homography), Gaussian blur, sensor noise and JPEG. Parameters are sampled once from an
explicit np.random.Generator (`sample_page_camera`); `apply_warp` and `apply_sensor` are then
deterministic. Header boxes go through the same homography exactly: the four corners of each
line box are mapped and the header's box is the bounding box of all its mapped corners,
clipped to the image (the rendered text lies inside its line boxes, so it lies inside this box).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from synth import geometry


@dataclass(frozen=True)
class PageCameraParams:
    applied: bool
    rotation_deg: float = 0.0
    corner_shift: tuple = (0.0,) * 8  # (dx, dy) of the four corners, shares of width / height
    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    noise_seed: int = 0
    border_grey: int = 255
    jpeg_quality: int = 90

    def to_json(self) -> dict:
        return asdict(self)


def sample_page_camera(rng: np.random.Generator, cfg, jpeg_quality: int) -> PageCameraParams:
    """From the config's PageCamera message; the same draws whether applied or not."""
    applied = bool(cfg.enabled and rng.random() < cfg.probability)
    rot = float(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
    shift = tuple(round(float(v), 5) for v in rng.uniform(-cfg.max_perspective, cfg.max_perspective, 8))
    blur = float(rng.uniform(0.0, cfg.max_blur_sigma))
    noise = float(rng.uniform(0.0, cfg.max_noise_sigma))
    seed = int(rng.integers(0, 2 ** 63 - 1))
    grey = int(rng.integers(40, 256))
    quality = int(rng.integers(cfg.jpeg_quality_min, cfg.jpeg_quality_max + 1))
    if not applied:
        return PageCameraParams(False, jpeg_quality=int(jpeg_quality))
    return PageCameraParams(True, round(rot, 4), shift, round(blur, 4), round(noise, 4), seed, grey, quality)


def homography(p: PageCameraParams, height: int, width: int) -> np.ndarray:
    """The 3x3 map from rendered-page px to image px (pixel-edge coordinates)."""
    src = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
    c = np.array([width / 2.0, height / 2.0])
    a = np.deg2rad(p.rotation_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = (src - c) @ rot.T + c
    dst += np.asarray(p.corner_shift, np.float64).reshape(4, 2) * np.array([width, height])
    return cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32)).astype(np.float64)


def warp_boxes(lines_per_header: list, H: np.ndarray, height: int, width: int) -> list:
    """Each header's line boxes [[x0, y0, x1, y1], ...] -> its box [x0, y0, x1, y1] after H,
    clipped to the image, or None when nothing of it is left inside."""
    out = []
    for lines in lines_per_header:
        pts = np.concatenate([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]] for x0, y0, x1, y1 in lines]).astype(np.float64)
        q = geometry.apply_h(H, pts)
        x0, y0 = max(0.0, q[:, 0].min()), max(0.0, q[:, 1].min())
        x1, y1 = min(float(width), q[:, 0].max()), min(float(height), q[:, 1].max())
        out.append([x0, y0, x1, y1] if x1 > x0 and y1 > y0 else None)
    return out


def apply_warp(image: np.ndarray, p: PageCameraParams) -> tuple[np.ndarray, np.ndarray]:
    """(warped RGB image, the homography used); the identity when not applied."""
    h, w = image.shape[:2]
    if not p.applied:
        return image, np.eye(3)
    H = homography(p, h, w)
    # OpenCV maps pixel centres; conjugate the pixel-edge homography by the half-pixel shift.
    S = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]], np.float64)
    Hc = np.linalg.inv(S) @ H @ S
    out = cv2.warpPerspective(image, Hc, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=(p.border_grey,) * 3)
    return out, H


def apply_sensor(image: np.ndarray, p: PageCameraParams) -> np.ndarray:
    """Blur, then noise; unchanged when not applied."""
    if not p.applied:
        return image
    out = image.astype(np.float32)
    if p.blur_sigma >= 0.1:
        out = cv2.GaussianBlur(out, (0, 0), p.blur_sigma)
    if p.noise_sigma > 0:
        out += np.random.default_rng(p.noise_seed).normal(0.0, p.noise_sigma, out.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
