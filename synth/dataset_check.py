"""Validating a generated dataset: every record read back through the OD API's own decoder.

`inspect_dataset(data_dir)` reads each shard of a dataset folder (synth.dataset:
`train-NNNNN-of-NNNNN.tfrecord`, `val-...`, `label_map.pbtxt`, `manifest.json`) record by
record, in shard order. Each serialized record goes through one traced TensorFlow function
that decodes it with the OD API's TfExampleDecoder, built with the dataset's label map as
the OD API's training input pipeline builds it (decoder_builder, default options), and
parses the raw fields the checks compare with the decoder's output (image/height,
image/width, source_id, class texts, class ids). A record the decoder cannot decode shows
up here as a problem, not in the middle of a training run; such a record is then parsed
in Python (synth.tfexample.parse_example) to tell garbage from a bad image.

A problem names the split, the shard, the record's index in that shard (-1 when it is about
a whole shard or split), the record's source_id ("?" when unreadable) and what is wrong:

  - the record is not a tf.train.Example, or the OD API decoder fails on it (a bad JPEG, ...);
  - the decoded image is not image/height x image/width pixels;
  - a box is not finite, lies outside [0, 1], or is empty (ymin >= ymax or xmin >= xmax);
  - the numbers of boxes, class texts and class ids differ;
  - a class id is not in the label map, or its class text is not the label map's name for
    that id (with a label map the OD API takes the class from the text, not the id, so a
    mismatch trains the wrong class, or class -1);
  - a source_id seen before (the OD API's COCO evaluation keys images by it);
  - a shard of a NNNNN-of-NNNNN set is missing, or cannot be read to its end (truncated, bad CRC);
  - the dataset holds no record;
  - counts differ from manifest.json: records, objects and images without objects per split,
    records per shard, the class list. Compared only when every record was read (no max_records).

`max_records` limits the records read per split. Box statistics (sqrt of the box area in
pixels, aspect ratio width/height in pixels, normalised centres, objects per image, objects
per class) are collected from the boxes that pass the checks; synth.dataset_plot.plot draws
them into a 2x3 PNG.

TensorFlow, the OD API and matplotlib are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from synth import dataset
from synth.dataset_plot import BoxStats, plot
from synth.errors import ConfigError


@dataclass(frozen=True)
class Problem:
    split: str
    shard: str  # file name of the shard, or "" for a problem of a whole split or the dataset
    index: int  # record index inside the shard; -1 when the problem is not about one record
    source_id: str  # "?" when the record could not be read
    message: str

    def __str__(self) -> str:
        where = self.shard or self.split or "dataset"
        if self.index >= 0:
            where += f" #{self.index} ({self.source_id})"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class SplitReport:
    split: str
    shards: dict[str, int]  # shard file name -> records read from it
    records: int  # records in the shards, readable or not
    objects: int  # boxes of the records the OD API decoder could decode
    images_without_objects: int
    per_class: dict[str, int]  # objects per label-map name ("id N (not in label map)" otherwise)


@dataclass(frozen=True)
class Report:
    data_dir: str
    splits: tuple[SplitReport, ...]
    problems: tuple[Problem, ...]
    label_map: dict[int, str]
    manifest_note: str  # what the manifest comparison did (or why it was skipped)
    seconds: float
    plot_path: str | None
    stats: dict[str, BoxStats] = field(repr=False, compare=False, default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def records(self) -> int:
        return sum(s.records for s in self.splits)

    def split(self, name: str) -> SplitReport:
        for s in self.splits:
            if s.split == name:
                return s
        raise KeyError(f"no split {name!r} in {self.data_dir}; splits: {[s.split for s in self.splits]}")


def _make_decoder(label_map_path: str):
    """serialized record -> _Decoded, through the OD API's TfExampleDecoder
    built with the dataset's label map, plus the raw fields the checks compare it with.
    Raises tf.errors.OpError where the OD API's decoder (or the record's parsing) fails."""
    from synth import training

    training.apply_compat_fixes()  # tf-slim needs it on TF >= 2.13
    import tensorflow as tf
    from object_detection.core import standard_fields as fields
    from object_detection.data_decoders import tf_example_decoder

    from synth import tfrecord_keys as K

    decoder = tf_example_decoder.TfExampleDecoder(label_map_proto_file=label_map_path)
    f = fields.InputDataFields
    spec = {K.IMAGE_HEIGHT: tf.io.FixedLenFeature([], tf.int64, -1),
            K.IMAGE_WIDTH: tf.io.FixedLenFeature([], tf.int64, -1),
            K.IMAGE_SOURCE_ID: tf.io.FixedLenFeature([], tf.string, ""),
            K.CLASS_TEXT: tf.io.VarLenFeature(tf.string),
            K.CLASS_LABEL: tf.io.VarLenFeature(tf.int64)}

    # Traced once. (A tf.data map over a shard was measured slower than this per-record call
    # on 2 cores; the JPEG decode inside is most of the cost either way.)
    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def decode(serialized):
        d = decoder.decode(serialized)
        raw = tf.io.parse_single_example(serialized, spec)
        # The shape depends on the decoded pixels, so the JPEG decode is not pruned away.
        return (tf.shape(d[f.image])[:2], d[f.groundtruth_boxes], d[f.groundtruth_classes],
                raw[K.IMAGE_HEIGHT], raw[K.IMAGE_WIDTH], raw[K.IMAGE_SOURCE_ID],
                raw[K.CLASS_TEXT].values, raw[K.CLASS_LABEL].values)

    return lambda serialized: _plain(tuple(t.numpy() for t in decode(tf.constant(serialized))))


class _Decoded(NamedTuple):
    shape: tuple[int, int]  # of the image the OD API decoded
    boxes: np.ndarray  # [N, 4] as the OD API decodes them
    classes: list[int]  # as the OD API decodes them (from the class text, via the label map)
    height: int  # image/height, image/width (-1 when missing)
    width: int
    source_id: str
    texts: list[str]  # image/object/class/text
    ids: list[int]  # image/object/class/label


def _plain(t: tuple) -> _Decoded:
    shape, boxes, classes, h, w, sid, texts, ids = t
    return _Decoded((int(shape[0]), int(shape[1])), boxes.reshape(-1, 4),
                    classes.astype(np.int64).tolist(), int(h), int(w), sid.decode("utf-8", "replace"),
                    [x.decode("utf-8", "replace") for x in texts], [int(x) for x in ids])


def _read_chunks(path: str, limit: int | None, chunk: int = 256):
    """Yields (records, error) chunks of a shard's serialized records, at most `limit` in all;
    error is None, or (index, exception) of the first record that cannot be read (the last chunk)."""
    import tensorflow as tf

    ds = tf.data.TFRecordDataset([path])
    if limit is not None:
        ds = ds.take(limit)
    done = 0
    try:
        for batch in ds.batch(chunk):
            records = list(batch.numpy())
            done += len(records)
            yield records, None
    except tf.errors.OpError:  # find the record where reading stops, one at a time
        records, it = [], iter(ds.skip(done))
        while True:
            try:
                records.append(next(it).numpy())
            except StopIteration:
                yield records, None
                return
            except tf.errors.OpError as exc:
                yield records, (done + len(records), exc)
                return


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _shard_set_problems(split: str, paths: list[str]) -> list[Problem]:
    out, parsed = [], []
    for p in paths:
        m = dataset.SHARD_RE.match(os.path.basename(p))
        if m:
            parsed.append(m)
        else:
            out.append(Problem(split, os.path.basename(p), -1, "", "not a shard name "
                               f"(expected {split}-NNNNN-of-NNNNN.tfrecord with digits)"))
    totals = sorted({int(m.group(3)) for m in parsed})
    if len(totals) > 1:
        out.append(Problem(split, "", -1, "", f"shards of {totals} totals are mixed: "
                           f"{[os.path.basename(p) for p in paths]}"))
    for total in totals:
        have = {int(m.group(2)) for m in parsed if int(m.group(3)) == total}
        for k in sorted(set(range(total)) - have):
            out.append(Problem(split, dataset.shard_name(split, k, total), -1, "",
                               f"shard missing: {k} of a set of {total}"))
        for k in sorted(k for k in have if k >= total):
            out.append(Problem(split, dataset.shard_name(split, k, total), -1, "",
                               f"shard number {k} is not below its total {total}"))
    return out


def _box_ok(b) -> bool:
    """A finite, non-empty box inside [0, 1]."""
    return bool(np.all(np.isfinite(b)) and b.min() >= 0.0 and b.max() <= 1.0
                and b[0] < b[2] and b[1] < b[3])


def _record_problems(decoded: _Decoded, label_map: dict[int, str]) -> list[str]:
    """What is wrong with one decoded record (messages only)."""
    shape, boxes, classes, h, w, _, texts, ids = decoded
    msgs = []
    if shape != (h, w):
        msgs.append(f"image decodes to {shape[0]}x{shape[1]} pixels but image/height x "
                    f"image/width say {h}x{w}")
    if not len(boxes) == len(texts) == len(ids):
        msgs.append(f"{len(boxes)} boxes, {len(texts)} class texts and {len(ids)} class ids; they "
                    "must be equal in number")
    for k, b in enumerate(boxes):
        text = f"box {k} [ymin, xmin, ymax, xmax] = {np.round(b.astype(float), 4).tolist()}"
        if not np.all(np.isfinite(b)):
            msgs.append(f"{text} is not finite")
        elif b.min() < 0.0 or b.max() > 1.0:
            msgs.append(f"{text} is outside [0, 1]")
        elif not _box_ok(b):
            msgs.append(f"{text} is empty (needs ymin < ymax and xmin < xmax)")
    known = ", ".join(f"{i}: {name!r}" for i, name in sorted(label_map.items()))
    for k, (cid, text) in enumerate(zip(ids, texts)):
        if cid not in label_map:
            msgs.append(f"object {k}: class id {cid} is not in the label map ({known})")
        elif text != label_map[cid]:
            msgs.append(f"object {k}: class text {text!r} is not the label map's name "
                        f"{label_map[cid]!r} of class id {cid}")
    if not msgs and classes != ids:
        msgs.append(f"the OD API decodes classes {classes}, the record's class ids are {ids}")
    return msgs


def _failure(serialized: bytes, exc: BaseException) -> tuple[str, str]:
    """(source_id, message) of a record that the OD API's decoder failed on with `exc`."""
    from synth.tfexample import parse_example

    try:
        sid = parse_example(serialized)["source_id"]
    except Exception as parse_exc:  # noqa: BLE001  (any failure here means: not one of our records)
        return "?", f"not a tf.train.Example with the OD API's keys: {_first_line(parse_exc)}"
    return sid, f"the OD API's TfExampleDecoder cannot decode it: {_first_line(exc)}"


