"""Header benchmark (bench/out/headers.json): HTML pages rendered and written, how many of the
DOM's headers get a box, and the transfer figure: a detector trained on pages of one set of HTML
sources, scored on pages of other, unseen sources.

    python bench/headers.py --smoke        # toy scale, proves it runs: headers_smoke.json (numbers meaningless)
    python bench/headers.py --quick        # the quick protocol (about 20 min on 2 cores): headers_quick.json
    python bench/headers.py                # the full protocol: headers.json
    python bench/headers.py --skip_transfer           # throughput and header coverage only
    python bench/headers.py --source=mysite=/srv/docs::**/*.html   # other eval sources
    python bench/headers.py --template=faster_rcnn_resnet50_v1_headers \
        --checkpoint=workspace/pretrained/faster_rcnn_resnet50_v1_640x640_coco17_tpu-8/checkpoint/ckpt-0
                                       # the same protocol, fine-tuning a COCO checkpoint

Throughput (`measure`, also run by `make bench`): tools/make_header_tfrecords.py's job on the
embedded default in one process, one browser, BENCH_HEADER_IMAGES images (default 60; quick 30,
smoke 6), after a warm-up run of 4 images. Reports pages_per_s_per_core (images rendered,
labelled, encoded and written per second), browser_start_s (one Chromium launch), and from
params.jsonl: headers in the DOM of the pages as drawn, the share that got a box, the share
among those inside the visible area, and the count of each reason a header got no box; the
same per mode (screen, print).

Transfer protocol (fixed; figures are comparable only under it):
- Train: the embedded default (`html { builtin: "package_docs" }`: the installed Python
  packages' Markdown descriptions as HTML, drawn CSS themes, screen and printed pages, camera),
  the default header config with num_images = TRAIN_IMAGES, seed 1, 10 % val.
- In-domain figure: the same model on that val split (pages of the same sources and themes).
- Eval sources (SOURCES): real HTML documentation found on the machine, each with its OWN CSS:
    nodejs_api       /usr/share/doc/nodejs/api/*.html (Node.js API docs)
    valgrind_manual  /usr/share/doc/valgrind/html/*.html (DocBook output, vg_basic.css)
    npm_docs         /usr/lib/node_modules/npm/docs/output/**/*.html (npm's docs, inline styles)
    rustdoc_std      ~/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html/std/**/*.html
                     (rustdoc; its static.files/ two folders up: the source's root is rust/html)
  A source whose folder or files are missing on a machine is reported under skipped_sources and
  left out of the mean, never silently. --source=NAME=DIR[::PATTERN] replaces the list (repeat it).
- Per source, EVAL_PAGES files drawn from its sorted file list with
  np.random.default_rng([SAMPLE_SEED, crc32(name)]) (the drawn files are written to the output);
  EVAL_IMAGES images rendered from them (each image draws its page, as in any header run, so a
  page may be used twice and another not at all: distinct_pages in the output says how many
  were used) by the same renderer (header boxes from the DOM, one
  class `header`) with no theme (the pages' own CSS) and no camera; screen sizes, printed-page
  share and paper as in training; network requests (web fonts) blocked and the page rendered
  without them; pages up to 200,000 px tall; page scripts off; seed 2; own shards.
- Detector: pipelines/small_cpu_headers.config (Faster R-CNN ResNet-50, 512 px aspect-keeping
  resizer, wide anchors, batch 1), from scratch (no checkpoint can be downloaded here),
  tools/configure_pipeline.py + tools/model_main_tf2.py for STEPS steps, scored once per eval
  set with synth.evaluation.evaluate_once (tools/evaluate.py's core: the OD API's COCO eval
  loop; input pattern = a source's shards), in one process.
- Metric: COCO mAP@0.5 (DetectionBoxes_Precision/mAP@.50IOU); with the one class `header` it
  is the header class's AP. Per source, their mean (transfer_map50_mean), and in-domain.
  full: TRAIN_IMAGES 1,500, STEPS 1,500, EVAL_PAGES 100, EVAL_IMAGES 100 per source;
  quick: 240, 150, 20, 20; smoke: 12, 2, 3, 3 (its numbers mean nothing). Measured here: full
  took 71 min on 2 cores (bench/results/headers_full_cpu.json: rendering 1,500 train pages
  10 min, 400 eval pages about 5, training 52 at 1.3 s per step on quiet cores and up to 3.9
  under other load, evaluation 5); quick about 20 min. From scratch on CPU even full teaches the
  detector little (in-domain mAP@0.5 0.026): quick steers, full measures what CPU training can.
Everything is written under --work_dir (default bench/out/headers-work-PROTOCOL/); a rerun
finishes interrupted datasets and skips finished evaluations.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from synth import dataset  # noqa: E402
from synth.html import config as hconfig, job, render  # noqa: E402

OUT = os.path.join(ROOT, "bench", "out")
OUTSIDE = ("off-page", "crosses the page's edge", "not on the printed page")
SOURCES = {  # name: (folder, glob pattern under it); the folder is the source's root
    "nodejs_api": ("/usr/share/doc/nodejs/api", "*.html"),
    "valgrind_manual": ("/usr/share/doc/valgrind/html", "*.html"),
    "npm_docs": ("/usr/lib/node_modules/npm/docs/output", "**/*.html"),
    "rustdoc_std": ("~/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html", "std/**/*.html"),
}
PROTOCOLS = {
    "full": {"train_images": 1500, "steps": 1500, "eval_pages": 100, "eval_images": 100, "throughput_images": 60},
    "quick": {"train_images": 240, "steps": 150, "eval_pages": 20, "eval_images": 20, "throughput_images": 30},
    "smoke": {"train_images": 12, "steps": 2, "eval_pages": 3, "eval_images": 3, "throughput_images": 6},
}
SAMPLE_SEED = 12
TEMPLATE = "small_cpu_headers"
MAP50 = "DetectionBoxes_Precision/mAP@.50IOU"
EVAL_CONFIG = """\
# An eval source of bench/headers.py: its own CSS (no theme), no camera.
{pages}
num_images: {n}
val_fraction: 0
num_train_shards: 1
num_val_shards: 1
seed: 2
classes: HEADER
keep_pages_without_headers: true
skip_pages_requesting_network: false
max_page_height_px: 200000
page_timeout_s: 30
screen {{ min_width: 640 max_width: 1024 min_height: 480 max_height: 800 }}
print {{ probability: 0.3 }}
theme {{ probability: 0 }}
camera {{ enabled: false }}
"""


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


def _params(data_dir: str) -> list[dict]:
    with open(os.path.join(data_dir, dataset.PARAMS), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


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
        params = _params(os.path.join(tmp, "run"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    by_mode = {m: header_shares([p for p in params if p["mode"]["mode"] == m]) for m in ("screen", "print")}
    return {"num_images": n, "source": "embedded default (package_docs)", "workers": 1,
            "pages_per_s_per_core": round(n / seconds, 3), "seconds": round(seconds, 2),
            "browser_start_s": round(start_s, 3), "skipped_pages": len(s.skipped),
            "rejected": {k: v for split in s.counts.values() for k, v in split["rejected"].items()},
            "headers": header_shares(params), "by_mode": by_mode, "machine_cores": os.cpu_count()}


# -- transfer ---------------------------------------------------------------------------------

def parse_source(arg: str) -> tuple[str, tuple[str, str]]:
    """NAME=DIR[::PATTERN] -> (name, (dir, pattern)); pattern default **/*.html."""
    name, sep, rest = arg.partition("=")
    if not sep or not name or not rest:
        raise SystemExit(f"--source {arg!r}: expected NAME=DIR[::PATTERN]")
    folder, _, pattern = rest.partition("::")
    return name, (folder, pattern or "**/*.html")


