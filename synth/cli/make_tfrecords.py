"""Generates composites and writes them as sharded OD API TFRecords.

    python tools/make_tfrecords.py --output_dir=workspace/data/demo
    python tools/make_tfrecords.py --config=workspace/configs/acme.config \\
        --output_dir=workspace/data/acme --num_images=20000 --seed=7

Without --config the embedded default is used: the scikit-image logo pasted into the
photographs that ship inside the scikit-image wheel (nothing is downloaded).
Writes OUTPUT_DIR/{train,val}-NNNNN-of-NNNNN.tfrecord, label_map.pbtxt, manifest.json
and params.jsonl (see WORKSPACE.md).
"""

from __future__ import annotations

import os

from absl import flags

from synth.cli import check_usage, define_dataset_flags, quiet_tensorflow, run_app

FLAGS = flags.FLAGS
define_dataset_flags(
    __name__, config_help="Generation config (text-format protobuf, schema in protos/generation_config.proto). "
    "Default: the embedded default.", workers_help="Worker processes",
    preview_help="Also write OUTPUT_DIR/preview.jpg, a contact sheet of composites with their boxes and "
    "recognisability scores (v: visible fraction, m: match) drawn.")


def main(argv):
    check_usage(argv)
    quiet_tensorflow()
    from synth import config as configlib, generate, job

    cfg = configlib.apply_overrides(configlib.load_config(FLAGS.config), FLAGS.num_images, FLAGS.seed)
    s = generate.generate(cfg, FLAGS.output_dir, overwrite=FLAGS.overwrite,
                          show_progress=FLAGS.progress, write_preview=FLAGS.preview,
                          workers=FLAGS.workers or os.cpu_count() or 1)
    print("\n".join(job.format_summary(s)))


def run():
    run_app(main, "make_tfrecords", __name__)


if __name__ == "__main__":
    run()
