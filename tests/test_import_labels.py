"""synth.importing: VOC and COCO photos -> the project's shards, read back by the OD API's own
input pipeline; hostile XML refused; each kind of bad file reported and the rest imported."""

from __future__ import annotations

import http.server
import json
import os
import threading

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import run_tool
from synth import boxes as boxlib, dataset, dataset_check
from synth.errors import ConfigError, OutputError
from synth.importing import import_labels, voc
from synth.importing.records import AnnotationError
from synth.label_map import label_map_text

H, W = 120, 160


def photo(seed: int, box_px=None, h: int = H, w: int = W) -> np.ndarray:
    """RGB noise-free grey photo with a saturated red rectangle at box_px [x0, y0, x1, y1]."""
    img = np.full((h, w, 3), 90 + 10 * seed, np.uint8)
    if box_px is not None:
        x0, y0, x1, y1 = box_px
        img[y0:y1, x0:x1] = (230, 20, 20)
    return img


def save_jpeg(path, rgb, exif=None) -> None:
    Image.fromarray(rgb).save(str(path), "JPEG", quality=98, exif=exif if exif is not None else b"")


def voc_file(path, filename, objects, size=(W, H)) -> None:
    objs = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><truncated>0</truncated>"
        f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b, d in objects)
    size_xml = f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>" if size else ""
    path.write_text(f"<annotation><folder>p</folder><filename>{filename}</filename>{size_xml}{objs}</annotation>")


def read_back(data_dir: str, split: str = "train") -> dict:
    """{source_id: (image [H, W, 3], boxes [N, 4], classes [N], difficult [N])} through the OD API's
    dataset_builder (TfExampleDecoder, tf-slim fixed first)."""
    from synth import training

    training.apply_compat_fixes()
    from object_detection.builders import dataset_builder
    from object_detection.core import standard_fields as fields
    from object_detection.protos import input_reader_pb2

    reader = input_reader_pb2.InputReader()
    reader.label_map_path = os.path.join(data_dir, dataset.LABEL_MAP)
    reader.shuffle, reader.num_epochs, reader.num_readers = False, 1, 1
    reader.tf_record_input_reader.input_path.append(dataset.shard_pattern(data_dir, split))
    f = fields.InputDataFields
    return {d[f.source_id].numpy().decode(): (d[f.image].numpy(), d[f.groundtruth_boxes].numpy(),
                                              d[f.groundtruth_classes].numpy().tolist(),
                                              d[f.groundtruth_difficult].numpy().tolist())
            for d in dataset_builder.build(reader)}


def red_box(rgb: np.ndarray) -> np.ndarray:
    return boxlib.tight_box((rgb[..., 0] > 160) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90))


# --------------------------------------------------------------------------------------- VOC

@pytest.fixture
def voc_dir(tmp_path):
    """Two good photos (a: one acme box; b: acme difficult + other) as LabelImg writes them."""
    d = tmp_path / "voc"
    d.mkdir()
    save_jpeg(d / "a.jpg", photo(0, (20, 30, 80, 70)))
    voc_file(d / "a.xml", "a.jpg", [("acme", (20, 30, 80, 70), 0)])
    Image.fromarray(photo(1, (100, 10, 150, 60))).save(str(d / "b.png"))
    voc_file(d / "b.xml", "b.png", [("acme", (100, 10, 150, 60), 1), ("other", (5, 80, 40, 110), 0)])
    return d


