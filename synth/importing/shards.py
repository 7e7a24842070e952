"""Writing photos as a dataset folder with the layout of a generated one (synth.dataset):
`train-NNNNN-of-NNNNN.tfrecord` (and `val-...`), `label_map.pbtxt`, `manifest.json`,
`params.jsonl`, readable by tools/inspect_tfrecords.py and configure_pipeline.py.

`write_dataset` takes entries (source_id, where, prepare) in a fixed order, draws the split
of each once from an explicit np.random.Generator (`sample_split`), and streams each split's
records into its shards; an entry whose `prepare()` raises a SynthError is reported (its
`where` and the reason) and left out, the rest are written. Everything is written into a
hidden staging folder inside OUTPUT_DIR and moved into place only when complete: a folder
that already holds a dataset is refused unless overwrite=True, and is then replaced only
once the new dataset is whole. Nothing is replaced when no entry could be imported.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from synth import dataset, tfexample, tfrecord_io
from synth.errors import ConfigError, OutputError, SynthError
from synth.importing.records import Problem
from synth.label_map import label_map_text


@dataclass
class Entry:
    source_id: str  # unique in the dataset (image/source_id)
    where: str  # how problems name it (an annotation file or entry; the error names the photo)
    prepare: object  # () -> synth.importing.photos.Prepared; raises SynthError for a bad entry
    extra: dict = field(default_factory=dict)  # added to its params.jsonl line


@dataclass
class WriteSummary:
    output_dir: str
    splits: dict  # split -> {"images", "objects", "images_without_objects"}
    problems: list[Problem]
    counts: dict  # reencoded, oriented, dropped_unknown_objects, clipped_boxes
    seconds: float


def sample_split(n: int, val_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """[n] bool, True for the round(n * val_fraction) entries drawn for val."""
    if not 0.0 <= val_fraction <= 1.0:
        raise ConfigError(f"--val_fraction={val_fraction} must be in [0, 1]")
    is_val = np.zeros(n, bool)
    is_val[rng.permutation(n)[:int(round(n * val_fraction))]] = True
    return is_val


def _prepare_output(output_dir: str, overwrite: bool) -> str:
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise OutputError(f"--output_dir {output_dir!r} exists and is not a folder")
    old = dataset.existing_outputs(output_dir)
    if old and not overwrite:
        raise OutputError(f"--output_dir {output_dir!r} already holds a dataset ({os.path.basename(old[0])}"
                          f"{' and %d more' % (len(old) - 1) if len(old) > 1 else ''}); choose another folder, "
                          "or pass --overwrite to replace it once the new dataset is complete")
    try:
        os.makedirs(output_dir, exist_ok=True)
        return tempfile.mkdtemp(prefix=".import-", dir=output_dir)
    except OSError as exc:
        raise OutputError(f"--output_dir {output_dir!r} cannot be written: {exc.strerror}") from None


def write_dataset(output_dir: str, entries: list[Entry], class_names: list[str], manifest_extra: dict,
                  val_fraction: float = 0.0, num_shards: int = 1, seed: int = 0, overwrite: bool = False,
                  progress: bool = True, desc: str = "import", problems: list[Problem] | None = None,
                  counts: dict | None = None) -> WriteSummary:
    """See the module docstring. `manifest_extra` is merged into manifest.json; `problems` found
    before (by a parser) and `counts` come first in its skipped_inputs and counts."""
    t0 = time.time()
    if num_shards < 1:
        raise ConfigError(f"--num_shards={num_shards} must be >= 1")
    problems, unique, seen = list(problems or []), [], {}
    for e in entries:
        if e.source_id in seen:
            problems.append(Problem(e.where, f"source_id {e.source_id!r} is already used by {seen[e.source_id]}"))
        else:
            seen[e.source_id] = e.where
            unique.append(e)
    is_val = sample_split(len(unique), val_fraction, np.random.default_rng(seed))
    label_map = label_map_text(class_names)  # checks the names before anything is written
    stage = _prepare_output(output_dir, overwrite)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(unique), unit="photo", desc=desc, dynamic_ncols=True)
    try:
        splits, written_counts, names = _write_splits(stage, unique, is_val, num_shards, problems, bar)
        counts = {**(counts or {}), **written_counts}
        written = sum(s["images"] for s in splits.values())
        if written == 0:
            raise ConfigError(f"no photo could be imported ({len(problems)} problem(s)); first: "
                              + "; ".join(str(p) for p in problems[:3]))
        manifest = {
            "schema_version": dataset.MANIFEST_SCHEMA_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **manifest_extra,
            "seed": seed,
            "val_fraction": val_fraction,
            "classes": [{"id": i + 1, "name": n} for i, n in enumerate(class_names)],
            "splits": splits,
            "skipped_inputs": [{"path": p.file, "reason": p.reason} for p in problems],
            "counts": counts,
            "seconds": round(time.time() - t0, 2),
            "package_versions": dataset.package_versions(),
        }
        with open(os.path.join(stage, dataset.LABEL_MAP), "w", encoding="utf-8") as f:
            f.write(label_map)
        with open(os.path.join(stage, dataset.MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
        for old in dataset.existing_outputs(output_dir):
            os.remove(old)
        for name in names + [dataset.PARAMS, dataset.LABEL_MAP, dataset.MANIFEST]:
            os.replace(os.path.join(stage, name), os.path.join(output_dir, name))
    except OSError as exc:
        raise OutputError(f"writing the dataset in {output_dir!r} failed: {exc}") from None
    finally:
        if bar is not None:
            bar.close()
        shutil.rmtree(stage, ignore_errors=True)
    summary_splits = {s: {k: v for k, v in a.items() if k != "shards"} for s, a in splits.items()}
    return WriteSummary(output_dir, summary_splits, problems, counts, round(time.time() - t0, 2))


def _write_splits(stage, entries, is_val, num_shards, problems, bar):
    splits, names = {}, []
    counts = {"reencoded": 0, "oriented": 0, "dropped_unknown_objects": 0, "clipped_boxes": 0}
    with open(os.path.join(stage, dataset.PARAMS), "w", encoding="utf-8") as pf:
        for split, members in (("train", [e for e, v in zip(entries, is_val) if not v]),
                               ("val", [e for e, v in zip(entries, is_val) if v])):
            if not members:
                continue
            shards = max(1, min(num_shards if split == "train" else 1, len(members)))
            agg = {"images": 0, "objects": 0, "images_without_objects": 0, "shards": []}
            index = 0
            for k, (a, b) in enumerate(dataset.shard_ranges(len(members), shards)):
                name = dataset.shard_name(split, k, shards)
                n = 0
                with tfrecord_io.RecordWriter(os.path.join(stage, name)) as w:
                    for e in members[a:b]:
                        if bar is not None:
                            bar.update(1)
                        try:
                            p = e.prepare()
                        except SynthError as exc:
                            problems.append(Problem(e.where, str(exc)))
                            continue
                        w.write(tfexample.encode_example(
                            p.encoded, p.height, p.width, os.path.basename(e.source_id), e.source_id, p.boxes,
                            p.class_texts, p.class_ids, difficult=p.difficult, truncated=p.truncated))
                        pf.write(json.dumps({"split": split, "index": index, "shard": name,
                                             "source_id": e.source_id, **e.extra, "height": p.height,
                                             "width": p.width, "objects": len(p.class_ids),
                                             "reencoded": p.reencoded, "orientation": p.orientation}) + "\n")
                        index += 1
                        n += 1
                        agg["objects"] += len(p.class_ids)
                        agg["images_without_objects"] += int(not p.class_ids)
                        counts["reencoded"] += int(p.reencoded)
                        counts["oriented"] += int(p.orientation != 1)
                        counts["dropped_unknown_objects"] += p.dropped_unknown
                        counts["clipped_boxes"] += p.clipped
                agg["images"] += n
                agg["shards"].append({"name": name, "images": n})
                names.append(name)
            splits[split] = agg
    return splits, counts, names
