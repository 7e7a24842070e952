"""Calling a model exported by synth.export and served by TensorFlow Serving, over REST or gRPC.

Requests carry the serving_default signature's single input, `input_tensor`, in the form each
export input type (synth.savedmodel.INPUT_TYPES) takes:
- image_tensor:                uint8 [1, H, W, 3], so one image per request;
- float_image_tensor:          float32 [N, H, W, 3], pixel values 0..255, images of one size;
- encoded_image_string_tensor: string [N], here lossless PNG, so the server sees the very pixels
                               that are drawn on (REST: {"b64": ...});
- tf_example:                  string [N], a serialized tf.train.Example with the PNG under
                               image/encoded (REST: {"b64": ...}).

REST: POST http://HOST:PORT/v1/models/NAME[/versions/N]:predict with
{"signature_name": "serving_default", "instances": [...]}; the answer is {"predictions": [one
object per image]} (row format), {"outputs": {...}} (columnar) or {"error": "..."}.
gRPC: tensorflow_serving.apis PredictionService/Predict with a PredictRequest.
Both answers become lists of synth.predict.Detection, one list per image, with class names from
the export's label map (assets.extra/label_map.pbtxt) when it is given.

REST needs only numpy, OpenCV and the standard library; gRPC and tf_example import TensorFlow.
A JSON REST body for a 640x480 image_tensor request is ~3 MB of text; encoded_image_string_tensor
or gRPC send far less.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.request

import cv2
import numpy as np

from synth.errors import ConfigError, InputImageError, SynthError
from synth.savedmodel import (INPUT_NAME, INPUT_TYPES, LABEL_MAP_ASSET, OUTPUT_KEYS, SIGNATURE_NAME, check_input_type,
                              version_dir)
from synth.predict import Detection

_SERVER_RE = re.compile(r"^(?:http://)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.\-]+):(\d{1,5})/?$")
_MODEL_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


class ServingError(SynthError):
    """TF Serving could not be reached, refused a request or gave an answer that is not one."""


def parse_server(server: str) -> str:
    """'HOST:PORT' of `server` ('HOST:PORT' or 'http://HOST:PORT')."""
    m = _SERVER_RE.match(server or "")
    if not m or not 0 < int(m.group(2)) < 65536:
        raise ConfigError(f"--server={server!r} is not HOST:PORT (e.g. localhost:8501 for REST, "
                          "localhost:8500 for gRPC)")
    return f"{m.group(1)}:{int(m.group(2))}"


def _check_model(model: str, version: int | None) -> None:
    if not model or not _MODEL_RE.match(model):
        raise ConfigError(f"--model={model!r} must be a model name (letters, digits, '_', '-', '.')")
    if version is not None and (not isinstance(version, int) or version < 1):
        raise ConfigError(f"--version={version!r} must be a positive integer")


def _png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputImageError(f"image of shape {rgb.shape} cannot be encoded as PNG")
    return buf.tobytes()


def _tf_example(rgb: np.ndarray) -> bytes:
    from tensorflow.core.example import example_pb2

    from synth import tfrecord_keys as K

    ex = example_pb2.Example()
    f = ex.features.feature
    f[K.IMAGE_ENCODED].bytes_list.value.append(_png(rgb))
    f[K.IMAGE_FORMAT].bytes_list.value.append(b"png")
    f[K.IMAGE_HEIGHT].int64_list.value.append(rgb.shape[0])
    f[K.IMAGE_WIDTH].int64_list.value.append(rgb.shape[1])
    return ex.SerializeToString()


def input_batch(images: list[np.ndarray], input_type: str = "image_tensor") -> np.ndarray:
    """The signature's `input_tensor` for RGB uint8 images (a list, or one HxWx3 array): uint8 or
    float32 [N, H, W, 3], or an object array of N byte strings."""
    check_input_type(input_type)
    if isinstance(images, np.ndarray):  # one image, or a batch as one array
        images = [images] if images.ndim == 3 else list(images)
    if not len(images):
        raise ConfigError("no images to send")
    for i, rgb in enumerate(images):
        if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8):
            raise InputImageError(f"image {i} is {getattr(rgb, 'shape', type(rgb).__name__)} "
                                  f"{getattr(rgb, 'dtype', '')}; need RGB uint8 HxWx3")
    if input_type == "image_tensor" and len(images) != 1:
        raise ConfigError(f"input type image_tensor takes one image per request (batch size 1), got {len(images)}")
    if input_type in ("image_tensor", "float_image_tensor"):
        if len({im.shape for im in images}) > 1:
            raise ConfigError(f"input type {input_type} needs images of one size in a request, got "
                              f"{sorted({im.shape for im in images})}")
        return np.stack(images).astype(np.uint8 if input_type == "image_tensor" else np.float32)
    encode = _png if input_type == "encoded_image_string_tensor" else _tf_example
    out = np.empty(len(images), dtype=object)
    out[:] = [encode(im) for im in images]
    return out


def build_rest_request(images: list[np.ndarray], input_type: str = "image_tensor") -> dict:
    """TF Serving's REST predict body (row format) for RGB uint8 images."""
    batch = input_batch(images, input_type)
    if batch.dtype == object:
        instances = [{"b64": base64.b64encode(b).decode("ascii")} for b in batch]
    else:
        instances = batch.tolist()
    return {"signature_name": SIGNATURE_NAME, "instances": instances}


