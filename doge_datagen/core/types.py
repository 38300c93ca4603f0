"""The plain model types: what a subject, a subject factory, a transition and an event sink are.

They are the ground every other part stands on: the engine runs them, the sinks receive them,
the analysis reads them. This module imports nothing of the package.
"""

from abc import ABC, abstractmethod
from typing import Any, Callable, Generic, List, Optional, Protocol, Sequence, TypeVar, Union

__all__ = ["ActionCallback", "EventSink", "Model", "Subject", "SubjectFactory", "Transition"]

S = TypeVar("S")

ActionCallback = Callable[[Any, "Transition"], Any]


class Subject:
    """Base class for the actors that walk the state machine (users, devices, ...).

    Subclass it and keep whatever attributes the callbacks and sinks need. Subjects need not
    be hashable and are told apart by position, never by equality.
    """


class SubjectFactory(ABC, Generic[S]):
    """Creates the subjects of a run, one call to :meth:`create` per subject, in order."""

    @abstractmethod
    def create(self, *args: Any, **kwargs: Any) -> S:
        """Return a new subject: ``create(self, index)`` is given the subject's index (0, 1,
        ...), ``create(self)`` is called without it, as in the first releases.

        (The signature is ``(*args, **kwargs)`` so that type checkers accept either form in
        a subclass; the engine looks at the subclass's own parameters.)
        """


class Transition:
    """A possible move from ``from_state`` to ``to_state``.

    ``probability`` is the chance, in percent, that a subject in ``from_state`` takes this
    transition in a given tick. The attributes may be changed after ``add_transition``; the
    model is checked again when a run starts, so a change that makes it invalid is refused
    then, with the same message as at ``add_transition``.
    """

    __slots__ = (
        "trigger",
        "from_state",
        "to_state",
        "probability",
        "action_callback",
        "event_sinks",
    )

    def __init__(
        self,
        trigger: str,
        from_state: str,
        to_state: str,
        probability: float,
        action_callback: Optional[ActionCallback] = None,
        event_sinks: Optional[Sequence["EventSink"]] = None,
    ) -> None:
        self.trigger = trigger
        self.from_state = from_state
        self.to_state = to_state
        self.probability = probability
        self.action_callback = action_callback
        self.event_sinks: List[EventSink] = list(event_sinks) if event_sinks else []

    def __repr__(self) -> str:
        return (
            f"Transition(trigger={self.trigger!r}, from_state={self.from_state!r}, "
            f"to_state={self.to_state!r}, probability={self.probability!r})"
        )


class EventSink(ABC):
    """Receives the events of successful transitions.

    Implement :meth:`collect`; override :meth:`open` to acquire files or connections when a
    run starts and :meth:`close` to flush and release them. A sink is also a context manager
    that closes itself on exit.
    """

    def open(self) -> None:
        """Called once when a run starts, before the first event. The default does nothing.

        Sinks open files and connections here rather than in their constructor, so that
        building a model (to draw or analyse it) touches no output.
        """

    @abstractmethod
    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        """Handle one event: ``subject`` took ``transition`` at ``timestamp`` (epoch ms)."""

    def close(self) -> None:
        """Flush what is buffered and release resources. The default does nothing."""

    def __enter__(self) -> "EventSink":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class Model(Protocol):
    """What the engine and the analysis read of a model: a
    :class:`~doge_datagen.model.DataOnlineGenerator`, or anything with the same attributes.

    The engine depends on this description, not on the generator class, so that it sits below
    the generator in the package. ``_stopping`` is the flag :meth:`stop` sets; both loops read
    it at every tick (the C loop straight from the instance's ``__dict__``), and only the model
    writes it.
    """

    states: List[str]
    initial_state: str
    subjects_num: int
    ticks_num: Optional[int]
    tick_ms: Union[int, float]
    timestamp_start: Optional[int]
    subject_factory: Any
    _stopping: bool

    @property
    def transitions(self) -> List[Transition]: ...

    @property
    def sinks(self) -> List[EventSink]: ...

    @property
    def seed(self) -> Any: ...

    @property
    def random(self) -> Any: ...

    @property
    def arrivals(self) -> Any: ...

    def transitions_from(self, state: str) -> List[Transition]: ...

    def stop(self) -> None: ...
