"""The engine's side of profiles: draws from states whose probabilities change over time, and
arrivals of new subjects during a run.

A state with a profiled transition is compiled, for one run, into a :class:`StateTimeline`. Its
ticks are cut into segments at the step boundaries of its piecewise-constant profiles; inside a
segment those probabilities are constant. A draw from tick ``t``:

1. takes the segment holding ``t`` and its leave probability ``Q``: the sum of the step
   probabilities plus, for callable profiles, ``base x declared max`` (capped at 100 %);
2. draws the geometric wait at ``Q`` from the same 64 hashed bits as the constant engine (see
   :func:`doge_datagen.engine.draw`, keyed by seed, global subject index and ``t``): the high
   32 bits give an exponential ``E``, and the wait is ``E / -log(1 - Q)`` ticks, rounded down;
3. if the wait runs past the segment's end, goes on from the boundary with what is left of
   ``E``, through the next segments' hazards ``-log(1 - Q)`` (found by bisection of their
   cumulative sum): the wait has no memory, so this is a redraw at the boundary, and exactly
   the per-tick model;
4. else picks a transition with the low 32 bits. Without callables the odds are the step
   probabilities; with callables, the uniform is laid over ``Q`` and each transition takes its
   real probability at the candidate tick, the rest being a rejection (thinning), after which
   the draw goes on from the next tick.

So at tick ``t`` a subject leaves by transition ``k`` with exactly ``p_k(t)`` percent, as in a
loop that reads the profile every tick (``tests/per_tick_reference.py``). Every draw of a
subject is keyed by a tick it has not drawn at before, and profiles depend on time only, so
seeds and shards hold as for constant probabilities.

A profile that never changes (``piecewise([])``) gives the very events of the same constant
model: one segment, the same ``Q``, thresholds and bits (a test holds the two draws in step).

A run longer than one period of its profiles does not build its segments one by one: when
the step profiles are hourly or weekly in UTC (and piecewise ones, which are constant after
their last start), and the ticks fall on the same instants of every period, the segments
after a prefix (up to the last piecewise start) repeat every ``K`` ticks. The timeline then
keeps the prefix and one period, and maps any tick onto them: the cumulative hazard of
period ``n`` is ``C0 + n x H`` plus the period's own, so a draw that waits for years costs
one search, and neither the check before the run nor the memory grow with its length.
"""

import bisect
import math
from array import array
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from doge_datagen.core.keys import GOLDEN as _GOLDEN
from doge_datagen.core.keys import LN_2_POW_32 as _LN_2_POW_32
from doge_datagen.core.keys import LOW32 as _LOW32
from doge_datagen.core.keys import MASK64 as _MASK64
from doge_datagen.core.keys import MIX1 as _MIX1
from doge_datagen.core.keys import MIX2 as _MIX2
from doge_datagen.core.keys import TWO_POW_32 as _TWO_POW_32
from doge_datagen.core.keys import draw
from doge_datagen.engine.validators import SUM_TOLERANCE
from doge_datagen.errors import ConfigurationError
from doge_datagen.profiles import (
    HOUR_MS,
    Profiled,
    _Periodic,
    _Piecewise,
    _Product,
    describe_ms,
)

if TYPE_CHECKING:  # pragma: no cover
    from doge_datagen.core.types import Transition

__all__ = ["Arrivals", "StateTimeline", "check_run"]

_SUM_TOLERANCE = SUM_TOLERANCE
_INF = math.inf
# A finite run's callable profiles are read and checked at every tick before the run, up to
# this many ticks; beyond, chunk by chunk as the draws reach them (an error then stops the run
# where it is read, as in a run without end).
SCAN_LIMIT = 65_536
# The segments of a profile that does not repeat in ticks (a zone with daylight saving time,
# a tick that does not divide the period) are checked before a finite run up to this many;
# beyond, as the draws build them.
SEGMENT_SCAN_LIMIT = 20_000
# A period longer than this (a tick length that divides no small multiple of a day) is not
# kept whole: its segments are built one by one.
_PERIOD_LIMIT_MS = 371 * 24 * HOUR_MS
# Ticks are stamped exactly (integer milliseconds in a float) below this.
_EXACT_MS = 2.0**53
# A draw that finds no hazard in this many new segments (years of hours) gives up: the
# subject rests as in a final state. Only a state whose profiles are zero for ever gets here.
_WALK_LIMIT = 100_000
# Segment by segment (no period), a tick this far past the segments known, or past them when
# this many are kept, begins the segments anew (see StateTimeline.segment).
_JUMP_LIMIT = 4096
_KEEP_LIMIT = 4 * _WALK_LIMIT
# The largest exponential a draw makes is 32 * log(2), about 22.2.
_CERTAIN = 32.0
# Callable profiles are read for every tick, this many ticks at a time, and kept for the
# thinning's candidates; at most _CHUNKS_KEPT chunks are kept at once.
_CHUNK = 4096
_CHUNKS_KEPT = 256


