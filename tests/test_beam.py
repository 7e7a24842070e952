"""The Apache Beam runner: byte-identical to the local runner (DirectRunner in memory, and in two
worker processes through the command line), Beam metrics, resume, refusal of a foreign run,
pipeline options."""

import glob
import json
import os

import pytest

from synth import beam_pipeline, config as configlib, engine, generate, job
from synth.errors import ConfigError, OutputError
from synth.inputs import load_inputs
from conftest import run_tool, write_config

IN_MEMORY = ["--direct_running_mode=in_memory"]


def _outputs(d) -> dict:
    """Every output whose bytes must not depend on the runner (not manifest.json: it has a time)."""
    paths = sorted(glob.glob(os.path.join(str(d), "*.tfrecord")))
    paths += [os.path.join(str(d), n) for n in ("label_map.pbtxt", "params.jsonl")]
    return {os.path.basename(p): open(p, "rb").read() for p in paths}


def _reference(workdir, num_images=8):
    """The config (8 images: 5 train in 2 shards, 3 val in 1) and the local runner's output."""
    path = write_config(workdir, num_images=num_images)
    s = generate.generate(configlib.load_config(path), str(workdir / "ref"), show_progress=False, workers=1)
    return path, s, _outputs(workdir / "ref")


def _manifest(d) -> dict:
    m = json.loads((d / "manifest.json").read_text())
    return {k: v for k, v in m.items() if k not in ("created", "seconds")}


def test_in_memory_run_matches_local_runner_and_counts_metrics(workdir):
    (workdir / "backgrounds" / "broken.jpg").write_bytes(b"not an image at all")  # skipped from its header
    cfg_path, ref, want = _reference(workdir)
    assert len(ref.skipped) == 1 and len(want) == 5
    s = beam_pipeline.build_and_run(configlib.load_config(cfg_path), str(workdir / "beam"), IN_MEMORY)
    got = _outputs(workdir / "beam")
    assert sorted(got) == ["label_map.pbtxt", "params.jsonl", "train-00000-of-00002.tfrecord",
                           "train-00001-of-00002.tfrecord", "val-00000-of-00001.tfrecord"]
    assert got == want
    assert _manifest(workdir / "beam") == _manifest(workdir / "ref")
    assert not os.path.exists(workdir / "beam" / ".work")
    assert s.counts == ref.counts and s.resumed_shards == 0
    rejected = sum(v for c in ref.counts.values() for v in c["rejected"].values())
    assert s.metrics == {"images": 8, "objects": sum(c["objects"] for c in ref.counts.values()),
                         "rejected_objects": rejected, "skipped_backgrounds": 1}
    assert s.metrics["objects"] >= 8  # every composite here keeps at least one logo


def test_cli_two_worker_processes_match_local_runner(workdir):
    cfg_path, _, want = _reference(workdir)
    out = workdir / "cli"
    # No --direct_running_mode: the default, multi_processing, with two worker processes.
    r = run_tool("make_tfrecords_beam", f"--config={cfg_path}", f"--output_dir={out}", "--",
                 "--direct_num_workers=2", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert _outputs(out) == want
    assert "beam metrics (this run): images=8," in r.stdout
    assert "train: 5 images" in r.stdout and "val: 3 images" in r.stdout


def test_resume_writes_only_the_missing_shards(workdir):
    cfg_path, _, want = _reference(workdir)
    cfg = configlib.load_config(cfg_path)
    out = workdir / "resumed"
    # A run that finished its first shard and then died.
    work, _ = job.prepare_work_dir(str(out), cfg.proto, False)
    first = job.plan(cfg.proto)[0]
    job.ChunkWriter(engine.Engine(load_inputs(cfg), cfg.proto), cfg.proto, work).write(first)
    s = beam_pipeline.build_and_run(cfg, str(out), IN_MEMORY)
    assert s.resumed_shards == 1
    assert s.metrics["images"] == 8 - (first.stop - first.start)
    assert _outputs(out) == want


def test_an_unfinished_run_of_another_config_is_refused(workdir):
    cfg = configlib.load_config(write_config(workdir, num_images=8))
    out = workdir / "out"
    os.makedirs(out / ".work")
    (out / ".work" / "config.fingerprint").write_text("0123456789abcdef\n")
    with pytest.raises(OutputError, match="unfinished run of a different config"):
        beam_pipeline.build_and_run(cfg, str(out), IN_MEMORY)
    assert os.listdir(out / ".work") == ["config.fingerprint"]
    # And a finished dataset is not replaced without overwrite.
    beam_pipeline.build_and_run(cfg, str(workdir / "done"), IN_MEMORY)
    with pytest.raises(OutputError, match="already holds a dataset"):
        beam_pipeline.build_and_run(cfg, str(workdir / "done"), IN_MEMORY)


def test_pipeline_options_defaults_pass_through_and_refusals(workdir):
    assert beam_pipeline.pipeline_options([], cores=3) == [
        "--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=3",
        "--default_sdk_harness_log_level=WARNING"]
    assert beam_pipeline.pipeline_options(IN_MEMORY, cores=3) == IN_MEMORY + [
        "--runner=DirectRunner", "--default_sdk_harness_log_level=WARNING"]
    dataflow = ["--runner=DataflowRunner", "--project=p", "--region", "europe-west1",
                "--temp_location=gs://b/tmp", "--setup_file=./pyproject.toml", "--num_workers=20"]
    assert beam_pipeline.pipeline_options(dataflow, cores=3) == dataflow
    for bad in (["--noverwrite"], ["--direct_num_workers=2", "stray"]):
        with pytest.raises(ConfigError, match=bad[-1]):
            beam_pipeline.pipeline_options(bad)
    cfg = configlib.load_config(write_config(workdir))
    with pytest.raises(OutputError, match="gs://bucket/data"):
        beam_pipeline.build_and_run(cfg, "gs://bucket/data", [])
