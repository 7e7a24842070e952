"""Evaluating one checkpoint once, with the OD API's own eval loop and COCO metrics.

The OD API's evaluator (`model_main_tf2 --checkpoint_dir`) polls for new checkpoints until a
timeout; `evaluate_once` evaluates the latest (or a named) checkpoint a single time, on the
pipeline's eval shards or on any other shards (real labelled photos, say), and writes the
metrics to JSON and to TensorBoard (MODEL_DIR/eval_once/).
"""

from __future__ import annotations

import glob
import json
import os

from synth.checkpoints import checkpoint_prefix
from synth.errors import ConfigError


def evaluate_once(pipeline_config_path: str, checkpoint: str, output_dir: str | None = None,
                  input_pattern: str | None = None, label_map_path: str | None = None) -> dict:
    """Returns {metric name: value}; writes OUTPUT_DIR/metrics.json and TensorBoard events."""
    from synth import training

    if not os.path.isfile(pipeline_config_path):
        raise ConfigError(f"--pipeline_config_path {pipeline_config_path!r} does not exist")
    ckpt_path = checkpoint_prefix(checkpoint, "--checkpoint")
    training.apply_compat_fixes()
    import tensorflow as tf
    from object_detection import inputs, model_lib_v2
    from object_detection.builders import model_builder
    from object_detection.utils import config_util

    configs = config_util.get_configs_from_pipeline_file(pipeline_config_path)
    eval_input_config = configs["eval_input_configs"][0]
    if input_pattern:
        if not glob.glob(input_pattern):
            raise ConfigError(f"--input_pattern {input_pattern!r} matches no files")
        del eval_input_config.tf_record_input_reader.input_path[:]
        eval_input_config.tf_record_input_reader.input_path.append(input_pattern)
        configs["eval_config"].ClearField("num_examples")
    if label_map_path:
        eval_input_config.label_map_path = label_map_path
    output_dir = output_dir or os.path.join(os.path.dirname(ckpt_path), "eval_once")
    model = model_builder.build(configs["model"], is_training=True)
    dataset = inputs.eval_input(eval_config=configs["eval_config"], eval_input_config=eval_input_config,
                                model_config=configs["model"], model=model)
    step = tf.Variable(0, trainable=False, dtype=tf.int64)
    tf.train.Checkpoint(step=step, model=model).restore(ckpt_path).expect_partial()
    writer = tf.summary.create_file_writer(output_dir)
    with writer.as_default():
        metrics = model_lib_v2.eager_eval_loop(model, configs, dataset, global_step=step)
    writer.flush()
    result = {k: float(v.numpy() if hasattr(v, "numpy") else v) for k, v in metrics.items()}
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump({"checkpoint": ckpt_path, "step": int(step.numpy()),
                   "input": list(eval_input_config.tf_record_input_reader.input_path),
                   "metrics": result}, f, indent=2)
    return result
