"""synth.dataset_check and tools/inspect_tfrecords.py: a generated dataset passes; hand-made shards
with known faults are reported with their shard, record index and source_id."""

import json
import os
import re

import cv2
import numpy as np
import pytest
import tensorflow as tf

from synth import config as configlib, dataset, dataset_check, generate
from synth.errors import ConfigError
from synth.label_map import label_map_text
from synth.tfexample import encode_example
from conftest import make_background, run_tool, write_config

H, W = 64, 96  # size of the hand-made images


def _jpeg(seed=0):
    ok, buf = cv2.imencode(".jpg", make_background(H, W, seed))
    return buf.tobytes()


def _rec(sid, boxes=(), texts=None, ids=None, height=H, width=W, jpeg=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    ids = [1] * len(boxes) if ids is None else ids
    texts = ["acme"] * len(boxes) if texts is None else texts
    return encode_example(jpeg or _jpeg(), height, width, f"{sid}.jpg", sid, boxes, texts, ids)


def _write_dataset(directory, shards: dict, manifest: dict | None = None) -> str:
    """`shards` maps shard file names to lists of serialized records."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, dataset.LABEL_MAP), "w") as f:
        f.write(label_map_text(["acme"]))
    for name, records in shards.items():
        with tf.io.TFRecordWriter(os.path.join(directory, name)) as w:
            for r in records:
                w.write(r)
    if manifest is not None:
        with open(os.path.join(directory, dataset.MANIFEST), "w") as f:
            json.dump(manifest, f)
    return str(directory)


GOOD = [0.25, 0.25, 0.75, 0.75]


def _faulty_dataset(directory) -> str:
    train = [
        _rec("train-0", [GOOD]),
        _rec("train-1", [[0.1, 0.2, 0.5, 1.2]]),  # outside [0, 1]
        _rec("train-2", [[0.5, 0.2, 0.5, 0.6]]),  # empty: ymin == ymax
        _rec("train-3", [GOOD], texts=["ghost"], ids=[7]),  # id not in the label map
        _rec("train-4", [GOOD], height=100),  # image is 64 rows, not 100
        _rec("train-5", [GOOD], texts=["other"]),  # text is not the label map's name of id 1
        _rec("train-6"),  # no object: fine
    ]
    val = [_rec("val-0", [GOOD]), b"this is not a tf.train.Example",
           _rec("val-2", [GOOD], jpeg=b"\xff\xd8\xff\xe0 not a jpeg")]
    manifest = {"classes": [{"id": 1, "name": "acme"}],
                "splits": {"train": {"images": 8}, "val": {"images": 3}}}
    return _write_dataset(directory, {"train-00000-of-00001.tfrecord": train,
                                      "val-00000-of-00001.tfrecord": val}, manifest)


def _by_place(report):
    out = {}
    for p in report.problems:
        out.setdefault((p.shard, p.index), []).append(p)
    return out


def test_a_generated_dataset_passes_and_its_counts_match_the_manifest(workdir):
    out = workdir / "data"
    generate.generate(configlib.load_config(write_config(workdir, num_images=6)), str(out),
                      show_progress=False)
    png = str(workdir / "stats" / "inspect.png")
    r = dataset_check.inspect_dataset(str(out), plot_path=png)
    assert r.ok, [str(p) for p in r.problems]
    assert r.manifest_note == "counts match manifest.json"
    manifest = json.loads((out / "manifest.json").read_text())
    for split in ("train", "val"):
        s, m = r.split(split), manifest["splits"][split]
        assert (s.records, s.objects, s.images_without_objects) == \
            (m["images"], m["objects"], m["images_without_objects"])
        assert s.shards == {x["name"]: x["images"] for x in m["shards"]}
        assert s.per_class == {"acme": m["objects"]}
        st = r.stats[split]
        assert len(st.sqrt_area_px) == s.objects and st.objects_per_image.sum() == s.objects
        # placement scale 0.25..0.45 of the short side (128 px); a box may be cut by the edge
        assert np.all(st.sqrt_area_px > 5) and np.all(st.sqrt_area_px < 0.5 * 128 + 2)
    assert (r.split("train").records, r.split("val").records) == (4, 2)
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    img = cv2.imread(png)
    assert img is not None and img.shape[0] >= 400 and img.shape[1] >= 600 and img.std() > 10
    assert "acme: " in dataset_check.format_report(r)

    part = dataset_check.inspect_dataset(str(out), max_records=1)
    assert [s.records for s in part.splits] == [1, 1] and part.ok
    assert "not compared" in part.manifest_note


def test_statistics_are_measured_in_pixels(tmp_path):
    d = _write_dataset(tmp_path / "d", {"train-00000-of-00001.tfrecord": [
        _rec("a", [GOOD, [0.0, 0.0, 0.5, 0.25]]), _rec("b")]})
    r = dataset_check.inspect_dataset(d)
    assert r.ok and r.manifest_note == "no manifest.json: counts not compared"
    st = r.stats["train"]
    # GOOD on 64x96: 32 rows x 48 columns, centre (0.5, 0.5); the other: 32 x 24 at (0.125, 0.25)
    np.testing.assert_allclose(st.height_px, [32, 32], atol=1e-4)
    np.testing.assert_allclose(st.width_px, [48, 24], atol=1e-4)
    np.testing.assert_allclose(st.sqrt_area_px, [np.sqrt(32 * 48), np.sqrt(32 * 24)], atol=1e-3)
    np.testing.assert_allclose(st.centre_x, [0.5, 0.125], atol=1e-6)
    np.testing.assert_allclose(st.centre_y, [0.5, 0.25], atol=1e-6)
    assert st.objects_per_image.tolist() == [2, 0] and st.classes == ("acme", "acme")
    assert r.split("train").images_without_objects == 1


def test_each_fault_is_reported_with_shard_index_and_source_id(tmp_path):
    r = dataset_check.inspect_dataset(_faulty_dataset(tmp_path / "bad"))
    assert not r.ok
    found = _by_place(r)
    tr, va = "train-00000-of-00001.tfrecord", "val-00000-of-00001.tfrecord"
    expected = {
        (tr, 1): ("train-1", r"box 0 .* is outside \[0, 1\]"),
        (tr, 2): ("train-2", r"box 0 .* is empty"),
        (tr, 3): ("train-3", r"class id 7 is not in the label map \(1: 'acme'\)"),
        (tr, 4): ("train-4", r"decodes to 64x96 pixels but image/height x image/width say 100x96"),
        (tr, 5): ("train-5", r"class text 'other' is not the label map's name 'acme' of class id 1"),
        (va, 1): ("?", r"not a tf.train.Example"),
        (va, 2): ("val-2", r"TfExampleDecoder cannot decode it"),
        ("", -1): ("", r"manifest.json says 8 images, the shards hold 7"),
    }
    assert sorted(found) == sorted(expected)  # and nothing about train #0, #6 or val #0
    for place, (sid, pattern) in expected.items():
        assert len(found[place]) == 1, [str(p) for p in found[place]]
        p = found[place][0]
        assert p.source_id == sid and re.search(pattern, p.message), str(p)
    assert found[(tr, 3)][0].split == "train" and found[(va, 1)][0].split == "val"
    assert str(found[(tr, 4)][0]).startswith(f"{tr} #4 (train-4): ")
    t, v = r.split("train"), r.split("val")
    assert (t.records, t.objects, t.images_without_objects) == (7, 6, 1)
    assert t.per_class == {"acme": 5, "id 7 (not in label map)": 1}
    assert (v.records, v.objects) == (3, 1)  # the two unreadable records hold no counted box
    assert r.manifest_note == "1 difference(s) from manifest.json"
    text = dataset_check.format_report(r, max_problems=3)
    assert "8 problem(s)" in text and "... and 5 more" in text


def test_shard_level_problems(tmp_path):
    recs = [_rec(f"t-{i}", [GOOD]) for i in range(3)]
    d = _write_dataset(tmp_path / "d", {"train-00000-of-00002.tfrecord": recs,
                                        "val-00000-of-00001.tfrecord": [_rec("t-1", [GOOD])]})
    path = os.path.join(d, "train-00000-of-00002.tfrecord")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:-10])  # the third record is cut short
    r = dataset_check.inspect_dataset(d)
    msgs = {(p.shard, p.index): p.message for p in r.problems}
    assert "shard missing: 1 of a set of 2" in msgs[("train-00001-of-00002.tfrecord", -1)]
    assert "cannot be read from this record on" in msgs[("train-00000-of-00002.tfrecord", 2)]
    assert "source_id 't-1' is also the source_id of train-00000-of-00002.tfrecord #1" in \
        msgs[("val-00000-of-00001.tfrecord", 0)]
    assert len(r.problems) == 3 and r.split("train").records == 2


def test_bad_input_raises_config_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="'.*nowhere' does not exist"):
        dataset_check.inspect_dataset(str(tmp_path / "nowhere"))
    d = _write_dataset(tmp_path / "empty", {})
    with pytest.raises(ConfigError, match="holds no train-NNNNN-of-NNNNN.tfrecord"):
        dataset_check.inspect_dataset(d)
    with pytest.raises(ConfigError, match="max_records = 0"):
        dataset_check.inspect_dataset(d, max_records=0)
    os.remove(os.path.join(d, dataset.LABEL_MAP))
    with pytest.raises(ConfigError, match="label_map.pbtxt' does not exist"):
        dataset_check.inspect_dataset(d)


def test_cli_exits_1_and_prints_the_problems(tmp_path):
    d = _faulty_dataset(tmp_path / "bad")
    r = run_tool("inspect_tfrecords", d, timeout=300)
    assert r.returncode == 1, r.stderr
    assert "train-00000-of-00001.tfrecord #3 (train-3): object 0: class id 7" in r.stdout
    assert "val-00000-of-00001.tfrecord #1 (?): not a tf.train.Example" in r.stdout
    assert "FAILED: 8 problem(s)" in r.stdout and "Traceback" not in r.stderr
    assert "label audit: no params.jsonl" in r.stdout
    assert os.path.getsize(os.path.join(d, "inspect.png")) > 10000
