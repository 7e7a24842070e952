"""A config that asks for no val split (val_fraction: 0, num_val_shards: 0): accepted, generates
train shards only, and every consumer of a dataset (manifest, preview, inspect, configure_pipeline
and the OD API's eval input, export's sample image) copes and says what it does."""

import json
import os

import pytest

from synth import config as configlib, dataset, dataset_check, export, pipeline_config, training
from synth.errors import ConfigError
from conftest import run_tool, write_config

NO_VAL = "val_fraction: 0\nnum_val_shards: 0\n"


def _body(workdir, extra: str) -> str:
    return open(write_config(workdir, num_images=6)).read().replace(
        "val_fraction: 0.34\n", "").replace("num_val_shards: 1\n", "") + extra


def test_no_val_split_is_accepted(workdir):
    cfg = configlib.load_config(write_config(workdir, body=_body(workdir, NO_VAL)))
    assert (cfg.proto.val_fraction, cfg.proto.num_val_shards) == (0, 0)


@pytest.mark.parametrize("extra, message", [
    ("val_fraction: 0.2\nnum_val_shards: 0\n", r"num_val_shards = 0 is invalid: val_fraction = 0\.2 asks "
                                                r"for a val split.*set val_fraction: 0"),
    ("val_fraction: 0\nnum_val_shards: -1\n", r"num_val_shards = -1 is invalid: must be >= 1, or 0 with "
                                               r"val_fraction: 0"),
])
def test_a_val_split_without_shards_is_refused_naming_the_field(workdir, extra, message):
    path = write_config(workdir, body=_body(workdir, extra))
    with pytest.raises(ConfigError, match=message) as err:
        configlib.load_config(path)
    assert path in str(err.value)


@pytest.fixture(scope="module")
def no_val(tmp_path_factory):
    """(data folder, make_tfrecords.py's output) of a 6-image dataset without a val split."""
    from conftest import make_workdir

    root = make_workdir(tmp_path_factory.mktemp("noval"))
    cfg = write_config(root, body=_body(root, NO_VAL))
    out = str(root / "data")
    r = run_tool("make_tfrecords", f"--config={cfg}", f"--output_dir={out}", "--preview", "--noprogress",
                 "--workers=1")
    assert r.returncode == 0, r.stderr
    return out, r.stdout


def test_generates_train_shards_only_and_says_so(no_val):
    out, stdout = no_val
    assert sorted(os.listdir(out)) == ["label_map.pbtxt", "manifest.json", "params.jsonl", "preview.jpg",
                                       "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    assert "train: 6 images" in stdout and "no val split" in stdout
    manifest = json.loads(open(os.path.join(out, dataset.MANIFEST)).read())
    assert list(manifest["splits"]) == ["train"] and manifest["splits"]["train"]["images"] == 6
    assert [s["name"] for s in manifest["splits"]["train"]["shards"]] == [
        "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    lines = [json.loads(x) for x in open(os.path.join(out, dataset.PARAMS))]
    assert [(x["split"], x["index"]) for x in lines] == [("train", i) for i in range(6)]


def test_inspect_passes_and_matches_the_manifest(no_val):
    report = dataset_check.inspect_dataset(no_val[0])
    assert report.ok, report.problems
    assert [s.split for s in report.splits] == ["train"] and report.records == 6
    assert report.manifest_note == "counts match manifest.json"


def test_configure_pipeline_evaluates_on_the_train_shards_and_says_so(no_val, tmp_path):
    out = no_val[0]
    r = run_tool("configure_pipeline", "--template=small_cpu", f"--data_dir={out}",
                 f"--run_dir={tmp_path / 'run'}")
    assert r.returncode == 0, r.stderr
    train = dataset.shard_pattern(os.path.abspath(out), "train")
    assert f"eval reads: {train} (6 examples)" in r.stdout
    assert "has no val split (val_fraction: 0), so evaluation reads the train shards" in r.stdout
    msg = pipeline_config.read_pipeline(str(tmp_path / "run" / "pipeline.config"))
    assert list(msg.eval_input_reader[0].tf_record_input_reader.input_path) == [train]
    assert msg.eval_config.num_examples == 6
    # The OD API's own input pipeline reads the eval input the pipeline names.
    training.apply_compat_fixes()
    from object_detection.builders import dataset_builder
    from object_detection.core import standard_fields as fields

    reader = msg.eval_input_reader[0]
    reader.num_epochs = 1
    reader.shuffle = False
    ids = [d[fields.InputDataFields.source_id].numpy().decode() for d in dataset_builder.build(reader)]
    assert sorted(ids) == [f"train-{i:08d}" for i in range(6)]


def test_export_samples_a_train_composite_without_a_val_split(no_val):
    image, source = export.sample_image(os.path.join(no_val[0], dataset.LABEL_MAP))
    assert source.endswith("train-00000-of-00002.tfrecord:train-00000000")
    assert image.shape == (128, 160, 3)
