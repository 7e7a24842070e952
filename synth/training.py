"""Running the OD API's own training and evaluation loops on this stack.

Two compatibility fixes, applied by `apply_compat_fixes()` in every entry point:
- tf-slim 1.1.0, which the OD API's TFRecord decoder is built on, calls
  `control_flow_ops.case` and `.cond`, which TF >= 2.13 moved (../shared/docs/stack.md):
  `tf.case` / `tf.cond` are put back under those names.
- The OD API's evaluation draws boxes on sample images with `FreeTypeFont.getsize`, which
  Pillow 10 removed (the eval loop dies with AttributeError: 'FreeTypeFont' object has no
  attribute 'getsize'): an equivalent built on `getbbox` is added.
"""

from __future__ import annotations

import math
import os

from synth.errors import ConfigError


def apply_compat_fixes() -> list[str]:
    """Restores the names tf-slim needs on TF >= 2.13; returns the names it had to set."""
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_ops

    patched = []
    for name, fn in (("case", tf.case), ("cond", tf.cond)):
        if not hasattr(control_flow_ops, name):
            setattr(control_flow_ops, name, fn)
            patched.append(f"control_flow_ops.{name}")
    from PIL import ImageFont

    def getsize(font, text, *args, **kwargs):
        left, top, right, bottom = font.getbbox(text, *args, **kwargs)
        return right - left, bottom - top

    for cls in (ImageFont.FreeTypeFont, ImageFont.ImageFont):
        if not hasattr(cls, "getsize"):
            cls.getsize = getsize
            patched.append(f"{cls.__name__}.getsize")
    return patched


def _check_pipeline(path: str) -> None:
    if not path or not os.path.isfile(path):
        raise ConfigError(f"--pipeline_config_path {path!r} does not exist; write one with "
                          "tools/configure_pipeline.py")


def steps_per_iteration(steps: int, checkpoint_every_n: int) -> int:
    """Steps per loop of the OD API's train_loop for a run of `steps` that checkpoints every
    `checkpoint_every_n`: the largest number up to 100 that divides both (or `steps` alone when
    the interval is longer than the run). The loop runs whole loops only, so a loop that does not
    divide the run trains past its end (250 steps in loops of 100 train 300), and checkpoints land
    where a loop ends."""
    if steps < 1 or checkpoint_every_n < 1:
        raise ConfigError(f"steps {steps} and checkpoint_every_n {checkpoint_every_n} must be at least 1")
    span = math.gcd(steps, checkpoint_every_n) if checkpoint_every_n < steps else steps
    return next(d for d in range(min(100, span), 0, -1) if span % d == 0)


def train(pipeline_config_path: str, model_dir: str, num_train_steps: int | None = None,
          checkpoint_every_n: int = 1000, num_steps_per_iteration: int | None = None,
          record_summaries: bool = True, use_tpu: bool = False, tpu_name: str | None = None,
          num_workers: int = 1, checkpoint_max_to_keep: int = 7) -> None:
    """The OD API's model_lib_v2.train_loop under the same distribution strategy choice as
    its model_main_tf2. `num_steps_per_iteration` defaults to steps_per_iteration(steps,
    checkpoint_every_n), so runs stop where asked (the OD API's default of 100 overshoots any
    run whose length is not a multiple of 100)."""
    _check_pipeline(pipeline_config_path)
    apply_compat_fixes()
    import tensorflow as tf
    from object_detection import model_lib_v2
    from object_detection.utils import config_util

    if num_steps_per_iteration is None:
        steps = num_train_steps or config_util.get_configs_from_pipeline_file(
            pipeline_config_path)["train_config"].num_steps or 100
        num_steps_per_iteration = steps_per_iteration(steps, checkpoint_every_n)
    tf.config.set_soft_device_placement(True)
    if use_tpu:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu_name)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.experimental.TPUStrategy(resolver)
    elif num_workers > 1:
        strategy = tf.distribute.experimental.MultiWorkerMirroredStrategy()
    else:
        strategy = tf.distribute.MirroredStrategy()
    with strategy.scope():
        model_lib_v2.train_loop(
            pipeline_config_path=pipeline_config_path, model_dir=model_dir,
            train_steps=num_train_steps, use_tpu=use_tpu, checkpoint_every_n=checkpoint_every_n,
            checkpoint_max_to_keep=checkpoint_max_to_keep, record_summaries=record_summaries,
            num_steps_per_iteration=num_steps_per_iteration)


def evaluate_continuously(pipeline_config_path: str, model_dir: str, checkpoint_dir: str,
                          num_train_steps: int | None = None,
                          sample_1_of_n_eval_examples: int | None = None,
                          sample_1_of_n_eval_on_train_examples: int = 5,
                          wait_interval: int = 300, timeout: int = 3600) -> None:
    """The OD API's model_lib_v2.eval_continuously: evaluates each new checkpoint in
    `checkpoint_dir` until none arrives for `timeout` seconds."""
    _check_pipeline(pipeline_config_path)
    if not os.path.isdir(checkpoint_dir):
        raise ConfigError(f"--checkpoint_dir {checkpoint_dir!r} does not exist")
    apply_compat_fixes()
    import tensorflow as tf
    from object_detection import model_lib_v2

    tf.config.set_soft_device_placement(True)
    model_lib_v2.eval_continuously(
        pipeline_config_path=pipeline_config_path, model_dir=model_dir,
        train_steps=num_train_steps, sample_1_of_n_eval_examples=sample_1_of_n_eval_examples,
        sample_1_of_n_eval_on_train_examples=sample_1_of_n_eval_on_train_examples,
        checkpoint_dir=checkpoint_dir, wait_interval=wait_interval, timeout=timeout)
