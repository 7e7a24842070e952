"""Scale benchmark (bench/out/scale.json): parallel generation and memory.

- images_per_s_1_worker, images_per_s_2_workers, scaling_ratio: the embedded default at
  640x480 through tools/make_tfrecords.py (a fresh process each, start-up included), 2,000
  images: about 3 s of each run is start-up (imports, inputs, the background audit), which
  at a few hundred images would hide how the work itself scales;
- identical_across_workers: the two runs' shards are byte-identical;
- peak_rss_mb_1k, peak_rss_mb_5k: peak resident memory of the whole process tree (the
  main process plus its workers, sampled every 0.1 s) generating 1,000 and 5,000 images;
- beam_images_per_s: tools/make_tfrecords_beam.py with Beam's DirectRunner, when present.
Sizes can be lowered with BENCH_SCALE_IMAGES / BENCH_RSS_SMALL / BENCH_RSS_LARGE.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args: list[str], monitor: bool = True) -> tuple[float, float]:
    """(seconds, peak RSS MB of the process tree) of one tool run. The memory monitor walks
    /proc every 0.1 s; on 2 busy cores that cost the 2-worker run 5-10 % of its rate, so timed
    runs pass monitor=False (and get 0.0 for the memory)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    root = psutil.Process(proc.pid)
    peak = 0
    while monitor and proc.poll() is None:
        try:
            procs = [root] + root.children(recursive=True)
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.1)
    err = proc.communicate()[1]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{err.decode()[-3000:]}")
    return time.perf_counter() - t, peak / 2**20


def _shards(d: str) -> dict:
    return {os.path.basename(p): open(p, "rb").read() for p in sorted(glob.glob(os.path.join(d, "*.tfrecord")))}


def measure() -> dict:
    n = int(os.environ.get("BENCH_SCALE_IMAGES", "2000"))
    small = int(os.environ.get("BENCH_RSS_SMALL", "1000"))
    large = int(os.environ.get("BENCH_RSS_LARGE", "5000"))
    tmp = tempfile.mkdtemp(prefix="tfod-scale-")
    tool = os.path.join("tools", "make_tfrecords.py")
    try:
        s1, _ = _run([tool, f"--output_dir={tmp}/w1", f"--num_images={n}", "--workers=1", "--noprogress"], monitor=False)
        s2, _ = _run([tool, f"--output_dir={tmp}/w2", f"--num_images={n}", "--workers=2", "--noprogress"], monitor=False)
        identical = _shards(f"{tmp}/w1") == _shards(f"{tmp}/w2")
        _, rss_small = _run([tool, f"--output_dir={tmp}/r1", f"--num_images={small}", "--workers=2", "--noprogress"])
        _, rss_large = _run([tool, f"--output_dir={tmp}/r5", f"--num_images={large}", "--workers=2", "--noprogress"])
        res = {"num_images": n, "images_per_s_1_worker": round(n / s1, 2), "images_per_s_2_workers": round(n / s2, 2),
               "scaling_ratio": round(s1 / s2, 3), "identical_across_workers": identical,
               f"peak_rss_mb_{small // 1000}k" if small % 1000 == 0 else f"peak_rss_mb_{small}": round(rss_small, 1),
               f"peak_rss_mb_{large // 1000}k" if large % 1000 == 0 else f"peak_rss_mb_{large}": round(rss_large, 1),
               "rss_ratio": round(rss_large / rss_small, 3)}
        beam_tool = os.path.join(ROOT, "tools", "make_tfrecords_beam.py")
        if os.path.isfile(beam_tool):
            sb, _ = _run([beam_tool, f"--output_dir={tmp}/beam", f"--num_images={n}"], monitor=False)
            res["beam_images_per_s"] = round(n / sb, 2)
            res["beam_identical_to_local"] = _shards(f"{tmp}/beam") == _shards(f"{tmp}/w1")
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
