"""Re-renders one composite of a generated dataset from its params.jsonl line, without randomness.

    python tools/replay.py --data_dir=workspace/data/demo --source_id=train-00000012
    python tools/replay.py --data_dir=workspace/data/demo --source_id=val-00000003 --output=v3.jpg --check
    python tools/replay.py --data_dir=workspace/data/demo --record=line.json

DATA_DIR is a folder written by tools/make_tfrecords.py. The config is the one its manifest.json
records; the logos and backgrounds are read again from where that config points. The composite
is named by its source_id (SPLIT-NNNNNNNN, as in the shards and params.jsonl), or given as a file
holding one params.jsonl line (--record). A line written by another config (its config_fingerprint
is not the dataset's) is refused. Writes the JPEG (the same bytes as the record in the shard) to
--output; --check also compares them with the shard's.
Exit status: 0 when written (and, with --check, identical), 1 when --check finds them different,
2 on bad input.
"""

from __future__ import annotations

import json
import os

from absl import app, flags

from synth.cli import check_usage, run_app

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Dataset folder (shards, params.jsonl, manifest.json).")
flags.DEFINE_string("source_id", None, "The composite to replay, e.g. train-00000012.")
flags.DEFINE_string("record", None, "Instead of --source_id: a file holding one params.jsonl line.")
flags.DEFINE_string("output", None, "Where the JPEG goes (default: SOURCE_ID.jpg in the current folder).")
flags.DEFINE_bool("check", False, "Also compare the replayed JPEG with the shard's record; exit 1 if they differ.")


def _read_record(path: str) -> dict:
    from synth.errors import RecordError

    try:
        with open(path, encoding="utf-8") as f:
            rec = json.loads(f.read())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"--record={path!r} cannot be read as one params.jsonl line: {exc}") from None
    if not isinstance(rec, dict) or "split" not in rec or "index" not in rec:
        raise RecordError(f"--record={path!r} is not a params.jsonl line (no split and index)")
    return rec


def main(argv):
    check_usage(argv, "data_dir")
    if bool(FLAGS.source_id) == bool(FLAGS.record):
        raise app.UsageError("give exactly one of --source_id and --record")
    from synth import replay
    from synth.errors import OutputError
    from synth.job import atomic_path

    record = _read_record(FLAGS.record) if FLAGS.record else None
    r = replay.open_dataset(FLAGS.data_dir)
    if record is None:
        record = r.record(FLAGS.source_id)
    sid = f"{record['split']}-{int(record['index']):08d}"
    jpeg = r.replay(record)
    out = FLAGS.output or f"{sid}.jpg"
    try:
        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            f.write(jpeg)
    except OSError as exc:
        raise OutputError(f"--output={out!r} cannot be written: {exc}") from None
    print(f"wrote {out} ({len(jpeg)} bytes): {sid} of {FLAGS.data_dir}")
    if FLAGS.check:
        same = jpeg == r.shard_jpeg(record)
        shard = os.path.join(FLAGS.data_dir, str(record.get("shard")))
        print(f"{'identical to' if same else 'DIFFERENT from'} the record in {shard}")
        return 0 if same else 1
    return 0


def run():
    run_app(main, "replay", __name__)


if __name__ == "__main__":
    run()