def first_tick_at(timestamp_start: float, tick_ms: float, ms: float, after: int) -> int:
    """The first tick after ``after`` whose timestamp (``timestamp_start + round(tick *
    tick_ms)``, as the engine stamps events) is at or past ``ms``."""
    tick = max(after + 1, math.ceil((ms - timestamp_start) / tick_ms))
    while tick - 1 > after and timestamp_start + round((tick - 1) * tick_ms) >= ms:
        tick -= 1  # rounding: the tick before already reached the boundary
    while timestamp_start + round(tick * tick_ms) < ms:
        tick += 1
    return tick


class _Segment:
    __slots__ = (
        "start",
        "end",
        "leave",
        "inv_log_stay",
        "hazard",
        "thresholds",
        "moves",
        "parts",
        "index",
        "step_total",
        "fast",
        "cum",
    )

    def __init__(self, start: int, end: float) -> None:
        self.start = start
        self.end = end
        self.leave = 0.0
        self.inv_log_stay = 0.0
        #: ``-log(1 - leave)``: what one tick of this segment uses up of the exponential.
        self.hazard = 0.0
        #: Its position in the timeline's list of segments.
        self.index = 0
        #: The sum of its constant and step probabilities, percent.
        self.step_total = 0.0
        self.thresholds: List[int] = []
        self.moves: List[Any] = []
        #: With callables: ``(move, fraction, callable number)`` in definition order, the
        #: fraction (probability / 100) for constant and step ones, the number for callables.
        self.parts: Optional[List[Tuple[Any, Optional[float], int]]] = None
        #: The figures the C loop (``_speedups.c``) draws with, in a tuple: ``(start, end,
        #: leave, inv_log_stay, thresholds, moves, hazard, index, parts is None)``.
        self.fast: Tuple[Any, ...] = ()
        #: The hazard used up from tick 0 to its start (``_cumulative[index]`` for the
        #: segments in the timeline's list).
        self.cum = 0.0

    def moved(self, shift: int, cum: float, index: int) -> "_Segment":
        """This segment ``shift`` ticks later (a period on), with its hazard from tick 0."""
        seg = _Segment(self.start + shift, self.end + shift)
        seg.leave = self.leave
        seg.inv_log_stay = self.inv_log_stay
        seg.hazard = self.hazard
        seg.step_total = self.step_total
        seg.thresholds = self.thresholds
        seg.moves = self.moves
        seg.parts = self.parts
        seg.cum = cum
        seg.index = index
        seg.fast = _fast(seg)
        return seg


def _fast(seg: _Segment) -> Tuple[Any, ...]:
    """The figures the C loop draws with (see :attr:`_Segment.fast`)."""
    return (
        seg.start,
        seg.end,
        seg.leave,
        seg.inv_log_stay,
        seg.thresholds,
        seg.moves,
        seg.hazard,
        seg.index,
        seg.parts is None,
    )


def _used(seg: _Segment) -> float:
    """What a whole segment uses up of the exponential."""
    if seg.hazard == _INF:
        return _CERTAIN
    return seg.hazard * (seg.end - seg.start) if seg.hazard else 0.0


