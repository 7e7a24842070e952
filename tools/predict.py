#!/usr/bin/env python
"""See synth/cli/predict.py, or run with --help."""

from synth.cli.predict import run

if __name__ == "__main__":
    run()
