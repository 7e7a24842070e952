#!/usr/bin/env python
"""See synth/cli/configure_pipeline.py, or run with --help."""

from synth.cli.configure_pipeline import run

if __name__ == "__main__":
    run()
