"""A sink that disturbs its stream the way real sources do, with the truth beside it.

:class:`DisorderedSink` wraps any sink. Each event it is given is, independently, dropped
(with probability ``drop``), delivered twice (``duplicate``), held back (``late``) or passed
on at once; an event meets at most one of these. A late event keeps its event time and
its subject's attributes as they were, and is passed on once the stream's time has gone
past its release time (its event time plus a delay drawn uniformly from 1 ms to
``max_delay_ms``): after every event with a time up to its release time, before any event
with a later one. A ``truth`` sink, if given, receives every event exactly once, in order,
undisturbed, so that a consumer under test can be checked against it.

Why the draws are hashes and not a generator: a sharded run splits the subjects between
processes, and a run may be repeated with other sinks. Each event's fate is a function of
the seed (by default the run's), the subject's global index and the event time, so the
same event meets the same fate whatever shard delivers it and whatever else the run does,
and the wrapper never draws from ``datagen.random`` (which would change the model's own
draws) nor from the global ``random`` module. Outside a run, the events are numbered in
the order they come instead of by subject.

Why a paced run needs the run's clock: a late event must also arrive late in wall time.
The engine gives the wrapper the run before opening it (``follow_run``); between ticks,
:meth:`DisorderedSink.poll` releases a held event once the wall clock has reached its
release time and every event before that time has been emitted. The position of a late
event in the stream is therefore the same in a paced run as in a fast one.

From a URL, any sink takes ``late``, ``max_delay`` (``500ms``, ``30s``, ``10m``, ``2h``; a
bare number is milliseconds), ``duplicate``, ``drop`` and ``truth`` (another sink's URL,
percent-encoded)::

    jsonl:events.jsonl?late=0.05&max_delay=10m&duplicate=0.01&drop=0.001&truth=jsonl%3Atruth.jsonl

What was done is counted for the run summary: ``dropped``, ``duplicated`` (the extra
copies), ``late``, and the truth sink's ``truth_delivered`` and ``truth_failed``. Held events
are never lost: closing the sink passes on every one still held, and one the inner sink
could not take is counted as failed.
"""

import copy
import heapq
import itertools
import math
import operator
from typing import Any, Callable, Dict, List, Optional, Tuple

from doge_datagen.core.checks import check_positive_count
from doge_datagen.core.keys import GOLDEN as _GOLDEN
from doge_datagen.core.keys import MASK64 as _MASK64
from doge_datagen.core.keys import MIX1 as _MIX1
from doge_datagen.core.keys import MIX2 as _MIX2
from doge_datagen.core.keys import derive_key
from doge_datagen.core.text import duration_ms
from doge_datagen.core.types import EventSink, Transition
from doge_datagen.errors import ConfigurationError
from doge_datagen.sinks.base import Sink

__all__ = ["DISORDER_SETTINGS", "DisorderedSink", "parse_duration_ms"]

#: The URL query settings that make a sink disordered.
DISORDER_SETTINGS = ("late", "max_delay", "duplicate", "drop", "truth")

_TWO_POW_64 = 1 << 64
# How far apart neighbouring subjects' keys start (odd, and unrelated to _GOLDEN).
_SPREAD = 0xD6E8FEB86659FD93
# Events numbered in arrival order (outside a run) are keyed apart from subjects.
_COUNTED = 1 << 62


def _snapshot(subject: Any) -> Any:
    """A shallow copy of ``subject``; the subject itself if it cannot be copied.

    A plain object (its attributes in its ``__dict__`` or its slots, no copy protocol of its
    own) is copied attribute by attribute: ``copy.copy`` goes through ``__reduce_ex__``,
    several times slower, and a late event pays for it.
    """
    cls = type(subject)
    copier = _COPIERS.get(cls)
    if copier is None:
        copier = _COPIERS[cls] = _copier(cls)
    return copier(subject)


