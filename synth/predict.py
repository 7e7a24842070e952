"""Running an exported SavedModel on image files and drawing what it finds."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import cv2
import numpy as np

from synth import boxes as boxlib
from synth.errors import ConfigError, InputImageError


@dataclass(frozen=True)
class Detection:
    box: list[float]  # normalised [ymin, xmin, ymax, xmax]
    class_id: int
    class_name: str
    score: float


class Predictor:
    """A SavedModel exported by synth.export (serving_default takes uint8 [1, H, W, 3])."""

    def __init__(self, saved_model_dir: str):
        import tensorflow as tf

        from synth.label_map import read_label_map

        if not os.path.isfile(os.path.join(saved_model_dir, "saved_model.pb")):
            raise ConfigError(f"{saved_model_dir!r} is not a SavedModel folder (no saved_model.pb); "
                              "give EXPORT_DIR/MODEL_NAME/VERSION")
        self._tf = tf
        self.model = tf.saved_model.load(saved_model_dir)
        self.fn = self.model.signatures["serving_default"]
        lm = os.path.join(saved_model_dir, "assets.extra", "label_map.pbtxt")
        self.names = read_label_map(lm) if os.path.isfile(lm) else {}

    def __call__(self, rgb: np.ndarray, min_score: float = 0.0, max_detections: int = 100) -> list[Detection]:
        out = self.fn(input_tensor=self._tf.constant(rgb[None], self._tf.uint8))
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


def read_rgb(path: str) -> np.ndarray:
    from synth.images import load_background

    try:
        return load_background(path)
    except InputImageError as exc:
        raise InputImageError(str(exc).replace("background", "image", 1)) from None


def draw(rgb: np.ndarray, detections: list[Detection]) -> np.ndarray:
    """A copy of `rgb` with each detection's box, class name and score drawn."""
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    h, w = img.shape[:2]
    thick = max(1, round(min(h, w) / 250))
    for d in detections:
        y0, x0, y1, x1 = boxlib.to_pixels(np.array(d.box), h, w).round().astype(int)
        cv2.rectangle(img, (x0, y0), (x1, y1), (0, 255, 255), thick)
        label = f"{d.class_name} {d.score:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        ty = max(th + base, y0)
        cv2.rectangle(img, (x0, ty - th - base), (x0 + tw, ty), (0, 255, 255), -1)
        cv2.putText(img, label, (x0, ty - base), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def expand_image_args(args) -> list[str]:
    """Image files from command-line arguments: files, folders (their images) and globs. A
    missing file is kept, to be reported per image."""
    import glob

    paths = []
    for a in args:
        if os.path.isdir(a):
            paths += sorted(os.path.join(a, n) for n in os.listdir(a) if n.lower().endswith(IMAGE_EXT))
        elif any(c in a for c in "*?["):
            paths += sorted(glob.glob(a))
        else:
            paths.append(a)
    return paths


def images_from_files(paths: list[str]):
    """(name, loader) pairs for image files."""
    return [(p, (lambda p=p: read_rgb(p))) for p in paths]


def images_from_tfrecords(pattern: str, max_images: int):
    """(name, loader) pairs for the first `max_images` composites in shards matching `pattern`."""
    import glob

    import tensorflow as tf

    from synth.tfexample import parse_example

    files = sorted(glob.glob(pattern))
    if not files:
        raise ConfigError(f"--tfrecord pattern {pattern!r} matches no files")
    items = []
    for raw in tf.data.TFRecordDataset(files).take(max_images):
        ex = parse_example(raw.numpy())
        rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(ex["encoded"], np.uint8), cv2.IMREAD_COLOR),
                           cv2.COLOR_BGR2RGB)
        items.append((ex["source_id"], (lambda rgb=rgb: rgb)))
    return items


def run_detector(detect, items, output_dir: str | None, min_score: float, max_detections: int,
                 progress: bool, desc: str) -> tuple[list, list]:
    """Runs `detect(rgb, min_score, max_detections)` on each (name, loader) of `items`; with
    `output_dir`, also writes each image with its detections drawn. Returns (results, errors):
    unreadable images are listed in errors and skipped, not fatal."""
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
    if progress:
        from tqdm import tqdm

        items = tqdm(items, unit="img", desc=desc, dynamic_ncols=True)
    results, errors = [], []
    for name, load in items:
        try:
            rgb = load()
        except InputImageError as exc:
            errors.append({"file": name, "error": str(exc)})
            continue
        dets = detect(rgb, min_score, max_detections)
        entry = {"file": name, "height": rgb.shape[0], "width": rgb.shape[1],
                 "detections": [d.__dict__ for d in dets]}
        if output_dir:
            entry["drawn"] = os.path.join(output_dir, os.path.splitext(os.path.basename(name))[0] + ".jpg")
            cv2.imwrite(entry["drawn"], cv2.cvtColor(draw(rgb, dets), cv2.COLOR_RGB2BGR))
        results.append(entry)
    return results, errors


def predict_images(saved_model_dir: str, items, output_dir: str, min_score: float = 0.5,
                   progress: bool = True, max_detections: int = 100) -> dict:
    """Runs the model on each (name, loader) of `items`; writes drawn images and
    detections.json into `output_dir`. Unreadable images are listed under "errors" in the
    JSON and skipped, not fatal."""
    results, errors = run_detector(Predictor(saved_model_dir), items, output_dir, min_score, max_detections,
                                   progress, "predict")
    summary = {"model": saved_model_dir, "min_score": min_score, "images": results, "errors": errors}
    with open(os.path.join(output_dir, "detections.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary
