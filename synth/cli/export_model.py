"""Exports a trained checkpoint as a SavedModel in TF Serving's layout, and checks it.

    python tools/export_model.py --pipeline_config_path=workspace/runs/demo/pipeline.config \\
        --trained_checkpoint_dir=workspace/runs/demo --export_dir=workspace/exports --model_name=demo

writes workspace/exports/demo/1/ (then 2/, 3/ ... on later exports) and
workspace/exports/models.config (every model in workspace/exports), ready for
    tensorflow_model_server --port=8500 --rest_api_port=8501 \\
        --model_config_file=$PWD/workspace/exports/models.config

Before the version folder appears, the export is verified: the serving_default signature
(input_tensor's dtype and shape for --input_type, the detection outputs) and the SavedModel's
detections on a sample image (the first val composite, else a synthetic image) against the
checkpoint's own, within --atol on boxes and scores. --trained_checkpoint_dir may also be a
ckpt-N prefix, to export a checkpoint other than the latest. --average_last=N exports the average
of the weights of the run's last N checkpoints instead (train with --checkpoint_every_n small
enough to keep them), which may be a steadier model than the last step of a constant learning rate.
--config_override merges a pipeline.config fragment over the run's before export, as the OD API's
exporter does, for settings that are not weights; for example, more proposals and detections than
training kept (pipelines/small_cpu_demo.config trains with 32 and 20):

    --config_override='model { faster_rcnn { first_stage_max_proposals: 100 second_stage_post_processing {
        batch_non_max_suppression { max_detections_per_class: 100 max_total_detections: 100 } } } }'

or, for just that, --max_proposals=100. Models trained with 32 and exported with 100 found more
logos: two of the demo's, 139 and 148 of 323 on its 200 val composites against 116 and 127 (score
0.5; 4 wrong detections with 100, 1 with 32); three of the real-photo benchmark's, mAP@0.5 0.302
-> 0.315, 0.290 -> 0.312 and 0.213 -> 0.221.
"""

from __future__ import annotations

import json
import os

from absl import flags

from synth import savedmodel
from synth.cli import check_usage, quiet_tensorflow, run_app

flags.DEFINE_string("pipeline_config_path", None, "The run's pipeline.config.")
flags.DEFINE_string("trained_checkpoint_dir", None, "Folder with the checkpoint to export (the run's model_dir).")
flags.DEFINE_string("export_dir", None, "TF Serving base folder; the model goes to EXPORT_DIR/MODEL_NAME/VERSION.")
flags.DEFINE_string("model_name", None, "Model name (TF Serving's --model_name).")
flags.DEFINE_integer("version", None, "Version number (default: the next free one).")
flags.DEFINE_enum("input_type", "image_tensor", list(savedmodel.INPUT_TYPES),
                  "Input of the serving signature: " + savedmodel.describe_input_types() + ".")
flags.DEFINE_bool("verify", True, "Check the export against the checkpoint before publishing it.")
flags.DEFINE_float("atol", 1e-4, "Largest allowed difference of boxes and scores between SavedModel and checkpoint.",
                   lower_bound=0.0)
flags.DEFINE_integer("average_last", 1, "Export the average of the weights of the run's last N checkpoints "
                     "(1: the latest checkpoint only).", lower_bound=1)
flags.DEFINE_integer("max_proposals", None, "A Faster R-CNN exported to keep N first-stage proposals and return up "
                     "to N detections, whatever training kept (the short form of the --config_override below; "
                     "make demo exports with 100).", lower_bound=1)
flags.DEFINE_string("config_override", "", "A TrainEvalPipelineConfig fragment in text format merged over the "
                    "run's pipeline.config before export (values replace the run's; lists are refused).")
FLAGS = flags.FLAGS


def main(argv):
    check_usage(argv, "pipeline_config_path", "trained_checkpoint_dir", "export_dir", "model_name")
    quiet_tensorflow()
    from synth import export, training

    training.apply_compat_fixes()
    out = export.export(FLAGS.pipeline_config_path, FLAGS.trained_checkpoint_dir, FLAGS.export_dir,
                        FLAGS.model_name, FLAGS.version, FLAGS.input_type, FLAGS.verify, FLAGS.atol,
                        FLAGS.average_last, FLAGS.config_override, FLAGS.max_proposals)
    with open(os.path.join(out, savedmodel.ASSETS_EXTRA, savedmodel.EXPORT_INFO), encoding="utf-8") as f:
        info = json.load(f)
    print(f"exported {os.path.abspath(out)} (input type {FLAGS.input_type}, checkpoint {info['checkpoint']})")
    for p in info.get("averaged_checkpoints", []):
        print(f"  averaged: {p}")
    v = info["verification"]
    if v:
        print(f"verified: {v['signature']} takes {v['input']['name']} {v['input']['dtype']} {v['input']['shape']}; "
              f"on {v['sample']} the SavedModel and the checkpoint agree on {v['num_detections']} detections, "
              f"max |box difference| {v['max_box_diff']:.2g}, max |score difference| {v['max_score_diff']:.2g} "
              f"(tolerance {v['atol']:g})")
    config = os.path.abspath(os.path.join(FLAGS.export_dir, export.MODELS_CONFIG))
    print(f"TF Serving model config: {config} (models: {', '.join(export.model_folders(FLAGS.export_dir))})")
    print(export.serving_instructions(FLAGS.export_dir, FLAGS.model_name, FLAGS.input_type))


def run():
    run_app(main, "export_model", __name__)


if __name__ == "__main__":
    run()
