"""Checks a generated dataset by reading every record back through the OD API's decoder.

    python tools/inspect_tfrecords.py workspace/data/demo
    python tools/inspect_tfrecords.py workspace/data/acme --plot=acme_stats.png --max_records=500

DIR is a folder written by tools/make_tfrecords.py. Every record must decode with the OD API's
TfExampleDecoder, its image must be image/height x image/width, every box must be non-empty
and inside [0, 1], every class id must be in label_map.pbtxt with its class text equal to the
label map's name, and the counts must equal manifest.json's. Prints a table of counts and the
first problems (each with shard, record index and source_id), and writes a PNG of box sizes,
aspect ratios, box centres, objects per image and objects per class.
Exit status: 0 when no problem was found, 1 when problems were found, 2 on bad input.
"""

from __future__ import annotations

import os

from absl import app, flags

from synth.cli import quiet_tensorflow, run_app

FLAGS = flags.FLAGS
flags.DEFINE_string("plot", None, "Where the statistics PNG goes (default DIR/inspect.png); "
                    "--plot='' writes none.")
flags.DEFINE_integer("max_records", None, "Read at most this many records of each split (the "
                     "manifest's counts are then not compared).", lower_bound=1)
flags.DEFINE_integer("max_problems", 20, "How many problems to print.", lower_bound=0)


def main(argv):
    if len(argv) != 2:
        raise app.UsageError("give exactly one dataset folder: inspect_tfrecords.py DIR")
    quiet_tensorflow()
    from synth import dataset_check

    data_dir = argv[1]
    plot_path = os.path.join(data_dir, "inspect.png") if FLAGS.plot is None else FLAGS.plot
    if plot_path and not os.path.isdir(data_dir):
        plot_path = None  # inspect_dataset reports the missing folder
    report = dataset_check.inspect_dataset(data_dir, plot_path=plot_path or None,
                                     max_records=FLAGS.max_records)
    print(dataset_check.format_report(report, FLAGS.max_problems))
    if report.plot_path:
        print(f"wrote {report.plot_path}")
    print("OK" if report.ok else f"FAILED: {len(report.problems)} problem(s)")
    return 0 if report.ok else 1


def run():
    run_app(main, "inspect_tfrecords", __name__)


if __name__ == "__main__":
    run()
