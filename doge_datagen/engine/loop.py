"""The event-driven engine: compiled tables, the draw, the loop, and a run's state.

One event, from :meth:`DataOnlineGenerator.start` to a sink, all in this file:

1. :func:`run` opens every sink, creates the subjects (global index ``first .. stop - 1``, in
   order) and, for each one, draws when it first leaves the initial state and by which
   transition (:meth:`Run.schedule`).
2. :meth:`Run.loop` walks the ticks in order. A tick holds the subjects due to leave their
   state at it; they act in creation order.
3. For each of them the chosen transition's ``action_callback(subject, transition)`` runs; a
   falsy result vetoes the move. Otherwise the subject moves and every sink of the transition
   gets ``collect(timestamp, subject, transition)``, in list order.
4. The subject then draws its next departure from its (new or unchanged) state, starting at
   the next tick.
5. When the run ends, normally or by any exception, every sink is closed exactly once
   (:func:`close_sinks`) and a :class:`RunSummary` is made.

Why this matches the README's per-tick model: leaving a state with total probability ``P``
(per tick) is a Bernoulli trial each tick, so the number of ticks spent before leaving is
geometric, ``P(wait >= k) = (1 - P) ** k``, and which transition is taken is independent of
when, with odds proportional to the probabilities. Sampling the wait directly gives the same
distribution at a cost that follows the number of events instead of subjects x ticks.

Randomness: the draw a subject makes at tick ``t`` is a hash of ``(seed, global subject index,
t)`` (SplitMix64's output function, :func:`draw`), so a subject's events depend only on the seed
and its index, never on how many other subjects there are or in which process they run. That
is what lets a run be cut into ranges of subjects (:func:`run` takes any range).
"""

import gc
import heapq
import inspect
import logging
import math
import os
import signal
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from doge_datagen.core import keys
from doge_datagen.core.keys import draw, engine_key
from doge_datagen.core.types import Model, Transition
from doge_datagen.engine.randomness import CREATE_TICK, SubjectRandom, message_tick
from doge_datagen.engine.randomness import running as running_in_this_thread
from doge_datagen.engine.summary import RunSummary, sink_labels
from doge_datagen.errors import ConfigurationError, SinkCloseError

# The same loop in C (_speedups.c), for fast runs; the Python loop below runs when it is not
# built, and for paced runs, progress reports and fractional ticks. Setting the environment
# variable DOGE_DATAGEN_PURE_PYTHON=1 keeps every run in Python.
_speedups: Any
if os.environ.get("DOGE_DATAGEN_PURE_PYTHON", "") not in ("", "0"):
    _speedups = None
else:
    try:
        from doge_datagen.engine import _speedups
    except ImportError:  # pragma: no cover - a checkout without the built extension
        _speedups = None
#: Whether the C loop is built and in use (``doge-datagen --version`` shows it).
HAS_SPEEDUPS = _speedups is not None
_huge_arenas: Optional[Callable[[bool], bool]] = getattr(_speedups, "huge_arenas", None)

_LOGGER = logging.getLogger(__name__)

__all__ = [
    "HAS_SPEEDUPS",
    "Run",
    "close_sinks",
    "compile_tables",
    "draw",
    "engine_key",
    "next_move",
    "open_sinks",
    "run",
    "summarize",
]

# SplitMix64 and the key derivation are defined once, in doge_datagen.core.keys; the loop keeps
# module-level copies of the constants because a global read is what its inlined draws use.
_MASK64 = keys.MASK64
_GOLDEN = keys.GOLDEN
_MIX1 = keys.MIX1
_MIX2 = keys.MIX2
_LOW32 = keys.LOW32
_TWO_POW_32 = keys.TWO_POW_32
_LN_2_POW_32 = keys.LN_2_POW_32
# How often, at most, the loop calls the sinks' poll() between ticks (a paced run's waits poll
# too): often enough for any time bound of theirs, rarely enough to cost nothing per tick.
_POLL_SECONDS = 0.01
_PERF_COUNTER = time.perf_counter
# (index * 2**32 + tick) * golden == index * _INDEX_GOLDEN + tick * golden (mod 2**64).
_INDEX_GOLDEN = (_TWO_POW_32 * _GOLDEN) & _MASK64
# Below this leave probability per tick the geometric wait, up to 32 * ln 2 / p ticks, does
# not fit a float's range of exact whole numbers: such a state is never left.
_SMALLEST_LEAVE = 1e-290
# The C loop counts timestamps in 64-bit integers: a run that starts beyond this uses Python.
_C_LIMIT = 1 << 62
# A busy tick from this one on, or whose timestamp does not fit 64 bits, ends the run with an
# error in both loops: the C loop keeps ticks below it, and sinks take 64-bit timestamps.
_TICK_LIMIT = (1 << 62) - 1
_MS_MIN = -(1 << 63)
_MS_MAX = (1 << 63) - 1


def _event_note(first: int, i: int, transition: Any, tick: int, timestamp: Any) -> str:
    """What an error raised while handling an event says about it."""
    return (
        f"while subject #{first + i} took transition {transition.trigger!r} from "
        f"{transition.from_state!r} at tick {tick} (timestamp {timestamp})"
    )


#: A compiled state: ``[certain, leave, inv_log_stay, thresholds, moves, rest]``.
Table = List[Any]


def next_move(key: int, table: Table, index: int, tick: int) -> Tuple[Optional[int], Any]:
    """When subject ``index`` next leaves the state of ``table``, from ``tick`` on, and by
    which move: ``(at, move)``, or ``(None, rest)`` for a state it never leaves.

    This is the engine's one draw. :meth:`Run.loop` carries an inlined copy of it because it
    runs once per event; ``tests/test_engine.py`` holds the two in step.
    """
    certain, leave, inv_log_stay, thresholds, moves, rest = table
    if certain is not None:
        return tick, certain
    if leave == 0.0:
        if not thresholds:
            return None, rest
        # A state with profiled probabilities: its timeline draws (timevarying.py).
        at, move = thresholds.draw(key, index, tick)
        return (None if at == math.inf else at), move
    h = draw(key, index, tick)
    at = tick
    if leave < 1.0:
        # The high 32 bits give a uniform u in (0, 1]; log(u) / log(1 - leave) is the
        # geometric number of ticks spent before leaving.
        at += int((math.log((h >> 32) + 1) - _LN_2_POW_32) * inv_log_stay)
    low = h & _LOW32
    j = 0
    while low >= thresholds[j]:
        j += 1
    return at, moves[j]