class StateTimeline:
    """The profiled draw of one state for one run (see the module's docstring).

    ``moves`` are the engine's moves of the state's transitions (all of them, in definition
    order), ``rest`` its resting marker; tick ``t`` is at ``timestamp_start + t * tick_ms``.
    """

    def __init__(
        self,
        state: str,
        transitions: Sequence["Transition"],
        moves: Sequence[Any],
        rest: Any,
        timestamp_start: float,
        tick_ms: float,
        n_ticks: float,
    ) -> None:
        self.state = state
        self.rest = rest
        self.timestamp_start = timestamp_start
        self.tick_ms = tick_ms
        self.n_ticks = n_ticks
        # (move, constant percent or None, step profiled value or None, callable or None)
        self.constant: List[Tuple[Any, float]] = []
        self.step: List[Tuple[Any, Profiled]] = []
        self.callables: List[Tuple[Any, Profiled]] = []
        self.order: List[Tuple[Any, Any]] = []
        for t, move in zip(transitions, moves):
            p = t.probability
            if isinstance(p, Profiled):
                if p.max == 0:
                    continue  # zero at every tick: as if it were not there
                (self.step if p.step else self.callables).append((move, p))
            elif p > 0:
                self.constant.append((move, float(p)))
            else:
                continue
            self.order.append((move, p))
        self.callable_bound = sum(p.max for _, p in self.callables)
        self._starts: List[int] = []
        self._segments: List[_Segment] = []
        self._known_until: float = 0
        self._last: Optional[_Segment] = None
        #: For the C loop, which makes the draws of :meth:`draw` that need no new segment and
        #: no callable (and calls :meth:`draw` for the others): ``_last.fast``, and every
        #: segment's ``fast`` in order.
        self._fast: Tuple[Any, ...] = ()
        self._fasts: List[Tuple[Any, ...]] = []
        #: Per segment, the hazard used up from tick 0 to its start (a segment left with
        #: certainty counts as _CERTAIN, more than any draw's exponential); and the same up to
        #: the end of the last segment computed.
        self._cumulative: List[float] = []
        self._hazard_known = 0.0
        #: A draw walked _WALK_LIMIT segments without finding hazard enough.
        self._exhausted = False
        #: Chunk number -> per callable, its fractions (value / 100) at the chunk's ticks.
        self._chunks: Dict[int, List[Any]] = {}
        #: ``(P0, K)`` when the segments from tick ``P0`` on repeat every ``K`` ticks (see
        #: the module's docstring), else ``None``: segments are then built one by one.
        self._shape = self._periodic_shape()
        #: The segments of ticks ``P0`` to ``P0 + K``, the hazard each period uses up before
        #: each of them, the whole period's (``H``), and the hazard up to ``P0`` (``C0``).
        self._period: List[_Segment] = []
        self._period_starts: List[int] = []
        self._period_used: List[float] = []
        self._period_hazard = 0.0
        self._c0 = 0.0
        #: The period from which the lists above (``_segments``, ``_cumulative``, ...) hold
        #: two periods, or -1 when they hold the segments before ``P0`` (kept meanwhile in
        #: ``_prefix``): the C loop draws within these lists.
        self._window = -1
        self._prefix: Tuple[Any, ...] = ()
        #: Once the period is built, ``(P0, K, C0, H, _period_used, the period's fast
        #: tuples)``: the C loop does :meth:`_find`'s arithmetic with them, so that a wait
        #: past the two periods of its lists is drawn there too; else ``None``.
        self._periodic: Optional[Tuple[Any, ...]] = None

    # -- time ----------------------------------------------------------------------------------

    def ms(self, tick: int) -> float:
        return self.timestamp_start + round(tick * self.tick_ms)

    def first_tick_at(self, ms: float, after: int) -> int:
        return first_tick_at(self.timestamp_start, self.tick_ms, ms, after)

    def where(self, tick: int) -> str:
        return f"tick {tick} ({describe_ms(self.ms(tick))})"

    # -- segments ------------------------------------------------------------------------------

    def _periodic_shape(self) -> Optional[Tuple[int, int]]:
        """``(P0, K)``: from tick ``P0`` on, the segments repeat every ``K`` ticks; ``None``
        when they do not (a zone's daylight saving time, a callable-only state, a tick that
        is not a whole number of milliseconds) or when the run ends within one period."""
        period = 0
        last_start: Optional[float] = None
        for _, p in self.step:
            profile = p.profile
            for part in profile.parts if isinstance(profile, _Product) else [profile]:
                if isinstance(part, _Periodic) and part.zone is None:
                    period = max(period, (24 if len(part.factors) == 24 else 168) * HOUR_MS)
                elif isinstance(part, _Piecewise):
                    if part.starts and (last_start is None or part.starts[-1] > last_start):
                        last_start = part.starts[-1]
                else:
                    return None
        tick_ms, start = self.tick_ms, self.timestamp_start
        if not period or not 0 < tick_ms < _EXACT_MS or not abs(start) < _EXACT_MS:
            return None
        if not (float(tick_ms).is_integer() and float(start).is_integer()):
            return None
        tick = int(tick_ms)
        span = period // math.gcd(period, tick) * tick
        if span > _PERIOD_LIMIT_MS:
            return None
        ticks = span // tick
        h0 = float(start) if last_start is None else max(float(start), last_start)
        h0 = math.ceil(h0 / HOUR_MS) * HOUR_MS
        first = 0 if h0 == start else first_tick_at(start, tick_ms, h0, -1)
        if self.n_ticks <= first + ticks:
            return None  # within one period: segment by segment
        if self.n_ticks != _INF and abs(start) + self.n_ticks * tick >= _EXACT_MS:
            return None
        return first, ticks

    def _ensure_period(self) -> bool:
        """Build (and so check) the segments before ``P0`` and one period after; false when
        they do not repeat after all (the timeline then builds segment by segment)."""
        if self._period or self._shape is None:
            return self._shape is not None
        first, ticks = self._shape
        if self._window != -1:  # pragma: no cover - the window moves on once this is built
            return True
        while self._known_until < first:
            self._extend()
        if self._known_until != first:  # pragma: no cover - boundaries fall on P0
            self._shape = None
            return False
        period: List[_Segment] = []
        used = [0.0]
        start = first
        while start < first + ticks:
            seg = self._compute(start)
            period.append(seg)
            used.append(used[-1] + _used(seg))
            start = seg.end  # type: ignore[assignment]
        if start != first + ticks:  # pragma: no cover - boundaries fall on P0 + K
            self._shape = None
            return False
        self._period = period
        self._period_starts = [seg.start for seg in period]
        self._period_hazard = used.pop()
        self._period_used = used
        self._c0 = self._hazard_known
        for seg in period:
            seg.index = -1
            seg.fast = _fast(seg)
        self._periodic = (
            first,
            ticks,
            self._c0,
            self._period_hazard,
            used,
            [seg.fast for seg in period],
        )
        return True

    def _base(self, n: int) -> float:
        """The hazard used up from tick 0 to the start of period ``n``."""
        return self._c0 + n * self._period_hazard

    def _fill_window(self, n: int) -> None:
        """Make the lists the C loop reads hold periods ``n`` and ``n + 1``."""
        if self._window == -1:
            self._prefix = (
                self._segments,
                self._starts,
                self._fasts,
                self._cumulative,
                self._hazard_known,
                self._known_until,
            )
        ticks = self._shape[1]  # type: ignore[index]
        segments: List[_Segment] = []
        for m in (n, n + 1):
            base, following = self._base(m), self._base(m + 1)
            for seg, used in zip(self._period, self._period_used):
                cum = min(base + used, following)
                segments.append(seg.moved(m * ticks, cum, len(segments)))
        self._segments = segments
        self._starts = [seg.start for seg in segments]
        self._fasts = [seg.fast for seg in segments]
        self._cumulative = [seg.cum for seg in segments]
        self._hazard_known = self._base(n + 2)
        self._known_until = segments[-1].end
        self._window = n

    def _restore_prefix(self) -> None:
        (
            self._segments,
            self._starts,
            self._fasts,
            self._cumulative,
            self._hazard_known,
            self._known_until,
        ) = self._prefix
        self._window = -1

    def _locate(self, tick: int) -> _Segment:
        """The segment holding ``tick``, leaving the C loop's lists as they are when it is
        in a period they do not hold."""
        if self._shape is None or tick < self._shape[0] or not self._ensure_period():
            return self.segment(tick)
        first, ticks = self._shape
        n, offset = divmod(tick - first, ticks)
        if self._window != -1 and 0 <= n - self._window <= 1:
            return self._segments[bisect.bisect_right(self._starts, tick) - 1]
        k = bisect.bisect_right(self._period_starts, first + offset) - 1
        cum = min(self._base(n) + self._period_used[k], self._base(n + 1))
        return self._period[k].moved(n * ticks, cum, -1)

    def _find(self, target: float) -> Optional[_Segment]:
        """The last segment whose hazard from tick 0 is at most ``target`` (``None``: none
        after ``P0`` has any hazard), as ``bisect_right(_cumulative, target) - 1`` finds it
        in the lists the C loop reads. ``periodic_find`` in ``_speedups.c`` does the same
        arithmetic, operation for operation, from ``_periodic``: keep the two in step."""
        self._ensure_period()
        first, ticks = self._shape  # type: ignore[misc]
        c0 = self._c0
        if target < c0:
            if self._window == -1:
                segments, cumulative = self._segments, self._cumulative
            else:
                segments, cumulative = self._prefix[0], self._prefix[3]
            return segments[bisect.bisect_right(cumulative, target) - 1]
        hazard = self._period_hazard
        if not hazard > 0.0:
            return None
        n = int((target - c0) / hazard)
        for _ in range(64):
            if self._base(n + 1) > target:
                break
            n += 1
        for _ in range(64):
            if n == 0 or self._base(n) <= target:
                break
            n -= 1
        base = self._base(n)
        used = self._period_used
        k = min(max(bisect.bisect_right(used, target - base) - 1, 0), len(used) - 1)
        while k + 1 < len(used) and base + used[k + 1] <= target:
            k += 1
        while k > 0 and base + used[k] > target:
            k -= 1
        if self._window != -1 and 0 <= n - self._window <= 1:
            return self._segments[(n - self._window) * len(used) + k]
        return self._period[k].moved(n * ticks, min(base + used[k], self._base(n + 1)), -1)

    def _compute(self, start: int) -> _Segment:
        ms = self.ms(start)
        change: Optional[float] = None
        for _, p in self.step:
            c = p.profile.next_change_ms(ms)
            if c is not None and (change is None or c < change):
                change = c
        end = _INF if change is None else self.first_tick_at(change, start)
        seg = _Segment(start, end)
        values: List[Tuple[Any, float]] = []
        step_total = 0.0
        for move, p in self.order:
            if isinstance(p, Profiled):
                if not p.step:
                    continue
                value = p.value_ms(ms)
            else:
                value = p
            values.append((move, value))
            step_total += value
        if step_total > 100 + _SUM_TOLERANCE:
            raise ConfigurationError(
                f"probabilities from state {self.state!r} sum to {step_total:g} at "
                f"{self.where(start)}, above 100"
            )
        seg.step_total = step_total
        if self.callables:
            leave = min((step_total + self.callable_bound) / 100.0, 1.0)
            step_values = {id(m): v for m, v in values}
            number = {id(m): k for k, (m, _) in enumerate(self.callables)}
            seg.parts = [
                (move, step_values[id(move)] / 100.0, -1)
                if id(move) in step_values
                else (move, None, number[id(move)])
                for move, p in self.order
            ]
        else:
            leave = min(step_total / 100.0, 1.0)
            positive = [(m, v) for m, v in values if v > 0]
            running = 0.0
            for move, value in positive:
                running += value
                seg.thresholds.append(min(int(running / step_total * _TWO_POW_32), _TWO_POW_32))
                seg.moves.append(move)
            if seg.thresholds:
                seg.thresholds[-1] = _TWO_POW_32
        seg.leave = leave
        seg.inv_log_stay = 1.0 / math.log1p(-leave) if 0.0 < leave < 1.0 else 0.0
        seg.hazard = -math.log1p(-leave) if leave < 1.0 else _INF
        return seg

    def segment(self, tick: int) -> _Segment:
        """The segment holding ``tick``, computing the ones before it when needed (or, after
        ``P0``, the two periods from the one holding it)."""
        last = self._last
        if last is not None and last.start <= tick < last.end:
            return last
        shape = self._shape
        if shape is not None:
            if tick >= shape[0] and self._ensure_period():
                n = (tick - shape[0]) // shape[1]
                if self._window == -1 or not 0 <= n - self._window <= 1:
                    self._fill_window(n)
            elif self._window != -1:
                self._restore_prefix()
        elif (
            tick - self._known_until > _JUMP_LIMIT
            or (self._starts and tick < self._starts[0])
            or (len(self._segments) > _KEEP_LIMIT and tick >= self._known_until)
        ):
            # Segment by segment, a subject that first enters the state at a far tick (or a
            # long run) would build (and keep) every segment before it: the segments begin
            # anew at the tick instead. A draw only compares hazards within one list, so
            # where the list begins does not change which tick it finds.
            self._restart(tick)
        while tick >= self._known_until:
            self._extend()
        last = self._last = self._segments[bisect.bisect_right(self._starts, tick) - 1]
        self._fast = last.fast
        return last

    def _restart(self, tick: int) -> None:
        """Forget the segments computed so far; the next one begins at ``tick``."""
        self._segments = []
        self._starts = []
        self._fasts = []
        self._cumulative = []
        self._hazard_known = 0.0
        self._known_until = tick
        self._last = None

    def _extend(self) -> _Segment:
        seg = self._compute(int(self._known_until))
        seg.index = len(self._segments)
        seg.fast = _fast(seg)
        self._fasts.append(seg.fast)
        self._starts.append(seg.start)
        self._cumulative.append(self._hazard_known)
        seg.cum = self._hazard_known
        if seg.hazard == _INF:
            self._hazard_known += _CERTAIN
        elif seg.hazard:
            self._hazard_known += seg.hazard * (seg.end - seg.start)
        self._segments.append(seg)
        self._known_until = seg.end
        return seg

    def check(self, n_ticks: int, scan_limit: int = SCAN_LIMIT) -> None:
        """Before a finite run: every segment's sum, and with callables every tick (up to
        ``scan_limit`` ticks), so that an error comes before any event.

        Segments that repeat are checked over one period (and what comes before it), which
        holds for the whole run; others up to ``SEGMENT_SCAN_LIMIT`` segments. What is not
        checked here (a callable's later ticks, later segments of a zone's profile) is checked
        as the draws read it, and an error then stops the run where it is, as in a run
        without end."""
        if n_ticks <= 0:
            return
        if not self._ensure_period():
            while self._known_until < n_ticks and len(self._segments) < SEGMENT_SCAN_LIMIT:
                self._extend()
        if not self.callables:
            return
        for chunk in range(math.ceil(min(n_ticks, scan_limit) / _CHUNK)):
            self._chunk(chunk)

    def _chunk(self, chunk: int) -> List[Any]:
        """The callables' fractions at the ticks of ``chunk``, each value checked (at most
        its declared max, the state's sum at most 100) as it is read."""
        found = self._chunks.get(chunk)
        if found is not None:
            return found
        if len(self._chunks) >= _CHUNKS_KEPT:
            del self._chunks[min(self._chunks)]  # runs go forward: the oldest is done with
        columns: List[Any] = [array("d") for _ in self.callables]
        stop = min((chunk + 1) * _CHUNK, self.n_ticks)
        seg: Optional[_Segment] = None
        for tick in range(chunk * _CHUNK, int(stop)):
            ms = self.ms(tick)
            if seg is None or not seg.start <= tick < seg.end:
                seg = self._locate(tick)
            total = seg.step_total
            for column, (_, p) in zip(columns, self.callables):
                value = p.value_ms(ms)  # raises above the declared max
                column.append(value / 100.0)
                total += value
            if total > 100 + _SUM_TOLERANCE:
                raise ConfigurationError(
                    f"probabilities from state {self.state!r} sum to {total:g} at "
                    f"{self.where(tick)}, above 100"
                )
        self._chunks[chunk] = columns
        return columns

    # -- the draw ------------------------------------------------------------------------------

    def draw(self, key: int, index: int, tick: int) -> Tuple[float, Any]:
        """``(at, move)``: when subject ``index`` next leaves this state, from ``tick`` on;
        ``at`` is infinite (with the resting marker) when it does not before the run's end.

        The high 32 bits of the hash give an exponential ``E`` (``-log u``); the wait is the
        number of ticks whose hazards ``-log(1 - leave)`` add up to at most ``E``. In the
        first segment that is the constant engine's formula, bit for bit; a wait that runs
        past a step boundary carries the rest of ``E`` into the next segment (the wait has no
        memory), which is a redraw at the boundary without hashing again.
        """
        if self._shape is not None:
            return self._draw_periodic(key, index, tick)
        n_ticks = self.n_ticks
        log = math.log
        while tick < n_ticks:
            seg = self._last  # most draws are from the segment of the tick being run
            if seg is None or not seg.start <= tick < seg.end:
                seg = self.segment(tick)
            # draw(key, index, tick), inlined (tests hold the two in step)
            h = (key + (index * 4294967296 + tick) * _GOLDEN) & _MASK64
            h = ((h ^ (h >> 30)) * _MIX1) & _MASK64
            h = ((h ^ (h >> 27)) * _MIX2) & _MASK64
            h ^= h >> 31
            leave = seg.leave
            at: float = tick
            if 0.0 < leave < 1.0:
                minus_e = log((h >> 32) + 1) - _LN_2_POW_32
                at += int(minus_e * seg.inv_log_stay)
            else:
                minus_e = log((h >> 32) + 1) - _LN_2_POW_32
            if leave == 0.0 or at >= seg.end:
                # Past this segment: the rest of the exponential is used up in the next ones
                # (the wait has no memory, so this is a redraw at the boundary without hashing
                # again). The target is the hazard from tick 0 at which the subject leaves.
                if seg.end >= n_ticks:
                    return _INF, self.rest
                cumulative = self._cumulative
                target = cumulative[seg.index] + seg.hazard * (tick - seg.start) - minus_e
                if target >= self._hazard_known:
                    grown = 0
                    while self._hazard_known <= target and self._known_until < n_ticks:
                        if grown > _WALK_LIMIT or self._exhausted:
                            # No hazard for ages (profiles that are never positive together):
                            # the subject rests for good, and so will the next ones.
                            self._exhausted = True
                            return _INF, self.rest
                        self._extend()
                        grown += 1
                    if target >= self._hazard_known:
                        return _INF, self.rest  # not used up before the run's end
                seg = self._segments[bisect.bisect_right(cumulative, target) - 1]
                hazard = seg.hazard
                if hazard == 0.0:
                    return _INF, self.rest  # the last segment, never left
                at = seg.start
                if hazard != _INF:
                    at += int((target - cumulative[seg.index]) / hazard)
                    if at >= seg.end:
                        at = seg.end - 1  # float rounding at the very end of the segment
                if at >= n_ticks:
                    return _INF, self.rest
            low = h & _LOW32
            parts = seg.parts
            if parts is None:
                thresholds = seg.thresholds
                j = 0
                while low >= thresholds[j]:
                    j += 1
                return at, seg.moves[j]
            # Thinning: the uniform over Q; each transition its real probability at `at`.
            if at >= n_ticks:
                return _INF, self.rest
            u = low / _TWO_POW_32 * seg.leave
            tick = int(at)
            chunk, offset = divmod(tick, _CHUNK)
            columns = self._chunks.get(chunk) or self._chunk(chunk)
            running = 0.0
            for move, fraction, number in parts:
                running += fraction if fraction is not None else columns[number][offset]
                if u < running:
                    return at, move
            tick += 1  # rejected: no move at `at`
        return _INF, self.rest

    def _draw_periodic(self, key: int, index: int, tick: int) -> Tuple[float, Any]:
        """:meth:`draw` over segments that repeat: a wait past the segment finds where its
        hazard is used up by :meth:`_find`, in any period, without building the ones between."""
        n_ticks = self.n_ticks
        log = math.log
        first = True
        while tick < n_ticks:
            seg = self._last
            if seg is None or not seg.start <= tick < seg.end:
                # The draw's own tick moves the C loop's lists; a thinning's later candidates
                # do not.
                seg = self.segment(tick) if first else self._locate(tick)
            first = False
            h = (key + (index * 4294967296 + tick) * _GOLDEN) & _MASK64
            h = ((h ^ (h >> 30)) * _MIX1) & _MASK64
            h = ((h ^ (h >> 27)) * _MIX2) & _MASK64
            h ^= h >> 31
            leave = seg.leave
            at: float = tick
            minus_e = log((h >> 32) + 1) - _LN_2_POW_32
            if 0.0 < leave < 1.0:
                at += int(minus_e * seg.inv_log_stay)
            if leave == 0.0 or at >= seg.end:
                if seg.end >= n_ticks:
                    return _INF, self.rest
                target = seg.cum + seg.hazard * (tick - seg.start) - minus_e
                found = self._find(target)
                if found is None or found.hazard == 0.0:
                    return _INF, self.rest  # never left
                seg = found
                at = seg.start
                if seg.hazard != _INF:
                    at += int((target - seg.cum) / seg.hazard)
                    if at >= seg.end:
                        at = seg.end - 1  # float rounding at the very end of the segment
                if at >= n_ticks:
                    return _INF, self.rest
            low = h & _LOW32
            parts = seg.parts
            if parts is None:
                thresholds = seg.thresholds
                j = 0
                while low >= thresholds[j]:
                    j += 1
                return at, seg.moves[j]
            u = low / _TWO_POW_32 * seg.leave
            tick = int(at)
            chunk, offset = divmod(tick, _CHUNK)
            columns = self._chunks.get(chunk) or self._chunk(chunk)
            running = 0.0
            for move, fraction, number in parts:
                running += fraction if fraction is not None else columns[number][offset]
                if u < running:
                    return at, move
            tick += 1  # rejected: no move at `at`
        return _INF, self.rest


