"""Seconds per training step of the demo's recipe, with TensorFlow's oneDNN kernels off and on.

    .venv/bin/python bench/train_rate.py [STEPS] [TEMPLATE] [--config_override=FRAGMENT]

Builds the model of TEMPLATE (a name in pipelines/ or a path; default small_cpu_demo: Faster R-CNN ResNet-50 from
scratch, 192x192, batch 4) with the OD API's model_builder, and times STEPS (default 5) training steps
after two warm-up steps: the OD API's train step in one tf.function (groundtruth, preprocess, predict,
loss, gradients, Adam), on a batch of random images with two boxes each, so no data pipeline is timed.
Each setting runs in its own process, because TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, at import.
Prints and writes bench/out/train_rate.json: s_per_step for TF_ENABLE_ONEDNN_OPTS=0 and =1, the
speed-up, whether TensorFlow reported oneDNN on in each, and the CPU model. --config_override merges a
pipeline fragment over the template first (synth.pipeline_config.apply_override, as bench/transfer.py and
tools/configure_pipeline.py do), to time a recipe variant before training it:
`bench/train_rate.py 5 small_cpu_demo --config_override='model { faster_rcnn { initial_crop_size: 8 } }'`.

TensorFlow 2.15 turns oneDNN on by itself only on CPUs with AVX-512 VNNI/BF16/AMX; `import synth` sets
TF_ENABLE_ONEDNN_OPTS=1 unless the user set it (synth/__init__.py), and this measures why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "out")
sys.path.insert(0, ROOT)

from synth import pipeline_config  # noqa: E402  (sets TF_ENABLE_ONEDNN_OPTS only where unset)
from synth.errors import ConfigError  # noqa: E402


def _child(template: str, steps: int, config_override: str = "") -> None:
    """Runs in a fresh process: times the train step and prints one JSON line."""
    import time

    import tensorflow as tf
    from tensorflow.python.framework import test_util

    from synth import training  # noqa: F401  (the tf-slim fix that TF 2.15 needs)
    from object_detection.builders import model_builder

    pipeline = pipeline_config.read_pipeline(template)
    if config_override:
        pipeline_config.apply_override(pipeline, config_override)
    model = model_builder.build(pipeline.model, is_training=True)
    batch = pipeline.train_config.batch_size
    resizer = pipeline.model.faster_rcnn.image_resizer.fixed_shape_resizer
    images = tf.random.stateless_uniform([batch, resizer.height, resizer.width, 3], seed=(1, 2)) * 255.0
    boxes = [tf.constant([[0.2, 0.2, 0.6, 0.7], [0.5, 0.1, 0.9, 0.4]])] * batch
    classes = [tf.one_hot([0, 0], pipeline.model.faster_rcnn.num_classes)] * batch
    optimizer = tf.keras.optimizers.Adam(5e-4)

    @tf.function
    def step():
        model.provide_groundtruth(groundtruth_boxes_list=boxes, groundtruth_classes_list=classes)
        with tf.GradientTape() as tape:
            preprocessed, shapes = model.preprocess(images)
            losses = model.loss(model.predict(preprocessed, shapes), shapes)
            total = tf.add_n(list(losses.values()))
        grads = tape.gradient(total, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return total

    step()
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    per_step = (time.perf_counter() - start) / steps
    print(json.dumps({"s_per_step": round(per_step, 3), "onednn_on": bool(test_util.IsMklEnabled())}))


def _cpu_model() -> str:
    """'model name (family F model M)' from /proc/cpuinfo: a VM's model name alone may not say which
    generation it is (AMD EPYC family 23 is Zen 2, without AVX-512; family 25 model 17 is Zen 4, with it)."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown"
    avx512 = "avx512_vnni" in info.get("flags", "").split()
    return (f"{info.get('model name', 'unknown')} (family {info.get('cpu family', '?')} model "
            f"{info.get('model', '?')}{', AVX-512 VNNI' if avx512 else ', no AVX-512 VNNI'})")


def measure(steps: int = 5, template: str = "small_cpu_demo", config_override: str = "") -> dict:
    template = os.path.abspath(pipeline_config.template_path(template))
    config_override = pipeline_config.one_line(config_override)
    if config_override:  # refused here, naming the flag, rather than in both children
        pipeline_config.apply_override(pipeline_config.read_pipeline(template), config_override)
    res = {"template": os.path.relpath(template, ROOT), "steps_timed": steps, "cpu": _cpu_model(),
           "cores": os.cpu_count()}
    if config_override:
        res["config_override"] = config_override
    for setting in ("0", "1"):
        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=setting, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", template, str(steps),
                               config_override],
                              env=env, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"train_rate child (TF_ENABLE_ONEDNN_OPTS={setting}) failed:\n{proc.stderr[-3000:]}")
        res[f"onednn_{setting}"] = json.loads(lines[-1])
    res["speedup_onednn"] = round(res["onednn_0"]["s_per_step"] / res["onednn_1"]["s_per_step"], 2)
    return res


def main(argv: list) -> None:
    if len(argv) > 1 and argv[1] == "--child":
        _child(argv[2], int(argv[3]), argv[4])
        return
    prefix = "--config_override="
    override = " ".join(a[len(prefix):] for a in argv[1:] if a.startswith(prefix))
    args = [a for a in argv[1:] if not a.startswith(prefix)]
    try:
        res = measure(int(args[0]) if args else 5, *args[1:2], config_override=override)
    except ConfigError as exc:
        sys.exit(f"train_rate: error: {exc}")
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "train_rate.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=2)
    print(json.dumps(res, indent=2))
    print(f"written: {path}")


if __name__ == "__main__":
    main(sys.argv)