def test_voc_round_trip_through_the_od_api_decoder(voc_dir, tmp_path):
    out = str(tmp_path / "out")
    s = import_labels("voc", str(voc_dir), out, progress=False)
    assert s.problems == [] and s.splits == {"train": {"images": 2, "objects": 3, "images_without_objects": 0}}
    assert s.counts["reencoded"] == 1  # the PNG; the JPEG's bytes are kept
    assert open(os.path.join(out, dataset.LABEL_MAP)).read() == label_map_text(["acme", "other"])
    got = read_back(out)
    assert sorted(got) == ["a.jpg", "b.png"]
    img, boxes, classes, difficult = got["a.jpg"]
    np.testing.assert_allclose(boxes, [[30 / H, 20 / W, 70 / H, 80 / W]], atol=1e-6)
    np.testing.assert_allclose(red_box(img), boxes[0], atol=1e-6)  # the box is where the logo is
    assert classes == [1] and difficult == [False]
    img, boxes, classes, difficult = got["b.png"]
    np.testing.assert_allclose(boxes, [[10 / H, 100 / W, 60 / H, 150 / W], [80 / H, 5 / W, 110 / H, 40 / W]],
                               atol=1e-6)
    assert classes == [1, 2] and difficult == [True, False]
    from synth.tfexample import parse_example
    from synth.tfrecord_io import read_records

    records = {r["source_id"]: r for r in map(parse_example, read_records(dataset.list_shards(out, "train")[0]))}
    assert records["a.jpg"]["encoded"] == (voc_dir / "a.jpg").read_bytes()
    assert records["b.png"]["encoded"][:2] == b"\xff\xd8"  # re-encoded as JPEG
    report = dataset_check.inspect_dataset(out)
    assert report.ok, report.problems
    assert report.manifest_note == "counts match manifest.json"


def test_voc_onto_an_existing_label_map(voc_dir, tmp_path):
    lm = tmp_path / "label_map.pbtxt"
    lm.write_text(label_map_text(["other", "acme"]))  # acme is id 2 there
    out = str(tmp_path / "out")
    import_labels("voc", str(voc_dir), out, label_map=str(lm), progress=False)
    got = read_back(out)
    assert got["a.jpg"][2] == [2] and got["b.png"][2] == [2, 1]
    assert open(os.path.join(out, dataset.LABEL_MAP)).read() == lm.read_text()


# -------------------------------------------------------------------------- hostile XML

SECRET = "TOP-SECRET-0451"


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list = []

    def do_GET(self):  # noqa: N802
        _Counting.hits.append(self.path)
        body = b'<!ENTITY x "' + SECRET.encode() + b'">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    _Counting.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _hostile(voc_dir, tmp_path, url) -> dict:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    body = "<annotation><filename>a.jpg</filename><object><name>{name}</name><bndbox><xmin>20</xmin>" \
           "<ymin>30</ymin><xmax>80</xmax><ymax>70</ymax></bndbox></object></annotation>"
    docs = {
        "xxe": f'<?xml version="1.0"?>\n<!DOCTYPE annotation [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
               + body.format(name="&xxe;"),
        "laughs": '<?xml version="1.0"?>\n<!DOCTYPE annotation [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;'
                  '&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;'
                  '&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]>\n' + body.format(name="&e;"),
        "remote_dtd": f'<?xml version="1.0"?>\n<!DOCTYPE annotation SYSTEM "{url}/evil.dtd">\n'
                      + body.format(name="&x;"),
    }
    paths = {}
    for kind, text in docs.items():
        paths[kind] = voc_dir / f"{kind}.xml"
        paths[kind].write_text(text)
    return paths


def test_xxe_billion_laughs_and_remote_dtd_are_refused_and_nothing_outside_is_read(voc_dir, tmp_path,
                                                                                   http_server):
    paths = _hostile(voc_dir, tmp_path, http_server)
    messages = {}
    for kind, path in paths.items():
        with pytest.raises(AnnotationError) as err:
            voc.read_xml(str(path))
        messages[kind] = str(err.value)
        assert repr(str(path)) in messages[kind] and "nothing outside the file is read" in messages[kind]
    assert "declares XML entities (xxe)" in messages["xxe"] and "XXE" in messages["xxe"]
    assert "declares XML entities (a, b, c, d, e)" in messages["laughs"]
    assert f"names an external DTD ('{http_server}/evil.dtd')" in messages["remote_dtd"]
    out = str(tmp_path / "out")
    s = import_labels("voc", str(voc_dir), out, progress=False)
    assert sorted(p.file for p in s.problems) == sorted(str(p) for p in paths.values())
    assert s.splits["train"]["images"] == 2  # a and b still imported
    assert _Counting.hits == []  # the remote DTD was never fetched
    for name in os.listdir(out):
        with open(os.path.join(out, name), "rb") as f:
            assert SECRET.encode() not in f.read(), name  # the local file never got in


