import pytest

from synth import config as configlib
from synth.errors import ConfigError
from conftest import write_config


def test_embedded_default_loads_and_names_a_builtin_logo():
    cfg = configlib.load_config(None)
    assert cfg.source == "<embedded default>"
    assert cfg.proto.logo[0].builtin == "skimage:logo"
    assert cfg.proto.logo[0].HasField("border_matte")
    assert configlib.class_names(cfg.proto) == ["skimage_logo"]


def test_repeated_singular_field_is_an_error(tmp_path):
    path = write_config(tmp_path, extra="image_size { height: 64 }\n")
    with pytest.raises(ConfigError, match="image_size"):
        configlib.load_config(path)


def test_typo_in_a_field_name_names_the_field_and_the_file(tmp_path):
    path = write_config(tmp_path, extra="num_imagse: 5\n")
    with pytest.raises(ConfigError) as e:
        configlib.load_config(path)
    assert path in str(e.value) and "num_imagse" in str(e.value)


@pytest.mark.parametrize("extra, field", [
    ("jpeg_quality: 0\n", "jpeg_quality"),
    ("val_fraction: 1.0\n", "val_fraction"),
    ("num_train_shards: 0\n", "num_train_shards"),
    ("placement { min_objects: 3 max_objects: 2 }\n", "placement.max_objects"),
    ("placement { min_scale: 0.5 max_scale: 0.2 }\n", "placement.max_scale"),
    ("image_size { height: 8 }\n", "image_size.height"),
])
def test_bad_values_name_the_field(tmp_path, extra, field):
    minimal = 'logo { class_name: "a" path: "l.png" }\nbackground { directory: "b" }\n'
    path = write_config(tmp_path, body=minimal + extra)
    with pytest.raises(ConfigError) as e:
        configlib.load_config(path)
    assert field in str(e.value) and path in str(e.value)


def test_logo_needs_exactly_one_of_path_and_builtin(tmp_path):
    path = write_config(tmp_path, body='logo { class_name: "a" }\nbackground { directory: "b" }\n')
    with pytest.raises(ConfigError, match=r"logo\[0\].*exactly one of path or builtin"):
        configlib.load_config(path)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.config"):
        configlib.load_config(str(tmp_path / "nope.config"))


def test_overrides_are_validated_and_do_not_touch_the_original(tmp_path):
    cfg = configlib.load_config(write_config(tmp_path))
    new = configlib.apply_overrides(cfg, num_images=50, seed=9)
    assert (new.proto.num_images, new.proto.seed) == (50, 9)
    assert (cfg.proto.num_images, cfg.proto.seed) == (6, 3)
    with pytest.raises(ConfigError, match="num_images"):
        configlib.apply_overrides(cfg, num_images=0)


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    cfg = configlib.load_config(write_config(tmp_path))
    assert cfg.resolve("logos/logo.png") == str(tmp_path / "logos" / "logo.png")
