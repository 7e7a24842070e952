"""synth.job: one job for both runners. A second source plugs in once and runs under the local
runner (one and two processes) and Beam with the same bytes, read back by the OD API; Counts are
summed in one place and carry the decode failures the source returns; the atomic-write helper."""

import glob
import json
import os

import cv2
import numpy as np
import pytest

from synth import beam_pipeline, config as configlib, dataset, engine, generate, job, training
from synth.errors import ConfigError, OutputError
from synth.inputs import load_inputs
from conftest import make_background, write_config

TOY = "toy_source:Rectangles"


def _files(d) -> dict:
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(str(d), "*.tfrecord")))
    return {n: open(os.path.join(str(d), n), "rb").read() for n in names + ["params.jsonl", "label_map.pbtxt"]}


def test_a_new_source_runs_unchanged_under_both_runners(workdir):
    cfg = configlib.load_config(write_config(workdir, num_images=40))
    one = generate.generate(cfg, str(workdir / "one"), show_progress=False, workers=1, source=TOY)
    two = generate.generate(cfg, str(workdir / "two"), show_progress=False, workers=2, source=TOY)
    beam = beam_pipeline.build_and_run(cfg, str(workdir / "beam"), ["--direct_running_mode=in_memory"],
                                       source=TOY)
    want = _files(workdir / "one")
    assert sorted(want)[:3] == ["label_map.pbtxt", "params.jsonl", "train-00000-of-00002.tfrecord"]
    assert _files(workdir / "two") == want and _files(workdir / "beam") == want
    assert one.counts == two.counts == beam.counts
    assert one.counts["train"] == {"images": 26, "objects": 26, "dropped_objects": 0, "images_without_objects": 0,
                                   "rejected": {"toy: none": 26}}
    assert beam.metrics["images"] == 40 and beam.metrics["rejected_objects"] == 40
    manifest = json.loads((workdir / "one" / dataset.MANIFEST).read_text())
    assert manifest["config_fingerprint"] == job.fingerprint(cfg.proto, TOY) != job.fingerprint(cfg.proto)
    # The OD API's own input pipeline reads the boxes the source drew.
    training.apply_compat_fixes()
    from object_detection.builders import dataset_builder
    from object_detection.core import standard_fields as fields
    from object_detection.protos import input_reader_pb2

    reader = input_reader_pb2.InputReader(label_map_path=str(workdir / "one" / dataset.LABEL_MAP),
                                          shuffle=False, num_epochs=1, num_readers=1)
    reader.tf_record_input_reader.input_path.append(dataset.shard_pattern(str(workdir / "one"), "val"))
    lines = {f"val-{x['index']:08d}": x for x in map(json.loads, open(workdir / "one" / dataset.PARAMS))
             if x["split"] == "val"}
    seen = 0
    for d in dataset_builder.build(reader):
        y0, x0, y1, x1 = lines[d[fields.InputDataFields.source_id].numpy().decode()]["box_px"]
        np.testing.assert_allclose(d[fields.InputDataFields.groundtruth_boxes].numpy(),
                                   [[y0 / 128, x0 / 160, y1 / 128, x1 / 160]], atol=1e-6)
        assert d[fields.InputDataFields.groundtruth_classes].numpy().tolist() == [1]
        seen += 1
    assert seen == 14


def test_a_source_that_cannot_be_loaded_is_refused_before_anything_is_written(workdir):
    cfg = configlib.load_config(write_config(workdir))
    for bad, match in (("no_such_module:X", "'no_such_module:X' cannot be loaded"),
                       ("toy_source:Nothing", "'toy_source:Nothing' cannot be loaded"),
                       ("toy_source", "'toy_source' cannot be loaded .*module:factory"),
                       ("synth.job:WORK", "'synth.job:WORK' is not callable")):
        with pytest.raises(ConfigError, match=match):
            job.Job(cfg, str(workdir / "out"), source=bad)
    assert not os.path.exists(workdir / "out")


