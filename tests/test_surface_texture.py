"""synth.surface's texture pass on scenes whose truth is known: stationary textures filling the
image (bricks, random-phase noise), two textures of the same mean colour side by side, a flat
panel on a brick wall, and flat scenes that must stay as the fine pass sees them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from synth import images, placement, surface
from synth.errors import ConfigError
from test_surface import two_halves

HW = (480, 640)
LOGO_HW = (60, 90)
NO_TEXTURE = surface.SurfaceConfig(max_texture_regions=0)


def bricks(h: int = 480, w: int = 640, seed: int = 0, brick=(20, 48), mortar: int = 4) -> np.ndarray:
    """A frontal running-bond brick wall: bricks of (height, width) px in slightly varying red,
    light mortar joints, camera noise."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float64)
    img[:] = (205, 200, 190)
    bh, bw = brick
    for row, y in enumerate(range(-bh // 2, h, bh + mortar)):
        shift = (row % 2) * (bw + mortar) // 2
        for x in range(-bw - shift, w, bw + mortar):
            img[max(0, y):max(0, y + bh), max(0, x):max(0, x + bw)] = np.array([150.0, 72, 55]) + rng.normal(0, 8, 3)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def noise_texture(h: int = 480, w: int = 640, seed: int = 0, sigma: float = 2.0, std: float = 30.0,
                  mean=(128.0, 128.0, 128.0)) -> np.ndarray:
    """A random-phase noise texture (white noise low-passed at `sigma` px) of RMS `std` around `mean`."""
    rng = np.random.default_rng(seed)
    n = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), sigma)
    n = n / n.std() * std
    return np.clip(n[..., None] + np.asarray(mean, np.float32), 0, 255).astype(np.uint8)


