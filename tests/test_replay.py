"""A record that replays: params.jsonl lines read back into typed records, and re-rendered from
them (no randomness) into the very JPEG bytes of the shards."""

import json
import os

import cv2
import numpy as np
import pytest

from synth import (backdrops, config as configlib, dataset, generate, logo_bank, placement, records, replay, scene,
                   settings, tfexample, tfrecord_io)
from synth.errors import RecordError
from synth.inputs import load_inputs
from synth.tfrecord_keys import IMAGE_ENCODED, IMAGE_SOURCE_ID
from conftest import make_cluttered, run_tool, write_config

STAGES = ("placement", "light", "camera", "occluder", "framing")
LIGHT_CAMERA_ON = "realism { light { enabled: true } camera { enabled: true } }\n"  # both off by default


def _compose_many(cfg_path, seeds):
    cfg = configlib.load_config(cfg_path)
    inputs = load_inputs(cfg)
    s = settings.Settings.from_config(cfg.proto)
    bd, bank = backdrops.Backdrops(inputs, s), logo_bank.LogoBank(inputs, s)
    return [scene.compose(np.random.default_rng(k), k, inputs, bd, bank, s)[0] for k in seeds]


def test_scene_params_round_trip_through_json_for_hundreds_of_composites(workdir):
    # min/max_scale: no size prior; light and camera switched on (both off by default)
    plain = write_config(workdir, num_images=10, extra=LIGHT_CAMERA_ON)
    with open(plain) as f:
        text = f.read().replace(LIGHT_CAMERA_ON, "")  # the other config has its own realism block
    other = workdir / "other"
    os.makedirs(other)
    prior = str(other / "gen.config")  # the size prior, occluders and distractors; light and camera off
    os.makedirs(other / "cluttered")  # photos with objects of their own, for occluders to be cut from
    for i in range(2):
        cv2.imwrite(str(other / "cluttered" / f"c{i}.png"), make_cluttered(240, 320, i))
    with open(prior, "w") as f:
        f.write(text.replace("min_scale: 0.15 max_scale: 0.35", "")
                .replace('"logos/', f'"{workdir}/logos/').replace('"backgrounds"', f'"{workdir}/backgrounds"')
                + 'background { directory: "cluttered" }\n'
                + "realism { light { enabled: false } camera { enabled: false } "
                  "occlusion { enabled: true occluder_probability: 0.5 } }\nnegative_fraction: 0.05\n")
    ps = _compose_many(plain, range(150)) + _compose_many(prior, range(150))
    seen = {k: set() for k in STAGES}
    for p in ps:
        d = p.to_json()
        assert scene.SceneParams.from_json(d) == p
        back = scene.SceneParams.from_json(json.loads(json.dumps(d)))  # as params.jsonl holds it
        assert back == p and back.to_json() == d
        for o in back.objects:
            assert o.placement is None or isinstance(o.placement, placement.PlacementParams)
            for k in STAGES:
                seen[k].add(getattr(o, k) is None)
    assert len(ps) == 300
    assert all(v == {True, False} for v in seen.values()), seen  # each stage both recorded and absent
    assert any(p.distractors for p in ps) and any(p.negative for p in ps)
    assert any(p.objects and p.rejected for p in ps)


def test_a_malformed_params_record_names_the_bad_field(workdir):
    p = _compose_many(write_config(workdir, extra=LIGHT_CAMERA_ON), [3])[0]
    d = json.loads(json.dumps(p.to_json()))
    d["objects"][0]["camera"]["jpeg_quality"] = 90  # what records held before they replayed
    with pytest.raises(RecordError, match=r"params\.objects\[0\]\.camera: unknown field\(s\) \['jpeg_quality'\]"):
        scene.SceneParams.from_json(d)
    d = json.loads(json.dumps(p.to_json()))
    del d["objects"][0]["blend"]["mode"]
    with pytest.raises(RecordError, match=r"params\.objects\[0\]\.blend: BlendParams field\(s\) \['mode'\] missing"):
        scene.SceneParams.from_json(d)
    d = json.loads(json.dumps(p.to_json()))
    d["fit_variant"] = "2"
    with pytest.raises(RecordError, match=r"params\.fit_variant: expected int, got a string '2'"):
        scene.SceneParams.from_json(d)
    assert records.from_plain(scene.SceneParams, json.loads(json.dumps(p.to_json()))) == p


