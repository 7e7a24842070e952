"""Measurements shared by the light and camera stages, on images whose truth is known."""

import math

import cv2
import numpy as np
import pytest

from synth import measure
from synth.errors import InputImageError


def test_noise_level_and_sharpness_measure_known_truths():
    rng = np.random.default_rng(3)
    ramp = np.add.outer(np.linspace(50, 150, 200), np.linspace(0, 60, 200)).astype(np.float32)
    mask = np.ones((200, 200), bool)
    for sigma in (2.0, 8.0):
        noisy = ramp + rng.normal(0, sigma, ramp.shape).astype(np.float32)
        assert abs(measure.noise_level(noisy, mask) / sigma - 1) < 0.1
    tex = rng.uniform(0, 255, (200, 200)).astype(np.float32)
    s = [measure.sharpness(cv2.GaussianBlur(tex, (0, 0), b) if b else tex, mask) for b in (0, 1.0, 2.0, 3.0)]
    assert s[0] > s[1] > s[2] > s[3] > 0
    assert math.isnan(measure.sharpness(np.full((50, 50), 7, np.float32), np.ones((50, 50), bool)))  # no structure


def test_ring_is_around_the_footprint_and_never_inside():
    alpha = np.zeros((100, 100), np.float32)
    alpha[30:70, 30:70] = 1.0
    ring = measure.ring_mask(alpha, 10, gap_px=2)
    assert not (ring & (alpha > 0)).any()
    assert ring[50, 73:82].all() and not ring[50, 70:72].any() and not ring[50, 84:].any()
    assert measure.inner_mask(alpha, 2)[50, 33:67].all() and not measure.inner_mask(alpha, 2)[50, 30]


def test_footprint_box_interior_and_alpha_checks():
    alpha = np.zeros((50, 60), np.float32)
    alpha[10:30, 20:45] = 1.0
    alpha[5, 5] = 0.3  # in the footprint (alpha > 0.01) but not in the box of alpha >= 0.5
    assert measure.footprint_box(alpha) == (10, 20, 30, 45, math.sqrt(20 * 25))
    assert measure.footprint_box(np.zeros((8, 8), np.float32)) is None
    d = measure.distance_outside(alpha)
    assert d[20, 30] == 0 and d[5, 5] == 0 and d[20, 48] == pytest.approx(4, abs=0.5)
    square = alpha >= 0.5
    inner = measure.interior(square, 2)
    assert inner[12:28, 22:43].all() and not inner[11, 30] and inner.sum() == 16 * 21
    with pytest.raises(InputImageError, match="alpha"):
        measure.ring_mask(alpha.astype(np.float64), 4)
    with pytest.raises(InputImageError, match="canvas_roi"):
        measure.check_inputs(alpha, canvas_roi=np.zeros((50, 60), np.float32))
