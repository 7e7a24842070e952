"""Realism benchmark: how the engine measures itself (bench/out/realism.json).

Over N composites of the embedded default at 640x480, every stage on:
- composites_without_objects_share, objects_on_texture_share: how often no logo found room
  (the drawn backdrop had no usable region, or every try failed the gate), and the share of
  logos placed on a texture region (synth.surface's texture pass) rather than a flat one;
- box_exact_min_iou: smallest IoU between an emitted box and a reference computed another
  way: an indicator image of the logo composited forward through every layer with the
  layers' own opacities, thresholded at 0.5;
- box_painter_min_iou / _mean_iou: the same against a cruder reference, the pixels where,
  painting thresholded layers in order, this logo is on top (differs at soft edges);
- straddle_rate / straddle_rate_random: share of logos whose footprint crosses a strong edge or
  a region boundary (synth.placement.straddles), for this engine and for frontal logos of the
  same sizes placed uniformly at random on the same backdrops; a texture region's own texture
  (brick joints, blades of grass) is not a strong edge, its outline is a boundary;
- noise_ratio_median_abs_log, sharpness_ratio_median_abs_log: median over logos of
  |log(inside / surrounding ring)| of the noise level and the sharpness (synth.measure);
  the noise level is estimated where the clean signal is flat (the logo's own artwork warped
  onto the canvas inside, the backdrop before any logo in the ring), since a noise estimator
  also reads fine artwork as noise; the _unmasked figures (and the same with the camera stage
  off) show that effect. Inside, the artwork is clean, so a fixed cut (fine-scale high-pass
  under 3 gray levels) finds its flat pixels; the backdrop is itself noisy, so in the ring the
  cut rises to 3.5 noise sigmas (`_flat_noisy`): a fixed cut there would keep only the smaller
  noise samples and read the ring's noise too low;
- luminance_correlation: Pearson correlation of each logo's mean luminance with its ring's;
- below_gate_emitted: emitted objects that fail the gate, re-scored on the final image;
- composites_per_s_per_core, codec_bound_per_s_per_core, throughput_ratio: single-process
  rate of the whole per-image work (sampling, rendering, JPEG encoding, record
  serialisation) against decoding one background JPEG and encoding one JPEG, same run.
"""

from __future__ import annotations

import math
import time

import cv2
import numpy as np

from synth import boxes as boxlib, composite, config as configlib, engine, gate, placement, scene
from synth.measure import inner_mask, noise_level, ring_mask, sharpness
from synth.inputs import load_inputs


def _gray(rgb):
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _composited_box(i, pasted, occluders, distractors=None):
    """Reference by forward compositing: an indicator image of logo i, composited layer by
    layer (each logo, then its occluder; the distractors last) with the layers' own opacities;
    its tight box at 0.5."""
    ind = np.zeros(pasted[0].shape, np.float32)
    for j, p in enumerate(pasted):
        ind = ind * (1.0 - p) + p * (1.0 if j == i else 0.0)
        if occluders[j] is not None:
            ind = ind * (1.0 - occluders[j])
    if distractors is not None:
        ind = ind * (1.0 - distractors)
    return boxlib.tight_box(ind >= boxlib.VISIBLE_ALPHA)


def _painter_box(i, pasted, occluders, distractors=None):
    top = np.full(pasted[0].shape, -1, np.int32)
    for j, p in enumerate(pasted):
        top[p >= boxlib.VISIBLE_ALPHA] = j
        if occluders[j] is not None:
            top[occluders[j] >= boxlib.VISIBLE_ALPHA] = -2
    if distractors is not None:
        top[distractors >= boxlib.VISIBLE_ALPHA] = -3
    return boxlib.tight_box(top == i)


_HP = np.outer([1, -4, 6, -4, 1], [1, -4, 6, -4, 1]).astype(np.float32)


