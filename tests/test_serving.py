"""TF Serving clients, export checks and models.config, without training or a real server.

Tiny SavedModels with the serving contract of an OD API export (input_tensor -> detection_boxes,
detection_scores, detection_classes, num_detections) find "the brightest region" of an image, so
the right answer is known: served over REST by FakeRestServing (an http.server implementing TF
Serving's predict endpoint) and over gRPC by an in-process PredictionService. A test against the
real tensorflow_model_server runs when the binary is on PATH."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from conftest import ROOT

tf = pytest.importorskip("tensorflow")

from synth import export, savedmodel, serving  # noqa: E402
from synth.checkpoints import checkpoint_prefix  # noqa: E402
from synth.errors import ConfigError, InputImageError, OutputError  # noqa: E402
from synth.label_map import label_map_text  # noqa: E402

H, W = 60, 80
ROWS, COLS = (12, 30), (50, 74)  # the bright patch: rows 12..29, columns 50..73
BRIGHT_BOX = [12 / H, 50 / W, 30 / H, 74 / W]


def scene(h: int = H, w: int = W) -> np.ndarray:
    """Dark noisy image with one bright patch at ROWS x COLS."""
    rgb = np.random.default_rng(0).integers(10, 40, (h, w, 3)).astype(np.uint8)
    rgb[ROWS[0]:ROWS[1], COLS[0]:COLS[1]] = (250, 240, 230)
    return rgb


# ------------------------------------------------------------------ tiny SavedModels

def _detect(img):
    """uint8 [H, W, 3] -> boxes [3, 4], scores [3], classes [3]: the brightest region (class 1),
    the whole image (class 2, score 0.1) and a padding row."""
    g = tf.reduce_mean(tf.cast(img, tf.float32), -1)
    m = g >= 0.9 * tf.reduce_max(g)
    rows = tf.cast(tf.where(tf.reduce_any(m, 1))[:, 0], tf.float32)
    cols = tf.cast(tf.where(tf.reduce_any(m, 0))[:, 0], tf.float32)
    h, w = tf.cast(tf.shape(g)[0], tf.float32), tf.cast(tf.shape(g)[1], tf.float32)
    box = tf.stack([rows[0] / h, cols[0] / w, (rows[-1] + 1) / h, (cols[-1] + 1) / w])
    boxes = tf.stack([box, tf.constant([0.0, 0.0, 1.0, 1.0]), tf.zeros([4])])
    return boxes, tf.stack([tf.reduce_max(g) / 255.0, 0.1, 0.0]), tf.constant([1.0, 2.0, 0.0])


def _outputs(images):
    boxes, scores, classes = tf.map_fn(_detect, images, fn_output_signature=(tf.float32, tf.float32, tf.float32))
    return {"detection_boxes": boxes, "detection_scores": scores, "detection_classes": classes,
            "num_detections": tf.fill([tf.shape(boxes)[0]], 2.0)}


class ImageModel(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
    def serve(self, input_tensor):
        return _outputs(input_tensor)


class EncodedModel(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="input_tensor")])
    def serve(self, input_tensor):
        images = tf.map_fn(lambda s: tf.ensure_shape(tf.image.decode_image(s, channels=3), [None, None, 3]),
                           input_tensor, fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
        return _outputs(images)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """EXPORT_DIR with tiny/1 (image_tensor) and tiny_encoded/1 (encoded_image_string_tensor)."""
    root = tmp_path_factory.mktemp("exports")
    for name, module in (("tiny", ImageModel()), ("tiny_encoded", EncodedModel())):
        path = root / name / "1"
        tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve.get_concrete_function()})
        os.makedirs(path / "assets.extra")
        (path / "assets.extra" / "label_map.pbtxt").write_text(label_map_text(["acme", "scene"]))
    return root


# ------------------------------------------------------------------ an in-process TF Serving REST API

class FakeRestServing:
    """TF Serving's REST predict endpoint for SavedModels in `models` ({name: {version: dir}}),
    run in-process on 127.0.0.1 (free port). Model "garbled" answers text that is not JSON."""

    def __init__(self, models: dict[str, dict[int, str]]):
        self.fns = {(n, v): tf.saved_model.load(d).signatures["serving_default"]
                    for n, vs in models.items() for v, d in vs.items()}
        self.paths: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code, body):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                fake.paths.append(self.path)
                code, body = fake.answer(self.path, self.rfile.read(int(self.headers["Content-Length"])))
                self._send(code, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, path: str, raw: bytes):
        m = re.match(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:predict$", path)
        if not m:
            return 404, {"error": f"Malformed request: POST {path}"}
        name, version = m.group(1), m.group(2)
        if name == "garbled":
            return 200, b"<html>proxy error</html>"
        known = sorted(v for n, v in self.fns if n == name)
        v = int(version) if version else (known[-1] if known else None)
        if (name, v) not in self.fns:
            spec = f"Specific({name}, {version})" if version else f"Latest({name})"
            return 404, {"error": f"Servable not found for request: {spec}"}
        try:
            body = json.loads(raw, parse_constant=_reject_constant)
        except ValueError as exc:
            return 400, {"error": f"JSON Parse error: {exc}"}
        fn = self.fns[(name, v)]
        spec = fn.structured_input_signature[1]["input_tensor"]
        try:
            inst = body["instances"]
            if spec.dtype == tf.string:
                value = tf.constant([base64.b64decode(i["b64"]) for i in inst])
            else:
                value = tf.constant(np.array(inst, spec.dtype.as_numpy_dtype))
            out = {k: t.numpy() for k, t in fn(input_tensor=value).items()}
        except Exception as exc:  # TF Serving answers 400 with the message
            return 400, {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
        n = len(next(iter(out.values())))
        return 200, {"predictions": [{k: a[i].tolist() for k, a in out.items()} for i in range(n)]}

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def rest(exports):
    server = FakeRestServing({"tiny": {1: str(exports / "tiny" / "1")},
                              "tiny_encoded": {1: str(exports / "tiny_encoded" / "1")}})
    yield server
    server.close()


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")  # as TF Serving's parser: NaN and Infinity are not JSON


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_bright(dets, names=True):
    assert len(dets) == 1, dets  # the whole-image detection (score 0.1) is below min_score
    d = dets[0]
    np.testing.assert_allclose(d.box, BRIGHT_BOX, atol=1e-5)
    assert d.class_id == 1 and d.class_name == ("acme" if names else "1")
    assert d.score == pytest.approx(np.mean([250, 240, 230]) / 255, abs=1e-4)


# ------------------------------------------------------------------ REST

def test_rest_request_bodies_per_input_type():
    rgb = scene()
    body = serving.build_rest_request([rgb], "image_tensor")
    assert body["signature_name"] == "serving_default"
    arr = np.array(body["instances"])
    assert arr.shape == (1, H, W, 3) and arr.dtype.kind == "i" and np.array_equal(arr[0], rgb)
    assert json.loads(json.dumps(body)) == body  # plain JSON
    assert serving.build_rest_request(rgb, "image_tensor") == body  # one array is one image
    fl = serving.build_rest_request([rgb, rgb], "float_image_tensor")["instances"]
    assert np.array(fl).shape == (2, H, W, 3) and isinstance(fl[0][0][0][0], float)
    enc = serving.build_rest_request([rgb], "encoded_image_string_tensor")["instances"]
    png = np.frombuffer(base64.b64decode(enc[0]["b64"]), np.uint8)
    assert np.array_equal(cv2.cvtColor(cv2.imdecode(png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), rgb)  # lossless
    ex = tf.train.Example.FromString(base64.b64decode(
        serving.build_rest_request([rgb], "tf_example")["instances"][0]["b64"]))
    f = ex.features.feature
    decoded = tf.image.decode_image(f["image/encoded"].bytes_list.value[0], channels=3).numpy()
    assert np.array_equal(decoded, rgb) and f["image/height"].int64_list.value[0] == H

    with pytest.raises(ConfigError, match="one image per request"):
        serving.build_rest_request([rgb, rgb], "image_tensor")
    with pytest.raises(ConfigError, match="one size"):
        serving.build_rest_request([rgb, rgb[:30]], "float_image_tensor")
    with pytest.raises(InputImageError, match="RGB uint8"):
        serving.build_rest_request([rgb.astype(np.float32)], "image_tensor")
    with pytest.raises(ConfigError, match="'jpeg_tensor' is not one of image_tensor"):
        serving.build_rest_request([rgb], "jpeg_tensor")


def test_rest_url_and_server_validation():
    assert serving.rest_url("localhost:8501", "logo") == "http://localhost:8501/v1/models/logo:predict"
    assert (serving.rest_url("http://10.0.0.2:9000/", "logo", 3)
            == "http://10.0.0.2:9000/v1/models/logo/versions/3:predict")
    for bad in ("localhost", "localhost:0", "host:99999", "a b:1", ""):
        with pytest.raises(ConfigError, match="HOST:PORT"):
            serving.parse_server(bad)
    with pytest.raises(ConfigError, match="--model='a/b'"):
        serving.rest_url("localhost:8501", "a/b")
    with pytest.raises(ConfigError, match="--version=0"):
        serving.rest_url("localhost:8501", "logo", 0)


def test_parse_rest_response_row_and_columnar():
    pred = {"detection_boxes": [[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 1.0, 1.0], [0, 0, 0, 0]],
            "detection_scores": [0.9, 0.3, 0.0], "detection_classes": [2.0, 1.0, 0.0], "num_detections": 2.0,
            "raw_detection_scores": [[0.1]]}
    names = {1: "acme", 2: "other"}
    dets = serving.parse_rest_response(json.dumps({"predictions": [pred, pred]}), names)
    assert len(dets) == 2 and len(dets[0]) == 2  # the padding row is cut by num_detections
    assert dets[0][0].box == [0.1, 0.2, 0.3, 0.4] and dets[0][0].class_name == "other"
    assert dets[0][1].class_name == "acme" and dets[0][1].score == 0.3
    assert [d.score for d in serving.parse_rest_response({"predictions": [pred]}, min_score=0.5)[0]] == [0.9]
    assert len(serving.parse_rest_response({"predictions": [pred]}, max_detections=1)[0]) == 1
    columnar = {"outputs": {k: [v] for k, v in pred.items()}}
    assert serving.parse_rest_response(columnar, names) == dets[:1]
    assert serving.parse_rest_response({"predictions": [pred]})[0][0].class_name == "2"  # no label map

    with pytest.raises(serving.ServingError, match="TF Serving: Servable not found"):
        serving.parse_rest_response({"error": "Servable not found for request: Latest(x)"})
    with pytest.raises(serving.ServingError, match="not JSON"):
        serving.parse_rest_response(b"<html>")
    with pytest.raises(serving.ServingError, match=r"lacks outputs \['detection_boxes'"):
        serving.parse_rest_response({"predictions": [{"num_detections": 1.0}]})
    with pytest.raises(serving.ServingError, match="no 'predictions'"):
        serving.parse_rest_response({"predictions": [[0.1, 0.2]]})


def test_rest_client_end_to_end(rest, exports):
    names = serving.read_class_names(str(exports / "tiny"))  # model folder -> highest version's label map
    assert names == {1: "acme", 2: "scene"}
    client = serving.RestClient(rest.address, "tiny", names=names)
    _check_bright(client.predict(scene(), min_score=0.5))
    assert rest.paths[-1] == "/v1/models/tiny:predict"
    all_dets = serving.RestClient(rest.address, "tiny", version=1)(scene(), 0.0)
    assert rest.paths[-1] == "/v1/models/tiny/versions/1:predict"
    assert [d.class_name for d in all_dets] == ["1", "2"] and all_dets[1].box == [0.0, 0.0, 1.0, 1.0]
    # The encoded model decodes the PNG the client sends: the same pixels, the same box.
    enc = serving.RestClient(rest.address, "tiny_encoded", input_type="encoded_image_string_tensor", names=names)
    _check_bright(enc.predict(scene(), min_score=0.5))
    other = np.zeros((90, 50, 3), np.uint8)
    other[0:9, 40:50] = 255
    np.testing.assert_allclose(enc(other, 0.5)[0].box, [0.0, 0.8, 0.1, 1.0], atol=1e-5)


def test_rest_client_errors(rest):
    with pytest.raises(serving.ServingError, match=r"HTTP 404: Servable not found for request: Latest\(nope\)"):
        serving.RestClient(rest.address, "nope").predict(scene())
    with pytest.raises(serving.ServingError, match=r"HTTP 404: .*Specific\(tiny, 7\)"):
        serving.RestClient(rest.address, "tiny", version=7).predict(scene())
    with pytest.raises(serving.ServingError, match="HTTP 400: .*"):  # uint8 image sent to a string input
        serving.RestClient(rest.address, "tiny_encoded").predict(scene())
    with pytest.raises(serving.ServingError, match="HTTP 400: JSON Parse error"):
        serving.RestClient(rest.address, "tiny").request(float("nan"))  # NaN is not JSON
    with pytest.raises(serving.ServingError, match="not JSON: b'<html>proxy error"):
        serving.RestClient(rest.address, "garbled").predict(scene())
    port = _free_port()
    with pytest.raises(serving.ServingError, match=f"cannot reach TF Serving's REST API at 127.0.0.1:{port}"):
        serving.RestClient(f"127.0.0.1:{port}", "tiny", timeout=5).predict(scene())


def test_serving_client_cli(rest, exports, tmp_path):
    img = tmp_path / "photo.png"
    cv2.imwrite(str(img), cv2.cvtColor(scene(), cv2.COLOR_RGB2BGR))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, os.path.join(ROOT, "tools", "serving_client.py"), f"--server={rest.address}",
           "--model=tiny", f"--label_map={exports / 'tiny' / '1'}"]
    r = subprocess.run(cmd + [str(img), str(tmp_path / "missing.jpg")], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{img}: 1 detections" in r.stdout and "acme\t0.941" in r.stdout
    assert "skipped: " in r.stdout and "missing.jpg" in r.stdout
    out = tmp_path / "served"
    r = subprocess.run(cmd + ["--min_score=0", f"--output_dir={out}", str(img)], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads((out / "detections.json").read_text())
    assert result["model"] == "tiny" and result["protocol"] == "rest"
    assert [d["class_name"] for d in result["images"][0]["detections"]] == ["acme", "scene"]
    assert os.path.isfile(result["images"][0]["drawn"])
    r = subprocess.run(cmd[:2] + [f"--server={rest.address}", "--model=nope", str(img)], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 2 and "Servable not found" in r.stderr


# ------------------------------------------------------------------ gRPC

def _response_for(fn, req):
    from tensorflow_serving.apis import predict_pb2

    out = fn(input_tensor=tf.constant(tf.make_ndarray(req.inputs["input_tensor"])))
    resp = predict_pb2.PredictResponse()
    resp.model_spec.CopyFrom(req.model_spec)
    for k, v in out.items():
        resp.outputs[k].CopyFrom(tf.make_tensor_proto(v.numpy()))
    return resp


def test_grpc_request_and_response(exports):
    rgb = scene()
    req = serving.build_grpc_request("tiny", 1, [rgb])
    assert (req.model_spec.name, req.model_spec.version.value, req.model_spec.signature_name) == \
        ("tiny", 1, "serving_default")
    sent = tf.make_ndarray(req.inputs["input_tensor"])
    assert sent.dtype == np.uint8 and np.array_equal(sent, rgb[None])
    assert not serving.build_grpc_request("tiny", None, [rgb]).model_spec.HasField("version")
    fn = tf.saved_model.load(str(exports / "tiny" / "1")).signatures["serving_default"]
    _check_bright(serving.parse_grpc_response(_response_for(fn, req), {1: "acme"}, min_score=0.5)[0])

    enc = serving.build_grpc_request("tiny_encoded", None, [rgb, rgb], "encoded_image_string_tensor")
    strings = tf.make_ndarray(enc.inputs["input_tensor"])
    assert strings.shape == (2,) and np.array_equal(tf.image.decode_png(strings[1]).numpy(), rgb)
    fn = tf.saved_model.load(str(exports / "tiny_encoded" / "1")).signatures["serving_default"]
    both = serving.parse_grpc_response(_response_for(fn, enc), {1: "acme"}, min_score=0.5)
    assert len(both) == 2
    _check_bright(both[1])


def test_grpc_client_end_to_end(exports):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    fn = tf.saved_model.load(str(exports / "tiny" / "1")).signatures["serving_default"]

    class Service(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            if request.model_spec.name != "tiny":
                context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found: {request.model_spec.name}")
            return _response_for(fn, request)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with serving.GrpcClient(f"127.0.0.1:{port}", "tiny", names={1: "acme"}) as client:
            _check_bright(client.predict(scene(), min_score=0.5))
        with serving.GrpcClient(f"127.0.0.1:{port}", "nope") as client:
            with pytest.raises(serving.ServingError, match="NOT_FOUND: Servable not found: nope"):
                client.predict(scene())
    finally:
        server.stop(0)
    with serving.GrpcClient(f"127.0.0.1:{_free_port()}", "tiny", timeout=3) as client:
        with pytest.raises(serving.ServingError, match="UNAVAILABLE"):
            client.predict(scene())
    with pytest.raises(ConfigError, match="without http://"):
        serving.GrpcClient("http://localhost:8500", "tiny")


@pytest.mark.skipif(shutil.which("tensorflow_model_server") is None,
                    reason="tensorflow_model_server is not on PATH (it cannot be pip-installed)")
def test_real_tensorflow_model_server(exports, tmp_path):
    config = export.write_models_config(str(exports))
    grpc_port, rest_port = _free_port(), _free_port()
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(["tensorflow_model_server", f"--port={grpc_port}", f"--rest_api_port={rest_port}",
                             f"--model_config_file={config}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        rest_client = serving.RestClient(f"127.0.0.1:{rest_port}", "tiny", names={1: "acme"}, timeout=5)
        deadline = time.time() + 60
        while True:
            try:
                dets = rest_client.predict(scene(), min_score=0.5)
                break
            except serving.ServingError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.5)
        _check_bright(dets)
        _check_bright(serving.RestClient(f"127.0.0.1:{rest_port}", "tiny_encoded", version=1, names={1: "acme"},
                                         input_type="encoded_image_string_tensor").predict(scene(), 0.5))
        with serving.GrpcClient(f"127.0.0.1:{grpc_port}", "tiny", names={1: "acme"}) as client:
            _check_bright(client.predict(scene(), min_score=0.5))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


# ------------------------------------------------------------------ export checks

def test_check_signature_per_input_type(exports):
    fn = tf.saved_model.load(str(exports / "tiny" / "1")).signatures["serving_default"]
    info = export.check_signature(fn, "image_tensor")
    assert info["input"] == {"name": "input_tensor", "dtype": "uint8", "shape": [1, None, None, 3]}
    assert set(savedmodel.OUTPUT_KEYS) <= set(info["outputs"])
    with pytest.raises(export.ExportVerificationError, match=r"uint8 \[1, None, None, 3\]; input type "
                       r"'encoded_image_string_tensor' needs string \[None\]"):
        export.check_signature(fn, "encoded_image_string_tensor")
    with pytest.raises(export.ExportVerificationError, match="float_image_tensor' needs float32"):
        export.check_signature(fn, "float_image_tensor")
    enc = tf.saved_model.load(str(exports / "tiny_encoded" / "1")).signatures["serving_default"]
    for input_type in ("encoded_image_string_tensor", "tf_example"):
        assert export.check_signature(enc, input_type)["input"]["dtype"] == "string"
    with pytest.raises(export.ExportVerificationError, match="needs uint8"):
        export.check_signature(enc, "image_tensor")

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="input_tensor")])
    def boxes_only(input_tensor):
        return {"detection_boxes": tf.zeros([1, 1, 4]), "num_detections": tf.ones([1])}

    float_fn = boxes_only.get_concrete_function()
    with pytest.raises(export.ExportVerificationError,
                       match=r"lacks outputs \['detection_classes', 'detection_scores'\]"):
        export.check_signature(float_fn, "float_image_tensor")
    with pytest.raises(ConfigError, match="'png' is not one of"):
        export.check_signature(float_fn, "png")


def _dets(boxes, scores, classes):
    return {"detection_boxes": np.array(boxes, np.float32), "detection_scores": np.array(scores, np.float32),
            "detection_classes": np.array(classes, np.float32), "num_detections": np.array([len(scores)], np.float32)}


def test_compare_detections():
    boxes = [[0.1, 0.1, 0.5, 0.5], [0.2, 0.3, 0.6, 0.9], [0.0, 0.0, 0.2, 0.2]]
    ref = _dets(boxes, [0.9, 0.5, 0.5], [1, 1, 1])
    same = export.compare_detections(ref, ref, 1e-4)
    assert same["num_detections"] == 3 and same["max_box_diff"] == 0 and same["max_score_diff"] == 0
    near = export.compare_detections(_dets(np.array(boxes) + 2e-5, [0.9, 0.5 + 1e-5, 0.5], [1, 1, 1]), ref, 1e-4)
    assert near["max_box_diff"] == pytest.approx(2e-5, abs=1e-6)
    assert near["max_score_diff"] == pytest.approx(1e-5, abs=1e-6)
    swapped = _dets([boxes[0], boxes[2], boxes[1]], [0.9, 0.5, 0.5], [1, 1, 1])  # a tie in NMS order
    assert export.compare_detections(swapped, ref, 1e-4)["max_box_diff"] == 0
    with pytest.raises(export.ExportVerificationError, match=r"max \|box difference\| 0.001"):
        export.compare_detections(_dets(np.array(boxes) + 1e-3, [0.9, 0.5, 0.5], [1, 1, 1]), ref, 1e-4)
    with pytest.raises(export.ExportVerificationError, match=r"max \|score difference\| 0.01"):
        export.compare_detections(_dets(boxes, [0.91, 0.5, 0.5], [1, 1, 1]), ref, 1e-4)
    with pytest.raises(export.ExportVerificationError, match="1 of 3 detections without a match"):
        export.compare_detections(_dets(boxes, [0.9, 0.5, 0.5], [2, 1, 1]), ref, 1e-4)
    with pytest.raises(export.ExportVerificationError, match="finds 2 detections, the checkpoint 3"):
        export.compare_detections(_dets(boxes[:2], [0.9, 0.5], [1, 1]), ref, 1e-4)


def test_models_config_lists_model_folders(tmp_path):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    def read():
        cfg = model_server_config_pb2.ModelServerConfig()
        text_format.Parse((tmp_path / "models.config").read_text(), cfg)
        return {c.name: c for c in cfg.model_config_list.config}

    for folder in ("a/1", "a/3", "b/2", "c/notaversion", "a/.export-x", ".hidden/1"):
        os.makedirs(tmp_path / folder)
    for folder in ("a/1", "a/3", "b/2", ".hidden/1"):
        (tmp_path / folder / "saved_model.pb").write_bytes(b"")
    assert export.model_folders(str(tmp_path)) == ["a", "b"]
    export.write_models_config(str(tmp_path))
    models = read()
    assert sorted(models) == ["a", "b"]
    assert models["a"].base_path == str(tmp_path / "a") and os.path.isabs(models["b"].base_path)
    assert models["a"].model_platform == "tensorflow"

    # A hand-added version policy and a model served from elsewhere survive a refresh; a deleted model goes.
    text = (tmp_path / "models.config").read_text().replace(
        'name: "a"', 'name: "a"\n    model_version_policy { all { } }')
    text = text.replace("model_config_list {", 'model_config_list {\n  config { name: "far" '
                        'base_path: "/srv/models/far" model_platform: "tensorflow" }', 1)
    (tmp_path / "models.config").write_text(text)
    shutil.rmtree(tmp_path / "b")
    export.write_models_config(str(tmp_path))
    models = read()
    assert sorted(models) == ["a", "far"] and models["a"].model_version_policy.HasField("all")

    (tmp_path / "models.config").write_text("model_config_list { config { nme: 1 } }")
    with pytest.raises(ConfigError, match="models.config' is not a TF Serving model config"):
        export.write_models_config(str(tmp_path))


def test_serving_instructions():
    text = export.serving_instructions("/srv/exports", "logo", "image_tensor")
    assert "tensorflow_model_server --port=8500 --rest_api_port=8501 " \
           "--model_config_file=/srv/exports/models.config" in text
    curl = next(line for line in text.splitlines() if "curl" in line)
    assert "http://localhost:8501/v1/models/logo:predict" in curl
    body = json.loads(curl.split("-d '", 1)[1].rstrip("'"))
    assert np.array(body["instances"]).shape == (1, 2, 2, 3) and body["signature_name"] == "serving_default"
    enc = export.serving_instructions("/srv/exports", "logo", "encoded_image_string_tensor")
    assert '"b64"' in enc and "base64 -w0 photo.jpg" in enc and "--input_type=encoded_image_string_tensor" in enc


# ------------------------------------------------------------------ export input errors (no export runs)

@pytest.fixture
def pipeline_config(tmp_path):
    from google.protobuf import text_format

    from synth import pipeline_config

    (tmp_path / "label_map.pbtxt").write_text(label_map_text(["acme"]))
    msg = pipeline_config.read_pipeline(pipeline_config.template_path("small_cpu"))
    msg.train_input_reader.label_map_path = str(tmp_path / "label_map.pbtxt")
    path = tmp_path / "pipeline.config"
    path.write_text(text_format.MessageToString(msg))
    return str(path)


def _tf2_checkpoint(directory, **objects):
    tf.train.CheckpointManager(tf.train.Checkpoint(**objects), str(directory), max_to_keep=1).save()
    return str(directory)


def _one_variable_run(directory) -> str:
    """A run folder whose checkpoint holds a `model` with one variable: enough to reach the exporter."""
    module = tf.Module()
    module.w = tf.Variable(1.0)
    return _tf2_checkpoint(directory, model=module)


def test_export_refuses_an_existing_version(pipeline_config, tmp_path):
    run = _one_variable_run(tmp_path / "run")
    out = tmp_path / "exports"
    os.makedirs(out / "logo" / "1")
    (out / "logo" / "1" / "saved_model.pb").write_bytes(b"kept")
    with pytest.raises(OutputError, match=r"logo/1' already exists; TF Serving versions are immutable"):
        export.export(pipeline_config, run, str(out), "logo", version=1)
    assert os.listdir(out / "logo") == ["1"] and (out / "logo" / "1" / "saved_model.pb").read_bytes() == b"kept"
    assert not os.path.exists(out / "models.config")
    for bad, match in ((dict(version=0), "--version=0"), (dict(input_type="jpeg"), "'jpeg' is not one of"),
                       (dict(atol=0.0), "--atol=0.0")):
        with pytest.raises(ConfigError, match=match):
            export.export(pipeline_config, run, str(out), "logo", **bad)
    with pytest.raises(ConfigError, match="--model_name='../x'"):
        export.export(pipeline_config, run, str(out), "../x")


def test_export_refuses_checkpoints_that_are_not_tf2_detection_models(pipeline_config, tmp_path):
    tf1 = tmp_path / "tf1"
    with tf.Graph().as_default():
        tf.compat.v1.get_variable("w", initializer=1.0)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, str(tf1 / "model.ckpt"), global_step=5)
    other = _tf2_checkpoint(tmp_path / "other", w=tf.Variable(1.0), step=tf.Variable(3))
    out = tmp_path / "exports"
    cases = ((str(tf1), "model.ckpt-5' .*is a name-based TF1 checkpoint"),
             (other, r"holds no 'model' object \(it holds: save_counter, step, w\)"),
             (str(tmp_path / "empty"), "neither a folder nor a checkpoint prefix"),
             (str(tmp_path), "holds no TF2 checkpoint"))
    for path, match in cases:
        with pytest.raises(ConfigError, match=match) as err:
            export.export(pipeline_config, path, str(out), "logo")
        assert os.path.basename(path) in str(err.value)
        assert not os.path.exists(out)  # nothing left behind
    # A ckpt-N prefix names one checkpoint of a run.
    run = _one_variable_run(tmp_path / "run")
    assert checkpoint_prefix(run + "/ckpt-1") == run + "/ckpt-1" == checkpoint_prefix(run)


def test_failed_export_leaves_nothing_behind(pipeline_config, tmp_path, monkeypatch):
    from object_detection import exporter_lib_v2

    def half_export(input_type, msg, checkpoint_dir, output_dir):
        os.makedirs(os.path.join(output_dir, "saved_model", "variables"))  # partly written, then the restore fails
        raise AssertionError("Unresolved object in checkpoint (root).model._box_predictor")

    monkeypatch.setattr(exporter_lib_v2, "export_inference_graph", half_export)
    run = _one_variable_run(tmp_path / "run")
    out = tmp_path / "exports"
    with pytest.raises(ConfigError, match=r"ckpt-1' does not fit the model of .*pipeline.config'.*Unresolved"):
        export.export(pipeline_config, run, str(out), "logo")
    assert not os.path.exists(out)
    os.makedirs(out / "other" / "1")
    (out / "other" / "1" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ConfigError, match="does not fit"):
        export.export(pipeline_config, run, str(out), "logo")
    assert os.listdir(out) == ["other"]  # the existing export folder stays, without a logo/ folder


def _record_exports(monkeypatch) -> list:
    """Replaces the OD API's exporter with one that records the pipeline it was handed (what an
    override made of the run's) and stops: the export itself is tested end to end."""
    from object_detection import exporter_lib_v2

    seen = []

    def record(input_type, msg, checkpoint_dir, output_dir):
        seen.append(msg)
        raise AssertionError("stop here: the export itself is tested end to end")

    monkeypatch.setattr(exporter_lib_v2, "export_inference_graph", record)
    return seen


