"""Fixtures built by small factories: a synthetic RGBA logo, textured backgrounds, configs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def make_logo(size: int = 96) -> np.ndarray:
    """An RGBA logo: a red disc with a white bar, transparent around it."""
    rgba = np.zeros((size, size, 4), np.uint8)
    c = size // 2
    cv2.circle(rgba, (c, c), c - 2, (220, 30, 30, 255), -1, cv2.LINE_AA)
    cv2.rectangle(rgba, (size // 4, c - size // 10), (3 * size // 4, c + size // 10), (255, 255, 255, 255), -1)
    return rgba


def write_rgba(path: str, rgba: np.ndarray) -> str:
    cv2.imwrite(path, cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    return path


def make_background(h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    """A photo-like scene: a few large flat surfaces (a wall, a floor, a panel) in random
    colours with a soft light gradient and camera noise."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    split_y, split_x = int(h * rng.uniform(0.45, 0.65)), int(w * rng.uniform(0.35, 0.65))
    img[:split_y, :split_x] = rng.integers(40, 220, 3)
    img[:split_y, split_x:] = rng.integers(40, 220, 3)
    img[split_y:] = rng.integers(40, 220, 3)
    img *= np.linspace(0.85, 1.1, w, dtype=np.float32)[None, :, None]
    img += rng.normal(0, 4, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def workdir(tmp_path):
    """tmp_path with logos/logo.png and backgrounds/bg{0,1,2}.jpg."""
    os.makedirs(tmp_path / "logos")
    os.makedirs(tmp_path / "backgrounds")
    write_rgba(str(tmp_path / "logos" / "logo.png"), make_logo())
    for i in range(3):
        cv2.imwrite(str(tmp_path / "backgrounds" / f"bg{i}.jpg"), make_background(seed=i))
    return tmp_path


def write_config(directory, body: str = "", num_images: int = 6, extra: str = "") -> str:
    text = body or textwrap.dedent(f"""\
        logo {{ class_name: "acme" path: "logos/logo.png" }}
        background {{ directory: "backgrounds" }}
        image_size {{ height: 128 width: 160 }}
        num_images: {num_images}
        val_fraction: 0.34
        num_train_shards: 2
        num_val_shards: 1
        seed: 3
        placement {{ min_objects: 1 max_objects: 2 min_scale: 0.15 max_scale: 0.35 }}
        """) + extra
    path = os.path.join(str(directory), "gen.config")
    with open(path, "w") as f:
        f.write(text)
    return path


def run_tool(name: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Runs tools/NAME.py in a subprocess, as a user would."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", name + ".py"), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
