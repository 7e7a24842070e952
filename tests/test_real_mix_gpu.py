"""The device learning curve's split and real samples (bench/real_mix_gpu.py), which need no torch:
the test photos stay apart from the train pools and the backgrounds, and a real sample carries its
boxes of the curve's brands only, in the detector's (x0, y0, x1, y1) pixels and label ids."""

import sys

import numpy as np

from synth import realeval
from conftest import ROOT
from test_realeval import BRANDS, _real_folder

sys.path.insert(0, ROOT)
from bench import real_mix, real_mix_gpu  # noqa: E402


def test_mix_split_keeps_pools_tests_negatives_and_backgrounds_apart(tmp_path):
    folder, _ = _real_folder(tmp_path, n_per_brand=real_mix.TRAIN_POOL + 2, n_none=4)
    real = realeval.load_real(folder)
    brands = BRANDS[:2]
    parts, split = real_mix_gpu.mix_split(real, brands)
    shows = {}
    for a in real.annotations:
        shows.setdefault(a["image_id"], set()).add(real.categories[a["category_id"]])
    for b in brands:
        assert len(parts[b]["train"]) == real_mix.TRAIN_POOL and len(parts[b]["test"]) == 2
        assert all(b in shows[i] for i in parts[b]["train"] + parts[b]["test"])
    pools = {i for b in brands for i in parts[b]["train"]}
    tests = {i for b in brands for i in parts[b]["test"]}
    assert set(split.positives) == tests and not pools & tests
    assert len(split.negatives) == len(tests)
    assert not any(shows.get(i, set()) & set(brands) for i in split.negatives + split.backgrounds)
    assert not set(split.backgrounds) & (pools | tests | set(split.negatives))
    assert real_mix_gpu.mix_split(real, brands) == (parts, split)  # the same split every run
    # the pool order is bench/real_mix.py's: the first K of a brand are the same photos there
    by_id = {i: im["file_name"] for i, im in real.images.items()}
    coco = {"images": list(real.images.values()), "annotations": real.annotations,
            "categories": [{"id": k, "name": v} for k, v in real.categories.items()]}
    cpu = real_mix.split_brands(coco, list(brands))
    assert [by_id[i] for i in parts[brands[1]]["train"]] == cpu[brands[1]]["train"]


def test_real_samples_carry_the_brands_boxes_as_xyxy_with_label_ids(tmp_path):
    folder, d = _real_folder(tmp_path)
    real = realeval.load_real(folder)
    brands = (BRANDS[1], BRANDS[0])  # label ids follow this order, not the categories'
    photo_of = {b: next(a for a in d["annotations"] if real.categories[a["category_id"]] == b) for b in BRANDS}
    ids = [photo_of[b]["image_id"] for b in BRANDS]
    samples = real_mix_gpu.real_samples(real, brands, ids)
    assert len(samples) == 3
    for b, (img, (boxes, labels)) in zip(BRANDS, samples):
        assert img.shape == (60, 80, 3) and img.dtype == np.uint8
        if b in brands:
            x, y, w, h = photo_of[b]["bbox"]
            np.testing.assert_allclose(boxes, [[x, y, x + w, y + h]])
            assert labels.tolist() == [brands.index(b) + 1]
        else:  # a photo of another brand: its box is not a label of this detector
            assert boxes.shape == (0, 4) and labels.shape == (0,)


def test_a_photo_in_one_brands_pool_and_anothers_test_part_is_refused(tmp_path):
    import json

    import pytest

    folder, d = _real_folder(tmp_path, n_per_brand=real_mix.TRAIN_POOL + 2, n_none=4)
    first = [a for a in d["annotations"] if a["category_id"] == 1]  # every photo of BRANDS[0] shows BRANDS[1] too
    d["annotations"] += [dict(a, id=1000 + k, category_id=2) for k, a in enumerate(first)]
    with open(tmp_path / "instances.json", "w") as f:
        json.dump(d, f)
    with pytest.raises(SystemExit, match="in a train pool and a test part at once"):
        real_mix_gpu.mix_split(realeval.load_real(folder), BRANDS[:2])
