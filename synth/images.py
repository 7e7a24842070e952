"""Reading logos and backgrounds, and the images that ship inside installed packages.

Logos are returned as RGBA uint8 arrays, backgrounds as RGB uint8 arrays. Every error
names the file and what is wrong with it.
"""

from __future__ import annotations

import glob as globlib
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from synth.errors import ConfigError, InputImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

# Colour photographs (and a few textures) in scikit-image's wheel: skimage/data/.
SKIMAGE_PHOTOS = (
    "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
    "motorcycle_right.png", "hubble_deep_field.jpg", "brick.png", "grass.png", "gravel.png",
)
# A logo is unusable below this many pixels on its shorter side.
MIN_LOGO_SIDE = 16
# Images above this many pixels are refused before they are decoded (a decompression bomb
# or a scan far larger than any canvas); the config's max_input_pixels overrides it.
DEFAULT_MAX_PIXELS = 60_000_000


def _skimage_data_dir() -> str:
    import skimage  # the embedded default's source; imported only when asked for

    return os.path.join(os.path.dirname(skimage.__file__), "data")


def builtin_logo_path(name: str) -> str:
    """Path of a logo that ships inside an installed package."""
    if name == "skimage:logo":
        return os.path.join(_skimage_data_dir(), "logo.png")
    raise ConfigError(f"unknown builtin logo {name!r}; available: 'skimage:logo'")


def builtin_background_paths(name: str) -> list[str]:
    if name == "skimage:photos":
        d = _skimage_data_dir()
        return [os.path.join(d, f) for f in SKIMAGE_PHOTOS]
    raise ConfigError(f"unknown builtin background source {name!r}; available: 'skimage:photos'")


def list_background_files(source, resolve) -> list[str]:
    """Files of one BackgroundSource message; `resolve` maps config-relative paths."""
    kind = source.WhichOneof("source")
    if kind == "builtin":
        return builtin_background_paths(source.builtin)
    if kind == "directory":
        d = resolve(source.directory)
        if not os.path.isdir(d):
            raise ConfigError(f"background directory {d!r} does not exist or is not a folder")
        try:
            names = sorted(os.listdir(d))
        except OSError as exc:  # e.g. permission denied: skipped and reported, not fatal
            raise InputImageError(f"background directory {d!r} cannot be read: {exc.strerror}") from None
        files = [os.path.join(d, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS)]
        if not files:
            raise ConfigError(f"background directory {d!r} holds no image files "
                              f"(looked for {', '.join(IMAGE_EXTENSIONS)})")
        return files
    if kind == "glob":
        pattern = resolve(source.glob)
        files = sorted(f for f in globlib.glob(pattern, recursive=True) if os.path.isfile(f))
        if not files:
            raise ConfigError(f"background glob {pattern!r} matches no files")
        return files
    if kind == "tfds":
        from synth import tfds_source

        return tfds_source.background_files(source.tfds, resolve)
    raise ConfigError("background { } sets none of directory, glob, builtin or tfds")


def _load_strictly(img: Image.Image) -> None:
    """img.load(), failing on a truncated file even where another library (tensorflow_datasets'
    image utilities do) has set PIL's global ImageFile.LOAD_TRUNCATED_IMAGES."""
    from PIL import ImageFile

    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        img.load()
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _open(path: str, what: str, max_pixels: int = DEFAULT_MAX_PIXELS, load: bool = True) -> Image.Image:
    if not os.path.exists(path):
        raise InputImageError(f"{what} {path!r} does not exist")
    if os.path.isdir(path):
        raise InputImageError(f"{what} {path!r} is a folder, not an image file")
    try:
        if os.path.getsize(path) == 0:
            raise InputImageError(f"{what} {path!r} is an empty (zero-byte) file")
        img = Image.open(path)
        if img.width * img.height > max_pixels:
            raise InputImageError(f"{what} {path!r} is {img.width}x{img.height} = {img.width * img.height:,} "
                                  f"pixels, above the limit of {max_pixels:,} (max_input_pixels); "
                                  "refused before decoding")
        if load:
            _load_strictly(img)
    except UnidentifiedImageError:
        raise InputImageError(f"{what} {path!r} is not an image file PIL can read") from None
    except Image.DecompressionBombError as exc:
        raise InputImageError(f"{what} {path!r} is too large to decode safely: {exc}") from None
    except PermissionError:
        raise InputImageError(f"{what} {path!r} cannot be read: permission denied") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputImageError(f"{what} {path!r} cannot be read (corrupt or truncated?): {exc}") from None
    return img


