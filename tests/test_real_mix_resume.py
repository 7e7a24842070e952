"""bench/real_mix.py resumes: a finished arm is read back only when it ran to its final step
under the same settings."""
import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("real_mix", os.path.join(ROOT, "bench", "real_mix.py"))
real_mix = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(real_mix)

KEY = {"template": "small_cpu", "checkpoint": None, "num_steps": 600, "batch_size": 2, "real_weight": 0.2}
RESULT = {"real_per_brand": 5, "map50": 0.125, "map": 0.05, "train_s": 900.0, "eval_s": 60.0}


def _arm(tmp_path, step: int) -> str:
    run_dir = tmp_path / "runs" / "real5"
    (run_dir / "eval_once").mkdir(parents=True)
    (run_dir / "eval_once" / "metrics.json").write_text(json.dumps({"step": step, "metrics": {}}))
    real_mix._save_stages(str(tmp_path), {"arms": {"5": {"key": KEY, "result": RESULT}}})
    return str(run_dir)


def test_an_arm_evaluated_at_its_final_step_with_the_same_settings_is_read_back(tmp_path):
    run_dir = _arm(tmp_path, 600)
    assert real_mix._finished_arm(run_dir, KEY, real_mix._stages(str(tmp_path)), 5) == RESULT


def test_an_arm_is_trained_again_when_its_evaluation_is_of_an_earlier_step(tmp_path):
    run_dir = _arm(tmp_path, 300)
    assert real_mix._finished_arm(run_dir, KEY, real_mix._stages(str(tmp_path)), 5) is None


def test_an_arm_is_trained_again_when_a_setting_changed_or_nothing_was_recorded(tmp_path):
    run_dir = _arm(tmp_path, 600)
    stages = real_mix._stages(str(tmp_path))
    assert real_mix._finished_arm(run_dir, dict(KEY, num_steps=1000), stages, 5) is None
    assert real_mix._finished_arm(run_dir, dict(KEY, real_weight=0.5), stages, 5) is None
    assert real_mix._finished_arm(run_dir, KEY, stages, 10) is None
    assert real_mix._finished_arm(run_dir, KEY, {}, 5) is None


class _Stop(Exception):
    pass


def test_relative_data_and_work_folders_give_a_generation_config_with_absolute_paths(tmp_path, monkeypatch):
    import argparse
    import sys

    import pytest

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from test_realeval import BRANDS, _real_folder

    data = tmp_path / "flickr"
    data.mkdir()
    _real_folder(data, n_per_brand=real_mix.TRAIN_POOL + 2)
    monkeypatch.chdir(tmp_path)
    seen = {}

    def first_tool(name, *args):  # the generation: read its config, then stop before any work
        seen["config"] = open(next(a.split("=", 1)[1] for a in args if a.startswith("--config="))).read()
        raise _Stop

    monkeypatch.setattr(real_mix, "_tool", first_tool)
    args = argparse.Namespace(brands=list(BRANDS[:2]), data="flickr", work_dir="work", num_images=10,
                              arms=[0], template="small_cpu", checkpoint=None, num_steps=2, batch_size=2,
                              real_weight=0.2, smoke=False)
    with pytest.raises(_Stop):
        real_mix.run(args)
    folders = [line.split('"')[1] for line in seen["config"].splitlines() if "directory:" in line]
    logos = [line.split('path: "')[1].split('"')[0] for line in seen["config"].splitlines() if "path:" in line]
    assert folders == [str(tmp_path / "work" / "backgrounds")] and os.path.isdir(folders[0])
    assert logos and all(os.path.isabs(p) and p.startswith(str(data)) for p in logos)
