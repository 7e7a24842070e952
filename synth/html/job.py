"""The header job: a HeaderConfig in, sharded OD API TFRecords out, on synth.job (the same plan
of shards and chunks, chunk files renamed when complete, shards assembled in order, resumable
after a crash, and the same dataset folder: shards, label_map.pbtxt, manifest.json,
params.jsonl, preview.jpg), so configure_pipeline, model_main_tf2, export_model, predict and
inspect_tfrecords read it unchanged.

The source is synth.html.engine's HeaderEngine (SOURCE): each worker process keeps one browser
for all its pages, closed as the worker ends. The embedded default's HTML is built once, by the
driver, into OUTPUT_DIR/.work/builtin_html/. The Beam runner takes the same source:
`beam_pipeline.build_and_run(cfg, output_dir, pipeline_args, source=SOURCE)`.
"""

from __future__ import annotations

from synth import generate, job as joblib

SOURCE = "synth.html.engine:HeaderEngine"


def generate_headers(cfg, output_dir: str, overwrite: bool = False, show_progress: bool = True,
                     write_preview: bool = False, workers: int = 1) -> joblib.Summary:
    """Generates (or finishes) the header dataset of `cfg` (a LoadedConfig of a HeaderConfig)
    with the local runner; a missing browser is an error before anything is written."""
    return generate.generate(cfg, output_dir, overwrite, show_progress, write_preview, workers, source=SOURCE)
