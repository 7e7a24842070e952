"""Colourways: the versions of one logo that appear in the real world.

A brand prints its logo in several colourways, and a detector trained on only the
designed one misses the others. The config lists, per logo, the colourways to use
and their weights; `sample_colourway` draws one name per object from an explicit
`np.random.Generator`, and `apply` renders it deterministically:

- ``original``: the logo as designed.
- ``inverted``: ``255 - rgb``, alpha kept (a negative print).
- ``white`` / ``black``: every pixel one solid colour, alpha kept (the silhouette); or, given the
  artwork's ink opacity (``ink_alpha``, synth.images.page_ink of artwork on a plain page), that
  opacity: a one-colour print, whose letters keep their counters and whose paper-white pattern
  inside a dark shape stays open.
- ``tint``: the artwork printed in one ink of another colour (a duotone): each pixel's luminance
  t in [0, 1] maps to ``ink + (white - ink) * t``, so the artwork's dark parts take the ink, its
  paper-white parts stay white and its inner pattern stays (a black disc with a white figure becomes
  a green, red or blue disc with the same white figure). The ink is drawn per object, one of
  TINT_HUES hues at TINT_SATURATION and TINT_VALUE (HSV), and the object's colourway records it as
  ``tint:H`` (H the hue in degrees), which `apply` renders. Artwork that is all light (white ink)
  barely changes.
- ``plate``: the logo on a rounded rectangle of the brand's colour, with a margin.
  The result is a new, larger RGBA whose plate is opaque; the corners outside the
  rounded rectangle are transparent. The plate colour defaults to
  `dominant_colour(logo)`. By default (``plate_ink="contrast"``) the logo on the
  plate is drawn in white or black, whichever differs more in luminance from the
  plate (a brand's "reversed" version), through ``ink_alpha`` when given;
  ``plate_ink="original"`` keeps its colours.

Plate geometry: margin = ``margin_frac`` x the logo's longer side (default 0.15, at
least 1 px); corner radius = ``corner_frac`` x the plate's shorter side (default
0.2); the rounded edge is anti-aliased over one pixel.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np

from synth.errors import ConfigError, InputImageError

COLOURWAYS = ("original", "inverted", "white", "black", "plate", "tint")
PLATE_INKS = ("contrast", "original")
TINT = "tint"
TINT_HUES = 12  # inks at hues 0, 30, ..., 330 degrees
TINT_SATURATION = 0.85
TINT_VALUE = 0.5  # a mid-dark ink: the artwork's white stays readable against it


def tint_name(hue_deg: int) -> str:
    """The recorded colourway of a tinted object: ``tint:H``."""
    return f"{TINT}:{int(hue_deg)}"


_TINT_HUES_DEG = tuple(i * 360 // TINT_HUES for i in range(TINT_HUES))


def tint_hues() -> tuple:
    """The hues (degrees) a tint's ink is drawn from."""
    return _TINT_HUES_DEG


def variants(name: str) -> tuple:
    """The colourways, as `apply` renders them, that the config's colourway `name` may draw: the 12
    inks of a tint (``tint:H``), or the name itself."""
    _check_name(name)
    return tuple(tint_name(h) for h in _TINT_HUES_DEG) if name == TINT else (name,)


def tint_hue(name: str):
    """The hue of a recorded tint colourway ``tint:H``, or None for any other name (``tint`` included)."""
    head, sep, tail = name.partition(":")
    if head != TINT or not sep:
        return None
    if not tail.isdigit() or int(tail) not in _TINT_HUES_DEG:
        raise ConfigError(f"colourway {name!r}: the hue after 'tint:' must be one of "
                          f"{', '.join(map(str, _TINT_HUES_DEG))}")
    return int(tail)


def tint_rgb(hue_deg: int) -> tuple[int, int, int]:
    """The ink of a tint at `hue_deg` degrees (HSV TINT_SATURATION, TINT_VALUE), as 0..255 integers."""
    r, g, b = colorsys.hsv_to_rgb((hue_deg % 360) / 360.0, TINT_SATURATION, TINT_VALUE)
    return tuple(int(round(v * 255)) for v in (r, g, b))


