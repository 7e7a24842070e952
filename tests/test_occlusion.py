import dataclasses
import json

import numpy as np
import pytest
from skimage.measure import points_in_poly

from synth import boxes as boxlib, occlusion as oc
from synth.errors import ConfigError, InputImageError
from conftest import make_background

H, W = 200, 240
BOX = (60, 80, 140, 180)  # y0, x0, y1, x1 of an opaque square "logo"


def _pasted() -> np.ndarray:
    a = np.zeros((H, W), np.float32)
    a[BOX[0]:BOX[2], BOX[1]:BOX[3]] = 1.0
    return a


def _hard_polygon_mask(vertices, h=H, w=W) -> np.ndarray:
    """Pixels whose centre (c + 0.5, r + 0.5) lies inside the polygon: the truth without soft edges."""
    rr, cc = np.mgrid[0:h, 0:w]
    centres = np.stack([cc.ravel() + 0.5, rr.ravel() + 0.5], axis=1)
    return points_in_poly(centres, np.array(vertices, np.float64)).reshape(h, w)


def _occluders(side=None, n=12, **cfg_kw):
    cfg = oc.OcclusionConfig(p_occluder=1.0, edge_softness_px=(0.5, 1.0), **cfg_kw)
    rng = np.random.default_rng(7)
    out = []
    while len(out) < n:
        p = oc.sample_occluder(rng, BOX, (H, W), cfg)
        if side is None or p.side == side:
            out.append(p)
    return out


def test_visible_box_is_the_box_of_the_uncovered_logo_pixels():
    bg = make_background(H, W, 3)
    pasted = _pasted()
    pasted_box = boxlib.tight_box(pasted >= boxlib.VISIBLE_ALPHA)
    sides = set()
    for p in _occluders(n=16):
        sides.add(p.side)
        _, occ = oc.render_occluder(bg, bg, p)
        visible = pasted * (1.0 - occ)
        box = boxlib.tight_box(visible >= boxlib.VISIBLE_ALPHA)
        truth = boxlib.tight_box((pasted >= 0.5) & ~_hard_polygon_mask(p.vertices))
        # The soft edge moves the 0.5 contour by at most a pixel at the polygon's corners.
        np.testing.assert_allclose(box, truth, atol=1.01 / min(H, W))
        # Strictly smaller than the pasted box, on the entry side only.
        entry = {"top": 0, "left": 1, "bottom": 2, "right": 3}[p.side]
        shrink = (box - pasted_box) * np.array([1, 1, -1, -1])
        assert shrink[entry] * (W if entry % 2 else H) >= 2, (p.side, box, pasted_box)
        others = [i for i in range(4) if i != entry]
        np.testing.assert_allclose(box[others], pasted_box[others], atol=1e-6)
    assert sides == set(oc.SIDES)


def test_covered_share_follows_the_drawn_fraction():
    pasted = _pasted()
    canvas = np.zeros((H, W, 3), np.uint8)
    for p in _occluders(n=20, occluded_fraction=(0.1, 0.4)):
        _, occ = oc.render_occluder(canvas, canvas, p)
        covered = np.count_nonzero((pasted >= 0.5) & (occ >= 0.5)) / np.count_nonzero(pasted >= 0.5)
        assert 0.1 * 0.7 <= p.fraction * 0.7 <= covered <= p.fraction * 1.3 + 0.02 <= 0.4 * 1.3 + 0.02, \
            (p.fraction, covered)


def test_texture_fill_copies_another_patch_of_the_background():
    bg = make_background(H, W, 5)
    p = next(q for q in _occluders(n=40) if q.fill == "texture")
    assert max(abs(p.source_dx), abs(p.source_dy)) > 0
    out, occ = oc.render_occluder(bg, bg, p)
    ys, xs = np.nonzero(occ >= 0.999)
    assert ys.size > 100
    src = bg[(ys + p.source_dy) % H, (xs + p.source_dx) % W].astype(np.float64) * p.shade
    inside_src = (ys + p.source_dy >= 0) & (ys + p.source_dy < H) & (xs + p.source_dx >= 0) & (xs + p.source_dx < W)
    np.testing.assert_allclose(out[ys, xs][inside_src], np.clip(src[inside_src], 0, 255), atol=1.01)
    untouched = occ == 0
    np.testing.assert_array_equal(out[untouched], bg[untouched])


@pytest.mark.parametrize("fill", ["flat", "gradient"])
def test_colour_fills(fill):
    canvas = np.full((H, W, 3), 128, np.uint8)
    p = dataclasses.replace(_occluders(n=1)[0], fill=fill, colour_a=(255, 0, 0), colour_b=(0, 0, 255))
    before = canvas.copy()
    out, occ = oc.render_occluder(canvas, canvas, p)
    np.testing.assert_array_equal(canvas, before)  # the input is not changed
    solid = out[occ >= 0.999].astype(int)
    assert solid.shape[0] > 100 and np.all(solid[:, 1] <= 1)  # only red and blue mixtures
    if fill == "flat":
        assert np.all(solid[:, 0] >= 254) and np.all(solid[:, 2] <= 1)
    else:
        assert solid[:, 0].max() - solid[:, 0].min() > 30  # it varies across the occluder


