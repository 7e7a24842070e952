"""The curvature stage: cylinder and fold warps land where their geometry says, boxes stay the tight
box of visible pixels, shading darkens toward a cylinder's limbs, draws are deterministic, recorded
and replayed, and bad config values are refused naming the field."""

import dataclasses
import json
import math
import os
import re

import cv2
import numpy as np
import pytest

from synth import (backdrops, boxes as boxlib, config as configlib, curvature, generate, geometry, logo_bank, replay,
                   scene, settings)
from synth.errors import ConfigError
from synth.inputs import load_inputs
from conftest import write_config

GRID_STEP, DOT_R = 24, 3
# Where a grid dot's centroid lands vs where forward_map + the homography put its centre, every dot
# (the cylinder's reach 73 degrees from its front). Measured: at most 0.12 px (cylinder), 0.14 px (fold).
TOL_PX = 0.5
# The tight box of opacity >= 0.5 (the boxes' convention) vs the curved outline's extents (measured 0.72 px
# and 0.21 px), and of any opacity > 0, one pixel more (measured 1.64 px and 1.09 px): the frame and the
# homography are two bilinear resamplings, each reaching a pixel further.
BOX_TOL_PX = 1.0

CYLINDER = curvature.CurvatureParams("cylinder", 0.0, 0.0, wrap_deg=130.0, tilt_deg=18.0, azimuth_deg=8.0)
FOLD = curvature.CurvatureParams("fold", 30.0, 0.0, fold_height=0.06, fold_periods=1.6, fold_phase_deg=40.0,
                                 fold_angle_deg=20.0, fold_slant_deg=45.0)


