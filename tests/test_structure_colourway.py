"""Colourway identity against what a person reads: a word mark printed white is still the word mark
(its letters keep their counters, and neither the page under a matted artwork nor its anti-aliased
fringe counts as structure); a patterned disc printed as one flat disc is not the logo."""

import os

import cv2
import numpy as np
import pytest

from synth import colourway, gate, images, structure
from synth.errors import InputImageError
from conftest import make_logo, write_config

LIMIT = gate.GateConfig().min_colourway_identity


def _word_mark_page(h: int = 90, w: int = 330, ink=(25, 25, 25)) -> np.ndarray:
    """RGB artwork as a brand hands it over: a bold dark word mark, anti-aliased onto a white page.
    Its letters have counters (O, B, A, D, P) of page white enclosed by ink."""
    rgb = np.full((h, w, 3), 255, np.uint8)
    cv2.putText(rgb, "BOPAD", (10, 70), cv2.FONT_HERSHEY_DUPLEX, 2.4, ink, 9, cv2.LINE_AA)
    return rgb


def _load(tmp_path, rgb, name="mark.png"):
    path = str(tmp_path / name)
    cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return images.load_logo_and_ink(path, 40)


def test_the_white_colourway_of_a_matted_word_mark_keeps_its_counters_and_passes(tmp_path):
    logo, ink = _load(tmp_path, _word_mark_page())
    assert ink is not None and ink.shape == logo.shape[:2]
    counters = (logo[..., 3] == 255) & (logo[..., :3].min(axis=2) > 230)  # enclosed page white, kept opaque
    assert counters.sum() > 200
    assert ink[counters].max() == 0  # ... but not ink
    white = colourway.apply(logo, "white", ink_alpha=ink)
    assert white[..., 3][counters].max() == 0  # a one-colour print: the counters stay open
    ident = structure.colourway_identity(logo, white)
    assert ident > 0.8, ident
    assert structure.colourway_identity(logo, colourway.apply(logo, "black", ink_alpha=ink)) > 0.8
    m = colourway.plate_margin(logo.shape[:2])
    plate = colourway.apply(logo, "plate", ink_alpha=ink)
    assert structure.colourway_identity(logo, plate, (m, m, m + logo.shape[0], m + logo.shape[1])) > LIMIT
    # the silhouette that filled the counters (what the white colourway drew before) loses the letters
    filled = colourway.apply(logo, "white")
    assert structure.colourway_identity(logo, filled) < LIMIT


def test_border_matte_unmattes_the_fringe_and_transparent_pixels_take_the_nearest_visible_colour(tmp_path):
    logo, _ = _load(tmp_path, _word_mark_page())
    a = logo[..., 3]
    fringe = (a > 0) & (a < 255)
    assert fringe.sum() > 100
    # the anti-aliased edge no longer carries the page: no light halo round the dark ink
    assert logo[..., :3][fringe].max() < 128, logo[..., :3][fringe].max()
    # transparent pixels: the colour of the nearest visible one (dark), not the white page
    assert logo[..., :3][a == 0].max() < 128
    rgba = np.zeros((60, 60, 4), np.uint8)
    rgba[20:40, 20:40] = (200, 40, 40, 255)
    path = str(tmp_path / "red.png")
    cv2.imwrite(path, cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    red, ink = images.load_logo_and_ink(path)
    assert ink is None  # an RGBA logo's alpha is its ink
    np.testing.assert_array_equal(red[..., :3].reshape(-1, 3), np.tile([200, 40, 40], (400, 1)))


def test_identity_ignores_the_colour_of_transparent_pixels_and_a_light_matte_fringe():
    """An RGBA word mark whose transparent pixels hold the white page and whose anti-aliased edge
    mixes it in (an export matted against white): its white colourway still passes."""
    page = _word_mark_page()
    dark = 255 - page.min(axis=2)
    coverage = dark.astype(np.float32) / dark.max()
    rgba = np.dstack([page, (coverage * 255 + 0.5).astype(np.uint8)])  # colour keeps the page: a matte
    rgba = rgba[:, 5:-5]
    white = colourway.apply(rgba, "white")
    ident = structure.colourway_identity(rgba, white)
    assert ident > 0.85, ident  # 0.77 when the page under transparent pixels was reduced into the edge
    clean = rgba.copy()
    clean[..., :3] = 25
    assert structure.colourway_identity(clean, white) > 0.9


def test_a_patterned_disc_drawn_flat_is_still_refused(tmp_path):
    disc = make_logo(150)  # an RGBA red disc whose identity is its white bar
    assert structure.colourway_identity(disc, colourway.apply(disc, "white")) < LIMIT
    # on a page, with its pattern in other inks: the one-colour print is one flat disc
    rgb = np.full((170, 170, 3), 255, np.uint8)
    cv2.circle(rgb, (85, 85), 75, (30, 60, 200), -1, cv2.LINE_AA)
    cv2.rectangle(rgb, (45, 70), (125, 100), (220, 30, 30), -1)
    cv2.circle(rgb, (85, 45), 14, (240, 200, 20), -1, cv2.LINE_AA)
    logo, ink = _load(tmp_path, rgb, "disc.png")
    for cw in ("white", "black"):
        assert structure.colourway_identity(logo, colourway.apply(logo, cw, ink_alpha=ink)) < LIMIT, cw


def test_ink_alpha_of_the_wrong_size_is_refused_naming_it():
    logo = make_logo(40)
    with pytest.raises(InputImageError, match="ink_alpha must be uint8 of the logo's size"):
        colourway.apply(logo, "white", ink_alpha=np.zeros((10, 10), np.uint8))


def test_an_engine_with_a_matted_word_mark_accepts_its_white_colourway(workdir):
    from synth import config as configlib, engine
    from synth.inputs import load_inputs

    cv2.imwrite(os.path.join(str(workdir), "logos", "mark.png"), cv2.cvtColor(_word_mark_page(), cv2.COLOR_RGB2BGR))
    body = open(write_config(workdir)).read().replace(
        'path: "logos/logo.png" }', 'path: "logos/mark.png" border_matte { tolerance: 40 } '
        'colourway { name: "original" weight: 0.5 } colourway { name: "white" weight: 0.3 } '
        'colourway { name: "black" weight: 0.2 } }')
    with open(os.path.join(str(workdir), "gen.config"), "w") as f:
        f.write(body)
    cfg = configlib.load_config(os.path.join(str(workdir), "gen.config"))
    inputs = load_inputs(cfg)
    eng = engine.Engine(inputs, cfg.proto)  # check_colourways passes
    for cw in ("white", "black"):
        assert eng.bank.colourway_identity(0, cw) > 0.8
    white = eng.bank.get(0, "white", inputs.logos[0].shape[1])[0]
    counters = (inputs.logos[0][..., 3] == 255) & (inputs.logos[0][..., :3].min(axis=2) > 230)
    assert white[..., 3][counters].max() == 0
