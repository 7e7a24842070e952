"""The box statistics of a checked dataset (synth.dataset_check) and their plot.

`BoxStats` holds one split's per-box and per-image figures, collected from the boxes that
passed the checks; `plot` draws the splits' figures into a 2x3 PNG with matplotlib's Agg
canvas (no pyplot, no global backend switch). matplotlib is imported inside `plot`.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BoxStats:
    """Per-box and per-image statistics of one split (boxes that passed the checks)."""

    sqrt_area_px: np.ndarray  # [N] sqrt(box width * box height), pixels
    width_px: np.ndarray  # [N]
    height_px: np.ndarray  # [N]
    centre_x: np.ndarray  # [N] normalised
    centre_y: np.ndarray  # [N] normalised
    classes: tuple[str, ...]  # [N] label-map name of each box
    objects_per_image: np.ndarray  # [records decoded] int


def plot(stats: dict[str, BoxStats], path: str, title: str = "") -> str:
    """Writes a 2x3 PNG of the statistics of each split: box size (sqrt area, px), aspect ratio
    (log scale), box centres (2-D histogram, image orientation), objects per image, objects per
    class, box width against height. Returns `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(stats)
    fig = Figure(figsize=(15, 9), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.subplots(2, 3)
    fig.suptitle(title[:160] or "dataset statistics")

    def hist(a, values, bins, xlabel, log=False):
        data = [values(stats[n]) for n in names]
        if sum(len(d) for d in data):
            a.hist(data, bins=bins, stacked=True, label=names)
            a.legend()
        else:
            a.text(0.5, 0.5, "no boxes", ha="center", transform=a.transAxes)
        if log:
            a.set_xscale("log")
        a.set_xlabel(xlabel)
        a.set_ylabel("count")

    all_sqrt = np.concatenate([s.sqrt_area_px for s in stats.values()] + [np.zeros(0)])
    hist(ax[0, 0], lambda s: s.sqrt_area_px,
         np.histogram_bin_edges(all_sqrt, bins=30) if all_sqrt.size else 10, "box size sqrt(area) [px]")
    hist(ax[0, 1], lambda s: s.width_px / np.maximum(s.height_px, 1e-6), np.geomspace(1 / 8, 8, 31),
         "aspect ratio width / height", log=True)
    ticks = [1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8]
    ax[0, 1].set_xticks(ticks, ["1/8", "1/4", "1/2", "1", "2", "4", "8"])
    ax[0, 1].set_xticks([], minor=True)
    cx = np.concatenate([s.centre_x for s in stats.values()] + [np.zeros(0)])
    cy = np.concatenate([s.centre_y for s in stats.values()] + [np.zeros(0)])
    grid, _, _ = np.histogram2d(cy, cx, bins=20, range=[[0, 1], [0, 1]])
    im = ax[0, 2].imshow(grid, extent=[0, 1, 1, 0], cmap="viridis", aspect="auto")
    fig.colorbar(im, ax=ax[0, 2], label="boxes")
    ax[0, 2].set_xlabel("centre x (normalised)")
    ax[0, 2].set_ylabel("centre y (normalised, down)")
    top = max([int(s.objects_per_image.max()) for s in stats.values() if s.objects_per_image.size] + [1])
    hist(ax[1, 0], lambda s: s.objects_per_image, np.arange(top + 2) - 0.5, "objects per image")
    classes = sorted({c for s in stats.values() for c in s.classes})
    bottom = np.zeros(len(classes))
    for n in names:
        counts = Counter(stats[n].classes)
        v = np.array([counts[c] for c in classes], float)
        ax[1, 1].bar(range(len(classes)), v, width=0.6, bottom=bottom, label=n)
        bottom += v
    ax[1, 1].set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax[1, 1].set_xlim(-0.7, max(len(classes), 2) - 0.3)
    ax[1, 1].set_ylabel("objects per class")
    for n in names:
        ax[1, 2].scatter(stats[n].width_px, stats[n].height_px, s=6, alpha=0.5, label=n)
    for a in (ax[1, 1], ax[1, 2]):
        if classes:
            a.legend()
    ax[1, 2].set_xlabel("box width [px]")
    ax[1, 2].set_ylabel("box height [px]")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path
