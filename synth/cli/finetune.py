"""Fine-tunes an earlier training run on a weighted mix of datasets, in one command: writes
RUN_DIR/pipeline.config (the earlier run's model and settings, its latest checkpoint as the
fine_tune_checkpoint, the datasets mixed by weight) and runs the OD API's training loop.

    python tools/finetune.py --from_run=workspace/runs/acme \\
        --dataset=workspace/data/acme:0.8 --dataset=workspace/data/acme-real:0.2 \\
        --eval_data_dir=workspace/data/acme-real --run_dir=workspace/runs/acme-mix --num_steps=2000

--dataset is DIR:WEIGHT, repeated (one dataset needs no weight); the datasets must share the
earlier run's label map (import real photos with tools/import_labels.py --label_map=the synthetic
dataset's label_map.pbtxt). Then evaluate and export RUN_DIR as any run (tools/evaluate.py,
tools/export_model.py). The same as tools/configure_pipeline.py --template=FROM_RUN/pipeline.config
--checkpoint=FROM_RUN followed by tools/model_main_tf2.py.
"""

from __future__ import annotations

import os

from absl import flags

from synth.cli import check_usage, quiet_tensorflow, run_app

flags.DEFINE_string("from_run", None, "Earlier training run (its pipeline.config and latest ckpt-N).")
flags.DEFINE_multi_string("dataset", None, "DIR:WEIGHT, repeated: the datasets to fine-tune on.")
flags.DEFINE_string("eval_data_dir", None, "Dataset evaluation reads (default: the first --dataset).")
flags.DEFINE_string("run_dir", None, "New run folder: pipeline.config and checkpoints.")
flags.DEFINE_integer("num_steps", None, "Training steps (default: the earlier run's).", lower_bound=1)
flags.DEFINE_integer("batch_size", None, "Training batch size (default: the earlier run's).", lower_bound=1)
flags.DEFINE_integer("checkpoint_every_n", 1000, "Checkpoint every n steps.", lower_bound=1)
flags.DEFINE_bool("configure_only", False, "Write the pipeline.config and stop.")
FLAGS = flags.FLAGS


def main(argv):
    check_usage(argv, "from_run", "dataset", "run_dir")
    quiet_tensorflow(keep_info=not FLAGS.configure_only)  # training logs its losses
    from synth import pipeline_config, training
    from synth.errors import ConfigError

    template = os.path.join(FLAGS.from_run, "pipeline.config")
    if not os.path.isfile(template):
        raise ConfigError(f"--from_run={FLAGS.from_run!r} holds no pipeline.config; give a training run folder")
    if os.path.realpath(FLAGS.from_run) == os.path.realpath(FLAGS.run_dir):
        raise ConfigError(f"--run_dir={FLAGS.run_dir!r} is --from_run; fine-tune into a new run folder")
    datasets = [pipeline_config.parse_dataset_arg(d) for d in FLAGS.dataset]
    out = pipeline_config.configure(template, None, FLAGS.run_dir, FLAGS.from_run, FLAGS.num_steps, FLAGS.batch_size,
                             datasets=datasets, eval_data_dir=FLAGS.eval_data_dir)
    print(f"wrote {out}")
    if FLAGS.configure_only:
        return 0
    training.train(out, FLAGS.run_dir, FLAGS.num_steps, checkpoint_every_n=FLAGS.checkpoint_every_n)
    print(f"trained: checkpoints in {FLAGS.run_dir}")
    return 0


def run():
    run_app(main, "finetune", __name__)


if __name__ == "__main__":
    run()
