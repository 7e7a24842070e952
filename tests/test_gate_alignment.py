"""The gate's reference lies where the compositor put the logo: its `match`, with the homography
moved by (dx, dy) px on the canvas, peaks at zero (within 0.5 px), for pastes shrunk, enlarged,
rotated and in perspective, for a motion-blurred paste and through the engine's own scenes."""

import dataclasses
import os

import cv2
import numpy as np
import pytest

from synth import backdrops, camera, config as configlib, gate, geometry, logo_bank, scene, settings
from synth.inputs import load_inputs
from conftest import write_config, write_rgba

SHIFTS = np.arange(-1.5, 1.5 + 1e-9, 0.25)


def _glyph_logo(h: int = 90, w: int = 200) -> np.ndarray:
    """An asymmetric word-mark-like RGBA logo: dark anti-aliased glyphs with counters and a bar."""
    rgba = np.zeros((h, w, 4), np.uint8)
    cv2.putText(rgba, "RQ4", (8, 68), cv2.FONT_HERSHEY_DUPLEX, 2.2, (30, 30, 90, 255), 7, cv2.LINE_AA)
    cv2.rectangle(rgba, (150, 12), (190, 26), (200, 40, 30, 255), -1)
    return rgba


def _peak(grid: np.ndarray) -> tuple[float, float]:
    return gate.grid_peak(grid, SHIFTS)


def _match_grid(prepared, H, comp, visible, pasted) -> np.ndarray:
    return gate.shifted_matches(prepared, H, comp, visible, pasted, SHIFTS)


def _paste(logo, quad, hw=(240, 320), blur=None):
    """The compositor's warp (geometry.warp_rgba) of `logo` onto a grey canvas, optionally through
    the camera stage's optics; (composite, alpha, H)."""
    H = geometry.logo_homography(logo.shape[:2], np.asarray(quad, np.float64))
    rgb, a, (y0, x0, y1, x1) = geometry.warp_rgba(logo, H, hw)
    bg = np.full(hw + (3,), 150.0, np.float32)
    if blur is not None:
        rgb, a = camera.match_optics(rgb, a, bg[y0:y1, x0:x1], blur)
    comp = bg.copy()
    comp[y0:y1, x0:x1] = rgb * a[..., None] + bg[y0:y1, x0:x1] * (1.0 - a[..., None])
    alpha = np.zeros(hw, np.float32)
    alpha[y0:y1, x0:x1] = a
    return np.clip(comp + 0.5, 0, 255).astype(np.uint8), alpha, H


QUADS = {  # logo 200 x 90 (w x h)
    "shrunk 0.3x": [[100.3, 100.6], [160.3, 100.6], [160.3, 127.6], [100.3, 127.6]],
    "same size, rotated": [[60.2, 60.7], [257.2, 85.3], [246.0, 174.6], [49.0, 150.0]],
    "enlarged 1.5x, perspective": [[12.4, 40.2], [308.1, 20.5], [300.0, 190.3], [20.7, 175.8]],
}


@pytest.mark.parametrize("name", sorted(QUADS))
def test_the_match_peaks_where_the_compositor_pasted_the_logo(name):
    logo = _glyph_logo()
    comp, alpha, H = _paste(logo, QUADS[name])
    grid = _match_grid(gate.prepare_logo(logo), H, comp, alpha, alpha)
    dx, dy = _peak(grid)
    assert abs(dx) <= 0.5 and abs(dy) <= 0.5, (name, dx, dy)
    c = len(SHIFTS) // 2
    assert grid[c, c] > 0.9 and grid[c, c] >= grid.max() - 0.01, grid[c, c]
    # a misplacement of 1.5 px is seen: the match falls
    assert grid[c, c + 6] < grid[c, c] - 0.02 and grid[c + 6, c] < grid[c, c] - 0.02


def test_the_motion_blur_kernel_is_centred():
    for length in np.linspace(1.5, 9.0, 13):
        for angle in range(0, 180, 11):
            k = camera._motion_kernel(float(length), float(angle))
            n = k.shape[0]
            ys, xs = np.mgrid[:n, :n]
            c = (n - 1) / 2
            # OpenCV's anti-aliased line put the centroid up to 0.5 px off (length 6, angle 0)
            assert abs((k * xs).sum() - c) < 1e-5 and abs((k * ys).sum() - c) < 1e-5, (length, angle)


