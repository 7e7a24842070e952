"""Mines production photos with an exported model: review proposals and hard negatives.

    python tools/mine.py --model=workspace/exports/acme --output_dir=workspace/mined/acme \\
        production/2026-12/ --negatives_dir=production/no-logo/ --threshold=0.5
    # review production/2026-12/*.xml in LabelImg or CVAT (fix boxes, delete wrong ones), then
    python tools/import_labels.py --format=voc --input=production/2026-12 \\
        --label_map=workspace/data/acme/label_map.pbtxt --output_dir=workspace/data/acme-real

PHOTOS are files, folders or globs. A photo in which the model finds something scoring at
least --threshold becomes a proposal: with --format=voc (default) a PASCAL VOC XML file beside
it (PHOTO.xml; one already there is kept, unless --overwrite), with --format=coco one COCO
file OUTPUT_DIR/proposals.json (import it with --images_dir= the folder mine.json names). Each
box carries its score. A photo of --negatives_dir (photos known to hold no logo) in which the
model still fires at --threshold or above is a hard negative: they are written without boxes
as the dataset OUTPUT_DIR/hard_negatives/, to mix into training by weight
(tools/configure_pipeline.py --dataset=...:WEIGHT). Also writes OUTPUT_DIR/mined.jpg (a contact
sheet) and OUTPUT_DIR/mine.json (the summary). Unreadable photos are skipped with a warning.
--model is a version folder, or a model folder (its highest version is used).
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from synth.cli import check_usage, quiet_tensorflow, run_app

flags.DEFINE_string("model", None, "EXPORT_DIR/MODEL_NAME[/VERSION].")
flags.DEFINE_string("output_dir", None, "Where mine.json, mined.jpg, hard_negatives/ (and proposals.json) go.")
flags.DEFINE_string("negatives_dir", None, "Photos known to hold no logo: where the model fires, hard negatives.")
flags.DEFINE_float("threshold", 0.5, "Score at or above which a detection counts.", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_enum("format", "voc", ["voc", "coco"], "How proposals are written.")
flags.DEFINE_integer("max_detections", 20, "At most this many boxes per proposal.", lower_bound=1)
flags.DEFINE_bool("overwrite", False, "Replace existing VOC files beside the photos and an existing "
                  "OUTPUT_DIR/hard_negatives dataset.")
flags.DEFINE_bool("progress", True, "Show progress bars.")
FLAGS = flags.FLAGS


def main(argv):
    check_usage(argv, "model", "output_dir", positional=True)
    if len(argv) < 2 and not FLAGS.negatives_dir:
        raise app.UsageError("give photos (files, folders or globs) and/or --negatives_dir")
    quiet_tensorflow()
    from synth import mine, predict, savedmodel
    from synth.errors import ConfigError

    model = savedmodel.version_dir(FLAGS.model)
    photos = predict.expand_image_args(argv[1:])
    negatives = []
    if FLAGS.negatives_dir:
        if not os.path.isdir(FLAGS.negatives_dir):
            raise ConfigError(f"--negatives_dir {FLAGS.negatives_dir!r} does not exist or is not a folder")
        negatives = predict.expand_image_args([FLAGS.negatives_dir])
    detector = predict.Predictor(model)
    if not detector.names:
        raise ConfigError(f"model {model!r} has no assets.extra/label_map.pbtxt; export it with "
                          "tools/export_model.py")
    params = mine.MineParams(FLAGS.threshold, FLAGS.format, FLAGS.max_detections, FLAGS.overwrite)
    s = mine.mine(detector, detector.names, photos, negatives, params, FLAGS.output_dir, FLAGS.progress)
    for e in s["unreadable"]:
        print(f"mine: warning: skipped: {e['error']}", file=sys.stderr)
    print(f"{s['photos']} photos: {s['proposals']} proposals (score >= {FLAGS.threshold}); "
          f"{s['negatives']} negatives: {s['hard_negatives']} hard negatives; {len(s['unreadable'])} unreadable")
    if s["existing_annotations_kept"]:
        print(f"kept {len(s['existing_annotations_kept'])} existing VOC file(s) (--overwrite replaces them)")
    if s["written"]:
        more = f" and {len(s['written']) - 5} more (mine.json lists them)" if len(s["written"]) > 5 else ""
        print(f"wrote {len(s['written'])} proposal file(s): {', '.join(s['written'][:5])}{more}")
    for key in ("hard_negatives_dir", "contact_sheet"):
        if s[key]:
            print(f"wrote {s[key]}")
    if s["images_dir"]:
        print(f"import with --images_dir={s['images_dir']}")
    print(f"wrote {os.path.join(FLAGS.output_dir, mine.SUMMARY)}")
    return 0


def run():
    run_app(main, "mine", __name__)


if __name__ == "__main__":
    run()
