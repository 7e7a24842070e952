"""Fills a pipeline.config template for a dataset and writes RUN_DIR/pipeline.config.

    python tools/configure_pipeline.py --template=small_cpu \\
        --data_dir=workspace/data/demo --run_dir=workspace/runs/demo --num_steps=50
    python tools/configure_pipeline.py --template=faster_rcnn_resnet50_v1_640x640 \\
        --data_dir=workspace/data/acme --run_dir=workspace/runs/acme \\
        --checkpoint=workspace/pretrained/faster_rcnn_resnet50_v1_640x640_coco17_tpu-8/checkpoint/ckpt-0

    # a weighted mix: synthetic composites and imported real photos (tools/import_labels.py, with
    # --label_map= the synthetic dataset's), evaluated on the real photos
    python tools/configure_pipeline.py --template=faster_rcnn_resnet50_v1_640x640 \\
        --dataset=workspace/data/acme:0.8 --dataset=workspace/data/acme-real:0.2 \\
        --eval_data_dir=workspace/data/acme-real --run_dir=workspace/runs/acme-mix --checkpoint=...

    # a recipe variant: the demo's template with the second stage's crops at 8x8
    python tools/configure_pipeline.py --template=small_cpu_demo --data_dir=workspace/data/demo \\
        --run_dir=workspace/runs/crop8 --config_override='model { faster_rcnn { initial_crop_size: 8 } }'

Templates live in pipelines/; --list shows them. With several --dataset flags, the train input
reader gets one input_path per dataset and the OD API's sample_from_datasets_weights (each
training example comes from a dataset drawn by weight); all must share one label map.
Evaluation reads the val shards (the train shards when there are none) of --eval_data_dir,
default the (first) dataset. tools/finetune.py does this and trains, from an earlier run.
--config_override merges a pipeline fragment over the template before the other flags apply: a
recipe variant (a crop size, a learning rate) without a copy of the template; the written
pipeline.config records it in its header.
"""

from __future__ import annotations

from absl import app, flags

from synth.cli import check_usage, quiet_tensorflow, run_app

flags.DEFINE_string("template", None, "Template name in pipelines/ (without .config), or a path.")
flags.DEFINE_string("data_dir", None, "Dataset written by make_tfrecords.py.")
flags.DEFINE_multi_string("dataset", None, "DIR:WEIGHT, repeated: datasets mixed by weight in training "
                          "(instead of --data_dir).")
flags.DEFINE_string("eval_data_dir", None, "Dataset evaluation reads (its val shards, else its train shards); "
                    "default: the (first) training dataset.")
flags.DEFINE_string("run_dir", None, "Training run folder; pipeline.config is written there.")
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix to fine-tune from (fine_tune_checkpoint_type "
                    "detection); without it the model trains from scratch.")
flags.DEFINE_integer("num_steps", None, "Training steps (default: the template's).")
flags.DEFINE_integer("batch_size", None, "Training batch size (default: the template's).")
flags.DEFINE_string("config_override", "", "A TrainEvalPipelineConfig fragment in text format merged over the "
                    "template before the other flags apply, e.g. 'model { faster_rcnn { initial_crop_size: 8 } }' "
                    "or 'train_config { optimizer { adam_optimizer { learning_rate { constant_learning_rate { "
                    "learning_rate: 0.0002 } } } } }'. Lists cannot be overridden.")
flags.DEFINE_bool("list", False, "List the templates and exit.")
FLAGS = flags.FLAGS


def main(argv):
    check_usage(argv)
    quiet_tensorflow()
    from synth import pipeline_config

    if FLAGS.list:
        print("\n".join(pipeline_config.list_templates()))
        return
    check_usage(argv, "template", "run_dir")
    if bool(FLAGS.data_dir) == bool(FLAGS.dataset):
        raise app.UsageError("give either --data_dir=DIR or one or more --dataset=DIR:WEIGHT")
    datasets = [pipeline_config.parse_dataset_arg(d) for d in FLAGS.dataset] if FLAGS.dataset else None
    out = pipeline_config.configure(FLAGS.template, FLAGS.data_dir or None, FLAGS.run_dir, FLAGS.checkpoint,
                             FLAGS.num_steps, FLAGS.batch_size, datasets=datasets,
                             eval_data_dir=FLAGS.eval_data_dir, config_override=FLAGS.config_override or None)
    print(f"wrote {out}")
    print(eval_note(pipeline_config.read_pipeline(out), FLAGS.eval_data_dir or FLAGS.data_dir or datasets[0][0]))
    if not FLAGS.checkpoint:
        print("note: no --checkpoint, so the model trains from scratch")


def eval_note(msg, data_dir: str) -> str:
    """What the written pipeline evaluates on, said plainly; a dataset without a val split is
    evaluated on its train shards, and the note says what that means."""
    from synth import dataset

    paths = [p for er in msg.eval_input_reader for p in er.tf_record_input_reader.input_path]
    line = f"eval reads: {', '.join(paths)} ({msg.eval_config.num_examples} examples)"
    if dataset.list_shards(data_dir, "val"):
        return line
    return (line + f"\nnote: {data_dir} has no val split (val_fraction: 0), so evaluation reads the train "
            "shards: its metrics measure the fit to the training data, not generalisation. Evaluate on "
            "held-out labelled shards with tools/evaluate.py --input_pattern=..., or generate with "
            "val_fraction > 0")


def run():
    run_app(main, "configure_pipeline", __name__)


if __name__ == "__main__":
    run()