class _SplitStats:
    def __init__(self):
        self.records = self.objects = self.empty = 0
        self.per_class: Counter = Counter()
        self.shards: dict[str, int] = {}
        self.cols = {k: [] for k in ("sqrt", "w", "h", "cx", "cy", "cls", "per_image")}

    def add(self, decoded: _Decoded, label_map):
        (h, w), boxes, ids = decoded.shape, decoded.boxes, decoded.ids  # pixels as decoded
        self.objects += len(boxes)
        self.empty += int(len(boxes) == 0)
        self.cols["per_image"].append(len(boxes))
        for b, cid in zip(boxes, ids):
            name = label_map.get(cid, f"id {cid} (not in label map)")
            self.per_class[name] += 1
            if _box_ok(b):
                bh, bw = float(b[2] - b[0]) * h, float(b[3] - b[1]) * w
                for key, v in (("sqrt", np.sqrt(max(bh * bw, 0.0))), ("w", bw), ("h", bh),
                               ("cx", (b[1] + b[3]) / 2), ("cy", (b[0] + b[2]) / 2), ("cls", name)):
                    self.cols[key].append(v)

    def box_stats(self) -> BoxStats:
        c = {k: np.asarray(self.cols[k], np.float32) for k in ("sqrt", "w", "h", "cx", "cy")}
        return BoxStats(c["sqrt"], c["w"], c["h"], c["cx"], c["cy"], tuple(self.cols["cls"]),
                        np.asarray(self.cols["per_image"], np.int64))


