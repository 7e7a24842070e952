"""Determinism across workers, crash safety and resume (kill -9), refusal of a foreign run."""

import glob
import os
import signal
import subprocess
import sys
import time

import pytest

from synth import config as configlib, generate, job
from synth.errors import OutputError
from conftest import ROOT, write_config


def _bytes(d):
    return {os.path.basename(p): open(p, "rb").read() for p in sorted(glob.glob(os.path.join(d, "*.tfrecord")))}


def _gen(cfg_path, out, **kw):
    return generate.generate(configlib.load_config(cfg_path), str(out), show_progress=False, **kw)


def test_one_and_two_workers_give_identical_shards(workdir):
    cfg = write_config(workdir, num_images=12)
    _gen(cfg, workdir / "w1", workers=1)
    _gen(cfg, workdir / "w2", workers=2)
    one, two = _bytes(workdir / "w1"), _bytes(workdir / "w2")
    assert len(one) == 3 and one == two
    assert open(workdir / "w1" / "params.jsonl").read() == open(workdir / "w2" / "params.jsonl").read()


def test_kill_9_then_rerun_finishes_without_redoing_shards_and_matches(workdir):
    cfg = write_config(workdir, num_images=160)
    cfg = write_config(workdir, body=open(cfg).read().replace("num_train_shards: 2", "num_train_shards: 4"))
    ref, out = workdir / "ref", workdir / "out"
    _gen(cfg, ref)
    cmd = [sys.executable, os.path.join(ROOT, "tools", "make_tfrecords.py"), f"--config={cfg}",
           f"--output_dir={out}", "--workers=1", "--noprogress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    deadline = time.time() + 120
    while time.time() < deadline and not glob.glob(str(out / ".work" / "*.tfrecord.json")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    finished = glob.glob(str(out / ".work" / "*.tfrecord.json"))
    assert 1 <= len(finished) < 5, "the run must be killed between its first and its last shard"
    assert not glob.glob(str(out / "*.tfrecord")), "no shard under a final name before the run completes"
    done_shards = {os.path.basename(p)[:-len(".json")] for p in finished}
    # Chunks of shards not yet assembled are kept too (a chunk of an assembled shard may be
    # left over if the kill came between assembly and clean-up; it is not counted).
    kept_chunks = [p for p in glob.glob(str(out / ".work" / "*.part-*.json"))
                   if os.path.basename(p).split(".part-")[0] not in done_shards]
    s = _gen(cfg, out)
    assert s.resumed_shards == len(finished) and s.resumed_chunks == len(kept_chunks)
    assert _bytes(out) == _bytes(ref)
    assert not os.path.exists(out / ".work")


def test_chunks_are_cut_at_multiples_of_the_chunk_size_and_cover_the_shard():
    t = job.ShardTask("train", 1, 3, 37, 90)
    parts = job.chunks(t, 16)
    assert [(p.start, p.stop, p.part) for p in parts] == [(37, 48, 0), (48, 64, 1), (64, 80, 2), (80, 90, 3)]
    assert parts[2].name == "train-00001-of-00003.tfrecord.part-00002"
    assert parts[2].shard_name == t.name
    whole = job.ShardTask("val", 0, 1, 0, 5)
    assert job.chunks(whole, 16) == [job.ShardTask("val", 0, 1, 0, 5, 0)]


def test_chunk_size_keeps_backdrop_runs_together():
    class C:
        backdrop_reuse = 3

    assert job.chunk_size(C) % 3 == 0 and job.chunk_size(C) == 15
    C.backdrop_reuse = 40
    assert job.chunk_size(C) == 40


def test_an_unfinished_run_of_another_config_is_refused(workdir):
    cfg = write_config(workdir, num_images=6)
    out = workdir / "out"
    os.makedirs(out / ".work")
    (out / ".work" / "config.fingerprint").write_text("0123456789abcdef\n")
    with pytest.raises(OutputError, match="unfinished run of a different config"):
        _gen(cfg, out)
    assert os.listdir(out / ".work") == ["config.fingerprint"]
