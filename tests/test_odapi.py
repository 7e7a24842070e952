"""Our shards and pipeline configs, read by the OD API's own code."""

import os

import numpy as np
import pytest
import tensorflow as tf

from synth import config as configlib, dataset, generate, pipeline_config, training
from synth.errors import ConfigError
from synth.tfexample import parse_example
from conftest import odapi_decoded, write_config


@pytest.fixture
def data_dir(workdir):
    out = workdir / "data"
    generate.generate(configlib.load_config(write_config(workdir, num_images=6)), str(out),
                      show_progress=False)
    return str(out)


def test_shards_read_back_through_the_od_api_input_pipeline(data_dir):
    """The OD API's dataset_builder and TfExampleDecoder (built on tf-slim) decode every
    record to the boxes and classes we wrote."""
    from object_detection.core import standard_fields as fields

    decoded = odapi_decoded(data_dir)
    ours = {}
    for path in dataset.list_shards(data_dir, "train"):
        for raw in tf.data.TFRecordDataset([path]):
            r = parse_example(raw.numpy())
            ours[r["source_id"]] = r
    assert sorted(decoded) == sorted(ours) and len(ours) == 4
    for sid, r in ours.items():
        d = decoded[sid]
        assert tuple(d[fields.InputDataFields.image].shape) == (128, 160, 3)
        np.testing.assert_allclose(d[fields.InputDataFields.groundtruth_boxes].numpy(), r["boxes"], atol=1e-6)
        assert d[fields.InputDataFields.groundtruth_classes].numpy().tolist() == r["class_ids"]


@pytest.fixture
def masked_data_dir(workdir):
    out = workdir / "masked"
    body = open(write_config(workdir, num_images=6)).read()
    generate.generate(configlib.load_config(write_config(workdir, body=body + "write_masks: true\n")),
                      str(out), show_progress=False)
    return str(out)


def test_every_template_fills_parses_and_builds_its_model(data_dir, masked_data_dir, tmp_path):
    from object_detection.builders import model_builder
    from object_detection.utils import config_util

    names = pipeline_config.list_templates()
    assert "small_cpu" in names and "faster_rcnn_resnet50_v1_640x640" in names
    assert "mask_rcnn_inception_resnet_v2_1024x1024" in names
    for name in names:
        run_dir = tmp_path / name
        masks = pipeline_config.predicts_masks(pipeline_config.read_pipeline(pipeline_config.template_path(name)))
        data = masked_data_dir if masks else data_dir  # a Mask R-CNN template needs masks
        path = pipeline_config.configure(name, data, str(run_dir), num_steps=40, batch_size=2)
        configs = config_util.get_configs_from_pipeline_file(path)
        assert configs["model"].faster_rcnn.num_classes == 1
        assert configs["model"].faster_rcnn.second_stage_box_predictor.mask_rcnn_box_predictor \
            .predict_instance_masks == masks
        assert configs["train_config"].num_steps == 40
        assert configs["train_input_config"].tf_record_input_reader.input_path == [
            dataset.shard_pattern(data, "train")]
        assert configs["eval_input_configs"][0].tf_record_input_reader.input_path == [
            dataset.shard_pattern(data, "val")]
        assert configs["eval_config"].num_examples == 2
        assert not configs["train_config"].fine_tune_checkpoint  # no checkpoint given
        model = model_builder.build(configs["model"], is_training=True)
        assert model.num_classes == 1


def test_configure_errors_name_the_input(data_dir, tmp_path):
    with pytest.raises(ConfigError, match="'nope' does not exist; valid templates: .*small_cpu"):
        pipeline_config.configure("nope", data_dir, str(tmp_path))
    with pytest.raises(ConfigError, match="holds no train-"):
        os.makedirs(tmp_path / "empty")
        with open(tmp_path / "empty" / dataset.LABEL_MAP, "w") as f:
            f.write("item { id: 1 name: 'a' }\n")
        pipeline_config.configure("small_cpu", str(tmp_path / "empty"), str(tmp_path / "run"))
    with pytest.raises(ConfigError, match=r"--checkpoint='.*ckpt-0' is neither a folder nor a checkpoint prefix"):
        pipeline_config.configure("small_cpu", data_dir, str(tmp_path / "run"), checkpoint=str(tmp_path / "ckpt-0"))
    assert not os.path.exists(tmp_path / "run" / "pipeline.config")