def test_oversized_xml_is_refused_unread(tmp_path):
    p = tmp_path / "big.xml"
    p.write_text("<annotation>" + " " * 2000 + "</annotation>")
    with pytest.raises(AnnotationError, match=r"big\.xml' is 2,025 bytes, above the limit of 1,000"):
        voc.read_xml(str(p), max_bytes=1000)


# ------------------------------------------------------------------------ bad files, per file

def test_each_bad_file_is_reported_with_its_reason_and_the_rest_imported(voc_dir, tmp_path, monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as tensorflow_datasets sets it: still caught
    good = (voc_dir / "a.jpg").read_bytes()
    (voc_dir / "trunc.jpg").write_bytes(good[:len(good) // 2])
    voc_file(voc_dir / "trunc.xml", "trunc.jpg", [("acme", (20, 30, 80, 70), 0)])
    save_jpeg(voc_dir / "outside.jpg", photo(2))
    voc_file(voc_dir / "outside.xml", "outside.jpg", [("acme", (100, 30, 175, 70), 0)])
    voc_file(voc_dir / "missing.xml", "missing.jpg", [("acme", (20, 30, 80, 70), 0)])
    save_jpeg(voc_dir / "unknown.jpg", photo(3))
    voc_file(voc_dir / "unknown.xml", "unknown.jpg", [("acme", (1, 1, 9, 9), 0), ("zebra", (20, 30, 80, 70), 0)])
    save_jpeg(voc_dir / "wrongsize.jpg", photo(4))
    voc_file(voc_dir / "wrongsize.xml", "wrongsize.jpg", [], size=(W * 2, H * 2))
    (voc_dir / "broken.xml").write_text("<annotation><filename>a.jpg</filename><object>")
    lm = tmp_path / "lm.pbtxt"
    lm.write_text(label_map_text(["acme", "other"]))
    out = str(tmp_path / "out")
    s = import_labels("voc", str(voc_dir), out, label_map=str(lm), progress=False)
    reasons = {os.path.basename(p.file): p.reason for p in s.problems}  # by annotation file
    assert sorted(reasons) == ["broken.xml", "missing.xml", "outside.xml", "trunc.xml", "unknown.xml",
                               "wrongsize.xml"]
    assert "trunc.jpg' cannot be read (corrupt or truncated?)" in reasons["trunc.xml"]
    assert "outside.jpg', box #0 [x0, y0, x1, y1] = [100.0, 30.0, 175.0, 70.0] lies outside the 160x120 image" \
        in reasons["outside.xml"]
    assert "missing.jpg' does not exist" in reasons["missing.xml"]
    assert "unknown.jpg': class 'zebra' is not in the label map (classes: acme, other)" in reasons["unknown.xml"]
    assert "--drop_unknown_classes" in reasons["unknown.xml"]
    assert "wrongsize.jpg': the annotation says the image is 320x240, but it is 160x120" in reasons["wrongsize.xml"]
    assert "not well-formed XML" in reasons["broken.xml"]
    assert s.splits["train"]["images"] == 2 and sorted(read_back(out)) == ["a.jpg", "b.png"]
    manifest = json.load(open(os.path.join(out, dataset.MANIFEST)))
    assert len(manifest["skipped_inputs"]) == 6 and dataset_check.inspect_dataset(out).ok

    # with the flag, zebra is dropped (counted) and the acme box of that photo is kept
    out2 = str(tmp_path / "out2")
    s = import_labels("voc", str(voc_dir), out2, label_map=str(lm), drop_unknown=True, progress=False)
    assert s.counts["dropped_unknown_objects"] == 1 and len(s.problems) == 5
    assert read_back(out2)["unknown.jpg"][2] == [1]


def test_cli_prints_the_summary_and_exits_1_when_files_were_skipped(voc_dir, tmp_path):
    voc_file(voc_dir / "missing.xml", "missing.jpg", [("acme", (20, 30, 80, 70), 0)])
    out = tmp_path / "out"
    r = run_tool("import_labels", "--format=voc", f"--input={voc_dir}", f"--output_dir={out}", "--noprogress",
                 timeout=300)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "train: 2 photos, 3 boxes, 0 photos without boxes" in r.stdout
    assert "skipped: 1 file(s)" in r.stdout and "missing.jpg' does not exist" in r.stdout
    r = run_tool("import_labels", "--format=voc", f"--input={voc_dir}", f"--output_dir={out}", "--noprogress")
    assert r.returncode == 2 and "already holds a dataset" in r.stderr and "--overwrite" in r.stderr
    r = run_tool("import_labels", "--format=voc", f"--input={tmp_path / 'nope'}", f"--output_dir={out}")
    assert r.returncode == 2 and "import_labels: error: --input" in r.stderr and "does not exist" in r.stderr


def test_nothing_importable_leaves_an_existing_dataset_untouched(voc_dir, tmp_path):
    out = str(tmp_path / "out")
    import_labels("voc", str(voc_dir), out, progress=False)
    before = {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out)}
    bad = tmp_path / "bad"
    bad.mkdir()
    voc_file(bad / "missing.xml", "missing.jpg", [("acme", (1, 1, 5, 5), 0)])
    with pytest.raises(ConfigError, match="no photo could be imported.*missing.jpg' does not exist"):
        import_labels("voc", str(bad), out, overwrite=True, progress=False)
    assert {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out)} == before
    with pytest.raises(OutputError, match="already holds a dataset"):
        import_labels("voc", str(voc_dir), out, progress=False)


# ---------------------------------------------------------------------------- EXIF orientation

# the PIL transposition that turns displayed pixels into the stored ones, per EXIF orientation
_TO_STORED = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
              7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}


