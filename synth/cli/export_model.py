"""Exports a trained checkpoint as a SavedModel in TF Serving's layout.

    python tools/export_model.py --pipeline_config_path=workspace/runs/demo/pipeline.config \\
        --trained_checkpoint_dir=workspace/runs/demo --export_dir=workspace/exports --model_name=demo

writes workspace/exports/demo/1/ (then 2/, 3/ ... on later exports), ready for
    tensorflow_model_server --rest_api_port=8501 --model_name=demo \\
        --model_base_path=$PWD/workspace/exports/demo
"""

from __future__ import annotations

import os

from absl import app, flags

from synth.cli import quiet_tensorflow, run_app

flags.DEFINE_string("pipeline_config_path", None, "The run's pipeline.config.")
flags.DEFINE_string("trained_checkpoint_dir", None, "Folder with the checkpoint to export (the run's model_dir).")
flags.DEFINE_string("export_dir", None, "TF Serving base folder; the model goes to EXPORT_DIR/MODEL_NAME/VERSION.")
flags.DEFINE_string("model_name", None, "Model name (TF Serving's --model_name).")
flags.DEFINE_integer("version", None, "Version number (default: the next free one).")
flags.DEFINE_enum("input_type", "image_tensor",
                  ["image_tensor", "encoded_image_string_tensor", "tf_example", "float_image_tensor"],
                  "Input of the serving signature.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    for name in ("pipeline_config_path", "trained_checkpoint_dir", "export_dir", "model_name"):
        if not getattr(FLAGS, name):
            raise app.UsageError(f"--{name} is required")
    quiet_tensorflow()
    from synth import export, training

    training.apply_compat_fixes()
    out = export.export(FLAGS.pipeline_config_path, FLAGS.trained_checkpoint_dir, FLAGS.export_dir,
                        FLAGS.model_name, FLAGS.version, FLAGS.input_type)
    base = os.path.abspath(os.path.join(FLAGS.export_dir, FLAGS.model_name))
    print(f"exported {out}")
    print("serve it with:\n"
          f"  tensorflow_model_server --rest_api_port=8501 --model_name={FLAGS.model_name} "
          f"--model_base_path={base}")


def run():
    run_app(main, "export_model", __name__)


if __name__ == "__main__":
    run()
