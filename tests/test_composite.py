import numpy as np

from synth import boxes as boxlib, composite
from synth.config import GenerationConfig
from conftest import make_background, make_logo


def _placement(**kw):
    p = GenerationConfig().placement
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def test_same_seed_same_parameters_and_pixels():
    logo, bg = make_logo(), make_background()
    out = []
    for _ in range(2):
        seed = composite.image_seed(5, 0, 17)
        p = composite.sample_image_params(np.random.default_rng(seed), seed, [bg.shape[:2]],
                                          [logo.shape[:2]], (120, 160), _placement(max_objects=3))
        out.append((p, composite.render(p, bg, [logo], (120, 160))))
    assert out[0][0] == out[1][0]
    np.testing.assert_array_equal(out[0][1].image, out[1][1].image)
    assert composite.image_seed(5, 0, 17) != composite.image_seed(5, 1, 17)
    assert composite.image_seed(5, 0, 17) != composite.image_seed(5, 0, 18)


def test_box_is_the_tight_box_of_the_visible_logo_pixels():
    logo = make_logo(64)
    bg = np.zeros((100, 100, 3), np.uint8)  # black, so the logo's pixels are easy to find
    p = composite.ImageParams(1, 0, 1.0, 0, 0, (composite.ObjectParams(0, 40, 40, 30, 20),))
    r = composite.render(p, bg, [logo], (100, 100))
    visible = r.image.max(axis=-1) >= 255 * boxlib.VISIBLE_ALPHA * 0.8
    np.testing.assert_allclose(r.boxes[0], boxlib.tight_box(visible), atol=0.011)
    assert r.boxes[0][0] >= 0.2 and r.boxes[0][3] <= 0.7


def test_a_logo_covered_by_a_later_one_gets_the_box_of_its_visible_part():
    square = np.full((40, 40, 4), 255, np.uint8)
    bg = np.zeros((100, 100, 3), np.uint8)
    objs = (composite.ObjectParams(0, 40, 40, 10, 10),  # x 10..50
            composite.ObjectParams(0, 40, 40, 30, 10))  # x 30..70 covers its right half
    r = composite.render(composite.ImageParams(1, 0, 1.0, 0, 0, objs), bg, [square], (100, 100))
    np.testing.assert_allclose(r.boxes[0], [0.10, 0.10, 0.50, 0.30], atol=1e-6)
    np.testing.assert_allclose(r.boxes[1], [0.10, 0.30, 0.50, 0.70], atol=1e-6)
    np.testing.assert_allclose(r.visible_fraction, [0.5, 1.0], atol=1e-6)


def test_fully_covered_logo_gets_no_label():
    square = np.full((40, 40, 4), 255, np.uint8)
    objs = (composite.ObjectParams(0, 20, 20, 20, 20), composite.ObjectParams(0, 40, 40, 10, 10))
    r = composite.render(composite.ImageParams(1, 0, 1.0, 0, 0, objs), np.zeros((80, 80, 3), np.uint8),
                         [square], (80, 80))
    assert len(r.boxes) == 1 and r.logo_indices.tolist() == [0]


def test_placement_respects_overlap_limit_and_canvas():
    rng = np.random.default_rng(0)
    for i in range(50):
        p = composite.sample_image_params(rng, i, [(300, 400)], [(50, 100)], (120, 160),
                                          _placement(min_objects=3, max_objects=3, max_overlap_iou=0.0))
        bxs = [boxlib.from_pixels(o.y, o.x, o.y + o.height, o.x + o.width, 120, 160) for o in p.objects]
        assert len(p.objects) + p.dropped_objects == 3
        for a in range(len(bxs)):
            boxlib.validate_normalised(bxs[a], f"object {a}")
            for b in range(a):
                assert boxlib.iou(bxs[a], bxs[b]) == 0.0
