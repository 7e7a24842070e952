#!/usr/bin/env python
# Thin shell: the flags and the usage text live in synth/cli/make_header_tfrecords.py, the work in synth/html/.
from synth.cli.make_header_tfrecords import __doc__, run  # noqa: F401  (__doc__ is the --help text)

if __name__ == "__main__":
    run()
