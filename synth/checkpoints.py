"""Finding the TF2 checkpoint of an OD API detection model that a user names: a training run's
folder (its latest checkpoint) or a ckpt-N prefix. Shared by configure_pipeline (the checkpoint to
fine-tune from), evaluation and export. A bottom-level module: it imports nothing of synth but
errors, and TensorFlow only when called."""

from __future__ import annotations

import os

from synth.errors import ConfigError


def checkpoint_prefix(path: str, flag: str = "--trained_checkpoint_dir") -> str:
    """The TF2 object-based checkpoint of an OD API model at `path` (a folder: its latest
    checkpoint; or a ckpt-N prefix). Raises ConfigError naming `path` (as given to `flag`)
    for anything else: no checkpoint, an unreadable one, a name-based TF1 checkpoint, or one
    that holds no `model` object."""
    import tensorflow as tf

    if os.path.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:
            raise ConfigError(f"{flag}={path!r} holds no TF2 checkpoint (no 'checkpoint' "
                              "file naming a ckpt-N); point it at a training run's model_dir")
    elif os.path.isfile(path + ".index"):
        prefix = path
    else:
        raise ConfigError(f"{flag}={path!r} is neither a folder nor a checkpoint prefix "
                          f"({path}.index does not exist)")
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as exc:
        raise ConfigError(f"checkpoint {prefix!r} (from {path!r}) cannot be read: "
                          f"{str(exc).splitlines()[0]}") from None
    if not reader.has_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"):
        raise ConfigError(f"checkpoint {prefix!r} (from {path!r}) is a name-based TF1 checkpoint; the OD API's "
                          "TF2 code needs an object-based checkpoint written by tf.train.Checkpoint "
                          "(model_main_tf2's ckpt-N)")
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    top = sorted(child.local_name for child in graph.nodes[0].children)
    if "model" not in top:
        raise ConfigError(f"checkpoint {prefix!r} (from {path!r}) holds no 'model' object (it holds: "
                          f"{', '.join(top) or 'nothing'}); it is not a checkpoint of an OD API detection model")
    return prefix
