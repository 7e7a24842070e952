"""synth.cli.check_usage, the command lines' shared check of stray arguments and required flags."""

import os
import subprocess

import pytest

from conftest import ROOT, run_tool


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


def test_make_passes_recipe_overrides_to_the_tools_it_runs():
    """`make demo DEMO_OVERRIDE=` and `make bench-transfer OVERRIDE=` hand the fragment, quoted whole, to
    tools/configure_pipeline.py and bench/transfer.py (a dry run: make -n prints the commands)."""
    import shutil

    if not shutil.which("make"):
        pytest.skip("make is not installed")
    frag = "model { faster_rcnn { initial_crop_size: 8 } }"
    env = dict(os.environ, MAKEFLAGS="")
    demo = subprocess.run(["make", "-n", "demo", f"DEMO_OVERRIDE={frag}"], cwd=ROOT,
                          capture_output=True, text=True, env=env).stdout
    bench = subprocess.run(["make", "-n", "bench-transfer", f"OVERRIDE={frag}"], cwd=ROOT,
                           capture_output=True, text=True, env=env).stdout
    plain = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, env=env).stdout
    assert f"--config_override='{frag}'" in demo and "tools/configure_pipeline.py" in demo
    assert f"--config_override='{frag}'" in bench and "bench/transfer.py" in bench
    assert "tools/configure_pipeline.py" in plain and "--config_override" not in plain
