"""Production data improves the model, the device protocol: bench/real_mix.py's learning curve on a GPU.

On 2 CPU cores bench/real_mix.py's detectors stay at the floor (bench/results/real_mix_cpu.json:
mAP@0.5 0.014 with no real photo, 0.002 with 20 per brand), so the curve says nothing there. This
protocol trains bench/transfer_gpu.py's detector instead (the OD API's stack does not exist on the
device machine; see that file), every arm in one process with the same number of steps.

Protocol (fixed):
- Real photos: FlickrLogos-27 as prepared by bench/device_prepare.py (at most 400 px a side).
- Brands: bench/real_mix.py's BRANDS (apple, bmw, google, sprite, vodafone: 30 photos each), one
  detector for all of them.
- Split: bench/real_mix.py's (split_brands: each brand's photos sorted by file name, shuffled with
  SPLIT_SEED and the brand's position; the first TRAIN_POOL (20) are its train pool, the rest, 10
  per brand, its test part). Test photos: every brand's test part, plus as many photos showing none
  of the brands (synth.realeval.split_for_brands' negatives, first by image id). Backgrounds: the
  remaining photos showing none of the brands (never a test photo, never a pool photo).
- Composites: one set, bench/transfer.py's realism arm (the generator's defaults) at 288x384,
  --num_images, seed 1, shared by every arm.
- Arms: realK for K in --ks (default 0, 5, 10, 20): the composites, plus the first K photos of
  each brand's train pool with their boxes of the brands (other brands' boxes are left unlabelled,
  as bench/real_mix.py's import does). In every batch each sample is, with probability
  --real_weight (0.2), one of those real photos instead of a composite (real0 never draws one).
- Detector, schedule and evaluation: bench/transfer_gpu.py's (ResNet-18 + FPN Faster R-CNN from
  scratch, SGD with warm-up then cosine, batch 16; pycocotools mAP@0.5, mAP@[.5:.95] and AR@100
  per brand and mean on the test photos).

    bash bench/device_transfer.sh --real_mix          # on the device, after bench/device_prepare.py

Writes OUT/real_mix_gpu.json (the split written down, the curve) and OUT/real_mix_gpu.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import real_mix, transfer_gpu  # noqa: E402
from bench.transfer_gpu import log  # noqa: E402
from synth import realeval  # noqa: E402

ARM = "realism"


def mix_split(real: realeval.RealPhotos, brands) -> tuple[dict, realeval.Split]:
    """({brand: {"train": [image ids], "test": [image ids]}}, the test Split) for `brands`."""
    coco = {"images": list(real.images.values()), "annotations": real.annotations,
            "categories": [{"id": k, "name": v} for k, v in real.categories.items()]}
    by_file = {im["file_name"]: i for i, im in real.images.items()}
    parts = {b: {k: [by_file[f] for f in v[k]] for k in ("train", "test")}
             for b, v in real_mix.split_brands(coco, list(brands)).items()}
    whole = realeval.split_for_brands(real, brands)
    test = sorted(i for b in brands for i in parts[b]["test"])
    both = set(test) & {i for b in brands for i in parts[b]["train"]}
    if both:  # a photo with boxes of two brands, in one brand's pool and the other's test part
        raise SystemExit(f"real_mix_gpu: photos in a train pool and a test part at once: "
                         f"{sorted(real.images[i]['file_name'] for i in both)[:5]}")
    split = realeval.Split(tuple(brands), tuple(test), tuple(sorted(whole.negatives)[:len(test)]),
                           whole.backgrounds)
    return parts, split


def real_samples(real: realeval.RealPhotos, brands, ids) -> list:
    """[(RGB uint8 array, (boxes xyxy float32, labels int64))] of the photos `ids`, with their boxes
    of `brands` only (label = position in `brands` + 1)."""
    import cv2
    import numpy as np

    label = {real.category_id(b): k + 1 for k, b in enumerate(brands)}
    out = []
    for i in ids:
        anns = [a for a in real.annotations if a["image_id"] == i and a["category_id"] in label]
        img = cv2.imread(real.path(i), cv2.IMREAD_COLOR)
        if img is None:
            raise SystemExit(f"real_mix_gpu: {real.path(i)} cannot be read")
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], np.float32)
        out.append((np.ascontiguousarray(img[:, :, ::-1]),
                    (boxes.reshape(-1, 4), np.array([label[a["category_id"]] for a in anns], np.int64))))
    return out


def plot(report: dict, path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ks = sorted(int(k) for k in report["curve"])
    ax.plot(ks, [report["curve"][str(k)] for k in ks], "o-")
    ax.set_xlabel("real labelled photos per brand (0: synthetic only)")
    ax.set_ylabel("mean mAP@0.5 on the test photos")
    p = report["protocol"]
    ax.set_title(f"{len(p['brands'])} brands, {p.get('steps_done', '?')} steps of batch {p['batch']}, on {p['device']}")
    ax.set_xticks(ks)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    transfer_gpu.add_run_args(p)
    p.add_argument("--brands", default=",".join(real_mix.BRANDS))
    p.add_argument("--ks", default=",".join(str(k) for k in real_mix.ARMS), help="real photos per brand, one arm each")
    p.add_argument("--real_weight", type=float, default=0.2, help="a sample's probability of being a real photo")
    a = p.parse_args(argv)
    t0 = time.time()
    import torch

    brands = tuple(b for b in a.brands.split(",") if b)
    ks = sorted({int(k) for k in a.ks.split(",") if k})
    if ks and ks[-1] > real_mix.TRAIN_POOL:
        raise SystemExit(f"--ks: {ks[-1]} real photos per brand asked, the train pool holds {real_mix.TRAIN_POOL}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    log(f"torch {torch.__version__} on {device}")
    os.makedirs(a.out, exist_ok=True)
    real = realeval.load_real(a.real)
    parts, split = mix_split(real, brands)
    g = transfer_gpu.generate([ARM], a.real, a.work, a.num_images, a.workers, brands=brands, real=real, split=split)
    if ARM not in g["arms"]:
        raise SystemExit("real_mix_gpu: the composites could not be generated (see the log above)")
    gt = realeval.ground_truth(real, split)
    data = transfer_gpu.load_shards(g["arms"][ARM]["data_dir"])
    models = []
    for k in ks:
        pool = [i for b in brands for i in parts[b]["train"][:k]]
        models.append(transfer_gpu.Arm(f"real{k}", data, device, seed=0, steps=a.steps, lr=a.lr,
                                       num_classes=len(brands), real=real_samples(real, brands, pool),
                                       real_weight=a.real_weight))
        log(f"loaded real{k}: {models[-1].n} composites, {len(pool)} real photos")
    report = {"protocol": {"detector": "torchvision FasterRCNN resnet18-FPN from scratch (bench/transfer_gpu.py)",
                           "image_hw": transfer_gpu.IMAGE_HW, "composites": a.num_images, "composite_arm": ARM,
                           "batch": a.batch, "lr": a.lr, "steps_asked": a.steps, "brands": list(brands),
                           "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                           "real_weight": a.real_weight, "split_seed": real_mix.SPLIT_SEED,
                           "train_pool_per_brand": real_mix.TRAIN_POOL, "generation_s": g["arms"][ARM]["seconds"]},
              "split": {b: {k: [real.images[i]["file_name"] for i in v] for k, v in parts[b].items()} for b in brands},
              "test_photos": {"positives": len(split.positives), "negatives": len(split.negatives),
                              "boxes": len(gt["annotations"])}, "arms": {}, "curve": {}}
    steps_done, train_s = transfer_gpu.train_arms(models, a.steps, a.batch, t0, a.train_deadline_s)
    report["protocol"]["steps_done"] = steps_done
    report["protocol"]["train_seconds_all_arms"] = round(train_s, 1)
    for k, m in zip(ks, models):
        scores = realeval.evaluate(gt, transfer_gpu.detect(m.model, real, gt, device))
        report["arms"][m.name] = {"real_per_brand": k, "real_samples_drawn": m.real_drawn,
                                  "loss_every_50": m.losses, **scores}
        report["curve"][str(k)] = scores["map50_mean"]
        log(f"{m.name}: mAP@.5 {scores['map50_mean']:.3f} mAP {scores['map_mean']:.3f} AR@100 "
            f"{scores['ar100_mean']:.3f} ({m.real_drawn} real samples drawn)")
        with open(os.path.join(a.out, "real_mix_gpu.json"), "w") as f:
            json.dump(report, f, indent=1)
    try:
        plot(report, os.path.join(a.out, "real_mix_gpu.png"))
    except ImportError as e:  # the device may lack matplotlib: the JSON holds the curve
        log(f"no plot ({e})")
    log(f"done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