def rest_url(server: str, model: str, version: int | None = None) -> str:
    _check_model(model, version)
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version is not None else "")
    return f"http://{parse_server(server)}{path}:predict"


def detections_from_outputs(outputs: dict, names: dict[int, str] | None = None, min_score: float = 0.0,
                            max_detections: int = 100) -> list[list[Detection]]:
    """One list of Detection per image from batched detection outputs (as synth.predict.Predictor)."""
    missing = [k for k in OUTPUT_KEYS if k not in outputs]
    if missing:
        raise ServingError(f"the answer lacks outputs {missing} (it has {sorted(outputs)}); "
                           "is the model an OD API export?")
    names = names or {}
    try:
        nums = np.asarray(outputs["num_detections"], np.float64).reshape(-1)
        boxes, scores, classes = (np.asarray(outputs[k], np.float64) for k in
                                  ("detection_boxes", "detection_scores", "detection_classes"))
        result = []
        for i, n in enumerate(nums):
            dets = []
            for box, cls, score in zip(boxes[i][:int(n)].reshape(-1, 4), classes[i][:int(n)], scores[i][:int(n)]):
                if score >= min_score:
                    cid = int(round(float(cls)))
                    dets.append(Detection([round(float(v), 5) for v in box], cid, names.get(cid, str(cid)),
                                          round(float(score), 5)))
            result.append(dets[:max_detections])
    except (ValueError, TypeError, IndexError) as exc:
        raise ServingError(f"the answer's detection outputs have unexpected shapes: {exc}") from None
    return result


def parse_rest_response(body, names: dict[int, str] | None = None, min_score: float = 0.0,
                        max_detections: int = 100) -> list[list[Detection]]:
    """Detections per image from a REST predict answer (a dict, or its JSON text)."""
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except ValueError:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            raise ServingError(f"the answer is not JSON: {text[:200]!r}") from None
    if not isinstance(body, dict):
        raise ServingError(f"the answer is a JSON {type(body).__name__}, not an object")
    if "error" in body:
        raise ServingError(f"TF Serving: {body['error']}")
    if "outputs" in body and isinstance(body["outputs"], dict):
        return detections_from_outputs(body["outputs"], names, min_score, max_detections)
    preds = body.get("predictions")
    if not isinstance(preds, list) or not all(isinstance(p, dict) for p in preds):
        raise ServingError(f"the answer has no 'predictions' list of objects (keys: {sorted(body)}); "
                           "is the model an OD API export?")
    if not preds:
        return []
    keys = set.intersection(*(set(p) for p in preds))
    return detections_from_outputs({k: [p[k] for p in preds] for k in keys}, names, min_score, max_detections)


