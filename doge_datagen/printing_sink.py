"""The original module path of the printing sink, now :mod:`doge_datagen.sinks.printing`."""

from doge_datagen.sinks.printing import (
    FormatFunction,
    PrintingSink,
    default_format,
)

__all__ = [
    "FormatFunction",
    "PrintingSink",
    "default_format",
]
