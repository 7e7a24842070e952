"""Pixel-array helpers that give numpy's results bit for bit, faster (the render path calls them
thousands of times per run; issue 14 item 6, keep generation fast). No synth imports: any module may use them.

- `channel_sum(q)`: q.sum(axis=-1) of an (..., c) array, c < 8 (an image's channels, points'
  coordinates). numpy reduces so short a last axis in order, ((q0 + q1) + q2) + ..., through its
  generic reduction loop, about ten times slower than the c - 1 adds of whole planes.
- `clip_to(a, hi, out)`: np.clip(a, 0, hi) of a float32 image (h, w) or (h, w, 2 to 4) with two
  OpenCV thresholds (TRUNC at hi, then TOZERO at 0), about three times faster than np.clip; the
  same values (only a -0.0 comes out +0.0, which no later step tells apart). `out=a` clips in place.
"""

from __future__ import annotations

import cv2
import numpy as np


def channel_sum(q: np.ndarray) -> np.ndarray:
    """q.sum(axis=-1) of an (..., c) array, c < 8, in numpy's order ((q0 + q1) + q2) + ...: the same bits.
    (numpy sums 8 or more pairwise, in another order: np.sum itself then.)"""
    if q.ndim < 2 or q.shape[-1] >= 8:
        return q.sum(axis=-1)
    out = q[..., 0] + q[..., 1] if q.shape[-1] > 1 else q[..., 0].copy()
    for c in range(2, q.shape[-1]):
        out += q[..., c]
    return out


def _cv_image(a: np.ndarray) -> bool:
    """Whether OpenCV reads `a` as an image in place and gives back its shape: float32, 2-D or 3-D with
    2 to 4 channels (OpenCV returns one channel as 2-D), pixels and channels packed (rows may be
    strided, as in a crop)."""
    if a.dtype != np.float32 or a.ndim not in (2, 3) or (a.ndim == 3 and not 2 <= a.shape[2] <= 4) or a.size == 0:
        return False
    item = a.itemsize
    return a.strides[-1] == item and (a.ndim == 2 or a.strides[1] == a.shape[2] * item)


def clip_to(a: np.ndarray, hi: float, out: np.ndarray | None = None) -> np.ndarray:
    """np.clip(a, 0, hi, out=out) for a float32 image (np.clip itself for anything else). `out` is
    None (a new array) or `a` (in place)."""
    if out is not None and out is not a:
        raise ValueError("clip_to: out must be None or the input array itself")
    if not _cv_image(a):
        return np.clip(a, 0.0, hi, out=out)
    t = cv2.threshold(a, float(hi), float(hi), cv2.THRESH_TRUNC, dst=out)[1]
    t = cv2.threshold(t, 0.0, 0.0, cv2.THRESH_TOZERO, dst=t)[1]
    if out is not None and t is not out:  # OpenCV wrote elsewhere (it should not): keep the contract
        out[...] = t
        return out
    return t
