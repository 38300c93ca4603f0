"""Small models shared by the engine tests."""

import itertools
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional

from doge_datagen import DataOnlineGenerator, InMemorySink


@dataclass
class Thing:
    """A subject that is neither hashable (dataclass eq without frozen) nor unique by value."""

    n: int = 0


class ThingFactory:
    def __init__(self) -> None:
        self.counter = itertools.count()

    def create(self) -> Thing:
        return Thing(next(self.counter))


def ping_pong(subjects: int, ticks: int, probability: float = 100.0, **kwargs: Any):
    """Two states bouncing at ``probability`` percent; returns (generator, sink)."""
    sink = InMemorySink(lambda ts, s, t: s.n)
    datagen = DataOnlineGenerator(
        ["ping", "pong"], "ping", ThingFactory(), subjects, 1000, ticks, **kwargs
    )
    datagen.add_transition("hit", "ping", "pong", probability, event_sinks=[sink])
    datagen.add_transition("back", "pong", "ping", probability, event_sinks=[sink])
    return datagen, sink


def three_states(subjects: int, ticks: int, seed: Any, sinks: Optional[Iterable[Any]] = None):
    """No callbacks: A leaves at 8% (two ways), B at 20%, C at 60% (one way a self-loop)."""
    sink = InMemorySink(lambda ts, s, t: s.n)
    all_sinks: List[Any] = [sink, *(sinks or [])]
    datagen = DataOnlineGenerator(
        ["A", "B", "C"], "A", ThingFactory(), subjects, 60000, ticks, seed=seed
    )
    datagen.add_transition("a_to_b", "A", "B", 5, event_sinks=all_sinks)
    datagen.add_transition("a_to_c", "A", "C", 3, event_sinks=all_sinks)
    datagen.add_transition("b_to_a", "B", "A", 20, event_sinks=all_sinks)
    datagen.add_transition("c_to_a", "C", "A", 50, event_sinks=all_sinks)
    datagen.add_transition("c_loop", "C", "C", 10, event_sinks=all_sinks)
    return datagen, sink
