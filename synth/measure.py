"""Measurements shared by the light stage (synth.photometric), the camera stage (synth.camera) and
bench/realism.py: where a pasted logo lies in its region of interest, what surrounds it, and how noisy
and how sharp a region reads.

Inputs are per object, for one region of interest (ROI) of the canvas: `alpha`, float32 (h, w) in [0, 1],
the warped logo opacity, and float32 (h, w, 3) images in 0..255 aligned with it (`check_inputs`).

Footprint and masks:
  * footprint: the pixels with alpha > ALPHA_EPS (0.01); `footprint_box` is the box of the alpha >= 0.5
    pixels (the footprint if there are none) and its size sqrt(h x w).
  * local background ("context"): the ROI pixels within `context_px` of the footprint, under and around
    it, found with one distance transform (`distance_outside`).
  * `ring_mask`: the pixels gap_px..gap_px + width_px around the footprint, never inside it; `inner_mask`:
    the logo pixels (alpha >= 0.5) at least inset_px inside its edge; `interior`: the pixels of a mask
    whose whole neighbourhood is in it (what a filter's support needs).

Readings (gray levels, on float32 gray images; `to_gray` is OpenCV's RGB -> gray, weights LUMA):
  * noise_level(gray, mask) = median(|r|) / (0.6745 x 70), r the response of the 5x5 high-pass HP =
    outer([1,-4,6,-4,1], [1,-4,6,-4,1]) (4th differences, norm HP_NORM = 70): a robust (MAD) Gaussian
    sigma. The 3x3 second-difference kernel mistakes fine texture for noise (sigma 3 read on a noiseless
    texture blurred by 1.2 px); this one reads 0.6 there and is exact on white noise.
  * sharpness(gray, mask, noise_sigma) = sqrt(E[lap^2] / E[|grad|^2]) over the mask (3x3 Laplacian, Sobel/8
    gradients), after subtracting what white noise of noise_sigma adds to each energy (20 and 0.375 x
    sigma^2): a characteristic spatial frequency in 1/px, independent of contrast; a blurred edge or texture
    reads lower, a crisp one higher (white noise alone: 7.3). NaN where no structure is left to measure
    (gradient energy < MIN_GRAD_ENERGY once the noise part is removed: a plain, noisy wall says nothing
    about blur). To compare a composite's logo with its ring, pass each region's own noise_level as
    noise_sigma (or 0 on clean images); where the noise energy dwarfs the content's (a flat logo under
    strong noise) the difference is unstable or NaN. The measure depends on content as well as on blur (a
    step edge and a random texture blurred alike read differently), so it matches what a ring-vs-logo
    comparison sees rather than recovering the optical blur.

Also the Gaussian blur both stages use (`gaussian`, kernel `kernel_size`).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from synth.errors import InputImageError

ALPHA_EPS = 0.01  # alpha above this is "logo footprint"
MIN_GRAD_ENERGY = 1.0  # gradient energy (gray levels^2, noise part removed) below which sharpness is NaN
LUMA = (0.299, 0.587, 0.114)  # RGB -> gray weights (those of cv2.COLOR_RGB2GRAY)
_LAP = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)
_HP3 = np.array([1, -4, 6, -4, 1], np.float32)
HP = np.outer(_HP3, _HP3)  # 4th differences in x and y: rejects all but the finest detail
HP_NORM = float(np.sqrt((HP ** 2).sum()))  # 70
_LAP_NOISE = float((_LAP ** 2).sum())  # E[lap^2] of unit white noise
_GRAD_NOISE = 2 * 12.0 / 64.0  # E[|grad|^2] of unit white noise with Sobel/8 in x and y


# ---------------------------------------------------------------- footprint and masks

def to_gray(rgb: np.ndarray) -> np.ndarray:
    """Gray (LUMA weights) of an RGB image, float32 (h, w)."""
    if not _packed_float32(rgb):
        rgb = np.ascontiguousarray(rgb, np.float32)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # (OpenCV reads a crop's strided rows as they are)


def _packed_float32(a) -> bool:
    return (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.ndim == 3 and a.shape[2] == 3
            and a.strides[2] == 4 and a.strides[1] == 12 and a.strides[0] >= 12 * a.shape[1])


def distance_outside(alpha: np.ndarray) -> np.ndarray:
    """Distance in px of every pixel to the footprint (0 inside it)."""
    outside = (alpha <= ALPHA_EPS).astype(np.uint8)
    if not outside.all():
        return cv2.distanceTransform(outside, cv2.DIST_L2, 3)
    return np.full(alpha.shape, np.inf, np.float32)


def ring_mask(alpha: np.ndarray, width_px: int, gap_px: int = 2) -> np.ndarray:
    """Pixels more than gap_px and at most gap_px + width_px from the footprint (alpha > 0.01): around it,
    never inside it. The gap keeps the logo's own edge out of ring measurements."""
    d = distance_outside(check_alpha(alpha))
    return (d > gap_px) & (d <= gap_px + width_px)


