"""The size and framing prior (synth.framing), logo-free composites and the colourway mix."""

import collections

import numpy as np
import pytest

from synth import backdrops, boxes, config as configlib, framing, logo_bank, scene, settings
from synth.errors import ConfigError
from synth.inputs import load_inputs
from conftest import write_config

BASE = """\
logo {{ class_name: "acme" path: "logos/logo.png" {logo_extra} }}
background {{ directory: "backgrounds" }}
image_size {{ height: 128 width: 160 }}
num_images: 10
seed: 3
placement {{ min_objects: 1 max_objects: 1 {placement} }}
{extra}
"""


def _engine(tmp, placement="", extra="", logo_extra=""):
    cfg = configlib.load_config(write_config(tmp, BASE.format(placement=placement, extra=extra,
                                                              logo_extra=logo_extra)))
    inputs = load_inputs(cfg)
    s = settings.Settings.from_config(cfg.proto)
    return inputs, s, backdrops.Backdrops(inputs, s), logo_bank.LogoBank(inputs, s)


def _scenes(eng, n, start=0):
    inputs, s, bd, bank = eng
    return [scene.compose(np.random.default_rng(k), k, inputs, bd, bank, s) for k in range(start, start + n)]


def test_quantile_draw_is_the_piecewise_linear_inverse_cdf():
    q = (0.1, 0.3, 0.9)
    assert framing.quantile_draw(0.0, q) == pytest.approx(0.1)
    assert framing.quantile_draw(0.25, q) == pytest.approx(0.2)
    assert framing.quantile_draw(0.5, q) == pytest.approx(0.3)
    assert framing.quantile_draw(0.75, q) == pytest.approx(0.6)
    assert framing.quantile_draw(1.0, q) == pytest.approx(0.9)


def test_the_real_prior_gives_the_real_photo_figures():
    rng = np.random.default_rng(0)
    cfg = framing.FramingConfig(truncation_probability=0.0)
    shares = np.array([framing.sample_framing(rng, cfg, 0.5, (480, 640)).visible_width_share for _ in range(4000)])
    assert np.median(shares) == pytest.approx(0.276, abs=0.02)  # FlickrLogos-27: median 0.276
    assert np.mean(shares > 0.5) == pytest.approx(0.31, abs=0.03)  # 31 % wider than half the image


def test_a_cut_logo_runs_off_the_border_by_the_drawn_fraction():
    rng = np.random.default_rng(1)
    cfg = framing.FramingConfig(width_quantiles=(0.3, 0.5), truncation_probability=1.0)
    sides = collections.Counter()
    for _ in range(200):
        fp = framing.sample_framing(rng, cfg, 0.5, (480, 640))
        quad = np.array(framing.frontal_quad(rng, fp, (50, 100), (480, 640), max_rotation_deg=0.0))
        x0, x1 = quad[:, 0].min() + 0.5, quad[:, 0].max() + 0.5  # pixel-edge coordinates
        y0, y1 = quad[:, 1].min() + 0.5, quad[:, 1].max() + 0.5
        cut = {"left": -x0 / (x1 - x0), "right": (x1 - 640) / (x1 - x0),
               "top": -y0 / (y1 - y0), "bottom": (y1 - 480) / (y1 - y0)}
        sides[fp.cut_side] += 1
        assert cut[fp.cut_side] == pytest.approx(fp.cut_fraction, abs=1e-6)
        assert framing.MIN_CUT <= fp.cut_fraction <= cfg.max_cut_fraction
        for other, v in cut.items():
            if other != fp.cut_side:
                assert v <= 1e-6, (other, v)  # every other side inside the image
    assert set(sides) == set(framing.SIDES)


@pytest.mark.parametrize("surface", ["", "realism { surface { enabled: false } }"])
def test_the_prior_reaches_image_filling_and_truncated_logos(workdir, surface):
    eng = _engine(workdir, "width_quantiles: 0.85 width_quantiles: 1.0 truncation_probability: 0", surface)
    # The square test logo on a 128x160 canvas fills it when its box is (nearly) as tall as the image.
    fill = [max(b[3] - b[1], b[2] - b[0]) for p, r in _scenes(eng, 12) for b in r.boxes]
    assert len(fill) >= 10
    assert min(fill) > 0.7 and np.median(fill) > 0.8
    # (occluders off: one may cover the cut edge, and the logo then rightly ends short of the border)
    eng = _engine(workdir, "width_quantiles: 0.3 width_quantiles: 0.5 truncation_probability: 1",
                  surface.replace("realism {", "realism { occlusion { enabled: false }") if surface
                  else "realism { occlusion { enabled: false } }")
    boxes = [b for p, r in _scenes(eng, 12) for b in r.boxes]
    assert len(boxes) >= 10
    touching = [b for b in boxes if min(b[0], b[1]) <= 1e-6 or max(b[2], b[3]) >= 1 - 1e-6]
    assert len(touching) == len(boxes)  # every logo is cut by the border


