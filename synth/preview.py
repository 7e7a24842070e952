"""Contact sheets: a grid of composites with their boxes and class names drawn, to look at
a dataset instead of reading its numbers. `sheet_from_shards` draws records of the shards as
written (the JPEG a model will see), spread over the dataset (`spread_stride`: consecutive composites
share a backdrop, so the first 16 show only 4 photos), labelled with the gate's scores from params.jsonl."""

from __future__ import annotations

import itertools
import json
import math
import os
from typing import Iterator

import cv2
import numpy as np

from synth import boxes as boxlib, tfexample, tfrecord_io
from synth import tfrecord_keys as K

PREVIEW_IMAGES = 16

COLOURS = [(255, 64, 64), (64, 200, 64), (64, 128, 255), (255, 200, 0), (200, 64, 255), (0, 220, 220)]


def annotate(rgb: np.ndarray, boxes: np.ndarray, labels: list[str], class_ids: list[int],
             thumb_width: int = 320) -> np.ndarray:
    """A thumbnail of `rgb` with each box and its label drawn."""
    h, w = rgb.shape[:2]
    scale = thumb_width / w
    img = cv2.resize(rgb, (thumb_width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    th, tw = img.shape[:2]
    for box, label, cid in zip(boxes, labels, class_ids):
        y0, x0, y1, x1 = boxlib.to_pixels(box, th, tw).round().astype(int)
        colour = COLOURS[(cid - 1) % len(COLOURS)]
        cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), colour, 1)
        cv2.putText(img, label, (x0, max(10, y0 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1,
                    cv2.LINE_AA)
    return img


def contact_sheet(thumbs: list[np.ndarray], cols: int = 4, pad: int = 4) -> np.ndarray:
    """Thumbnails (same width) in a grid on a dark background."""
    if not thumbs:
        raise ValueError("contact_sheet needs at least one thumbnail")
    rows = math.ceil(len(thumbs) / cols)
    th = max(t.shape[0] for t in thumbs)
    tw = max(t.shape[1] for t in thumbs)
    sheet = np.full((rows * (th + pad) + pad, cols * (tw + pad) + pad, 3), 24, np.uint8)
    for i, t in enumerate(thumbs):
        r, c = divmod(i, cols)
        y, x = pad + r * (th + pad), pad + c * (tw + pad)
        sheet[y:y + t.shape[0], x:x + t.shape[1]] = t
    return sheet


def write_image(path: str, rgb: np.ndarray) -> str:
    """Writes an RGB image (PNG, or JPEG at quality 90, by the path's extension); OutputError
    naming the path when it cannot be written."""
    from synth.errors import OutputError

    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise OutputError(f"cannot write {path}: folder {parent} does not exist")
    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]):
        raise OutputError(f"cannot write {path}: OpenCV refused it (is the extension .png or .jpg?)")
    return path


def _labels(texts: list[str], record: dict | None) -> list[str]:
    """Class texts, with the gate's visible fraction and match when params.jsonl has them."""
    scores = (record or {}).get("scores") or [None] * len(texts)
    return [t if sc is None else f"{t} v{sc['visible_fraction']:.2f} m{sc['match']:.2f}"
            for t, sc in zip(texts, scores)]