def compile_tables(
    model: "Model",
    timestamp_start: Optional[float] = None,
    n_ticks: float = math.inf,
) -> List[Table]:
    """Per state index, the table its subjects draw from.

    A table is ``[certain, leave, inv_log_stay, thresholds, moves, rest]``: the move if the
    state is left at 100 % by a single transition (no draw needed), the leave probability
    per tick, ``1 / log(1 - leave)`` for the geometric wait, cumulative 32-bit thresholds
    and the moves they pick, and the marker a subject holds while it rests there for good.
    A move is ``(transition, callback, sinks, table of to_state, table of from_state,
    transition index, from_state index)``.

    A state with a profiled probability gets ``leave == 0.0`` (as a final state) and, in
    place of its thresholds, its :class:`~doge_datagen.timevarying.StateTimeline` for the run
    starting at ``timestamp_start``: the draw tells the two apart only in that rare branch,
    so constant models pay nothing per event for profiles.
    """
    from doge_datagen.profiles import Profiled

    states = model.states
    tables: List[Table] = [[] for _ in states]
    index = {state: i for i, state in enumerate(states)}
    position = {id(t): k for k, t in enumerate(model.transitions)}

    def move(t: "Transition", s: int) -> Tuple[Any, ...]:
        """What a subject in state ``s`` holds while it waits to take ``t``."""
        return (
            t,
            t.action_callback,
            tuple(t.event_sinks),
            tables[index[t.to_state]],
            tables[s],
            position[id(t)],
            s,
        )

    for s, state in enumerate(states):
        every = model.transitions_from(state)
        rest = (None, None, (), None, tables[s], -1, s)
        if any(isinstance(t.probability, Profiled) for t in every):
            from doge_datagen.engine.timevarying import StateTimeline

            if timestamp_start is None:
                raise ValueError("a model with profiles is compiled for a run's timestamp_start")
            moves = [move(t, s) for t in every]
            timeline = StateTimeline(
                state, every, moves, rest, timestamp_start, model.tick_ms, n_ticks
            )
            tables[s].extend((None, 0.0, 0.0, timeline, moves, rest))
            continue
        outgoing = [t for t in every if t.probability > 0]
        if not outgoing:
            tables[s].extend((None, 0.0, 0.0, [], [], rest))
            continue
        total = sum(t.probability for t in outgoing)
        leave = min(total / 100.0, 1.0)
        stay_log = math.log1p(-leave) if leave < 1.0 else 0.0
        if leave < 1.0 and not -stay_log >= _SMALLEST_LEAVE:
            # A probability so small (5e-324 %) that the expected wait overflows a float:
            # no subject ever leaves in a run of any length; the state acts as final.
            tables[s].extend((None, 0.0, 0.0, [], [], rest))
            continue
        inv_log_stay = 1.0 / stay_log if leave < 1.0 else 0.0
        thresholds: List[int] = []
        running = 0.0
        for t in outgoing:
            running += t.probability
            thresholds.append(min(int(running / total * _TWO_POW_32), _TWO_POW_32))
        thresholds[-1] = _TWO_POW_32
        moves = [move(t, s) for t in outgoing]
        certain = moves[0] if leave == 1.0 and len(moves) == 1 else None
        tables[s].extend((certain, leave, inv_log_stay, thresholds, moves, rest))
    return tables


