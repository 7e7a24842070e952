"""Real-photo evaluation (synth.realeval), the distribution report (synth.distribution) and the
transfer benchmark's resumable stages, on small real-photo folders the tests write themselves."""

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

from synth import distribution, realeval
from synth.errors import AnnotationError, ConfigError
from conftest import ROOT, TINY_BOX as TINY, make_background, run_tool

sys.path.insert(0, ROOT)
from bench import transfer  # noqa: E402

BRANDS = ("acme", "globex", "initech")


def _real_folder(tmp_path, n_per_brand=3, n_none=4):
    """instances.json + images/: n_per_brand photos of each brand with one box, n_none photos without."""
    os.makedirs(tmp_path / "images")
    images, anns = [], []
    for k in range(n_per_brand * len(BRANDS) + n_none):
        name = f"p{k:03d}.jpg"
        cv2.imwrite(str(tmp_path / "images" / name), make_background(60, 80, seed=k))
        images.append({"id": k + 1, "file_name": name, "width": 80, "height": 60})
        if k < n_per_brand * len(BRANDS):
            anns.append({"id": len(anns) + 1, "image_id": k + 1, "category_id": k % len(BRANDS) + 1,
                         "bbox": [10 + k % 5, 8, 30, 20], "area": 600, "iscrowd": 0})
    d = {"images": images, "annotations": anns,
         "categories": [{"id": i + 1, "name": b} for i, b in enumerate(BRANDS)]}
    with open(tmp_path / "instances.json", "w") as f:
        json.dump(d, f)
    return str(tmp_path), d


def _gt_as_detections(gt):
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": list(a["bbox"]), "score": 0.9}
            for a in gt["annotations"]]


def test_split_keeps_backgrounds_and_test_photos_apart(tmp_path):
    folder, _ = _real_folder(tmp_path)
    real = realeval.load_real(folder)
    split = realeval.split_for_brands(real, ("acme", "globex"))
    assert len(split.positives) == 6 and len(split.negatives) == 6
    assert not set(split.backgrounds) & (set(split.positives) | set(split.negatives))
    labelled = {a["image_id"]: a["category_id"] for a in real.annotations}
    for i in split.negatives + split.backgrounds:  # no photo of acme or globex
        assert labelled.get(i) not in (1, 2)
    # the photos without any box are used as negatives first
    assert set(split.negatives) >= {i for i in real.images if i not in labelled}
    assert realeval.split_for_brands(real, ("acme", "globex")) == split  # deterministic


def test_ground_truth_as_detections_scores_one_and_detections_on_negatives_score_zero(tmp_path):
    folder, _ = _real_folder(tmp_path)
    real = realeval.load_real(folder)
    split = realeval.split_for_brands(real, ("acme", "globex"))
    gt = realeval.ground_truth(real, split)
    assert [c["name"] for c in gt["categories"]] == ["acme", "globex"]
    perfect = realeval.evaluate(gt, _gt_as_detections(gt))
    assert perfect["map50_mean"] == 1.0 and perfect["map_mean"] == 1.0 and perfect["ar100_mean"] == 1.0
    assert perfect["per_brand"]["acme"]["map50"] == 1.0
    on_negatives = [{"image_id": i, "category_id": c, "bbox": [10, 8, 30, 20], "score": 0.99}
                    for i in split.negatives for c in (1, 2)]
    wrong = realeval.evaluate(gt, on_negatives)
    assert wrong["map50_mean"] == 0.0 and wrong["ar100_mean"] == 0.0
    shifted = [dict(d, bbox=[d["bbox"][0] + 25, d["bbox"][1], 30, 20]) for d in _gt_as_detections(gt)]
    assert realeval.evaluate(gt, shifted)["map50_mean"] == 0.0  # IoU 5/55: a miss
    assert realeval.evaluate(gt, [])["map50_mean"] == 0.0


def _random_case(seed, n_images=40, n_brands=3):
    """A COCO test set with 0-3 boxes per photo (some photos without any) and detections around them:
    near hits, loose boxes, duplicates and detections on empty photos, with distinct random scores."""
    rng = np.random.default_rng(seed)
    images = [{"id": 100 + k, "file_name": f"p{k}.jpg", "width": 200, "height": 150} for k in range(n_images)]
    anns, dets = [], []
    for im in images:
        for _ in range(rng.integers(0, 4) if rng.random() < 0.6 else 0):
            x, y = rng.uniform(0, 120), rng.uniform(0, 90)
            w, h = rng.uniform(10, 70), rng.uniform(10, 50)
            c = int(rng.integers(1, n_brands + 1))
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": c,
                         "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
            for _ in range(rng.integers(0, 3)):  # hits, loose boxes, duplicates, wrong brands
                j = rng.normal(0, 0.12, 4) * [w, h, w, h]
                dets.append({"image_id": im["id"], "category_id": c if rng.random() < 0.8 else
                             int(rng.integers(1, n_brands + 1)), "bbox": [x + j[0], y + j[1], abs(w + j[2]) + 1,
                                                                          abs(h + j[3]) + 1]})
        for _ in range(rng.integers(0, 3)):  # false alarms anywhere
            dets.append({"image_id": im["id"], "category_id": int(rng.integers(1, n_brands + 1)),
                         "bbox": [rng.uniform(0, 150), rng.uniform(0, 100), rng.uniform(5, 50), rng.uniform(5, 50)]})
    for d, s in zip(dets, rng.permutation(len(dets))):
        d["score"] = float(0.05 + 0.9 * s / len(dets))
    cats = [{"id": c, "name": f"brand{c}"} for c in range(1, n_brands + 1)]
    return {"images": images, "annotations": anns, "categories": cats}, dets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resampled_ap50_equals_pycocotools_on_the_photos_drawn(seed):
    gt, dets = _random_case(seed)
    matches = realeval.match_detections(gt, dets)
    ev = realeval.evaluate(gt, dets)
    for brand, m in matches.items():  # every photo once: pycocotools' own figure
        assert realeval.ap50(m) == pytest.approx(ev["per_brand"][brand]["map50"], abs=6e-5)
    assert 0.05 < ev["map50_mean"] < 0.95  # neither trivial case
    # a draw with repeats: pycocotools on a test set in which each photo is copied as often as drawn
    rng = np.random.default_rng(seed + 10)
    counts = rng.multinomial(len(gt["images"]), np.ones(len(gt["images"])) / len(gt["images"]))
    images, anns, copied = [], [], []
    for k, im in enumerate(sorted(gt["images"], key=lambda im: im["id"])):
        for c in range(counts[k]):
            new = 10_000 * (c + 1) + im["id"]
            images.append(dict(im, id=new))
            for a in gt["annotations"]:
                if a["image_id"] == im["id"]:
                    anns.append(dict(a, id=len(anns) + 1, image_id=new))
            copied += [dict(d, image_id=new) for d in dets if d["image_id"] == im["id"]]
    ev2 = realeval.evaluate({"images": images, "annotations": anns, "categories": gt["categories"]}, copied)
    for brand, m in matches.items():
        assert realeval.ap50(m, counts) == pytest.approx(ev2["per_brand"][brand]["map50"], abs=6e-5)
    assert realeval.map50_mean(matches, counts) == pytest.approx(ev2["map50_mean"], abs=1e-4)


def test_paired_bootstrap_ranks_only_what_the_photos_show(tmp_path):
    folder, _ = _real_folder(tmp_path)
    real = realeval.load_real(folder)
    split = realeval.split_for_brands(real, ("acme", "globex"))
    gt = realeval.ground_truth(real, split)
    perfect = _gt_as_detections(gt)
    on_negatives = [{"image_id": i, "category_id": 1, "bbox": [10, 8, 30, 20], "score": 0.99} for i in split.negatives]
    got = realeval.paired_bootstrap(gt, {"perfect": [perfect], "same": [list(perfect)], "blind": [on_negatives]},
                                    resamples=200, seed=3)
    assert got["photos"] == {"positives": 6, "negatives": 6} and got["resamples"] == 200
    one = {"map50": 1.0, "interval": [1.0, 1.0]}
    assert got["arms"]["perfect"] == {"map50_mean": 1.0, "interval": [1.0, 1.0],
                                      "per_brand": {"acme": one, "globex": one}}
    assert got["arms"]["blind"]["map50_mean"] == 0.0 and got["arms"]["blind"]["interval"] == [0.0, 0.0]
    apart = {"difference": 1.0, "interval": [1.0, 1.0], "share_first_higher": 1.0}
    assert got["pairs"]["perfect - blind"] == {**apart, "per_brand": {"acme": apart, "globex": apart}}
    level = {"difference": 0.0, "interval": [0.0, 0.0], "share_first_higher": 0.0}
    assert got["pairs"]["perfect - same"] == {**level, "per_brand": {"acme": level, "globex": level}}
    # an arm is the mean of its runs, on each draw
    half = realeval.paired_bootstrap(gt, {"mixed": [perfect, on_negatives]}, resamples=50)
    assert half["arms"]["mixed"]["map50_mean"] == 0.5 and half["arms"]["mixed"]["interval"] == [0.5, 0.5]
    # a detector that finds acme only, and fires first on one negative photo: its acme AP is 3 / (3 + c)
    # for a draw holding that photo c times (1 on the photos as they are), so it moves with the draw,
    # and the draws are fixed by the seed
    acme_only = [d for d in perfect if d["category_id"] == 1]
    acme_only.append({"image_id": split.negatives[0], "category_id": 1, "bbox": [10, 8, 30, 20], "score": 1.0})
    a = realeval.paired_bootstrap(gt, {"acme_only": [acme_only], "perfect": [perfect]}, resamples=300, seed=1)
    assert a == realeval.paired_bootstrap(gt, {"acme_only": [acme_only], "perfect": [perfect]}, resamples=300, seed=1)
    assert a["arms"]["acme_only"]["map50_mean"] == 0.375  # (0.75 + 0) / 2
    lo, hi = a["arms"]["acme_only"]["per_brand"]["acme"]["interval"]
    assert lo < 0.75 and hi == 1.0  # drawn twice or more: 0.6 or less; not drawn: 1.0
    assert a["pairs"]["acme_only - perfect"]["share_first_higher"] == 0.0
    assert a["pairs"]["acme_only - perfect"]["per_brand"]["acme"]["difference"] == -0.25
    assert a["pairs"]["acme_only - perfect"]["per_brand"]["globex"] == {"difference": -1.0, "interval": [-1.0, -1.0],
                                                                        "share_first_higher": 0.0}


def test_paired_bootstrap_refuses_bad_settings_naming_them(tmp_path):
    folder, _ = _real_folder(tmp_path)
    real = realeval.load_real(folder)
    gt = realeval.ground_truth(real, realeval.split_for_brands(real, ("acme",)))
    dets = _gt_as_detections(gt)
    with pytest.raises(ConfigError, match="resamples 0"):
        realeval.paired_bootstrap(gt, {"a": [dets]}, resamples=0)
    with pytest.raises(ConfigError, match="level 1.5"):
        realeval.paired_bootstrap(gt, {"a": [dets]}, level=1.5)
    with pytest.raises(ConfigError, match="at least one run"):
        realeval.paired_bootstrap(gt, {"a": []})
    with pytest.raises(AnnotationError, match="image 999"):
        realeval.paired_bootstrap(gt, {"a": [[{"image_id": 999, "category_id": 1, "bbox": [0, 0, 5, 5],
                                                "score": 1.0}]]})


def test_recall_by_width_counts_each_box_in_its_band_and_what_finds_it():
    # photos 100 px wide: boxes 10, 20, 40, 100 px wide fall in the bands 0-0.15, 0.15-0.3, 0.3-0.5, 0.8-1.0
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 80} for i in (1, 2, 3, 4, 5)]
    boxes = {1: [0, 0, 10, 10], 2: [5, 5, 20, 20], 3: [10, 10, 40, 30], 4: [0, 0, 100, 80]}
    gt = {"images": images, "categories": [{"id": 1, "name": "acme"}, {"id": 2, "name": "globex"}],
          "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
                          for i, b in boxes.items()]}
    bands = realeval.recall_by_width(gt, [])
    assert [b["boxes"] for b in bands] == [1, 1, 1, 0, 1]
    assert [b["found"] for b in bands] == [0.0, 0.0, 0.0, None, 0.0]
    dets = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},  # found, drawn
            {"image_id": 2, "category_id": 1, "bbox": [5, 5, 20, 20], "score": 0.2},  # found, under 0.5
            {"image_id": 3, "category_id": 2, "bbox": [10, 10, 40, 30], "score": 0.9},  # the other brand
            {"image_id": 4, "category_id": 1, "bbox": [0, 0, 100, 30], "score": 0.9},  # IoU 0.375
            {"image_id": 5, "category_id": 1, "bbox": [0, 0, 100, 80], "score": 0.9}]  # a photo without it
    bands = realeval.recall_by_width(gt, dets)
    assert [(b["found"], b["found_scored"]) for b in bands] == [(1.0, 1.0), (1.0, 0.0), (0.0, 0.0), (None, None),
                                                                (0.0, 0.0)]
    assert bands[0]["width"] == [0.0, 0.15] and bands[-1]["width"] == [0.8, 1.0]
    assert [b["found_scored"] for b in realeval.recall_by_width(gt, dets, min_score=0.1)][:2] == [1.0, 1.0]
    # a box found only by a detection under 100 stronger ones of its brand on the photo is not found
    crowd = [{"image_id": 1, "category_id": 1, "bbox": [50, 50, 5, 5], "score": 0.8} for _ in range(100)]
    assert realeval.recall_by_width(gt, crowd + dets[:1])[0]["found"] == 1.0  # 0.9 is in the top 100
    weak = [dict(dets[0], score=0.1)]
    assert realeval.recall_by_width(gt, crowd + weak)[0]["found"] == 0.0
    with pytest.raises(ConfigError, match="edges"):
        realeval.recall_by_width(gt, dets, edges=(0.0, 0.5, 0.3))
    with pytest.raises(AnnotationError, match="image 9"):
        realeval.recall_by_width(gt, [dict(dets[0], image_id=9)])


def test_recall_by_width_counts_boxes_drawn_on_part_of_the_logo():
    # one logo 80x60 in a photo 100 px wide (band 0.8-1.0); detections of its brand
    images = [{"id": 1, "file_name": "1.jpg", "width": 100, "height": 80}]
    gt = {"images": images, "categories": [{"id": 1, "name": "acme"}, {"id": 2, "name": "globex"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 80, 60], "area": 4800,
                           "iscrowd": 0}]}
    whole = {"image_id": 1, "category_id": 1, "bbox": [10, 10, 80, 60], "score": 0.6}
    part = {"image_id": 1, "category_id": 1, "bbox": [20, 20, 30, 20], "score": 0.9}  # inside, 1/8 of the area

    def shares(dets):
        b = realeval.recall_by_width(gt, dets)[-1]
        return b["found_scored"], b["part_scored"], b["part_first"]

    assert shares([whole]) == (1.0, 0.0, 0.0)
    assert shares([whole, part]) == (1.0, 1.0, 1.0)  # drawn, and ranked above the whole logo
    assert shares([dict(whole, score=0.95), part]) == (1.0, 1.0, 0.0)  # drawn, ranked below it
    assert shares([part]) == (0.0, 1.0, 1.0)  # the logo found only in part
    assert shares([dict(part, score=0.3)]) == (0.0, 0.0, 1.0)  # not drawn, still ranked first
    # not parts: another brand's box, a box half outside the logo, a box of half the logo's area or more
    assert shares([dict(part, category_id=2)]) == (0.0, 0.0, 0.0)
    assert shares([dict(part, bbox=[70, 20, 40, 20])]) == (0.0, 0.0, 0.0)  # half of it outside
    assert shares([dict(part, bbox=[50, 10, 50, 60])]) == (0.0, 0.0, 0.0)  # 0.8 inside, 0.625 of the area, IoU 0.44
    assert shares([dict(part, bbox=[10, 10, 60, 45])]) == (1.0, 0.0, 0.0)  # inside, IoU 0.56: it finds the logo
    assert realeval.recall_by_width(gt, [])[0]["part_first"] is None  # a band with no boxes


