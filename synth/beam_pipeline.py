"""The generation job as an Apache Beam pipeline: the same shards, label map, params.jsonl and
manifest as `synth.generate.generate`, byte for byte, on any Beam runner.

The driver does what the local runner does before and after the chunks: it validates the
inputs, prepares OUTPUT_DIR/.work/ (refusing an unfinished run of a different config), and
skips the shards and chunks already complete there (resume). The chunks still to do travel
as plain dicts through

    beam.Create(chunks) | beam.Reshuffle() | beam.ParDo(WriteShardFn(...))

`WriteShardFn` carries only strings (the canonical config text, its source and base folder,
the work folder); its `setup()` re-parses the config, re-resolves the paths and loads the
inputs once per worker, and each element is one chunk written atomically by
`generate.write_shard` into the work folder, with its counts as the `.json` beside it. A
chunk that is already complete there (a retried bundle) is not written again. Because every
composite's bytes depend only on (config, split, index), which worker writes which chunk does
not matter. After `wait_until_finish()` the driver concatenates each shard's chunks in order
(`generate.chunk_finished`) and runs the local runner's finishing step (params.jsonl, label
map, manifest, preview; then the move into place).

Beam metrics, namespace "tfod_synth": `images`, `objects` (kept boxes), `rejected_objects`
(the sum of each chunk's `rejected` dict: placements the realism gate or placement refused) and
`skipped_backgrounds` (distinct backgrounds left out: unreadable headers found by the driver plus
pixels that failed to decode in a worker). They count the work of this run only: chunks resumed
from an earlier run are not counted again.

Pipeline options: `pipeline_args` are Beam's standard options, passed through untouched. Options
Beam does not know are refused (a misspelt flag is an error, not silently dropped). Without
`--runner` the DirectRunner is used, and for the DirectRunner `--direct_running_mode` defaults to
`multi_processing` with `--direct_num_workers` = the number of cores, and the worker processes
log warnings only (`--default_sdk_harness_log_level=WARNING`). With another runner
(`--runner=DataflowRunner --project=... --region=... --temp_location=gs://...`, Flink, Spark):
  - OUTPUT_DIR must be a path that the driver and every worker can read and write as a normal
    filesystem at the same path (NFS, Filestore, a gcsfuse mount); `gs://` URLs are refused,
    because shards are written with local file operations and atomic renames;
  - the workers need this package and its pinned dependencies: best a worker image with
    tfod-synth installed (`--sdk_container_image=...`, `--sdk_location=container`); or
    `--setup_file=./pyproject.toml`, which builds an sdist with `python -m build` (install
    `build` first; run after `make setup`, so that synth/protos/*_pb2.py exist to be shipped)
    and lets each worker pip-install it with its dependencies (TensorFlow included: slow).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import asdict, dataclass, field

import apache_beam as beam
from apache_beam.metrics import Metrics, MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from synth import config as configlib, engine, generate
from synth.errors import ConfigError, OutputError
from synth.inputs import load_inputs

log = logging.getLogger(__name__)
NAMESPACE = "tfod_synth"
METRIC_NAMES = ("images", "objects", "rejected_objects", "skipped_backgrounds")
_URL_SCHEMES = ("gs://", "s3://", "hdfs://", "http://", "https://", "az://", "abfs://")


@dataclass
class BeamSummary(generate.Summary):
    """generate.Summary plus the Beam metrics of this run (name -> count)."""

    metrics: dict = field(default_factory=dict)


# -- pipeline options ----------------------------------------------------------------------

def _given(args: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for name in ("--runner", "--direct_running_mode", "--direct_num_workers",
                 "--default_sdk_harness_log_level"):
        p.add_argument(name)
    return p.parse_known_args(args)[0]


def _is_direct(runner: str) -> bool:
    name = runner.rsplit(".", 1)[-1].lower()
    return name in ("direct", "directrunner", "switchingdirectrunner")


def pipeline_options(pipeline_args: list[str], cores: int | None = None) -> list[str]:
    """`pipeline_args` with the defaults added (see the module docstring); raises ConfigError
    naming any option that no Beam options class knows."""
    args = [str(a) for a in pipeline_args]
    parser_box = []
    PipelineOptions(args).get_all_options(add_extra_args_fn=parser_box.append)
    unknown = parser_box[0].parse_known_args(args)[1] if parser_box else []
    if unknown:
        raise ConfigError(f"pipeline option(s) {' '.join(unknown)!r} are not Beam pipeline options "
                          "(check the spelling; the generator's own flags go before `--`)")
    given = _given(args)
    out = list(args)
    if given.runner is None:
        out.append("--runner=DirectRunner")
    if given.runner is None or _is_direct(given.runner):
        mode = given.direct_running_mode
        if mode is None:
            mode = "multi_processing"
            out.append("--direct_running_mode=multi_processing")
        if given.direct_num_workers is None and mode != "in_memory":
            out.append(f"--direct_num_workers={cores or os.cpu_count() or 1}")
        if given.default_sdk_harness_log_level is None:
            out.append("--default_sdk_harness_log_level=WARNING")
    return out


# -- the transforms ------------------------------------------------------------------------

class WriteShardFn(beam.DoFn):
    """Writes one chunk of a shard (a ShardTask as a plain dict) into the work folder; yields its
    counts."""

    def __init__(self, config_text: str, source: str, base_dir: str, work: str):
        super().__init__()
        self.config_text, self.source, self.base_dir, self.work = config_text, source, base_dir, work
        self._engine = None

    def setup(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        generate.single_threaded_blas()
        c = configlib.parse_config_text(self.config_text, self.source)
        cfg = configlib.LoadedConfig(c, self.source, self.base_dir)
        self._engine = engine.Engine(load_inputs(cfg), c, self.work)
        self._counters = {n: Metrics.counter(NAMESPACE, n) for n in ("images", "objects", "rejected_objects")}

    def process(self, task: dict):
        t = generate.ShardTask(**task)
        stats = generate.shard_done(self.work, t)  # a retried bundle finds its chunk done
        if stats is None:
            stats = generate.write_shard(t, self._engine, self.work)
        self._counters["images"].inc(stats["images"])
        self._counters["objects"].inc(stats["objects"])
        self._counters["rejected_objects"].inc(sum(stats.get("rejected", {}).values()))
        yield stats


class _CountSkipped(beam.DoFn):
    def __init__(self):
        super().__init__()
        self.counter = Metrics.counter(NAMESPACE, "skipped_backgrounds")

    def process(self, path):
        self.counter.inc()
        return []


def build_pipeline(p: beam.Pipeline, todo: list[dict], fn: WriteShardFn, header_skipped: list[str]):
    """Adds the generation to `p`; returns the PCollection of per-chunk counts."""
    stats = (p | "Chunks" >> beam.Create(todo) | "Spread" >> beam.Reshuffle()
             | "WriteShard" >> beam.ParDo(fn))
    failed = stats | "FailedBackgrounds" >> beam.FlatMap(lambda s: sorted(s.get("failed_backgrounds", {})))
    header = p | "HeaderSkipped" >> beam.Create(sorted(header_skipped))
    _ = ((failed, header) | "AllSkipped" >> beam.Flatten() | "Distinct" >> beam.Distinct()
         | "CountSkipped" >> beam.ParDo(_CountSkipped()))
    return stats


def query_metrics(result) -> dict:
    """The tfod_synth counters of a finished pipeline (committed values where the runner has
    them, else attempted), summed over steps; a counter never incremented reads 0."""
    out = dict.fromkeys(METRIC_NAMES, 0)
    for r in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = r.committed if r.committed is not None else r.attempted
        out[r.key.metric.name] = out.get(r.key.metric.name, 0) + int(value or 0)
    return out


# -- the job -------------------------------------------------------------------------------

def build_and_run(cfg: configlib.LoadedConfig, output_dir: str, pipeline_args: list[str],
                  overwrite: bool = False, write_preview: bool = False) -> BeamSummary:
    """Generates (or finishes) the dataset of `cfg` in `output_dir` with a Beam pipeline; see the
    module docstring. Gives the same files as generate.generate(cfg, output_dir)."""
    t0 = time.time()
    if str(output_dir).startswith(_URL_SCHEMES):
        raise OutputError(f"output directory {output_dir!r} is a URL; the Beam runner writes shards "
                          "with local file operations: use a path that the driver and every worker "
                          "mount at the same place (NFS, Filestore, gcsfuse)")
    args = pipeline_options(pipeline_args)
    c = cfg.proto
    tasks = generate.plan(c)
    inputs = load_inputs(cfg)
    # The local runner's own checks and refusal of a foreign run (private in generate.py).
    work, _ = generate.prepare_work_dir(output_dir, c, overwrite)
    done, open_shards, todo = generate.pending(work, tasks, generate.chunk_size(c))
    resumed = len(done)
    metrics = dict.fromkeys(METRIC_NAMES, 0)
    if todo:
        fn = WriteShardFn(configlib.to_text(c), cfg.source, cfg.base_dir, os.path.abspath(work))
        p = beam.Pipeline(options=PipelineOptions(args))
        build_pipeline(p, [asdict(t) for t in todo], fn, [s.path for s in inputs.skipped])
        result = p.run()
        result.wait_until_finish()
        metrics = query_metrics(result)
        log.info("beam metrics: %s", metrics)
    generate.chunk_finished(work, open_shards, done)  # shards whose chunks an earlier run wrote
    for t in todo:  # the driver concatenates each shard's chunks
        if generate.shard_done(work, t) is None:
            raise OutputError(f"the pipeline finished but chunk {t.name} is not in {work!r}: the "
                              "workers must write to a filesystem the driver sees at the same path")
        generate.chunk_finished(work, open_shards, done, t.name)
    try:
        s = generate.finish(cfg, inputs, tasks, done, work, output_dir, write_preview, t0, resumed=resumed)
    except OSError as exc:
        raise OutputError(f"finishing the dataset in {output_dir!r} failed: {exc}") from None
    return BeamSummary(**vars(s), metrics=metrics)


__all__ = ["build_and_run", "build_pipeline", "pipeline_options", "query_metrics", "WriteShardFn",
           "BeamSummary", "METRIC_NAMES"]
