"""Generates composites and writes them as sharded OD API TFRecords, as an Apache Beam pipeline.

The same files as tools/make_tfrecords.py, byte for byte (shards, label_map.pbtxt, params.jsonl,
manifest.json), on any Beam runner. The generator's flags come first; every argument absl does
not know, and everything after `--`, is a Beam pipeline option passed to Beam as given.

Locally (DirectRunner, one worker process per core unless Beam options say otherwise):

    python tools/make_tfrecords_beam.py --output_dir=workspace/data/demo
    python tools/make_tfrecords_beam.py --config=workspace/configs/acme.config \\
        --output_dir=workspace/data/acme -- --direct_num_workers=8

On Google Cloud Dataflow (OUTPUT_DIR must be mounted at the same path on this machine and on
every worker, e.g. Filestore/NFS or gcsfuse; gs:// URLs are refused; the workers need
tfod-synth: a worker image with it installed, --sdk_container_image=IMAGE, or, as below,
--setup_file, which needs `pip install build` here and pip-installs the package on each worker):

    python tools/make_tfrecords_beam.py --config=/mnt/shared/acme.config \\
        --output_dir=/mnt/shared/data/acme --num_images=200000 -- \\
        --runner=DataflowRunner --project=MY_PROJECT --region=europe-west1 \\
        --temp_location=gs://MY_BUCKET/tmp --setup_file=./pyproject.toml

Rerunning the same command after a failure finishes the job without redoing finished shards.
Beam metrics (namespace tfod_synth: images, objects, rejected_objects, skipped_backgrounds) are
printed at the end.
"""

from __future__ import annotations

import sys

from absl import app, flags

from synth.cli import main_wrapper, quiet_tensorflow

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "Generation config (text-format protobuf, schema in "
                    "protos/generation_config.proto). Default: the embedded default.")
flags.DEFINE_string("output_dir", None, "Folder for the shards, label map and manifest (with a "
                    "remote runner: a path every worker mounts).", required=True)
flags.DEFINE_integer("num_images", None, "Override the config's num_images.", lower_bound=1)
flags.DEFINE_integer("seed", None, "Override the config's seed.", lower_bound=0)
flags.DEFINE_bool("overwrite", False, "Replace a dataset already in --output_dir (only once the "
                  "new one is complete).")
flags.DEFINE_bool("preview", False, "Also write OUTPUT_DIR/preview.jpg, a contact sheet of composites "
                  "with their boxes drawn.")


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flags parser that keeps what it does not know: returns [program, *beam_options],
    without the `--` separator. A bad value of a known flag stops with absl's usual message."""
    try:
        rest = FLAGS(argv, known_only=True)
    except flags.Error as exc:
        sys.stderr.write(f"FATAL Flags parsing error: {exc}\n"
                         "Pass --helpshort or --helpfull to see help on flags.\n")
        sys.exit(1)
    return [rest[0]] + [a for a in rest[1:] if a != "--"]


def main(argv):
    quiet_tensorflow()
    from synth import beam_pipeline, config as configlib, job

    cfg = configlib.apply_overrides(configlib.load_config(FLAGS.config), FLAGS.num_images, FLAGS.seed)
    s = beam_pipeline.build_and_run(cfg, FLAGS.output_dir, argv[1:], overwrite=FLAGS.overwrite,
                                    write_preview=FLAGS.preview)
    print("\n".join(job.format_summary(s)))
    print("beam metrics (this run): " + ", ".join(f"{k}={v}" for k, v in s.metrics.items()))


def run():
    """Like synth.cli.run_app, with a flags parser that hands unknown arguments to Beam."""
    for flag in FLAGS.get_key_flags_for_module(__name__):
        FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(main_wrapper(main, "make_tfrecords_beam"), flags_parser=parse_flags)


if __name__ == "__main__":
    run()