def _inspect_split(split, paths, decode, label_map, max_records, seen_ids, problems):
    import tensorflow as tf

    st = _SplitStats()
    for path in paths:
        shard = os.path.basename(path)
        limit = None if max_records is None else max_records - st.records
        if limit == 0:
            break
        st.shards[shard] = 0
        for records, error in _read_chunks(path, limit):
            for pos, serialized in enumerate(records):
                index = st.shards[shard] + pos
                try:
                    d = decode(serialized)
                except tf.errors.OpError as exc:
                    problems.append(Problem(split, shard, index, *_failure(serialized, exc)))
                    continue
                sid = d.source_id
                if sid in seen_ids:
                    problems.append(Problem(split, shard, index, sid, f"source_id {sid!r} is also "
                                            f"the source_id of {seen_ids[sid]}"))
                seen_ids.setdefault(sid, f"{shard} #{index}")
                problems.extend(Problem(split, shard, index, sid, m) for m in _record_problems(d, label_map))
                st.add(d, label_map)
            st.shards[shard] += len(records)
            st.records += len(records)
            if error is not None:
                problems.append(Problem(split, shard, error[0], "?", "the shard cannot be read from this "
                                        f"record on (truncated or corrupt file): {_first_line(error[1])}"))
    rep = SplitReport(split, st.shards, st.records, st.objects, st.empty,
                      dict(sorted(st.per_class.items())))
    return rep, st.box_stats()


