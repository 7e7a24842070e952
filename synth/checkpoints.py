"""Finding the TF2 checkpoint of an OD API detection model that a user names: a training run's
folder (its latest checkpoint) or a ckpt-N prefix. Shared by configure_pipeline (the checkpoint to
fine-tune from), evaluation and export. A bottom-level module: it imports nothing of synth but
errors, and TensorFlow only when called.

A run's kept checkpoints, with the training step each holds (`run_checkpoints`), and the average of
several (`average_checkpoints`): one checkpoint whose weights and batch-norm statistics are the mean
of theirs, as in stochastic weight averaging. A model trained with a constant learning rate ends at
a point that a hundred more steps would move; the average of its last checkpoints may be a steadier
one (on one run of the real-photo benchmark it scored above each checkpoint it averaged). The other
values (the step counter, the optimizer's slots and iteration count, the object graph that tells TF
where each value belongs) are copied from the last checkpoint, so the exporter and
`tf.train.Checkpoint.restore` read the result like any checkpoint of the run."""

from __future__ import annotations

import os
import re

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


STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"  # the OD API's train loop keeps its global step here
_CKPT = re.compile(r"^(ckpt-(\d+))\.index$")


def _is_averaged(name: str, dtype) -> bool:
    """Weights and batch-norm statistics: the float values that are not the optimizer's state (the
    counters and the object graph are integers and a string)."""
    return dtype.is_floating and ".OPTIMIZER_SLOT" not in name and not name.startswith("optimizer/")


def run_checkpoints(run_dir: str) -> dict[int, str]:
    """{training step: checkpoint prefix} of every checkpoint in `run_dir`, by step."""
    import tensorflow as tf

    if not os.path.isdir(run_dir):
        raise ConfigError(f"run folder {run_dir!r} does not exist")
    out = {}
    for name in sorted(os.listdir(run_dir)):
        m = _CKPT.match(name)
        if not m:
            continue
        prefix = os.path.join(run_dir, m.group(1))
        reader = tf.train.load_checkpoint(prefix)
        if not reader.has_tensor(STEP_KEY):
            raise ConfigError(f"checkpoint {prefix!r} has no training step ({STEP_KEY}): not an OD API run's")
        out[int(reader.get_tensor(STEP_KEY))] = prefix
    if not out:
        raise ConfigError(f"run folder {run_dir!r} holds no checkpoint (ckpt-N.index)")
    return dict(sorted(out.items()))


def trained_checkpoints(run_dir: str) -> dict[int, str]:
    """`run_checkpoints` without the one of step 0, which the OD API's loop saves before it trains."""
    return {step: prefix for step, prefix in run_checkpoints(run_dir).items() if step > 0}


def average_checkpoints(prefixes: list[str], out_dir: str) -> str:
    """Writes OUT_DIR/ckpt-1 (and OUT_DIR/checkpoint naming it): the mean of the checkpoints'
    weights, the rest copied from the last of `prefixes`. Returns the new prefix. Every checkpoint
    must hold the same values with the same shapes and dtypes (checkpoints of one run)."""
    import numpy as np
    import tensorflow as tf

    if not prefixes:
        raise ConfigError("average_checkpoints: no checkpoint given")
    readers = []
    for p in prefixes:
        if not os.path.isfile(p + ".index"):
            raise ConfigError(f"checkpoint {p!r} does not exist (no {p + '.index'})")
        readers.append(tf.train.load_checkpoint(p))
    last = readers[-1]
    dtypes, shapes = last.get_variable_to_dtype_map(), last.get_variable_to_shape_map()
    for p, r in zip(prefixes, readers):
        theirs = r.get_variable_to_shape_map()
        if theirs != shapes or r.get_variable_to_dtype_map() != dtypes:
            names = set(theirs) ^ set(shapes)
            what = f"values {sorted(names)[:3]} are in one only" if names else "a value's shape or dtype differs"
            raise ConfigError(f"checkpoint {p!r} does not match {prefixes[-1]!r}: {what}; "
                              "average checkpoints of one run")
    names, tensors = [], []
    for name in sorted(dtypes):
        value = last.get_tensor(name)
        if _is_averaged(name, dtypes[name]):
            value = np.mean([r.get_tensor(name).astype(np.float64) for r in readers], axis=0).astype(value.dtype)
        names.append(name)
        tensors.append(tf.constant(value, dtype=dtypes[name]))
    os.makedirs(out_dir, exist_ok=True)
    prefix = os.path.join(out_dir, "ckpt-1")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)
    with open(os.path.join(out_dir, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "ckpt-1"\nall_model_checkpoint_paths: "ckpt-1"\n')
    return prefix