def _shard_jpegs(data_dir):
    out = {}
    for split in dataset.SPLITS:
        for path in dataset.list_shards(data_dir, split):
            for raw in tfrecord_io.read_records(path):
                f = tfexample.decode_features(raw)
                out[bytes(f[IMAGE_SOURCE_ID][0]).decode()] = bytes(f[IMAGE_ENCODED][0])
    return out


def _replay_all(data_dir) -> int:
    """Replays every composite of `data_dir`: the same JPEG bytes as its shard, and the same boxes
    as its params line. Returns how many were checked."""
    r = replay.open_dataset(data_dir)
    shards = _shard_jpegs(data_dir)
    with open(os.path.join(data_dir, dataset.PARAMS)) as f:
        lines = [json.loads(line) for line in f]
    assert len(lines) == len(shards) > 0
    for rec in lines:
        sid = f"{rec['split']}-{rec['index']:08d}"
        assert rec["config_fingerprint"] == r.fingerprint
        params, res = r.engine.replay_scene(rec)
        assert params.to_json() == scene.SceneParams.from_json(rec["params"]).to_json()
        assert res.boxes.round(6).tolist() == rec["boxes"], sid
        assert r.replay(rec) == shards[sid], f"{sid}: replayed JPEG differs from the shard's"
        assert r.record(sid) == rec
    return len(lines)


def test_every_composite_of_a_small_dataset_replays_to_its_shard_bytes(workdir):
    cfg = configlib.load_config(write_config(workdir, num_images=200, extra="realism { occlusion { enabled: true "
                                             "occluder_probability: 0.4 } }\n"))
    generate.generate(cfg, str(workdir / "out"), show_progress=False, workers=1)
    assert _replay_all(str(workdir / "out")) == 200


def test_tinted_composites_replay_from_the_ink_they_record(workdir):
    path = write_config(workdir, num_images=60)
    with open(path) as f:
        body = f.read().replace('path: "logos/logo.png" }', 'path: "logos/logo.png" colourway { name: "original" '
                                'weight: 0.5 } colourway { name: "tint" weight: 0.5 } }')
    with open(path, "w") as f:
        f.write(body)
    generate.generate(configlib.load_config(path), str(workdir / "out"), show_progress=False, workers=1)
    with open(os.path.join(str(workdir / "out"), dataset.PARAMS)) as f:
        drawn = [o["colourway"] for line in f for o in json.loads(line)["params"]["objects"]]
    assert any(c.startswith("tint:") for c in drawn) and "original" in drawn
    assert _replay_all(str(workdir / "out")) == 60


def test_the_embedded_default_replays_to_its_shard_bytes(tmp_path):
    cfg = configlib.apply_overrides(configlib.load_config(None), num_images=100)
    generate.generate(cfg, str(tmp_path / "out"), show_progress=False, workers=2)
    assert _replay_all(str(tmp_path / "out")) == 100


