"""configure's dataset checks: label map against the shards and the manifest, masks for Mask R-CNN."""

import json
import os
import re
import shutil

import pytest
import tensorflow as tf

from synth import config as configlib, dataset, generate, pipeline_config
from synth import tfrecord_keys as K
from synth.errors import ConfigError
from conftest import make_logo, make_workdir, write_config, write_rgba

MASK_TEMPLATE = "mask_rcnn_inception_resnet_v2_1024x1024"


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Tiny datasets generated once: plain (one class), masked (write_masks) and two_classes."""
    root = make_workdir(tmp_path_factory.mktemp("datasets"))
    write_rgba(str(root / "logos" / "beta.png"), make_logo()[:, :, [2, 1, 0, 3]])  # a blue one
    body = open(write_config(root, num_images=6)).read()
    bodies = {
        "plain": body,
        "masked": body + "write_masks: true\n",
        "two_classes": body.replace('logo { class_name: "acme" path: "logos/logo.png" }',
                                    'logo { class_name: "acme" path: "logos/logo.png" }\n'
                                    'logo { class_name: "beta" path: "logos/beta.png" }')
        .replace("max_objects: 2", "max_objects: 3"),
    }
    out = {}
    for name, text in bodies.items():
        cfg = write_config(root, body=text)
        generate.generate(configlib.load_config(cfg), str(root / name), show_progress=False)
        out[name] = str(root / name)
    return out


def copy_of(datasets, name, tmp_path) -> str:
    dst = str(tmp_path / name)
    shutil.copytree(datasets[name], dst)
    return dst


def shards(data_dir):
    return dataset.list_shards(data_dir, "train") + dataset.list_shards(data_dir, "val")


def test_consistent_dataset_configures_and_every_record_is_read(datasets, tmp_path):
    out = pipeline_config.configure("small_cpu", datasets["plain"], str(tmp_path / "run"))
    assert os.path.isfile(out)
    msg = pipeline_config.read_pipeline(pipeline_config.template_path("small_cpu"))
    scans = pipeline_config.check_dataset(msg, "small_cpu", datasets["plain"], shards(datasets["plain"]))
    assert [os.path.basename(s.path) for s in scans] == [
        "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord", "val-00000-of-00001.tfrecord"]
    assert sum(s.records for s in scans) == 6 and not any(s.truncated for s in scans)
    assert {c for s in scans for c in s.classes} == {(1, "acme")}
    assert all(len(s.unmasked) == s.records for s in scans)  # no masks in a plain dataset


def refused_with_label_map(data, label_map_text, tmp_path) -> tuple[str, str]:
    """Writes `label_map_text` as the dataset's label map; configure must refuse it. Returns
    (the label map's path, the error's text)."""
    label_map = os.path.join(data, dataset.LABEL_MAP)
    with open(label_map, "w") as f:
        f.write(label_map_text)
    with pytest.raises(ConfigError) as err:
        pipeline_config.configure("small_cpu", data, str(tmp_path / "run"))
    return label_map, str(err.value)


def test_renamed_class_in_label_map_names_the_label_map_and_the_shard(datasets, tmp_path):
    data = copy_of(datasets, "plain", tmp_path)
    label_map, text = refused_with_label_map(data, 'item { id: 1 name: "acme-renamed" }\n', tmp_path)
    assert repr(label_map) in text
    assert re.search(r"shard '.*/train-00000-of-00002\.tfrecord'", text)
    assert "class id 1 'acme'" in text and "'acme-renamed'" in text
    assert not os.path.exists(tmp_path / "run" / "pipeline.config")


def test_label_map_missing_a_class_id_of_the_shards_names_both(datasets, tmp_path):
    data = copy_of(datasets, "two_classes", tmp_path)
    found = {c for s in pipeline_config.check_dataset(pipeline_config.read_pipeline(pipeline_config.template_path("small_cpu")),
                                               "small_cpu", data, shards(data)) for c in s.classes}
    assert found == {(1, "acme"), (2, "beta")}  # the dataset really holds both classes
    label_map, text = refused_with_label_map(data, 'item { id: 1 name: "acme" }\n', tmp_path)
    assert repr(label_map) in text and "does not have (its ids: [1])" in text
    assert re.search(r"shard '.*/(train|val)-\d{5}-of-\d{5}\.tfrecord' \(record '\w+-\d{8}'\) "
                     r"holds class id 2 \('beta'\)", text)


def test_manifest_classes_disagreeing_with_the_label_map_name_both(datasets, tmp_path):
    data = copy_of(datasets, "plain", tmp_path)
    manifest = os.path.join(data, dataset.MANIFEST)
    with open(manifest) as f:
        m = json.load(f)
    m["classes"] = [{"id": 1, "name": "acme"}, {"id": 2, "name": "gone"}]
    with open(manifest, "w") as f:
        json.dump(m, f)
    with pytest.raises(ConfigError) as err:
        pipeline_config.configure("small_cpu", data, str(tmp_path / "run"))
    text = str(err.value)
    assert repr(manifest) in text and repr(os.path.join(data, dataset.LABEL_MAP)) in text
    assert "class id 2 as 'gone'" in text
    with open(manifest, "w") as f:
        f.write("{not json")
    with pytest.raises(ConfigError, match="manifest .* cannot be read as JSON"):
        pipeline_config.configure("small_cpu", data, str(tmp_path / "run"))


def test_mask_template_is_refused_for_shards_without_masks(datasets, tmp_path):
    data = copy_of(datasets, "plain", tmp_path)
    manifest = os.path.join(data, dataset.MANIFEST)
    with pytest.raises(ConfigError) as err:
        pipeline_config.configure(MASK_TEMPLATE, data, str(tmp_path / "run"))
    text = str(err.value)
    assert MASK_TEMPLATE in text and repr(manifest) in text and "set `write_masks: true`" in text
    os.remove(manifest)  # without a manifest the records themselves tell
    with pytest.raises(ConfigError) as err:
        pipeline_config.configure(MASK_TEMPLATE, data, str(tmp_path / "run"))
    text = str(err.value)
    assert re.search(r"shard '.*/train-00000-of-00002\.tfrecord' has records without instance masks "
                     r"\(image/object/mask\), e\.g\. 'train-00000000'", text)
    assert "set `write_masks: true`" in text
    assert not os.path.exists(tmp_path / "run" / "pipeline.config")


def test_mask_template_configures_with_masks(datasets, tmp_path):
    from object_detection.protos import input_reader_pb2
    from object_detection.utils import config_util

    path = pipeline_config.configure(MASK_TEMPLATE, datasets["masked"], str(tmp_path / "run"), num_steps=40)
    configs = config_util.get_configs_from_pipeline_file(path)
    assert configs["model"].faster_rcnn.num_classes == 1
    assert configs["model"].faster_rcnn.number_of_stages == 3
    for reader in [configs["train_input_config"], *configs["eval_input_configs"]]:
        assert reader.load_instance_masks and reader.mask_type == input_reader_pb2.PNG_MASKS
        assert reader.label_map_path == os.path.join(datasets["masked"], dataset.LABEL_MAP)
    assert list(configs["eval_config"].metrics_set) == ["coco_detection_metrics", "coco_mask_metrics"]
    assert not configs["eval_config"].include_metrics_per_category
    options = [o.WhichOneof("preprocessing_step") for o in configs["train_config"].data_augmentation_options]
    assert "random_horizontal_flip" not in options and "random_scale_crop_and_pad_to_square" in options
    assert pipeline_config.predicts_masks(pipeline_config.read_pipeline(path))
    for name in pipeline_config.list_templates():
        assert pipeline_config.predicts_masks(pipeline_config.read_pipeline(pipeline_config.template_path(name))) == (
            name.startswith("mask_rcnn")), name


def _write_shard(path, class_ids):
    """A shard with one record per class id (texts 'acme' for id 1, 'c<ID>' otherwise); only
    the keys the scan reads, and an image that is not even a JPEG: images are not decoded."""
    def feature(**kw):
        return tf.train.Feature(**kw)

    with tf.io.TFRecordWriter(path) as w:
        for i, cid in enumerate(class_ids):
            text = "acme" if cid == 1 else f"c{cid}"
            ex = tf.train.Example(features=tf.train.Features(feature={
                K.IMAGE_ENCODED: feature(bytes_list=tf.train.BytesList(value=[b"not an image"])),
                K.IMAGE_SOURCE_ID: feature(bytes_list=tf.train.BytesList(value=[f"rec-{i}".encode()])),
                K.CLASS_TEXT: feature(bytes_list=tf.train.BytesList(value=[text.encode()])),
                K.CLASS_LABEL: feature(int64_list=tf.train.Int64List(value=[cid])),
            }))
            w.write(ex.SerializeToString())


def test_scan_reads_at_most_the_limit_of_records(tmp_path):
    path = str(tmp_path / "train-00000-of-00001.tfrecord")
    _write_shard(path, [1, 1, 7])
    first = pipeline_config.scan_shard(path, limit=2)
    assert first.records == 2 and first.truncated and set(first.classes) == {(1, "acme")}
    pipeline_config.check_shard_classes(first, {1: "acme"}, "lm.pbtxt")  # the bad record was not read
    full = pipeline_config.scan_shard(path)
    assert full.records == 3 and not full.truncated and full.classes[(7, "c7")] == "rec-2"
    with pytest.raises(ConfigError, match=r"\(record 'rec-2'\) holds class id 7 \('c7'\), which label "
                                          r"map 'lm.pbtxt' does not have"):
        pipeline_config.check_shard_classes(full, {1: "acme"}, "lm.pbtxt")
    assert pipeline_config.records_to_read(20) == 200  # large: the first 200 of each shard
    assert pipeline_config.records_to_read(3) == 666  # 2,000 records in 3 shards: all of them
    assert pipeline_config.records_to_read(3, max_records_per_shard=None) is None
    with pytest.raises(ConfigError, match="max_records_per_shard=0 must be >= 1"):
        pipeline_config.records_to_read(3, max_records_per_shard=0)


def test_unreadable_shard_is_named(datasets, tmp_path):
    data = copy_of(datasets, "plain", tmp_path)
    bad = os.path.join(data, "val-00000-of-00001.tfrecord")
    with open(bad, "wb") as f:
        f.write(b"this is not a tfrecord file at all")
    with pytest.raises(ConfigError, match=re.escape(f"shard {bad!r} cannot be read as TFRecords")):
        pipeline_config.configure("small_cpu", data, str(tmp_path / "run"))


@pytest.mark.slow
def test_mask_template_input_pipeline_yields_scaled_masks(datasets, tmp_path):
    """The OD API's own train input function, with the Mask R-CNN template's augmentation and
    resizer, turns our PNG masks into 1024x1024 masks padded to max_number_of_boxes."""
    from synth import training

    training.apply_compat_fixes()
    from object_detection import inputs
    from object_detection.builders import model_builder
    from object_detection.core import standard_fields as fields
    from object_detection.utils import config_util

    path = pipeline_config.configure(MASK_TEMPLATE, datasets["masked"], str(tmp_path / "run"), batch_size=2)
    configs = config_util.get_configs_from_pipeline_file(path)
    model = model_builder.build(configs["model"], is_training=True)
    ds = inputs.train_input(configs["train_config"], configs["train_input_config"], configs["model"],
                            model=model)
    features, labels = next(iter(ds))
    assert tuple(features[fields.InputDataFields.image].shape) == (2, 1024, 1024, 3)
    masks = labels[fields.InputDataFields.groundtruth_instance_masks].numpy()
    assert masks.shape == (2, 20, 1024, 1024)
    n = labels[fields.InputDataFields.num_groundtruth_boxes].numpy()
    for b in range(2):
        assert n[b] >= 1 and (masks[b, :n[b]].sum(axis=(1, 2)) > 0).all() and masks[b, n[b]:].sum() == 0


def test_every_zoo_template_names_a_downloadable_checkpoint():
    from synth import download

    # small_cpu, small_cpu_headers: from scratch; *_headers: fine-tune the zoo model their comments name
    names = [n for n in pipeline_config.list_templates() if not n.startswith("small_cpu") and not n.endswith("_headers")]
    assert len(names) == 5
    for name in names:
        assert re.fullmatch(rf"{name}_coco17_(tpu|gpu)-8", download.resolve_model(name).name)
    headers = open(pipeline_config.template_path("faster_rcnn_resnet50_v1_headers")).read()
    assert "faster_rcnn_resnet50_v1_1024x1024_coco17_tpu-8" in headers
    assert download.resolve_model("faster_rcnn_resnet50_v1_1024x1024").name in headers


@pytest.mark.parametrize("template", [t for t in pipeline_config.list_templates() if not t.startswith("small_cpu")])
def test_scale_jitter_survives_the_models_resizer(template):
    """The zoo templates' augmentation, run by the OD API's preprocessor and followed by the
    model's own image resizer, still changes the size of an object in the model's input."""
    from object_detection.builders import image_resizer_builder, preprocessor_builder
    from object_detection.core import preprocessor, standard_fields as fields

    msg = pipeline_config.read_pipeline(pipeline_config.template_path(template))
    steps = [preprocessor_builder.build(o) for o in msg.train_config.data_augmentation_options]
    model = getattr(msg.model, msg.model.WhichOneof("model"))
    resize = image_resizer_builder.build(model.image_resizer)
    image = tf.zeros([1, 480, 640, 3], tf.float32)  # our composites' size
    box = tf.constant([[[0.4, 0.4, 0.6, 0.6]]], tf.float32)  # 96 x 128 px
    heights = set()
    tf.random.set_seed(0)
    for _ in range(12):
        out = preprocessor.preprocess({fields.InputDataFields.image: image,
                                       fields.InputDataFields.groundtruth_boxes: box[0],
                                       fields.InputDataFields.groundtruth_classes: tf.constant([1]),
                                       fields.InputDataFields.groundtruth_weights: tf.constant([1.0])}, steps,
                                      func_arg_map=preprocessor.get_default_func_arg_map(include_label_weights=True))
        img = out[fields.InputDataFields.image][0]
        resized, true_shape = resize(img)[:2]
        b = out[fields.InputDataFields.groundtruth_boxes].numpy()
        if len(b) == 0:
            continue  # the object was cropped away
        # boxes are normalised to the augmented image, which the resizer scales as a whole
        # into true_shape (the rest of `resized` is padding)
        heights.add(round(float(b[0, 2] - b[0, 0]) * float(true_shape[0])))
    assert max(heights) >= 1.3 * min(heights), f"{template}: object heights in the model input {sorted(heights)}"


def test_a_checkpoint_is_always_set_as_a_v2_detection_checkpoint(datasets, tmp_path):
    """A template without fine_tune_checkpoint_version (which then reads V1) still gets V2; a
    folder stands for its latest checkpoint."""
    text = open(pipeline_config.template_path("small_cpu")).read()
    assert "fine_tune_checkpoint_version: V2" in text
    template = tmp_path / "no_version.config"
    template.write_text(text.replace("fine_tune_checkpoint_version: V2", ""))
    model = tf.Module()
    model.w = tf.Variable([1.0, 2.0])
    ckpt = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt" / "ckpt"))
    for given in (ckpt, str(tmp_path / "ckpt")):
        out = pipeline_config.configure(str(template), datasets["plain"], str(tmp_path / "run"), checkpoint=given)
        tc = pipeline_config.read_pipeline(out).train_config
        assert (tc.fine_tune_checkpoint, tc.fine_tune_checkpoint_type) == (ckpt, "detection")
        from object_detection.protos import train_pb2

        assert tc.fine_tune_checkpoint_version == train_pb2.CheckpointVersion.V2


def test_checkpoints_that_detection_fine_tuning_cannot_restore_are_refused(datasets, tmp_path):
    # a name-based TF1 checkpoint (tf.compat.v1 Saver)
    tf1 = str(tmp_path / "tf1" / "model.ckpt")
    with tf.Graph().as_default():
        v = tf.compat.v1.get_variable("w", [2])
        with tf.compat.v1.Session() as sess:
            sess.run(v.initializer)
            tf.compat.v1.train.Saver().save(sess, tf1)
    # an object-based checkpoint without a `model`
    module = tf.Module()
    module.w = tf.Variable([1.0])
    other = tf.train.Checkpoint(net=module).save(str(tmp_path / "other" / "ckpt"))
    for path, why in ((tf1, "is a name-based TF1 checkpoint"), (other, "holds no 'model' object")):
        with pytest.raises(ConfigError) as err:
            pipeline_config.configure("small_cpu", datasets["plain"], str(tmp_path / "run"), checkpoint=path)
        assert repr(path) in str(err.value) and why in str(err.value)
        assert not os.path.exists(tmp_path / "run" / "pipeline.config")
