"""Sinks that keep what they receive in memory: for tests, notebooks and benchmarks."""

from typing import Any, Callable, Dict, List, NamedTuple, Optional

from doge_datagen.doge import EventSink, Transition


class Event(NamedTuple):
    """One event as an :class:`InMemorySink` recorded it."""

    timestamp: int
    subject: Any
    trigger: str
    from_state: str
    to_state: str
    value: Any = None


class InMemorySink(EventSink):
    """Records every event as an :class:`Event`, in the order received.

    :param value_function: optional ``(timestamp, subject, transition) -> value``, called at
        collection time so that the value captures the subject's attributes as they were then.
    :param name: how the run summary names this sink.
    """

    def __init__(
        self,
        value_function: Optional[Callable[[int, Any, Transition], Any]] = None,
        name: Optional[str] = None,
    ) -> None:
        self.value_function = value_function
        self.name = name or "memory"
        self.events: List[Event] = []
        self.closed = 0

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

    def close(self) -> None:
        self.closed += 1

    def __len__(self) -> int:
        return len(self.events)

    def triggers(self) -> Dict[str, int]:
        """How many events each trigger produced."""
        counts: Dict[str, int] = {}
        for event in self.events:
            counts[event.trigger] = counts.get(event.trigger, 0) + 1
        return counts


class CountingSink(EventSink):
    """Counts events and keeps nothing else: the cheapest sink, for load tests."""

    def __init__(self, name: Optional[str] = None) -> None:
        self.name = name or "counter"
        self.count = 0
        self.closed = 0

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        self.count += 1

    def close(self) -> None:
        self.closed += 1