def test_old_configs_with_min_and_max_scale_keep_the_old_sizes(workdir):
    _, s, _, _ = _engine(workdir, "min_scale: 0.15 max_scale: 0.35")
    assert s.framing_cfg is None
    _, s, _, _ = _engine(workdir)
    assert s.framing_cfg is not None and s.framing_cfg.width_quantiles == framing.REAL_WIDTH_QUANTILES


def test_negative_fraction_gives_that_share_of_logo_free_composites_and_no_accidental_ones(workdir, monkeypatch):
    eng = _engine(workdir, extra="negative_fraction: 0.3")
    # with the gate off (the default), a draw of which nothing shows (a logo of a few pixels, or one
    # a blend left without a visible pixel) must be re-drawn, not left as an empty composite: every
    # third draw is made to vanish here
    real_render, calls = scene._render_object, collections.Counter()

    def render_vanishing_every_third(canvas, *args):
        trial, la = real_render(canvas, *args)
        calls["draws"] += 1
        if calls["draws"] % 3 == 0:
            la.pasted = np.zeros_like(la.pasted)
            return canvas, la
        return trial, la

    monkeypatch.setattr(scene, "_render_object", render_vanishing_every_third)
    scenes = _scenes(eng, 300)
    negative = [p.negative for p, r in scenes]
    assert 0.25 <= np.mean(negative) <= 0.35
    for p, r in scenes:
        if p.negative:
            assert len(r.boxes) == 0 and p.objects == ()
    accidental = sum(1 for p, r in scenes if not p.negative and len(r.boxes) == 0)
    assert accidental <= 0.02 * 300
    vanished = sum(p.rejected.get(scene.VANISHED, 0) for p, r in scenes)
    assert not eng[1].gate_on and vanished >= calls["draws"] // 3 > 50


def test_colourway_mix_comes_out_as_configured_although_the_gate_rejects_some(workdir, monkeypatch):
    cws = ('colourway { name: "original" weight: 0.5 } colourway { name: "white" weight: 0.3 } '
           'colourway { name: "black" weight: 0.2 }')
    # a strict contrast threshold, so that the gate re-draws many objects
    eng = _engine(workdir, extra="realism { gate { enabled: true min_contrast: 0.3 } }", logo_extra=cws)
    drawn = []  # per composite, the colourway of each object slot as drawn
    real_slot = scene.sample_slot

    def recording(rng, s, inputs, bank=None):
        slot = real_slot(rng, s, inputs, bank)
        drawn[-1].append(slot[1])
        return slot

    monkeypatch.setattr(scene, "sample_slot", recording)
    scenes = []
    for k in range(400):
        drawn.append([])
        scenes.append(_scenes(eng, 1, start=k)[0])
    rejected = sum(sum(v for key, v in p.rejected.items() if key.startswith("gate")) for p, r in scenes)
    assert rejected >= 50  # the gate did re-draw many objects
    emptied = 0
    for (p, r), slots in zip(scenes, drawn):
        # re-draws keep the slot's colourway: the objects are the slots that were not emptied, in order
        # (a slot the gate refused on every draw is dropped, and a composite left with none gets a fresh one)
        rest = iter(slots)
        assert all(any(o.colourway == c for c in rest) for o in p.objects), ([o.colourway for o in p.objects], slots)
        emptied += len(slots) - len(p.objects)
    assert emptied <= 0.02 * sum(len(d) for d in drawn)
    objects = [o.colourway for p, r in scenes for o in p.objects]
    share = collections.Counter(objects)
    for name, weight in (("original", 0.5), ("white", 0.3), ("black", 0.2)):
        # within 3 standard errors of a multinomial draw of this size
        tolerance = 3 * (weight * (1 - weight) / len(objects)) ** 0.5
        assert share[name] / len(objects) == pytest.approx(weight, abs=tolerance), share


@pytest.mark.parametrize("field,value", [("width_quantiles", "width_quantiles: 0.5 width_quantiles: 0.2"),
                                         ("width_quantiles", "width_quantiles: 0.5"),
                                         ("width_quantiles", "width_quantiles: 0 width_quantiles: 0.2"),
                                         ("truncation_probability", "truncation_probability: 1.5"),
                                         ("max_cut_fraction", "max_cut_fraction: 0.95"),
                                         ("closeup_candidates", "closeup_candidates: 0"),
                                         ("closeup_candidates", "closeup_candidates: 65")])
