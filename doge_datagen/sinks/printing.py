"""A sink that prints one line per event."""

import sys
from typing import Any, Callable, Optional, TextIO

from doge_datagen.core.types import Transition
from doge_datagen.sinks.base import Sink

__all__ = ["FormatFunction", "PrintingSink", "default_format"]

FormatFunction = Callable[[int, Any, Transition], str]


def default_format(timestamp: int, subject: Any, transition: Transition) -> str:
    """``[timestamp] trigger: from_state -> to_state subject``."""
    return (
        f"[{timestamp}] {transition.trigger}: {transition.from_state} -> "
        f"{transition.to_state} {subject!r}"
    )


class PrintingSink(Sink):
    """Prints ``format_function(timestamp, subject, transition)`` for every event.

    :param format_function: turns an event into a line; a plain default is used if omitted.
    :param file: where to print; standard output by default (looked up at each event, so
        that a redirected ``sys.stdout`` is honoured).
    :param name: how the run summary names this sink; ``print`` by default.

    ``delivered`` counts the lines printed.
    """

    def __init__(
        self,
        format_function: Optional[FormatFunction] = None,
        file: Optional[TextIO] = None,
        *,
        name: Optional[str] = None,
    ) -> None:
        self.format_function = format_function or default_format
        self.file = file
        self.name = name or "print"

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        print(self.format_function(timestamp, subject, transition), file=self.file or sys.stdout)
        self.delivered += 1

    def close(self) -> None:
        """Flush the output (every time: a printing sink holds nothing else)."""
        super().close()
        (self.file or sys.stdout).flush()
