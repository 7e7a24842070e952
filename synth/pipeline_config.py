"""Filling pipeline.config templates (pipelines/*.config) for a dataset and a run.

Imports the OD API's pipeline proto (an edge module). Templates are ordinary OD API
pipeline configs whose paths say PATH_TO_BE_CONFIGURED; `configure` sets the number of
classes from the dataset's label map, the shard patterns of both splits, the label map,
the checkpoint and the steps, and writes RUN_DIR/pipeline.config.

Before writing, `configure` checks the dataset against the label map and the template
(see `check_dataset`): the class ids and texts in the shards, the manifest's classes, and
instance masks when the template's model predicts them.
"""

from __future__ import annotations

import dataclasses
import glob
import os

from google.protobuf import text_format
from google.protobuf.message import DecodeError

from synth import dataset
from synth import tfrecord_keys as K
from synth.errors import ConfigError, OutputError, read_json_object

PIPELINES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pipelines")
# How many records of each shard `check_dataset` reads (see `records_to_read`).
MAX_RECORDS_PER_SHARD = 200
SMALL_DATASET_RECORDS = 2000


def list_templates() -> list[str]:
    return sorted(os.path.splitext(os.path.basename(p))[0]
                  for p in glob.glob(os.path.join(PIPELINES_DIR, "*.config")))


def template_path(name: str) -> str:
    if os.path.isfile(name):
        return name
    path = os.path.join(PIPELINES_DIR, name + ".config")
    if not os.path.isfile(path):
        raise ConfigError(f"pipeline template {name!r} does not exist; valid templates: "
                          f"{', '.join(list_templates())} (or the path of a pipeline.config)")
    return path


def read_pipeline(path: str):
    """Parses a pipeline.config with the OD API's schema; errors name the file."""
    from object_detection.protos import pipeline_pb2

    msg = pipeline_pb2.TrainEvalPipelineConfig()
    try:
        with open(path, encoding="utf-8") as f:
            text_format.Merge(f.read(), msg)
    except OSError as exc:
        raise ConfigError(f"pipeline config {path!r} cannot be read: {exc.strerror}") from None
    except text_format.ParseError as exc:
        raise ConfigError(f"pipeline config {path!r}: {exc}") from None
    return msg


def apply_override(msg, override: str, flag: str = "--config_override"):
    """Merges `override`, a TrainEvalPipelineConfig in text format (like the OD API exporter's
    --config_override), over the pipeline `msg` in place and returns it: a value it sets replaces the
    run's, a message it names is merged field by field. Refused, naming the flag: text that does not
    parse, and lists (repeated fields), which a merge would append to the run's instead of replacing."""
    from object_detection.protos import pipeline_pb2

    part = pipeline_pb2.TrainEvalPipelineConfig()
    try:
        text_format.Merge(override, part)
    except text_format.ParseError as exc:
        raise ConfigError(f"{flag}={override!r} is not a pipeline config fragment: {exc}") from None
    lists = _repeated_fields(part)
    if lists:
        raise ConfigError(f"{flag} sets {', '.join(lists)}: a list, which an override would add to instead of "
                          "replacing; change it in the pipeline.config instead")
    switched = _switched_model(part, msg)
    if switched:
        raise ConfigError(f"{flag} sets {switched[0]}, but the pipeline has {switched[1]}: an override "
                          "changes settings of the run's model, not which model it is")
    msg.MergeFrom(part)
    return msg


def one_line(override: str | None) -> str:
    """An override fragment on one line (runs of whitespace as one space): how it is recorded, logged
    and hashed, so that the same fragment typed over several lines is the same variant."""
    return " ".join((override or "").split())


