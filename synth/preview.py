"""Contact sheets: a grid of composites with their boxes and class names drawn, to look at
a dataset instead of reading its numbers."""

from __future__ import annotations

import math

import cv2
import numpy as np

from synth import boxes as boxlib

COLOURS = [(255, 64, 64), (64, 200, 64), (64, 128, 255), (255, 200, 0), (200, 64, 255), (0, 220, 220)]


def annotate(rgb: np.ndarray, boxes: np.ndarray, labels: list[str], class_ids: list[int],
             thumb_width: int = 320) -> np.ndarray:
    """A thumbnail of `rgb` with each box and its label drawn."""
    h, w = rgb.shape[:2]
    scale = thumb_width / w
    img = cv2.resize(rgb, (thumb_width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    th, tw = img.shape[:2]
    for box, label, cid in zip(boxes, labels, class_ids):
        y0, x0, y1, x1 = boxlib.to_pixels(box, th, tw).round().astype(int)
        colour = COLOURS[(cid - 1) % len(COLOURS)]
        cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), colour, 1)
        cv2.putText(img, label, (x0, max(10, y0 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1,
                    cv2.LINE_AA)
    return img


def contact_sheet(thumbs: list[np.ndarray], cols: int = 4, pad: int = 4) -> np.ndarray:
    """Thumbnails (same width) in a grid on a dark background."""
    if not thumbs:
        raise ValueError("contact_sheet needs at least one thumbnail")
    rows = math.ceil(len(thumbs) / cols)
    th = max(t.shape[0] for t in thumbs)
    tw = max(t.shape[1] for t in thumbs)
    sheet = np.full((rows * (th + pad) + pad, cols * (tw + pad) + pad, 3), 24, np.uint8)
    for i, t in enumerate(thumbs):
        r, c = divmod(i, cols)
        y, x = pad + r * (th + pad), pad + c * (tw + pad)
        sheet[y:y + t.shape[0], x:x + t.shape[1]] = t
    return sheet
