"""The realism engine end to end on scenes where the truth is known."""

import json
import os

import cv2
import numpy as np
import pytest

from synth import backdrops, boxes as boxlib, config as configlib, generate, logo_bank, placement, scene, settings
from synth.errors import ConfigError
from synth.inputs import load_inputs
from conftest import write_config


def _engine(cfg_path):
    cfg = configlib.load_config(cfg_path)
    inputs = load_inputs(cfg)
    s = settings.Settings.from_config(cfg.proto)
    return inputs, s, backdrops.Backdrops(inputs, s), logo_bank.LogoBank(inputs, s)


def _compose(eng, seed):
    inputs, s, bd, bank = eng
    return scene.compose(np.random.default_rng(seed), seed, inputs, bd, bank, s)


def _two_halves(path, h=240, w=320):
    rng = np.random.default_rng(0)
    img = np.empty((h, w, 3), np.float32)
    img[:, : w // 2] = 60
    img[:, w // 2:] = 190
    img += rng.normal(0, 2, img.shape)
    cv2.imwrite(str(path), np.clip(img, 0, 255).astype(np.uint8))


def test_a_record_re_renders_to_the_same_pixels(workdir):
    eng = _engine(write_config(workdir))
    p1, r1 = _compose(eng, 7)
    p2, r2 = _compose(eng, 7)
    assert p1 == p2
    np.testing.assert_array_equal(r1.image, r2.image)
    again = scene.render_scene(p1, eng[2], eng[3], eng[1])
    np.testing.assert_array_equal(again.image, r1.image)
    np.testing.assert_array_equal(again.boxes, r1.boxes)
    json.dumps(p1.to_json())  # the record is JSON-serialisable


def test_compose_keeps_gate_scores_only_where_re_scoring_gives_the_same(tmp_path, monkeypatch):
    """compose keeps an object's gate score from when it was pasted unless a later layer touched what
    the gate reads; re-rendering the record scores every object afresh: both must agree exactly, and
    the visible opacities (computed on each layer's region only) must be the full-canvas products."""
    # the light stage (off by default) switched on: its shadows are later layers too
    eng = _engine(_occlusion_config(tmp_path, "gate { enabled: true } light { enabled: true } "
                                              "occlusion { enabled: true occluder_probability: 0.7 }"))
    rescored = []  # per compose call: (objects, gate.score calls made when finishing the scene)
    score, finish = scene.gate.score, scene._finish
    calls = []
    monkeypatch.setattr(scene.gate, "score", lambda *a, **k: calls.append(1) or score(*a, **k))

    def counted_finish(canvas, layers, top=None):
        calls.clear()
        out = finish(canvas, layers, top)
        if any(la.score is not None for la in layers):  # compose's, not render_scene's
            rescored.append((len(layers), len(calls)))
        return out

    monkeypatch.setattr(scene, "_finish", counted_finish)
    unchanged, reads_unchanged = [], scene._reads_unchanged  # scores kept by comparing what they read
    monkeypatch.setattr(scene, "_reads_unchanged", lambda *a: unchanged.append(reads_unchanged(*a)) or unchanged[-1])
    kept_and_touched = 0
    for seed in range(12):
        params, r = _compose(eng, seed)
        again = scene.render_scene(params, eng[2], eng[3], eng[1])
        assert r.scores == again.scores
        np.testing.assert_array_equal(r.boxes, again.boxes)
        for k in range(len(r.pasted)):
            v = r.pasted[k] * (1.0 - r.occluders[k]) if r.occluders[k] is not None else r.pasted[k].copy()
            for j in range(k + 1, len(r.pasted)):
                v *= 1.0 - r.pasted[j]
                if r.occluders[j] is not None:
                    v *= 1.0 - r.occluders[j]
            if r.distractors is not None:  # drawn last, over everything
                v *= 1.0 - r.distractors
            np.testing.assert_array_equal(r.visible[k], v)
            kept_and_touched += int(k + 1 < len(r.pasted))
    assert kept_and_touched >= 5, "some objects must have later layers"
    assert sum(n - c for n, c in rescored) >= 5, "compose must keep some scores"
    assert sum(c for _, c in rescored) >= 1, "and re-score some objects that a later layer touched"
    assert True in unchanged, "and keep some whose region a later layer overlaps without changing a pixel read"


def test_to_json_is_dataclasses_asdict(tmp_path):
    from dataclasses import asdict

    eng = _engine(_occlusion_config(tmp_path, "occlusion { enabled: true occluder_probability: 0.5 }"))
    for seed in range(5):
        params, _ = _compose(eng, seed)
        assert params.to_json() == asdict(params)
        assert json.dumps(params.to_json()) == json.dumps(asdict(params))


def _halves_config(tmp_path, realism: str) -> str:
    os.makedirs(tmp_path / "bg")
    _two_halves(tmp_path / "bg" / "halves.png")
    from conftest import make_logo, write_rgba

    write_rgba(str(tmp_path / "logo.png"), make_logo(64))
    return write_config(tmp_path, body='logo { class_name: "a" path: "logo.png" }\n'
                        'background { directory: "bg" }\nimage_size { height: 240 width: 320 }\n'
                        'placement { min_objects: 2 max_objects: 3 min_scale: 0.1 max_scale: 0.3 }\n'
                        f'realism {{ {realism} }}\n')


def _occlusion_config(tmp_path, realism: str) -> str:
    """The two halves and a cluttered photo: occluders and distractors are cut from the other one."""
    from conftest import make_cluttered

    path = _halves_config(tmp_path, realism)
    cv2.imwrite(str(tmp_path / "bg" / "objects.png"), make_cluttered(240, 320, 5))
    return path


def test_logos_never_cross_the_edge_between_two_flat_regions(tmp_path):
    eng = _engine(_halves_config(tmp_path, "occlusion { enabled: false }"))
    n = 0
    for seed in range(25):
        params, r = _compose(eng, seed)
        _, backdrop, surf = eng[2].get(params.background_index, params.fit_variant)
        for o in params.objects:
            quad = np.asarray(o.quad)
            assert not placement.straddles(quad, surf)
            under = backdrop[placement.footprint_mask(quad, (240, 320))].mean(axis=-1)
            assert under.max() < 125 or under.min() > 125, "the footprint must lie on one half"
            n += 1
    assert n >= 25


def _painted(r, k: int, logo_from: float, cover_from: float):
    """Which layer shows at each pixel when the layers are painted in order: logo k where its opacity
    is at least logo_from; any other logo, an occluder (-2) or a distractor (-3) where theirs is at
    least cover_from."""
    top = np.full(r.pasted[0].shape, -1)
    for j, pa in enumerate(r.pasted):
        top[pa >= (logo_from if j == k else cover_from)] = j
        if r.occluders[j] is not None:
            top[r.occluders[j] >= cover_from] = -2
    if r.distractors is not None:
        top[r.distractors >= cover_from] = -3
    return top


def _within(a, b) -> bool:
    """Box a (ymin, xmin, ymax, xmax) lies inside box b."""
    return a[0] >= b[0] - 1e-6 and a[1] >= b[1] - 1e-6 and a[2] <= b[2] + 1e-6 and a[3] <= b[3] + 1e-6


def test_boxes_match_an_independent_painter_reference_and_pass_the_gate(tmp_path):
    eng = _engine(_occlusion_config(tmp_path, "gate { enabled: true } occlusion { enabled: true "
                                              "occluder_probability: 1 min_distractors: 2 max_distractors: 3 }"))
    covered, distracted, other_photo = 0, 0, 0
    for seed in range(20):
        params, r = _compose(eng, seed)
        distracted += len(params.distractors)
        for k, o in enumerate(params.objects):
            # Paint the layers in order, each thresholded. Where a logo's soft edge meets an occluder's,
            # whether a pixel is visible depends on both opacities, so the box is bracketed by two
            # painters: a logo pixel counted at opacity 0.5 and covered from 0.5 (the outer box), and
            # counted only when opaque and covered by any trace of a later layer (the inner box).
            # Visible means at least 0.5 of the logo's opacity left after every later layer.
            outer, inner = _painted(r, k, 0.5, 0.5) == k, _painted(r, k, 0.99, 0.01) == k
            assert inner.any()
            assert _within(boxlib.tight_box(inner), r.boxes[k]) and _within(r.boxes[k], boxlib.tight_box(outer))
            assert not r.scores[k].reasons(eng[1].gate_cfg)
            full = boxlib.tight_box(r.pasted[k] >= 0.5)
            assert r.boxes[k][0] >= full[0] - 1e-6 and r.boxes[k][2] <= full[2] + 1e-6
            if o.occluder is not None:
                covered += int(r.scores[k].visible_fraction < 0.97)
                other_photo += int(o.occluder.patch.cut.source_index != params.background_index)
    assert covered >= 5, "occluders must cover part of some logos"
    assert other_photo == covered or other_photo >= 5, "and come from the other photo of the pool"
    assert distracted >= 5  # cuts from the flat halves are refused (their outline is not their own)


def test_a_background_that_already_shows_the_logo_is_skipped_and_reported(tmp_path):
    from synth import images

    logo = images.load_logo(images.builtin_logo_path("skimage:logo"), 40)
    os.makedirs(tmp_path / "bg")
    coffee = images.load_background(os.path.join(os.path.dirname(images.builtin_logo_path("skimage:logo")),
                                                 "coffee.png"))
    clean = images.load_background(os.path.join(os.path.dirname(images.builtin_logo_path("skimage:logo")),
                                                "chelsea.png"))
    small = cv2.resize(logo, (220, 220), interpolation=cv2.INTER_AREA).astype(np.float32)
    a = small[..., 3:] / 255.0
    dirty = coffee.astype(np.float32).copy()
    dirty[60:280, 200:420] = dirty[60:280, 200:420] * (1 - a) + small[..., :3] * a
    cv2.imwrite(str(tmp_path / "bg" / "dirty.png"), cv2.cvtColor(dirty.astype(np.uint8), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "bg" / "clean.png"), cv2.cvtColor(clean, cv2.COLOR_RGB2BGR))
    cfg = write_config(tmp_path, body='logo { class_name: "s" builtin: "skimage:logo" border_matte { } }\n'
                       'background { directory: "bg" }\nimage_size { height: 240 width: 320 }\n'
                       'num_images: 6\nplacement { min_scale: 0.1 max_scale: 0.3 }\n')
    out = tmp_path / "out"
    s = generate.generate(configlib.load_config(cfg), str(out), show_progress=False)
    reasons = {os.path.basename(x["path"]): x["reason"] for x in s.skipped}
    assert list(reasons) == ["dirty.png"] and "already shows logo" in reasons["dirty.png"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [os.path.basename(x["path"]) for x in manifest["skipped_inputs"]] == ["dirty.png"]
    used = {json.loads(line)["background"] for line in (out / "params.jsonl").read_text().splitlines()}
    assert {os.path.basename(u) for u in used} == {"clean.png"}


def test_a_cluttered_background_is_counted_not_looped_on(tmp_path):
    os.makedirs(tmp_path / "bg")
    yy, xx = np.mgrid[0:240, 0:320]
    board = (((yy // 6) + (xx // 6)) % 2 * 200 + 20).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "bg" / "checker.png"), board)
    from conftest import make_logo, write_rgba

    write_rgba(str(tmp_path / "logo.png"), make_logo(64))
    cfg = write_config(tmp_path, body='logo { class_name: "a" path: "logo.png" }\nbackground { directory: "bg" }\n'
                       'image_size { height: 240 width: 320 }\nnum_images: 4\nval_fraction: 0\n'
                       'num_train_shards: 1\nplacement { min_scale: 0.1 max_scale: 0.3 }\n')
    s = generate.generate(configlib.load_config(cfg), str(tmp_path / "out"), show_progress=False)
    assert s.counts["train"]["images"] == 4 and s.counts["train"]["objects"] == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["splits"]["train"]["rejected"]["placement: no region fits"] >= 4
    assert manifest["splits"]["train"]["images_without_objects"] == 4
    # With the size prior (no min_scale/max_scale), a logo no region holds becomes a close-up instead.
    with open(cfg) as f:
        text = f.read().replace("placement { min_scale: 0.1 max_scale: 0.3 }", "")
    with open(cfg, "w") as f:
        f.write(text)
    s = generate.generate(configlib.load_config(cfg), str(tmp_path / "out2"), show_progress=False)
    assert s.counts["train"]["images"] == 4 and s.counts["train"]["objects"] >= 4
    records = [json.loads(line) for line in (tmp_path / "out2" / "params.jsonl").read_text().splitlines()]
    assert {o["mode"] for r in records for o in r["params"]["objects"]} == {"closeup"}


def test_thresholds_that_no_placement_can_meet_are_a_config_error(tmp_path):
    cfg = write_config(tmp_path, extra="realism { gate { min_size_px: 500 } }\n")
    with pytest.raises(ConfigError, match="realism.gate.min_size_px.*no placement can meet it"):
        configlib.load_config(cfg)
    cfg = write_config(tmp_path, extra="realism { gate { enabled: true } occlusion { enabled: true "
                                       "min_occluded_fraction: 0.5 max_occluded_fraction: 0.6 } }\n")
    with pytest.raises(ConfigError, match="min_occluded_fraction.*min_visible_fraction"):
        configlib.load_config(cfg)


def test_audit_verdicts_are_shared_through_the_cache_folder(workdir):
    from synth import audit

    inputs, s, _, _ = _engine(write_config(workdir, num_images=4))
    cache = audit.AuditCache(str(workdir / "audit"))
    first = backdrops.Backdrops(inputs, s, audit_cache=cache)
    first.get(0, 0)
    assert first._matcher is not None  # it audited background 0 itself
    verdict = first._audited[0]
    assert cache.get(0, inputs.background_paths[0]) == verdict
    assert cache.get(0, "/another/background.jpg") is None  # keyed by path too
    second = backdrops.Backdrops(inputs, s, audit_cache=audit.AuditCache(str(workdir / "audit")))
    second.get(0, 0)
    assert second._matcher is None and second._audited[0] == verdict  # read, not recomputed


def _same_surface(a, b) -> bool:
    maps = ("labels", "edges", "boundaries", "distance_to_edge")
    return (a.shape == b.shape and all(np.array_equal(getattr(a, m), getattr(b, m)) for m in maps)
            and len(a.regions) == len(b.regions)
            and all(np.array_equal(r.plane.H_plane, q.plane.H_plane)
                    and (r.id, r.area_px, r.bbox, r.anchor_xy, r.clearance_px, r.kind, r.plane.evidence)
                    == (q.id, q.area_px, q.bbox, q.anchor_xy, q.clearance_px, q.kind, q.plane.evidence)
                    for r, q in zip(a.regions, b.regions)))


def test_backdrop_cache_is_bounded_by_memory_and_an_evicted_backdrop_comes_back_the_same(workdir, monkeypatch):
    from synth import surface

    inputs, s, _, _ = _engine(write_config(workdir, num_images=4))
    calls = []
    analyse = surface.analyse
    monkeypatch.setattr(surface, "analyse", lambda img, cfg: calls.append(1) or analyse(img, cfg))
    roomy = backdrops.Backdrops(inputs, s)  # the default budget holds every variant of a few backgrounds
    keys = [(0, v) for v in range(backdrops.NUM_FIT_VARIANTS)]
    first = [roomy.get(*k) for k in keys]
    again = [roomy.get(*k) for k in keys]
    assert len(calls) == len(keys)  # drawn again: not analysed again
    assert all(a[1] is b[1] for a, b in zip(first, again))
    one = backdrops.Backdrops(inputs, s, cache_mb=1e-3)  # room for one backdrop only
    calls.clear()
    tight = [one.get(*k) for k in keys] + [one.get(*k) for k in keys]
    assert len(calls) == 2 * len(keys) and len(one._cache) == 1
    for a, b in zip(first + first, tight):  # re-analysed after eviction: the same backdrop and surface
        assert np.array_equal(a[1], b[1]) and _same_surface(a[2], b[2])


def test_surface_analyses_are_shared_through_the_cache_folder(workdir, monkeypatch):
    from synth import surface

    inputs, s, _, _ = _engine(write_config(workdir, num_images=4))
    folder = str(workdir / "surfaces")
    first = backdrops.Backdrops(inputs, s, surface_cache=backdrops.SurfaceCache(folder))
    _, fitted, surf = first.get(0, 1)
    assert first.analysed == 1 and len(os.listdir(folder)) == 1
    calls = []
    analyse = surface.analyse
    monkeypatch.setattr(surface, "analyse", lambda img, cfg: calls.append(1) or analyse(img, cfg))
    second = backdrops.Backdrops(inputs, s, surface_cache=backdrops.SurfaceCache(folder))  # another worker
    _, fitted2, surf2 = second.get(0, 1)
    assert calls == [] and second.analysed == 0  # loaded, not analysed
    assert np.array_equal(fitted, fitted2) and _same_surface(surf, surf2)
    assert _same_surface(surf2, analyse(fitted, s.surface_cfg))  # what a fresh analysis gives
    # Keyed by background path and variant; an unreadable file is analysed again, never fatal.
    cache = backdrops.SurfaceCache(folder)
    assert cache.get(0, 1, "/another/background.jpg") is None and cache.get(0, 2, inputs.background_paths[0]) is None
    cache.code = "written-by-other-code"  # a run resumed after an upgrade of synth/surface.py
    assert cache.get(0, 1, inputs.background_paths[0]) is None
    with open(os.path.join(folder, os.listdir(folder)[0]), "wb") as f:
        f.write(b"truncated")
    third = backdrops.Backdrops(inputs, s, surface_cache=backdrops.SurfaceCache(folder))
    assert _same_surface(third.get(0, 1)[2], surf) and third.analysed == 1


def test_surface_cache_stops_writing_at_its_disk_budget(workdir):
    inputs, s, _, _ = _engine(write_config(workdir, num_images=4))
    folder = str(workdir / "surfaces")
    bd = backdrops.Backdrops(inputs, s, surface_cache=backdrops.SurfaceCache(folder))
    bd.get(0, 0)
    size_one = os.path.getsize(os.path.join(folder, os.listdir(folder)[0]))
    budget = backdrops.SurfaceCache(folder, max_mb=2.5 * size_one / 2**20)  # room for the file there and 2 more
    bd = backdrops.Backdrops(inputs, s, surface_cache=budget)
    for v in range(1, backdrops.NUM_FIT_VARIANTS):
        bd.get(0, v)
    assert bd.analysed == backdrops.NUM_FIT_VARIANTS - 1
    assert len(os.listdir(folder)) == 3 and budget._full  # stopped once the folder held its budget
    assert not [n for n in os.listdir(folder) if n.endswith(".tmp")]


def test_a_failed_surface_cache_write_only_stops_the_sharing(workdir, monkeypatch):
    import errno

    inputs, s, _, _ = _engine(write_config(workdir, num_images=4))
    folder = str(workdir / "surfaces")
    cache = backdrops.SurfaceCache(folder)

    def disk_full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(backdrops.pickle, "dump", disk_full)
    bd = backdrops.Backdrops(inputs, s, surface_cache=cache)
    _, _, surf = bd.get(0, 0)
    assert surf is not None and bd.analysed == 1  # the analysis itself is kept
    assert cache._full and os.listdir(folder) == []  # no file, not even a partial one
    bd.get(0, 1)
    assert bd.analysed == 2 and os.listdir(folder) == []  # no further attempt
