"""Evaluates a checkpoint once with COCO detection metrics (no polling, no timeout).

    python tools/evaluate.py --pipeline_config_path=workspace/runs/acme/pipeline.config \\
        --checkpoint=workspace/runs/acme
    # on real labelled photos in OD API shards instead of the synthetic val split:
    python tools/evaluate.py --pipeline_config_path=workspace/runs/acme/pipeline.config \\
        --checkpoint=workspace/runs/acme/ckpt-12 --input_pattern='workspace/data/real/*.tfrecord'

Writes OUTPUT_DIR/metrics.json and TensorBoard events (default OUTPUT_DIR: the checkpoint's
folder/eval_once).
"""

from __future__ import annotations

from absl import flags

from synth.cli import check_usage, quiet_tensorflow, run_app

flags.DEFINE_string("pipeline_config_path", None, "The run's pipeline.config.")
flags.DEFINE_string("checkpoint", None, "A run folder (its latest checkpoint) or a checkpoint prefix.")
flags.DEFINE_string("input_pattern", None, "Evaluate these shards instead of the pipeline's eval input.")
flags.DEFINE_string("label_map_path", None, "Label map of --input_pattern (default: the pipeline's).")
flags.DEFINE_string("output_dir", None, "Where metrics.json and the TensorBoard events go.")
FLAGS = flags.FLAGS


def main(argv):
    check_usage(argv, "pipeline_config_path", "checkpoint")
    quiet_tensorflow()
    from synth import evaluation

    metrics = evaluation.evaluate_once(FLAGS.pipeline_config_path, FLAGS.checkpoint, FLAGS.output_dir,
                                       FLAGS.input_pattern, FLAGS.label_map_path)
    for k in sorted(metrics):
        if k.startswith("DetectionBoxes_Precision/") or k.startswith("Loss/total"):
            print(f"{k:45s} {metrics[k]:.4f}")


def run():
    run_app(main, "evaluate", __name__)


if __name__ == "__main__":
    run()
