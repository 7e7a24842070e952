"""The inputs of a generation run: logos (read and checked up front; any problem is fatal)
and backgrounds (checked from their headers up front; unusable ones are skipped, counted and
reported; decoded lazily, with a small cache, when a composite first needs them)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from synth import config as configlib, images
from synth.errors import InputImageError

log = logging.getLogger(__name__)


@dataclass
class Inputs:
    logos: list[np.ndarray]
    logo_paths: list[str]
    logo_class_ids: list[int]  # label id of each logo
    class_names: list[str]
    background_paths: list[str]
    background_shapes: list[tuple[int, int]]  # (height, width) from each header
    max_pixels: int = images.DEFAULT_MAX_PIXELS
    skipped: list[images.SkippedInput] = field(default_factory=list)
    cache_size: int = 16
    _cache: OrderedDict = field(default_factory=OrderedDict, repr=False)
    # Backgrounds whose header was fine but whose pixels failed to decode: index -> reason.
    failed: dict = field(default_factory=dict)
    # Per logo, its ink opacity (images.page_ink) when it is artwork matted from a plain page, else
    # None (missing entries are None): what its one-colour colourways cover.
    logo_inks: list = field(default_factory=list)

    def logo_ink(self, index: int):
        return self.logo_inks[index] if index < len(self.logo_inks) else None

    def __getstate__(self):  # sent to worker processes without the decoded cache
        state = dict(self.__dict__)
        state["_cache"] = OrderedDict()
        return state

    def background(self, index: int) -> tuple[int, np.ndarray]:
        """(index actually used, RGB pixels). A background that fails to decode is recorded
        in `failed` and the next decodable one is used instead; the substitute depends only
        on the files, so every worker makes the same choice."""
        n = len(self.background_paths)
        for k in range(n):
            i = (index + k) % n
            if i in self.failed:
                continue
            if i in self._cache:
                self._cache.move_to_end(i)
                return i, self._cache[i]
            try:
                bg = images.load_background(self.background_paths[i], self.max_pixels)
            except InputImageError as exc:
                log.warning("skipping %s", exc)
                self.failed[i] = str(exc)
                continue
            self._cache[i] = bg
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return i, bg
        raise InputImageError("no background image could be decoded: "
                              + "; ".join(sorted(self.failed.values())[:5]))


def load_inputs(cfg: configlib.LoadedConfig) -> Inputs:
    c = cfg.proto
    names = configlib.class_names(c)
    logos, inks, paths, ids = [], [], [], []
    for lg in c.logo:
        path = images.builtin_logo_path(lg.builtin) if lg.HasField("builtin") else cfg.resolve(lg.path)
        tol = lg.border_matte.tolerance if lg.HasField("border_matte") else None
        logo, ink = images.load_logo_and_ink(path, tol)
        if tol is None and logo[..., 3].min() == 255:
            log.warning("logo %s has no transparent pixel: it is pasted as an opaque rectangle "
                        "(set border_matte { } if it is artwork on a plain page)", path)
        logos.append(logo)
        inks.append(ink)
        paths.append(path)
        ids.append(names.index(lg.class_name) + 1)
    bg_paths, shapes, skipped = [], [], []
    for src in c.background:
        try:
            files = images.list_background_files(src, cfg.resolve)
        except InputImageError as exc:  # an unreadable folder: skipped, counted, reported
            log.warning("skipping %s", exc)
            name = src.directory or src.glob or src.builtin or f"tfds:{src.tfds.name}/{src.tfds.split}"
            skipped.append(images.SkippedInput(name, str(exc)))
            continue
        for path in files:
            try:
                shapes.append(images.probe_background(path, c.max_input_pixels))
                bg_paths.append(path)
            except InputImageError as exc:
                log.warning("skipping %s", exc)
                skipped.append(images.SkippedInput(path, str(exc)))
    if not bg_paths:
        raise InputImageError(f"{cfg.source}: no usable background image; skipped: "
                              + "; ".join(s.reason for s in skipped))
    return Inputs(logos, paths, ids, names, bg_paths, shapes, c.max_input_pixels, skipped, logo_inks=inks)