def _check_logo(logo_rgba: np.ndarray) -> None:
    if not (isinstance(logo_rgba, np.ndarray) and logo_rgba.dtype == np.uint8
            and logo_rgba.ndim == 3 and logo_rgba.shape[2] == 4 and min(logo_rgba.shape[:2]) > 0):
        shape = getattr(logo_rgba, "shape", None)
        dtype = getattr(logo_rgba, "dtype", None)
        raise InputImageError(f"colourway: the logo must be an RGBA uint8 HxWx4 array, got shape {shape} "
                              f"dtype {dtype}")


def _check_name(name: str) -> None:
    """A colourway name as a config gives it (``tint``, never a drawn ``tint:H``)."""
    if name not in COLOURWAYS:
        raise ConfigError(f"colourway {name!r} is unknown; valid colourways are {', '.join(COLOURWAYS)}")


def _check_rgb(rgb, what: str) -> tuple[int, int, int]:
    try:
        vals = tuple(int(v) for v in rgb)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} {rgb!r} must be three integers 0..255 (r, g, b)") from None
    if len(vals) != 3 or any(v < 0 or v > 255 for v in vals) or any(float(a) != b for a, b in zip(rgb, vals)):
        raise ConfigError(f"{what} {rgb!r} must be three integers 0..255 (r, g, b)")
    return vals


def _luminance(rgb) -> float:
    r, g, b = (float(v) for v in rgb)
    return 0.299 * r + 0.587 * g + 0.114 * b


def dominant_colour(logo_rgba: np.ndarray) -> tuple[int, int, int]:
    """The most common colour of the logo's opaque pixels (alpha >= 128).

    Colours are binned at 32 levels per channel (8 bins each); the result is the mean
    of the pixels in the fullest bin, so anti-aliased edges do not pull it off."""
    _check_logo(logo_rgba)
    rgb = logo_rgba[..., :3][logo_rgba[..., 3] >= 128]
    if rgb.size == 0:
        raise InputImageError("dominant_colour: the logo has no opaque pixels (alpha >= 128)")
    bins = (rgb[:, 0] >> 5).astype(np.int32) * 64 + (rgb[:, 1] >> 5) * 8 + (rgb[:, 2] >> 5)
    best = np.bincount(bins, minlength=512).argmax()
    mean = rgb[bins == best].mean(axis=0)
    return tuple(int(round(v)) for v in mean)