def _copier(cls: type) -> Callable[[Any], Any]:
    """How :func:`_snapshot` copies an object of ``cls``."""
    slots = _plain_slots(cls)
    new = object.__new__
    if slots is None:

        def copied(subject: Any) -> Any:
            try:
                return copy.copy(subject)
            except Exception:
                return subject

        return copied
    if not slots:

        def by_dict(subject: Any) -> Any:
            made: Any = new(cls)
            made.__dict__.update(subject.__dict__)
            return made

        return by_dict
    if cls.__setattr__ is object.__setattr__ and all(name.isidentifier() for name in slots):  # type: ignore[comparison-overlap]
        # Written out for the class, as dataclasses writes its methods: a late event's copy
        # is then a few attribute reads and writes.
        lines = ["def by_slots(subject):", "    made = new(cls)"]
        for name in slots:
            lines += [
                "    try:",
                f"        made.{name} = subject.{name}",
                "    except AttributeError:",
                "        pass",
            ]
        lines += [
            "    state = getattr(subject, '__dict__', None)",
            "    if state:",
            "        made.__dict__.update(state)",
            "    return made",
        ]
        namespace: Dict[str, Any] = {"new": new, "cls": cls}
        exec("\n".join(lines), namespace)  # noqa: S102 - names checked as identifiers
        copier: Callable[[Any], Any] = namespace["by_slots"]
        return copier
    get = operator.attrgetter(*slots) if len(slots) > 1 else None
    assign = object.__setattr__

    def by_slots(subject: Any) -> Any:
        made: Any = new(cls)
        try:
            values = get(subject) if get is not None else (getattr(subject, slots[0]),)
            for name, value in zip(slots, values):
                assign(made, name, value)
        except AttributeError:  # a slot never set
            for name in slots:
                if hasattr(subject, name):
                    assign(made, name, getattr(subject, name))
        state = getattr(subject, "__dict__", None)
        if state:
            made.__dict__.update(state)
        return made

    return by_slots


_COPIERS: Dict[type, Callable[[Any], Any]] = {}


def _plain_slots(cls: type) -> Optional[List[str]]:
    """The slot names of a class whose objects :func:`_snapshot` copies itself, else None."""
    if not (
        cls.__new__ is object.__new__  # type: ignore[comparison-overlap]
        and cls.__reduce_ex__ is object.__reduce_ex__  # type: ignore[comparison-overlap]
        and cls.__reduce__ is object.__reduce__  # type: ignore[comparison-overlap]
        and getattr(cls, "__getstate__", None) is getattr(object, "__getstate__", None)
        and not any(hasattr(cls, name) for name in ("__copy__", "__setstate__"))
    ):
        return None
    names: List[str] = []
    for base in cls.__mro__[:-1]:
        declared = vars(base).get("__slots__", ())
        for name in (declared,) if isinstance(declared, str) else declared:
            if name not in ("__dict__", "__weakref__"):
                names.append(
                    f"_{base.__name__.lstrip('_')}{name}"
                    if name.startswith("__") and not name.endswith("__")
                    else name
                )
    return names


class _NoRun:
    """Stands for the run's ``datagen.random`` outside a run: no subject is keyed."""

    _i = None


_NO_RUN = _NoRun()

Held = Tuple[int, int, int, Any, Transition]  # release time, sequence, event time, subject, move


def parse_duration_ms(text: str) -> int:
    """``500ms``, ``30s``, ``10m`` (or ``10min``), ``2h``, ``1d`` or a bare number of
    milliseconds, in whole milliseconds; ValueError for anything else."""
    ms = duration_ms(text)
    if ms is None:
        raise ValueError(f"{text!r} is not a duration such as 500ms, 30s, 10m or 2h")
    return round(ms)


def _key(seed: Any) -> int:
    return derive_key("disorder", seed)


