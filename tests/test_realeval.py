"""Real-photo evaluation (synth.realeval), the distribution report (synth.distribution) and the
transfer benchmark's resumable stages, on small real-photo folders the tests write themselves."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from synth import distribution, realeval
from synth.errors import AnnotationError, ConfigError
from conftest import ROOT, make_background, run_tool

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


def test_transfer_table_shows_runs_and_warns_against_ranking_inside_the_range():
    arm = {**transfer.combine_runs([_scores(0.32, 0.46, 0.18), _scores(0.23, 0.40, 0.06)]),
           "generation": {"composites_per_s_per_core": 30.0},
           "distribution": {"composites": {"width_median": 0.25}}}
    report = {"test_photos": {"positives": 2, "negatives": 2, "boxes": 3}, "brands": ["fedex", "google"],
              "arms": {"realism": arm}}
    text = transfer.table(report)
    assert "2 (0.230-0.320)" in text and "0.275" in text and "not a ranking" in text


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
    assert realism.realism.surface.enabled and realism.realism.gate.enabled
    with pytest.raises(AnnotationError, match="arm 'bogus'"):
        transfer.arm_config("bogus", ("fedex",), "/logos", "/bg", 10)
    with pytest.raises(AnnotationError, match="arm 'bogus'"):
        transfer.arm_colourways("bogus", ("fedex",), "/logos", "/bg")
    drawn = configlib.parse_config_text(texts["with_colourways"], "with_colourways").logo[0].colourway
    assert [(c.name, round(c.weight, 2)) for c in drawn] == [("original", 0.5), ("white", 0.2), ("black", 0.1),
                                                             ("plate", 0.2)]
    assert [c.name for c in realism.logo[0].colourway] == ["original"]


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


def test_transfer_steps_override_is_checked(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "transfer.py"), "--steps=0",
                        f"--real={tmp_path}", f"--work_dir={tmp_path / 'work'}"], capture_output=True, text=True)
    assert r.returncode == 2 and "--steps 0 must be at least 1" in r.stderr
    # a valid override gets as far as the real photos (none here), with the error naming the folder
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "transfer.py"), "--steps=7",
                        f"--real={tmp_path}", f"--work_dir={tmp_path / 'work'}"], capture_output=True, text=True)
    assert r.returncode == 2 and str(tmp_path) in r.stderr and "--steps" not in r.stderr
