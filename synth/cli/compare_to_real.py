"""Compares the boxes of generated shards with the boxes of real labelled photos (no training).

    python tools/compare_to_real.py --data_dir=workspace/data/acme --real=real/instances.json
    python tools/compare_to_real.py --data_dir=workspace/data/acme --real=../shared/data/flickrlogos27/instances.json \\
        --categories=pepsi,starbucks --plot=workspace/data/acme/vs_real.png
    python tools/compare_to_real.py --real=../shared/data/flickrlogos27/instances.json   # the real photos alone

Prints, for the composites and the real photos side by side: the median and deciles of the box
width as a share of the image width, the share wider than half the image, touching the border,
and images without a box; then one distance per statistic (box width, height, aspect, centre x
and y, border contact, empty images, boxes per image: synth.distribution). Writes a PNG of the
histograms (--plot), a contact sheet of composites beside real photos of the brand (--sheet:
would a person take them for photos of the logo? With --categories, the composites holding those
classes; --sheet_classes picks others) and, with --json, the figures as JSON.
Exit status: 0, or 2 on bad input.
"""

from __future__ import annotations

import json
import os

from absl import app, flags

from synth.cli import quiet_tensorflow, run_app

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "A dataset folder written by make_tfrecords.py (its shards are read).")
flags.DEFINE_string("split", "train", "Which split's shards to read.")
flags.DEFINE_string("real", None, "COCO JSON of real labelled photos (bbox = [x, y, w, h] in pixels).")
flags.DEFINE_list("categories", None, "Only these categories of --real (default: all).")
flags.DEFINE_integer("max_records", None, "Read at most this many records.", lower_bound=1)
flags.DEFINE_string("plot", None, "Where the histogram PNG goes (default DATA_DIR/vs_real.png; '' for none).")
flags.DEFINE_string("json", None, "Also write the figures to this JSON file.")
flags.DEFINE_string("sheet", None, "Also write a contact sheet: 16 composites spread over the shards (boxes drawn) "
                    "beside 16 real photos of --categories (default DATA_DIR/vs_real_sheet.jpg; '' for none).")
flags.DEFINE_list("sheet_classes", None, "Only composites holding one of these classes on the sheet (default: "
                  "--categories, where composites hold them; else every composite).")
flags.DEFINE_string("real_images", None, "Folder of the real photos (default: images/ beside --real).")
flags.mark_flag_as_required("real")


def main(argv):
    if len(argv) != 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}: use --data_dir and --real")
    quiet_tensorflow()
    from synth import distribution

    real = distribution.read_coco_boxes(FLAGS.real, FLAGS.categories)
    rs = distribution.summary(real)
    out = {"real": rs}
    if FLAGS.data_dir is None:
        print(json.dumps(rs, indent=1))
    else:
        synth = distribution.read_shard_boxes(FLAGS.data_dir, FLAGS.split, FLAGS.max_records)
        ss, dist = distribution.summary(synth), distribution.compare(synth, real)
        out.update(composites=ss, distances=dist)
        print(distribution.format_table(ss, rs, dist))
        plot = f"{FLAGS.data_dir.rstrip('/')}/vs_real.png" if FLAGS.plot is None else FLAGS.plot
        if plot:
            print(f"wrote {distribution.plot(synth, real, plot)}")
        sheet = f"{FLAGS.data_dir.rstrip('/')}/vs_real_sheet.jpg" if FLAGS.sheet is None else FLAGS.sheet
        if sheet:
            print(f"wrote {_sheet(sheet, ss['images'])}")
    if FLAGS.json:
        with open(FLAGS.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"wrote {FLAGS.json}")
    return 0


def _sheet(path: str, records: int) -> str:
    """Writes the contact sheet, its composites spread over the `records` records the table read."""
    import cv2

    from synth import dataset, preview
    from synth.errors import ConfigError

    images = FLAGS.real_images or os.path.join(os.path.dirname(os.path.abspath(FLAGS.real)), "images")
    shards = dataset.list_shards(FLAGS.data_dir, FLAGS.split)
    classes = FLAGS.sheet_classes
    if classes is not None:
        records = preview.count_holding(shards, classes)
        if not records:
            raise ConfigError(f"--sheet_classes: no composite of {FLAGS.data_dir} ({FLAGS.split}) holds an object "
                             f"of class {', '.join(classes)}")
    elif FLAGS.categories:
        holding = preview.count_holding(shards, FLAGS.categories)
        if holding:  # the brand's composites beside the brand's photos
            classes, records = FLAGS.categories, holding
    left = preview.sheet_from_shards(shards, stride=preview.spread_stride(records), classes=classes)
    right = preview.sheet_from_coco(FLAGS.real, images, FLAGS.categories)
    cv2.imwrite(path, cv2.cvtColor(preview.side_by_side(left, right), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 88])
    return path


def run():
    run_app(main, "compare_to_real", __name__)


if __name__ == "__main__":
    run()
