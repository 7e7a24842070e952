"""Photo-cut occluders and distractors inside generated datasets: recorded, replayed to the very
JPEG bytes of the shards, and refused when configured wrongly."""

import json
import os

import cv2
import pytest

from synth import config as configlib, dataset, generate, replay
from synth.errors import ConfigError
from conftest import make_cluttered, write_config


def _cluttered_workdir(tmp_path, n: int = 3):
    os.makedirs(tmp_path / "backgrounds", exist_ok=True)
    os.makedirs(tmp_path / "logos", exist_ok=True)
    from conftest import make_logo, write_rgba

    write_rgba(str(tmp_path / "logos" / "logo.png"), make_logo())
    for i in range(n):
        cv2.imwrite(str(tmp_path / "backgrounds" / f"bg{i}.png"), make_cluttered(240, 320, 10 + i))
    return tmp_path


def test_composites_with_photo_cuts_replay_to_their_shard_bytes(tmp_path):
    work = _cluttered_workdir(tmp_path)
    cfg = configlib.load_config(write_config(work, num_images=30, extra=(
        "realism { occlusion { enabled: true occluder_probability: 1 min_distractors: 2 max_distractors: 3 "
        "shadow_probability: 0.5 } }\n")))
    out = str(work / "out")
    generate.generate(cfg, out, show_progress=False, workers=1)
    r = replay.open_dataset(out)
    with open(os.path.join(out, dataset.PARAMS)) as f:
        lines = [json.loads(line) for line in f]
    assert len(lines) == 30
    occluders = distractors = shadows = 0
    for rec in lines:
        p = rec["params"]
        for o in p["objects"]:
            if o["occluder"] is not None:
                occluders += 1
                cut = o["occluder"]["patch"]["cut"]
                assert cut["source_index"] != p["background_index"]  # another photo of the pool
                assert set(cut) == {"source_index", "source_variant", "window", "kind", "seed", "segment_scale",
                                    "target_area", "feather"}
                shadows += o["occluder"]["patch"]["shadow_opacity"] > 0
        for d in p["distractors"]:
            distractors += 1
            assert d["patch"]["cut"]["source_index"] != p["background_index"]
        sid = f"{rec['split']}-{rec['index']:08d}"
        assert r.replay(rec) == r.shard_jpeg(rec), f"{sid}: the replayed JPEG differs from the shard's"
    assert occluders >= 10 and distractors >= 15 and shadows >= 3, (occluders, distractors, shadows)


@pytest.mark.parametrize("field,value,why", [
    ("shadow_probability", "1.5", "must be in \\[0, 1\\]"),
    ("max_distractor_overlap", "-0.1", "must be in \\[0, 1\\]"),
    ("occluder_probability", "2", "must be in \\[0, 1\\]"),
])
def test_a_bad_occlusion_field_is_refused_naming_it(tmp_path, field, value, why):
    path = write_config(tmp_path, extra=f"realism {{ occlusion {{ enabled: true {field}: {value} }} }}\n")
    with pytest.raises(ConfigError, match=f"field realism.occlusion.{field} = .* is invalid: {why}"):
        configlib.load_config(path)
