"""synth.mine / tools/mine.py on a tiny SavedModel with a known answer (conftest.tiny_export): VOC
proposals beside the photos that the importer reads back with the model's boxes, one COCO file the
importer reads back too, hard negatives as box-less shards, a contact sheet and a summary."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from conftest import TINY_BOX, run_tool, tiny_export
from synth import dataset, dataset_check, mine
from synth.errors import OutputError
from synth.importing import import_labels
from synth.predict import Detection

H, W = 100, 200


def _photo(path, seed):
    rgb = np.random.default_rng(seed).integers(0, 255, (H, W, 3)).astype(np.uint8)
    cv2.imwrite(str(path), rgb, [cv2.IMWRITE_JPEG_QUALITY, 95])


@pytest.fixture
def folders(tmp_path):
    prod, neg = tmp_path / "production", tmp_path / "no-logo"
    prod.mkdir()
    neg.mkdir()
    for i in range(3):
        _photo(prod / f"p{i}.jpg", i)
    (prod / "broken.jpg").write_bytes(b"not a jpeg")
    for i in range(2):
        _photo(neg / f"n{i}.jpg", 10 + i)
    return prod, neg


def _decoded_boxes(data_dir):
    from test_import_labels import read_back

    return {sid: (v[1], v[2]) for sid, v in read_back(data_dir).items()}


@pytest.mark.slow
def test_mine_cli_writes_voc_proposals_that_the_importer_reads_back(folders, tmp_path):
    prod, neg = folders
    model = tiny_export(tmp_path / "exports")
    out = tmp_path / "mined"
    r = run_tool("mine", f"--model={model}", f"--output_dir={out}", f"--negatives_dir={neg}", "--noprogress",
                 str(prod), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "4 photos: 3 proposals (score >= 0.5); 2 negatives: 2 hard negatives; 1 unreadable" in r.stdout
    assert "mine: warning: skipped:" in r.stderr and "broken.jpg" in r.stderr
    assert sorted(n for n in os.listdir(prod) if n.endswith(".xml")) == ["p0.xml", "p1.xml", "p2.xml"]
    summary = json.loads((out / "mine.json").read_text())
    assert summary["proposals"] == 3 and summary["hard_negatives"] == 2
    assert [d["score"] for d in summary["proposal_images"][0]["detections"]] == [0.9]  # scene (0.3) is below
    sheet = cv2.imread(str(out / "mined.jpg"))
    assert sheet is not None and sheet.shape[0] > 100  # 5 thumbnails: 3 proposals, 2 hard negatives

    # the reviewed proposals go back in with the model's label map: the same boxes, through the OD API
    label_map = os.path.join(model, "1", "assets.extra", "label_map.pbtxt")
    s = import_labels("voc", str(prod), str(tmp_path / "real"), label_map=label_map, progress=False)
    assert s.splits["train"]["images"] == 3 and len(s.problems) == 0
    for sid, (boxes, classes) in _decoded_boxes(str(tmp_path / "real")).items():
        np.testing.assert_allclose(boxes, [TINY_BOX], atol=1e-6, err_msg=sid)  # whole pixels on 200x100
        assert classes == [1]

    # hard negatives: box-less shards with the model's label map, which dataset_check and the OD API read
    hard = str(out / mine.HARD_NEGATIVES)
    report = dataset_check.inspect_dataset(hard)
    assert report.ok and report.split("train").records == 2 and report.split("train").objects == 0
    assert open(os.path.join(hard, dataset.LABEL_MAP)).read() == open(label_map).read()

    # a second run keeps the reviewed XML files and refuses to replace the hard negatives silently
    (prod / "p0.xml").write_text((prod / "p0.xml").read_text().replace("<name>acme</name>", "<name>acme </name>"))
    r = run_tool("mine", f"--model={model}", f"--output_dir={out}", f"--negatives_dir={neg}", str(prod))
    assert r.returncode == 2 and "hard_negatives' already holds a dataset" in r.stderr
    r = run_tool("mine", f"--model={model}", f"--output_dir={tmp_path / 'again'}", "--noprogress", str(prod))
    assert r.returncode == 0 and "kept 3 existing VOC file(s)" in r.stdout
    assert "<name>acme </name>" in (prod / "p0.xml").read_text()


def fake_detect(rgb, min_score, max_detections):
    dets = [Detection(TINY_BOX, 1, "acme", 0.8), Detection([0.0, 0.0, 1.0, 1.0], 2, "scene", 0.3)]
    return [d for d in dets if d.score >= min_score][:max_detections]


def test_coco_proposals_round_trip_and_threshold(folders, tmp_path):
    prod, neg = folders
    photos = sorted(str(prod / n) for n in os.listdir(prod))
    names = {1: "acme", 2: "scene"}
    out = tmp_path / "mined"
    s = mine.mine(fake_detect, names, photos, [], mine.MineParams(0.5, "coco"), str(out), progress=False)
    assert s["proposals"] == 3 and s["images_dir"] == str(prod) and len(s["unreadable"]) == 1
    data = json.loads((out / mine.PROPOSALS_COCO).read_text())
    assert [a["score"] for a in data["annotations"]] == [0.8] * 3
    assert data["annotations"][0]["bbox"] == [40.0, 10.0, 80.0, 40.0]  # [x, y, w, h] of TINY_BOX on 200x100
    imp = import_labels("coco", str(out / mine.PROPOSALS_COCO), str(tmp_path / "real"), images_dir=s["images_dir"],
                        progress=False)
    assert imp.splits["train"] == {"images": 3, "objects": 3, "images_without_objects": 0}
    for boxes, classes in _decoded_boxes(str(tmp_path / "real")).values():
        np.testing.assert_allclose(boxes, [TINY_BOX], atol=1e-6)
        assert classes == [1]
    # with the threshold above every score, nothing is proposed and no negative is hard
    s = mine.mine(fake_detect, names, photos, [str(neg / "n0.jpg")], mine.MineParams(0.95, "voc"),
                  str(tmp_path / "none"), progress=False)
    assert s["proposals"] == 0 and s["hard_negatives"] == 0 and s["contact_sheet"] is None
    assert not any(n.endswith(".xml") for n in os.listdir(prod))
    # scene at 0.3 counts with a low threshold: both boxes proposed
    s = mine.mine(fake_detect, names, [str(prod / "p0.jpg")], [], mine.MineParams(0.25, "voc"), str(tmp_path / "low"),
                  progress=False)
    assert [d["class_name"] for d in s["proposal_images"][0]["detections"]] == ["acme", "scene"]


def test_unwritable_output_is_a_clear_error(folders, tmp_path):
    prod, _ = folders
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot create --output_dir '.*file/sub'"):
        mine.mine(fake_detect, {1: "acme"}, [str(prod / "p0.jpg")], [], mine.MineParams(),
                  str(tmp_path / "file" / "sub"), progress=False)
