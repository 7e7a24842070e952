"""Backgrounds from a TensorFlow Datasets dataset already prepared on disk.

`background_files(src, resolve)` turns a `tfds { }` background source into image files, which
the rest of the run uses like a folder of backgrounds (header probe, audit, lazy decoding,
skipped files reported): generation workers never import TensorFlow, and every composite's
params record names the file its background came from.

The dataset is opened with tfds.builder_from_directory on DATA_DIR/NAME/[CONFIG/]VERSION/, so
no builder class is needed and nothing is ever downloaded or prepared here: a dataset that is
not prepared is an error that says how to prepare it. The split's images are read with the
image feature's decoding skipped (the stored PNG or JPEG bytes, unchanged) and written once
into CACHE_DIR/NAME/[CONFIG/]VERSION/SPLIT-KEY/ as 000000.png, 000001.jpg, ... in split
order; a `complete.json` there records the prepared files (names and sizes) it was extracted
from, and the extraction is redone only when they change. The folder is written under a
temporary name and renamed when complete, so an interrupted extraction is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile

from synth.errors import ConfigError, InputImageError

_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
MARKER = "complete.json"


def default_data_dir() -> str:
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def default_cache_dir() -> str:
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tfod-synth", "tfds")


def dataset_dir(name: str, data_dir: str) -> str:
    """DATA_DIR/NAME/[CONFIG/]VERSION of a prepared dataset (`name` is NAME[/CONFIG][:VERSION]);
    ConfigError when it is not prepared there."""
    base, _, version = name.partition(":")
    parts = [p for p in base.split("/") if p]
    if not parts or len(parts) > 2 or any(p in (".", "..") for p in parts):
        raise ConfigError(f"tfds.name {name!r} is not NAME, NAME/CONFIG or either with :VERSION")
    folder = os.path.join(data_dir, *parts)
    how = ("prepare it first (e.g. `tfds build NAME --data_dir=DATA_DIR`, or the builder's "
           "download_and_prepare()); tfod-synth never downloads or prepares datasets while generating")
    if not os.path.isdir(folder):
        raise ConfigError(f"TFDS dataset {name!r} is not prepared in data_dir {data_dir!r} (no folder "
                          f"{folder!r}); {how}")
    if version:
        if not _VERSION_RE.match(version):
            raise ConfigError(f"tfds.name {name!r}: version {version!r} is not MAJOR.MINOR.PATCH")
        chosen = version
    else:
        found = [v for v in os.listdir(folder) if _VERSION_RE.match(v)
                 and os.path.isfile(os.path.join(folder, v, "dataset_info.json"))]
        if not found:
            raise ConfigError(f"TFDS dataset {name!r} has no prepared version in {folder!r} (no VERSION/"
                              f"dataset_info.json); {how}")
        chosen = max(found, key=lambda v: tuple(int(x) for x in v.split(".")))
    path = os.path.join(folder, chosen)
    if not os.path.isfile(os.path.join(path, "dataset_info.json")):
        raise ConfigError(f"TFDS dataset {name!r} version {chosen} is not prepared in {path!r} (no "
                          f"dataset_info.json); {how}")
    return path


def _prepared_files(path: str) -> list[list]:
    return sorted([n, os.path.getsize(os.path.join(path, n))] for n in os.listdir(path)
                  if os.path.isfile(os.path.join(path, n)))


def _extension(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return ".tif"
    if data[:2] == b"BM":
        return ".bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".img"  # probed (and refused, named) like any unreadable file


def background_files(src, resolve) -> list[str]:
    """The image files of a TfdsSource message (see the module docstring)."""
    data_dir = resolve(src.data_dir) if src.data_dir else default_data_dir()
    path = dataset_dir(src.name, data_dir)
    cache_root = resolve(src.cache_dir) if src.cache_dir else default_cache_dir()
    rel = os.path.relpath(path, data_dir)
    key = hashlib.sha256(f"{os.path.abspath(path)}|{src.split}|{src.image_key}|{src.max_images}".encode()).hexdigest()
    split_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", src.split)
    out = os.path.join(cache_root, rel, f"{split_name}-{key[:12]}")
    prepared = _prepared_files(path)
    marker = os.path.join(out, MARKER)
    if os.path.isfile(marker):
        try:
            with open(marker, encoding="utf-8") as f:
                done = json.load(f)
            if done.get("prepared_files") == prepared:
                return [os.path.join(out, n) for n in done["files"]]
        except (OSError, ValueError):
            pass  # unreadable marker: extract again
    return _extract(src, path, out, prepared)


def _extract(src, path: str, out: str, prepared: list) -> list[str]:
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder_from_directory(path)
    except Exception as exc:  # noqa: BLE001  (TFDS raises many kinds for a damaged folder)
        raise ConfigError(f"TFDS dataset {src.name!r} in {path!r} cannot be opened: {exc}") from None
    base_split = src.split.split("[", 1)[0]
    if base_split not in builder.info.splits:
        raise ConfigError(f"TFDS dataset {src.name!r} has no split {base_split!r}; its splits: "
                          f"{', '.join(sorted(builder.info.splits))}")
    feature = builder.info.features[src.image_key] if src.image_key in builder.info.features.keys() else None
    if not isinstance(feature, tfds.features.Image):
        images = [k for k, v in builder.info.features.items() if isinstance(v, tfds.features.Image)]
        raise ConfigError(f"TFDS dataset {src.name!r} has no image feature {src.image_key!r} (tfds.image_key); "
                          f"its image features: {', '.join(images) or 'none'}")
    try:
        ds = builder.as_dataset(split=src.split, shuffle_files=False,
                                decoders={src.image_key: tfds.decode.SkipDecoding()})
    except Exception as exc:  # noqa: BLE001  (a bad slice, missing shards, ...)
        raise ConfigError(f"TFDS dataset {src.name!r}, split {src.split!r} cannot be read: {exc}") from None
    if src.max_images:
        ds = ds.take(src.max_images)
    parent = os.path.dirname(out)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".extract-", dir=parent)
    except OSError as exc:
        raise InputImageError(f"TFDS cache folder {parent!r} cannot be written: {exc.strerror}") from None
    try:
        files = []
        for i, ex in enumerate(ds.as_numpy_iterator()):
            data = bytes(ex[src.image_key])
            name = f"{i:06d}{_extension(data)}"
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
            files.append(name)
        if not files:
            raise ConfigError(f"TFDS dataset {src.name!r}, split {src.split!r} holds no example")
        with open(os.path.join(tmp, MARKER), "w", encoding="utf-8") as f:
            json.dump({"dataset": src.name, "dataset_dir": os.path.abspath(path), "split": src.split,
                       "image_key": src.image_key, "prepared_files": prepared, "files": files}, f)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    except OSError as exc:
        raise InputImageError(f"extracting TFDS dataset {src.name!r} into {out!r} failed: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [os.path.join(out, n) for n in files]
