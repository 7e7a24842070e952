import dataclasses
import json
import os

import cv2
import numpy as np
import pytest

from synth import colourway, gate
from synth.errors import ConfigError, InputImageError
from conftest import make_background, make_logo, write_config

CFG = gate.GateConfig()
OUT_H, OUT_W = 480, 640


def _homography(lw, lh, quad) -> np.ndarray:
    src = np.float32([[0, 0], [lw, 0], [lw, lh], [0, lh]])
    return cv2.getPerspectiveTransform(src, np.float32(quad)).astype(np.float64)


def _paste(logo, H, bg):
    """Alpha-blends logo warped by H (cv2's convention) into bg; returns (composite, pasted alpha)."""
    h, w = bg.shape[:2]
    warped = cv2.warpPerspective(logo, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = warped[..., 3:].astype(np.float32) / 255.0
    comp = np.clip(bg * (1.0 - a) + warped[..., :3] * a + 0.5, 0, 255).astype(np.uint8)
    return comp, np.ascontiguousarray(a[..., 0])


def _dark_background():
    return (make_background(OUT_H, OUT_W, 2) * 0.4).astype(np.uint8)


def _asymmetric_logo(size=150):
    """A textured, rotation-asymmetric RGBA logo: a blue plate with yellow text and a red corner."""
    rgba = np.zeros((size, size, 4), np.uint8)
    cv2.rectangle(rgba, (4, 4), (size - 5, size - 5), (30, 60, 200, 255), -1)
    cv2.putText(rgba, "Q7", (size // 8, 2 * size // 3), cv2.FONT_HERSHEY_DUPLEX, size / 60.0,
                (250, 230, 40, 255), max(2, size // 30), cv2.LINE_AA)
    cv2.rectangle(rgba, (4, 4), (size // 4, size // 5), (230, 30, 30, 255), -1)
    return rgba


PERSPECTIVE = [[200, 100], [360, 120], [350, 280], [190, 260]]


def test_unoccluded_high_contrast_logo_passes_with_a_high_match():
    for logo in (make_logo(150), _asymmetric_logo(150)):
        H = _homography(150, 150, PERSPECTIVE)
        comp, pasted = _paste(logo, H, _dark_background())
        s = gate.score(logo, H, comp, pasted, pasted)
        assert s.passes(CFG), s.reasons(CFG)
        assert s.reasons(CFG) == []
        assert s.visible_fraction == 1.0 and s.match > 0.8 and s.contrast > 0.2
        assert 150 <= s.size_px <= 162  # the quad's shorter side: rows 100..280 and columns 190..360
        json.dumps(dataclasses.asdict(s))


def test_ninety_percent_covered_fails_naming_min_visible_fraction():
    logo = _asymmetric_logo(150)  # opaque square over pixels 4..145: 142 x 142
    H = _homography(150, 150, [[100, 100], [250, 100], [250, 250], [100, 250]])  # scale 1, shifted
    comp, pasted = _paste(logo, H, _dark_background())
    occ = np.zeros_like(pasted)
    occ[:, :104 + 127] = 1.0  # covers columns 104..230 of the 142 logo columns 104..245
    comp[occ > 0] = (128, 128, 128)
    s = gate.score(logo, H, comp, pasted * (1.0 - occ), pasted)
    assert s.visible_fraction == pytest.approx(15 / 142, abs=0.002)
    assert not s.passes(CFG)
    assert any(r.startswith("min_visible_fraction") for r in s.reasons(CFG))
    assert s.size_px == 15


def test_a_tiny_paste_fails_naming_min_size_px():
    logo = make_logo(150)
    H = _homography(150, 150, [[300, 200], [308, 200], [308, 208], [300, 208]])
    comp, pasted = _paste(logo, H, _dark_background())
    s = gate.score(logo, H, comp, pasted, pasted)
    assert 6 <= s.size_px <= 8
    assert [r.split(":")[0] for r in s.reasons(CFG)][0] == "min_size_px"
    # a disc with a bar reads at its size: at 8 px its bar is under the readable detail too
    assert [r.split(":")[0] for r in s.reasons(dataclasses.replace(CFG, min_detail_px=0.0))] == ["min_size_px"]


def test_a_logo_on_a_background_of_its_own_colour_fails_contrast():
    logo = make_logo(150)  # a red (220, 30, 30) disc with a white bar inside
    rng = np.random.default_rng(0)
    bg = np.clip(np.float32(colourway.dominant_colour(logo)) + rng.normal(0, 2, (OUT_H, OUT_W, 3)), 0, 255)
    H = _homography(150, 150, PERSPECTIVE)
    comp, pasted = _paste(logo, H, bg.astype(np.uint8))
    s = gate.score(logo, H, comp, pasted, pasted)
    assert s.contrast < CFG.min_contrast
    assert "min_contrast" in [r.split(":")[0] for r in s.reasons(CFG)]
    green = np.zeros((OUT_H, OUT_W, 3), np.uint8)
    green[...] = (40, 140, 40)  # about as bright as the red, different hue
    comp, pasted = _paste(logo, H, green)
    assert gate.score(logo, H, comp, pasted, pasted).contrast > 0.3


def test_match_falls_when_the_embedded_logo_is_not_the_logo():
    logo = _asymmetric_logo(150)
    H = _homography(150, 150, PERSPECTIVE)
    bg = _dark_background()
    wrong = np.ascontiguousarray(np.rot90(logo, 2))  # same colours and silhouette, turned upside down
    comp, pasted = _paste(wrong, H, bg)
    s = gate.score(logo, H, comp, pasted, pasted)
    assert s.match < 0.5 and "min_match" in [r.split(":")[0] for r in s.reasons(CFG)]
    comp, pasted = _paste(logo, H, bg)
    blurred = cv2.GaussianBlur(comp, (0, 0), 8)
    assert gate.score(logo, H, blurred, pasted, pasted).match < gate.score(logo, H, comp, pasted, pasted).match


def test_flat_colourways_are_matched_by_their_silhouette():
    logo = colourway.apply(make_logo(150), "white")
    H = _homography(150, 150, PERSPECTIVE)
    comp, pasted = _paste(logo, H, _dark_background())
    s = gate.score(logo, H, comp, pasted, pasted)
    assert s.passes(CFG) and s.match > 0.8
    light = np.full((OUT_H, OUT_W, 3), 250, np.uint8)
    comp, pasted = _paste(logo, H, light)
    s = gate.score(logo, H, comp, pasted, pasted)
    assert s.contrast < CFG.min_contrast and s.edge_contrast < 0.02 and not s.passes(CFG)


def test_logo_partly_off_the_canvas_is_scored_on_its_visible_part():
    logo = _asymmetric_logo(150)
    H = _homography(150, 150, [[-75, 100], [75, 100], [75, 250], [-75, 250]])  # left half off-canvas
    comp, pasted = _paste(logo, H, _dark_background())
    s = gate.score(logo, H, comp, pasted, pasted)
    assert s.visible_fraction == 1.0 and s.match > 0.8 and s.contrast > 0.2
    assert 70 <= s.size_px <= 72


def test_check_thresholds_feasible_names_the_threshold():
    gate.check_thresholds_feasible(CFG, (100, 200), (480, 640), 0.4, occluded_fraction=(0.1, 0.4))
    with pytest.raises(ConfigError, match="min_size_px 500.*480"):
        gate.check_thresholds_feasible(gate.GateConfig(min_size_px=500), (100, 100), (480, 640), 0.4)
    with pytest.raises(ConfigError, match="min_size_px 40.*max_scale 0.1"):
        # widest paste 48 px, so a 1:4 logo is 12 px tall at most
        gate.check_thresholds_feasible(gate.GateConfig(min_size_px=40), (25, 100), (480, 640), 0.1)
    with pytest.raises(ConfigError, match="min_visible_fraction 0.6.*occluded_fraction starts at 0.5"):
        gate.check_thresholds_feasible(CFG, (100, 100), (480, 640), 0.4, occluded_fraction=(0.5, 0.8))


def test_bad_config_and_inputs_raise():
    with pytest.raises(ConfigError, match="min_visible_fraction 1.5"):
        gate.GateConfig(min_visible_fraction=1.5)
    with pytest.raises(ConfigError, match="min_size_px"):
        gate.GateConfig(min_size_px=-1)
    logo = make_logo(32)
    comp = np.zeros((60, 60, 3), np.uint8)
    a = np.zeros((60, 60), np.float32)
    with pytest.raises(InputImageError, match="invertible"):
        gate.score(logo, np.zeros((3, 3)), comp, a, a)
    with pytest.raises(InputImageError, match="visible_alpha"):
        gate.score(logo, np.eye(3), comp, a[:10], a)
    with pytest.raises(InputImageError, match="horizon"):
        gate.score(logo, np.array([[1.0, 0, 0], [0, 1.0, 0], [-0.1, 0, 1.0]]), comp, a, a)
    s = gate.score(logo, np.eye(3), comp, a, a)  # nothing pasted: every score is 0
    assert s == gate.ZERO and len(s.reasons(CFG)) == len(gate.SCORED)
    for field, bad in (("min_detail_px", -1.0), ("min_legibility", float("nan")), ("min_match", 2.0),
                       ("min_colourway_identity", "0.5")):
        with pytest.raises(ConfigError, match=field):
            gate.GateConfig(**{field: bad})


def test_prepared_logo_gives_the_same_scores():
    logo = colourway.apply(_asymmetric_logo(300), "original")
    H = _homography(300, 300, PERSPECTIVE)  # reduced about 2x on the canvas
    comp, pasted = _paste(logo, H, _dark_background())
    raw = gate.score(logo, H, comp, pasted, pasted)
    prepared = gate.prepare_logo(logo)
    assert [lv.shape for lv in prepared.colour_levels][:3] == [(300, 300, 4), (150, 150, 4), (75, 75, 4)]
    assert gate.score(prepared, H, comp, pasted, pasted) == raw
    assert raw.passes(CFG) and raw.match > 0.8


def test_score_reads_nothing_outside_its_region():
    logo = colourway.apply(_asymmetric_logo(150), "original")
    H = _homography(150, 150, PERSPECTIVE)
    comp, pasted = _paste(logo, H, _dark_background())
    y0, x0, y1, x1 = gate.score_region(logo, H, comp.shape[:2])
    assert y0 <= 100 - gate.RING_PX and x0 <= 190 - gate.RING_PX and y1 >= 280 and x1 >= 360
    outside = np.ones(comp.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    noisy, vis = comp.copy(), pasted.copy()
    noisy[outside] = np.random.default_rng(1).integers(0, 256, (int(outside.sum()), 3))
    vis[outside] = 0.3
    want = gate.score(logo, H, comp, pasted, pasted)
    assert gate.score(logo, H, noisy, vis, pasted) == want
    assert gate.score_region(gate.prepare_logo(logo), H, comp.shape[:2]) == (y0, x0, y1, x1)


# -- match against the artwork, readability, colourway identity ----------------------------------

def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def _silhouette(logo: np.ndarray) -> np.ndarray:
    """The logo's shape filled with its dominant colour: its outline without its inner pattern."""
    out = logo.copy()
    out[..., :3] = colourway.dominant_colour(logo)
    return out


QUADS = {"large": PERSPECTIVE, "medium": [[200, 200], [270, 205], [268, 272], [198, 268]]}


@pytest.mark.parametrize("size", sorted(QUADS))
def test_a_filled_silhouette_of_the_artwork_fails_the_match(size):
    bg = make_background(OUT_H, OUT_W, 2)
    for logo in (make_logo(150), _asymmetric_logo(150)):
        H = _homography(150, 150, QUADS[size])
        comp, pasted = _paste(_silhouette(logo), H, bg)
        s = gate.score(logo, H, comp, pasted, pasted)
        assert s.match < 0.5 and "min_match" in [r.split(":")[0] for r in s.reasons(CFG)]
        assert s.contrast > 0.1  # it stands out from the wall: only its missing pattern fails it
        faithful, pasted = _paste(logo, H, bg)
        assert gate.score(logo, H, faithful, pasted, pasted).match > 0.9


@pytest.mark.parametrize("size", sorted(QUADS))
def test_a_heavily_blurred_logo_fails_and_a_slightly_blurred_one_passes(size):
    bg = make_background(OUT_H, OUT_W, 2)
    logo = _asymmetric_logo(150)
    H = _homography(150, 150, QUADS[size])
    comp, pasted = _paste(logo, H, bg)
    width = 160 if size == "large" else 70
    heavy = cv2.GaussianBlur(comp, (0, 0), width / 12)  # its letters' strokes merge
    s = gate.score(logo, H, heavy, pasted, pasted)
    assert not s.passes(CFG) and "min_match" in [r.split(":")[0] for r in s.reasons(CFG)], s
    slight = cv2.GaussianBlur(comp, (0, 0), 0.8)
    s = gate.score(logo, H, slight, pasted, pasted)
    assert s.passes(CFG) and s.match > 0.85, s.reasons(CFG)


def test_a_faithful_render_with_shading_noise_and_jpeg_passes():
    rng = np.random.default_rng(4)
    bg = make_background(OUT_H, OUT_W, 2)
    for logo in (make_logo(150), _asymmetric_logo(150)):
        for quad in QUADS.values():
            H = _homography(150, 150, quad)
            comp, pasted = _paste(logo, H, bg)
            ramp = np.linspace(0.6, 1.2, OUT_W, dtype=np.float32)[None, :, None]  # shading across the logo
            lit = comp.astype(np.float32) * ramp + rng.normal(0, 4, comp.shape)
            out = _jpeg(np.clip(lit + 0.5, 0, 255).astype(np.uint8), 70)
            s = gate.score(logo, H, out, pasted, pasted)
            assert s.passes(CFG) and s.match > 0.8, (quad, s)


def test_a_washed_out_logo_fails_readability():
    bg = make_background(OUT_H, OUT_W, 2)
    logo = _asymmetric_logo(150)
    H = _homography(150, 150, QUADS["medium"])
    comp, pasted = _paste(logo, H, bg)
    faded = _jpeg(np.clip(0.08 * comp.astype(np.float32) + 0.92 * bg + 0.5, 0, 255).astype(np.uint8), 80)
    s = gate.score(logo, H, faded, pasted, pasted)
    assert s.edge_contrast < 0.08 and "min_legibility" in [r.split(":")[0] for r in s.reasons(CFG)], s
    assert gate.score(logo, H, comp, pasted, pasted).legibility > 3 * CFG.min_legibility


def test_a_tiny_low_contrast_logo_fails_readability_and_the_same_logo_larger_passes():
    logo = _asymmetric_logo(150)
    prepared = gate.prepare_logo(logo)
    side = gate.readable_side_px(prepared, CFG)  # 2 px of detail: the readable size
    assert 8 < side < 100
    grey = np.full((OUT_H, OUT_W, 3), 90, np.uint8)
    muted = logo.copy()
    muted[..., :3] = (muted[..., :3].astype(np.float32) * 0.12 + 90 * 0.88).astype(np.uint8)  # delta-E ~ 10
    tiny = 0.9 * side
    H = _homography(150, 150, [[300, 200], [300 + tiny, 200], [300 + tiny, 200 + tiny], [300, 200 + tiny]])
    comp, pasted = _paste(muted, H, grey)
    s = gate.score(muted, H, comp, pasted, pasted)
    assert s.detail_px < CFG.min_detail_px and s.legibility < CFG.min_legibility
    assert {"min_detail_px", "min_legibility"} <= {r.split(":")[0] for r in s.reasons(CFG)}
    big = 4 * side  # the same colours, 4x larger: read at the same contrast
    H = _homography(150, 150, [[200, 100], [200 + big, 100], [200 + big, 100 + big], [200, 100 + big]])
    comp, pasted = _paste(muted, H, grey)
    s = gate.score(muted, H, comp, pasted, pasted)
    assert s.detail_px >= CFG.min_detail_px and s.legibility >= CFG.min_legibility, s


def test_fine_width_is_the_readable_size_and_scales_with_the_artwork():
    logo = np.zeros((60, 240, 4), np.uint8)  # a word mark: readable only some tens of px wide
    cv2.putText(logo, "ACME TOOLS", (6, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.95, (20, 20, 120, 255), 2, cv2.LINE_AA)
    p1, p2 = gate.prepare_logo(logo), gate.prepare_logo(cv2.resize(logo, (480, 120), interpolation=cv2.INTER_CUBIC))
    # the readable width is the design's, not the file's: twice the pixels, twice the fine width
    # (within one step of the width search, 2^(1/4))
    readable = 2 * 240 / p1.fine_width_px
    assert 30 < readable < 240
    assert p2.fine_width_px == pytest.approx(2 * p1.fine_width_px, rel=0.2)
    disc = np.zeros((150, 150, 4), np.uint8)
    cv2.circle(disc, (75, 75), 70, (200, 40, 40, 255), -1, cv2.LINE_AA)  # no inner structure: coarse
    assert gate.prepare_logo(disc).fine_width_px > 2 * p1.fine_width_px


def test_colourway_identity_refuses_a_white_disc_and_keeps_a_white_shape():
    disc = make_logo(150)  # a red disc with a white bar: its identity is the bar
    assert gate.colourway_identity(disc, colourway.apply(disc, "inverted")) > 0.9
    white_disc = gate.colourway_identity(disc, colourway.apply(disc, "white"))
    assert white_disc < CFG.min_colourway_identity
    shape = np.zeros((150, 150, 4), np.uint8)  # a shape logo: its identity is its outline
    pts = np.int32([[10, 140], [75, 10], [140, 140], [75, 100]])
    cv2.fillPoly(shape, [pts], (30, 60, 200, 255), cv2.LINE_AA)
    assert gate.colourway_identity(shape, colourway.apply(shape, "white")) > 0.9
    m = colourway.plate_margin(shape.shape[:2])
    plate = colourway.apply(shape, "plate")
    assert gate.colourway_identity(shape, plate, (m, m, m + 150, m + 150)) > CFG.min_colourway_identity
    with pytest.raises(InputImageError, match="same size"):
        gate.colourway_identity(shape, plate)


def test_bad_gate_fields_in_a_config_are_refused_naming_the_field(workdir):
    from synth import config as configlib

    for field, bad in (("min_detail_px", -1), ("min_legibility", 200), ("min_colourway_identity", 1.5)):
        path = write_config(workdir, extra=f"realism {{ gate {{ {field}: {bad} }} }}\n")
        with pytest.raises(ConfigError, match=f"realism.gate.{field}"):
            configlib.load_config(path)


def _with_colourways(workdir, colourways):
    """(config, inputs) of write_config's config whose logo has these (name, weight) colourways."""
    from synth import config as configlib
    from synth.inputs import load_inputs

    cws = " ".join(f'colourway {{ name: "{n}" weight: {w} }}' for n, w in colourways)
    body = open(write_config(workdir)).read().replace('path: "logos/logo.png" }', f'path: "logos/logo.png" {cws} }}')
    with open(os.path.join(str(workdir), "gen.config"), "w") as f:
        f.write(body)
    cfg = configlib.load_config(os.path.join(str(workdir), "gen.config"))
    return cfg, load_inputs(cfg)


def test_an_engine_refuses_a_colourway_that_loses_the_logo_naming_it(workdir):
    from synth import engine

    # the logo is make_logo's red disc with a white bar: drawn white, a white disc
    cfg, inputs = _with_colourways(workdir, (("original", 0.7), ("white", 0.3)))
    with pytest.raises(ConfigError, match=r"logo\[0\] \('acme'\) colourway\[1\] 'white'.*min_colourway_identity"):
        engine.Engine(inputs, cfg.proto)
    relaxed = cfg.proto.__class__()
    relaxed.CopyFrom(cfg.proto)
    relaxed.realism.gate.min_colourway_identity = 0.3
    engine.Engine(inputs, relaxed)  # a looser threshold accepts it


def test_an_engine_checks_every_ink_of_a_tint_and_objects_record_the_ink_drawn(workdir):
    from synth import backdrops, engine, logo_bank, scene, settings

    # make_logo's red disc with a white bar: a tint keeps the bar
    cfg, inputs = _with_colourways(workdir, (("original", 0.5), ("tint", 0.5)))
    engine.Engine(inputs, cfg.proto)  # accepted: every ink keeps the artwork's structure
    s = settings.Settings.from_config(cfg.proto)
    bank = logo_bank.LogoBank(inputs, s)
    idents = [bank.colourway_identity(0, colourway.tint_name(h)) for h in colourway.tint_hues()]
    assert min(idents) >= CFG.min_colourway_identity
    bd = backdrops.Backdrops(inputs, s)
    drawn = [o.colourway for k in range(40)
             for o in scene.compose(np.random.default_rng(k), k, inputs, bd, bank, s)[0].objects]
    tinted = [c for c in drawn if c != "original"]
    assert tinted and all(colourway.tint_hue(c) in colourway.tint_hues() for c in tinted)
    strict = cfg.proto.__class__()
    strict.CopyFrom(cfg.proto)
    strict.realism.gate.min_colourway_identity = min(idents) + 0.01  # one ink now keeps too little
    with pytest.raises(ConfigError, match=r"colourway\[1\] 'tint'.*min_colourway_identity"):
        engine.Engine(inputs, strict)
