"""Prepares what bench/transfer_gpu.py needs on the device machine, in the ignored folder .gpu/.

    .venv/bin/python bench/device_prepare.py --real=../shared/data/flickrlogos27

- .gpu/real/: the real photos scaled to at most MAX_SIDE px on the longer side (JPEG quality 90), their
  COCO boxes scaled with them, and the brands' artwork: a measurement copy for one device run, in a
  folder git ignores (never committed: the photos keep their owners' rights).
- .gpu/wheels/: Python 3.12 wheels the device lacks (pycocotools, google-crc32c, protobuf 3.20.3 for
  the generation config's generated code), fetched from PyPI by pip.
The device's own share of the 64 MiB that travels is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

import cv2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_SIDE = 400
WHEELS = ("pycocotools==2.0.10", "google-crc32c==1.9.0", "protobuf==3.20.3")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--real", default=os.path.join(ROOT, "..", "shared", "data", "flickrlogos27"))
    p.add_argument("--dest", default=os.path.join(ROOT, ".gpu"))
    a = p.parse_args()
    real_out = os.path.join(a.dest, "real")
    os.makedirs(os.path.join(real_out, "images"), exist_ok=True)
    with open(os.path.join(a.real, "instances.json")) as f:
        d = json.load(f)
    scale = {}
    for im in d["images"]:
        s = min(1.0, MAX_SIDE / max(im["width"], im["height"]))
        src = os.path.join(a.real, "images", im["file_name"])
        img = cv2.imread(src, cv2.IMREAD_COLOR)
        if img is None:
            sys.exit(f"device_prepare: {src} cannot be read")
        h, w = img.shape[:2]
        if s < 1:
            img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        im["height"], im["width"] = img.shape[:2]
        scale[im["id"]] = (img.shape[1] / w, img.shape[0] / h)
        cv2.imwrite(os.path.join(real_out, "images", im["file_name"]), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    for ann in d["annotations"]:
        sx, sy = scale[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        ann["bbox"] = [round(x * sx, 2), round(y * sy, 2), round(w * sx, 2), round(h * sy, 2)]
        ann["area"] = ann["bbox"][2] * ann["bbox"][3]
    with open(os.path.join(real_out, "instances.json"), "w") as f:
        json.dump(d, f)
    shutil.copytree(os.path.join(a.real, "logos"), os.path.join(real_out, "logos"), dirs_exist_ok=True)
    wheels = os.path.join(a.dest, "wheels")
    os.makedirs(wheels, exist_ok=True)
    plats = [f"--platform={p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                                         "manylinux_2_5_x86_64", "manylinux1_x86_64", "any")]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version=3.12", "--implementation=cp", *plats, "-d", wheels, *WHEELS], check=True)
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(a.dest) for f in fs)
    print(f"device_prepare: {len(d['images'])} photos, {len(os.listdir(wheels))} wheels, {total / 2**20:.1f} MiB in {a.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