def test_a_folder_without_the_json_is_refused_naming_it(tmp_path):
    os.makedirs(tmp_path / "images")
    with pytest.raises(AnnotationError, match=r"no instances.json"):
        realeval.load_real(str(tmp_path))
    with pytest.raises(AnnotationError, match="no such folder"):
        realeval.load_real(str(tmp_path / "nowhere"))


def test_a_json_whose_image_is_missing_is_refused_naming_the_entry(tmp_path):
    folder, _ = _real_folder(tmp_path)
    os.remove(os.path.join(folder, "images", "p004.jpg"))
    with pytest.raises(AnnotationError, match=r"images\[4\] \(id 5\) file 'p004.jpg' is missing"):
        realeval.load_real(folder)


def test_a_box_outside_its_image_is_refused_naming_the_entry(tmp_path):
    folder, d = _real_folder(tmp_path)
    d["annotations"][2]["bbox"] = [70, 8, 30, 20]  # x + w = 100 > width 80
    with open(os.path.join(folder, "instances.json"), "w") as f:
        json.dump(d, f)
    with pytest.raises(AnnotationError, match=r"annotations\[2\] \(id 3\) bbox \[70, 8, 30, 20\] is empty or outside"):
        realeval.load_real(folder)
    with pytest.raises(AnnotationError, match=r"annotation 2 \(id 3\) box"):
        distribution.read_coco_boxes(os.path.join(folder, "instances.json"))


def test_a_brand_not_in_the_categories_is_refused_naming_the_file(tmp_path):
    folder, _ = _real_folder(tmp_path)
    real = realeval.load_real(folder)
    with pytest.raises(AnnotationError, match=r"instances.json: brand 'umbrella' is not among its categories"):
        realeval.split_for_brands(real, ("acme", "umbrella"))
    with pytest.raises(AnnotationError, match=r"categories \['umbrella'\]"):
        distribution.read_coco_boxes(os.path.join(folder, "instances.json"), ["umbrella"])


def test_detections_naming_unknown_images_or_classes_are_refused(tmp_path):
    folder, _ = _real_folder(tmp_path)
    real = realeval.load_real(folder)
    gt = realeval.ground_truth(real, realeval.split_for_brands(real, ("acme",)))
    with pytest.raises(AnnotationError, match="not a test photo"):
        realeval.evaluate(gt, [{"image_id": 999, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 1.0}])
    with pytest.raises(AnnotationError, match="not a brand"):
        realeval.evaluate(gt, [{"image_id": gt["images"][0]["id"], "category_id": 7, "bbox": [0, 0, 5, 5],
                                "score": 1.0}])


def test_distribution_statistics_and_distances(tmp_path):
    # two boxes in 100x200 images: one touching the left border, one in the middle; one empty image
    a = distribution.BoxSample(np.array([[10, 0, 30, 50], [40, 80, 60, 120]], float),
                               np.array([[100, 200], [100, 200]], float), np.array([1, 1, 0]))
    st = a.statistics()
    np.testing.assert_allclose(st["width"], [0.25, 0.2])
    np.testing.assert_allclose(st["border"], [1, 0])
    np.testing.assert_allclose(st["empty"], [0, 0, 1])
    assert distribution.compare(a, a) == {k: 0.0 for k in distribution.STATISTICS}
    wider = distribution.BoxSample(a.boxes_px * [1, 2, 1, 2], a.image_hw * [1, 2], a.per_image)
    d = distribution.compare(a, distribution.BoxSample(np.array([[10, 0, 30, 100], [40, 80, 60, 180]], float),
                                                       a.image_hw, np.array([1, 1])))
    assert d["width"] == pytest.approx(np.mean([0.25, 0.3]), abs=1e-4)  # 0.25->0.5 and 0.2->0.5
    assert d["empty"] == pytest.approx(1 / 3, abs=1e-4)
    assert wider.statistics()["width"].tolist() == pytest.approx([0.25, 0.2])  # shares do not change with scale


def test_compare_to_real_reads_shards_and_writes_a_table_plot_and_json(tmp_path, workdir):
    from conftest import write_config
    folder, _ = _real_folder(tmp_path / "real")
    cfg = write_config(workdir, num_images=6)
    out = str(workdir / "data")
    assert run_tool("make_tfrecords", f"--config={cfg}", f"--output_dir={out}", "--workers=1").returncode == 0
    js = str(workdir / "cmp.json")
    r = run_tool("compare_to_real", f"--data_dir={out}", f"--real={folder}/instances.json", f"--json={js}")
    assert r.returncode == 0, r.stderr
    assert "median width share" in r.stdout and "distance to real photos" in r.stdout
    with open(js) as f:
        figures = json.load(f)
    assert figures["real"]["boxes"] == 9 and figures["composites"]["images"] >= 3
    assert set(figures["distances"]) == set(distribution.STATISTICS)
    assert os.path.getsize(os.path.join(out, "vs_real.png")) > 1000
    sheet = cv2.imread(os.path.join(out, "vs_real_sheet.jpg"))
    assert sheet is not None and sheet.shape[1] > 2 * 320  # composites and real photos side by side
    one = str(workdir / "acme_sheet.jpg")  # one brand: its composites beside its photos
    r = run_tool("compare_to_real", f"--data_dir={out}", f"--real={folder}/instances.json", "--categories=acme",
                 f"--sheet={one}", "--plot=")
    assert r.returncode == 0, r.stderr
    assert cv2.imread(one) is not None
    r = run_tool("compare_to_real", f"--data_dir={out}", f"--real={folder}/instances.json", "--sheet_classes=initech",
                 f"--sheet={workdir}/none.jpg", "--plot=")
    assert r.returncode == 2 and "--sheet_classes" in r.stderr and "class initech" in r.stderr
    assert not os.path.exists(f"{workdir}/none.jpg")
    r = run_tool("compare_to_real", f"--data_dir={out}", f"--real={folder}/missing.json")
    assert r.returncode == 2 and "missing.json" in r.stderr and "no such file" in r.stderr


def test_transfer_stages_resume_and_restart_under_another_protocol(tmp_path):
    calls = []
    stages = transfer.Stages(str(tmp_path), {"name": "quick"})
    assert stages.run("a", lambda: calls.append("a") or 1) == 1
    again = transfer.Stages(str(tmp_path), {"name": "quick"})  # an interrupted run, started again
    assert again.run("a", lambda: calls.append("a2") or 2) == 1  # finished: not run again
    assert again.run("b", lambda: calls.append("b") or 3) == 3
    assert calls == ["a", "b"]
    other = transfer.Stages(str(tmp_path), {"name": "full"})
    assert other.run("a", lambda: calls.append("a3") or 4) == 4
    assert calls[-1] == "a3"


def test_transfer_rerun_with_more_arms_keeps_the_finished_ones(tmp_path):
    first = {"name": "full", "steps_per_arm": 2000, "arms": ["realism", "naive"]}
    stages = transfer.Stages(str(tmp_path), transfer.stage_protocol(first))
    stages.run("train:realism", lambda: "trained")
    more = transfer.Stages(str(tmp_path), transfer.stage_protocol(dict(first, arms=["realism", "naive", "no_light"])))
    assert more.run("train:realism", lambda: "again") == "trained"
    longer = transfer.Stages(str(tmp_path), transfer.stage_protocol(dict(first, steps_per_arm=3000)))
    assert longer.run("train:realism", lambda: "again") == "again"  # another protocol: trained again


def test_transfer_stages_trained_with_another_version_of_the_template_are_trained_again(tmp_path):
    template = tmp_path / "recipe.config"
    template.write_text((pathlib.Path(ROOT) / "pipelines" / "small_cpu_demo.config").read_text())
    first = {"name": "full", "template": str(template), "template_sha256": transfer.template_digest(str(template)),
             "detector": "as worded today"}
    stages = transfer.Stages(str(tmp_path), first)
    stages.run("train:realism", lambda: "trained")
    template.write_text(template.read_text().replace("first_stage_max_proposals:", "first_stage_max_proposals: 7 #"))
    changed = dict(first, template_sha256=transfer.template_digest(str(template)))
    assert changed["template_sha256"] != first["template_sha256"]
    assert transfer.Stages(str(tmp_path), changed).run("train:realism", lambda: "again") == "again"
    # a folder written before the protocol recorded the template's content keeps its stages, with a warning
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    transfer.Stages(str(legacy), {"name": "full", "template": str(template), "detector": "worded before"}).run(
        "train:realism", lambda: "trained")
    assert transfer.Stages(str(legacy), changed).run("train:realism", lambda: "again") == "trained"