def test_bad_prior_values_are_config_errors_naming_the_field(workdir, field, value):
    with pytest.raises(ConfigError, match=f"placement.{field}"):
        configlib.load_config(write_config(workdir, BASE.format(placement=value, extra="", logo_extra="")))


def test_negative_fraction_of_one_is_refused(workdir):
    with pytest.raises(ConfigError, match="negative_fraction"):
        configlib.load_config(write_config(workdir, BASE.format(placement="", extra="negative_fraction: 1",
                                                                logo_extra="")))


def test_no_logo_sits_mostly_inside_another(workdir):
    text = BASE.replace("min_objects: 1 max_objects: 1", "min_objects: 3 max_objects: 3").format(
        placement="width_quantiles: 0.08 width_quantiles: 0.9", extra="", logo_extra="")
    cfg = configlib.load_config(write_config(workdir, text))
    inputs = load_inputs(cfg)
    s = settings.Settings.from_config(cfg.proto)
    eng = (inputs, s, backdrops.Backdrops(inputs, s), logo_bank.LogoBank(inputs, s))
    pairs = 0
    for p, r in _scenes(eng, 30):
        for i in range(len(r.boxes)):
            for j in range(i + 1, len(r.boxes)):
                pairs += 1
                assert boxes.covered_share(r.boxes[i], r.boxes[j]) <= boxes.MAX_COVERED_SHARE + 1e-6, (p.image_seed, i, j)
    assert pairs >= 20  # small and large logos share images


def test_edge_share_counts_the_edges_in_the_quads_box():
    edges = np.zeros((100, 200), bool)
    edges[:, :100] = True  # the left half
    ii = framing.edge_integral(edges)
    square = lambda x0, y0, x1, y1: ((x0 - 0.5, y0 - 0.5), (x1 - 0.5, y0 - 0.5), (x1 - 0.5, y1 - 0.5),  # noqa: E731
                                     (x0 - 0.5, y1 - 0.5))
    assert framing.edge_share(ii, square(10, 10, 50, 60)) == 1.0
    assert framing.edge_share(ii, square(120, 0, 200, 100)) == 0.0
    assert framing.edge_share(ii, square(50, 0, 150, 100)) == pytest.approx(0.5)
    assert framing.edge_share(ii, square(-80, 0, 20, 100)) == 1.0  # clipped to the canvas: on edges
    assert framing.edge_share(ii, square(300, 0, 400, 100)) == 1.0  # wholly off the canvas


def test_a_closeup_of_several_candidates_sits_where_the_fewest_edges_are():
    edges = np.zeros((480, 640), bool)
    edges[:, :300] = np.random.default_rng(0).random((480, 300)) < 0.3  # clutter on the left, clean right
    share = lambda q: framing.edge_share(framing.edge_integral(edges), q)  # noqa: E731
    fp = framing.FramingParams(0.3, 192.0, None, 0.0)
    one, many = [], []
    for seed in range(30):
        q1 = framing.frontal_quad(np.random.default_rng(seed), fp, (60, 120), (480, 640))
        # one candidate, with or without the cost: the same draws, the same quad as before the option
        assert framing.frontal_quad(np.random.default_rng(seed), fp, (60, 120), (480, 640), candidates=1,
                                    edge_share=share) == q1
        one.append(share(q1))
        rng = np.random.default_rng(seed)
        qk = framing.frontal_quad(rng, fp, (60, 120), (480, 640), candidates=32, edge_share=share)
        many.append(share(qk))
        # the first of the 32 positions is the one-candidate draw, so the kept one is no worse
        assert many[-1] <= one[-1]
        again = np.random.default_rng(seed)
        again.uniform(-5.0, 5.0)
        again.random((32, 2))
        assert rng.random() == again.random()  # a rotation, then 32 positions: no other draw
    assert max(many) == 0.0  # 32 draws always found the clean side for a logo 0.3 of the width
    assert np.mean(one) > 0.1  # one draw lands on the clutter often


def test_closeup_candidates_reach_the_closeups_of_a_scene(workdir, monkeypatch):
    calls = []
    real = framing.frontal_quad

    def spy(*args, **kw):
        calls.append((kw.get("candidates"), kw.get("edge_share")))
        return real(*args, **kw)

    monkeypatch.setattr(framing, "frontal_quad", spy)
    eng = _engine(workdir, "width_quantiles: 0.85 width_quantiles: 1.0 closeup_candidates: 8")
    assert eng[1].framing_cfg.closeup_candidates == 8
    _scenes(eng, 3)
    assert calls and all(k == 8 and callable(f) for k, f in calls)
    calls.clear()
    _scenes(_engine(workdir, "width_quantiles: 0.85 width_quantiles: 1.0"), 3)
    assert calls and all(k == 1 and f is None for k, f in calls)  # the default draws one position