def _rounded_rect_alpha(h: int, w: int, radius: float) -> np.ndarray:
    """Opacity of a rounded rectangle filling an h x w array, anti-aliased over 1 px."""
    ys = np.arange(h, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(w, dtype=np.float32)[None, :] + 0.5
    # Distance outside the inner rectangle shrunk by the radius; <= radius means inside.
    dx = np.maximum(np.maximum(radius - xs, xs - (w - radius)), 0.0)
    dy = np.maximum(np.maximum(radius - ys, ys - (h - radius)), 0.0)
    dist = np.sqrt(dx * dx + dy * dy)
    return np.clip(radius - dist + 0.5, 0.0, 1.0).astype(np.float32)


def plate_margin(logo_hw, margin_frac: float = 0.15) -> int:
    """The plate's margin in px around a logo of (h, w): where the logo lies inside its plate."""
    return max(1, int(round(margin_frac * max(logo_hw))))


def apply(logo_rgba: np.ndarray, name: str, plate_rgb=None, *, plate_ink: str = "contrast",
          margin_frac: float = 0.15, corner_frac: float = 0.2, ink_alpha: np.ndarray | None = None) -> np.ndarray:
    """Returns the logo in colourway `name` as a new RGBA uint8 array (the input is not changed).
    `ink_alpha`: uint8 HxW opacity of the ink alone, for the one-colour colourways (white, black,
    a plate's contrast ink); None: the logo's alpha."""
    hue = tint_hue(name)  # a drawn tint, "tint:H"
    if hue is None:
        _check_name(name)
        if name == TINT:
            raise ConfigError(f"colourway {TINT!r} is drawn with its ink per object (sample_colourway): render "
                              f"'{TINT}:H', H one of {', '.join(map(str, _TINT_HUES_DEG))}")
    _check_logo(logo_rgba)
    alpha = logo_rgba[..., 3:4]
    if ink_alpha is not None:
        if not (isinstance(ink_alpha, np.ndarray) and ink_alpha.dtype == np.uint8
                and ink_alpha.shape == logo_rgba.shape[:2]):
            raise InputImageError(f"colourway: ink_alpha must be uint8 of the logo's size {logo_rgba.shape[:2]}, "
                                  f"got shape {getattr(ink_alpha, 'shape', None)} dtype "
                                  f"{getattr(ink_alpha, 'dtype', None)}")
        ink = ink_alpha[..., None]
    else:
        ink = alpha
    if hue is not None:
        t = (logo_rgba[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None] / 255.0
        ink_rgb = np.array(tint_rgb(hue), np.float32)
        out_rgb = ink_rgb + (255.0 - ink_rgb) * t
        return np.concatenate([np.clip(out_rgb + 0.5, 0, 255).astype(np.uint8), alpha], axis=-1)
    if name == "original":
        return logo_rgba.copy()
    if name == "inverted":
        return np.concatenate([255 - logo_rgba[..., :3], alpha], axis=-1)
    if name in ("white", "black"):
        out = np.empty_like(logo_rgba)
        out[..., :3] = 255 if name == "white" else 0
        out[..., 3:] = ink
        return out
    # plate
    if plate_ink not in PLATE_INKS:
        raise ConfigError(f"plate_ink {plate_ink!r} is unknown; valid values are {', '.join(PLATE_INKS)}")
    if not (0.0 <= margin_frac <= 1.0) or not math.isfinite(margin_frac):
        raise ConfigError(f"plate margin_frac {margin_frac!r} must be in [0, 1]")
    if not (0.0 <= corner_frac <= 0.5) or not math.isfinite(corner_frac):
        raise ConfigError(f"plate corner_frac {corner_frac!r} must be in [0, 0.5]")
    colour = dominant_colour(logo_rgba) if plate_rgb is None else _check_rgb(plate_rgb, "plate_rgb")
    h, w = logo_rgba.shape[:2]
    m = plate_margin((h, w), margin_frac)
    ph, pw = h + 2 * m, w + 2 * m
    out = np.zeros((ph, pw, 4), np.uint8)
    plate = np.empty((ph, pw, 3), np.float32)
    plate[...] = colour
    if plate_ink == "contrast":
        fg = np.full((h, w, 3), 0.0 if _luminance(colour) > 127.5 else 255.0, np.float32)
        a = ink.astype(np.float32) / 255.0
    else:
        fg = logo_rgba[..., :3].astype(np.float32)
        a = alpha.astype(np.float32) / 255.0
    inner = plate[m:m + h, m:m + w]
    inner[...] = fg * a + inner * (1.0 - a)
    out[..., :3] = np.clip(plate + 0.5, 0, 255).astype(np.uint8)
    out[..., 3] = np.clip(_rounded_rect_alpha(ph, pw, corner_frac * min(ph, pw)) * 255.0 + 0.5,
                          0, 255).astype(np.uint8)
    return out


def sample_colourway(rng: np.random.Generator, names, weights) -> str:
    """Draws one colourway name with probability proportional to its weight (one uniform draw); a
    ``tint`` drawn draws its ink's hue too (a second draw) and comes back as ``tint:H``."""
    names = tuple(names)
    weights = tuple(weights)
    if not names:
        raise ConfigError("colourways: the list of colourways is empty; give at least one of "
                          f"{', '.join(COLOURWAYS)}")
    for n in names:
        _check_name(n)
    if len(weights) != len(names):
        raise ConfigError(f"colourway weights {list(weights)} must have one weight per colourway "
                          f"({len(names)}: {list(names)})")
    w = np.asarray(weights, np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(f"colourway weights {list(weights)} must be finite, >= 0 and not all 0")
    positive = np.flatnonzero(w > 0)  # a zero weight is never drawn, even through rounding
    cum = np.cumsum(w[positive])
    i = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
    name = names[int(positive[min(i, positive.size - 1)])]
    if name == TINT:
        return tint_name(_TINT_HUES_DEG[int(rng.integers(TINT_HUES))])
    return name
