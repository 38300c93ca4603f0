"""A sink that prints one line per event."""

import sys
from typing import Any, Callable, Optional, TextIO

from doge_datagen.doge import EventSink, Transition

FormatFunction = Callable[[int, Any, Transition], str]


def default_format(timestamp: int, subject: Any, transition: Transition) -> str:
    """``[timestamp] trigger: from_state -> to_state subject``."""
    return (
        f"[{timestamp}] {transition.trigger}: {transition.from_state} -> "
        f"{transition.to_state} {subject!r}"
    )


class PrintingSink(EventSink):
    """Prints ``format_function(timestamp, subject, transition)`` for every event.

    :param format_function: turns an event into a line; a plain default is used if omitted.
    :param file: where to print; standard output by default.
    """

    def __init__(
        self, format_function: Optional[FormatFunction] = None, file: Optional[TextIO] = None
    ) -> None:
        self.format_function = format_function or default_format
        self.file = file

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        print(self.format_function(timestamp, subject, transition), file=self.file or sys.stdout)

    def close(self) -> None:
        (self.file or sys.stdout).flush()
