"""Loading and validating generation configs (text-format protobuf).

Parsing is strict: an unknown field is an error, and so is any value outside its
allowed range. Every error names the file and the field.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from importlib import resources

from google.protobuf import text_format

from synth import colourway, framing
from synth.errors import ConfigError

try:
    from synth.protos import generation_config_pb2
except ImportError as exc:  # pragma: no cover - only before `make setup`
    raise ImportError(
        "synth/protos/generation_config_pb2.py is missing: run `make setup`, which compiles "
        "protos/generation_config.proto") from exc

GenerationConfig = generation_config_pb2.GenerationConfig
DEFAULT_CONFIG_NAME = "default.config"


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config and the file it came from (for resolving relative paths)."""

    proto: GenerationConfig
    source: str  # file path, or "<embedded default>"
    base_dir: str  # folder relative paths are resolved against

    def resolve(self, path: str) -> str:
        path = os.path.expanduser(path)
        return path if os.path.isabs(path) else os.path.normpath(os.path.join(self.base_dir, path))


def parse_message(message_cls, text: str, source: str):
    """Parses text format into a new `message_cls`; raises ConfigError naming `source` on any error."""
    msg = message_cls()
    try:
        text_format.Parse(text, msg)
    except text_format.ParseError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return msg


def parse_config_text(text: str, source: str) -> GenerationConfig:
    """Parses text-format config; raises ConfigError naming `source` on any error."""
    return parse_message(GenerationConfig, text, source)


def load_text_config(path: str | None, parse, check, default_name: str, default_source: str) -> LoadedConfig:
    """Reads a text-format config file (the embedded `default_name` of synth.configs when `path` is
    None), parses it with `parse(text, source)` and validates it with `check(proto, source)`."""
    if path is None:
        text = resources.files("synth.configs").joinpath(default_name).read_text()
        cfg = LoadedConfig(parse(text, default_source), default_source, os.getcwd())
    else:
        if not os.path.isfile(path):
            raise ConfigError(f"config file {path!r} does not exist or is not a file")
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path!r} cannot be read: {exc}") from None
        cfg = LoadedConfig(parse(text, path), path, os.path.dirname(os.path.abspath(path)))
    check(cfg.proto, cfg.source)
    return cfg


def load_config(path: str | None) -> LoadedConfig:
    """Loads and validates a config file, or the embedded default when `path` is None."""
    return load_text_config(path, parse_config_text, validate, DEFAULT_CONFIG_NAME, "<embedded default>")


def apply_overrides(cfg: LoadedConfig, num_images: int | None = None,
                    seed: int | None = None, check=None) -> LoadedConfig:
    """Returns a copy of `cfg` with command-line overrides applied and re-validated (with `check`,
    default `validate`)."""
    proto = type(cfg.proto)()
    proto.CopyFrom(cfg.proto)
    if num_images is not None:
        proto.num_images = num_images
    if seed is not None:
        proto.seed = seed
    (check or validate)(proto, cfg.source + " (with command-line overrides)")
    return LoadedConfig(proto, cfg.source, cfg.base_dir)


