"""Imports labelled photos (PASCAL VOC XML or COCO JSON) into the project's own shards.

    python tools/import_labels.py --format=voc --input=photos/ --output_dir=workspace/data/acme-real \\
        --label_map=workspace/data/acme/label_map.pbtxt
    python tools/import_labels.py --format=coco --input=labels/instances.json --images_dir=labels/images \\
        --output_dir=workspace/data/acme-real --label_map=workspace/data/acme/label_map.pbtxt \\
        --drop_unknown_classes --val_fraction=0.3

--input is a folder of VOC .xml files (LabelImg, CVAT; the photo is <filename> beside the XML
or in --images_dir) or one .xml file, or a COCO JSON file (photos are file_name in
--images_dir, default the JSON's folder). Class names are mapped onto --label_map (give the
synthetic dataset's, so that ids agree when the two are mixed in training); without it the
input's own classes are used. A photo naming a class the label map lacks is refused unless
--drop_unknown_classes drops those objects. XML is parsed without entities, DTDs or network
access (a document with a DOCTYPE is refused). JPEG bytes are kept as they are; other
formats, and photos with an EXIF orientation, are re-encoded (the orientation applied to
pixels and boxes). Every bad file (missing or truncated photo, box outside the image, unknown
class, malformed annotation) is reported with the reason, and the rest are imported.

OUTPUT_DIR gets the layout of a generated dataset (train-/val- shards, label_map.pbtxt,
manifest.json listing the skipped files, params.jsonl), checked by tools/inspect_tfrecords.py.
Exit status: 0 when everything was imported, 1 when some files were skipped, 2 on bad input
(or when nothing could be imported).
"""

from __future__ import annotations

from absl import flags

from synth.cli import check_usage, quiet_tensorflow, run_app

flags.DEFINE_enum("format", None, ["coco", "voc"], "Annotation format of --input.")
flags.DEFINE_string("input", None, "VOC: a folder of .xml files or one .xml file; COCO: the JSON file.")
flags.DEFINE_string("images_dir", None, "Folder of the photos (default: beside the XML files / the JSON file).")
flags.DEFINE_string("output_dir", None, "Dataset folder to write.")
flags.DEFINE_string("label_map", None, "Label map to map class names onto (e.g. the synthetic dataset's "
                    "label_map.pbtxt); default: the input's own classes.")
flags.DEFINE_bool("drop_unknown_classes", False, "Drop objects whose class is not in --label_map (counted) "
                  "instead of refusing their photos.")
flags.DEFINE_float("val_fraction", 0.0, "Share of the photos that go to the val split (drawn with --seed).")
flags.DEFINE_integer("num_shards", 1, "Train shards.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the train/val draw.")
flags.DEFINE_integer("jpeg_quality", 95, "Quality of re-encoded photos.", lower_bound=1, upper_bound=100)
flags.DEFINE_enum("boxes_frame", "auto", ["auto", "stored", "turned"], "For photos with an EXIF orientation: "
                  "boxes are on the stored pixels (LabelImg), on the turned image (CVAT), or auto: stored unless "
                  "the annotation declares the turned image's size (decidable for 90-degree turns only).")
flags.DEFINE_bool("overwrite", False, "Replace a dataset already in --output_dir (once the new one is complete).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_integer("max_problems", 30, "How many skipped files to list.", lower_bound=0)
FLAGS = flags.FLAGS


def format_summary(s, max_problems: int) -> str:
    lines = [f"wrote {s.output_dir} in {s.seconds:.1f} s"]
    for split, c in s.splits.items():
        lines.append(f"  {split}: {c['images']} photos, {c['objects']} boxes, "
                     f"{c['images_without_objects']} photos without boxes")
    lines.append("  " + ", ".join(f"{k}: {v}" for k, v in s.counts.items()))
    lines.append(f"  skipped: {len(s.problems)} file(s)")
    for p in s.problems[:max_problems]:
        lines.append(f"    {p}")
    if len(s.problems) > max_problems:
        lines.append(f"    ... and {len(s.problems) - max_problems} more (all in manifest.json, skipped_inputs)")
    return "\n".join(lines)


def main(argv):
    check_usage(argv, "format", "input", "output_dir")
    quiet_tensorflow()
    from synth.importing import import_labels

    s = import_labels(FLAGS.format, FLAGS.input, FLAGS.output_dir, FLAGS.images_dir, FLAGS.label_map,
                      FLAGS.drop_unknown_classes, FLAGS.val_fraction, FLAGS.num_shards, FLAGS.seed,
                      FLAGS.jpeg_quality, FLAGS.overwrite, FLAGS.progress, FLAGS.boxes_frame)
    print(format_summary(s, FLAGS.max_problems))
    return 1 if s.problems else 0


def run():
    run_app(main, "import_labels", __name__)


if __name__ == "__main__":
    run()
