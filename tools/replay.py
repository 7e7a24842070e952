#!/usr/bin/env python
# Thin shell: the flags and the usage text live in synth/cli/replay.py, the work in synth/.
from synth.cli.replay import __doc__, run  # noqa: F401  (__doc__ is the --help text)

if __name__ == "__main__":
    run()
