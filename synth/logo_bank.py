"""The logos as pasted: each logo in each colourway, pre-shrunk, with what the gate compares."""

from __future__ import annotations

import cv2
import numpy as np

from synth import colourway, context, curvature, gate, geometry
from synth.errors import ConfigError
from synth.inputs import Inputs
from synth.settings import Settings


class LogoBank:
    """Each logo in each colourway, pre-shrunk by powers of two (warping a 500 px logo straight
    down to 40 px aliases), with its gate.PreparedLogo; and the last few curved logos."""

    CURVED_KEPT = 16  # curved logos are drawn per object: only the most recent are kept

    def __init__(self, inputs: Inputs, settings: Settings):
        self.inputs, self.s = inputs, settings
        self._cache: dict = {}
        self._curved: dict = {}

    def get(self, logo_index: int, cw: str, width_px: float):
        base = self._colourway(logo_index, cw)
        level = 0
        while base.shape[1] / 2 ** (level + 1) >= 1.5 * width_px and min(base.shape[:2]) / 2 ** (level + 1) >= 16:
            level += 1
        key = (logo_index, cw, level)
        if key not in self._cache:
            img = base
            for _ in range(level):
                img = cv2.resize(img, (max(1, img.shape[1] // 2), max(1, img.shape[0] // 2)),
                                 interpolation=cv2.INTER_AREA)
            self._cache[key] = (img, gate.prepare_logo(img))
        return self._cache[key]

    def premultiplied(self, logo_index: int, cw: str, width_px: float) -> np.ndarray:
        """geometry.premultiply of the logo `get` returns, cached with it."""
        img = self.get(logo_index, cw, width_px)[0]
        key = ("premultiplied", id(img))
        if key not in self._cache:
            self._cache[key] = (img, geometry.premultiply(img))  # img kept alive: its id stays unique
        return self._cache[key][1]

    def curved(self, logo_index: int, cw: str, frame_width_px: float, cp: curvature.CurvatureParams):
        """(curvature.apply of the logo, its gate.PreparedLogo, its geometry.premultiply) for a curved
        frame `frame_width_px` wide on the canvas: the flat logo is chosen for the width it has
        there (the frame is narrower than the flat logo by the wrap), and a frame pasted larger
        than the artwork is drawn at the paste's size."""
        lh, lw = self._colourway(logo_index, cw).shape[:2]
        flat_width = frame_width_px * lw / curvature.frame_size(cp, (lh, lw))[1]
        flat = self.get(logo_index, cw, flat_width)[0]
        # a paste larger than the artwork: the curve enlarges it to the paste's size (one resampling)
        scale = min(curvature.MAX_SCALE, max(1.0, frame_width_px / curvature.frame_size(cp, flat.shape[:2])[1]))
        key = (id(flat), cp, scale)
        hit = self._curved.pop(key, None)
        if hit is None:
            img = curvature.apply(flat, cp, self.premultiplied(logo_index, cw, flat_width), scale)
            hit = (img, gate.prepare_logo(img), geometry.premultiply(img))
        self._curved[key] = hit  # most recent last
        while len(self._curved) > self.CURVED_KEPT:
            self._curved.pop(next(iter(self._curved)))
        return hit

    def context_colours(self, logo_index: int, cw: str) -> list:
        """context.brand_colours of the logo in colourway `cw` (the config's colour_source), cached."""
        key = (logo_index, cw, "context")
        if key not in self._cache:
            self._cache[key] = context.brand_colours(self.inputs.logos[logo_index], self._colourway(logo_index, cw),
                                                     cw, self.s.plates[logo_index], self.s.context_cfg.colour_source)
        return self._cache[key]

    def readable_side(self, logo_index: int, cw: str) -> float:
        """gate.readable_side_px of the logo in colourway `cw`: the shorter side (px) below which its
        finest structure is thinner than the gate's min_detail_px."""
        key = (logo_index, cw, "readable")
        if key not in self._cache:
            self._cache[key] = gate.readable_side_px(gate.prepare_logo(self._colourway(logo_index, cw)),
                                                     self.s.gate_cfg)
        return self._cache[key]

    def colourway_identity(self, logo_index: int, cw: str) -> float:
        """gate.colourway_identity of the logo in colourway `cw` against the logo as designed."""
        original = self.inputs.logos[logo_index]
        inner = None
        if cw == "plate":
            m = colourway.plate_margin(original.shape[:2])
            inner = (m, m, m + original.shape[0], m + original.shape[1])
        return gate.colourway_identity(original, self._colourway(logo_index, cw), inner)

    def check_colourways(self) -> None:
        """Raises ConfigError naming the logo and colourway when a colourway with a weight > 0 keeps
        less of its artwork's structure than the gate's min_colourway_identity (checked whether or not
        the gate is on: it is a check of the config, not of a composite)."""
        limit = self.s.gate_cfg.min_colourway_identity
        for li, j, cw, ident in self.refused_colourways():
            raise ConfigError(
                f"logo[{li}] ({self.inputs.class_names[self.inputs.logo_class_ids[li] - 1]!r}) "
                f"colourway[{j}] {cw!r} keeps {ident:.2f} of the artwork's structure, under "
                f"realism.gate.min_colourway_identity ({limit:g}): drawn {cw}, the logo loses the "
                "inner pattern a person recognises it by; remove that colourway (or set its weight to 0)")

    def refused_colourways(self):
        """(logo index, colourway index, name, identity) of every colourway with a weight > 0 that keeps
        less of its artwork's structure than the gate's min_colourway_identity."""
        limit = self.s.gate_cfg.min_colourway_identity
        for li, pairs in enumerate(self.s.colourways):
            for j, (cw, weight) in enumerate(pairs):
                if weight > 0 and cw != "original":
                    # every variant it may draw (each ink of a tint) must keep the artwork
                    ident = min(self.colourway_identity(li, c) for c in colourway.variants(cw))
                    if ident < limit:
                        yield li, j, cw, ident

    def _colourway(self, logo_index: int, cw: str) -> np.ndarray:
        key = (logo_index, cw, "base")
        if key not in self._cache:
            self._cache[key] = colourway.apply(self.inputs.logos[logo_index], cw, self.s.plates[logo_index],
                                               ink_alpha=self.inputs.logo_ink(logo_index))
        return self._cache[key]
