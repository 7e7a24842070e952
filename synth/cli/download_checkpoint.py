"""Downloads a pretrained TF2 Detection Zoo checkpoint and unpacks it safely.

    python tools/download_checkpoint.py --model=faster_rcnn_resnet50_v1_640x640 \\
        --dest=workspace/pretrained
    python tools/download_checkpoint.py --model=faster_rcnn_resnet50_v1_640x640_coco17_tpu-8 \\
        --dest=workspace/pretrained --sha256=<hex digest printed by an earlier run>
    python tools/download_checkpoint.py --url=https://mirror.example/my_model.tar.gz \\
        --dest=workspace/pretrained
    python tools/download_checkpoint.py --list

--model takes a zoo name or a pipeline template name (pipelines/, e.g.
faster_rcnn_resnet50_v1_640x640); --list shows them. An interrupted download resumes from
DEST/NAME.tar.gz.part on the next run; a present, complete checkpoint is not downloaded
again. The zoo publishes no checksums, so the SHA-256 of each download is printed: pass it
as --sha256 to make later downloads refuse a different file. Prints the checkpoint prefix
(DEST/<folder>/checkpoint/ckpt-0) on stdout, for tools/configure_pipeline.py --checkpoint.
"""

from __future__ import annotations

import sys

from absl import app, flags

from synth.cli import check_usage, run_app

flags.DEFINE_string("model", None, "Zoo model name, or a pipeline template name (see --list).")
flags.DEFINE_string("dest", None, "Folder the checkpoint is unpacked into, e.g. workspace/pretrained.")
flags.DEFINE_string("url", None, "Download from this URL instead of the zoo's (a mirror, or another "
                    "tarball with <folder>/checkpoint/ckpt-0.*).")
flags.DEFINE_string("sha256", None, "Expected SHA-256 of the tarball (hex); a different download is "
                    "deleted and refused.")
flags.DEFINE_bool("list", False, "List the known models and exit.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
FLAGS = flags.FLAGS


def main(argv):
    check_usage(argv)
    from synth import download

    if FLAGS.list:
        for alias, name in sorted(download.ALIASES.items()):
            pinned = download.ZOO[name].sha256 or "sha256 not pinned"
            print(f"{alias:45s} {name}  ({pinned})")
        return
    check_usage(argv, "dest")
    if not FLAGS.model and not FLAGS.url:
        raise app.UsageError("give --model (see --list) or --url")
    prefix = download.fetch_checkpoint(FLAGS.model, FLAGS.dest, url=FLAGS.url, sha256=FLAGS.sha256,
                                       progress=FLAGS.progress,
                                       report=lambda msg: print(msg, file=sys.stderr))
    print(f"checkpoint ready; use: tools/configure_pipeline.py --checkpoint={prefix}", file=sys.stderr)
    print(prefix)


def run():
    run_app(main, "download_checkpoint", __name__)


if __name__ == "__main__":
    run()
