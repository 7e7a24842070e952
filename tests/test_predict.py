"""synth.predict: COCO results output and unreadable inputs, with a fake detector (no model);
and tools/predict.py end to end on a tiny SavedModel with a known answer."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from conftest import run_tool, tiny_export as _tiny_export
from synth import predict
from synth.errors import ConfigError, InputImageError, OutputError
from synth.predict import Detection

H, W = 100, 200
BOX = [0.1, 0.2, 0.5, 0.6]  # normalised [ymin, xmin, ymax, xmax] on H x W
BOX_XYWH = [40.0, 10.0, 80.0, 40.0]  # COCO [x, y, width, height] in pixels
NAMES = {1: "acme", 2: "scene"}


def fake_detect(rgb, min_score, max_detections):
    """Any image: BOX as acme (0.9) and the whole image as scene (0.3)."""
    dets = [Detection(BOX, 1, "acme", 0.9), Detection([0.0, 0.0, 1.0, 1.0], 2, "scene", 0.3)]
    return [d for d in dets if d.score >= min_score][:max_detections]


def photo(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3)).astype(np.uint8)


@pytest.fixture
def inputs(tmp_path):
    """Folder with two good images and the four kinds of bad input; returns (folder, {kind: path})."""
    d = tmp_path / "in"
    d.mkdir()
    cv2.imwrite(str(d / "a.png"), photo())
    cv2.imwrite(str(d / "c.jpg"), photo(seed=1))
    good = (d / "c.jpg").read_bytes()
    paths = {"truncated": d / "b_truncated.jpg", "empty": d / "d_empty.jpg", "text": d / "e_text.jpg",
             "missing": d / "f_missing.jpg"}
    paths["truncated"].write_bytes(good[:len(good) // 2])
    paths["empty"].write_bytes(b"")
    paths["text"].write_text("this is a text file, not a JPEG\n")
    return d, {k: str(v) for k, v in paths.items()}


def _run(folder, bad, out, detect=fake_detect, min_score=0.0):
    args = [str(folder / "c.jpg"), str(folder), bad["missing"], str(folder / "a.png")]  # repeats, any order
    items = predict.images_from_files(predict.expand_image_args(args))
    return items, predict.run_detector(detect, items, out, min_score, 100, False, "test")


def test_run_detector_reports_each_unreadable_file_and_goes_on(inputs, tmp_path):
    folder, bad = inputs
    items, (results, errors) = _run(folder, bad, str(tmp_path / "out"))
    names = [it.name for it in items]
    assert names == sorted(names) and len(names) == 6  # a, b, c, d, e, f: sorted, repeats dropped
    assert [r["file"] for r in results] == [str(folder / "a.png"), str(folder / "c.jpg")]
    assert [r["image_id"] for r in results] == [1, 3]  # position in the sorted input list, from 1
    assert (results[0]["height"], results[0]["width"]) == (H, W)
    assert [d["box"] for d in results[0]["detections"]] == [BOX, [0.0, 0.0, 1.0, 1.0]]
    assert all(os.path.isfile(r["drawn"]) for r in results)

    by_file = {e["file"]: e for e in errors}
    assert sorted(by_file) == sorted(bad.values())
    assert [e["image_id"] for e in errors] == [2, 4, 5, 6]
    expected = {"truncated": "cannot be read (corrupt or truncated?)", "empty": "empty (zero-byte) file",
                "text": "not an image file", "missing": "does not exist"}
    for kind, what in expected.items():
        message = by_file[bad[kind]]["error"]
        assert repr(bad[kind]) in message and what in message, (kind, message)


def test_all_inputs_unreadable_gives_only_errors(inputs, tmp_path):
    _, bad = inputs
    items = predict.images_from_files(predict.expand_image_args(list(bad.values())))
    results, errors = predict.run_detector(fake_detect, items, str(tmp_path / "out"), 0.0, 100, False, "t")
    assert results == [] and len(errors) == 4


def test_globs_and_folders_without_images_are_reported(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "x[1].png").write_bytes(cv2.imencode(".png", photo())[1].tobytes())  # a literal name with '['
    pattern, folder = str(tmp_path / "nothing-*.jpg"), str(tmp_path / "empty")
    paths = predict.expand_image_args([pattern, folder, str(tmp_path / "x[1].png")])
    assert paths == sorted([pattern, folder, str(tmp_path / "x[1].png")])
    with pytest.raises(InputImageError, match=r"glob '.*nothing-\*\.jpg' matches no files"):
        predict.read_rgb(pattern)
    with pytest.raises(InputImageError, match=r"folder '.*empty' holds no image files"):
        predict.read_rgb(folder)
    assert predict.read_rgb(str(tmp_path / "x[1].png")).shape == (H, W, 3)


def test_undecodable_record_names_it():
    with pytest.raises(InputImageError, match=r"image 'val-7'.*\(5\) cannot be decoded"):
        predict._decode(b"junk!", "val-7")


def test_drawn_images_of_the_same_stem_do_not_overwrite_each_other(tmp_path):
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        cv2.imwrite(str(tmp_path / sub / "p.jpg"), photo())
    cv2.imwrite(str(tmp_path / "x" / "p.png"), photo())
    items = predict.images_from_files(predict.expand_image_args([str(tmp_path / "x"), str(tmp_path / "y")]))
    results, _ = predict.run_detector(fake_detect, items, str(tmp_path / "x"), 0.0, 100, False, "t")
    drawn = [r["drawn"] for r in results]
    assert len(set(drawn)) == 3 and all(os.path.isfile(p) for p in drawn)
    # the input x/p.jpg is not overwritten by the drawing of x/p.jpg, nor of x/p.png
    assert str(tmp_path / "x" / "p.jpg") not in drawn
    assert drawn == [str(tmp_path / "x" / n) for n in ("p-1.jpg", "p-2.jpg", "p-3.jpg")]
    (tmp_path / "z" / "p.jpg").mkdir(parents=True)  # a folder where the drawing would go
    with pytest.raises(OutputError, match=r"cannot write the drawn image '.*z/p\.jpg'"):
        predict.run_detector(fake_detect, items[:1], str(tmp_path / "z"), 0.0, 100, False, "t")
    with pytest.raises(OutputError, match=r"cannot create the output folder '.*p\.png/sub'"):
        predict.run_detector(fake_detect, items, str(tmp_path / "x" / "p.png" / "sub"), 0.0, 100, False, "t")


def test_match_truth_pairs_each_labelled_box_with_at_most_one_detection_of_its_class():
    truth = predict.Truth([BOX, [0.6, 0.6, 0.9, 0.9], [0.0, 0.0, 0.2, 0.2]], [1, 1, 2], ["acme", "acme", "scene"])
    shifted = [0.1, 0.3, 0.5, 0.7]  # IoU 1/3 with BOX
    dets = [Detection(BOX, 1, "acme", 0.6),             # finds BOX
            Detection(BOX, 1, "acme", 0.95),            # a better-scored duplicate: it takes BOX first
            Detection(shifted, 1, "acme", 0.9),         # too far from every acme box
            Detection([0.0, 0.0, 0.2, 0.2], 1, "acme", 0.8),  # on the scene box, but the wrong class
            Detection([0.6, 0.6, 0.9, 0.88], 1, "acme", 0.7)]  # IoU 0.93 with the second acme box
    found, matched = predict.match_truth(dets, truth)
    assert found == [True, True, False]
    assert matched == [False, True, False, False, True]
    assert predict.match_truth(dets[2:3], truth, min_iou=0.3) == ([True, False, False], [True])
    assert predict.match_truth([], truth) == ([False] * 3, [])


def _labelled_shards(tmp_path, n: int = 3):
    from synth.tfexample import encode_example
    from synth.tfrecord_io import RecordWriter

    path = str(tmp_path / "val-00000-of-00001.tfrecord")
    with RecordWriter(path) as w:
        for i in range(n):
            jpeg = cv2.imencode(".jpg", photo(seed=i))[1].tobytes()
            boxes = [BOX] if i < n - 1 else [BOX, [0.6, 0.6, 0.9, 0.9]]  # the last one: a box nobody finds
            w.write(encode_example(jpeg, H, W, f"c{i}.jpg", f"c{i}", np.array(boxes), ["acme"] * len(boxes),
                                   [1] * len(boxes)))
    return str(tmp_path / "val-*.tfrecord")


def test_labelled_composites_are_scored_against_their_boxes_and_drawn_over_them(tmp_path):
    items = predict.images_from_tfrecords(_labelled_shards(tmp_path), max_images=10)
    assert [it.name for it in items] == ["c0", "c1", "c2"]
    assert items[2].truth.boxes == [pytest.approx(BOX), pytest.approx([0.6, 0.6, 0.9, 0.9])]
    results, errors = predict.run_detector(fake_detect, items, str(tmp_path / "out"), 0.0, 100, False, "t")
    assert errors == [] and len(results) == 3
    assert [t["found"] for t in results[2]["truth"]] == [True, False]
    assert [d["matches_truth"] for d in results[2]["detections"]] == [True, False]  # acme on BOX; the scene box
    t = predict.truth_summary(results, 0.0)
    assert t == {"images": 3, "boxes": 4, "found": 3, "detections": 6, "unmatched_detections": 3,
                 "min_iou": 0.5, "min_score": 0.0}
    assert predict.describe_truth(t).startswith("found 3 of 4 labelled boxes in 3 labelled images")
    # image files carry no labelled boxes, and then there is nothing to sum
    assert predict.truth_summary([{k: v for k, v in r.items() if k != "truth"} for r in results], 0.0) is None

    # the missed box is drawn green, where no detection covers it (a 1 px line through JPEG: its
    # greenness, G minus the mean of R and B, against the same row of the plain composite)
    def greenness(rgb):
        row = rgb[y0, x0 + 5:x1 - 5].astype(float)
        return float((row[:, 1] - row[:, [0, 2]].mean(axis=1)).mean())

    drawn = cv2.cvtColor(cv2.imread(results[2]["drawn"]), cv2.COLOR_BGR2RGB)
    y0, x0, y1, x1 = (np.array([0.6, 0.6, 0.9, 0.9]) * [H, W, H, W]).round().astype(int)
    assert greenness(drawn) - greenness(items[2].load()) > 50


def test_coco_truth_scores_composites_like_real_photos(tmp_path):
    from synth import realeval

    items = predict.images_from_tfrecords(_labelled_shards(tmp_path), max_images=10)
    results, _ = predict.run_detector(fake_detect, items, None, 0.0, 100, False, "t")
    gt = predict.coco_truth(results, NAMES)
    assert gt["categories"] == [{"id": 1, "name": "acme"}, {"id": 2, "name": "scene"}]
    assert [a["image_id"] for a in gt["annotations"]] == [1, 2, 3, 3]
    assert gt["annotations"][0]["bbox"] == pytest.approx(BOX_XYWH, abs=1e-3)
    assert gt["annotations"][3]["bbox"] == pytest.approx([120.0, 60.0, 60.0, 30.0], abs=1e-3)
    dets = predict.coco_results(results)
    # the acme detection finds BOX on each composite, never the last composite's second box
    scores = realeval.evaluate(gt, dets)["per_brand"]
    assert scores["acme"]["map50"] == pytest.approx(76 / 101, abs=1e-4)  # recall 0.75 at precision 1
    bands = {tuple(b["width"]): b for b in realeval.recall_by_width(gt, dets)}
    assert bands[(0.3, 0.5)] == {"width": [0.3, 0.5], "boxes": 4, "found": 0.75, "found_scored": 0.75,
                                 "part_scored": 0.0, "part_first": 0.0}
    assert predict.coco_truth([{k: v for k, v in r.items() if k != "truth"} for r in results])["annotations"] == []


def test_coco_results_convert_boxes_exactly():
    images = [{"image_id": 7, "file": "f.jpg", "height": H, "width": W,
               "detections": [Detection(BOX, 1, "acme", 0.9).__dict__]}]
    assert predict.coco_results(images) == [{"image_id": 7, "category_id": 1, "bbox": BOX_XYWH, "score": 0.9}]
    cat = predict.coco_images(images, {2: "scene"})
    assert cat == {"images": [{"id": 7, "file_name": "f.jpg", "height": H, "width": W}],
                   "categories": [{"id": 1, "name": "acme"}, {"id": 2, "name": "scene"}]}


def _gt(images: list[dict]) -> dict:
    """A ground truth with the same image ids: one acme box at BOX_XYWH per image."""
    return {"images": images, "categories": [{"id": k, "name": v} for k, v in NAMES.items()],
            "annotations": [{"id": i + 1, "image_id": im["id"], "category_id": 1, "bbox": BOX_XYWH,
                             "area": BOX_XYWH[2] * BOX_XYWH[3], "iscrowd": 0} for i, im in enumerate(images)]}


def test_coco_results_json_loads_and_evaluates_in_pycocotools(inputs, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    folder, bad = inputs
    out = str(tmp_path / "out")
    _, (results, errors) = _run(folder, bad, out)
    paths = predict.write_outputs(out, {"images": results, "errors": errors}, NAMES)
    assert [os.path.basename(p) for p in paths] == ["detections.json", "coco_results.json", "coco_images.json"]
    summary = json.load(open(paths[0]))
    assert [im["image_id"] for im in summary["images"]] == [1, 3] and len(summary["errors"]) == 4
    coco_results = json.load(open(paths[1]))
    assert len(coco_results) == 4
    assert {(r["image_id"], r["category_id"], tuple(r["bbox"]), r["score"]) for r in coco_results} == {
        (1, 1, tuple(BOX_XYWH), 0.9), (3, 1, tuple(BOX_XYWH), 0.9),
        (1, 2, (0.0, 0.0, float(W), float(H)), 0.3), (3, 2, (0.0, 0.0, float(W), float(H)), 0.3)}
    images = json.load(open(paths[2]))["images"]
    assert images == [{"id": 1, "file_name": str(folder / "a.png"), "height": H, "width": W},
                      {"id": 3, "file_name": str(folder / "c.jpg"), "height": H, "width": W}]

    gt = COCO()
    gt.dataset = _gt(images)
    gt.createIndex()
    dt = gt.loadRes(paths[1])
    assert sorted(dt.getImgIds()) == [1, 3] and len(dt.getAnnIds()) == 4
    assert dt.loadAnns(dt.getAnnIds(imgIds=[3], catIds=[1]))[0]["area"] == pytest.approx(80 * 40)
    ev = COCOeval(gt, dt, "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)  # AP@[.5:.95]: every box is exactly where the truth is
    # coco_images.json is itself a COCO dataset (no annotations) that loadRes accepts
    assert len(COCO(paths[2]).loadRes(paths[1]).getAnnIds()) == 4

    # pycocotools refuses results whose image ids it does not know: ids must match
    other = COCO()
    other.dataset = _gt([dict(images[0], id=99)])
    other.createIndex()
    with pytest.raises(AssertionError, match="do not correspond"):
        other.loadRes(paths[1])


def test_predict_images_writes_the_coco_files(inputs, tmp_path, monkeypatch):
    class FakePredictor:
        def __init__(self, saved_model_dir):
            self.names = NAMES

        __call__ = staticmethod(fake_detect)

    monkeypatch.setattr(predict, "Predictor", FakePredictor)
    folder, bad = inputs
    out = tmp_path / "out"
    items = predict.images_from_files(predict.expand_image_args([str(folder)]))
    s = predict.predict_images("m/1", items, str(out), min_score=0.5, progress=False)
    assert s["model"] == "m/1" and len(s["images"]) == 2 and len(s["errors"]) == 3
    assert json.loads((out / "detections.json").read_text()) == json.loads(json.dumps(s))
    assert [r["bbox"] for r in json.loads((out / "coco_results.json").read_text())] == [BOX_XYWH, BOX_XYWH]
    assert [c["name"] for c in json.loads((out / "coco_images.json").read_text())["categories"]] == ["acme", "scene"]


def test_serve_images_writes_the_same_files(inputs, tmp_path):
    from synth import serving

    class FakeClient:
        server, model, version, input_type, names = "localhost:8501", "logo", None, "image_tensor", NAMES
        __call__ = staticmethod(fake_detect)

    folder, bad = inputs
    items = predict.images_from_files(predict.expand_image_args([str(folder)]))
    s = serving.serve_images(FakeClient(), items, str(tmp_path / "served"), min_score=0.0)
    assert s["protocol"] == "rest" and [im["image_id"] for im in s["images"]] == [1, 3]
    files = {n: json.loads((tmp_path / "served" / n).read_text()) for n in predict.OUTPUT_FILES}
    assert files["detections.json"]["errors"] == s["errors"]
    assert files["coco_results.json"] == predict.coco_results(s["images"])
    assert files["coco_images.json"] == predict.coco_images(s["images"], NAMES)


# ------------------------------------------------------------------ the command line, on a tiny SavedModel

@pytest.mark.slow
def test_predict_cli_warns_per_file_and_fails_only_when_nothing_was_read(inputs, tmp_path):
    folder, bad = inputs
    model = _tiny_export(tmp_path / "exports")
    out = tmp_path / "pred"
    r = run_tool("predict", f"--model={model}", f"--output_dir={out}", "--noprogress", str(folder), bad["missing"],
                 timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    warnings = [line for line in r.stderr.splitlines() if line.startswith("predict: warning: skipped: ")]
    assert len(warnings) == 4
    for path in bad.values():
        assert sum(repr(path) in line for line in warnings) == 1, (path, warnings)
    assert "2 images, 2 detections with score >= 0.5; 4 of 6 images could not be read" in r.stdout
    assert [r["bbox"] for r in json.loads((out / "coco_results.json").read_text())] == [BOX_XYWH, BOX_XYWH]
    assert len(json.loads((out / "detections.json").read_text())["errors"]) == 4

    r = run_tool("predict", f"--model={model}", f"--output_dir={out}", "--noprogress", *bad.values(), timeout=300)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "predict: error: none of the 4 input images could be read" in r.stderr
    assert r.stderr.count("predict: warning: skipped: ") == 4
    assert json.loads((out / "coco_results.json").read_text()) == []

    # composites from shards are counted against their labelled boxes
    r = run_tool("predict", f"--model={model}", f"--output_dir={out}", "--noprogress",
                 f"--tfrecord={_labelled_shards(tmp_path)}", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert ("found 3 of 4 labelled boxes in 3 labelled images (same class, IoU >= 0.5, score >= 0.5); "
            "0 of 3 detections match no labelled box") in r.stdout
    assert json.loads((out / "detections.json").read_text())["truth"]["found"] == 3


def test_predictor_takes_a_model_folder_and_uses_its_highest_version(tmp_path):
    import shutil

    model = _tiny_export(tmp_path / "exports")
    shutil.copytree(os.path.join(model, "1"), os.path.join(model, "2"))
    with open(os.path.join(model, "2", "assets.extra", "label_map.pbtxt"), "w") as f:
        f.write('item { id: 1 name: "newer" }\nitem { id: 2 name: "scene" }\n')
    p = predict.Predictor(model)
    assert p.names == {1: "newer", 2: "scene"}
    assert [d.class_name for d in p(photo())] == ["newer", "scene"]
    with pytest.raises(ConfigError, match="not a SavedModel folder .* nor a model folder"):
        predict.Predictor(str(tmp_path))
