"""The context stage (synth.context): the first logo on its own product surface, in the brand's colours."""

import json
import os
import sys
from dataclasses import replace

import numpy as np
import pytest

from synth import (backdrops, colourway, config as configlib, context, context_draw, generate, logo_bank, replay,
                   scene, settings)
from synth.errors import ConfigError
from synth.inputs import load_inputs
from conftest import ROOT, make_background, write_config

OUT_HW = (192, 256)


def _two_colour_logo():
    """A red (70 %) and yellow (30 %) logo on transparency."""
    logo = np.zeros((60, 100, 4), np.uint8)
    logo[:, :70] = (200, 20, 30, 255)
    logo[:, 70:] = (250, 210, 40, 255)
    logo[:5, :] = 0  # a transparent rim
    return logo


def _colours(cw="original", plate=None, logo=None):
    logo = _two_colour_logo() if logo is None else logo
    return context.brand_colours(logo, colourway.apply(logo, cw, plate), cw, plate)


def _contexts(n, shape=None, seed=0, **cfg):
    weights = tuple(float(s == shape) for s in context.SHAPES) if shape else (1.0, 1.0, 1.0, 1.0)
    c = context.ContextConfig(**dict(dict(probability=1.0, shape_weights=weights), **cfg))
    rng = np.random.default_rng(seed)
    return c, rng, [context.sample_context(rng, c, OUT_HW, 0, "original", (60, 100), _colours()) for _ in range(n)]


@pytest.mark.parametrize("shape", context.SHAPES)
def test_the_context_covers_the_drawn_share_of_the_image(shape):
    c, _, ps = _contexts(12, shape, min_area_share=0.25, max_area_share=0.9)
    backdrop = make_background(*OUT_HW, seed=1)
    for p in ps:
        assert p.shape == shape
        cover = context_draw.render(backdrop, p).cover
        covered = float(np.mean(cover >= 0.5))
        if shape == "closeup":
            assert p.area_share == 1.0 and covered == 1.0
        else:
            assert 0.25 <= p.area_share <= 0.9
            assert covered == pytest.approx(p.area_share, abs=0.015), (p.shape, p.area_share, covered)
            assert context.visible_share(p, OUT_HW) == pytest.approx(p.area_share, abs=1e-3)


@pytest.mark.parametrize("shape", context.SHAPES)
def test_the_logo_lies_inside_the_context_and_the_image(shape):
    c, rng, ps = _contexts(15, shape, seed=2)
    placed = 0
    for p in ps:
        cover = context_draw.coverage(p, OUT_HW)
        for target in (None, 20.0, 400.0):  # the size prior's draw is held to the context's inner part
            quad = context.sample_logo_quad(rng, p, c, (60, 100), OUT_HW, target)
            if quad is None:
                continue
            placed += 1
            q = np.asarray(quad)
            assert context_draw.logo_inside(q, cover, 0.95), (p, quad)
            assert q[:, 0].min() >= -0.5 and q[:, 1].min() >= -0.5
            assert q[:, 0].max() <= OUT_HW[1] - 0.5 and q[:, 1].max() <= OUT_HW[0] - 0.5
    assert placed >= 0.9 * 3 * len(ps)


def test_the_logo_width_follows_the_size_prior_within_the_logo_share_bounds():
    c, rng, ps = _contexts(20, "sign", seed=3, min_logo_share=0.4, max_logo_share=0.8, max_area_share=0.5)
    small = [context.sample_logo_quad(rng, p, c, (60, 100), OUT_HW, 1.0) for p in ps]
    large = [context.sample_logo_quad(rng, p, c, (60, 100), OUT_HW, 1e4) for p in ps]
    for p, qs, ql in zip(ps, small, large):
        inner = context.inner_outline(p)
        iw = np.linalg.norm(inner[1] - inner[0])
        ws, wl = np.linalg.norm(np.subtract(qs[1], qs[0])), np.linalg.norm(np.subtract(ql[1], ql[0]))
        assert ws < wl
        assert ws / iw == pytest.approx(0.4, abs=0.08)  # held up to min_logo_share
        assert wl / iw <= 0.8 + 0.08  # held down to max_logo_share (or what the inner part can hold)


