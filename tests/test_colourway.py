import numpy as np
import pytest

from synth import colourway
from synth.errors import ConfigError, InputImageError
from conftest import make_logo


def test_inverted_twice_is_the_original_and_keeps_alpha():
    logo = make_logo(64)
    inv = colourway.apply(logo, "inverted")
    np.testing.assert_array_equal(inv[..., :3], 255 - logo[..., :3])
    np.testing.assert_array_equal(inv[..., 3], logo[..., 3])
    np.testing.assert_array_equal(colourway.apply(inv, "inverted"), logo)


def test_original_is_a_copy_not_the_input():
    logo = make_logo(32)
    out = colourway.apply(logo, "original")
    np.testing.assert_array_equal(out, logo)
    out[0, 0] = 7
    assert logo[0, 0, 0] == 0


@pytest.mark.parametrize("name,value", [("white", 255), ("black", 0)])
def test_solid_colourways_keep_alpha(name, value):
    logo = make_logo(48)
    out = colourway.apply(logo, name)
    assert out.shape == logo.shape and out.dtype == np.uint8
    assert np.all(out[..., :3] == value)
    np.testing.assert_array_equal(out[..., 3], logo[..., 3])


def test_dominant_colour_is_the_red_of_the_disc():
    logo = make_logo(96)  # a red (220, 30, 30) disc with a smaller white bar
    r, g, b = colourway.dominant_colour(logo)
    assert abs(r - 220) <= 3 and abs(g - 30) <= 3 and abs(b - 30) <= 3
    with pytest.raises(InputImageError, match="no opaque"):
        colourway.dominant_colour(np.zeros((8, 8, 4), np.uint8))


