"""Filling pipeline.config templates (pipelines/*.config) for a dataset and a run.

Imports the OD API's pipeline proto (an edge module). Templates are ordinary OD API
pipeline configs whose paths say PATH_TO_BE_CONFIGURED; `configure` sets the number of
classes from the dataset's label map, the shard patterns of both splits, the label map,
the checkpoint and the steps, and writes RUN_DIR/pipeline.config.
"""

from __future__ import annotations

import glob
import json
import os

from google.protobuf import text_format

from synth import dataset
from synth.errors import ConfigError, OutputError

PIPELINES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pipelines")


def list_templates() -> list[str]:
    return sorted(os.path.splitext(os.path.basename(p))[0]
                  for p in glob.glob(os.path.join(PIPELINES_DIR, "*.config")))


def template_path(name: str) -> str:
    if os.path.isfile(name):
        return name
    path = os.path.join(PIPELINES_DIR, name + ".config")
    if not os.path.isfile(path):
        raise ConfigError(f"pipeline template {name!r} does not exist; valid templates: "
                          f"{', '.join(list_templates())} (or the path of a pipeline.config)")
    return path


def read_pipeline(path: str):
    """Parses a pipeline.config with the OD API's schema; errors name the file."""
    from object_detection.protos import pipeline_pb2

    msg = pipeline_pb2.TrainEvalPipelineConfig()
    try:
        with open(path, encoding="utf-8") as f:
            text_format.Merge(f.read(), msg)
    except OSError as exc:
        raise ConfigError(f"pipeline config {path!r} cannot be read: {exc.strerror}") from None
    except text_format.ParseError as exc:
        raise ConfigError(f"pipeline config {path!r}: {exc}") from None
    return msg


def label_map_ids(label_map_path: str) -> list[int]:
    """Class ids of a label map, read with the OD API's own label map utilities."""
    from object_detection.utils import label_map_util

    if not os.path.isfile(label_map_path):
        raise ConfigError(f"label map {label_map_path!r} does not exist")
    try:
        lm = label_map_util.load_labelmap(label_map_path)
    except Exception as exc:  # the OD API raises ParseError or ValueError
        raise ConfigError(f"label map {label_map_path!r} cannot be parsed: {exc}") from None
    return sorted(item.id for item in lm.item)


def _model_oneof(msg):
    kind = msg.model.WhichOneof("model")
    if kind is None:
        raise ConfigError("the pipeline template has no model { } block")
    return getattr(msg.model, kind)


def configure(template: str, data_dir: str, run_dir: str, checkpoint: str | None = None,
              num_steps: int | None = None, batch_size: int | None = None) -> str:
    """Writes RUN_DIR/pipeline.config for `template` and the dataset in `data_dir`;
    returns its path."""
    path = template_path(template)
    msg = read_pipeline(path)
    data_dir = os.path.abspath(data_dir)
    label_map = os.path.join(data_dir, dataset.LABEL_MAP)
    ids = label_map_ids(label_map)
    if not ids or ids != list(range(1, len(ids) + 1)):
        raise ConfigError(f"label map {label_map!r} has ids {ids}; expected 1..N without gaps")
    train_shards = dataset.list_shards(data_dir, "train")
    if not train_shards:
        raise ConfigError(f"data directory {data_dir!r} holds no train-?????-of-?????.tfrecord shards; "
                          "run tools/make_tfrecords.py --output_dir there first")
    val_shards = dataset.list_shards(data_dir, "val")
    val_split = "val" if val_shards else "train"
    num_val = None
    manifest = os.path.join(data_dir, dataset.MANIFEST)
    if os.path.isfile(manifest):
        with open(manifest, encoding="utf-8") as f:
            num_val = json.load(f).get("splits", {}).get(val_split, {}).get("images")

    _model_oneof(msg).num_classes = len(ids)
    tc = msg.train_config
    if checkpoint:
        index = checkpoint + ".index"
        if not os.path.isfile(index):
            raise ConfigError(f"checkpoint {checkpoint!r} is not a TF2 checkpoint prefix "
                                  f"({index!r} does not exist); give e.g. .../checkpoint/ckpt-0")
        tc.fine_tune_checkpoint = os.path.abspath(checkpoint)
        tc.fine_tune_checkpoint_type = "detection"
        tc.fine_tune_checkpoint_version = tc.fine_tune_checkpoint_version or 2  # V2
    else:
        tc.ClearField("fine_tune_checkpoint")  # no checkpoint: train from scratch
    if batch_size is not None:
        if batch_size < 1:
            raise ConfigError(f"--batch_size={batch_size} must be >= 1")
        tc.batch_size = batch_size
    if num_steps is not None:
        if num_steps < 1:
            raise ConfigError(f"--num_steps={num_steps} must be >= 1")
        tc.num_steps = num_steps
        _fit_schedule(tc, num_steps)
    msg.train_input_reader.label_map_path = label_map
    del msg.train_input_reader.tf_record_input_reader.input_path[:]
    msg.train_input_reader.tf_record_input_reader.input_path.append(
        dataset.shard_pattern(data_dir, "train"))
    if not msg.eval_input_reader:
        msg.eval_input_reader.add()
    for er in msg.eval_input_reader:
        er.label_map_path = label_map
        del er.tf_record_input_reader.input_path[:]
        er.tf_record_input_reader.input_path.append(dataset.shard_pattern(data_dir, val_split))
    if num_val:
        msg.eval_config.num_examples = int(num_val)
    try:
        os.makedirs(run_dir, exist_ok=True)
        out = os.path.join(run_dir, "pipeline.config")
        with open(out + ".tmp", "w", encoding="utf-8") as f:
            f.write(f"# Written by tfod-synth configure_pipeline from template {os.path.basename(path)}\n")
            f.write(f"# for the dataset in {data_dir}\n")
            f.write(text_format.MessageToString(msg))
        os.replace(out + ".tmp", out)
    except OSError as exc:
        raise OutputError(f"run directory {run_dir!r} cannot be written: {exc}") from None
    return out


def _fit_schedule(tc, num_steps: int) -> None:
    """Keeps a decaying learning-rate schedule consistent with a changed num_steps."""
    opt = tc.optimizer.WhichOneof("optimizer")
    if opt is None:
        return
    lr = getattr(tc.optimizer, opt).learning_rate
    kind = lr.WhichOneof("learning_rate")
    if kind == "cosine_decay_learning_rate":
        c = lr.cosine_decay_learning_rate
        c.total_steps = num_steps
        c.warmup_steps = min(c.warmup_steps, num_steps // 10)