def open_image(path: str, what: str, max_pixels: int = DEFAULT_MAX_PIXELS, load: bool = True) -> Image.Image:
    """A PIL image, refused before decoding above `max_pixels` and decoded in full when `load`
    (so a truncated file fails here); InputImageError names `what` `path` and the reason."""
    return _open(path, what, max_pixels, load)


def probe_background(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(height, width) of a background from its header alone; raises InputImageError for a
    missing, empty, unrecognised or oversized file. Full decoding happens at first use."""
    img = _open(path, "background", max_pixels, load=False)
    if min(img.size) < 32:
        raise InputImageError(f"background {path!r} is {img.width}x{img.height} px; at least 32 px "
                              "on each side is needed")
    return img.height, img.width


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info) or (
        img.mode in ("RGB", "L") and "transparency" in img.info)


def _page_distance(rgb: np.ndarray):
    """(the page colour: the median of the image's border pixels, each pixel's largest channel
    difference from it)."""
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    page = np.median(border, axis=0)
    return page, np.abs(rgb.astype(np.int16) - page.astype(np.int16)).max(axis=-1)


def _soft_opacity(background: np.ndarray) -> np.ndarray:
    """float32 opacity: 0 on `background`, 1 elsewhere, softened over about one pixel next to it
    (never under 0.5 off it) so the cut-out is not jagged."""
    import cv2

    alpha = np.where(background, 0.0, 1.0).astype(np.float32)
    soft = cv2.GaussianBlur(alpha, (3, 3), 0.7)
    return np.where(background, 0.0, np.minimum(alpha, np.maximum(soft, 0.5))).astype(np.float32)


def fill_colours(rgb: np.ndarray, source: np.ndarray, target: np.ndarray, reach: float = np.inf) -> np.ndarray:
    """`rgb` with each `target` pixel given the colour of the nearest `source` pixel (within `reach`
    px; farther ones keep theirs). A copy; unchanged when `source` is empty."""
    import cv2

    out = rgb.copy()
    if not source.any() or not target.any():
        return out
    dist, labels = cv2.distanceTransformWithLabels((~source).view(np.uint8), cv2.DIST_L2, 5,
                                                   labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(source)  # DIST_LABEL_PIXEL gives each zero (source) pixel a label of its own
    index = np.zeros(int(labels.max()) + 1, np.int64)
    index[labels[ys, xs]] = np.arange(ys.size)
    move = target & (dist <= reach)
    nearest = index[labels[move]]
    out[move] = rgb[ys[nearest], xs[nearest]]
    return out


def border_matte(rgb: np.ndarray, tolerance: int) -> np.ndarray:
    """RGBA from RGB artwork on a plain page: pixels connected to the image border whose
    colour is within `tolerance` of the border's median colour become transparent; the
    edge is softened over about one pixel so the cut-out is not jagged. Page colour enclosed by
    the artwork (a letter's counter, a white pattern) stays opaque: on a plain page it cannot be
    told from white ink (`page_ink` tells the ink alone). The softened edge is un-matted: its
    pixels' colours mix the page into the ink, which their opacity already does, so they take the
    colour of the nearest fully opaque pixel within 2 px (no light halo round dark artwork)."""
    import cv2

    page, dist = _page_distance(rgb)
    near = (dist <= tolerance).astype(np.uint8)
    n, labels = cv2.connectedComponents(near, connectivity=4)
    edge_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, edge_labels[edge_labels > 0] if n > 1 else []) & (near > 0)
    alpha = _soft_opacity(background)
    rgb = fill_colours(rgb, alpha >= 1.0, (alpha > 0) & (alpha < 1.0), reach=2.0)
    return np.dstack([rgb, (alpha * 255 + 0.5).astype(np.uint8)])


def page_ink(rgb: np.ndarray, tolerance: int) -> np.ndarray:
    """uint8 opacity of the ink alone of artwork on a plain page: as `border_matte`, but every pixel
    within `tolerance` of the page colour is transparent, enclosed or not. What a one-colour print
    of the artwork covers (synth.colourway's white, black and plate silhouettes): the counters of
    letters and a white pattern inside a dark shape are paper, not ink."""
    _, dist = _page_distance(rgb)
    return (_soft_opacity(dist <= tolerance) * 255 + 0.5).astype(np.uint8)


def load_logo(path: str, matte_tolerance: int | None = None) -> np.ndarray:
    """Reads an RGBA logo (see `load_logo_and_ink`)."""
    return load_logo_and_ink(path, matte_tolerance)[0]


def load_logo_and_ink(path: str, matte_tolerance: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Reads an RGBA logo and, for artwork on a plain page (`matte_tolerance` set: `border_matte`),
    its `page_ink` opacity (None for an RGBA logo: its alpha is its ink). Refuses images without an
    alpha channel (unless `matte_tolerance` asks for a border matte), fully transparent logos and
    logos too small to be recognised. Transparent pixels take the colour of the nearest visible one,
    so that reducing the logo (which mixes neighbours' colours by their area, not their opacity)
    never mixes in a colour nobody sees: the page under a matted logo, the black of an export."""
    img = _open(path, "logo")
    ink = None
    if matte_tolerance is not None:
        if not 0 <= matte_tolerance <= 255:
            raise ConfigError(f"border_matte.tolerance = {matte_tolerance} for logo {path!r} "
                              "must be in [0, 255]")
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
        rgba = border_matte(rgb, matte_tolerance)
        ink = np.minimum(page_ink(rgb, matte_tolerance), rgba[..., 3])
    elif not _has_alpha(img):
        raise InputImageError(
            f"logo {path!r} has no alpha channel (mode {img.mode}); tfod-synth needs an RGBA logo "
            "whose transparent pixels show where the logo is not. Export it as a PNG with "
            "transparency, or, for artwork on a plain page, set border_matte { } on this logo.")
    else:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.uint8).copy()
    alpha = rgba[..., 3]
    if not np.any(alpha > 0):
        raise InputImageError(f"logo {path!r} is fully transparent: every alpha value is 0")
    ys, xs = np.nonzero(alpha > 0)
    crop = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))  # trim transparent margins
    rgba = rgba[crop]
    if min(rgba.shape[:2]) < MIN_LOGO_SIDE:
        raise InputImageError(
            f"logo {path!r} is {rgba.shape[1]}x{rgba.shape[0]} px after trimming transparent margins; "
            f"at least {MIN_LOGO_SIDE} px on the shorter side is needed to stay recognisable")
    visible = rgba[..., 3] > 0
    rgba = np.dstack([fill_colours(rgba[..., :3], visible, ~visible), rgba[..., 3]])
    return rgba, (None if ink is None else np.ascontiguousarray(ink[crop]))


def load_background(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Reads a background photo as RGB uint8 (greyscale, 16-bit, palette, CMYK and RGBA are
    converted)."""
    img = _open(path, "background", max_pixels)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        arr = (arr / max(1.0, arr.max()) * 255.0).astype(np.uint8)
        img = Image.fromarray(arr, "L")
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    if min(rgb.shape[:2]) < 32:
        raise InputImageError(f"background {path!r} is {rgb.shape[1]}x{rgb.shape[0]} px; at least 32 px "
                              "on each side is needed")
    return rgb


@dataclass(frozen=True)
class SkippedInput:
    path: str
    reason: str
