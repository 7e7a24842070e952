"""Bad background inputs: each is skipped, counted and listed with its reason in the
manifest; none stops the run or loses finished work."""

import json
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from synth import config as configlib, generate
from synth.errors import InputImageError
from conftest import make_background, write_config


def _gen(workdir, extra="", num_images=4):
    cfg = write_config(workdir, num_images=num_images, extra=extra)
    out = workdir / "out"
    s = generate.generate(configlib.load_config(cfg), str(out), show_progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    return s, {os.path.basename(x["path"]): x["reason"] for x in manifest["skipped_inputs"]}


def _jpeg_bytes(seed=5):
    return cv2.imencode(".jpg", make_background(seed=seed))[1].tobytes()


@pytest.mark.parametrize("name, payload, reason", [
    ("zero.jpg", b"", "empty (zero-byte) file"),
    ("text.jpg", b"this is not an image\n" * 20, "not an image file"),
    ("truncated.jpg", _jpeg_bytes()[:600], "cannot be read"),
    ("garbled.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not an image file"),
])
def test_broken_files_are_skipped_and_reported(workdir, name, payload, reason):
    (workdir / "backgrounds" / name).write_bytes(payload)
    s, skipped = _gen(workdir)
    assert list(skipped) == [name] and reason in skipped[name]
    assert s.counts["train"]["images"] + s.counts["val"]["images"] == 4


def test_a_truncated_jpeg_whose_header_reads_is_skipped_when_decoded(workdir):
    """The header is fine, the pixels are not: found at first use, skipped, reported, and the
    composite uses the next background (deterministically)."""
    for p in (workdir / "backgrounds").iterdir():
        p.unlink()
    (workdir / "backgrounds" / "a_cut.jpg").write_bytes(_jpeg_bytes(1)[:2000])
    cv2.imwrite(str(workdir / "backgrounds" / "b_good.jpg"), make_background(seed=2))
    s, skipped = _gen(workdir, extra="backdrop_reuse: 1\n", num_images=10)
    assert list(skipped) == ["a_cut.jpg"] and "corrupt or truncated" in skipped["a_cut.jpg"]
    used = {json.loads(x)["background"] for x in (workdir / "out" / "params.jsonl").read_text().splitlines()}
    assert {os.path.basename(u) for u in used} == {"b_good.jpg"}


def test_an_image_above_the_pixel_limit_is_refused_before_decoding(workdir, monkeypatch):
    cv2.imwrite(str(workdir / "backgrounds" / "huge.png"), make_background(600, 800, seed=9))
    decoded = []
    real_load = Image.Image.load

    def spy(self, *a, **kw):
        decoded.append(getattr(self, "filename", ""))
        return real_load(self, *a, **kw)

    monkeypatch.setattr(Image.Image, "load", spy)
    s, skipped = _gen(workdir, extra="max_input_pixels: 100000\n")
    assert "above the limit of 100,000" in skipped["huge.png"]
    assert not any(str(f).endswith("huge.png") for f in decoded), "refused from its header, never decoded"


@pytest.mark.parametrize("mode", ["L", "I;16", "CMYK", "P", "LA", "RGBA"])
def test_unusual_pixel_formats_are_converted_not_skipped(workdir, mode):
    rgb = Image.fromarray(make_background(seed=3))
    if mode == "I;16":
        img = Image.fromarray((np.asarray(rgb.convert("L"), np.uint16) * 257), "I;16")
    elif mode == "P":
        img = rgb.convert("P", palette=Image.ADAPTIVE)
    else:
        img = rgb.convert(mode)
    ext = "tif" if mode == "CMYK" else "png"
    for p in (workdir / "backgrounds").iterdir():
        p.unlink()
    img.save(workdir / "backgrounds" / f"odd.{ext}")
    s, skipped = _gen(workdir)
    assert skipped == {}
    assert s.counts["train"]["images"] == 3


def test_an_unreadable_background_folder_is_skipped_and_reported(workdir, monkeypatch):
    os.makedirs(workdir / "locked")
    real = os.listdir

    def listdir(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "listdir", listdir)
    s, skipped = _gen(workdir, extra='background { directory: "locked" }\n')
    assert "cannot be read: Permission denied" in skipped["locked"]
    assert s.counts["train"]["images"] == 3


def test_an_unreadable_only_folder_is_an_error_naming_it(workdir, monkeypatch):
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda p=".": (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
                        if str(p).endswith("backgrounds") else real(p))
    with pytest.raises(InputImageError, match="no usable background.*backgrounds.*Permission denied"):
        _gen(workdir)
