"""Boxes. One convention inside tfod-synth: normalised [ymin, xmin, ymax, xmax] float32,
the OD API's order, with pixel-edge coordinates (a box covering pixel columns 10..19 of
a 100-pixel-wide image has xmin 0.10 and xmax 0.20). Conversion happens only here.

Inside rendering, where work is kept to a region of the canvas, that region is a `PixelRect`:
whole pixels, end exclusive, the slice `img[y0:y1, x0:x1]`; `from_pixels` turns one into a box.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# A pixel counts as showing the logo when its composited logo opacity is at least this.
VISIBLE_ALPHA = 0.5


class PixelRect(NamedTuple):
    """Rows y0..y1-1 and columns x0..x1-1 of an image (end exclusive), integer pixels."""

    y0: int
    x0: int
    y1: int
    x1: int

    @classmethod
    def of(cls, rect) -> "PixelRect | None":
        """A (y0, x0, y1, x1) sequence as a PixelRect; None stays None."""
        return None if rect is None else cls(*rect)

    def union(self, other: "PixelRect | None") -> "PixelRect":
        """The smallest rectangle holding both (`other` None: this one)."""
        if other is None:
            return self
        return PixelRect(min(self.y0, other.y0), min(self.x0, other.x0), max(self.y1, other.y1),
                         max(self.x1, other.x1))

    def overlaps(self, other: "PixelRect | None") -> bool:
        """True when the two share a pixel (never with None)."""
        return (other is not None and self.y0 < other.y1 and other.y0 < self.y1 and self.x0 < other.x1
                and other.x0 < self.x1)


def tight_rect(mask: np.ndarray) -> PixelRect | None:
    """The PixelRect of the True pixels of a 2-D mask, or None when there is none."""
    if mask.ndim != 2:
        raise ValueError(f"tight_rect and tight_box need a 2-D mask, got shape {mask.shape}")
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return PixelRect(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


def tight_box(mask: np.ndarray) -> np.ndarray | None:
    """Normalised [ymin, xmin, ymax, xmax] of the True pixels of a 2-D mask, or None."""
    r = tight_rect(mask)
    return None if r is None else from_pixels(*r, *mask.shape)


def to_pixels(box: np.ndarray, height: int, width: int) -> np.ndarray:
    """Normalised box -> [y0, x0, y1, x1] float pixel-edge coordinates."""
    return np.asarray(box, np.float64) * np.array([height, width, height, width], np.float64)


def from_pixels(y0: float, x0: float, y1: float, x1: float, height: int, width: int) -> np.ndarray:
    return np.array([y0 / height, x0 / width, y1 / height, x1 / width], np.float32)


def area(box: np.ndarray) -> float:
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes in the same convention."""
    inter = np.array([max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])])
    i = area(inter)
    u = area(a) + area(b) - i
    return float(i / u) if u > 0 else 0.0


MAX_COVERED_SHARE = 0.5  # a logo's box may not lie more than this much inside another logo's box


def covered_share(a: np.ndarray, b: np.ndarray) -> float:
    """The share of the smaller box that lies inside the other (1.0: one box inside the other)."""
    inter = np.array([max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])])
    smaller = min(area(a), area(b))
    return float(area(inter) / smaller) if smaller > 0 else 0.0


def crowds(a: np.ndarray, b: np.ndarray, max_iou: float) -> bool:
    """Whether two logos' boxes overlap more than the placement allows: IoU above `max_iou`, or
    the smaller one lying mostly inside the other (a small logo on a large one has a small IoU);
    the second test follows `max_iou` when that is looser (max_iou 1: anything goes)."""
    return iou(a, b) > max_iou or covered_share(a, b) > max(MAX_COVERED_SHARE, max_iou)


def validate_normalised(box: np.ndarray, what: str) -> None:
    """Raises ValueError naming `what` unless box is a non-empty box inside [0, 1]."""
    b = np.asarray(box, np.float64)
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        raise ValueError(f"{what}: box {b.tolist()} is not 4 finite numbers [ymin, xmin, ymax, xmax]")
    if b.min() < 0.0 or b.max() > 1.0 or b[0] >= b[2] or b[1] >= b[3]:
        raise ValueError(f"{what}: box {b.tolist()} is empty or outside [0, 1] "
                         "(expected normalised [ymin, xmin, ymax, xmax] with ymin < ymax, xmin < xmax)")


def to_coco_xywh(box: np.ndarray, height: int, width: int) -> np.ndarray:
    """Normalised [ymin, xmin, ymax, xmax] -> COCO's [x, y, width, height]: float64 absolute
    pixels, (x, y) the top-left corner, as in COCO annotations and results files."""
    b = np.asarray(box, np.float64)
    if b.shape != (4,):
        raise ValueError(f"box {b.tolist()} is not 4 numbers [ymin, xmin, ymax, xmax]")
    if not (height > 0 and width > 0):
        raise ValueError(f"image size {height}x{width} (height x width) must be positive")
    y0, x0, y1, x1 = to_pixels(b, height, width)
    return np.array([x0, y0, x1 - x0, y1 - y0], np.float64)


# EXIF orientation tag (0x0112) values 1..8 -> how a normalised point (x, y) of the stored
# pixels moves when the orientation is applied (as PIL's ImageOps.exif_transpose applies it).
_EXIF_POINT = {
    1: lambda x, y: (x, y),
    2: lambda x, y: (1 - x, y),  # mirrored left-right
    3: lambda x, y: (1 - x, 1 - y),  # rotated 180
    4: lambda x, y: (x, 1 - y),  # mirrored top-bottom
    5: lambda x, y: (y, x),  # transposed (mirrored about the main diagonal)
    6: lambda x, y: (1 - y, x),  # to be turned 90 degrees clockwise
    7: lambda x, y: (1 - y, 1 - x),  # transversed (mirrored about the other diagonal)
    8: lambda x, y: (y, 1 - x),  # to be turned 90 degrees counter-clockwise
}
EXIF_ORIENTATIONS = tuple(_EXIF_POINT)


def exif_swaps_axes(orientation: int) -> bool:
    """True when applying EXIF `orientation` swaps width and height (5..8)."""
    return orientation in (5, 6, 7, 8)


def exif_orient(boxes: np.ndarray, orientation: int) -> np.ndarray:
    """Normalised [N, 4] boxes of the stored pixels -> the same boxes once EXIF `orientation`
    is applied to the pixels (the image a viewer shows)."""
    if orientation not in _EXIF_POINT:
        raise ValueError(f"EXIF orientation {orientation!r} is not one of {list(EXIF_ORIENTATIONS)}")
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    move = _EXIF_POINT[orientation]
    xa, ya = move(b[:, 1], b[:, 0])
    xb, yb = move(b[:, 3], b[:, 2])
    return np.stack([np.minimum(ya, yb), np.minimum(xa, xb), np.maximum(ya, yb), np.maximum(xa, xb)],
                    -1).astype(np.float32)
