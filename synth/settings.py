"""The generation config's realism and placement blocks, turned into each stage's own settings.

`Settings.from_config(config proto)` is read once per worker; every stage of synth.scene then
takes its part (`surface_cfg`, `placement_cfg`, `light_cfg`, ...) and the `*_on` switches.
"""

from __future__ import annotations

from dataclasses import dataclass

from synth import (blending, camera, config as configlib, context, curvature, framing, gate, occlusion,
                   photometric, placement, surface)


@dataclass(frozen=True)
class Settings:
    """The config's realism block, turned into each stage's own settings."""

    out_hw: tuple
    min_objects: int
    max_objects: int
    max_overlap_iou: float
    max_attempts: int
    min_scale: float
    max_scale: float
    surface_on: bool
    surface_cfg: surface.SurfaceConfig
    placement_cfg: placement.PlacementConfig
    light_on: bool
    light_cfg: photometric.LightConfig
    camera_on: bool
    camera_cfg: camera.CameraConfig
    jpeg_range: tuple
    blend_cfg: blending.BlendConfig
    occlusion_on: bool
    occlusion_cfg: occlusion.OcclusionConfig
    distractor_range: tuple
    gate_on: bool
    gate_cfg: gate.GateConfig
    audit_on: bool
    audit_min_inliers: int
    colourways: tuple  # per logo: ((name, weight), ...)
    plates: tuple  # per logo: (r, g, b) or None
    framing_cfg: framing.FramingConfig | None = None  # the size prior; None: min_scale..max_scale
    negative_fraction: float = 0.0
    # Stages whose config says how often they apply are off at probability 0, and then draw nothing.
    curvature_cfg: curvature.CurvatureConfig = curvature.CurvatureConfig()
    context_cfg: context.ContextConfig = context.ContextConfig()

    @property
    def curvature_on(self) -> bool:
        return self.curvature_cfg.cylinder_probability > 0 or self.curvature_cfg.fold_probability > 0

    @property
    def context_on(self) -> bool:
        return self.context_cfg.probability > 0

    @classmethod
    def from_config(cls, c) -> "Settings":
        r, p = c.realism, c.placement
        out_hw = (c.image_size.height, c.image_size.width)
        short = min(out_hw)
        sf = r.surface
        occ = r.occlusion
        prior = None
        if p.width_quantiles or not (p.HasField("min_scale") or p.HasField("max_scale")):
            prior = framing.FramingConfig(tuple(p.width_quantiles) or framing.REAL_WIDTH_QUANTILES,
                                          p.truncation_probability, p.max_cut_fraction, p.closeup_candidates)
        min_width_px = max(1.0, p.min_scale * short) if prior is None else 8.0
        return cls(
            out_hw=out_hw, min_objects=p.min_objects, max_objects=p.max_objects,
            max_overlap_iou=p.max_overlap_iou, max_attempts=p.max_attempts,
            min_scale=p.min_scale, max_scale=p.max_scale,
            surface_on=sf.enabled,
            surface_cfg=surface.SurfaceConfig(min_area_px=sf.min_region_area_px,
                                              max_texture_regions=surface.SurfaceConfig.max_texture_regions
                                              if sf.texture_regions else 0),
            placement_cfg=placement.PlacementConfig(
                min_width_frac=sf.min_region_share, max_width_frac=sf.max_region_share,
                min_width_px=min_width_px, max_width_canvas=p.max_scale if prior is None else 1.0,
                margin_px=sf.margin_px, max_rotation_deg=sf.max_rotation_deg,
                max_extra_tilt_deg=sf.max_extra_tilt_deg, allow_truncation=sf.allow_truncation,
                max_truncated_fraction=sf.max_truncated_fraction),
            light_on=r.light.enabled,
            light_cfg=photometric.LightConfig(shadow_prob=r.light.shadow_probability,
                                              glare_prob=r.light.glare_probability),
            camera_on=r.camera.enabled,
            camera_cfg=camera.CameraConfig(motion_blur_prob=r.camera.motion_blur_probability),
            jpeg_range=((r.camera.jpeg_quality_min, r.camera.jpeg_quality_max) if r.camera.enabled
                        else (c.jpeg_quality, c.jpeg_quality)),
            blend_cfg=blending.BlendConfig(hard_weight=r.blend.hard_weight, feather_weight=r.blend.feather_weight,
                                           poisson_weight=r.blend.poisson_weight,
                                           laplacian_weight=r.blend.laplacian_weight),
            occlusion_on=occ.enabled,
            occlusion_cfg=occlusion.OcclusionConfig(
                p_occluder=occ.occluder_probability,
                occluded_fraction=(occ.min_occluded_fraction, occ.max_occluded_fraction),
                distractor_count=(occ.min_distractors, occ.max_distractors),
                p_shadow=occ.shadow_probability, max_distractor_overlap=occ.max_distractor_overlap),
            distractor_range=(occ.min_distractors, occ.max_distractors),
            gate_on=r.gate.enabled,
            gate_cfg=gate.GateConfig(min_visible_fraction=r.gate.min_visible_fraction,
                                     min_size_px=r.gate.min_size_px, min_contrast=r.gate.min_contrast,
                                     min_match=r.gate.min_match, min_detail_px=r.gate.min_detail_px,
                                     min_legibility=r.gate.min_legibility,
                                     min_colourway_identity=r.gate.min_colourway_identity),
            audit_on=r.audit.enabled, audit_min_inliers=r.audit.min_inliers,
            colourways=tuple(tuple((cw.name, cw.weight) for cw in lg.colourway) or (("original", 1.0),)
                             for lg in c.logo),
            plates=tuple(configlib.plate_rgb(lg.plate_colour) if lg.HasField("plate_colour") else None
                         for lg in c.logo),
            framing_cfg=prior, negative_fraction=c.negative_fraction,
            curvature_cfg=_curvature(r.curvature),
            context_cfg=context_config(r.context),
        )


def _curvature(cv) -> curvature.CurvatureConfig:
    """The realism block's `curvature { }` as the curvature stage's settings."""
    return curvature.CurvatureConfig(
        cylinder_probability=cv.cylinder_probability, fold_probability=cv.fold_probability,
        wrap_deg=(cv.min_wrap_deg, cv.max_wrap_deg), max_tilt_deg=cv.max_axis_tilt_deg,
        max_azimuth_deg=cv.max_azimuth_deg, max_light_deg=cv.max_light_deg, max_highlight=cv.max_highlight,
        fold_height=(cv.min_fold_height, cv.max_fold_height), fold_periods=(cv.min_fold_periods, cv.max_fold_periods),
        max_fold_angle_deg=cv.max_fold_angle_deg, max_fold_slant_deg=cv.max_fold_slant_deg,
        shading=(cv.min_shading, cv.max_shading))


def context_config(cx) -> context.ContextConfig:
    """The realism block's `context { }` as the context stage's settings."""
    return context.ContextConfig(
        probability=cx.probability, min_area_share=cx.min_area_share, max_area_share=cx.max_area_share,
        shape_weights=(cx.sign_weight, cx.band_weight, cx.shirt_weight, cx.closeup_weight),
        colour_source=cx.colour_source, min_logo_share=cx.min_logo_share, max_logo_share=cx.max_logo_share,
        backdrop_shading=cx.backdrop_shading)
