"""Occluders and distractors cut from real photos (synth.cutout, synth.occlusion), on small pools
of synthetic photos whose content is known."""

import dataclasses
import json

import cv2
import numpy as np
import pytest

from synth import boxes as boxlib, cutout, occlusion as oc, records
from synth.errors import ConfigError, InputImageError
from conftest import make_cluttered

H, W = 200, 240
BOX = (60, 80, 140, 180)  # y0, x0, y1, x1 of an opaque rectangular "logo"


def _textured(seed: int, h=H, w=W) -> np.ndarray:
    return make_cluttered(h, w, seed)


def _pool(photos) -> cutout.Cutter:
    return cutout.Cutter(lambda i, v: (i, photos[i]), len(photos))


PHOTOS = [_textured(s) for s in range(4)]


def _pasted() -> np.ndarray:
    a = np.zeros((H, W), np.float32)
    a[BOX[0]:BOX[2], BOX[1]:BOX[3]] = 1.0
    return a


def _occluders(n=12, seed=7, **cfg_kw):
    cfg = oc.OcclusionConfig(p_occluder=1.0, **cfg_kw)
    rng, cutter = np.random.default_rng(seed), _pool(PHOTOS)
    out, tries = [], 0
    while len(out) < n:
        tries += 1
        p = oc.sample_occluder(rng, BOX, (H, W), cfg, cutter, exclude=0, backdrop=PHOTOS[0])
        if p is not None:
            out.append(p)
    return out, tries, cutter


def _source_pixels(p: oc.PatchParams, ys, xs):
    """The pixels of the cut's photo that canvas pixels (ys, xs) show, after the recorded gain."""
    wy0, wx0 = p.cut.window[:2]
    src = PHOTOS[p.cut.source_index][wy0 + ys - p.top, wx0 + xs - p.left].astype(np.float32)
    return np.clip(src * np.float32(p.gain) + np.float32(0.5), 0, 255).astype(np.uint8)


def test_occluder_pixels_are_another_photos_pixels_under_the_mask_interior():
    canvas = PHOTOS[0]
    occs, _, cutter = _occluders(n=10)
    assert {p.patch.cut.source_index for p in occs} <= {1, 2, 3}  # never the composite's own photo
    assert len({p.patch.cut.source_index for p in occs}) >= 2
    for p in occs:
        out, occ = oc.render_occluder(canvas, cutter, p)
        ys, xs = np.nonzero(occ >= 1.0)
        assert ys.size > 50, p
        np.testing.assert_array_equal(out[ys, xs], _source_pixels(p.patch, ys, xs))
        # elsewhere only the edge and the shadow change the canvas: nothing outside the patch's region
        y0, x0, y1, x1 = oc.occluder_region(p, (H, W))
        outside = np.ones((H, W), bool)
        outside[y0:y1, x0:x1] = False
        np.testing.assert_array_equal(out[outside], canvas[outside])
        assert not occ[outside].any()
        if p.patch.shadow_opacity == 0:
            untouched = occ == 0
            np.testing.assert_array_equal(out[untouched], canvas[untouched])
    # the gain moves a cut toward the scene's light, not to it: a real object keeps its own colour
    gains = np.array([p.patch.gain for p in occs])
    assert np.all((gains >= 0.5) & (gains <= 1.6)) and np.ptp(gains) > 0.01


def test_a_pool_of_one_photo_cuts_from_that_photo():
    cutter = _pool(PHOTOS[:1])
    cfg = oc.OcclusionConfig(p_occluder=1.0)
    ps = [oc.sample_occluder(np.random.default_rng(s), BOX, (H, W), cfg, cutter, exclude=0) for s in range(6)]
    assert any(ps) and all(p.patch.cut.source_index == 0 for p in ps if p is not None)


def _disc_photo(h=H, w=W, r=50, centre=(100, 120)):
    rng = np.random.default_rng(3)
    img = np.empty((h, w, 3), np.float32)
    img[...] = (70, 110, 160)
    inside = np.zeros((h, w), np.uint8)
    cv2.circle(inside, (centre[1], centre[0]), r, 1, -1)
    img[inside.astype(bool)] = (200, 150, 60)
    img += rng.normal(0, 5, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), inside.astype(bool)


@pytest.mark.parametrize("scale", [1, 3])  # 3: the window is larger than WORK_SIDE, segmented reduced
def test_a_cut_follows_the_edge_of_an_object_in_its_photo(scale):
    photo, disc = _disc_photo(H * scale, W * scale, 50 * scale, (100 * scale, 120 * scale))
    window = (20 * scale, 20 * scale, 180 * scale, 220 * scale)  # the disc and background around it
    y0, x0, y1, x1 = window
    cut = cutout.CutParams(0, 0, window, "object", (80 * scale, 100 * scale), 100.0,
                           int(0.85 * disc.sum()), 0.8 * scale)
    a = cutout.cut_mask(photo, cut)
    on = a >= 0.5
    d = disc[y0:y1, x0:x1].astype(np.uint8)
    tol = 2 * scale + 1  # the outline's error: about one work pixel, enlarged
    near = cv2.dilate(d, np.ones((2 * tol + 1, 2 * tol + 1), np.uint8)).astype(bool)
    assert not np.any(on & ~near), "the cut leaves the disc"
    core = cv2.erode(d, np.ones((2 * tol + 1, 2 * tol + 1), np.uint8)).astype(bool)
    assert np.count_nonzero(on & core) >= 0.9 * np.count_nonzero(core), "the cut fills the disc to its edge"
    _, own = cutout.cut_region(photo, cut)
    assert own > 0.95  # its whole outline is the disc's own


