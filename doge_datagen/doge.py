"""The state machine: subjects, transitions, sinks and the event-driven engine that runs them.

One event, from :meth:`DataOnlineGenerator.start` to a sink:

1. ``start()`` creates the subjects (in factory order, index ``0..n-1``) and, for each one,
   draws when it first leaves the initial state and by which transition (``_schedule``).
2. The run walks the ticks in order. A tick holds the subjects due to leave their state at it;
   they act in creation order.
3. For each of them the chosen transition's ``action_callback(subject, transition)`` runs; a
   falsy result vetoes the move. Otherwise the subject moves and every sink of the transition
   gets ``collect(timestamp, subject, transition)``, in list order.
4. The subject then draws its next departure from its (new or unchanged) state, starting at
   the next tick.
5. When the run ends, normally or by an exception, every sink is closed exactly once.

Why this matches the README's per-tick model: leaving a state with total probability ``P``
(per tick) is a Bernoulli trial each tick, so the number of ticks spent before leaving is
geometric, ``P(wait >= k) = (1 - P) ** k``, and which transition is taken is independent of
when, with odds proportional to the probabilities. Sampling the wait directly gives the same
distribution at a cost that follows the number of events instead of subjects x ticks.

Randomness: the draw a subject makes at tick ``t`` is a hash of ``(seed, subject index, t)``
(SplitMix64's output function), so a subject's events depend only on the seed and its index,
never on how many other subjects there are or in which process they run.
"""

import hashlib
import logging
import math
import numbers
import random
import signal
import threading
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generic,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    TypeVar,
    Union,
)

from doge_datagen.errors import ConfigurationError, SinkCloseError

if TYPE_CHECKING:  # pragma: no cover
    from doge_datagen.pacing import LagStats

_LOGGER = logging.getLogger(__name__)

__all__ = [
    "DataOnlineGenerator",
    "EventSink",
    "RunSummary",
    "Subject",
    "SubjectFactory",
    "Transition",
]

S = TypeVar("S")

ActionCallback = Callable[[Any, "Transition"], Any]

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_LOW32 = 0xFFFFFFFF
_LN_2_POW_32 = 32 * math.log(2)
# Float noise allowed when probabilities of one state add up to 100 (33.4 + 33.3 + 33.3).
_SUM_TOLERANCE = 1e-9


class Subject:
    """Base class for the actors that walk the state machine (users, devices, ...).

    Subclass it and keep whatever attributes the callbacks and sinks need. Subjects need not
    be hashable and are told apart by position, never by equality.
    """


class SubjectFactory(ABC, Generic[S]):
    """Creates the subjects of a run, one call to :meth:`create` per subject, in order."""

    @abstractmethod
    def create(self) -> S:
        """Return a new subject."""


