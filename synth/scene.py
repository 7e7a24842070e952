"""Sampling and rendering one composite scene: from a seed to pixels and exact boxes.

What a scene is drawn from lives in modules of its own: synth.settings (the config's realism
block as each stage's settings), synth.backdrops (backgrounds fitted to the canvas with their
surface analyses, cached, and the background audit) and synth.logo_bank (each logo per
colourway, pre-shrunk). synth.engine drives this module once per composite.

Stages, each in its own module and each switchable in the config (`realism { ... }`):
  surface (synth.surface)      regions, strong edges and a plane per region, once per backdrop
  context (synth.context)      the first logo's own product (sign, can, shirt, close-up) in the brand's colours
  placement (synth.placement)  a footprint inside one region, in its perspective, crossing no edge
  colourway (synth.colourway)  the logo as designed, inverted, white, black, on a plate or tinted
  curvature (synth.curvature)  the logo wrapped around a cylinder or bent by a fold, shaded, in its
                               own plane (a "frame" the placement lays like a flat logo); off by default
  geometry (synth.geometry)    the homography of the logo onto its quad, the warp
  light (synth.photometric)    shading, colour cast, shadow, glare
  camera (synth.camera)        blur (before blending) and noise matching (after it, on the composite)
  blending (synth.blending)    hard, feathered, Poisson or Laplacian-pyramid, drawn per object
  occlusion (synth.occlusion)  partial occluders over logos, unlabelled distractors, both cut
                               from other photos of the pool (synth.cutout)
  gate (synth.gate)            visible fraction, size, contrast, match: objects under it are re-drawn
  audit (synth.audit)          backgrounds that already show a logo are skipped

`compose` draws every random choice from one generator, object by object; an object that
fails the gate is re-drawn (bounded attempts) and never labelled. The accepted choices form
a `SceneParams` record, and `render_scene(record)` reproduces the same pixels without any
randomness. Every box is the tight box of the logo pixels still visible (opacity >= 0.5)
after every later layer: later logos, occluders, distractors (drawn last, over everything).

Work is kept to each object's neighbourhood: an object is rendered on its ROI, later layers
multiply earlier opacities only where they are non-zero, and the gate score an object got when
it was pasted is kept unless a later layer changed the region the gate reads (`gate.score_region`).
What depends on a backdrop alone (its surface analysis, placement's candidate centres) is computed
once per backdrop.
"""

from __future__ import annotations

import collections
import functools
import math
from dataclasses import dataclass, field

import numpy as np

from synth import (blending, boxes as boxlib, camera, colourway, context, context_draw, curvature, framing, gate,
                   geometry, occlusion, photometric, placement, records)
from synth.backdrops import NUM_FIT_VARIANTS, Backdrops
from synth.boxes import PixelRect
from synth.inputs import Inputs
from synth.pixels import clip_to
from synth.logo_bank import LogoBank
from synth.settings import Settings

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
    mode: str = "region"  # "region" (surface stage), "closeup" (frontal, no region holds it), "random",
    # "context" (on the scene's context, synth.context)
    curvature: curvature.CurvatureParams | None = None  # the curvature stage's draw (None: flat); the
    # quad then holds the curved logo's frame (synth.curvature), not the flat logo


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
    context: context.ContextParams | None = None  # the first logo's product surface (synth.context)

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
    homographies: list  # [N] logo (as pasted, after colourway, pre-shrink and curvature: `pasted_logo`) -> canvas
    occluders: list = field(default_factory=list)  # [N] full-canvas opacity of each object's occluder, or None
    distractors: np.ndarray | None = None  # full-canvas combined opacity of the distractors (drawn last), or None


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


def _logo_hw(inputs: Inputs, li: int, cw: str, cp: curvature.CurvatureParams | None = None) -> tuple[float, float]:
    """(height, width) of what the placement lays on the image: the logo (with its plate's margin),
    or the frame of the curved logo."""
    lh, lw = inputs.logos[li].shape[:2]
    if cw == "plate":  # the plate adds a margin on every side
        lh, lw = lh * 1.3, lw * 1.3
    if cp is not None:
        return curvature.frame_size(cp, (lh, lw))
    return lh, lw


