"""Exporting a trained checkpoint as a SavedModel laid out for TensorFlow Serving, then
checking the export against the checkpoint it came from.

    EXPORT_DIR/models.config                    TF Serving's --model_config_file, one entry per model
    EXPORT_DIR/MODEL_NAME/VERSION/saved_model.pb
                                 variables/
                                 assets.extra/label_map.pbtxt   (class names for clients)
                                 assets.extra/pipeline.config   (what the model was built from)
                                 assets.extra/export.json       (input type, checkpoint, verification)

The OD API's exporter (exporter_lib_v2) writes into a staging folder beside the versions; the
export is verified there, and the version folder appears, by one rename, only when the export
is complete and verified. TF Serving ignores folders whose names are not integers, so it never
sees a partial export, and a failed export leaves nothing behind (not even an empty model folder).

Verification (`verify_export`):
- the `serving_default` signature takes one input, `input_tensor`, with the dtype and shape that
  exporter_lib_v2 gives each input type, and returns at least the detection outputs (the facts
  are synth.savedmodel's: SIGNATURE_INPUTS, OUTPUT_KEYS);
- the SavedModel's detections on a sample image equal those of the checkpoint, rebuilt with the
  OD API's model_builder and run eagerly (preprocess, predict, postprocess): the same number of
  detections and classes, and boxes and scores within `atol` (DEFAULT_ATOL = 1e-4; the graph and
  eager runs of the same weights differ by float rounding only, 0 to 6e-8 measured). Detections
  whose scores tie within `atol` may come out of NMS in either order, so each box is compared with
  the closest box of the same class among the other run's detections of (nearly) the same score.
The sample is the first val composite when the label map's folder holds val shards (the first
train composite when it holds only train shards), else a fixed synthetic image (`synthetic_sample`).

models.config (`write_models_config`) lists every model folder of EXPORT_DIR that holds a version,
with absolute base paths and model_platform "tensorflow". Extra settings of an existing entry
(a model_version_policy, say) and entries for models stored elsewhere are kept.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import numpy as np

from synth.checkpoints import average_checkpoints, checkpoint_prefix, trained_checkpoints
from synth.errors import ConfigError, OutputError, SynthError
from synth.savedmodel import (ASSETS_EXTRA, EXPORT_INFO, INPUT_NAME, INPUT_TYPES, LABEL_MAP_ASSET, OUTPUT_KEYS,
                              SIGNATURE_INPUTS, SIGNATURE_NAME, check_input_type, is_version_dir, versions)

DEFAULT_ATOL = 1e-4
MODELS_CONFIG = "models.config"


class ExportVerificationError(SynthError):
    """An exported SavedModel does not behave like the checkpoint it was exported from."""


def export(pipeline_config_path: str, trained_checkpoint_dir: str, export_dir: str,
           model_name: str, version: int | None = None, input_type: str = "image_tensor",
           verify: bool = True, atol: float = DEFAULT_ATOL, average_last: int = 1,
           config_override: str = "", max_proposals: int | None = None) -> str:
    """Exports, verifies (unless `verify` is False), refreshes EXPORT_DIR/models.config and
    returns the version folder. `trained_checkpoint_dir` is a run's model_dir (its latest
    checkpoint) or a ckpt-N prefix. With `average_last` N > 1 (a run's folder), the model exported
    is the average of the weights of the run's last N checkpoints (synth.checkpoints), and
    export.json names them; the averaged checkpoint itself is not kept. `config_override` (text
    format, pipeline_config.apply_override) is merged over the pipeline before export, for settings
    that are not weights, such as how many proposals and detections the model keeps; the exported
    pipeline.config and export.json say what it was. `max_proposals` N (a Faster R-CNN only) is the
    short form of the override that keeps N first-stage proposals and up to N detections
    (pipeline_config.proposals_override); `config_override` is merged after it, so it wins where both
    set a value, and export.json records the two as one override."""
    from synth import pipeline_config, training

    check_input_type(input_type)
    if not model_name or "/" in model_name or model_name.startswith("."):
        raise ConfigError(f"--model_name={model_name!r} must be a plain folder name")
    if version is not None and version < 1:
        raise ConfigError(f"--version={version} must be a positive integer")
    if not atol > 0:
        raise ConfigError(f"--atol={atol} must be a positive tolerance")
    msg = pipeline_config.read_pipeline(pipeline_config_path)
    if max_proposals is not None:
        fragment = pipeline_config.proposals_override(max_proposals)
        if msg.model.WhichOneof("model") != "faster_rcnn":
            raise ConfigError(f"--max_proposals={max_proposals}: the model of {pipeline_config_path!r} is "
                              f"{msg.model.WhichOneof('model')}, and only a Faster R-CNN keeps first-stage proposals")
        config_override = fragment + ("\n" + config_override if config_override else "")
    if config_override:
        pipeline_config.apply_override(msg, config_override)
    averaged = _checkpoints_to_average(trained_checkpoint_dir, average_last)
    prefix = None if averaged else checkpoint_prefix(trained_checkpoint_dir)  # an average is made in staging
    label_map = msg.train_input_reader.label_map_path
    if not os.path.isfile(label_map):
        raise ConfigError(f"label map {label_map!r} named by {pipeline_config_path!r} does not exist")
    _read_models_config(export_dir)  # a broken models.config fails now, not after the export
    model_dir = os.path.join(export_dir, model_name)
    if version is None:
        version = (versions(model_dir) or [0])[-1] + 1
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise OutputError(f"export version {final!r} already exists; TF Serving versions are immutable, "
                          "so choose another --version or leave it out for the next free one")
    created = [d for d in (export_dir, model_dir) if not os.path.isdir(d)]
    try:
        os.makedirs(model_dir, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".export-", dir=model_dir)
    except OSError as exc:
        raise OutputError(f"export directory {model_dir!r} cannot be written: {exc.strerror}") from None
    done = False
    try:
        import tensorflow as tf
        from object_detection import exporter_lib_v2

        training.apply_compat_fixes()
        if averaged:
            prefix = average_checkpoints(averaged, os.path.join(staging, "average"))
        source = os.path.join(staging, "checkpoint_source")  # the exporter takes a folder's latest
        os.makedirs(source)
        tf.compat.v1.train.update_checkpoint_state(source, os.path.abspath(prefix))
        try:
            exporter_lib_v2.export_inference_graph(input_type, msg, source, staging)
        except AssertionError as exc:  # restore status: the checkpoint does not fit the model
            raise ConfigError(f"checkpoint {prefix!r} does not fit the model of {pipeline_config_path!r}: "
                              f"{str(exc).splitlines()[0][:300]}") from None
        saved = os.path.join(staging, "saved_model")
        extra = os.path.join(saved, ASSETS_EXTRA)
        os.makedirs(extra, exist_ok=True)
        shutil.copyfile(label_map, os.path.join(saved, LABEL_MAP_ASSET))
        shutil.copyfile(os.path.join(staging, "pipeline.config"), os.path.join(extra, "pipeline.config"))
        info = {"input_type": input_type, "checkpoint": os.path.abspath(prefix),
                "pipeline_config": os.path.abspath(pipeline_config_path), "verification": None}
        if config_override:
            info["config_override"] = config_override
        if averaged:  # the averaged checkpoint lives in staging: name what it was made of
            info["checkpoint"] = f"average of {len(averaged)} checkpoints"
            info["averaged_checkpoints"] = [os.path.abspath(p) for p in averaged]
        if verify:
            sample, source_name = sample_image(label_map)
            # against the pipeline the exporter used: with an override, the merged one it wrote to staging
            used = os.path.join(staging, "pipeline.config") if config_override else pipeline_config_path
            info["verification"] = verify_export(saved, used, prefix, sample, atol, input_type)
            info["verification"]["sample"] = source_name
        with open(os.path.join(extra, EXPORT_INFO), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
        os.rename(saved, final)
        done = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not done:
            for d in reversed(created):  # no empty model or export folder left behind
                try:
                    os.rmdir(d)
                except OSError:
                    pass
    write_models_config(export_dir)
    return final


def _checkpoints_to_average(trained_checkpoint_dir: str, average_last: int) -> list[str]:
    """The last `average_last` checkpoints of a run's folder, oldest first ([] for 1: no average)."""
    if not isinstance(average_last, int) or average_last < 1:
        raise ConfigError(f"--average_last={average_last!r} must be a whole number of checkpoints, 1 or more")
    if average_last == 1:
        return []
    if not os.path.isdir(trained_checkpoint_dir):
        raise ConfigError(f"--average_last={average_last} needs a run's folder as --trained_checkpoint_dir, "
                          f"not {trained_checkpoint_dir!r}")
    kept = list(trained_checkpoints(trained_checkpoint_dir).values())
    if len(kept) < average_last:
        raise ConfigError(f"--average_last={average_last}: run {trained_checkpoint_dir!r} keeps {len(kept)} "
                          "trained checkpoint(s); train with a smaller --checkpoint_every_n to keep more")
    return kept[-average_last:]


# ---------------------------------------------------------------- verification

def synthetic_sample(height: int = 240, width: int = 320) -> np.ndarray:
    """A fixed RGB test image (no randomness): a colour gradient with a few shapes."""
    import cv2

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([255 * x / width, 255 * y / height, 128 + 64 * np.sin(x / 9 + y / 13)], -1)
    img = np.ascontiguousarray(img.astype(np.uint8))
    cv2.rectangle(img, (width // 8, height // 6), (width // 3, height // 2), (230, 40, 40), -1)
    cv2.circle(img, (2 * width // 3, 2 * height // 3), min(height, width) // 6, (250, 250, 250), -1)
    cv2.line(img, (0, height - 1), (width - 1, 0), (20, 20, 20), 3)
    return img


def sample_image(label_map_path: str) -> tuple[np.ndarray, str]:
    """(RGB image, where it came from): the first val composite beside the label map (the
    first train composite for a dataset without a val split), else `synthetic_sample()`."""
    from synth import dataset

    data_dir = os.path.dirname(os.path.abspath(label_map_path))
    shards = dataset.list_shards(data_dir, "val") or dataset.list_shards(data_dir, "train")
    if shards:
        import cv2
        import tensorflow as tf

        from synth.tfexample import parse_example

        for raw in tf.data.TFRecordDataset(shards[:1]).take(1):
            ex = parse_example(raw.numpy())
            bgr = cv2.imdecode(np.frombuffer(ex["encoded"], np.uint8), cv2.IMREAD_COLOR)
            if bgr is not None:
                return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), f"{shards[0]}:{ex['source_id']}"
    return synthetic_sample(), "synthetic_sample()"


def check_signature(signature, input_type: str) -> dict:
    """Checks a loaded serving signature (a ConcreteFunction) against what `input_type`
    promises; returns its description."""
    check_input_type(input_type)
    args, kwargs = signature.structured_input_signature  # a loaded signature has keyword inputs only
    inputs = {**{getattr(a, "name", None): a for a in args}, **kwargs}
    if sorted(inputs) != [INPUT_NAME]:
        raise ExportVerificationError(f"signature {SIGNATURE_NAME!r} takes inputs {sorted(inputs)}; "
                                      f"expected exactly [{INPUT_NAME!r}]")
    spec = inputs[INPUT_NAME]
    dtype, shape = spec.dtype.name, spec.shape.as_list() if spec.shape.rank is not None else None
    want_dtype, want_shape = SIGNATURE_INPUTS[input_type]
    if (dtype, shape) != (want_dtype, want_shape):
        raise ExportVerificationError(f"signature {SIGNATURE_NAME!r} input {INPUT_NAME!r} is {dtype} {shape}; "
                                      f"input type {input_type!r} needs {want_dtype} {want_shape}")
    outputs = sorted(signature.structured_outputs)
    missing = [k for k in OUTPUT_KEYS if k not in outputs]
    if missing:
        raise ExportVerificationError(f"signature {SIGNATURE_NAME!r} lacks outputs {missing} (it has {outputs})")
    return {"signature": SIGNATURE_NAME, "input": {"name": INPUT_NAME, "dtype": dtype, "shape": shape},
            "outputs": outputs}


RAW_DIFFERING_SHARE = 0.05  # share of pre-NMS proposals that may keep their box with other scores (see _compare_raw)
RAW_TIED_SHARE = 0.5  # share of pre-NMS proposals that may have another box, whatever their scores (tie picks)


def compare_detections(a: dict, b: dict, atol: float) -> dict:
    """Max differences between two single-image detection sets ({detection_boxes [N, 4],
    detection_scores [N], detection_classes [N], num_detections}, optionally the pre-NMS
    raw_detection_boxes and raw_detection_scores); raises ExportVerificationError when they differ
    by more than `atol` in a way that the raw proposals picked differently, or NMS keeping another of
    two candidates tied in score that both sides hold (detections_tie_kept), cannot explain."""
    na, nb = int(np.asarray(a["num_detections"]).reshape(-1)[0]), int(np.asarray(b["num_detections"]).reshape(-1)[0])
    raw = _compare_raw(a, b, atol)
    raw_differing = raw["raw_proposals_differing"]
    raw_a, raw_b = _raw_rows(a), _raw_rows(b)
    # Each raw proposal picked differently (a tie of objectness scores kept the other anchor) can
    # move one detection, or keep or suppress one more through NMS: so it may change the count by one.
    if abs(na - nb) > raw_differing:
        raise ExportVerificationError(f"the SavedModel finds {na} detections, the checkpoint {nb}, where "
                                      f"{raw_differing} raw proposals differ (tolerance {atol:g})")
    ba, bb = (np.asarray(d["detection_boxes"], np.float64).reshape(-1, 4)[:n] for d, n in ((a, na), (b, nb)))
    sa, sb = (np.asarray(d["detection_scores"], np.float64).reshape(-1)[:n] for d, n in ((a, na), (b, nb)))
    ca, cb = (np.rint(np.asarray(d["detection_classes"], np.float64).reshape(-1)[:n]) for d, n in ((a, na), (b, nb)))
    # Both are sorted by descending score, so from the same raw proposals and with equal counts the scores
    # compare row by row; where proposals differ, a detection of another score shifts the rows after it,
    # so only the detections matched below compare.
    row_by_row = na == nb and na and raw_differing == 0
    score_diff = float(np.abs(sa - sb).max()) if row_by_row else 0.0
    box_diff, unmatched, moved, moved_box, reordered = 0.0, 0, 0, 0.0, 0
    free = np.ones(nb, bool)
    for i in range(na):  # each detection is matched to an unused one of the same class and score
        near = np.flatnonzero(free & (np.abs(sb - sa[i]) <= atol) & (cb == ca[i]))
        if near.size == 0:
            unmatched += 1
            continue
        dist = np.abs(bb[near] - ba[i]).max(axis=1)
        j = int(np.argmin(dist))
        free[near[j]], d = False, float(dist[j])
        if not row_by_row:
            score_diff = max(score_diff, abs(float(sb[near[j]] - sa[i])))
        if d > atol and _tied_candidate(ba[i], sa[i], ca[i], raw_b, atol) and \
                _tied_candidate(bb[near[j]], sb[near[j]], cb[near[j]], raw_a, atol):
            # Both sides hold both boxes as raw proposals with this class score: NMS kept another of
            # two tied candidates (float noise orders near-equal scores either way; seen in CI on a
            # 2-step model: 5 of 20 detections, 1 raw proposal differing).
            reordered, moved_box = reordered + 1, max(moved_box, d)
        elif d > atol:  # its box is another proposal's: counted against the raw proposals that differ
            moved, moved_box = moved + 1, max(moved_box, d)
        else:
            box_diff = max(box_diff, d)
    unmatched = max(unmatched, int(free.sum()))  # either side's detections left without a match
    result = {"num_detections": na, "num_detections_checkpoint": nb, "max_box_diff": box_diff,
              "max_score_diff": score_diff, **raw, "detections_moved": moved, "detections_tie_kept": reordered,
              "max_moved_box_diff": moved_box,
              "detections_unmatched": unmatched, "atol": atol}
    if moved + unmatched > raw_differing or score_diff > atol:
        raise ExportVerificationError(
            f"the SavedModel's detections differ from the checkpoint's: max |box difference| "
            f"{max(box_diff, moved_box):.3g}, max |score difference| {score_diff:.3g}, {unmatched} of {max(na, nb)} "
            f"detections without a match of the same class and score, {moved} with another box where "
            f"{raw_differing} raw proposals differ (tolerance {atol:g})")
    return result


def _raw_rows(d: dict):
    """(boxes [N, 4], class scores [N, C + 1]) of the pre-NMS outputs, or None without them."""
    if "raw_detection_boxes" not in d or "raw_detection_scores" not in d:
        return None
    boxes = np.asarray(d["raw_detection_boxes"], np.float64).reshape(-1, 4)
    scores = np.asarray(d["raw_detection_scores"], np.float64)
    return boxes, scores.reshape(boxes.shape[0], -1)


def _tied_candidate(box, score, cls, raw, atol: float) -> bool:
    """Whether `raw` (from _raw_rows) holds a proposal with this box and this score for class `cls`
    (raw score column `cls`: column 0 is the background): a candidate the other side's NMS saw with
    the same score as the detection it kept instead. A raw box is its proposal's box for the best
    class, so a detection of another class is never explained this way."""
    if raw is None or not raw[0].size:
        return False
    boxes, scores = raw
    c = int(cls)
    if not 0 < c < scores.shape[1]:
        return False
    return bool(np.any((np.abs(boxes - box).max(axis=1) <= atol) & (np.abs(scores[:, c] - score) <= atol)))


def _compare_raw(a: dict, b: dict, atol: float) -> dict:
    """The pre-NMS outputs (every proposal's box and class scores) compared: they exist even when an
    undertrained model keeps no detection, so the check is never vacuous. Zeros when either side
    lacks them.

    Two runs of one model may pick different proposals where objectness scores tie to float
    precision: the graph and eager runs then keep another anchor, whose refined box differs, and which
    an undertrained model often scores the same (seen: 1 of 100 proposals 0.026 off; 3 of 32 proposals
    0.121 off, scores equal) but not always: it is another crop, so its class scores may differ too
    (seen in a fresh clone's test run, 2026-12-07: 3 of 32 proposals with another box and scores up to
    0.1 apart). A wrong export (weights, preprocessing) changes the scores of most proposals, those
    that keep their box among them, and wrong box decoding moves every box. So this raises when more
    than RAW_DIFFERING_SHARE of the proposals keep their box with other scores (`rescored`; their
    largest score difference is `max_raw_score_diff`), or more than RAW_TIED_SHARE have another box
    (`max_moved_raw_score_diff` is the largest score difference among those)."""
    raw_n, raw_box, raw_score, raw_differing, raw_rescored, moved_score = 0, 0.0, 0.0, 0, 0, 0.0
    if all(k in d for k in ("raw_detection_boxes", "raw_detection_scores") for d in (a, b)):
        rba, rbb = (np.asarray(d["raw_detection_boxes"], np.float64) for d in (a, b))
        rsa, rsb = (np.asarray(d["raw_detection_scores"], np.float64) for d in (a, b))
        if rba.shape != rbb.shape or rsa.shape != rsb.shape:
            raise ExportVerificationError(f"raw outputs differ in shape: SavedModel {rba.shape}/{rsa.shape}, "
                                          f"checkpoint {rbb.shape}/{rsb.shape}")
        raw_n = int(rba.shape[0])
        row_box = np.abs(rba - rbb).reshape(raw_n, -1).max(axis=1) if rba.size else np.zeros(0)
        row_score = np.abs(rsa - rsb).reshape(raw_n, -1).max(axis=1) if rsa.size else np.zeros(0)
        moved = row_box > atol  # another proposal: its scores are that proposal's
        raw_box = float(row_box.max()) if row_box.size else 0.0
        raw_score = float(row_score[~moved].max()) if (~moved).any() else 0.0
        moved_score = float(row_score[moved].max()) if moved.any() else 0.0
        raw_differing = int(np.count_nonzero(moved | (row_score > atol)))
        raw_rescored = int(np.count_nonzero(~moved & (row_score > atol)))
    if raw_rescored > RAW_DIFFERING_SHARE * raw_n or raw_differing > RAW_TIED_SHARE * raw_n:
        raise ExportVerificationError(
            f"the SavedModel's raw (pre-NMS) outputs differ from the checkpoint's: {raw_differing} of {raw_n} "
            f"proposals, {raw_rescored} of them with the same box and other scores, max |box difference| "
            f"{raw_box:.3g}, max |score difference| {max(raw_score, moved_score):.3g} (tolerance {atol:g}; at most "
            f"{RAW_DIFFERING_SHARE:.0%} of the proposals may keep their box with other scores, and "
            f"{RAW_TIED_SHARE:.0%} have another box)")
    return {"raw_proposals_compared": raw_n, "max_raw_box_diff": raw_box, "max_raw_score_diff": raw_score,
            "max_moved_raw_score_diff": moved_score, "raw_proposals_differing": raw_differing,
            "raw_proposals_rescored": raw_rescored}


def verify_export(version_dir: str, pipeline_config_path: str, checkpoint_dir: str, sample_rgb: np.ndarray,
                  atol: float = DEFAULT_ATOL, input_type: str | None = None) -> dict:
    """Checks the serving signature of the SavedModel in `version_dir` and compares its detections
    on `sample_rgb` with those of the checkpoint (folder or prefix) rebuilt from the pipeline
    config. `input_type` defaults to the one recorded in assets.extra/export.json, else to the one
    the signature's dtype implies. Returns the signature and the max differences."""
    import tensorflow as tf

    from synth import serving, training

    sample_rgb = np.asarray(sample_rgb)
    if sample_rgb.ndim != 3 or sample_rgb.shape[2] != 3 or sample_rgb.dtype != np.uint8:
        raise ConfigError(f"sample image has shape {sample_rgb.shape} {sample_rgb.dtype}; need RGB uint8 HxWx3")
    if not is_version_dir(version_dir):
        raise ConfigError(f"{version_dir!r} is not a SavedModel folder (no saved_model.pb)")
    prefix = checkpoint_prefix(checkpoint_dir)
    training.apply_compat_fixes()
    loaded = tf.saved_model.load(version_dir)
    if SIGNATURE_NAME not in loaded.signatures:
        raise ExportVerificationError(f"SavedModel {version_dir!r} has no {SIGNATURE_NAME!r} signature "
                                      f"(it has {sorted(loaded.signatures)})")
    fn = loaded.signatures[SIGNATURE_NAME]
    input_type = input_type or _recorded_input_type(version_dir, fn)
    report = {"input_type": input_type, **check_signature(fn, input_type)}
    served = fn(input_tensor=tf.constant(serving.input_batch([sample_rgb], input_type)))
    served = {k: v.numpy()[0] for k, v in served.items()}
    report.update(compare_detections(served, checkpoint_detections(pipeline_config_path, prefix, sample_rgb),
                                     atol))
    return report


def checkpoint_detections(pipeline_config_path: str, prefix: str, rgb: np.ndarray) -> dict:
    """The checkpoint's detections on one image, computed as exporter_lib_v2 does (classes from 1)."""
    import tensorflow as tf
    from object_detection.builders import model_builder
    from object_detection.utils import config_util

    configs = config_util.get_configs_from_pipeline_file(pipeline_config_path)
    model = model_builder.build(configs["model"], is_training=False)
    status = tf.train.Checkpoint(model=model).restore(prefix).expect_partial()
    images, shapes = model.preprocess(tf.constant(rgb[None], tf.float32))
    out = model.postprocess(model.predict(images, shapes), shapes)
    try:
        status.assert_existing_objects_matched()
    except AssertionError as exc:
        raise ConfigError(f"checkpoint {prefix!r} does not fit the model of {pipeline_config_path!r}: "
                          f"{str(exc).splitlines()[0][:300]}") from None
    result = {k: np.asarray(out[k].numpy(), np.float64)[0] for k in OUTPUT_KEYS}
    for k in ("raw_detection_boxes", "raw_detection_scores"):
        if k in out:
            result[k] = np.asarray(out[k].numpy(), np.float64)[0]
    result["detection_classes"] = result["detection_classes"] + 1  # label_id_offset, as the exporter
    return result


def _recorded_input_type(version_dir: str, fn) -> str:
    path = os.path.join(version_dir, ASSETS_EXTRA, EXPORT_INFO)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return check_input_type(json.load(f)["input_type"])
    spec = fn.structured_input_signature[1].get(INPUT_NAME)
    by_dtype = {"uint8": "image_tensor", "float32": "float_image_tensor"}
    if spec is None or spec.dtype.name not in by_dtype:
        raise ConfigError(f"cannot tell the input type of {version_dir!r} (no assets.extra/{EXPORT_INFO}); "
                          f"give it, one of {', '.join(INPUT_TYPES)}")
    return by_dtype[spec.dtype.name]


# ---------------------------------------------------------------- TF Serving's models.config

def _read_models_config(export_dir: str):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    cfg = model_server_config_pb2.ModelServerConfig()
    path = os.path.join(export_dir, MODELS_CONFIG)
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                text_format.Parse(f.read(), cfg)
        except (OSError, text_format.ParseError) as exc:
            raise ConfigError(f"{path!r} is not a TF Serving model config (ModelServerConfig text format): "
                              f"{exc}; fix or delete it") from None
    return cfg


def model_folders(export_dir: str) -> list[str]:
    """Names of the folders of `export_dir` holding at least one SavedModel version."""
    if not os.path.isdir(export_dir):
        return []
    return sorted(n for n in os.listdir(export_dir) if not n.startswith(".")
                  and any(is_version_dir(os.path.join(export_dir, n, str(v)))
                          for v in versions(os.path.join(export_dir, n))))


def write_models_config(export_dir: str) -> str:
    """Writes (or refreshes) EXPORT_DIR/models.config for TF Serving's --model_config_file;
    returns its path."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    old = _read_models_config(export_dir)
    root = os.path.abspath(export_dir)
    names = model_folders(export_dir)
    kept = {c.name: c for c in old.model_config_list.config}
    cfg = model_server_config_pb2.ModelServerConfig()
    for name in names:
        entry = cfg.model_config_list.config.add()
        if name in kept:
            entry.CopyFrom(kept[name])
        entry.name, entry.base_path, entry.model_platform = name, os.path.join(root, name), "tensorflow"
    for c in old.model_config_list.config:  # models served from elsewhere stay
        if c.name not in names and not os.path.abspath(c.base_path).startswith(root + os.sep):
            cfg.model_config_list.config.add().CopyFrom(c)
    path = os.path.join(export_dir, MODELS_CONFIG)
    try:
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write("# TF Serving model config, written by tfod-synth export_model:\n"
                    f"#   tensorflow_model_server --model_config_file={os.path.join(root, MODELS_CONFIG)}\n")
            f.write(text_format.MessageToString(cfg))
        os.replace(path + ".tmp", path)
    except OSError as exc:
        raise OutputError(f"{path!r} cannot be written: {exc.strerror}") from None
    return path


def serving_instructions(export_dir: str, model_name: str, input_type: str, rest_port: int = 8501,
                         grpc_port: int = 8500) -> str:
    """How to serve EXPORT_DIR with TF Serving and send it a request (text for the user)."""
    config = os.path.join(os.path.abspath(export_dir), MODELS_CONFIG)
    url = f"http://localhost:{rest_port}/v1/models/{model_name}:predict"
    lines = ["serve it with:",
             f"  tensorflow_model_server --port={grpc_port} --rest_api_port={rest_port} "
             f"--model_config_file={config}",
             "then send a request (REST):"]
    if input_type in ("image_tensor", "float_image_tensor"):
        zero = 0 if input_type == "image_tensor" else 0.0
        tiny = [[[[zero] * 3] * 2] * 2]  # one 2x2 black image: [1, H, W, 3]
        body = json.dumps({"signature_name": SIGNATURE_NAME, "instances": tiny})
        lines.append(f"  curl -s -X POST {url} -d '{body}'")
    elif input_type == "encoded_image_string_tensor":
        body = json.dumps({"signature_name": SIGNATURE_NAME, "instances": [{"b64": "%s"}]})
        lines.append(f"  printf '{body}' \"$(base64 -w0 photo.jpg)\" | curl -s -X POST {url} -d @-")
    lines.append(f"  python tools/serving_client.py --server=localhost:{rest_port} --model={model_name} "
                 f"--input_type={input_type} photo.jpg")
    lines.append(f"or over gRPC: python tools/serving_client.py --protocol=grpc --server=localhost:{grpc_port} "
                 f"--model={model_name} --input_type={input_type} photo.jpg")
    return "\n".join(lines)
