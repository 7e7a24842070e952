"""Mixing datasets by weight: configure_pipeline writes one input_path per dataset with the OD API's
sample_from_datasets_weights, and the OD API's own builders read the mix; finetune configures a
fine-tune of an earlier run on the mix in one command."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from conftest import run_tool, write_config
from synth import config as configlib, dataset, generate, pipeline_config, training
from synth.errors import ConfigError
from synth.importing import import_labels
from synth.label_map import label_map_text


def _real_photos(folder, n: int, name: str = "acme") -> None:
    """n photos with one `name` box each, as PASCAL VOC files."""
    folder.mkdir(parents=True)
    for i in range(n):
        rgb = np.full((120, 160, 3), 60 + 20 * i, np.uint8)
        rgb[30:70, 20:80] = (230, 20, 20)
        Image.fromarray(rgb).save(str(folder / f"real{i}.jpg"), quality=95)
        (folder / f"real{i}.xml").write_text(
            f"<annotation><filename>real{i}.jpg</filename><size><width>160</width><height>120</height></size>"
            f"<object><name>{name}</name><bndbox><xmin>20</xmin><ymin>30</ymin><xmax>80</xmax><ymax>70</ymax>"
            "</bndbox></object></annotation>")


@pytest.fixture
def synth_and_real(workdir):
    synth_dir = str(workdir / "data" / "synth")
    generate.generate(configlib.load_config(write_config(workdir, num_images=6)), synth_dir, show_progress=False)
    _real_photos(workdir / "photos", 4)
    real_dir = str(workdir / "data" / "real")
    import_labels("voc", str(workdir / "photos"), real_dir, label_map=os.path.join(synth_dir, dataset.LABEL_MAP),
                  progress=False)
    return synth_dir, real_dir


def _configs(path):
    from object_detection.utils import config_util

    return config_util.get_configs_from_pipeline_file(path)


def test_weighted_mix_is_written_and_read_by_the_od_api_builders(synth_and_real, tmp_path):
    synth_dir, real_dir = synth_and_real
    path = pipeline_config.configure("small_cpu", None, str(tmp_path / "run"), num_steps=10, batch_size=2,
                              datasets=[(synth_dir, 0.8), (real_dir, 0.2)], eval_data_dir=real_dir)
    configs = _configs(path)
    tr = configs["train_input_config"]
    assert list(tr.tf_record_input_reader.input_path) == [dataset.shard_pattern(synth_dir, "train"),
                                                          dataset.shard_pattern(real_dir, "train")]
    assert list(tr.sample_from_datasets_weights) == pytest.approx([0.8, 0.2])
    assert tr.label_map_path == os.path.join(synth_dir, dataset.LABEL_MAP)
    ev = configs["eval_input_configs"][0]
    assert list(ev.tf_record_input_reader.input_path) == [dataset.shard_pattern(real_dir, "train")]  # no val
    assert configs["eval_config"].num_examples == 4

    training.apply_compat_fixes()
    from object_detection import inputs
    from object_detection.builders import dataset_builder
    from object_detection.core import standard_fields as fields

    # the OD API's reader, as it reads the training input: records drawn from both, by weight
    sources = []
    for d in dataset_builder.build(tr).take(500):
        sources.append(d[fields.InputDataFields.source_id].numpy().decode().startswith("real"))
    share = float(np.mean(sources))
    assert 0.12 < share < 0.28, share  # 0.2 expected; 500 draws give a standard deviation of 0.018
    # the OD API's whole training input (decode, augment, resize, pad, batch) on the mix
    batch_features, batch_labels = next(iter(inputs.train_input(configs["train_config"], tr, configs["model"])))
    assert batch_features[fields.InputDataFields.image].shape[0] == 2
    classes = batch_labels[fields.InputDataFields.groundtruth_classes].numpy()
    assert classes.shape[0] == 2 and classes.shape[-1] == 1 and classes.sum() >= 2  # one-hot acme boxes

    # a single dataset keeps the old layout: no weights
    one = _configs(pipeline_config.configure("small_cpu", synth_dir, str(tmp_path / "one")))
    assert not one["train_input_config"].sample_from_datasets_weights
    assert list(one["train_input_config"].tf_record_input_reader.input_path) == [
        dataset.shard_pattern(synth_dir, "train")]


def test_mix_errors_name_the_input(synth_and_real, tmp_path):
    synth_dir, real_dir = synth_and_real
    other = tmp_path / "other-photos"
    _real_photos(other, 2, name="zeta")
    other_dir = str(tmp_path / "other")
    import_labels("voc", str(other), other_dir, progress=False)  # its own label map: zeta
    with pytest.raises(ConfigError, match=r"label map '.*other/label_map.pbtxt' \(\{1: 'zeta'\}\) differs from "
                                          r"'.*synth/label_map.pbtxt' \(\{1: 'acme'\}\)"):
        pipeline_config.configure("small_cpu", None, str(tmp_path / "run"), datasets=[(synth_dir, 1.0), (other_dir, 1.0)])
    with pytest.raises(ConfigError, match="a dataset is given twice"):
        pipeline_config.configure("small_cpu", None, str(tmp_path / "run"), datasets=[(synth_dir, 1), (synth_dir, 2)])
    with pytest.raises(ConfigError, match="either one data directory"):
        pipeline_config.configure("small_cpu", synth_dir, str(tmp_path / "run"), datasets=[(real_dir, 1)])
    assert not os.path.exists(tmp_path / "run" / "pipeline.config")
    assert pipeline_config.parse_dataset_arg("/a/b:0.25") == ("/a/b", 0.25)
    assert pipeline_config.parse_dataset_arg("/a/b") == ("/a/b", 1.0)
    for bad, what in (("/a/b:x", "is not a number"), ("/a/b:0", "must be a finite number > 0"),
                      ("/a/b:-1", "must be a finite number > 0"), ("/a/b:nan", "must be a finite number > 0")):
        with pytest.raises(ConfigError, match=f"--dataset='{bad}'.*{what}"):
            pipeline_config.parse_dataset_arg(bad)


def test_evaluation_can_read_a_dataset_that_has_only_val_shards(synth_and_real, workdir, tmp_path):
    synth_dir, real_dir = synth_and_real
    held_out = str(tmp_path / "held-out")
    import_labels("voc", str(workdir / "photos"), held_out, label_map=os.path.join(synth_dir, dataset.LABEL_MAP),
                  val_fraction=1.0, progress=False)
    assert dataset.list_shards(held_out, "train") == []
    configs = _configs(pipeline_config.configure("small_cpu", None, str(tmp_path / "run"),
                                          datasets=[(synth_dir, 0.9), (real_dir, 0.1)], eval_data_dir=held_out))
    assert list(configs["eval_input_configs"][0].tf_record_input_reader.input_path) == [
        dataset.shard_pattern(held_out, "val")]
    assert configs["eval_config"].num_examples == 4
    with pytest.raises(ConfigError, match=r"data directory '.*held-out' holds no train-"):  # but not to train on
        pipeline_config.configure("small_cpu", None, str(tmp_path / "run2"), datasets=[(synth_dir, 0.9), (held_out, 0.1)])


@pytest.mark.slow
def test_finetune_from_a_run_on_the_mix_is_one_command(synth_and_real, tmp_path):
    """tools/finetune.py: the earlier run's pipeline and latest checkpoint, the mix, two training steps."""
    from conftest import fresh_checkpoints

    synth_dir, real_dir = synth_and_real
    first = tmp_path / "runs" / "first"
    path = pipeline_config.configure("small_cpu", synth_dir, str(first), num_steps=5, batch_size=2)
    import tensorflow as tf

    full, _ = fresh_checkpoints(path, str(first / "ckpt"))  # stands in for the synthetic-only run's ckpt-1
    tf.compat.v1.train.update_checkpoint_state(str(first), full)  # its latest checkpoint, as model_main_tf2 leaves it
    mix = tmp_path / "runs" / "mix"
    r = run_tool("finetune", f"--from_run={first}", f"--dataset={synth_dir}:0.7", f"--dataset={real_dir}:0.3",
                 f"--eval_data_dir={real_dir}", f"--run_dir={mix}", "--num_steps=2", "--checkpoint_every_n=2",
                 timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    configs = _configs(str(mix / "pipeline.config"))
    assert configs["train_config"].fine_tune_checkpoint == str(first / "ckpt-1")
    assert configs["train_config"].fine_tune_checkpoint_type == "detection"
    assert list(configs["train_input_config"].sample_from_datasets_weights) == pytest.approx([0.7, 0.3])
    latest = tf.train.latest_checkpoint(str(mix))  # the fine-tune's own checkpoints, after its 2 steps
    assert tf.train.load_checkpoint(latest).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 2
    r = run_tool("finetune", f"--from_run={first}", f"--dataset={synth_dir}", f"--run_dir={first}")
    assert r.returncode == 2 and "is --from_run; fine-tune into a new run folder" in r.stderr
