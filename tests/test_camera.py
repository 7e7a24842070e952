"""Camera stage (blur and noise matched to the local background) on synthetic scenes whose truth is known."""

import dataclasses
import json
import math

import cv2
import numpy as np
import pytest

from conftest import make_disc_roi
from synth import camera as cam
from synth.errors import ConfigError, InputImageError
from synth.measure import ALPHA_EPS, distance_outside, inner_mask, noise_level, ring_mask, sharpness

OFF_CAMERA = cam.CameraConfig(match_blur=False, match_noise=False, motion_blur_prob=0.0)


def _camera(**kw):
    """Camera params that do nothing except what kw turns on."""
    p = cam.sample_camera(np.random.default_rng(0), OFF_CAMERA)
    return dataclasses.replace(p, **kw)


def _composite(bg, rgb, alpha):
    return bg * (1.0 - alpha[..., None]) + rgb * alpha[..., None]


# ---------------------------------------------------------------- optics and sensor on the logo alone

def test_matched_noise_is_within_25_percent_of_the_ring():
    rng = np.random.default_rng(4)
    rgb, alpha = make_disc_roi(size=180, logo=120)
    shade = np.add.outer(np.linspace(70, 160, 180), np.linspace(0, 40, 180)).astype(np.float32)
    bg = np.clip(shade[..., None] + rng.normal(0, 8, rgb.shape), 0, 255).astype(np.float32)
    out = cam.match_camera(rgb, alpha, bg, _camera(match_blur=True, match_noise=True, noise_seed=11))
    comp = _composite(bg, out, alpha)
    ring, inner = ring_mask(alpha, 12), inner_mask(alpha, 2)
    for gray in (cv2.cvtColor(comp, cv2.COLOR_RGB2GRAY), comp[..., 0], comp[..., 2]):
        n_ring, n_logo = noise_level(gray, ring), noise_level(gray, inner)
        assert n_ring > 4.0
        assert abs(n_logo / n_ring - 1) < 0.25, (n_logo, n_ring)
    assert noise_level(cv2.cvtColor(_composite(bg, rgb, alpha), cv2.COLOR_RGB2GRAY), inner) < 0.5


def _textured_scene(rng, bg_blur):
    """A logo with crisp texture and a background texture blurred by bg_blur px, both of std 30."""
    rgb, alpha = make_disc_roi(size=180, logo=120)
    crisp = cv2.GaussianBlur(rng.uniform(-1, 1, (180, 180)).astype(np.float32), (0, 0), 0.7)
    rgb = np.clip(rgb + (crisp / crisp.std() * 30)[..., None], 0, 255).astype(np.float32)
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (180, 180, 3)).astype(np.float32), (0, 0), bg_blur)
    return rgb, alpha, np.clip((tex - tex.mean()) / tex.std() * 30 + 128, 0, 255).astype(np.float32)


@pytest.mark.parametrize("bg_blur", [1.2, 2.5])
def test_matched_sharpness_is_close_to_the_ring(bg_blur):
    rgb, alpha, bg = _textured_scene(np.random.default_rng(5), bg_blur)
    ring, inner = ring_mask(alpha, 12), inner_mask(alpha, 2)

    def log_ratio(logo):
        gray = cv2.cvtColor(_composite(bg, logo, alpha), cv2.COLOR_RGB2GRAY)
        return math.log(sharpness(gray, inner) / sharpness(gray, ring))

    assert log_ratio(rgb) > 0.6  # pasted as is, the logo is far sharper than its surroundings
    for noise in (False, True):
        out = cam.match_camera(rgb, alpha, bg, _camera(match_blur=True, match_noise=noise))
        assert abs(log_ratio(out)) < 0.25


def test_blur_read_from_a_noisy_background_is_the_blur_of_its_content():
    rng = np.random.default_rng(8)
    rgb, alpha, clean = _textured_scene(rng, 2.0)
    noisy = np.clip(clean + rng.normal(0, 6, clean.shape), 0, 255).astype(np.float32)
    p = _camera(match_blur=True)
    on_clean, on_noisy = cam.match_camera(rgb, alpha, clean, p), cam.match_camera(rgb, alpha, noisy, p)
    inside = inner_mask(alpha, 2)
    assert np.abs(on_clean - rgb)[inside].mean() > 8  # blurred a lot
    assert np.abs(on_noisy - on_clean)[inside].mean() < 2.0  # about the same sigma: noise not read as detail


