"""The on-disk contract of a generated dataset: shard names, label map, manifest.

    OUTPUT_DIR/
      train-00000-of-00004.tfrecord ...   sharded tf.train.Example records (OD API format)
      val-00000-of-00001.tfrecord
      label_map.pbtxt                     class ids from 1, in config order
      manifest.json                       counts, seed, config, package versions (schema below)
      params.jsonl                        one line per composite: its seed and sampled parameters (synth.replay)
      preview.jpg                         with --preview: a contact sheet of composites and boxes
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from importlib import metadata

MANIFEST_SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
LABEL_MAP = "label_map.pbtxt"
PARAMS = "params.jsonl"
PREVIEW = "preview.jpg"
SPLITS = ("train", "val")
SPLIT_IDS = {"train": 0, "val": 1}
SHARD_RE = re.compile(r"^(train|val)-(\d{5})-of-(\d{5})\.tfrecord$")


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def shard_pattern(data_dir: str, split: str) -> str:
    """Glob of a split's shards, as the OD API's input_path accepts it."""
    return os.path.join(data_dir, f"{split}-?????-of-?????.tfrecord")


def shard_ranges(n: int, shards: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) image ranges, one per shard."""
    return [(k * n // shards, (k + 1) * n // shards) for k in range(shards)]


def existing_outputs(output_dir: str) -> list[str]:
    """Files in `output_dir` that a generation run would write."""
    if not os.path.isdir(output_dir):
        return []
    found = [n for n in sorted(os.listdir(output_dir))
             if SHARD_RE.match(n) or n in (MANIFEST, LABEL_MAP, PARAMS, PREVIEW)]
    return [os.path.join(output_dir, n) for n in found]


def list_shards(data_dir: str, split: str) -> list[str]:
    return sorted(glob.glob(shard_pattern(data_dir, split)))


def shards_digest(data_dir: str) -> str:
    """SHA-256 over every shard of both splits and the label map, name and bytes, in name order: two
    folders with the same digest hold the same composites byte for byte (generation with one worker is
    deterministic), so a record can say which composites a model was trained on without copying them."""
    paths = [p for split in SPLITS for p in list_shards(data_dir, split)]
    if not paths:
        raise FileNotFoundError(f"{data_dir}: no train-NNNNN-of-NNNNN.tfrecord or val shards to digest")
    label_map = os.path.join(data_dir, LABEL_MAP)
    if os.path.isfile(label_map):
        paths.append(label_map)
    h = hashlib.sha256()
    for p in paths:
        h.update(f"{os.path.basename(p)}\0{os.path.getsize(p)}\0".encode())
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    out = {}
    for name in ("tfod-synth", "tensorflow", "numpy", "opencv-python-headless", "pillow",
                 "protobuf", "tf-models-research-object-detection", "scikit-image"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
