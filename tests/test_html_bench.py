"""bench/headers.py's transfer protocol, the parts that need no browser or training: eval
sources drawn by a fixed seed, missing sources reported, and the eval config they give (its
own CSS: no theme, no camera; every drawn page, under the source's root, and nothing else)."""

from __future__ import annotations

import os

import pytest

from bench import headers
from synth.html import config as hconfig, sources


def make_source(root, names):
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"<!doctype html><body><h1>{name}</h1></body>")
    return root


NAMES = [f"part{k % 3}/page{k}.html" for k in range(12)] + ["odd [1] *name?.html", "style.css"]


def test_eval_pages_are_a_seeded_sample_fixed_per_source_name(tmp_path):
    src = make_source(tmp_path / "docs", NAMES)
    root, a = headers.sample_source("alpha", str(src), "**/*.html", 5)
    _, again = headers.sample_source("alpha", str(src), "**/*.html", 5)
    _, other = headers.sample_source("beta", str(src), "**/*.html", 5)
    assert root == str(src) and a == again and len(a) == 5 and len(set(a)) == 5
    assert a != other  # another source name draws its own sample
    assert a == sorted(a) and all(n.endswith(".html") for n in a)
    _, everything = headers.sample_source("alpha", str(src), "**/*.html", 100)
    assert len(everything) == 13  # fewer files than asked: all of them


def test_missing_sources_are_reported_with_the_reason(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist on this machine"):
        headers.sample_source("gone", str(tmp_path / "nope"), "*.html", 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no file matches '\*\*/\*.html'"):
        headers.sample_source("empty", str(tmp_path / "empty"), "**/*.html", 3)


def test_the_eval_config_renders_exactly_the_drawn_pages_with_their_own_css(tmp_path):
    src = make_source(tmp_path / "docs", NAMES)
    root, files = headers.sample_source("gamma", str(src), "**/*.html", 13)
    assert "odd [1] *name?.html" in files  # glob characters in a name
    cfg_path = tmp_path / "gamma.config"
    cfg_path.write_text(headers.eval_config_text(root, files, 7))
    cfg = hconfig.load(str(cfg_path))
    c = cfg.proto
    assert c.num_images == 7 and c.theme.probability == 0 and not c.camera.enabled and c.val_fraction == 0
    assert not c.skip_pages_requesting_network and c.classes == 0
    pages, skipped, _ = sources.list_pages(cfg)
    assert skipped == []
    assert sorted(p.path for p in pages) == sorted(str(src / f) for f in files)  # each exactly once
    assert {p.root for p in pages} == {root}


def test_source_flags_parse_and_bad_ones_are_named():
    assert headers.parse_source("site=/srv/docs") == ("site", ("/srv/docs", "**/*.html"))
    assert headers.parse_source("rs=/r/html::std/*.html") == ("rs", ("/r/html", "std/*.html"))
    with pytest.raises(SystemExit, match="'nonsense'.*NAME=DIR"):
        headers.parse_source("nonsense")


def test_a_measured_transfer_entry_survives_a_throughput_only_write(tmp_path):
    path = tmp_path / "headers.json"
    path.write_text('{"pages_per_s_per_core": 1.0, "transfer": {"in_domain_map50": 0.5}}')
    kept = headers.keep_transfer({"pages_per_s_per_core": 2.0}, str(path))
    assert kept == {"pages_per_s_per_core": 2.0, "transfer": {"in_domain_map50": 0.5}}
    assert headers.keep_transfer({"transfer": {"x": 1}}, str(path)) == {"transfer": {"x": 1}}


def test_another_detector_gets_its_own_run_folder_and_a_missing_checkpoint_is_refused(tmp_path):
    work = str(tmp_path)
    own = headers.run_folder(work, headers.TEMPLATE, None)
    assert own == os.path.join(work, "run")  # where earlier full runs left theirs
    ckpt_a, ckpt_b = str(tmp_path / "a" / "ckpt-0"), str(tmp_path / "b" / "ckpt-0")
    others = {headers.run_folder(work, "faster_rcnn_resnet50_v1_headers", ckpt_a),
              headers.run_folder(work, "faster_rcnn_resnet50_v1_headers", ckpt_b),
              headers.run_folder(work, "faster_rcnn_resnet50_v1_headers", None),
              headers.run_folder(work, headers.TEMPLATE, ckpt_a)}
    assert len(others) == 4 and own not in others
    assert headers.run_folder(work, headers.TEMPLATE, ckpt_a) == headers.run_folder(work, headers.TEMPLATE, ckpt_a)
    with pytest.raises(SystemExit, match=r"--checkpoint .*ckpt-0.*no .*ckpt-0\.index"):
        headers.main([f"--checkpoint={ckpt_a}", "--skip_transfer"])
