"""Sends images to a model served by TensorFlow Serving and prints or saves its detections.

    python tools/serving_client.py --server=localhost:8501 --model=demo photos/*.jpg
    python tools/serving_client.py --protocol=grpc --server=localhost:8500 --model=demo --version=2 \\
        --label_map=workspace/exports/demo --output_dir=workspace/served/demo photos/

REST (default) posts to http://SERVER/v1/models/MODEL[/versions/VERSION]:predict; gRPC calls
tensorflow.serving.PredictionService/Predict. --input_type must be the one the model was
exported with (tools/export_model.py --input_type). Without --output_dir, one line per
detection is printed; with it, drawn JPEGs and OUTPUT_DIR/detections.json are written, as
tools/predict.py does. Class names come from --label_map (a label_map.pbtxt, or an export's
model or version folder); without it, classes are shown by id.
"""

from __future__ import annotations

import os

from absl import app, flags

from synth import savedmodel
from synth.cli import check_usage, quiet_tensorflow, run_app

flags.DEFINE_string("server", None, "TF Serving's HOST:PORT (REST: --rest_api_port, 8501; gRPC: --port, 8500).")
flags.DEFINE_string("model", None, "Model name (a name in models.config).")
flags.DEFINE_integer("version", None, "Model version (default: the latest the server has loaded).", lower_bound=1)
flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "REST (JSON over HTTP) or gRPC.")
flags.DEFINE_enum("input_type", "image_tensor", list(savedmodel.INPUT_TYPES),
                  "The input type the model was exported with (" + savedmodel.describe_input_types() + ").")
flags.DEFINE_string("label_map", None, "label_map.pbtxt, or EXPORT_DIR/MODEL[/VERSION], for class names.")
flags.DEFINE_string("output_dir", None, "Write drawn images and detections.json here (default: print).")
flags.DEFINE_float("min_score", 0.5, "Only detections scoring at least this are kept.", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_integer("max_detections", 100, "Keep at most this many detections per image (highest scores).",
                     lower_bound=1)
flags.DEFINE_float("timeout", 30.0, "Seconds to wait for each answer.", lower_bound=0.1)
flags.DEFINE_string("tfrecord", None, "Also (or instead) send composites from shards matching this glob.")
flags.DEFINE_integer("max_images", 8, "With --tfrecord: how many composites.", lower_bound=1)
flags.DEFINE_bool("progress", False, "Show a progress bar.")
FLAGS = flags.FLAGS
def main(argv):
    check_usage(argv, "server", "model", positional=True)
    quiet_tensorflow()
    from synth import predict, serving

    names = serving.read_class_names(FLAGS.label_map) if FLAGS.label_map else None
    items = predict.images_from_files(predict.expand_image_args(argv[1:]))
    if FLAGS.tfrecord:
        items += predict.images_from_tfrecords(FLAGS.tfrecord, FLAGS.max_images)
    if not items:
        raise app.UsageError("give image files, folders or globs, or --tfrecord")
    cls = serving.GrpcClient if FLAGS.protocol == "grpc" else serving.RestClient
    client = cls(FLAGS.server, FLAGS.model, FLAGS.version, FLAGS.timeout, FLAGS.input_type, names)
    s = serving.serve_images(client, items, FLAGS.output_dir, FLAGS.min_score, FLAGS.max_detections,
                             FLAGS.progress)
    if FLAGS.output_dir:
        n = sum(len(r["detections"]) for r in s["images"])
        print(f"{len(s['images'])} images, {n} detections with score >= {FLAGS.min_score}: "
              f"{os.path.join(FLAGS.output_dir, 'detections.json')}")
    else:
        for r in s["images"]:
            print(f"{r['file']}: {len(r['detections'])} detections")
            for d in r["detections"]:
                print(f"  {d['class_name']}\t{d['score']:.3f}\t[ymin, xmin, ymax, xmax] = {d['box']}")
    if "truth" in s:
        print(predict.describe_truth(s["truth"]))
    for e in s["errors"]:
        print(f"skipped: {e['error']}")


def run():
    run_app(main, "serving_client", __name__)


if __name__ == "__main__":
    run()
