#!/usr/bin/env python
"""Generates composites of your logo(s) and writes sharded OD API TFRecords.

    python tools/make_tfrecords.py --output_dir=workspace/data/demo
    python tools/make_tfrecords.py --config=CONFIG --output_dir=DIR [--num_images=N] [--seed=S]

Run with --help for every flag. The work is done by synth.generate.
"""

from synth.cli.make_tfrecords import run

if __name__ == "__main__":
    run()
