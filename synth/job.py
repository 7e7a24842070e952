"""A generation job: a config in, a dataset folder of sharded OD API TFRecords out, whatever runs
the work. The job plans, keeps the work folder, assembles and finishes; a runner only executes
chunks: `synth.generate` (this machine, a pool of processes) and `synth.beam_pipeline` (Apache Beam).

    job = Job(cfg, output_dir)           # driver: plan, load the inputs, prepare OUTPUT_DIR/.work/,
                                         #   find what an earlier run finished (job.todo: the rest)
    spec = job.worker_spec()             # what a worker needs (strings, picklable)
    writer = spec.open_worker()          # worker, once per process: the source and its caches
    writer.write(chunk)                  # worker, each chunk of job.todo (any order, any process):
                                         #   .work/NAME (records), NAME.params.jsonl, NAME.json (Counts)
    job.chunk_written(chunk.name)        # driver, as each comes back: a shard whose chunks are all
                                         #   written is assembled
    summary = job.finish(write_preview)  # driver: params.jsonl, label map, manifest, preview (read
                                         #   from the shards); then everything moves into OUTPUT_DIR

Plan. Each split's composites are cut into shards (contiguous index ranges), each shard into chunks
of `chunk_size` composites, cut at multiples of it in the split's index: the unit of work. A
chunk is written under temporary names and renamed when complete, its Counts last (the marker);
a shard is the concatenation of its chunks in order (TFRecord files concatenate record by record),
so the bytes do not depend on how the work was cut or shared out. Every composite's bytes depend
only on (config, split, index).

Work folder. OUTPUT_DIR/.work/ remembers the config it belongs to (its fingerprint): a run of a
different config there is refused rather than mixed in. After a crash or `kill -9` the same
command finishes the job without redoing finished chunks or shards. An old dataset in OUTPUT_DIR
is replaced (overwrite=True) only when the new one is complete.

Sources. What makes one record is a *source*: an object built once per worker process by a
factory `factory(inputs, config_proto, work_dir)` and asked `make(split, index)` for an
`engine.Composite` (the encoded image, boxes, classes, the params.jsonl record, counts). The
factory is named by an import path, "module:attribute", so that worker processes and Beam
workers can build it from a string; DEFAULT_SOURCE is the compositing engine. A new source is
one such factory, passed as `source=` to `Job` (or to `generate.generate` / `beam_pipeline.
build_and_run`): both runners run it unchanged.

Kinds. What differs between kinds of config is a `Kind` (how the config text parses, how its
inputs load, records per chunk, the manifest's own fields): a source factory names its kind in a
`kind` attribute; without one it is LOGOS (GenerationConfig, logos and backgrounds).
synth.html's HeaderEngine is a source of another kind (HeaderConfig, HTML pages).

Counts. One type, `Counts`, holds what a chunk, a shard or a split made: images, objects,
dropped objects, images without objects, the rejections by reason, and the backgrounds that
failed to decode (path -> reason, returned by the source with each composite). A chunk's Counts
are written beside it; a shard's and a split's are sums of these (`Counts.total`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

from synth import config as configlib, dataset, tfrecord_io
from synth.engine import serialize
from synth.errors import ConfigError, OutputError
from synth.inputs import Inputs, load_inputs
from synth.label_map import label_map_text

WORK = ".work"
PART = ".part-"  # a chunk's file is its shard's name + PART + its number
CHUNK_IMAGES = 16  # composites per chunk (rounded to a multiple of backdrop_reuse)
DEFAULT_SOURCE = "synth.engine:Engine"


# -- plan ----------------------------------------------------------------------------------

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


def split_counts(c) -> dict[str, int]:
    n_val = int(round(c.num_images * c.val_fraction))
    n_train = c.num_images - n_val
    if n_train < 1:
        raise ConfigError(f"num_images = {c.num_images} with val_fraction = {c.val_fraction:g} "
                          "leaves no train image")
    return {"train": n_train, "val": n_val}


def plan(c) -> list[ShardTask]:
    """The shards of the dataset, train first; a split without images has none."""
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


def fingerprint(c, source: str = DEFAULT_SOURCE) -> str:
    """Identifies the dataset a config (and a source other than the default) produces."""
    text = configlib.to_text(c) + ("" if source == DEFAULT_SOURCE else f"\n# source: {source}\n")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- kinds --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """What a job needs to know about its kind of config (see the module docstring)."""
    parse_config: Callable[[str, str], Any]  # (config text, its source) -> the config proto
    # LoadedConfig -> the checked inputs (attributes class_names and skipped); writes nothing
    load_inputs: Callable[[configlib.LoadedConfig], Any]
    chunk_size: Callable[[Any], int]  # config proto -> records per chunk
    manifest: Callable[[Any, Any], dict]  # (inputs, config proto) -> the manifest's fields of this kind
    # (inputs, absolute work folder) -> the inputs, with what they need written into the work folder
    prepare: Callable[[Any, str], Any] | None = None
    noun: str = "composites"  # what the progress bar counts


def _logo_manifest(inputs: Inputs, c) -> dict:
    return {"image_size": {"height": c.image_size.height, "width": c.image_size.width},
            "logos": inputs.logo_paths, "num_backgrounds": len(inputs.background_paths)}


LOGOS = Kind(configlib.parse_config_text, load_inputs, chunk_size, _logo_manifest)


def source_kind(source: str) -> Kind:
    """The Kind of the source factory named by "module:attribute" (LOGOS when it names none)."""
    return getattr(load_source(source), "kind", LOGOS)


# -- counts --------------------------------------------------------------------------------

COUNT_FIELDS = ("images", "objects", "dropped_objects", "images_without_objects")


@dataclass
class Counts:
    """What a chunk, a shard or a split made (see the module docstring)."""
    images: int = 0
    objects: int = 0
    dropped_objects: int = 0
    images_without_objects: int = 0
    rejected: dict = field(default_factory=dict)  # reason -> placements refused
    failed_backgrounds: dict = field(default_factory=dict)  # path -> why its pixels could not be decoded

    def add_composite(self, comp) -> None:
        self.images += 1
        self.objects += len(comp.class_ids)
        self.dropped_objects += comp.dropped_objects
        self.images_without_objects += int(not comp.class_ids)
        _add_to(self.rejected, comp.rejected)
        self.failed_backgrounds.update(comp.failed_backgrounds)

    def add(self, other: Counts) -> None:
        for k in COUNT_FIELDS:
            setattr(self, k, getattr(self, k) + getattr(other, k))
        _add_to(self.rejected, other.rejected)
        self.failed_backgrounds.update(other.failed_backgrounds)

    @classmethod
    def total(cls, parts) -> Counts:
        out = cls()
        for p in parts:
            out.add(p)
        return out

    def to_json(self) -> dict:
        """The manifest's form of a split's counts (without the failed backgrounds, which the
        manifest lists under skipped_inputs)."""
        return {**{k: getattr(self, k) for k in COUNT_FIELDS}, "rejected": dict(self.rejected)}

    def save(self, path: str, name: str, split: str) -> None:
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump({"name": name, "split": split, **self.to_json(),
                       "failed_backgrounds": self.failed_backgrounds}, f)

    @classmethod
    def load(cls, path: str) -> Counts:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        return cls(*(int(d[k]) for k in COUNT_FIELDS), dict(d.get("rejected", {})),
                   dict(d.get("failed_backgrounds", {})))


def _add_to(total: dict, more: dict) -> None:
    for k, v in more.items():
        total[k] = total.get(k, 0) + v


@contextmanager
def atomic_path(final: str):
    """Yields a temporary path beside `final`; renames it to `final` when the block completes,
    removes it when the block fails. Readers see the old file (or none) or the whole new one."""
    tmp = final + ".tmp"
    try:
        yield tmp
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    os.replace(tmp, final)


def chunk_counts(work: str, task: ShardTask) -> Counts | None:
    """The Counts of a chunk or shard written in `work`, or None when it is not complete."""
    p = os.path.join(work, task.name)
    if os.path.isfile(p) and os.path.isfile(p + ".json") and os.path.isfile(p + ".params.jsonl"):
        return Counts.load(p + ".json")
    return None


# -- the worker side -----------------------------------------------------------------------

def load_source(path: str):
    """The source factory named by "module:attribute"; ConfigError naming it otherwise."""
    module, _, attr = path.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"source {path!r} cannot be loaded (give module:factory): {exc}") from None
    if not callable(factory):
        raise ConfigError(f"source {path!r} is not callable")
    return factory


def single_threaded_blas():
    """One BLAS thread in this process (until the returned limiter's context exits): the
    engine's linear algebra is on tiny matrices, where OpenBLAS's extra threads only
    busy-wait and take the core another worker needs."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


class ChunkWriter:
    """Writes chunks with one source in one process."""

    def __init__(self, source, c, work: str, source_name: str = DEFAULT_SOURCE):
        """`source`: the source object (built from the factory `source_name` names)."""
        self.source, self.c, self.work = source, c, work
        self.config_fingerprint = fingerprint(c, source_name)  # on every params line (synth.replay checks it)

    def write(self, task: ShardTask, progress=None) -> Counts:
        """Writes one complete shard, or chunk of one, into the work folder, atomically (records,
        params lines, then its Counts as the marker); returns its Counts."""
        final = os.path.join(self.work, task.name)
        counts = Counts()
        with atomic_path(final) as tmp, atomic_path(final + ".params.jsonl") as ptmp, \
                tfrecord_io.RecordWriter(tmp) as writer, open(ptmp, "w", encoding="utf-8") as pf:
            for index in range(task.start, task.stop):
                comp = self.source.make(task.split, index)
                writer.write(serialize(comp))
                pf.write(json.dumps({**comp.params, "shard": task.shard_name,
                                     "config_fingerprint": self.config_fingerprint}) + "\n")
                counts.add_composite(comp)
                if progress is not None:
                    progress(1)
        counts.save(final + ".json", task.name, task.split)  # the chunk counts as done from here
        return counts

    def write_missing(self, task: ShardTask) -> Counts:
        """`write`, unless the chunk is already complete (a retried bundle): then its Counts."""
        done = chunk_counts(self.work, task)
        return done if done is not None else self.write(task)

    def close(self) -> None:
        """Releases the source's resources (its `close()`, where it has one: a browser)."""
        close = getattr(self.source, "close", None)
        if close is not None:
            close()


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to write chunks, as strings (and, for local worker processes,
    the inputs already loaded by the driver, sent once instead of loaded again)."""
    config_text: str
    config_source: str
    base_dir: str
    work: str
    source: str = DEFAULT_SOURCE
    inputs: Any = None  # the Kind's inputs (Inputs for LOGOS)

    def open(self) -> ChunkWriter:
        kind = source_kind(self.source)
        c = kind.parse_config(self.config_text, self.config_source)
        inputs = self.inputs
        if inputs is None:
            inputs = kind.load_inputs(configlib.LoadedConfig(c, self.config_source, self.base_dir))
            if kind.prepare is not None:
                inputs = kind.prepare(inputs, self.work)
        return ChunkWriter(load_source(self.source)(inputs, c, self.work), c, self.work, self.source)

    def open_worker(self) -> ChunkWriter:
        """`open` in a worker process: TensorFlow's C++ logging quiet, one BLAS thread."""
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        single_threaded_blas()
        return self.open()


# -- the job -------------------------------------------------------------------------------

@dataclass
class Summary:
    output_dir: str
    counts: dict  # split -> the manifest's counts (Counts.to_json)
    seconds: float
    skipped: list
    resumed_shards: int
    resumed_chunks: int = 0  # chunks of unfinished shards that an earlier run had written


def prepare_work_dir(output_dir: str, c, overwrite: bool, source: str = DEFAULT_SOURCE) -> tuple[str, bool]:
    """Creates (or, for the same config, reopens) OUTPUT_DIR/.work/; returns (its path, whether
    an earlier run's work folder was found). Refuses a work folder of another config, and a
    finished dataset unless `overwrite`."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise OutputError(f"output directory {output_dir!r} exists and is not a folder")
    work = os.path.join(output_dir, WORK)
    fp = fingerprint(c, source)
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


class Job:
    """One generation job (see the module docstring). Building it loads and checks the inputs,
    prepares the work folder and finds the chunks still to write (`todo`)."""

    def __init__(self, cfg: configlib.LoadedConfig, output_dir: str, overwrite: bool = False,
                 source: str = DEFAULT_SOURCE):
        self.t0 = time.time()
        self.cfg, self.c, self.output_dir, self.source = cfg, cfg.proto, output_dir, source
        self.shards = plan(self.c)
        self.kind = source_kind(source)  # a bad source fails here, before any worker starts
        self.inputs = self.kind.load_inputs(cfg)  # checked before anything is written
        self.work, _ = prepare_work_dir(output_dir, self.c, overwrite, source)
        if self.kind.prepare is not None:
            self.inputs = self.kind.prepare(self.inputs, os.path.abspath(self.work))
        self.done: dict[str, Counts] = {}
        self._open: dict[str, tuple[ShardTask, list[ShardTask], set[str]]] = {}
        self.todo: list[ShardTask] = []
        size = self.kind.chunk_size(self.c)
        for t in self.shards:
            counts = chunk_counts(self.work, t)
            if counts is not None:
                self.done[t.name] = counts
                continue
            parts = chunks(t, size)
            missing = [p for p in parts if chunk_counts(self.work, p) is None]
            self._open[t.name] = (t, parts, {p.name for p in missing})
            self.todo += missing
        self.resumed_shards = len(self.done)
        self.resumed_chunks = sum(len(parts) - len(missing) for _, parts, missing in self._open.values())
        for name in [n for n, (_, _, missing) in self._open.items() if not missing]:
            self._assemble(name)  # a crash may have come between a shard's last chunk and its assembly

    @property
    def images_done(self) -> int:
        return self.c.num_images - sum(t.stop - t.start for t in self.todo)

    def worker_spec(self, with_inputs: bool = False) -> WorkerSpec:
        return WorkerSpec(configlib.to_text(self.c), self.cfg.source, self.cfg.base_dir,
                          os.path.abspath(self.work), self.source, self.inputs if with_inputs else None)

    def chunk_written(self, name: str) -> None:
        """Records that chunk `name` is written (checking it is there) and assembles its shard
        when it was the shard's last."""
        shard = name.rsplit(PART, 1)[0]
        task, parts, missing = self._open[shard]
        if chunk_counts(self.work, next(p for p in parts if p.name == name)) is None:
            raise OutputError(f"chunk {name} was reported written but is not complete in {self.work!r}: "
                              "the workers must write to a filesystem the driver sees at the same path")
        missing.discard(name)
        if not missing:
            self._assemble(shard)

    def _assemble(self, shard: str) -> None:
        """Concatenates the finished chunks of a shard, in order, into the shard (atomically, then
        deletes the chunks)."""
        task, parts, _ = self._open.pop(shard)
        counts = []
        for p in parts:
            s = chunk_counts(self.work, p)
            if s is None:
                raise OutputError(f"chunk {p.name} of shard {task.name} is not finished in {self.work!r}")
            counts.append(s)
        final = os.path.join(self.work, task.name)
        with atomic_path(final) as tmp, atomic_path(final + ".params.jsonl") as ptmp, \
                open(tmp, "wb") as out, open(ptmp, "wb") as pout:
            for p in parts:
                with open(os.path.join(self.work, p.name), "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
                with open(os.path.join(self.work, p.name + ".params.jsonl"), "rb") as f:
                    shutil.copyfileobj(f, pout)
        total = Counts.total(counts)
        total.save(final + ".json", task.name, task.split)  # the shard counts as done from here
        for p in parts:
            for suffix in (".json", "", ".params.jsonl"):
                try:
                    os.remove(os.path.join(self.work, p.name + suffix))
                except FileNotFoundError:
                    pass
        self.done[task.name] = total

    def finish(self, write_preview: bool = False) -> Summary:
        """Once every shard is done: params.jsonl, label map, manifest and preview, then everything
        moves into OUTPUT_DIR (replacing an old dataset) and the work folder is deleted."""
        missing = [t.name for t in self.shards if t.name not in self.done]
        if missing:
            raise OutputError(f"cannot finish the dataset in {self.output_dir!r}: shards {missing} are not written")
        try:
            return self._finish(write_preview)
        except OSError as exc:
            raise OutputError(f"finishing the dataset in {self.output_dir!r} failed: {exc}") from None

    def _finish(self, write_preview: bool) -> Summary:
        work, c = self.work, self.c
        splits: dict[str, Counts] = {}
        shards: dict[str, list] = {}
        with atomic_path(os.path.join(work, dataset.PARAMS)) as tmp, open(tmp, "w", encoding="utf-8") as out:
            for t in self.shards:
                with open(os.path.join(work, t.name + ".params.jsonl"), encoding="utf-8") as f:
                    shutil.copyfileobj(f, out)
                splits.setdefault(t.split, Counts()).add(self.done[t.name])
                shards.setdefault(t.split, []).append({"name": t.name, "images": self.done[t.name].images})
        with open(os.path.join(work, dataset.LABEL_MAP), "w", encoding="utf-8") as f:
            f.write(label_map_text(self.inputs.class_names))
        if write_preview:
            from synth import preview
            from synth.composite import encode_jpeg

            sheet = preview.sheet_from_shards([os.path.join(work, t.name) for t in self.shards if t.split == "train"],
                                              os.path.join(work, dataset.PARAMS),
                                              stride=preview.spread_stride(splits.get("train", Counts()).images))
            with open(os.path.join(work, dataset.PREVIEW), "wb") as f:
                f.write(encode_jpeg(sheet, 90))
        failed = {}
        for s in splits.values():
            failed.update(s.failed_backgrounds)
        skipped = [{"path": s.path, "reason": s.reason} for s in self.inputs.skipped]
        skipped += [{"path": p, "reason": r} for p, r in sorted(failed.items())]
        seconds = round(time.time() - self.t0, 2)
        manifest = {
            "schema_version": dataset.MANIFEST_SCHEMA_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config_source": self.cfg.source,
            "config": configlib.to_text(c),
            "config_fingerprint": fingerprint(c, self.source),
            "config_base_dir": self.cfg.base_dir,  # where the config's relative paths point
            "seed": c.seed,
            "classes": [{"id": i + 1, "name": n} for i, n in enumerate(self.inputs.class_names)],
            "skipped_inputs": skipped,
            "splits": {s: {**counts.to_json(), "shards": shards[s]} for s, counts in splits.items()},
            "seconds": seconds,
            "resumed_shards": self.resumed_shards,
            "package_versions": dataset.package_versions(),
        }
        manifest.update(self.kind.manifest(self.inputs, c))  # the kind's own fields (it may extend package_versions)
        with open(os.path.join(work, dataset.MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
        # Everything is complete: replace an old dataset, move the new one into place.
        for old in dataset.existing_outputs(self.output_dir):
            os.remove(old)
        final_names = [t.name for t in self.shards] + [dataset.PARAMS, dataset.LABEL_MAP, dataset.MANIFEST]
        if write_preview:
            final_names.append(dataset.PREVIEW)
        for name in final_names:
            os.replace(os.path.join(work, name), os.path.join(self.output_dir, name))
        shutil.rmtree(work, ignore_errors=True)
        return Summary(self.output_dir, {s: counts.to_json() for s, counts in splits.items()}, seconds, skipped,
                       self.resumed_shards, self.resumed_chunks)


def format_summary(s: Summary) -> list[str]:
    """What a runner's command line prints about a finished job."""
    parts = [f"{split}: {v['images']} images, {v['objects']} objects" for split, v in s.counts.items()]
    if "val" not in s.counts:
        parts.append("no val split")
    lines = []
    if s.resumed_shards or s.resumed_chunks:
        lines.append(f"resumed: {s.resumed_shards} shard(s) and {s.resumed_chunks} chunk(s) of others were "
                     "already complete and kept")
    lines.append(f"wrote {s.output_dir} in {s.seconds:.1f} s ({'; '.join(parts)})")
    if s.skipped:
        lines.append(f"skipped {len(s.skipped)} unusable background(s), listed in manifest.json:")
        lines += [f"  {sk['reason']}" for sk in s.skipped[:10]]
    return lines
