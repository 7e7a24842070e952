"""The header job: a HeaderConfig in, sharded OD API TFRecords out, on synth.generate's
machinery (the same plan of shards and chunks, chunk files renamed when complete, shards
assembled in order, resumable after a crash, and the same dataset folder: shards,
label_map.pbtxt, manifest.json, params.jsonl, preview.jpg), so configure_pipeline,
model_main_tf2, export_model, predict and inspect_tfrecords read it unchanged.

Workers are spawned processes, each with one browser (synth.html.render.Renderer) for all its
pages. The embedded default's HTML is built once, by this process, into OUTPUT_DIR/.work/.
"""

from __future__ import annotations

import json
import os
import time

from synth import dataset, generate, preview
from synth.errors import OutputError
from synth.html import config as hconfig
from synth.html.engine import HeaderEngine
from synth.html.labels import SCHEME_CLASSES
from synth.html.render import find_browser
from synth.html.sources import list_pages
from synth.label_map import label_map_text

BUILTIN_DIR = "builtin_html"  # OUTPUT_DIR/.work/builtin_html/: the embedded default's pages
CHUNK_IMAGES = 8
MANIFEST_KIND = "html_headers"

_STATE: dict = {}


def _worker_init(pages, config_text, source, work, counter):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    generate.single_threaded_blas()
    c = hconfig.parse_text(config_text, source)
    _STATE.update(engine=HeaderEngine(pages, c), work=work, counter=counter)
    from multiprocessing import util

    util.Finalize(None, _STATE["engine"].close, exitpriority=10)


def _worker_run(task):
    counter = _STATE["counter"]

    def tick(n):
        with counter.get_lock():
            counter.value += n

    return generate.write_shard(task, _STATE["engine"], _STATE["work"], tick)


def _run(todo, pages, cfg, work, workers, bar, on_done):
    c = cfg.proto
    if workers <= 1 or len(todo) <= 1:
        eng = HeaderEngine(pages, c)
        try:
            for t in todo:
                on_done(generate.write_shard(t, eng, work, bar.update if bar else None))
        finally:
            eng.close()
        return
    generate.run_pool(todo, workers, _worker_init,
                      lambda counter: (pages, hconfig.to_text(c), cfg.source, work, counter), _worker_run, bar, on_done)


def generate_headers(cfg, output_dir: str, overwrite: bool = False, show_progress: bool = True,
                     write_preview: bool = False, workers: int = 1) -> generate.Summary:
    """Generates (or finishes) the header dataset of `cfg` (a LoadedConfig of a HeaderConfig)."""
    t0 = time.time()
    c = cfg.proto
    find_browser(c.browser_executable)  # no browser: a clear error before anything is written
    tasks = generate.plan(c)
    work, _ = generate.prepare_work_dir(output_dir, c, overwrite)
    pages, skipped = list_pages(cfg, os.path.join(work, BUILTIN_DIR))
    done, open_shards, todo = generate.pending(work, tasks, CHUNK_IMAGES)
    resumed = len(done)
    resumed_chunks = sum(len(parts) - len(missing) for _, parts, missing in open_shards.values())
    generate.chunk_finished(work, open_shards, done)
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=c.num_images, initial=c.num_images - sum(t.stop - t.start for t in todo), unit="page",
                   desc="pages", dynamic_ncols=True, smoothing=0.1)
    try:
        _run(todo, pages, cfg, work, workers, bar, lambda st: generate.chunk_finished(work, open_shards, done, st["name"]))
    except OSError as exc:
        raise OutputError(f"writing shards in {work!r} failed: {exc}; finished chunks and shards are "
                          "kept there and the same command resumes") from None
    finally:
        if bar is not None:
            bar.close()
    try:
        s = _finish(cfg, pages, skipped, tasks, done, work, output_dir, write_preview, t0, resumed)
    except OSError as exc:
        raise OutputError(f"finishing the dataset in {output_dir!r} failed: {exc}") from None
    s.resumed_chunks = resumed_chunks
    return s


def _preview(pages, c) -> bytes:
    from synth.composite import encode_jpeg

    eng = HeaderEngine(pages, c)
    thumbs = []
    try:
        for i in range(min(generate.PREVIEW_IMAGES, generate.split_counts(c)["train"])):
            comp = eng.make("train", i)
            thumbs.append(preview.annotate(comp.image, comp.boxes, comp.class_texts, comp.class_ids))
    finally:
        eng.close()
    side = 480  # pages differ in size: thumbnails of one height for the sheet
    import cv2

    thumbs = [cv2.resize(t, (max(1, round(t.shape[1] * side / t.shape[0])), side), interpolation=cv2.INTER_AREA)
              for t in thumbs]
    width = max(t.shape[1] for t in thumbs)
    thumbs = [cv2.copyMakeBorder(t, 0, 0, 0, width - t.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
              for t in thumbs]
    return encode_jpeg(preview.contact_sheet(thumbs), 90)


def _finish(cfg, pages, skipped, tasks, done, work, output_dir, write_preview, t0, resumed) -> generate.Summary:
    c = cfg.proto
    names = SCHEME_CLASSES[c.classes]
    splits, failed = generate.collect_splits(work, tasks, done)
    with open(os.path.join(work, dataset.LABEL_MAP), "w", encoding="utf-8") as f:
        f.write(label_map_text(names))
    if write_preview:
        with open(os.path.join(work, dataset.PREVIEW), "wb") as f:
            f.write(_preview(pages, c))
    skipped = [{"path": s.path, "reason": s.reason} for s in skipped]
    skipped += [{"path": p, "reason": r} for p, r in sorted(failed.items())]
    manifest = {
        "schema_version": dataset.MANIFEST_SCHEMA_VERSION,
        "kind": MANIFEST_KIND,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config_source": cfg.source,
        "config": hconfig.to_text(c),
        "config_fingerprint": generate.fingerprint(c),
        "seed": c.seed,
        "classes": [{"id": i + 1, "name": n} for i, n in enumerate(names)],
        "pages": [p.name for p in pages],
        "num_pages": len(pages),
        "skipped_inputs": skipped,
        "splits": splits,
        "seconds": round(time.time() - t0, 2),
        "resumed_shards": resumed,
        "package_versions": {**dataset.package_versions(), **_versions(c.browser_executable)},
    }
    with open(os.path.join(work, dataset.MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    generate.publish(work, output_dir, tasks, write_preview)
    counts = {s: {k: v for k, v in a.items() if k != "shards"} for s, a in splits.items()}
    return generate.Summary(output_dir, counts, manifest["seconds"], skipped, resumed)


def _versions(executable: str) -> dict:
    from importlib import metadata

    out = {}
    for name in ("playwright", "pypdfium2", "Markdown"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    try:
        import subprocess

        out["chromium"] = subprocess.run([find_browser(executable), "--version"], capture_output=True, text=True,
                                         timeout=30).stdout.strip()
    except Exception as exc:  # noqa: BLE001 - the version is informative only
        out["chromium"] = f"unknown ({exc})"
    return out
