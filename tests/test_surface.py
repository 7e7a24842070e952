"""synth.surface on scenes whose truth is known: two flat halves, a checkerboard plane imaged by a
known homography, featureless and edge-cluttered images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from synth import geometry, surface
from synth.errors import ConfigError, InputImageError

BOARD = 800  # plane units: 8 x 8 squares of 100
# Plane corners -> image corners of two known homographies: a floor (both vanishing points
# finite) and a wall seen obliquely (its verticals stay parallel: one vanishing point at infinity).
FLOOR = [[150, 40], [560, 70], [700, 470], [-40, 440]]
WALL = [[-20, -40], [560, 110], [560, 370], [-20, 520]]


def two_halves(seed: int = 0, h: int = 480, w: int = 640) -> np.ndarray:
    """Left half dark grey, right half light grey, mild noise: the edge is at x = w / 2."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 70.0)
    img[:, w // 2:] = 180.0
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def true_homography(corners) -> np.ndarray:
    src = np.float32([[0, 0], [BOARD, 0], [BOARD, BOARD], [0, BOARD]])
    return cv2.getPerspectiveTransform(src, np.float32(corners)).astype(np.float64)


def board_scene(H_true: np.ndarray, out_hw=(480, 640), seed: int = 0) -> np.ndarray:
    """An 8 x 8 checkerboard plane imaged by H_true over a grey backdrop, with mild noise."""
    yy, xx = np.mgrid[0:BOARD, 0:BOARD]
    tex = np.where((yy // 100 + xx // 100) % 2 == 0, 215, 45).astype(np.uint8)
    img = cv2.warpPerspective(cv2.merge([tex, tex, tex]), H_true, (out_hw[1], out_hw[0]),
                              flags=cv2.INTER_LINEAR, borderValue=(130, 140, 150))
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def on_board(H_true, xy) -> bool:
    p = geometry.apply_h(np.linalg.inv(H_true), np.asarray(xy))[0]
    return bool(np.all((p > 0) & (p < BOARD)))


@pytest.fixture(scope="module")
def halves():
    return surface.analyse(two_halves())


def test_two_flat_halves_give_two_regions_split_by_the_edge(halves):
    s = halves
    assert s.labels.shape == (480, 640) and s.labels.dtype == np.int32
    assert s.edges.dtype == bool and s.distance_to_edge.dtype == np.float32
    assert len(s.regions) == 2
    left, right = s.labels[240, 100], s.labels[240, 540]
    assert left >= 0 and right >= 0 and left != right
    for r in s.regions:
        assert r.area_px == pytest.approx(320 * 480, rel=0.03)
        assert r.fill > 0.95
    assert s.regions[left].bbox[3] <= 326 and s.regions[right].bbox[1] >= 314
    # The edge is found on every row, right at x = 320, and nowhere else.
    cols = np.flatnonzero(s.edges.any(axis=0))
    assert cols.min() >= 312 and cols.max() <= 328
    assert s.edges[:, 312:328].any(axis=1).all()
    # Labels never cross it; the distance map measures it.
    assert not np.any(s.labels[:, :312] == right) and not np.any(s.labels[:, 328:] == left)
    assert s.distance_to_edge[240, 100] == pytest.approx(216, abs=8)
    assert s.distance_to_edge[240, 318] < 2


def test_a_featureless_region_falls_back_to_a_frontal_plane(halves):
    # One straight edge is not evidence of perspective: both halves get a pure translation.
    for r in halves.regions:
        assert r.plane.evidence == surface.EVIDENCE_FRONTAL
        np.testing.assert_allclose(r.plane.H_plane[:2, :2], np.eye(2))
        np.testing.assert_allclose(r.plane.H_plane[:2, 2], r.anchor_xy)
        np.testing.assert_allclose(r.plane.H_plane[2], [0, 0, 1])
    # A smooth vertical shading with noise: one region, no lines, no perspective.
    ramp = np.linspace(60, 200, 480)[:, None, None] * np.ones((1, 640, 3))
    img = np.clip(ramp + np.random.default_rng(3).normal(0, 2, ramp.shape), 0, 255).astype(np.uint8)
    s = surface.analyse(img)
    assert len(s.regions) >= 1
    assert all(r.plane.evidence == surface.EVIDENCE_FRONTAL for r in s.regions)
    assert s.regions[0].area_px > 0.9 * 480 * 640


@pytest.mark.parametrize("corners", [FLOOR, WALL], ids=["floor", "wall"])
def test_the_plane_of_a_checkerboard_matches_the_known_homography(corners):
    H_true = true_homography(corners)
    s = surface.analyse(board_scene(H_true))
    G_true = np.linalg.inv(H_true)
    # Two points on the board, far and near, for the foreshortening ratio: how much smaller the
    # surface looks at the far point (the linear ratio of image pixels per plane unit).
    pts = geometry.apply_h(H_true, np.array([[700, 400], [100, 400]] if corners is WALL
                                            else [[400, 100], [400, 700]]))

    def foreshortening(G):
        return float(np.sqrt(geometry.area_scale(G, pts[1:]) / geometry.area_scale(G, pts[:1]))[0])

    true_ratio = foreshortening(G_true)
    assert true_ratio < 0.97  # the scene really is foreshortened
    squares = [r for r in s.regions if on_board(H_true, r.anchor_xy)]
    assert len(squares) >= 6
    for r in squares:
        assert r.plane.evidence == surface.EVIDENCE_VP
        G = np.linalg.inv(r.plane.H_plane)
        # The vanishing line (third row of the inverse) points the same way as the truth's ...
        cos = abs(G[2, :2] @ G_true[2, :2]) / (np.linalg.norm(G[2, :2]) * np.linalg.norm(G_true[2, :2]))
        assert np.degrees(np.arccos(min(1.0, cos))) < 15.0
        # ... and the surface shrinks with distance as the truth does (linear ratio within 20 %).
        assert foreshortening(G) == pytest.approx(true_ratio, rel=0.2)
        # One plane unit is one image pixel at the anchor, which the plane origin maps to.
        np.testing.assert_allclose(geometry.apply_h(r.plane.H_plane, [[0, 0]])[0], r.anchor_xy, atol=1e-6)
        assert geometry.area_scale(r.plane.H_plane, np.zeros((1, 2)))[0] == pytest.approx(1.0, rel=1e-6)
        assert 0 < r.plane.tilt_deg <= 60.0


def test_fine_clutter_and_tiny_images_have_no_usable_region():
    yy, xx = np.mgrid[0:480, 0:640]
    fine = np.where((yy // 12 + xx // 12) % 2 == 0, 220, 30).astype(np.uint8)  # 144 px cells
    s = surface.analyse(cv2.merge([fine, fine, fine]))
    assert s.regions == () and np.all(s.labels == -1)
    assert s.edges.mean() > 0.3
    s = surface.analyse(two_halves(h=24, w=24))
    assert s.regions == ()


def test_analyse_is_deterministic():
    img = board_scene(true_homography(FLOOR), seed=4)
    a, b = surface.analyse(img), surface.analyse(img)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.edges, b.edges)
    assert len(a.regions) == len(b.regions)
    for ra, rb in zip(a.regions, b.regions):
        assert ra.bbox == rb.bbox and ra.plane.evidence == rb.plane.evidence
        np.testing.assert_array_equal(ra.plane.H_plane, rb.plane.H_plane)


def test_bad_input_is_refused_with_project_errors():
    with pytest.raises(InputImageError, match="RGB uint8"):
        surface.analyse(np.zeros((40, 40), np.uint8))
    with pytest.raises(InputImageError, match="RGB uint8"):
        surface.analyse(np.zeros((40, 40, 3), np.float32))
    with pytest.raises(InputImageError, match="at least 8x8"):
        surface.analyse(np.zeros((4, 40, 3), np.uint8))
    with pytest.raises(ConfigError, match="min_fill"):
        surface.SurfaceConfig(min_fill=1.5)
    with pytest.raises(ConfigError, match="max_tilt_deg"):
        surface.SurfaceConfig(max_tilt_deg=89.0)
