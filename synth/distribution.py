"""How the boxes of a set of shards compare with the boxes of real labelled photos.

No training: a distance per statistic between the composites' boxes and real photos' boxes
(COCO JSON), so a change to the generator can be checked against real photos in seconds.

Statistics, each over boxes (one value per box) unless said otherwise:
  width      box width / image width
  height     box height / image height
  aspect     log(box width / box height) in pixels
  cx, cy     box centre / image size
  border     share of boxes touching the image border (within 1 px)
  empty      share of images without a box (per image)
  per_image  boxes per image with at least one box (per image)

Distances: the 1-Wasserstein distance (scipy.stats.wasserstein_distance) between the two samples
for the continuous statistics and |a - b| for the shares; `per_image` uses the Wasserstein
distance of the counts. Everything is pure; `read_shard_boxes` and `read_coco_boxes` read files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from synth import dataset, tfrecord_io
from synth.errors import AnnotationError

STATISTICS = ("width", "height", "aspect", "cx", "cy", "border", "empty", "per_image")
SHARES = ("border", "empty")
BORDER_PX = 1.0


def coco_box_ok(bbox, image: dict) -> bool:
    """A COCO [x, y, w, h] box is non-empty and inside its image (1 px of slack, as drawn by hand)."""
    if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4):
        return False
    x, y, w, h = bbox
    return w > 0 and h > 0 and x >= -1 and y >= -1 and x + w <= image["width"] + 1 and y + h <= image["height"] + 1


@dataclass(frozen=True)
class BoxSample:
    """Boxes of a set of images, in pixels: [N, 4] ymin, xmin, ymax, xmax and each box's image
    size; plus the number of boxes of every image (zeros included)."""
    boxes_px: np.ndarray
    image_hw: np.ndarray  # [N, 2]
    per_image: np.ndarray  # [M]

    def statistics(self) -> dict:
        b, hw = self.boxes_px, self.image_hw
        h, w = hw[:, 0], hw[:, 1]
        bh, bw = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        border = ((b[:, 0] <= BORDER_PX) | (b[:, 1] <= BORDER_PX) | (b[:, 2] >= h - BORDER_PX)
                  | (b[:, 3] >= w - BORDER_PX))
        return {"width": bw / w, "height": bh / h, "aspect": np.log(np.maximum(bw, 1e-3) / np.maximum(bh, 1e-3)),
                "cx": (b[:, 1] + b[:, 3]) / 2 / w, "cy": (b[:, 0] + b[:, 2]) / 2 / h,
                "border": border.astype(np.float64), "empty": (self.per_image == 0).astype(np.float64),
                "per_image": self.per_image[self.per_image > 0].astype(np.float64)}


def summary(sample: BoxSample) -> dict:
    """The figures a person reads: quantiles of the width, shares, counts."""
    st = sample.statistics()
    wq = np.quantile(st["width"], np.linspace(0.1, 0.9, 9)) if st["width"].size else np.zeros(9)
    return {"images": int(sample.per_image.size), "boxes": int(sample.boxes_px.shape[0]),
            "width_deciles": [round(float(v), 3) for v in wq],
            "width_median": round(float(np.median(st["width"])), 3) if st["width"].size else None,
            "wider_than_half": round(float(np.mean(st["width"] > 0.5)), 3) if st["width"].size else None,
            "border_share": round(float(np.mean(st["border"])), 3) if st["border"].size else None,
            "empty_share": round(float(np.mean(st["empty"])), 3) if st["empty"].size else None}


def compare(synthetic: BoxSample, real: BoxSample) -> dict:
    """statistic -> distance between the two samples (smaller is closer to real photos)."""
    from scipy.stats import wasserstein_distance

    a, b = synthetic.statistics(), real.statistics()
    out = {}
    for name in STATISTICS:
        x, y = a[name], b[name]
        if x.size == 0 or y.size == 0:
            out[name] = None
        elif name in SHARES:
            out[name] = round(abs(float(x.mean()) - float(y.mean())), 4)
        else:
            out[name] = round(float(wasserstein_distance(x, y)), 4)
    return out


def read_coco_boxes(path: str, category_names=None, image_ids=None) -> BoxSample:
    """Boxes of a COCO JSON file ([x, y, w, h] pixels); only the named categories when given (and
    then only the photos showing one of them, unless image_ids are given), only the given image ids
    when given (every image in the file otherwise, boxless ones too)."""
    try:
        with open(path) as f:
            d = json.load(f)
    except FileNotFoundError:
        raise AnnotationError(f"real-photo annotations {path!r}: no such file") from None
    except (OSError, ValueError) as e:
        raise AnnotationError(f"real-photo annotations {path!r}: not readable JSON ({e})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(d.get(key) if isinstance(d, dict) else None, list):
            raise AnnotationError(f"real-photo annotations {path!r}: no {key!r} list (COCO detection format expected)")
    names = {c["id"]: c["name"] for c in d["categories"]}
    if category_names is not None:
        unknown = sorted(set(category_names) - set(names.values()))
        if unknown:
            raise AnnotationError(f"real-photo annotations {path!r}: categories {unknown} are not among its "
                             f"{len(names)} categories ({', '.join(sorted(names.values()))})")
    if image_ids is None and category_names is not None:
        image_ids = {a.get("image_id") for a in d["annotations"] if names.get(a.get("category_id")) in category_names}
    images = {im["id"]: im for im in d["images"] if image_ids is None or im["id"] in image_ids}
    counts = {i: 0 for i in images}
    boxes, hws = [], []
    for k, a in enumerate(d["annotations"]):
        if a.get("image_id") not in images:
            continue
        if category_names is not None and names.get(a.get("category_id")) not in category_names:
            continue
        im = images[a["image_id"]]
        if not coco_box_ok(a.get("bbox"), im):
            raise AnnotationError(f"real-photo annotations {path!r}: annotation {k} (id {a.get('id')}) box {a.get('bbox')} "
                             f"is empty or outside its image {im.get('file_name')!r} ({im['width']}x{im['height']})")
        x, y, w, h = a["bbox"]
        boxes.append((y, x, y + h, x + w))
        hws.append((im["height"], im["width"]))
        counts[a["image_id"]] += 1
    return BoxSample(np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(hws, np.float64).reshape(-1, 2),
                     np.asarray(list(counts.values()), np.int64))


def read_shard_boxes(data_dir: str, split: str = "train", max_records: int | None = None) -> BoxSample:
    """Boxes of a dataset folder's shards (written by tools/make_tfrecords.py)."""
    from synth import tfexample

    paths = dataset.list_shards(data_dir, split)
    if not paths:
        raise AnnotationError(f"dataset {data_dir!r}: no {split} shards ({dataset.shard_pattern(data_dir, split)})")
    boxes, hws, counts = [], [], []
    for path in paths:
        for data in tfrecord_io.read_records(path):
            ex = tfexample.decode_boxes(data)
            h, w, b = ex["height"], ex["width"], ex["boxes"].astype(np.float64)
            boxes.append(b * [h, w, h, w])
            hws.extend([(h, w)] * len(b))
            counts.append(len(b))
            if max_records is not None and len(counts) >= max_records:
                break
        if max_records is not None and len(counts) >= max_records:
            break
    return BoxSample(np.concatenate(boxes).astype(np.float64) if boxes else np.zeros((0, 4)),
                     np.asarray(hws, np.float64).reshape(-1, 2), np.asarray(counts, np.int64))