def test_motion_blur_smooths_along_its_direction_only():
    stripes = np.where((np.arange(120) // 4) % 2 == 0, 60, 190).astype(np.float32)
    rgb = np.repeat(np.repeat(stripes[None, :, None], 120, axis=0), 3, axis=2)  # vertical stripes
    alpha = np.zeros((120, 120), np.float32)
    alpha[20:100, 20:100] = 1.0
    bg = np.full(rgb.shape, 128, np.float32)
    along_x = cam.match_camera(rgb, alpha, bg, _camera(motion_blur=True, motion_length=8.0, motion_angle=0.0))
    along_y = cam.match_camera(rgb, alpha, bg, _camera(motion_blur=True, motion_length=8.0, motion_angle=90.0))
    assert along_x[30:90, 30:90].std() < 0.2 * rgb[30:90, 30:90].std()
    assert along_y[30:90, 30:90].std() > 0.9 * rgb[30:90, 30:90].std()


def test_camera_switches_off_is_the_identity_and_matching_is_deterministic():
    rng = np.random.default_rng(6)
    rgb, alpha = make_disc_roi()
    bg = rng.uniform(0, 255, rgb.shape).astype(np.float32)
    p = cam.sample_camera(np.random.default_rng(0), OFF_CAMERA)
    np.testing.assert_array_equal(cam.match_camera(rgb, alpha, bg, p), rgb)
    on = cam.sample_camera(np.random.default_rng(7), cam.CameraConfig(motion_blur_prob=1.0))
    np.testing.assert_array_equal(cam.match_camera(rgb, alpha, bg, on), cam.match_camera(rgb, alpha, bg, on))
    out, a = cam.match_camera_rgba(rgb, alpha, bg, on)
    assert a.shape == alpha.shape and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    assert not np.array_equal(out, rgb)


# ---------------------------------------------------------------- sampling, configs, odd footprints

def test_sampling_is_deterministic_and_serialisable():
    a = cam.sample_camera(np.random.default_rng(42), cam.CameraConfig())
    b = cam.sample_camera(np.random.default_rng(42), cam.CameraConfig())
    c = cam.sample_camera(np.random.default_rng(43), cam.CameraConfig())
    assert a == b and a != c
    assert json.loads(json.dumps(dataclasses.asdict(a))) == dataclasses.asdict(a)
    # the stage records only what it applies: the composite's JPEG quality is the scene's
    assert not {"jpeg", "jpeg_quality"} & set(dataclasses.asdict(a))
    # switching one effect off does not change the others' draws
    on = cam.sample_camera(np.random.default_rng(9), cam.CameraConfig())
    off = cam.sample_camera(np.random.default_rng(9), cam.CameraConfig(match_noise=False, motion_blur_prob=0.0))
    assert not off.match_noise and not off.motion_blur
    assert (off.noise_seed, off.motion_length, off.motion_angle) == (on.noise_seed, on.motion_length, on.motion_angle)


def test_bad_configs_and_inputs_are_refused_with_the_field_named():
    with pytest.raises(ConfigError, match="motion_length_range"):
        cam.CameraConfig(motion_length_range=(0.5, 9.0))
    with pytest.raises(ConfigError, match="motion_blur_prob"):
        cam.CameraConfig(motion_blur_prob=-0.1)
    with pytest.raises(ConfigError, match="context_px"):
        cam.CameraConfig(context_px=0)
    rgb, alpha = make_disc_roi()
    with pytest.raises(InputImageError, match="alpha"):
        cam.match_camera(rgb, alpha.astype(np.float64), rgb, _camera())
    with pytest.raises(InputImageError, match="canvas_roi"):
        cam.match_optics(rgb, alpha, rgb[:10], _camera())
    with pytest.raises(InputImageError, match="composite"):
        cam.match_sensor(rgb.astype(np.float64), alpha, _camera())


def test_tiny_and_empty_footprints_are_handled():
    rng = np.random.default_rng(10)
    bg = np.clip(100 + rng.normal(0, 5, (40, 40, 3)), 0, 255).astype(np.float32)
    rgb = np.full((40, 40, 3), 200, np.float32)
    camera = cam.sample_camera(np.random.default_rng(1), cam.CameraConfig(motion_blur_prob=1.0))
    tiny = np.zeros((40, 40), np.float32)
    tiny[18:22, 18:22] = 1.0  # 4 x 4 px: no interior to measure, still given noise
    out = cam.match_camera(rgb, tiny, bg, camera)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 255
    empty = np.zeros((40, 40), np.float32)
    np.testing.assert_array_equal(cam.match_camera(rgb, empty, bg, camera), rgb)
    np.testing.assert_array_equal(cam.match_sensor(bg, empty, camera), bg)


# ---------------------------------------------------------------- sensor: noise matched on the stored composite

def _stored_reading(img, mask):
    """The noise a reading of the stored (8-bit) image sees: gray of the uint8 image, robust MAD."""
    g = cv2.cvtColor(np.clip(img + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return noise_level(g, mask)


def _shaded_scene(rng, sigma, size=180, logo=120):
    """A smooth shaded background with `sigma` gray levels of noise, as an 8-bit photo stores it, and a
    logo of two flat colours on it."""
    rgb, alpha = make_disc_roi(size=size, logo=logo)
    shade = np.add.outer(np.linspace(80, 150, size), np.linspace(0, 50, size)).astype(np.float32)
    bg = np.round(np.clip(shade[..., None] + rng.normal(0, sigma, (size, size, 3)), 0, 255)).astype(np.float32)
    # the logo lit by a gentle ramp too: 8-bit rounding of a ramp reads as noise by itself
    ramp = np.linspace(0.85, 1.1, size, dtype=np.float32)[None, :, None]
    return rgb * ramp, alpha, bg


@pytest.mark.parametrize("sigma", [0.6, 1.5, 6.0])
def test_matched_noise_reads_like_the_ring_on_the_stored_composite(sigma):
    rgb, alpha, bg = _shaded_scene(np.random.default_rng(21), sigma)
    p = _camera(match_noise=True, noise_seed=5)
    comp = cam.match_sensor(_composite(bg, rgb, alpha), alpha, p, artwork=rgb)
    ring, inner = ring_mask(alpha, 8), inner_mask(alpha, 2)
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
    out = cam.match_sensor(comp, alpha, p, artwork=rgb)
    np.testing.assert_array_equal(out, cam.match_sensor(comp, alpha, p, artwork=rgb))
    assert not np.array_equal(out, comp)
    np.testing.assert_array_equal(out[alpha <= ALPHA_EPS], comp[alpha <= ALPHA_EPS])
    other = cam.match_sensor(comp, alpha, dataclasses.replace(p, noise_seed=10), artwork=rgb)
    assert not np.array_equal(other, out)
    np.testing.assert_array_equal(cam.match_sensor(comp, alpha, dataclasses.replace(p, match_noise=False)),
                                  np.clip(comp, 0, 255))


def test_a_logo_already_noisier_than_its_surroundings_gets_no_noise():
    rng = np.random.default_rng(23)
    rgb, alpha, bg = _shaded_scene(rng, 0.5)
    grainy = np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.float32)
    comp = _composite(bg, grainy, alpha)
    np.testing.assert_array_equal(cam.match_sensor(comp, alpha, _camera(match_noise=True), artwork=rgb),
                                  np.clip(comp, 0, 255))


def test_background_noise_is_read_on_flat_pixels_and_not_truncated():
    rng = np.random.default_rng(24)
    size = 160
    alpha = np.zeros((size, size), np.float32)
    alpha[50:110, 50:110] = 1.0
    dist = distance_outside(alpha)
    # strong noise: a fixed 3-gray-level cut would truncate it; the adaptive one reads it
    flat = np.full((size, size, 3), 120.0, np.float32) + rng.normal(0, 8, (size, size, 3)).astype(np.float32)
    sigma, _ = cam._background_noise(flat, dist, 12)
    assert abs(sigma / (8 * math.sqrt(cam._LUMA_SQ)) - 1) < 0.12, sigma
    # weak noise on a textured half: the texture is not read as noise
    tex = np.full((size, size, 3), 120.0, np.float32)
    tex[:, : size // 2] += (rng.uniform(-40, 40, (size, size // 2, 1))).astype(np.float32)
    tex += rng.normal(0, 1.0, tex.shape).astype(np.float32)
    sigma, _ = cam._background_noise(tex, dist, 12)
    ring = (dist > 2) & (dist <= 12)
    assert noise_level(cv2.cvtColor(tex, cv2.COLOR_RGB2GRAY), ring) > 3 * sigma  # a plain MAD reads texture
    assert 0.45 < sigma < 0.8, sigma  # 1.0 per channel, about 0.6 in gray, plus rounding


def test_optics_then_sensor_is_what_match_camera_does_on_the_logo_alone():
    rgb, alpha, bg = _shaded_scene(np.random.default_rng(25), 2.0)
    p = _camera(match_blur=True, match_noise=False, motion_blur=True, motion_length=5.0, motion_angle=30.0)
    o_rgb, o_a = cam.match_optics(rgb, alpha, bg, p)
    c_rgb, c_a = cam.match_camera_rgba(rgb, alpha, bg, p)
    np.testing.assert_array_equal(o_a, c_a)
    np.testing.assert_allclose(np.clip(o_rgb, 0, 255), c_rgb)


@pytest.mark.parametrize("drop", [0, 1])
def test_the_8bit_median_reads_what_np_median_reads(drop):
    """_mad_sigma_8bit counts whole-number residuals instead of partitioning: on the residual of a
    stored image it gives exactly the robust sigma that np.median gives (odd and even counts)."""
    from synth.measure import HP_NORM

    rng = np.random.default_rng(7)
    for sigma in (0.7, 3.0, 25.0):
        img = cam.stored(np.float32(120) + np.float32(sigma) * rng.standard_normal((90, 130, 3), np.float32))
        r = cam._residual(img)
        m = rng.random(r.shape[:2]) < 0.6
        vals = r[m].ravel()[drop:]
        want = float(np.median(np.abs(vals))) / (0.6745 * HP_NORM)
        assert cam._mad_sigma_8bit(vals) == want
        assert cam._channels_sigma(r, m) == float(np.median(np.abs(r[m]))) / (0.6745 * HP_NORM)
    assert cam._mad_sigma_8bit(np.zeros(0, np.float32)) == 0.0