class Transition:
    """A possible move from ``from_state`` to ``to_state``.

    ``probability`` is the chance, in percent, that a subject in ``from_state`` takes this
    transition in a given tick.
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

    Implement :meth:`collect`; override :meth:`close` to flush and release resources. A sink
    is also a context manager that closes itself on exit.
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


@dataclass
class RunSummary:
    """What a call to :meth:`DataOnlineGenerator.start` did."""

    seed: Any
    subjects: int
    ticks: Optional[int]
    events: int = 0
    vetoed: int = 0
    elapsed_seconds: float = 0.0
    events_per_trigger: Dict[str, int] = field(default_factory=dict)
    vetoed_per_trigger: Dict[str, int] = field(default_factory=dict)
    events_per_sink: Dict[str, int] = field(default_factory=dict)
    #: Delivered and failed record counts of the sinks that keep them (Kafka, databases).
    delivery: Dict[str, Dict[str, int]] = field(default_factory=dict)
    stopped: bool = False
    timestamp_start: Optional[float] = None
    lag: Optional["LagStats"] = None

    @property
    def events_per_second(self) -> float:
        return self.events / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def __str__(self) -> str:
        lines = [
            f"{self.events} events from {self.subjects} subjects over {self.ticks} ticks "
            f"in {self.elapsed_seconds:.3f} s (seed {self.seed!r}, {self.vetoed} vetoed)"
        ]
        for title, counts in (("trigger", self.events_per_trigger), ("sink", self.events_per_sink)):
            if counts:
                width = max(len(name) for name in counts)
                lines.append(f"  per {title}:")
                lines.extend(f"    {name:<{width}}  {n:>10}" for name, n in counts.items())
        return "\n".join(lines)


def _label_sinks(sinks: Sequence[Any]) -> List[str]:
    """Readable, unique names for sinks: their ``name`` attribute or their class name."""
    labels: List[str] = []
    seen: Dict[str, int] = {}
    for sink in sinks:
        base = getattr(sink, "name", None) or type(sink).__name__
        base = str(base)
        seen[base] = seen.get(base, 0) + 1
        labels.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return labels


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigurationError(f"{name} must be a whole number, got {value!r}")
    if value < 0:
        raise ConfigurationError(f"{name} must not be negative, got {value!r}")
    return int(value)


class _Run:
    """What one call to ``start()`` passes to the loop and reads back from it."""

    __slots__ = ("timestamp_start", "pacer", "reporter", "ticks_done", "timestamp")

    def __init__(self, timestamp_start: float, pacer: Any, reporter: Any) -> None:
        self.timestamp_start = timestamp_start
        self.pacer = pacer
        self.reporter = reporter
        self.ticks_done = 0
        self.timestamp = timestamp_start


@contextmanager
def _stop_on_signals(stop: Callable[[], None], enabled: bool) -> Iterator[None]:
    """While a run without a tick limit goes on in the main thread, SIGINT and SIGTERM ask
    it to stop (the current tick completes and the sinks are closed) instead of killing it."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum: int, frame: Any) -> None:
        _LOGGER.info("signal %s received: stopping after the current tick", signum)
        stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _deliver_rest(
    sinks: Sequence[Any],
    failed: Any,
    error: BaseException,
    timestamp: float,
    subject: Any,
    transition: Transition,
) -> None:
    """A sink raised while collecting an event: the sinks after it still get the event, so
    that the healthy ones hold everything generated up to the fault. Their own errors are
    attached to ``error`` as notes."""
    position = next(n for n, sink in enumerate(sinks) if sink is failed)
    for sink in sinks[position + 1 :]:
        if sink is failed:
            continue  # listed twice: the sink that failed does not get the event again
        try:
            sink.collect(timestamp, subject, transition)
        except Exception as more:
            if hasattr(error, "add_note"):
                error.add_note(f"{type(more).__name__} from another sink: {more}")


