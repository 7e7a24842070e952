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
