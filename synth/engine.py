"""One composite, from (config, split, index) to an encoded record: the unit of work that
every runner (in-process, worker processes, Apache Beam) repeats. `Engine` is the job's default
source (synth.job.DEFAULT_SOURCE), and `Composite` the record every source returns.

The composite's seed derives from (config seed, split, index) alone, so the same config
gives the same bytes whichever runner or how many workers produced it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace

import cv2
import numpy as np

from synth import (backdrops, boxes as boxes_lib, composite, dataset, logo_bank, scene, settings as settingslib,
                   tfexample)
from synth.errors import RecordError
from synth.inputs import Inputs

AUDIT = "audit"  # <work>/audit/: background-audit verdicts shared by the processes of a run
SURFACES = "surfaces"  # <work>/surfaces/: surface analyses shared by the processes of a run


@dataclass(frozen=True)
class Composite:
    source_id: str
    jpeg: bytes
    image: np.ndarray  # RGB uint8
    boxes: np.ndarray  # [N, 4] normalised ymin, xmin, ymax, xmax
    class_ids: list[int]
    class_texts: list[str]
    params: dict  # JSON-serialisable record of every sampled choice and the gate scores
    dropped_objects: int
    rejected: dict
    masks_png: list | None = None  # one PNG per object when the config asks for masks
    # Backgrounds whose pixels failed to decode while this composite was made: path -> reason
    # (the composite used the next decodable one; each process reports a failure once).
    failed_backgrounds: dict = field(default_factory=dict)


class Engine:
    """Per-process state of a run: the inputs, the realism settings, cached backdrops
    (fitted backgrounds with their surface analyses) and logos as pasted."""

    def __init__(self, inputs: Inputs, c, work_dir: str | None = None):
        """`work_dir`: a run's work folder, through which its processes share background-audit
        verdicts (`AUDIT`) and surface analyses (`SURFACES`, a backdrops.SurfaceCache)."""
        self.inputs, self.c = inputs, c
        self.settings = settingslib.Settings.from_config(c)
        cache = surfaces = None
        if work_dir is not None and self.settings.audit_on:
            from synth import audit

            cache = audit.AuditCache(os.path.join(work_dir, AUDIT))
        if work_dir is not None and self.settings.surface_on:
            surfaces = backdrops.SurfaceCache(os.path.join(work_dir, SURFACES))
        self.backdrops = backdrops.Backdrops(inputs, self.settings, audit_cache=cache, surface_cache=surfaces)
        self.bank = logo_bank.LogoBank(inputs, self.settings)
        self.bank.check_colourways()
        self._replay_backdrops = None

    def make(self, split: str, index: int) -> Composite:
        split_id = dataset.SPLIT_IDS[split]
        known = len(self.inputs.failed)  # Inputs records decode failures as it meets them
        seed = composite.image_seed(self.c.seed, split_id, index)
        # One backdrop for each run of backdrop_reuse consecutive composites (its analysis is cached).
        backdrop_seed = composite.image_seed(self.c.seed, split_id + len(dataset.SPLITS),
                                             index // self.c.backdrop_reuse)
        params, r = scene.compose(np.random.default_rng(seed), seed, self.inputs, self.backdrops, self.bank,
                                  self.settings, np.random.default_rng(backdrop_seed))
        jpeg = composite.encode_jpeg(r.image, params.jpeg_quality)
        ids = [self.inputs.logo_class_ids[i] for i in r.logo_indices]
        texts = [self.inputs.class_names[i - 1] for i in ids]
        record = {"split": split, "index": index,
                  "background": self.inputs.background_paths[params.background_index],
                  "params": params.to_json(), "boxes": r.boxes.round(6).tolist(), "class_ids": ids,
                  "scores": [{k: round(float(v), 4) for k, v in asdict(sc).items()} for sc in r.scores]}
        masks = None
        if self.c.write_masks:
            masks = [cv2.imencode(".png", (v >= boxes_lib.VISIBLE_ALPHA).astype(np.uint8))[1].tobytes()
                     for v in r.visible]
        failed = {} if len(self.inputs.failed) == known else {
            self.inputs.background_paths[i]: why for i, why in list(self.inputs.failed.items())[known:]}
        return Composite(f"{split}-{index:08d}", jpeg, r.image, r.boxes, ids, texts, record,
                         params.dropped_objects, params.rejected, masks, failed)


    def replay_scene(self, record: dict) -> tuple[scene.SceneParams, scene.SceneResult]:
        """Applies a params.jsonl record (what `make` wrote for one composite) with
        scene.render_scene: no randomness. The record must come from this config and these
        inputs (synth.replay checks the config fingerprint); its background path is checked here."""
        sid = (f"{record.get('split')}-{record['index']:08d}" if isinstance(record, dict)
               and isinstance(record.get("index"), int) else "?")
        if not isinstance(record, dict) or not isinstance(record.get("params"), dict):
            raise RecordError(f"params record {sid}: no \"params\" object")
        params = scene.SceneParams.from_json(record["params"])
        n = len(self.inputs.background_paths)
        if not 0 <= params.background_index < n:
            raise RecordError(f"params record {sid}: background_index {params.background_index} is not one of "
                              f"the {n} backgrounds the config lists now")
        now = self.inputs.background_paths[params.background_index]
        if record.get("background") != now:
            raise RecordError(f"params record {sid}: its background {record.get('background')!r} is not the "
                              f"config's background {params.background_index} now ({now!r}): the inputs changed")
        if self._replay_backdrops is None:
            # The record holds the background actually used and every placement: no audit, no surface analysis.
            quiet = replace(self.settings, audit_on=False, surface_on=False)
            self._replay_backdrops = backdrops.Backdrops(self.inputs, quiet)
        used, _, _ = self._replay_backdrops.get(params.background_index, params.fit_variant)
        if used != params.background_index:  # its pixels no longer decode: Inputs fell back to another
            raise RecordError(f"params record {sid}: its background {now!r} cannot be used now: "
                              f"{self.inputs.failed.get(params.background_index, 'skipped')}")
        return params, scene.render_scene(params, self._replay_backdrops, self.bank, self.settings)

    def replay(self, record: dict) -> bytes:
        """The JPEG bytes of the composite a params.jsonl record describes (see `replay_scene`),
        encoded with the record's jpeg_quality: the bytes `make` wrote into the shard."""
        params, r = self.replay_scene(record)
        return composite.encode_jpeg(r.image, params.jpeg_quality)


def serialize(comp: Composite) -> bytes:
    """The OD API tf.train.Example of a composite, serialised (without TensorFlow); its height and
    width are the composite's image's (sources whose images vary in size need nothing else)."""
    height, width = comp.image.shape[:2]
    return tfexample.encode_example(comp.jpeg, height, width,
                                    f"{comp.source_id.replace('-', '/', 1)}.jpg", comp.source_id,
                                    comp.boxes, comp.class_texts, comp.class_ids, comp.masks_png)
