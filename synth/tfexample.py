"""Building OD API tf.train.Example records. Imports TensorFlow (an edge module)."""

from __future__ import annotations

import hashlib

import numpy as np
import tensorflow as tf

from synth import tfrecord_keys as K


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def make_example(jpeg: bytes, height: int, width: int, filename: str, source_id: str,
                 boxes: np.ndarray, class_texts: list[str], class_ids: list[int],
                 masks_png: list[bytes] | None = None) -> tf.train.Example:
    """One record. `boxes` is [N, 4] normalised [ymin, xmin, ymax, xmax]; `masks_png`, when
    given, one full-image PNG mask per object."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not (len(boxes) == len(class_texts) == len(class_ids)):
        raise ValueError(f"{source_id}: {len(boxes)} boxes, {len(class_texts)} class texts and "
                         f"{len(class_ids)} class ids; they must be equal in number")
    feature = {
        K.IMAGE_ENCODED: _bytes([jpeg]),
        K.IMAGE_FORMAT: _bytes([b"jpeg"]),
        K.IMAGE_HEIGHT: _ints([height]),
        K.IMAGE_WIDTH: _ints([width]),
        K.IMAGE_FILENAME: _bytes([filename.encode()]),
        K.IMAGE_SOURCE_ID: _bytes([source_id.encode()]),
        K.IMAGE_KEY_SHA256: _bytes([hashlib.sha256(jpeg).hexdigest().encode()]),
        K.BBOX_YMIN: _floats(boxes[:, 0]),
        K.BBOX_XMIN: _floats(boxes[:, 1]),
        K.BBOX_YMAX: _floats(boxes[:, 2]),
        K.BBOX_XMAX: _floats(boxes[:, 3]),
        K.CLASS_TEXT: _bytes([t.encode() for t in class_texts]),
        K.CLASS_LABEL: _ints(class_ids),
    }
    if masks_png is not None:
        if len(masks_png) != len(boxes):
            raise ValueError(f"{source_id}: {len(masks_png)} masks for {len(boxes)} boxes")
        feature[K.OBJECT_MASK] = _bytes(masks_png)
    return tf.train.Example(features=tf.train.Features(feature=feature))


def parse_example(serialized: bytes) -> dict:
    """Reads one of our records back into plain Python values (for tools and tests)."""
    ex = tf.train.Example.FromString(serialized)
    f = ex.features.feature

    def b(k):
        return list(f[k].bytes_list.value)

    def fl(k):
        return np.array(f[k].float_list.value, np.float32)

    return {
        "encoded": b(K.IMAGE_ENCODED)[0],
        "format": b(K.IMAGE_FORMAT)[0].decode(),
        "height": int(f[K.IMAGE_HEIGHT].int64_list.value[0]),
        "width": int(f[K.IMAGE_WIDTH].int64_list.value[0]),
        "filename": b(K.IMAGE_FILENAME)[0].decode(),
        "source_id": b(K.IMAGE_SOURCE_ID)[0].decode(),
        "sha256": b(K.IMAGE_KEY_SHA256)[0].decode(),
        "boxes": np.stack([fl(K.BBOX_YMIN), fl(K.BBOX_XMIN), fl(K.BBOX_YMAX), fl(K.BBOX_XMAX)], -1)
        .reshape(-1, 4),
        "class_texts": [t.decode() for t in b(K.CLASS_TEXT)],
        "class_ids": [int(v) for v in f[K.CLASS_LABEL].int64_list.value],
        "masks_png": b(K.OBJECT_MASK) if K.OBJECT_MASK in f else None,
        "keys": sorted(f.keys()),
    }
