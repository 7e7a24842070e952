"""One composite, from (config, split, index) to an encoded record: the unit of work that
every runner (in-process, worker processes, Apache Beam) repeats.

The composite's seed derives from (config seed, split, index) alone, so the same config
gives the same bytes whichever runner or how many workers produced it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth import composite, dataset
from synth.inputs import Inputs


@dataclass(frozen=True)
class Composite:
    source_id: str
    jpeg: bytes
    image: np.ndarray  # RGB uint8
    boxes: np.ndarray  # [N, 4] normalised ymin, xmin, ymax, xmax
    class_ids: list[int]
    class_texts: list[str]
    params: dict  # JSON-serialisable record of every sampled choice
    dropped_objects: int


def make_composite(inputs: Inputs, c, split: str, index: int) -> Composite:
    """Samples and renders composite `index` of `split` for GenerationConfig `c`."""
    seed = composite.image_seed(c.seed, dataset.SPLIT_IDS[split], index)
    rng = np.random.default_rng(seed)
    out_size = (c.image_size.height, c.image_size.width)
    p = composite.sample_image_params(rng, seed, inputs.background_shapes,
                                      [lg.shape[:2] for lg in inputs.logos], out_size, c.placement)
    used, bg = inputs.background(p.background_index)
    if used != p.background_index:  # that file failed to decode; refit to the substitute
        p = composite.sample_image_params(np.random.default_rng(seed), seed,
                                          [inputs.background_shapes[used]],
                                          [lg.shape[:2] for lg in inputs.logos], out_size, c.placement)
        p = composite.ImageParams(**{**p.__dict__, "background_index": used})
    r = composite.render(p, bg, inputs.logos, out_size)
    jpeg = composite.encode_jpeg(r.image, c.jpeg_quality)
    ids = [inputs.logo_class_ids[i] for i in r.logo_indices]
    texts = [inputs.class_names[i - 1] for i in ids]
    params = {"split": split, "index": index, "background": inputs.background_paths[used],
              "params": p.to_json(), "boxes": r.boxes.round(6).tolist(), "class_ids": ids,
              "visible_fraction": r.visible_fraction.round(4).tolist()}
    return Composite(f"{split}-{index:08d}", jpeg, r.image, r.boxes, ids, texts, params,
                     p.dropped_objects)


def serialize(comp: Composite, c) -> bytes:
    """The OD API tf.train.Example of a composite, serialised (imports TensorFlow)."""
    from synth import tfexample

    ex = tfexample.make_example(comp.jpeg, c.image_size.height, c.image_size.width,
                                f"{comp.source_id.replace('-', '/', 1)}.jpg", comp.source_id,
                                comp.boxes, comp.class_texts, comp.class_ids)
    return ex.SerializeToString()
