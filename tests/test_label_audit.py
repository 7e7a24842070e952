"""synth.label_audit and the label audit of tools/inspect_tfrecords.py: every labelled object of a
generated dataset is read back with its gate scores and draws, counted by group, the weakest are
drawn from the shards; a params.jsonl that is not make_tfrecords' raises an error naming the line."""

import json
import os

import cv2
import numpy as np
import pytest

from synth import config as configlib, dataset, generate, label_audit
from synth.errors import RecordError
from synth.label_map import read_label_map
from conftest import make_workdir, run_tool, write_config

BLENDS = "realism { blend { hard_weight: 1 feather_weight: 1 poisson_weight: 0 laplacian_weight: 1 } }\n"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The workdir fixture's layout (made here for module scope), 12 composites with three blend modes."""
    root = make_workdir(tmp_path_factory.mktemp("audit"))
    out = root / "data"
    generate.generate(configlib.load_config(write_config(root, num_images=12, extra=BLENDS)), str(out),
                      show_progress=False)
    return out


def _objects(out):
    return label_audit.read_objects(str(out / dataset.PARAMS), read_label_map(str(out / dataset.LABEL_MAP)))


def test_every_labelled_object_is_read_with_its_draws_and_scores(generated):
    objects = _objects(generated)
    manifest = json.loads((generated / dataset.MANIFEST).read_text())
    assert len(objects) == sum(s["objects"] for s in manifest["splits"].values()) > 0
    records = [json.loads(line) for line in (generated / dataset.PARAMS).read_text().splitlines()]
    first = next(r for r in records if r["boxes"])
    o = next(x for x in objects if x.source_id == f"{first['split']}-{first['index']:08d}" and x.object_index == 0)
    assert o.box == tuple(first["boxes"][0]) and o.match == first["scores"][0]["match"]
    assert o.blend == first["params"]["objects"][0]["blend"]["mode"] and o.class_text == "acme"
    assert {x.blend for x in objects} <= {"hard", "feather", "laplacian"}


def test_summary_counts_the_weak_objects_of_each_group(generated):
    objects = _objects(generated)
    # Two objects made weak by hand: the counts must find exactly them, in their groups.
    weak = [objects[0], objects[-1]]
    made = [label_audit.ObjectScore(**{**o.__dict__, "match": m}) for o, m in zip(weak, (0.1, 0.45))]
    rest = [o for o in objects if o not in weak]
    assert all(o.match >= 0.5 for o in rest), "the fixture's logos are large and plain: all should match well"
    rows = label_audit.summarize(rest + made, threshold=0.5)
    by = {(r.kind, r.name): r for r in rows}
    assert by[("all", "all")].objects == len(objects) and by[("all", "all")].weak == 2
    assert by[("class", "acme")].weak == 2
    blends = {}
    for o in made:
        blends[o.blend] = blends.get(o.blend, 0) + 1
    for name in {o.blend for o in objects}:
        assert by[("blend", name)].weak == blends.get(name, 0)
        assert by[("blend", name)].objects == sum(o.blend == name for o in objects)
    assert sum(r.objects for r in rows if r.kind == "placement") == len(objects)
    assert label_audit.weakest(rest + made, 2) == made
    table = label_audit.format_table(rows, 0.5)
    assert "acme" in table and "below 0.5" in table
    assert label_audit.summarize([]) == [] and "no labelled objects" in label_audit.format_table([])