def _engine_key(seed: Any) -> int:
    """A 64-bit key for the engine's hash, stable across processes and Python versions."""
    digest = hashlib.sha256(b"doge-datagen/engine/" + repr(seed).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


class DataOnlineGenerator(Generic[S]):
    """A probabilistic state machine traversed by ``subjects_num`` subjects.

    :param states: the names of the states.
    :param initial_state: the state every subject starts in.
    :param subject_factory: a :class:`SubjectFactory` (or any callable returning a subject).
    :param subjects_num: how many subjects to create.
    :param tick_ms: the length of a tick in milliseconds.
    :param ticks_num: how many ticks to run; ``None`` runs until :meth:`stop` (or, in the
        main thread, SIGINT or SIGTERM).
    :param timestamp_start: the timestamp of tick 0: epoch milliseconds or a ``datetime``;
        ``None`` means the time at which :meth:`start` is called.
    :param seed: makes the run reproducible; ``None`` picks one at random (see :attr:`seed`).
    """

    def __init__(
        self,
        states: Iterable[str],
        initial_state: str,
        subject_factory: Union[SubjectFactory[Any], Callable[[], Any]],
        subjects_num: int,
        tick_ms: int,
        ticks_num: Optional[int],
        timestamp_start: Union[int, float, datetime, None] = 0,
        *,
        seed: Any = None,
    ) -> None:
        if isinstance(states, (str, bytes)):
            raise ConfigurationError(f"states must be a list of state names, got {states!r}")
        self.states: List[str] = list(states)
        seen = set()
        for state in self.states:
            if state in seen:
                raise ConfigurationError(f"state {state!r} is listed twice in states")
            seen.add(state)
        if initial_state not in seen:
            raise ConfigurationError(
                f"initial state {initial_state!r} is not one of the states {self.states!r}"
            )
        if not (hasattr(subject_factory, "create") or callable(subject_factory)):
            raise ConfigurationError(
                f"subject_factory must be a SubjectFactory or a callable, got {subject_factory!r}"
            )
        self.initial_state = initial_state
        self.subject_factory = subject_factory
        self.subjects_num = _check_count("subjects_num", subjects_num)
        self.ticks_num: Optional[int] = (
            None if ticks_num is None else _check_count("ticks_num", ticks_num)
        )
        if (
            isinstance(tick_ms, bool)
            or not isinstance(tick_ms, numbers.Real)
            or not math.isfinite(tick_ms)
            or tick_ms <= 0
        ):
            raise ConfigurationError(f"tick_ms must be a positive number, got {tick_ms!r}")
        self.tick_ms: float = tick_ms
        if isinstance(timestamp_start, datetime):
            timestamp_start = round(timestamp_start.timestamp() * 1000)
        elif timestamp_start is not None and (
            isinstance(timestamp_start, bool) or not isinstance(timestamp_start, numbers.Real)
        ):
            raise ConfigurationError(
                "timestamp_start must be epoch milliseconds, a datetime or None, "
                f"got {timestamp_start!r}"
            )
        self.timestamp_start: Optional[float] = timestamp_start
        if seed is None:
            seed = random.SystemRandom().randrange(1 << 63)
        self.seed: Any = seed
        #: A generator seeded from :attr:`seed`, for factories and callbacks. It is re-seeded
        #: at every :meth:`start`, so a run can be repeated exactly.
        self.random: random.Random = random.Random(seed)
        self.transitions: List[Transition] = []
        self._by_state: Dict[str, List[Transition]] = {state: [] for state in self.states}
        self.subjects: List[Any] = []
        self._pending: List[Any] = []
        self._stopping: bool = False

    # -- model -------------------------------------------------------------------------------

    def add_transition(
        self,
        trigger: str,
        from_state: str,
        to_state: str,
        probability: float,
        action_callback: Optional[ActionCallback] = None,
        event_sinks: Optional[Sequence[EventSink]] = None,
    ) -> Transition:
        """Add a transition taken with ``probability`` percent per tick; return it."""
        where = f"transition {trigger!r} from {from_state!r}"
        if not isinstance(trigger, str):
            raise ConfigurationError(f"trigger must be a string, got {trigger!r}")
        for role, state in (("from_state", from_state), ("to_state", to_state)):
            if state not in self._by_state:
                raise ConfigurationError(
                    f"{where}: {role} {state!r} is not one of the states {self.states!r}"
                )
        if (
            isinstance(probability, bool)
            or not isinstance(probability, numbers.Real)
            or not math.isfinite(probability)
            or probability < 0
        ):
            raise ConfigurationError(
                f"{where}: probability must be a finite number from 0 to 100, got {probability!r}"
            )
        outgoing = self._by_state[from_state]
        if any(t.trigger == trigger for t in outgoing):
            raise ConfigurationError(
                f"{where}: state {from_state!r} already has trigger {trigger!r}"
            )
        total = sum(t.probability for t in outgoing) + probability
        if total > 100 + _SUM_TOLERANCE:
            raise ConfigurationError(
                f"{where}: probabilities from state {from_state!r} would sum to {total!r}, "
                "above 100"
            )
        if action_callback is not None and not callable(action_callback):
            raise ConfigurationError(
                f"{where}: action_callback {action_callback!r} is not callable"
            )
        sinks = list(event_sinks) if event_sinks else []
        for sink in sinks:
            if not callable(getattr(sink, "collect", None)):
                raise ConfigurationError(f"{where}: event sink {sink!r} has no collect() method")
        transition = Transition(trigger, from_state, to_state, probability, action_callback, sinks)
        outgoing.append(transition)
        self.transitions.append(transition)
        return transition

    @property
    def transition_matrix(self) -> Dict[str, Dict[str, Transition]]:
        """``{from_state: {trigger: transition}}`` for every state (read-only view)."""
        return {state: {t.trigger: t for t in ts} for state, ts in self._by_state.items()}

    @property
    def probability_matrix(self) -> Dict[str, Dict[str, float]]:
        """``{from_state: {trigger: probability}}`` for every state (read-only view)."""
        return {
            state: {t.trigger: t.probability for t in ts} for state, ts in self._by_state.items()
        }

    def transitions_from(self, state: str) -> List[Transition]:
        """The transitions leaving ``state``, in the order they were added."""
        if state not in self._by_state:
            raise ConfigurationError(f"state {state!r} is not one of the states {self.states!r}")
        return list(self._by_state[state])

    @property
    def sinks(self) -> List[Any]:
        """Every distinct sink used by a transition, in order of first use."""
        found: Dict[int, Any] = {}
        for transition in self.transitions:
            for sink in transition.event_sinks:
                found.setdefault(id(sink), sink)
        return list(found.values())

    def subject_states(self) -> List[str]:
        """The state of each subject (by creation order) after the last :meth:`start`."""
        return [self.states[move[-1]] for move in self._pending]

    # -- running -----------------------------------------------------------------------------

    def start(self, speed: Optional[float] = None, *, progress: bool = False) -> RunSummary:
        """Run the ticks, then close every sink; return a :class:`RunSummary`.

        :param speed: ``None`` runs as fast as possible; a number paces the run so that tick
            ``t`` is emitted ``t * tick_ms / speed`` milliseconds after the start (1.0 is real
            time, 60 one simulated minute per second). Late ticks are emitted at once and
            their lag is reported in :attr:`RunSummary.lag`.
        :param progress: draw the run's progress on standard error.
        """
        if speed is not None and (
            isinstance(speed, bool)
            or not isinstance(speed, numbers.Real)
            or not math.isfinite(speed)
            or speed <= 0
        ):
            raise ConfigurationError(f"speed must be a positive number or None, got {speed!r}")
        sinks = self.sinks
        began = time.perf_counter()
        self.random.seed(self.seed)
        self._stopping = False
        counts = [0] * len(self.transitions)
        vetoes = [0] * len(self.transitions)
        timestamp_start = self.timestamp_start
        if timestamp_start is None:
            timestamp_start = round(time.time() * 1000)
        reporter = None
        if progress:
            from doge_datagen.progress import ProgressReporter

            reporter = ProgressReporter(self.ticks_num, sinks, _label_sinks(sinks))
        pacer = None
        if speed is not None:
            from doge_datagen.pacing import Pacer

            pacer = Pacer(self.tick_ms, speed, lambda: self._stopping)
        run = _Run(timestamp_start, pacer, reporter)
        if pacer is not None and reporter is not None:
            # Keep the progress display alive while a paced run waits for its next tick.
            pacer.idle = lambda: reporter.update(run.ticks_done, run.timestamp, sum(counts))
        try:
            with _stop_on_signals(self.stop, enabled=self.ticks_num is None):
                self._create_subjects()
                self._run(counts, vetoes, run)
        except BaseException as exc:
            close_errors = self._close_sinks(sinks)
            if close_errors and hasattr(exc, "add_note"):
                for err in close_errors:
                    exc.add_note(
                        f"while closing sinks after this error: {type(err).__name__}: {err}"
                    )
            # What the run did up to the error, for callers who want the counts.
            try:
                summary = self._summary(sinks, counts, vetoes, time.perf_counter() - began)
                summary.ticks = run.ticks_done
                exc.summary = summary  # type: ignore[attr-defined]
            except Exception:  # pragma: no cover - never hide the original error
                _LOGGER.debug("no summary for the failed run", exc_info=True)
            raise
        finally:
            if reporter is not None:
                reporter.update(run.ticks_done, run.timestamp, sum(counts), force=True)
                reporter.close()
        close_errors = self._close_sinks(sinks)
        summary = self._summary(sinks, counts, vetoes, time.perf_counter() - began)
        summary.ticks = run.ticks_done
        summary.stopped = self._stopping
        summary.timestamp_start = timestamp_start
        summary.lag = pacer.stats() if pacer is not None else None
        if close_errors:
            error = close_errors[0] if len(close_errors) == 1 else SinkCloseError(close_errors)
            try:
                error.summary = summary  # type: ignore[attr-defined]
            except AttributeError:  # pragma: no cover - exceptions with __slots__
                pass
            raise error
        return summary

    def stop(self) -> None:
        """Ask a running :meth:`start` to finish: the current tick completes, the sinks are
        flushed and closed and the summary is returned. Safe from another thread or a signal
        handler."""
        self._stopping = True

    def _create_subjects(self) -> None:
        factory: Any = self.subject_factory
        create: Callable[[], Any] = getattr(factory, "create", factory)
        self.subjects = [create() for _ in range(self.subjects_num)]

    def _compile(self) -> List[List[Any]]:
        """Per state index, the table its subjects draw from.

        A table is ``[certain, leave, inv_log_stay, thresholds, moves, rest]``: the move if the
        state is left at 100 % by a single transition (no draw needed), the leave probability
        per tick, ``1 / log(1 - leave)`` for the geometric wait, cumulative 32-bit thresholds
        and the moves they pick, and the marker a subject holds while it rests there for good.
        A move is ``(transition, callback, sinks, table of to_state, table of from_state,
        transition index, from_state index)``.
        """
        tables: List[List[Any]] = [[] for _ in self.states]
        index = {state: i for i, state in enumerate(self.states)}
        position = {id(t): k for k, t in enumerate(self.transitions)}
        for s, state in enumerate(self.states):
            outgoing = [t for t in self._by_state[state] if t.probability > 0]
            rest = (None, None, (), None, tables[s], -1, s)
            if not outgoing:
                tables[s].extend((None, 0.0, 0.0, [], [], rest))
                continue
            total = sum(t.probability for t in outgoing)
            leave = min(total / 100.0, 1.0)
            inv_log_stay = 1.0 / math.log1p(-leave) if leave < 1.0 else 0.0
            thresholds: List[int] = []
            running = 0.0
            for t in outgoing:
                running += t.probability
                thresholds.append(min(int(running / total * 4294967296.0), 4294967296))
            thresholds[-1] = 4294967296
            moves = [
                (
                    t,
                    t.action_callback,
                    tuple(t.event_sinks),
                    tables[index[t.to_state]],
                    tables[s],
                    position[id(t)],
                    s,
                )
                for t in outgoing
            ]
            certain = moves[0] if leave == 1.0 and len(moves) == 1 else None
            tables[s].extend((certain, leave, inv_log_stay, thresholds, moves, rest))
        return tables

    def _run(self, counts: List[int], vetoes: List[int], run: "_Run") -> None:
        tables = self._compile()
        subjects = self.subjects
        n_ticks: float = math.inf if self.ticks_num is None else self.ticks_num
        key = _engine_key(self.seed)
        log = math.log
        # pending[i]: the move subject i makes next (at the tick whose bucket holds i, if any
        # before the end), or the resting marker of the final state it is in. Its last item is
        # always the subject's current state.
        pending = self._pending = [None] * len(subjects)
        due: Dict[int, List[int]] = {}  # tick -> subjects due to leave their state then

        # The hot loop below inlines this same draw; keep the two in step.
        def schedule(i: int, table: List[Any], tick: int) -> None:
            """Draw when subject ``i`` next leaves the state of ``table``, from ``tick`` on."""
            certain, leave, inv_log_stay, thresholds, moves, rest = table
            if certain is not None:
                at, chosen = tick, certain
            elif leave == 0.0:
                pending[i] = rest
                return
            else:
                h = (key + (i * 4294967296 + tick) * _GOLDEN) & _MASK64
                h = ((h ^ (h >> 30)) * _MIX1) & _MASK64
                h = ((h ^ (h >> 27)) * _MIX2) & _MASK64
                h ^= h >> 31
                at = tick
                if leave < 1.0:
                    at += int((log((h >> 32) + 1) - _LN_2_POW_32) * inv_log_stay)
                low = h & _LOW32
                j = 0
                while low >= thresholds[j]:
                    j += 1
                chosen = moves[j]
            pending[i] = chosen
            if at < n_ticks:
                bucket = due.get(at)
                if bucket is None:
                    due[at] = [i]
                else:
                    bucket.append(i)

        initial = tables[self.states.index(self.initial_state)]
        for i in range(len(subjects)):
            schedule(i, initial, 0)

        timestamp_start = run.timestamp_start
        tick_ms = self.tick_ms
        pacer = run.pacer
        reporter = run.reporter
        pop = due.pop
        get = due.get
        tick = 0
        timestamp = timestamp_start
        while tick < n_ticks:
            bucket = pop(tick, None)
            if not bucket:
                if self._stopping or (not due and pacer is None):
                    break  # stopped, or nobody will ever move again
                tick += 1
                if reporter is not None:
                    run.ticks_done, run.timestamp = tick, timestamp_start + tick * tick_ms
                    reporter.update(tick, run.timestamp, sum(counts))
                continue
            if pacer is not None:
                pacer.wait(tick)
            if self._stopping:
                break
            bucket.sort()
            timestamp = timestamp_start + tick * tick_ms
            following = tick + 1
            # Subjects due at the very next tick (all of them, in a dense model) go straight
            # into its bucket, which is created here when needed.
            existing = get(following)
            fresh = existing is None
            upcoming: List[int] = [] if existing is None else existing
            try:
                for i in bucket:
                    transition, callback, sinks, table, from_table, k, _ = pending[i]
                    subject = subjects[i]
                    if callback is None or callback(subject, transition):
                        counts[k] += 1
                        try:
                            for sink in sinks:
                                sink.collect(timestamp, subject, transition)
                        except Exception as exc:
                            _deliver_rest(sinks, sink, exc, timestamp, subject, transition)
                            raise
                    else:
                        vetoes[k] += 1
                        table = from_table
                    # schedule(i, table, following), inlined: this runs once per event.
                    certain, leave, inv_log_stay, thresholds, moves, rest = table
                    if certain is not None:
                        upcoming.append(i)
                        pending[i] = certain
                        continue
                    if leave == 0.0:
                        pending[i] = rest
                        continue
                    h = (key + (i * 4294967296 + following) * _GOLDEN) & _MASK64
                    h = ((h ^ (h >> 30)) * _MIX1) & _MASK64
                    h = ((h ^ (h >> 27)) * _MIX2) & _MASK64
                    h ^= h >> 31
                    at = following
                    if leave < 1.0:
                        at += int((log((h >> 32) + 1) - _LN_2_POW_32) * inv_log_stay)
                    low = h & _LOW32
                    j = 0
                    while low >= thresholds[j]:
                        j += 1
                    pending[i] = moves[j]
                    if at == following:
                        upcoming.append(i)
                    elif at < n_ticks:
                        later = get(at)
                        if later is None:
                            due[at] = [i]
                        else:
                            later.append(i)
            except Exception as exc:
                if hasattr(exc, "add_note"):
                    exc.add_note(
                        f"while subject #{i} took transition {transition.trigger!r} "
                        f"from {transition.from_state!r} at tick {tick} (timestamp {timestamp})"
                    )
                raise
            if fresh and upcoming and following < n_ticks:
                due[following] = upcoming
            tick = following
            run.ticks_done, run.timestamp = tick, timestamp
            if reporter is not None:
                reporter.update(tick, timestamp, sum(counts))
        if self.ticks_num is not None and not self._stopping:
            run.ticks_done = self.ticks_num

    @staticmethod
    def _close_sinks(sinks: Sequence[Any]) -> List[BaseException]:
        errors: List[BaseException] = []
        for sink in sinks:
            close = getattr(sink, "close", None)
            if close is None:
                continue
            try:
                close()
            except Exception as exc:  # every sink gets closed; errors are raised afterwards
                _LOGGER.debug("closing sink %r failed", sink, exc_info=True)
                errors.append(exc)
        return errors

    def _summary(
        self, sinks: Sequence[Any], counts: List[int], vetoes: List[int], elapsed: float
    ) -> RunSummary:
        per_trigger: Dict[str, int] = {}
        vetoed_per_trigger: Dict[str, int] = {}
        per_sink = {id(sink): 0 for sink in sinks}
        labels = _label_sinks(sinks)
        for transition, n, v in zip(self.transitions, counts, vetoes):
            per_trigger[transition.trigger] = per_trigger.get(transition.trigger, 0) + n
            if v:
                vetoed_per_trigger[transition.trigger] = (
                    vetoed_per_trigger.get(transition.trigger, 0) + v
                )
            for sink in transition.event_sinks:
                per_sink[id(sink)] += n
        return RunSummary(
            seed=self.seed,
            subjects=self.subjects_num,
            ticks=self.ticks_num,
            events=sum(counts),
            vetoed=sum(vetoes),
            elapsed_seconds=elapsed,
            events_per_trigger=per_trigger,
            vetoed_per_trigger=vetoed_per_trigger,
            events_per_sink=dict(zip(labels, per_sink.values())),
            delivery={
                label: {
                    "delivered": int(getattr(sink, "delivered", 0) or 0),
                    "failed": int(getattr(sink, "failed", 0) or 0),
                }
                for label, sink in zip(labels, sinks)
                if hasattr(sink, "delivered") or hasattr(sink, "failed")
            },
        )
