"""Facts about the SavedModels that synth.export writes, shared by everything that makes, checks,
loads or calls one (export, predict, serving and their command-line tools). A bottom-level module:
it imports nothing of synth but errors, and no TensorFlow.

The serving signature is the OD API exporter's (exporter_lib_v2): `serving_default` takes one input,
`input_tensor`, whose dtype and shape depend on the export's input type (SIGNATURE_INPUTS), and
returns at least OUTPUT_KEYS. An export lives in TF Serving's layout, EXPORT_DIR/MODEL/VERSION/,
with the label map and export.json in VERSION/assets.extra/.
"""

from __future__ import annotations

import os

from synth.errors import ConfigError

SIGNATURE_NAME = "serving_default"
INPUT_NAME = "input_tensor"
# The serving signature's input per input type, as exporter_lib_v2 declares it (None: any size).
SIGNATURE_INPUTS = {
    "image_tensor": ("uint8", [1, None, None, 3]),
    "encoded_image_string_tensor": ("string", [None]),
    "tf_example": ("string", [None]),
    "float_image_tensor": ("float32", [None, None, None, 3]),
}
INPUT_TYPES = tuple(SIGNATURE_INPUTS)
INPUT_TYPE_NOTES = {  # what each input type's tensor holds, for --help texts
    "image_tensor": "RGB pixels",
    "encoded_image_string_tensor": "JPEG/PNG file bytes",
    "tf_example": "serialized tf.train.Examples",
    "float_image_tensor": "RGB pixels 0..255",
}
OUTPUT_KEYS = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")
ASSETS_EXTRA = "assets.extra"
LABEL_MAP_ASSET = os.path.join(ASSETS_EXTRA, "label_map.pbtxt")
EXPORT_INFO = "export.json"  # in assets.extra/: input type, checkpoint, verification
SAVED_MODEL_PB = "saved_model.pb"


def check_input_type(input_type: str) -> str:
    if input_type not in INPUT_TYPES:
        raise ConfigError(f"--input_type={input_type!r} is not one of {', '.join(INPUT_TYPES)}")
    return input_type


def describe_input_types() -> str:
    """One line per input type: its input tensor's dtype and shape, and what it holds."""
    def dims(shape):
        return "[" + ", ".join("N" if d is None and i == 0 else "H" if d is None and i == 1 else
                               "W" if d is None and i == 2 else str(d) for i, d in enumerate(shape)) + "]"

    return "; ".join(f"{t}: {dtype} {dims(shape)} of {INPUT_TYPE_NOTES[t]}"
                     for t, (dtype, shape) in SIGNATURE_INPUTS.items())


def versions(model_dir: str) -> list[int]:
    """The version numbers of a model folder (its sub-folders named by integers), ascending."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(n) for n in os.listdir(model_dir) if n.isdigit())


def is_version_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, SAVED_MODEL_PB))


def version_dir(path: str) -> str:
    """`path` when it is a SavedModel folder (or anything but a model folder); for a model folder
    (EXPORT_DIR/MODEL, holding numbered versions), its highest version."""
    if os.path.isdir(path) and not is_version_dir(path) and versions(path):
        return os.path.join(path, str(versions(path)[-1]))
    return path