def test_export_merges_a_config_override_and_refuses_bad_ones(pipeline_config, tmp_path, monkeypatch):
    from synth import pipeline_config as pipeline_lib  # the fixture has the module's name

    seen = _record_exports(monkeypatch)
    run = _one_variable_run(tmp_path / "run")
    out = tmp_path / "exports"
    override = ("model { faster_rcnn { first_stage_max_proposals: 100 second_stage_post_processing "
                "{ batch_non_max_suppression { max_total_detections: 100 } } } }")
    with pytest.raises(ConfigError, match="does not fit"):
        export.export(pipeline_config, run, str(out), "logo", config_override=override)
    frcnn = seen[0].model.faster_rcnn
    assert frcnn.first_stage_max_proposals == 100
    assert frcnn.second_stage_post_processing.batch_non_max_suppression.max_total_detections == 100
    # the rest of the run's pipeline is kept, in the messages the override names too
    run_msg = pipeline_lib.read_pipeline(pipeline_config).model.faster_rcnn
    assert run_msg.first_stage_max_proposals != 100
    nms = frcnn.second_stage_post_processing.batch_non_max_suppression
    assert nms.iou_threshold == run_msg.second_stage_post_processing.batch_non_max_suppression.iou_threshold
    assert list(frcnn.first_stage_anchor_generator.grid_anchor_generator.scales) == list(
        run_msg.first_stage_anchor_generator.grid_anchor_generator.scales)
    # bad overrides fail before anything is written, naming the flag and what is wrong
    cases = (("model { faster_rcnn { first_stage_max_proposal: 100 } }", r"--config_override=.*is not a pipeline"
              r" config fragment.*first_stage_max_proposal"),
             ("model { faster_rcnn { first_stage_anchor_generator { grid_anchor_generator { scales: 0.5 } } } }",
              r"--config_override sets model\.faster_rcnn\.first_stage_anchor_generator\.grid_anchor_generator"
              r"\.scales: a list"))
    for bad, match in cases:
        with pytest.raises(ConfigError, match=match):
            export.export(pipeline_config, run, str(out), "logo", config_override=bad)
    assert len(seen) == 1 and not os.path.exists(out)