def test_transfer_more_repeats_keep_the_finished_runs_and_name_each_run_apart(tmp_path):
    first = {"name": "full", "steps_per_arm": 2000, "arms": ["realism"], "repeats": 1}
    stages = transfer.Stages(str(tmp_path), transfer.stage_protocol(first))
    one, two = transfer.run_names("realism", 1), transfer.run_names("realism", 2)
    assert (one["train"], one["run"], one["detections"]) == ("train:realism", "run", "detections.json")
    assert (two["train"], two["run"], two["export_dir"]) == ("train:realism#2", "run-2", "export-2")
    stages.run(one["train"], lambda: "first")
    more = transfer.Stages(str(tmp_path), transfer.stage_protocol(dict(first, repeats=3)))
    assert more.run(one["train"], lambda: "again") == "first"  # repeat 1 is not trained again
    assert more.run(two["train"], lambda: "second") == "second"
    with pytest.raises(ConfigError, match="repeat 0"):
        transfer.run_names("realism", 0)
    # a report reads every run an arm has: repeats is how many runs it gets at least
    assert transfer.repeats_of("realism", 1, more.done) == [1]  # run 2 trained, not yet scored
    more.run(two["detect"], lambda: "dets-2")
    assert transfer.repeats_of("realism", 1, more.done) == [1, 2]
    assert transfer.repeats_of("realism", 3, more.done) == [1, 2, 3]
    assert transfer.repeats_of("naive", 1, more.done) == [1]


def _scores(m50, fedex, google):
    return {"map50_mean": m50, "map_mean": m50 / 2, "ar100_mean": m50 + 0.1,
            "per_brand": {"fedex": {"map50": fedex, "map": fedex / 2, "ar100": 0.5},
                          "google": {"map50": google, "map": google / 2, "ar100": 0.3}}}


def test_transfer_combines_runs_into_means_with_their_range():
    got = transfer.combine_runs([_scores(0.32, 0.46, 0.18), _scores(0.23, 0.40, 0.06)])
    assert got["map50_mean"] == pytest.approx(0.275) and got["map_mean"] == pytest.approx(0.1375)
    assert got["ar100_mean"] == pytest.approx(0.375)
    assert got["per_brand"]["fedex"]["map50"] == pytest.approx(0.43)
    assert got["per_brand"]["google"] == {"map50": pytest.approx(0.12), "map": pytest.approx(0.06), "ar100": 0.3}
    assert got["map50_range"] == [0.23, 0.32]
    assert got["map50_sd"] == pytest.approx(0.0636, abs=1e-4)  # sample sd of 0.32 and 0.23
    assert [r["map50_mean"] for r in got["runs"]] == [0.32, 0.23]
    single = transfer.combine_runs([_scores(0.3, 0.4, 0.2)])
    assert single["map50_mean"] == 0.3 and single["map50_sd"] is None and single["map50_range"] == [0.3, 0.3]
    with pytest.raises(ConfigError, match="no runs"):
        transfer.combine_runs([])
    band = {"width": [0.0, 0.5], "boxes": 4}
    rec = transfer.combine_runs(
        [{**_scores(0.3, 0.4, 0.2), "recall_by_width": [dict(band, found=0.5, found_scored=0.25)]},
         {**_scores(0.2, 0.3, 0.1), "recall_by_width": [dict(band, found=1.0, found_scored=0.5)]}])
    assert rec["recall_by_width"] == [dict(band, found=0.75, found_scored=0.375)]
    assert rec["runs"][1]["recall_by_width"][0]["found"] == 1.0
    # the part shares are averaged where every run has them (a self-check kept from before them has not)
    parts = dict(band, found=1.0, found_scored=0.5, part_scored=0.5, part_first=0.25)
    both = transfer.combine_runs([{**_scores(0.3, 0.4, 0.2), "recall_by_width": [parts]},
                                  {**_scores(0.2, 0.3, 0.1), "recall_by_width": [dict(parts, part_first=0.75)]}])
    assert both["recall_by_width"] == [dict(parts, part_first=0.5)]
    mixed = transfer.combine_runs([{**_scores(0.3, 0.4, 0.2), "recall_by_width": [parts]},
                                   {**_scores(0.2, 0.3, 0.1), "recall_by_width": [dict(band, found=0.0,
                                                                                        found_scored=0.0)]}])
    assert mixed["recall_by_width"] == [dict(band, found=0.5, found_scored=0.25)]


def test_transfer_table_shows_runs_and_warns_against_ranking_inside_the_range():
    arm = {**transfer.combine_runs([_scores(0.32, 0.46, 0.18), _scores(0.23, 0.40, 0.06)]),
           "generation": {"composites_per_s_per_core": 30.0},
           "distribution": {"composites": {"width_median": 0.25}}}
    boot = {"resamples": 2000, "level": 0.9,
            "arms": {"realism": {"map50_mean": 0.275, "interval": [0.21, 0.33]},
                     "naive": {"map50_mean": 0.2, "interval": [0.15, 0.26]}},
            "pairs": {"realism - naive": {"difference": 0.075, "interval": [0.02, 0.13], "share_first_higher": 0.97},
                      "naive - other": {"difference": -0.01, "interval": [-0.05, 0.03], "share_first_higher": 0.4}}}
    naive = {**transfer.combine_runs([_scores(0.2, 0.3, 0.1)]), "generation": {"composites_per_s_per_core": 90.0},
             "distribution": {"composites": {"width_median": 0.26}}}
    report = {"test_photos": {"positives": 2, "negatives": 2, "boxes": 3}, "brands": ["fedex", "google"],
              "arms": {"realism": arm, "naive": naive}, "bootstrap": boot}
    text = transfer.table(report)
    assert "2 (0.230-0.320)" in text and "0.275" in text and "not a ranking" in text
    assert "0.210-0.330" in text and "0.150-0.260" in text  # each arm's interval over the photos drawn again
    lines = text.splitlines()
    assert any("realism - naive" in ln and "+0.075" in ln and "(+0.020 to +0.130" in ln and "97%" in ln
               and ln.endswith("  ranked by these photos") for ln in lines)
    assert any("naive - other" in ln and ln.endswith("not ranked by these photos") for ln in lines)
    assert "by box width" not in text  # no arm was scored by size
    bands = [{"width": [0.0, 0.3], "boxes": 2, "found": 0.5, "found_scored": 0.0},
             {"width": [0.3, 1.0], "boxes": 0, "found": None, "found_scored": None}]
    for r in report["arms"].values():
        r["recall_by_width"] = bands
    lines = transfer.table(report).splitlines()
    assert any("by box width" in ln and "0.00-0.30 (2)  0.30-1.00 (0)" in ln for ln in lines)
    assert any(ln.split()[:4] == ["realism", "0.00", "(0.50)", "-"] for ln in lines)
    assert "part of the logo" not in "\n".join(lines)  # reports from before the part shares
    for r in report["arms"].values():
        r["recall_by_width"] = [dict(bands[0], part_scored=0.5, part_first=1.0), dict(bands[1], part_scored=None,
                                                                                      part_first=None)]
    lines = transfer.table(report).splitlines()
    at = next(i for i, ln in enumerate(lines) if "box on part of the logo is drawn" in ln)
    assert lines[at + 1].split() == ["realism", "0.50", "(1.00)", "-"]


