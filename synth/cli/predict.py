"""Runs an exported model on images and draws the boxes, class names and scores.

    python tools/predict.py --model=workspace/exports/demo --output_dir=workspace/predictions/demo \\
        photos/*.jpg
    python tools/predict.py --model=workspace/exports/demo/1 --output_dir=OUT \\
        --tfrecord='workspace/data/demo/val-*.tfrecord' --max_images=8

--model is a version folder, or a model folder (its highest version is used). Writes one
drawn JPEG per image, OUTPUT_DIR/detections.json (boxes as normalised [ymin, xmin, ymax, xmax],
image_id, file, size; unreadable inputs under "errors"), OUTPUT_DIR/coco_results.json (COCO's
results format: image_id, category_id, bbox [x, y, width, height] in pixels, score) and
OUTPUT_DIR/coco_images.json (image_id -> file_name, height, width, and the categories).
image_id is the input's position, from 1, in the sorted list of image files (then the
--tfrecord composites). For COCO evaluation give --min_score=0.

Composites from --tfrecord carry their labelled boxes: they are drawn thin and green under the
detections, and the tool prints how many of them the detections find (same class, IoU >= 0.5)
and how many detections match none; detections.json holds the same under "truth" (the totals),
each image's "truth" (each box with "found") and each detection's "matches_truth".

An input that cannot be read (missing, empty, not an image, corrupt or truncated) is skipped
with a warning; the exit status is 1 only when no input could be read.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from synth.cli import check_usage, quiet_tensorflow, run_app

flags.DEFINE_string("model", None, "EXPORT_DIR/MODEL_NAME[/VERSION].")
flags.DEFINE_string("output_dir", None,
                    "Where drawn images, detections.json, coco_results.json and coco_images.json go.")
flags.DEFINE_float("min_score", 0.5, "Only detections scoring at least this are kept.", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_string("tfrecord", None, "Also (or instead) run on composites in shards matching this glob.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_integer("max_detections", 100, "Keep at most this many detections per image (highest scores).",
                     lower_bound=1)
flags.DEFINE_integer("max_images", 8, "With --tfrecord: how many composites.", lower_bound=1)
FLAGS = flags.FLAGS


def main(argv):
    check_usage(argv, "model", "output_dir", positional=True)
    quiet_tensorflow()
    from synth import predict

    items = predict.images_from_files(predict.expand_image_args(argv[1:]))
    if FLAGS.tfrecord:
        items += predict.images_from_tfrecords(FLAGS.tfrecord, FLAGS.max_images)
    if not items:
        raise app.UsageError("give image files, folders or globs, or --tfrecord")
    s = predict.predict_images(FLAGS.model, items, FLAGS.output_dir, FLAGS.min_score, FLAGS.progress,
                               FLAGS.max_detections)
    for e in s["errors"]:
        print(f"predict: warning: skipped: {e['error']}", file=sys.stderr)  # each names its input
    paths = [os.path.join(FLAGS.output_dir, n) for n in predict.OUTPUT_FILES]
    if not s["images"]:
        print(f"predict: error: none of the {len(items)} input images could be read (see the warnings above; "
              f"they are also listed under \"errors\" in {paths[0]})", file=sys.stderr)
        return 1
    n = sum(len(r["detections"]) for r in s["images"])
    failed = (f"; {len(s['errors'])} of {len(items)} images could not be read and were skipped"
              if s["errors"] else "")
    print(f"{len(s['images'])} images, {n} detections with score >= {FLAGS.min_score}{failed}: {', '.join(paths)}")
    if "truth" in s:
        print(predict.describe_truth(s["truth"]))
    return 0


def run():
    run_app(main, "predict", __name__)


if __name__ == "__main__":
    run()
