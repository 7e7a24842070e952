"""Benchmarks (`make bench`): results go to bench/out/*.json and a short table.

realism.json: see bench/realism.py. stages.json: see bench/stages.py. scale.json: see bench/scale.py.
export.json: see bench/export.py. headers.json: see bench/headers.py.
train_rate.json: see bench/train_rate.py (seconds per training step, oneDNN off and on).

generate.json: composites per second per core on the embedded default (640x480, single
process, TFRecord writing included), and in the same run the codec bound: the rate of
decoding one background JPEG and encoding one output JPEG, which no generator that reads
a fresh background per composite can beat.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

import cv2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from synth import config as configlib, generate, images  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def codec_bound(n: int = 200) -> float:
    photo = cv2.resize(images.load_background(images.builtin_background_paths("skimage:photos")[0]),
                       (640, 480))
    jpeg = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
    t = time.perf_counter()
    for _ in range(n):
        img = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
        cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return n / (time.perf_counter() - t)


def bench_generate(n: int = 500) -> dict:
    cfg = configlib.apply_overrides(configlib.load_config(None), num_images=n)
    tmp = tempfile.mkdtemp(prefix="tfod-bench-")
    try:
        generate.generate(configlib.apply_overrides(cfg, num_images=5), os.path.join(tmp, "warm"),
                          show_progress=False)  # imports and caches
        t = time.perf_counter()
        generate.generate(cfg, os.path.join(tmp, "run"), show_progress=False)
        rate = n / (time.perf_counter() - t)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    bound = codec_bound()
    return {"num_images": n, "image_size": "640x480", "composites_per_s_per_core": round(rate, 2),
            "codec_bound_per_s_per_core": round(bound, 2), "throughput_ratio": round(rate / bound, 3)}


def _write(name: str, res: dict) -> None:
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(res, f, indent=2)
    print(f"\n{name}\n{'metric':34s} value")
    for k, v in res.items():
        if isinstance(v, dict):
            v = "  ".join(f"{kk} {vv}" for kk, vv in v.items())
        print(f"{k:34s} {v}")
    print(f"written: {path}")


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    n = int(os.environ.get("BENCH_IMAGES", "500"))
    from bench import realism

    _write("realism.json", realism.measure(n))
    res = bench_generate(n)
    res["machine_cores"] = os.cpu_count()
    _write("generate.json", res)
    from bench import stages

    _write("stages.json", stages.measure())
    from bench import scale

    _write("scale.json", scale.measure())
    from bench import export

    _write("export.json", export.measure())
    from bench import headers

    _write("headers.json", headers.keep_transfer(headers.measure()))
    from bench import train_rate

    _write("train_rate.json", train_rate.measure())


if __name__ == "__main__":
    main()
