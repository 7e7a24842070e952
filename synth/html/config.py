"""Loading and validating header-generation configs (text-format HeaderConfig,
protos/header_config.proto): strict, every error names the file and the field."""

from __future__ import annotations

from synth import config as configlib
from synth.config import LoadedConfig
from synth.errors import ConfigError
from synth.html import themes
from synth.protos import header_config_pb2

HeaderConfig = header_config_pb2.HeaderConfig
DEFAULT_CONFIG_NAME = "headers_default.config"
BUILTINS = ("package_docs",)


def parse_text(text: str, source: str) -> HeaderConfig:
    return configlib.parse_message(HeaderConfig, text, source)


def load(path: str | None) -> LoadedConfig:
    """Loads and validates a header config, or the embedded default when `path` is None."""
    return configlib.load_text_config(path, parse_text, validate, DEFAULT_CONFIG_NAME, "<embedded header default>")


def with_overrides(cfg: LoadedConfig, num_images: int | None = None, seed: int | None = None) -> LoadedConfig:
    return configlib.apply_overrides(cfg, num_images, seed, check=validate)


def _check(ok: bool, source: str, field: str, value, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{source}: field {field} = {value!r} is invalid: {allowed}")


def validate(c: HeaderConfig, source: str) -> None:
    _check(len(c.html) > 0, source, "html", "(none)", "give at least one html { directory | glob | builtin }")
    for i, h in enumerate(c.html):
        kind = h.WhichOneof("source")
        _check(kind is not None, source, f"html[{i}]", "{}", "set one of directory, glob or builtin")
        if kind == "builtin":
            _check(h.builtin in BUILTINS, source, f"html[{i}].builtin", h.builtin, f"must be one of {BUILTINS}")
            _check(not h.HasField("root"), source, f"html[{i}].root", h.root, "is only for directory or glob")
    _check(c.num_images >= 1, source, "num_images", c.num_images, "must be >= 1")
    _check(0.0 <= c.val_fraction < 1.0, source, "val_fraction", c.val_fraction, "must be in [0, 1)")
    _check(c.num_train_shards >= 1, source, "num_train_shards", c.num_train_shards, "must be >= 1")
    _check(c.num_val_shards >= 1, source, "num_val_shards", c.num_val_shards, "must be >= 1")
    _check(0 <= c.seed < 2**63, source, "seed", c.seed, "must be in [0, 2^63)")
    _check(c.max_file_bytes >= 1, source, "max_file_bytes", c.max_file_bytes, "must be >= 1")
    _check(c.max_page_height_px >= 64, source, "max_page_height_px", c.max_page_height_px, "must be >= 64")
    _check(0.5 <= c.page_timeout_s <= 600, source, "page_timeout_s", c.page_timeout_s, "must be in [0.5, 600]")
    _check(1 <= c.min_box_px <= 256, source, "min_box_px", c.min_box_px, "must be in [1, 256]")
    _check(1 <= c.jpeg_quality <= 100, source, "jpeg_quality", c.jpeg_quality, "must be in [1, 100]")
    s = c.screen
    _check(64 <= s.min_width <= s.max_width <= 4096, source, "screen.min_width/max_width",
           (s.min_width, s.max_width), "need 64 <= min <= max <= 4096")
    _check(64 <= s.min_height <= s.max_height <= 4096, source, "screen.min_height/max_height",
           (s.min_height, s.max_height), "need 64 <= min <= max <= 4096")
    _check(0 <= s.top_probability <= 1, source, "screen.top_probability", s.top_probability, "must be in [0, 1]")
    _check(0 <= c.print.probability <= 1, source, "print.probability", c.print.probability, "must be in [0, 1]")
    _check(1 <= c.print.max_pages <= 100, source, "print.max_pages", c.print.max_pages, "must be in [1, 100]")
    for j, p in enumerate(c.print.paper):
        _check(p in themes.PAPER, source, f"print.paper[{j}]", p, f"must be one of {', '.join(themes.PAPER)}")
    t = c.theme
    for name in ("probability", "two_column_probability", "numbered_probability",
                 "header_as_paragraph_probability", "paragraph_as_header_probability"):
        _check(0 <= getattr(t, name) <= 1, source, f"theme.{name}", getattr(t, name), "must be in [0, 1]")
    m = c.camera
    _check(0 <= m.probability <= 1, source, "camera.probability", m.probability, "must be in [0, 1]")
    _check(0 <= m.max_rotation_deg <= 15, source, "camera.max_rotation_deg", m.max_rotation_deg, "must be in [0, 15]")
    _check(0 <= m.max_perspective <= 0.1, source, "camera.max_perspective", m.max_perspective, "must be in [0, 0.1]")
    _check(0 <= m.max_blur_sigma <= 5, source, "camera.max_blur_sigma", m.max_blur_sigma, "must be in [0, 5]")
    _check(0 <= m.max_noise_sigma <= 50, source, "camera.max_noise_sigma", m.max_noise_sigma, "must be in [0, 50]")
    _check(1 <= m.jpeg_quality_min <= m.jpeg_quality_max <= 100, source, "camera.jpeg_quality_min/max",
           (m.jpeg_quality_min, m.jpeg_quality_max), "need 1 <= min <= max <= 100")


def to_text(c: HeaderConfig) -> str:
    return configlib.to_text(c)