def sample_slot(rng, s: Settings, inputs: Inputs, bank: LogoBank | None = None) -> tuple:
    """(logo index, colourway, FramingParams or None, CurvatureParams or None) of one object slot:
    drawn once per slot, so that the gate's re-draws (which re-draw everything else) keep the
    colourway mix, the share of curved logos and the size distribution that the config asks for.
    The curvature stage draws nothing when it is off. With `bank`, the size prior starts at the size
    where the logo's finest structure reaches the gate's min_detail_px (bank.readable_side)."""
    li = int(rng.integers(len(inputs.logos)))
    names, weights = zip(*s.colourways[li])
    cw = colourway.sample_colourway(rng, names, weights)
    cp = curvature.sample_curvature(rng, s.curvature_cfg) if s.curvature_on else None
    fp = None
    if s.framing_cfg is not None:
        lh, lw = _logo_hw(inputs, li, cw, cp)
        min_side = 0.0
        if s.gate_on:
            min_side = s.gate_cfg.min_size_px
            if bank is not None:
                # framing raises a draw to MIN_SIDE_MARGIN x min_side; READABLE_MARGIN is the room kept
                # above the readable size (tilt and blur lower detail_px a little)
                min_side = max(min_side, bank.readable_side(li, cw) * READABLE_MARGIN / framing.MIN_SIDE_MARGIN)
        fp = framing.sample_framing(rng, s.framing_cfg, lh / lw, s.out_hw, min_side)
    return li, cw, fp, cp


def _overlaps(quad, taken, s: Settings) -> bool:
    box = placement.quad_box(np.asarray(quad), s.out_hw)
    return any(boxlib.crowds(box, placement.quad_box(np.asarray(t), s.out_hw), s.max_overlap_iou) for t in taken)


CONTEXT_OVERLAP = "placement: overlaps the context"
VANISHED = "render: nothing of it visible"


@dataclass(frozen=True, eq=False)
class OccluderSource:
    """What a scene's occluders are cut against (synth.cutout): the pool's cutter, the composite's
    own background (its index, which the cut comes from another photo than) and its backdrop pixels."""

    cutter: object = None
    background_index: int | None = None
    backdrop: np.ndarray | None = None


def _edge_share(surf):
    """framing.edge_share of the surface's strong edges and region boundaries, as a function of a quad
    (their integral image is made once per surface)."""
    if "framing.edge_integral" not in surf.derived:
        surf.derived["framing.edge_integral"] = framing.edge_integral(surf.edges | surf.boundaries)
    return functools.partial(framing.edge_share, surf.derived["framing.edge_integral"])


def _sample_object(rng, s: Settings, inputs: Inputs, surf, taken, slot, ctx_cover=None,
                   occ_src: OccluderSource = OccluderSource()) -> ObjectParams | str:
    """`ctx_cover`: the scene's context coverage (synth.context), which other logos stay off;
    `occ_src`: what the occluders are cut against."""
    li, cw, fp, cp = slot
    lh, lw = _logo_hw(inputs, li, cw, cp)
    mode = "region"
    if fp is not None:
        pp = None
        if surf is not None and fp.cut_side is None:
            pp = placement.sample_placement(rng, surf, (lh, lw), s.out_hw, s.placement_cfg, taken,
                                            s.max_overlap_iou, target_width_px=fp.width_px)
        if pp is not None:
            quad, plc = pp.quad, pp
        else:  # a close-up: no region holds it, the border cuts it, or the surface stage is off
            k = s.framing_cfg.closeup_candidates
            share = _edge_share(surf) if surf is not None and k > 1 else None
            quad, plc = framing.frontal_quad(rng, fp, (lh, lw), s.out_hw, candidates=k, edge_share=share), None
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
    if ctx_cover is not None and context_draw.overlap(quad, ctx_cover) > 0.02:
        return CONTEXT_OVERLAP
    return _with_stages(rng, s, li, cw, quad, plc, fp, mode, cp, occ_src)


