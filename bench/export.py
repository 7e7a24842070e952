"""Export benchmark (bench/out/export.json): exporting the 640x640 zoo model for TF Serving.

The model is pipelines/faster_rcnn_resnet50_v1_640x640.config, configured for a small dataset of
the embedded default (tools/make_tfrecords.py, 640x480 composites). The TF2 Detection Zoo cannot
be reached here, so its checkpoint is the model as built (random initialisation, saved as
model_main_tf2 lays out ckpt-N); the time and memory of an export and the latency of the
SavedModel do not depend on the weights' values (only NMS can: it has more or fewer boxes to sort).

- export_s, export_peak_rss_mb: wall time and peak resident memory of the whole process tree
  (sampled every 0.1 s, as bench/scale.py does) of one tools/export_model.py run, start-up,
  export, verification against the checkpoint and models.config included;
- latency_median_ms, latency_p90_ms: the SavedModel's serving_default signature, loaded once in
  this process, on one 640x640 uint8 image (the first val composite, resized), after
  LATENCY_WARMUP calls; median and 90th percentile of BENCH_EXPORT_CALLS (default 10) calls,
  on the CPU, with TensorFlow's default thread pools over cpu_cores cores;
- max_box_diff, max_score_diff, max_raw_box_diff, max_raw_score_diff: the largest differences
  between the checkpoint and the SavedModel on the verification image, as the export recorded
  them in assets.extra/export.json (detections after NMS; raw: every proposal before NMS, the
  score difference among those that keep their box, as one picked differently has its own scores).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time

import numpy as np

from bench.scale import _run

TEMPLATE = "faster_rcnn_resnet50_v1_640x640"
CHECKPOINT = "random init, not trained"
LATENCY_SIZE = 640
LATENCY_WARMUP = 2
DATASET_IMAGES = 10  # 640x480 composites; 2 of them in the val split


def random_init_checkpoint(pipeline_config_path: str, run_dir: str) -> str:
    """Builds the pipeline's model with the OD API's model_builder, runs it once so every variable
    exists, and saves it as tf.train.Checkpoint(model=model) in `run_dir`; returns the prefix."""
    import tensorflow as tf
    from object_detection.builders import model_builder
    from object_detection.utils import config_util

    configs = config_util.get_configs_from_pipeline_file(pipeline_config_path)
    model = model_builder.build(configs["model"], is_training=False)
    images, shapes = model.preprocess(tf.zeros([1, LATENCY_SIZE, LATENCY_SIZE, 3]))
    model.predict(images, shapes)
    return tf.train.Checkpoint(model=model).save(os.path.join(run_dir, "ckpt"))


def latency_ms(version_dir: str, image: np.ndarray, calls: int) -> tuple[list[float], int]:
    """Per-call times (ms) of the SavedModel's serving_default signature on `image` (uint8 HxWx3)
    after LATENCY_WARMUP calls, and the number of detections it returned."""
    import tensorflow as tf

    fn = tf.saved_model.load(version_dir).signatures["serving_default"]
    batch = tf.constant(image[None])
    for _ in range(LATENCY_WARMUP):
        fn(input_tensor=batch)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        out = fn(input_tensor=batch)
        num = int(out["num_detections"].numpy()[0])  # waits for the result
        times.append(1000 * (time.perf_counter() - t))
    return times, num


def _in_dataset(sample: str, data_dir: str) -> str:
    """A sample's name relative to the dataset folder, which is temporary and gone when it is read."""
    return os.path.relpath(sample, data_dir) if sample.startswith(data_dir + os.sep) else sample


def measure() -> dict:
    calls = int(os.environ.get("BENCH_EXPORT_CALLS", "10"))
    import cv2

    from synth import export, pipeline_config, savedmodel, training

    training.apply_compat_fixes()
    tmp = tempfile.mkdtemp(prefix="tfod-export-")
    data, run, exports = (os.path.join(tmp, d) for d in ("data", "run", "exports"))
    try:
        _run([os.path.join("tools", "make_tfrecords.py"), f"--output_dir={data}",
              f"--num_images={DATASET_IMAGES}", "--noprogress"])
        config = pipeline_config.configure(TEMPLATE, data, run)
        random_init_checkpoint(config, run)
        export_s, export_mb = _run([os.path.join("tools", "export_model.py"), f"--pipeline_config_path={config}",
                                    f"--trained_checkpoint_dir={run}", f"--export_dir={exports}",
                                    "--model_name=bench"])
        version = os.path.join(exports, "bench", "1")
        with open(os.path.join(version, savedmodel.ASSETS_EXTRA, savedmodel.EXPORT_INFO), encoding="utf-8") as f:
            verification = json.load(f)["verification"]
        sample, source = export.sample_image(os.path.join(data, "label_map.pbtxt"))
        source = _in_dataset(source, data)
        image = cv2.resize(sample, (LATENCY_SIZE, LATENCY_SIZE), interpolation=cv2.INTER_AREA)
        times, num = latency_ms(version, image, calls)
        return {
            "template": TEMPLATE, "checkpoint": CHECKPOINT,
            "export_s": round(export_s, 1), "export_peak_rss_mb": round(export_mb, 1),
            "latency_image": f"{LATENCY_SIZE}x{LATENCY_SIZE} uint8, {source} resized",
            "latency_calls": calls, "latency_warmup_calls": LATENCY_WARMUP,
            "latency_median_ms": round(float(np.median(times)), 1),
            "latency_p90_ms": round(float(np.percentile(times, 90)), 1),
            "latency_num_detections": num, "cpu_cores": os.cpu_count(),
            "verification_sample": _in_dataset(verification["sample"], data),
            "verification_num_detections": verification["num_detections"],
            "raw_proposals_compared": verification["raw_proposals_compared"],
            **{k: verification[k] for k in ("max_box_diff", "max_score_diff", "max_raw_box_diff",
                                            "max_raw_score_diff", "atol")},
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
