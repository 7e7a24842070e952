"""Importing labelled photos (PASCAL VOC XML, COCO JSON) into the project's own shards.

    parse (voc / coco)  ->  LabelledImage records and Problems    (no image read)
    photos.prepare      ->  bytes, size and checked, normalised boxes per photo
    shards.write_dataset -> train/val shards, label_map.pbtxt, manifest.json, params.jsonl

`import_labels` runs the three. Class names are mapped onto a label map: an existing one
(`label_map`, e.g. a generated dataset's label_map.pbtxt, so that real and synthetic shards
agree id for id), or, without one, the names found (COCO: its categories in id order;
VOC: the object names, sorted). A bad file is reported with the reason and left out; the
rest are imported.
"""

from __future__ import annotations

import os
from dataclasses import asdict

from synth.errors import ConfigError
from synth.importing import coco, photos, shards, voc
from synth.importing.photos import ImportParams
from synth.importing.records import AnnotationError, LabelledImage, Parsed, Problem

FORMATS = ("coco", "voc")


def parse_input(fmt: str, path: str, images_dir: str | None = None) -> Parsed:
    if fmt == "voc":
        return voc.parse_voc_input(path, images_dir)
    if fmt == "coco":
        return coco.parse_coco_input(path, images_dir)
    raise ConfigError(f"--format={fmt!r} is not one of {', '.join(FORMATS)}")


def class_names_for(parsed: Parsed, fmt: str, path: str, label_map: str | None) -> list[str]:
    """The label map's names in id order (ids must be 1..N), or the names the input uses."""
    if label_map:
        from synth.pipeline_config import label_map_names

        names = label_map_names(label_map)
        ids = sorted(names)
        if not ids or ids != list(range(1, len(ids) + 1)):
            raise ConfigError(f"--label_map {label_map!r} has ids {ids}; expected 1..N without gaps")
        return [names[i] for i in ids]
    if fmt == "coco":
        return coco.category_names(path)
    found = sorted({o.name for im in parsed.images for o in im.objects})
    if not found:
        raise ConfigError(f"--input {path!r} names no class and no --label_map was given")
    return found


def import_labels(fmt: str, input_path: str, output_dir: str, images_dir: str | None = None,
                  label_map: str | None = None, drop_unknown: bool = False, val_fraction: float = 0.0,
                  num_shards: int = 1, seed: int = 0, jpeg_quality: int = 95, overwrite: bool = False,
                  progress: bool = True, boxes_frame: str = "auto") -> shards.WriteSummary:
    """Imports the annotations of `input_path` (and their photos) into `output_dir`."""
    if not 1 <= jpeg_quality <= 100:
        raise ConfigError(f"--jpeg_quality={jpeg_quality} must be in 1..100")
    if boxes_frame not in photos.BOXES_FRAMES:
        raise ConfigError(f"--boxes_frame={boxes_frame!r} is not one of {', '.join(photos.BOXES_FRAMES)}")
    if images_dir is not None and not os.path.isdir(images_dir):
        raise ConfigError(f"--images_dir {images_dir!r} does not exist or is not a folder")
    try:
        parsed = parse_input(fmt, input_path, images_dir)
    except AnnotationError as exc:
        raise ConfigError(str(exc)) from None
    names = class_names_for(parsed, fmt, input_path, label_map)
    ids = {n: i for i, n in enumerate(names, start=1)}
    params = ImportParams(fmt, drop_unknown, jpeg_quality, val_fraction=val_fraction, num_shards=num_shards,
                          seed=seed, boxes_frame=boxes_frame)
    items = sorted(parsed.images, key=lambda im: im.source_id)
    entries = [shards.Entry(im.source_id, im.annotation,
                            (lambda im=im: photos.prepare(im, ids, params)),
                            {"image": im.image_path, "annotation": im.annotation}) for im in items]
    extra = {"kind": "import", "format": fmt, "input": os.path.abspath(input_path),
             "images_dir": os.path.abspath(images_dir) if images_dir else None,
             "label_map_source": os.path.abspath(label_map) if label_map else None,
             "params": asdict(params), "parse_skipped": parsed.skipped}
    counts = {"annotations": len(parsed.images) + len(parsed.problems), **parsed.skipped}
    return shards.write_dataset(output_dir, entries, names, extra, val_fraction, num_shards, seed, overwrite,
                                progress, problems=parsed.problems, counts=counts)


__all__ = ["FORMATS", "import_labels", "parse_input", "class_names_for", "ImportParams", "LabelledImage",
           "Parsed", "Problem", "AnnotationError"]
