"""The original module path of the file sinks, now :mod:`doge_datagen.sinks.file`."""

from doge_datagen.sinks.file import (
    DEFAULT_BUFFER_LINES,
    FORMATS,
    FileSink,
    FileSinkFactory,
    PathOrStream,
    ValueFunction,
)

__all__ = [
    "DEFAULT_BUFFER_LINES",
    "FORMATS",
    "FileSink",
    "FileSinkFactory",
    "PathOrStream",
    "ValueFunction",
]
