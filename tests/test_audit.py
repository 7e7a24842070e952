import os

import cv2
import numpy as np
import pytest
import skimage

from synth import audit, colourway
from synth.errors import ConfigError, InputImageError
from conftest import make_background, make_logo

DATA = os.path.join(os.path.dirname(skimage.__file__), "data")
CLEAN = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")


def _photo(name: str) -> np.ndarray:
    bgr = cv2.imread(os.path.join(DATA, name), cv2.IMREAD_COLOR)
    assert bgr is not None, name
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _skimage_logo() -> np.ndarray:
    """scikit-image's logo.png, its non-white pixels opaque."""
    rgba = cv2.cvtColor(cv2.imread(os.path.join(DATA, "logo.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    rgba[..., 3] = np.where(rgba[..., :3].min(axis=-1) < 240, 255, 0).astype(np.uint8)
    return rgba


def _paste(bg, logo, quad):
    """Pastes logo so that its corners (TL, TR, BR, BL) land on `quad`; returns the composite."""
    lh, lw = logo.shape[:2]
    H = cv2.getPerspectiveTransform(np.float32([[0, 0], [lw, 0], [lw, lh], [0, lh]]), np.float32(quad))
    warped = cv2.warpPerspective(logo, H, (bg.shape[1], bg.shape[0]))
    a = warped[..., 3:].astype(np.float32) / 255.0
    return np.clip(bg * (1.0 - a) + warped[..., :3] * a + 0.5, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def matcher():
    return audit.LogoMatcher([make_logo(96), _skimage_logo()])


@pytest.mark.parametrize("photo,quad", [
    ("chelsea.png", [[200, 40], [400, 60], [390, 250], [210, 230]]),  # 500 px logo at ~0.4, tilted
    ("coffee.png", [[50, 50], [160, 70], [150, 170], [60, 160]]),  # ~0.22, stronger perspective
])
def test_a_background_containing_the_logo_is_found_where_it_is(matcher, photo, quad):
    r = matcher.find(_paste(_photo(photo), _skimage_logo(), quad))
    assert r.found and r.logo_index == 1 and r.inliers >= 12, r
    np.testing.assert_allclose(np.array(r.quad), np.array(quad, np.float64), atol=4.0)


def test_an_inverted_print_is_found(matcher):
    inverted = colourway.apply(_skimage_logo(), "inverted")
    r = matcher.find(_paste(_photo("rocket.jpg"), inverted, [[300, 100], [450, 120], [440, 260], [310, 250]]))
    assert r.found and r.logo_index == 1, r


def test_large_backgrounds_are_reduced_and_the_quad_is_in_full_size_pixels(matcher):
    big = cv2.resize(_photo("coffee.png"), (1200, 800), interpolation=cv2.INTER_CUBIC)
    quad = [[500, 200], [820, 240], [800, 540], [520, 520]]
    r = matcher.find(_paste(big, _skimage_logo(), quad))
    assert r.found and r.logo_index == 1, r
    np.testing.assert_allclose(np.array(r.quad), np.array(quad, np.float64), atol=6.0)


@pytest.mark.parametrize("photo", CLEAN)
def test_clean_photos_are_not_found(matcher, photo):
    r = matcher.find(_photo(photo))
    assert not r.found, r
    assert r.inliers < 12 and r.quad == ()


def test_textured_synthetic_background_is_not_found(matcher):
    r = matcher.find(make_background(480, 640, 4))
    assert not r.found


def test_feature_counts_say_which_logos_cannot_be_found(matcher):
    counts = matcher.feature_counts
    assert counts[1] > 200  # the detailed scikit-image logo
    assert counts[0] < 40  # a plain disc with a bar has few keypoints


def _H_from_quad(quad, lw=100, lh=100):
    return cv2.getPerspectiveTransform(np.float32([[0, 0], [lw, 0], [lw, lh], [0, lh]]),
                                       np.float32(quad)).astype(np.float64)


def test_homography_sanity_checks():
    hw = (100, 100)
    img = (480, 640)
    ok, why = audit.homography_is_sane(_H_from_quad([[10, 10], [110, 20], [105, 120], [15, 110]]), hw, img)
    assert ok, why
    mirrored = _H_from_quad([[110, 10], [10, 10], [10, 110], [110, 110]])
    assert audit.homography_is_sane(mirrored, hw, img) == (False, "the homography mirrors the logo "
                                                                  "(determinant <= 0)")
    tiny = np.diag([0.1, 0.1, 1.0])
    assert "too small" in audit.homography_is_sane(tiny, hw, img)[1]
    sheared = np.array([[1.0, 8.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert "shear" in audit.homography_is_sane(sheared, hw, img)[1]
    bowtie = _H_from_quad([[10, 10], [110, 110], [110, 10], [10, 110]])
    assert not audit.homography_is_sane(bowtie, hw, img)[0]
    behind = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-0.02, 0.0, 1.0]])  # w < 0 for x > 50
    assert "behind" in audit.homography_is_sane(behind, hw, img)[1]
    huge = np.diag([30.0, 30.0, 1.0])
    assert "4x" in audit.homography_is_sane(huge, hw, img)[1]


def test_bad_inputs_raise():
    with pytest.raises(InputImageError, match="logo 0"):
        audit.LogoMatcher([np.zeros((10, 10, 3), np.uint8)])
    with pytest.raises(ConfigError, match="min_inliers"):
        audit.LogoMatcher([make_logo(32)], min_inliers=2)
    with pytest.raises(ConfigError, match="'plate'"):
        audit.LogoMatcher([make_logo(32)], colourways=("plate",))
    with pytest.raises(InputImageError, match="background"):
        audit.LogoMatcher([make_logo(32)]).find(np.zeros((10, 10), np.uint8))