def test_plate_is_larger_opaque_inside_and_has_rounded_corners():
    logo = make_logo(80)
    out = colourway.apply(logo, "plate", margin_frac=0.15, corner_frac=0.2)
    m = 12  # 0.15 * 80
    assert out.shape == (80 + 2 * m, 80 + 2 * m, 4)
    # Opaque everywhere except the rounded corners (radius 0.2 * 104 = 20.8 px).
    inside = out[21:-21, :, 3]
    assert inside.min() == 255 and out[:, 21:-21, 3].min() == 255
    assert out[0, 0, 3] == 0 and out[-1, -1, 3] == 0
    # The margin is the dominant (red) colour; the red logo is drawn in white (red is dark).
    np.testing.assert_allclose(out[m // 2, out.shape[1] // 2, :3], colourway.dominant_colour(logo), atol=1)
    centre_of_disc = out[m + 20, m + 40, :3]  # inside the disc, above the bar
    np.testing.assert_array_equal(centre_of_disc, [255, 255, 255])


def test_plate_with_a_light_colour_gets_black_ink_and_original_ink_keeps_colours():
    logo = make_logo(40)
    out = colourway.apply(logo, "plate", plate_rgb=(250, 240, 200))
    m = 6
    np.testing.assert_array_equal(out[m + 8, m + 20, :3], [0, 0, 0])
    orig = colourway.apply(logo, "plate", plate_rgb=(0, 0, 255), plate_ink="original")
    np.testing.assert_array_equal(orig[m + 20, m + 20, :3], logo[20, 20, :3])
    np.testing.assert_array_equal(orig[m // 2, 20 + m, :3], [0, 0, 255])


def test_unknown_names_and_bad_values_raise_config_errors():
    logo = make_logo(16)
    with pytest.raises(ConfigError, match="'gold'.*original, inverted, white, black, plate"):
        colourway.apply(logo, "gold")
    with pytest.raises(ConfigError, match="plate_rgb"):
        colourway.apply(logo, "plate", plate_rgb=(300, 0, 0))
    with pytest.raises(ConfigError, match="plate_ink"):
        colourway.apply(logo, "plate", plate_ink="neon")
    with pytest.raises(InputImageError, match="RGBA"):
        colourway.apply(logo[..., :3], "white")
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="'sepia'"):
        colourway.sample_colourway(rng, ["original", "sepia"], [1, 1])
    with pytest.raises(ConfigError, match="one weight per colourway"):
        colourway.sample_colourway(rng, ["original", "white"], [1])
    with pytest.raises(ConfigError, match="not all 0"):
        colourway.sample_colourway(rng, ["original", "white"], [0, 0])
    with pytest.raises(ConfigError, match=">= 0"):
        colourway.sample_colourway(rng, ["original", "white"], [1, -1])


def test_sample_colourway_respects_weights_and_the_generator():
    names = ["original", "inverted", "white", "plate", "black"]
    weights = [5.0, 2.0, 2.0, 1.0, 0.0]
    rng = np.random.default_rng(123)
    draws = [colourway.sample_colourway(rng, names, weights) for _ in range(2000)]
    for n, w in zip(names, weights):
        share = draws.count(n) / len(draws)
        assert abs(share - w / 10.0) < 0.035, (n, share)
    assert draws.count("black") == 0
    again = np.random.default_rng(123)
    assert [colourway.sample_colourway(again, names, weights) for _ in range(50)] == draws[:50]


def test_tint_is_a_duotone_in_the_drawn_ink_that_keeps_white_and_alpha():
    logo = np.zeros((40, 60, 4), np.uint8)
    logo[:, :30, :3] = 0      # black ink
    logo[:, 30:, :3] = 255    # paper white inside the artwork
    logo[10:30, 20:40, :3] = 128  # a mid grey between
    logo[..., 3] = 255
    logo[0, :, 3] = 90        # a soft edge: alpha is kept as it is
    for hue in colourway.tint_hues():
        ink = colourway.tint_rgb(hue)
        out = colourway.apply(logo, colourway.tint_name(hue))
        assert out.shape == logo.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out[..., 3], logo[..., 3])
        np.testing.assert_array_equal(out[5, 5, :3], ink)  # black takes the ink
        assert np.all(out[5, 50, :3] == 255)  # white stays white
        t = 128 / 255.0  # the grey's luminance
        np.testing.assert_allclose(out[20, 30, :3], [c + (255 - c) * t for c in ink], atol=1)
    green = colourway.tint_rgb(150)
    assert green[1] > 100 and green[0] < 40 and green[2] < 100  # hue 150: a green ink, mid-dark
    assert len(set(colourway.tint_rgb(h) for h in colourway.tint_hues())) == colourway.TINT_HUES


def test_a_drawn_tint_records_its_ink_and_other_draws_are_unchanged():
    names, weights = ["original", "tint"], [0.5, 0.5]
    rng = np.random.default_rng(11)
    draws = [colourway.sample_colourway(rng, names, weights) for _ in range(3000)]
    tints = [d for d in draws if d != "original"]
    assert 0.45 < len(tints) / len(draws) < 0.55
    hues = [colourway.tint_hue(d) for d in tints]
    assert all(d == colourway.tint_name(h) for d, h in zip(tints, hues))
    counts = np.bincount([colourway.tint_hues().index(h) for h in hues], minlength=colourway.TINT_HUES)
    assert counts.min() > 0.5 * len(tints) / colourway.TINT_HUES  # every ink is drawn, about evenly
    again = np.random.default_rng(11)
    assert [colourway.sample_colourway(again, names, weights) for _ in range(100)] == draws[:100]
    # without a tint a draw takes one number from the generator, as before the tint existed
    rng, ref = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(20):
        colourway.sample_colourway(rng, ["original", "white"], [0.5, 0.5])
        ref.random()
    assert rng.random() == ref.random()


@pytest.mark.parametrize("name,match", [("tint", "drawn with its ink per object"),
                                        ("tint:45", "'tint:45'.*must be one of 0, 30"),
                                        ("tint:green", "'tint:green'"), ("tint:", "'tint:'")])
def test_a_tint_without_a_valid_ink_is_refused_naming_it(name, match):
    with pytest.raises(ConfigError, match=match):
        colourway.apply(make_logo(32), name)
