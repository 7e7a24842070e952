"""The local runner of a generation job (synth.job): the chunks written in this process, or in
`workers` spawned processes on this machine.

Each worker process gets the job's WorkerSpec once (with the inputs the driver loaded), builds
its source with `WorkerSpec.open_worker()` (one BLAS thread, no TensorFlow: records are encoded
by synth.tfexample and framed by synth.tfrecord_io) and then writes the chunks it is handed,
one at a time, so every worker stays busy to the end; the driver assembles each shard as its
last chunk comes back, and finishes the job. Peak memory does not grow with the number of
images, since records stream to disk. The workers share background-audit verdicts
(`.work/audit/`) and surface analyses (`.work/surfaces/`) through files, so each background is
audited and each backdrop analysed once per run rather than once per worker.
"""

from __future__ import annotations

import multiprocessing as mp

from synth import config as configlib, job as joblib
from synth.errors import OutputError

_WRITER: dict = {}


def _worker_init(spec: joblib.WorkerSpec, counter) -> None:
    from multiprocessing import util

    _WRITER.update(writer=spec.open_worker(), counter=counter)
    util.Finalize(None, _WRITER["writer"].close, exitpriority=10)  # runs as the worker exits normally


def _worker_run(task: joblib.ShardTask) -> str:
    counter = _WRITER["counter"]

    def tick(n):
        with counter.get_lock():
            counter.value += n

    _WRITER["writer"].write(task, tick)
    return task.name


def run_chunks(job: joblib.Job, workers: int, bar=None) -> None:
    """Writes the job's chunks still to do, in this process (workers <= 1) or in a pool of
    `workers` processes, reporting each to the job as it is written."""
    todo = job.todo
    if workers <= 1 or len(todo) <= 1:
        with joblib.single_threaded_blas():
            writer = job.worker_spec(with_inputs=True).open()
            try:
                for t in todo:
                    writer.write(t, bar.update if bar else None)
                    job.chunk_written(t.name)
            finally:
                writer.close()
        return
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    seen = 0
    with ctx.Pool(min(workers, len(todo)), initializer=_worker_init,
                  initargs=(job.worker_spec(with_inputs=True), counter)) as pool:
        results = pool.imap_unordered(_worker_run, todo, chunksize=1)
        remaining = len(todo)
        while remaining:
            try:
                name = results.next(timeout=0.2)  # re-raises a worker's exception here
            except mp.TimeoutError:
                name = None
            if bar is not None and counter.value != seen:
                bar.update(counter.value - seen)
                seen = counter.value
            if name is not None:
                remaining -= 1
                job.chunk_written(name)
        pool.close()  # the workers exit normally, so their sources are closed (a source's browser)
        pool.join()


def generate(cfg: configlib.LoadedConfig, output_dir: str, overwrite: bool = False,
             show_progress: bool = True, write_preview: bool = False, workers: int = 1,
             source: str = joblib.DEFAULT_SOURCE) -> joblib.Summary:
    """Generates (or finishes) the dataset of `cfg` in `output_dir`; see synth.job."""
    job = joblib.Job(cfg, output_dir, overwrite, source)
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=job.c.num_images, initial=job.images_done, unit="img", desc=job.kind.noun,
                   dynamic_ncols=True, smoothing=0.1)
    try:
        run_chunks(job, workers, bar)
    except OSError as exc:
        raise OutputError(f"writing shards in {job.work!r} failed: {exc}; finished chunks and shards are "
                          "kept there and the same command resumes") from None
    finally:
        if bar is not None:
            bar.close()
    return job.finish(write_preview)


__all__ = ["generate", "run_chunks"]
