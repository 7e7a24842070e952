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

__version__ = "0.1.0"