def proposals_override(n: int, flag: str = "--max_proposals") -> str:
    """The pipeline fragment that makes a Faster R-CNN keep `n` first-stage proposals and return up
    to `n` detections (per class and in all): settings that are not weights, so a model trained with
    fewer can be exported with more (pipelines/small_cpu_demo.config trains with 32 and 20)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"{flag}={n!r} must be a positive number of proposals")
    return (f"model {{ faster_rcnn {{ first_stage_max_proposals: {n} second_stage_post_processing {{ "
            f"batch_non_max_suppression {{ max_detections_per_class: {n} max_total_detections: {n} }} }} }} }}")


def _switched_model(part, msg) -> tuple[str, str] | None:
    """(the model `part` names, the pipeline's) when an override names another kind of model than the
    run's (model { ssd } over a faster_rcnn pipeline): a merge would silently drop the run's model.
    Other choices (a resizer, an optimizer) may be switched: that replaces the run's setting."""
    theirs = part.model.WhichOneof("model") if part.HasField("model") else None
    ours = msg.model.WhichOneof("model")
    if theirs and ours and theirs != ours:
        return f"model.{theirs}", f"model.{ours}"
    return None


def _repeated_fields(msg, prefix: str = "") -> list[str]:
    found = []
    for field, value in msg.ListFields():
        name = prefix + field.name
        if field.label == field.LABEL_REPEATED:
            found.append(name)
        elif field.type == field.TYPE_MESSAGE:
            found += _repeated_fields(value, name + ".")
    return found


def label_map_names(label_map_path: str) -> dict[int, str]:
    """{id: name} of a label map, read with the OD API's own label map utilities. `name`, not
    `display_name`: it is what the OD API's decoder looks class texts up by."""
    from object_detection.utils import label_map_util

    if not os.path.isfile(label_map_path):
        raise ConfigError(f"label map {label_map_path!r} does not exist")
    try:
        lm = label_map_util.load_labelmap(label_map_path)
    except Exception as exc:  # the OD API raises ParseError or ValueError
        raise ConfigError(f"label map {label_map_path!r} cannot be parsed: {exc}") from None
    return {item.id: item.name for item in lm.item}


def _model_oneof(msg):
    kind = msg.model.WhichOneof("model")
    if kind is None:
        raise ConfigError("the pipeline template has no model { } block")
    return getattr(msg.model, kind)


def predicts_masks(msg) -> bool:
    """True when a pipeline's model predicts instance masks (Mask R-CNN) or its input
    readers load them."""
    if msg.model.WhichOneof("model") == "faster_rcnn":
        bp = msg.model.faster_rcnn.second_stage_box_predictor
        if (bp.WhichOneof("box_predictor_oneof") == "mask_rcnn_box_predictor"
                and bp.mask_rcnn_box_predictor.predict_instance_masks):
            return True
    return msg.train_input_reader.load_instance_masks or any(
        er.load_instance_masks for er in msg.eval_input_reader)


# ----------------------------------------------------------------------------- dataset checks

@dataclasses.dataclass
class ShardScan:
    """What the records read from one shard hold."""

    path: str
    records: int = 0  # records read
    truncated: bool = False  # True when the shard holds more records than were read
    classes: dict = dataclasses.field(default_factory=dict)  # (id, text) -> first source_id
    unmasked: list = dataclasses.field(default_factory=list)  # source_ids without OBJECT_MASK


def records_to_read(num_shards: int, max_records_per_shard: int | None = MAX_RECORDS_PER_SHARD,
                    small_dataset: int = SMALL_DATASET_RECORDS) -> int | None:
    """Records to read per shard: max(max_records_per_shard, small_dataset // num_shards),
    so a dataset of up to `small_dataset` records in equal shards is read in full; None
    (max_records_per_shard=None) reads everything."""
    if max_records_per_shard is None:
        return None
    if max_records_per_shard < 1:
        raise ConfigError(f"max_records_per_shard={max_records_per_shard} must be >= 1 (or None: all)")
    return max(max_records_per_shard, small_dataset // max(num_shards, 1))


def scan_shard(path: str, limit: int | None = None) -> ShardScan:
    """Reads the class ids and texts and the presence of instance masks from the first
    `limit` records of a shard (all when None). Images are not decoded."""
    import tensorflow as tf

    scan = ShardScan(path)
    ds = tf.data.TFRecordDataset([path])
    if limit is not None:
        ds = ds.take(limit + 1)  # one more, to know whether the shard was read in full
    try:
        for raw in ds:
            if limit is not None and scan.records == limit:
                scan.truncated = True
                break
            f = tf.train.Example.FromString(raw.numpy()).features.feature
            sid_values = f[K.IMAGE_SOURCE_ID].bytes_list.value if K.IMAGE_SOURCE_ID in f else []
            sid = sid_values[0].decode("utf-8", "replace") if sid_values else f"record {scan.records}"
            ids = list(f[K.CLASS_LABEL].int64_list.value) if K.CLASS_LABEL in f else []
            texts = [t.decode("utf-8", "replace") for t in f[K.CLASS_TEXT].bytes_list.value] \
                if K.CLASS_TEXT in f else []
            if texts and len(texts) != len(ids):
                raise ConfigError(f"shard {path!r}, record {sid!r}: {len(ids)} class ids ({K.CLASS_LABEL}) "
                                  f"but {len(texts)} class texts ({K.CLASS_TEXT}); they must pair up")
            for i, cid in enumerate(ids):
                scan.classes.setdefault((int(cid), texts[i] if texts else None), sid)
            if K.OBJECT_MASK not in f:
                scan.unmasked.append(sid)
            scan.records += 1
    except tf.errors.OpError as exc:
        raise ConfigError(f"shard {path!r} cannot be read as TFRecords: {exc.message}") from None
    except DecodeError as exc:
        raise ConfigError(f"shard {path!r}, record {scan.records}: not a tf.train.Example ({exc})") from None
    return scan


def check_shard_classes(scan: ShardScan, names: dict[int, str], label_map_path: str) -> None:
    """Raises ConfigError naming the label map, the shard and the record when a class id of
    the shard is not in the label map, or its class text is not the label map's name for it."""
    for (cid, text), sid in sorted(scan.classes.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        if cid not in names:
            raise ConfigError(
                f"shard {scan.path!r} (record {sid!r}) holds class id {cid}"
                f"{f' ({text!r})' if text is not None else ''}, which label map {label_map_path!r} "
                f"does not have (its ids: {sorted(names)}); use the label map written with the shards")
        if text is not None and text != names[cid]:
            raise ConfigError(
                f"shard {scan.path!r} (record {sid!r}) names class id {cid} {text!r}, but label map "
                f"{label_map_path!r} names id {cid} {names[cid]!r}; the OD API's decoder looks class "
                f"texts up in the label map, so they must agree")


def check_manifest_classes(manifest: dict, manifest_path: str, names: dict[int, str],
                           label_map_path: str) -> None:
    """Raises ConfigError when the manifest's "classes" disagree with the label map."""
    classes = manifest.get("classes")
    if classes is None:
        return
    try:
        listed = {int(c["id"]): str(c["name"]) for c in classes}
    except (TypeError, KeyError, ValueError):
        raise ConfigError(f"manifest {manifest_path!r}: \"classes\" must be a list of "
                          f"{{\"id\": N, \"name\": TEXT}}, not {classes!r}") from None
    for cid in sorted(set(listed) | set(names)):
        if listed.get(cid) != names.get(cid):
            raise ConfigError(
                f"manifest {manifest_path!r} lists class id {cid} as {listed.get(cid)!r} but label map "
                f"{label_map_path!r} has {names.get(cid)!r} (None: absent); the label map must be the "
                f"one written with the shards")


def check_masks(template: str, scans: list[ShardScan], manifest: dict | None, manifest_path: str,
                data_dir: str) -> None:
    """For a template that predicts masks: raises ConfigError unless the dataset carries
    instance masks (the manifest's generation config and every record read)."""
    fix = ("set `write_masks: true` in the generation config and generate the dataset again "
           "(tools/make_tfrecords.py --overwrite), or use a Faster R-CNN template")
    what = f"template {template!r} predicts instance masks (Mask R-CNN)"
    if manifest is not None and "config" in manifest:
        from synth import config as configlib

        gen = configlib.parse_config_text(str(manifest["config"]), f"manifest {manifest_path!r} (config)")
        if not gen.write_masks:
            raise ConfigError(f"{what}, but the dataset in {data_dir!r} has no masks: the generation "
                              f"config in {manifest_path!r} has no `write_masks: true`; {fix}")
    for scan in scans:
        if scan.unmasked:
            raise ConfigError(f"{what}, but shard {scan.path!r} has records without instance masks "
                              f"({K.OBJECT_MASK}), e.g. {scan.unmasked[0]!r}; {fix}")


def read_manifest(path: str) -> dict | None:
    """The dataset's manifest.json, or None when there is none."""
    if not os.path.isfile(path):
        return None
    return read_json_object(path, "manifest")


def check_dataset(msg, template: str, data_dir: str, shards: list[str],
                  max_records_per_shard: int | None = MAX_RECORDS_PER_SHARD) -> list[ShardScan]:
    """Checks a dataset against its label map and a parsed template; returns the scans.

    What is checked, each failure a ConfigError naming the files and the bad value:
    - every class id in the shards' records is in label_map.pbtxt, and its class text is the
      label map's name for that id;
    - the manifest's "classes" (when there is a manifest) are the label map's, id for id;
    - when the template's model predicts instance masks: the manifest's generation config
      says `write_masks: true`, and every record read carries masks (image/object/mask).
    Records are parsed without decoding images. Each shard is read up to
    `records_to_read(len(shards), max_records_per_shard)` records: every record of a dataset
    of up to SMALL_DATASET_RECORDS (2,000) images in equal shards, otherwise the first
    MAX_RECORDS_PER_SHARD (200) of each shard, so a class that first appears later in a large
    shard is not seen. max_records_per_shard=None reads every record.
    """
    names = label_map_names(os.path.join(data_dir, dataset.LABEL_MAP))
    manifest = read_manifest(os.path.join(data_dir, dataset.MANIFEST))
    return _check_dataset(msg, template, data_dir, shards, max_records_per_shard, names, manifest)


def _check_dataset(msg, template, data_dir, shards, max_records_per_shard, names, manifest) -> list[ShardScan]:
    """check_dataset with the label map's names and the manifest (or None) already read."""
    label_map = os.path.join(data_dir, dataset.LABEL_MAP)
    limit = records_to_read(len(shards), max_records_per_shard)
    scans = []
    for path in shards:
        scan = scan_shard(path, limit)
        check_shard_classes(scan, names, label_map)
        scans.append(scan)
    manifest_path = os.path.join(data_dir, dataset.MANIFEST)
    if manifest is not None:
        check_manifest_classes(manifest, manifest_path, names, label_map)
    if predicts_masks(msg):
        check_masks(template, scans, manifest, manifest_path, data_dir)
    return scans


def parse_dataset_arg(text: str) -> tuple[str, float]:
    """'DIR:WEIGHT' (or 'DIR', weight 1) -> (DIR, WEIGHT); the weight a finite number > 0."""
    import math

    folder, sep, weight = text.rpartition(":")
    if not sep or not folder:
        folder, weight = text, "1"
    try:
        w = float(weight)
    except ValueError:
        raise ConfigError(f"--dataset={text!r} is not DIR:WEIGHT (the weight {weight!r} is not a number)") from None
    if not (math.isfinite(w) and w > 0):
        raise ConfigError(f"--dataset={text!r}: the weight must be a finite number > 0")
    return folder, w


@dataclasses.dataclass(frozen=True)
class DatasetUse:
    """One dataset a pipeline reads: its folder, its train weight, the split evaluation would read."""

    data_dir: str
    weight: float
    eval_split: str  # "val" when it has val shards, else "train"
    num_eval: int | None  # images of eval_split, from its manifest


def _use_dataset(msg, template, data_dir, weight, names, label_map, max_records_per_shard) -> DatasetUse:
    """Checks one dataset (shards, label map equal to `names`, classes, masks) for the pipeline."""
    if not os.path.isdir(data_dir):
        raise ConfigError(f"data directory {data_dir!r} does not exist")
    own = os.path.join(data_dir, dataset.LABEL_MAP)
    if own != label_map:
        theirs = label_map_names(own)
        if theirs != names:
            raise ConfigError(f"label map {own!r} ({theirs}) differs from {label_map!r} ({names}); datasets "
                              "trained together must share one label map (import real photos with "
                              "--label_map=the synthetic dataset's label_map.pbtxt)")
    train_shards = dataset.list_shards(data_dir, "train")
    val_shards = dataset.list_shards(data_dir, "val")
    if not train_shards and (weight > 0 or not val_shards):  # evaluation alone may read val shards only
        raise ConfigError(f"data directory {data_dir!r} holds no train-?????-of-?????.tfrecord shards; "
                          "run tools/make_tfrecords.py or tools/import_labels.py --output_dir there first")
    split = "val" if val_shards else "train"
    manifest = read_manifest(os.path.join(data_dir, dataset.MANIFEST))
    _check_dataset(msg, template, data_dir, train_shards + val_shards, max_records_per_shard, names, manifest)
    num = (manifest or {}).get("splits", {}).get(split, {}).get("images")
    return DatasetUse(data_dir, weight, split, num)


def configure(template: str, data_dir: str | None, run_dir: str, checkpoint: str | None = None,
              num_steps: int | None = None, batch_size: int | None = None,
              max_records_per_shard: int | None = MAX_RECORDS_PER_SHARD,
              datasets: list[tuple[str, float]] | None = None, eval_data_dir: str | None = None,
              config_override: str | None = None) -> str:
    """Writes RUN_DIR/pipeline.config for `template` and the dataset in `data_dir`, or the weighted
    mix `datasets` [(folder, weight), ...] (each dataset one input_path of the train input reader,
    with the OD API's sample_from_datasets_weights); returns its path. Evaluation reads the val
    shards (train shards when it has none) of `eval_data_dir`, default the first dataset. Every
    dataset is first checked against the first one's label map and the template (`check_dataset`;
    `max_records_per_shard` bounds the records read per shard). `config_override`, a pipeline
    fragment in text format (`apply_override`), is merged over the template first: a recipe variant
    (another learning rate, crop size, optimizer) without a copy of the template. The arguments above
    (num_steps, batch_size, checkpoint, the datasets) are applied after it, so they win over it; a
    decaying schedule is fitted to num_steps whichever sets it."""
    if (data_dir is None) == (not datasets):
        raise ConfigError("give either one data directory (--data_dir) or datasets with weights "
                          "(--dataset=DIR:WEIGHT, repeated)")
    sources = [(os.path.abspath(d), float(w)) for d, w in (datasets or [(data_dir, 1.0)])]
    if len({d for d, _ in sources}) != len(sources):
        raise ConfigError(f"a dataset is given twice: {[d for d, _ in sources]}")
    path = template_path(template)
    msg = read_pipeline(path)
    if config_override:
        apply_override(msg, config_override)
    label_map = os.path.join(sources[0][0], dataset.LABEL_MAP)
    names = label_map_names(label_map)
    ids = sorted(names)
    if not ids or ids != list(range(1, len(ids) + 1)):
        raise ConfigError(f"label map {label_map!r} has ids {ids}; expected 1..N without gaps")
    uses = [_use_dataset(msg, template, d, w, names, label_map, max_records_per_shard) for d, w in sources]
    eval_dir = os.path.abspath(eval_data_dir) if eval_data_dir else sources[0][0]
    ev = next((u for u in uses if u.data_dir == eval_dir), None) or _use_dataset(
        msg, template, eval_dir, 0.0, names, label_map, max_records_per_shard)
    val_split, num_val = ev.eval_split, ev.num_eval

    _model_oneof(msg).num_classes = len(ids)
    tc = msg.train_config
    if checkpoint:
        from synth.checkpoints import checkpoint_prefix

        # a TF2 object-based checkpoint holding a `model`, as fine_tune_checkpoint_type "detection" restores
        checkpoint = checkpoint_prefix(checkpoint, "--checkpoint")
        tc.fine_tune_checkpoint = os.path.abspath(checkpoint)
        tc.fine_tune_checkpoint_type = "detection"
        tc.fine_tune_checkpoint_version = 2  # V2: a TF2 object-based checkpoint (an unset field reads V1)
    else:
        tc.ClearField("fine_tune_checkpoint")  # no checkpoint: train from scratch
    if batch_size is not None:
        if batch_size < 1:
            raise ConfigError(f"--batch_size={batch_size} must be >= 1")
        tc.batch_size = batch_size
    if num_steps is not None:
        if num_steps < 1:
            raise ConfigError(f"--num_steps={num_steps} must be >= 1")
        tc.num_steps = num_steps
        _fit_schedule(tc, num_steps)
    tr = msg.train_input_reader
    tr.label_map_path = label_map
    del tr.tf_record_input_reader.input_path[:]
    tr.tf_record_input_reader.input_path.extend(dataset.shard_pattern(u.data_dir, "train") for u in uses)
    del tr.sample_from_datasets_weights[:]
    if len(uses) > 1:  # one weight per input_path: the OD API samples each record's dataset by weight
        tr.sample_from_datasets_weights.extend(u.weight for u in uses)
    if not msg.eval_input_reader:
        msg.eval_input_reader.add()
    for er in msg.eval_input_reader:
        er.label_map_path = label_map
        del er.tf_record_input_reader.input_path[:]
        er.tf_record_input_reader.input_path.append(dataset.shard_pattern(eval_dir, val_split))
    if num_val:
        msg.eval_config.num_examples = int(num_val)
    try:
        os.makedirs(run_dir, exist_ok=True)
        out = os.path.join(run_dir, "pipeline.config")
        with open(out + ".tmp", "w", encoding="utf-8") as f:
            f.write(f"# Written by tfod-synth configure_pipeline from template {os.path.basename(path)}\n")
            if config_override:
                f.write(f"# config_override: {one_line(config_override)}\n")
            for u in uses:
                f.write(f"# train: {u.data_dir}" + (f" (weight {u.weight:g})\n" if len(uses) > 1 else "\n"))
            f.write(f"# eval: {eval_dir} ({val_split} shards)\n")
            f.write(text_format.MessageToString(msg))
        os.replace(out + ".tmp", out)
    except OSError as exc:
        raise OutputError(f"run directory {run_dir!r} cannot be written: {exc}") from None
    return out


def _fit_schedule(tc, num_steps: int) -> None:
    """Keeps a decaying learning-rate schedule consistent with a changed num_steps."""
    opt = tc.optimizer.WhichOneof("optimizer")
    if opt is None:
        return
    lr = getattr(tc.optimizer, opt).learning_rate
    kind = lr.WhichOneof("learning_rate")
    if kind == "cosine_decay_learning_rate":
        c = lr.cosine_decay_learning_rate
        c.total_steps = num_steps
        c.warmup_steps = min(c.warmup_steps, num_steps // 10)
