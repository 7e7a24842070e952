"""COCO detection JSON: reading (an import's input) and writing (mined proposals).

    {"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}, ...],
     "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [x, y, w, h],
                      "iscrowd": 0}, ...],
     "categories": [{"id": 3, "name": "acme"}, ...]}

`bbox` is [x, y, width, height] in pixels, (x, y) the top-left corner. Crowd annotations
(iscrowd 1: one box around a group of objects) are skipped and counted. Every image is
imported, with or without annotations (an image without any is a negative). A problem with
one image or annotation (an unknown image_id or category_id, a bbox that is not four finite
numbers) leaves that image out, reported; a file that is not COCO at all is an error.
Photos are `file_name` inside `images_dir` (default: the JSON file's folder).
"""

from __future__ import annotations

import math
import os

from synth.errors import read_json_object
from synth.importing.records import AnnotationError, LabelledImage, LabelledObject, Parsed, Problem


def _load(path: str) -> dict:
    if not os.path.isfile(path):
        raise AnnotationError(f"--input {path!r} does not exist or is not a file (COCO needs one JSON file)")
    data = read_json_object(path, "COCO file", AnnotationError)
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise AnnotationError(f"COCO file {path!r} has no {key!r} list")
    if not isinstance(data.get("annotations", []), list):
        raise AnnotationError(f"COCO file {path!r}: 'annotations' is not a list")
    return data


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_coco(data: dict, json_path: str, images_dir: str | None = None) -> Parsed:
    """LabelledImages from a loaded COCO dict (see the module docstring)."""
    folder = images_dir if images_dir is not None else os.path.dirname(json_path)
    cats = {}
    for k, c in enumerate(data["categories"]):
        if not (isinstance(c, dict) and _int(c.get("id")) and isinstance(c.get("name"), str) and c["name"]):
            raise AnnotationError(f"COCO file {json_path!r}: categories[{k}] = {c!r} needs an integer 'id' and a "
                                  "non-empty 'name'")
        cats[c["id"]] = c["name"]
    problems: list[Problem] = []
    bad: dict = {}  # image id -> reason
    entries = {}
    for k, im in enumerate(data["images"]):
        if not (isinstance(im, dict) and _int(im.get("id")) and isinstance(im.get("file_name"), str)
                and im["file_name"]):
            problems.append(Problem(f"{json_path} (images[{k}])",
                                    f"{im!r} needs an integer 'id' and a 'file_name'"))
            continue
        if im["id"] in entries:
            problems.append(Problem(f"{json_path} (images[{k}])", f"image id {im['id']} appears twice"))
            continue
        entries[im["id"]] = im
    objects: dict = {i: [] for i in entries}
    crowd = 0
    for k, a in enumerate(data.get("annotations", [])):
        where = f"annotations[{k}]"
        if not isinstance(a, dict):
            problems.append(Problem(f"{json_path} ({where})", f"{a!r} is not an object"))
            continue
        iid = a.get("image_id")
        if iid not in entries:
            problems.append(Problem(f"{json_path} ({where})", f"image_id {iid!r} is not in 'images'"))
            continue
        if a.get("iscrowd", 0):
            crowd += 1
            continue
        if a.get("category_id") not in cats:
            bad.setdefault(iid, f"{where}: category_id {a.get('category_id')!r} is not in 'categories' "
                                f"(ids {sorted(cats)})")
            continue
        bbox = a.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox)):
            bad.setdefault(iid, f"{where}: bbox {bbox!r} is not four finite numbers [x, y, width, height]")
            continue
        x, y, w, h = (float(v) for v in bbox)
        objects[iid].append(LabelledObject(cats[a["category_id"]], (x, y, x + w, y + h)))
    images = []
    for iid, im in entries.items():
        where = f"{json_path} (image id {iid}, {im['file_name']!r})"
        if iid in bad:
            problems.append(Problem(where, bad[iid]))
            continue
        w, h = im.get("width"), im.get("height")
        declared = (int(w), int(h)) if _int(w) and _int(h) and w > 0 and h > 0 else (None, None)
        images.append(LabelledImage(where, os.path.join(folder, im["file_name"]), im["file_name"],
                                    declared[0], declared[1], tuple(objects[iid])))
    return Parsed(images, problems, {"crowd_boxes": crowd})


def parse_coco_input(path: str, images_dir: str | None = None) -> Parsed:
    return parse_coco(_load(path), path, images_dir)


def category_names(path: str) -> list[str]:
    """The category names of a COCO file, in order of category id."""
    data = _load(path)
    parse_coco({"images": [], "categories": data["categories"]}, path)  # raises on a malformed category
    return [c["name"] for c in sorted(data["categories"], key=lambda c: c["id"])]


def coco_dataset(images: list[dict], class_names: dict[int, str]) -> dict:
    """A COCO dataset for review: images are {"file", "height", "width", "detections": [{"box":
    normalised [ymin, xmin, ymax, xmax], "class_id", "score"}]}; each detection becomes an
    annotation with its pixel bbox [x, y, w, h] and its "score" (which tools ignore and the
    import does not need)."""
    from synth import boxes as boxlib

    out_images, anns = [], []
    for i, im in enumerate(images, start=1):
        out_images.append({"id": i, "file_name": im["file"], "height": im["height"], "width": im["width"]})
        for d in im["detections"]:
            xywh = boxlib.to_coco_xywh(d["box"], im["height"], im["width"])
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(d["class_id"]),
                         "bbox": [round(float(v), 2) for v in xywh], "area": round(float(xywh[2] * xywh[3]), 2),
                         "iscrowd": 0, "score": round(float(d["score"]), 5)})
    return {"images": out_images, "annotations": anns,
            "categories": [{"id": k, "name": v} for k, v in sorted(class_names.items())]}
