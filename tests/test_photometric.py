"""Light stage (shading, colour cast, jitter, glare, shadow) on synthetic scenes whose truth is known."""

import dataclasses
import json
import math

import cv2
import numpy as np
import pytest

from conftest import make_disc_roi
from synth import photometric as ph
from synth.errors import ConfigError, InputImageError

OFF_LIGHT = ph.LightConfig(shading=False, color_cast=False, jitter=False, glare_prob=0.0, shadow_prob=0.0)


def _light(**kw):
    """Light params that do nothing except what kw turns on."""
    p = ph.sample_light(np.random.default_rng(0), OFF_LIGHT)
    return dataclasses.replace(p, **kw)


def _luma_inside(rgb, alpha):
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float((g * alpha).sum() / alpha.sum())


# ---------------------------------------------------------------- light

def test_same_logo_comes_out_darker_on_a_dark_region_than_on_a_bright_one():
    rng = np.random.default_rng(1)
    rgb, alpha = make_disc_roi()
    p = _light(shading_strength=0.8)
    dark = np.clip(40 + rng.normal(0, 3, rgb.shape), 0, 255).astype(np.float32)
    bright = np.clip(200 + rng.normal(0, 3, rgb.shape), 0, 255).astype(np.float32)
    on_dark = _luma_inside(ph.relight(rgb, alpha, dark, p), alpha)
    on_bright = _luma_inside(ph.relight(rgb, alpha, bright, p), alpha)
    original = _luma_inside(rgb, alpha)
    assert on_dark < 0.6 * original  # (40 / 118) ** 0.8 = 0.42
    assert on_bright > 1.2 * original  # (200 / 118) ** 0.8 = 1.52
    assert on_dark < on_bright


def test_shading_follows_a_light_gradient_across_the_logo():
    rgb, alpha = make_disc_roi(size=200, logo=160)
    ramp = np.repeat(np.linspace(30, 230, 200, dtype=np.float32)[None, :, None], 200, axis=0)
    bg = np.repeat(ramp, 3, axis=2)
    out = ph.relight(rgb, alpha, bg, _light(shading_strength=1.0))
    g = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY) / np.maximum(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 1)
    row = g[100 - 40, 40:160]  # a row crossing the red disc only
    assert row[-1] > 1.4 * row[0]
    assert np.all(np.diff(row[::10]) > 0)  # brighter towards the bright side, step after step


def test_colour_cast_takes_the_local_chroma_and_keeps_luminance():
    rgb, alpha = make_disc_roi(colours=((128, 128, 128), (160, 160, 160)))
    bluish = np.empty(rgb.shape, np.float32)
    bluish[...] = (90, 110, 190)
    out = ph.relight(rgb, alpha, bluish, _light(cast_strength=0.5))
    inside = alpha > 0.99
    r, b = out[..., 0][inside].mean(), out[..., 2][inside].mean()
    assert b > 1.3 * r
    assert abs(_luma_inside(out, alpha) - _luma_inside(rgb, alpha)) < 3.0


def test_jitter_and_glare():
    rgb, alpha = make_disc_roi(colours=((100, 100, 100), (100, 100, 100)))
    bg = np.full(rgb.shape, 118, np.float32)
    brighter = ph.relight(rgb, alpha, bg, _light(brightness=20.0))
    np.testing.assert_allclose(brighter[alpha > 0.99], 120.0, atol=1e-3)
    gamma = ph.relight(rgb, alpha, bg, _light(gamma=2.0))
    np.testing.assert_allclose(gamma[alpha > 0.99], 255 * (100 / 255) ** 2, atol=0.15)  # 4096-step LUT
    glare = ph.relight(rgb, alpha, bg, _light(glare=True, glare_x=0.25, glare_y=0.25, glare_radius=0.2,
                                              glare_strength=0.8))
    g = cv2.cvtColor(glare, cv2.COLOR_RGB2GRAY)
    top_left, bottom_right = g[50:60, 50:60].mean(), g[100:110, 100:110].mean()
    assert top_left > 180 and abs(bottom_right - 100) < 5


def test_shadow_darkens_the_background_beside_the_offset_footprint_only():
    alpha = np.zeros((120, 120), np.float32)
    alpha[40:80, 40:80] = 1.0
    bg = np.full((120, 120, 3), 150, np.float32)
    p = _light(shadow=True, shadow_dx=0.25, shadow_dy=0.0, shadow_blur=0.02, shadow_opacity=0.5)  # 10 px right
    out = ph.shadow(bg, alpha, p)
    assert np.allclose(out[60, 82:88], 75, atol=6)  # right of the logo: in the shadow
    np.testing.assert_allclose(out[60, 20:38], 150, atol=0.5)  # left of it: untouched
    np.testing.assert_allclose(out[5:20], 150, atol=0.5)  # above: untouched
    np.testing.assert_array_equal(bg, 150)  # input not changed