def test_transfer_self_check_scores_the_model_on_its_own_val_composites(tmp_path):
    from conftest import tiny_export
    from synth.tfexample import encode_example
    from synth.tfrecord_io import RecordWriter

    # 4 val composites 200 px wide, each with TINY_BOX (0.4 of the width) as acme; the last also holds
    # a box 0.1 wide that the tiny model (it finds TINY_BOX as acme at 0.9 in any image) does not find
    data = tmp_path / "data"
    data.mkdir()
    small = [0.7, 0.8, 0.8, 0.9]
    with RecordWriter(str(data / "val-00000-of-00001.tfrecord")) as w:
        for i in range(4):
            jpeg = cv2.imencode(".jpg", make_background(100, 200, seed=i))[1].tobytes()
            boxes = [list(TINY)] + ([small] if i == 3 else [])
            w.write(encode_example(jpeg, 100, 200, f"c{i}.jpg", f"c{i}", np.array(boxes), ["acme"] * len(boxes),
                                   [1] * len(boxes)))
    own = transfer._self_check(tiny_export(tmp_path / "export"), str(data))
    assert (own["composites"], own["boxes"]) == (4, 5)
    bands = {tuple(b["width"]): b for b in own["recall_by_width"]}
    assert bands[(0.0, 0.15)] == {"width": [0.0, 0.15], "boxes": 1, "found": 0.0, "found_scored": 0.0,
                                  "part_scored": 0.0, "part_first": 0.0}
    assert bands[(0.3, 0.5)] == {"width": [0.3, 0.5], "boxes": 4, "found": 1.0, "found_scored": 1.0,
                                 "part_scored": 0.0, "part_first": 0.0}
    # acme: 4 of 5 boxes at precision 1 (81 of COCO's 101 recall points); scene has no boxes and scores 0
    assert own["map50_mean"] == pytest.approx((81 / 101 + 0.0) / 2, abs=1e-3)
    with pytest.raises(ConfigError, match="matches no files"):
        transfer._self_check(tiny_export(tmp_path / "export2"), str(tmp_path / "nothing"))


def test_transfer_trains_on_the_composites_its_generate_stage_recorded(tmp_path, monkeypatch):
    # a work folder may borrow an arm's finished generate stage from another folder: a second run
    # must train on those composites, not on WORK/ARM/data (which does not exist there)
    cmds = []
    monkeypatch.setattr(transfer, "_run", lambda cmd, log, **kw: cmds.append(cmd))
    old_run = tmp_path / "work" / "realism" / "run-2"
    old_run.mkdir(parents=True)  # a half-finished run: started again
    (old_run / "ckpt-1.index").write_text("stale")
    got = transfer._train("realism", str(tmp_path / "work"), 2000, "small_cpu_demo", "log", "run-2", "/elsewhere/data")
    assert got["run_dir"] == str(old_run) and not old_run.exists()
    assert "--data_dir=/elsewhere/data" in cmds[0] and f"--run_dir={old_run}" in cmds[0]
    assert f"--model_dir={old_run}" in cmds[1] and "--num_train_steps=2000" in cmds[1]
    # 8 checkpoints through training, for the late stage, the last at the last step
    assert "--checkpoint_every_n=250" in cmds[1] and "--num_steps_per_iteration=50" in cmds[1]


def test_transfer_checkpoints_fall_on_loop_ends_and_the_last_step():
    for steps in (2000, 1000, 250, 400, 7, 1, 1999):
        every, per_loop = transfer.checkpoint_interval(steps)
        # the OD API saves after a loop that takes it `every` steps past the last save: every save then
        # lands on a multiple of `every`, and the last one on the last step
        assert steps % every == 0 and every % per_loop == 0 and per_loop <= 100, steps
        assert steps // every == max(k for k in range(1, 9) if steps % k == 0), steps
    assert transfer.checkpoint_interval(2000) == (250, 50) and transfer.checkpoint_interval(250) == (50, 50)
    with pytest.raises(ConfigError, match="--steps 0"):
        transfer.checkpoint_interval(0)


def _odapi_like_run(run_dir, steps):
    """Checkpoints as the OD API's train loop names them (ckpt-N, a `step` variable) of a model whose
    one weight is the step / 250 (so an average of checkpoints is known)."""
    import tensorflow as tf

    model = tf.Module()
    model.w = tf.Variable(0.0)
    step = tf.Variable(0, dtype=tf.int64)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model, step=step), str(run_dir), max_to_keep=7)
    for s in steps:
        model.w.assign(s / 250)
        step.assign(s)
        manager.save()


def test_transfer_goes_on_from_the_checkpoint_of_a_run_interrupted_part_way(tmp_path, monkeypatch):
    import re

    cmds = []
    monkeypatch.setattr(transfer, "_run", lambda cmd, log, **kw: cmds.append(cmd))
    work, data = tmp_path / "work", str(tmp_path / "data")
    run = work / "realism" / "run"
    _odapi_like_run(run, [0, 250, 500])  # stopped after step 500 of 2,000
    template = open(os.path.join(ROOT, "pipelines", "small_cpu_demo.config")).read()

    def write_pipeline(data_dir, steps):
        text = re.sub(r"num_steps: \d+", f"num_steps: {steps}", template)
        text = text.replace('input_path: "PATH_TO_BE_CONFIGURED"',
                            f'input_path: "{data_dir}/train-?????-of-?????.tfrecord"', 1)
        (run / "pipeline.config").write_text(text)

    write_pipeline(data, 2000)
    assert transfer.resumable_step(str(run), data, 2000) == 500
    got = transfer._train("realism", str(work), 2000, "small_cpu_demo", "log", "run", data)
    assert got["resumed_from_step"] == 500 and (run / "ckpt-3.index").exists()  # kept, not started again
    assert len(cmds) == 1 and "tools/model_main_tf2.py" in cmds[0]  # no new pipeline.config
    # another dataset, another length, or a finished run: not this run's to go on with
    assert transfer.resumable_step(str(run), str(tmp_path / "other"), 2000) == 0
    assert transfer.resumable_step(str(run), data, 1000) == 0
    assert transfer.resumable_step(str(run), data, 500) == 0
    write_pipeline(str(tmp_path / "other"), 2000)
    cmds.clear()
    got = transfer._train("realism", str(work), 2000, "small_cpu_demo", "log", "run", data)
    assert "resumed_from_step" not in got and not run.exists()  # started again: configured anew
    assert "tools/configure_pipeline.py" in cmds[0]


