"""Scale benchmark (bench/out/scale.json): parallel generation and memory.

- images_per_s_1_worker, images_per_s_2_workers, scaling_ratio: the embedded default at
  640x480 through tools/make_tfrecords.py (a fresh process each, start-up included), 2,000
  images: about 3 s of each run is start-up (imports, inputs, the background audit), which
  at a few hundred images would hide how the work itself scales. The 1- and 2-worker runs
  alternate `BENCH_SCALE_REPEATS` times (default 2) and each rate is the best of its runs: on a
  shared virtual machine a neighbour's load comes and goes, and the best run is the one it
  disturbed least;
- independent_pair_ratio: in the same rounds, two 1-worker runs of half the images each, started
  together as independent processes (no pool, no shared files, each with its own start-up):
  (1-worker seconds) / (seconds until both finished). It is what this machine's two cores give
  this workload with no coordination at all: the reference for scaling_ratio here (on two
  independent cores it is close to 2). Each of the pair repeats the audit and the surface
  analyses that the pool's workers share, so the pool can beat it: scaling_efficiency =
  scaling_ratio / independent_pair_ratio is above 1 when it does;
- cpu_pair_ratio: the same comparison for a fixed single-threaded kernel of the operations the
  engine spends its time in (OpenCV filters and NumPy arithmetic on a 640x480 image, a Python loop
  around them): 2 x (seconds alone) / (seconds for two copies started together). It has no
  start-up and nothing to share, so it is the machine's own figure: a virtual machine whose two
  vCPUs share a physical core, or a busy host, shows it well under 2;
- identical_across_workers: the 1- and 2-worker shards are byte-identical;
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
TOOL = os.path.join("tools", "make_tfrecords.py")


def _start(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _wait(proc: subprocess.Popen, args: list[str]) -> None:
    err = proc.communicate()[1]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{err.decode()[-3000:]}")


def _run(args: list[str], monitor: bool = True) -> tuple[float, float]:
    """(seconds, peak RSS MB of the process tree) of one tool run. The memory monitor walks
    /proc every 0.1 s; on 2 busy cores that cost the 2-worker run 5-10 % of its rate, so timed
    runs pass monitor=False (and get 0.0 for the memory)."""
    t = time.perf_counter()
    proc = _start(args)
    root = psutil.Process(proc.pid)
    peak = 0
    while monitor and proc.poll() is None:
        try:
            procs = [root] + root.children(recursive=True)
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.1)
    _wait(proc, args)
    return time.perf_counter() - t, peak / 2**20


def _run_together(runs: list[list[str]]) -> float:
    """Seconds until every one of `runs`, started at once as separate processes, has finished."""
    t = time.perf_counter()
    procs = [_start(a) for a in runs]
    for p, a in zip(procs, runs):
        _wait(p, a)
    return time.perf_counter() - t


def kernel(rounds: int = 1500) -> None:
    """A fixed amount of single-threaded work like the engine's (see cpu_pair_ratio)."""
    import cv2
    import numpy as np

    cv2.setNumThreads(1)
    img = np.random.default_rng(0).uniform(0, 255, (480, 640, 3)).astype(np.float32)
    acc = 0.0
    for _ in range(rounds):
        g = cv2.GaussianBlur(img, (0, 0), 2.0)
        gray = cv2.cvtColor(g, cv2.COLOR_RGB2GRAY)
        acc += float(np.median(np.abs(gray[::4, ::4] - gray.mean())))
        acc += sum(i * 0.5 for i in range(2000))
    if acc < 0:
        print(acc)


def _kernel_args() -> list[str]:
    return ["-c", "import sys; sys.path.insert(0, '.'); from bench.scale import kernel; kernel()"]


def _gen(out: str, n: int, workers: int) -> list[str]:
    return [TOOL, f"--output_dir={out}", f"--num_images={n}", f"--workers={workers}", "--noprogress", "--overwrite"]


def _shards(d: str) -> dict:
    return {os.path.basename(p): open(p, "rb").read() for p in sorted(glob.glob(os.path.join(d, "*.tfrecord")))}


def _rss_key(n: int) -> str:
    return f"peak_rss_mb_{n // 1000}k" if n % 1000 == 0 else f"peak_rss_mb_{n}"


def measure() -> dict:
    n = int(os.environ.get("BENCH_SCALE_IMAGES", "2000"))
    repeats = max(1, int(os.environ.get("BENCH_SCALE_REPEATS", "2")))
    small = int(os.environ.get("BENCH_RSS_SMALL", "1000"))
    large = int(os.environ.get("BENCH_RSS_LARGE", "5000"))
    tmp = tempfile.mkdtemp(prefix="tfod-scale-")
    try:
        s1, s2, sp, k1, k2 = [], [], [], [], []
        for _ in range(repeats):
            k1.append(_run(_kernel_args(), monitor=False)[0])
            k2.append(_run_together([_kernel_args(), _kernel_args()]))
            s1.append(_run(_gen(f"{tmp}/w1", n, 1), monitor=False)[0])
            s2.append(_run(_gen(f"{tmp}/w2", n, 2), monitor=False)[0])
            sp.append(_run_together([_gen(f"{tmp}/pa", n // 2, 1), _gen(f"{tmp}/pb", n - n // 2, 1)]))
        identical = _shards(f"{tmp}/w1") == _shards(f"{tmp}/w2")
        _, rss_small = _run(_gen(f"{tmp}/r1", small, 2))
        _, rss_large = _run(_gen(f"{tmp}/r5", large, 2))
        t1, t2, tp = min(s1), min(s2), min(sp)
        res = {"num_images": n, "repeats": repeats,
               "images_per_s_1_worker": round(n / t1, 2), "images_per_s_2_workers": round(n / t2, 2),
               "scaling_ratio": round(t1 / t2, 3), "independent_pair_ratio": round(t1 / tp, 3),
               "scaling_efficiency": round(tp / t2, 3), "cpu_pair_ratio": round(2 * min(k1) / min(k2), 3),
               "seconds_1_worker": [round(s, 1) for s in s1], "seconds_2_workers": [round(s, 1) for s in s2],
               "seconds_independent_pair": [round(s, 1) for s in sp],
               "seconds_kernel_alone": [round(s, 2) for s in k1], "seconds_kernel_pair": [round(s, 2) for s in k2],
               "identical_across_workers": identical,
               _rss_key(small): round(rss_small, 1), _rss_key(large): round(rss_large, 1),
               "rss_ratio": round(rss_large / rss_small, 3)}
        beam_tool = os.path.join(ROOT, "tools", "make_tfrecords_beam.py")
        if os.path.isfile(beam_tool):
            sb, _ = _run([beam_tool, f"--output_dir={tmp}/beam", f"--num_images={n}"], monitor=False)
            res["beam_images_per_s"] = round(n / sb, 2)
            res["beam_identical_to_local"] = _shards(f"{tmp}/beam") == _shards(f"{tmp}/w1")
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