@pytest.mark.parametrize("angle", [0.0, 33.0, 90.0])
def test_a_motion_blurred_paste_stays_on_its_homography(angle):
    """A motion blur smears the logo along its direction: a short one keeps the peak at zero; along a
    long one the match has no single peak (a blurred edge is a ramp as long as the blur, which the
    sharp reference meets equally well a little before or after its middle), but it is the same
    either side of zero: the blur is centred on where the logo was pasted."""
    logo = _glyph_logo()
    quad = QUADS["same size, rotated"]
    off = camera.sample_camera(np.random.default_rng(0), camera.CameraConfig(match_blur=False, match_noise=False,
                                                                          motion_blur_prob=0.0))
    sharp, a0, H = _paste(logo, quad)
    ys, xs = np.mgrid[:a0.shape[0], :a0.shape[1]]
    prepared = gate.prepare_logo(logo)
    t = np.radians(angle)

    def asymmetry(comp, a):  # the match at +s minus at -s px along the blur's direction, s = 0.5, 1, 1.5
        along = [[gate.score(prepared, np.array([[1.0, 0.0, sgn * d * np.cos(t)], [0.0, 1.0, sgn * d * np.sin(t)],
                                                 [0.0, 0.0, 1.0]]) @ H, comp, a, a).match for d in (0.5, 1.0, 1.5)]
                 for sgn in (1.0, -1.0)]
        return float(np.abs(np.subtract(*along)).max())

    own = asymmetry(sharp, a0)  # the sharp paste's own (the glyphs are not symmetric): under 0.013
    for length in (3.0, 6.0):
        blur = dataclasses.replace(off, motion_blur=True, motion_length=length, motion_angle=angle)
        comp, a, _ = _paste(logo, quad, blur=blur)
        for v in (xs, ys):  # the blurred opacity keeps its centre of mass
            assert abs((a * v).sum() / a.sum() - (a0 * v).sum() / a0.sum()) < 0.05, (length, angle)
        # the off-centre kernel of OpenCV's line made this 0.069 (angle 0) and 0.035 (angle 90) at length 6
        assert asymmetry(comp, a) <= own + 0.01, (length, angle, own)
        if length == 3.0:
            dx, dy = _peak(_match_grid(prepared, H, comp, a, a))
            assert abs(dx) <= 0.5 and abs(dy) <= 0.5, (angle, dx, dy)


def test_engine_scenes_on_a_plain_background_peak_at_zero_shift(tmp_path):
    """The engine's own path: pre-shrunk levels (synth.logo_bank), framing, perspective, curvature and
    the camera's blur, scored as synth.scene scores them."""
    os.makedirs(tmp_path / "logos")
    os.makedirs(tmp_path / "backgrounds")
    write_rgba(str(tmp_path / "logos" / "logo.png"), _glyph_logo(135, 300))
    ramp = np.linspace(110, 170, 320, dtype=np.float32)[None, :, None] * np.ones((240, 1, 3), np.float32)
    for i in range(2):
        cv2.imwrite(str(tmp_path / "backgrounds" / f"bg{i}.png"), (ramp + 10 * i).astype(np.uint8))
    cfg = configlib.load_config(write_config(tmp_path, (
        'logo { class_name: "acme" path: "logos/logo.png" }\nbackground { directory: "backgrounds" }\n'
        'image_size { height: 240 width: 320 }\nnum_images: 4\nseed: 5\n'
        'placement { min_objects: 1 max_objects: 1 }\n'
        'realism { light { enabled: false } blend { feather_weight: 0 poisson_weight: 0 laplacian_weight: 0 } '
        'camera { enabled: true motion_blur_probability: 0 } curvature { cylinder_probability: 0.3 fold_probability: 0.2 } }\n')))
    inputs = load_inputs(cfg)
    s = settings.Settings.from_config(cfg.proto)
    bd, bank = backdrops.Backdrops(inputs, s), logo_bank.LogoBank(inputs, s)
    checked = 0
    for k in range(6):
        params, r = scene.compose(np.random.default_rng(k), k, inputs, bd, bank, s)
        for j, o in enumerate(params.objects):
            if not r.scores[j].passes(s.gate_cfg):
                continue
            _, prepared, _ = scene.pasted_logo(o, bank)
            dx, dy = _peak(_match_grid(prepared, r.homographies[j], r.image, r.visible[j], r.pasted[j]))
            assert abs(dx) <= 0.5 and abs(dy) <= 0.5, (k, j, dx, dy, o)
            checked += 1
    assert checked >= 4
