"""What every command shares: the error for a bad argument, the whole-number arguments and the
rule for output directories."""

import argparse
import os
import sys

from doge_datagen.errors import ConfigurationError, DogeError

__all__ = ["UsageError", "count_argument", "make_parent_directory", "positive_count_argument"]


class UsageError(DogeError, ValueError):
    """A command-line argument that makes no sense; reported as one line."""


def make_parent_directory(path: str) -> None:
    """The rule for every output the command writes (sink files, ``--out``, ``graph -o``,
    ``analyze --plot``, ``fit -o``): a missing directory is created, once every option has
    been checked, and said so on standard error."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(directory):
        return
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create directory {directory!r} for {path!r}: {exc.strerror}"
        ) from None
    print(f"doge-datagen: created directory {directory}", file=sys.stderr)


def count_argument(text: str) -> int:
    """An argument that is a whole number, zero or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def positive_count_argument(text: str) -> int:
    """An argument that is a whole number, one or more."""
    value = count_argument(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value
