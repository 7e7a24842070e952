"""The TensorFlow-free Example encoder and TFRecord framing against TensorFlow's own."""

import os

import numpy as np
import pytest
import tensorflow as tf

from synth import tfrecord_io
from synth.tfexample import encode_example, parse_example


def _tf_example(jpeg, h, w, fn, sid, boxes, texts, ids, masks=None):
    """The same record built with tf.train.Example, as a reference."""
    import hashlib

    from synth import tfrecord_keys as K

    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=v))

    def f(v):
        return tf.train.Feature(float_list=tf.train.FloatList(value=v))

    def i(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=v))

    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    feat = {K.IMAGE_ENCODED: b([jpeg]), K.IMAGE_FORMAT: b([b"jpeg"]), K.IMAGE_HEIGHT: i([h]),
            K.IMAGE_WIDTH: i([w]), K.IMAGE_FILENAME: b([fn.encode()]), K.IMAGE_SOURCE_ID: b([sid.encode()]),
            K.IMAGE_KEY_SHA256: b([hashlib.sha256(jpeg).hexdigest().encode()]),
            K.BBOX_YMIN: f(boxes[:, 0]), K.BBOX_XMIN: f(boxes[:, 1]), K.BBOX_YMAX: f(boxes[:, 2]),
            K.BBOX_XMAX: f(boxes[:, 3]), K.CLASS_TEXT: b([t.encode() for t in texts]), K.CLASS_LABEL: i(ids)}
    if masks is not None:
        feat[K.OBJECT_MASK] = b(masks)
    return tf.train.Example(features=tf.train.Features(feature=feat))


CASES = [
    # (boxes, texts, ids, masks)
    ([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]], ["acme", "zeta"], [1, 300], None),
    ([], [], [], None),  # an image without objects: empty float and int lists
    ([[0.25, 0.125, 0.75, 0.875]], ["ünïcode"], [2], [b"\x89PNG fake mask"]),
]


@pytest.mark.parametrize("boxes,texts,ids,masks", CASES)
def test_encoding_equals_tensorflows_deterministic_serialisation(boxes, texts, ids, masks):
    jpeg = os.urandom(3000)
    ours = encode_example(jpeg, 480, 640, "train/0.jpg", "train-00000000", boxes, texts, ids, masks)
    ref = _tf_example(jpeg, 480, 640, "train/0.jpg", "train-00000000", boxes, texts, ids, masks)
    assert ours == ref.SerializeToString(deterministic=True)
    back = parse_example(ours)
    assert back["class_texts"] == texts and back["class_ids"] == ids and back["encoded"] == jpeg
    np.testing.assert_array_equal(back["boxes"], np.asarray(boxes, np.float32).reshape(-1, 4))


def test_negative_and_large_int64_values_round_trip():
    from synth.tfexample import encode_features, int64_feature

    vals = [0, 1, 127, 128, 2**31, 2**63 - 1, -1, -(2**63)]
    ex = tf.train.Example.FromString(encode_features({"v": int64_feature(vals)}))
    assert list(ex.features.feature["v"].int64_list.value) == vals


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 boxes, 1 class texts"):
        encode_example(b"x", 1, 1, "f", "s", [[0, 0, 1, 1]] * 2, ["a"], [1, 1])


def test_files_are_byte_identical_to_tensorflows_writer(tmp_path):
    records = [b"", os.urandom(10), os.urandom(70000), b"last"]
    ours, theirs = tmp_path / "ours.tfrecord", tmp_path / "tf.tfrecord"
    with tfrecord_io.RecordWriter(str(ours)) as w:
        for r in records:
            w.write(r)
    with tf.io.TFRecordWriter(str(theirs)) as w:
        for r in records:
            w.write(r)
    assert ours.read_bytes() == theirs.read_bytes()
    assert [r.numpy() for r in tf.data.TFRecordDataset([str(ours)])] == records
    assert list(tfrecord_io.read_records(str(ours))) == records


def test_reader_names_the_damage(tmp_path):
    p = tmp_path / "x.tfrecord"
    with tfrecord_io.RecordWriter(str(p)) as w:
        w.write(b"a" * 100)
        w.write(b"b" * 100)
    data = bytearray(p.read_bytes())
    p.write_bytes(bytes(data[:-10]))
    with pytest.raises(tfrecord_io.CorruptRecordError, match=r"x.tfrecord: record at byte 116 is truncated"):
        list(tfrecord_io.read_records(str(p)))
    data[20] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(tfrecord_io.CorruptRecordError, match="bad data checksum in the record at byte 0"):
        list(tfrecord_io.read_records(str(p)))


@pytest.mark.parametrize("boxes,texts,ids,masks", CASES)
def test_decode_boxes_reads_what_tensorflow_wrote(boxes, texts, ids, masks):
    from synth.tfexample import decode_boxes

    jpeg = os.urandom(500)
    ex = _tf_example(jpeg, 480, 640, "train/0.jpg", "train-00000000", boxes, texts, ids, masks)
    d = decode_boxes(ex.SerializeToString())
    assert (d["height"], d["width"], d["class_ids"], d["encoded"]) == (480, 640, ids, jpeg)
    np.testing.assert_array_equal(d["boxes"], np.asarray(boxes, np.float32).reshape(-1, 4))


@pytest.mark.parametrize("boxes,texts,ids,masks", CASES)
def test_decode_features_reads_what_tensorflow_reads(boxes, texts, ids, masks):
    from synth.tfexample import decode_features

    ref = _tf_example(os.urandom(500), 480, 640, "train/0.jpg", "train-00000000", boxes, texts, ids, masks)
    ex = tf.train.Example.FromString(ref.SerializeToString())
    want = {k: list(getattr(v, v.WhichOneof("kind")).value) if v.WhichOneof("kind") else []
            for k, v in ex.features.feature.items()}
    assert decode_features(ref.SerializeToString()) == want


def test_decode_features_reads_unpacked_and_negative_values_and_names_damage():
    from synth.tfexample import _field, _varint, decode_features, encode_features, int64_feature

    vals = [0, 1, 127, 128, 2**31, 2**63 - 1, -1, -(2**63)]
    assert decode_features(encode_features({"v": int64_feature(vals)})) == {"v": vals}
    # Unpacked repeated fields (what an older writer may emit): varints and fixed32 floats one by one.
    unpacked_ints = _field(3, b"".join(_varint(1 << 3 | 0) + _varint(v) for v in (5, -2)))
    unpacked_floats = _field(2, b"".join(_varint(1 << 3 | 5) + np.float32(x).tobytes() for x in (0.5, -1.25)))
    msg = encode_features({"i": unpacked_ints, "f": unpacked_floats})
    assert decode_features(msg) == {"f": [0.5, -1.25], "i": [5, -2]}
    assert tf.train.Example.FromString(msg).features.feature["i"].int64_list.value == [5, -2]
    with pytest.raises(ValueError, match="runs past the end"):
        decode_features(msg[:-3])
    with pytest.raises(ValueError, match="wire type 3"):
        decode_features(_varint(1 << 3 | 3))