@pytest.mark.parametrize("frame,flag,orientations", [
    ("stored", "auto", list(_TO_STORED)),  # LabelImg: boxes on the stored pixels
    ("turned", "auto", [1, 5, 6, 7, 8]),  # CVAT: on the turned image, whose declared size tells (sides swap)
    ("turned", "turned", list(_TO_STORED)),  # ... and for every orientation when told
    ("stored", "stored", list(_TO_STORED))])
def test_exif_orientation_turns_pixels_and_boxes_alike(tmp_path, frame, flag, orientations):
    """For each EXIF orientation: a photo stored turned, labelled on its stored pixels (or on the turned
    image, declaring the turned size); after the import the OD API decodes the upright photo, and the
    box is where the red logo is."""
    d = tmp_path / "exif"
    d.mkdir()
    upright = Image.fromarray(photo(0, (20, 30, 80, 70)))  # W x H as a viewer shows it
    for o in orientations:
        t = _TO_STORED[o]
        stored = upright if t is None else upright.transpose(t)
        exif = Image.Exif()
        exif[0x0112] = o
        save_jpeg(d / f"o{o}.jpg", np.asarray(stored), exif.tobytes())
        labelled = stored if frame == "stored" else upright
        y0, x0, y1, x1 = boxlib.to_pixels(red_box(np.asarray(labelled)), labelled.height, labelled.width)
        voc_file(d / f"o{o}.xml", f"o{o}.jpg", [("acme", (x0, y0, x1, y1), 0)], size=labelled.size)
    out = str(tmp_path / "out")
    s = import_labels("voc", str(d), out, progress=False, boxes_frame=flag)
    assert s.problems == [] and s.counts["oriented"] == len(orientations) - 1
    assert s.counts["reencoded"] == len(orientations) - 1  # orientation 1 keeps its JPEG bytes
    got = read_back(out)
    for o in orientations:
        img, boxes, _, _ = got[f"o{o}.jpg"]
        assert img.shape == (H, W, 3), o
        np.testing.assert_allclose(boxes[0], [30 / H, 20 / W, 70 / H, 80 / W], atol=1e-6, err_msg=str(o))
        np.testing.assert_allclose(red_box(img), boxes[0], atol=1.5 / W, err_msg=str(o))


