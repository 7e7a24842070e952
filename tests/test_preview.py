"""The generator's preview: drawn from the shards as written (read without TensorFlow), labelled
from params.jsonl."""

import json

import cv2
import numpy as np
import pytest
import tensorflow as tf

from synth import config as configlib, dataset, generate, preview
from synth.composite import encode_jpeg
from synth.tfexample import parse_example
from conftest import write_config


def test_preview_spreads_over_the_train_records_with_their_gate_scores(workdir):
    out = workdir / "data"
    generate.generate(configlib.load_config(write_config(workdir, num_images=50)), str(out), show_progress=False,
                      write_preview=True)
    train = dataset.list_shards(str(out), "train")
    lines = [json.loads(x) for x in open(out / dataset.PARAMS)]
    records = list(tf.data.TFRecordDataset(train))
    stride = preview.spread_stride(len(records))
    assert len(records) >= 32 and stride == len(records) // 16 >= 2  # consecutive composites share a backdrop
    # The reference: records 0, stride, 2 * stride, ... parsed by TensorFlow, labelled from params.jsonl by hand.
    thumbs = []
    for raw in records[::stride][:preview.PREVIEW_IMAGES]:
        ex = parse_example(raw.numpy())
        line = next(x for x in lines if f"{x['split']}-{x['index']:08d}" == ex["source_id"])
        labels = [f"{t} v{s['visible_fraction']:.2f} m{s['match']:.2f}" for t, s in zip(ex["class_texts"],
                                                                                       line["scores"])]
        rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(ex["encoded"], np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        thumbs.append(preview.annotate(rgb, ex["boxes"], labels, ex["class_ids"]))
    assert len(thumbs) == 16 and [lines[i]["split"] for i in range(16)] == ["train"] * 16
    sheet = preview.sheet_from_shards(train, str(out / dataset.PARAMS), stride=stride)
    np.testing.assert_array_equal(sheet, preview.contact_sheet(thumbs))
    assert (out / dataset.PREVIEW).read_bytes() == encode_jpeg(sheet, 90)
    first = preview.sheet_from_shards(train, str(out / dataset.PARAMS))  # stride 1: the first 16 records
    assert first.shape == sheet.shape and not np.array_equal(first, sheet)
    with pytest.raises(ValueError, match="stride=0"):
        preview.sheet_from_shards(train, None, stride=0)


def test_spread_stride_spans_the_records():
    assert preview.spread_stride(10) == 1 and preview.spread_stride(16) == 1
    assert preview.spread_stride(1000) == 62 and 15 * 62 < 1000  # the 16th thumbnail is record 930
    assert preview.spread_stride(0) == 1


def test_labels_without_scores_are_the_class_texts_and_no_record_is_refused():
    assert preview._labels(["a", "b"], None) == ["a", "b"]
    assert preview._labels(["a"], {"scores": [{"visible_fraction": 0.5, "match": 0.25}]}) == ["a v0.50 m0.25"]
    with pytest.raises(ValueError, match="at least one thumbnail"):
        preview.sheet_from_shards([], None)


def test_a_sheet_of_one_class_draws_only_the_records_holding_it(workdir):
    import shutil
    shutil.copy(workdir / "logos" / "logo.png", workdir / "logos" / "logo2.png")
    body = open(write_config(workdir, num_images=24)).read().replace(
        'logo { class_name: "acme" path: "logos/logo.png" }',
        'logo { class_name: "acme" path: "logos/logo.png" }\nlogo { class_name: "globex" path: "logos/logo2.png" }')
    out = workdir / "data"
    generate.generate(configlib.load_config(write_config(workdir, body)), str(out), show_progress=False)
    train = dataset.list_shards(str(out), "train")
    parsed = [parse_example(raw.numpy()) for raw in tf.data.TFRecordDataset(train)]
    holding = [ex for ex in parsed if "globex" in ex["class_texts"]]
    assert 0 < len(holding) < len(parsed)  # some composites hold only acme
    assert preview.count_holding(train, ["globex"]) == len(holding)
    assert preview.count_holding(train, None) == len(parsed)
    thumbs = [preview.annotate(cv2.cvtColor(cv2.imdecode(np.frombuffer(ex["encoded"], np.uint8), cv2.IMREAD_COLOR),
                                            cv2.COLOR_BGR2RGB), ex["boxes"], ex["class_texts"], ex["class_ids"])
              for ex in holding[::2][:4]]
    sheet = preview.sheet_from_shards(train, None, count=4, stride=2, classes=["globex"])
    np.testing.assert_array_equal(sheet, preview.contact_sheet(thumbs))
    with pytest.raises(ValueError, match="class initech"):
        preview.sheet_from_shards(train, None, classes=["initech"])