def _compare_manifest(data_dir, splits, label_map, problems) -> str:
    path = os.path.join(data_dir, dataset.MANIFEST)
    if not os.path.isfile(path):
        return f"no {dataset.MANIFEST}: counts not compared"
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        expected = dict(manifest["splits"])
        classes = {int(c["id"]): c["name"] for c in manifest.get("classes", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        problems.append(Problem("", "", -1, "", f"{dataset.MANIFEST} cannot be read: {_first_line(exc)}"))
        return f"{dataset.MANIFEST} unreadable"
    try:
        found = _manifest_differences(expected, classes, splits, label_map)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        found = [Problem("", "", -1, "", f"{dataset.MANIFEST} does not have the layout of schema "
                         f"version {dataset.MANIFEST_SCHEMA_VERSION}: {_first_line(exc)}")]
    problems.extend(found)
    return f"{len(found)} difference(s) from {dataset.MANIFEST}" if found else \
        f"counts match {dataset.MANIFEST}"


def _manifest_differences(expected: dict, classes: dict, splits, label_map) -> list[Problem]:
    problems = []
    if classes and classes != label_map:
        problems.append(Problem("", "", -1, "", f"{dataset.MANIFEST} lists classes {classes}, "
                                f"{dataset.LABEL_MAP} holds {label_map}"))
    found = {s.split: s for s in splits}
    for split in sorted(set(expected) | set(found)):
        exp, got = expected.get(split), found.get(split)
        if exp is None:
            problems.append(Problem(split, "", -1, "", f"split {split!r} has shards but no entry in "
                                    f"{dataset.MANIFEST}"))
            continue
        if got is None:
            problems.append(Problem(split, "", -1, "", f"{dataset.MANIFEST} lists {exp.get('images')} "
                                    f"{split} images but there is no {split} shard"))
            continue
        for key, value in (("images", got.records), ("objects", got.objects),
                           ("images_without_objects", got.images_without_objects)):
            if key in exp and exp[key] != value:
                problems.append(Problem(split, "", -1, "", f"{dataset.MANIFEST} says {exp[key]} {key}, "
                                        f"the shards hold {value}"))
        listed = {s["name"]: s["images"] for s in exp.get("shards", [])}
        if listed and sorted(listed) != sorted(got.shards):
            problems.append(Problem(split, "", -1, "", f"{dataset.MANIFEST} lists shards "
                                    f"{sorted(listed)}, the folder holds {sorted(got.shards)}"))
        for name in sorted(set(listed) & set(got.shards)):
            if listed[name] != got.shards[name]:
                problems.append(Problem(split, name, -1, "", f"{dataset.MANIFEST} says {listed[name]} "
                                        f"records, the shard holds {got.shards[name]}"))
    return problems


def inspect_dataset(data_dir: str, plot_path: str | None = None,
                    max_records: int | None = None) -> Report:
    """Checks every record of the dataset in `data_dir` (see the module docstring); with
    `plot_path`, also writes the box statistics plot there. Raises ConfigError when
    `data_dir`, its label map or its shards are missing, or max_records < 1."""
    from synth.label_map import read_label_map

    t0 = time.perf_counter()
    if not os.path.isdir(data_dir):
        raise ConfigError(f"dataset folder {data_dir!r} does not exist (expected a folder written by "
                          "tools/make_tfrecords.py)")
    if max_records is not None and max_records < 1:
        raise ConfigError(f"max_records = {max_records}; give a number >= 1, or none to read every record")
    label_map_path = os.path.join(data_dir, dataset.LABEL_MAP)
    label_map = read_label_map(label_map_path)
    shards = {s: dataset.list_shards(data_dir, s) for s in dataset.SPLITS}
    if not any(shards.values()):
        raise ConfigError(f"dataset folder {data_dir!r} holds no train-NNNNN-of-NNNNN.tfrecord or "
                          "val-NNNNN-of-NNNNN.tfrecord shard")
    problems: list[Problem] = []
    decode = _make_decoder(label_map_path)
    seen: dict[str, str] = {}
    splits, stats = [], {}
    for split in dataset.SPLITS:
        if shards[split]:
            problems.extend(_shard_set_problems(split, shards[split]))
            rep, st = _inspect_split(split, shards[split], decode, label_map, max_records, seen, problems)
            splits.append(rep)
            stats[split] = st
    if sum(s.records for s in splits) == 0:
        problems.append(Problem("", "", -1, "", "the dataset holds no record"))
    if max_records is None:
        note = _compare_manifest(data_dir, splits, label_map, problems)
    else:
        note = f"read at most {max_records} records per split: counts not compared with the manifest"
    if plot_path:
        plot(stats, plot_path, title=f"{data_dir}: " + "; ".join(
            f"{s.split} {s.records} images, {s.objects} objects" for s in splits)
            + f"; {len(problems)} problem(s)")
    return Report(os.path.abspath(data_dir), tuple(splits), tuple(problems), label_map, note,
                  round(time.perf_counter() - t0, 3), plot_path or None, stats)


def format_report(report: Report, max_problems: int = 20) -> str:
    """A short text table of the counts, then the first `max_problems` problems."""
    lines = [f"{'split':<6} {'shards':>6} {'records':>8} {'objects':>8} {'no-object':>9}  per class"]
    for s in report.splits:
        classes = ", ".join(f"{k}: {v}" for k, v in s.per_class.items()) or "-"
        lines.append(f"{s.split:<6} {len(s.shards):>6} {s.records:>8} {s.objects:>8} "
                     f"{s.images_without_objects:>9}  {classes}")
    lines.append(f"manifest: {report.manifest_note}")
    lines.append(f"{len(report.problems)} problem(s) in {report.seconds:.1f} s")
    for p in report.problems[:max_problems]:
        lines.append(f"  {p}")
    if len(report.problems) > max_problems:
        lines.append(f"  ... and {len(report.problems) - max_problems} more")
    return "\n".join(lines)