def _sample_on_context(rng, s: Settings, inputs: Inputs, ctx: context.ContextParams, taken, slot,
                       occ_src: OccluderSource = OccluderSource()) -> ObjectParams | str:
    """The slot's logo laid on the context, at the size prior's width (min_scale..max_scale without it)."""
    li, cw, fp, cp = slot
    lh, lw = _logo_hw(inputs, li, cw, cp)
    if fp is not None:
        target = fp.width_px
    else:
        target = min(s.out_hw) * math.exp(rng.uniform(math.log(s.min_scale), math.log(s.max_scale)))
    cut = (fp.cut_side, fp.cut_fraction) if fp is not None and fp.cut_side is not None else None
    quad = context.sample_logo_quad(rng, ctx, s.context_cfg, (lh, lw), s.out_hw, target, cut)
    if quad is None:
        return "context: the logo does not fit on it"
    if _overlaps(quad, taken, s):
        return "placement: overlaps another logo"
    return _with_stages(rng, s, li, cw, quad, None, fp, "context", cp, occ_src)


def _with_stages(rng, s: Settings, li, cw, quad, plc, fp, mode, cp,
                 occ_src: OccluderSource = OccluderSource()) -> ObjectParams:
    """The object at `quad` with the light, camera, blend and occlusion stages' draws."""
    light = photometric.sample_light(rng, s.light_cfg) if s.light_on else None
    cam = camera.sample_camera(rng, s.camera_cfg) if s.camera_on else None
    blend = blending.sample_blend(rng, s.blend_cfg)
    occ = None
    if s.occlusion_on:
        b = placement.quad_box(np.asarray(quad), s.out_hw)
        oh, ow = s.out_hw
        occ = occlusion.sample_occluder(rng, (b[0] * oh, b[1] * ow, b[2] * oh, b[3] * ow), s.out_hw, s.occlusion_cfg,
                                        occ_src.cutter, occ_src.background_index, occ_src.backdrop)
    return ObjectParams(li, cw, tuple(tuple(map(float, q)) for q in quad), plc, light, cam, blend, occ, fp, mode, cp)


# -- rendering -----------------------------------------------------------------------------

READABLE_MARGIN = 1.2  # the size prior starts at this x the logo's readable size (gate min_detail_px)
MAX_OVERLAP_TRIES = 8  # with the size prior, a slot gives up after this many overlapping draws
SUB_MARGIN = 32  # blending works on the object's ROI grown by this (Laplacian reach at 4 levels)


@dataclass
class _Layer:
    """One pasted object: its full-canvas opacities and where they (and its canvas changes) lie."""
    pasted: np.ndarray  # full-canvas opacity as blended, float32
    occluder: np.ndarray | None  # full-canvas opacity of its occluder
    H: np.ndarray
    prepared: gate.PreparedLogo
    paste_rect: PixelRect | None  # outside it `pasted` is 0; None: nothing pasted
    occ_rect: PixelRect | None  # the same for `occluder`
    changed: PixelRect | None  # the canvas region this object (and its occluder) may have changed
    score: gate.GateScores | None = None  # gate scores when it was pasted (compose), and
    score_rect: PixelRect | None = None  # the region they read: still valid while no later layer touches it
    score_read: tuple | None = None  # (composite, visible opacity) in score_rect as scored: still valid
    # while they are unchanged (the score is a function of them, its paste and its own pasted opacity)


def pasted_logo(o: ObjectParams, bank: LogoBank):
    """(the RGBA logo as pasted: after its colourway, pre-shrink and curvature; its gate.PreparedLogo;
    its geometry.premultiply): what the object's homography (its quad) maps onto the canvas."""
    quad = np.asarray(o.quad, np.float64)
    width = float(np.linalg.norm(quad[1] - quad[0]))
    if o.curvature is not None:
        return bank.curved(o.logo_index, o.colourway, width, o.curvature)
    logo, prepared = bank.get(o.logo_index, o.colourway, width)
    return logo, prepared, bank.premultiplied(o.logo_index, o.colourway, width)