def inner_mask(alpha: np.ndarray, inset_px: int = 2) -> np.ndarray:
    """Logo pixels (alpha >= 0.5) at least inset_px inside the footprint edge."""
    inside = (check_alpha(alpha) >= 0.5).astype(np.uint8)
    return cv2.distanceTransform(inside, cv2.DIST_L2, 3) > inset_px


def interior(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """Mask pixels whose whole (2 radius + 1)^2 neighbourhood is in the mask (and inside the image)."""
    m = mask.astype(np.uint8)
    k = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.erode(m, k, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def footprint_box(alpha):
    """(y0, x0, y1, x1, size) of the alpha >= 0.5 pixels (alpha > 0.01 if none), size = sqrt(h * w)."""
    m = alpha >= 0.5
    if not m.any():
        m = alpha > ALPHA_EPS
    if not m.any():
        return None
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return int(y0), int(x0), int(y1), int(x1), math.sqrt(float((y1 - y0) * (x1 - x0)))


# ---------------------------------------------------------------- noise and sharpness

def mad_sigma(residual: np.ndarray) -> float:
    """Robust Gaussian sigma (gray levels) of HP residuals: median(|r|) / (0.6745 x HP_NORM); 0.0 if empty."""
    if residual.size == 0:
        return 0.0
    # np.median(np.abs(residual)), without its copy and its extra partition that looks for NaNs
    a = np.abs(residual).ravel()
    k = a.size // 2
    a.partition(k)
    med = a[k] if a.size % 2 else (a[:k].max() + a[k]) / a.dtype.type(2)
    return float(med) / (0.6745 * HP_NORM)


def noise_level(gray: np.ndarray, mask: np.ndarray) -> float:
    """Robust Gaussian noise sigma (gray levels) of `gray` over `mask`; 0.0 when the mask is empty."""
    r = cv2.filter2D(np.asarray(gray, np.float32), -1, HP)
    return mad_sigma(r[interior(mask, 2)])


def energies(gray: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """(E[lap^2], E[|grad|^2]) over the `valid` pixels (bool or uint8 mask)."""
    m = valid if valid.dtype == np.uint8 else valid.astype(np.uint8)
    if not m.any():
        return 0.0, 0.0
    lap = cv2.filter2D(gray, -1, _LAP)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    return cv2.mean(lap * lap, mask=m)[0], cv2.mean(gx * gx + gy * gy, mask=m)[0]


def signal_sharpness(lap_e, grad_e, noise_var):
    """Sharpness from `energies`, with what white noise of variance noise_var adds to each removed first;
    NaN where no structure is left (gradient energy below MIN_GRAD_ENERGY)."""
    lap_e, grad_e = lap_e - _LAP_NOISE * noise_var, grad_e - _GRAD_NOISE * noise_var
    return math.sqrt(lap_e / grad_e) if grad_e >= MIN_GRAD_ENERGY and lap_e > 0 else math.nan


def sharpness(gray: np.ndarray, mask: np.ndarray, noise_sigma: float = 0.0) -> float:
    """sqrt(E[lap^2] / E[|grad|^2]) over `mask`, in 1/px, independent of contrast. The part that white noise
    of `noise_sigma` adds to each energy is subtracted first (0: the raw value, noise included; pass the
    region's own noise_level to compare regions by their content only). NaN where no structure is
    left to measure (gradient energy below MIN_GRAD_ENERGY, e.g. a flat or empty region)."""
    lap_e, grad_e = energies(np.asarray(gray, np.float32), interior(mask))
    return signal_sharpness(lap_e, grad_e, float(noise_sigma) ** 2)


# ---------------------------------------------------------------- checks and filters

def check_alpha(alpha):
    """`alpha` as an array; InputImageError unless it is float32 (h, w)."""
    a = np.asarray(alpha)
    if a.ndim != 2 or a.dtype != np.float32:
        raise InputImageError(f"alpha: expected a float32 (h, w) array in [0, 1], got {a.dtype} {a.shape}")
    return a


def check_inputs(alpha, **images):
    """InputImageError naming the first of `images` (name=array) that is not float32 (h, w, 3) matching alpha."""
    a = check_alpha(alpha)
    for name, img in images.items():
        if not isinstance(img, np.ndarray) or img.dtype != np.float32 or img.shape != a.shape + (3,):
            raise InputImageError(f"{name}: expected a float32 {a.shape + (3,)} array in 0..255 matching alpha, "
                                  f"got {getattr(img, 'dtype', type(img))} {getattr(img, 'shape', '')}")


def kernel_size(sigma):
    """Side of the Gaussian kernel used for `sigma`: 2 ceil(3 sigma) + 1."""
    return 2 * int(math.ceil(3.0 * sigma)) + 1


def gaussian(sigma):
    """A function that blurs an image by a Gaussian of `sigma` px (kernel `kernel_size(sigma)`)."""
    k = kernel_size(sigma)
    return lambda x: cv2.GaussianBlur(x, (k, k), sigma)
