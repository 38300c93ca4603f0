"""The original module path of the in-memory sinks, now :mod:`doge_datagen.sinks.memory`."""

from doge_datagen.sinks.memory import (
    CountingSink,
    Event,
    InMemorySink,
)

__all__ = [
    "CountingSink",
    "Event",
    "InMemorySink",
]