def _render_object(canvas: np.ndarray, cutter, o: ObjectParams, bank: LogoBank, s: Settings,
                   ctx: context_draw.Drawn | None = None):
    """Pastes one object (and its occluder) onto uint8 `canvas` (not changed); returns
    (new canvas, _Layer). Only the object's neighbourhood is converted to float and blended.
    `ctx`: the scene's context as drawn (synth.context_draw.render): a logo printed on it is lit by its
    light (its paint's colour is no light), shares its grain and the photo's optics."""
    on_ctx = ctx is not None and o.mode == "context"
    logo, prepared, pre = pasted_logo(o, bank)
    H = geometry.logo_homography(logo.shape[:2], np.asarray(o.quad, np.float64))
    rgb, alpha, roi = geometry.warp_rgba(logo, H, s.out_hw, pre)
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
        lit_by = ctx.light[y0:y1, x0:x1] if on_ctx else region
        rgb = photometric.relight(rgb, alpha, lit_by, o.light)
    if o.camera is not None:  # optics before blending, the sensor after (on a context: the photo's optics,
        # which its smooth paint does not show)
        optics = ctx.backdrop[y0:y1, x0:x1].astype(np.float32) if on_ctx else region
        rgb, alpha = camera.match_optics(rgb, alpha, optics, o.camera)
    if o.light is not None and o.light.shadow:
        region[...] = photometric.shadow(region, alpha, o.light)
    sub, eff = blending.blend(sub, rgb, alpha, rel, o.blend, inplace=True)
    if on_ctx:
        sub[rel[0]:rel[2], rel[1]:rel[3]] += (ctx.grain[y0:y1, x0:x1] * eff)[..., None]
    if o.camera is not None and o.camera.match_noise:
        share = np.zeros(sub.shape[:2], np.float32)
        share[rel[0]:rel[2], rel[1]:rel[3]] = eff
        drawn = np.zeros(sub.shape, np.float32)
        drawn[rel[0]:rel[2], rel[1]:rel[3]] = artwork
        sub = camera.match_sensor(sub, share, o.camera, drawn)
    pasted[y0:y1, x0:x1] = eff
    out = canvas.copy()
    out[Y0:Y1, X0:X1] = clip_to(sub + np.float32(0.5), 255.0).astype(np.uint8)
    occ_alpha = occ_rect = None
    if o.occluder is not None:
        out, occ_alpha = occlusion.render_occluder(out, cutter, o.occluder, inplace=True)
        occ_rect = PixelRect.of(occlusion.occluder_region(o.occluder, s.out_hw))
    return out, _Layer(pasted, occ_alpha, H, prepared, PixelRect(y0, x0, y1, x1), occ_rect,
                       PixelRect(Y0, X0, Y1, X1).union(occ_rect))


def _times_clear(v: np.ndarray, a: np.ndarray, rect: PixelRect | None) -> None:
    """v *= 1 - a, where a can be non-zero (inside rect); elsewhere the factor is exactly 1."""
    if rect is not None:
        y0, x0, y1, x1 = rect
        v[y0:y1, x0:x1] *= 1.0 - a[y0:y1, x0:x1]


@dataclass
class _Top:
    """The distractors, drawn over every object: their combined opacity and the regions it lies in."""
    alpha: np.ndarray
    rects: list  # PixelRect per distractor drawn


def _layers_visible(layers: list, top: _Top | None = None) -> list:
    """visible_i = pasted_i x prod over later layers (later logos, own and later occluders, the
    distractors) of (1 - a)."""
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
            if top is not None:
                for r in top.rects:
                    if r.overlaps(la.paste_rect):
                        _times_clear(v, top.alpha, r)
        out.append(v)
    return out


def _visible_box(v: np.ndarray, rect: PixelRect | None):
    """boxes.tight_box(v >= VISIBLE_ALPHA), searching only `rect` (v is 0 outside it)."""
    if rect is None:
        return None
    y0, x0, y1, x1 = rect
    r = boxlib.tight_rect(v[y0:y1, x0:x1] >= boxlib.VISIBLE_ALPHA)
    if r is None:
        return None
    return boxlib.from_pixels(r.y0 + y0, r.x0 + x0, r.y1 + y0, r.x1 + x0, *v.shape)