def test_configure_merges_a_config_override_under_the_other_settings(data_dir, tmp_path):
    override = ("model { faster_rcnn { initial_crop_size: 8 } } train_config { num_steps: 999 batch_size: 3 "
                "optimizer { adam_optimizer { learning_rate { cosine_decay_learning_rate { "
                "learning_rate_base: 0.001 total_steps: 5000 warmup_steps: 100 } } } } }")
    path = pipeline_config.configure("small_cpu_demo", data_dir, str(tmp_path / "run"), num_steps=40,
                                     config_override=override)
    msg = pipeline_config.read_pipeline(path)
    assert msg.model.faster_rcnn.initial_crop_size == 8
    assert msg.train_config.batch_size == 3  # the override's: no batch_size argument
    assert msg.train_config.num_steps == 40  # the argument wins over the override
    cosine = msg.train_config.optimizer.adam_optimizer.learning_rate.cosine_decay_learning_rate
    assert (round(cosine.learning_rate_base, 6), cosine.total_steps, cosine.warmup_steps) == (0.001, 40, 4)  # fitted
    assert "# config_override: model { faster_rcnn { initial_crop_size: 8 } }" in open(path).read()
    # a bad fragment is refused naming the flag, and nothing is written
    with pytest.raises(ConfigError, match="--config_override=.*is not a pipeline config fragment"):
        pipeline_config.configure("small_cpu_demo", data_dir, str(tmp_path / "bad"),
                                   config_override="model { faster_rcnn { crop: 8 } }")
    assert not os.path.exists(tmp_path / "bad")


def test_compat_fixes_restore_what_tf_slim_and_the_od_api_call():
    training.apply_compat_fixes()
    from tensorflow.python.ops import control_flow_ops

    assert control_flow_ops.case is tf.case and control_flow_ops.cond is tf.cond
    from PIL import ImageFont

    font = ImageFont.load_default()
    w, h = font.getsize("logo 0.97")  # what the OD API's visualization_utils calls
    assert w > h > 0


def test_instance_masks_read_back_as_png_masks_matching_the_boxes(workdir):
    """With write_masks, the OD API decoder (mask_type PNG_MASKS) returns one mask per box,
    and each mask's tight box is that box."""
    from synth import boxes as boxlib

    out = workdir / "masked"
    body = open(write_config(workdir, num_images=6)).read()
    cfg = write_config(workdir, body=body + "write_masks: true\n")
    generate.generate(configlib.load_config(cfg), str(out), show_progress=False)
    training.apply_compat_fixes()
    from object_detection.builders import dataset_builder
    from object_detection.core import standard_fields as fields
    from object_detection.protos import input_reader_pb2

    reader = input_reader_pb2.InputReader()
    reader.label_map_path = os.path.join(str(out), dataset.LABEL_MAP)
    reader.shuffle = False
    reader.num_epochs = 1
    reader.load_instance_masks = True
    reader.mask_type = input_reader_pb2.PNG_MASKS
    reader.tf_record_input_reader.input_path.append(dataset.shard_pattern(str(out), "train"))
    n = 0
    for d in dataset_builder.build(reader):
        masks = d[fields.InputDataFields.groundtruth_instance_masks].numpy()
        gt = d[fields.InputDataFields.groundtruth_boxes].numpy()
        assert masks.shape[0] == gt.shape[0]
        for m, b in zip(masks, gt):
            np.testing.assert_allclose(boxlib.tight_box(m > 0), b, atol=1e-6)
            n += 1
    assert n >= 1


def test_training_loops_divide_the_run_so_it_stops_where_asked():
    # the OD API's loop runs whole loops: 250 steps in loops of 100 trained 300 (make demo, 2026-12-07)
    assert training.steps_per_iteration(250, 250) == 50
    assert training.steps_per_iteration(250, 1000) == 50  # an interval longer than the run: the run alone
    assert training.steps_per_iteration(400, 400) == 100
    assert training.steps_per_iteration(2000, 250) == 50  # checkpoints land on the interval, too
    assert training.steps_per_iteration(7, 1000) == 7
    assert training.steps_per_iteration(101, 1000) == 1  # a prime past 100: one step a loop
    for steps in range(1, 700, 7):
        for every in (1, 30, 250, 1000):
            d = training.steps_per_iteration(steps, every)
            assert 1 <= d <= 100 and steps % d == 0 and (every >= steps or every % d == 0), (steps, every, d)
    with pytest.raises(ConfigError, match="steps 0"):
        training.steps_per_iteration(0, 10)
