"""Running an exported SavedModel on image files and drawing what it finds."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Callable, NamedTuple

import cv2
import numpy as np

from synth import boxes as boxlib, savedmodel
from synth.errors import ConfigError, InputImageError, OutputError


IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")  # what folders are searched for
MATCH_IOU = 0.5  # a detection finds a labelled box of its class when their IoU is at least this
TRUTH_COLOUR = (0, 200, 0)  # labelled boxes, drawn under the detections (RGB)
DETECTION_COLOUR = (255, 255, 0)


@dataclass(frozen=True)
class Detection:
    box: list[float]  # normalised [ymin, xmin, ymax, xmax]
    class_id: int
    class_name: str
    score: float


class Predictor:
    """A SavedModel exported by synth.export with input type image_tensor (serving_default takes
    uint8 [1, H, W, 3]): a version folder, or a model folder (its highest version)."""

    def __init__(self, saved_model_dir: str):
        import tensorflow as tf

        from synth.label_map import read_label_map

        saved_model_dir = savedmodel.version_dir(saved_model_dir)
        if not savedmodel.is_version_dir(saved_model_dir):
            raise ConfigError(f"{saved_model_dir!r} is not a SavedModel folder (no {savedmodel.SAVED_MODEL_PB}) "
                              "nor a model folder holding one; give EXPORT_DIR/MODEL_NAME[/VERSION]")
        self._tf = tf
        self.model = tf.saved_model.load(saved_model_dir)
        self.fn = self.model.signatures[savedmodel.SIGNATURE_NAME]
        lm = os.path.join(saved_model_dir, savedmodel.LABEL_MAP_ASSET)
        self.names = read_label_map(lm) if os.path.isfile(lm) else {}

    def __call__(self, rgb: np.ndarray, min_score: float = 0.0, max_detections: int = 100) -> list[Detection]:
        out = self.fn(**{savedmodel.INPUT_NAME: self._tf.constant(rgb[None], self._tf.uint8)})
        n = int(out["num_detections"][0])
        result = []
        for box, cls, score in zip(out["detection_boxes"][0][:n].numpy(),
                                   out["detection_classes"][0][:n].numpy(),
                                   out["detection_scores"][0][:n].numpy()):
            if score >= min_score:
                cid = int(round(float(cls)))
                result.append(Detection([round(float(v), 5) for v in box], cid,
                                        self.names.get(cid, str(cid)), round(float(score), 5)))
        return result[:max_detections]  # the model returns them by descending score


@dataclass(frozen=True)
class Truth:
    """The labelled boxes of an input that has them (a composite read from shards)."""
    boxes: list  # normalised [ymin, xmin, ymax, xmax] each
    class_ids: list
    class_names: list


class Item(NamedTuple):
    name: str  # the input's file, or a composite's source_id
    load: Callable  # () -> RGB uint8; raises InputImageError
    truth: Truth | None = None


def match_truth(detections: list[Detection], truth: Truth, min_iou: float = MATCH_IOU) -> tuple[list, list]:
    """Which labelled boxes the detections find: greedily by descending score, each detection
    takes the unmatched box of its class with the highest IoU, if that is at least `min_iou`
    (COCO's matching at one threshold). Returns (found per labelled box, matched per detection),
    both lists of bools in their input orders."""
    found = [False] * len(truth.boxes)
    matched = [False] * len(detections)
    boxes = np.asarray(truth.boxes, float).reshape(-1, 4)
    for di in sorted(range(len(detections)), key=lambda i: -detections[i].score):
        d = detections[di]
        box = np.asarray(d.box, float)
        best, best_iou = None, min_iou
        for ti, cid in enumerate(truth.class_ids):
            if found[ti] or cid != d.class_id:
                continue
            v = boxlib.iou(box, boxes[ti])
            if v >= best_iou:
                best, best_iou = ti, v
        if best is not None:
            found[best] = matched[di] = True
    return found, matched


def truth_summary(images: list[dict], min_score: float) -> dict | None:
    """Totals over the entries of run_detector that carry labelled boxes, or None when none
    does: {"images", "boxes", "found", "detections", "unmatched_detections", "min_iou",
    "min_score"}."""
    labelled = [im for im in images if "truth" in im]
    if not labelled:
        return None
    return {"images": len(labelled), "boxes": sum(len(im["truth"]) for im in labelled),
            "found": sum(t["found"] for im in labelled for t in im["truth"]),
            "detections": sum(len(im["detections"]) for im in labelled),
            "unmatched_detections": sum(not d["matches_truth"] for im in labelled for d in im["detections"]),
            "min_iou": MATCH_IOU, "min_score": min_score}


def describe_truth(t: dict) -> str:
    """One line for a truth_summary."""
    return (f"found {t['found']} of {t['boxes']} labelled boxes in {t['images']} labelled images "
            f"(same class, IoU >= {t['min_iou']}, score >= {t['min_score']}); "
            f"{t['unmatched_detections']} of {t['detections']} detections match no labelled box")


def read_rgb(path: str) -> np.ndarray:
    """An image file as RGB uint8; InputImageError naming the file and what is wrong with it
    (missing, a folder, empty, not an image, corrupt or truncated, too large)."""
    from synth.images import load_background

    if not os.path.exists(path) and any(c in path for c in "*?["):
        raise InputImageError(f"image glob {path!r} matches no files")
    if os.path.isdir(path):
        raise InputImageError(f"image folder {path!r} holds no image files (looked for {', '.join(IMAGE_EXT)})")
    try:
        return load_background(path)
    except InputImageError as exc:
        raise InputImageError(str(exc).replace("background", "image", 1)) from None


def draw(rgb: np.ndarray, detections: list[Detection], truth: Truth | None = None) -> np.ndarray:
    """A copy of `rgb` with each detection's box, class name and score drawn, over the labelled
    boxes of `truth` (thin, green) when given."""
    img = rgb.copy()
    h, w = img.shape[:2]
    thick = max(1, round(min(h, w) / 250))
    for box in (truth.boxes if truth else []):
        y0, x0, y1, x1 = boxlib.to_pixels(np.array(box), h, w).round().astype(int)
        cv2.rectangle(img, (x0, y0), (x1, y1), TRUTH_COLOUR, 1)
    for d in detections:
        y0, x0, y1, x1 = boxlib.to_pixels(np.array(d.box), h, w).round().astype(int)
        cv2.rectangle(img, (x0, y0), (x1, y1), DETECTION_COLOUR, thick)
        label = f"{d.class_name} {d.score:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        ty = max(th + base, y0)
        cv2.rectangle(img, (x0, ty - th - base), (x0 + tw, ty), DETECTION_COLOUR, -1)
        cv2.putText(img, label, (x0, ty - base), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def expand_image_args(args) -> list[str]:
    """Image files from command-line arguments: files, folders (their images) and globs, sorted
    and without repeats, so that an image's position (its COCO image_id) does not depend on the
    order of the arguments. A missing file, a glob that matches nothing and a folder without
    images are kept, to be reported per input by read_rgb."""
    import glob

    paths = []
    for a in args:
        if os.path.isdir(a):
            found = [os.path.join(a, n) for n in os.listdir(a) if n.lower().endswith(IMAGE_EXT)]
            paths += found or [a]
        elif not os.path.exists(a) and any(c in a for c in "*?["):
            paths += [f for f in glob.glob(a) if os.path.isfile(f)] or [a]
        else:
            paths.append(a)
    return sorted(set(paths))


def images_from_files(paths: list[str]) -> list[Item]:
    """Items for image files (no labelled boxes)."""
    return [Item(p, (lambda p=p: read_rgb(p))) for p in paths]


def _decode(encoded: bytes, name: str) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputImageError(f"image {name!r}: its image/encoded bytes ({len(encoded)}) cannot be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def images_from_tfrecords(pattern: str, max_images: int) -> list[Item]:
    """Items for the first `max_images` composites in shards matching `pattern`, with their
    labelled boxes; a record is named by its source_id (or shard pattern and position when it
    has none)."""
    import glob

    import tensorflow as tf

    from synth.tfexample import parse_example

    files = sorted(glob.glob(pattern))
    if not files:
        raise ConfigError(f"--tfrecord pattern {pattern!r} matches no files")
    items = []
    for i, raw in enumerate(tf.data.TFRecordDataset(files).take(max_images)):
        ex = parse_example(raw.numpy())
        name = ex["source_id"] or f"{pattern}#{i}"
        truth = Truth([[float(v) for v in b] for b in ex["boxes"]], ex["class_ids"], ex["class_texts"])
        items.append(Item(name, (lambda enc=ex["encoded"], name=name: _decode(enc, name)), truth))
    return items


def _drawn_path(output_dir: str, name: str, image_id: int, taken: set[str]) -> str:
    """OUTPUT_DIR/STEM.jpg for input `name`, or STEM-ID.jpg when that file is in `taken` (real
    paths of the inputs and of earlier drawings: same stem in another folder, or drawing into
    the input folder), which it joins."""
    stem = os.path.splitext(os.path.basename(name))[0]
    path = os.path.join(output_dir, stem + ".jpg")
    if os.path.realpath(path) in taken:
        path = os.path.join(output_dir, f"{stem}-{image_id}.jpg")
    taken.add(os.path.realpath(path))
    return path


def run_detector(detect, items, output_dir: str | None, min_score: float, max_detections: int,
                 progress: bool, desc: str) -> tuple[list, list]:
    """Runs `detect(rgb, min_score, max_detections)` on each Item of `items`; with
    `output_dir`, also writes each image with its detections (and labelled boxes) drawn.
    Returns (results, errors): unreadable images are listed in errors ({"image_id", "file",
    "error"}) and skipped, not fatal. Each input's image_id is its position in `items`, from 1,
    whether or not it was read. An item with labelled boxes gets "truth" (each box with
    "found") and each of its detections "matches_truth" (match_truth)."""
    if output_dir:
        try:
            os.makedirs(output_dir, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the output folder {output_dir!r}: {exc.strerror}") from None
    taken = {os.path.realpath(it.name) for it in items}  # never draw over an input
    if progress:
        from tqdm import tqdm

        items = tqdm(items, unit="img", desc=desc, dynamic_ncols=True)
    results, errors = [], []
    for image_id, (name, load, truth) in enumerate(items, start=1):
        try:
            rgb = load()
        except InputImageError as exc:
            errors.append({"image_id": image_id, "file": name, "error": str(exc)})
            continue
        dets = detect(rgb, min_score, max_detections)
        entry = {"image_id": image_id, "file": name, "height": rgb.shape[0], "width": rgb.shape[1],
                 "detections": [dict(d.__dict__) for d in dets]}
        if truth is not None:
            found, matched = match_truth(dets, truth)
            entry["truth"] = [{"box": b, "class_id": c, "class_name": n, "found": f}
                              for b, c, n, f in zip(truth.boxes, truth.class_ids, truth.class_names, found)]
            for d, m in zip(entry["detections"], matched):
                d["matches_truth"] = m
        if output_dir:
            entry["drawn"] = _drawn_path(output_dir, name, image_id, taken)
            if not cv2.imwrite(entry["drawn"], cv2.cvtColor(draw(rgb, dets, truth), cv2.COLOR_RGB2BGR)):
                raise OutputError(f"cannot write the drawn image {entry['drawn']!r} (is {output_dir!r} writable?)")
        results.append(entry)
    return results, errors


def coco_results(images: list[dict]) -> list[dict]:
    """COCO's results format (what pycocotools' COCO.loadRes takes) for the "images" entries of
    a detections summary: one {"image_id", "category_id", "bbox": [x, y, width, height] in
    pixels, "score"} per detection."""
    out = []
    for im in images:
        for d in im["detections"]:
            xywh = boxlib.to_coco_xywh(d["box"], im["height"], im["width"])
            out.append({"image_id": im["image_id"], "category_id": int(d["class_id"]),
                        "bbox": [round(float(v), 3) for v in xywh], "score": float(d["score"])})
    return out


def coco_images(images: list[dict], class_names: dict[int, str] | None = None) -> dict:
    """A COCO dataset without annotations for the images that were read: {"images": [{"id",
    "file_name", "height", "width"}], "categories": [{"id", "name"}]} (the label map's classes
    and any other class detected), to join coco_results.json's image_id to files, or to load
    with pycocotools (COCO(path).loadRes("coco_results.json"))."""
    cats = {int(k): str(v) for k, v in (class_names or {}).items()}
    for im in images:
        for d in im["detections"]:
            cats.setdefault(int(d["class_id"]), d["class_name"])
    return {"images": [{"id": im["image_id"], "file_name": im["file"], "height": im["height"],
                        "width": im["width"]} for im in images],
            "categories": [{"id": k, "name": v} for k, v in sorted(cats.items())]}


def coco_truth(images: list[dict], class_names: dict[int, str] | None = None) -> dict:
    """The labelled boxes of the "images" entries that have them (composites read from shards) as
    a COCO dataset with annotations, ids as in coco_results, for scoring those results with
    pycocotools or synth.realeval. Categories: `class_names` (the label map's) and any other
    labelled class, named by its label."""
    cats, anns = {int(k): str(v) for k, v in (class_names or {}).items()}, []
    for im in images:
        for t in im.get("truth", []):
            cats.setdefault(int(t["class_id"]), t["class_name"])
            x, y, w, h = boxlib.to_coco_xywh(t["box"], im["height"], im["width"])
            anns.append({"id": len(anns) + 1, "image_id": im["image_id"], "category_id": int(t["class_id"]),
                         "bbox": [round(float(v), 3) for v in (x, y, w, h)], "area": float(w * h), "iscrowd": 0})
    return {"images": coco_images(images)["images"], "annotations": anns,
            "categories": [{"id": k, "name": v} for k, v in sorted(cats.items())]}


OUTPUT_FILES = ("detections.json", "coco_results.json", "coco_images.json")


def write_outputs(output_dir: str, summary: dict, class_names: dict[int, str] | None = None) -> list[str]:
    """Writes a detections summary into `output_dir` as detections.json (the summary itself),
    coco_results.json and coco_images.json; returns their paths (OUTPUT_FILES order)."""
    contents = (summary, coco_results(summary["images"]), coco_images(summary["images"], class_names))
    paths = [os.path.join(output_dir, n) for n in OUTPUT_FILES]
    try:
        os.makedirs(output_dir, exist_ok=True)
        for path, data in zip(paths, contents):
            with open(path, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2 if path.endswith("detections.json") else None)
    except OSError as exc:
        raise OutputError(f"cannot write predictions into {output_dir!r}: {exc}") from None
    return paths


def predict_images(saved_model_dir: str, items, output_dir: str, min_score: float = 0.5,
                   progress: bool = True, max_detections: int = 100) -> dict:
    """Runs the model (a version folder, or a model folder: its highest version) on each
    Item of `items`; writes drawn images, detections.json,
    coco_results.json and coco_images.json into `output_dir`. Unreadable images are listed
    under "errors" in detections.json and skipped, not fatal."""
    saved_model_dir = savedmodel.version_dir(saved_model_dir)
    model = Predictor(saved_model_dir)
    results, errors = run_detector(model, items, output_dir, min_score, max_detections, progress, "predict")
    summary = {"model": saved_model_dir, "min_score": min_score, "images": results, "errors": errors}
    truth = truth_summary(results, min_score)
    if truth:
        summary["truth"] = truth
    write_outputs(output_dir, summary, model.names)
    return summary
