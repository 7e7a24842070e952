"""The Beam runner of a generation job (synth.job): the chunks written by an Apache Beam
pipeline on any Beam runner; the same shards, label map, params.jsonl and manifest as the local
runner (synth.generate), byte for byte.

The driver builds the Job (inputs checked, OUTPUT_DIR/.work/ prepared or resumed, a foreign run
refused), runs the chunks still to do as

    beam.Create(chunks) | beam.Reshuffle() | beam.ParDo(WriteShardFn(job.worker_spec()))

and then hands each written chunk back to the job, which assembles the shards and finishes. The
WorkerSpec carries only strings; `WriteShardFn.setup()` opens it once per worker
(`WorkerSpec.open_worker`: the config parsed, the inputs and the source loaded), and each element
is one chunk, written atomically into the work folder; a chunk that is already complete there (a
retried bundle) is not written again. Because every composite's bytes depend only on (config,
split, index), which worker writes which chunk does not matter.

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
from dataclasses import asdict, dataclass, field

import apache_beam as beam
from apache_beam.metrics import Metrics, MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from synth import config as configlib, job as joblib
from synth.errors import ConfigError, OutputError

log = logging.getLogger(__name__)
NAMESPACE = "tfod_synth"
METRIC_NAMES = ("images", "objects", "rejected_objects", "skipped_backgrounds")
_URL_SCHEMES = ("gs://", "s3://", "hdfs://", "http://", "https://", "az://", "abfs://")


@dataclass
class BeamSummary(joblib.Summary):
    """job.Summary plus the Beam metrics of this run (name -> count)."""

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
    Counts (as the chunk's JSON)."""

    def __init__(self, spec: joblib.WorkerSpec):
        super().__init__()
        self.spec = spec
        self._writer = None

    def setup(self):
        self._writer = self.spec.open_worker()
        self._counters = {n: Metrics.counter(NAMESPACE, n) for n in ("images", "objects", "rejected_objects")}

    def teardown(self):
        if self._writer is not None:
            self._writer.close()  # a source's resources (a browser)
            self._writer = None

    def process(self, task: dict):
        t = joblib.ShardTask(**task)
        counts = self._writer.write_missing(t)
        self._counters["images"].inc(counts.images)
        self._counters["objects"].inc(counts.objects)
        self._counters["rejected_objects"].inc(sum(counts.rejected.values()))
        yield {"name": t.name, "failed_backgrounds": sorted(counts.failed_backgrounds)}


class _CountSkipped(beam.DoFn):
    def __init__(self):
        super().__init__()
        self.counter = Metrics.counter(NAMESPACE, "skipped_backgrounds")

    def process(self, path):
        self.counter.inc()
        return []


def build_pipeline(p: beam.Pipeline, todo: list[dict], fn: WriteShardFn, header_skipped: list[str]):
    """Adds the generation to `p`; returns the PCollection of written chunks ({"name", "failed_backgrounds"})."""
    stats = (p | "Chunks" >> beam.Create(todo) | "Spread" >> beam.Reshuffle()
             | "WriteShard" >> beam.ParDo(fn))
    failed = stats | "FailedBackgrounds" >> beam.FlatMap(lambda s: s["failed_backgrounds"])
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
                  overwrite: bool = False, write_preview: bool = False,
                  source: str = joblib.DEFAULT_SOURCE) -> BeamSummary:
    """Generates (or finishes) the dataset of `cfg` in `output_dir` with a Beam pipeline; see the
    module docstring. Gives the same files as generate.generate(cfg, output_dir)."""
    if str(output_dir).startswith(_URL_SCHEMES):
        raise OutputError(f"output directory {output_dir!r} is a URL; the Beam runner writes shards "
                          "with local file operations: use a path that the driver and every worker "
                          "mount at the same place (NFS, Filestore, gcsfuse)")
    args = pipeline_options(pipeline_args)
    job = joblib.Job(cfg, output_dir, overwrite, source)
    metrics = dict.fromkeys(METRIC_NAMES, 0)
    if job.todo:
        p = beam.Pipeline(options=PipelineOptions(args))
        build_pipeline(p, [asdict(t) for t in job.todo], WriteShardFn(job.worker_spec()),
                       [s.path for s in job.inputs.skipped])
        result = p.run()
        result.wait_until_finish()
        metrics = query_metrics(result)
        log.info("beam metrics: %s", metrics)
    for t in list(job.todo):  # the driver assembles each shard from its chunks
        job.chunk_written(t.name)
    s = job.finish(write_preview)
    return BeamSummary(**vars(s), metrics=metrics)


__all__ = ["build_and_run", "build_pipeline", "pipeline_options", "query_metrics", "WriteShardFn",
           "BeamSummary", "METRIC_NAMES"]