def _rate(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise ConfigurationError(f"{name} must be a probability from 0 to 1, got {value!r}")
    return float(value)


class DisorderedSink(Sink):
    """Passes events on to ``inner`` late, twice or not at all, and all of them to ``truth``.

    :param inner: the sink that receives the disturbed stream.
    :param late: the probability that an event is held back.
    :param max_delay_ms: the longest delay of a late event, in milliseconds of event time.
    :param duplicate: the probability that an event is delivered twice, the copy right after.
    :param drop: the probability that an event is never delivered.
    :param seed: the draws' seed; ``None`` takes the run's seed (``0`` outside a run).
    :param truth: a sink that receives every event once, in order, undisturbed.
    :param name: how summaries name the sink (by default the inner sink's name).

    ``delivered`` and ``failed`` are the inner sink's (with held events it could not take
    counted as failed); ``dropped``, ``duplicated`` and ``late`` count what was done to the
    events of the current opening. The inner and truth sinks are opened, polled, hurried and
    closed with the wrapper: give only the wrapper to the model's transitions.
    """

    def __init__(
        self,
        inner: EventSink,
        *,
        late: float = 0.0,
        max_delay_ms: int = 60_000,
        duplicate: float = 0.0,
        drop: float = 0.0,
        seed: Any = None,
        truth: Optional[EventSink] = None,
        name: Optional[str] = None,
    ) -> None:
        for role, sink in (("inner", inner), ("truth", truth)):
            if sink is not None and not callable(getattr(sink, "collect", None)):
                raise ConfigurationError(f"the {role} sink must have collect(), got {sink!r}")
        if truth is inner:
            raise ConfigurationError("the truth sink must not be the sink it checks")
        self.late_rate = _rate("late", late)
        self.duplicate_rate = _rate("duplicate", duplicate)
        self.drop_rate = _rate("drop", drop)
        if self.late_rate + self.duplicate_rate + self.drop_rate > 1:
            raise ConfigurationError(
                f"late + duplicate + drop must not exceed 1 (an event meets at most one of "
                f"them), got {late} + {duplicate} + {drop}"
            )
        check_positive_count("max_delay_ms", max_delay_ms)
        self.max_delay_ms = max_delay_ms
        self.seed = seed
        self.inner = inner
        self.truth = truth
        self.name = name or str(getattr(inner, "name", None) or type(inner).__name__)
        # An event whose draw is below one of these meets that fate (drop, then duplicate,
        # then late): one comparison tells the common case, nothing happens, apart.
        self._drop_below = round(self.drop_rate * _TWO_POW_64)
        self._duplicate_below = self._drop_below + round(self.duplicate_rate * _TWO_POW_64)
        self._late_below = self._duplicate_below + round(self.late_rate * _TWO_POW_64)
        self._held: List[Held] = []
        self._counted = 0
        self._key = _key(0 if seed is None else seed)
        self._run: Any = None
        self._rng: Any = None
        self._first = 0
        self.dropped = 0
        self.duplicated = 0
        self.late = 0
        self._lost = 0

    # -- counts ------------------------------------------------------------------------------

    @property
    def delivered(self) -> int:  # type: ignore[override]
        return int(getattr(self.inner, "delivered", 0) or 0)

    @property
    def failed(self) -> int:
        return int(getattr(self.inner, "failed", 0) or 0) + self._lost

    @failed.setter
    def failed(self, value: int) -> None:
        # Sink.delivery_error adds the wrapper's own failures here.
        self._lost = value - int(getattr(self.inner, "failed", 0) or 0)

    @property
    def held(self) -> int:
        """Late events not passed on yet."""
        return len(self._held)

    def extra_counts(self) -> Dict[str, int]:
        """What the run summary reports beside ``delivered`` and ``failed``."""
        counts = {"dropped": self.dropped, "duplicated": self.duplicated, "late": self.late}
        if self.truth is not None:
            counts["truth_delivered"] = int(getattr(self.truth, "delivered", 0) or 0)
            counts["truth_failed"] = int(getattr(self.truth, "failed", 0) or 0)
        return counts

    def _reset_counts(self) -> None:
        self.dropped = self.duplicated = self.late = self._lost = 0
        self._counted = 0

    # -- the run -----------------------------------------------------------------------------

    def follow_run(self, run: Any) -> None:
        """Called by the engine before a run opens its sinks: the draws are keyed by the
        run's seed and subjects, and a paced run's clock releases late events."""
        self._run = run
        self._rng = run.rng
        self._first = run.first
        if self.seed is None:
            self._key = _key(run.model.seed)

    def _open(self) -> None:
        self._held = []
        for sink in (self.inner, self.truth):
            opener = getattr(sink, "open", None)
            if callable(opener):
                opener()
        self.collect = self._collector()  # type: ignore[method-assign]

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        # An open sink's collect() is the instance's own (see _collector): this one is called
        # on a sink nobody opened, which opens it.
        if not self._is_open:
            self.open()
        self.__dict__.get("collect", self._collector())(timestamp, subject, transition)

    def _collector(self) -> Any:
        """The open sink's collect(): what it does for each event, with everything it reads
        bound once (it costs the run about as much as the inner sink's own collect).

        The draw is SplitMix64's mixing of ``key + subject * spread + time * golden`` (the
        sum for one event time is worked out once for all the events of that time); its top
        bits decide, against thresholds, whether anything happens to the event.
        """
        inner = self.inner.collect
        truth = None if self.truth is None else self.truth.collect
        held = self._held
        counted = self._counted_draw
        pop = heapq.heappop
        special = self._special(inner, held)

        def release(before: int) -> None:
            while held and held[0][0] < before:
                _, _, timestamp, subject, transition = pop(held)
                inner(timestamp, subject, transition)

        rng = self._rng if self._rng is not None else _NO_RUN
        start = (self._key + self._first * _SPREAD) & _MASK64
        late_below = self._late_below
        stamp: Any = None
        base = 0

        def collect(timestamp: int, subject: Any, transition: Transition) -> None:
            nonlocal stamp, base
            if truth is not None:
                truth(timestamp, subject, transition)
            if held and held[0][0] < timestamp:
                release(timestamp)
            i = rng._i
            if i is None:
                h = counted(timestamp)
            else:
                if timestamp != stamp:
                    stamp = timestamp
                    base = (start + timestamp * _GOLDEN) & _MASK64
                h = (base + i * _SPREAD) & _MASK64
                h = ((h ^ (h >> 30)) * _MIX1) & _MASK64
                h = ((h ^ (h >> 27)) * _MIX2) & _MASK64
            if h >= late_below:
                inner(timestamp, subject, transition)
            else:
                special(h, timestamp, subject, transition)

        from doge_datagen.engine.loop import _speedups  # None: pure Python, as for the loop

        if _speedups is None or late_below > _MASK64:  # (rates adding up to 1: no quiet event)
            return collect
        # The same steps in C (_speedups.c), this closure for timestamps beyond 64 bits.
        return _speedups.disorder_collect(
            inner, truth, held, release, special, counted, rng, collect, start, late_below
        )

    def _special(self, inner: Any, held: List[Any]) -> Callable[[int, int, Any, Transition], None]:
        """The open sink's handling of an event whose draw is below the late threshold (see
        :meth:`_collector`), with everything it reads bound once."""
        drop_below, duplicate_below = self._drop_below, self._duplicate_below
        late_below = self._late_below
        max_delay = self.max_delay_ms
        push = heapq.heappush
        copiers = _COPIERS
        sequence = itertools.count(1)  # orders late events of one release time as they came

        def special(h: int, timestamp: int, subject: Any, transition: Transition) -> None:
            """Drop, copy or hold back an event whose draw is below the late threshold."""
            if h < drop_below:
                self.dropped += 1
            elif h < duplicate_below:
                inner(timestamp, subject, transition)
                self.duplicated += 1
                inner(timestamp, subject, transition)
            else:
                # Held back. Where the draw falls within the late band is uniform too: it
                # gives the delay, 1 ms to max_delay_ms (the band is wider than 2**40 for any
                # late rate above 1e-7, so the rounding is far below a millisecond's share).
                # The row is made when the event is passed on: a copy keeps the attributes
                # the subject had at the event.
                delay = 1 + (h - duplicate_below) * max_delay // (late_below - duplicate_below)
                copier = copiers.get(type(subject))
                late = _snapshot(subject) if copier is None else copier(subject)
                push(held, (timestamp + delay, next(sequence), timestamp, late, transition))
                self.late += 1

        return special

    def _counted_draw(self, timestamp: int) -> int:
        """The draw of an event outside a run's subjects: numbered in the order they come."""
        g = _COUNTED + self._counted
        self._counted += 1
        h = (self._key + g * _SPREAD + timestamp * _GOLDEN) & _MASK64
        h = ((h ^ (h >> 30)) * _MIX1) & _MASK64
        return ((h ^ (h >> 27)) * _MIX2) & _MASK64

    def _release(self, before: float) -> None:
        """Pass on the held events released before the stream time ``before``."""
        held = self._held
        inner = self.inner.collect
        while held and held[0][0] < before:
            _, _, timestamp, subject, transition = heapq.heappop(held)
            inner(timestamp, subject, transition)

    def poll(self) -> None:
        """Release, in a paced run, the late events whose time has come on the wall clock
        (and whose place in the stream has been reached); then poll the inner and truth
        sinks."""
        run = self._run
        if self._held and run is not None and run.pacer is not None and self._is_open:
            self._release(self._paced_limit(run))
        for sink in (self.inner, self.truth):
            poll = getattr(sink, "poll", None)
            if callable(poll):
                poll()

    @staticmethod
    def _paced_limit(run: Any) -> float:
        """The stream time before which a paced run may release held events now: the wall
        clock's simulated time, but no further than the ticks the run has finished (every
        tick before the one it waits for or has just done). Nothing with an earlier time
        can come any more, so the release keeps the place it has in a fast run."""
        pacer = run.pacer
        tick_ms: float = run.model.tick_ms
        start: int = run.timestamp_start
        wall: float = start + (pacer.clock() - pacer.wall_start) / pacer.seconds_per_tick * tick_ms
        tick = pacer.tick
        if tick is None:  # nothing left to move, or not started
            return wall + 1 if run.ticks_done else -math.inf
        finished: int = max(run.ticks_done, tick)
        return min(wall + 1, start + finished * tick_ms)

    def hurry(self) -> None:
        """Ask the inner and truth sinks to bound their remaining waits."""
        for sink in (self.inner, self.truth):
            hurry = getattr(sink, "hurry", None)
            if callable(hurry):
                hurry()

    def _close(self) -> None:
        self.__dict__.pop("collect", None)
        self._run = self._rng = None
        errors: List[BaseException] = []
        held, self._held = self._held, []
        held.sort()
        inner = self.inner
        for n, (_, _, timestamp, subject, transition) in enumerate(held):
            try:
                inner.collect(timestamp, subject, transition)
            except BaseException as exc:
                rest = len(held) - n - 1
                errors.append(
                    self.delivery_error(f"{rest} late events not passed on", rest, exc)
                    if rest
                    else exc
                )
                break
        for sink in (inner, self.truth):
            close = getattr(sink, "close", None)
            if callable(close):
                try:
                    close()
                except BaseException as exc:
                    errors.append(exc)
        if errors:
            first = errors[0]
            for other in errors[1:]:
                if hasattr(first, "add_note"):
                    first.add_note(f"also: {type(other).__name__}: {other}")
            raise first

    def __repr__(self) -> str:
        return (
            f"<DisorderedSink of {self.inner!r} late={self.late_rate} "
            f"duplicate={self.duplicate_rate} drop={self.drop_rate} "
            f"max_delay_ms={self.max_delay_ms} truth={self.truth!r}>"
        )


def disorder_from_url(url: Any) -> Optional[Dict[str, Any]]:
    """The disorder settings of a sink URL (taken out of its query), or ``None`` without any;
    a wrong value is a :class:`~doge_datagen.sinks.registry.SinkURLError` naming it."""
    from doge_datagen.sinks.urls import SinkURLError

    if not any(key in url.params for key in DISORDER_SETTINGS):
        return None
    options: Dict[str, Any] = {}
    for key in ("late", "duplicate", "drop"):
        text = url.params.pop(key, None)
        if text is None:
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0 <= value <= 1:
            raise SinkURLError(
                f"sink {url.masked!r}: {key}={text!r} is not a probability from 0 to 1"
            )
        options[key] = value
    text = url.params.pop("max_delay", None)
    if text is not None:
        try:
            options["max_delay_ms"] = parse_duration_ms(text)
        except ValueError as exc:
            raise SinkURLError(f"sink {url.masked!r}: max_delay: {exc}") from None
        if options["max_delay_ms"] < 1:
            raise SinkURLError(f"sink {url.masked!r}: max_delay={text!r} is less than 1 ms")
    if sum(options.get(key, 0.0) for key in ("late", "duplicate", "drop")) > 1:
        raise SinkURLError(
            f"sink {url.masked!r}: late + duplicate + drop must not exceed 1 (an event meets "
            "at most one of them)"
        )
    truth = url.params.pop("truth", None)
    if truth is not None:
        if not truth:
            raise SinkURLError(f"sink {url.masked!r}: truth= names no sink URL")
        options["truth"] = truth
    return options


def wrap_from_url(
    url: Any,
    options: Dict[str, Any],
    inner: EventSink,
    records: Any,
    build: Callable[[Any, Any], EventSink],
) -> EventSink:
    """``inner`` disordered as ``options`` (from :func:`disorder_from_url`) say, its truth
    sink built from its own URL by ``build`` (the registry's ``build_sink``)."""
    from doge_datagen.sinks.urls import SinkURL, SinkURLError

    truth = None
    truth_url = options.pop("truth", None)
    if truth_url is not None:
        parsed = SinkURL(truth_url)
        if any(key in parsed.params for key in DISORDER_SETTINGS):
            raise SinkURLError(
                f"sink {url.masked!r}: the truth sink {parsed.masked!r} is the undisturbed "
                "stream; it takes no late, max_delay, duplicate, drop or truth"
            )
        truth = build(parsed, records)
    return DisorderedSink(inner, truth=truth, **options)
