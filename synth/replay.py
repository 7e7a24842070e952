"""Re-renders a composite of a generated dataset from its params.jsonl line, without randomness.

    r = replay.open_dataset(DATA_DIR)        # the config recorded in DATA_DIR/manifest.json, its inputs
    rec = r.record("train-00000012")         # the composite's params.jsonl line
    jpeg = r.replay(rec)                     # the same JPEG bytes as the record in the shard
    assert jpeg == r.shard_jpeg(rec)

The config is the one the dataset's manifest.json records (its text, where its relative paths
point, and its fingerprint); every params line carries the fingerprint of the config that wrote
it, and a line whose fingerprint is not the dataset's is refused, as is a dataset written by a
source other than the compositing engine. The logos and backgrounds are read again from where
the config points: a record whose background path is not the config's now is refused
(synth.engine.Engine.replay_scene).
"""

from __future__ import annotations

import json
import os
import re

from synth import config as configlib, dataset, engine, job, tfexample, tfrecord_io
from synth.errors import RecordError
from synth.inputs import load_inputs
from synth.tfrecord_keys import IMAGE_ENCODED, IMAGE_SOURCE_ID

SOURCE_ID_RE = re.compile(r"^(train|val)-(\d{8})$")


def parse_source_id(source_id: str) -> tuple[str, int]:
    m = SOURCE_ID_RE.match(source_id or "")
    if not m:
        raise RecordError(f"source_id {source_id!r} is not SPLIT-NNNNNNNN (e.g. train-00000012)")
    return m.group(1), int(m.group(2))


def record_id(record) -> str:
    """The source_id a params line is about, for messages (whatever the line holds)."""
    if isinstance(record, dict) and isinstance(record.get("index"), int):
        return f"{record.get('split')}-{record['index']:08d}"
    return repr(record.get("split") if isinstance(record, dict) else record)


def _read_manifest(data_dir: str) -> dict:
    if not os.path.isdir(data_dir):
        raise RecordError(f"dataset folder {data_dir!r} does not exist or is not a folder")
    path = os.path.join(data_dir, dataset.MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise RecordError(f"{path!r} does not exist: {data_dir!r} is not a finished dataset folder") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path!r} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), str) \
            or not isinstance(manifest.get("config_fingerprint"), str):
        raise RecordError(f"{path!r} records no config text and fingerprint (\"config\", \"config_fingerprint\")")
    return manifest


class Replayer:
    """A dataset folder's config, inputs and engine, ready to replay its params lines."""

    def __init__(self, data_dir: str):
        self.data_dir = data_dir
        self.manifest = m = _read_manifest(data_dir)
        where = f"{os.path.join(data_dir, dataset.MANIFEST)!r}"
        source = m.get("config_source") or "<manifest config>"
        c = configlib.parse_config_text(m["config"], f"{where} config")
        self.fingerprint = m["config_fingerprint"]
        if job.fingerprint(c) != self.fingerprint:
            raise RecordError(f"{where}: config_fingerprint {self.fingerprint} is not its config's "
                              f"({job.fingerprint(c)}): the dataset was made by another source than the "
                              "compositing engine, or the manifest was edited; it cannot be replayed")
        base = m.get("config_base_dir")
        if not isinstance(base, str):  # a manifest from before config_base_dir was recorded
            base = os.path.dirname(os.path.abspath(source)) if os.path.isfile(source) else os.getcwd()
        cfg = configlib.LoadedConfig(c, source, base)
        configlib.validate(c, source)
        self.config = c
        self.engine = engine.Engine(load_inputs(cfg), c)
        self._lines = None

    def _params_lines(self) -> dict:
        if self._lines is None:
            path = os.path.join(self.data_dir, dataset.PARAMS)
            lines = {}
            try:
                with open(path, encoding="utf-8") as f:
                    for n, line in enumerate(f, 1):
                        try:
                            rec = json.loads(line)
                            lines[f"{rec['split']}-{int(rec['index']):08d}"] = rec
                        except (ValueError, KeyError, TypeError) as exc:
                            raise RecordError(f"{path!r} line {n} is not a params record: {exc}") from None
            except OSError as exc:
                raise RecordError(f"{path!r} cannot be read: {exc}") from None
            self._lines = lines
        return self._lines

    def record(self, source_id: str) -> dict:
        """The params.jsonl line of the composite `source_id` (e.g. "train-00000012")."""
        parse_source_id(source_id)
        lines = self._params_lines()
        if source_id not in lines:
            splits = {}
            for k in lines:
                splits[k.split("-")[0]] = splits.get(k.split("-")[0], 0) + 1
            held = ", ".join(f"{n} {s}" for s, n in sorted(splits.items())) or "no"
            raise RecordError(f"no composite {source_id!r} in {os.path.join(self.data_dir, dataset.PARAMS)!r} "
                              f"(it holds {held} composites)")
        return lines[source_id]

    def check(self, record: dict) -> None:
        """Refuses a params line that this dataset's config did not write."""
        sid = record_id(record)
        fp = record.get("config_fingerprint") if isinstance(record, dict) else None
        if fp is None:
            raise RecordError(f"params record {sid} carries no config_fingerprint (written before records "
                              "replayed): regenerate the dataset to replay it")
        if fp != self.fingerprint:
            raise RecordError(f"params record {sid} was written by config fingerprint {fp}, not by this "
                              f"dataset's config ({self.fingerprint}, {self.data_dir!r}): it cannot be replayed here")

    def replay(self, record: dict) -> bytes:
        """The composite's JPEG bytes, rendered again from its params line."""
        self.check(record)
        return self.engine.replay(record)

    def shard_jpeg(self, record: dict) -> bytes:
        """The composite's JPEG bytes as its shard holds them (for comparison)."""
        sid = record_id(record)
        path = os.path.join(self.data_dir, str(record.get("shard")))
        if not os.path.isfile(path):
            raise RecordError(f"params record {sid}: its shard {path!r} does not exist")
        for raw in tfrecord_io.read_records(path):
            feats = tfexample.decode_features(raw)
            if feats.get(IMAGE_SOURCE_ID) == [sid.encode()]:
                return bytes(feats[IMAGE_ENCODED][0])
        raise RecordError(f"params record {sid}: its shard {path!r} holds no record with that source_id")


def open_dataset(data_dir: str) -> Replayer:
    return Replayer(data_dir)
