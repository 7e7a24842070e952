"""The pure parts of synth/html: sampling records, the page camera's exact box transform."""

from __future__ import annotations

import numpy as np

from synth.html import camera, themes
from synth.protos import header_config_pb2 as hpb


def test_sampling_is_a_function_of_the_generator_and_recorded():
    c = hpb.HeaderConfig()
    a = [themes.sample_page(np.random.default_rng(s), c.screen, c.print) for s in range(50)]
    b = [themes.sample_page(np.random.default_rng(s), c.screen, c.print) for s in range(50)]
    assert a == b
    modes = {p.mode for p in a}
    assert modes == {"screen", "print"}
    for p in a:
        if p.mode == "print":
            assert (p.width, p.height) == themes.PAPER[p.paper]
        else:
            assert c.screen.min_width <= p.width <= c.screen.max_width
    t1 = themes.sample_theme(np.random.default_rng(3), c.theme)
    t2 = themes.sample_theme(np.random.default_rng(3), c.theme)
    assert t1 == t2 and t1.to_json()["restyle_draws"] == themes.RESTYLE_DRAWS
    off = hpb.HeaderConfig()
    off.theme.probability = 0.0
    assert themes.theme_css(themes.sample_theme(np.random.default_rng(3), off.theme)) == ""
    on = hpb.HeaderConfig()
    on.theme.probability = 1.0
    on.theme.two_column_probability = 1.0
    css = themes.theme_css(themes.sample_theme(np.random.default_rng(3), on.theme))
    assert "column-count: 2" in css and "h6 {" in css


def test_camera_warp_moves_boxes_exactly_with_the_pixels():
    """Dark bars at known line boxes; after a rotation and perspective the dark pixels lie
    inside the transformed box and reach (within 1.5 px) each of its sides."""
    h, w = 600, 800
    img = np.full((h, w, 3), 255, np.uint8)
    lines = [[[100, 100, 500, 130]], [[200, 300, 700, 330], [200, 340, 420, 370]]]
    for group in lines:
        for x0, y0, x1, y1 in group:
            img[y0:y1, x0:x1] = 0
    cfg = hpb.HeaderConfig().camera
    cfg.probability = 1.0
    cfg.max_rotation_deg = 3.0
    cfg.max_perspective = 0.03
    for seed in range(5):
        p = camera.sample_page_camera(np.random.default_rng(seed), cfg, 90)
        assert p.applied and p.rotation_deg != 0
        out, H = camera.apply_warp(img, p)
        boxes = camera.warp_boxes(lines, H, h, w)
        dark = out.min(axis=2) < 128
        for group, box in zip(lines, boxes):
            # the bars of this header only: mask the warped footprint of the other header away
            mask = np.zeros((h, w), np.uint8)
            for x0, y0, x1, y1 in group:
                mask[y0:y1, x0:x1] = 255
            warped_mask, _ = camera.apply_warp(np.dstack([mask] * 3), _with_border(p, 0))
            ys, xs = np.nonzero(dark & (warped_mask[..., 0] > 128))
            x0, y0, x1, y1 = box
            assert xs.min() >= x0 - 1 and xs.max() + 1 <= x1 + 1 and ys.min() >= y0 - 1 and ys.max() + 1 <= y1 + 1
            assert abs(xs.min() - x0) <= 1.5 and abs(xs.max() + 1 - x1) <= 1.5
            assert abs(ys.min() - y0) <= 1.5 and abs(ys.max() + 1 - y1) <= 1.5


def _with_border(p, grey):
    from dataclasses import replace

    return replace(p, border_grey=grey)


def test_sensor_is_deterministic_and_identity_when_off():
    img = np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    cfg = hpb.HeaderConfig().camera
    cfg.probability = 1.0
    p = camera.sample_page_camera(np.random.default_rng(1), cfg, 90)
    assert np.array_equal(camera.apply_sensor(img, p), camera.apply_sensor(img, p))
    assert not np.array_equal(camera.apply_sensor(img, p), img)
    cfg.enabled = False
    q = camera.sample_page_camera(np.random.default_rng(1), cfg, 77)
    assert not q.applied and q.jpeg_quality == 77 and camera.apply_sensor(img, q) is img


def test_printed_page_draws_which_pdf_page_and_one_page_configs_keep_the_first():
    c = hpb.HeaderConfig()
    c.print.probability = 1.0
    many = [themes.sample_page(np.random.default_rng(s), c.screen, c.print) for s in range(40)]
    assert all(0.0 <= p.sheet < 1.0 for p in many) and len({round(p.sheet, 2) for p in many}) > 20
    c.print.max_pages = 1
    one = [themes.sample_page(np.random.default_rng(s), c.screen, c.print) for s in range(40)]
    assert all(p.sheet == 0.0 for p in one)
    # The draw happens either way: the rest of the record, and the draws after it, do not move.
    assert [(p.paper, p.width) for p in one] == [(p.paper, p.width) for p in many]
    r1, r2 = np.random.default_rng(7), np.random.default_rng(7)
    themes.sample_page(r1, c.screen, c.print)
    c.print.max_pages = 4
    themes.sample_page(r2, c.screen, c.print)
    assert r1.random() == r2.random()