def test_transfer_late_stage_scores_the_last_checkpoints_and_their_average(tmp_path, monkeypatch):
    import tensorflow as tf

    work = tmp_path / "work"
    _odapi_like_run(work / "realism" / "run", range(0, 2001, 250))  # keeps the last 7: 500..2000
    scored = []

    def fake_score(arm, run_dir, ckpt, folder, name, real, gt, log, average_last=1):
        if average_last > 1:  # the exporter averages the run's last N (test_end_to_end): record what it was asked
            scored.append((name, ckpt, average_last))
            return {"detections": f"{folder}/d-{name}.json", "averaged_checkpoints": ["..."],
                    **_scores(0.65, 0.4, 0.1)}
        reader = tf.train.load_checkpoint(ckpt)
        w = float(reader.get_tensor("model/w/.ATTRIBUTES/VARIABLE_VALUE"))
        scored.append((name, w))
        return {"detections": f"{folder}/d-{name}.json", **_scores(round(w / 10, 4), 0.4, 0.1)}

    monkeypatch.setattr(transfer, "_score_checkpoint", fake_score)
    names = transfer.run_names("realism", 1)
    got = transfer._late("realism", str(work), "log", names, None, None)
    # the last 4 checkpoints: 1250, 1500, 1750 scored one by one (2000 is the run's own figure), and the
    # run's folder exported as the average of its last 4
    run_dir = str(work / "realism" / "run")
    assert [c["step"] for c in got["checkpoints"]] == [1250, 1500, 1750]
    assert scored == [("step1250", 5.0), ("step1500", 6.0), ("step1750", 7.0), ("average", run_dir, 4)]
    assert got["average"]["steps"] == [1250, 1500, 1750, 2000] and got["average"]["map50_mean"] == 0.65
    assert got["average"]["averaged_checkpoints"] == ["..."]
    # in the report: the runs' average beside their final figure, and a table line per run
    arm = {**transfer.combine_runs([{**_scores(0.8, 0.4, 0.1), "late": got}]),
           "generation": {"composites_per_s_per_core": 30.0}, "distribution": {"composites": {"width_median": 0.25}}}
    assert arm["average"] == {"runs": 1, "map50_mean": 0.65, "map_mean": 0.325, "ar100_mean": 0.75}
    boot = {"resamples": 10, "level": 0.9, "arms": {"realism": {"map50_mean": 0.8, "interval": [0.7, 0.9]}},
            "pairs": {}}
    text = transfer.table({"test_photos": {"positives": 2, "negatives": 2, "boxes": 3}, "brands": ["fedex", "google"],
                           "arms": {"realism": arm}, "bootstrap": boot})
    assert any(ln.split()[:1] == ["realism"] and "1250: 0.500  1500: 0.600  1750: 0.700  2000: 0.800" in ln
               and ln.endswith("average of 4: 0.650") for ln in text.splitlines())
    assert "the averaged models" not in text  # neither bands nor pairs of averaged models to show
    # where the averaged models fail, by box width, and the arms compared by their averaged models too
    band = {"width": [0.0, 0.5], "boxes": 4}
    late2 = {**got, "average": {**got["average"], "recall_by_width": [dict(band, found=1.0, found_scored=0.5)]}}
    arm = {**transfer.combine_runs([{**_scores(0.8, 0.4, 0.1), "late": late2},
                                    {**_scores(0.6, 0.4, 0.1), "late": {**late2, "average": {
                                        **late2["average"], "recall_by_width": [dict(band, found=0.5,
                                                                                     found_scored=0.0)]}}}]),
           "generation": {"composites_per_s_per_core": 30.0}, "distribution": {"composites": {"width_median": 0.25}}}
    assert arm["average"]["runs"] == 2 and arm["average"]["recall_by_width"] == [dict(band, found=0.75,
                                                                                      found_scored=0.25)]
    pairs = {"realism - naive": {"difference": 0.12, "interval": [0.05, 0.2], "share_first_higher": 0.99}}
    text = transfer.table({"test_photos": {"positives": 2, "negatives": 2, "boxes": 3}, "brands": ["fedex"],
                           "arms": {"realism": arm}, "bootstrap": {**boot, "pairs": {}},
                           "bootstrap_average": {**boot, "pairs": pairs}})
    lines = text.splitlines()
    i = lines.index("the averaged models: real boxes found at score >= 0.5 (any score), by the same bands")
    assert lines[i + 1].split() == ["realism", "0.25", "(0.75)", "mAP@.5", "0.650"]
    assert any(ln.startswith("differences of the averaged models") for ln in lines)
    assert not any(ln.startswith("differences of the final models") for ln in lines)  # no pairs there
    assert any("realism - naive" in ln and "+0.120" in ln and ln.endswith("  ranked by these photos") for ln in lines)
    # a run trained before checkpoints were kept through training: nothing to score, said so
    _odapi_like_run(work / "naive" / "run", [0, 2000])
    old = transfer._late("naive", str(work), "log", transfer.run_names("naive", 1), None, None)
    assert old["average"] is None and old["checkpoints"] == [] and "kept 1 checkpoint after step 0" in old["skipped"]
    assert "average" not in transfer.combine_runs([{**_scores(0.3, 0.4, 0.1), "late": old}])


def test_transfer_refuses_fewer_than_one_repeat(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "transfer.py"), "--repeats=0",
                        f"--real={tmp_path}/nowhere", f"--work_dir={tmp_path}/w"], capture_output=True, text=True)
    assert r.returncode == 2 and "--repeats 0 must be at least 1" in r.stderr
    assert not os.path.exists(f"{tmp_path}/w")  # refused before anything is written


def test_transfer_arm_configs_parse_and_differ_only_in_realism(tmp_path):
    from synth import config as configlib

    texts = {arm: transfer.arm_config(arm, ("fedex",), "/logos", "/bg", 10,
                                      {"fedex": transfer.ARMS[arm].get("colourways", transfer.COLOURWAYS)})
             for arm in transfer.ARMS}
    for arm, text in texts.items():
        c = configlib.parse_config_text(text, arm)
        assert c.logo[0].path == "/logos/fedex.png" and c.placement.max_objects == 2
    naive = configlib.parse_config_text(texts["naive"], "naive")
    assert not naive.realism.surface.enabled and not naive.realism.gate.enabled
    assert not naive.realism.light.enabled and not naive.realism.camera.enabled
    realism = configlib.parse_config_text(texts["realism"], "realism")
    assert realism.realism.surface.enabled and not realism.realism.gate.enabled  # the defaults: gate off
    assert configlib.parse_config_text(texts["with_gate"], "with_gate").realism.gate.enabled
    with pytest.raises(AnnotationError, match="arm 'bogus'"):
        transfer.arm_config("bogus", ("fedex",), "/logos", "/bg", 10)
    with pytest.raises(AnnotationError, match="arm 'bogus'"):
        transfer.arm_colourways("bogus", ("fedex",), "/logos", "/bg")
    drawn = configlib.parse_config_text(texts["with_colourways"], "with_colourways").logo[0].colourway
    assert [(c.name, round(c.weight, 2)) for c in drawn] == [("original", 0.5), ("white", 0.2), ("black", 0.1),
                                                             ("plate", 0.2)]
    assert [c.name for c in realism.logo[0].colourway] == ["original"]
    tint = configlib.parse_config_text(texts["with_tint"], "with_tint")
    assert [(c.name, round(c.weight, 2)) for c in tint.logo[0].colourway] == [("original", 0.6), ("tint", 0.4)]
    assert tint.realism.surface.enabled and not tint.realism.gate.enabled
    fit = configlib.parse_config_text(texts["with_closeup_fit"], "with_closeup_fit")
    assert fit.placement.closeup_candidates == 8 and realism.placement.closeup_candidates == 1


def test_an_arm_keeps_only_the_colourways_the_gate_accepts_for_each_brand(tmp_path):
    logos, bg = tmp_path / "logos", tmp_path / "bg"
    logos.mkdir()
    bg.mkdir()
    cv2.imwrite(str(bg / "b.jpg"), make_background(120, 160, seed=3))
    flat = np.full((120, 160, 3), 255, np.uint8)  # one ink on a white page: any one-colour print keeps it
    cv2.rectangle(flat, (20, 30), (140, 50), (40, 40, 200), -1)
    cv2.rectangle(flat, (70, 50), (90, 100), (40, 40, 200), -1)
    cv2.imwrite(str(logos / "flat.png"), flat)
    disc = np.full((120, 120, 3), 255, np.uint8)  # a pattern inside a disc: a one-colour print loses it
    cv2.circle(disc, (60, 60), 50, (150, 90, 20), -1)
    for k in range(4):
        cv2.rectangle(disc, (30 + 16 * k, 40), (36 + 16 * k, 80), (20, 200, 230), -1)
    cv2.imwrite(str(logos / "disc.png"), disc)
    got = transfer.arm_colourways("with_colourways", ("flat", "disc"), str(logos), str(bg))
    assert got["flat"] == transfer.ARMS["with_colourways"]["colourways"]
    assert got["disc"] == (("original", 0.5),)
    # a tint keeps the pattern inside the disc (a duotone of its luminance): both brands keep it
    tinted = transfer.arm_colourways("with_tint", ("flat", "disc"), str(logos), str(bg))
    assert tinted == {b: (("original", 0.6), ("tint", 0.4)) for b in ("flat", "disc")}
    # an arm with the original colours only never reads the artwork
    assert transfer.arm_colourways("realism", ("flat",), "/nowhere", "/nowhere") == {"flat": transfer.COLOURWAYS}


def test_transfer_records_the_recipe_of_the_template_it_trains(tmp_path):
    from synth.errors import ConfigError

    assert transfer.template_recipe("small_cpu") == {"resolution": 256, "batch_size": 2,
                                                     "optimizer": "momentum_optimizer"}
    assert transfer.template_recipe("small_cpu_demo") == {"resolution": 192, "batch_size": 4,
                                                          "optimizer": "adam_optimizer"}
    zoo = transfer.template_recipe("faster_rcnn_resnet50_v1_640x640")  # keep_aspect_ratio_resizer: [min, max]
    assert zoo["resolution"] == [640, 640] and zoo["batch_size"] == 8
    with pytest.raises(ConfigError, match="'no_such_recipe' does not exist"):
        transfer.template_recipe("no_such_recipe")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "transfer.py"), "--template=no_such_recipe",
                        f"--real={tmp_path}", f"--work_dir={tmp_path / 'work'}"], capture_output=True, text=True)
    assert r.returncode == 2 and "no_such_recipe" in r.stderr


