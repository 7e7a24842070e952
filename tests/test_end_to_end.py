"""The whole path, through the command-line tools as a user runs them: composites ->
shards -> pipeline.config -> the OD API's training loop, fine-tuning a detection checkpoint
-> SavedModel in TF Serving's layout -> predictions drawn on images. Minutes on 2 CPU cores.

The TF2 Detection Zoo cannot be reached here, so the checkpoint fine-tuned from is one the
test trains itself (conftest.train_source_checkpoint); the run's checkpoint then shows that
the variables a "detection" fine_tune_checkpoint restores are that checkpoint's."""

import json
import os

import numpy as np
import pytest

from conftest import (checkpoint_model_variables, fresh_checkpoints, relative_difference, run_tool,
                      train_source_checkpoint, write_config)

pytestmark = pytest.mark.slow


def _ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-5000:]}"
    return r


# What a "detection" fine_tune_checkpoint restores into the Faster R-CNN meta architecture
# (FasterRCNNMetaArch.restore_from_objects), and the heads it leaves to their fresh initialisation.
FEATURE_EXTRACTORS = ("model/_feature_extractor_for_proposal_features/",
                      "model/_feature_extractor_for_box_classifier_features/")
HEADS = ("model/_first_stage_box_predictor_first_conv/", "model/_first_stage_box_predictor/",
         "model/_mask_rcnn_box_predictor/")
# Relative distance ||a - source|| / ||source|| of a convolution kernel. Two independent random
# initialisations of a kernel are about sqrt(2) = 1.41 apart. Two steps at the template's learning
# rate move a restored kernel by 0.0002 to 0.043 (the largest: conv1, which sees raw pixels).
STAYED_NEAR = 0.15
FAR_APART = 0.5


def _kernels(keys) -> list[str]:
    return sorted(k for k in keys if "/kernel/" in k)


def check_fine_tuned_from(trained: str, source: str, fresh: str, restore_map: str) -> dict:
    """Asserts that the run's checkpoint `trained` fine-tuned from `source`: the variables that
    "detection" fine-tuning restores (the keys of `restore_map`) are near the source's, where a
    freshly initialised model's (`fresh`) are far from them, and the heads it does not restore are
    far from the source's too. Variables are matched by checkpoint key; only convolution kernels
    are compared, since batch norm variables start from constants (gamma 1, beta 0, mean 0,
    variance 1) in every model, fresh or not. Returns the distances."""
    after, src, new = (checkpoint_model_variables(p) for p in (trained, source, fresh))
    assert set(after) == set(src) == set(new), set(after) ^ set(src) | set(src) ^ set(new)
    restored = set(checkpoint_model_variables(restore_map))
    assert restored and sorted(restored) == sorted(k for k in src if k.startswith(FEATURE_EXTRACTORS))
    restored_kernels, other_kernels = _kernels(restored), _kernels(set(src) - restored)
    assert len(restored_kernels) == 53  # every convolution of ResNet-50
    assert other_kernels and all(k.startswith(HEADS) for k in other_kernels), other_kernels
    d = {"restored_vs_source": {k: relative_difference(after[k], src[k]) for k in restored_kernels},
         "fresh_vs_source": {k: relative_difference(new[k], src[k]) for k in restored_kernels},
         "heads_vs_source": {k: relative_difference(after[k], src[k]) for k in other_kernels}}
    # (i) restored from the source, not freshly initialised ...
    worst = max(d["restored_vs_source"].items(), key=lambda kv: kv[1])
    assert worst[1] < STAYED_NEAR, f"restored kernel {worst[0]} moved {worst[1]:.3f} from the source"
    closest = min(d["fresh_vs_source"].items(), key=lambda kv: kv[1])
    assert closest[1] > FAR_APART, f"a fresh model's {closest[0]} is only {closest[1]:.3f} from the source"
    # (ii) ... while the heads, which "detection" fine-tuning does not restore, are not the source's.
    closest = min(d["heads_vs_source"].items(), key=lambda kv: kv[1])
    assert closest[1] > FAR_APART, f"head kernel {closest[0]} is only {closest[1]:.3f} from the source"
    return d