def test_export_max_proposals_keeps_n_proposals_and_detections_and_refuses_what_it_cannot_set(
        pipeline_config, tmp_path, monkeypatch):
    from google.protobuf import text_format

    from synth import pipeline_config as pipeline_lib  # the fixture has the module's name

    seen = _record_exports(monkeypatch)
    run = _one_variable_run(tmp_path / "run")
    out = tmp_path / "exports"
    assert pipeline_lib.read_pipeline(pipeline_config).model.faster_rcnn.first_stage_max_proposals != 77
    # --max_proposals alone, then with a --config_override that also sets one of its values: the override wins
    for override, total in (("", 77), ("model { faster_rcnn { second_stage_post_processing { "
                                       "batch_non_max_suppression { max_total_detections: 50 } } } }", 50)):
        with pytest.raises(ConfigError, match="does not fit"):
            export.export(pipeline_config, run, str(out), "logo", config_override=override, max_proposals=77)
        frcnn = seen[-1].model.faster_rcnn
        nms = frcnn.second_stage_post_processing.batch_non_max_suppression
        assert (frcnn.first_stage_max_proposals, nms.max_detections_per_class, nms.max_total_detections) == (
            77, 77, total)
    # bad values, and a model without proposals, fail before anything is written, naming the flag
    ssd = pipeline_lib.read_pipeline(pipeline_config)
    ssd.model.ssd.num_classes = 1  # the model oneof switches to an SSD
    ssd_path = tmp_path / "ssd.config"
    ssd_path.write_text(text_format.MessageToString(ssd))
    cases = ((pipeline_config, {"max_proposals": 0}, r"--max_proposals=0 must be a positive number"),
             (str(ssd_path), {"max_proposals": 100}, r"--max_proposals=100: the model of .*ssd\.config.* is ssd"),
             (pipeline_config, {"config_override": "model { ssd { num_classes: 1 } }"},
              r"--config_override sets model\.ssd, but the pipeline has model\.faster_rcnn"))
    for path, kwargs, match in cases:
        with pytest.raises(ConfigError, match=match):
            export.export(path, run, str(out), "logo", **kwargs)
    assert len(seen) == 2 and not os.path.exists(out)
