"""Light and camera stages on synthetic scenes whose truth is known."""

import dataclasses
import json
import math

import cv2
import numpy as np
import pytest

from synth import photometric as ph
from synth.errors import ConfigError, InputImageError

OFF_LIGHT = ph.LightConfig(shading=False, color_cast=False, jitter=False, glare_prob=0.0, shadow_prob=0.0)
OFF_CAMERA = ph.CameraConfig(match_blur=False, match_noise=False, motion_blur_prob=0.0, jpeg=False)


def _light(**kw):
    """Light params that do nothing except what kw turns on."""
    p = ph.sample_light(np.random.default_rng(0), OFF_LIGHT)
    return dataclasses.replace(p, **kw)


def _camera(**kw):
    p = ph.sample_camera(np.random.default_rng(0), OFF_CAMERA)
    return dataclasses.replace(p, **kw)


def _scene(size=160, logo=100, colours=((200, 60, 50), (60, 170, 90))):
    """A ROI of `size` px with a centred disc logo of diameter `logo` (two flat, unsaturated colours:
    a disc and a bar) and its alpha."""
    rgb = np.zeros((size, size, 3), np.float32)
    alpha = np.zeros((size, size), np.float32)
    c = size // 2
    cv2.circle(alpha, (c, c), logo // 2, 1.0, -1, cv2.LINE_AA)
    cv2.circle(rgb, (c, c), logo // 2, colours[0], -1, cv2.LINE_AA)
    cv2.rectangle(rgb, (c - logo // 4, c - logo // 10), (c + logo // 4, c + logo // 10), colours[1], -1)
    return rgb, alpha


def _luma_inside(rgb, alpha):
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float((g * alpha).sum() / alpha.sum())


def _composite(bg, rgb, alpha):
    return bg * (1.0 - alpha[..., None]) + rgb * alpha[..., None]


# ---------------------------------------------------------------- light

def test_same_logo_comes_out_darker_on_a_dark_region_than_on_a_bright_one():
    rng = np.random.default_rng(1)
    rgb, alpha = _scene()
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
    rgb, alpha = _scene(size=200, logo=160)
    ramp = np.repeat(np.linspace(30, 230, 200, dtype=np.float32)[None, :, None], 200, axis=0)
    bg = np.repeat(ramp, 3, axis=2)
    out = ph.relight(rgb, alpha, bg, _light(shading_strength=1.0))
    g = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY) / np.maximum(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 1)
    row = g[100 - 40, 40:160]  # a row crossing the red disc only
    assert row[-1] > 1.4 * row[0]
    assert np.all(np.diff(row[::10]) > 0)  # brighter towards the bright side, step after step


def test_colour_cast_takes_the_local_chroma_and_keeps_luminance():
    rgb, alpha = _scene(colours=((128, 128, 128), (160, 160, 160)))
    bluish = np.empty(rgb.shape, np.float32)
    bluish[...] = (90, 110, 190)
    out = ph.relight(rgb, alpha, bluish, _light(cast_strength=0.5))
    inside = alpha > 0.99
    r, b = out[..., 0][inside].mean(), out[..., 2][inside].mean()
    assert b > 1.3 * r
    assert abs(_luma_inside(out, alpha) - _luma_inside(rgb, alpha)) < 3.0


def test_jitter_and_glare():
    rgb, alpha = _scene(colours=((100, 100, 100), (100, 100, 100)))
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
    rgb, alpha = _scene()
    bg = rng.uniform(0, 255, rgb.shape).astype(np.float32)
    for seed in range(5):
        p = ph.sample_light(np.random.default_rng(seed), OFF_LIGHT)
        np.testing.assert_array_equal(ph.relight(rgb, alpha, bg, p), rgb)
        np.testing.assert_array_equal(ph.shadow(bg, alpha, p), bg)


# ---------------------------------------------------------------- measurements

def test_noise_level_and_sharpness_measure_known_truths():
    rng = np.random.default_rng(3)
    ramp = np.add.outer(np.linspace(50, 150, 200), np.linspace(0, 60, 200)).astype(np.float32)
    mask = np.ones((200, 200), bool)
    for sigma in (2.0, 8.0):
        noisy = ramp + rng.normal(0, sigma, ramp.shape).astype(np.float32)
        assert abs(ph.noise_level(noisy, mask) / sigma - 1) < 0.1
    tex = rng.uniform(0, 255, (200, 200)).astype(np.float32)
    s = [ph.sharpness(cv2.GaussianBlur(tex, (0, 0), b) if b else tex, mask) for b in (0, 1.0, 2.0, 3.0)]
    assert s[0] > s[1] > s[2] > s[3] > 0
    assert math.isnan(ph.sharpness(np.full((50, 50), 7, np.float32), np.ones((50, 50), bool)))  # no structure


def test_ring_is_around_the_footprint_and_never_inside():
    alpha = np.zeros((100, 100), np.float32)
    alpha[30:70, 30:70] = 1.0
    ring = ph.ring_mask(alpha, 10, gap_px=2)
    assert not (ring & (alpha > 0)).any()
    assert ring[50, 73:82].all() and not ring[50, 70:72].any() and not ring[50, 84:].any()
    assert ph.inner_mask(alpha, 2)[50, 33:67].all() and not ph.inner_mask(alpha, 2)[50, 30]


# ---------------------------------------------------------------- camera

def test_matched_noise_is_within_25_percent_of_the_ring():
    rng = np.random.default_rng(4)
    rgb, alpha = _scene(size=180, logo=120)
    shade = np.add.outer(np.linspace(70, 160, 180), np.linspace(0, 40, 180)).astype(np.float32)
    bg = np.clip(shade[..., None] + rng.normal(0, 8, rgb.shape), 0, 255).astype(np.float32)
    out = ph.match_camera(rgb, alpha, bg, _camera(match_blur=True, match_noise=True, noise_seed=11))
    comp = _composite(bg, out, alpha)
    ring, inner = ph.ring_mask(alpha, 12), ph.inner_mask(alpha, 2)
    for gray in (cv2.cvtColor(comp, cv2.COLOR_RGB2GRAY), comp[..., 0], comp[..., 2]):
        n_ring, n_logo = ph.noise_level(gray, ring), ph.noise_level(gray, inner)
        assert n_ring > 4.0
        assert abs(n_logo / n_ring - 1) < 0.25, (n_logo, n_ring)
    assert ph.noise_level(cv2.cvtColor(_composite(bg, rgb, alpha), cv2.COLOR_RGB2GRAY), inner) < 0.5


def _textured_scene(rng, bg_blur):
    """A logo with crisp texture and a background texture blurred by bg_blur px, both of std 30."""
    rgb, alpha = _scene(size=180, logo=120)
    crisp = cv2.GaussianBlur(rng.uniform(-1, 1, (180, 180)).astype(np.float32), (0, 0), 0.7)
    rgb = np.clip(rgb + (crisp / crisp.std() * 30)[..., None], 0, 255).astype(np.float32)
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (180, 180, 3)).astype(np.float32), (0, 0), bg_blur)
    return rgb, alpha, np.clip((tex - tex.mean()) / tex.std() * 30 + 128, 0, 255).astype(np.float32)


@pytest.mark.parametrize("bg_blur", [1.2, 2.5])
def test_matched_sharpness_is_close_to_the_ring(bg_blur):
    rgb, alpha, bg = _textured_scene(np.random.default_rng(5), bg_blur)
    ring, inner = ph.ring_mask(alpha, 12), ph.inner_mask(alpha, 2)

    def log_ratio(logo):
        gray = cv2.cvtColor(_composite(bg, logo, alpha), cv2.COLOR_RGB2GRAY)
        return math.log(ph.sharpness(gray, inner) / ph.sharpness(gray, ring))

    assert log_ratio(rgb) > 0.6  # pasted as is, the logo is far sharper than its surroundings
    for noise in (False, True):
        out = ph.match_camera(rgb, alpha, bg, _camera(match_blur=True, match_noise=noise))
        assert abs(log_ratio(out)) < 0.25


def test_blur_read_from_a_noisy_background_is_the_blur_of_its_content():
    rng = np.random.default_rng(8)
    rgb, alpha, clean = _textured_scene(rng, 2.0)
    noisy = np.clip(clean + rng.normal(0, 6, clean.shape), 0, 255).astype(np.float32)
    p = _camera(match_blur=True)
    on_clean, on_noisy = ph.match_camera(rgb, alpha, clean, p), ph.match_camera(rgb, alpha, noisy, p)
    inside = ph.inner_mask(alpha, 2)
    assert np.abs(on_clean - rgb)[inside].mean() > 8  # blurred a lot
    assert np.abs(on_noisy - on_clean)[inside].mean() < 2.0  # about the same sigma: noise not read as detail


def test_motion_blur_smooths_along_its_direction_only():
    stripes = np.where((np.arange(120) // 4) % 2 == 0, 60, 190).astype(np.float32)
    rgb = np.repeat(np.repeat(stripes[None, :, None], 120, axis=0), 3, axis=2)  # vertical stripes
    alpha = np.zeros((120, 120), np.float32)
    alpha[20:100, 20:100] = 1.0
    bg = np.full(rgb.shape, 128, np.float32)
    along_x = ph.match_camera(rgb, alpha, bg, _camera(motion_blur=True, motion_length=8.0, motion_angle=0.0))
    along_y = ph.match_camera(rgb, alpha, bg, _camera(motion_blur=True, motion_length=8.0, motion_angle=90.0))
    assert along_x[30:90, 30:90].std() < 0.2 * rgb[30:90, 30:90].std()
    assert along_y[30:90, 30:90].std() > 0.9 * rgb[30:90, 30:90].std()


def test_camera_switches_off_is_the_identity_and_matching_is_deterministic():
    rng = np.random.default_rng(6)
    rgb, alpha = _scene()
    bg = rng.uniform(0, 255, rgb.shape).astype(np.float32)
    p = ph.sample_camera(np.random.default_rng(0), OFF_CAMERA)
    np.testing.assert_array_equal(ph.match_camera(rgb, alpha, bg, p), rgb)
    on = ph.sample_camera(np.random.default_rng(7), ph.CameraConfig(motion_blur_prob=1.0))
    np.testing.assert_array_equal(ph.match_camera(rgb, alpha, bg, on), ph.match_camera(rgb, alpha, bg, on))
    out, a = ph.match_camera_rgba(rgb, alpha, bg, on)
    assert a.shape == alpha.shape and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    assert not np.array_equal(out, rgb)


# ---------------------------------------------------------------- sampling and configs

def test_sampling_is_deterministic_and_serialisable():
    for sample, cfg in ((ph.sample_light, ph.LightConfig()), (ph.sample_camera, ph.CameraConfig())):
        a = sample(np.random.default_rng(42), cfg)
        b = sample(np.random.default_rng(42), cfg)
        c = sample(np.random.default_rng(43), cfg)
        assert a == b and a != c
        assert json.loads(json.dumps(dataclasses.asdict(a))) == dataclasses.asdict(a)
    draws = [ph.sample_light(np.random.default_rng(s), ph.LightConfig()) for s in range(200)]
    assert all(0.4 <= d.shading_strength <= 0.9 and 0.85 <= d.gamma <= 1.18 for d in draws)
    assert 0.1 < np.mean([d.shadow for d in draws]) < 0.5  # shadow_prob 0.3
    qualities = [ph.sample_camera(np.random.default_rng(s), ph.CameraConfig()).jpeg_quality for s in range(200)]
    assert min(qualities) >= 60 and max(qualities) <= 95
    # switching one effect off does not change the others' draws
    on = ph.sample_light(np.random.default_rng(9), ph.LightConfig())
    off = ph.sample_light(np.random.default_rng(9), ph.LightConfig(color_cast=False))
    assert off.cast_strength == 0.0 and off.shading_strength == on.shading_strength and off.glare_x == on.glare_x


def test_bad_configs_and_inputs_are_refused_with_the_field_named():
    with pytest.raises(ConfigError, match="gamma_range"):
        ph.LightConfig(gamma_range=(1.2, 0.8))
    with pytest.raises(ConfigError, match="shadow_prob"):
        ph.LightConfig(shadow_prob=1.5)
    with pytest.raises(ConfigError, match="jpeg_quality_range"):
        ph.CameraConfig(jpeg_quality_range=(50, 101))
    rgb, alpha = _scene()
    with pytest.raises(InputImageError, match="canvas_roi"):
        ph.relight(rgb, alpha, rgb[:10], _light())
    with pytest.raises(InputImageError, match="alpha"):
        ph.match_camera(rgb, alpha.astype(np.float64), rgb, _camera())


def test_tiny_and_empty_footprints_are_handled():
    rng = np.random.default_rng(10)
    bg = np.clip(100 + rng.normal(0, 5, (40, 40, 3)), 0, 255).astype(np.float32)
    rgb = np.full((40, 40, 3), 200, np.float32)
    light = ph.sample_light(np.random.default_rng(1), ph.LightConfig(glare_prob=1.0, shadow_prob=1.0))
    camera = ph.sample_camera(np.random.default_rng(1), ph.CameraConfig(motion_blur_prob=1.0))
    tiny = np.zeros((40, 40), np.float32)
    tiny[18:22, 18:22] = 1.0  # 4 x 4 px: no interior to measure, still lit and given noise
    out = ph.match_camera(ph.relight(rgb, tiny, bg, light), tiny, bg, camera)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 255
    assert np.isfinite(ph.shadow(bg, tiny, light)).all()
    empty = np.zeros((40, 40), np.float32)
    np.testing.assert_array_equal(ph.relight(rgb, empty, bg, light), rgb)
    np.testing.assert_array_equal(ph.match_camera(rgb, empty, bg, camera), rgb)
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


# ---------------------------------------------------------------- sensor: noise matched on the stored composite

def _stored_reading(img, mask):
    """The noise a reading of the stored (8-bit) image sees: gray of the uint8 image, robust MAD."""
    g = cv2.cvtColor(np.clip(img + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return ph.noise_level(g, mask)


def _shaded_scene(rng, sigma, size=180, logo=120):
    """A smooth shaded background with `sigma` gray levels of noise, as an 8-bit photo stores it, and a
    logo of two flat colours on it."""
    rgb, alpha = _scene(size=size, logo=logo)
    shade = np.add.outer(np.linspace(80, 150, size), np.linspace(0, 50, size)).astype(np.float32)
    bg = np.round(np.clip(shade[..., None] + rng.normal(0, sigma, (size, size, 3)), 0, 255)).astype(np.float32)
    # the logo lit by a gentle ramp too: 8-bit rounding of a ramp reads as noise by itself
    ramp = np.linspace(0.85, 1.1, size, dtype=np.float32)[None, :, None]
    return rgb * ramp, alpha, bg


@pytest.mark.parametrize("sigma", [0.6, 1.5, 6.0])
def test_matched_noise_reads_like_the_ring_on_the_stored_composite(sigma):
    rgb, alpha, bg = _shaded_scene(np.random.default_rng(21), sigma)
    p = _camera(match_noise=True, noise_seed=5)
    comp = ph.match_sensor(_composite(bg, rgb, alpha), alpha, p, artwork=rgb)
    ring, inner = ph.ring_mask(alpha, 8), ph.inner_mask(alpha, 2)
    n_ring, n_logo = _stored_reading(comp, ring), _stored_reading(comp, inner)
    assert abs(math.log(n_logo / n_ring)) < 0.12, (sigma, n_logo, n_ring)
    # adding the ring's whole estimated variance counts 8-bit rounding twice at low noise
    grain = np.random.default_rng(5).normal(0, n_ring, rgb.shape[:2] + (1,))  # gray sigma n_ring
    naive = _composite(bg, rgb, alpha) + alpha[..., None] * grain
    if sigma < 1:
        assert _stored_reading(naive, inner) > 1.08 * n_ring  # the naive logo: 8 % or more too noisy
        assert abs(math.log(n_logo / n_ring)) < 0.05  # the matched one: within 5 %


def test_sensor_changes_only_the_logo_and_is_deterministic():
    rgb, alpha, bg = _shaded_scene(np.random.default_rng(22), 1.5)
    comp = _composite(bg, rgb, alpha)
    p = _camera(match_noise=True, noise_seed=9)
    out = ph.match_sensor(comp, alpha, p, artwork=rgb)
    np.testing.assert_array_equal(out, ph.match_sensor(comp, alpha, p, artwork=rgb))
    assert not np.array_equal(out, comp)
    np.testing.assert_array_equal(out[alpha <= ph.ALPHA_EPS], comp[alpha <= ph.ALPHA_EPS])
    other = ph.match_sensor(comp, alpha, dataclasses.replace(p, noise_seed=10), artwork=rgb)
    assert not np.array_equal(other, out)
    np.testing.assert_array_equal(ph.match_sensor(comp, alpha, dataclasses.replace(p, match_noise=False)),
                                  np.clip(comp, 0, 255))


def test_a_logo_already_noisier_than_its_surroundings_gets_no_noise():
    rng = np.random.default_rng(23)
    rgb, alpha, bg = _shaded_scene(rng, 0.5)
    grainy = np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.float32)
    comp = _composite(bg, grainy, alpha)
    np.testing.assert_array_equal(ph.match_sensor(comp, alpha, _camera(match_noise=True), artwork=rgb),
                                  np.clip(comp, 0, 255))


def test_background_noise_is_read_on_flat_pixels_and_not_truncated():
    rng = np.random.default_rng(24)
    size = 160
    alpha = np.zeros((size, size), np.float32)
    alpha[50:110, 50:110] = 1.0
    dist = ph._distance_outside(alpha)
    # strong noise: a fixed 3-gray-level cut would truncate it; the adaptive one reads it
    flat = np.full((size, size, 3), 120.0, np.float32) + rng.normal(0, 8, (size, size, 3)).astype(np.float32)
    sigma, _ = ph._background_noise(flat, dist, 12)
    assert abs(sigma / (8 * math.sqrt(ph._LUMA_SQ)) - 1) < 0.12, sigma
    # weak noise on a textured half: the texture is not read as noise
    tex = np.full((size, size, 3), 120.0, np.float32)
    tex[:, : size // 2] += (rng.uniform(-40, 40, (size, size // 2, 1))).astype(np.float32)
    tex += rng.normal(0, 1.0, tex.shape).astype(np.float32)
    sigma, _ = ph._background_noise(tex, dist, 12)
    ring = (dist > 2) & (dist <= 12)
    assert ph.noise_level(cv2.cvtColor(tex, cv2.COLOR_RGB2GRAY), ring) > 3 * sigma  # a plain MAD reads texture
    assert 0.45 < sigma < 0.8, sigma  # 1.0 per channel, about 0.6 in gray, plus rounding


def test_optics_then_sensor_is_what_match_camera_does_on_the_logo_alone():
    rgb, alpha, bg = _shaded_scene(np.random.default_rng(25), 2.0)
    p = _camera(match_blur=True, match_noise=False, motion_blur=True, motion_length=5.0, motion_angle=30.0)
    o_rgb, o_a = ph.match_optics(rgb, alpha, bg, p)
    c_rgb, c_a = ph.match_camera_rgba(rgb, alpha, bg, p)
    np.testing.assert_array_equal(o_a, c_a)
    np.testing.assert_allclose(np.clip(o_rgb, 0, 255), c_rgb)