def _check(ok: bool, source: str, field: str, value, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{source}: field {field} = {value!r} is invalid: {allowed}")


def validate(c: GenerationConfig, source: str) -> None:
    """Raises ConfigError for the first bad value, naming the file and the field."""
    _check(len(c.logo) > 0, source, "logo", "(none)", "give at least one logo { ... }")
    for i, logo in enumerate(c.logo):
        f = f"logo[{i}]"
        _check(bool(logo.class_name.strip()), source, f + ".class_name", logo.class_name,
               "a non-empty class name is required")
        _check(logo.HasField("path") != logo.HasField("builtin"), source, f,
               text_format.MessageToString(logo, as_one_line=True),
               "set exactly one of path or builtin")
    _check(len(c.background) > 0, source, "background", "(none)",
           "give at least one background { directory | glob | builtin | tfds }")
    for i, bg in enumerate(c.background):
        _check(bg.WhichOneof("source") is not None, source, f"background[{i}]", "{}",
               "set one of directory, glob, builtin or tfds")
        if bg.WhichOneof("source") == "tfds":
            _check(bool(bg.tfds.name.strip()), source, f"background[{i}].tfds.name", bg.tfds.name,
                   "give the dataset's name (NAME, NAME/CONFIG, optionally :VERSION)")
            _check(bool(bg.tfds.split.strip()), source, f"background[{i}].tfds.split", bg.tfds.split,
                   "give a split, e.g. train or train[:500]")
            _check(bg.tfds.max_images >= 0, source, f"background[{i}].tfds.max_images", bg.tfds.max_images,
                   "must be >= 0 (0: all)")
    size = c.image_size
    for name in ("height", "width"):
        v = getattr(size, name)
        _check(32 <= v <= 8192, source, f"image_size.{name}", v, "must be in [32, 8192]")
    _check(c.num_images >= 1, source, "num_images", c.num_images, "must be >= 1")
    _check(0.0 <= c.val_fraction < 1.0, source, "val_fraction", c.val_fraction, "must be in [0, 1)")
    _check(c.num_train_shards >= 1, source, "num_train_shards", c.num_train_shards, "must be >= 1")
    _check(c.num_val_shards >= 0, source, "num_val_shards", c.num_val_shards,
           "must be >= 1, or 0 with val_fraction: 0 for no val split")
    _check(c.num_val_shards >= 1 or c.val_fraction == 0, source, "num_val_shards", c.num_val_shards,
           f"val_fraction = {c.val_fraction:g} asks for a val split, which needs num_val_shards >= 1; "
           "set val_fraction: 0 for no val split")
    _check(0 <= c.seed < 2**63, source, "seed", c.seed, "must be in [0, 2^63)")
    _check(1 <= c.jpeg_quality <= 100, source, "jpeg_quality", c.jpeg_quality, "must be in [1, 100]")
    _check(1 <= c.backdrop_reuse <= 1000, source, "backdrop_reuse", c.backdrop_reuse, "must be in [1, 1000]")
    _check(c.max_input_pixels >= 1024, source, "max_input_pixels", c.max_input_pixels, "must be >= 1024")
    p = c.placement
    _check(p.min_objects >= 1, source, "placement.min_objects", p.min_objects, "must be >= 1")
    _check(p.max_objects >= p.min_objects, source, "placement.max_objects", p.max_objects,
           f"must be >= placement.min_objects ({p.min_objects})")
    _check(0.0 < p.min_scale <= 1.0, source, "placement.min_scale", p.min_scale, "must be in (0, 1]")
    _check(p.min_scale <= p.max_scale <= 1.0, source, "placement.max_scale", p.max_scale,
           f"must be in [placement.min_scale ({p.min_scale:g}), 1]")
    _check(0.0 <= p.max_overlap_iou <= 1.0, source, "placement.max_overlap_iou", p.max_overlap_iou,
           "must be in [0, 1]")
    _check(1 <= p.max_attempts <= 10000, source, "placement.max_attempts", p.max_attempts,
           "must be in [1, 10000]")
    q = list(p.width_quantiles)
    if q:
        _check(len(q) >= 2, source, "placement.width_quantiles", q, "give at least 2 quantiles (the 0 and 1 ones)")
        _check(all(0.0 < v <= 1.0 for v in q), source, "placement.width_quantiles", q,
               "every quantile must be a share of the image width in (0, 1]")
        _check(all(a <= b for a, b in zip(q, q[1:])), source, "placement.width_quantiles", q,
               "must not decrease (quantiles at evenly spaced probabilities 0..1)")
    _check(0.0 <= p.truncation_probability <= 1.0, source, "placement.truncation_probability",
           p.truncation_probability, "must be in [0, 1]")
    _check(0.05 <= p.max_cut_fraction <= 0.9, source, "placement.max_cut_fraction", p.max_cut_fraction,
           "must be in [0.05, 0.9]")
    _check(1 <= p.closeup_candidates <= framing.MAX_CLOSEUP_CANDIDATES, source, "placement.closeup_candidates",
           p.closeup_candidates, f"must be in [1, {framing.MAX_CLOSEUP_CANDIDATES}]")
    _check(0.0 <= c.negative_fraction < 1.0, source, "negative_fraction", c.negative_fraction, "must be in [0, 1)")
    _validate_realism(c, source)


COLOURWAY_NAMES = colourway.COLOURWAYS


def _validate_realism(c: GenerationConfig, source: str) -> None:
    r = c.realism
    sf = r.surface
    _check(0.0 < sf.min_region_share <= sf.max_region_share <= 1.0, source,
           "realism.surface.min_region_share/max_region_share", (sf.min_region_share, sf.max_region_share),
           "need 0 < min <= max <= 1")
    _check(0 <= sf.margin_px <= 100, source, "realism.surface.margin_px", sf.margin_px, "must be in [0, 100]")
    _check(0 <= sf.max_rotation_deg <= 180, source, "realism.surface.max_rotation_deg", sf.max_rotation_deg,
           "must be in [0, 180]")
    _check(0 <= sf.max_extra_tilt_deg <= 30, source, "realism.surface.max_extra_tilt_deg",
           sf.max_extra_tilt_deg, "must be in [0, 30]")
    _check(0 <= sf.max_truncated_fraction < 1, source, "realism.surface.max_truncated_fraction",
           sf.max_truncated_fraction, "must be in [0, 1)")
    _check(sf.min_region_area_px >= 64, source, "realism.surface.min_region_area_px", sf.min_region_area_px,
           "must be >= 64")
    for name in ("shadow_probability", "glare_probability"):
        v = getattr(r.light, name)
        _check(0 <= v <= 1, source, f"realism.light.{name}", v, "must be in [0, 1]")
    cam = r.camera
    _check(0 <= cam.motion_blur_probability <= 1, source, "realism.camera.motion_blur_probability",
           cam.motion_blur_probability, "must be in [0, 1]")
    _check(1 <= cam.jpeg_quality_min <= cam.jpeg_quality_max <= 100, source,
           "realism.camera.jpeg_quality_min/max", (cam.jpeg_quality_min, cam.jpeg_quality_max),
           "need 1 <= min <= max <= 100")
    weights = [r.blend.hard_weight, r.blend.feather_weight, r.blend.poisson_weight, r.blend.laplacian_weight]
    _check(min(weights) >= 0 and sum(weights) > 0, source, "realism.blend.*_weight", weights,
           "weights must be >= 0 and not all 0")
    o = r.occlusion
    _check(0 <= o.occluder_probability <= 1, source, "realism.occlusion.occluder_probability",
           o.occluder_probability, "must be in [0, 1]")
    _check(0 < o.min_occluded_fraction <= o.max_occluded_fraction < 1, source,
           "realism.occlusion.min/max_occluded_fraction", (o.min_occluded_fraction, o.max_occluded_fraction),
           "need 0 < min <= max < 1")
    _check(0 <= o.min_distractors <= o.max_distractors <= 50, source, "realism.occlusion.min/max_distractors",
           (o.min_distractors, o.max_distractors), "need 0 <= min <= max <= 50")
    _check(0 <= o.shadow_probability <= 1, source, "realism.occlusion.shadow_probability",
           o.shadow_probability, "must be in [0, 1]")
    _check(0 <= o.max_distractor_overlap <= 1, source, "realism.occlusion.max_distractor_overlap",
           o.max_distractor_overlap, "must be in [0, 1] (a share of a logo's box)")
    g = r.gate
    _check(0 <= g.min_visible_fraction <= 1, source, "realism.gate.min_visible_fraction",
           g.min_visible_fraction, "must be in [0, 1]")
    _check(g.min_size_px >= 1, source, "realism.gate.min_size_px", g.min_size_px, "must be >= 1")
    short = min(c.image_size.height, c.image_size.width)
    _check(g.min_size_px <= short * c.placement.max_scale, source, "realism.gate.min_size_px", g.min_size_px,
           f"no placement can meet it: logos are at most placement.max_scale ({c.placement.max_scale:g}) x "
           f"{short} px = {short * c.placement.max_scale:.0f} px wide")
    _check(0 <= g.min_contrast <= 1, source, "realism.gate.min_contrast", g.min_contrast, "must be in [0, 1]")
    _check(-1 <= g.min_match <= 1, source, "realism.gate.min_match", g.min_match, "must be in [-1, 1]")
    _check(0 <= g.min_detail_px <= 100, source, "realism.gate.min_detail_px", g.min_detail_px, "must be in [0, 100]")
    _check(0 <= g.min_legibility <= 100, source, "realism.gate.min_legibility", g.min_legibility,
           "must be in [0, 100]")
    _check(-1 <= g.min_colourway_identity <= 1, source, "realism.gate.min_colourway_identity",
           g.min_colourway_identity, "must be in [-1, 1]")
    if r.occlusion.enabled and g.enabled:
        _check(1 - o.min_occluded_fraction >= g.min_visible_fraction, source,
               "realism.occlusion.min_occluded_fraction", o.min_occluded_fraction,
               f"every occluded logo would fail realism.gate.min_visible_fraction ({g.min_visible_fraction:g})")
    _check(r.audit.min_inliers >= 4, source, "realism.audit.min_inliers", r.audit.min_inliers, "must be >= 4")
    _validate_curvature(r.curvature, source)
    _validate_context(r.context, source)
    for i, logo in enumerate(c.logo):
        for j, cw in enumerate(logo.colourway):
            _check(cw.name in COLOURWAY_NAMES, source, f"logo[{i}].colourway[{j}].name", cw.name,
                   f"must be one of {', '.join(COLOURWAY_NAMES)}")
            _check(cw.weight >= 0, source, f"logo[{i}].colourway[{j}].weight", cw.weight, "must be >= 0")
        if logo.colourway:
            _check(sum(cw.weight for cw in logo.colourway) > 0, source, f"logo[{i}].colourway", "weights",
                   "at least one weight must be > 0")
        if logo.HasField("plate_colour"):
            _check(plate_rgb(logo.plate_colour) is not None, source, f"logo[{i}].plate_colour",
                   logo.plate_colour, 'must be "#rrggbb"')


def _validate_curvature(cv, source: str) -> None:
    """realism.curvature (synth.curvature's limits, named by the config's fields)."""
    f = "realism.curvature."
    for name in ("cylinder_probability", "fold_probability"):
        _check(0 <= getattr(cv, name) <= 1, source, f + name, getattr(cv, name), "must be in [0, 1]")
    _check(cv.cylinder_probability + cv.fold_probability <= 1 + 1e-6, source, f + "fold_probability",
           cv.fold_probability, f"cylinder_probability ({cv.cylinder_probability:g}) + fold_probability must be <= 1")
    _check(1 <= cv.min_wrap_deg, source, f + "min_wrap_deg", cv.min_wrap_deg, "must be >= 1")
    _check(cv.min_wrap_deg <= cv.max_wrap_deg <= 160, source, f + "max_wrap_deg", cv.max_wrap_deg,
           f"must be in [min_wrap_deg ({cv.min_wrap_deg:g}), 160]")
    _check(0 <= cv.max_azimuth_deg and cv.max_wrap_deg / 2 + cv.max_azimuth_deg <= 85, source,
           f + "max_azimuth_deg", cv.max_azimuth_deg,
           f"must be >= 0 with max_wrap_deg / 2 + max_azimuth_deg <= 85 (max_wrap_deg is {cv.max_wrap_deg:g}): "
           "beyond it the logo runs round the cylinder's limb")
    for name, hi in (("max_axis_tilt_deg", 45), ("max_light_deg", 90), ("max_highlight", 1),
                     ("max_fold_angle_deg", 90), ("max_fold_slant_deg", 75)):
        _check(0 <= getattr(cv, name) <= hi, source, f + name, getattr(cv, name), f"must be in [0, {hi}]")
    _check(0 <= cv.min_shading <= cv.max_shading <= 0.95, source, f + "min_shading/max_shading",
           (cv.min_shading, cv.max_shading), "need 0 <= min <= max <= 0.95")
    _check(0 <= cv.min_fold_height <= cv.max_fold_height <= 0.5, source, f + "min_fold_height/max_fold_height",
           (cv.min_fold_height, cv.max_fold_height), "need 0 <= min <= max <= 0.5 (shares of the logo's width)")
    _check(0.05 <= cv.min_fold_periods <= cv.max_fold_periods <= 10, source, f + "min_fold_periods/max_fold_periods",
           (cv.min_fold_periods, cv.max_fold_periods), "need 0.05 <= min <= max <= 10")
    steep = cv.max_fold_height * 2 * math.pi * cv.max_fold_periods
    _check(steep <= 0.9, source, f + "max_fold_height", cv.max_fold_height,
           f"max_fold_height x 2 pi x max_fold_periods ({cv.max_fold_periods:g}) = {steep:.2f} must be <= 0.9: "
           "steeper folds fold the logo over itself")
CONTEXT_SHAPES = ("sign", "band", "shirt", "closeup")  # synth.context.SHAPES
CONTEXT_COLOUR_SOURCES = ("brand", "plate")  # synth.context.COLOUR_SOURCES


def _validate_context(cx, source: str) -> None:
    f = "realism.context."
    _check(0 <= cx.probability <= 1, source, f + "probability", cx.probability, "must be in [0, 1]")
    _check(0.05 <= cx.min_area_share <= 1, source, f + "min_area_share", cx.min_area_share, "must be in [0.05, 1]")
    _check(cx.min_area_share <= cx.max_area_share <= 1, source, f + "max_area_share", cx.max_area_share,
           f"must be in [realism.context.min_area_share ({cx.min_area_share:g}), 1]")
    weights = [getattr(cx, s + "_weight") for s in CONTEXT_SHAPES]
    for s, w in zip(CONTEXT_SHAPES, weights):
        _check(w >= 0, source, f"{f}{s}_weight", w, "must be >= 0")
    _check(sum(weights) > 0, source, f + "*_weight", weights, "at least one shape weight must be > 0")
    _check(cx.colour_source in CONTEXT_COLOUR_SOURCES, source, f + "colour_source", cx.colour_source,
           f"must be one of {', '.join(CONTEXT_COLOUR_SOURCES)}")
    _check(0.05 <= cx.min_logo_share <= 1, source, f + "min_logo_share", cx.min_logo_share, "must be in [0.05, 1]")
    _check(cx.min_logo_share <= cx.max_logo_share <= 1, source, f + "max_logo_share", cx.max_logo_share,
           f"must be in [realism.context.min_logo_share ({cx.min_logo_share:g}), 1]")
    _check(0 <= cx.backdrop_shading <= 1, source, f + "backdrop_shading", cx.backdrop_shading, "must be in [0, 1]")


def plate_rgb(text: str):
    t = text.strip().lstrip("#")
    if len(t) != 6:
        return None
    try:
        return tuple(int(t[k:k + 2], 16) for k in (0, 2, 4))
    except ValueError:
        return None


def class_names(c: GenerationConfig) -> list[str]:
    """Distinct class names in order of first appearance; label ids are 1 + index."""
    names: list[str] = []
    for logo in c.logo:
        if logo.class_name not in names:
            names.append(logo.class_name)
    return names


def to_text(c: GenerationConfig) -> str:
    return text_format.MessageToString(c)
