"""Header benchmark (bench/out/headers.json): HTML pages rendered and written, and how many
of the DOM's headers get a box. No training.

Runs tools/make_header_tfrecords.py's job on the embedded default (installed packages'
documentation) in one process, one browser, BENCH_HEADER_IMAGES images (default 60), after a
warm-up run of 4 images (browser start, imports). Reports
  * pages_per_s_per_core: images rendered, labelled, encoded and written per second;
  * browser_start_s: one Chromium launch (paid once per worker);
  * from params.jsonl: headers in the DOM of the pages as drawn, the share that got a box, the
    share among those inside the visible area (not off-page or across the page's edge), and
    the count of each reason a header got no box; the same per mode (screen, print).

    python bench/headers.py
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from synth.html import config as hconfig, job, render  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
OUTSIDE = ("off-page", "crosses the page's edge", "not on the printed page")


def header_shares(params: list[dict]) -> dict:
    total, boxed, inside = 0, 0, 0
    reasons: Counter = Counter()
    for p in params:
        for h in p["headers"]:
            total += 1
            if h.get("box") is not None:
                boxed += 1
            else:
                reasons[h["dropped"]] += 1
            if h.get("box") is not None or h["dropped"] not in OUTSIDE:
                inside += 1
    return {"images": len(params), "dom_headers": total, "boxed": boxed,
            "share_boxed": round(boxed / total, 4) if total else None,
            "share_boxed_of_visible_area": round(boxed / inside, 4) if inside else None,
            "no_box_reasons": dict(reasons.most_common())}


def measure(n: int | None = None) -> dict:
    n = n or int(os.environ.get("BENCH_HEADER_IMAGES", "60"))
    tmp = tempfile.mkdtemp(prefix="tfod-bench-headers-")
    try:
        t = time.perf_counter()
        with render.Renderer() as r:
            r._ensure()
        start_s = time.perf_counter() - t
        job.generate_headers(hconfig.with_overrides(hconfig.load(None), num_images=4), os.path.join(tmp, "warm"),
                             show_progress=False)
        cfg = hconfig.with_overrides(hconfig.load(None), num_images=n)
        t = time.perf_counter()
        s = job.generate_headers(cfg, os.path.join(tmp, "run"), show_progress=False, workers=1)
        seconds = time.perf_counter() - t
        with open(os.path.join(tmp, "run", "params.jsonl"), encoding="utf-8") as f:
            params = [json.loads(line) for line in f]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    by_mode = {m: header_shares([p for p in params if p["mode"]["mode"] == m]) for m in ("screen", "print")}
    return {"num_images": n, "source": "embedded default (package_docs)", "workers": 1,
            "pages_per_s_per_core": round(n / seconds, 3), "seconds": round(seconds, 2),
            "browser_start_s": round(start_s, 3), "skipped_pages": len(s.skipped),
            "rejected": {k: v for split in s.counts.values() for k, v in split["rejected"].items()},
            "headers": header_shares(params), "by_mode": by_mode, "machine_cores": os.cpu_count()}


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    res = measure()
    path = os.path.join(OUT, "headers.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=2)
    print(json.dumps(res, indent=2))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
