"""Structure of an artwork, as a reader sees it: the gradient-field comparison behind the gate's
`match` (synth.gate), the artwork's readable width (`fine_width`) and how much of an artwork a
colourway keeps (`colourway_identity`). Pure functions over CIELAB float32 arrays (L in 0..100)
with an alpha channel in [0, 1].

`structure_score(ref_g, img_g, regions)`: over the outline band and the interior of a silhouette
(`regions`), the normalised correlation r of two gradient fields (unsigned: an outline steps up or
down with what surrounds it, a logo printed inverted is still the logo; the larger of all three
CIELAB channels' and of lightness alone), squared: the share of the reference's structure the
image explains; the mean of the band's and the interior's, or the band's alone when the interior
holds under INTERIOR_SHARE of the reference's gradient energy (a flat shape).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from synth.boxes import VISIBLE_ALPHA
from synth.errors import InputImageError
from synth.pixels import channel_sum

DETAIL_GRID = 256  # fine_width's grid: readable widths run to ~80 px, compared at 4x that
MARGIN_PX = 6  # px around the working logo: the outline band plus the gradients' reach
BAND_PX = 2  # the outline band: within this many px of the silhouette
GRAD_SIGMA = 0.8  # px, smoothing before the gradients (noise and JPEG blocks)
READ_RATIO = 4.0  # fine_width compares a rendering with one this many times wider
RETAIN = 0.5  # the structure score a reduced artwork keeps at its readable width
MIN_ENERGY = 1e-6
INTERIOR_SHARE = 0.1  # an interior with less of the reference's gradient energy has no pattern
MID_GREY = (50.0, 0.0, 0.0)  # CIELAB
MAX_WORK_SIDE = 160  # match works at the rendered size up to this: structure a reader uses is coarser


def check_logo(logo_rgba, what: str) -> None:
    if not (isinstance(logo_rgba, np.ndarray) and logo_rgba.dtype == np.uint8 and logo_rgba.ndim == 3
            and logo_rgba.shape[2] == 4 and min(logo_rgba.shape[:2]) > 0):
        raise InputImageError(f"{what} must be RGBA uint8 HxWx4, got shape {getattr(logo_rgba, 'shape', None)}")


def lab_alpha(rgb01: np.ndarray, alpha01: np.ndarray) -> np.ndarray:
    return cv2.merge([cv2.cvtColor(rgb01, cv2.COLOR_RGB2Lab), alpha01])


def over(lab_alpha: np.ndarray, under) -> np.ndarray:
    """CIELAB colours of the artwork drawn over `under` (a CIELAB colour or an HxWx3 image)."""
    if isinstance(under, np.ndarray) and under.dtype == np.float32 and under.shape == lab_alpha.shape[:2] + (3,):
        # per plane (numpy broadcasting over a last axis of 3 is several times slower): the same bits
        l, p, q, a = cv2.split(lab_alpha)
        u0, u1, u2 = cv2.split(under)
        b = 1.0 - a
        return cv2.merge([l * a + u0 * b, p * a + u1 * b, q * a + u2 * b])
    a = lab_alpha[..., 3:4]
    return lab_alpha[..., :3] * a + np.asarray(under, np.float32) * (1.0 - a)


def fine_width(lab_alpha: np.ndarray) -> float:
    """The artwork's effective finest structure, in px of `lab_alpha` (CIELAB + alpha): 2 px times
    its width over its readable width, the narrowest width (in steps of 2^(1/4), from 8 px) at which
    the artwork drawn over mid grey, reduced to it (INTER_AREA) and enlarged back (bilinear), keeps
    at least RETAIN of the structure it has at READ_RATIO times that width (the structure score of
    `match`, on a grid of the artwork at most DETAIL_GRID px long). So a paste at the readable
    width has a detail_px of 2: what is finer than that width resolves is what a person loses
    first; thin decorations that carry little of the artwork's edge energy do not decide it,
    letters and inner shapes do."""
    h, w = lab_alpha.shape[:2]
    s = min(1.0, DETAIL_GRID / max(h, w))
    size = (max(2, int(round(w * s))), max(2, int(round(h * s))))
    work = cv2.resize(lab_alpha, size, interpolation=cv2.INTER_AREA) if s < 1.0 else lab_alpha
    m = MARGIN_PX
    ref = cv2.copyMakeBorder(over(work, MID_GREY), m, m, m, m, cv2.BORDER_CONSTANT, value=MID_GREY)
    alpha = cv2.copyMakeBorder(np.ascontiguousarray(work[..., 3]), m, m, m, m, cv2.BORDER_CONSTANT, value=0)
    regions = band_and_interior(alpha, np.ones(alpha.shape, bool))
    full = (ref.shape[1], ref.shape[0])

    def at(width):  # the artwork rendered `width` px wide, enlarged back onto the working grid
        f = min(1.0, width / size[0])
        if f >= 1.0:
            return ref
        small = cv2.resize(ref, (max(1, int(round(full[0] * f))), max(1, int(round(full[1] * f)))),
                           interpolation=cv2.INTER_AREA)
        return cv2.resize(small, full, interpolation=cv2.INTER_LINEAR)

    width = 8.0
    while width < size[0]:
        # against the artwork at READ_RATIO x that width: what a reader would see close up, so that
        # the answer does not depend on the resolution the artwork was supplied at
        if structure_score(gradients(at(READ_RATIO * width)), gradients(at(width)), regions) >= RETAIN:
            break
        width *= 2.0 ** 0.25
    return 2.0 * w / (width if width < size[0] else w)  # never readable below its own size: that size


def gradients(lab: np.ndarray):
    sm = cv2.GaussianBlur(lab, (0, 0), GRAD_SIGMA)
    return (cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=3, scale=0.125),
            cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=3, scale=0.125))


def band_and_interior(alpha: np.ndarray, keep: np.ndarray):
    """(outline band, interior) masks of `keep`: within BAND_PX of the silhouette, and inside it."""
    opaque = (alpha >= VISIBLE_ALPHA).view(np.uint8)
    k = np.ones((2 * BAND_PX + 1, 2 * BAND_PX + 1), np.uint8)
    inner = cv2.erode(opaque, k, borderType=cv2.BORDER_CONSTANT, borderValue=0).view(bool)
    outer = cv2.dilate(opaque, k).view(bool)
    return outer & ~inner & keep, inner & keep


def _ratio(ab: float, aa: float, bb: float) -> float:
    """|ab| / sqrt(aa bb): a normalised correlation from its sums, without its sign (an outline
    steps up or down with what surrounds it; a logo printed inverted is still the logo)."""
    den = math.sqrt(aa * bb)
    return abs(ab) / den if den > MIN_ENERGY else 0.0


def structure_score(ref_g, img_g, regions, magnitudes: bool = False) -> float:
    """The score described in the module docstring, over `regions` (band, interior) of two gradient
    fields ((gx, gy) pairs of HxWx3 arrays); with `magnitudes`, r is the Pearson correlation of the
    gradient magnitudes instead (where an edge is, whichever colour steps across it)."""
    (rx, ry), (ix, iy) = ref_g, img_g
    if magnitudes:
        maps = None
    else:  # per-pixel dot products and energies, all channels and lightness alone
        rr_l, ii_l, ri_l = (rx[..., 0] * rx[..., 0] + ry[..., 0] * ry[..., 0],
                            ix[..., 0] * ix[..., 0] + iy[..., 0] * iy[..., 0],
                            rx[..., 0] * ix[..., 0] + ry[..., 0] * iy[..., 0])
        maps = np.stack([channel_sum(rx * rx + ry * ry), channel_sum(ix * ix + iy * iy),
                         channel_sum(rx * ix + ry * iy), rr_l, ii_l, ri_l], axis=-1)
    scores, energies = [], []
    for m in regions:
        if np.count_nonzero(m) < 4:
            scores.append(0.0)
            energies.append(0.0)
            continue
        if maps is not None:
            rr, ii, ri, rr_l, ii_l, ri_l = (float(v) for v in maps[m].sum(axis=0))
            if rr < MIN_ENERGY:
                scores.append(0.0)
                energies.append(0.0)
                continue
            r = max(_ratio(ri, rr, ii), _ratio(ri_l, rr_l, ii_l))  # or in lightness alone: a relit or
            scores.append(r * r)  # desaturated logo keeps its L structure
            energies.append(rr)
            continue
        e_ref = float((rx[m] ** 2 + ry[m] ** 2).sum())
        if e_ref < MIN_ENERGY:
            scores.append(0.0)
            energies.append(0.0)
            continue
        a = np.sqrt((rx[m] ** 2 + ry[m] ** 2).sum(axis=1))
        b = np.sqrt((ix[m] ** 2 + iy[m] ** 2).sum(axis=1))
        a, b = a - a.mean(), b - b.mean()
        r = _ratio(float((a * b).sum()), float((a * a).sum()), float((b * b).sum()))
        scores.append(r * r)
        energies.append(e_ref)
    total = sum(energies)
    if total <= 0:
        return 0.0
    if energies[1] < INTERIOR_SHARE * total:
        return scores[0] if energies[0] > 0 else 0.0
    if energies[0] <= 0:
        return scores[1]
    return 0.5 * (scores[0] + scores[1])


def colourway_identity(original_rgba: np.ndarray, colourway_rgba: np.ndarray, inner=None) -> float:
    """How much of the original artwork's structure a colourway of it keeps, in [-1, 1]: both drawn
    over mid grey at most MAX_WORK_SIDE px long, the energy-weighted Pearson correlation (outline
    band and interior, as `match`) of their gradient magnitudes, which ignores which way an edge
    steps (an inverted or white version steps the other way) but not where edges are. Both are
    reduced with premultiplied colour, so the colour of transparent pixels (the page under a matted
    artwork, black or white in an export) never enters. `inner`:
    (y0, x0, y1, x1) of the artwork inside the colourway image (a plate's margin); default all."""
    check_logo(original_rgba, "colourway_identity: the original")
    check_logo(colourway_rgba, "colourway_identity: the colourway")
    if inner is not None:
        y0, x0, y1, x1 = inner
        colourway_rgba = colourway_rgba[y0:y1, x0:x1]
    if colourway_rgba.shape[:2] != original_rgba.shape[:2]:
        raise InputImageError(f"colourway_identity: the colourway's artwork is {colourway_rgba.shape[:2]}, the "
                              f"original {original_rgba.shape[:2]}; they must be the same size")
    h, w = original_rgba.shape[:2]
    s = min(1.0, MAX_WORK_SIDE / max(h, w))
    size = (max(2, int(round(w * s))), max(2, int(round(h * s))))
    m = MARGIN_PX

    def drawn(rgba):  # reduced with premultiplied colour: a transparent pixel's colour never shows
        a = rgba[..., 3:4].astype(np.float32) * np.float32(1.0 / 255.0)
        pre = cv2.resize(rgba[..., :3].astype(np.float32) * (a * np.float32(1.0 / 255.0)), size,
                         interpolation=cv2.INTER_AREA)
        a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
        rgb = np.clip(pre / np.maximum(a, 1e-6)[..., None], 0.0, 1.0).astype(np.float32)
        lab = over(lab_alpha(rgb, a), MID_GREY)
        return cv2.copyMakeBorder(lab, m, m, m, m, cv2.BORDER_CONSTANT, value=MID_GREY), a

    ref, alpha = drawn(original_rgba)
    img, _ = drawn(colourway_rgba)
    alpha = cv2.copyMakeBorder(alpha, m, m, m, m, cv2.BORDER_CONSTANT, value=0)
    keep = np.ones(alpha.shape, bool)
    return structure_score(gradients(ref), gradients(img), band_and_interior(alpha, keep), magnitudes=True)
