"""The main job: a generation config in, sharded OD API TFRecords out.

Work is planned as shards (contiguous ranges of composite indices). Each shard is written
to a temporary name inside OUTPUT_DIR/.work/ and renamed when complete, with a small JSON
of its counts beside it; so after a crash or `kill -9`, running the same command again
finishes the job without redoing finished shards, and gives the same bytes as an
uninterrupted run (each composite's seed depends only on the config's seed, its split and
its index). `.work/` remembers the config it belongs to: a different config is refused
rather than mixed in. When every shard is done, the label map, manifest, params.jsonl and
preview are written and everything moves into OUTPUT_DIR; an old dataset there is replaced
(with overwrite=True) only at that point.

Shards are generated in `workers` processes (spawned, each with its own copy of the inputs);
peak memory does not grow with the number of images, since records stream to disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
import time
from dataclasses import dataclass

from synth import config as configlib, dataset, engine, preview
from synth.errors import ConfigError, OutputError, SynthError
from synth.inputs import Inputs, load_inputs
from synth.label_map import label_map_text

log = logging.getLogger(__name__)
WORK = ".work"
PREVIEW_IMAGES = 16


@dataclass(frozen=True)
class ShardTask:
    split: str
    shard: int
    num_shards: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        return dataset.shard_name(self.split, self.shard, self.num_shards)


@dataclass
class Summary:
    output_dir: str
    counts: dict
    seconds: float
    skipped: list
    resumed_shards: int


def split_counts(c) -> dict[str, int]:
    n_val = int(round(c.num_images * c.val_fraction))
    n_train = c.num_images - n_val
    if n_train < 1:
        raise ConfigError(f"num_images = {c.num_images} with val_fraction = {c.val_fraction:g} "
                          "leaves no train image")
    return {"train": n_train, "val": n_val}


def plan(c) -> list[ShardTask]:
    counts = split_counts(c)
    tasks = []
    for split, requested in (("train", c.num_train_shards), ("val", c.num_val_shards)):
        n = counts[split]
        if n == 0:
            continue
        shards = max(1, min(requested, n))
        for k, (a, b) in enumerate(dataset.shard_ranges(n, shards)):
            tasks.append(ShardTask(split, k, shards, a, b))
    return tasks


def fingerprint(c) -> str:
    """Identifies the dataset a config produces (the config text, canonicalised)."""
    return hashlib.sha256(configlib.to_text(c).encode()).hexdigest()[:16]


# -- one shard -----------------------------------------------------------------------------

def write_shard(task: ShardTask, eng: engine.Engine, work: str, progress=None) -> dict:
    """Writes one complete shard into `work`, atomically; returns its counts."""
    import tensorflow as tf

    inputs, c = eng.inputs, eng.c
    final = os.path.join(work, task.name)
    tmp = final + ".tmp"
    stats = {"name": task.name, "split": task.split, "images": 0, "objects": 0,
             "dropped_objects": 0, "images_without_objects": 0, "rejected": {}}
    with tf.io.TFRecordWriter(tmp) as writer, open(final + ".params.tmp", "w", encoding="utf-8") as pf:
        for index in range(task.start, task.stop):
            comp = eng.make(task.split, index)
            writer.write(engine.serialize(comp, c))
            pf.write(json.dumps({**comp.params, "shard": task.name}) + "\n")
            stats["images"] += 1
            stats["objects"] += len(comp.class_ids)
            stats["dropped_objects"] += comp.dropped_objects
            stats["images_without_objects"] += int(not comp.class_ids)
            for k, v in comp.rejected.items():
                stats["rejected"][k] = stats["rejected"].get(k, 0) + v
            if progress is not None:
                progress(1)
    stats["failed_backgrounds"] = {inputs.background_paths[i]: r for i, r in inputs.failed.items()}
    os.replace(final + ".params.tmp", final + ".params.jsonl")
    os.replace(tmp, final)
    with open(final + ".json.tmp", "w", encoding="utf-8") as f:
        json.dump(stats, f)
    os.replace(final + ".json.tmp", final + ".json")  # the shard counts as done from here
    return stats


def shard_done(work: str, task: ShardTask) -> dict | None:
    p = os.path.join(work, task.name)
    if os.path.isfile(p) and os.path.isfile(p + ".json") and os.path.isfile(p + ".params.jsonl"):
        with open(p + ".json", encoding="utf-8") as f:
            return json.load(f)
    return None


_STATE: dict = {}


def _worker_init(inputs: Inputs, config_text: str, source: str, work: str, counter) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    c = configlib.parse_config_text(config_text, source)
    _STATE.update(engine=engine.Engine(inputs, c), work=work, counter=counter)


def _worker_run(task: ShardTask) -> dict:
    counter = _STATE["counter"]

    def tick(n):
        with counter.get_lock():
            counter.value += n

    return write_shard(task, _STATE["engine"], _STATE["work"], tick)


# -- the job -------------------------------------------------------------------------------

def prepare_work_dir(output_dir: str, c, overwrite: bool) -> tuple[str, bool]:
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise OutputError(f"output directory {output_dir!r} exists and is not a folder")
    work = os.path.join(output_dir, WORK)
    fp = fingerprint(c)
    stamp = os.path.join(work, "config.fingerprint")
    resuming = os.path.isdir(work)
    if resuming:
        have = open(stamp, encoding="utf-8").read().strip() if os.path.isfile(stamp) else "?"
        if have != fp:
            raise OutputError(
                f"output directory {output_dir!r} holds an unfinished run of a different config "
                f"(fingerprint {have}, this config {fp}); rerun with that config to finish it, or "
                f"delete {work!r} to start over")
    old = dataset.existing_outputs(output_dir)
    if old and not overwrite and not resuming:
        raise OutputError(
            f"output directory {output_dir!r} already holds a dataset ({os.path.basename(old[0])}"
            f"{' and %d more' % (len(old) - 1) if len(old) > 1 else ''}); choose another directory, "
            "or pass --overwrite to replace it once the new dataset is complete")
    try:
        os.makedirs(work, exist_ok=True)
        with open(stamp, "w", encoding="utf-8") as f:
            f.write(fp + "\n")
        with open(os.path.join(work, "config.txt"), "w", encoding="utf-8") as f:
            f.write(configlib.to_text(c))
    except OSError as exc:
        raise OutputError(f"output directory {output_dir!r} cannot be written: {exc.strerror}") from None
    return work, resuming


def _run_tasks(todo, inputs, cfg, work, workers, bar):
    c = cfg.proto
    if workers <= 1 or len(todo) <= 1:
        eng = engine.Engine(inputs, c)
        return [write_shard(t, eng, work, bar.update if bar else None) for t in todo]
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    results, seen = [], 0
    with ctx.Pool(min(workers, len(todo)), initializer=_worker_init,
                  initargs=(inputs, configlib.to_text(c), cfg.source, work, counter)) as pool:
        pending = pool.map_async(_worker_run, todo, chunksize=1)
        while True:
            pending.wait(0.2)
            if bar is not None and counter.value != seen:
                bar.update(counter.value - seen)
                seen = counter.value
            if pending.ready():
                break
        results = pending.get()  # re-raises a worker's exception here
    return results


def generate(cfg: configlib.LoadedConfig, output_dir: str, overwrite: bool = False,
             show_progress: bool = True, write_preview: bool = False, workers: int = 1) -> Summary:
    """Generates (or finishes) the dataset of `cfg` in `output_dir`; see the module docstring."""
    t0 = time.time()
    c = cfg.proto
    tasks = plan(c)
    inputs = load_inputs(cfg)
    work, _ = prepare_work_dir(output_dir, c, overwrite)
    done = {t.name: s for t in tasks if (s := shard_done(work, t)) is not None}
    todo = [t for t in tasks if t.name not in done]
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=c.num_images, initial=sum(s["images"] for s in done.values()), unit="img",
                   desc="composites", dynamic_ncols=True, smoothing=0.1)
    try:
        for s in _run_tasks(todo, inputs, cfg, work, workers, bar):
            done[s["name"]] = s
    except OSError as exc:
        raise OutputError(f"writing shards in {work!r} failed: {exc}; finished shards are kept "
                          "there and the same command resumes") from None
    finally:
        if bar is not None:
            bar.close()
    try:
        return finish(cfg, inputs, tasks, done, work, output_dir, write_preview, t0,
                       resumed=len(tasks) - len(todo))
    except OSError as exc:
        raise OutputError(f"finishing the dataset in {output_dir!r} failed: {exc}") from None


def finish(cfg, inputs, tasks, done, work, output_dir, write_preview, t0, resumed) -> Summary:
    """Merges the finished shards' records, writes label map, manifest and preview, and moves
    everything into `output_dir` (any runner calls this once every shard is done)."""
    c = cfg.proto
    splits: dict = {}
    failed: dict = {}
    with open(os.path.join(work, dataset.PARAMS + ".tmp"), "w", encoding="utf-8") as out:
        for t in tasks:
            with open(os.path.join(work, t.name + ".params.jsonl"), encoding="utf-8") as f:
                shutil.copyfileobj(f, out)
            s = done[t.name]
            failed.update(s.get("failed_backgrounds", {}))
            agg = splits.setdefault(t.split, {"images": 0, "objects": 0, "dropped_objects": 0,
                                              "images_without_objects": 0, "rejected": {}, "shards": []})
            for k in ("images", "objects", "dropped_objects", "images_without_objects"):
                agg[k] += s[k]
            for k, v in s.get("rejected", {}).items():
                agg["rejected"][k] = agg["rejected"].get(k, 0) + v
            agg["shards"].append({"name": t.name, "images": s["images"]})
    os.replace(os.path.join(work, dataset.PARAMS + ".tmp"), os.path.join(work, dataset.PARAMS))
    with open(os.path.join(work, dataset.LABEL_MAP), "w", encoding="utf-8") as f:
        f.write(label_map_text(inputs.class_names))
    if write_preview:
        thumbs = []
        eng = engine.Engine(inputs, c)
        for i in range(min(PREVIEW_IMAGES, splits["train"]["images"])):
            comp = eng.make("train", i)
            labels = [f"{t} v{sc['visible_fraction']:.2f} m{sc['match']:.2f}"
                      for t, sc in zip(comp.class_texts, comp.params["scores"])]
            thumbs.append(preview.annotate(comp.image, comp.boxes, labels, comp.class_ids))
        from synth.composite import encode_jpeg

        with open(os.path.join(work, dataset.PREVIEW), "wb") as f:
            f.write(encode_jpeg(preview.contact_sheet(thumbs), 90))
    skipped = [{"path": s.path, "reason": s.reason} for s in inputs.skipped]
    skipped += [{"path": p, "reason": r} for p, r in sorted(failed.items())]
    manifest = {
        "schema_version": dataset.MANIFEST_SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config_source": cfg.source,
        "config": configlib.to_text(c),
        "config_fingerprint": fingerprint(c),
        "seed": c.seed,
        "image_size": {"height": c.image_size.height, "width": c.image_size.width},
        "classes": [{"id": i + 1, "name": n} for i, n in enumerate(inputs.class_names)],
        "logos": inputs.logo_paths,
        "num_backgrounds": len(inputs.background_paths),
        "skipped_inputs": skipped,
        "splits": splits,
        "seconds": round(time.time() - t0, 2),
        "resumed_shards": resumed,
        "package_versions": dataset.package_versions(),
    }
    with open(os.path.join(work, dataset.MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    # Everything is complete: replace an old dataset, move the new one into place.
    for old in dataset.existing_outputs(output_dir):
        os.remove(old)
    final_names = [t.name for t in tasks] + [dataset.PARAMS, dataset.LABEL_MAP, dataset.MANIFEST]
    if write_preview:
        final_names.append(dataset.PREVIEW)
    for name in final_names:
        os.replace(os.path.join(work, name), os.path.join(output_dir, name))
    shutil.rmtree(work, ignore_errors=True)
    counts = {s: {k: v for k, v in a.items() if k != "shards"} for s, a in splits.items()}
    return Summary(output_dir, counts, manifest["seconds"], skipped, resumed)


__all__ = ["generate", "plan", "fingerprint", "split_counts", "write_shard", "shard_done", "prepare_work_dir",
           "finish", "ShardTask", "Summary", "SynthError"]
