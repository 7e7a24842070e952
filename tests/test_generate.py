import glob
import json
import os
import sys

import pytest
import tensorflow as tf

from synth import boxes as boxlib, composite, config as configlib, dataset, generate, tfrecord_keys as K
from synth.errors import ConfigError, InputImageError, OutputError
from synth.tfexample import parse_example
from conftest import ROOT, run_tool, write_config


def _records(path):
    return [parse_example(r.numpy()) for r in tf.data.TFRecordDataset([path])]


def _gen(cfg_path, out, **kw):
    return generate.generate(configlib.load_config(cfg_path), str(out), show_progress=False, **kw)


def test_writes_shards_label_map_and_manifest(workdir):
    out = workdir / "data"
    s = _gen(write_config(workdir, num_images=6), out, write_preview=True)
    names = sorted(os.listdir(out))
    assert names == ["label_map.pbtxt", "manifest.json", "params.jsonl", "preview.jpg",
                     "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord",
                     "val-00000-of-00001.tfrecord"]
    assert s.counts["train"]["images"] == 4 and s.counts["val"]["images"] == 2
    recs = [r for p in sorted(glob.glob(str(out / "*.tfrecord"))) for r in _records(p)]
    assert len(recs) == 6
    for r in recs:
        assert r["keys"] == sorted(K.ALL_KEYS)
        assert (r["height"], r["width"], r["format"]) == (128, 160, "jpeg")
        assert r["class_texts"] == ["acme"] * len(r["class_ids"]) and set(r["class_ids"]) <= {1}
        for b in r["boxes"]:
            boxlib.validate_normalised(b, r["source_id"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["classes"] == [{"id": 1, "name": "acme"}]
    assert manifest["splits"]["train"]["objects"] + manifest["splits"]["val"]["objects"] == \
        sum(len(r["class_ids"]) for r in recs)
    assert 'name: "acme"' in (out / "label_map.pbtxt").read_text()
    lines = [json.loads(x) for x in (out / "params.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and lines[0]["params"]["image_seed"] == composite.image_seed(3, 0, 0)


def test_same_config_and_seed_give_identical_shards(workdir):
    cfg = write_config(workdir, num_images=4)
    _gen(cfg, workdir / "a")
    _gen(cfg, workdir / "b")
    for p in glob.glob(str(workdir / "a" / "*.tfrecord")):
        assert open(p, "rb").read() == open(str(workdir / "b" / os.path.basename(p)), "rb").read()


def test_shards_digest_names_the_composites_byte_for_byte(workdir):
    cfg = write_config(workdir, num_images=4)
    _gen(cfg, workdir / "a")
    _gen(cfg, workdir / "b")
    other_seed = open(cfg).read().replace("seed: 3", "seed: 4")
    _gen(write_config(workdir, body=other_seed), workdir / "c")
    a = dataset.shards_digest(str(workdir / "a"))
    assert len(a) == 64 and a == dataset.shards_digest(str(workdir / "b"))
    assert dataset.shards_digest(str(workdir / "c")) != a  # another seed, other composites
    (workdir / "b" / "preview.jpg").write_bytes(b"not a shard")  # files other than shards and label map: ignored
    assert dataset.shards_digest(str(workdir / "b")) == a
    shard = workdir / "b" / "val-00000-of-00001.tfrecord"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 1
    shard.write_bytes(bytes(data))
    assert dataset.shards_digest(str(workdir / "b")) != a
    (workdir / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty: no train-NNNNN-of-NNNNN.tfrecord"):
        dataset.shards_digest(str(workdir / "empty"))


def test_refuses_an_output_dir_that_already_holds_shards_and_leaves_it_untouched(workdir):
    cfg = write_config(workdir, num_images=4)
    out = workdir / "data"
    _gen(cfg, out)
    before = {p: open(p, "rb").read() for p in glob.glob(str(out / "*"))}
    with pytest.raises(OutputError, match="already holds a dataset.*--overwrite"):
        _gen(cfg, out)
    assert {p: open(p, "rb").read() for p in glob.glob(str(out / "*"))} == before


def test_overwrite_replaces_the_old_dataset(workdir):
    out = workdir / "data"
    _gen(write_config(workdir, num_images=4), out)
    _gen(write_config(workdir, num_images=3), out, overwrite=True)
    assert json.loads((out / "manifest.json").read_text())["splits"]["train"]["images"] == 2


def test_a_failure_midway_leaves_no_shard_and_keeps_the_old_dataset(workdir, monkeypatch):
    cfg = write_config(workdir, num_images=6)
    out = workdir / "data"
    _gen(cfg, out)
    before = {p: open(p, "rb").read() for p in glob.glob(str(out / "*"))}
    calls = {"n": 0}
    real = composite.encode_jpeg

    def flaky(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError(28, "No space left on device")
        return real(*a, **kw)

    monkeypatch.setattr(composite, "encode_jpeg", flaky)
    with pytest.raises(OutputError, match="No space left"):
        _gen(cfg, out, overwrite=True)
    assert {p: open(p, "rb").read() for p in glob.glob(str(out / "*"))} == before
    assert not [n for n in os.listdir(out) if n.startswith(".staging")]


def test_missing_logo_fails_before_anything_is_written(workdir):
    os.remove(workdir / "logos" / "logo.png")
    with pytest.raises(InputImageError, match="logo.png' does not exist"):
        _gen(write_config(workdir), workdir / "data")
    assert dataset.existing_outputs(str(workdir / "data")) == []


def test_unreadable_background_is_skipped_and_reported(workdir):
    (workdir / "backgrounds" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = workdir / "data"
    s = _gen(write_config(workdir, num_images=3), out)
    assert [os.path.basename(x["path"]) for x in s.skipped] == ["broken.jpg"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["skipped_inputs"][0]["path"].endswith("broken.jpg")
    assert manifest["num_backgrounds"] == 3


def test_no_usable_background_is_an_error(workdir):
    for p in glob.glob(str(workdir / "backgrounds" / "*")):
        with open(p, "wb") as f:
            f.write(b"nope")
    with pytest.raises(InputImageError, match="no usable background"):
        _gen(write_config(workdir), workdir / "data")


def test_embedded_default_generates_recognisable_composites(tmp_path):
    cfg = configlib.apply_overrides(configlib.load_config(None), num_images=10)
    s = generate.generate(cfg, str(tmp_path), show_progress=False)
    assert s.counts["train"]["images"] + s.counts["val"]["images"] == 10
    assert s.counts["train"]["objects"] + s.counts["val"]["objects"] >= 5 and not s.skipped
    gate = cfg.proto.realism.gate
    for line in (tmp_path / "params.jsonl").read_text().splitlines():
        for sc in json.loads(line)["scores"]:  # the gate's scores of every emitted object
            assert sc["visible_fraction"] >= gate.min_visible_fraction and sc["size_px"] >= gate.min_size_px
            assert sc["match"] >= gate.min_match and sc["contrast"] >= gate.min_contrast


def test_cli_help_and_errors(workdir):
    r = run_tool("make_tfrecords", "--help")
    assert "--output_dir" in r.stdout and "--num_images" in r.stdout
    r = run_tool("make_tfrecords", f"--config={write_config(workdir, extra='bogus_field: 1')}",
                 f"--output_dir={workdir / 'out'}")
    assert r.returncode == 2
    assert "bogus_field" in r.stderr and "gen.config" in r.stderr and "Traceback" not in r.stderr


def test_cli_writes_a_dataset(workdir):
    out = workdir / "out"
    r = run_tool("make_tfrecords", f"--config={write_config(workdir)}", f"--output_dir={out}",
                 "--num_images=3", "--seed=11", "--noprogress")
    assert r.returncode == 0, r.stderr
    assert "train: 2 images" in r.stdout
    assert json.loads((out / "manifest.json").read_text())["seed"] == 11


def test_cpu_rate_measures_other_stages_and_names_a_bad_realism_argument():
    """bench/cpu_rate.py's REALISM argument is merged into the default's realism { }: other stages
    give other records; a field that does not exist is refused, naming the argument."""
    sys.path.insert(0, ROOT)
    from bench import cpu_rate

    base = cpu_rate.measure(2)
    lit = cpu_rate.measure(2, "light { enabled: true }")
    assert base["realism"] == "" and lit["realism"] == "light { enabled: true }"
    assert base["records_sha256"] != lit["records_sha256"]
    assert cpu_rate.measure(2)["records_sha256"] == base["records_sha256"]  # deterministic
    with pytest.raises(ConfigError, match=r"REALISM \(argument 2\).*camra"):
        cpu_rate.measure(2, "camra { enabled: true }")
    with pytest.raises(ConfigError, match=r"PLACEMENT \(argument 3\).*closeup_candidate"):
        cpu_rate.measure(2, "", "closeup_candidate: 8")
    with pytest.raises(ConfigError, match=r"placement.closeup_candidates"):
        cpu_rate.measure(2, "", "closeup_candidates: 0")
