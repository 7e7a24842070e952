"""Per-composite seeds and encoding, shared by the scene engine (synth.scene) and its runners."""

from __future__ import annotations

import cv2
import numpy as np


def image_seed(base_seed: int, split_id: int, index: int) -> int:
    """The seed of one composite, derived from (base seed, split, index)."""
    ss = np.random.SeedSequence(entropy=int(base_seed), spawn_key=(int(split_id), int(index)))
    return int(ss.generate_state(1, dtype=np.uint64)[0])


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    return buf.tobytes()