def test_context_colours_are_the_brands_and_spare_the_logo_as_drawn():
    logo = _two_colour_logo()
    red, yellow = (200, 20, 30), (250, 210, 40)
    orig = _colours("original")
    names = [n for n, _, _ in orig]
    assert not any(np.allclose(c, red, atol=8) or np.allclose(c, yellow, atol=8) for _, c, _ in orig)
    inks = context.palette(colourway.apply(logo, "original"), k=8, min_share=0.02)
    assert all(context.lost_share(c, inks) <= context.MAX_LOST_SHARE for _, c, _ in orig)
    assert "shade" in names  # the dark shade of the brand's red
    shade = dict((n, c) for n, c, _ in orig)["shade"]
    assert shade[0] > shade[1] and shade[0] > shade[2]  # still red
    white = _colours("white")  # a white logo goes on the brand's own colours
    pairs = [(n, c) for n, c, _ in white]
    assert ("palette:0", red) in pairs and ("palette:1", yellow) in pairs
    assert _colours("plate") == [("plate", red, 1.0)]  # a plate logo sits on its plate colour
    assert _colours("plate", plate=(10, 90, 200)) == [("plate", (10, 90, 200), 1.0)]
    assert ("plate", (10, 90, 200)) in [(n, c) for n, c, _ in _colours("white", plate=(10, 90, 200))]
    # the drawn colour is one of them, and the rendered surface keeps its hue on a neutral backdrop
    rng = np.random.default_rng(4)
    c = context.ContextConfig(probability=1.0, shape_weights=(1, 0, 0, 0))
    for _ in range(10):
        p = context.sample_context(rng, c, OUT_HW, 0, "white", (60, 100), _colours("white"))
        assert (p.colour_source, p.colour) in [(n, col) for n, col, _ in _colours("white")]
        img, cover = context_draw.render(np.full(OUT_HW + (3,), 118, np.uint8), replace(p, gloss=0.0))[:2]
        mean = img[cover > 0.99].mean(axis=0)
        assert np.argmax(mean) == np.argmax(p.colour)
        assert np.linalg.norm(mean - np.asarray(p.colour)) < 50


