"""Runs an exported model on images and draws the boxes, class names and scores.

    python tools/predict.py --model=workspace/exports/demo --output_dir=workspace/predictions/demo \\
        photos/*.jpg
    python tools/predict.py --model=workspace/exports/demo/1 --output_dir=OUT \\
        --tfrecord='workspace/data/demo/val-*.tfrecord' --max_images=8

--model is a version folder, or a model folder (its highest version is used). Writes one
drawn JPEG per image and OUTPUT_DIR/detections.json.
"""

from __future__ import annotations

import os

from absl import app, flags

from synth.cli import quiet_tensorflow, run_app

flags.DEFINE_string("model", None, "EXPORT_DIR/MODEL_NAME[/VERSION].")
flags.DEFINE_string("output_dir", None, "Where drawn images and detections.json go.")
flags.DEFINE_float("min_score", 0.5, "Only detections scoring at least this are kept.", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_string("tfrecord", None, "Also (or instead) run on composites in shards matching this glob.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_integer("max_detections", 100, "Keep at most this many detections per image (highest scores).",
                     lower_bound=1)
flags.DEFINE_integer("max_images", 8, "With --tfrecord: how many composites.", lower_bound=1)
FLAGS = flags.FLAGS
def main(argv):
    if not FLAGS.model or not FLAGS.output_dir:
        raise app.UsageError("--model and --output_dir are required")
    quiet_tensorflow()
    from synth import export, predict

    model = FLAGS.model
    if not os.path.isfile(os.path.join(model, "saved_model.pb")) and export.versions(model):
        model = os.path.join(model, str(export.versions(model)[-1]))
    items = predict.images_from_files(predict.expand_image_args(argv[1:]))
    if FLAGS.tfrecord:
        items += predict.images_from_tfrecords(FLAGS.tfrecord, FLAGS.max_images)
    if not items:
        raise app.UsageError("give image files, folders or globs, or --tfrecord")
    s = predict.predict_images(model, items, FLAGS.output_dir, FLAGS.min_score, FLAGS.progress,
                               FLAGS.max_detections)
    n = sum(len(r["detections"]) for r in s["images"])
    print(f"{len(s['images'])} images, {n} detections with score >= {FLAGS.min_score}: "
          f"{os.path.join(FLAGS.output_dir, 'detections.json')}")
    for e in s["errors"]:
        print(f"skipped: {e['error']}")


def run():
    run_app(main, "predict", __name__)


if __name__ == "__main__":
    run()