def spread_stride(num_records: int, count: int = PREVIEW_IMAGES) -> int:
    """The step between the records a sheet draws so that `count` of them span `num_records`
    (1 when there are no more than `count`)."""
    return max(1, int(num_records) // max(1, count))


def _holding(shards: list[str], classes) -> Iterator[dict]:
    """The features of the records of `shards` in order, only those with an object of one of
    `classes` (class texts) when `classes` is not None."""
    for raw in itertools.chain.from_iterable(tfrecord_io.read_records(p) for p in shards):
        f = tfexample.decode_features(raw)
        if classes is None or any(t.decode() in classes for t in f[K.CLASS_TEXT]):
            yield f


def count_holding(shards: list[str], classes) -> int:
    """How many records of `shards` hold an object of one of `classes` (all records when None)."""
    return sum(1 for _ in _holding(shards, classes))


def sheet_from_shards(shards: list[str], params_path: str | None = None,
                      count: int = PREVIEW_IMAGES, stride: int = 1, classes=None) -> np.ndarray:
    """A contact sheet of `count` records of `shards` (in order: records 0, stride, 2 * stride, ...),
    read back without TensorFlow; each labelled from its params.jsonl line (matched by split and
    index) when `params_path` is given. With `classes` (class texts), only the records holding one
    of them count (record k is then the k-th of those): a sheet of one brand's composites."""
    if stride < 1:
        raise ValueError(f"stride={stride} must be >= 1")
    classes = None if classes is None else set(classes)
    thumbs, want = [], []
    for f in itertools.islice(_holding(shards, classes), 0, count * stride, stride):
        want.append(f[K.IMAGE_SOURCE_ID][0].decode())
        bgr = cv2.imdecode(np.frombuffer(f[K.IMAGE_ENCODED][0], np.uint8), cv2.IMREAD_COLOR)
        boxes = np.stack([f[K.BBOX_YMIN], f[K.BBOX_XMIN], f[K.BBOX_YMAX], f[K.BBOX_XMAX]], -1).reshape(-1, 4)
        thumbs.append((cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), boxes,
                       [t.decode() for t in f[K.CLASS_TEXT]], list(f[K.CLASS_LABEL])))
    if not thumbs and classes is not None:
        raise ValueError(f"no record of {len(shards)} shard(s) holds an object of class {', '.join(sorted(classes))}")
    records = {}
    if params_path is not None:
        with open(params_path, encoding="utf-8") as pf:
            for line in pf:
                r = json.loads(line)
                sid = f"{r['split']}-{r['index']:08d}"
                if sid in want:
                    records[sid] = r
                if len(records) == len(want):
                    break
    return contact_sheet([annotate(rgb, boxes, _labels(texts, records.get(sid)), ids)
                          for sid, (rgb, boxes, texts, ids) in zip(want, thumbs)])


def sheet_from_coco(coco_path: str, images_dir: str, category_names=None, count: int = PREVIEW_IMAGES,
                    seed: int = 0) -> np.ndarray:
    """A contact sheet of `count` real labelled photos (COCO JSON, images in `images_dir`) that
    show one of `category_names` (all categories when None), drawn at random with `seed`, their
    boxes drawn: what the composites beside them should look like."""
    with open(coco_path, encoding="utf-8") as f:
        d = json.load(f)
    names = {c["id"]: c["name"] for c in d["categories"]}
    by_image: dict = {}
    for a in d["annotations"]:
        if category_names is None or names.get(a["category_id"]) in category_names:
            by_image.setdefault(a["image_id"], []).append(a)
    images = {im["id"]: im for im in d["images"]}
    ids = sorted(by_image)
    if not ids:
        raise ValueError(f"{coco_path}: no photo shows {sorted(category_names or [])}")
    pick = np.random.default_rng(seed).choice(len(ids), min(count, len(ids)), replace=False)
    thumbs = []
    for k in sorted(pick.tolist()):
        im = images[ids[k]]
        bgr = cv2.imread(f"{images_dir}/{im['file_name']}", cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{coco_path}: image {im['file_name']!r} cannot be read from {images_dir}")
        h, w = bgr.shape[:2]
        anns = by_image[ids[k]]
        boxes = np.array([boxlib.from_pixels(a["bbox"][1], a["bbox"][0], a["bbox"][1] + a["bbox"][3],
                                             a["bbox"][0] + a["bbox"][2], h, w) for a in anns], np.float32)
        thumbs.append(annotate(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), boxes, [names[a["category_id"]] for a in anns],
                               [a["category_id"] for a in anns]))
    return contact_sheet(thumbs)


def side_by_side(left: np.ndarray, right: np.ndarray, titles=("composites", "real photos")) -> np.ndarray:
    """Two sheets next to each other, each under its title."""
    h = max(left.shape[0], right.shape[0]) + 28
    out = np.full((h, left.shape[1] + right.shape[1] + 12, 3), 24, np.uint8)
    out[28:28 + left.shape[0], :left.shape[1]] = left
    out[28:28 + right.shape[0], left.shape[1] + 12:] = right
    for x, title in ((6, titles[0]), (left.shape[1] + 18, titles[1])):
        cv2.putText(out, title, (x, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (235, 235, 235), 1, cv2.LINE_AA)
    return out
