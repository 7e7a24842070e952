"""synth.placement and synth.geometry on scenes whose truth is known."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import cv2
import numpy as np
import pytest

from synth import boxes as boxlib, geometry, placement, surface
from synth.errors import ConfigError, InputImageError
from conftest import make_logo
from test_surface import FLOOR, board_scene, true_homography, two_halves

LOGO_HW = (60, 90)  # a landscape logo: aspect h / w = 2 / 3


@pytest.fixture(scope="module")
def halves():
    return surface.analyse(two_halves(seed=1))


@pytest.fixture(scope="module")
def floor():
    H_true = true_homography(FLOOR)
    return H_true, surface.analyse(board_scene(H_true))


def test_two_hundred_placements_never_cross_the_edge(halves):
    rng = np.random.default_rng(0)
    used = set()
    for _ in range(200):
        p = placement.sample_placement(rng, halves, LOGO_HW, (480, 640))
        assert p is not None
        q = p.quad_array()
        assert not placement.straddles(q, halves)
        # Ground truth, independent of the analysis: the logo lies wholly on one side of x = 320.
        assert q[:, 0].max() < 319.5 or q[:, 0].min() > 319.5
        fp = placement.footprint_mask(q, (480, 640))
        assert np.mean(halves.labels[fp] == p.region_id) >= 0.97
        assert geometry.distortion_ok(q, LOGO_HW[0] / LOGO_HW[1])
        used.add(p.region_id)
    assert used == {0, 1}
    # Placement at random on the same image does cross it, and straddles() says so.
    x = np.array([[280.0, 200], [360, 200], [360, 260], [280, 260]])
    assert placement.straddles(x, halves)
    assert not placement.straddles(x - [200, 0], halves)


def test_the_logo_follows_the_floor_perspective(floor):
    H_true, s = floor
    cfg = placement.PlacementConfig(max_rotation_deg=0.0, max_extra_tilt_deg=0.0)
    rng = np.random.default_rng(1)
    found = 0
    for _ in range(40):
        p = placement.sample_placement(rng, s, (80, 80), (480, 640), cfg)
        assert p is not None
        if p.evidence != surface.EVIDENCE_VP:
            continue
        found += 1
        q = p.quad_array()
        # The quad the true plane gives for the same centre and width.
        t = geometry.logo_quad(H_true, p.center_xy, p.width_px, 1.0)
        far_near = lambda quad: np.linalg.norm(quad[1] - quad[0]) / np.linalg.norm(quad[2] - quad[3])
        assert far_near(q) < 0.99  # the far (top) side is shorter than the near (bottom) side
        assert far_near(q) == pytest.approx(far_near(t), abs=0.03)
        # Back on the true plane, the logo is close to a square (metric rectification).
        back = geometry.apply_h(np.linalg.inv(H_true), q)
        sides = np.linalg.norm(np.roll(back, -1, axis=0) - back, axis=1)
        assert (sides[1] + sides[3]) / (sides[0] + sides[2]) == pytest.approx(1.0, abs=0.15)
    assert found >= 20


def test_same_seed_same_placement_and_it_serialises(floor):
    _, s = floor
    a = [placement.sample_placement(np.random.default_rng(7), s, LOGO_HW, (480, 640)) for _ in range(2)]
    assert a[0] == a[1]
    b = placement.sample_placement(np.random.default_rng(8), s, LOGO_HW, (480, 640))
    assert b != a[0]
    record = json.loads(json.dumps(asdict(a[0])))
    assert record["region_id"] == a[0].region_id and len(record["quad"]) == 4


def test_region_draws_follow_generator_choice_and_centres_are_kept_per_surface(floor):
    _, s = floor
    fresh = surface.Surface(s.shape, s.labels, s.edges, s.boundaries, s.distance_to_edge, s.regions)
    assert not fresh.derived
    got = placement.sample_placement(np.random.default_rng(3), fresh, LOGO_HW, (480, 640))
    assert any(k[0] == "placement.centres" for k in fresh.derived)  # computed once for this backdrop
    kept = dict(fresh.derived)
    assert placement.sample_placement(np.random.default_rng(3), fresh, LOGO_HW, (480, 640)) == got
    assert all(fresh.derived[k] is v for k, v in kept.items())  # and reused, not recomputed
    # the region draw is Generator.choice's inverse-CDF draw: the same regions, the same stream after
    areas = np.array([r.area_px for r in s.regions], np.float64)
    for seed in range(50):
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        cdf = np.cumsum(areas / areas.sum())
        cdf /= cdf[-1]
        assert int(a.choice(len(areas), p=areas / areas.sum())) == int(cdf.searchsorted(b.random(), side="right"))
        assert a.random() == b.random()


def test_no_room_gives_none_after_bounded_attempts(halves):
    yy, xx = np.mgrid[0:480, 0:640]
    busy = np.where((yy // 12 + xx // 12) % 2 == 0, 220, 30).astype(np.uint8)
    s = surface.analyse(cv2.merge([busy, busy, busy]))
    assert placement.sample_placement(np.random.default_rng(0), s, LOGO_HW, (480, 640)) is None
    tiny = surface.analyse(two_halves(h=24, w=24))
    assert placement.sample_placement(np.random.default_rng(0), tiny, LOGO_HW, (24, 24)) is None
    # Regions exist, but none can hold a logo this large: every attempt fails, and it stops.
    cfg = placement.PlacementConfig(min_width_px=300.0, max_attempts=50)
    t0 = time.perf_counter()
    assert placement.sample_placement(np.random.default_rng(0), halves, LOGO_HW, (480, 640), cfg) is None
    assert time.perf_counter() - t0 < 1.0


def test_taken_quads_are_not_overlapped(halves):
    rng = np.random.default_rng(3)
    taken = []
    for _ in range(6):
        p = placement.sample_placement(rng, halves, LOGO_HW, (480, 640), taken=taken, max_overlap_iou=0.0)
        assert p is not None
        box = placement.quad_box(p.quad_array(), (480, 640))
        assert all(boxlib.iou(box, placement.quad_box(t, (480, 640))) == 0.0 for t in taken)
        taken.append(p.quad_array())


def test_truncation_only_when_allowed_and_bounded(halves):
    inside = lambda q: q.min() >= -0.5 and q[:, 0].max() <= 639.5 and q[:, 1].max() <= 479.5
    rng = np.random.default_rng(5)
    for _ in range(50):
        assert inside(placement.sample_placement(rng, halves, LOGO_HW, (480, 640)).quad_array())
    cfg = placement.PlacementConfig(allow_truncation=True, max_truncated_fraction=0.25,
                                    min_width_frac=0.4, max_width_frac=0.6)
    truncated = 0
    for _ in range(100):
        q = placement.sample_placement(rng, halves, LOGO_HW, (480, 640), cfg).quad_array()
        x, y = q.T
        area = 0.5 * abs(x @ np.roll(y, -1) - y @ np.roll(x, -1))
        visible = placement.footprint_mask(q, (480, 640)).sum() / area
        assert visible >= 0.75 - 0.02
        truncated += not inside(q)
    assert truncated >= 5


def test_bad_arguments_are_refused(halves):
    with pytest.raises(InputImageError, match="out_hw"):
        placement.sample_placement(np.random.default_rng(0), halves, LOGO_HW, (240, 320))
    with pytest.raises(ConfigError, match="min_width_frac"):
        placement.PlacementConfig(min_width_frac=0.9, max_width_frac=0.5)
    with pytest.raises(ConfigError, match="max_attempts"):
        placement.PlacementConfig(max_attempts=0)


# --- geometry ---------------------------------------------------------------------------------

FRONTAL = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])


def test_logo_quad_on_a_frontal_plane_is_the_plain_rectangle():
    q = geometry.logo_quad(FRONTAL, (200, 100), 80, 0.5)
    np.testing.assert_allclose(q, [[160, 80], [240, 80], [240, 120], [160, 120]], atol=1e-9)
    r = geometry.logo_quad(FRONTAL, (200, 100), 80, 0.5, rotation_deg=90)  # counter-clockwise
    np.testing.assert_allclose(r, [[180, 140], [180, 60], [220, 60], [220, 140]], atol=1e-9)
    t = geometry.logo_quad(FRONTAL, (200, 100), 80, 0.5, extra_tilt=(0, 20))
    assert np.linalg.norm(t[1] - t[2]) != pytest.approx(np.linalg.norm(t[0] - t[3]), rel=0.02)
    # A scaled plane (2 px per unit) still gives the width asked for in image pixels.
    s = geometry.logo_quad(np.diag([2.0, 2.0, 1.0]), (200, 100), 80, 0.5)
    np.testing.assert_allclose(s, q, atol=1e-9)


def test_logo_homography_maps_the_logo_corners_onto_the_quad():
    quad = np.array([[100.0, 50], [220, 70], [210, 160], [90, 140]])
    H = geometry.logo_homography((60, 90), quad)
    np.testing.assert_allclose(geometry.apply_h(H, geometry.logo_corners((60, 90))), quad, atol=1e-3)


def test_distortion_limits():
    square = np.array([[0.0, 0], [40, 0], [40, 40], [0, 40]])
    assert geometry.distortion_ok(square, 1.0)
    assert not geometry.distortion_ok(square, 0.3)  # aspect changed by 3.3x
    assert not geometry.distortion_ok(square * 0.1, 1.0)  # sides of 4 px
    assert not geometry.distortion_ok(square[[0, 2, 1, 3]], 1.0)  # bow-tie
    sheared = np.array([[0.0, 0], [40, 0], [60, 8], [20, 8]]) * 3  # a 22 degree corner
    assert not geometry.distortion_ok(sheared, 0.5)
    assert geometry.distortion_ok(sheared, 0.5, min_angle_deg=20.0)


def test_closed_form_3x3_inverse_and_determinant_match_numpy():
    rng = np.random.default_rng(0)
    for _ in range(200):
        m = rng.normal(size=(3, 3)) * rng.choice([1e-3, 1.0, 1e3], size=(3, 3))
        np.testing.assert_allclose(geometry.inv3(m) @ m, np.eye(3), atol=1e-8)
        assert geometry.det3(m) == pytest.approx(np.linalg.det(m), rel=1e-9, abs=1e-9)
    with pytest.raises(ValueError, match="not invertible"):
        geometry.inv3(np.ones((3, 3)))


def test_premultiplied_logo_given_or_not_warps_the_same():
    logo = make_logo(64)
    H = geometry.logo_homography(logo.shape[:2], np.array([[100.0, 80], [150, 90], [145, 140], [95, 130]]))
    a = geometry.warp_rgba(logo, H, (480, 640))
    b = geometry.warp_rgba(logo, H, (480, 640), geometry.premultiply(logo))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="premultiplied"):
        geometry.warp_rgba(logo, H, (480, 640), geometry.premultiply(logo)[:10])


def test_warp_rgba_keeps_colour_at_the_rim_and_covers_the_quad():
    logo = np.zeros((64, 64, 4), np.uint8)
    logo[..., :3] = (0, 0, 0)  # transparent pixels are black: they must not darken the rim
    logo[8:56, 8:56] = (255, 255, 255, 255)
    quad = np.array([[300.3, 200.6], [341.2, 205.1], [338.7, 251.9], [298.2, 247.4]])
    H = geometry.logo_homography(logo.shape[:2], quad)
    rgb, alpha, (y0, x0, y1, x1) = geometry.warp_rgba(logo, H, (480, 640))
    assert rgb.dtype == np.float32 and alpha.dtype == np.float32 and rgb.shape[:2] == alpha.shape
    # Pixels whose square meets the quad: columns 298..341, rows 201..252.
    assert (y0, x0, y1, x1) == (201, 298, 253, 342) and alpha.shape == (52, 44)
    assert rgb[alpha > 0.01].min() > 250  # straight colour stays white even where alpha is small
    white_box = np.array([[8, 8], [56, 8], [56, 56], [8, 56]]) - 0.5
    expected = placement._polygon_area(geometry.apply_h(H, white_box))
    assert alpha.sum() == pytest.approx(expected, rel=0.03)
    # Over a white canvas the composite stays white everywhere: no dark fringe.
    comp = 255.0 * (1 - alpha[..., None]) + rgb * alpha[..., None]
    assert comp.min() > 250
    # A strong shrink goes through INTER_AREA and still covers its quad; off-canvas parts are cut.
    big = make_logo(200)  # a disc, symmetric about its vertical axis
    corner = np.array([[629.5, 9.5], [649.5, 9.5], [649.5, 29.5], [629.5, 29.5]])  # half off-canvas
    H2 = geometry.logo_homography(big.shape[:2], corner)
    rgb2, a2, roi2 = geometry.warp_rgba(big, H2, (480, 640))
    assert roi2 == (10, 630, 30, 640) and a2.shape == (20, 10)
    half_disc = big[..., 3].mean() / 255.0 * 20 * 20 / 2
    assert a2.sum() == pytest.approx(half_disc, rel=0.05)


def test_footprint_mask_covers_exactly_the_pixels_inside():
    quad = np.array([[9.5, 19.5], [29.5, 19.5], [29.5, 49.5], [9.5, 49.5]])  # pixels 10..29 x 20..49
    fp = placement.footprint_mask(quad, (60, 40))
    assert fp.sum() == 20 * 30
    assert fp[20:50, 10:30].all()


def test_obstacle_check_from_the_grown_map_equals_the_dilated_footprint(halves):
    """placement.touches_obstacle reads a footprint against the obstacle map grown once per surface
    when the footprint's margin stays inside its roi: the same answer as dilating the footprint
    itself (the definition), on footprints near edges, boundaries and the canvas border."""
    rng = np.random.default_rng(7)
    obstacles = halves.edges | halves.boundaries
    h, w = halves.shape
    answers, fast = set(), 0
    for _ in range(400):
        margin = int(rng.integers(0, 6))
        cx, cy = rng.uniform(-20, w + 20), rng.uniform(-20, h + 20)
        half = rng.uniform(2, 40, 2)
        quad = np.array([[cx - half[0], cy - half[1]], [cx + half[0], cy - half[1] * rng.uniform(0.5, 1)],
                         [cx + half[0], cy + half[1]], [cx - half[0] * rng.uniform(0.5, 1), cy + half[1]]])
        mask, roi = placement._footprint_roi(quad, (h, w), margin)
        if not mask.any():
            continue
        y0, x0, y1, x1 = roi
        grown = cv2.dilate(mask, placement._disc(margin)) if margin else mask
        truth = bool(np.any(obstacles[y0:y1, x0:x1] & (grown > 0)))
        assert placement.touches_obstacle(halves, mask, roi, margin) == truth, (quad.tolist(), margin)
        answers.add(truth)
        fast += ("placement.obstacles_grown", margin) in halves.derived
    assert answers == {True, False}  # both outcomes were exercised
    assert fast > 0  # and the grown map was used
