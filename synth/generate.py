"""The main job: a generation config in, sharded OD API TFRecords out.

Work is planned as shards (contiguous ranges of composite indices), each cut into chunks
of `chunk_size` composites: the unit of work, small enough that every worker stays busy to
the end. A chunk is written to a temporary name inside OUTPUT_DIR/.work/ and renamed when
complete, with a small JSON of its counts beside it; when all chunks of a shard are done,
they are concatenated in order into the shard (TFRecord files concatenate record by
record), so the bytes do not depend on how the work was cut or shared out. After a crash
or `kill -9`, running the same command again finishes the job without redoing finished
chunks, and gives the same bytes as an uninterrupted run (each composite's seed depends
only on the config's seed, its split and its index). `.work/` remembers the config it
belongs to: a different config is refused rather than mixed in. When every shard is done,
the label map, manifest, params.jsonl and preview are written and everything moves into
OUTPUT_DIR; an old dataset there is replaced (with overwrite=True) only at that point.

Chunks are generated in `workers` processes (spawned, each with its own copy of the
inputs, none importing TensorFlow: records are encoded by synth.tfexample and framed by
synth.tfrecord_io); peak memory does not grow with the number of images, since records
stream to disk. The workers share background-audit verdicts (`.work/audit/`) and surface
analyses (`.work/surfaces/`, at most 512 MB) through files, so each background is audited and
each backdrop analysed once per run rather than once per worker (and an analysis that a
worker's memory cache, scene.Backdrops, has evicted is reloaded rather than redone).
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

from synth import config as configlib, dataset, engine, preview, tfrecord_io
from synth.errors import ConfigError, OutputError, SynthError
from synth.inputs import Inputs, load_inputs
from synth.label_map import label_map_text

log = logging.getLogger(__name__)
WORK = ".work"
PREVIEW_IMAGES = 16
PART = ".part-"  # a chunk's file is its shard's name + PART + its number
CHUNK_IMAGES = 16  # composites per unit of work (rounded to a multiple of backdrop_reuse)


@dataclass(frozen=True)
class ShardTask:
    """Composites [start, stop) of one shard: the whole shard, or chunk `part` of it."""
    split: str
    shard: int
    num_shards: int
    start: int
    stop: int
    part: int | None = None

    @property
    def shard_name(self) -> str:
        return dataset.shard_name(self.split, self.shard, self.num_shards)

    @property
    def name(self) -> str:
        return self.shard_name + ("" if self.part is None else f"{PART}{self.part:05d}")


@dataclass
class Summary:
    output_dir: str
    counts: dict
    seconds: float
    skipped: list
    resumed_shards: int
    resumed_chunks: int = 0  # chunks of unfinished shards that an earlier run had written


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


def chunk_size(c) -> int:
    """Composites per chunk: a multiple of backdrop_reuse, so that the composites sharing a
    backdrop (and its cached analysis) stay in one worker."""
    reuse = max(1, c.backdrop_reuse)
    return reuse * max(1, round(CHUNK_IMAGES / reuse))


def chunks(task: ShardTask, size: int) -> list[ShardTask]:
    """The chunks of a shard, cut at multiples of `size` of the split's index (so a chunk's
    backdrops do not depend on where its shard starts)."""
    cuts = [task.start] + list(range((task.start // size + 1) * size, task.stop, size)) + [task.stop]
    return [ShardTask(task.split, task.shard, task.num_shards, a, b, k) for k, (a, b) in enumerate(zip(cuts, cuts[1:]))]


def fingerprint(c) -> str:
    """Identifies the dataset a config produces (the config text, canonicalised)."""
    return hashlib.sha256(configlib.to_text(c).encode()).hexdigest()[:16]


# -- one shard -----------------------------------------------------------------------------

def write_shard(task: ShardTask, eng: engine.Engine, work: str, progress=None) -> dict:
    """Writes one complete shard, or chunk of one, into `work`, atomically; returns its counts.
    `eng` makes the records: `make(split, index)` -> engine.Composite, `serialize(composite)`
    -> bytes, `failed_inputs()` -> {input: reason} (engine.Engine, or synth.html's HeaderEngine)."""
    final = os.path.join(work, task.name)
    tmp = final + ".tmp"
    stats = {"name": task.name, "split": task.split, "images": 0, "objects": 0,
             "dropped_objects": 0, "images_without_objects": 0, "rejected": {}}
    with tfrecord_io.RecordWriter(tmp) as writer, open(final + ".params.tmp", "w", encoding="utf-8") as pf:
        for index in range(task.start, task.stop):
            comp = eng.make(task.split, index)
            writer.write(eng.serialize(comp))
            pf.write(json.dumps({**comp.params, "shard": task.shard_name}) + "\n")
            stats["images"] += 1
            stats["objects"] += len(comp.class_ids)
            stats["dropped_objects"] += comp.dropped_objects
            stats["images_without_objects"] += int(not comp.class_ids)
            for k, v in comp.rejected.items():
                stats["rejected"][k] = stats["rejected"].get(k, 0) + v
            if progress is not None:
                progress(1)
    stats["failed_backgrounds"] = eng.failed_inputs()
    os.replace(final + ".params.tmp", final + ".params.jsonl")
    os.replace(tmp, final)
    with open(final + ".json.tmp", "w", encoding="utf-8") as f:
        json.dump(stats, f)
    os.replace(final + ".json.tmp", final + ".json")  # the shard counts as done from here
    return stats


def merge_stats(name: str, parts: list[dict]) -> dict:
    """The counts of a shard from those of its chunks."""
    out = {"name": name, "split": parts[0]["split"], "images": 0, "objects": 0, "dropped_objects": 0,
           "images_without_objects": 0, "rejected": {}, "failed_backgrounds": {}}
    for s in parts:
        for k in ("images", "objects", "dropped_objects", "images_without_objects"):
            out[k] += s[k]
        for k, v in s.get("rejected", {}).items():
            out["rejected"][k] = out["rejected"].get(k, 0) + v
        out["failed_backgrounds"].update(s.get("failed_backgrounds", {}))
    return out


def assemble_shard(work: str, task: ShardTask, parts: list[ShardTask]) -> dict:
    """Concatenates the finished chunks of a shard, in order, into the shard (atomically, then
    deletes the chunks); returns the shard's counts."""
    stats = []
    for p in parts:
        s = shard_done(work, p)
        if s is None:
            raise OutputError(f"chunk {p.name} of shard {task.name} is not finished in {work!r}")
        stats.append(s)
    final = os.path.join(work, task.name)
    with open(final + ".tmp", "wb") as out, open(final + ".params.tmp", "wb") as pout:
        for p in parts:
            with open(os.path.join(work, p.name), "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
            with open(os.path.join(work, p.name + ".params.jsonl"), "rb") as f:
                shutil.copyfileobj(f, pout)
    os.replace(final + ".params.tmp", final + ".params.jsonl")
    os.replace(final + ".tmp", final)
    merged = merge_stats(task.name, stats)
    with open(final + ".json.tmp", "w", encoding="utf-8") as f:
        json.dump(merged, f)
    os.replace(final + ".json.tmp", final + ".json")  # the shard counts as done from here
    for p in parts:
        for suffix in (".json", "", ".params.jsonl"):
            try:
                os.remove(os.path.join(work, p.name + suffix))
            except FileNotFoundError:
                pass
    return merged


def pending(work: str, tasks: list[ShardTask], size: int) -> tuple[dict, dict, list[ShardTask]]:
    """(done shards {name: counts}, unfinished shards {name: (task, chunks, names of the chunks
    still to write)}, the chunks to write)."""
    done, open_shards, todo = {}, {}, []
    for t in tasks:
        s = shard_done(work, t)
        if s is not None:
            done[t.name] = s
            continue
        parts = chunks(t, size)
        missing = [p for p in parts if shard_done(work, p) is None]
        open_shards[t.name] = (t, parts, {p.name for p in missing})
        todo += missing
    return done, open_shards, todo


def chunk_finished(work: str, open_shards: dict, done: dict, chunk_name: str | None = None) -> None:
    """Records that chunk `chunk_name` is written and assembles its shard if no chunk is left;
    without a name, assembles every shard with no chunk left."""
    names = list(open_shards) if chunk_name is None else [chunk_name.rsplit(PART, 1)[0]]
    for name in names:
        t, parts, missing = open_shards[name]
        missing.discard(chunk_name)
        if not missing:
            done[name] = assemble_shard(work, t, parts)
            del open_shards[name]


def shard_done(work: str, task: ShardTask) -> dict | None:
    p = os.path.join(work, task.name)
    if os.path.isfile(p) and os.path.isfile(p + ".json") and os.path.isfile(p + ".params.jsonl"):
        with open(p + ".json", encoding="utf-8") as f:
            return json.load(f)
    return None


_STATE: dict = {}


def single_threaded_blas():
    """One BLAS thread in this process (until the returned limiter's context exits): the
    engine's linear algebra is on tiny matrices, where OpenBLAS's extra threads only
    busy-wait and take the core another worker needs."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _worker_init(inputs: Inputs, config_text: str, source: str, work: str, counter) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    single_threaded_blas()
    c = configlib.parse_config_text(config_text, source)
    _STATE.update(engine=engine.Engine(inputs, c, work), work=work, counter=counter)


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


def _run_tasks(todo, inputs, cfg, work, workers, bar, on_done):
    """Writes the chunks in `todo`, calling on_done(counts) as each finishes."""
    c = cfg.proto
    if workers <= 1 or len(todo) <= 1:
        with single_threaded_blas():
            eng = engine.Engine(inputs, c, work)
            for t in todo:
                on_done(write_shard(t, eng, work, bar.update if bar else None))
        return
    run_pool(todo, workers, _worker_init, lambda counter: (inputs, configlib.to_text(c), cfg.source, work, counter),
             _worker_run, bar, on_done)


def run_pool(todo, workers: int, initializer, initargs, worker_run, bar, on_done) -> None:
    """Runs worker_run(task) for every task in `todo` in min(workers, len(todo)) spawned
    processes set up by initializer(*initargs(counter)), where `counter` is a shared integer
    the workers add their finished images to (it drives `bar`); calls on_done(result) as each
    task finishes and re-raises a worker's exception. The workers exit normally at the end,
    so their multiprocessing.util.Finalize hooks run (synth.html closes its browsers there)."""
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    seen = 0
    pool = ctx.Pool(min(workers, len(todo)), initializer=initializer, initargs=initargs(counter))
    try:
        results = pool.imap_unordered(worker_run, todo, chunksize=1)
        remaining = len(todo)
        while remaining:
            try:
                stats = results.next(timeout=0.2)  # re-raises a worker's exception here
            except mp.TimeoutError:
                stats = None
            if bar is not None and counter.value != seen:
                bar.update(counter.value - seen)
                seen = counter.value
            if stats is not None:
                remaining -= 1
                on_done(stats)
        pool.close()
        pool.join()
    finally:
        pool.terminate()


def generate(cfg: configlib.LoadedConfig, output_dir: str, overwrite: bool = False,
             show_progress: bool = True, write_preview: bool = False, workers: int = 1) -> Summary:
    """Generates (or finishes) the dataset of `cfg` in `output_dir`; see the module docstring."""
    t0 = time.time()
    c = cfg.proto
    tasks = plan(c)
    inputs = load_inputs(cfg)
    work, _ = prepare_work_dir(output_dir, c, overwrite)
    done, open_shards, todo = pending(work, tasks, chunk_size(c))
    resumed = len(done)
    resumed_chunks = sum(len(parts) - len(missing) for _, parts, missing in open_shards.values())
    chunk_finished(work, open_shards, done)  # a crash may have come between a shard's last chunk and its assembly
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=c.num_images, initial=c.num_images - sum(t.stop - t.start for t in todo), unit="img",
                   desc="composites", dynamic_ncols=True, smoothing=0.1)
    try:
        _run_tasks(todo, inputs, cfg, work, workers, bar,
                   lambda st: chunk_finished(work, open_shards, done, st["name"]))
    except OSError as exc:
        raise OutputError(f"writing shards in {work!r} failed: {exc}; finished chunks and shards are "
                          "kept there and the same command resumes") from None
    finally:
        if bar is not None:
            bar.close()
    try:
        s = finish(cfg, inputs, tasks, done, work, output_dir, write_preview, t0, resumed=resumed)
    except OSError as exc:
        raise OutputError(f"finishing the dataset in {output_dir!r} failed: {exc}") from None
    s.resumed_chunks = resumed_chunks
    return s


def collect_splits(work: str, tasks: list[ShardTask], done: dict) -> tuple[dict, dict]:
    """Writes `work`/params.jsonl from the finished shards' params, in shard order; returns
    (counts per split with its shards, {failed input: reason})."""
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
    return splits, failed


def publish(work: str, output_dir: str, tasks: list[ShardTask], write_preview: bool) -> None:
    """Replaces an old dataset in `output_dir` with the complete one in `work`, then removes `work`."""
    for old in dataset.existing_outputs(output_dir):
        os.remove(old)
    final_names = [t.name for t in tasks] + [dataset.PARAMS, dataset.LABEL_MAP, dataset.MANIFEST]
    if write_preview:
        final_names.append(dataset.PREVIEW)
    for name in final_names:
        os.replace(os.path.join(work, name), os.path.join(output_dir, name))
    shutil.rmtree(work, ignore_errors=True)


def finish(cfg, inputs, tasks, done, work, output_dir, write_preview, t0, resumed) -> Summary:
    """Merges the finished shards' records, writes label map, manifest and preview, and moves
    everything into `output_dir` (any runner calls this once every shard is done)."""
    c = cfg.proto
    splits, failed = collect_splits(work, tasks, done)
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
    publish(work, output_dir, tasks, write_preview)  # everything is complete: move it into place
    counts = {s: {k: v for k, v in a.items() if k != "shards"} for s, a in splits.items()}
    return Summary(output_dir, counts, manifest["seconds"], skipped, resumed)


__all__ = ["generate", "plan", "collect_splits", "publish", "run_pool", "chunks", "chunk_size", "pending", "chunk_finished", "assemble_shard", "fingerprint",
           "split_counts", "write_shard", "shard_done", "prepare_work_dir", "finish", "ShardTask", "Summary",
           "SynthError"]
