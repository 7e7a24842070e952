"""Errors raised for bad user input.

Every message names the input (a file, a flag, a config field) and says what is
wrong with it and what is allowed. Library code raises these; only the command-line
shell turns them into an exit status.
"""


class SynthError(Exception):
    """Base class of every error tfod-synth raises for bad input."""


class ConfigError(SynthError):
    """A generation or pipeline config is malformed or holds a bad value."""


class InputImageError(SynthError):
    """A logo or background image cannot be used."""


class OutputError(SynthError):
    """The output location cannot be written as asked."""
