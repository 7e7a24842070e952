#!/usr/bin/env python
"""See synth/cli/model_main_tf2.py, or run with --help."""

from synth.cli.model_main_tf2 import run

if __name__ == "__main__":
    run()
