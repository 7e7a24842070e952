"""synth.savedmodel and synth.checkpoints: the SavedModel facts and the checkpoint lookup that
export, evaluation, predict, serving and the command-line tools share."""

import os

import pytest

from synth import checkpoints, evaluation, savedmodel, serving
from synth.errors import ConfigError
from conftest import run_tool


def _version(model_dir, v, label=None):
    path = os.path.join(str(model_dir), str(v))
    os.makedirs(os.path.join(path, savedmodel.ASSETS_EXTRA))
    open(os.path.join(path, savedmodel.SAVED_MODEL_PB), "wb").close()
    if label:
        with open(os.path.join(path, savedmodel.LABEL_MAP_ASSET), "w") as f:
            f.write(f'item {{ id: 1 name: "{label}" }}\n')
    return path


def test_version_dir_takes_the_highest_version_of_a_model_folder(tmp_path):
    model = tmp_path / "logo"
    for v in (1, 2, 10):
        _version(model, v, label=f"v{v}")
    os.makedirs(model / ".export-tmp")  # a staging folder is not a version
    assert savedmodel.versions(str(model)) == [1, 2, 10]
    assert savedmodel.version_dir(str(model)) == str(model / "10")  # numerically, not as text
    assert savedmodel.version_dir(str(model / "2")) == str(model / "2")  # a version folder stays
    assert savedmodel.version_dir(str(tmp_path)) == str(tmp_path)  # no versions: unchanged
    assert savedmodel.version_dir(str(tmp_path / "nope")) == str(tmp_path / "nope")
    # serving's label-map lookup goes through the same function
    assert serving.read_class_names(str(model)) == {1: "v10"}
    assert serving.read_class_names(str(model / "2")) == {1: "v2"}


def test_input_types_and_their_description_come_from_the_signature_table():
    assert savedmodel.INPUT_TYPES == ("image_tensor", "encoded_image_string_tensor", "tf_example",
                                      "float_image_tensor")
    text = savedmodel.describe_input_types()
    assert "image_tensor: uint8 [1, H, W, 3] of RGB pixels" in text
    assert "float_image_tensor: float32 [N, H, W, 3]" in text
    assert text.count("string [N]") == 2
    assert savedmodel.check_input_type("tf_example") == "tf_example"
    with pytest.raises(ConfigError, match=r"--input_type='jpeg' is not one of image_tensor, "):
        savedmodel.check_input_type("jpeg")


@pytest.mark.parametrize("tool", ["export_model", "serving_client"])
def test_both_tools_offer_the_shared_input_types(tool):
    r = run_tool(tool, "--help", timeout=120)  # absl's --help exits with status 1
    assert "--input_type" in r.stdout, r.stderr
    help_text = " ".join(r.stdout.split())  # absl wraps long help lines
    assert "<" + "|".join(savedmodel.INPUT_TYPES) + ">" in help_text
    assert savedmodel.describe_input_types() in help_text


def test_evaluation_and_export_resolve_checkpoints_alike(tmp_path):
    tf = pytest.importorskip("tensorflow")
    module = tf.Module()
    module.w = tf.Variable(1.0)
    prefix = tf.train.Checkpoint(model=module).save(str(tmp_path / "run" / "ckpt"))
    assert checkpoints.checkpoint_prefix(str(tmp_path / "run")) == prefix
    assert checkpoints.checkpoint_prefix(prefix) == prefix
    pipeline_config = tmp_path / "pipeline.config"
    pipeline_config.write_text("")
    for path, match in ((str(tmp_path / "none"), r"--checkpoint='.*none' is neither a folder nor a checkpoint"),
                        (str(tmp_path), r"--checkpoint='.*' holds no TF2 checkpoint")):
        with pytest.raises(ConfigError, match=match):
            evaluation.evaluate_once(str(pipeline_config), path)
