"""A run's checkpoints by step, and the average of several (synth.checkpoints)."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from synth import checkpoints  # noqa: E402
from synth.errors import ConfigError  # noqa: E402


def _save_run(run_dir, values, extra=False):
    """Saves one checkpoint per value like the OD API's train loop (model, optimizer, step): a float
    weight w = value, an int counter, Adam slots after one update. Returns the prefixes."""
    model = tf.Module()
    model.w = tf.Variable(np.zeros((2, 3), np.float32))
    model.count = tf.Variable(0, dtype=tf.int64)
    if extra:
        model.b = tf.Variable(np.zeros(3, np.float32))
    opt = tf.keras.optimizers.legacy.Adam(0.1)  # the OD API's (slots under .OPTIMIZER_SLOT)
    step = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(model=model, optimizer=opt, step=step)
    manager = tf.train.CheckpointManager(ckpt, str(run_dir), max_to_keep=10)
    prefixes = []
    for i, v in enumerate(values, start=1):
        opt.apply_gradients([(tf.ones((2, 3)) * v, model.w)])  # slots differ per checkpoint
        model.w.assign(np.full((2, 3), v, np.float32))
        model.count.assign(10 * i)
        step.assign(100 * i)
        prefixes.append(manager.save())
    return prefixes, model, opt


def _restore(prefix, extra=False):
    model = tf.Module()
    model.w = tf.Variable(np.zeros((2, 3), np.float32))
    model.count = tf.Variable(0, dtype=tf.int64)
    opt = tf.keras.optimizers.legacy.Adam(0.1)  # the OD API's (slots under .OPTIMIZER_SLOT)
    opt.apply_gradients([(tf.zeros((2, 3)), model.w)])
    step = tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(model=model, optimizer=opt, step=step).restore(prefix).assert_existing_objects_matched()
    return model, opt, step


def test_run_checkpoints_by_step(tmp_path):
    prefixes, _, _ = _save_run(tmp_path / "run", [1.0, 2.0, 6.0])
    assert checkpoints.run_checkpoints(str(tmp_path / "run")) == {100: prefixes[0], 200: prefixes[1], 300: prefixes[2]}


def test_average_is_the_mean_of_weights_and_the_last_of_the_rest(tmp_path):
    prefixes, last_model, last_opt = _save_run(tmp_path / "run", [1.0, 2.0, 6.0])
    last_slot = last_opt.get_slot(last_model.w, "m").numpy()
    out = checkpoints.average_checkpoints(prefixes, str(tmp_path / "avg"))
    assert out == str(tmp_path / "avg" / "ckpt-1")
    # the exporter and evaluation find it by its folder, like a run's latest checkpoint
    assert checkpoints.checkpoint_prefix(str(tmp_path / "avg")) == out
    model, opt, step = _restore(out)
    np.testing.assert_allclose(model.w.numpy(), np.full((2, 3), 3.0))  # (1 + 2 + 6) / 3
    assert int(model.count.numpy()) == 30 and int(step.numpy()) == 300  # integers: the last checkpoint's
    np.testing.assert_allclose(opt.get_slot(model.w, "m").numpy(), last_slot)  # optimizer state: the last's
    first_model, first_opt, _ = _restore(prefixes[0])
    assert not np.allclose(first_opt.get_slot(first_model.w, "m").numpy(), last_slot)  # so "the last's" is seen
    one = checkpoints.average_checkpoints(prefixes[1:2], str(tmp_path / "one"))  # one averages to itself
    np.testing.assert_allclose(_restore(one)[0].w.numpy(), np.full((2, 3), 2.0))


def test_bad_checkpoints_are_named(tmp_path):
    prefixes, _, _ = _save_run(tmp_path / "run", [1.0, 2.0])
    other, _, _ = _save_run(tmp_path / "other", [5.0], extra=True)
    with pytest.raises(ConfigError, match=r"does not match .*one run"):
        checkpoints.average_checkpoints(prefixes + other, str(tmp_path / "avg"))
    with pytest.raises(ConfigError, match="no checkpoint given"):
        checkpoints.average_checkpoints([], str(tmp_path / "avg"))
    missing = str(tmp_path / "run" / "ckpt-9")
    with pytest.raises(ConfigError, match="ckpt-9.*does not exist"):
        checkpoints.average_checkpoints([missing], str(tmp_path / "avg"))
    assert not (tmp_path / "avg").exists()  # nothing written on a refusal
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no checkpoint"):
        checkpoints.run_checkpoints(str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="does not exist"):
        checkpoints.run_checkpoints(str(tmp_path / "nowhere"))


def test_export_averages_the_runs_last_checkpoints_and_refuses_what_it_cannot(tmp_path):
    from synth import export

    prefixes, _, _ = _save_run(tmp_path / "run", [1.0, 2.0, 6.0])
    run = str(tmp_path / "run")
    assert export._checkpoints_to_average(run, 1) == []  # the latest checkpoint, as always
    assert export._checkpoints_to_average(run, 2) == prefixes[1:]
    with pytest.raises(ConfigError, match=r"--average_last=4: run .*run' keeps 3 trained checkpoint"):
        export._checkpoints_to_average(run, 4)
    with pytest.raises(ConfigError, match="needs a run's folder"):
        export._checkpoints_to_average(prefixes[-1], 2)
    with pytest.raises(ConfigError, match="--average_last=0 must be"):
        export._checkpoints_to_average(run, 0)
