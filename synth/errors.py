"""Errors raised for bad user input.

Every message names the input (a file, a flag, a config field) and says what is
wrong with it and what is allowed. Library code raises these; only the command-line
shell turns them into an exit status.
"""

import json


class SynthError(Exception):
    """Base class of every error tfod-synth raises for bad input."""


class ConfigError(SynthError):
    """A generation or pipeline config is malformed or holds a bad value."""


class InputImageError(SynthError):
    """A logo or background image cannot be used."""


class OutputError(SynthError):
    """The output location cannot be written as asked."""


class RecordError(SynthError):
    """A dataset's record (a params.jsonl line, its manifest) cannot be read back or replayed."""


class AnnotationError(SynthError):
    """Labelled real photos (a COCO JSON file and its images) cannot be used."""


def check_range_pair(what: str, value, lo: float, hi: float, integer: bool = False) -> None:
    """Raises ConfigError naming `what` unless `value` is two finite numbers (low, high) with
    lo <= low <= high <= hi (and whole numbers when `integer`)."""
    import math

    ok = (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
          and lo <= value[0] <= value[1] <= hi and (not integer or all(float(v).is_integer() for v in value)))
    if not ok:
        kind = "integers" if integer else "numbers"
        raise ConfigError(f"{what} = {value!r} is invalid: expected two {kind} (low, high) with "
                          f"{lo} <= low <= high <= {hi}")


def check_number(what: str, value, lo: float, hi: float, integer: bool = False) -> None:
    """Raises ConfigError naming `what` unless `value` is a number (an int when `integer`;
    never a bool) with lo <= value <= hi."""
    kinds = (int,) if integer else (int, float)
    if not (isinstance(value, kinds) and not isinstance(value, bool) and lo <= value <= hi):
        raise ConfigError(f"{what} = {value!r} is invalid: expected {'an integer' if integer else 'a number'} "
                          f"in [{lo}, {hi}]")


def check_field_pair(owner: str, name: str, value, lo: float, hi: float, integer: bool = False) -> None:
    """check_range_pair for the field `name` of the config `owner`."""
    check_range_pair(f"{owner}.{name}", value, lo, hi, integer)


def check_field_int(owner: str, name: str, value, lo: float, hi: float) -> None:
    check_number(f"{owner}.{name}", value, lo, hi, integer=True)


def check_field_number(owner: str, name: str, value, lo: float, hi: float) -> None:
    check_number(f"{owner}.{name}", value, lo, hi)


def check_fields(owner: str, obj, checks) -> None:
    """Raises ConfigError for the first (field name, ok, allowed) of `checks` that is not ok,
    naming `owner`.field, its value and what is allowed."""
    for name, ok, allowed in checks:
        if not ok:
            raise ConfigError(f"{owner}.{name} = {getattr(obj, name)!r} is not allowed: must be {allowed}")


def read_json(path: str, what: str, error: type = ConfigError):
    """The JSON value in file `path`, or `error` naming `what` and the file when it cannot be read
    or is not JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{what} {path!r} cannot be read as JSON: {exc}") from None


def read_json_object(path: str, what: str, error: type = ConfigError) -> dict:
    """The JSON object in file `path`, or `error` naming `what` and the file when it cannot be
    read, is not JSON, or holds something other than an object."""
    data = read_json(path, what, error)
    if not isinstance(data, dict):
        raise error(f"{what} {path!r} is not a JSON object")
    return data
