"""The header job: shards read back by the OD API's own input pipeline, byte-identical reruns,
bad inputs skipped and listed, the embedded default."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from synth import dataset
from synth.errors import SynthError
from synth.html import config as hconfig, job, sources
from conftest import odapi_decoded

PAGES = {
    "a.html": "<!doctype html><html><head><link rel=stylesheet href='a.css'></head><body><h1>Alpha report</h1>"
              "<p>Some text that runs along for a while. " * 1 + "</p><h2>Method</h2><p>More.</p><h2>Results</h2>"
              "<p>Numbers.</p><h3>Details</h3><p>End.</p></body></html>",
    "b.html": "<html><body><div role=heading aria-level=1>Beta</div><p>para</p><h4>Small header</h4>"
              "<ul><li>item</li></ul><h2>Another</h2></body></html>",
    "c.htm": "<html><body><h2>Broken <i>markup</h2><p>unclosed<div><h3>Recovered</h3>",
}


def make_site(root):
    site = root / "site"
    site.mkdir()
    for name, text in PAGES.items():
        (site / name).write_text(text, encoding="utf-8")
    (site / "a.css").write_text("body { font-family: 'DejaVu Serif'; } h1 { color: #333 }")
    return site


def write_cfg(root, body: str, name="headers.config") -> str:
    p = root / name
    p.write_text(body, encoding="utf-8")
    return str(p)


BASE = """
html {{ directory: "{site}" }}
num_images: {n}
val_fraction: 0.25
num_train_shards: 2
num_val_shards: 1
seed: 5
page_timeout_s: 10
screen {{ min_width: 400 max_width: 640 min_height: 300 max_height: 480 }}
print {{ probability: 0.4 paper: "A5" }}
camera {{ probability: 0.6 }}
"""


def run(cfg_path, out, workers=1):
    return job.generate_headers(hconfig.load(cfg_path), str(out), show_progress=False, workers=workers)


@pytest.fixture(scope="module")
def headers_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("hjob")
    site = make_site(root)
    cfg = write_cfg(root, BASE.format(site=site, n=8))
    run(cfg, root / "one")
    run(cfg, root / "two", workers=2)
    return root


def test_shards_decode_through_the_od_api_input_pipeline(headers_data):
    import tensorflow as tf
    from object_detection.core import standard_fields as fields

    from synth.tfexample import parse_example

    data_dir = str(headers_data / "one")
    decoded = odapi_decoded(data_dir)
    params = {f"{r['split']}-{r['index']:08d}": r for r in map(json.loads, open(os.path.join(data_dir, dataset.PARAMS)))}
    ours = {}
    for path in dataset.list_shards(data_dir, "train"):
        for raw in tf.data.TFRecordDataset([path]):
            r = parse_example(raw.numpy())
            ours[r["source_id"]] = r
    assert sorted(decoded) == sorted(ours) and len(ours) == 6
    total = 0
    for sid, r in ours.items():
        d = decoded[sid]
        h, w = params[sid]["size"]
        assert tuple(d[fields.InputDataFields.image].shape) == (h, w, 3)
        np.testing.assert_allclose(d[fields.InputDataFields.groundtruth_boxes].numpy(), r["boxes"], atol=1e-6)
        np.testing.assert_allclose(r["boxes"], np.array(params[sid]["boxes"]).reshape(-1, 4), atol=1e-5)
        assert d[fields.InputDataFields.groundtruth_classes].numpy().tolist() == r["class_ids"]
        assert set(r["class_texts"]) <= {"header"}
        total += len(r["class_ids"])
    assert total >= 6  # headers were found
    manifest = json.load(open(os.path.join(data_dir, dataset.MANIFEST)))
    assert manifest["classes"] == [{"id": 1, "name": "header"}] and manifest["kind"] == "html_headers"
    modes = {p["mode"]["mode"] for p in params.values()}
    assert modes == {"screen", "print"}  # both modes drawn across 8 images at probability 0.4


def test_two_runs_with_one_seed_give_byte_identical_shards(headers_data):
    one, two = headers_data / "one", headers_data / "two"  # 1 worker and 2 workers
    names = sorted(n for n in os.listdir(one) if n.endswith(".tfrecord"))
    assert names == sorted(n for n in os.listdir(two) if n.endswith(".tfrecord")) and len(names) == 3
    for n in names + [dataset.PARAMS, dataset.LABEL_MAP]:
        assert (one / n).read_bytes() == (two / n).read_bytes(), n


def test_configure_pipeline_and_inspect_read_the_header_dataset(headers_data, tmp_path):
    from synth import pipeline_config

    path = pipeline_config.configure("faster_rcnn_resnet50_v1_headers", str(headers_data / "one"), str(tmp_path / "run"),
                              num_steps=10)
    text = open(path).read()
    assert "num_classes: 1" in text and "keep_aspect_ratio_resizer" in text


def test_bad_inputs_are_skipped_and_listed(tmp_path):
    site = make_site(tmp_path)
    (site / "image.html").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    (site / "notes.html").write_text("just some words, no markup at all\n")
    (site / "big.html").write_text("<html><body><h1>Big</h1>" + "<p>x</p>" * 2000 + "</body></html>")
    (site / "empty.html").write_text("")
    (site / "noheader.html").write_text("<html><body><p>No header on this page.</p></body></html>")
    (site / "tall.html").write_text("<html><body><h1>Tall</h1><div style='height:50000px'></div></body></html>")
    body = BASE.format(site=site, n=12) + "max_file_bytes: 8000\nmax_page_height_px: 20000\nkeep_pages_without_headers: false\n"
    s = run(write_cfg(tmp_path, body), tmp_path / "out")
    reasons = {os.path.basename(x["path"]): x["reason"] for x in s.skipped}
    assert "not HTML (binary content)" in reasons["image.html"]
    assert "not HTML (no HTML markup" in reasons["notes.html"]
    assert "over max_file_bytes = 8000" in reasons["big.html"]
    assert "is empty" in reasons["empty.html"]
    manifest = json.load(open(tmp_path / "out" / dataset.MANIFEST))
    listed = {os.path.basename(x["path"]): x["reason"] for x in manifest["skipped_inputs"]}
    assert set(reasons) <= set(listed)
    params = [json.loads(line) for line in open(tmp_path / "out" / dataset.PARAMS)]
    used = {os.path.basename(p["page"]) for p in params}
    assert not used & {"image.html", "notes.html", "big.html", "empty.html", "noheader.html", "tall.html"}
    # Pages found unusable while rendering are listed too (seed 5 draws both of them), and the
    # images that drew them show the next usable page instead.
    drawn = {os.path.basename(p["page_drawn"]) for p in params if p["page_drawn"]}
    assert {"noheader.html", "tall.html"} <= drawn
    assert "has no visible header" in listed["noheader.html"]
    assert "over max_page_height_px = 20000" in listed["tall.html"]


def test_a_page_without_headers_is_kept_as_a_negative_when_configured(tmp_path):
    site = tmp_path / "neg"
    site.mkdir()
    (site / "noheader.html").write_text("<html><body><p>No header on this page.</p></body></html>")
    s = run(write_cfg(tmp_path, BASE.format(site=site, n=4)), tmp_path / "out")
    assert s.counts["train"]["images_without_objects"] == s.counts["train"]["images"] == 3
    with pytest.raises(SynthError, match="no HTML page could be rendered.*has no visible header"):
        run(write_cfg(tmp_path, BASE.format(site=site, n=4) + "keep_pages_without_headers: false\n", "skip.config"),
            tmp_path / "out2")


def test_missing_browser_stops_before_anything_is_written(tmp_path):
    site = make_site(tmp_path)
    body = BASE.format(site=site, n=4) + 'browser_executable: "/nonexistent/chromium"\n'
    with pytest.raises(SynthError, match="apt-get install -y chromium"):
        run(write_cfg(tmp_path, body), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_no_usable_page_is_an_error_naming_the_reasons(tmp_path):
    site = tmp_path / "junk"
    site.mkdir()
    (site / "x.html").write_bytes(bytes(100))
    with pytest.raises(SynthError, match=r"no usable HTML page.*x\.html: is not HTML"):
        run(write_cfg(tmp_path, BASE.format(site=site, n=4)), tmp_path / "out")


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(SynthError, match="print.paper\\[0\\] = 'B7'"):
        hconfig.load(write_cfg(tmp_path, 'html { builtin: "package_docs" }\nprint { paper: "B7" }\n'))
    with pytest.raises(SynthError, match="html\\[0\\].builtin = 'wiki'"):
        hconfig.load(write_cfg(tmp_path, 'html { builtin: "wiki" }\n'))
    with pytest.raises(SynthError, match="unknown_field|no field named"):
        hconfig.load(write_cfg(tmp_path, 'html { builtin: "package_docs" }\nunknown_field: 1\n'))
    with pytest.raises(SynthError, match="print.max_pages = 0 is invalid"):
        hconfig.load(write_cfg(tmp_path, 'html { builtin: "package_docs" }\nprint { max_pages: 0 }\n'))
    with pytest.raises(SynthError, match="html\\[0\\].root = '/srv' is invalid: is only for directory or glob"):
        hconfig.load(write_cfg(tmp_path, 'html { builtin: "package_docs" root: "/srv" }\n'))


def test_a_sources_root_is_checked_and_its_pages_carry_it(tmp_path):
    site = make_site(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.html").write_text("<html><body><h1>x</h1></body></html>")
    cfg = hconfig.load(write_cfg(tmp_path, f'html {{ glob: "{tmp_path}/*/*.htm*" root: "{site}" }}\n'))
    pages, skipped, _ = sources.list_pages(cfg)
    assert sorted(os.path.basename(p.path) for p in pages) == ["a.html", "b.html", "c.htm"]
    assert {p.root for p in pages} == {str(site)}
    assert [(os.path.basename(k.path), "is not under the source's root" in k.reason) for k in skipped] == \
        [("x.html", True)]
    missing = hconfig.load(write_cfg(tmp_path, f'html {{ directory: "{site}" root: "{tmp_path}/nope" }}\n',
                                     "missing.config"))
    with pytest.raises(SynthError, match=r"html root .*nope.* does not exist or is not a folder"):
        sources.list_pages(missing)


def test_embedded_default_builds_offline_html_from_installed_packages(tmp_path):
    docs = sources.package_docs()
    assert len(docs) >= 10
    names = [n for n, _ in docs]
    assert names == sorted(names) and "tfod-synth.html" not in names
    for _, text in docs:
        assert "<h1" in text or "<h2" in text
        assert "<img" not in text.lower() and "<script" not in text.lower() and "<iframe" not in text.lower()
    paths = sources.build_package_docs(str(tmp_path / "b"))
    assert [os.path.basename(p) for p in paths] == names
    assert sources.package_docs() == docs  # deterministic


def test_a_page_that_never_loads_is_skipped_and_the_run_goes_on(tmp_path):
    site = tmp_path / "hang"
    site.mkdir()
    (site / "a.html").write_text(PAGES["a.html"])
    (site / "hang.html").write_text("<html><body><h1>Never</h1><script>while (true) {}</script></body></html>")
    body = BASE.format(site=site, n=6).replace("page_timeout_s: 10", "page_timeout_s: 1.5") + "javascript: true\n"
    s = run(write_cfg(tmp_path, body), tmp_path / "out")
    assert sum(v["images"] for v in s.counts.values()) == 6
    listed = {os.path.basename(x["path"]): x["reason"] for x in s.skipped}
    assert "did not finish loading within 1.5 s" in listed["hang.html"]
    params = [json.loads(line) for line in open(tmp_path / "out" / dataset.PARAMS)]
    assert {os.path.basename(p["page"]) for p in params} == {"a.html"}
    assert any(p["page_drawn"] and p["page_drawn"].endswith("hang.html") for p in params)


def test_cli_help_progress_and_errors(tmp_path):
    from conftest import run_tool

    r = run_tool("make_header_tfrecords", "--help")
    assert "--output_dir" in r.stdout and "--workers" in r.stdout and "protos/header_config.proto" in r.stdout
    site = make_site(tmp_path)
    bad = write_cfg(tmp_path, BASE.format(site=site, n=4) + 'browser_executable: "/nonexistent/chromium"\n', "bad.config")
    r = run_tool("make_header_tfrecords", f"--config={bad}", f"--output_dir={tmp_path / 'nb'}")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "apt-get install -y chromium" in r.stderr and not (tmp_path / "nb").exists()
    out = tmp_path / "out"
    r = run_tool("make_header_tfrecords", f"--config={write_cfg(tmp_path, BASE.format(site=site, n=4))}",
                 f"--output_dir={out}", "--num_images=3", "--seed=2", "--workers=1")
    assert r.returncode == 0, r.stderr
    assert "train: 2 images" in r.stdout and "pages:" in r.stderr  # the progress bar
    assert json.loads((out / dataset.MANIFEST).read_text())["seed"] == 2


def _outputs(d) -> dict:
    names = sorted(n for n in os.listdir(d) if n.endswith(".tfrecord")) + [dataset.PARAMS, dataset.LABEL_MAP]
    return {n: (d / n).read_bytes() for n in names}


def test_the_beam_runner_runs_the_header_source_byte_for_byte(headers_data):
    from synth import beam_pipeline

    cfg = hconfig.load(str(headers_data / "headers.config"))
    s = beam_pipeline.build_and_run(cfg, str(headers_data / "beam"), ["--direct_running_mode=in_memory"],
                                    source=job.SOURCE)
    assert _outputs(headers_data / "beam") == _outputs(headers_data / "one")
    assert s.metrics["images"] == 8 and s.counts["train"]["images"] == 6
    manifest = json.loads((headers_data / "beam" / dataset.MANIFEST).read_text())
    assert manifest["kind"] == "html_headers" and manifest["num_pages"] == 3 and "image_size" not in manifest
    assert manifest["package_versions"]["playwright"] != "not installed"


def test_records_carry_each_images_own_size_and_the_browser_is_closed(headers_data):
    import psutil

    from synth import tfrecord_io
    from synth.tfexample import decode_features
    from synth import tfrecord_keys as K

    params = {f"{r['split']}-{r['index']:08d}": r
              for r in map(json.loads, open(headers_data / "one" / dataset.PARAMS))}
    sizes = set()
    for path in dataset.list_shards(str(headers_data / "one"), "train"):
        for raw in tfrecord_io.read_records(path):
            f = decode_features(raw)
            size = [f[K.IMAGE_HEIGHT][0], f[K.IMAGE_WIDTH][0]]
            assert size == params[f[K.IMAGE_SOURCE_ID][0].decode()]["size"]
            sizes.add(tuple(size))
    assert len(sizes) > 1  # pages differ in size: the config's image_size does not exist here
    # The single-process run (the fixture's first) closed its browser when it finished.
    assert not [p for p in psutil.Process().children(recursive=True) if "chrom" in p.name().lower()]


def test_an_interrupted_header_run_resumes_to_the_same_bytes(headers_data):
    from synth import job as joblib

    cfg = hconfig.load(str(headers_data / "headers.config"))
    out = headers_data / "resumed"
    j = joblib.Job(cfg, str(out), source=job.SOURCE)  # a run that wrote its first chunk and then died
    writer = j.worker_spec(with_inputs=True).open()
    try:
        writer.write(j.todo[0])
    finally:
        writer.close()
    s = run(str(headers_data / "headers.config"), out)
    assert s.resumed_shards + s.resumed_chunks == 1
    assert _outputs(out) == _outputs(headers_data / "one")


def test_the_embedded_default_is_written_into_the_work_folder_and_rendered(tmp_path):
    from synth import job as joblib

    cfg = hconfig.with_overrides(hconfig.load(None), num_images=2, seed=1)
    j_inputs = joblib.source_kind(job.SOURCE).load_inputs(cfg)  # nothing written yet
    assert all(not os.path.isabs(p.path) for p in j_inputs.pages) and j_inputs.docs
    s = job.generate_headers(cfg, str(tmp_path / "out"), show_progress=False)
    assert sum(v["images"] for v in s.counts.values()) == 2
    manifest = json.loads((tmp_path / "out" / dataset.MANIFEST).read_text())
    names = {name for name, _ in j_inputs.docs}
    assert manifest["num_pages"] == len(names) and all(p.startswith("builtin:package_docs/") for p in manifest["pages"])
    params = [json.loads(line) for line in open(tmp_path / "out" / dataset.PARAMS)]
    assert all(p["page"].split("/", 1)[1] in names for p in params)
    assert not (tmp_path / "out" / ".work").exists()
