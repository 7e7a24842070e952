"""Backgrounds from a TFDS dataset that the test builds and prepares itself with TFDS's builder API
(tfds.core.GeneratorBasedBuilder, in a temporary data_dir): the source yields the dataset's images,
reuses its extraction, goes through the same background audit, and names what is wrong."""

from __future__ import annotations

import json
import os
import textwrap

import cv2
import numpy as np
import pytest

from synth import config as configlib, dataset, generate, tfds_source
from synth.errors import ConfigError

from test_audit import _paste, _photo, _skimage_logo

tfds = pytest.importorskip("tensorflow_datasets")

QUAD = [[200, 40], [400, 60], [390, 250], [210, 230]]  # where the logo is printed in photo 0


def tiny_photos() -> list[np.ndarray]:
    """A photo that already shows the scikit-image logo, and a clean one."""
    return [_paste(_photo("chelsea.png"), _skimage_logo(), QUAD), _photo("coffee.png")]


class TinyPhotos(tfds.core.GeneratorBasedBuilder):
    """A TFDS dataset of two photos in "train" and one in "test"."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)), "label": tfds.features.ClassLabel(num_classes=2)}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(tiny_photos()),
                "test": self._generate_examples([_photo("rocket.jpg")])}

    def _generate_examples(self, photos):
        for i, rgb in enumerate(photos):
            yield i, {"image": rgb, "label": i % 2}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    TinyPhotos(data_dir=str(data_dir)).download_and_prepare()
    return str(data_dir)


def _source(**fields):
    from synth.protos import generation_config_pb2 as pb

    return pb.TfdsSource(**fields)


def _rgb(path):
    return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_the_source_yields_the_datasets_images_and_reuses_its_extraction(prepared, tmp_path, monkeypatch):
    src = _source(name="tiny_photos", split="train", data_dir=prepared, cache_dir=str(tmp_path / "cache"))
    files = tfds_source.background_files(src, lambda p: p)
    assert [os.path.basename(f) for f in files] == ["000000.png", "000001.png"]
    for f, expected in zip(files, tiny_photos()):
        np.testing.assert_array_equal(_rgb(f), expected)  # the stored PNG bytes, unchanged
    assert files[0].startswith(str(tmp_path / "cache" / "tiny_photos" / "1.0.0") + os.sep)

    def no_extraction(*args):
        raise AssertionError("extracted again")

    monkeypatch.setattr(tfds_source, "_extract", no_extraction)
    assert tfds_source.background_files(src, lambda p: p) == files
    sliced = _source(name="tiny_photos:1.0.0", split="train[1:]", data_dir=prepared, cache_dir=str(tmp_path / "c2"),
                     max_images=1)
    monkeypatch.undo()
    one = tfds_source.background_files(sliced, lambda p: p)
    assert len(one) == 1 and np.array_equal(_rgb(one[0]), tiny_photos()[1])


def test_generation_reads_tfds_backgrounds_through_the_audit(prepared, tmp_path):
    cfg = tmp_path / "gen.config"
    cfg.write_text(textwrap.dedent(f"""\
        logo {{ class_name: "sk" builtin: "skimage:logo" border_matte {{ }} }}
        background {{ tfds {{ name: "tiny_photos" split: "train" data_dir: "{prepared}" cache_dir: "cache" }} }}
        image_size {{ height: 128 width: 160 }}
        num_images: 12
        val_fraction: 0
        num_train_shards: 1
        backdrop_reuse: 1
        seed: 1
        """))
    out = tmp_path / "data"
    s = generate.generate(configlib.load_config(str(cfg)), str(out), show_progress=False)
    assert s.counts["train"]["images"] == 12
    files = sorted(os.listdir(next((tmp_path / "cache" / "tiny_photos" / "1.0.0").iterdir())))
    assert files == ["000000.png", "000001.png", "complete.json"]
    manifest = json.loads((out / dataset.MANIFEST).read_text())
    assert manifest["num_backgrounds"] == 2
    used = {json.loads(line)["background"] for line in (out / dataset.PARAMS).read_text().splitlines()}
    skipped = [x["path"] for x in manifest["skipped_inputs"]]
    assert [os.path.basename(p) for p in skipped] == ["000000.png"], (used, manifest["skipped_inputs"])
    assert "already shows logo 0" in manifest["skipped_inputs"][0]["reason"]
    assert [os.path.basename(p) for p in used] == ["000001.png"]  # every composite on the clean photo


def test_errors_name_the_dataset_and_what_is_wrong(prepared, tmp_path):
    cache = str(tmp_path / "cache")
    with pytest.raises(ConfigError, match=r"TFDS dataset 'nope' is not prepared in data_dir .*never downloads"):
        tfds_source.background_files(_source(name="nope", data_dir=prepared, cache_dir=cache), lambda p: p)
    with pytest.raises(ConfigError, match=r"has no split 'validation'; its splits: test, train"):
        tfds_source.background_files(_source(name="tiny_photos", split="validation", data_dir=prepared,
                                              cache_dir=cache), lambda p: p)
    with pytest.raises(ConfigError, match=r"no image feature 'photo' \(tfds.image_key\); its image features: image"):
        tfds_source.background_files(_source(name="tiny_photos", image_key="photo", data_dir=prepared,
                                             cache_dir=cache), lambda p: p)
    with pytest.raises(ConfigError, match=r"version 2.0.0 is not prepared"):
        tfds_source.background_files(_source(name="tiny_photos:2.0.0", data_dir=prepared, cache_dir=cache),
                                     lambda p: p)
    with pytest.raises(ConfigError, match=r"background\[0\].tfds.name"):
        configlib.validate(configlib.parse_config_text('logo { class_name: "a" builtin: "skimage:logo" }\n'
                                                       'background { tfds { split: "train" } }\n', "t.config"),
                           "t.config")
    assert not os.path.exists(cache) or not any(n.endswith(".png") for _, _, fs in os.walk(cache) for n in fs)