def test_composites_to_served_predictions(workdir):
    data, run, exports, preds = (str(workdir / d) for d in ("data", "run", "exports", "preds"))
    _ok(run_tool("make_tfrecords", f"--config={write_config(workdir, num_images=8)}",
                 f"--output_dir={data}", "--noprogress"))
    # The checkpoint to fine-tune from: the same model, trained one step by this test, in
    # source/; a fresh model's checkpoint beside it in fresh/, to tell restored from fresh.
    source, fresh = str(workdir / "source"), str(workdir / "fresh")
    from synth import pipeline_config

    pipeline_config.configure("small_cpu", data, source)
    source_ckpt = train_source_checkpoint(os.path.join(source, "pipeline.config"), data,
                                          os.path.join(source, "ckpt"))
    fresh_ckpt, restore_map = fresh_checkpoints(os.path.join(source, "pipeline.config"),
                                                os.path.join(fresh, "ckpt"))
    r = _ok(run_tool("configure_pipeline", "--template=small_cpu", f"--data_dir={data}", f"--run_dir={run}",
                     "--num_steps=2", f"--checkpoint={source_ckpt}"))
    assert "from scratch" not in r.stdout
    train_config = pipeline_config.read_pipeline(os.path.join(run, "pipeline.config")).train_config
    assert (train_config.fine_tune_checkpoint, train_config.fine_tune_checkpoint_type) == \
        (os.path.abspath(source_ckpt), "detection")
    _ok(run_tool("model_main_tf2", f"--pipeline_config_path={run}/pipeline.config", f"--model_dir={run}",
                 "--num_train_steps=2", "--checkpoint_every_n=1", "--num_steps_per_iteration=1"))
    import tensorflow as tf

    from synth import checkpoints

    ckpt = tf.train.latest_checkpoint(run)
    assert ckpt is not None
    reader = tf.train.load_checkpoint(ckpt)
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 2  # stopped where asked
    # the OD API's loop kept a checkpoint after each loop, the last at the last step; the average
    # of the last two is a checkpoint of the same model, its kernels between theirs
    kept = checkpoints.run_checkpoints(run)
    assert {1, 2} <= set(kept) and kept[2] == ckpt
    avg = checkpoints.average_checkpoints([kept[1], kept[2]], str(workdir / "average"))
    assert checkpoints.checkpoint_prefix(str(workdir / "average")) == avg  # has the `model` object
    one, two, mean = (checkpoint_model_variables(p) for p in (kept[1], kept[2], avg))
    assert set(mean) == set(two)
    moved = [k for k in _kernels(set(two)) if not np.allclose(one[k], two[k])]
    assert moved and all(np.allclose(mean[k], (one[k] + two[k]) / 2, atol=1e-6) for k in moved)
    # ... and export_model --average_last=2 exports that average, naming its parts. (Not verified here:
    # this 2-step model's proposals tie, and NMS kept another of two tied anchors in one of the runs.)
    avg_exports = workdir / "avg_exports"
    r = _ok(run_tool("export_model", f"--pipeline_config_path={run}/pipeline.config", f"--trained_checkpoint_dir={run}",
                     f"--export_dir={avg_exports}", "--model_name=logo", "--average_last=2", "--noverify"))
    info = json.load(open(avg_exports / "logo" / "1" / "assets.extra" / "export.json"))
    assert info["averaged_checkpoints"] == [kept[1], kept[2]] and info["checkpoint"] == "average of 2 checkpoints"
    assert f"averaged: {kept[1]}" in r.stdout
    assert sorted(os.listdir(avg_exports / "logo")) == ["1"]  # the averaged checkpoint went with the staging
    served = tf.saved_model.load(str(avg_exports / "logo" / "1")).signatures["serving_default"]
    assert served(input_tensor=tf.zeros([1, 96, 128, 3], tf.uint8))["detection_boxes"].shape[-1] == 4
    check_fine_tuned_from(ckpt, source_ckpt, fresh_ckpt, restore_map)

    # One COCO evaluation of that checkpoint on the val shards, without the OD API's polling.
    _ok(run_tool("evaluate", f"--pipeline_config_path={run}/pipeline.config", f"--checkpoint={run}",
                 f"--output_dir={workdir / 'eval'}"))
    metrics = json.load(open(workdir / "eval" / "metrics.json"))
    assert metrics["step"] == 2 and "DetectionBoxes_Precision/mAP" in metrics["metrics"]
    assert os.listdir(workdir / "eval") != ["metrics.json"]  # TensorBoard events too

    r = _ok(run_tool("export_model", f"--pipeline_config_path={run}/pipeline.config",
                     f"--trained_checkpoint_dir={run}", f"--export_dir={exports}", "--model_name=logo"))
    version = os.path.join(exports, "logo", "1")
    assert "tensorflow_model_server" in r.stdout and version in r.stdout
    assert os.path.isfile(os.path.join(version, "saved_model.pb"))
    assert os.path.isdir(os.path.join(version, "variables"))
    assert os.path.isfile(os.path.join(version, "assets.extra", "label_map.pbtxt"))

    # The SavedModel contract TF Serving relies on.
    model = tf.saved_model.load(version)
    fn = model.signatures["serving_default"]
    spec = fn.structured_input_signature[1]["input_tensor"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [1, None, None, 3]
    out = fn(input_tensor=tf.zeros([1, 96, 128, 3], tf.uint8))
    assert {"detection_boxes", "detection_classes", "detection_scores", "num_detections"} <= set(out)
    assert out["detection_boxes"].shape[-1] == 4

    # The export checked itself against the checkpoint, and listed itself in models.config.
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from synth import export, serving
    from synth.predict import Predictor

    assert "verified: serving_default takes input_tensor uint8 [1, None, None, 3]" in r.stdout
    recorded = json.load(open(os.path.join(version, "assets.extra", "export.json")))["verification"]
    assert recorded["sample"].startswith(os.path.join(data, "val-"))  # the first val composite
    # The CLI verified the export before publishing it; its record says what was compared. Not
    # vacuous even when the 2-step model keeps no detection: every proposal's raw box and scores
    # were compared as well.
    assert recorded["input"] == {"name": "input_tensor", "dtype": "uint8", "shape": [1, None, None, 3]}
    assert recorded["raw_proposals_compared"] > 0
    # A proposal may come out as another anchor's box with the same scores where objectness scores tie
    # (export._compare_raw; seen here: 2 of 32 after 2 steps, and 3 of 32 with their own scores), so boxes
    # may differ up to the export's RAW_TIED_SHARE; a proposal that keeps its box keeps its scores (none
    # rescored, and the largest score difference among them below).
    assert recorded["raw_proposals_rescored"] == 0
    assert recorded["raw_proposals_differing"] <= export.RAW_TIED_SHARE * recorded["raw_proposals_compared"]
    assert recorded["max_raw_score_diff"] <= 1e-4
    assert recorded["max_box_diff"] <= 1e-4 and recorded["max_score_diff"] <= 1e-4
    sample, _ = export.sample_image(os.path.join(data, "label_map.pbtxt"))
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(open(os.path.join(exports, "models.config")).read(), config)
    assert [(c.name, c.base_path, c.model_platform) for c in config.model_config_list.config] == \
        [("logo", os.path.join(exports, "logo"), "tensorflow")]
    assert f"--model_config_file={os.path.join(exports, 'models.config')}" in r.stdout
    assert "curl -s -X POST http://localhost:8501/v1/models/logo:predict" in r.stdout

    # TF Serving's REST API (in-process, around the real SavedModel) gives what the SavedModel gives.
    from test_serving import FakeRestServing

    fake = FakeRestServing({"logo": {1: version}})
    try:
        client = serving.RestClient(fake.address, "logo", version=1, names=serving.read_class_names(version))
        served = client.predict(sample, min_score=0.0)
        answer = client.request(serving.build_rest_request([sample]))
    finally:
        fake.close()
    direct = Predictor(version)(sample, min_score=0.0)
    # A 2-step model may keep no detection after NMS, so the raw proposals are compared too: they
    # always exist, and they went through the same JSON transport.
    assert len(served) == len(direct) and {d.class_name for d in served} <= {"acme"}
    if served:
        np.testing.assert_allclose([d.box + [d.score] for d in served], [d.box + [d.score] for d in direct],
                                   atol=1e-4)
    raw = fn(input_tensor=tf.constant(sample[None]))
    (prediction,) = answer["predictions"]
    for key in ("raw_detection_boxes", "raw_detection_scores"):
        assert np.asarray(prediction[key]).size > 0
        np.testing.assert_allclose(np.asarray(prediction[key]), raw[key].numpy()[0], atol=1e-4)

    # A second export gets the next version; an existing version is refused and left whole.
    r = run_tool("export_model", f"--pipeline_config_path={run}/pipeline.config",
                 f"--trained_checkpoint_dir={run}", f"--export_dir={exports}", "--model_name=logo", "--version=1")
    assert r.returncode == 2 and "already exists" in r.stderr
    assert sorted(os.listdir(os.path.join(exports, "logo"))) == ["1"]

    r = _ok(run_tool("predict", f"--model={exports}/logo", f"--output_dir={preds}", "--min_score=0",
                     f"--tfrecord={data}/val-*.tfrecord", "--max_images=2", "--noprogress"))
    result = json.load(open(os.path.join(preds, "detections.json")))
    assert len(result["images"]) == 2
    for im in result["images"]:
        assert os.path.isfile(im["drawn"])
        for d in im["detections"]:
            assert d["class_name"] == "acme" and 0 <= d["score"] <= 1 and len(d["box"]) == 4