def _dot_grid(h=192, w=288):
    """An opaque light logo with dark dots at (x, y) = GRID_STEP / 2 + k GRID_STEP; returns it and the dots."""
    logo = np.full((h, w, 4), 235, np.uint8)
    logo[..., 3] = 255
    pts = [(x, y) for y in range(GRID_STEP // 2, h, GRID_STEP) for x in range(GRID_STEP // 2, w, GRID_STEP)]
    for x, y in pts:
        cv2.circle(logo, (x, y), DOT_R, (20, 20, 20, 255), -1, cv2.LINE_AA)
    return logo, np.array(pts, np.float64)


def _paste(logo, cp, quad, out_hw=(480, 640), scale=1.0):
    """The curved frame laid on `quad` of a canvas as the scene does it: (rgb, alpha, roi, H)."""
    frame = curvature.apply(logo, cp, scale=scale)
    H = geometry.logo_homography(frame.shape[:2], np.asarray(quad, np.float64))
    rgb, alpha, roi = geometry.warp_rgba(frame, H, out_hw)
    return rgb, alpha, roi, H


QUAD = ((150.0, 120.0), (470.0, 100.0), (490.0, 330.0), (140.0, 350.0))  # a perspective view


def _dot_centroids(rgb, alpha, roi):
    dark = ((235.0 - rgb.mean(axis=2)) / 215.0).clip(0, 1) * (alpha >= 0.99)
    n, labels = cv2.connectedComponents((dark > 0.2).astype(np.uint8))
    ys, xs = np.mgrid[0:dark.shape[0], 0:dark.shape[1]]
    out = []
    for k in range(1, n):
        m = labels == k
        wgt = dark[m]
        out.append((float((xs[m] * wgt).sum() / wgt.sum()) + roi[1], float((ys[m] * wgt).sum() / wgt.sum()) + roi[0]))
    return np.array(out)


@pytest.mark.parametrize("scale", [1.0, 1.7], ids=["frame at the logo's size", "frame enlarged"])
@pytest.mark.parametrize("cp", [CYLINDER, FOLD], ids=["cylinder", "fold"])
def test_a_grid_lands_where_the_geometry_says(cp, scale):
    logo, pts = _dot_grid()
    rgb, alpha, roi, H = _paste(logo, cp, QUAD, scale=scale)
    assert curvature.apply(logo, cp, scale=scale).shape[:2] == curvature.frame_hw(cp, logo.shape[:2], scale)
    found = _dot_centroids(rgb, alpha, roi)
    expected = curvature.to_image(cp, logo.shape[:2], H, pts, scale)
    assert len(found) == len(pts) == 96  # every dot seen, none merged
    d = np.hypot(found[:, None, 0] - expected[None, :, 0], found[:, None, 1] - expected[None, :, 1]).min(axis=0)
    assert d.max() <= TOL_PX, f"worst grid point {d.max():.2f} px from where the geometry puts it"
    # and the warp is not the identity: the points moved from where the planar homography alone puts them
    planar = geometry.apply_h(geometry.logo_homography(logo.shape[:2], np.asarray(QUAD)), pts)
    assert np.hypot(*(planar - expected).T).max() > 8.0


@pytest.mark.parametrize("cp", [CYLINDER, FOLD], ids=["cylinder", "fold"])
def test_the_box_is_the_tight_box_of_the_visible_pixels_of_the_curved_outline(cp):
    logo, _ = _dot_grid()
    rgb, alpha, roi, H = _paste(logo, cp, QUAD)
    lh, lw = logo.shape[:2]
    t = np.linspace(0.0, 1.0, 400)
    edge = np.concatenate([np.stack([t * lw, np.zeros_like(t)], 1), np.stack([np.full_like(t, lw), t * lh], 1),
                           np.stack([t * lw, np.full_like(t, lh)], 1), np.stack([np.zeros_like(t), t * lh], 1)]) - 0.5
    outline = curvature.to_image(cp, logo.shape[:2], H, edge)
    for level, tol in ((boxlib.VISIBLE_ALPHA, BOX_TOL_PX), (1e-6, BOX_TOL_PX + 1.0)):
        r = boxlib.tight_rect(alpha >= level)
        got = np.array([r.x0 + roi[1], r.y0 + roi[0], r.x1 + roi[1], r.y1 + roi[0]], np.float64)
        # pixel (i, j) covers [j - 0.5, j + 0.5]: the outline's extents as whole-pixel bounds
        want = np.array([outline[:, 0].min() + 0.5, outline[:, 1].min() + 0.5,
                         outline[:, 0].max() + 0.5, outline[:, 1].max() + 0.5])
        assert np.abs(got - want).max() <= tol, (level, got, want)


def test_the_cylinder_frame_has_the_chord_of_the_wrap():
    cp = curvature.CurvatureParams("cylinder", 0.0, 0.0, wrap_deg=120.0)
    h, w = curvature.frame_size(cp, (100, 300))
    assert w == pytest.approx(300 * 2 * math.sin(math.radians(60)) / math.radians(120), rel=1e-4)
    assert h == pytest.approx(100, rel=1e-6)  # no tilt: rows stay straight
    tilted = curvature.frame_size(curvature.CurvatureParams("cylinder", 0.0, 0.0, wrap_deg=120.0, tilt_deg=20),
                                  (100, 300))
    r = 300 / math.radians(120)
    assert tilted[0] == pytest.approx(100 * math.cos(math.radians(20)) + r * 0.5 * math.sin(math.radians(20)), rel=1e-4)


def test_shading_darkens_toward_the_limbs():
    cp = curvature.CurvatureParams("cylinder", 0.0, 0.4, wrap_deg=140.0)
    grey = np.full((80, 240, 4), 200, np.uint8)
    grey[..., 3] = 255
    _, shade, hl = curvature.warp(grey, cp)
    row = shade[40]
    mid = len(row) // 2
    assert np.all(np.diff(row[:mid]) >= -1e-6) and np.all(np.diff(row[mid:]) <= 1e-6)  # falls off both ways
    assert row[mid] == pytest.approx(1.0, abs=0.01)
    assert row[0] == pytest.approx(0.6 + 0.4 * math.cos(math.radians(70)), abs=0.02)  # Lambert at the limb
    assert not hl.any()
    px = curvature.apply(grey, cp)[40, :, 0].astype(int)
    assert px[mid] >= 198 and px[0] < 150 and px[-1] < 150  # the pixels themselves
    # light from the right: the brightest column moves right of the front
    lit = curvature.warp(grey, curvature.CurvatureParams("cylinder", 40.0, 0.4, wrap_deg=140.0))[1][40]
    assert np.argmax(lit) > mid + 10 and lit[0] < lit[-1]
    # a fold is shaded by its slope: bands across it, none without shading
    fold = curvature.warp(grey, dataclasses.replace(FOLD, shading=0.5))[1]
    assert fold.max() - fold.min() > 0.2
    assert np.all(curvature.warp(grey, FOLD)[1] == 1.0)


def test_sampling_is_deterministic_bounded_and_follows_the_probabilities():
    cfg = curvature.CurvatureConfig(cylinder_probability=0.3, fold_probability=0.2)
    a = [curvature.sample_curvature(np.random.default_rng(9), cfg) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(1)
    draws = [curvature.sample_curvature(rng, cfg) for _ in range(4000)]
    kinds = [d.kind if d else None for d in draws]
    assert abs(kinds.count("cylinder") / 4000 - 0.3) < 0.03 and abs(kinds.count("fold") / 4000 - 0.2) < 0.03
    for d in draws:
        if d is None:
            continue
        assert cfg.shading[0] <= d.shading <= cfg.shading[1] and abs(d.light_deg) <= cfg.max_light_deg
        if d.kind == "cylinder":
            assert cfg.wrap_deg[0] <= d.wrap_deg <= cfg.wrap_deg[1] and abs(d.tilt_deg) <= cfg.max_tilt_deg
        else:
            assert cfg.fold_height[0] <= d.fold_height <= cfg.fold_height[1]


def _engine(cfg_path):
    cfg = configlib.load_config(cfg_path)
    inputs = load_inputs(cfg)
    s = settings.Settings.from_config(cfg.proto)
    return inputs, s, backdrops.Backdrops(inputs, s), logo_bank.LogoBank(inputs, s)


def test_curved_objects_in_scenes_have_tight_boxes_pass_the_gate_and_re_render(workdir):
    eng = _engine(write_config(workdir, extra="realism { curvature { cylinder_probability: 0.6 "
                                              "fold_probability: 0.4 } }\n"))
    inputs, s, bd, bank = eng
    assert s.curvature_on
    kinds = set()
    for seed in range(16):
        p, r = scene.compose(np.random.default_rng(seed), seed, inputs, bd, bank, s)
        for k, o in enumerate(p.objects):
            kinds.add(o.curvature.kind)
            np.testing.assert_array_equal(r.boxes[k], boxlib.tight_box(r.visible[k] >= boxlib.VISIBLE_ALPHA))
            assert r.scores[k].passes(s.gate_cfg)
            # the homography maps the curved frame (what was pasted) onto the object's quad
            frame = scene.pasted_logo(o, bank)[0]
            np.testing.assert_allclose(geometry.apply_h(r.homographies[k], geometry.logo_corners(frame.shape[:2])),
                                       np.asarray(o.quad), atol=1e-3)
        again = scene.render_scene(p, bd, bank, s)
        np.testing.assert_array_equal(again.image, r.image)
        assert scene.SceneParams.from_json(json.loads(json.dumps(p.to_json()))) == p
    assert kinds == {"cylinder", "fold"}


def test_the_stage_off_draws_nothing(workdir):
    plain = _engine(write_config(workdir))
    off = _engine(write_config(workdir, extra="realism { curvature { min_wrap_deg: 50 max_fold_periods: 1 } }\n"))
    assert not off[1].curvature_on and off[1].curvature_cfg.wrap_deg == (50.0, 140.0)
    for seed in range(4):
        p1, r1 = scene.compose(np.random.default_rng(seed), seed, plain[0], plain[2], plain[3], plain[1])
        p2, r2 = scene.compose(np.random.default_rng(seed), seed, off[0], off[2], off[3], off[1])
        assert p1 == p2 and all(o.curvature is None for o in p1.objects)
        np.testing.assert_array_equal(r1.image, r2.image)


def test_a_dataset_with_curved_logos_records_them_and_replays_byte_identical(workdir):
    cfg = configlib.load_config(write_config(workdir, num_images=30, extra="realism { curvature { "
                                             "cylinder_probability: 0.5 fold_probability: 0.3 } }\n"))
    out = str(workdir / "out")
    generate.generate(cfg, out, show_progress=False, workers=1)
    r = replay.open_dataset(out)
    with open(os.path.join(out, "params.jsonl")) as f:
        lines = [json.loads(line) for line in f]
    kinds = [o["curvature"]["kind"] if o["curvature"] else None for rec in lines for o in rec["params"]["objects"]]
    assert {"cylinder", "fold", None} <= set(kinds)
    for rec in lines:
        assert r.replay(rec) == r.shard_jpeg(rec), rec["index"]


@pytest.mark.parametrize("body, field", [
    ("cylinder_probability: 1.5", "realism.curvature.cylinder_probability"),
    ("cylinder_probability: 0.7 fold_probability: 0.5", "realism.curvature.fold_probability"),
    ("fold_probability: -0.1", "realism.curvature.fold_probability"),
    ("min_wrap_deg: 0", "realism.curvature.min_wrap_deg"),
    ("max_wrap_deg: 170", "realism.curvature.max_wrap_deg"),
    ("min_wrap_deg: 100 max_wrap_deg: 90", "realism.curvature.max_wrap_deg"),
    ("max_azimuth_deg: 30", "realism.curvature.max_azimuth_deg"),
    ("max_axis_tilt_deg: 60", "realism.curvature.max_axis_tilt_deg"),
    ("max_light_deg: -1", "realism.curvature.max_light_deg"),
    ("max_highlight: 2", "realism.curvature.max_highlight"),
    ("max_shading: 1", "realism.curvature.min_shading/max_shading"),
    ("max_fold_height: 0.2", "realism.curvature.max_fold_height"),
    ("min_fold_periods: 0", "realism.curvature.min_fold_periods/max_fold_periods"),
    ("max_fold_slant_deg: 80", "realism.curvature.max_fold_slant_deg"),
    ("wrap_deg: 90", "wrap_deg"),  # an unknown field
])
def test_bad_curvature_config_is_refused_naming_the_field(workdir, body, field):
    path = write_config(workdir, extra=f"realism {{ curvature {{ {body} }} }}\n")
    with pytest.raises(ConfigError, match=re.escape(field)):
        configlib.load_config(path)


@pytest.mark.parametrize("kwargs, name", [
    ({"cylinder_probability": 2.0}, "cylinder_probability"),
    ({"cylinder_probability": 0.6, "fold_probability": 0.6}, "fold_probability"),
    ({"wrap_deg": (100.0, 50.0)}, "wrap_deg"),
    ({"wrap_deg": (40.0, 160.0)}, "max_azimuth_deg"),
    ({"fold_height": (0.1, 0.2)}, "fold_height"),
    ({"shading": (0.2, 1.0)}, "shading"),
])
def test_the_stage_settings_refuse_bad_values_naming_them(kwargs, name):
    with pytest.raises(ConfigError, match=f"curvature {name} ="):
        curvature.CurvatureConfig(**kwargs)


def test_a_bad_params_record_is_refused():
    with pytest.raises(ConfigError, match="kind 'sphere'"):
        curvature.CurvatureParams("sphere", 0.0, 0.0)
    with pytest.raises(ConfigError, match="wrap_deg 170"):
        curvature.CurvatureParams("cylinder", 0.0, 0.0, wrap_deg=170.0)
    with pytest.raises(ConfigError, match="fold over"):
        curvature.CurvatureParams("fold", 0.0, 0.0, fold_height=0.2, fold_periods=2.0, fold_slant_deg=60.0)


def test_every_draw_of_the_widest_allowed_config_renders_and_inverts():
    """The limits validation allows, at their extremes: every frame is finite, holds the whole logo,
    and the inverse map used to render it undoes the forward map."""
    cfg = curvature.CurvatureConfig(cylinder_probability=0.5, fold_probability=0.5, wrap_deg=(1.0, 160.0),
                                    max_tilt_deg=45.0, max_azimuth_deg=5.0, max_light_deg=90.0, max_highlight=1.0,
                                    fold_height=(0.0, 0.0716), fold_periods=(0.05, 2.0), max_fold_angle_deg=90.0,
                                    max_fold_slant_deg=75.0, shading=(0.0, 0.95))
    rng = np.random.default_rng(4)
    logo = np.full((30, 50, 4), 255, np.uint8)
    ab = np.random.default_rng(5).uniform(-0.5, 0.5, (500, 2)) * [1.0, 30 / 50]
    for _ in range(300):
        cp = curvature.sample_curvature(rng, cfg)
        frame = curvature.apply(logo, cp)
        assert frame.shape[:2] == curvature.frame_hw(cp, (30, 50))
        # the logo fills its frame: opaque at its centre, and its corners land inside the frame
        corners = curvature.forward_map(cp, (30, 50), geometry.logo_corners((30, 50)))
        fh, fw = frame.shape[:2]
        centre = np.round(curvature.forward_map(cp, (30, 50), [[24.5, 14.5]])[0]).astype(int)
        assert frame[centre[1], centre[0], 3] == 255 and np.isfinite(frame).all()
        assert np.all(corners >= -0.5 - 1e-6) and np.all(corners <= [fw - 0.5 + 1e-6, fh - 0.5 + 1e-6])
        x, y = curvature._curve(cp, ab[:, 0], ab[:, 1])
        a, b = curvature._uncurve(cp, x, y)
        assert np.abs(a - ab[:, 0]).max() < 1e-5 and np.abs(b - ab[:, 1]).max() < 1e-5, cp


def test_records_written_before_the_stage_still_load_as_flat(workdir):
    eng = _engine(write_config(workdir))
    p, _ = scene.compose(np.random.default_rng(2), 2, eng[0], eng[2], eng[3], eng[1])
    d = json.loads(json.dumps(p.to_json()))
    for o in d["objects"]:
        assert o.pop("curvature") is None  # what a params line held before the stage existed
    assert scene.SceneParams.from_json(d) == p
