"""The main job: a generation config in, sharded OD API TFRecords out.

Everything is written into a staging folder inside the output directory and moved into
place only when every shard is complete, so a failure or an interrupt never leaves
half-written shards under final names, and `overwrite=True` replaces an old dataset only
once the new one is whole.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from synth import composite, config as configlib, dataset, images, preview
from synth.errors import ConfigError, InputImageError, OutputError
from synth.label_map import label_map_text

log = logging.getLogger(__name__)


@dataclass
class Inputs:
    """Logos and backgrounds of a config, checked and ready to composite."""

    logos: list[np.ndarray]
    logo_paths: list[str]
    logo_class_ids: list[int]  # label id of each logo
    class_names: list[str]
    background_paths: list[str]
    background_shapes: list[tuple[int, int]]
    skipped: list[images.SkippedInput] = field(default_factory=list)
    cache_size: int = 32
    _cache: OrderedDict = field(default_factory=OrderedDict, repr=False)

    def background(self, index: int) -> np.ndarray:
        """Decoded background `index`, from a small least-recently-used cache."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        bg = images.load_background(self.background_paths[index])
        self._cache[index] = bg
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return bg


def load_inputs(cfg: configlib.LoadedConfig) -> Inputs:
    """Reads every logo (errors are fatal) and checks every background (bad ones are
    skipped and reported; none usable is fatal)."""
    c = cfg.proto
    names = configlib.class_names(c)
    logos, paths, ids = [], [], []
    for lg in c.logo:
        path = images.builtin_logo_path(lg.builtin) if lg.HasField("builtin") else cfg.resolve(lg.path)
        tol = lg.border_matte.tolerance if lg.HasField("border_matte") else None
        logo = images.load_logo(path, tol)
        if tol is None and logo[..., 3].min() == 255:
            log.warning("logo %s has no transparent pixel: it is pasted as an opaque rectangle "
                        "(set border_matte { } if it is artwork on a plain page)", path)
        logos.append(logo)
        paths.append(path)
        ids.append(names.index(lg.class_name) + 1)
    bg_paths, shapes, skipped = [], [], []
    for src in c.background:
        for path in images.list_background_files(src, cfg.resolve):
            try:
                shapes.append(images.load_background(path).shape[:2])
                bg_paths.append(path)
            except InputImageError as exc:
                log.warning("skipping %s", exc)
                skipped.append(images.SkippedInput(path, str(exc)))
    if not bg_paths:
        raise InputImageError(
            f"{cfg.source}: no usable background image; skipped: "
            + "; ".join(s.reason for s in skipped))
    return Inputs(logos, paths, ids, names, bg_paths, shapes, skipped)


def _check_output_dir(output_dir: str, overwrite: bool) -> None:
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise OutputError(f"output directory {output_dir!r} exists and is not a folder")
    old = dataset.existing_outputs(output_dir)
    if old and not overwrite:
        raise OutputError(
            f"output directory {output_dir!r} already holds a dataset ({os.path.basename(old[0])}"
            f"{' and %d more' % (len(old) - 1) if len(old) > 1 else ''}); choose another directory, "
            "or pass --overwrite to replace it once the new dataset is complete")


@dataclass
class Summary:
    output_dir: str
    counts: dict
    seconds: float
    skipped: list


def split_counts(c) -> dict[str, int]:
    n_val = int(round(c.num_images * c.val_fraction))
    n_train = c.num_images - n_val
    if n_train < 1:
        raise ConfigError(f"num_images = {c.num_images} with val_fraction = {c.val_fraction:g} "
                          "leaves no train image")
    return {"train": n_train, "val": n_val}


PREVIEW_IMAGES = 16


