"""Renders HTML pages with headless Chromium and writes header boxes, taken from the DOM, as
sharded OD API TFRecords (the same dataset folder as make_tfrecords.py writes).

    python tools/make_header_tfrecords.py --output_dir=workspace/data/headers
    python tools/make_header_tfrecords.py --config=workspace/configs/docs.config \\
        --output_dir=workspace/data/docs --num_images=5000 --seed=3

Without --config the embedded default is used: HTML built from the Markdown descriptions of
the installed Python packages (nothing is downloaded). The config's schema is
protos/header_config.proto (html { directory | glob | builtin }, classes, screen, print,
theme, camera). Pages' CSS and images load from their own folder only; a page that requests
the network, never finishes loading, is too large or is not HTML is skipped and listed in
manifest.json. Needs Chromium (`make setup` installs it: apt-get install -y chromium).
Writes OUTPUT_DIR/{train,val}-NNNNN-of-NNNNN.tfrecord, label_map.pbtxt, manifest.json,
params.jsonl (see WORKSPACE.md).
"""

from __future__ import annotations

import os

from absl import flags

from synth.cli import check_usage, define_dataset_flags, quiet_tensorflow, run_app

FLAGS = flags.FLAGS
define_dataset_flags(
    __name__, config_help="Header config (text-format protobuf, schema in protos/header_config.proto). "
    "Default: the embedded default (installed packages' documentation).",
    workers_help="Worker processes, one browser each",
    preview_help="Also write OUTPUT_DIR/preview.jpg, a contact sheet of pages with their header boxes drawn.")


def main(argv):
    check_usage(argv)
    quiet_tensorflow()
    from synth.html import config as hconfig, job

    cfg = hconfig.with_overrides(hconfig.load(FLAGS.config), FLAGS.num_images, FLAGS.seed)
    s = job.generate_headers(cfg, FLAGS.output_dir, overwrite=FLAGS.overwrite, show_progress=FLAGS.progress,
                             write_preview=FLAGS.preview, workers=FLAGS.workers or os.cpu_count() or 1)
    if s.resumed_shards or s.resumed_chunks:
        print(f"resumed: {s.resumed_shards} shard(s) and {s.resumed_chunks} chunk(s) of others were already "
              "complete and kept")
    parts = [f"{split}: {v['images']} images, {v['objects']} headers" for split, v in s.counts.items()]
    print(f"wrote {s.output_dir} in {s.seconds:.1f} s ({'; '.join(parts)})")
    if s.skipped:
        print(f"skipped {len(s.skipped)} page(s), listed in manifest.json:")
        for sk in s.skipped[:10]:
            print(f"  {sk['reason']}")


def run():
    run_app(main, "make_header_tfrecords", __name__)


if __name__ == "__main__":
    run()
