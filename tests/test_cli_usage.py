"""synth.cli.check_usage, the command lines' shared check of stray arguments and required flags."""

import pytest

from conftest import run_tool


@pytest.mark.parametrize("tool, args, message", [
    ("evaluate", [], "--pipeline_config_path and --checkpoint are required"),
    ("evaluate", ["--checkpoint=x"], "--pipeline_config_path is required"),
    ("configure_pipeline", ["stray"], "unexpected arguments: stray"),
    ("export_model", ["--pipeline_config_path=p", "--export_dir=e"],
     "--trained_checkpoint_dir and --model_name are required"),
    ("predict", ["photo.jpg"], "--model and --output_dir are required"),  # positional images are allowed
    ("download_checkpoint", ["--model=x"], "--dest is required"),
])
def test_usage_errors_name_what_is_wrong(tool, args, message):
    r = run_tool(tool, *args, timeout=120)
    assert r.returncode == 1 and message in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