def _reads_unchanged(la: _Layer, canvas: np.ndarray, visible: np.ndarray) -> bool:
    """Whether the composite and the visible opacity in the region the layer's gate score read
    (gate.score_region) are still what they were when it was scored: then the score is too."""
    y0, x0, y1, x1 = la.score_rect
    rgb, vis = la.score_read
    return np.array_equal(canvas[y0:y1, x0:x1], rgb) and np.array_equal(visible[y0:y1, x0:x1], vis)


def _finish(canvas, layers: list, top: _Top | None = None):
    """Boxes (None when nothing is visible) and final gate scores of the layers: the score a layer
    got when it was pasted is kept while no later layer (nor a distractor) touched the region the
    gate reads."""
    visible = _layers_visible(layers, top)
    top_rects = top.rects if top is not None else []
    boxes, scores = [], []
    for i, (v, la) in enumerate(zip(visible, layers)):
        box = _visible_box(v, la.paste_rect)
        boxes.append(box)
        if box is None:
            scores.append(gate.ZERO)
        elif la.score is not None and not any(la.score_rect.overlaps(r) for later in layers[i + 1:]
                                              for r in (later.changed, later.paste_rect, later.occ_rect)) \
                and not any(la.score_rect.overlaps(r) for r in top_rects):
            scores.append(la.score)
        elif la.score_read is not None and _reads_unchanged(la, canvas, v):
            scores.append(la.score)  # a later layer's region overlaps, but not one pixel the score read changed
        else:
            scores.append(gate.score(la.prepared, la.H, canvas, v, la.pasted))
    return boxes, scores, visible


def _render_all(p: SceneParams, backdrops: Backdrops, bank: LogoBank, s: Settings):
    """Applies a SceneParams record (no randomness): the canvas and, per object, its box (or
    None when nothing of it is visible), gate scores, visible and pasted opacity, homography."""
    _, backdrop, _ = backdrops.get(p.background_index, p.fit_variant)
    drawn = None
    if p.context is not None:
        drawn = context_draw.render(backdrop, p.context)
        backdrop = drawn.image
    canvas = backdrop
    layers = []
    for o in p.objects:
        canvas, la = _render_object(canvas, backdrops.cutter, o, bank, s, drawn)
        layers.append(la)
    canvas, top = _draw_distractors(canvas, p.distractors, backdrops.cutter)
    boxes, scores, visible = _finish(canvas, layers, top)
    return (canvas, boxes, scores, visible, [la.pasted for la in layers], [la.H for la in layers],
            [la.occluder for la in layers], top)


def _draw_distractors(canvas, distractors, cutter):
    if not distractors:
        return canvas, None
    canvas, alpha, rects = occlusion.render_distractors(canvas, cutter, list(distractors))
    return canvas, _Top(alpha, [PixelRect(*r) for r in rects])


