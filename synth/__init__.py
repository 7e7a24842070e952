"""tfod-synth: synthetic training data for the TensorFlow Object Detection API.

The package is a pure core of functions over numpy arrays (``synth.composite``,
``synth.boxes``, ...) and a few modules at the edges that import TensorFlow or
the OD API only when they are used (``synth.training``, ``synth.export``, ...).
A generation job (``synth.job``) runs locally (``synth.generate``) or on Apache Beam
(``synth.beam_pipeline``); each composite is drawn and rendered by ``synth.scene`` from
``synth.settings``, ``synth.backdrops`` and ``synth.logo_bank``, one module per realism stage
doing the work. Command-line tools live in ``tools/`` and ``synth.cli``.
ARCHITECTURE.md maps which module owns which step.
"""

import os

__version__ = "0.1.0"

# TensorFlow 2.15 turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI/BF16/AMX
# (recent Intel, AMD Zen 4); elsewhere (Zen 2 and 3, older Intel) it runs Eigen's, whose
# Conv2DBackpropInput is slow on the small crops of a Faster R-CNN's second stage (3x slower
# training steps: bench/results/train_rate_zen2.json, README "The stack").
# Set before TensorFlow is first imported (every tool imports synth first); a value the user set,
# TF_ENABLE_ONEDNN_OPTS=0 included, is kept.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
