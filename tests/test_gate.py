import dataclasses
import json

import cv2
import numpy as np
import pytest

from synth import colourway, gate
from synth.errors import ConfigError, InputImageError
from conftest import make_background, make_logo

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
    assert [r.split(":")[0] for r in s.reasons(CFG)] == ["min_size_px"]


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
    assert s.contrast < CFG.min_contrast


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
    assert s == gate.GateScores(0.0, 0.0, 0.0, 0.0) and len(s.reasons(CFG)) == 4


def test_prepared_logo_gives_the_same_scores():
    logo = colourway.apply(_asymmetric_logo(300), "original")
    H = _homography(300, 300, PERSPECTIVE)  # reduced about 2x on the canvas
    comp, pasted = _paste(logo, H, _dark_background())
    raw = gate.score(logo, H, comp, pasted, pasted)
    prepared = gate.prepare_logo(logo)
    assert [lv[0].shape for lv in prepared.levels][:3] == [(300, 300), (150, 150), (75, 75)]
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


# -- match (b): shading-discounted colour correlation -------------------------------------

GREEN, ORANGE, OUTLINE = (80, 185, 70), (225, 115, 55), (35, 35, 35)  # green and orange: grey 140 and 141


def _hue_logo(size=120):
    """A disc whose halves differ in hue but not in luminance, with thin dark outlines: its grey
    texture is weak (grey std about 0.056, like skimage's logo), its identity is in colour."""
    rgba = np.zeros((size, size, 4), np.uint8)
    c = size // 2
    cv2.circle(rgba, (c, c), c - 2, GREEN + (255,), -1, cv2.LINE_AA)
    right = np.zeros((size, size), bool)
    right[:, c:] = True
    rgba[right & (rgba[..., 3] > 0), :3] = ORANGE
    zigzag = (np.float64([[0.25, 0.3], [0.45, 0.22], [0.4, 0.55], [0.7, 0.6], [0.62, 0.85]]) * size).astype(np.int32)
    cv2.polylines(rgba, [zigzag], False, OUTLINE + (255,), 1, cv2.LINE_AA)
    cv2.circle(rgba, (int(size * 0.72), int(size * 0.3)), size // 10, OUTLINE + (255,), 1, cv2.LINE_AA)
    return rgba


HUE_QUAD = [[200, 100], [330, 115], [322, 240], [192, 228]]


def _shaded_scene(logo, quad=HUE_QUAD, occluder=False):
    """`logo` pasted on a dark-blue backdrop, then lit like the light stage at its strongest: the
    whole region multiplied by a linear ramp 0.4 -> 1.3 across the logo and a Gaussian glare spot
    added. Returns (composite, visible opacity, pasted opacity, H)."""
    rng = np.random.default_rng(3)
    bg = np.float32([25, 35, 90]) + rng.normal(0, 3, (OUT_H, OUT_W, 3)).astype(np.float32)
    H = _homography(logo.shape[1], logo.shape[0], quad)
    warped = cv2.warpPerspective(logo, H, (OUT_W, OUT_H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    pasted = warped[..., 3].astype(np.float32) / 255.0
    comp = bg * (1.0 - pasted[..., None]) + warped[..., :3] * pasted[..., None]
    xs, ys = np.float32(quad)[:, 0], np.float32(quad)[:, 1]
    yy, xx = np.mgrid[:OUT_H, :OUT_W].astype(np.float32)
    ramp = 0.4 + 0.9 * np.clip((xx - xs.min()) / np.ptp(xs), 0.0, 1.0)
    gx, gy, gr = xs.min() + 0.3 * np.ptp(xs), ys.min() + 0.35 * np.ptp(ys), 0.25 * np.ptp(xs)
    glare = 150.0 * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * gr ** 2))
    comp = comp * ramp[..., None] + glare[..., None]
    visible = pasted
    if occluder:  # an opaque magenta bar over the logo's lower part
        bar = np.zeros((OUT_H, OUT_W), np.float32)
        bar[int(ys.min() + 0.7 * np.ptp(ys)):int(ys.max()) + 1, :] = 1.0
        comp = comp * (1.0 - bar[..., None]) + np.float32([230, 40, 200]) * bar[..., None]
        visible = pasted * (1.0 - bar)
    return np.clip(comp + 0.5, 0, 255).astype(np.uint8), visible, pasted, H


def _grey_only(monkeypatch, *args):
    """gate.score's match with score (b) switched off: the grey NCC alone (the match before (b))."""
    with monkeypatch.context() as m:
        m.setattr(gate, "_colour_match", lambda *a: 0.0)
        return gate.score(*args).match


def test_match_sees_hue_through_strong_shading(monkeypatch):
    logo = _hue_logo()
    grey = cv2.cvtColor(np.ascontiguousarray(logo[..., :3]), cv2.COLOR_RGB2GRAY)[logo[..., 3] >= 128] / 255.0
    assert gate.FLAT_STD < grey.std() < 0.07  # textured enough for NCC, but weakly
    comp, vis, pasted, H = _shaded_scene(logo)
    s = gate.score(logo, H, comp, vis, pasted)
    assert _grey_only(monkeypatch, logo, H, comp, vis, pasted) < 0.5  # what the grey NCC alone said
    assert s.match >= 0.5 and s.passes(CFG), s.reasons(CFG)
    # an opaque occluder of another colour over a quarter of it: its pixels do not leak into the
    # low-pass of the kept pixels next to it
    comp, vis, pasted, H = _shaded_scene(logo, occluder=True)
    s = gate.score(logo, H, comp, vis, pasted)
    assert 0.6 < s.visible_fraction < 0.85 and s.match >= 0.5


def test_match_of_a_different_logo_stays_low_under_the_same_shading():
    logo = _hue_logo()
    rng = np.random.default_rng(0)
    shuffled = logo.copy()
    inside = logo[..., 3] > 0
    shuffled[inside] = logo[inside][rng.permutation(int(inside.sum()))]
    for wrong in (np.ascontiguousarray(np.rot90(logo)), np.ascontiguousarray(logo[:, ::-1]), shuffled,
                  _asymmetric_logo(120)):
        comp, vis, pasted, H = _shaded_scene(wrong)
        s = gate.score(logo, H, comp, vis, pasted)
        assert s.match < 0.5 and "min_match" in [r.split(":")[0] for r in s.reasons(CFG)]


def test_colour_match_is_zero_for_a_smooth_gradient_reference(monkeypatch):
    yy, xx = np.mgrid[:96, :96].astype(np.float32) / 95.0
    gradient = np.zeros((96, 96, 4), np.uint8)
    gradient[..., 0] = 100 + 60 * xx  # red and green rise left to right, blue falls top to bottom:
    gradient[..., 1] = 70 + 60 * xx  # about 68 delta-E corner to corner, grey std 0.061, no detail
    gradient[..., 2] = 150 - 50 * yy
    gradient[..., 3] = 255
    for rgba, want in ((gradient, 0.0), (_hue_logo(96), 1.0)):
        colour = gate.prepare_logo(rgba).colour_levels[0]
        keep = colour[..., 3] >= 0.5
        same = cv2.cvtColor(np.ascontiguousarray(rgba[..., :3]), cv2.COLOR_RGB2Lab).astype(np.float32)
        same[~keep] = 0.0
        assert gate._colour_match(colour, same, keep) == pytest.approx(want, abs=0.02)
    # pasted, the grey NCC alone decides its match (and it matches itself)
    H = _homography(96, 96, PERSPECTIVE)
    comp, pasted = _paste(gradient, H, _dark_background())
    s = gate.score(gradient, H, comp, pasted, pasted)
    assert s.match > 0.9 and s.match == _grey_only(monkeypatch, gradient, H, comp, pasted, pasted)


def test_prepared_colour_levels_follow_the_grey_levels():
    logo = _hue_logo(100)
    p = gate.prepare_logo(logo)
    assert len(p.colour_levels) == len(p.levels)
    for (grey, alpha), colour in zip(p.levels, p.colour_levels):
        assert colour.shape == grey.shape + (4,) and colour.dtype == np.float32
        np.testing.assert_array_equal(colour[..., 3], alpha)
    lab = p.colour_levels[0][50, 20, :3]  # a green pixel: L about 68, a strongly negative
    assert 60 < lab[0] < 75 and lab[1] < -30
