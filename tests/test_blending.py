"""Blend modes on synthetic canvases where the logo's place and colours are known."""

import dataclasses
import json

import cv2
import numpy as np
import pytest

from synth import blending as bl
from synth.errors import ConfigError, InputImageError
from conftest import make_background

ROI = (100, 200, 250, 350)  # y0, x0, y1, x1: a 150 x 150 ROI inside a 480 x 640 canvas


def _logo(size=150):
    """A disc logo in two unsaturated colours, so both are easy to tell from the background."""
    rgb = np.zeros((size, size, 3), np.uint8)
    alpha = np.zeros((size, size), np.uint8)
    c = size // 2
    cv2.circle(alpha, (c, c), c - 3, 255, -1, cv2.LINE_AA)  # anti-aliased: a soft one-pixel edge
    cv2.circle(rgb, (c, c), c - 3, (210, 40, 40), -1)
    cv2.rectangle(rgb, (size // 4, c - size // 10), (3 * size // 4, c + size // 10), (235, 235, 235), -1)
    return rgb.astype(np.float32), alpha.astype(np.float32) / 255.0


def _canvas(seed=3):
    return make_background(480, 640, seed).astype(np.float32)


def _params(mode, **kw):
    base = dict(mode=mode, hard_binary=False, feather_radius=3.0, poisson_mixed=False, laplacian_levels=3)
    base.update(kw)
    return bl.BlendParams(**base)


def _full(roi, arr, shape=(480, 640)):
    out = np.zeros(shape, arr.dtype)
    out[roi[0]:roi[2], roi[1]:roi[3]] = arr
    return out


def _distance_to_footprint(alpha, roi):
    foot = _full(roi, alpha > bl.ALPHA_EPS)
    return cv2.distanceTransform((~foot).astype(np.uint8), cv2.DIST_L2, 3)


def _core(alpha, inset):
    inside = (alpha >= 0.999).astype(np.uint8)
    return cv2.distanceTransform(inside, cv2.DIST_L2, 3) > inset


CASES = [
    _params("hard"), _params("hard", hard_binary=True),
    _params("feather", feather_radius=1.0), _params("feather", feather_radius=4.0),
    _params("poisson"), _params("poisson", poisson_mixed=True),
    _params("laplacian", laplacian_levels=2), _params("laplacian", laplacian_levels=4),
]


def _allowed_reach(p):
    """How far outside the footprint each mode may change pixels (see synth.blending's docstring)."""
    return {"hard": 0.0, "feather": p.feather_radius + 1.0}[p.mode]


def test_every_mode_has_a_case():
    assert {p.mode for p in CASES} == set(bl.BLEND_MODES)


@pytest.mark.parametrize("p", CASES, ids=lambda p: f"{p.mode}-{p.hard_binary}-{p.feather_radius}-"
                                                   f"{p.poisson_mixed}-{p.laplacian_levels}")
def test_pixels_outside_the_reach_of_the_mode_are_unchanged(p):
    canvas = _canvas()
    rgb, alpha = _logo()
    out, eff = bl.blend(canvas, rgb, alpha, ROI, p)
    changed = np.abs(out - canvas).max(axis=2) > 1e-3
    assert changed.any()
    rect = np.zeros_like(changed)
    if p.mode == "poisson":  # the bounding rectangle of the footprint dilated by poisson_pad_px
        ys, xs = np.nonzero(_full(ROI, alpha > bl.ALPHA_EPS))
        pad = p.poisson_pad_px
        rect[ys.min() - pad:ys.max() + pad + 1, xs.min() - pad:xs.max() + pad + 1] = True
        assert not (changed & ~rect).any()
    elif p.mode == "laplacian":  # nothing outside the ROI plus margin, < 0.5 grey beyond the margin
        m = 2 ** (p.laplacian_levels + 1)
        rect[ROI[0] - m:ROI[2] + m, ROI[1] - m:ROI[3] + m] = True
        assert not (changed & ~rect).any()
        visible = np.abs(out - canvas).max(axis=2) >= 0.5
        assert not (visible & (_distance_to_footprint(alpha, ROI) > m)).any()
    else:
        assert not (changed & (_distance_to_footprint(alpha, ROI) > _allowed_reach(p))).any()
    assert eff.shape == alpha.shape and eff.dtype == np.float32


@pytest.mark.parametrize("p", CASES, ids=lambda p: f"{p.mode}-{p.hard_binary}-{p.feather_radius}-"
                                                   f"{p.poisson_mixed}-{p.laplacian_levels}")
def test_the_logo_is_where_alpha_is_one(p):
    canvas = _canvas()
    rgb, alpha = _logo()
    out, eff = bl.blend(canvas, rgb, alpha, ROI, p)
    region = out[ROI[0]:ROI[2], ROI[1]:ROI[3]]
    core = _core(alpha, 6)  # 6 px inside the logo's edge
    assert eff[core].min() >= 0.5
    assert eff[_distance_to_footprint(alpha, ROI)[ROI[0]:ROI[2], ROI[1]:ROI[3]] > 6].max() < 0.5
    if p.mode in ("hard", "feather"):
        assert np.abs(region[core] - rgb[core]).mean() < 2.0
    else:  # the logo's colours may shift, its pattern must stay: white bar brighter than the red disc
        gray = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY)
        bar = core & (rgb[..., 1] > 200)
        disc = core & (rgb[..., 1] < 100)
        assert gray[bar].mean() > gray[disc].mean() + 60
        red = region[..., 0] - region[..., 1]
        assert red[disc].mean() > 60


def test_blend_copies_the_canvas_unless_asked_to_work_in_place():
    canvas = _canvas()
    before = canvas.copy()
    rgb, alpha = _logo()
    out, _ = bl.blend(canvas, rgb, alpha, ROI, _params("feather"))
    np.testing.assert_array_equal(canvas, before)
    out2, _ = bl.blend(canvas, rgb, alpha, ROI, _params("feather"), inplace=True)
    assert out2 is canvas
    np.testing.assert_array_equal(out, out2)


def test_poisson_falls_back_to_feather_at_the_canvas_border():
    canvas = _canvas()
    rgb, alpha = _logo()
    corner = (0, 0, 150, 150)  # the disc comes within 3 px of the top and left borders
    p = _params("poisson")
    assert bl.effective_mode(canvas.shape, alpha, corner, p) == "feather"
    assert bl.effective_mode(canvas.shape, alpha, ROI, p) == "poisson"
    got, eff = bl.blend(canvas, rgb, alpha, corner, p)
    want, want_eff = bl.blend(canvas, rgb, alpha, corner, _params("feather"))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(eff, want_eff)


def test_a_normal_poisson_clone_keeps_the_background_grain_around_the_logo():
    rng = np.random.default_rng(5)
    canvas = np.clip(np.full((480, 640, 3), 110.0) + rng.normal(0, 4, (480, 640, 3)), 0, 255).astype(np.float32)
    rgb, alpha = _logo()
    out, _ = bl.blend(canvas, rgb, alpha, ROI, _params("poisson"))
    d = _distance_to_footprint(alpha, ROI)
    band = (d > 1) & (d <= 4)  # where the solver left a smooth membrane (1..3 px out), off the logo's rim

    def grain(img):  # fine-scale noise, robust: MAD of the 2nd difference along x
        g = img.mean(axis=2)
        r = (g[:, 2:] - 2 * g[:, 1:-1] + g[:, :-2])[band[:, 1:-1]]
        return float(np.median(np.abs(r)))

    assert 0.75 * grain(canvas) < grain(out) < 1.25 * grain(canvas)  # the band keeps its grain: no smooth halo
    mixed, _ = bl.blend(canvas, rgb, alpha, ROI, _params("poisson", poisson_mixed=True))
    assert 0.75 * grain(canvas) < grain(mixed) < 1.25 * grain(canvas)  # mixed keeps it by itself


def test_modes_differ_from_each_other():
    canvas = _canvas()
    rgb, alpha = _logo()
    outs = [bl.blend(canvas, rgb, alpha, ROI, p)[0] for p in CASES]
    for i in range(len(outs)):
        for j in range(i):
            assert np.abs(outs[i] - outs[j]).mean() > 0.01, (CASES[i], CASES[j])


def test_feather_softens_the_edge_and_hard_binary_keeps_it_crisp():
    canvas = np.zeros((200, 200, 3), np.float32)
    rgb = np.full((100, 100, 3), 200, np.float32)
    alpha = np.zeros((100, 100), np.float32)
    alpha[20:80, 20:80] = 1.0
    roi = (50, 50, 150, 150)
    hard, _ = bl.blend(canvas, rgb, alpha, roi, _params("hard", hard_binary=True))
    soft, eff = bl.blend(canvas, rgb, alpha, roi, _params("feather", feather_radius=4.0))
    row_h, row_s = hard[100, 60:80, 0], soft[100, 60:80, 0]
    assert set(np.unique(row_h)) <= {0.0, 200.0}
    assert ((row_s > 5) & (row_s < 195)).sum() >= 4  # a ramp several pixels wide
    assert eff[50, 20] < 0.5 < eff[50, 30]  # the 0.5 contour moved about 4 px inward


def _thin_text(h=40, w=160, stroke=2):
    """Letter-like strokes `stroke` px wide: what a word mark is at 60-160 px wide."""
    alpha = np.zeros((h, w), np.float32)
    for x in range(8, w - 8, 12):
        alpha[8:h - 8, x:x + stroke] = 1.0  # uprights
        alpha[8:8 + stroke, x:x + 8] = 1.0  # a bar on top of each
    return np.full((h, w, 3), 30, np.float32), alpha


def test_feather_keeps_thin_strokes_visible_and_wide_ones_feathered():
    canvas = np.full((200, 300, 3), 220, np.float32)
    rgb, alpha = _thin_text()
    roi = (80, 70, 120, 230)
    drawn = _params("feather", feather_radius=3.0)
    assert bl.feather_cap(alpha, 3.0) < 1.0  # the drawn 3 px would erode 2-px strokes away
    out, eff = bl.blend(canvas, rgb, alpha, roi, drawn)
    foot = alpha >= 0.5
    assert (eff[foot] >= 0.5).mean() >= bl.FEATHER_KEEP  # at least 80 % of the strokes still show
    assert (out[80:120, 70:230, 0][foot] < 125).mean() >= bl.FEATHER_KEEP  # and are dark on the page
    assert (bl._feather_alpha(alpha, 3.0)[foot] >= 0.5).mean() < 0.05  # the uncapped feather: gone
    square = np.zeros((140, 140), np.float32)
    square[20:120, 20:120] = 1.0
    assert bl.feather_cap(square, 4.0) == 4.0  # a wide shape keeps its drawn radius (92 % left)
    assert bl.feather_cap(square[:80, :80], 4.0) == 3.0  # 60 px wide: 4 px in from each side leaves 75 %
    assert bl.feather_cap(np.zeros((10, 10), np.float32), 4.0) == 0.0


def test_sampling_is_deterministic_follows_the_weights_and_serialises():
    cfg = bl.BlendConfig()
    a, b = bl.sample_blend(np.random.default_rng(1), cfg), bl.sample_blend(np.random.default_rng(1), cfg)
    assert a == b
    assert json.loads(json.dumps(dataclasses.asdict(a))) == dataclasses.asdict(a)
    rng = np.random.default_rng(2)
    modes = [bl.sample_blend(rng, cfg).mode for _ in range(2000)]
    for m in bl.BLEND_MODES:
        assert 0.2 < modes.count(m) / len(modes) < 0.3
    only = bl.BlendConfig(hard_weight=0, feather_weight=0, poisson_weight=0, laplacian_weight=2.0)
    draws = [bl.sample_blend(np.random.default_rng(s), only) for s in range(50)]
    assert {d.mode for d in draws} == {"laplacian"}
    assert all(2 <= d.laplacian_levels <= 4 and 1.0 <= d.feather_radius <= 4.0 for d in draws)


def test_bad_configs_and_inputs_are_refused_with_the_value_named():
    with pytest.raises(ConfigError, match="weights"):
        bl.BlendConfig(hard_weight=-1.0)
    with pytest.raises(ConfigError, match="weights"):
        bl.BlendConfig(hard_weight=0, feather_weight=0, poisson_weight=0, laplacian_weight=0)
    with pytest.raises(ConfigError, match="laplacian_levels_range"):
        bl.BlendConfig(laplacian_levels_range=(2, 9))
    with pytest.raises(ConfigError, match="poisson_pad_px"):
        bl.BlendConfig(poisson_pad_px=2)
    canvas = _canvas()
    rgb, alpha = _logo()
    with pytest.raises(ConfigError, match="'blur'"):
        bl.blend(canvas, rgb, alpha, ROI, _params("blur"))
    with pytest.raises(InputImageError, match="roi"):
        bl.blend(canvas, rgb, alpha, (400, 600, 550, 750), _params("hard"))
    with pytest.raises(InputImageError, match="logo_rgb"):
        bl.blend(canvas, rgb[:10], alpha, ROI, _params("hard"))
    with pytest.raises(InputImageError, match="canvas"):
        bl.blend(canvas.astype(np.uint8), rgb, alpha, ROI, _params("hard"))


@pytest.mark.parametrize("mode", bl.BLEND_MODES)
def test_an_empty_alpha_changes_nothing(mode):
    canvas = _canvas()
    rgb, _ = _logo()
    out, eff = bl.blend(canvas, rgb, np.zeros((150, 150), np.float32), ROI, _params(mode))
    np.testing.assert_allclose(out, canvas, atol=1e-3)
    assert eff.max() == 0.0


@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize("shape", [(64, 90), (131, 229)])
def test_the_poisson_solver_gives_what_opencv_seamless_clone_gives(shape, mixed):
    """_seamless_clone solves cv2.seamlessClone's equation with its own DST solver: on the same 8-bit
    inputs the two agree to within one gray level (OpenCV truncates its float result; so does the solver)."""
    rng = np.random.default_rng(3)
    h, w = shape
    dst = np.clip(cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 4)
                  + rng.normal(0, 4, (h, w, 3)).astype(np.float32), 0, 255).round().astype(np.uint8)
    src = np.full((h, w, 3), 90, np.uint8)
    cv2.putText(src, "LOGO", (12, h - 16), cv2.FONT_HERSHEY_SIMPLEX, h / 45, (240, 30, 60), max(1, h // 20))
    foot = np.zeros((h, w), np.uint8)
    foot[12:-12, 12:-12] = 1
    mask = cv2.dilate(foot, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13)))
    bx, by, bw, bh = cv2.boundingRect(mask)
    flag = cv2.MIXED_CLONE if mixed else cv2.NORMAL_CLONE
    ref = cv2.seamlessClone(src, dst, mask * 255, (bx + bw // 2, by + bh // 2), flag)[by:by + bh, bx:bx + bw]
    r = (slice(by, by + bh), slice(bx, bx + bw))
    mine = bl._seamless_clone(src[r].astype(np.float32), dst[r].astype(np.float32), mask[r], mixed)
    diff = np.abs(mine - ref.astype(np.float32))
    assert mine.dtype == np.float32 and mine.shape == ref.shape
    assert diff.max() <= 1.0 and (diff > 0).mean() < 0.03
    # and the clone did something: the logo's red text is in it, the destination's texture is not
    assert np.abs(mine - dst[r].astype(np.float32)).max() > 50


@pytest.mark.parametrize("n, m", [(37, 53), (96, 130), (151, 203)])
def test_channel_first_dst_gives_the_bits_of_the_interleaved_one(n, m):
    """_seamless_clone solves each channel's Poisson equation with DST-I over planes stacked channel
    first (contiguous lines, faster); generation's bytes rest on that giving exactly the transforms
    over an (n, m, 3) array's first two axes that the solver took before."""
    import scipy.fft

    rng = np.random.default_rng(n * m)
    rhs = (rng.standard_normal((n + 2, m + 2, 3)) * 40).astype(np.float32)[1:-1, 1:-1]
    lam = rng.uniform(-8, -0.01, (n, m)).astype(np.float32)
    f = scipy.fft.dstn(rhs, type=1, axes=(0, 1), workers=1)
    f /= cv2.merge([lam, lam, lam])
    interleaved = scipy.fft.idstn(f, type=1, axes=(0, 1), workers=1)
    g = scipy.fft.dstn(np.stack(cv2.split(rhs)), type=1, axes=(1, 2), workers=1)
    g /= lam
    planar = cv2.merge(list(scipy.fft.idstn(g, type=1, axes=(1, 2), workers=1)))
    assert planar.dtype == interleaved.dtype == np.float32
    assert np.array_equal(planar, interleaved)


def _checker(cell=6, lo=20.0, hi=235.0):
    """A high-contrast checkerboard: a texture whose edges beat the logo's flat fill everywhere."""
    yy, xx = np.mgrid[0:480, 0:640]
    g = np.where(((yy // cell) + (xx // cell)) % 2 == 0, lo, hi).astype(np.float32)
    return cv2.merge([g, g, g])


def test_a_mixed_clone_that_would_show_more_background_than_logo_is_a_normal_clone(monkeypatch):
    rgb, alpha = _logo()
    textured = _checker()
    mixed, normal = _params("poisson", poisson_mixed=True), _params("poisson")
    got, eff = bl.blend(textured, rgb, alpha, ROI, mixed)
    want, want_eff = bl.blend(textured, rgb, alpha, ROI, normal)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(eff, want_eff)
    # What the mixed clone would have made without the guard: the checkerboard through the logo's
    # flat red fill (the disc's core less the white bar and a margin round it).
    monkeypatch.setattr(bl, "MIXED_KEEP", 0.0)
    forced, _ = bl.blend(textured, rgb, alpha, ROI, mixed)
    bar = np.zeros((150, 150), bool)
    bar[75 - 15 - 5:75 + 15 + 6, 150 // 4 - 5:3 * 150 // 4 + 6] = True
    red = _core(alpha, 8) & ~bar
    y0, x0, y1, x1 = ROI
    fill_forced, fill_got = forced[y0:y1, x0:x1][red], got[y0:y1, x0:x1][red]
    assert fill_forced.std(axis=0).mean() > 3 * fill_got.std(axis=0).mean()


def test_a_mixed_clone_on_a_quiet_background_stays_mixed():
    rng = np.random.default_rng(5)
    canvas = np.clip(np.full((480, 640, 3), 110.0) + rng.normal(0, 4, (480, 640, 3)), 0, 255).astype(np.float32)
    rgb, alpha = _logo()
    got, _ = bl.blend(canvas, rgb, alpha, ROI, _params("poisson", poisson_mixed=True))
    normal, _ = bl.blend(canvas, rgb, alpha, ROI, _params("poisson"))
    assert np.abs(got - normal).max() > 5  # the mixed clone was solved, not the normal one
    flat = np.full((40, 40, 3), 100.0, np.float32)
    src = flat.copy()
    src[10:30, 10:30] = 200.0
    mask = np.zeros((40, 40), np.uint8)
    mask[4:36, 4:36] = 1
    assert bl.mixed_logo_share(src, flat, mask) == 1.0  # a flat background gives no guidance of its own
    assert bl.mixed_logo_share(flat, flat, mask) == 0.0  # no guidance at all