def test_transfer_reads_the_full_protocols_template_from_any_folder(tmp_path, monkeypatch):
    from synth.errors import ConfigError

    monkeypatch.chdir(tmp_path)  # not the repository's root, where the tools run
    default = transfer.PROTOCOLS["full"]["template"]
    assert transfer.resolve_template(default) == default  # recorded as given: its work folders stay resumable
    # the full protocol trains the demo's detector with a cosine-decayed rate
    with open(os.path.join(ROOT, default), "rb") as f:
        assert transfer.template_digest(default) == hashlib.sha256(f.read()).hexdigest()
    assert "cosine_decay_learning_rate" in open(os.path.join(ROOT, default)).read()
    assert transfer.template_recipe(default) == {"resolution": 192, "batch_size": 4, "optimizer": "adam_optimizer"}
    assert transfer.resolve_template("small_cpu") == "small_cpu"
    mine = tmp_path / "mine.config"  # found only from the current folder: made absolute for the tools
    mine.write_text(open(os.path.join(ROOT, "pipelines", "small_cpu.config")).read())
    assert transfer.resolve_template("mine.config") == str(mine)
    with pytest.raises(ConfigError, match="'nowhere.config' does not exist"):
        transfer.resolve_template("nowhere.config")


def test_transfer_names_its_default_work_folder_after_a_template_given_as_a_path(tmp_path, monkeypatch):
    from synth.errors import AnnotationError, ConfigError

    template = tmp_path / "recipes" / "my_recipe.config"
    template.parent.mkdir()
    template.write_text((pathlib.Path(ROOT) / "pipelines" / "small_cpu_demo.config").read_text())
    monkeypatch.setattr(transfer, "OUT", str(tmp_path / "out"))
    with pytest.raises((AnnotationError, ConfigError)):  # no real photos here: stops after making the folder
        transfer.run(str(tmp_path / "no_photos"), False, ["realism"], None, str(tmp_path / "t.json"),
                     template=str(template), steps=10)
    assert sorted(os.listdir(tmp_path / "out")) == ["transfer-work-full-my_recipe-steps10"]


def test_transfer_steps_override_is_checked(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "transfer.py"), "--steps=0",
                        f"--real={tmp_path}", f"--work_dir={tmp_path / 'work'}"], capture_output=True, text=True)
    assert r.returncode == 2 and "--steps 0 must be at least 1" in r.stderr
    # a valid override gets as far as the real photos (none here), with the error naming the folder
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "transfer.py"), "--steps=7",
                        f"--real={tmp_path}", f"--work_dir={tmp_path / 'work'}"], capture_output=True, text=True)
    assert r.returncode == 2 and str(tmp_path) in r.stderr and "--steps" not in r.stderr


def test_transfer_config_override_changes_the_recipe_is_recorded_and_gets_its_own_folder(tmp_path, monkeypatch):
    crop8 = "model { faster_rcnn { initial_crop_size: 8 } }"
    sgd = ("train_config { batch_size: 2 optimizer { momentum_optimizer { learning_rate { "
           "constant_learning_rate { learning_rate: 0.001 } } } } }")
    # the override's batch size and optimizer (a oneof switched) are what the protocol records
    assert transfer.template_recipe("small_cpu_demo", sgd) == {"resolution": 192, "batch_size": 2,
                                                               "optimizer": "momentum_optimizer"}
    assert transfer.template_recipe("small_cpu_demo", crop8) == transfer.template_recipe("small_cpu_demo")
    # training passes it to configure_pipeline, whose pipeline.config then has the crop size
    cmds = []
    monkeypatch.setattr(transfer, "_run", lambda cmd, log, **kw: cmds.append(cmd))
    transfer._train("naive", str(tmp_path / "w"), 40, "small_cpu_demo", "log", "run", "/data", crop8)
    assert f"--config_override={crop8}" in cmds[0]
    cmds.clear()
    transfer._train("naive", str(tmp_path / "w"), 40, "small_cpu_demo", "log", "run", "/data")
    assert not any(c.startswith("--config_override") for c in cmds[0])
    # the default work folder is keyed on the override, one line, so variants never share a folder
    monkeypatch.setattr(transfer, "OUT", str(tmp_path / "out"))
    for override in (crop8, " model {\n faster_rcnn { initial_crop_size: 8 } }\n", sgd):
        with pytest.raises((AnnotationError, ConfigError)):  # no real photos here: stops after the folder
            transfer.run(str(tmp_path / "no_photos"), False, ["realism"], None, str(tmp_path / "t.json"),
                         steps=10, config_override=override)
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        [f"transfer-work-full-steps10-override{transfer.override_key(crop8)}",  # the full protocol's template
         f"transfer-work-full-steps10-override{transfer.override_key(sgd)}"])
    assert transfer.override_key(crop8) != transfer.override_key(sgd)


def test_transfer_default_templates_are_the_protocols_own_and_name_no_folder(tmp_path, monkeypatch):
    # full: the demo's detector, cosine rate, for 2,000 steps (the setting that ranks the arms); quick: small_cpu
    assert transfer.PROTOCOLS["full"]["steps"] == 2000
    assert transfer.PROTOCOLS["full"]["template"] == "bench/results/small_cpu_demo_fpn_cosine.config"
    assert (transfer.PROTOCOLS["quick"]["template"], transfer.PROTOCOLS["quick"]["steps"]) == ("small_cpu", 250)
    monkeypatch.setattr(transfer, "OUT", str(tmp_path / "out"))
    for quick, template in ((False, None), (True, None), (False, "small_cpu"), (True, "small_cpu_demo"),
                            (False, "small_cpu_demo")):
        with pytest.raises((AnnotationError, ConfigError)):  # no real photos here: stops after the folder
            transfer.run(str(tmp_path / "no_photos"), quick, ["realism"], None, str(tmp_path / "t.json"),
                         template=template)
    assert sorted(os.listdir(tmp_path / "out")) == ["transfer-work-full", "transfer-work-full-small_cpu",
                                                   "transfer-work-full-small_cpu_demo", "transfer-work-quick",
                                                   "transfer-work-quick-small_cpu_demo"]


def test_transfer_training_says_its_progress_and_keeps_every_line_in_the_log(tmp_path):
    said = []
    lines = ["I1207 15:00:11.038531 1400 model_lib_v2.py:705] Step 100 per-step time 3.385s",
             "some other line", "I1207 15:04:36.430887 1400 model_lib_v2.py:705] Step 200 per-step time 2.654s"]
    script = "import sys\n" + "".join(f"print({ln!r}, file=sys.stderr)\n" for ln in lines)
    log = tmp_path / "log.txt"
    on_line = transfer.train_progress("train:naive", 2000, say=lambda msg, flush: said.append(msg))
    transfer._run([sys.executable, "-c", script], str(log), on_line=on_line)
    assert said == ["transfer: train:naive: step 100/2000, 3.38 s per step, about 107 min left",
                    "transfer: train:naive: step 200/2000, 2.65 s per step, about 80 min left"]
    assert log.read_text().endswith("\n".join(lines) + "\n")  # every line, after the "$ command" line
    # a failing tool still stops the benchmark with the log's last lines, streamed or not
    with pytest.raises(SystemExit, match=r"(?s)failed \(exit 3\).*some other line"):
        transfer._run([sys.executable, "-c", script + "sys.exit(3)\n"], str(log), on_line=on_line)


def test_transfer_refuses_a_bad_config_override_naming_it_before_anything_runs(tmp_path):
    for bad, says in (("model { faster_rcnn { initial_crop_sizes: 8 } }", "is not a pipeline config fragment"),
                      ("model { ssd { num_classes: 1 } }", "sets model.ssd, but the pipeline has model.faster_rcnn"),
                      ("train_input_reader { tf_record_input_reader { input_path: 'x' } }", "a list")):
        r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "transfer.py"), "--template=small_cpu_demo",
                            f"--config_override={bad}", f"--real={tmp_path}", f"--work_dir={tmp_path / 'work'}"],
                           capture_output=True, text=True)
        assert r.returncode == 2 and "--config_override" in r.stderr and says in r.stderr, r.stderr
        assert not (tmp_path / "work").exists()


