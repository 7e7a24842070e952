"""Fixtures built by small factories: a synthetic RGBA logo, textured backgrounds, configs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def make_logo(size: int = 96) -> np.ndarray:
    """An RGBA logo: a red disc with a white bar, transparent around it."""
    rgba = np.zeros((size, size, 4), np.uint8)
    c = size // 2
    cv2.circle(rgba, (c, c), c - 2, (220, 30, 30, 255), -1, cv2.LINE_AA)
    cv2.rectangle(rgba, (size // 4, c - size // 10), (3 * size // 4, c + size // 10), (255, 255, 255, 255), -1)
    return rgba


def write_rgba(path: str, rgba: np.ndarray) -> str:
    cv2.imwrite(path, cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    return path


def make_background(h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    """A photo-like scene: a few large flat surfaces (a wall, a floor, a panel) in random
    colours with a soft light gradient and camera noise."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    split_y, split_x = int(h * rng.uniform(0.45, 0.65)), int(w * rng.uniform(0.35, 0.65))
    img[:split_y, :split_x] = rng.integers(40, 220, 3)
    img[:split_y, split_x:] = rng.integers(40, 220, 3)
    img[split_y:] = rng.integers(40, 220, 3)
    img *= np.linspace(0.85, 1.1, w, dtype=np.float32)[None, :, None]
    img += rng.normal(0, 4, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_cluttered(h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    """A photo with objects of their own: make_background's surfaces plus 40 discs and boxes of
    random colours, with camera noise, so that regions cut from it have edges to follow."""
    rng = np.random.default_rng(seed)
    img = make_background(h, w, seed).astype(np.float32)
    for _ in range(40):
        colour = tuple(float(v) for v in rng.integers(20, 235, 3))
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if rng.random() < 0.5:
            cv2.circle(img, c, int(rng.integers(6, 28)), colour, -1)
        else:
            cv2.rectangle(img, c, (c[0] + int(rng.integers(10, 45)), c[1] + int(rng.integers(10, 45))), colour, -1)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_disc_roi(size: int = 160, logo: int = 100, colours=((200, 60, 50), (60, 170, 90))):
    """A ROI of `size` px with a centred disc logo of diameter `logo` (two flat, unsaturated colours:
    a disc and a bar): its float32 RGB and its float32 alpha, as the light and camera stages take them."""
    rgb = np.zeros((size, size, 3), np.float32)
    alpha = np.zeros((size, size), np.float32)
    c = size // 2
    cv2.circle(alpha, (c, c), logo // 2, 1.0, -1, cv2.LINE_AA)
    cv2.circle(rgb, (c, c), logo // 2, colours[0], -1, cv2.LINE_AA)
    cv2.rectangle(rgb, (c - logo // 4, c - logo // 10), (c + logo // 4, c + logo // 10), colours[1], -1)
    return rgb, alpha


def make_workdir(root):
    """`root` (a pathlib.Path) with logos/logo.png and backgrounds/bg{0,1,2}.jpg; returns it."""
    os.makedirs(root / "logos")
    os.makedirs(root / "backgrounds")
    write_rgba(str(root / "logos" / "logo.png"), make_logo())
    for i in range(3):
        cv2.imwrite(str(root / "backgrounds" / f"bg{i}.jpg"), make_background(seed=i))
    return root


@pytest.fixture
def workdir(tmp_path):
    """tmp_path with logos/logo.png and backgrounds/bg{0,1,2}.jpg."""
    return make_workdir(tmp_path)


def write_config(directory, body: str = "", num_images: int = 6, extra: str = "") -> str:
    text = body or textwrap.dedent(f"""\
        logo {{ class_name: "acme" path: "logos/logo.png" }}
        background {{ directory: "backgrounds" }}
        image_size {{ height: 128 width: 160 }}
        num_images: {num_images}
        val_fraction: 0.34
        num_train_shards: 2
        num_val_shards: 1
        seed: 3
        placement {{ min_objects: 1 max_objects: 2 min_scale: 0.15 max_scale: 0.35 }}
        """) + extra
    path = os.path.join(str(directory), "gen.config")
    with open(path, "w") as f:
        f.write(text)
    return path


def run_tool(name: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Runs tools/NAME.py in a subprocess, as a user would."""
    # PYTHONPATH: the tools import this checkout's synth/, not whichever one the venv has installed.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", name + ".py"), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


# ---------------------------------------------------------------- a tiny exported model with a known answer

TINY_BOX = [0.1, 0.2, 0.5, 0.6]  # normalised [ymin, xmin, ymax, xmax]


def tiny_export(root, box=TINY_BOX) -> str:
    """EXPORT_DIR/tiny/1: an OD API-shaped SavedModel (serving_default takes uint8 [1, H, W, 3]) that
    finds `box` (acme, 0.9) and the whole image (scene, 0.3) in any image; its label map in
    assets.extra/label_map.pbtxt. Returns EXPORT_DIR/tiny."""
    import tensorflow as tf

    from synth.label_map import label_map_text

    class Tiny(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
        def serve(self, input_tensor):
            return {"detection_boxes": tf.constant([[list(box), [0.0, 0.0, 1.0, 1.0]]]),
                    "detection_scores": tf.constant([[0.9, 0.3]]), "detection_classes": tf.constant([[1.0, 2.0]]),
                    "num_detections": tf.constant([2.0])}

    module, path = Tiny(), os.path.join(str(root), "tiny", "1")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve.get_concrete_function()})
    os.makedirs(os.path.join(path, "assets.extra"))
    with open(os.path.join(path, "assets.extra", "label_map.pbtxt"), "w") as f:
        f.write(label_map_text(["acme", "scene"]))
    return os.path.dirname(path)


# ---------------------------------------------------------------- detection checkpoints made by tests
# The TF2 Detection Zoo cannot be reached from the tests, so a test that fine-tunes makes its own
# "detection" checkpoint: the configured pipeline's model, trained one eager step and saved as
# tf.train.Checkpoint(model=model). That is the layout model_main_tf2 writes (ckpt-N holds `model`,
# plus `step` and `optimizer`), and the one model_lib_v2.load_fine_tune_checkpoint reads: it restores
# tf.train.Checkpoint(**model.restore_from_objects("detection")), i.e. `model` holding only
# _feature_extractor_for_proposal_features and _feature_extractor_for_box_classifier_features.

def _build_detection_model(pipeline_config_path: str, is_training: bool):
    from object_detection.builders import model_builder
    from object_detection.utils import config_util

    configs = config_util.get_configs_from_pipeline_file(pipeline_config_path)
    return model_builder.build(configs["model"], is_training=is_training), configs


def first_train_batch(data_dir: str, batch_size: int) -> tuple[np.ndarray, list, list]:
    """(RGB float32 [B, H, W, 3], normalised boxes per image, class ids per image) of the first
    `batch_size` train composites that hold objects, read back with synth.tfexample.parse_example."""
    import tensorflow as tf

    from synth import dataset
    from synth.tfexample import parse_example

    images, boxes, ids = [], [], []
    for raw in tf.data.TFRecordDataset(dataset.list_shards(data_dir, "train")):
        ex = parse_example(raw.numpy())
        if ex["class_ids"]:
            bgr = cv2.imdecode(np.frombuffer(ex["encoded"], np.uint8), cv2.IMREAD_COLOR)
            images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32))
            boxes.append(ex["boxes"])
            ids.append(ex["class_ids"])
        if len(images) == batch_size:
            return np.stack(images), boxes, ids
    raise ValueError(f"{data_dir!r} holds fewer than {batch_size} train composites with objects")


def train_source_checkpoint(pipeline_config_path: str, data_dir: str, prefix: str,
                            learning_rate: float = 0.01) -> str:
    """A detection checkpoint the test trained itself: the pipeline's model (num_classes from the
    label map, as configure_pipeline set it) built with the OD API's model_builder, one eager SGD
    step on the first train composites, as model_lib_v2's eager_train_step takes one (Keras learning
    phase 1, loss from provide_groundtruth + predict + loss), saved with
    tf.train.Checkpoint(model=model).save(prefix). Returns the checkpoint's path (prefix-1)."""
    import tensorflow as tf

    model, configs = _build_detection_model(pipeline_config_path, is_training=True)
    num_classes = configs["model"].faster_rcnn.num_classes
    images, boxes, ids = first_train_batch(data_dir, configs["train_config"].batch_size)
    with warnings.catch_warnings(), tf.GradientTape() as tape:
        # learning_phase_scope is deprecated, but learning phase 1 is what eager_train_step sets.
        warnings.filterwarnings("ignore", message=".*learning_phase_scope", category=UserWarning)
        with tf.keras.backend.learning_phase_scope(1):
            model.provide_groundtruth(
                groundtruth_boxes_list=[tf.constant(b) for b in boxes],
                groundtruth_classes_list=[tf.one_hot(np.asarray(i) - 1, num_classes) for i in ids],
                groundtruth_weights_list=[tf.ones([len(i)]) for i in ids])
            preprocessed, shapes = model.preprocess(tf.constant(images))
            losses = model.loss(model.predict(preprocessed, shapes), shapes)
            total = tf.add_n(list(losses.values()))
    if not np.isfinite(total.numpy()):
        raise ValueError(f"source training step gave a non-finite loss: {losses}")
    trainable = model.trainable_variables
    grads = tape.gradient(total, trainable)
    tf.keras.optimizers.SGD(learning_rate).apply_gradients(
        [(g, v) for g, v in zip(grads, trainable) if g is not None])
    return tf.train.Checkpoint(model=model).save(prefix)


def fresh_checkpoints(pipeline_config_path: str, prefix: str) -> tuple[str, str]:
    """The pipeline's model as initialised (no training, no seed), run once on a dummy image so that
    every variable exists: (its checkpoint, as train_source_checkpoint saves one; a checkpoint of only
    what a "detection" fine_tune_checkpoint restores, the model's own restore_from_objects("detection"),
    whose keys are therefore those restored)."""
    import tensorflow as tf

    model, _ = _build_detection_model(pipeline_config_path, is_training=False)
    images, shapes = model.preprocess(tf.zeros([1, 64, 64, 3]))
    model.predict(images, shapes)
    full = tf.train.Checkpoint(model=model).save(prefix)
    restored = tf.train.Checkpoint(**model.restore_from_objects("detection")).save(prefix + "-detection-restore")
    return full, restored


def checkpoint_model_variables(prefix: str) -> dict[str, np.ndarray]:
    """{checkpoint key: value} of the `model` variables of a TF2 checkpoint, optimizer slots left out."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    return {k: reader.get_tensor(k) for k, _ in tf.train.list_variables(prefix)
            if k.startswith("model/") and k.endswith("/.ATTRIBUTES/VARIABLE_VALUE") and "/.OPTIMIZER_SLOT/" not in k}


def odapi_decoded(data_dir: str, split: str = "train") -> dict:
    """{source_id: decoded tensors} of every record of a dataset's `split`, read by the OD API's own
    input pipeline (dataset_builder + TfExampleDecoder on tf-slim, after the stack's fixes), in order."""
    from object_detection.builders import dataset_builder
    from object_detection.core import standard_fields as fields
    from object_detection.protos import input_reader_pb2

    from synth import dataset, training

    training.apply_compat_fixes()
    reader = input_reader_pb2.InputReader()
    reader.label_map_path = os.path.join(data_dir, dataset.LABEL_MAP)
    reader.shuffle = False
    reader.num_epochs = 1
    reader.num_readers = 1
    reader.tf_record_input_reader.input_path.append(dataset.shard_pattern(data_dir, split))
    return {d[fields.InputDataFields.source_id].numpy().decode(): d for d in dataset_builder.build(reader)}


def relative_difference(a: np.ndarray, reference: np.ndarray) -> float:
    """||a - reference|| / ||reference||."""
    a, reference = np.asarray(a, np.float64), np.asarray(reference, np.float64)
    return float(np.linalg.norm(a - reference) / max(np.linalg.norm(reference), 1e-30))


def pytest_collection_modifyitems(config, items):
    """The longest tests first, so that with pytest-xdist (`make test` runs two processes) the
    end-to-end test starts at once and the rest of the suite runs beside it."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") and "end_to_end" in item.nodeid else 1)


def kill_renderers_after(delay_s: float) -> None:
    """Sleeps `delay_s`, then kills every Chromium renderer process this test process started
    (a crashed renderer, as a page that crashes it would leave)."""
    import time

    import psutil

    time.sleep(delay_s)
    for p in psutil.Process().children(recursive=True):
        try:
            if "--type=renderer" in " ".join(p.cmdline()):
                p.kill()
        except psutil.Error:
            pass