def test_bad_replay_inputs_are_refused_naming_them(workdir):
    cfg = configlib.load_config(write_config(workdir, num_images=6))
    generate.generate(cfg, str(workdir / "a"), show_progress=False, workers=1)
    generate.generate(configlib.apply_overrides(cfg, seed=4), str(workdir / "b"), show_progress=False, workers=1)
    missing = str(workdir / "nowhere")
    with pytest.raises(RecordError, match=f"dataset folder '{missing}' does not exist"):
        replay.open_dataset(missing)
    os.makedirs(workdir / "empty")
    with pytest.raises(RecordError, match="manifest.json' does not exist"):
        replay.open_dataset(str(workdir / "empty"))
    r = replay.open_dataset(str(workdir / "a"))
    with pytest.raises(RecordError, match=r"no composite 'train-00000099' in .*params.jsonl' \(it holds 4 train, "
                                          r"2 val composites\)"):
        r.record("train-00000099")
    with pytest.raises(RecordError, match="source_id 'train-12' is not SPLIT-NNNNNNNN"):
        r.record("train-12")
    other = replay.open_dataset(str(workdir / "b")).record("train-00000001")
    with pytest.raises(RecordError, match=f"params record train-00000001 was written by config fingerprint "
                                          f"{other['config_fingerprint']}, not by this dataset's config"):
        r.replay(other)
    old = {k: v for k, v in r.record("val-00000001").items() if k != "config_fingerprint"}
    with pytest.raises(RecordError, match="params record val-00000001 carries no config_fingerprint"):
        r.replay(old)
    moved = dict(r.record("train-00000000"), background="/elsewhere/bg.jpg")
    with pytest.raises(RecordError, match="its background '/elsewhere/bg.jpg' is not the config's background"):
        r.replay(moved)
    # A background whose file was cut short after the run: its header still reads, its pixels do not.
    rec = r.record("train-00000000")
    with open(rec["background"], "rb") as f:
        head = f.read(2000)
    with open(rec["background"], "wb") as f:
        f.write(head)
    with pytest.raises(RecordError, match=f"params record train-00000000: its background '{rec['background']}' "
                                          "cannot be used now: .*corrupt or truncated"):
        replay.open_dataset(str(workdir / "a")).replay(rec)
    # A manifest whose config is not the one its fingerprint names (another source made it).
    with open(workdir / "b" / dataset.MANIFEST) as f:
        m = json.load(f)
    m["config_fingerprint"] = "0" * 16
    with open(workdir / "b" / dataset.MANIFEST, "w") as f:
        json.dump(m, f)
    with pytest.raises(RecordError, match="config_fingerprint 0000000000000000 is not its config's"):
        replay.open_dataset(str(workdir / "b"))


def test_the_replay_tool_writes_the_shards_jpeg_and_refuses_bad_input(workdir):
    cfg = configlib.load_config(write_config(workdir, num_images=6))
    data = str(workdir / "a")
    generate.generate(cfg, data, show_progress=False, workers=1)
    out = str(workdir / "v.jpg")
    p = run_tool("replay", f"--data_dir={data}", "--source_id=val-00000001", f"--output={out}", "--check")
    assert p.returncode == 0, p.stderr
    assert "identical to the record in" in p.stdout
    with open(out, "rb") as f:
        assert f.read() == _shard_jpegs(data)["val-00000001"]
    line = str(workdir / "line.json")
    with open(line, "w") as f:
        f.write(json.dumps(replay.open_dataset(data).record("train-00000002")))
    p = run_tool("replay", f"--data_dir={data}", f"--record={line}", f"--output={out}")
    assert p.returncode == 0, p.stderr
    with open(out, "rb") as f:
        assert f.read() == _shard_jpegs(data)["train-00000002"]
    p = run_tool("replay", "--data_dir=/no/such/dir", "--source_id=train-00000000")
    assert p.returncode == 2 and "dataset folder '/no/such/dir' does not exist" in p.stderr
    p = run_tool("replay", f"--data_dir={data}", "--source_id=train-00000077")
    assert p.returncode == 2 and "no composite 'train-00000077'" in p.stderr
    p = run_tool("replay", f"--data_dir={data}")  # a usage error: absl's status 1
    assert p.returncode == 1 and "exactly one of --source_id and --record" in p.stderr
    p = run_tool("replay", "--source_id=train-00000000")
    assert p.returncode == 1 and "--data_dir is required" in p.stderr
    p = run_tool("replay", "--help")  # absl's --help exits with status 1
    assert "re-renders one composite" in p.stdout.lower() and "--source_id" in p.stdout and "--record" in p.stdout