def render_scene(p: SceneParams, backdrops: Backdrops, bank: LogoBank, s: Settings) -> SceneResult:
    """Applies a SceneParams record deterministically; every object of a record from
    `compose` is visible and passes the gate, so each gets a box."""
    canvas, boxes, scores, visible, pasted, hs, occs, top = _render_all(p, backdrops, bank, s)
    keep = [i for i, b in enumerate(boxes) if b is not None]
    return SceneResult(canvas, np.array([boxes[i] for i in keep], np.float32).reshape(-1, 4),
                       np.array([p.objects[i].logo_index for i in keep], np.int64), [scores[i] for i in keep],
                       [visible[i] for i in keep], [pasted[i] for i in keep], [hs[i] for i in keep],
                       [occs[i] for i in keep], top.alpha if top is not None else None)


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
    canvas = backdrop
    negative = s.negative_fraction > 0 and float(rng.random()) < s.negative_fraction
    n = 0 if negative else int(rng.integers(s.min_objects, s.max_objects + 1))
    ctx = ctx_cover = drawn = first = None
    if s.context_on and n > 0:  # the context is the first slot's product: its logo and colourway set the colours
        first = sample_slot(rng, s, inputs, bank)
        li, cw, _, cp = first
        ctx = context.sample_context(rng, s.context_cfg, s.out_hw, li, cw, _logo_hw(inputs, li, cw, cp),
                                     bank.context_colours(li, cw),
                                     *((first[2].visible_width_share, first[2].cut_side) if first[2] is not None
                                       else (None, None)))
        if ctx is not None:
            drawn = context_draw.render(backdrop, ctx)
            backdrop, ctx_cover = drawn.image, drawn.cover
            canvas = backdrop
    occ_src = OccluderSource(backdrops.cutter, used, backdrop)
    objects, taken, rejected, dropped, layers = [], [], collections.Counter(), 0, []
    slot_count, rescue = n, s.framing_cfg is not None
    while slot_count > 0:
        slot_count -= 1
        slot, first = (first if first is not None else sample_slot(rng, s, inputs, bank)), None
        on_ctx = ctx is not None and not any(o.mode == "context" for o in objects)
        if on_ctx:  # whichever slot goes on the context shows the context's logo in its colourway
            slot = (ctx.logo_index, ctx.colourway, slot[2], slot[3])
        overlaps = 0
        for _attempt in range(s.max_attempts):
            if on_ctx:
                o = _sample_on_context(rng, s, inputs, ctx, taken, slot, occ_src)
            elif ctx is not None and ctx.shape == "closeup":
                o = CONTEXT_OVERLAP  # the close-up fills the frame: no room for another logo
            else:
                o = _sample_object(rng, s, inputs, surf, taken, slot, ctx_cover, occ_src)
            if isinstance(o, str):
                rejected[o] += 1
                if o.startswith("placement: no region") and s.framing_cfg is None:
                    break  # sample_placement has already spent its own attempts
                overlaps += o.startswith("placement: overlaps")
                if (s.framing_cfg is not None or o == CONTEXT_OVERLAP) and overlaps >= MAX_OVERLAP_TRIES:
                    break  # a logo of this slot's size finds no free space beside the others
                if o == CONTEXT_OVERLAP and ctx.shape == "closeup":
                    break
                continue
            trial, la = _render_object(canvas, backdrops.cutter, o, bank, s, drawn)
            v = la.pasted * (1.0 - la.occluder) if la.occluder is not None else la.pasted  # visible opacity
            if s.gate_on:
                la.score = gate.score(la.prepared, la.H, trial, v, la.pasted)
                la.score_rect = PixelRect(*gate.score_region(la.prepared, la.H, s.out_hw))
                reasons = la.score.reasons(s.gate_cfg)
                if reasons:
                    for r in reasons:
                        key = "gate: " + r.split(":")[0]
                        rejected[key] += 1
                    continue
                y0, x0, y1, x1 = la.score_rect
                la.score_read = (trial[y0:y1, x0:x1].copy(), v[y0:y1, x0:x1].copy())
            elif _visible_box(v, la.paste_rect) is None:
                # no gate to refuse it, but nothing of it shows (a few pixels, or under an occluder): re-drawn,
                # or the composite could end up empty by accident
                rejected[VANISHED] += 1
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
            rejected["rescue: a fresh slot"] += 1
    distractors, top = (), None
    if s.occlusion_on and s.distractor_range[1] > 0:
        # Drawn last, over everything, where they cover at most max_distractor_overlap of any logo's box.
        oh, ow = s.out_hw
        avoid = [tuple(float(v) * d for v, d in zip(placement.quad_box(np.asarray(o.quad), s.out_hw), (oh, ow, oh, ow)))
                 for o in objects]
        distractors = tuple(occlusion.sample_distractors(rng, s.out_hw, s.occlusion_cfg, backdrops.cutter, used,
                                                         avoid, s.distractor_range, backdrop))
        canvas, top = _draw_distractors(canvas, distractors, backdrops.cutter)
    params = SceneParams(seed, used, variant, jpeg_quality, distractors, tuple(objects), dict(rejected), dropped,
                         negative, ctx)
    boxes, scores, visible = _finish(canvas, layers, top)
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
                             params.dropped_objects + 1, negative, ctx)
        canvas, boxes, scores, visible, pasted, hs, occs, top = _render_all(params, backdrops, bank, s)
    return params, SceneResult(canvas, np.array(boxes, np.float32).reshape(-1, 4),
                               np.array([o.logo_index for o in params.objects], np.int64), scores, visible,
                               pasted, hs, occs, top.alpha if top is not None else None)
