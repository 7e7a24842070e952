"""One labelled photo -> one record's contents: the image bytes, its size, checked boxes.

`prepare(item, class_ids, params)` reads the photo (refused before decoding above
params.max_pixels), decodes it fully (a truncated or corrupt file fails here, not in
training), and:
- keeps the original JPEG bytes when the file is a baseline RGB or greyscale JPEG whose EXIF
  orientation is 1 (or absent); otherwise re-encodes it as JPEG at params.jpeg_quality
  (PNG and other formats, CMYK JPEGs, and photos that must be turned);
- applies the EXIF orientation to the pixels and to the boxes alike. params.boxes_frame says
  which frame an annotation's boxes are in: "stored" (the pixels as stored, what OpenCV and
  LabelImg show), "turned" (the image once turned, what CVAT shows after applying the EXIF
  orientation), or "auto": stored, unless the annotation declares the size of the turned image
  and not of the stored one (only decidable for orientations 5..8, which swap the sides);
- checks the declared size (when the annotation has one) against the image, and every box:
  four finite numbers, not empty, inside the image (up to BOX_SLACK_PX beyond an edge is
  clipped, as rounding in labelling tools produces; more refuses the photo);
- maps class names to label-map ids: an unknown name refuses the photo, or, with
  params.drop_unknown, drops the object and counts it.
Every refusal is an AnnotationError or InputImageError naming the photo and the reason.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from synth import boxes as boxlib, images as imagelib
from synth.errors import ConfigError, InputImageError
from synth.importing.records import AnnotationError, LabelledImage

BOX_SLACK_PX = 1.0
EXIF_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImportParams:
    """The frozen parameters of an import (recorded in its manifest)."""

    format: str
    drop_unknown: bool = False
    jpeg_quality: int = 95
    max_pixels: int = imagelib.DEFAULT_MAX_PIXELS
    val_fraction: float = 0.0
    num_shards: int = 1
    seed: int = 0
    boxes_frame: str = "auto"  # "auto", "stored" or "turned": see the module docstring


BOXES_FRAMES = ("auto", "stored", "turned")


@dataclass(frozen=True)
class Prepared:
    """What goes into one record."""

    encoded: bytes  # JPEG
    height: int
    width: int
    boxes: np.ndarray  # [N, 4] normalised [ymin, xmin, ymax, xmax] of the image as stored in the record
    class_ids: list[int]
    class_texts: list[str]
    difficult: list[bool]
    truncated: list[bool]
    reencoded: bool
    orientation: int  # the EXIF orientation applied (1: none)
    dropped_unknown: int  # objects of unknown classes dropped (params.drop_unknown)
    clipped: int  # boxes clipped by at most BOX_SLACK_PX


def orientation_of(img) -> int:
    try:
        value = int(img.getexif().get(EXIF_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001  (a malformed EXIF block: treat as no orientation)
        return 1
    return value if value in boxlib.EXIF_ORIENTATIONS else 1


def _boxes_in_image(item: LabelledImage, boxes_px: list, width: int, height: int) -> tuple[np.ndarray, int]:
    """Normalised boxes from pixel-edge [x0, y0, x1, y1] boxes on a width x height frame."""
    out, clipped = [], 0
    for k, (x0, y0, x1, y1) in enumerate(boxes_px):
        what = f"photo {item.image_path!r}, box #{k} [x0, y0, x1, y1] = " \
               f"{[round(v, 2) for v in (x0, y0, x1, y1)]}"
        if not (x1 > x0 and y1 > y0):
            raise AnnotationError(f"{what} is empty (needs x0 < x1 and y0 < y1)")
        s = BOX_SLACK_PX
        if x0 < -s or y0 < -s or x1 > width + s or y1 > height + s:
            raise AnnotationError(f"{what} lies outside the {width}x{height} image")
        c = (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))
        if c != (x0, y0, x1, y1):
            clipped += 1
            if not (c[2] > c[0] and c[3] > c[1]):
                raise AnnotationError(f"{what} lies outside the {width}x{height} image")
        out.append(boxlib.from_pixels(c[1], c[0], c[3], c[2], height, width))
    return np.array(out, np.float32).reshape(-1, 4), clipped


def prepare(item: LabelledImage, class_ids: dict[str, int], params: ImportParams) -> Prepared:
    """See the module docstring."""
    from PIL import ImageOps

    where = f"photo {item.image_path!r}"  # the Problem that reports an error names the annotation
    img = imagelib.open_image(item.image_path, "photo", params.max_pixels)  # decoded: truncation fails here
    if min(img.size) < 1:
        raise InputImageError(f"{where} has no pixels")
    if params.boxes_frame not in BOXES_FRAMES:
        raise ConfigError(f"--boxes_frame={params.boxes_frame!r} is not one of {', '.join(BOXES_FRAMES)}")
    kept, dropped = [], 0
    for o in item.objects:
        if o.name in class_ids:
            kept.append(o)
        elif params.drop_unknown:
            dropped += 1
        else:
            raise AnnotationError(f"{where}: class {o.name!r} is not in the label map (classes: "
                                  f"{', '.join(sorted(class_ids))}); add it, or pass --drop_unknown_classes "
                                  "to drop such objects")
    orientation = orientation_of(img)
    stored_w, stored_h = img.size
    turned_w, turned_h = (stored_h, stored_w) if boxlib.exif_swaps_axes(orientation) else (stored_w, stored_h)
    frame = "stored" if params.boxes_frame == "auto" else params.boxes_frame
    if item.width is not None:
        declared = (item.width, item.height)
        if params.boxes_frame == "auto" and declared != (stored_w, stored_h) and declared == (turned_w, turned_h):
            frame = "turned"
        if declared != ((stored_w, stored_h) if frame == "stored" else (turned_w, turned_h)):
            raise AnnotationError(f"{where}: the annotation says the image is {item.width}x{item.height}, but it "
                                  f"is {stored_w}x{stored_h}" + (f" ({turned_w}x{turned_h} once turned by its "
                                                                 f"EXIF orientation {orientation})"
                                                                 if orientation != 1 else ""))
    fw, fh = (stored_w, stored_h) if frame == "stored" else (turned_w, turned_h)
    boxes, clipped = _boxes_in_image(item, [o.box for o in kept], fw, fh)
    if frame == "stored" and orientation != 1:
        boxes = boxlib.exif_orient(boxes, orientation)
    must_reencode = img.format != "JPEG" or orientation != 1 or img.mode not in ("RGB", "L")
    if must_reencode:
        rgb = ImageOps.exif_transpose(img) if orientation != 1 else img
        if rgb.mode != "RGB":
            rgb = rgb.convert("RGB")
        buf = io.BytesIO()
        rgb.save(buf, "JPEG", quality=params.jpeg_quality)
        encoded = buf.getvalue()
    else:
        with open(item.image_path, "rb") as f:
            encoded = f.read()
    names = [o.name for o in kept]
    return Prepared(encoded, turned_h, turned_w, boxes, [class_ids[n] for n in names], names,
                    [o.difficult for o in kept], [o.truncated for o in kept], must_reencode, orientation,
                    dropped, clipped)