def build_grpc_request(model: str, version: int | None, images: list[np.ndarray],
                       input_type: str = "image_tensor"):
    """A tensorflow_serving PredictRequest for serving_default."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    _check_model(model, version)
    req = predict_pb2.PredictRequest()
    req.model_spec.name = model
    req.model_spec.signature_name = SIGNATURE_NAME
    if version is not None:
        req.model_spec.version.value = version
    req.inputs[INPUT_NAME].CopyFrom(tf.make_tensor_proto(input_batch(images, input_type)))
    return req


def parse_grpc_response(resp, names: dict[int, str] | None = None, min_score: float = 0.0,
                        max_detections: int = 100) -> list[list[Detection]]:
    """Detections per image from a PredictResponse."""
    import tensorflow as tf

    outputs = {k: tf.make_ndarray(v) for k, v in resp.outputs.items()}
    return detections_from_outputs(outputs, names, min_score, max_detections)


def read_class_names(path: str) -> dict[int, str]:
    """{id: name} from a label map file, an export version folder or a model folder (its
    highest version's assets.extra/label_map.pbtxt)."""
    from synth.label_map import read_label_map

    path = version_dir(path)
    if os.path.isdir(path):
        path = os.path.join(path, LABEL_MAP_ASSET)
    return read_label_map(path)


class RestClient:
    """TF Serving's REST predict API for one model (and version, when given)."""

    def __init__(self, server: str, model: str, version: int | None = None, timeout: float = 30.0,
                 input_type: str = "image_tensor", names: dict[int, str] | None = None):
        self.url = rest_url(server, model, version)
        self.server, self.model, self.version = parse_server(server), model, version
        self.timeout, self.input_type, self.names = timeout, check_input_type(input_type), names or {}

    def request(self, body: dict) -> dict:
        """POSTs a JSON body; returns the JSON answer or raises ServingError."""
        req = urllib.request.Request(self.url, data=json.dumps(body).encode("utf-8"), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                text = r.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            try:
                detail = json.loads(detail).get("error", detail)
            except (ValueError, AttributeError):
                pass
            raise ServingError(f"{self.url}: HTTP {exc.code}: {str(detail)[:500]}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServingError(f"cannot reach TF Serving's REST API at {self.server}: {reason}") from None
        try:
            return json.loads(text)
        except ValueError:
            raise ServingError(f"{self.url}: the answer is not JSON: {text[:200]!r}") from None

    def predict(self, rgb: np.ndarray, min_score: float = 0.0, max_detections: int = 100) -> list[Detection]:
        answer = self.request(build_rest_request([rgb], self.input_type))
        return parse_rest_response(answer, self.names, min_score, max_detections)[0]

    __call__ = predict


class GrpcClient:
    """TF Serving's gRPC PredictionService for one model (and version, when given)."""

    def __init__(self, server: str, model: str, version: int | None = None, timeout: float = 30.0,
                 input_type: str = "image_tensor", names: dict[int, str] | None = None):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        if server.startswith("http://"):
            raise ConfigError(f"--server={server!r}: gRPC takes HOST:PORT without http://")
        _check_model(model, version)
        self.server, self.model, self.version = parse_server(server), model, version
        self.timeout, self.input_type, self.names = timeout, check_input_type(input_type), names or {}
        self._grpc = grpc
        self.channel = grpc.insecure_channel(self.server, options=[("grpc.max_send_message_length", -1),
                                                                   ("grpc.max_receive_message_length", -1)])
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def request(self, req):
        try:
            return self.stub.Predict(req, timeout=self.timeout)
        except self._grpc.RpcError as exc:
            raise ServingError(f"gRPC {self.server} model {self.model!r}: {exc.code().name}: "
                               f"{exc.details()}") from None

    def predict(self, rgb: np.ndarray, min_score: float = 0.0, max_detections: int = 100) -> list[Detection]:
        resp = self.request(build_grpc_request(self.model, self.version, [rgb], self.input_type))
        return parse_grpc_response(resp, self.names, min_score, max_detections)[0]

    __call__ = predict

    def close(self) -> None:
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def serve_images(client, items, output_dir: str | None = None, min_score: float = 0.5,
                 max_detections: int = 100, progress: bool = False) -> dict:
    """Sends each synth.predict.Item of `items` to `client`; returns a summary in the schema of
    synth.predict's detections.json. With `output_dir`, also writes drawn images and the files
    synth.predict writes (detections.json, coco_results.json, coco_images.json) there.
    Unreadable images are listed under "errors"; a server error stops."""
    from synth.predict import run_detector, truth_summary, write_outputs

    results, errors = run_detector(client, items, output_dir, min_score, max_detections, progress, "serving")
    summary = {"server": client.server, "model": client.model, "version": client.version,
               "protocol": "grpc" if isinstance(client, GrpcClient) else "rest", "input_type": client.input_type,
               "min_score": min_score, "images": results, "errors": errors}
    truth = truth_summary(results, min_score)
    if truth:
        summary["truth"] = truth
    if output_dir:
        write_outputs(output_dir, summary, getattr(client, "names", None))
    return summary


__all__ = ["INPUT_TYPES", "ServingError", "parse_server", "input_batch", "build_rest_request", "rest_url",
           "detections_from_outputs", "parse_rest_response", "build_grpc_request", "parse_grpc_response",
           "read_class_names", "RestClient", "GrpcClient", "serve_images"]