def test_counts_sum_in_one_place_and_round_trip(tmp_path):
    a, b = job.Counts(), job.Counts()
    comp = engine.Composite("train-00000000", b"", None, np.zeros((2, 4)), [1, 1], ["a", "a"], {}, 1,
                            {"gate: contrast": 2}, None, {"/bg/x.jpg": "corrupt"})
    a.add_composite(comp)
    a.add_composite(engine.Composite("train-00000001", b"", None, np.zeros((0, 4)), [], [], {}, 0,
                                     {"gate: contrast": 1, "placement: no region fits": 1}))
    b.add_composite(comp)
    total = job.Counts.total([a, b])
    assert total.to_json() == {"images": 3, "objects": 4, "dropped_objects": 2, "images_without_objects": 1,
                               "rejected": {"gate: contrast": 5, "placement: no region fits": 1}}
    assert total.failed_backgrounds == {"/bg/x.jpg": "corrupt"}
    total.save(str(tmp_path / "c.json"), "train-00000-of-00001.tfrecord", "train")
    assert job.Counts.load(str(tmp_path / "c.json")) == total
    assert json.loads((tmp_path / "c.json").read_text())["split"] == "train"


def test_decode_failures_come_back_with_the_composite_and_in_the_chunk_counts(workdir):
    for p in (workdir / "backgrounds").iterdir():
        p.unlink()
    ok, buf = cv2.imencode(".jpg", make_background(seed=1))
    (workdir / "backgrounds" / "a_cut.jpg").write_bytes(buf.tobytes()[:2000])  # header fine, pixels cut
    cv2.imwrite(str(workdir / "backgrounds" / "b_good.jpg"), make_background(seed=2))
    cfg = configlib.load_config(write_config(workdir, num_images=8, extra="backdrop_reuse: 1\n"))
    inputs = load_inputs(cfg)
    eng = engine.Engine(inputs, cfg.proto)
    failed = [eng.make("train", i).failed_backgrounds for i in range(6)]
    met = [f for f in failed if f]
    assert len(met) == 1 and list(met[0]) == [str(workdir / "backgrounds" / "a_cut.jpg")]  # reported once
    assert "corrupt or truncated" in next(iter(met[0].values()))
    work = str(workdir / "work")
    os.makedirs(work)
    writer = job.ChunkWriter(engine.Engine(load_inputs(cfg), cfg.proto), cfg.proto, work)
    counts = writer.write(job.ShardTask("train", 0, 1, 0, 6))
    assert list(counts.failed_backgrounds) == list(met[0])
    assert job.chunk_counts(work, job.ShardTask("train", 0, 1, 0, 6)) == counts
    # Both runners report it from the Counts: in the manifest, and as Beam's skipped_backgrounds.
    local = generate.generate(cfg, str(workdir / "local"), show_progress=False, workers=2)
    beam = beam_pipeline.build_and_run(cfg, str(workdir / "beam"), ["--direct_running_mode=in_memory"])
    assert [os.path.basename(x["path"]) for x in local.skipped] == ["a_cut.jpg"] and beam.skipped == local.skipped
    assert beam.metrics["skipped_backgrounds"] == 1


def test_atomic_path_replaces_only_on_success(tmp_path):
    final = tmp_path / "f.txt"
    final.write_text("old")
    with pytest.raises(OSError, match="disk full"):
        with job.atomic_path(str(final)) as tmp, open(tmp, "w") as f:
            f.write("half")
            raise OSError(28, "disk full")
    assert final.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]
    with job.atomic_path(str(final)) as tmp, open(tmp, "w") as f:
        f.write("new")
    assert final.read_text() == "new" and os.listdir(tmp_path) == ["f.txt"]


def test_a_chunk_reported_but_not_on_the_drivers_disk_is_an_error(workdir):
    cfg = configlib.load_config(write_config(workdir))
    j = job.Job(cfg, str(workdir / "out"))
    with pytest.raises(OutputError, match="is not complete in .* filesystem the driver sees"):
        j.chunk_written(j.todo[0].name)
    with pytest.raises(OutputError, match="shards .* are not written"):
        j.finish()
