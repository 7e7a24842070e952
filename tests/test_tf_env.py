"""`import synth` turns TensorFlow's oneDNN kernels on (3x faster training steps on CPUs where
TF 2.15 leaves them off; bench/train_rate.py), and keeps a value the user set."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = ("import os, synth; import tensorflow as tf; from tensorflow.python.framework import test_util; "
         "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], test_util.IsMklEnabled())")


def _probe(**env_overrides) -> list:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update(env_overrides, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout
    return out.split()[-2:]


def test_import_synth_turns_onednn_on_before_tensorflow_loads():
    assert _probe() == ["1", "True"]


def test_a_users_setting_is_kept():
    assert _probe(TF_ENABLE_ONEDNN_OPTS="0") == ["0", "False"]


def test_train_rate_refuses_a_bad_config_override_before_timing_anything():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "train_rate.py"), "1", "small_cpu_demo",
                        "--config_override=model { faster_rcnn { crop: 8 } }"], cwd=ROOT, capture_output=True,
                       text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert r.returncode == 1 and "train_rate: error: --config_override=" in r.stderr
    assert "is not a pipeline config fragment" in r.stderr and "{" not in r.stdout  # no child timed
