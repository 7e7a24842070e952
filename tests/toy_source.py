"""A second source for tests of synth.job: each record a flat colour with one rectangle of the
inverse colour, its box known, no compositing. Importable by worker processes (tests/ is on
their sys.path), so the job can name it as "toy_source:Rectangles"."""

from __future__ import annotations

import numpy as np

from synth import composite, dataset, engine


class Rectangles:
    def __init__(self, inputs, c, work_dir):
        self.inputs, self.c = inputs, c

    def make(self, split: str, index: int) -> engine.Composite:
        c = self.c
        h, w = c.image_size.height, c.image_size.width
        rng = np.random.default_rng(composite.image_seed(c.seed, dataset.SPLIT_IDS[split], index))
        colour = rng.integers(0, 256, 3).astype(np.uint8)
        y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        y1, x1 = y0 + int(rng.integers(8, h // 2)), x0 + int(rng.integers(8, w // 2))
        image = np.empty((h, w, 3), np.uint8)
        image[:] = colour
        image[y0:y1, x0:x1] = 255 - colour
        boxes = np.array([[y0 / h, x0 / w, y1 / h, x1 / w]], np.float32)
        params = {"split": split, "index": index, "box_px": [y0, x0, y1, x1]}
        return engine.Composite(f"{split}-{index:08d}", composite.encode_jpeg(image, c.jpeg_quality), image,
                                boxes, [1], [self.inputs.class_names[0]], params, 0, {"toy: none": 1})
