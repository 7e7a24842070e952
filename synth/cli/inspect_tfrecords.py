"""Checks a generated dataset by reading every record back through the OD API's decoder.

    python tools/inspect_tfrecords.py workspace/data/demo
    python tools/inspect_tfrecords.py workspace/data/acme --plot=acme_stats.png --max_records=500

DIR is a folder written by tools/make_tfrecords.py. Every record must decode with the OD API's
TfExampleDecoder, its image must be image/height x image/width, every box must be non-empty
and inside [0, 1], every class id must be in label_map.pbtxt with its class text equal to the
label map's name, and the counts must equal manifest.json's. Prints a table of counts and the
first problems (each with shard, record index and source_id), and writes a PNG of box sizes,
aspect ratios, box centres, objects per image and objects per class.

When DIR has params.jsonl (make_tfrecords writes it), the label audit follows: the labelled
objects whose gate `match` (how much of the artwork's structure the composite shows, recorded
whether or not the gate is on) is below --weak_match, counted by class, blend mode, placement
mode and colourway, and a sheet of the --weakest lowest-scoring objects cropped from the shards
(DIR/weakest.png): a group with many weak objects is a rendering that leaves boxes on logos
nobody can see. It informs; it does not change the exit status.
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
flags.DEFINE_float("weak_match", 0.5, "The label audit counts objects whose gate match is below this.",
                   lower_bound=-1.0, upper_bound=1.0)
flags.DEFINE_integer("weakest", 24, "How many of the lowest-match objects the audit's sheet draws "
                     "(0: no sheet).", lower_bound=0)
flags.DEFINE_string("weakest_sheet", None, "Where the audit's sheet goes (default DIR/weakest.png).")


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
    _label_audit(data_dir, report)
    print("OK" if report.ok else f"FAILED: {len(report.problems)} problem(s)")
    return 0 if report.ok else 1


def _label_audit(data_dir: str, report) -> None:
    from synth import dataset, label_audit, preview

    params_path = os.path.join(data_dir, dataset.PARAMS)
    if not os.path.isfile(params_path):
        print(f"label audit: no {dataset.PARAMS} in {data_dir} (not written by make_tfrecords): skipped")
        return
    if not label_audit.has_scores(params_path):
        print(f"label audit: {params_path} records no gate scores (a header dataset, or written before "
              "they were recorded): skipped")
        return
    objects = label_audit.read_objects(params_path, report.label_map)
    print(label_audit.format_table(label_audit.summarize(objects, FLAGS.weak_match), FLAGS.weak_match))
    worst = label_audit.weakest(objects, FLAGS.weakest)
    if worst:
        path = FLAGS.weakest_sheet or os.path.join(data_dir, "weakest.png")
        shards = [p for s in dataset.SPLITS for p in dataset.list_shards(data_dir, s)]
        preview.write_image(path, label_audit.weakest_sheet(shards, worst))
        print(f"wrote {path}: the {len(worst)} objects with the lowest match")


def run():
    run_app(main, "inspect_tfrecords", __name__)


if __name__ == "__main__":
    run()
