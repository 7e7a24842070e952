"""Mining production photos with an exported model: review proposals and hard negatives.

`mine(detect, class_names, photos, negatives, params, output_dir)`:
- every photo of `photos` in which `detect` finds something scoring at least params.threshold
  becomes a **proposal for review**: with params.format "voc", a PASCAL VOC XML file beside the
  photo (PHOTO_STEM.xml, which LabelImg and CVAT open; the scores in <score> elements), never
  replacing an XML already there (a person may have reviewed it) unless params.overwrite; with
  "coco", one COCO JSON, OUTPUT_DIR/proposals.json (file_name relative to the photos' common
  folder, each annotation with its "score"). A person confirms or corrects them, and
  tools/import_labels.py reads them back;
- every photo of `negatives` (photos known to hold no logo) in which `detect` still fires at
  or above the threshold is a **hard negative**: written, without boxes, as the dataset
  OUTPUT_DIR/hard_negatives/ (train shards, the model's label map, manifest), which
  tools/configure_pipeline.py can mix in by weight;
- OUTPUT_DIR/mined.jpg, a contact sheet of proposals (their boxes and scores) and hard
  negatives (the false detections, "FP"), and OUTPUT_DIR/mine.json, the summary.
Photos that cannot be read are listed with the reason and skipped.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from synth import preview
from synth.errors import ConfigError, InputImageError, OutputError
from synth.importing import coco, photos as photolib, shards, voc
from synth.importing.records import LabelledImage

FORMATS = ("voc", "coco")
HARD_NEGATIVES = "hard_negatives"
CONTACT_SHEET = "mined.jpg"
SUMMARY = "mine.json"
PROPOSALS_COCO = "proposals.json"
SHEET_IMAGES = 24


@dataclass(frozen=True)
class MineParams:
    threshold: float = 0.5
    format: str = "voc"
    max_detections: int = 20
    overwrite: bool = False  # replace existing VOC files and an existing hard_negatives dataset


def _write_atomic(path: str, data: bytes) -> None:
    try:
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
    except OSError as exc:
        raise OutputError(f"cannot write {path!r}: {exc.strerror}") from None


def _thumb(rgb, dets, prefix: str = "") -> np.ndarray:
    boxes = np.array([d.box for d in dets], np.float32).reshape(-1, 4)
    return preview.annotate(rgb, boxes, [f"{prefix}{d.class_name} {d.score:.2f}" for d in dets],
                            [d.class_id for d in dets])


def _scan(detect, paths, params, errors, desc, progress):
    """Yields (path, rgb, detections at or above the threshold) for each readable photo."""
    from synth.predict import read_rgb

    if progress:
        from tqdm import tqdm

        paths = tqdm(paths, unit="photo", desc=desc, dynamic_ncols=True)
    for p in paths:
        try:
            rgb = read_rgb(p)
        except InputImageError as exc:
            errors.append({"file": p, "error": str(exc)})
            continue
        yield p, rgb, detect(rgb, params.threshold, params.max_detections)


def mine(detect, class_names: dict[int, str], photos: list[str], negatives: list[str], params: MineParams,
         output_dir: str, progress: bool = True) -> dict:
    """See the module docstring; returns the summary written to OUTPUT_DIR/mine.json."""
    if params.format not in FORMATS:
        raise ConfigError(f"--format={params.format!r} is not one of {', '.join(FORMATS)}")
    if not 0.0 <= params.threshold <= 1.0:
        raise ConfigError(f"--threshold={params.threshold} must be in [0, 1]")
    ids = sorted(class_names)
    if not ids or ids != list(range(1, len(ids) + 1)):
        raise ConfigError(f"the model's label map has ids {ids}; expected 1..N (assets.extra/label_map.pbtxt)")
    from synth import dataset

    old = dataset.existing_outputs(os.path.join(output_dir, HARD_NEGATIVES))
    if negatives and old and not params.overwrite:
        raise OutputError(f"{os.path.join(output_dir, HARD_NEGATIVES)!r} already holds a dataset; choose another "
                          "--output_dir, or pass --overwrite to replace it")
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create --output_dir {output_dir!r}: {exc.strerror}") from None
    errors, proposals, kept, written, thumbs = [], [], [], [], []
    for path, rgb, dets in _scan(detect, photos, params, errors, "proposals", progress):
        if not dets:
            continue
        proposals.append({"file": path, "height": rgb.shape[0], "width": rgb.shape[1],
                          "detections": [asdict(d) for d in dets]})
        if len(thumbs) < SHEET_IMAGES:
            thumbs.append(_thumb(rgb, dets))
        if params.format == "voc":
            xml = os.path.splitext(path)[0] + ".xml"
            if os.path.exists(xml) and not params.overwrite:
                kept.append(xml)
                continue
            objs = [{"name": d.class_name, "box": d.box, "score": d.score} for d in dets]
            _write_atomic(xml, voc.voc_xml(path, rgb.shape[0], rgb.shape[1], objs))
            written.append(xml)
    images_root = None
    if params.format == "coco" and proposals:
        images_root = os.path.commonpath([os.path.dirname(os.path.abspath(p["file"])) for p in proposals])
        rel = [dict(p, file=os.path.relpath(os.path.abspath(p["file"]), images_root)) for p in proposals]
        out = os.path.join(output_dir, PROPOSALS_COCO)
        _write_atomic(out, json.dumps(coco.coco_dataset(rel, class_names)).encode())
        written.append(out)
    hard = []
    for path, rgb, dets in _scan(detect, negatives, params, errors, "negatives", progress):
        if dets:
            hard.append(path)
            if len(thumbs) < SHEET_IMAGES:
                thumbs.append(_thumb(rgb, dets, "FP "))
    negatives_dir = None
    if hard:
        negatives_dir = os.path.join(output_dir, HARD_NEGATIVES)
        write_hard_negatives(negatives_dir, hard, [class_names[i] for i in ids], params, progress)
    if thumbs:
        sheet = cv2.cvtColor(preview.contact_sheet(thumbs), cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(os.path.join(output_dir, CONTACT_SHEET), sheet):
            raise OutputError(f"cannot write {os.path.join(output_dir, CONTACT_SHEET)!r}")
    summary = {"params": asdict(params), "photos": len(photos), "proposals": len(proposals),
               "negatives": len(negatives), "hard_negatives": len(hard), "unreadable": errors,
               "existing_annotations_kept": kept, "written": written, "images_dir": images_root,
               "hard_negatives_dir": negatives_dir, "contact_sheet": os.path.join(output_dir, CONTACT_SHEET)
               if thumbs else None, "proposal_images": proposals, "hard_negative_images": hard}
    _write_atomic(os.path.join(output_dir, SUMMARY), json.dumps(summary, indent=2).encode())
    return summary


def write_hard_negatives(out_dir: str, paths: list[str], class_names: list[str], params: MineParams,
                         progress: bool = True) -> shards.WriteSummary:
    """The photos as a dataset of images without boxes (train split), with the model's label map."""
    root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
    ip = photolib.ImportParams("hard-negatives")
    entries = []
    for p in sorted(paths):
        sid = os.path.relpath(os.path.abspath(p), root)
        item = LabelledImage(p, p, sid, None, None, ())
        entries.append(shards.Entry(sid, p, (lambda item=item: photolib.prepare(item, {}, ip)), {"image": p}))
    extra = {"kind": "hard_negatives", "threshold": params.threshold, "images_dir": root}
    return shards.write_dataset(out_dir, entries, class_names, extra, overwrite=params.overwrite,
                                progress=progress, desc="hard negatives")