def check_run(tables: Sequence[Any], n_ticks: float) -> None:
    """Check every profiled state over a finite run before it starts."""
    if n_ticks == _INF:
        return
    for table in tables:
        timeline = table[3]
        if isinstance(timeline, StateTimeline):
            timeline.check(int(n_ticks))


# -- arrivals --------------------------------------------------------------------------------

#: Keys the arrivals' draws apart from every subject's (a subject index is below 2**32).
_ARRIVALS_INDEX = _TWO_POW_32 - 1
_POISSON_CHUNK = 500.0


def poisson(key: int, tick: int, mean: float) -> int:
    """A Poisson count with ``mean``, from the hashed bits of ``(key, tick)``: inversion of
    the distribution function, the mean split in chunks so that ``exp(-mean)`` stays exact."""
    if mean <= 0.0:
        return 0
    chunks = max(1, math.ceil(mean / _POISSON_CHUNK))
    part = mean / chunks
    start = math.exp(-part)
    total = 0
    for c in range(chunks):
        h = draw(key, _ARRIVALS_INDEX - c, tick)
        u = (h >> 11) * (1.0 / 9007199254740992.0)
        p = start
        cumulative = p
        n = 0
        while u >= cumulative and p > 0.0:
            n += 1
            p *= part / n
            cumulative += p
        total += n
    return total