def test_all_light_switches_off_is_the_identity():
    rng = np.random.default_rng(2)
    rgb, alpha = make_disc_roi()
    bg = rng.uniform(0, 255, rgb.shape).astype(np.float32)
    for seed in range(5):
        p = ph.sample_light(np.random.default_rng(seed), OFF_LIGHT)
        np.testing.assert_array_equal(ph.relight(rgb, alpha, bg, p), rgb)
        np.testing.assert_array_equal(ph.shadow(bg, alpha, p), bg)


# ---------------------------------------------------------------- sampling and configs

def test_sampling_is_deterministic_and_serialisable():
    a = ph.sample_light(np.random.default_rng(42), ph.LightConfig())
    b = ph.sample_light(np.random.default_rng(42), ph.LightConfig())
    c = ph.sample_light(np.random.default_rng(43), ph.LightConfig())
    assert a == b and a != c
    assert json.loads(json.dumps(dataclasses.asdict(a))) == dataclasses.asdict(a)
    draws = [ph.sample_light(np.random.default_rng(s), ph.LightConfig()) for s in range(200)]
    assert all(0.4 <= d.shading_strength <= 0.9 and 0.85 <= d.gamma <= 1.18 for d in draws)
    assert 0.1 < np.mean([d.shadow for d in draws]) < 0.5  # shadow_prob 0.3
    # switching one effect off does not change the others' draws
    on = ph.sample_light(np.random.default_rng(9), ph.LightConfig())
    off = ph.sample_light(np.random.default_rng(9), ph.LightConfig(color_cast=False))
    assert off.cast_strength == 0.0 and off.shading_strength == on.shading_strength and off.glare_x == on.glare_x


def test_bad_configs_and_inputs_are_refused_with_the_field_named():
    with pytest.raises(ConfigError, match="gamma_range"):
        ph.LightConfig(gamma_range=(1.2, 0.8))
    with pytest.raises(ConfigError, match="shadow_prob"):
        ph.LightConfig(shadow_prob=1.5)
    rgb, alpha = make_disc_roi()
    with pytest.raises(InputImageError, match="canvas_roi"):
        ph.relight(rgb, alpha, rgb[:10], _light())
    with pytest.raises(InputImageError, match="alpha"):
        ph.shadow(rgb, alpha.astype(np.float64), _light())


def test_tiny_and_empty_footprints_are_handled():
    rng = np.random.default_rng(10)
    bg = np.clip(100 + rng.normal(0, 5, (40, 40, 3)), 0, 255).astype(np.float32)
    rgb = np.full((40, 40, 3), 200, np.float32)
    light = ph.sample_light(np.random.default_rng(1), ph.LightConfig(glare_prob=1.0, shadow_prob=1.0))
    tiny = np.zeros((40, 40), np.float32)
    tiny[18:22, 18:22] = 1.0  # 4 x 4 px: no interior to measure, still lit
    out = ph.relight(rgb, tiny, bg, light)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 255 and not np.array_equal(out, rgb)
    assert np.isfinite(ph.shadow(bg, tiny, light)).all()
    empty = np.zeros((40, 40), np.float32)
    np.testing.assert_array_equal(ph.relight(rgb, empty, bg, light), rgb)
    np.testing.assert_array_equal(ph.shadow(bg, empty, light), bg)


def test_a_padded_roi_holds_the_whole_shadow():
    alpha = np.zeros((40, 40), np.float32)
    alpha[:, :] = 1.0  # a ROI that is the footprint's tight box: no room for a shadow
    rgb = np.full((40, 40, 3), 200, np.float32)
    light = _light(shadow=True, shadow_dx=0.2, shadow_dy=0.1, shadow_blur=0.05, shadow_opacity=0.5)
    m = ph.needed_margin(alpha, light)
    assert m >= (math.hypot(0.2, 0.1) + 0.15) * 40
    rgb2, alpha2, roi2 = ph.pad_roi(rgb, alpha, (30, 30, 70, 70), m, (100, 100))
    assert roi2 == (30 - m, 30 - m, 70 + m, 70 + m) and alpha2.shape == (40 + 2 * m, 40 + 2 * m)
    np.testing.assert_array_equal(alpha2[m:m + 40, m:m + 40], alpha)
    assert alpha2.sum() == alpha.sum() and rgb2.sum() == rgb.sum()
    bg = np.full(rgb2.shape, 150, np.float32)
    out = ph.shadow(bg, alpha2, light)
    assert out[m + 20, m + 40:m + 46, 0].max() < 110  # right of the logo: shadowed
    np.testing.assert_allclose(out[:, -1], 150, atol=0.5)  # and it fades out inside the padded ROI
    np.testing.assert_allclose(out[-1], 150, atol=0.5)
    _, _, clipped = ph.pad_roi(rgb, alpha, (0, 0, 40, 40), m, (100, 100))
    assert clipped == (0, 0, 40 + m, 40 + m)