def stripes(h: int = 480, w: int = 640, seed: int = 0, period: float = 32.0, amp: float = 45.0,
            mean: float = 128.0, angle_deg: float = 45.0) -> np.ndarray:
    """Soft-edged stripes of `period` px at `angle_deg`, +-`amp` around `mean`, camera noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    t = np.radians(angle_deg)
    wave = np.tanh(3 * np.sin((xx * np.cos(t) + yy * np.sin(t)) * 2 * np.pi / period)) / np.tanh(3)
    v = mean + amp * wave + rng.normal(0, 4, (h, w))
    return np.clip(np.repeat(v[..., None], 3, axis=2), 0, 255).astype(np.uint8)


def fine_noise_left_stripes_right(seed: int = 0) -> np.ndarray:
    """Fine noise left of x = 320, coarse stripes right of it; both grey 128 on average."""
    img = noise_texture(seed=seed)
    img[:, 320:] = stripes(seed=seed + 1)[:, 320:]
    return img


def texture_regions(s: surface.Surface):
    return [r for r in s.regions if r.kind == surface.KIND_TEXTURE]


def interior(mask: np.ndarray, px: int) -> np.ndarray:
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8),
                     borderType=cv2.BORDER_CONSTANT, borderValue=1) > 0


@pytest.fixture(scope="module")
def two_textures():
    return surface.analyse(fine_noise_left_stripes_right())


@pytest.mark.parametrize("make", [bricks, noise_texture], ids=["bricks", "noise"])
def test_a_stationary_texture_is_one_texture_region_whose_own_edges_are_no_obstacle(make):
    img = make()
    fine = surface.analyse(img, NO_TEXTURE)
    assert fine.regions == ()  # the fine pass alone finds no usable region ...
    assert fine.edges.mean() > 0.3  # ... because every joint or speck is a Canny edge
    s = surface.analyse(img)
    tex = texture_regions(s)
    assert len(tex) >= 1 and tex == list(s.regions)
    assert np.mean(s.labels >= 0) > 0.9
    biggest = max(tex, key=lambda r: r.area_px)
    assert biggest.area_px > 0.6 * HW[0] * HW[1]
    # Inside it the texture's own fine edges (and the fine pass' boundaries) are gone.
    inside = interior(s.labels == biggest.id, 8)
    assert inside.mean() > 0.5
    assert not s.edges[inside].any() and not s.boundaries[inside].any()
    assert np.any(fine.edges[inside])
    # A random texture's short line segments are not perspective evidence; the wall is frontal.
    assert all(r.plane.evidence == surface.EVIDENCE_FRONTAL for r in tex)
    # Logos now fit, in the region's kind, and the record says so.
    rng = np.random.default_rng(0)
    got = [placement.sample_placement(rng, s, LOGO_HW, HW) for _ in range(30)]
    assert all(p is not None and p.region_kind == surface.KIND_TEXTURE for p in got)
    assert placement.sample_placement(np.random.default_rng(0), fine, LOGO_HW, HW) is None


def test_two_textures_of_one_mean_colour_are_split_at_the_true_line(two_textures):
    s = two_textures
    tex = texture_regions(s)
    assert len(tex) == 2
    left, right = s.labels[240, 100], s.labels[240, 540]
    assert left >= 0 and right >= 0 and left != right
    for rid, (x0, x1) in ((left, (0, 320)), (right, (320, 640))):
        r = s.regions[rid]
        assert r.kind == surface.KIND_TEXTURE
        assert r.area_px == pytest.approx(320 * 480, rel=0.1)
        assert abs(r.bbox[1] - x0) <= 12 and abs(r.bbox[3] - x1) <= 12
    # On every row the boundary lies within a few pixels of x = 320, and labels never cross it.
    rows = np.arange(8, 472)
    band = s.boundaries[rows, 296:345]
    assert band.any(axis=1).all()
    offsets = np.array([np.abs(np.flatnonzero(b) + 296 - 319.5).min() for b in band])
    assert np.median(offsets) <= 6 and offsets.max() <= 12
    assert not np.any(s.labels[:, :308] == right) and not np.any(s.labels[:, 332:] == left)
    # The stripes' and the noise's own edges are gone inside each region, not at the line.
    assert s.edges[interior(s.labels == left, 8)].sum() == 0
    assert s.edges[interior(s.labels == right, 8)].sum() == 0


def test_placements_on_two_textures_never_cross_the_texture_boundary(two_textures):
    s = two_textures
    rng = np.random.default_rng(0)
    used = set()
    for _ in range(200):
        p = placement.sample_placement(rng, s, LOGO_HW, HW)
        assert p is not None and p.region_kind == surface.KIND_TEXTURE
        q = p.quad_array()
        # Ground truth, independent of the analysis: the logo lies wholly on one side of x = 320.
        assert q[:, 0].max() < 319.5 or q[:, 0].min() > 319.5
        assert not placement.straddles(q, s)
        used.add(p.region_id)
    assert len(used) == 2
    # A footprint across the line does straddle it.
    across = np.array([[280.0, 200], [360, 200], [360, 260], [280, 260]])
    assert placement.straddles(across, s)


def test_a_flat_panel_on_a_brick_wall_stays_flat_and_its_border_stays_an_obstacle():
    img = bricks(seed=2)
    img[160:320, 220:420] = (90, 110, 160)
    img[160:320, 220:420] += np.random.default_rng(5).integers(0, 3, (160, 200, 3), dtype=np.uint8)
    s = surface.analyse(img)
    panel = s.regions[s.labels[240, 320]]
    assert panel.kind == surface.KIND_FLAT
    assert panel.bbox[0] >= 148 and panel.bbox[1] >= 208 and panel.bbox[2] <= 332 and panel.bbox[3] <= 432
    wall = texture_regions(s)
    assert wall and all(r.kind == surface.KIND_TEXTURE for r in wall)
    assert np.mean(np.isin(s.labels, [r.id for r in wall])) > 0.6
    # The panel's outline is still an edge or boundary on each of its four sides.
    obstacles = s.edges | s.boundaries
    for side in (obstacles[150:166, 260:380].any(axis=0), obstacles[314:330, 260:380].any(axis=0),
                 obstacles[200:280, 210:226].any(axis=1), obstacles[200:280, 414:430].any(axis=1)):
        assert side.all()
    rng = np.random.default_rng(1)
    for _ in range(100):
        p = placement.sample_placement(rng, s, LOGO_HW, HW)
        assert p is not None
        q = p.quad_array()
        fp = placement.footprint_mask(q, HW)
        on_panel = fp[160:320, 220:420].sum()
        assert on_panel == 0 or on_panel == fp.sum()  # on the wall or on the panel, never across


def test_flat_scenes_keep_flat_regions_and_the_texture_pass_adds_nothing():
    for img in (two_halves(), two_halves(seed=3)):
        a, b = surface.analyse(img), surface.analyse(img, NO_TEXTURE)
        assert [r.kind for r in a.regions] == [surface.KIND_FLAT] * 2
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.edges, b.edges)
        np.testing.assert_array_equal(a.boundaries, b.boundaries)
    # A photograph: the night sky above the launch pad is one large flat region.
    rocket = next(p for p in images.builtin_background_paths("skimage:photos") if p.endswith("rocket.jpg"))
    rgb = cv2.cvtColor(cv2.imread(rocket), cv2.COLOR_BGR2RGB)
    s = surface.analyse(cv2.resize(rgb, (640, 427), interpolation=cv2.INTER_AREA))
    sky = s.regions[s.labels[60, 320]]
    assert sky.kind == surface.KIND_FLAT and sky.area_px > 0.4 * 640 * 427


@pytest.mark.parametrize("level, is_texture", [(40, True), (95, False)], ids=["faint", "clutter"])
def test_busy_random_blocks_are_clutter_but_faint_ones_are_a_texture(level, is_texture):
    cells = np.random.default_rng(0).random((60, 80)) < 0.5  # 8 px blocks, black or white at random
    v = np.where(np.kron(cells, np.ones((8, 8), bool)), 125 + level, 125 - level).astype(np.uint8)
    s = surface.analyse(cv2.merge([v, v, v]))
    if is_texture:
        assert texture_regions(s) and np.mean(s.labels >= 0) > 0.9
    else:  # local RMS contrast over max_texture_contrast: nothing to put a logo on
        assert s.regions == ()


def test_texture_analysis_is_deterministic(two_textures):
    again = surface.analyse(fine_noise_left_stripes_right())
    np.testing.assert_array_equal(again.labels, two_textures.labels)
    np.testing.assert_array_equal(again.edges, two_textures.edges)
    np.testing.assert_array_equal(again.boundaries, two_textures.boundaries)
    assert len(again.regions) == len(two_textures.regions)
    for a, b in zip(again.regions, two_textures.regions):
        assert (a.bbox, a.area_px, a.anchor_xy, a.kind) == (b.bbox, b.area_px, b.anchor_xy, b.kind)
        np.testing.assert_array_equal(a.plane.H_plane, b.plane.H_plane)


@pytest.mark.parametrize("field, value", [("max_texture_regions", -1), ("max_texture_regions", 2.5),
                                          ("texture_sigma", 0.5), ("texture_flat", 30.0),
                                          ("texture_marker_min_px", 2), ("max_texture_edge_density", 1.5),
                                          ("max_texture_contrast", 0.0), ("texture_erode", -1),
                                          ("texture_min_vp_share", 2.0), ("texture_floor", 0.0)])
def test_bad_texture_settings_are_refused_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"SurfaceConfig\.{field} = {value!r} is not allowed"):
        surface.SurfaceConfig(**{field: value})


@pytest.mark.parametrize("hw", [(9, 13), (33, 17), (8, 2000), (481, 641)])
def test_odd_sizes_run_the_texture_pass_and_map_back_to_full_resolution(hw):
    s = surface.analyse(noise_texture(*hw))
    assert s.labels.shape == s.edges.shape == s.boundaries.shape == hw
    if hw == (481, 641):  # large enough to hold a region: the whole noise is one texture
        assert [r.kind for r in s.regions] == [surface.KIND_TEXTURE] and np.mean(s.labels >= 0) > 0.9


def test_the_config_switches_the_texture_pass_off():
    from synth import config as configlib, settings

    base = 'logo { builtin: "skimage:logo" } background { builtin: "skimage:photos" }'
    on = settings.Settings.from_config(configlib.parse_config_text(base, "on"))
    off = settings.Settings.from_config(configlib.parse_config_text(
        base + " realism { surface { texture_regions: false } }", "off"))
    wall = bricks()
    assert texture_regions(surface.analyse(wall, on.surface_cfg))
    assert surface.analyse(wall, off.surface_cfg).regions == ()