class Arrivals:
    """New subjects during a run: at each tick a Poisson number with mean ``rate`` (a number
    or a profiled value of subjects per tick), drawn from ``(seed, tick)`` only, so every shard
    sees the same arrivals. Arrival ``j`` (from 0) gets global index ``subjects_num + j`` and
    belongs to shard ``j % shards``."""

    def __init__(
        self,
        rate: Any,
        key: int,
        timestamp_start: float,
        tick_ms: float,
        n_ticks: float,
        subjects_num: int,
        shard: Tuple[int, int] = (0, 1),
    ) -> None:
        self.rate = rate
        self.key = key
        self.timestamp_start = timestamp_start
        self.tick_ms = tick_ms
        self.n_ticks = n_ticks
        self.subjects_num = subjects_num
        self.shard, self.shards = shard
        #: Arrivals drawn at the ticks before ``self.tick``.
        self.total = 0
        self.tick = 0
        self.profiled = isinstance(rate, Profiled)
        self._segment_end: float = -1
        self._segment_rate = 0.0

    def _rate(self, tick: int) -> Tuple[float, float]:
        """The mean at ``tick`` and the first tick at which it may change."""
        rate = self.rate
        if not self.profiled:
            return float(rate), _INF
        ms = self.timestamp_start + round(tick * self.tick_ms)
        if not rate.step:
            return rate.value_ms(ms), tick + 1
        if tick < self._segment_end:
            return self._segment_rate, self._segment_end
        change = rate.profile.next_change_ms(ms)
        if change is None:
            end: float = _INF
        else:
            end = first_tick_at(self.timestamp_start, self.tick_ms, change, tick)
        self._segment_rate, self._segment_end = rate.value_ms(ms), end
        return self._segment_rate, end

    def next(self) -> Tuple[float, List[int]]:
        """The next tick with arrivals and the global indices of this shard's among them,
        or ``(inf, [])`` when none come before the run's end."""
        tick = self.tick
        while tick < self.n_ticks:
            mean, end = self._rate(tick)
            if mean == 0.0:
                tick = end  # type: ignore[assignment]
                continue
            n = poisson(self.key, tick, mean)
            if n:
                first = self.total
                self.total += n
                self.tick = tick + 1
                mine = [
                    self.subjects_num + j
                    for j in range(first, first + n)
                    if j % self.shards == self.shard
                ]
                return tick, mine
            tick += 1
        self.tick = tick
        return _INF, []
