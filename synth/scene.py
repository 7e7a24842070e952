"""The realism engine: one composite scene, from a seed to pixels and exact boxes.

Stages, each in its own module and each switchable in the config (`realism { ... }`):
  surface (synth.surface)      regions, strong edges and a plane per region, once per backdrop
  placement (synth.placement)  a footprint inside one region, in its perspective, crossing no edge
  colourway (synth.colourway)  the logo as designed, inverted, white, black or on a plate
  geometry (synth.geometry)    the homography of the logo onto its quad, the warp
  light (synth.photometric)    shading, colour cast, shadow, glare
  camera (synth.camera)        blur (before blending) and noise matching (after it, on the composite)
  blending (synth.blending)    hard, feathered, Poisson or Laplacian-pyramid, drawn per object
  occlusion (synth.occlusion)  partial occluders over logos, unlabelled distractors
  gate (synth.gate)            visible fraction, size, contrast, match: objects under it are re-drawn
  audit (synth.audit)          backgrounds that already show a logo are skipped

`compose` draws every random choice from one generator, object by object; an object that
fails the gate is re-drawn (bounded attempts) and never labelled. The accepted choices form
a `SceneParams` record, and `render_scene(record)` reproduces the same pixels without any
randomness. Every box is the tight box of the logo pixels still visible (opacity >= 0.5)
after every later layer: later logos, occluders.

Work is kept to each object's neighbourhood: an object is rendered on its ROI, later layers
multiply earlier opacities only where they are non-zero, and the gate score an object got when
it was pasted is kept unless a later layer changed the region the gate reads (`gate.score_region`).
What depends on a backdrop alone (its surface analysis, placement's candidate centres) is computed
once per backdrop.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import pickle
from collections import OrderedDict
from dataclasses import dataclass, field

import cv2
import numpy as np

from synth import (blending, boxes as boxlib, camera, colourway, config as configlib, framing, gate, geometry,
                   occlusion, photometric, placement, records, surface)
from synth.inputs import Inputs

NUM_FIT_VARIANTS = 6  # crop anchor (start, centre, end) x mirrored or not


@dataclass(frozen=True)
class Settings:
    """The config's realism block, turned into each stage's own settings."""

    out_hw: tuple
    min_objects: int
    max_objects: int
    max_overlap_iou: float
    max_attempts: int
    min_scale: float
    max_scale: float
    surface_on: bool
    surface_cfg: surface.SurfaceConfig
    placement_cfg: placement.PlacementConfig
    light_on: bool
    light_cfg: photometric.LightConfig
    camera_on: bool
    camera_cfg: camera.CameraConfig
    jpeg_range: tuple
    blend_cfg: blending.BlendConfig
    occlusion_on: bool
    occlusion_cfg: occlusion.OcclusionConfig
    distractor_range: tuple
    gate_on: bool
    gate_cfg: gate.GateConfig
    audit_on: bool
    audit_min_inliers: int
    colourways: tuple  # per logo: ((name, weight), ...)
    plates: tuple  # per logo: (r, g, b) or None
    framing_cfg: framing.FramingConfig | None = None  # the size prior; None: min_scale..max_scale
    negative_fraction: float = 0.0

    @classmethod
    def from_config(cls, c) -> "Settings":
        r, p = c.realism, c.placement
        out_hw = (c.image_size.height, c.image_size.width)
        short = min(out_hw)
        sf = r.surface
        occ = r.occlusion
        prior = None
        if p.width_quantiles or not (p.HasField("min_scale") or p.HasField("max_scale")):
            prior = framing.FramingConfig(tuple(p.width_quantiles) or framing.REAL_WIDTH_QUANTILES,
                                          p.truncation_probability, p.max_cut_fraction)
        min_width_px = max(1.0, p.min_scale * short) if prior is None else 8.0
        return cls(
            out_hw=out_hw, min_objects=p.min_objects, max_objects=p.max_objects,
            max_overlap_iou=p.max_overlap_iou, max_attempts=p.max_attempts,
            min_scale=p.min_scale, max_scale=p.max_scale,
            surface_on=sf.enabled,
            surface_cfg=surface.SurfaceConfig(min_area_px=sf.min_region_area_px,
                                              max_texture_regions=surface.SurfaceConfig.max_texture_regions
                                              if sf.texture_regions else 0),
            placement_cfg=placement.PlacementConfig(
                min_width_frac=sf.min_region_share, max_width_frac=sf.max_region_share,
                min_width_px=min_width_px, max_width_canvas=p.max_scale if prior is None else 1.0,
                margin_px=sf.margin_px, max_rotation_deg=sf.max_rotation_deg,
                max_extra_tilt_deg=sf.max_extra_tilt_deg, allow_truncation=sf.allow_truncation,
                max_truncated_fraction=sf.max_truncated_fraction),
            light_on=r.light.enabled,
            light_cfg=photometric.LightConfig(shadow_prob=r.light.shadow_probability,
                                              glare_prob=r.light.glare_probability),
            camera_on=r.camera.enabled,
            camera_cfg=camera.CameraConfig(motion_blur_prob=r.camera.motion_blur_probability),
            jpeg_range=((r.camera.jpeg_quality_min, r.camera.jpeg_quality_max) if r.camera.enabled
                        else (c.jpeg_quality, c.jpeg_quality)),
            blend_cfg=blending.BlendConfig(hard_weight=r.blend.hard_weight, feather_weight=r.blend.feather_weight,
                                           poisson_weight=r.blend.poisson_weight,
                                           laplacian_weight=r.blend.laplacian_weight),
            occlusion_on=occ.enabled,
            occlusion_cfg=occlusion.OcclusionConfig(
                p_occluder=occ.occluder_probability,
                occluded_fraction=(occ.min_occluded_fraction, occ.max_occluded_fraction),
                distractor_count=(occ.min_distractors, occ.max_distractors)),
            distractor_range=(occ.min_distractors, occ.max_distractors),
            gate_on=r.gate.enabled,
            gate_cfg=gate.GateConfig(min_visible_fraction=r.gate.min_visible_fraction,
                                     min_size_px=r.gate.min_size_px, min_contrast=r.gate.min_contrast,
                                     min_match=r.gate.min_match),
            audit_on=r.audit.enabled, audit_min_inliers=r.audit.min_inliers,
            colourways=tuple(tuple((cw.name, cw.weight) for cw in lg.colourway) or (("original", 1.0),)
                             for lg in c.logo),
            plates=tuple(configlib.plate_rgb(lg.plate_colour) if lg.HasField("plate_colour") else None
                         for lg in c.logo),
            framing_cfg=prior, negative_fraction=c.negative_fraction,
        )


@dataclass(frozen=True)
class ObjectParams:
    logo_index: int
    colourway: str
    quad: tuple  # ((x, y) TL, TR, BR, BL) canvas pixels
    placement: placement.PlacementParams | None  # the placement stage's draw (None: a close-up or random)
    light: photometric.LightParams | None
    camera: camera.CameraParams | None
    blend: blending.BlendParams
    occluder: occlusion.OccluderParams | None
    framing: framing.FramingParams | None = None  # the size prior's draw (None: min_scale..max_scale)
    mode: str = "region"  # "region" (surface stage), "closeup" (frontal, no region holds it), "random"


@dataclass(frozen=True)
class SceneParams:
    image_seed: int
    background_index: int
    fit_variant: int
    jpeg_quality: int
    distractors: tuple[occlusion.DistractorParams, ...] = ()
    objects: tuple[ObjectParams, ...] = ()
    rejected: dict = field(default_factory=dict)  # gate or placement reason -> count
    dropped_objects: int = 0  # object slots given up after max_attempts
    negative: bool = False  # drawn as a logo-free composite (negative_fraction)

    def to_json(self) -> dict:
        """The record as plain dicts, tuples and numbers: what dataclasses.asdict gives, without its
        deep copies (every leaf of a record is an immutable number, string or bool)."""
        return records.to_plain(self)

    @classmethod
    def from_json(cls, d: dict) -> "SceneParams":
        """The record `to_json` gave, from it or from its JSON text read back (a params.jsonl line's
        "params"); a malformed one is a synth.errors.RecordError naming the bad field."""
        return records.from_plain(cls, d, "params")


@dataclass
class SceneResult:
    image: np.ndarray  # RGB uint8
    boxes: np.ndarray  # [N, 4] normalised
    logo_indices: np.ndarray  # [N]
    scores: list  # [N] gate.GateScores
    visible: list  # [N] full-canvas visible opacity, float32
    pasted: list  # [N] full-canvas opacity before later layers
    homographies: list  # [N] logo (as pasted, after colourway and pre-shrink) -> canvas
    occluders: list = field(default_factory=list)  # [N] full-canvas opacity of each object's occluder, or None


# -- backdrops: a background fitted to the canvas, with its surface analysis -----------------

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
    from them later (an obstacle map and candidate centres, counted as one more edge map)."""
    if surf is None:
        return fitted.nbytes
    maps = (surf.labels, surf.edges, surf.boundaries, surf.distance_to_edge)
    return fitted.nbytes + sum(m.nbytes for m in maps) + 2 * surf.edges.nbytes


