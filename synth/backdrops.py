"""Backdrops: a background fitted to the canvas, with its surface analysis, cached.

`fit_background` cover-resizes a background to the canvas and crops it at one of
`NUM_FIT_VARIANTS` anchors (mirrored or not). `Backdrops` keeps fitted backgrounds and their
synth.surface analyses in memory (least recently used go first), runs the background audit
(synth.audit) and skips backgrounds that fail to decode or already show a logo. `SurfaceCache`
shares analyses between a run's worker processes as files in its `.work/` folder.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import pickle
from collections import OrderedDict

import cv2
import numpy as np

from synth import cutout, surface, surface_plane
from synth.inputs import Inputs
from synth.settings import Settings

NUM_FIT_VARIANTS = 6  # crop anchor (start, centre, end) x mirrored or not


def fit_background(bg: np.ndarray, variant: int, out_hw) -> np.ndarray:
    """Cover-resize to the canvas, crop at the variant's anchor, mirror odd variants."""
    oh, ow = out_hw
    bh, bw = bg.shape[:2]
    s = max(oh / bh, ow / bw)
    rh, rw = max(oh, math.ceil(bh * s)), max(ow, math.ceil(bw * s))
    resized = cv2.resize(bg, (rw, rh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    anchor = (variant // 2) / 2.0
    y0, x0 = int(round((rh - oh) * anchor)), int(round((rw - ow) * anchor))
    out = resized[y0:y0 + oh, x0:x0 + ow]
    return np.ascontiguousarray(out[:, ::-1] if variant % 2 else out)


def _entry_bytes(fitted: np.ndarray, surf) -> int:
    """Memory of a cached backdrop: its pixels, its analysis's maps, and what placement derives
    from them later (an obstacle map, the same grown by its margin, and candidate centres, counted
    as one more edge map)."""
    if surf is None:
        return fitted.nbytes
    maps = (surf.labels, surf.edges, surf.boundaries, surf.distance_to_edge)
    return fitted.nbytes + sum(m.nbytes for m in maps) + 3 * surf.edges.nbytes


@functools.lru_cache(maxsize=1)
def _surface_code_hash() -> str:
    """The hash of the code of the surface analysis (synth/surface.py and synth/surface_plane.py)."""
    h = hashlib.sha256()
    for module in (surface, surface_plane):
        with open(module.__file__, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


class SurfaceCache:
    """Surface analyses kept as one file per backdrop in `folder`, so that the worker processes
    of a run analyse each backdrop once between them: without it each worker analyses every
    backdrop it draws (about 80 ms at 640x480; on the embedded default every worker draws nearly
    all 60 backdrops). An analysis is a deterministic function of the backdrop and the config,
    so a loaded one gives the same bytes downstream as a fresh one; a worker that analyses a
    backdrop another is analysing at the same moment only repeats work. Files are written
    atomically and only by the run's own processes, into its `.work/` folder (bound to the
    config's fingerprint and deleted when the run completes). A file records the hash of the
    code that wrote it (synth/surface.py, synth/surface_plane.py), so a run resumed after an
    upgrade analyses again rather than loading an analysis in an older layout. Writing stops once the folder holds
    `max_mb` (an analysis at 640x480 takes about 3 MB), and a write that fails (disk full)
    only stops the sharing: an unreadable file is analysed again."""

    SUFFIX = ".surface.pkl"

    def __init__(self, folder: str, max_mb: float = 512.0):
        self.folder, self.max_bytes = folder, int(max_mb * 2**20)
        self._full = False
        self.code = _surface_code_hash()
        os.makedirs(folder, exist_ok=True)

    def _path(self, index: int, variant: int) -> str:
        return os.path.join(self.folder, f"{index:06d}-{variant}{self.SUFFIX}")

    def get(self, index: int, variant: int, path: str):
        """The analysis of backdrop (index, variant) of background `path`, or None."""
        try:
            with open(self._path(index, variant), "rb") as f:
                code, stored_path, surf = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError):
            return None
        ok = code == self.code and stored_path == path and isinstance(surf, surface.Surface)
        return surf if ok else None

    def put(self, index: int, variant: int, path: str, surf) -> None:
        if self._full:
            return
        target = self._path(index, variant)
        tmp = f"{target}.{os.getpid()}.tmp"
        try:
            used = sum(e.stat().st_size for e in os.scandir(self.folder) if e.name.endswith(self.SUFFIX))
            if used >= self.max_bytes:
                self._full = True
                return
            with open(tmp, "wb") as f:
                pickle.dump((self.code, path, surf), f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, target)
        except OSError:
            self._full = True
            try:
                os.remove(tmp)
            except OSError:
                pass


class Backdrops:
    """Fitted backgrounds and their surface analyses, cached; runs the background audit."""

    PHOTOS_KEPT = 24  # fitted photos kept for cuts (about 0.9 MB each at 640x480)

    def __init__(self, inputs: Inputs, settings: Settings, cache_mb: float = 256.0, audit_cache=None,
                 surface_cache: SurfaceCache | None = None):
        """`cache_mb`: memory for cached backdrops (least recently used go first). A backdrop at
        640x480 with its analysis takes about 5 MB, so the default keeps about 50 (every variant of
        8 backgrounds), and a process's memory stops growing once it has drawn that many: an evicted
        backdrop is loaded from `surface_cache` when drawn again (a few ms; generation runs give
        one), else analysed again (about 80 ms)."""
        self.inputs, self.s, self.cache_bytes = inputs, settings, int(cache_mb * 2**20)
        self._cache: OrderedDict = OrderedDict()
        self._cached_bytes = 0
        self._audited: dict = {}
        self._matcher = None
        self.audit_cache = audit_cache  # an audit.AuditCache shared by a run's processes, or None
        self.surface_cache = surface_cache  # a SurfaceCache shared by a run's processes, or None
        self.analysed = 0  # analyses computed here (not loaded)
        self._photos: OrderedDict = OrderedDict()
        # Regions cut from the pool's photos for occluders and distractors (synth.occlusion).
        self.cutter = cutout.Cutter(self.photo, len(inputs.background_paths))

    def _audit(self, index: int, bg: np.ndarray) -> bool:
        if index not in self._audited:
            path = self.inputs.background_paths[index]
            r = self.audit_cache.get(index, path) if self.audit_cache is not None else None
            if r is None:
                if self._matcher is None:
                    from synth import audit

                    self._matcher = audit.LogoMatcher(self.inputs.logos, min_inliers=self.s.audit_min_inliers)
                r = self._matcher.find(bg)
                if self.audit_cache is not None:
                    self.audit_cache.put(index, path, r)
            self._audited[index] = r
        return self._audited[index].found

    def _usable(self, index: int) -> tuple[int, np.ndarray]:
        """(index used, decoded RGB): backgrounds that fail to decode or that already show a logo
        are skipped for the next usable one, deterministically."""
        while True:
            used, bg = self.inputs.background(index)
            if self.s.audit_on and self._audit(used, bg):
                r = self._audited[used]
                self.inputs.failed[used] = (f"background {self.inputs.background_paths[used]!r} already shows "
                                            f"logo {r.logo_index} ({r.inliers} RANSAC inliers): skipped")
                index = used
                continue
            return used, bg

    def photo(self, index: int, variant: int) -> tuple[int, np.ndarray]:
        """(index used, the background fitted to the canvas) without its surface analysis: the photos
        that occluders and distractors are cut from (the last `PHOTOS_KEPT` are kept)."""
        used, bg = self._usable(index)
        key = (used, variant)
        if key in self._cache:
            return used, self._cache[key][0]
        if key not in self._photos:
            self._photos[key] = fit_background(bg, variant, self.s.out_hw)
            if len(self._photos) > self.PHOTOS_KEPT:
                self._photos.popitem(last=False)
        self._photos.move_to_end(key)
        return used, self._photos[key]

    def get(self, index: int, variant: int):
        """(index used, fitted RGB uint8, Surface or None). Backgrounds that fail to decode or
        that already show a logo are skipped for the next usable one, deterministically."""
        used, bg = self._usable(index)
        key = (used, variant)
        if key in self._cache:
            self._cache.move_to_end(key)
            return (used,) + self._cache[key][:2]
        fitted = fit_background(bg, variant, self.s.out_hw)
        surf = self._analysis(used, variant, fitted) if self.s.surface_on else None
        size = _entry_bytes(fitted, surf)
        self._cache[key] = (fitted, surf, size)
        self._cached_bytes += size
        while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
            self._cached_bytes -= self._cache.popitem(last=False)[1][2]
        return used, fitted, surf


    def _analysis(self, index: int, variant: int, fitted: np.ndarray):
        path = self.inputs.background_paths[index]
        surf = self.surface_cache.get(index, variant, path) if self.surface_cache is not None else None
        if surf is None:
            surf = surface.analyse(fitted, self.s.surface_cfg)
            self.analysed += 1
            if self.surface_cache is not None:
                self.surface_cache.put(index, variant, path, surf)
        return surf
