import os

import cv2
import numpy as np
import pytest

from synth import images
from synth.errors import ConfigError, InputImageError
from conftest import make_logo, write_rgba


def test_logo_is_trimmed_rgba(tmp_path):
    rgba = np.zeros((100, 120, 4), np.uint8)
    rgba[20:60, 30:90] = (10, 20, 30, 255)
    logo = images.load_logo(write_rgba(str(tmp_path / "l.png"), rgba))
    assert logo.shape == (40, 60, 4) and logo.dtype == np.uint8


def test_missing_logo_is_named(tmp_path):
    with pytest.raises(InputImageError, match=r"logo '.*missing\.png' does not exist"):
        images.load_logo(str(tmp_path / "missing.png"))


def test_unreadable_logo_is_named(tmp_path):
    p = tmp_path / "logo.png"
    p.write_text("not an image")
    with pytest.raises(InputImageError, match=r"logo '.*logo\.png' is not an image"):
        images.load_logo(str(p))


def test_logo_without_alpha_is_refused_unless_border_matte_is_asked_for(tmp_path):
    p = str(tmp_path / "flat.jpg")
    rgb = np.full((80, 80, 3), 255, np.uint8)
    cv2.circle(rgb, (40, 40), 30, (0, 0, 0), -1)
    cv2.imwrite(p, rgb)
    with pytest.raises(InputImageError, match="no alpha channel.*border_matte"):
        images.load_logo(p)
    logo = images.load_logo(p, matte_tolerance=40)
    assert logo.shape[2] == 4
    assert logo[0, 0, 3] == 0  # the white page around the disc is transparent
    h, w = logo.shape[:2]
    assert logo[h // 2, w // 2, 3] == 255  # the disc is opaque


def test_border_matte_keeps_enclosed_white(tmp_path):
    rgb = np.full((60, 60, 3), 255, np.uint8)
    cv2.circle(rgb, (30, 30), 25, (0, 0, 0), -1)
    cv2.circle(rgb, (30, 30), 8, (255, 255, 255), -1)  # a white hole inside the artwork
    rgba = images.border_matte(rgb, 40)
    assert rgba[30, 30, 3] == 255 and rgba[0, 0, 3] == 0


def test_fully_transparent_logo_is_refused(tmp_path):
    p = write_rgba(str(tmp_path / "clear.png"), np.zeros((50, 50, 4), np.uint8))
    with pytest.raises(InputImageError, match="fully transparent"):
        images.load_logo(p)


def test_tiny_logo_is_refused(tmp_path):
    p = write_rgba(str(tmp_path / "tiny.png"), make_logo(10))
    with pytest.raises(InputImageError, match="at least 16 px"):
        images.load_logo(p)


def test_background_is_rgb_even_when_greyscale(tmp_path):
    p = str(tmp_path / "g.png")
    cv2.imwrite(p, np.full((64, 64), 100, np.uint8))
    bg = images.load_background(p)
    assert bg.shape == (64, 64, 3)


def test_background_sources(tmp_path):
    class Src:
        def __init__(self, kind, value):
            self.kind, self.value = kind, value

        def WhichOneof(self, _):
            return self.kind

        def __getattr__(self, name):
            return self.value

    with pytest.raises(ConfigError, match="does not exist"):
        images.list_background_files(Src("directory", str(tmp_path / "none")), str)
    os.makedirs(tmp_path / "empty")
    with pytest.raises(ConfigError, match="holds no image files"):
        images.list_background_files(Src("directory", str(tmp_path / "empty")), str)
    with pytest.raises(ConfigError, match="matches no files"):
        images.list_background_files(Src("glob", str(tmp_path / "*.jpg")), str)
    photos = images.list_background_files(Src("builtin", "skimage:photos"), str)
    assert len(photos) >= 8 and all(os.path.isfile(p) for p in photos)
