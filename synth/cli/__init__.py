"""Command-line shells: absl flags in, library calls out. `tools/*.py` and the console
scripts in setup.cfg both call `run()` of these modules."""

from __future__ import annotations

import sys

from synth.errors import SynthError


def fail(exc: BaseException, tool: str) -> None:
    """Prints a user-input error as one clear line and exits with status 2."""
    print(f"{tool}: error: {exc}", file=sys.stderr)
    sys.exit(2)


def main_wrapper(main, tool: str):
    """Wraps an absl main so that SynthError becomes a one-line error, not a traceback."""

    def wrapped(argv):
        try:
            return main(argv)
        except SynthError as exc:
            fail(exc, tool)

    return wrapped


def run_app(main, tool: str, module_name: str) -> None:
    """absl's app.run, with the flags of `module_name` shown by --help (absl shows only the
    flags of the module named by sys.argv[0], which is a thin script in tools/)."""
    from absl import app, flags

    for flag in flags.FLAGS.get_key_flags_for_module(module_name):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(main_wrapper(main, tool))


def check_usage(argv, *required: str, positional: bool = False) -> None:
    """Raises absl's UsageError for positional arguments (unless `positional`) and for the
    `required` flags (names without --) left unset, naming them all."""
    from absl import app, flags

    if len(argv) > 1 and not positional:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    missing = [f"--{name}" for name in required if not flags.FLAGS[name].value]
    if missing:
        raise app.UsageError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required")


def define_dataset_flags(module_name: str, config_help: str, workers_help: str, preview_help: str) -> None:
    """The flags that every dataset job shares (make_tfrecords, make_header_tfrecords): --config,
    --output_dir, --num_images, --seed, --overwrite, --progress, --workers and --preview, defined
    for `module_name` so that its --help lists them."""
    from absl import flags

    kw = {"module_name": module_name}
    flags.DEFINE_string("config", None, config_help, **kw)
    flags.DEFINE_string("output_dir", None, "Folder for the shards, label map and manifest.", required=True, **kw)
    flags.DEFINE_integer("num_images", None, "Override the config's num_images.", lower_bound=1, **kw)
    flags.DEFINE_integer("seed", None, "Override the config's seed.", lower_bound=0, **kw)
    flags.DEFINE_bool("overwrite", False, "Replace a dataset already in --output_dir (only once the new one is "
                      "complete).", **kw)
    flags.DEFINE_bool("progress", True, "Show a progress bar.", **kw)
    flags.DEFINE_integer("workers", None, f"{workers_help} (default: the number of cores). The shards are identical "
                         "whatever the number.", lower_bound=1, **kw)
    flags.DEFINE_bool("preview", False, preview_help, **kw)


def quiet_tensorflow(keep_info: bool = False) -> None:
    """Hides TensorFlow's C++ start-up chatter (set before TensorFlow is imported) and,
    unless `keep_info` or --verbosity was given, the OD API's INFO and WARNING logging."""
    import os

    from absl import flags, logging

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not keep_info and not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.ERROR)
