"""What an annotation file says about one photo, before the photo is read.

Parsers (synth.importing.voc, synth.importing.coco) turn annotation files into
`LabelledImage` records, and files they cannot use into `Problem`s; nothing here reads an
image. Boxes stay in the annotation's own convention here, pixel-edge coordinates
[x0, y0, x1, y1] of the frame the annotation describes; synth.importing.photos checks them
against the image and converts them to the project's one convention (synth.boxes).
"""

from __future__ import annotations

from dataclasses import dataclass

from synth.errors import SynthError


class AnnotationError(SynthError):
    """An annotation file (or one entry of it) cannot be used; the message names it."""


@dataclass(frozen=True)
class LabelledObject:
    name: str  # class name as the annotation spells it
    box: tuple[float, float, float, float]  # [x0, y0, x1, y1] pixel edges
    difficult: bool = False
    truncated: bool = False


@dataclass(frozen=True)
class LabelledImage:
    annotation: str  # where the labels came from: an XML file, or "instances.json (image id 7)"
    image_path: str  # the photo the labels are about
    source_id: str  # unique within an import: the photo's path relative to its images folder
    width: int | None  # the size the annotation declares, None when it declares none
    height: int | None
    objects: tuple[LabelledObject, ...]


@dataclass(frozen=True)
class Problem:
    """One file (or entry) left out of an import, and why."""

    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


@dataclass
class Parsed:
    """What a parser found: the usable images, the problems, and counts of what it skipped."""

    images: list[LabelledImage]
    problems: list[Problem]
    skipped: dict  # e.g. {"crowd_boxes": 3}