def test_rescore_exports_finished_runs_with_an_override_and_scores_them_beside_the_run(tmp_path, monkeypatch):
    from bench import rescore

    real_dir, _ = _real_folder(tmp_path / "real")
    real = realeval.load_real(real_dir)
    gt = realeval.ground_truth(real, realeval.split_for_brands(real, list(BRANDS)))
    work = tmp_path / "work"
    (work / "naive" / "run-2").mkdir(parents=True)
    (work / "naive" / "run-2" / "pipeline.config").write_text("model {}")
    (work / "stages.json").write_text(json.dumps({"protocol": {"brands": list(BRANDS)}, "done": {}}))
    truth = _gt_as_detections(gt)
    # as trained, the run found the first half of the boxes; with the override, all of them
    (work / "naive" / "detections-2.json").write_text(json.dumps(truth[: len(truth) // 2]))
    cmds = []

    def fake_run(cmd, log, **kw):
        cmds.append(cmd)
        export_dir = next(c.split("=", 1)[1] for c in cmd if c.startswith("--export_dir="))
        os.makedirs(os.path.join(export_dir, "naive", "1", "assets.extra"))
        with open(os.path.join(export_dir, "naive", "1", "assets.extra", "export.json"), "w") as f:
            json.dump({"checkpoint": "ckpt-2"}, f)

    def fake_detect(saved_model, real_photos, gt_, out_path):
        assert os.path.isdir(saved_model) and gt_ == gt
        with open(out_path, "w") as f:
            json.dump(truth, f)
        return out_path

    monkeypatch.setattr(transfer, "_run", fake_run)
    monkeypatch.setattr(transfer, "_detect", fake_detect)
    monkeypatch.setattr(transfer, "_self_check", lambda saved, data: {"map50_mean": 0.5, "data": data})
    override = "model { faster_rcnn { first_stage_max_proposals: 100 } }"
    out = tmp_path / "rescore.json"
    assert rescore.main([f"--work_dir={work}", f"--real={real_dir}", "--runs=naive/run-2",
                         f"--config_override={override}", f"--output={out}"]) == 0
    report = json.loads(out.read_text())
    got = report["runs"]["naive/run-2"]
    assert f"--config_override={override}" in cmds[0] and f"--trained_checkpoint_dir={work}/naive/run-2" in cmds[0]
    assert got["override"]["map50_mean"] == 1.0 and 0.0 < got["trained"]["map50_mean"] < 1.0
    assert got["override"]["self_check"] == {"map50_mean": 0.5, "data": str(work / "naive" / "data")}
    diff = got["difference"]
    assert diff["difference"] == pytest.approx(1.0 - got["trained"]["map50_mean"], abs=1e-3)
    assert 0 < diff["interval"][0] <= diff["interval"][1] and diff["share_first_higher"] > 0.5
    folder = work / "naive" / f"rescore-{report['tag']}"
    assert sorted(os.listdir(folder)) == ["detections-run-2.json"]  # the export is not kept
    # bad input names what is wrong
    for runs, match in (("nosuch", "'nosuch' is not an arm"), ("naive/run-1", "'naive/run-1': a run is"),
                        ("naive", "naive/run: its training pipeline .* does not exist")):
        with pytest.raises(ConfigError, match=match):
            rescore.rescore(str(work), real_dir, rescore.parse_runs(runs), override)
    with pytest.raises(ConfigError, match="holds no stages.json"):
        rescore.rescore(str(tmp_path), real_dir, [("naive", "run-2")], override)


def _finished_work(work, gt, final, average=None, template="small_cpu_demo", digest="d" * 64, repeat=1):
    """A work folder of bench/transfer.py as a finished realism run leaves it (the stages the
    comparison reads), with the given detections as the final (and averaged) model's."""
    nm = transfer.run_names("realism", repeat)
    (work / "realism").mkdir(parents=True, exist_ok=True)
    (work / "test_ground_truth.json").write_text(json.dumps(gt))
    det = work / "realism" / nm["detections"]
    det.write_text(json.dumps(final))
    done = {"digest:realism": digest, nm["train"]: {"train_minutes": 50.0}, nm["detect"]: str(det)}
    if average is not None:
        avg = work / "realism" / "average.json"
        avg.write_text(json.dumps(average))
        done[nm["late"]] = {"checkpoints": [], "average": {"detections": str(avg)}}
    (work / "stages.json").write_text(json.dumps({"protocol": {"brands": list(BRANDS), "template": template,
                                                               "steps_per_arm": 2000, "arms": ["realism"]},
                                      "done": done}))


def test_compare_runs_scores_runs_of_two_work_folders_on_the_same_photos_and_names_bad_input(tmp_path):
    from bench import compare_runs

    real_dir, _ = _real_folder(tmp_path / "real")
    real = realeval.load_real(real_dir)
    gt = realeval.ground_truth(real, realeval.split_for_brands(real, list(BRANDS)))
    truth = _gt_as_detections(gt)
    # recipe a found every box (its average half of them); recipe b the first half (its average all)
    _finished_work(tmp_path / "a", gt, truth, truth[: len(truth) // 2], template="t_fpn.config")
    _finished_work(tmp_path / "b", gt, truth[: len(truth) // 2], truth, repeat=2)
    out = tmp_path / "cmp.json"
    assert compare_runs.main([f"--runs=fpn={tmp_path / 'a'}/realism,grid={tmp_path / 'b'}/realism/run-2",
                              f"--output={out}", "--resamples=200"]) == 0
    r = json.loads(out.read_text())
    assert r["runs"]["fpn"]["final"]["map50_mean"] == 1.0
    assert 0 < r["runs"]["grid"]["final"]["map50_mean"] < 1.0 and r["runs"]["grid"]["average"]["map50_mean"] == 1.0
    assert r["runs"]["grid"]["repeat"] == 2 and r["runs"]["fpn"]["template"] == "t_fpn.config"
    assert r["same_composites"] is True
    assert r["protocol_differences"] == {"template": {"fpn": "t_fpn.config", "grid": "small_cpu_demo"}}
    final, averaged = r["bootstrap"]["pairs"]["fpn - grid"], r["bootstrap_average"]["pairs"]["fpn - grid"]
    assert final["difference"] > 0 and final["interval"][0] > 0
    assert averaged["difference"] < 0 and averaged["interval"][1] < 0
    # other composites are said; a run without an averaged model leaves the averaged comparison out
    _finished_work(tmp_path / "c", gt, truth, digest="e" * 64)
    r = compare_runs.compare(compare_runs.parse_runs(f"a={tmp_path / 'a'}/realism,c={tmp_path / 'c'}/realism"), 50)
    assert r["same_composites"] is False and "bootstrap_average" not in r
    assert "not the recipe's alone" in compare_runs.table(r)
    # bad input names the run and what is wrong with it
    other = dict(gt, images=gt["images"][:-1])
    _finished_work(tmp_path / "d", other, truth)
    (tmp_path / "e" / "realism").mkdir(parents=True)
    (tmp_path / "e" / "stages.json").write_text(json.dumps({"protocol": {}, "done": {}}))
    a = f"a={tmp_path / 'a'}/realism"
    for runs, match in ((a, "names 1 run; a comparison needs at least 2"),
                        (f"{a},{tmp_path / 'b'}/realism", "is not LABEL=WORK_DIR/ARM"),
                        (f"{a},a={tmp_path / 'c'}/realism", "labels must differ"),
                        (f"{a},b={tmp_path / 'b'}/nosuch", "'nosuch' is not an arm"),
                        (f"{a},b={tmp_path / 'b'}/realism/run-1", "a run is run-N with N of 2 or more"),
                        (f"{a},d={tmp_path / 'd'}/realism", "d .* and a .* were scored on different test photos"),
                        (f"{a},e={tmp_path / 'e'}/realism", "e: .* has not scored realism run 1 yet"),
                        (f"{a},f={tmp_path / 'real'}/realism", "f: .* holds no stages.json")):
        with pytest.raises(ConfigError, match=match):
            compare_runs.compare(compare_runs.parse_runs(runs), 20)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "compare_runs.py"), f"--runs={a}",
                        f"--output={tmp_path / 'x.json'}"], capture_output=True, text=True)
    assert r.returncode == 2 and "compare_runs: --runs names 1 run" in r.stderr and not (tmp_path / "x.json").exists()