def test_the_sheet_crops_each_object_from_the_shards(generated):
    objects = _objects(generated)
    shards = [p for s in dataset.SPLITS for p in dataset.list_shards(str(generated), s)]
    worst = label_audit.weakest(objects, 4)
    sheet = label_audit.weakest_sheet(shards, worst, cols=2)
    tile_h = label_audit.TILE + 26
    assert sheet.shape[0] == 2 * (tile_h + 4) + 4 and sheet.shape[1] == 2 * (label_audit.TILE + 4) + 4
    # Each tile holds the object's crop: its box, drawn green, and the image inside it.
    for k, o in enumerate(worst):
        r, c = divmod(k, 2)
        tile = sheet[4 + r * (tile_h + 4):4 + r * (tile_h + 4) + label_audit.TILE,
                     4 + c * (label_audit.TILE + 4):4 + c * (label_audit.TILE + 4) + label_audit.TILE]
        green = (tile[..., 1] == 255) & (tile[..., 0] == 0) & (tile[..., 2] == 0)
        assert green.sum() > 40, f"tile {k} shows no box"
    ghost = label_audit.ObjectScore(**{**worst[0].__dict__, "source_id": "train-99999999"})
    with pytest.raises(RecordError, match="train-99999999"):
        label_audit.weakest_sheet(shards, [ghost])


@pytest.mark.parametrize("line, message", [
    ("{not json", "line 2: not JSON"),
    ('{"split": "train", "index": 5}', 'line 2: not a composite\'s record'),
    ('{"split": "train", "index": 5, "params": {"objects": []}, "boxes": [], "class_ids": []}',
     'line 2: no "scores"'),
    ('{"split": "train", "index": 5, "params": {"objects": [{}]}, "boxes": [], "class_ids": [], "scores": []}',
     "train-00000005 has 1 objects, 0 boxes"),
    ('{"split": "train", "index": 5, "params": {"objects": [{}]}, "boxes": [[0, 0, 1, 1]], "class_ids": [9], '
     '"scores": [{"match": 1, "size_px": 3, "contrast": 1}]}', "object 0: class id 9 is not in the label map"),
    ('{"split": "train", "index": 5, "params": {"objects": [{}]}, "boxes": [[0, 0, 1, 1]], "class_ids": [1], '
     '"scores": [{"size_px": 3}]}', "object 0: KeyError"),
])
def test_a_params_file_that_is_not_make_tfrecords_is_named_with_its_line(generated, tmp_path, line, message):
    first = (generated / dataset.PARAMS).read_text().splitlines()[0]
    path = tmp_path / "params.jsonl"
    path.write_text(first + "\n" + line + "\n")
    with pytest.raises(RecordError, match=str(path).replace(".", r"\.") + ".*" + message.replace("(", r"\(")):
        label_audit.read_objects(str(path), {1: "acme"})
    with pytest.raises(RecordError, match="cannot be read"):
        label_audit.read_objects(str(tmp_path / "absent.jsonl"), {1: "acme"})


def test_a_params_file_without_gate_scores_is_not_audited(generated, tmp_path):
    assert label_audit.has_scores(str(generated / dataset.PARAMS))
    headers = tmp_path / "params.jsonl"  # what make_header_tfrecords writes: no "params", no "scores"
    headers.write_text('{"split": "train", "index": 0, "page": "p.html", "headers": [], "boxes": [], '
                       '"class_ids": []}\n')
    assert not label_audit.has_scores(str(headers))
    headers.write_text("\n")
    assert not label_audit.has_scores(str(headers))


def test_cli_prints_the_audit_and_writes_the_sheet(generated, tmp_path):
    sheet = str(tmp_path / "weak.png")
    r = run_tool("inspect_tfrecords", str(generated), "--plot=", f"--weakest_sheet={sheet}", "--weakest=5",
                 timeout=300)
    assert r.returncode == 0, r.stderr
    assert "label audit (gate scores in params.jsonl)" in r.stdout and "blend" in r.stdout
    assert f"wrote {sheet}: the 5 objects with the lowest match" in r.stdout
    img = cv2.imread(sheet)
    assert img is not None and img.std() > 10
    # Bad input: a sheet in a folder that does not exist is named, and nothing is half-written.
    bad = run_tool("inspect_tfrecords", str(generated), "--plot=", f"--weakest_sheet={tmp_path}/no/such/w.png",
                   timeout=300)
    assert bad.returncode == 2 and "no/such" in bad.stderr and "Traceback" not in bad.stderr
    assert not os.path.exists(tmp_path / "no")
    assert np.array_equal(cv2.imread(sheet), img)
