"""Exporting a trained checkpoint as a SavedModel laid out for TensorFlow Serving.

    EXPORT_DIR/MODEL_NAME/VERSION/saved_model.pb
                                 variables/
                                 assets.extra/label_map.pbtxt   (class names for clients)
                                 assets.extra/pipeline.config   (what the model was built from)

The OD API's exporter (exporter_lib_v2) writes into a staging folder beside the versions;
the version folder appears, by one rename, only when the export is complete. TF Serving
ignores folders whose names are not integers, so it never sees a partial export.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from synth.errors import ConfigError, OutputError

INPUT_TYPES = ("image_tensor", "encoded_image_string_tensor", "tf_example", "float_image_tensor")


def versions(model_dir: str) -> list[int]:
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(n) for n in os.listdir(model_dir) if n.isdigit())


def export(pipeline_config_path: str, trained_checkpoint_dir: str, export_dir: str,
           model_name: str, version: int | None = None, input_type: str = "image_tensor") -> str:
    """Exports and returns the version folder."""
    from synth import pipeline

    if input_type not in INPUT_TYPES:
        raise ConfigError(f"--input_type={input_type!r} is not one of {', '.join(INPUT_TYPES)}")
    if not model_name or "/" in model_name or model_name.startswith("."):
        raise ConfigError(f"--model_name={model_name!r} must be a plain folder name")
    msg = pipeline.read_pipeline(pipeline_config_path)
    import tensorflow as tf

    if not os.path.isdir(trained_checkpoint_dir) or tf.train.latest_checkpoint(trained_checkpoint_dir) is None:
        raise ConfigError(f"--trained_checkpoint_dir={trained_checkpoint_dir!r} holds no TF2 checkpoint "
                          "(no 'checkpoint' file naming a ckpt-N); point it at a training run's model_dir")
    label_map = msg.train_input_reader.label_map_path
    if not os.path.isfile(label_map):
        raise ConfigError(f"label map {label_map!r} named by {pipeline_config_path!r} does not exist")
    model_dir = os.path.join(export_dir, model_name)
    if version is None:
        version = (versions(model_dir) or [0])[-1] + 1
    if version < 1:
        raise ConfigError(f"--version={version} must be a positive integer")
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise OutputError(f"export version {final!r} already exists; TF Serving versions are immutable, "
                          "so choose another --version or leave it out for the next free one")
    try:
        os.makedirs(model_dir, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".export-", dir=model_dir)
    except OSError as exc:
        raise OutputError(f"export directory {model_dir!r} cannot be written: {exc.strerror}") from None
    try:
        from object_detection import exporter_lib_v2

        exporter_lib_v2.export_inference_graph(input_type, msg, trained_checkpoint_dir, staging)
        saved = os.path.join(staging, "saved_model")
        extra = os.path.join(saved, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        shutil.copyfile(label_map, os.path.join(extra, "label_map.pbtxt"))
        shutil.copyfile(os.path.join(staging, "pipeline.config"), os.path.join(extra, "pipeline.config"))
        os.rename(saved, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
