"""OD API tf.train.Example records, encoded without TensorFlow.

Generation workers only need to *write* records, and importing TensorFlow costs each of
them seconds and about half a gigabyte; so the Example message is encoded here directly
in protobuf's wire format, with the features in sorted key order (the order of
TensorFlow's deterministic serialisation, which tests/test_tfrecord_io.py compares
byte for byte). Reading back: `parse_example` uses TensorFlow's own parser (tools and tests);
`decode_features` reads the same wire format without TensorFlow (the generator's preview).

Wire format used (https://protobuf.dev/programming-guides/encoding/):
  Example   { Features features = 1; }
  Features  { map<string, Feature> feature = 1; }   a map entry is { key = 1; value = 2; }
  Feature   { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
  BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed]; }
  Int64List { repeated int64 value = 1 [packed]; }
"""

from __future__ import annotations

import hashlib

import numpy as np

from synth import tfrecord_keys as K

_LEN = 2  # wire type of length-delimited fields


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 two's complement, as protobuf encodes negative int64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def bytes_feature(values) -> bytes:
    return _field(1, b"".join(_field(1, bytes(v)) for v in values))


def float_feature(values) -> bytes:
    arr = np.asarray(values, "<f4").reshape(-1)
    return _field(2, _field(1, arr.tobytes()) if arr.size else b"")


def int64_feature(values) -> bytes:
    vals = [int(v) for v in values]
    return _field(3, _field(1, b"".join(_varint(v) for v in vals)) if vals else b"")


def encode_features(features: dict[str, bytes]) -> bytes:
    """A serialised Example from {key: encoded Feature} (as built by the *_feature helpers)."""
    entries = b"".join(_field(1, _field(1, k.encode()) + _field(2, features[k])) for k in sorted(features))
    return _field(1, entries)


def encode_example(jpeg: bytes, height: int, width: int, filename: str, source_id: str,
                   boxes: np.ndarray, class_texts: list[str], class_ids: list[int],
                   masks_png: list[bytes] | None = None, difficult=None, truncated=None) -> bytes:
    """One serialised record. `boxes` is [N, 4] normalised [ymin, xmin, ymax, xmax];
    `masks_png`, when given, one full-image PNG mask per object; `difficult` and `truncated`,
    when given, one flag per object (imported PASCAL VOC labels)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not (len(boxes) == len(class_texts) == len(class_ids)):
        raise ValueError(f"{source_id}: {len(boxes)} boxes, {len(class_texts)} class texts and "
                         f"{len(class_ids)} class ids; they must be equal in number")
    feature = {
        K.IMAGE_ENCODED: bytes_feature([jpeg]),
        K.IMAGE_FORMAT: bytes_feature([b"jpeg"]),
        K.IMAGE_HEIGHT: int64_feature([height]),
        K.IMAGE_WIDTH: int64_feature([width]),
        K.IMAGE_FILENAME: bytes_feature([filename.encode()]),
        K.IMAGE_SOURCE_ID: bytes_feature([source_id.encode()]),
        K.IMAGE_KEY_SHA256: bytes_feature([hashlib.sha256(jpeg).hexdigest().encode()]),
        K.BBOX_YMIN: float_feature(boxes[:, 0]),
        K.BBOX_XMIN: float_feature(boxes[:, 1]),
        K.BBOX_YMAX: float_feature(boxes[:, 2]),
        K.BBOX_XMAX: float_feature(boxes[:, 3]),
        K.CLASS_TEXT: bytes_feature([t.encode() for t in class_texts]),
        K.CLASS_LABEL: int64_feature(class_ids),
    }
    if masks_png is not None:
        if len(masks_png) != len(boxes):
            raise ValueError(f"{source_id}: {len(masks_png)} masks for {len(boxes)} boxes")
        feature[K.OBJECT_MASK] = bytes_feature(masks_png)
    for key, flags in ((K.OBJECT_DIFFICULT, difficult), (K.OBJECT_TRUNCATED, truncated)):
        if flags is not None:
            if len(flags) != len(boxes):
                raise ValueError(f"{source_id}: {len(flags)} {key} flags for {len(boxes)} boxes")
            feature[key] = int64_feature([int(bool(v)) for v in flags])
    return encode_features(feature)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError(f"truncated or overlong varint at byte {pos}")
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def _fields(buf: bytes):
    """Yields (field number, wire type, value) of a message: an int for varints, bytes for
    length-delimited and fixed-size fields."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos:pos + size], pos + size
        elif wire == _LEN:
            size, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ValueError(f"wire type {wire} (field {number}) is not used by tf.train.Example")
        if pos > len(buf):
            raise ValueError(f"field {number} runs past the end of the message")
        yield number, wire, value


def _int64(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


def _feature_values(feature: bytes) -> list:
    values: list = []
    for kind, _, body in _fields(feature):  # 1 bytes_list, 2 float_list, 3 int64_list
        for number, wire, v in _fields(body):
            if number != 1:
                continue
            if kind == 1:
                values.append(bytes(v))
            elif kind == 2:
                values.extend(np.frombuffer(v, "<f4").tolist())  # packed, or one fixed32
            elif kind == 3 and wire == _LEN:  # packed
                pos = 0
                while pos < len(v):
                    n, pos = _read_varint(v, pos)
                    values.append(_int64(n))
            elif kind == 3:
                values.append(_int64(v))
    return values


def decode_features(serialized: bytes) -> dict[str, list]:
    """{key: values} of a serialised tf.train.Example, read without TensorFlow: bytes, floats
    or ints per the feature's kind. Raises ValueError on a malformed message."""
    out = {}
    for number, _, features in _fields(serialized):
        if number != 1:
            continue
        for entry_number, _, entry in _fields(features):
            if entry_number != 1:
                continue
            key, value = None, b""
            for n, _, v in _fields(entry):
                if n == 1:
                    key = bytes(v).decode("utf-8")
                elif n == 2:
                    value = v
            if key is None:
                raise ValueError("a feature map entry has no key")
            out[key] = _feature_values(value)
    return out


def decode_boxes(serialized: bytes) -> dict:
    """The fields a detector trains on, without TensorFlow: height, width, encoded image,
    boxes ([N, 4] normalised ymin, xmin, ymax, xmax, float32) and class ids."""
    f = decode_features(serialized)
    boxes = np.stack([np.asarray(f.get(k, []), np.float32) for k in (K.BBOX_YMIN, K.BBOX_XMIN, K.BBOX_YMAX,
                                                                    K.BBOX_XMAX)], -1).reshape(-1, 4)
    return {"height": int(f[K.IMAGE_HEIGHT][0]), "width": int(f[K.IMAGE_WIDTH][0]), "encoded": f[K.IMAGE_ENCODED][0],
            "boxes": boxes, "class_ids": list(f.get(K.CLASS_LABEL, []))}


def parse_example(serialized: bytes) -> dict:
    """Reads one of our records back into plain Python values with TensorFlow's parser
    (for tools and tests)."""
    import tensorflow as tf

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
        "difficult": [int(v) for v in f[K.OBJECT_DIFFICULT].int64_list.value] if K.OBJECT_DIFFICULT in f else None,
        "truncated": [int(v) for v in f[K.OBJECT_TRUNCATED].int64_list.value] if K.OBJECT_TRUNCATED in f else None,
        "keys": sorted(f.keys()),
    }
