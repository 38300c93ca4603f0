"""Sinks that keep what they receive in memory: for tests, notebooks and benchmarks.

They are test doubles as much as sinks: ``opened`` and ``closed`` count the calls of
:meth:`open` and :meth:`close`, so a test can check that a run opens and closes each sink
exactly once.
"""

from typing import Any, Callable, Dict, List, NamedTuple, Optional

from doge_datagen.core.types import Transition
from doge_datagen.sinks.base import Sink

__all__ = ["CountingSink", "Event", "InMemorySink"]


class Event(NamedTuple):
    """One event as an :class:`InMemorySink` recorded it."""

    timestamp: int
    subject: Any
    trigger: str
    from_state: str
    to_state: str
    value: Any = None


class _Recording(Sink):
    """Counts every call of open() and close(), not only those that change the state."""

    opened = 0
    closed = 0

    def open(self) -> None:
        self.opened += 1
        self._is_open = True

    def close(self) -> None:
        self.closed += 1
        self._is_open = False


class InMemorySink(_Recording):
    """Records every event as an :class:`Event`, in the order received.

    :param value_function: optional ``(timestamp, subject, transition) -> value``, called at
        collection time so that the value captures the subject's attributes as they were then.
    :param name: how the run summary names this sink.

    Events of every run are kept (``events``); ``delivered`` counts those since the last
    :meth:`open`.
    """

    def __init__(
        self,
        value_function: Optional[Callable[[int, Any, Transition], Any]] = None,
        name: Optional[str] = None,
    ) -> None:
        self.value_function = value_function
        self.name = name or "memory"
        self.events: List[Event] = []
        self._first = 0

    def open(self) -> None:
        if not self._is_open:
            self._first = len(self.events)
        super().open()

    @property
    def delivered(self) -> int:  # type: ignore[override]
        return len(self.events) - self._first

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        value = self.value_function(timestamp, subject, transition) if self.value_function else None
        self.events.append(
            Event(
                timestamp,
                subject,
                transition.trigger,
                transition.from_state,
                transition.to_state,
                value,
            )
        )

    def __len__(self) -> int:
        return len(self.events)

    def triggers(self) -> Dict[str, int]:
        """How many events each trigger produced."""
        counts: Dict[str, int] = {}
        for event in self.events:
            counts[event.trigger] = counts.get(event.trigger, 0) + 1
        return counts


class CountingSink(_Recording):
    """Counts events and keeps nothing else: the cheapest sink, for load tests.

    ``count`` counts the events of every run, ``delivered`` those since the last :meth:`open`.
    """

    def __init__(self, name: Optional[str] = None) -> None:
        self.name = name or "counter"
        self.count = 0
        self._first = 0

    def open(self) -> None:
        if not self._is_open:
            self._first = self.count
        super().open()

    @property
    def delivered(self) -> int:  # type: ignore[override]
        return self.count - self._first

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        self.count += 1
