"""Trains or evaluates with the OD API's own loops; the flags are those of the OD API's
model_main_tf2, plus --num_steps_per_iteration and --eval_wait_interval.

    # train
    python tools/model_main_tf2.py --pipeline_config_path=workspace/runs/demo/pipeline.config \\
        --model_dir=workspace/runs/demo --num_train_steps=1000 --alsologtostderr
    # evaluate the checkpoints of that run as they appear (COCO metrics to TensorBoard)
    python tools/model_main_tf2.py --pipeline_config_path=workspace/runs/demo/pipeline.config \\
        --model_dir=workspace/runs/demo --checkpoint_dir=workspace/runs/demo

Unlike calling the OD API's script directly, this applies the tf-slim compatibility fix
that TF 2.15 needs, and short runs stop at --num_train_steps.
"""

from __future__ import annotations

from absl import flags

from synth.cli import check_usage, quiet_tensorflow, run_app

flags.DEFINE_string("pipeline_config_path", None, "Path to pipeline config file.")
flags.DEFINE_integer("num_train_steps", None, "Number of train steps (default: the config's num_steps).")
flags.DEFINE_bool("eval_on_train_data", False, "Enable evaluating on train data (only supported in "
                  "distributed training).")
flags.DEFINE_integer("sample_1_of_n_eval_examples", None, "Will sample one of every n eval input "
                     "examples, where n is provided.")
flags.DEFINE_integer("sample_1_of_n_eval_on_train_examples", 5, "Will sample one of every n train "
                     "input examples for evaluation, where n is provided. Only used if "
                     "eval_on_train_data is True.")
flags.DEFINE_string("model_dir", None, "Path to output model directory where event and checkpoint "
                    "files will be written.")
flags.DEFINE_string("checkpoint_dir", None, "Path to directory holding a checkpoint. If given, runs "
                    "in eval-only mode, writing metrics to model_dir.")
flags.DEFINE_integer("eval_timeout", 3600, "Seconds to wait for a new evaluation checkpoint before exiting.")
flags.DEFINE_integer("eval_wait_interval", 300, "Minimum seconds between two evaluations.")
flags.DEFINE_bool("use_tpu", False, "Whether the job is executing on a TPU.")
flags.DEFINE_string("tpu_name", None, "Name of the Cloud TPU for Cluster Resolvers.")
flags.DEFINE_integer("num_workers", 1, "When num_workers > 1, training uses MultiWorkerMirroredStrategy; "
                     "when 1, MirroredStrategy.")
flags.DEFINE_integer("checkpoint_every_n", 1000, "Checkpoint every n steps.")
flags.DEFINE_integer("num_steps_per_iteration", None, "Steps per inner training loop "
                     "(default: the largest number up to 100 that divides num_train_steps and "
                     "checkpoint_every_n, so that training stops at num_train_steps).")
flags.DEFINE_boolean("record_summaries", True, "Whether to record summaries defined by the model "
                     "or the training pipeline (loss summaries are always recorded).")
FLAGS = flags.FLAGS


def main(argv):
    check_usage(argv, "model_dir", "pipeline_config_path")
    quiet_tensorflow(keep_info=True)
    from synth import training

    if FLAGS.checkpoint_dir:
        training.evaluate_continuously(
            FLAGS.pipeline_config_path, FLAGS.model_dir, FLAGS.checkpoint_dir,
            num_train_steps=FLAGS.num_train_steps,
            sample_1_of_n_eval_examples=FLAGS.sample_1_of_n_eval_examples,
            sample_1_of_n_eval_on_train_examples=FLAGS.sample_1_of_n_eval_on_train_examples,
            wait_interval=FLAGS.eval_wait_interval, timeout=FLAGS.eval_timeout)
    else:
        training.train(FLAGS.pipeline_config_path, FLAGS.model_dir, FLAGS.num_train_steps,
                       checkpoint_every_n=FLAGS.checkpoint_every_n,
                       num_steps_per_iteration=FLAGS.num_steps_per_iteration,
                       record_summaries=FLAGS.record_summaries, use_tpu=FLAGS.use_tpu,
                       tpu_name=FLAGS.tpu_name, num_workers=FLAGS.num_workers)


def run():
    run_app(main, "model_main_tf2", __name__)


if __name__ == "__main__":
    run()