def _deliver_rest(
    sinks: Sequence[Any],
    failed: Any,
    error: BaseException,
    timestamp: int,
    subject: Any,
    transition: "Transition",
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


class _Unkeyed:
    """Takes the engine's keys when ``datagen.random`` was replaced by another generator."""

    __slots__ = ("_i", "_s", "_t", "_tb")  # as SubjectRandom's: the C loop sets them in place

    def __init__(self) -> None:
        self._i: Optional[int] = None
        self._s: Optional[int] = None
        self._t: int = CREATE_TICK
        self._tb: Optional[int] = None

    def at_tick(self, tick: int) -> None:
        pass

    def key(self, index: Optional[int], tick: int = CREATE_TICK) -> None:
        # Only noted, as SubjectRandom does, for Run.now(): a factory reads the timestamp
        # of its subject's arrival tick whatever generator datagen.random is.
        self._i, self._t = index, tick


def takes_index(create: Callable[..., Any]) -> bool:
    """Whether a factory's ``create`` wants the subject's global index: it has a positional
    parameter without a default (``create(self, index)``) or one named ``index``."""
    try:
        parameters = inspect.signature(create).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: called as before
        return False
    for parameter in parameters:
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            if parameter.default is parameter.empty or parameter.name == "index":
                return True
        if parameter.kind is parameter.VAR_POSITIONAL:
            return False
    return False


#: From how many subjects on their creation runs with the cyclic garbage collector paused.
_GC_PAUSE_FROM = 10_000
#: From how many subjects their creation takes memory on huge pages (_speedups.huge_arenas).
_HUGE_PAGES_FROM = 100_000


@contextmanager
def _making_many(count: int) -> Iterator[None]:
    """Create ``count`` subjects, or file them under their first tick, with the cyclic
    garbage collector paused and their memory on huge pages, if they are many.

    Creating a million subjects allocates millions of objects that all live for the run, and
    each full collection walks every one of them again: eight full collections took 0.4 s of
    the 0.8 s it took to create a million demo subjects. Filing them makes a list per tick
    (ten thousand in a week of minutes), enough to set off collections that walk the new
    subjects again. Nothing made here is garbage, so the collector has nothing to find; it
    is enabled again right after (if it was enabled), and reference counting frees objects
    meanwhile as always.

    From :data:`_HUGE_PAGES_FROM` subjects, the objects made meanwhile live on 2 MiB pages
    (Linux, with the C speed-ups; see ``huge_arenas`` in ``_speedups.c``): each event of the
    run reads its subject and the subject's values at places far apart, and with 4 KiB pages
    a million subjects are some 40,000 pages, far more than the TLB holds, so that nearly
    every read also walks the page tables. On huge pages a million banking subjects are 72
    pages, and the loop's cost per event fell by 10-35 % (doc/scaling.md). The memory freed
    later in the run (a subject's old balance) is reused there too.
    """
    huge = _huge_arenas if count >= _HUGE_PAGES_FROM else None
    was_huge = huge(True) if huge is not None else False
    paused = count >= _GC_PAUSE_FROM and gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
        if huge is not None:
            huge(was_huge)


class LoopContext(NamedTuple):
    """What the C loop (``_speedups.run_ticks`` and ``schedule_all``) reads of a run, by
    position: the C file names each position (``CTX_DUE`` ... ``CTX_ARRIVE``), and
    ``tests/engine/test_loop_contract.py`` checks that those indices follow this field order.

    Besides these, the C loop calls the run's ``_subjects_changed``, ``_too_far`` and the
    sinks' ``collect``, and reads the model's ``_stopping`` flag (see
    :class:`~doge_datagen.core.types.Model`).
    """

    #: The wheel of subjects due at each tick (filed by :meth:`Run.schedule`).
    due: Any
    #: Events and vetoes per transition, counted in place.
    counts: List[int]
    vetoes: List[int]
    #: ``datagen.random``, keyed to each event's subject before its callback runs.
    rng: Any
    model: Any
    #: The engine's key (:func:`~doge_datagen.core.keys.engine_key`).
    key: int
    #: Timestamp of tick 0 and the tick length, whole milliseconds.
    start: int
    tick_ms: int
    #: The last tick, ``math.inf`` for a run without a tick limit.
    n_ticks: float
    #: Six slots the C loop fills with where an error happened.
    where: List[Any]
    ln_2_pow_32: float
    run: "Run"
    #: The sinks' ``poll`` methods, called at most every ``poll_seconds`` by ``clock()``.
    polls: List[Callable[[], Any]]
    poll_seconds: float
    clock: Optional[Callable[[], float]]
    #: Creates the subjects arriving at a tick and returns the next arrival's tick.
    arrive: Callable[[int], float]
    #: None without checkpoints. Else the ``clock()`` time after which the loop returns at
    #: the end of a busy tick, for a checkpoint; and then what is still due goes back into
    #: :attr:`due` whenever the loop returns without an error.
    pause_at: Optional[float]


class Run:
    """The state of one run over the global subject indices ``first .. stop - 1``.

    It holds what changes while the run goes on (the subjects, each one's pending move, the
    per-tick buckets, the counts), so the generator itself stays a description of the model
    that several runs (or shards of one run, in other processes) can share.
    """

    def __init__(
        self,
        model: "Model",
        first: int,
        stop: int,
        timestamp_start: int,
        pacer: Any = None,
        reporter: Any = None,
        arrivals_shard: Tuple[int, int] = (0, 1),
    ) -> None:
        self.model = model
        self.first = first
        self.stop = stop
        #: ``(k, K)``: this run is shard ``k`` of ``K``; arrival ``j`` is shard ``j % K``'s.
        self.arrivals_shard = arrivals_shard
        #: The subjects that arrived during the run (in this shard).
        self.arrived = 0
        self._creating_at = 0  # the tick of the subjects being created (arrivals: theirs)
        #: The next tick at which subjects arrive (infinite: none before the end).
        self.next_arrival: float = math.inf
        self._upcoming: List[int] = []
        self._arrivals: Any = None
        self._n_ticks: float = math.inf
        self.timestamp_start = timestamp_start
        self.pacer = pacer
        self.reporter = reporter
        self.subjects: List[Any] = []
        #: pending[i]: the move local subject ``i`` makes next (at the tick whose bucket holds
        #: ``i``, if any before the end), or the resting marker of the final state it is in.
        #: Its last item is always the subject's current state index.
        self.pending: List[Any] = []
        #: tick -> local positions of the subjects due to leave their state then.
        self.due: Dict[int, List[int]] = {}
        self.counts = [0] * len(model.transitions)
        self.vetoes = [0] * len(model.transitions)
        #: The Python loop's heap of the ticks that have a bucket in :attr:`due` (with
        #: ticks already done among them), so that it goes straight to the next busy tick;
        #: made at the first long empty stretch (None before, and in the C loop).
        self._ahead: Optional[List[int]] = None
        #: True from the creation of the subjects to the end of the loop: the model is fixed
        #: then (add_transition raises).
        self.running = False
        self.ticks_done = 0
        self.timestamp = timestamp_start
        self.tables: List[Table] = []
        self.key = engine_key(model.seed)
        #: What the run keys per subject and tick: ``datagen.random`` when it is a
        #: :class:`SubjectRandom` (else a stand-in whose keys nobody reads).
        self.rng: Any = model.random if isinstance(model.random, SubjectRandom) else _Unkeyed()
        if isinstance(self.rng, SubjectRandom):
            self.rng.begin(first)
        #: The ``poll()`` of every sink that has one: called after a tick (at most every
        #: ``_POLL_SECONDS``) and while a paced run waits, so buffering sinks keep their
        #: time bound and asynchronous ones their delivery counts current.
        self.polls: List[Callable[[], Any]] = [
            poll for sink in model.sinks if callable(poll := getattr(sink, "poll", None))
        ]
        #: Called as ``hook(tick, positions)`` once subjects are made: at the start with
        #: ``tick`` None and every initial subject's local position, then at each arrival. A
        #: sink writing change events adds one in ``follow_run`` (its snapshot and arrivals).
        self.created: List[Callable[[Optional[int], Sequence[int]], Any]] = []
        #: Writes the run's checkpoints (:class:`~doge_datagen.engine.checkpoint.Checkpointer`)
        #: between ticks, or None.
        self.checkpointer: Any = None
        #: The checkpoint this run resumes from (as loaded), or None.
        self.resume_state: Optional[Dict[str, Any]] = None
        #: Called as ``ticker(tick)`` at the start of every tick, before its arrivals and its
        #: moves, or None. A model of several populations delivers the messages sent at the
        #: tick before here (:mod:`doge_datagen.populations`); with a ticker the loop visits
        #: every tick, busy or not, as the arrivals of every tick would make it.
        self.ticker: Optional[Callable[[int], Any]] = None
        #: With a ticker: the tick of the next real arrivals (``next_arrival`` is then the
        #: next tick, whose ticker call comes first).
        self._real_next: float = math.inf

    def create_subjects(self) -> None:
        """Create the run's subjects, in global index order, each with ``datagen.random``
        keyed by its global index.

        A factory whose ``create`` takes the index (``create(self, index)``) is called for
        this run's indices only. One whose ``create()`` takes nothing may count the subjects
        it made (the README's does), so in a run that starts after index 0 (a shard) it is
        also called for every index before, and those subjects are dropped: the subjects of
        the range are then the same as in a whole run.
        """
        factory: Any = self.model.subject_factory
        create: Callable[..., Any] = getattr(factory, "create", factory)
        rng = self.rng
        first = self.first
        subjects: List[Any] = []
        with _making_many(self.stop - first):
            try:
                if takes_index(create):
                    for i in range(self.stop - first):
                        rng._i, rng._s = i, None
                        subjects.append(create(first + i))
                else:
                    for i in range(-first, 0):
                        rng._i, rng._s = i, None
                        create()
                    for i in range(self.stop - first):
                        rng._i, rng._s = i, None
                        subjects.append(create())
            finally:
                rng._i = None
        self.subjects = subjects
        for hook in self.created:
            hook(None, range(len(subjects)))

    def arrive(self, arrivals: Any, tick: int, indices: List[int], n_ticks: float) -> float:
        """Create the subjects arriving at ``tick`` (global ``indices``, this shard's) and
        file them from ``tick`` on; return the next tick with arrivals.

        A subject of global index ``g`` sits at local position ``g - first``, as the initial
        ones do, so the draw's hash input is the same in every shard. Positions between
        belong to other shards' arrivals and stay empty (``None``).
        """
        if indices:
            self._creating_at = tick
            factory: Any = self.model.subject_factory
            create: Callable[..., Any] = getattr(factory, "create", factory)
            with_index = takes_index(create)
            rng = self.rng
            subjects, pending = self.subjects, self.pending
            states = self.model.states
            # A model of several populations says each arrival's initial state.
            state_of: Any = getattr(self.model, "initial_state_of", None)
            initial: Any = None
            if state_of is None:
                initial = self.tables[states.index(self.model.initial_state)]
            for g in indices:
                i = g - self.first
                missing = i + 1 - len(subjects)
                if missing > 0:
                    subjects.extend([None] * missing)
                    pending.extend([None] * missing)
                size = len(subjects)
                rng.key(i, CREATE_TICK)  # datagen.random: subject g's creation stream
                try:
                    made = create(g) if with_index else create()
                finally:
                    rng._i = None
                if len(subjects) != size:
                    self._subjects_changed(size)
                subjects[i] = made
                self.arrived += 1
                table = initial if state_of is None else self.tables[states.index(state_of(g))]
                self.schedule(i, table, tick, n_ticks)
            for hook in self.created:
                hook(tick, [g - self.first for g in indices])
        at, upcoming = arrivals.next()
        self.next_arrival = at
        self._upcoming = upcoming
        return at

    def schedule_all(
        self, table: Table, n_ticks: float, start: int = 0, stop: Optional[int] = None
    ) -> None:
        """``schedule(i, table, 0, n_ticks)`` for every subject of the run (or the local
        positions ``start .. stop - 1``), with the draw of :func:`next_move` written out: it
        runs once per subject, which at a million subjects and a few events each is a good
        part of the run (``tests/test_engine.py`` holds the copies in step)."""
        certain, leave, inv_log_stay, thresholds, moves, rest = table
        pending, due = self.pending, self.due
        if stop is None:
            stop = len(self.subjects)
        # draw()'s hash input for global subject first + i at tick 0.
        key = (self.key + self.first * _INDEX_GOLDEN) & _MASK64
        fast = self._fast_loop(key, n_ticks)
        if fast is not None:  # the C loop's draw, from its own schedule (any kind of state)
            _speedups.schedule_all(fast[1], pending, stop, table, start)
            return
        if certain is not None or leave == 0.0:
            for i in range(start, stop):
                self.schedule(i, table, 0, n_ticks)
            return
        get = due.get
        log = math.log
        for i in range(start, stop):
            h = (key + i * _INDEX_GOLDEN) & _MASK64
            h = ((h ^ (h >> 30)) * _MIX1) & _MASK64
            h = ((h ^ (h >> 27)) * _MIX2) & _MASK64
            h ^= h >> 31
            at = 0
            if leave < 1.0:
                at = int((log((h >> 32) + 1) - _LN_2_POW_32) * inv_log_stay)
            low = h & _LOW32
            j = 0
            while low >= thresholds[j]:
                j += 1
            pending[i] = moves[j]
            if at < n_ticks:
                bucket = get(at)
                if bucket is None:
                    due[at] = [i]
                else:
                    bucket.append(i)

    def schedule(self, i: int, table: Table, tick: int, n_ticks: float) -> None:
        """File local subject ``i`` under the tick it next leaves the state of ``table``."""
        at, move = next_move(self.key, table, self.first + i, tick)
        self.pending[i] = move
        if at is not None and at < n_ticks:
            bucket = self.due.get(at)
            if bucket is None:
                self.due[at] = [i]
                if self._ahead is not None:
                    heapq.heappush(self._ahead, at)
            else:
                bucket.append(i)

    def loop(self) -> None:
        model = self.model
        subjects = self.subjects
        n_ticks: float = math.inf if model.ticks_num is None else model.ticks_num
        self.tables = tables = compile_tables(model, self.timestamp_start, n_ticks)
        from doge_datagen.engine.timevarying import Arrivals, check_run

        check_run(tables, n_ticks)  # errors in profiles come before any event
        arrivals = None
        make_arrivals = getattr(model, "make_arrivals", None)
        if make_arrivals is not None:
            # A model of several populations: each population's arrivals, merged.
            arrivals = make_arrivals(
                self.key, self.timestamp_start, model.tick_ms, n_ticks, self.arrivals_shard
            )
        elif model.arrivals is not None:
            arrivals = Arrivals(
                model.arrivals,
                self.key,
                self.timestamp_start,
                model.tick_ms,
                n_ticks,
                model.subjects_num,
                self.arrivals_shard,
            )
        # The hash input of local subject i is that of global subject first + i: fold the
        # offset into the key once (the arithmetic is modulo 2**64 either way).
        key = (self.key + self.first * _TWO_POW_32 * _GOLDEN) & _MASK64
        log = math.log
        counts, vetoes = self.counts, self.vetoes
        due = self.due
        next_arrival: float = math.inf
        tick = 0
        timestamp = self.timestamp_start
        if self.resume_state is not None:
            from doge_datagen.engine.checkpoint import restore

            with _making_many(len(self.resume_state["pending"])):
                tick = restore(self, self.resume_state, arrivals)
            self.resume_state = None
            subjects = self.subjects
            pending: List[Any] = self.pending
            next_arrival, timestamp = self.next_arrival, self.timestamp
        else:
            pending = [None] * len(subjects)
            self.pending = pending
            with _making_many(len(subjects)):
                ranges = getattr(model, "initial_ranges", None)
                if ranges is None:
                    self.schedule_all(tables[model.states.index(model.initial_state)], n_ticks)
                else:
                    # A model of several populations: each range of global indices starts
                    # in its own initial state (the same draw, subject by subject).
                    for low, high, state in ranges():
                        low, high = max(low, self.first), min(high, self.stop)
                        if low < high:
                            self.schedule_all(
                                tables[model.states.index(state)],
                                n_ticks,
                                low - self.first,
                                high - self.first,
                            )
            if arrivals is not None:
                next_arrival, self._upcoming = arrivals.next()
                self.next_arrival = next_arrival
        if self.ticker is not None:
            # Every tick goes through _arrive_at (the ticker, then the arrivals due then).
            self._real_next = next_arrival
            next_arrival = self.next_arrival = tick

        timestamp_start = self.timestamp_start
        tick_ms = model.tick_ms
        pacer = self.pacer
        reporter = self.reporter
        polls = self.polls
        clock = time.perf_counter
        next_poll = 0.0
        rng = self.rng
        whole_ms = isinstance(tick_ms, int)  # no rounding needed
        pop = due.pop
        get = due.get
        checkpointer = self.checkpointer
        self._arrivals, self._n_ticks = arrivals, n_ticks
        fast = self._fast_loop(key, n_ticks)
        # The ticks that have a bucket, soonest first, once a long empty stretch came (see
        # _next_busy); the C loop keeps its own calendar.
        self._ahead = ahead = None
        push, pop_ahead = heapq.heappush, heapq.heappop
        # Callbacks, sinks, factories and polls may change a subject in place, not add or
        # remove one (the pending moves and the buckets hold positions in the list).
        size = len(subjects)
        while tick < n_ticks:
            if tick >= next_arrival:
                if tick >= _TICK_LIMIT:
                    self._too_far(tick, timestamp)
                try:
                    next_arrival = self._arrive_at(tick)
                except BaseException:  # as the C loop leaves it when a factory fails
                    self.ticks_done, self.timestamp = tick, timestamp
                    raise
                subjects = self.subjects
                size = len(subjects)
            if fast is not None:
                # The rest of the run in C: the same steps as below (arrivals and the sinks'
                # polls included), until the end, a stop, or nobody is left to move.
                run_ticks, context, where = fast
                try:
                    tick, ran_at, finished = run_ticks(
                        context, subjects, pending, tick, next_arrival
                    )
                except BaseException as exc:
                    self._fast_loop_failed(exc, where)
                    raise
                if ran_at is not None:
                    timestamp = ran_at
                self.ticks_done, self.timestamp = tick, timestamp
                if checkpointer is None or finished or tick >= n_ticks or model._stopping:
                    break
                # Paused at a tick boundary for a checkpoint: write it, then on in C.
                checkpointer.write(self)
                fast = self._fast_loop(key, n_ticks)
                next_arrival = self.next_arrival
                subjects = self.subjects
                size = len(subjects)
                continue
            bucket = pop(tick, None)
            if not bucket:
                if model._stopping:
                    break
                if pacer is None:
                    if not due and next_arrival >= n_ticks:
                        break  # nobody will ever move again
                    tick += 1
                    if tick not in due:
                        # On to the next tick with something to do (with short ticks, most
                        # are empty): a bucket ahead, arrivals, or the end; a long stretch in
                        # one go, whatever its length.
                        end = tick + 64
                        while tick < end and tick < n_ticks and tick < next_arrival:
                            tick += 1
                            if tick in due:
                                break
                        else:
                            if tick == end:
                                tick = self._next_busy(tick, next_arrival, n_ticks)
                                ahead = self._ahead
                else:
                    tick = self.ticks_done = self._idle(tick, n_ticks)
                if reporter is not None:
                    self.ticks_done, self.timestamp = tick, timestamp_start + round(tick * tick_ms)
                    reporter.update(tick, self.timestamp, sum(counts))
                continue
            if pacer is not None:
                pacer.wait(tick)
            if model._stopping:
                due[tick] = bucket  # still due: a checkpoint at the stop holds it
                break
            if len(bucket) > 1:
                bucket.sort()
            if ahead is not None:
                while ahead and ahead[0] <= tick:
                    pop_ahead(ahead)
            if tick >= _TICK_LIMIT:
                self._too_far(tick, timestamp)
            stamp: int = timestamp_start + (
                tick * tick_ms if whole_ms else round(tick * tick_ms)  # type: ignore[assignment]
            )
            if not _MS_MIN <= stamp <= _MS_MAX:
                self._too_far(tick, timestamp)
            timestamp = stamp
            following = tick + 1
            # Subjects due at the very next tick (all of them, in a dense model) go straight
            # into its bucket, which is made at the first of them.
            upcoming: Optional[List[int]] = get(following)
            # datagen.random's streams for this tick (the tick's part of their key is worked
            # out at the first draw); the engine's own draws at the next tick share the key's
            # tick part, folded in once here.
            rng._t = tick
            rng._tb = None
            tick_key = key + following * _GOLDEN
            try:
                for i in bucket:
                    transition, callback, sinks, table, from_table, k, _ = pending[i]
                    subject = subjects[i]
                    # datagen.random draws from this subject's stream at this tick.
                    rng._i = i
                    rng._s = None
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
                    if len(subjects) != size:
                        self._subjects_changed(size)
                    # next_move(key, table, first + i, following), inlined: this runs once
                    # per event. (tick_key + i * _INDEX_GOLDEN is draw()'s hash input.)
                    certain, leave, inv_log_stay, thresholds, moves, rest = table
                    if certain is not None:
                        pending[i] = certain
                        if upcoming is None:
                            upcoming = []
                            if following < n_ticks:
                                due[following] = upcoming
                                if ahead is not None:
                                    push(ahead, following)
                        upcoming.append(i)
                        continue
                    if leave == 0.0:
                        if not thresholds:
                            pending[i] = rest
                            continue
                        # Profiled: the state's timeline draws (rare branch; see next_move).
                        at, pending[i] = thresholds.draw(key, i, following)
                    else:
                        h = (tick_key + i * _INDEX_GOLDEN) & _MASK64
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
                        if upcoming is None:
                            upcoming = []
                            if following < n_ticks:
                                due[following] = upcoming
                                if ahead is not None:
                                    push(ahead, following)
                        upcoming.append(i)
                    elif at < n_ticks:
                        later = get(at)
                        if later is None:
                            due[at] = [i]
                            if ahead is not None:
                                push(ahead, at)
                        else:
                            later.append(i)
            except BaseException as exc:  # KeyboardInterrupt from a sink too: the same state
                rng._i = None
                self.ticks_done, self.timestamp = tick, timestamp
                if hasattr(exc, "add_note"):
                    exc.add_note(_event_note(self.first, i, transition, tick, timestamp))
                raise
            rng._i = None
            tick = following
            if polls:
                now = clock()
                if now >= next_poll:  # at most every _POLL_SECONDS: a tick can be short
                    next_poll = now + _POLL_SECONDS
                    self.ticks_done, self.timestamp = tick, timestamp
                    for poll in polls:
                        poll()
                    if len(subjects) != size:
                        self._subjects_changed(size)
            if checkpointer is not None and clock() >= checkpointer.next_at:
                self.ticks_done, self.timestamp = tick, timestamp
                checkpointer.write(self)
            if reporter is not None:
                self.ticks_done, self.timestamp = tick, timestamp
                reporter.update(tick, timestamp, sum(counts))
            elif pacer is not None or tick & 255 == 0:
                # For readers in other threads (metrics, a shard's watcher): every tick of a
                # paced run, now and then in a fast one (where ticks are microseconds apart).
                self.ticks_done, self.timestamp = tick, timestamp
        if reporter is None:
            self.ticks_done, self.timestamp = tick, timestamp
        if model.ticks_num is not None and not model._stopping:
            self.ticks_done = model.ticks_num
            if self.ticker is not None:
                # A run that reached its end: what the ticker holds for the tick after the
                # last (a world's messages sent at the last tick) is handled now, stamped
                # with the run's end, before the sinks close.
                self.ticker(model.ticks_num)

    def _fast_loop(
        self, key: int, n_ticks: float
    ) -> Optional[Tuple[Any, "LoopContext", List[Any]]]:
        """``(run_ticks, context, where)`` for the C loop, or None where the Python loop runs:
        without the extension, for paced runs and progress reports (which act at every
        tick), for ticks of a fractional number of milliseconds or of 2**31 ms and more, and
        for a start beyond 2**62 ms. Any number of ticks runs in C."""
        model = self.model
        tick_ms = model.tick_ms
        start = self.timestamp_start
        if (
            _speedups is None
            or self.pacer is not None
            or self.reporter is not None
            or type(tick_ms) is not int
            or type(start) is not int
            or not 0 < tick_ms < 1 << 31
            or not -_C_LIMIT < start < _C_LIMIT
        ):
            return None
        where: List[Any] = [None] * 6
        context = LoopContext(
            due=self.due,
            counts=self.counts,
            vetoes=self.vetoes,
            rng=self.rng,
            model=model,
            key=key,
            start=start,
            tick_ms=tick_ms,
            n_ticks=n_ticks,
            where=where,
            ln_2_pow_32=_LN_2_POW_32,
            run=self,
            polls=self.polls,
            poll_seconds=_POLL_SECONDS,
            # None: the C loop reads the clock time.perf_counter reads, without a call.
            clock=None if time.perf_counter is _PERF_COUNTER else time.perf_counter,
            arrive=self._arrive_at,
            pause_at=None if self.checkpointer is None else float(self.checkpointer.next_at),
        )
        return _speedups.run_ticks, context, where

    def _arrive_at(self, tick: int) -> float:
        """A loop reached the next tick with arrivals: create them (filed into :attr:`due`)
        and return the tick of the arrivals after. With a :attr:`ticker`, every tick comes
        here: the ticker first, then the arrivals due at the tick, and the next tick next."""
        ticker = self.ticker
        if ticker is None:
            return self.arrive(self._arrivals, tick, self._upcoming, self._n_ticks)
        ticker(tick)
        real = self._real_next
        if tick >= real:
            real = self._real_next = self.arrive(
                self._arrivals, tick, self._upcoming, self._n_ticks
            )
        self.next_arrival = following = min(real, tick + 1)
        return following

    def _fast_loop_failed(self, exc: BaseException, where: List[Any]) -> None:
        """The C loop raised: what the Python loop does then. In an event, the sinks after a
        failing one get the event (with ``datagen.random`` still keyed to its subject, as the
        C loop leaves it), and the error says which event it was; the run's tick and
        timestamp are those of the tick it failed at, as ``where`` says (``[local index or
        None, failed sink or None, tick, timestamp or None, move, subject]``)."""
        i, failed_sink, tick, timestamp, move, subject = where
        where[:] = [None] * 6
        try:
            if tick is None:  # pragma: no cover - raised before any tick (an internal error)
                return
            if timestamp is None:  # no busy tick yet
                timestamp = self.timestamp
            if i is None:  # between events: an arrival, a poll, a signal, a tick too far
                self.ticks_done, self.timestamp = tick, timestamp
                return
            transition, _, sinks = move[:3]
            if failed_sink is not None and isinstance(exc, Exception):
                _deliver_rest(sinks, failed_sink, exc, timestamp, subject, transition)
            self.ticks_done, self.timestamp = tick, timestamp
            if hasattr(exc, "add_note"):
                exc.add_note(_event_note(self.first, i, transition, tick, timestamp))
        finally:
            self.rng._i = None

    def _next_busy(self, tick: int, next_arrival: float, n_ticks: float) -> Any:
        """The Python loop's next tick with something to do from ``tick`` on (which has
        nothing due): the soonest bucket, the next arrivals or the end, whichever comes
        first, so that an empty stretch costs nothing whatever its length."""
        ahead = self._ahead
        if ahead is None:  # from now on the loop keeps it
            ahead = self._ahead = list(self.due)
            heapq.heapify(ahead)
        while ahead and ahead[0] < tick:
            heapq.heappop(ahead)  # ticks already done
        target: Any = ahead[0] if ahead else n_ticks
        if next_arrival < target:
            target = next_arrival
        if n_ticks < target:
            target = n_ticks
        return target if target > tick else tick

    def _subjects_changed(self, size: int) -> None:
        """User code added or removed subjects during the run: say so, in both loops."""
        raise ConfigurationError(
            f"datagen.subjects went from {size} to {len(self.subjects)} subjects during the "
            "run: callbacks, sinks, factories and polls may change a subject or put another in "
            "its place, but not add or remove subjects (the run keeps their positions)"
        )

    def _too_far(self, tick: int, timestamp: Any) -> None:
        """The run reached a tick beyond 64-bit ticks and timestamps: end it, in both loops,
        with the tick and timestamp of the last busy tick before it."""
        self.ticks_done, self.timestamp = tick, timestamp
        raise ConfigurationError(
            f"the run reached tick {tick}, whose timestamp ({self.timestamp_start} + {tick} x "
            f"{self.model.tick_ms} ms) is beyond the 64-bit milliseconds and ticks a run can "
            "stamp (timestamps within +-2**63, ticks below 2**62 - 1): give the run a tick limit "
            "(ticks_num), shorter ticks or an earlier timestamp_start"
        )

    def _idle(self, tick: int, n_ticks: float) -> int:
        """A paced run with nothing due at ``tick``: sleep until the next tick that has
        something to do (or the end, or a stop) instead of spinning through empty ticks."""
        pacer = self.pacer
        if self.due:
            target = min(self.due)
            if self.next_arrival < target:
                target = int(self.next_arrival)
        elif self.next_arrival < n_ticks:
            target = int(self.next_arrival)
        elif n_ticks != math.inf:
            target = int(n_ticks)
        else:
            # Every subject rests in a final state: keep time until stopped.
            pacer.sleep_until(None)
            return max(tick, pacer.ticks_elapsed())
        pacer.sleep_until(target)
        return target if not self.model._stopping else max(tick, min(target, pacer.ticks_elapsed()))

    def state_counts(
        self, counts: Optional[Sequence[int]] = None, arrived: Optional[int] = None
    ) -> List[int]:
        """How many of the run's subjects are in each state (by state index), without
        looking at a subject: every subject starts (or arrives) in the initial state and
        each event moves one from its transition's ``from_state`` to its ``to_state``. The
        hot loop keeps nothing extra for it. From another thread while the run goes on, pass
        a copy of :attr:`counts` and then :attr:`arrived`, read in that order: the numbers
        then add up to ``stop - first + arrived``."""
        model = self.model
        index = {state: s for s, state in enumerate(model.states)}
        occupancy = [0] * len(model.states)
        arrived = self.arrived if arrived is None else arrived
        ranges = getattr(model, "initial_ranges", None)
        if ranges is None:
            occupancy[index[model.initial_state]] = self.stop - self.first + arrived
        else:
            for low, high, state in ranges():
                occupancy[index[state]] += max(0, min(high, self.stop) - max(low, self.first))
            arrived_states: Callable[[], Any] = model.arrived_states  # type: ignore[attr-defined]
            for state, n in arrived_states():  # this run's arrivals, by initial state
                occupancy[index[state]] += n
        for transition, n in zip(model.transitions, self.counts if counts is None else counts):
            occupancy[index[transition.from_state]] -= n
            occupancy[index[transition.to_state]] += n
        return occupancy

    def subject_states(self) -> List[str]:
        states = self.model.states
        return [states[move[-1]] for move in self.pending if move is not None]

    def now(self) -> int:
        """The simulated time: the timestamp of the tick whose event (or arrival) is being
        handled, else that of the tick after the last one done.

        Both loops key ``datagen.random`` by the event's subject and tick before they call a
        callback or a sink, so the tick is read from there rather than kept up to date at
        every tick for a reader that may never come.
        """
        rng = self.rng
        if rng._i is None:
            tick = self.ticks_done
        elif rng._t == CREATE_TICK:
            tick = self._creating_at
        elif rng._t < CREATE_TICK:  # a message handled at tick message_tick(_t)
            tick = message_tick(rng._t)
        else:
            tick = rng._t
        tick_ms = self.model.tick_ms
        return self.timestamp_start + (
            tick * tick_ms if isinstance(tick_ms, int) else round(tick * tick_ms)
        )


@contextmanager
def _stop_on_signals(model: "Model", enabled: bool) -> Iterator[List[int]]:
    """While a run without a tick limit goes on in the main thread, SIGINT and SIGTERM ask
    it to stop (the current tick completes and the sinks are closed) instead of killing it.

    The handlers stay in place while the sinks close, so a second signal cannot cut a
    flush short by killing the process; it is recorded (the yielded list holds the signals
    received) and sinks that offer ``hurry()`` are asked to bound their remaining waits.
    """
    received: List[int] = []
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {}

    def handler(signum: int, frame: Any) -> None:
        # A signal while the run is already stopping (a first signal, stop(), or a sharded
        # run's coordinator asking this shard to stop) cuts the remaining waits short.
        stopping = model._stopping or bool(received)
        received.append(signum)
        if not stopping:
            _LOGGER.info("signal %s received: stopping after the current tick", signum)
        else:
            _LOGGER.warning("signal %s during the stop: cutting the sinks' waits short", signum)
            for sink in model.sinks:
                hurry = getattr(sink, "hurry", None)
                if callable(hurry):
                    try:
                        hurry()
                    except Exception:  # pragma: no cover - a signal handler must not raise
                        _LOGGER.debug("hurry() of %r failed", sink, exc_info=True)
        model.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


#: What ``if_exists`` may say.
IF_EXISTS = ("append", "replace", "fail")


def apply_if_exists(sinks: Sequence[Any], mode: Optional[str], resumed: bool = False) -> None:
    """Before the sinks open: tell each what to do with data already where it writes.

    ``"append"`` adds to it, ``"replace"`` removes it first (a file is truncated, a table's
    rows or a stream's entries deleted; nothing else is touched), ``"fail"`` refuses a run
    whose sink finds data there. A sink says so with ``if_exists(mode)``; one without it
    cannot look (a message bus): it appends, and ``"replace"`` or ``"fail"`` is a
    :class:`ConfigurationError` naming it. A resumed run appends (its sinks go back to the
    checkpoint), so only ``"append"`` goes with a resume.
    """
    if mode is None:
        return
    if mode not in IF_EXISTS:
        raise ConfigurationError(f"if_exists must be one of {', '.join(IF_EXISTS)}, got {mode!r}")
    if resumed and mode != "append":
        raise ConfigurationError(
            f"if_exists={mode!r} with a resume: a resumed run goes on with the data its sinks "
            "hold (append)"
        )
    for sink, label in zip(sinks, sink_labels(sinks)):
        choose = getattr(sink, "if_exists", None)
        if callable(choose):
            choose(mode)
        elif mode != "append":
            raise ConfigurationError(
                f"sink {label} cannot tell whether data exists where it writes, so it cannot "
                f"{mode} it: use if_exists='append'"
            )


def open_sinks(sinks: Sequence[Any]) -> None:
    """Open every sink that has an ``open()`` (files, connections), in order."""
    for sink in sinks:
        opener = getattr(sink, "open", None)
        if callable(opener):
            opener()


def close_sinks(sinks: Sequence[Any]) -> List[BaseException]:
    """Close every sink once, whatever any of them raises, and return what they raised.

    ``KeyboardInterrupt`` and ``SystemExit`` from one sink do not keep the others from being
    closed: they are collected like any other error and the caller re-raises them afterwards.
    """
    errors: List[BaseException] = []
    for sink in sinks:
        close = getattr(sink, "close", None)
        if close is None:
            continue
        try:
            close()
        except BaseException as exc:  # every sink gets closed; errors are raised afterwards
            _LOGGER.debug("closing sink %r failed", sink, exc_info=True)
            errors.append(exc)
    return errors


def _close_error(errors: List[BaseException]) -> BaseException:
    """The one error to raise for the sinks that failed to close."""
    for error in errors:
        if not isinstance(error, Exception):
            return error  # KeyboardInterrupt, SystemExit: the caller asked to leave
    return errors[0] if len(errors) == 1 else SinkCloseError(errors)


def summarize(run: Run, sinks: Sequence[Any], elapsed: float) -> RunSummary:
    from doge_datagen.core.delivery import delivery_counts, extra_counts

    model = run.model
    per_trigger: Dict[str, int] = {}
    vetoed_per_trigger: Dict[str, int] = {}
    per_sink = {id(sink): 0 for sink in sinks}
    labels = sink_labels(sinks)
    for transition, n, v in zip(model.transitions, run.counts, run.vetoes):
        per_trigger[transition.trigger] = per_trigger.get(transition.trigger, 0) + n
        if v:
            vetoed_per_trigger[transition.trigger] = (
                vetoed_per_trigger.get(transition.trigger, 0) + v
            )
        for sink in transition.event_sinks:
            per_sink[id(sink)] += n
    return RunSummary(
        seed=model.seed,
        subjects=run.stop - run.first + run.arrived,
        arrivals=run.arrived,
        ticks=run.ticks_done,
        events=sum(run.counts),
        vetoed=sum(run.vetoes),
        elapsed_seconds=elapsed,
        events_per_trigger=per_trigger,
        vetoed_per_trigger=vetoed_per_trigger,
        events_per_sink=dict(zip(labels, per_sink.values())),
        delivery={
            label: {"delivered": counted[0], "failed": counted[1], **extra_counts(sink)}
            for label, sink, counted in zip(labels, sinks, map(delivery_counts, sinks))
            if counted is not None
        },
        stopped=model._stopping,
        timestamp_start=run.timestamp_start,
        lag=run.pacer.stats() if run.pacer is not None else None,
        appended={
            label: bool(sink.appended)
            for label, sink in zip(labels, sinks)
            if getattr(sink, "appended", None) is not None
        },
    )


def _while_waiting(state: Run) -> None:
    """A paced run waits for its next tick: serve the sinks' time bounds and the progress."""
    for poll in state.polls:
        poll()
    if state.reporter is not None:
        state.reporter.update(state.ticks_done, state.timestamp, sum(state.counts))


def _final_progress(state: Run) -> None:
    """The last progress line, drawn after the sinks closed: their final delivered counts."""
    reporter = state.reporter
    if reporter is not None:
        try:
            reporter.update(state.ticks_done, state.timestamp, sum(state.counts), force=True)
        finally:
            reporter.close()


def run(
    model: "Model",
    *,
    speed: Optional[float] = None,
    progress: bool = False,
    first: int = 0,
    stop: Optional[int] = None,
    timestamp_start: Optional[int] = None,
    metrics: Any = None,
    shard: Optional[str] = None,
    arrivals_shard: Tuple[int, int] = (0, 1),
    wall_start: Optional[float] = None,
    on_start: Optional[Callable[["Run"], None]] = None,
    checkpoint: Any = None,
    checkpoint_every: Optional[float] = 10.0,
    resume: Any = None,
    force: bool = False,
    if_exists: Optional[str] = None,
) -> RunSummary:
    """Run ``model`` for the global subject indices ``first .. stop - 1`` (by default all of
    them), then close every sink; return what the run did.

    ``speed`` and ``progress`` are :meth:`DataOnlineGenerator.start`'s; ``timestamp_start``
    overrides the model's (a sharded run resolves it once for every shard). ``metrics`` (a
    :class:`~doge_datagen.metrics.MetricsServer`, or anything with its ``watch``/``finish``)
    watches the run from before its sinks open until after they closed, as ``shard``.
    ``arrivals_shard``, ``(k, K)``, says which of the subjects arriving during the run are
    this run's: arrival ``j`` belongs to shard ``j % K`` (every shard draws the same arrivals).
    ``wall_start`` (epoch seconds, ``time.time()``) is when tick 0 is due in a paced run: the
    shards of one run share it, so together they keep one schedule. ``on_start`` is called
    with the :class:`Run` before the sinks open: the model keeps it, for ``datagen.subjects``
    and the other views of a run in progress.

    ``checkpoint`` (a path) writes the run's state there every ``checkpoint_every`` seconds
    (None: only at the end), between ticks, and when the run ends or stops; ``resume`` (a
    path) goes on from such a checkpoint, refused when the model differs from the one that
    wrote it unless ``force`` (see :mod:`doge_datagen.engine.checkpoint`).

    ``if_exists`` says what the sinks do with data already where they write: ``"append"``,
    ``"replace"`` or ``"fail"`` (see :func:`apply_if_exists`); ``None`` leaves each sink as it
    is (files replace, servers append).

    The caller resets the model's stop flag and makes sure the model is not running already.
    """
    sinks = model.sinks
    began = time.perf_counter()
    model.random.seed(model.seed)
    if stop is None:
        stop = first + model.subjects_num
    if timestamp_start is None:
        timestamp_start = model.timestamp_start
    checkpointer, resume_state = _checkpoints(
        model, first, stop, checkpoint, checkpoint_every, resume, force
    )
    if resume_state is not None:
        timestamp_start = resume_state["timestamp_start"]
    if timestamp_start is None:
        timestamp_start = round(time.time() * 1000)
    reporter = _reporter(model) if progress else None
    pacer = None if speed is None else _pacer(model, speed, wall_start)
    state = Run(model, first, stop, timestamp_start, pacer, reporter, arrivals_shard)
    state.checkpointer, state.resume_state = checkpointer, resume_state
    _attach(state, sinks, on_start)
    probe = None
    if metrics is not None:
        probe = metrics.watch(state, sinks, sink_labels(sinks), speed=speed, shard=shard)
    with _stop_on_signals(model, enabled=model.ticks_num is None) as received:
        try:
            if resume_state is not None:
                _prepare_to_resume(sinks, resume_state)
            apply_if_exists(sinks, if_exists, resume_state is not None)
            open_sinks(sinks)
            state.running = True
            try:
                if resume_state is None:
                    state.create_subjects()
                state.loop()
                if checkpointer is not None:
                    # The last one, where the run ended or stopped: written here.
                    checkpointer.write(state, final=True)
            finally:
                state.running = False
                if checkpointer is not None:
                    # A run that fails keeps the checkpoint a forked copy may be writing.
                    checkpointer.wait(check=False)
        except BaseException as exc:
            _failed(exc, state, sinks, metrics, probe, time.perf_counter() - began, received)
            raise
        close_errors = close_sinks(sinks)
        if probe is not None:
            metrics.finish(probe, _close_error(close_errors) if close_errors else None)
        _final_progress(state)
    summary = summarize(state, sinks, time.perf_counter() - began)
    summary.signals = list(received)
    if close_errors:
        error = _close_error(close_errors)
        try:
            error.summary = summary  # type: ignore[attr-defined]
        except AttributeError:  # pragma: no cover - exceptions with __slots__
            pass
        raise error
    return summary


def _checkpoints(
    model: Model,
    first: int,
    stop: int,
    checkpoint: Any,
    every: Optional[float],
    resume: Any,
    force: bool,
) -> Tuple[Any, Optional[Dict[str, Any]]]:
    """The run's checkpoint writer (``checkpoint=``) and the state it resumes from
    (``resume=``, refused for another model unless ``force``), each None when not asked."""
    if checkpoint is None and resume is None:
        return None, None
    from doge_datagen.engine import checkpoint as checkpoints

    current = checkpoints.fingerprint(model, first, stop)
    resume_state = None if resume is None else checkpoints.load(resume, current, force)
    writer = None if checkpoint is None else checkpoints.Checkpointer(checkpoint, every, current)
    return writer, resume_state


def _prepare_to_resume(sinks: Sequence[Any], resume_state: Dict[str, Any]) -> None:
    """File sinks cut back to the checkpoint's positions, before they open."""
    from doge_datagen.engine.checkpoint import prepare_sinks

    prepare_sinks(sinks, resume_state)


def _attach(state: Run, sinks: Sequence[Any], on_start: Optional[Callable[[Run], None]]) -> None:
    """What follows the new run from its start: the model (``on_start``), the sinks that
    keep to the run's clock, and a paced run's waits (and, resumed, its pace from the
    checkpoint's tick on, not from tick 0)."""
    running_in_this_thread(state)  # what a record's event_id reads
    pacer = state.pacer
    if pacer is not None and state.resume_state is not None:
        pacer.wall_start -= state.resume_state["tick"] * pacer.seconds_per_tick
    if on_start is not None:
        on_start(state)
    for sink in sinks:  # a sink that holds events back keeps to the run's clock (disorder.py)
        follow = getattr(sink, "follow_run", None)
        if callable(follow):
            follow(state)
    if pacer is not None:
        pacer.idle = lambda: _while_waiting(state)


def _reporter(model: Model) -> Any:
    """The progress line of a run (``start(progress=True)``)."""
    from doge_datagen.engine.progress import ProgressReporter

    return ProgressReporter(model.ticks_num, model.sinks, sink_labels(model.sinks))


def _pacer(model: Model, speed: float, wall_start: Optional[float]) -> Any:
    """The pacer of a run at ``speed`` times the simulated clock; a shard's keeps to the
    coordinator's ``wall_start`` (epoch seconds) so that the shards share one schedule."""
    from doge_datagen.engine.pacing import Pacer

    if wall_start is None:
        return Pacer(model.tick_ms, speed, lambda: model._stopping)
    pacer = Pacer(model.tick_ms, speed, lambda: model._stopping, clock=time.time)
    pacer.wall_start = wall_start
    return pacer


def _failed(
    exc: BaseException,
    state: Run,
    sinks: Sequence[Any],
    metrics: Any,
    probe: Any,
    elapsed: float,
    received: List[int],
) -> None:
    """What a run that raised ``exc`` does before the error goes on: every sink closed (what
    failed to close is noted on the error), the metrics told, the last progress line, and
    the summary of what the run did up to the error put on the error as ``exc.summary``."""
    close_errors = close_sinks(sinks)
    if probe is not None:
        metrics.finish(probe, exc)
    if close_errors and hasattr(exc, "add_note"):
        for err in close_errors:
            exc.add_note(f"while closing sinks after this error: {type(err).__name__}: {err}")
    _final_progress(state)
    try:
        summary = summarize(state, sinks, elapsed)
        summary.signals = list(received)
        exc.summary = summary  # type: ignore[attr-defined]
    except Exception:  # pragma: no cover - never hide the original error
        _LOGGER.debug("no summary for the failed run", exc_info=True)