def _flat(gray_signal: np.ndarray, tol: float = 3.0) -> np.ndarray:
    """Pixels whose clean signal is flat (fine-scale high-pass response under `tol` gray
    levels), where a noise estimate measures noise rather than detail."""
    return np.abs(cv2.filter2D(gray_signal.astype(np.float32), -1, _HP)) / 70.0 < tol


def _flat_noisy(gray: np.ndarray, region: np.ndarray, tol: float = 3.0, clip: float = 3.5) -> np.ndarray:
    """Pixels of `region` where a noisy image's signal is flat: a fixed cut |high-pass| < tol
    would also drop the strongest noise samples and read noise above about tol / 2 gray levels
    too low, so the cut is raised to `clip` noise sigmas (read on the pixels it keeps) until it
    settles; beyond 3.5 sigmas a Gaussian loses 0.05 % of its samples."""
    hp = np.abs(cv2.filter2D(gray.astype(np.float32), -1, _HP)) / 70.0
    thr = tol
    for _ in range(8):
        m = region & (hp < thr)
        if m.sum() <= 50:
            return m
        new = max(tol, clip * noise_level(gray, m))
        if new <= 1.02 * thr:
            return m
        thr = new
    return m


def _ratio(a, b):
    return abs(math.log(a / b)) if a > 0 and b > 0 and np.isfinite(a) and np.isfinite(b) else None


def _noise_camera_off(inputs, eng, c, n: int):
    """The same noise measure with the camera stage off: what the logo's own artwork (fine
    lines, warped edges) alone reads as noise, for comparison."""
    import dataclasses

    s_off = dataclasses.replace(eng.settings, camera_on=False)
    vals = []
    for index in range(n):
        seed = composite.image_seed(c.seed, 0, index)
        params, r = scene.compose(np.random.default_rng(seed), seed, inputs, eng.backdrops, eng.bank, s_off)
        gray = _gray(r.image)
        for k in range(len(params.objects)):
            inner, ring = inner_mask(r.visible[k]), ring_mask(r.pasted[k], 6)
            if inner.sum() > 50 and ring.sum() > 50:
                v = _ratio(noise_level(gray, inner), noise_level(gray, ring))
                if v is not None:
                    vals.append(v)
    return round(float(np.median(vals)), 4) if vals else None