def sample_source(name: str, folder: str, pattern: str, n: int) -> tuple[str, list[str]]:
    """(root, the drawn files relative to it); FileNotFoundError with the reason when the
    source is missing on this machine."""
    root = os.path.abspath(os.path.expanduser(folder))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"folder {root} does not exist on this machine")
    files = sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(glob.escape(root), pattern),
                                                               recursive=True) if os.path.isfile(p))
    if not files:
        raise FileNotFoundError(f"no file matches {pattern!r} under {root}")
    rng = np.random.default_rng([SAMPLE_SEED, zlib.crc32(name.encode())])
    order = rng.permutation(len(files))[: min(n, len(files))]
    return root, [files[i] for i in sorted(order)]


def eval_config_text(root: str, files: list[str], n_images: int) -> str:
    def q(s):
        return json.dumps(s, ensure_ascii=False)  # a text-format string literal: quotes, backslashes escaped
    pages = "\n".join(f"html {{ glob: {q(glob.escape(os.path.join(root, f)))} root: {q(root)} }}" for f in files)
    return EVAL_CONFIG.format(pages=pages, n=n_images)


def _tool(name: str, args: list[str], log: str) -> float:
    """Runs tools/NAME.py (this checkout's synth/) with its output in `log`; its wall time."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, os.path.join(ROOT, "tools", name + ".py"), *args]
    t = time.perf_counter()
    with open(log, "a", encoding="utf-8") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    if r.returncode != 0:
        with open(log, encoding="utf-8") as f:
            tail = "".join(f.readlines()[-25:])
        raise SystemExit(f"headers: tools/{name}.py failed (exit {r.returncode}); last lines of {log}:\n{tail}")
    return time.perf_counter() - t


def _generate(cfg, out: str, workers: int) -> dict:
    """Generates the dataset (or finishes an interrupted one; a finished one is kept) and
    summarises it from its params.jsonl and manifest."""
    t = time.perf_counter()
    done = dataset.existing_outputs(out) and not os.path.isdir(os.path.join(out, ".work"))
    if not done:
        job.generate_headers(cfg, out, show_progress=True, workers=workers)
    params = _params(out)
    with open(os.path.join(out, dataset.MANIFEST), encoding="utf-8") as f:
        skipped = json.load(f).get("skipped_inputs", [])
    return {"images": len(params), "seconds": None if done else round(time.perf_counter() - t, 1),
            "distinct_pages": len({p["page"] for p in params}), "skipped_pages": len(skipped),
            "skipped_reasons": [f"{k['path']}: {k['reason']}" for k in skipped][:10],
            "headers": header_shares(params)}


def _write_config(path: str, text: str, stale: list[str]) -> None:
    """Writes a generation config; when an earlier run wrote a different one there, the
    folders in `stale` (its dataset, its evaluation) are removed first."""
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            if f.read() != text:
                for d in stale:
                    shutil.rmtree(d, ignore_errors=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _evaluate(run_dir: str, name: str, pattern: str | None = None) -> dict:
    """COCO metrics of the run's checkpoint on the pipeline's eval input (or `pattern`'s shards),
    with synth.evaluation (what tools/evaluate.py runs), in this process: TensorFlow starts
    once for all the evaluations. A finished evaluation (its metrics.json) is read back."""
    out = os.path.join(run_dir, f"eval_{name}")
    path = os.path.join(out, "metrics.json")
    t = time.perf_counter()
    if not os.path.isfile(path):
        from synth import evaluation

        evaluation.evaluate_once(os.path.join(run_dir, "pipeline.config"), run_dir, out, pattern)
    with open(path, encoding="utf-8") as f:
        m = json.load(f)["metrics"]
    return {"map50": round(m[MAP50], 4), "map": round(m["DetectionBoxes_Precision/mAP"], 4),
            "ar100": round(m["DetectionBoxes_Recall/AR@100"], 4), "eval_seconds": round(time.perf_counter() - t, 1)}


def run_folder(work: str, template: str, checkpoint: str | None) -> str:
    """The training run's folder: WORK/run for the protocol's own detector; another detector (a
    template, a checkpoint to fine-tune) gets a folder of its own, so that a rerun never reads back
    another detector's evaluations."""
    if template == TEMPLATE and not checkpoint:
        return os.path.join(work, "run")
    tag = f"{zlib.crc32(os.path.abspath(checkpoint).encode()):08x}" if checkpoint else "scratch"
    return os.path.join(work, f"run-{template}-{tag}")


def transfer(protocol: str, sources: dict, work: str, workers: int, template: str = TEMPLATE,
             checkpoint: str | None = None) -> dict:
    spec = PROTOCOLS[protocol]
    t0 = time.perf_counter()
    os.makedirs(work, exist_ok=True)
    log = os.path.join(work, "tools.log")
    train_dir = os.path.join(work, "data", "train")
    print(f"headers: train data, {spec['train_images']} images of the embedded default -> {train_dir}", flush=True)
    cfg = hconfig.with_overrides(hconfig.load(None), num_images=spec["train_images"], seed=1)
    train = _generate(cfg, train_dir, workers)
    evals, skipped_sources = {}, {}
    for name, (folder, pattern) in sources.items():
        try:
            root, files = sample_source(name, folder, pattern, spec["eval_pages"])
        except FileNotFoundError as exc:
            skipped_sources[name] = str(exc)
            print(f"headers: eval source {name} skipped: {exc}", flush=True)
            continue
        d = os.path.join(work, "data", name)
        cfg_path = os.path.join(work, f"{name}.config")
        _write_config(cfg_path, eval_config_text(root, files, spec["eval_images"]),
                      [d, os.path.join(work, "run", f"eval_{name}")])
        print(f"headers: eval source {name}: {len(files)} pages drawn under {root}", flush=True)
        evals[name] = {"root": root, "pattern": pattern, "pages_drawn": files,
                       **_generate(hconfig.load(cfg_path), d, workers)}
    run_dir = run_folder(work, template, checkpoint)
    steps = spec["steps"]
    _tool("configure_pipeline", [f"--template={template}", f"--data_dir={train_dir}", f"--run_dir={run_dir}",
                                 f"--num_steps={steps}", *([f"--checkpoint={checkpoint}"] if checkpoint else [])], log)
    start = f"fine-tuning {checkpoint}" if checkpoint else "from scratch"
    print(f"headers: training {steps} steps ({template}, {start}); log {log}", flush=True)
    train_s = _tool("model_main_tf2", [f"--pipeline_config_path={run_dir}/pipeline.config", f"--model_dir={run_dir}",
                                       f"--num_train_steps={steps}", f"--checkpoint_every_n={steps}"], log)
    print("headers: evaluating in-domain (the train data's val split)", flush=True)
    in_domain = {"images": sum(1 for p in _params(train_dir) if p["split"] == "val"),
                 **_evaluate(run_dir, "in_domain")}
    for name in evals:
        print(f"headers: evaluating on {name}", flush=True)
        shards = dataset.shard_pattern(os.path.join(work, "data", name), "train")
        evals[name].update(_evaluate(run_dir, name, shards))
    scored = [e["map50"] for e in evals.values()]
    return {"protocol": protocol, **{k: spec[k] for k in ("train_images", "steps", "eval_pages", "eval_images")},
            "template": template, "checkpoint": checkpoint or "none (from scratch)", "sample_seed": SAMPLE_SEED,
            "metric": MAP50 + " (one class: header)", "train": train, "train_seconds": round(train_s, 1),
            "in_domain": in_domain, "sources": evals, "skipped_sources": skipped_sources,
            "transfer_map50_mean": round(float(np.mean(scored)), 4) if scored else None,
            "transfer_map50": {k: v["map50"] for k, v in evals.items()}, "in_domain_map50": in_domain["map50"],
            "seconds_total": round(time.perf_counter() - t0, 1)}


def keep_transfer(result: dict, path: str | None = None) -> dict:
    """`result` with the "transfer" entry of an existing headers.json kept (make bench
    measures throughput only and must not erase a transfer figure measured before)."""
    path = path or os.path.join(OUT, "headers.json")
    if "transfer" not in result and os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                old = json.load(f)
        except (OSError, ValueError):
            old = {}
        if "transfer" in old:
            result = {**result, "transfer": old["transfer"]}
    return result


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--quick", action="store_true", help="the quick protocol (about 20 min on 2 cores)")
    p.add_argument("--smoke", action="store_true", help="toy scale: proves it runs; numbers mean nothing")
    p.add_argument("--source", action="append", default=None,
                   help="NAME=DIR[::PATTERN] (repeat): eval sources instead of the fixed SOURCES")
    p.add_argument("--skip_transfer", action="store_true", help="throughput and header coverage only")
    p.add_argument("--work_dir", default=None, help="default bench/out/headers-work-PROTOCOL/")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="rendering processes for the transfer datasets (one browser each)")
    p.add_argument("--template", default=TEMPLATE,
                   help="pipeline template of the detector (default: the protocol's, from scratch); with "
                        "--checkpoint, e.g. faster_rcnn_resnet50_v1_headers")
    p.add_argument("--checkpoint", default=None,
                   help="a checkpoint to fine-tune (a COCO zoo checkpoint's ckpt-0 prefix, see "
                        "tools/download_checkpoint.py); recorded in the output")
    a = p.parse_args(argv)
    if a.checkpoint and not os.path.isfile(a.checkpoint + ".index"):
        raise SystemExit(f"--checkpoint {a.checkpoint!r}: no {a.checkpoint}.index (give the checkpoint's prefix, "
                         "e.g. .../checkpoint/ckpt-0)")
    if a.quick and a.smoke:
        raise SystemExit("give at most one of --quick, --smoke")
    protocol = "smoke" if a.smoke else "quick" if a.quick else "full"
    sources = dict(map(parse_source, a.source)) if a.source else dict(SOURCES)
    res = measure(PROTOCOLS[protocol]["throughput_images"])
    if not a.skip_transfer:
        work = a.work_dir or os.path.join(OUT, f"headers-work-{protocol}")
        res["transfer"] = transfer(protocol, sources, work, a.workers, a.template, a.checkpoint)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, {"full": "headers.json", "quick": "headers_quick.json",
                              "smoke": "headers_smoke.json"}[protocol])
    res = keep_transfer(res, path)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)
    os.replace(path + ".tmp", path)
    print(json.dumps({k: v for k, v in res.items() if k != "transfer"}, indent=2))
    if "transfer" in res:
        t = res["transfer"]
        print(f"in-domain mAP@0.5 {t['in_domain_map50']}; transfer: {t['transfer_map50']} "
              f"(mean {t['transfer_map50_mean']}); skipped sources: {t['skipped_sources'] or 'none'}")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
