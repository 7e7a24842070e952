"""Loading and validating generation configs (text-format protobuf).

Parsing is strict: an unknown field is an error, and so is any value outside its
allowed range. Every error names the file and the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources

from google.protobuf import text_format

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


def parse_config_text(text: str, source: str) -> GenerationConfig:
    """Parses text-format config; raises ConfigError naming `source` on any error."""
    msg = GenerationConfig()
    try:
        text_format.Parse(text, msg)
    except text_format.ParseError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return msg


def load_config(path: str | None) -> LoadedConfig:
    """Loads and validates a config file, or the embedded default when `path` is None."""
    if path is None:
        text = resources.files("synth.configs").joinpath(DEFAULT_CONFIG_NAME).read_text()
        cfg = LoadedConfig(parse_config_text(text, "<embedded default>"), "<embedded default>", os.getcwd())
    else:
        if not os.path.isfile(path):
            raise ConfigError(f"config file {path!r} does not exist or is not a file")
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path!r} cannot be read: {exc}") from None
        cfg = LoadedConfig(parse_config_text(text, path), path,
                           os.path.dirname(os.path.abspath(path)))
    validate(cfg.proto, cfg.source)
    return cfg


def apply_overrides(cfg: LoadedConfig, num_images: int | None = None,
                    seed: int | None = None) -> LoadedConfig:
    """Returns a copy of `cfg` with command-line overrides applied and re-validated."""
    proto = GenerationConfig()
    proto.CopyFrom(cfg.proto)
    if num_images is not None:
        proto.num_images = num_images
    if seed is not None:
        proto.seed = seed
    validate(proto, cfg.source + " (with command-line overrides)")
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
           "give at least one background { directory | glob | builtin }")
    for i, bg in enumerate(c.background):
        _check(bg.WhichOneof("source") is not None, source, f"background[{i}]", "{}",
               "set one of directory, glob or builtin")
    size = c.image_size
    for name in ("height", "width"):
        v = getattr(size, name)
        _check(32 <= v <= 8192, source, f"image_size.{name}", v, "must be in [32, 8192]")
    _check(c.num_images >= 1, source, "num_images", c.num_images, "must be >= 1")
    _check(0.0 <= c.val_fraction < 1.0, source, "val_fraction", c.val_fraction, "must be in [0, 1)")
    _check(c.num_train_shards >= 1, source, "num_train_shards", c.num_train_shards, "must be >= 1")
    _check(c.num_val_shards >= 1, source, "num_val_shards", c.num_val_shards, "must be >= 1")
    _check(0 <= c.seed < 2**63, source, "seed", c.seed, "must be in [0, 2^63)")
    _check(1 <= c.jpeg_quality <= 100, source, "jpeg_quality", c.jpeg_quality, "must be in [1, 100]")
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


def class_names(c: GenerationConfig) -> list[str]:
    """Distinct class names in order of first appearance; label ids are 1 + index."""
    names: list[str] = []
    for logo in c.logo:
        if logo.class_name not in names:
            names.append(logo.class_name)
    return names


def to_text(c: GenerationConfig) -> str:
    return text_format.MessageToString(c)