def measure(n: int = 500) -> dict:
    cfg = configlib.load_config(None)
    c = cfg.proto
    inputs = load_inputs(cfg)
    eng = engine.Engine(inputs, c)
    rng_random = np.random.default_rng(12345)
    noise_raw, painter, ious, straddle, straddle_rand, noise_r, sharp_r, lum_in, lum_ring = ([] for _ in range(9))
    below_gate, objects, empty, on_texture = 0, 0, 0, 0
    for index in range(n):
        seed = composite.image_seed(c.seed, 0, index)
        params, r = scene.compose(np.random.default_rng(seed), seed, inputs, eng.backdrops, eng.bank, eng.settings)
        _, backdrop, surf = eng.backdrops.get(params.background_index, params.fit_variant)
        gray = _gray(r.image)
        empty += not params.objects
        for k, o in enumerate(params.objects):
            objects += 1
            on_texture += o.placement is not None and o.placement.region_kind == "texture"
            ref = _composited_box(k, r.pasted, r.occluders, r.distractors)
            ious.append(boxlib.iou(r.boxes[k], ref) if ref is not None else 0.0)
            ref = _painter_box(k, r.pasted, r.occluders, r.distractors)
            painter.append(boxlib.iou(r.boxes[k], ref) if ref is not None else 0.0)
            quad = np.asarray(o.quad)
            if surf is not None:
                straddle.append(placement.straddles(quad, surf))
                # the same footprint size, frontal, uniformly at random on the same backdrop
                w = np.linalg.norm(quad[1] - quad[0])
                h = np.linalg.norm(quad[3] - quad[0])
                oh, ow = r.image.shape[:2]
                if w < ow and h < oh:
                    x, y = rng_random.uniform(0, ow - w), rng_random.uniform(0, oh - h)
                    rq = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]]) - 0.5
                    straddle_rand.append(placement.straddles(rq, surf))
            vis = r.visible[k]
            inner = inner_mask(vis)
            ring = ring_mask(r.pasted[k], 6)
            # noise is compared where the clean signal is flat: the logo's own artwork (warped
            # onto the canvas) inside, the backdrop before any logo in the ring
            logo_img, prepared_logo, _ = scene.pasted_logo(o, eng.bank)  # as its homography maps it
            art = cv2.warpPerspective(cv2.cvtColor(logo_img[..., :3], cv2.COLOR_RGB2GRAY), r.homographies[k],
                                      (gray.shape[1], gray.shape[0]), flags=cv2.INTER_LINEAR)
            flat_in = inner & _flat(art)
            flat_ring = _flat_noisy(_gray(backdrop), ring)
            if flat_in.sum() > 50 and flat_ring.sum() > 50:
                noise_r.append(_ratio(noise_level(gray, flat_in), noise_level(gray, flat_ring)))
            if inner.sum() > 50 and ring.sum() > 50:
                noise_raw.append(_ratio(noise_level(gray, inner), noise_level(gray, ring)))
                sharp_r.append(_ratio(
                    sharpness(gray, inner, noise_level(gray, inner)),
                    sharpness(gray, ring, noise_level(gray, ring))))
                lum_in.append(float(gray[inner].mean()))
                lum_ring.append(float(gray[ring].mean()))
            if gate.score(prepared_logo, r.homographies[k], r.image, vis, r.pasted[k]).reasons(eng.settings.gate_cfg):
                below_gate += 1
    noise_r = [v for v in noise_r if v is not None]
    noise_raw = [v for v in noise_raw if v is not None]
    noise_off = _noise_camera_off(inputs, eng, c, max(50, n // 4))
    sharp_r = [v for v in sharp_r if v is not None]
    # throughput: the whole per-image work, warm caches, one process
    t = time.perf_counter()
    m = min(n, 200)
    for index in range(m):
        comp = eng.make("train", index)
        engine.serialize(comp)
    rate = m / (time.perf_counter() - t)
    photo = cv2.resize(inputs.background(0)[1], (640, 480))
    jpeg = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
    t = time.perf_counter()
    for _ in range(200):
        cv2.imencode(".jpg", cv2.imdecode(jpeg, cv2.IMREAD_COLOR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    bound = 200 / (time.perf_counter() - t)
    return {
        "composites": n, "objects": objects,
        "composites_without_objects_share": round(empty / n, 4),
        "objects_on_texture_share": round(on_texture / max(objects, 1), 4),
        "box_exact_min_iou": round(float(min(ious)) if ious else float("nan"), 4),
        "box_painter_min_iou": round(float(min(painter)) if painter else float("nan"), 4),
        "box_painter_mean_iou": round(float(np.mean(painter)) if painter else float("nan"), 4),
        "straddle_rate": round(float(np.mean(straddle)), 4) if straddle else None,
        "straddle_rate_random": round(float(np.mean(straddle_rand)), 4) if straddle_rand else None,
        "noise_ratio_median_abs_log": round(float(np.median(noise_r)), 4) if noise_r else None,
        "noise_ratio_median_abs_log_unmasked": round(float(np.median(noise_raw)), 4) if noise_raw else None,
        "noise_ratio_median_abs_log_unmasked_camera_off": noise_off,
        "sharpness_ratio_median_abs_log": round(float(np.median(sharp_r)), 4) if sharp_r else None,
        "luminance_correlation": round(float(np.corrcoef(lum_in, lum_ring)[0, 1]), 4) if len(lum_in) > 2 else None,
        "below_gate_emitted": below_gate,
        "composites_per_s_per_core": round(rate, 2),
        "codec_bound_per_s_per_core": round(bound, 2),
        "throughput_ratio": round(rate / bound, 3),
    }