def format_table(synth_summary: dict, real_summary: dict, distances: dict) -> str:
    rows = [("", "composites", "real photos"),
            ("images / boxes", f"{synth_summary['images']} / {synth_summary['boxes']}",
             f"{real_summary['images']} / {real_summary['boxes']}"),
            ("median width share", synth_summary["width_median"], real_summary["width_median"]),
            ("wider than half", synth_summary["wider_than_half"], real_summary["wider_than_half"]),
            ("touching the border", synth_summary["border_share"], real_summary["border_share"]),
            ("images without a box", synth_summary["empty_share"], real_summary["empty_share"]),
            ("width deciles", " ".join(f"{v:.2f}" for v in synth_summary["width_deciles"]),
             " ".join(f"{v:.2f}" for v in real_summary["width_deciles"]))]
    width = max(len(str(r[0])) for r in rows)
    lines = [f"{str(a):<{width}}  {str(b):<48}  {c}" for a, b, c in rows]
    lines.append("")
    lines.append("distance to real photos (Wasserstein-1; |difference| for shares), smaller is closer:")
    lines.append("  " + "  ".join(f"{k} {v}" for k, v in distances.items()))
    return "\n".join(lines)


def plot(synthetic: BoxSample, real: BoxSample, path: str, title: str = "") -> str:
    """Histograms of each continuous statistic, composites against real photos, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = synthetic.statistics(), real.statistics()
    names = ("width", "height", "aspect", "cx", "cy", "per_image")
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for ax, name in zip(axes.ravel(), names):
        x, y = a[name], b[name]
        both = np.concatenate([x, y]) if x.size + y.size else np.zeros(1)
        bins = np.arange(0.5, max(both.max(), 1) + 1.5) if name == "per_image" else np.linspace(
            both.min(), both.max() if both.max() > both.min() else both.min() + 1, 25)
        ax.hist(x, bins=bins, density=True, alpha=0.55, label=f"composites ({x.size})")
        ax.hist(y, bins=bins, density=True, alpha=0.55, label=f"real photos ({y.size})")
        ax.set_title(name)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title or "box statistics: composites against real photos")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
