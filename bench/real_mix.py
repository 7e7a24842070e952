"""Learning-curve benchmark (bench/out/real_mix.json, real_mix.png): how much a few real labelled
photos per brand add to a detector trained on synthetic composites, on FlickrLogos-27.

Protocol (fixed; the split is written to the output):
- data: FlickrLogos-27 as ../shared/data/flickrlogos27 (--data): instances.json (COCO), images/,
  logos/ (reference artwork on a white page);
- brands: --brands (default BRANDS); one detector for all of them (one class each, in that order);
- split: for each brand, its photos (images with a box of that brand), sorted by file name and
  shuffled with np.random.default_rng([SPLIT_SEED, brand's position]); the first TRAIN_POOL (20)
  are its train part, the rest its test part (FlickrLogos-27 has 24..30 photos per brand, so
  4..10 test photos each: use more --brands for a steadier mean);
- synthetic data: tools/make_tfrecords.py with each brand's logo (border_matte { }) on the photos
  that have no box (FlickrLogos-27's "none" photos, so no background shows a trained logo),
  --num_images composites at 480x640 (10 % val), seed 1;
- arms: k real photos per brand, k in ARMS (0: synthetic only); the first k of each brand's train
  part imported with tools/import_labels.py onto the synthetic label map and mixed in training
  with tools/configure_pipeline.py --dataset=SYNTH:(1 - w) --dataset=REAL:w (w = --real_weight);
  every arm: the same template, start (--checkpoint, or from scratch), batch and --num_steps;
- metric: COCO mAP@0.5 (DetectionBoxes_Precision/mAP@.50IOU) of each arm's final checkpoint on
  every brand's test part (imported as one dataset), with the OD API's eval loop (tools/evaluate.py).

A meaningful curve needs a COCO-pretrained checkpoint (--template=faster_rcnn_resnet50_v1_640x640
--checkpoint=...) and thousands of steps per arm: hours on a GPU, days on these CPUs.
With --work_dir, a rerun resumes: the synthetic data is kept when its config is unchanged, and an
arm whose evaluation (runs/realK/eval_once/metrics.json) is of its final step (--num_steps) under
the same template, start, batch and weight is read back instead of trained again; work_dir's
stages.json records what each finished stage was run with.

--smoke runs the whole protocol at toy scale (2 brands, 16 composites, 2 steps, arms 0 and 5) to
prove it runs; it writes real_mix_smoke.json, whose numbers mean nothing.

    python bench/real_mix.py --smoke
    python bench/real_mix.py --template=faster_rcnn_resnet50_v1_640x640 --num_steps=5000 \\
        --checkpoint=workspace/pretrained/faster_rcnn_resnet50_v1_640x640_coco17_tpu-8/checkpoint/ckpt-0
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

OUT = os.path.join(ROOT, "bench", "out")
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "flickrlogos27")
BRANDS = ("apple", "bmw", "google", "sprite", "vodafone")  # 30 photos each, the most of any brand
ARMS = (0, 5, 10, 20)
TRAIN_POOL = 20
SPLIT_SEED = 27
MAP50 = "DetectionBoxes_Precision/mAP@.50IOU"


def split_brands(coco: dict, brands: list[str]) -> dict:
    """{brand: {"train": [file names], "test": [file names]}} (see the protocol)."""
    cat = {c["id"]: c["name"] for c in coco["categories"]}
    files = {im["id"]: im["file_name"] for im in coco["images"]}
    photos: dict = {b: set() for b in brands}
    for a in coco["annotations"]:
        if cat[a["category_id"]] in photos:
            photos[cat[a["category_id"]]].add(files[a["image_id"]])
    out = {}
    for i, b in enumerate(brands):
        names = sorted(photos[b])
        if len(names) <= TRAIN_POOL:
            raise SystemExit(f"brand {b!r} has {len(names)} photos; the protocol needs more than {TRAIN_POOL}")
        order = np.random.default_rng([SPLIT_SEED, i]).permutation(len(names))
        shuffled = [names[j] for j in order]
        out[b] = {"train": shuffled[:TRAIN_POOL], "test": shuffled[TRAIN_POOL:]}
    return out


def coco_subset(coco: dict, files: set[str], brands: list[str]) -> dict:
    """The images of `files` with their boxes of `brands` (other brands' boxes left out)."""
    keep_cats = [c for c in coco["categories"] if c["name"] in brands]
    ids = {c["id"] for c in keep_cats}
    images = [im for im in coco["images"] if im["file_name"] in files]
    image_ids = {im["id"] for im in images}
    anns = [a for a in coco["annotations"] if a["image_id"] in image_ids and a["category_id"] in ids]
    return {"images": images, "annotations": anns, "categories": keep_cats}


def _tool(name: str, *args: str) -> float:
    """Runs tools/NAME.py with this checkout's synth/; returns its wall time."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    t = time.perf_counter()
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", name + ".py"), *args], env=env, cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"tools/{name}.py {' '.join(args)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return time.perf_counter() - t


def synthetic_config(work: str, data: str, brands: list[str], num_images: int, size: tuple[int, int]) -> str:
    logos = "".join(f'logo {{ class_name: "{b}" path: "{os.path.join(data, "logos", b + ".png")}" '
                    "border_matte { } }\n" for b in brands)
    path = os.path.join(work, "synthetic.config")
    with open(path, "w", encoding="utf-8") as f:
        f.write(logos + textwrap.dedent(f"""\
            background {{ directory: "{os.path.join(work, 'backgrounds')}" }}
            image_size {{ height: {size[0]} width: {size[1]} }}
            num_images: {num_images}
            val_fraction: 0.1
            num_train_shards: {max(1, num_images // 500)}
            seed: 1
            placement {{ min_objects: 1 max_objects: 2 }}
            """))
    return path


def _stages(work: str) -> dict:
    path = os.path.join(work, "stages.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _save_stages(work: str, stages: dict) -> None:
    path = os.path.join(work, "stages.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(stages, f, indent=2)
    os.replace(path + ".tmp", path)


def _finished_arm(run_dir: str, key: dict, stages: dict, k: int) -> dict | None:
    """The arm's result when it already ran to its final step under the same settings, else None."""
    done = stages.get("arms", {}).get(str(k))
    metrics_path = os.path.join(run_dir, "eval_once", "metrics.json")
    if done is None or done.get("key") != key or not os.path.exists(metrics_path):
        return None
    with open(metrics_path, encoding="utf-8") as f:
        m = json.load(f)
    return done["result"] if m.get("step") == key["num_steps"] else None


def run(args) -> dict:
    from synth import dataset
    from synth.importing import import_labels

    brands = list(args.brands)
    with open(os.path.join(args.data, "instances.json"), encoding="utf-8") as f:
        coco = json.load(f)
    split = split_brands(coco, brands)
    # absolute: the generation config written into WORK resolves relative paths against WORK
    work = os.path.abspath(args.work_dir) if args.work_dir else tempfile.mkdtemp(prefix="tfod-real-mix-")
    args.data = os.path.abspath(args.data)
    os.makedirs(os.path.join(work, "backgrounds"), exist_ok=True)
    annotated = {a["image_id"] for a in coco["annotations"]}
    for im in coco["images"]:  # the "none" photos, linked (the data is never copied)
        link = os.path.join(work, "backgrounds", im["file_name"])
        if im["id"] not in annotated and not os.path.exists(link):
            os.symlink(os.path.join(args.data, "images", im["file_name"]), link)
    synth_dir = os.path.join(work, "data", "synthetic")
    config = synthetic_config(work, args.data, brands, args.num_images, (480, 640))
    stages = _stages(work) if args.work_dir else {}
    with open(config, encoding="utf-8") as f:
        config_text = f.read()
    gen = stages.get("generate")
    if gen and gen.get("config") == config_text and os.path.exists(os.path.join(synth_dir, dataset.LABEL_MAP)):
        timings = {"generate_s": gen["seconds"], "generate_resumed": True}
        print(f"synthetic data kept from an earlier run ({synth_dir})")
    else:
        timings = {"generate_s": round(_tool("make_tfrecords", f"--config={config}", f"--output_dir={synth_dir}",
                                             "--noprogress", "--overwrite"), 1)}
        stages = {"generate": {"config": config_text, "seconds": timings["generate_s"]}}
        if args.work_dir:
            _save_stages(work, stages)
    label_map = os.path.join(synth_dir, dataset.LABEL_MAP)

    def imported(name: str, files: set[str]) -> str:
        sub = os.path.join(work, f"{name}.json")
        with open(sub, "w", encoding="utf-8") as f:
            json.dump(coco_subset(coco, files, brands), f)
        out = os.path.join(work, "data", name)
        import_labels("coco", sub, out, images_dir=os.path.join(args.data, "images"), label_map=label_map,
                      overwrite=True, progress=False)
        return out

    test_dir = imported("test", {n for b in brands for n in split[b]["test"]})
    arms = []
    for k in args.arms:
        run_dir = os.path.join(work, "runs", f"real{k}")
        key = {"template": args.template, "checkpoint": args.checkpoint, "num_steps": args.num_steps,
               "batch_size": args.batch_size, "real_weight": args.real_weight if k else 0.0}
        done = _finished_arm(run_dir, key, stages, k)
        if done is not None:
            arms.append(dict(done, resumed=True))
            print(f"arm {k:2d} real/brand: mAP@0.5 {done['map50']:.4f}  (read back from an earlier run)")
            continue
        shutil.rmtree(run_dir, ignore_errors=True)
        mix = [f"--dataset={synth_dir}:{1 - args.real_weight if k else 1}"]
        if k:
            real = imported(f"real{k}", {n for b in brands for n in split[b]["train"][:k]})
            mix.append(f"--dataset={real}:{args.real_weight}")
        ckpt = [f"--checkpoint={args.checkpoint}"] if args.checkpoint else []
        _tool("configure_pipeline", f"--template={args.template}", *mix, f"--eval_data_dir={test_dir}",
              f"--run_dir={run_dir}", f"--num_steps={args.num_steps}", f"--batch_size={args.batch_size}", *ckpt)
        config = os.path.join(run_dir, "pipeline.config")
        train_s = _tool("model_main_tf2", f"--pipeline_config_path={config}", f"--model_dir={run_dir}",
                        f"--num_train_steps={args.num_steps}", f"--checkpoint_every_n={args.num_steps}")
        eval_s = _tool("evaluate", f"--pipeline_config_path={config}", f"--checkpoint={run_dir}")
        with open(os.path.join(run_dir, "eval_once", "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)["metrics"]
        arms.append({"real_per_brand": k, "real_weight": args.real_weight if k else 0.0, "map50": metrics[MAP50],
                     "map": metrics["DetectionBoxes_Precision/mAP"], "train_s": round(train_s, 1),
                     "eval_s": round(eval_s, 1)})
        if args.work_dir:
            stages.setdefault("arms", {})[str(k)] = {"key": key, "result": arms[-1]}
            _save_stages(work, stages)
        print(f"arm {k:2d} real/brand: mAP@0.5 {metrics[MAP50]:.4f}  (train {train_s:.0f} s, eval {eval_s:.0f} s)")
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return {"protocol": "see bench/real_mix.py", "smoke": args.smoke, "brands": brands, "template": args.template,
            "checkpoint": args.checkpoint or "none (from scratch)", "num_steps": args.num_steps,
            "batch_size": args.batch_size, "synthetic_images": args.num_images, "split_seed": SPLIT_SEED,
            "train_pool_per_brand": TRAIN_POOL, "test_photos": sum(len(split[b]["test"]) for b in brands),
            "split": split, **timings, "arms": arms}


def plot(result: dict, path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ks = [a["real_per_brand"] for a in result["arms"]]
    ax.plot(ks, [a["map50"] for a in result["arms"]], "o-")
    ax.set_xlabel("real labelled photos per brand (0: synthetic only)")
    ax.set_ylabel("mAP@0.5 on the test photos")
    smoke = " (smoke: meaningless)" if result["smoke"] else ""
    ax.set_title(f"{len(result['brands'])} brands, {result['num_steps']} steps{smoke}")
    ax.set_xticks(ks)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=DATA)
    p.add_argument("--brands", nargs="+", default=list(BRANDS))
    p.add_argument("--arms", nargs="+", type=int, default=list(ARMS))
    p.add_argument("--template", default="small_cpu")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--num_steps", type=int, default=2000)
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--num_images", type=int, default=2000)
    p.add_argument("--real_weight", type=float, default=0.2)
    p.add_argument("--work_dir", default=None, help="keep the datasets and runs here (default: a temp folder)")
    p.add_argument("--smoke", action="store_true", help="toy scale: proves the protocol runs")
    args = p.parse_args(argv)
    if args.smoke:
        args.brands, args.arms, args.num_steps, args.num_images, args.batch_size = args.brands[:2], [0, 5], 2, 16, 2
    result = run(args)
    os.makedirs(OUT, exist_ok=True)
    name = "real_mix_smoke" if args.smoke else "real_mix"
    with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    plot(result, os.path.join(OUT, name + ".png"))
    print(f"written: {os.path.join(OUT, name + '.json')}, {os.path.join(OUT, name + '.png')}")


if __name__ == "__main__":
    main()