def _write_split(split, n, num_shards, cfg, inputs, staging, params_file, progress, thumbs):
    from synth import tfexample  # TensorFlow: imported only when records are written
    import tensorflow as tf

    c = cfg.proto
    out_size = (c.image_size.height, c.image_size.width)
    logo_shapes = [lg.shape[:2] for lg in inputs.logos]
    shards = max(1, min(num_shards, n))
    stats = {"images": 0, "objects": 0, "dropped_objects": 0, "images_without_objects": 0,
             "shards": []}
    for k, (start, stop) in enumerate(dataset.shard_ranges(n, shards)):
        name = dataset.shard_name(split, k, shards)
        with tf.io.TFRecordWriter(os.path.join(staging, name)) as writer:
            for index in range(start, stop):
                seed = composite.image_seed(c.seed, dataset.SPLIT_IDS[split], index)
                rng = np.random.default_rng(seed)
                p = composite.sample_image_params(rng, seed, inputs.background_shapes, logo_shapes,
                                                  out_size, c.placement)
                r = composite.render(p, inputs.background(p.background_index), inputs.logos, out_size)
                jpeg = composite.encode_jpeg(r.image, c.jpeg_quality)
                ids = [inputs.logo_class_ids[i] for i in r.logo_indices]
                texts = [inputs.class_names[i - 1] for i in ids]
                ex = tfexample.make_example(jpeg, out_size[0], out_size[1], f"{split}/{index:08d}.jpg",
                                            f"{split}-{index:08d}", r.boxes, texts, ids)
                writer.write(ex.SerializeToString())
                if thumbs is not None and len(thumbs) < PREVIEW_IMAGES:
                    thumbs.append(preview.annotate(r.image, r.boxes, texts, ids))
                params_file.write(json.dumps({
                    "split": split, "index": index, "shard": name,
                    "background": inputs.background_paths[p.background_index],
                    "params": p.to_json(), "boxes": r.boxes.round(6).tolist(), "class_ids": ids,
                    "visible_fraction": r.visible_fraction.round(4).tolist()}) + "\n")
                stats["images"] += 1
                stats["objects"] += len(ids)
                stats["dropped_objects"] += p.dropped_objects
                stats["images_without_objects"] += int(len(ids) == 0)
                if progress is not None:
                    progress.update(1)
        stats["shards"].append({"name": name, "images": stop - start})
    return stats


def generate(cfg: configlib.LoadedConfig, output_dir: str, overwrite: bool = False,
             show_progress: bool = True, write_preview: bool = False) -> Summary:
    """Generates the dataset of `cfg` into `output_dir`; see the module docstring.
    With `write_preview`, also writes preview.jpg, a contact sheet of the first train
    composites with their boxes drawn."""
    t0 = time.time()
    c = cfg.proto
    _check_output_dir(output_dir, overwrite)
    counts = split_counts(c)
    inputs = load_inputs(cfg)
    try:
        os.makedirs(output_dir, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".staging-", dir=output_dir)
    except OSError as exc:
        raise OutputError(f"output directory {output_dir!r} cannot be written: {exc.strerror}") from None
    progress = None
    if show_progress:
        from tqdm import tqdm

        progress = tqdm(total=c.num_images, unit="img", desc="composites", dynamic_ncols=True)
    try:
        split_stats = {}
        thumbs = [] if write_preview else None
        with open(os.path.join(staging, dataset.PARAMS), "w", encoding="utf-8") as pf:
            for split, num_shards in (("train", c.num_train_shards), ("val", c.num_val_shards)):
                if counts[split]:
                    split_stats[split] = _write_split(split, counts[split], num_shards, cfg, inputs,
                                                      staging, pf, progress, thumbs)
        if thumbs:
            sheet = preview.contact_sheet(thumbs)
            with open(os.path.join(staging, dataset.PREVIEW), "wb") as f:
                f.write(composite.encode_jpeg(sheet, 90))
        with open(os.path.join(staging, dataset.LABEL_MAP), "w", encoding="utf-8") as f:
            f.write(label_map_text(inputs.class_names))
        seconds = time.time() - t0
        manifest = {
            "schema_version": dataset.MANIFEST_SCHEMA_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config_source": cfg.source,
            "config": configlib.to_text(c),
            "seed": c.seed,
            "image_size": {"height": c.image_size.height, "width": c.image_size.width},
            "classes": [{"id": i + 1, "name": n} for i, n in enumerate(inputs.class_names)],
            "logos": inputs.logo_paths,
            "num_backgrounds": len(inputs.background_paths),
            "skipped_inputs": [{"path": s.path, "reason": s.reason} for s in inputs.skipped],
            "splits": split_stats,
            "seconds": round(seconds, 2),
            "package_versions": dataset.package_versions(),
        }
        with open(os.path.join(staging, dataset.MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
        # Complete: replace any old dataset, then move the new files into place.
        for old in dataset.existing_outputs(output_dir):
            os.remove(old)
        for name in sorted(os.listdir(staging)):
            os.replace(os.path.join(staging, name), os.path.join(output_dir, name))
    except OSError as exc:
        raise OutputError(f"writing the dataset to {output_dir!r} failed: {exc}; no shard was "
                          "left under a final name") from None
    finally:
        if progress is not None:
            progress.close()
        shutil.rmtree(staging, ignore_errors=True)
    return Summary(output_dir, {s: {k: v for k, v in st.items() if k != "shards"}
                                for s, st in split_stats.items()},
                   round(time.time() - t0, 2), inputs.skipped)