def test_the_backdrop_lights_the_context():
    _, _, ps = _contexts(1, "closeup", seed=5)
    p = replace(ps[0], gradient=0.0, texture=0.0, backdrop_shading=1.0)
    dark = context_draw.render(np.full(OUT_HW + (3,), 40, np.uint8), p)[0]
    bright = context_draw.render(np.full(OUT_HW + (3,), 200, np.uint8), p)[0]
    assert dark.mean() < 0.7 * bright.mean()  # the photo's exposure
    ramp = np.repeat(np.linspace(30, 230, OUT_HW[1])[None, :, None], 3, axis=2)
    ramp = np.repeat(ramp, OUT_HW[0], axis=0).astype(np.uint8)
    lit = context_draw.render(ramp, p)[0]
    left, right = lit[:, : OUT_HW[1] // 4].mean(), lit[:, -OUT_HW[1] // 4:].mean()
    assert right > 1.3 * left  # the photo's light falls across it
    flat = context_draw.render(ramp, replace(p, backdrop_shading=0.0))[0]
    assert flat[:, -OUT_HW[1] // 4:].mean() < 1.1 * flat[:, : OUT_HW[1] // 4].mean()
    warm = np.full(OUT_HW + (3,), 118, np.uint8)
    warm[..., 0], warm[..., 2] = 170, 70
    cast = context_draw.render(warm, p)[0]
    neutral = context_draw.render(np.full(OUT_HW + (3,), 118, np.uint8), p)[0]
    assert cast[..., 0].mean() - cast[..., 2].mean() > neutral[..., 0].mean() - neutral[..., 2].mean() + 5
    # the light a logo printed on it gets is the surface's light, whatever its paint
    light_black = context_draw.render(ramp, replace(p, colour=(10, 10, 10))).light
    light_white = context_draw.render(ramp, replace(p, colour=(250, 250, 250))).light
    assert np.array_equal(light_black, light_white)
    assert light_black[:, -OUT_HW[1] // 4:].mean() > 1.3 * light_black[:, : OUT_HW[1] // 4].mean()


def test_the_probability_is_honoured():
    c = context.ContextConfig(probability=0.3)
    rng = np.random.default_rng(6)
    drawn = [context.sample_context(rng, c, OUT_HW, 0, "original", (60, 100), _colours()) for _ in range(500)]
    share = np.mean([d is not None for d in drawn])
    assert share == pytest.approx(0.3, abs=0.06)
    shapes = {d.shape for d in drawn if d is not None}
    assert shapes == set(context.SHAPES)
    off = context.ContextConfig(probability=0.0)
    assert all(context.sample_context(rng, off, OUT_HW, 0, "original", (60, 100), _colours()) is None
               for _ in range(100))


def _compose(workdir, extra, seeds):
    cfg = configlib.load_config(write_config(workdir, extra=extra))
    inputs = load_inputs(cfg)
    s = settings.Settings.from_config(cfg.proto)
    bd, bank = backdrops.Backdrops(inputs, s), logo_bank.LogoBank(inputs, s)
    return s, [scene.compose(np.random.default_rng(k), k, inputs, bd, bank, s) for k in seeds]


def test_scenes_put_their_first_logo_on_the_context(workdir):
    s, scenes = _compose(workdir, "realism { context { probability: 1 } }", range(30))
    with_ctx = 0
    for p, r in scenes:
        assert p.context is not None
        on = [o for o in p.objects if o.mode == "context"]
        assert len(on) <= 1
        if not on:
            continue
        with_ctx += 1
        cover = context_draw.coverage(p.context, s.out_hw)
        assert context_draw.logo_inside(on[0].quad, cover, 0.95)
        for o in p.objects:  # every other logo stays off the context
            if o.mode != "context":
                assert context_draw.overlap(o.quad, cover) <= 0.02
        back = scene.SceneParams.from_json(json.loads(json.dumps(p.to_json())))
        assert back == p
    assert with_ctx >= 25


def test_the_stage_off_changes_no_composite(workdir):
    _, a = _compose(workdir, "", range(8))
    _, b = _compose(workdir, "realism { context { probability: 0 max_area_share: 0.5 } }", range(8))
    for (pa, ra), (pb, rb) in zip(a, b):
        assert pa == pb and pb.context is None
        assert np.array_equal(ra.image, rb.image)


def test_composites_on_a_context_replay_to_their_shard_bytes(workdir):
    cfg = configlib.load_config(write_config(workdir, num_images=24, extra="realism { context { probability: 0.7 } }"))
    out = str(workdir / "out")
    generate.generate(cfg, out, show_progress=False, workers=1)
    r = replay.open_dataset(out)
    with open(os.path.join(out, "params.jsonl")) as f:
        lines = [json.loads(line) for line in f]
    kinds = set()
    for rec in lines:
        if rec["params"]["context"] is not None:
            kinds.add(rec["params"]["context"]["shape"])
        assert r.replay(rec) == r.shard_jpeg(rec), rec["index"]
    assert sum(rec["params"]["context"] is not None for rec in lines) >= 10 and len(kinds) >= 3


@pytest.mark.parametrize("body, field", [
    ("probability: 1.5", "realism.context.probability"),
    ("probability: -0.1", "realism.context.probability"),
    ("min_area_share: 0.01", "realism.context.min_area_share"),
    ("min_area_share: 0.6 max_area_share: 0.5", "realism.context.max_area_share"),
    ("max_area_share: 1.2", "realism.context.max_area_share"),
    ("band_weight: -1", "realism.context.band_weight"),
    ("sign_weight: 0 band_weight: 0 shirt_weight: 0 closeup_weight: 0", r"realism.context.\*_weight"),
    ('colour_source: "rainbow"', "realism.context.colour_source"),
    ("min_logo_share: 0.9 max_logo_share: 0.5", "realism.context.max_logo_share"),
    ("min_logo_share: 0", "realism.context.min_logo_share"),
    ("backdrop_shading: 2", "realism.context.backdrop_shading"),
])
def test_a_bad_context_config_is_refused_naming_the_field(workdir, body, field):
    path = write_config(workdir, extra=f"realism {{ context {{ {body} }} }}")
    with pytest.raises(ConfigError, match=f"gen.config: field {field} = "):
        configlib.load_config(path)


def test_the_library_config_refuses_bad_values_and_matches_the_validator():
    with pytest.raises(ConfigError, match=r"ContextConfig.min_area_share = 0.3 is not allowed: must be in \[0.05, max"):
        context.ContextConfig(min_area_share=0.3, max_area_share=0.2)
    with pytest.raises(ConfigError, match=r"ContextConfig.colour_source = 'rainbow'"):
        context.ContextConfig(colour_source="rainbow")
    with pytest.raises(ConfigError, match=r"ContextConfig.shape_weights"):
        context.ContextConfig(shape_weights=(1, 1))
    assert configlib.CONTEXT_SHAPES == context.SHAPES
    assert configlib.CONTEXT_COLOUR_SOURCES == context.COLOUR_SOURCES


def test_the_benchmark_has_a_with_context_arm():
    sys.path.insert(0, ROOT)
    from bench import transfer

    text = transfer.arm_config("with_context", ("fedex",), "/logos", "/bg", 10)
    c = configlib.parse_config_text(text, "with_context")
    assert c.realism.context.probability == pytest.approx(0.4)
    assert settings.context_config(c.realism.context).probability == pytest.approx(0.4)
    plain = configlib.parse_config_text(transfer.arm_config("realism", ("fedex",), "/logos", "/bg", 10), "realism")
    assert plain.realism.context.probability == 0  # the default arm keeps the stage off


def test_a_cut_logo_runs_off_the_border_on_the_context_and_large_logos_get_large_contexts():
    c = context.ContextConfig(probability=1.0)
    rng = np.random.default_rng(8)
    cut_ok = 0
    for k in range(40):
        side = ("left", "right", "top", "bottom")[k % 4]
        p = context.sample_context(rng, c, OUT_HW, 0, "original", (60, 100), _colours(), 0.3, side)
        quad = context.sample_logo_quad(rng, p, c, (60, 100), OUT_HW, 80.0, (side, 0.25))
        assert quad is not None
        q = np.asarray(quad)
        k_ax = 0 if side in ("left", "right") else 1
        lo, hi, size = q[:, k_ax].min() + 0.5, q[:, k_ax].max() + 0.5, OUT_HW[1 - k_ax]
        out = {"left": -lo, "top": -lo, "right": hi - size, "bottom": hi - size}[side] / (hi - lo)
        if out > 0:
            assert out == pytest.approx(0.25, abs=1e-6)  # cut by the drawn share, where the shape runs on
            cut_ok += 1
            cover = context_draw.coverage(p, OUT_HW)
            assert context_draw.logo_inside(q, cover, 0.95)
        else:
            assert out <= -context.MARGIN_PX / (hi - lo) + 1e-6  # else placed uncut, inside the image
    assert cut_ok >= 25  # the product runs off that border too (29 of 40 with seed 8)
    small = [context.sample_context(rng, c, OUT_HW, 0, "original", (60, 100), _colours(), 0.1) for _ in range(200)]
    large = [context.sample_context(rng, c, OUT_HW, 0, "original", (60, 100), _colours(), 0.7) for _ in range(200)]
    mean = lambda ps: np.mean([p.area_share for p in ps if p.shape != "closeup"])  # noqa: E731
    assert mean(large) > mean(small) + 0.15
    assert all(c.min_area_share <= p.area_share <= c.max_area_share for p in small + large if p.shape != "closeup")