# --------------------------------------------------------------------------------------- COCO

def test_coco_round_trip_crowd_skipped_negatives_kept(tmp_path):
    d = tmp_path / "coco"
    (d / "images").mkdir(parents=True)
    save_jpeg(d / "images" / "p1.jpg", photo(0, (20, 30, 80, 70)))
    save_jpeg(d / "images" / "p2.jpg", photo(1))
    save_jpeg(d / "images" / "p3.jpg", photo(2, (10, 10, 50, 40)))
    data = {"images": [{"id": 7, "file_name": "p1.jpg", "width": W, "height": H},
                       {"id": 8, "file_name": "p2.jpg", "width": W, "height": H},
                       {"id": 9, "file_name": "p3.jpg", "width": W, "height": H}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 5, "bbox": [20, 30, 60, 40], "iscrowd": 0},
                            {"id": 2, "image_id": 7, "category_id": 5, "bbox": [0, 0, 150, 110], "iscrowd": 1},
                            {"id": 3, "image_id": 9, "category_id": 99, "bbox": [10, 10, 40, 30]},
                            {"id": 4, "image_id": 42, "category_id": 5, "bbox": [10, 10, 40, 30]}],
            "categories": [{"id": 5, "name": "acme"}, {"id": 2, "name": "zeta"}]}
    (d / "instances.json").write_text(json.dumps(data))
    out = str(tmp_path / "out")
    s = import_labels("coco", str(d / "instances.json"), out, images_dir=str(d / "images"), progress=False)
    assert s.counts["crowd_boxes"] == 1
    assert s.splits["train"] == {"images": 2, "objects": 1, "images_without_objects": 1}
    reasons = sorted(p.reason for p in s.problems)
    assert len(reasons) == 2
    assert "annotations[2]: category_id 99 is not in 'categories' (ids [2, 5])" in reasons[0]
    assert "image_id 42 is not in 'images'" in reasons[1]
    assert open(os.path.join(out, dataset.LABEL_MAP)).read() == label_map_text(["zeta", "acme"])  # id order
    got = read_back(out)
    assert sorted(got) == ["p1.jpg", "p2.jpg"]
    np.testing.assert_allclose(got["p1.jpg"][1], [[30 / H, 20 / W, 70 / H, 80 / W]], atol=1e-6)
    assert got["p1.jpg"][2] == [2] and got["p2.jpg"][1].shape == (0, 4)


def test_coco_that_is_not_coco_is_an_error_naming_the_file(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"images": []}))
    with pytest.raises(ConfigError, match=r"COCO file '.*x\.json' has no 'categories' list"):
        import_labels("coco", str(p), str(tmp_path / "out"), progress=False)
    p.write_text("{not json")
    with pytest.raises(ConfigError, match=r"COCO file '.*x\.json' cannot be read as JSON"):
        import_labels("coco", str(p), str(tmp_path / "out"), progress=False)


def test_val_fraction_draws_a_reproducible_split(tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(10):
        save_jpeg(d / f"p{i}.jpg", photo(i % 5, (10, 10, 40, 40)))
        voc_file(d / f"p{i}.xml", f"p{i}.jpg", [("acme", (10, 10, 40, 40), 0)])
    a = import_labels("voc", str(d), str(tmp_path / "a"), val_fraction=0.3, seed=5, progress=False)
    import_labels("voc", str(d), str(tmp_path / "b"), val_fraction=0.3, seed=5, progress=False)
    assert a.splits["train"]["images"] == 7 and a.splits["val"]["images"] == 3
    assert sorted(read_back(str(tmp_path / "a"), "val")) == sorted(read_back(str(tmp_path / "b"), "val"))
    assert dataset_check.inspect_dataset(str(tmp_path / "a")).ok
