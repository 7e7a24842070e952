"""Real photos decide, the device protocol: every arm and every single-stage ablation in one run on a GPU.

The OD API's stack (Python 3.11, TensorFlow 2.15) does not exist on the device machine (Python 3.12,
PyTorch, no TensorFlow, nothing can be installed beyond carried wheels), so this protocol trains
torchvision's Faster R-CNN instead: the same detector family (two-stage R-CNN, RPN + RoI heads),
ResNet-18 + FPN from scratch (no pretrained weights can be fetched), BatchNorm trained.
It answers the same question as bench/transfer.py, on more arms and more training: do the
composites of an arm teach a detector to find the brands in real photos?

Protocol (fixed):
- Real photos: FlickrLogos-27 as prepared by bench/device_prepare.py (every photo scaled to at most
  400 px on its longer side, boxes scaled with it; the benchmark's split of bench/transfer.py,
  brands fedex, google, heineken, starbucks; backgrounds are never test photos).
- Composites: tools/make_tfrecords.py, 288x384, ARMS of bench/transfer.py (realism defaults, naive,
  each realism stage switched off alone, the stages off by default switched on (with_occlusion,
  with_curvature), plus the older sizes), N composites per arm, 1 or 2
  logos each, seed 1, all cores.
- Detector: fasterrcnn with resnet_fpn_backbone("resnet18"), images at 288..384 (min/max size),
  SGD momentum 0.9, lr 0.02 with 200 warm-up steps then cosine, weight decay 1e-4, batch 16,
  bf16 autocast; horizontal flips off (logos are not symmetric). All arms train in one process,
  one step each in turn, so that every arm gets exactly the same number of steps (STEPS, or fewer
  when the wall-clock deadline comes first: the steps done are recorded).
- Evaluation: synth.realeval (pycocotools) on the test photos at their prepared size:
  mAP@0.5, mAP@[.5:.95], AR@100 per brand and mean; score threshold 0.001, 100 detections per image.

Run on the device by bench/device_transfer.sh; writes OUT/transfer_gpu.json and a log.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import transfer  # noqa: E402
from synth import dataset, distribution, realeval, tfexample, tfrecord_io  # noqa: E402

BRANDS = transfer.PROTOCOLS["full"]["brands"]
IMAGE_HW = (288, 384)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def generate(arms, real_dir, work, num_images, workers, brands=BRANDS, real=None, split=None) -> dict:
    """Composites of each arm on the backgrounds of `split` (default: split_for_brands of `brands`)."""
    real = real or realeval.load_real(real_dir)
    split = split or realeval.split_for_brands(real, brands)
    bg = os.path.join(work, "backgrounds")
    n_bg = transfer._link_backgrounds(real, split, bg)
    out = {}
    for arm in arms:
        logos = os.path.abspath(os.path.join(real_dir, "logos"))
        cws = transfer.arm_colourways(arm, brands, logos, bg)
        text = transfer.arm_config(arm, brands, logos, bg, num_images, cws)
        text = text.replace(f"image_size {{ height: {transfer.IMAGE_HW[0]} width: {transfer.IMAGE_HW[1]} }}",
                            f"image_size {{ height: {IMAGE_HW[0]} width: {IMAGE_HW[1]} }}")
        d = os.path.join(work, arm)
        os.makedirs(d, exist_ok=True)
        cfg = os.path.join(d, "generation.config")
        with open(cfg, "w") as f:
            f.write(text)
        t = time.time()
        r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_tfrecords.py"), f"--config={cfg}",
                            f"--output_dir={d}/data", f"--workers={workers}", "--noprogress", "--overwrite"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            log(f"generate {arm}: FAILED\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
            continue
        out[arm] = {"data_dir": f"{d}/data", "seconds": round(time.time() - t, 1),
                    "colourways": {b: [list(c) for c in v] for b, v in cws.items()}}
        log(f"generate {arm}: {out[arm]['seconds']} s")
    return {"arms": out, "split": split, "real": real, "backgrounds": n_bg}


def load_shards(data_dir: str):
    import cv2
    import numpy as np

    images, targets = [], []
    for path in dataset.list_shards(data_dir, "train"):
        for data in tfrecord_io.read_records(path):
            ex = tfexample.decode_boxes(data)
            img = cv2.imdecode(np.frombuffer(ex["encoded"], np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
            h, w = img.shape[:2]
            b = ex["boxes"] * [h, w, h, w]
            images.append(np.ascontiguousarray(img))
            targets.append((b[:, [1, 0, 3, 2]].astype(np.float32), np.asarray(ex["class_ids"], np.int64)))
    return np.stack(images), targets


def build_model(num_classes: int):
    import torch
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, norm_layer=torch.nn.BatchNorm2d,
                                   trainable_layers=5)
    return FasterRCNN(backbone, num_classes=num_classes + 1, min_size=IMAGE_HW[0], max_size=IMAGE_HW[1],
                      box_detections_per_img=100, box_score_thresh=0.001)


class Arm:
    """One detector in training. `data` is load_shards' (images, targets); `real` optional real
    photos [(uint8 HxWx3 array, (boxes xyxy, labels))], each drawn in place of a composite with
    probability `real_weight` (bench/real_mix_gpu.py)."""

    def __init__(self, name, data, device, seed, steps, lr, num_classes=len(BRANDS), real=(), real_weight=0.0):
        import numpy as np
        import torch

        self.name = name
        imgs, targets = data
        keep = [i for i, t in enumerate(targets) if len(t[1])]  # images with objects
        self.images = torch.from_numpy(imgs[keep]).to(device)  # uint8 [N, H, W, 3] on the GPU
        self.targets = [targets[i] for i in keep]
        self.n = len(keep)
        self.real = [(torch.from_numpy(np.ascontiguousarray(im)).to(device), t) for im, t in real]
        self.real_weight = real_weight if self.real else 0.0
        torch.manual_seed(seed)
        self.model = build_model(num_classes).to(device)
        self.model.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
        self.total = steps  # set again once the time per step is known (see main)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, self._lr_factor)
        self.rng = np.random.default_rng(seed)
        self.device = device
        self.steps = 0
        self.losses = []
        self.real_drawn = 0

    def _lr_factor(self, s: int) -> float:
        warm = min(200, max(1, self.total // 5))
        return min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, self.total) / self.total))

    def step(self, batch):
        import numpy as np
        import torch

        idx = self.rng.choice(self.n, batch, replace=False)
        x = list(self.images[torch.as_tensor(idx, device=self.device)].permute(0, 3, 1, 2).float().div_(255))
        targets = [self.targets[i] for i in idx]
        if self.real_weight:  # some samples of the batch replaced by real photos
            for j in np.flatnonzero(self.rng.random(batch) < self.real_weight):
                im, targets[j] = self.real[self.rng.integers(len(self.real))]
                x[j] = im.permute(2, 0, 1).float().div_(255)
                self.real_drawn += 1
        tg = [{"boxes": torch.as_tensor(t[0], device=self.device),
               "labels": torch.as_tensor(t[1], device=self.device)} for t in targets]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            losses = self.model(x, tg)
        loss = sum(losses.values())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 10.0)
        self.opt.step()
        self.sched.step()
        self.steps += 1
        if self.steps % 50 == 0:
            self.losses.append(round(float(loss.detach()), 4))


def detect(model, real, gt, device):
    import cv2
    import numpy as np
    import torch

    model.eval()
    results = []
    with torch.no_grad():
        for im in gt["images"]:
            bgr = cv2.imread(real.path(im["id"]), cv2.IMREAD_COLOR)
            x = torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1])).to(device).permute(2, 0, 1).float() / 255
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = model([x])[0]
            for b, lab, s in zip(out["boxes"].float().cpu().numpy(), out["labels"].cpu().numpy(),
                                 out["scores"].float().cpu().numpy()):
                x0, y0, x1, y1 = (float(v) for v in b)
                results.append({"image_id": im["id"], "category_id": int(lab), "bbox": [x0, y0, x1 - x0, y1 - y0],
                                "score": float(s)})
    model.train()
    return results


def train_arms(models, steps: int, batch: int, t0: float, deadline_s: float):
    """Trains every arm one step in turn until `steps` or `deadline_s` seconds after t0, so that
    every arm gets the same number of steps; the learning-rate schedule is fitted to the deadline
    once 20 rounds are timed. Returns (steps done per arm, seconds spent)."""
    log(f"training {len(models)} arms, {steps} steps each, deadline {deadline_s:.0f} s after start")
    t_train = time.time()
    total = steps
    while models and models[0].steps < total and time.time() - t0 < deadline_s:
        for m in models:
            m.step(batch)
        if models[0].steps == 20:  # the time per round is known: fit the schedule to the deadline
            per_round = (time.time() - t_train) / 20
            total = max(40, min(steps, int((deadline_s - (time.time() - t0)) / per_round) + 20))
            for m in models:
                m.total = total
            log(f"{per_round:.2f} s per round of {len(models)} arms: {total} steps each")
        if models[0].steps % 100 == 0:
            log(f"step {models[0].steps}: " + " ".join(f"{m.name} {m.losses[-1] if m.losses else '-'}" for m in models))
    return (models[0].steps if models else 0), time.time() - t_train


def add_run_args(p: argparse.ArgumentParser) -> None:
    """The flags of a device run: data, folders, composites and training (also bench/real_mix_gpu.py's)."""
    p.add_argument("--real", required=True, help="the real photos as bench/device_prepare.py wrote them")
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--num_images", type=int, default=2000)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--train_deadline_s", type=float, default=420, help="Seconds after start when training stops.")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(p)
    p.add_argument("--arms", default=",".join(transfer.ARMS))
    a = p.parse_args()
    t0 = time.time()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    log(f"torch {torch.__version__} on {device}: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}")
    os.makedirs(a.out, exist_ok=True)
    arms = [s for s in a.arms.split(",") if s]
    g = generate(arms, a.real, a.work, a.num_images, a.workers)
    real, split = g["real"], g["split"]
    gt = realeval.ground_truth(real, split)
    gt_path = os.path.join(a.work, "gt.json")
    with open(gt_path, "w") as f:
        json.dump(gt, f)
    real_boxes = distribution.read_coco_boxes(gt_path, image_ids=set(split.positives))
    report = {"protocol": {"detector": "torchvision FasterRCNN resnet18-FPN from scratch", "image_hw": IMAGE_HW,
                           "composites_per_arm": a.num_images, "batch": a.batch, "lr": a.lr,
                           "steps_asked": a.steps, "brands": list(BRANDS)},
              "test_photos": {"positives": len(split.positives), "negatives": len(split.negatives),
                              "boxes": len(gt["annotations"])}, "arms": {}}
    models = []
    for arm, info in g["arms"].items():
        synth_boxes = distribution.read_shard_boxes(info["data_dir"])
        report["arms"][arm] = {"generation_s": info["seconds"], "colourways": info["colourways"],
                               "distribution": {"composites": distribution.summary(synth_boxes),
                                                "distances": distribution.compare(synth_boxes, real_boxes)}}
        models.append(Arm(arm, load_shards(info["data_dir"]), device, seed=0, steps=a.steps, lr=a.lr))
        log(f"loaded {arm}: {models[-1].n} composites with objects")
    steps_done, train_s = train_arms(models, a.steps, a.batch, t0, a.train_deadline_s)
    report["protocol"]["steps_done"] = steps_done
    report["protocol"]["train_seconds_all_arms"] = round(train_s, 1)
    for m in models:
        dets = detect(m.model, real, gt, device)
        scores = realeval.evaluate(gt, dets)
        report["arms"][m.name].update(scores)
        report["arms"][m.name]["loss_every_50"] = m.losses
        log(f"{m.name}: mAP@.5 {scores['map50_mean']:.3f} mAP {scores['map_mean']:.3f} AR@100 {scores['ar100_mean']:.3f} "
            + " ".join(f"{b} {v['map50']:.3f}" for b, v in scores["per_brand"].items()))
        with open(os.path.join(a.out, "transfer_gpu.json"), "w") as f:
            json.dump(report, f, indent=1)
    log(f"done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