def test_a_cut_of_a_plain_area_is_told_apart_by_its_outline():
    plain = np.full((H, W, 3), 128, np.uint8)
    cut = cutout.CutParams(0, 0, (20, 20, 180, 220), "object", (80, 100), 100.0, 20000, 1.0)
    a, own = cutout.cut_region(plain, cut)
    assert (a >= 0.5).any() and own < 0.2  # its outline is the envelope's: the samplers refuse such cuts


def test_the_occluded_share_is_the_recorded_fraction_within_the_configured_range():
    pasted = _pasted()
    lo, hi = 0.1, 0.4
    occs, tries, cutter = _occluders(n=24, seed=11, occluded_fraction=(lo, hi))
    assert tries <= 1.3 * len(occs)  # the samplers almost always find a cut that reaches the share
    assert {p.side for p in occs} == set(oc.SIDES)
    for p in occs:
        _, occ = oc.render_occluder(PHOTOS[0], cutter, p)
        covered = np.count_nonzero((pasted >= 0.5) & (occ >= 0.5)) / np.count_nonzero(pasted >= 0.5)
        assert lo <= p.fraction <= hi
        assert covered == pytest.approx(p.fraction, abs=1e-9)


def test_the_visible_box_is_the_box_of_the_logo_pixels_left_uncovered():
    pasted = _pasted()
    pasted_box = boxlib.tight_box(pasted >= boxlib.VISIBLE_ALPHA)
    occs, _, cutter = _occluders(n=16, seed=5, occluded_fraction=(0.25, 0.4))
    for p in occs:
        _, occ = oc.render_occluder(PHOTOS[0], cutter, p)
        visible = pasted * (1.0 - occ)
        box = boxlib.tight_box(visible >= boxlib.VISIBLE_ALPHA)
        top = np.zeros((H, W), int)  # an independent painter: logo, then the occluder's opaque pixels
        top[pasted >= 0.5] = 1
        top[occ > 0.5] = 2
        np.testing.assert_allclose(box, boxlib.tight_box(top == 1), atol=1e-6)
        assert np.all(box[:2] >= pasted_box[:2] - 1e-6) and np.all(box[2:] <= pasted_box[2:] + 1e-6)
    # An occluder that crosses a whole side (a bar cut from a photo, laid over the logo's top 15
    # rows) moves that side of the box to the first uncovered row and leaves the others.
    photo = np.empty((H, W, 3), np.uint8)
    photo[...] = (70, 110, 160)
    photo[80:110, 20:220] = (200, 150, 60)
    cut = cutout.CutParams(0, 0, (60, 10, 130, 230), "object", (35, 110), 100.0, int(0.95 * 30 * 200), 0.8)
    bar = oc.OccluderParams("top", 0.15, oc.PatchParams(cut, BOX[0] - 35, BOX[1] - 60, 0.0, 0.0, 0.0, 0.0))
    _, occ = oc.render_occluder(PHOTOS[0], _pool([photo]), bar)
    box = boxlib.tight_box(pasted * (1.0 - occ) >= boxlib.VISIBLE_ALPHA)
    assert abs(box[0] * H - (BOX[0] + 15)) <= 1.0, box * H
    np.testing.assert_allclose(box[1:], pasted_box[1:], atol=1e-6)


def test_distractors_keep_off_logo_boxes_and_show_their_photos_pixels():
    cutter = _pool(PHOTOS)
    avoid = [BOX, (10.0, 10.0, 50.0, 70.0)]
    cfg = oc.OcclusionConfig(max_distractor_overlap=0.05, distractor_size=(0.15, 0.4))
    ds = []
    for s in range(8):
        ds += oc.sample_distractors(np.random.default_rng(s), (H, W), cfg, cutter, 0, avoid, (3, 3), PHOTOS[0])
    assert len(ds) >= 18  # a few may find no place that keeps off both boxes
    assert {d.patch.cut.kind for d in ds} == set(cutout.CUT_KINDS)
    assert all(d.patch.cut.source_index != 0 for d in ds)
    for d in ds:
        out, alpha, rects = oc.render_distractors(PHOTOS[0], cutter, [d])
        for b in avoid:
            y0, x0, y1, x1 = (int(v) for v in b)
            assert np.count_nonzero(alpha[y0:y1, x0:x1] >= 0.5) <= 0.05 * (y1 - y0) * (x1 - x0)
        ys, xs = np.nonzero(alpha >= 1.0)
        np.testing.assert_array_equal(out[ys, xs], _source_pixels(d.patch, ys, xs))
        assert len(rects) == 1
    out, alpha, rects = oc.render_distractors(PHOTOS[0], cutter, ds[:4])
    _, none, rects2 = oc.render_distractors(PHOTOS[0], cutter, ds[:4], opacity=False)
    assert none is None and rects == rects2 and alpha.max() == pytest.approx(1.0)


