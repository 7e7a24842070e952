"""Real labelled photos: loading them (COCO JSON + an image folder), splitting them into test
photos and background photos for a set of brands, and scoring a detector's detections on them
with pycocotools (mAP@0.5, mAP@[.5:.95], AR@100, per brand and mean).

`load_real(folder)` reads `folder/instances.json` and checks every entry against
`folder/images/`; `split_for_brands` decides, deterministically, which photos are test
positives (they show a brand), test negatives and backgrounds (they show none of the brands;
a photo is never both a background and a test photo); `evaluate` scores detections given
as COCO results (`image_id`, `category_id`, `bbox` [x, y, w, h] in pixels, `score`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass

import numpy as np

from synth.distribution import coco_box_ok
from synth.errors import AnnotationError

ANNOTATIONS = "instances.json"
IMAGES = "images"


@dataclass(frozen=True)
class RealPhotos:
    folder: str
    images: dict  # image id -> COCO image dict (file_name, width, height)
    annotations: list  # COCO annotation dicts
    categories: dict  # category id -> name

    def path(self, image_id: int) -> str:
        return os.path.join(self.folder, IMAGES, self.images[image_id]["file_name"])

    def category_id(self, name: str) -> int:
        for cid, n in self.categories.items():
            if n == name:
                return cid
        raise AnnotationError(f"{os.path.join(self.folder, ANNOTATIONS)}: brand {name!r} is not among its "
                              f"categories ({', '.join(sorted(self.categories.values()))})")


def load_real(folder: str, check_files: bool = True) -> RealPhotos:
    """Reads and checks FOLDER/instances.json (COCO detection format) and FOLDER/images/."""
    path = os.path.join(folder, ANNOTATIONS)
    if not os.path.isdir(folder):
        raise AnnotationError(f"real-photo folder {folder!r}: no such folder")
    if not os.path.isfile(path):
        raise AnnotationError(f"real-photo folder {folder!r}: no {ANNOTATIONS} in it (COCO detection JSON expected)")
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        raise AnnotationError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(d, dict):
        raise AnnotationError(f"{path}: the top level must be an object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(d.get(key), list):
            raise AnnotationError(f"{path}: no {key!r} list (COCO detection format expected)")
    images = {}
    for k, im in enumerate(d["images"]):
        if not (isinstance(im, dict) and {"id", "file_name", "width", "height"} <= im.keys()):
            raise AnnotationError(f"{path}: images[{k}] needs id, file_name, width and height, got {im!r}")
        if check_files and not os.path.isfile(os.path.join(folder, IMAGES, im["file_name"])):
            raise AnnotationError(f"{path}: images[{k}] (id {im['id']}) file {im['file_name']!r} is missing from "
                                  f"{os.path.join(folder, IMAGES)}")
        images[im["id"]] = im
    categories = {c["id"]: c["name"] for c in d["categories"]}
    for k, a in enumerate(d["annotations"]):
        im = images.get(a.get("image_id"))
        if im is None:
            raise AnnotationError(f"{path}: annotations[{k}] (id {a.get('id')}) names image_id {a.get('image_id')!r}, "
                                  "which is not in images")
        if a.get("category_id") not in categories:
            raise AnnotationError(f"{path}: annotations[{k}] (id {a.get('id')}) names category_id "
                                  f"{a.get('category_id')!r}, which is not in categories")
        bbox = a.get("bbox")
        if not coco_box_ok(bbox, im):
            raise AnnotationError(f"{path}: annotations[{k}] (id {a.get('id')}) bbox {bbox!r} is empty or outside its "
                                  f"image {im['file_name']!r} ({im['width']}x{im['height']})")
    return RealPhotos(folder, images, d["annotations"], categories)


@dataclass(frozen=True)
class Split:
    brands: tuple  # names, in label-map order (class id = position + 1)
    positives: tuple  # image ids showing one of the brands (test)
    negatives: tuple  # image ids showing none of them (test)
    backgrounds: tuple  # image ids showing none of them, never test photos


def split_for_brands(real: RealPhotos, brands, seed: int = 0, max_positives_per_brand: int | None = None,
                     num_backgrounds: int | None = None) -> Split:
    """Test positives: the photos with a box of one of `brands` (at most max_positives_per_brand
    per brand). Test negatives: as many photos without any box of those brands, drawn first from
    the photos with no box at all. Backgrounds: the remaining photos without those brands."""
    ids = [real.category_id(b) for b in brands]
    rng = np.random.default_rng(seed)
    showing: dict = {}
    for a in real.annotations:
        showing.setdefault(a["image_id"], set()).add(a["category_id"])
    positives = []
    for cid in ids:
        mine = sorted(i for i, cats in showing.items() if cid in cats and i not in positives)
        if max_positives_per_brand is not None and len(mine) > max_positives_per_brand:
            mine = sorted(rng.choice(mine, max_positives_per_brand, replace=False).tolist())
        positives.extend(mine)
    clean = sorted(i for i in real.images if not (showing.get(i, set()) & set(ids)))
    unlabelled = [i for i in clean if i not in showing]
    others = [i for i in clean if i in showing]
    rng.shuffle(unlabelled)
    rng.shuffle(others)
    pool = unlabelled + others
    negatives = sorted(pool[:len(positives)])
    backgrounds = sorted(pool[len(positives):])
    if num_backgrounds is not None:
        backgrounds = backgrounds[:num_backgrounds]
    return Split(tuple(brands), tuple(int(i) for i in positives), tuple(int(i) for i in negatives),
                 tuple(int(i) for i in backgrounds))


def ground_truth(real: RealPhotos, split: Split) -> dict:
    """The test photos as a COCO dataset whose category ids are the brands' label-map ids."""
    to_label = {real.category_id(b): k + 1 for k, b in enumerate(split.brands)}
    test = set(split.positives) | set(split.negatives)
    anns = []
    for a in real.annotations:
        if a["image_id"] in test and a["category_id"] in to_label:
            x, y, w, h = a["bbox"]
            anns.append({"id": len(anns) + 1, "image_id": a["image_id"], "category_id": to_label[a["category_id"]],
                         "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    return {"images": [dict(real.images[i]) for i in sorted(test)], "annotations": anns,
            "categories": [{"id": k + 1, "name": b} for k, b in enumerate(split.brands)]}


def _coco_eval(gt: dict, detections: list, cat_ids=None):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not detections:
        return [0.0] * 12  # nothing detected: no recall, no precision
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = {k: list(v) for k, v in gt.items()}
        g.dataset.setdefault("info", {})  # pycocotools >= 2.0.9 copies it into the results
        g.createIndex()
        d = g.loadRes([dict(det) for det in detections])  # loadRes adds keys: work on copies
        e = COCOeval(g, d, "bbox")
        if cat_ids is not None:
            e.params.catIds = list(cat_ids)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e.stats  # [AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl]


def _clean(v: float) -> float:
    return round(max(float(v), 0.0), 4)  # pycocotools reports -1 where nothing can be scored


def evaluate(gt: dict, detections: list) -> dict:
    """{'map50', 'map', 'ar100'} for every brand (`per_brand`) and their means. A detection must
    name a test image and a brand id of `gt`; detections on the negatives count as false positives."""
    images = {im["id"] for im in gt["images"]}
    cats = {c["id"]: c["name"] for c in gt["categories"]}
    for k, det in enumerate(detections):
        if det.get("image_id") not in images:
            raise AnnotationError(f"detection {k} names image {det.get('image_id')!r}, which is not a test photo")
        if det.get("category_id") not in cats:
            raise AnnotationError(f"detection {k} names category {det.get('category_id')!r}, which is not a brand "
                                  f"of the test ({cats})")
    per_brand = {}
    for cid, name in cats.items():
        s = _coco_eval(gt, detections, [cid])
        per_brand[name] = {"map50": _clean(s[1]), "map": _clean(s[0]), "ar100": _clean(s[8])}
    mean = {k: round(float(np.mean([v[k] for v in per_brand.values()])), 4) for k in ("map50", "map", "ar100")}
    return {"per_brand": per_brand, **{f"{k}_mean": v for k, v in mean.items()}}
