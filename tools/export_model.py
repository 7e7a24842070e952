#!/usr/bin/env python
"""See synth/cli/export_model.py, or run with --help."""

from synth.cli.export_model import run

if __name__ == "__main__":
    run()