def test_sampling_is_deterministic_serialisable_and_respects_probability():
    cfg = oc.OcclusionConfig(p_occluder=0.3)
    draws = [oc.sample_occluder(np.random.default_rng(s), BOX, (H, W), cfg) for s in range(600)]
    share = sum(d is not None for d in draws) / len(draws)
    assert 0.24 < share < 0.36
    p = next(d for d in draws if d is not None)
    record = json.loads(json.dumps(dataclasses.asdict(p)))
    again = oc.OccluderParams(**{k: tuple(map(tuple, v)) if k == "vertices" else
                                 (tuple(v) if isinstance(v, list) else v) for k, v in record.items()})
    assert again == p
    bg = make_background(H, W, 1)
    a, b = oc.render_occluder(bg, bg, p), oc.render_occluder(bg, bg, again)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert all(oc.sample_occluder(np.random.default_rng(s), BOX, (H, W), oc.OcclusionConfig(p_occluder=0.0))
               is None for s in range(20))


def test_distractors_draw_only_where_their_alpha_is_and_carry_no_label():
    rng = np.random.default_rng(11)
    canvas = np.full((H, W, 3), 100, np.uint8)
    params = oc.sample_distractors(rng, (H, W), (40, 40), oc.OcclusionConfig())
    assert len(params) == 40 and {p.kind for p in params} == set(oc.DISTRACTOR_KINDS)
    json.dumps([dataclasses.asdict(p) for p in params])
    for p in params:  # each kind draws something, and nothing outside its alpha
        out, alpha = oc.render_distractors(canvas, [p])
        on = alpha > 0
        assert on.any(), p  # every centre is on the canvas
        np.testing.assert_array_equal(out[~on], canvas[~on])
        expected = 100.0 * (1.0 - alpha[on][:, None]) + np.float64(p.colour) * alpha[on][:, None]
        np.testing.assert_allclose(out[on], expected, atol=1.01)
        if p.kind == "text":
            assert p.text.isalnum() and 3 <= len(p.text) <= 10
    out, alpha = oc.render_distractors(canvas, params)
    assert alpha.max() >= 0.6 and alpha.max() <= 1.0
    np.testing.assert_array_equal(out[alpha == 0], canvas[alpha == 0])
    counts = [len(oc.sample_distractors(rng, (H, W), None, oc.OcclusionConfig(distractor_count=(1, 3))))
              for _ in range(200)]
    assert set(counts) == {1, 2, 3}


def test_occluder_region_bounds_its_opacity_and_drawing_in_place_is_the_same():
    bg = make_background(H, W, 3)
    for p in _occluders(n=8):
        out, occ = oc.render_occluder(bg, bg, p)
        y0, x0, y1, x1 = oc.occluder_region(p, (H, W))
        outside = np.ones((H, W), bool)
        outside[y0:y1, x0:x1] = False
        assert occ.any() and not occ[outside].any()
        np.testing.assert_array_equal(out[outside], bg[outside])
        canvas = bg.copy()
        same, occ2 = oc.render_occluder(canvas, bg, p, inplace=True)
        assert same is canvas
        np.testing.assert_array_equal(same, out)
        np.testing.assert_array_equal(occ2, occ)
    canvas = np.full((H, W, 3), 100, np.uint8)
    params = oc.sample_distractors(np.random.default_rng(2), (H, W), (5, 5), oc.OcclusionConfig())
    with_alpha, _ = oc.render_distractors(canvas, params)
    without, none = oc.render_distractors(canvas, params, opacity=False)
    assert none is None
    np.testing.assert_array_equal(with_alpha, without)


def test_overlapping_distractors_combine_their_opacity():
    canvas = np.zeros((50, 50, 3), np.uint8)
    sq = ((5.0, 5.0), (45.0, 5.0), (45.0, 45.0), (5.0, 45.0))
    a = oc.DistractorParams("polygon", (255, 255, 255), 0.5, sq, 0.0, 1)
    b = oc.DistractorParams("polygon", (255, 255, 255), 0.6, sq, 0.0, 1)
    out, alpha = oc.render_distractors(canvas, [a, b])
    assert alpha[25, 25] == pytest.approx(1 - 0.5 * 0.4, abs=1e-3)
    assert out[25, 25, 0] == pytest.approx(255 * 0.8, abs=1.5)
    off = oc.DistractorParams("ellipse", (255, 0, 0), 1.0, ((-100.0, -100.0), (10.0, 5.0)), 0.0, 1)
    out, alpha = oc.render_distractors(canvas, [off])
    assert not alpha.any() and not out.any()


def test_bad_config_and_inputs_raise():
    with pytest.raises(ConfigError, match="p_occluder 1.5"):
        oc.OcclusionConfig(p_occluder=1.5)
    with pytest.raises(ConfigError, match="occluded_fraction"):
        oc.OcclusionConfig(occluded_fraction=(0.5, 0.2))
    with pytest.raises(ConfigError, match="distractor_count"):
        oc.OcclusionConfig(distractor_count=(0, 2.5))
    with pytest.raises(ConfigError, match="object box"):
        oc.sample_occluder(np.random.default_rng(0), (10, 10, 5, 20), (H, W), oc.OcclusionConfig())
    with pytest.raises(ConfigError, match="n_range"):
        oc.sample_distractors(np.random.default_rng(0), (H, W), (3, 1))
    with pytest.raises(InputImageError, match="canvas"):
        oc.render_distractors(np.zeros((H, W), np.uint8), [])
