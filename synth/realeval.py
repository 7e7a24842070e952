"""Real labelled photos: loading them (COCO JSON + an image folder), splitting them into test
photos and background photos for a set of brands, and scoring a detector's detections on them
with pycocotools (mAP@0.5, mAP@[.5:.95], AR@100, per brand and mean).

`load_real(folder)` reads `folder/instances.json` and checks every entry against
`folder/images/`; `split_for_brands` decides, deterministically, which photos are test
positives (they show a brand), test negatives and backgrounds (they show none of the brands;
a photo is never both a background and a test photo); `evaluate` scores detections given
as COCO results (`image_id`, `category_id`, `bbox` [x, y, w, h] in pixels, `score`);
`paired_bootstrap` says how much of the figures, and of the differences between detectors, is
the draw of test photos (the photos redrawn with replacement, every detector scored on each draw).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass

import numpy as np

from synth.distribution import coco_box_ok
from synth.errors import AnnotationError, ConfigError

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


def check_detections(gt: dict, detections: list) -> dict:
    """{category id: brand name} of `gt`, after checking that every detection names a test photo
    and a brand of `gt` (an AnnotationError names the first that does not)."""
    images = {im["id"] for im in gt["images"]}
    cats = {c["id"]: c["name"] for c in gt["categories"]}
    for k, det in enumerate(detections):
        if det.get("image_id") not in images:
            raise AnnotationError(f"detection {k} names image {det.get('image_id')!r}, which is not a test photo")
        if det.get("category_id") not in cats:
            raise AnnotationError(f"detection {k} names category {det.get('category_id')!r}, which is not a brand "
                                  f"of the test ({cats})")
    return cats


def evaluate(gt: dict, detections: list) -> dict:
    """{'map50', 'map', 'ar100'} for every brand (`per_brand`) and their means. A detection must
    name a test image and a brand id of `gt`; detections on the negatives count as false positives."""
    cats = check_detections(gt, detections)
    per_brand = {}
    for cid, name in cats.items():
        s = _coco_eval(gt, detections, [cid])
        per_brand[name] = {"map50": _clean(s[1]), "map": _clean(s[0]), "ar100": _clean(s[8])}
    mean = {k: round(float(np.mean([v[k] for v in per_brand.values()])), 4) for k in ("map50", "map", "ar100")}
    return {"per_brand": per_brand, **{f"{k}_mean": v for k, v in mean.items()}}


# --- mAP@0.5 on resampled test photos (paired bootstrap) -------------------------------------------
#
# pycocotools scores one set of test photos. How much of a difference between two detectors is the
# luck of which photos were drawn is a question for resampling: draw the test photos again with
# replacement (each brand's photos and the negatives apart, so the balance stays), score both
# detectors on the same draw, repeat. pycocotools would take seconds per draw; the matching of a
# detection to a box does not depend on which other photos are drawn, so it is done once per photo
# (as COCOeval's evaluateImg does it) and each draw only re-counts the precision-recall curve (as
# its accumulate does), with a photo drawn k times counted k times.

BOOTSTRAP_LEVEL = 0.9  # the central interval reported
IOU_50 = 0.5
MAX_DETS = 100


def _iou_xywh(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """IoU of every box of d against every box of g, both [x, y, w, h] (COCO's bbox IoU)."""
    dx2, dy2 = d[:, 0] + d[:, 2], d[:, 1] + d[:, 3]
    gx2, gy2 = g[:, 0] + g[:, 2], g[:, 1] + g[:, 3]
    iw = np.minimum(dx2[:, None], gx2[None]) - np.maximum(d[:, 0][:, None], g[:, 0][None])
    ih = np.minimum(dy2[:, None], gy2[None]) - np.maximum(d[:, 1][:, None], g[:, 1][None])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = (d[:, 2] * d[:, 3])[:, None] + (g[:, 2] * g[:, 3])[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass(frozen=True)
class BrandMatches:
    """One brand's detections on the test photos, matched to its boxes at IoU 0.5 the way COCOeval
    matches them (each photo's detections by falling score, at most 100, each taking the unmatched
    box it overlaps most). Arrays are in COCOeval's accumulation order: photos by id, then all
    detections by falling score (stable)."""
    tp: np.ndarray  # bool per detection: matched a box
    photo: np.ndarray  # int per detection: index of its photo in the test photos
    boxes: np.ndarray  # int per photo: the brand's boxes on it


def match_detections(gt: dict, detections: list) -> dict:
    """{brand name: BrandMatches} for the test photos of `gt` (checked like `evaluate`)."""
    cats = check_detections(gt, detections)
    images = sorted(im["id"] for im in gt["images"])
    index = {i: k for k, i in enumerate(images)}
    out = {}
    for cid, name in cats.items():
        boxes = {}
        for a in gt["annotations"]:
            if a["category_id"] == cid:
                boxes.setdefault(index[a["image_id"]], []).append(a["bbox"])
        dets = {}
        for det in detections:
            if det["category_id"] == cid:
                dets.setdefault(index[det["image_id"]], []).append(det)
        scores, tps, photos = [], [], []
        for p in range(len(images)):
            ds = dets.get(p, [])
            if not ds:
                continue
            order = np.argsort([-d["score"] for d in ds], kind="mergesort")[:MAX_DETS]
            ds = [ds[j] for j in order]
            g = np.asarray(boxes.get(p, []), dtype=np.float64).reshape(-1, 4)
            ious = _iou_xywh(np.asarray([d["bbox"] for d in ds], dtype=np.float64).reshape(-1, 4), g)
            taken = np.zeros(len(g), bool)
            for j, d in enumerate(ds):
                best, m = min(IOU_50, 1 - 1e-10), -1
                for k in range(len(g)):
                    if taken[k] or ious[j, k] < best:
                        continue
                    best, m = ious[j, k], k
                if m >= 0:
                    taken[m] = True
                scores.append(d["score"])
                tps.append(m >= 0)
                photos.append(p)
        order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
        n_boxes = np.zeros(len(images), np.int64)
        for p, bs in boxes.items():
            n_boxes[p] = len(bs)
        out[name] = BrandMatches(np.asarray(tps, bool)[order], np.asarray(photos, np.int64)[order], n_boxes)
    return out


def ap50(m: BrandMatches, counts: np.ndarray | None = None) -> float:
    """AP at IoU 0.5 (COCO's 101-point interpolation) of one brand, each test photo counted
    counts[photo] times (None: once). 0.0 where the drawn photos hold none of the brand's boxes
    (pycocotools reports -1 there; `evaluate` reports 0)."""
    counts = np.ones(len(m.boxes), np.int64) if counts is None else np.asarray(counts, np.int64)
    n_boxes = int((m.boxes * counts).sum())
    if n_boxes == 0:
        return 0.0
    tp = np.repeat(m.tp, counts[m.photo])
    if tp.size == 0:
        return 0.0
    tp_sum = np.cumsum(tp, dtype=np.float64)
    fp_sum = np.cumsum(~tp, dtype=np.float64)
    recall = tp_sum / n_boxes
    precision = tp_sum / (tp_sum + fp_sum + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # COCO's envelope, from the right
    at = np.searchsorted(recall, np.linspace(0.0, 1.0, 101), side="left")
    q = np.where(at < len(precision), precision[np.minimum(at, len(precision) - 1)], 0.0)
    return float(q.mean())


def map50_mean(matches: dict, counts: np.ndarray | None = None) -> float:
    """Mean over brands of `ap50` (the figure `evaluate` reports as map50_mean)."""
    return float(np.mean([ap50(m, counts) for m in matches.values()]))


def paired_bootstrap(gt: dict, arms: dict, resamples: int = 1000, seed: int = 0,
                     level: float = BOOTSTRAP_LEVEL) -> dict:
    """How much of the arms' mean mAP@0.5 is the draw of test photos. `arms`: {name: [detections
    of each training run]} on the photos of `gt`; an arm's figure is the mean over its runs. Each
    resample draws the test photos again with replacement within strata (the photos of each brand,
    or set of brands, and the negatives, each in its own number, so every brand keeps its photos)
    and scores every arm on that same draw. Returns each arm's figure on the
    photos as drawn with its central `level` interval over resamples, and for each pair of arms
    (in the order given) the difference, its interval and the share of resamples in which the
    first arm scores higher; the same for each brand under `per_brand`. Training from scratch
    varies too: this interval is only the photos' part, so two arms whose interval of the
    difference holds 0 are not ranked by these photos."""
    if resamples < 1:
        raise ConfigError(f"paired_bootstrap: resamples {resamples} must be at least 1")
    if not 0 < level < 1:
        raise ConfigError(f"paired_bootstrap: level {level} must be in (0, 1)")
    if not arms or any(not runs for runs in arms.values()):
        raise ConfigError("paired_bootstrap: every arm needs the detections of at least one run")
    matched = {a: [match_detections(gt, dets) for dets in runs] for a, runs in arms.items()}
    images = sorted(im["id"] for im in gt["images"])
    shows: dict = {}
    for a in gt["annotations"]:
        shows.setdefault(a["image_id"], set()).add(a["category_id"])
    groups: dict = {}
    for k, i in enumerate(images):
        groups.setdefault(tuple(sorted(shows.get(i, ()))), []).append(k)
    strata = [np.asarray(v, np.int64) for _, v in sorted(groups.items())]

    brands = [c["name"] for c in gt["categories"]]

    def figures(a, counts) -> np.ndarray:
        """[mean over brands, brand 1, brand 2, ...] of mAP@0.5, each the mean over the arm's runs."""
        per = np.asarray([[ap50(m[b], counts) for b in brands] for m in matched[a]]).mean(axis=0)
        return np.concatenate([[per.mean()], per])

    rng = np.random.default_rng(seed)
    drawn = {a: np.empty((resamples, 1 + len(brands))) for a in arms}
    for r in range(resamples):
        counts = np.zeros(len(images), np.int64)
        for s in strata:
            if len(s):
                counts += np.bincount(rng.choice(s, len(s), replace=True), minlength=len(images))
        for a in arms:
            drawn[a][r] = figures(a, counts)
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2

    def interval(v) -> list:
        return [round(float(np.quantile(v, lo_q)), 4), round(float(np.quantile(v, hi_q)), 4)]

    full = {a: figures(a, None) for a in arms}
    out = {"resamples": resamples, "seed": seed, "level": level,
           "photos": {"positives": sum(len(v) for g, v in groups.items() if g),
                      "negatives": len(groups.get((), ()))},
           "arms": {a: {"map50_mean": round(float(full[a][0]), 4), "interval": interval(drawn[a][:, 0]),
                        "per_brand": {b: {"map50": round(float(full[a][1 + k]), 4),
                                          "interval": interval(drawn[a][:, 1 + k])} for k, b in enumerate(brands)}}
                    for a in arms},
           "pairs": {}}
    names = list(arms)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            d = drawn[a] - drawn[b]
            pair = [{"difference": round(float(full[a][k] - full[b][k]), 4), "interval": interval(d[:, k]),
                     "share_first_higher": round(float(np.mean(d[:, k] > 0)), 4)} for k in range(1 + len(brands))]
            out["pairs"][f"{a} - {b}"] = {**pair[0], "per_brand": dict(zip(brands, pair[1:]))}
    return out


# --- which real logos are found, by size ------------------------------------------------------------
#
# A mean AP says how well, not where. Real logos range from a tenth of the photo to wider than it,
# and a detector trained on composites may find only some of those sizes: recall per band of box
# width (as a share of the photo's width) says which.

WIDTH_EDGES = (0.0, 0.15, 0.3, 0.5, 0.8, 1.0)  # bands of box width / photo width; the last holds 1.0
FOUND_SCORE = 0.5  # the score at which a detection is drawn and counted by tools/predict.py
PART_INSIDE = 0.8  # a part box: at least this share of its area inside the labelled box ...
PART_AREA = 0.5  # ... and less than this share of the labelled box's area


def recall_by_width(gt: dict, detections: list, edges=WIDTH_EDGES, min_score: float = FOUND_SCORE) -> list:
    """For each band [edges[i], edges[i+1]) of box width over photo width (the last band closed),
    the number of `gt` boxes in it and the share found: `found` by any of the top 100 detections of
    the box's brand on its photo that overlaps it at IoU >= 0.5 (the boxes AR@100 can count), and
    `found_scored` by such a detection scoring at least `min_score` (the boxes a user sees drawn).
    Two more shares count boxes on part of the logo: a detection of the brand with at least
    PART_INSIDE of its area inside the labelled box and less than PART_AREA of that box's area, and
    IoU under 0.5 with it. `part_scored`: such a box scores at least `min_score` (a user sees it drawn on
    the logo); `part_first`: such a box outscores every detection that finds the logo (or finds none),
    which costs AP. A detection may find more than one box here (no one-to-one matching): a diagnostic
    of where the detector fails, not an AP. The shares are None for a band with no boxes."""
    check_detections(gt, detections)
    edges = [float(e) for e in edges]
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])) or edges[0] < 0:
        raise ConfigError(f"recall_by_width: edges {edges} must be at least two rising values from 0 up")
    widths = {im["id"]: im["width"] for im in gt["images"]}
    dets: dict = {}
    for det in detections:
        dets.setdefault((det["image_id"], det["category_id"]), []).append(det)
    for k, ds in dets.items():
        dets[k] = sorted(ds, key=lambda d: -d["score"])[:MAX_DETS]
    bands = [{"width": [a, b], "boxes": 0, "n_found": 0, "n_scored": 0, "n_part": 0, "n_first": 0}
             for a, b in zip(edges, edges[1:])]
    for a in gt["annotations"]:
        share = a["bbox"][2] / widths[a["image_id"]]
        k = next((i for i, (lo, hi) in enumerate(zip(edges, edges[1:]))
                  if lo <= share < hi or (i == len(edges) - 2 and share == hi)), None)
        if k is None:
            continue  # wider than the last edge: not in any band
        ds = dets.get((a["image_id"], a["category_id"]), [])
        hit, part = [], []
        if ds:
            boxes = np.asarray([d["bbox"] for d in ds], np.float64)
            ious = _iou_xywh(boxes, np.asarray([a["bbox"]], np.float64))[:, 0]
            hit = [d["score"] for d, v in zip(ds, ious) if v >= IOU_50]
            inside = _inside_share(boxes, np.asarray(a["bbox"], np.float64))
            small = boxes[:, 2] * boxes[:, 3] < PART_AREA * a["bbox"][2] * a["bbox"][3]
            part = [d["score"] for d, v, f, m in zip(ds, ious, inside, small)
                    if v < IOU_50 and f >= PART_INSIDE and m]
        bands[k]["boxes"] += 1
        bands[k]["n_found"] += bool(hit)
        bands[k]["n_scored"] += any(s >= min_score for s in hit)
        bands[k]["n_part"] += any(s >= min_score for s in part)
        bands[k]["n_first"] += bool(part) and max(part) > max(hit, default=-1.0)
    out = []
    for b in bands:
        n = b["boxes"]
        out.append({"width": b["width"], "boxes": n,
                    **{key: round(b[count] / n, 4) if n else None
                       for key, count in (("found", "n_found"), ("found_scored", "n_scored"),
                                          ("part_scored", "n_part"), ("part_first", "n_first"))}})
    return out


def _inside_share(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The share of each box of d ([x, y, w, h] rows) that lies inside the box g ([x, y, w, h])."""
    iw = np.minimum(d[:, 0] + d[:, 2], g[0] + g[2]) - np.maximum(d[:, 0], g[0])
    ih = np.minimum(d[:, 1] + d[:, 3], g[1] + g[3]) - np.maximum(d[:, 1], g[1])
    area = d[:, 2] * d[:, 3]
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    return np.where(area > 0, inter / np.where(area > 0, area, 1), 0.0)