def test_busy_cuts_come_from_text_and_print():
    page = np.full((H, W, 3), 200, np.uint8)  # a plain wall with a printed notice in one corner
    for k, line in enumerate(("SALE 50%", "OPEN 9-5", "No. 1234")):
        cv2.putText(page, line, (130, 30 + 22 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 2, cv2.LINE_AA)
    text = cv2.dilate((page[..., 0] < 150).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    cutter = _pool([page])
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(20):
        cut = cutout.sample_cut(rng, cutter, None, (90, 110), 0.3, "busy", (0.6, 1.0), 6)
        y, x = cut.window[0] + cut.seed[0], cut.window[1] + cut.seed[1]
        hits += bool(text[y, x])
    assert hits >= 16, "a busy cut's seed lies on the print"


def test_records_round_trip_through_json_and_render_the_same_pixels_from_a_fresh_pool():
    occs, _, cutter = _occluders(n=4, seed=3)
    ds = oc.sample_distractors(np.random.default_rng(9), (H, W), oc.OcclusionConfig(), cutter, 0, [BOX], (3, 3),
                               PHOTOS[0])
    again_occs, _, _ = _occluders(n=4, seed=3)
    assert again_occs == occs  # the same generator draws the same records
    for p in occs:
        back = records.from_plain(oc.OccluderParams, json.loads(json.dumps(records.to_plain(p))))
        assert back == p
        a = oc.render_occluder(PHOTOS[0], cutter, p)
        b = oc.render_occluder(PHOTOS[0], _pool(PHOTOS), back)  # no cached masks: computed again
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    back = [records.from_plain(oc.DistractorParams, json.loads(json.dumps(dataclasses.asdict(d)))) for d in ds]
    assert back == ds
    a = oc.render_distractors(PHOTOS[0], cutter, ds)
    b = oc.render_distractors(PHOTOS[0], _pool(PHOTOS), back)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert all(oc.sample_occluder(np.random.default_rng(s), BOX, (H, W), oc.OcclusionConfig(p_occluder=0.0),
                                  cutter) is None for s in range(20))


def test_bad_config_and_inputs_are_refused_naming_them():
    with pytest.raises(ConfigError, match="p_occluder 1.5"):
        oc.OcclusionConfig(p_occluder=1.5)
    with pytest.raises(ConfigError, match="p_shadow -0.1"):
        oc.OcclusionConfig(p_shadow=-0.1)
    with pytest.raises(ConfigError, match="max_distractor_overlap 2"):
        oc.OcclusionConfig(max_distractor_overlap=2)
    with pytest.raises(ConfigError, match="occluded_fraction"):
        oc.OcclusionConfig(occluded_fraction=(0.5, 0.2))
    with pytest.raises(ConfigError, match="distractor_count"):
        oc.OcclusionConfig(distractor_count=(0, 2.5))
    cutter = _pool(PHOTOS)
    with pytest.raises(ConfigError, match="object box"):
        oc.sample_occluder(np.random.default_rng(0), (10, 10, 5, 20), (H, W), oc.OcclusionConfig(), cutter)
    with pytest.raises(ConfigError, match="n_range"):
        oc.sample_distractors(np.random.default_rng(0), (H, W), oc.OcclusionConfig(), cutter, n_range=(3, 1))
    with pytest.raises(InputImageError, match="canvas"):
        oc.render_distractors(np.zeros((H, W), np.uint8), cutter, [])
    bad = cutout.CutParams(0, 0, (0, 0, H + 5, 50), "object", (3, 3), 100.0, 100, 1.0)
    with pytest.raises(ConfigError, match=r"cut window \(0, 0, 205, 50\) must lie inside the 200x240 photo"):
        cutout.cut_mask(PHOTOS[0], bad)
    with pytest.raises(ConfigError, match="cut seed"):
        cutout.cut_mask(PHOTOS[0], dataclasses.replace(bad, window=(0, 0, 20, 20), seed=(25, 3)))
    with pytest.raises(ConfigError, match="cut kind 'flat'"):
        cutout.cut_mask(PHOTOS[0], dataclasses.replace(bad, window=(0, 0, 20, 20), kind="flat"))
    # a record whose photo the pool no longer gives (it fails to decode now) is refused, naming it
    moved = _pool(PHOTOS)
    moved.photo_fn = lambda i, v: ((i + 1) % 4, PHOTOS[(i + 1) % 4])
    p = _occluders(n=1)[0][0]
    with pytest.raises(ConfigError, match=f"cut from photo {p.patch.cut.source_index} of the pool"):
        oc.render_occluder(PHOTOS[0], moved, p)
