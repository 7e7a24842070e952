"""Background audit: skip backgrounds in which a logo already appears.

A background photo that already shows the logo, unlabelled, teaches the detector that
the logo is background. `LogoMatcher` looks for every logo in a background with SIFT
features and a geometric check; the generator skips the backgrounds it finds and
lists them (with `AuditResult.reason`) in the manifest.

Method:
- Logos: each logo (RGBA) is drawn over mid grey, reduced so its longer side is at most
  ``logo_side`` (400 px; never enlarged), and SIFT keypoints are taken inside its opaque
  part dilated by 5 px (so silhouette corners count). This is done for each colourway in
  ``colourways`` (default: as designed and inverted, see synth.colourway); the keypoints
  of all of them share the logo's frame, so one homography fits any of them. It is also
  done at ``scales`` (1, 1/2, 1/4) of that size: a logo printed small in a photo then meets
  keypoints computed at a similar resolution (about +1/3 more inliers for small prints).
  In the tests, the scikit-image logo is found from about 90 px on its shorter side; a
  75 px print gives only 6 or 7 inliers and is missed.
- Backgrounds are reduced so their longer side is at most ``max_side`` (800 px).
- Matching: for each logo keypoint, its two nearest background descriptors (L2);
  kept when nearest < ``ratio`` (0.8) x second nearest (Lowe's ratio test); a
  background keypoint keeps only its best logo match. Then cv2.findHomography with
  RANSAC (``ransac_px`` = 5 px reprojection error on the reduced background).
- Found only when inliers >= ``min_inliers`` (12) AND the homography is sane
  (`homography_is_sane`): the logo's corners project in front of the camera (positive
  w), to a convex quadrilateral with the logo's orientation (no mirror image: the
  Jacobian's determinant is positive at the centre), whose shorter side is at least
  ``MIN_QUAD_SIDE_PX`` (16 px) and whose area is at most 4x the background's, with the
  Jacobian's singular values within a ratio of ``MAX_ANISOTROPY`` (6) of each other
  (bounded shear and foreshortening) and opposite sides no more than ``MAX_SIDE_RATIO``
  (5) apart in length.

A logo with fewer than ``min_inliers`` keypoints (a plain disc, a flat shape) can never be
found; `LogoMatcher.feature_counts` tells the caller so it can say so in the manifest.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from synth import colourway as cw
from synth.errors import ConfigError, InputImageError

MIN_QUAD_SIDE_PX = 16.0
MAX_ANISOTROPY = 6.0
MAX_SIDE_RATIO = 5.0


@dataclass(frozen=True)
class AuditResult:
    found: bool
    logo_index: int  # the logo found, or the best candidate; -1 when no logo had a candidate
    inliers: int
    reason: str
    quad: tuple = ()  # found: the logo's corners (x, y) in background pixels, TL, TR, BR, BL


class AuditCache:
    """Audit verdicts kept as one small JSON file per background in `folder`, so that the
    worker processes of a run (and a resumed run) audit each background once between them.
    A verdict is deterministic, so a worker that audits a background another is auditing
    at the same moment only repeats work; files are written atomically."""

    def __init__(self, folder: str):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)

    def _path(self, index: int) -> str:
        return os.path.join(self.folder, f"{index:06d}.json")

    def get(self, index: int, path: str) -> AuditResult | None:
        try:
            with open(self._path(index), encoding="utf-8") as f:
                d = json.load(f)
        except (OSError, ValueError):
            return None
        if d.get("path") != path:
            return None
        return AuditResult(d["found"], d["logo_index"], d["inliers"], d["reason"],
                           tuple(tuple(p) for p in d["quad"]))

    def put(self, index: int, path: str, r: AuditResult) -> None:
        tmp = f"{self._path(index)}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"path": path, **asdict(r)}, f)
        os.replace(tmp, self._path(index))


def _quad(H: np.ndarray, logo_hw) -> np.ndarray | None:
    lh, lw = logo_hw
    c = np.array([[0, 0, 1], [lw, 0, 1], [lw, lh, 1], [0, lh, 1]], np.float64) @ H.T
    if np.any(c[:, 2] <= 1e-9):
        return None
    return c[:, :2] / c[:, 2:3]


def homography_is_sane(H: np.ndarray, logo_hw, image_hw) -> tuple[bool, str]:
    """Whether H (logo pixels -> image pixels) is a plausible view of a flat logo; and why not."""
    H = np.asarray(H, np.float64)
    if H.shape != (3, 3) or not np.all(np.isfinite(H)):
        return False, "homography is not a finite 3x3 matrix"
    q = _quad(H, logo_hw)
    if q is None:
        return False, "a logo corner projects behind the camera"
    lh, lw = logo_hw
    # Jacobian of the projective map at the logo's centre.
    cx, cy = lw / 2.0, lh / 2.0
    w = H[2, 0] * cx + H[2, 1] * cy + H[2, 2]
    x = (H[0, 0] * cx + H[0, 1] * cy + H[0, 2]) / w
    y = (H[1, 0] * cx + H[1, 1] * cy + H[1, 2]) / w
    J = np.array([[H[0, 0] - x * H[2, 0], H[0, 1] - x * H[2, 1]],
                  [H[1, 0] - y * H[2, 0], H[1, 1] - y * H[2, 1]]]) / w
    if np.linalg.det(J) <= 0:
        return False, "the homography mirrors the logo (determinant <= 0)"
    s = np.linalg.svd(J, compute_uv=False)
    if s[1] <= 0 or s[0] / s[1] > MAX_ANISOTROPY:
        return False, f"shear or foreshortening too strong (singular value ratio {s[0] / max(s[1], 1e-12):.1f})"
    edges = np.roll(q, -1, axis=0) - q
    cross = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    if not np.all(cross > 0):  # the logo's corner order TL, TR, BR, BL turns clockwise on screen (y down)
        return False, "the projected logo is not a convex quadrilateral"
    sides = np.hypot(edges[:, 0], edges[:, 1])
    if sides.min() < MIN_QUAD_SIDE_PX:
        return False, f"the projected logo is too small (side {sides.min():.1f} px < {MIN_QUAD_SIDE_PX:g})"
    if max(sides[0] / sides[2], sides[2] / sides[0], sides[1] / sides[3], sides[3] / sides[1]) > MAX_SIDE_RATIO:
        return False, "opposite sides of the projected logo differ too much in length"
    area = 0.5 * abs(float(np.dot(q[:, 0], np.roll(q[:, 1], -1)) - np.dot(q[:, 1], np.roll(q[:, 0], -1))))
    if area > 4.0 * image_hw[0] * image_hw[1]:
        return False, "the projected logo is more than 4x the background's area"
    return True, "sane"


def _check_logo(logo, i: int) -> None:
    if not (isinstance(logo, np.ndarray) and logo.dtype == np.uint8 and logo.ndim == 3 and logo.shape[2] == 4):
        raise InputImageError(f"LogoMatcher: logo {i} must be RGBA uint8 HxWx4, got shape "
                              f"{getattr(logo, 'shape', None)} dtype {getattr(logo, 'dtype', None)}")


class LogoMatcher:
    """SIFT features of each logo, computed once; `find` audits one background."""

    def __init__(self, logos, *, min_inliers: int = 12, ratio: float = 0.8, max_side: int = 800,
                 logo_side: int = 400, ransac_px: float = 5.0, colourways=("original", "inverted"),
                 scales=(1.0, 0.5, 0.25)):
        if not (isinstance(min_inliers, int) and min_inliers >= 4):
            raise ConfigError(f"audit min_inliers {min_inliers!r} must be an integer >= 4")
        if not (0.0 < ratio < 1.0):
            raise ConfigError(f"audit ratio {ratio!r} must be in (0, 1)")
        if not (max_side >= 64 and logo_side >= 32 and ransac_px > 0):
            raise ConfigError(f"audit max_side {max_side!r} (>= 64), logo_side {logo_side!r} (>= 32) and "
                              f"ransac_px {ransac_px!r} (> 0) are out of range")
        for name in colourways:
            if name not in ("original", "inverted", "white", "black"):
                raise ConfigError(f"audit colourway {name!r} is not supported; use original, inverted, white or black")
        self.min_inliers, self.ratio, self.max_side, self.ransac_px = min_inliers, ratio, max_side, ransac_px
        self._sift = cv2.SIFT_create()
        self._bf = cv2.BFMatcher(cv2.NORM_L2)
        self._logos = []  # (logo_hw, keypoint xy in logo pixels [N, 2], descriptors [N, 128])
        for i, logo in enumerate(logos):
            _check_logo(logo, i)
            self._logos.append(self._logo_features(logo, logo_side, colourways, scales))
        if not self._logos:
            raise ConfigError("LogoMatcher: no logos given")

    @property
    def feature_counts(self) -> list[int]:
        return [len(xy) for _, xy, _ in self._logos]

    def _logo_features(self, logo: np.ndarray, logo_side: int, colourways, scales):
        lh, lw = logo.shape[:2]
        xys, descs = [], []
        for scale in scales:
            s = min(1.0, logo_side / max(lh, lw)) * scale
            if max(lh, lw) * s < 32:
                continue
            small = logo if s == 1.0 else cv2.resize(logo, (max(1, round(lw * s)), max(1, round(lh * s))),
                                                      interpolation=cv2.INTER_AREA)
            mask = cv2.dilate((small[..., 3] >= 128).astype(np.uint8) * 255, np.ones((11, 11), np.uint8))
            a = small[..., 3:4].astype(np.float32) / 255.0
            for name in colourways:
                v = cw.apply(small, name)
                grey = cv2.cvtColor(np.clip(v[..., :3] * a + 128.0 * (1.0 - a) + 0.5, 0, 255).astype(np.uint8),
                                    cv2.COLOR_RGB2GRAY)
                kps, d = self._sift.detectAndCompute(grey, mask)
                if d is not None and len(kps):
                    # Keypoints are at pixel centres of the reduced logo; back to the logo's pixels.
                    xys.append((np.float32([k.pt for k in kps]) + 0.5) / s - 0.5)
                    descs.append(d)
        if not descs:
            return (lh, lw), np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32)
        return (lh, lw), np.concatenate(xys), np.concatenate(descs)

    def find(self, background_rgb: np.ndarray) -> AuditResult:
        """Looks for every logo in one RGB background; returns the best sane detection."""
        if not (isinstance(background_rgb, np.ndarray) and background_rgb.dtype == np.uint8
                and background_rgb.ndim == 3 and background_rgb.shape[2] == 3):
            raise InputImageError(f"LogoMatcher.find: background must be RGB uint8 HxWx3, got shape "
                                  f"{getattr(background_rgb, 'shape', None)}")
        bh, bw = background_rgb.shape[:2]
        s = min(1.0, self.max_side / max(bh, bw))
        grey = cv2.cvtColor(background_rgb, cv2.COLOR_RGB2GRAY)
        if s < 1.0:
            grey = cv2.resize(grey, (max(1, round(bw * s)), max(1, round(bh * s))), interpolation=cv2.INTER_AREA)
        kps, bdesc = self._sift.detectAndCompute(grey, None)
        if bdesc is None or len(kps) < self.min_inliers:
            return AuditResult(False, -1, 0, f"background has too few features ({len(kps)})")
        bxy = (np.float32([k.pt for k in kps]) + 0.5) / s - 0.5  # in the full background's pixels
        best = AuditResult(False, -1, 0, "no logo had enough ratio-test matches for a homography")
        for li, ((lh, lw), lxy, ldesc) in enumerate(self._logos):
            if len(ldesc) < self.min_inliers:
                continue
            pairs = self._bf.knnMatch(ldesc, bdesc, k=2)
            good = {}
            for m in pairs:
                if len(m) == 2 and m[0].distance < self.ratio * m[1].distance:
                    old = good.get(m[0].trainIdx)
                    if old is None or m[0].distance < old.distance:
                        good[m[0].trainIdx] = m[0]
            if len(good) < self.min_inliers:
                continue
            src = np.float32([lxy[m.queryIdx] for m in good.values()])
            dst = np.float32([bxy[m.trainIdx] for m in good.values()])
            H, inl = cv2.findHomography(src, dst, cv2.RANSAC, self.ransac_px / s)
            n = int(inl.sum()) if inl is not None else 0
            if H is None or n < self.min_inliers:
                if n > best.inliers and not best.found:
                    best = AuditResult(False, li, n, f"logo {li}: {n} RANSAC inliers < {self.min_inliers}")
                continue
            ok, why = homography_is_sane(H, (lh, lw), (bh, bw))
            if not ok:
                if not best.found and n > best.inliers:
                    best = AuditResult(False, li, n, f"logo {li}: {n} inliers but {why}")
                continue
            if not best.found or n > best.inliers:
                quad = tuple((round(float(x), 2), round(float(y), 2)) for x, y in _quad(H, (lh, lw)))
                best = AuditResult(True, li, n, f"logo {li} found: {n} RANSAC inliers, homography sane", quad)
        return best