@functools.lru_cache(maxsize=1)
def _surface_code_hash() -> str:
    with open(surface.__file__, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


class SurfaceCache:
    """Surface analyses kept as one file per backdrop in `folder`, so that the worker processes
    of a run analyse each backdrop once between them: without it each worker analyses every
    backdrop it draws (about 80 ms at 640x480; on the embedded default every worker draws nearly
    all 60 backdrops). An analysis is a deterministic function of the backdrop and the config,
    so a loaded one gives the same bytes downstream as a fresh one; a worker that analyses a
    backdrop another is analysing at the same moment only repeats work. Files are written
    atomically and only by the run's own processes, into its `.work/` folder (bound to the
    config's fingerprint and deleted when the run completes). A file records the hash of the
    code that wrote it (synth/surface.py), so a run resumed after an upgrade analyses again
    rather than loading an analysis in an older layout. Writing stops once the folder holds
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

    def get(self, index: int, variant: int):
        """(index used, fitted RGB uint8, Surface or None). Backgrounds that fail to decode or
        that already show a logo are skipped for the next usable one, deterministically."""
        while True:
            used, bg = self.inputs.background(index)
            if self.s.audit_on and self._audit(used, bg):
                r = self._audited[used]
                self.inputs.failed[used] = (f"background {self.inputs.background_paths[used]!r} already shows "
                                            f"logo {r.logo_index} ({r.inliers} RANSAC inliers): skipped")
                index = used
                continue
            break
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


# -- logos as pasted -----------------------------------------------------------------------

class LogoBank:
    """Each logo in each colourway, pre-shrunk by powers of two (warping a 500 px logo straight
    down to 40 px aliases), with its gate.PreparedLogo."""

    def __init__(self, inputs: Inputs, settings: Settings):
        self.inputs, self.s = inputs, settings
        self._cache: dict = {}

    def get(self, logo_index: int, cw: str, width_px: float):
        base = self._colourway(logo_index, cw)
        level = 0
        while base.shape[1] / 2 ** (level + 1) >= 1.5 * width_px and min(base.shape[:2]) / 2 ** (level + 1) >= 16:
            level += 1
        key = (logo_index, cw, level)
        if key not in self._cache:
            img = base
            for _ in range(level):
                img = cv2.resize(img, (max(1, img.shape[1] // 2), max(1, img.shape[0] // 2)),
                                 interpolation=cv2.INTER_AREA)
            self._cache[key] = (img, gate.prepare_logo(img))
        return self._cache[key]

    def premultiplied(self, logo_index: int, cw: str, width_px: float) -> np.ndarray:
        """geometry.premultiply of the logo `get` returns, cached with it."""
        img = self.get(logo_index, cw, width_px)[0]
        key = ("premultiplied", id(img))
        if key not in self._cache:
            self._cache[key] = (img, geometry.premultiply(img))  # img kept alive: its id stays unique
        return self._cache[key][1]

    def _colourway(self, logo_index: int, cw: str) -> np.ndarray:
        key = (logo_index, cw, "base")
        if key not in self._cache:
            self._cache[key] = colourway.apply(self.inputs.logos[logo_index], cw, self.s.plates[logo_index])
        return self._cache[key]


# -- sampling ------------------------------------------------------------------------------

def _random_quad(rng, logo_hw, s: Settings) -> tuple:
    """Frontal placement at a uniformly random position (surface stage off)."""
    oh, ow = s.out_hw
    lh, lw = logo_hw
    w = min(oh, ow) * math.exp(rng.uniform(math.log(s.min_scale), math.log(s.max_scale)))
    h = w * lh / lw
    f = min(1.0, oh / h, ow / w)
    w, h = w * f, h * f
    x, y = rng.uniform(0, ow - w), rng.uniform(0, oh - h)
    return ((x - 0.5, y - 0.5), (x + w - 0.5, y - 0.5), (x + w - 0.5, y + h - 0.5), (x - 0.5, y + h - 0.5))


def _logo_hw(inputs: Inputs, li: int, cw: str) -> tuple[float, float]:
    lh, lw = inputs.logos[li].shape[:2]
    if cw == "plate":  # the plate adds a margin on every side
        lh, lw = lh * 1.3, lw * 1.3
    return lh, lw


def sample_slot(rng, s: Settings, inputs: Inputs) -> tuple:
    """(logo index, colourway, FramingParams or None) of one object slot: drawn once per slot,
    so that the gate's re-draws (which re-draw everything else) keep the colourway mix and the
    size distribution that the config asks for."""
    li = int(rng.integers(len(inputs.logos)))
    names, weights = zip(*s.colourways[li])
    cw = colourway.sample_colourway(rng, names, weights)
    fp = None
    if s.framing_cfg is not None:
        lh, lw = _logo_hw(inputs, li, cw)
        fp = framing.sample_framing(rng, s.framing_cfg, lh / lw, s.out_hw,
                                    s.gate_cfg.min_size_px if s.gate_on else 0.0)
    return li, cw, fp


def _overlaps(quad, taken, s: Settings) -> bool:
    box = placement.quad_box(np.asarray(quad), s.out_hw)
    return any(boxlib.iou(box, placement.quad_box(np.asarray(t), s.out_hw)) > s.max_overlap_iou for t in taken)


def _sample_object(rng, s: Settings, inputs: Inputs, surf, taken, slot) -> ObjectParams | str:
    li, cw, fp = slot
    lh, lw = _logo_hw(inputs, li, cw)
    mode = "region"
    if fp is not None:
        pp = None
        if surf is not None and fp.cut_side is None:
            pp = placement.sample_placement(rng, surf, (lh, lw), s.out_hw, s.placement_cfg, taken,
                                            s.max_overlap_iou, target_width_px=fp.width_px)
        if pp is not None:
            quad, plc = pp.quad, pp
        else:  # a close-up: no region holds it, the border cuts it, or the surface stage is off
            quad, plc = framing.frontal_quad(rng, fp, (lh, lw), s.out_hw), None
            mode = "closeup" if surf is not None else "random"
            if _overlaps(quad, taken, s):
                return "placement: overlaps another logo"
    elif surf is not None:
        pp = placement.sample_placement(rng, surf, (lh, lw), s.out_hw, s.placement_cfg, taken, s.max_overlap_iou)
        if pp is None:
            return "placement: no region fits"
        quad, plc = pp.quad, pp
    else:
        quad, plc, mode = _random_quad(rng, (lh, lw), s), None, "random"
        if _overlaps(quad, taken, s):
            return "placement: overlaps another logo"
    light = photometric.sample_light(rng, s.light_cfg) if s.light_on else None
    cam = camera.sample_camera(rng, s.camera_cfg) if s.camera_on else None
    blend = blending.sample_blend(rng, s.blend_cfg)
    occ = None
    if s.occlusion_on:
        b = placement.quad_box(np.asarray(quad), s.out_hw)
        oh, ow = s.out_hw
        occ = occlusion.sample_occluder(rng, (b[0] * oh, b[1] * ow, b[2] * oh, b[3] * ow), s.out_hw, s.occlusion_cfg)
    return ObjectParams(li, cw, tuple(tuple(map(float, q)) for q in quad), plc, light, cam, blend, occ, fp, mode)


# -- rendering -----------------------------------------------------------------------------

MAX_OVERLAP_TRIES = 8  # with the size prior, a slot gives up after this many overlapping draws
SUB_MARGIN = 32  # blending works on the object's ROI grown by this (Laplacian reach at 4 levels)


@dataclass
class _Layer:
    """One pasted object: its full-canvas opacities and where they (and its canvas changes) lie."""
    pasted: np.ndarray  # full-canvas opacity as blended, float32
    occluder: np.ndarray | None  # full-canvas opacity of its occluder
    H: np.ndarray
    prepared: gate.PreparedLogo
    paste_rect: tuple | None  # (y0, x0, y1, x1) outside which `pasted` is 0; None: nothing pasted
    occ_rect: tuple | None  # the same for `occluder`
    changed: tuple | None  # the canvas region this object (and its occluder) may have changed
    score: gate.GateScores | None = None  # gate scores when it was pasted (compose), and
    score_rect: tuple | None = None  # the region they read: still valid while no later layer touches it


def _union(a, b):
    if a is None or b is None:
        return a if b is None else b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _overlap(a, b) -> bool:
    return a is not None and b is not None and a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _render_object(canvas: np.ndarray, backdrop: np.ndarray, o: ObjectParams, bank: LogoBank, s: Settings):
    """Pastes one object (and its occluder) onto uint8 `canvas` (not changed); returns
    (new canvas, _Layer). Only the object's neighbourhood is converted to float and blended."""
    quad = np.asarray(o.quad, np.float64)
    width = float(np.linalg.norm(quad[1] - quad[0]))
    logo, prepared = bank.get(o.logo_index, o.colourway, width)
    H = geometry.logo_homography(logo.shape[:2], quad)
    rgb, alpha, roi = geometry.warp_rgba(logo, H, s.out_hw, bank.premultiplied(o.logo_index, o.colourway, width))
    pasted = np.zeros(s.out_hw, np.float32)
    if roi[2] <= roi[0] or roi[3] <= roi[1]:
        return canvas, _Layer(pasted, None, H, prepared, None, None, None)
    # Room around the footprint for the light stage's context ring and the soft shadow.
    margin = photometric.needed_margin(alpha, o.light) if o.light is not None else 0
    if margin:
        rgb, alpha, roi = photometric.pad_roi(rgb, alpha, roi, margin, s.out_hw)
    y0, x0, y1, x1 = roi
    oh, ow = s.out_hw
    Y0, X0 = max(0, y0 - SUB_MARGIN), max(0, x0 - SUB_MARGIN)
    Y1, X1 = min(oh, y1 + SUB_MARGIN), min(ow, x1 + SUB_MARGIN)
    sub = canvas[Y0:Y1, X0:X1].astype(np.float32)
    rel = (y0 - Y0, x0 - X0, y1 - Y0, x1 - X0)
    region = sub[rel[0]:rel[2], rel[1]:rel[3]]
    artwork = rgb  # the logo as drawn: where it is flat, the sensor stage reads noise
    if o.light is not None:  # lit by the background as it was, before the logo's own shadow
        rgb = photometric.relight(rgb, alpha, region, o.light)
    if o.camera is not None:  # optics before blending, the sensor after
        rgb, alpha = camera.match_optics(rgb, alpha, region, o.camera)
    if o.light is not None and o.light.shadow:
        region[...] = photometric.shadow(region, alpha, o.light)
    sub, eff = blending.blend(sub, rgb, alpha, rel, o.blend, inplace=True)
    if o.camera is not None and o.camera.match_noise:
        share = np.zeros(sub.shape[:2], np.float32)
        share[rel[0]:rel[2], rel[1]:rel[3]] = eff
        drawn = np.zeros(sub.shape, np.float32)
        drawn[rel[0]:rel[2], rel[1]:rel[3]] = artwork
        sub = camera.match_sensor(sub, share, o.camera, drawn)
    pasted[y0:y1, x0:x1] = eff
    out = canvas.copy()
    out[Y0:Y1, X0:X1] = np.clip(sub + 0.5, 0, 255).astype(np.uint8)
    occ_alpha = occ_rect = None
    if o.occluder is not None:
        out, occ_alpha = occlusion.render_occluder(out, backdrop, o.occluder, inplace=True)
        occ_rect = occlusion.occluder_region(o.occluder, s.out_hw)
    return out, _Layer(pasted, occ_alpha, H, prepared, (y0, x0, y1, x1), occ_rect, _union((Y0, X0, Y1, X1), occ_rect))


def _times_clear(v: np.ndarray, a: np.ndarray, rect) -> None:
    """v *= 1 - a, where a can be non-zero (inside rect); elsewhere the factor is exactly 1."""
    if rect is not None:
        y0, x0, y1, x1 = rect
        v[y0:y1, x0:x1] *= 1.0 - a[y0:y1, x0:x1]


def _layers_visible(layers: list) -> list:
    """visible_i = pasted_i x prod over later layers (later logos, own and later occluders) of (1 - a)."""
    out = []
    for i, la in enumerate(layers):
        v = la.pasted.copy()
        if la.paste_rect is not None:
            if la.occluder is not None:
                _times_clear(v, la.occluder, la.occ_rect)
            for later in layers[i + 1:]:
                _times_clear(v, later.pasted, later.paste_rect)
                if later.occluder is not None:
                    _times_clear(v, later.occluder, later.occ_rect)
        out.append(v)
    return out


def _visible_box(v: np.ndarray, rect):
    """boxes.tight_box(v >= VISIBLE_ALPHA), searching only `rect` (v is 0 outside it)."""
    if rect is None:
        return None
    y0, x0, y1, x1 = rect
    m = v[y0:y1, x0:x1] >= boxlib.VISIBLE_ALPHA
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    h, w = v.shape
    return boxlib.from_pixels(rows[0] + y0, cols[0] + x0, rows[-1] + 1 + y0, cols[-1] + 1 + x0, h, w)


def _finish(canvas, layers: list):
    """Boxes (None when nothing is visible) and final gate scores of the layers: the score a layer
    got when it was pasted is kept while no later layer touched the region the gate reads."""
    visible = _layers_visible(layers)
    boxes, scores = [], []
    for i, (v, la) in enumerate(zip(visible, layers)):
        box = _visible_box(v, la.paste_rect)
        boxes.append(box)
        if box is None:
            scores.append(gate.GateScores(0.0, 0.0, 0.0, 0.0))
        elif la.score is not None and not any(_overlap(la.score_rect, r) for later in layers[i + 1:]
                                              for r in (later.changed, later.paste_rect, later.occ_rect)):
            scores.append(la.score)
        else:
            scores.append(gate.score(la.prepared, la.H, canvas, v, la.pasted))
    return boxes, scores, visible


def _render_all(p: SceneParams, backdrops: Backdrops, bank: LogoBank, s: Settings):
    """Applies a SceneParams record (no randomness): the canvas and, per object, its box (or
    None when nothing of it is visible), gate scores, visible and pasted opacity, homography."""
    _, backdrop, _ = backdrops.get(p.background_index, p.fit_variant)
    canvas = backdrop
    if p.distractors:
        canvas, _ = occlusion.render_distractors(canvas, list(p.distractors), opacity=False)
    layers = []
    for o in p.objects:
        canvas, la = _render_object(canvas, backdrop, o, bank, s)
        layers.append(la)
    boxes, scores, visible = _finish(canvas, layers)
    return (canvas, boxes, scores, visible, [la.pasted for la in layers], [la.H for la in layers],
            [la.occluder for la in layers])


def render_scene(p: SceneParams, backdrops: Backdrops, bank: LogoBank, s: Settings) -> SceneResult:
    """Applies a SceneParams record deterministically; every object of a record from
    `compose` is visible and passes the gate, so each gets a box."""
    canvas, boxes, scores, visible, pasted, hs, occs = _render_all(p, backdrops, bank, s)
    keep = [i for i, b in enumerate(boxes) if b is not None]
    return SceneResult(canvas, np.array([boxes[i] for i in keep], np.float32).reshape(-1, 4),
                       np.array([p.objects[i].logo_index for i in keep], np.int64), [scores[i] for i in keep],
                       [visible[i] for i in keep], [pasted[i] for i in keep], [hs[i] for i in keep],
                       [occs[i] for i in keep])


def _failing(boxes, scores, s: Settings) -> int | None:
    for i, (b, sc) in enumerate(zip(boxes, scores)):
        if b is None or (s.gate_on and sc.reasons(s.gate_cfg)):
            return i
    return None


def compose(rng: np.random.Generator, seed: int, inputs: Inputs, backdrops: Backdrops, bank: LogoBank,
            s: Settings, backdrop_rng: np.random.Generator | None = None) -> tuple[SceneParams, SceneResult]:
    """Draws one scene, object by object, re-drawing objects the gate rejects. The backdrop
    (background and fit) is drawn from `backdrop_rng` when given, so that runners can reuse
    one analysed backdrop for several consecutive composites."""
    n_bg = len(inputs.background_paths)
    brng = backdrop_rng if backdrop_rng is not None else rng
    variant = int(brng.integers(NUM_FIT_VARIANTS))
    used, backdrop, surf = backdrops.get(int(brng.integers(n_bg)), variant)
    jpeg_quality = int(rng.integers(s.jpeg_range[0], s.jpeg_range[1] + 1))
    distractors = ()
    canvas = backdrop
    if s.occlusion_on and s.distractor_range[1] > 0:
        distractors = tuple(occlusion.sample_distractors(rng, s.out_hw, s.distractor_range, s.occlusion_cfg))
        canvas, _ = occlusion.render_distractors(canvas, list(distractors), opacity=False)
    negative = s.negative_fraction > 0 and float(rng.random()) < s.negative_fraction
    n = 0 if negative else int(rng.integers(s.min_objects, s.max_objects + 1))
    objects, taken, rejected, dropped, layers = [], [], {}, 0, []
    slot_count, rescue = n, s.framing_cfg is not None
    while slot_count > 0:
        slot_count -= 1
        slot = sample_slot(rng, s, inputs)
        overlaps = 0
        for _attempt in range(s.max_attempts):
            o = _sample_object(rng, s, inputs, surf, taken, slot)
            if isinstance(o, str):
                rejected[o] = rejected.get(o, 0) + 1
                if o.startswith("placement: no region") and s.framing_cfg is None:
                    break  # sample_placement has already spent its own attempts
                overlaps += o.startswith("placement: overlaps")
                if s.framing_cfg is not None and overlaps >= MAX_OVERLAP_TRIES:
                    break  # a logo of this slot's size finds no free space beside the others
                continue
            trial, la = _render_object(canvas, backdrop, o, bank, s)
            if s.gate_on:
                v = la.pasted * (1.0 - la.occluder) if la.occluder is not None else la.pasted
                la.score = gate.score(la.prepared, la.H, trial, v, la.pasted)
                la.score_rect = gate.score_region(la.prepared, la.H, s.out_hw)
                reasons = la.score.reasons(s.gate_cfg)
                if reasons:
                    for r in reasons:
                        key = "gate: " + r.split(":")[0]
                        rejected[key] = rejected.get(key, 0) + 1
                    continue
            objects.append(o)
            taken.append(np.asarray(o.quad))
            layers.append(la)
            canvas = trial
            break
        else:
            o = None  # every attempt failed
        if o is None or not objects or objects[-1] is not o:
            dropped += 1  # the attempts ran out, or the placement stage gave up on this slot
        if slot_count == 0 and rescue and not objects:
            # Every slot failed (the gate refused the logo at its size on this backdrop): one fresh
            # slot, so that a composite is empty only when drawn as a negative.
            rescue, slot_count = False, 1
            rejected["rescue: a fresh slot"] = rejected.get("rescue: a fresh slot", 0) + 1
    params = SceneParams(seed, used, variant, jpeg_quality, distractors, tuple(objects), rejected, dropped, negative)
    boxes, scores, visible = _finish(canvas, layers)
    pasted, hs, occs = [la.pasted for la in layers], [la.H for la in layers], [la.occluder for la in layers]
    # Later logos and occluders can cover earlier logos: drop any that no longer pass, re-render.
    while True:
        bad = _failing(boxes, scores, s)
        if bad is None:
            break
        rej = dict(params.rejected)
        rej["gate: covered by a later layer"] = rej.get("gate: covered by a later layer", 0) + 1
        params = SceneParams(seed, used, variant, jpeg_quality, distractors,
                             tuple(o for k, o in enumerate(params.objects) if k != bad), rej,
                             params.dropped_objects + 1, negative)
        canvas, boxes, scores, visible, pasted, hs, occs = _render_all(params, backdrops, bank, s)
    return params, SceneResult(canvas, np.array(boxes, np.float32).reshape(-1, 4),
                               np.array([o.logo_index for o in params.objects], np.int64), scores, visible,
                               pasted, hs, occs)
