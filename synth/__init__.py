"""tfod-synth: synthetic training data for the TensorFlow Object Detection API.

The package is a pure core of functions over numpy arrays (``synth.composite``,
``synth.boxes``, ...) and a few modules at the edges that import TensorFlow or
the OD API only when they are used (``synth.tfexample``, ``synth.training``,
``synth.export``). Command-line tools live in ``tools/`` and ``synth.cli``.
"""

__version__ = "0.1.0"
