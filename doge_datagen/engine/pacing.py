"""Pacing a run against the wall clock.

Tick ``t`` is due at ``wall_start + t * tick_ms / 1000 / speed`` seconds. Every wait aims at
that absolute schedule, so errors never accumulate; a tick that is already late is emitted
at once and its lag recorded.
"""

import math
import time
from array import array
from bisect import bisect_left
from dataclasses import dataclass
from typing import Callable, Optional

from doge_datagen.core.checks import check_positive

# Longest single sleep, so that stop() and signals are noticed promptly.
_SLICE_SECONDS = 0.05
# Lags kept for the quantiles; beyond this only the maximum and the mean are updated.
_MAX_SAMPLES = 1_000_000
#: Upper bounds (seconds) of the lag histogram's buckets (``Pacer.lag_buckets``), as the
#: metrics export them; the last one is ``+Inf``.
LAG_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    math.inf,
)  # fmt: skip


@dataclass(frozen=True)
class LagStats:
    """How far emitted ticks were behind their wall-clock schedule, in seconds."""

    ticks: int
    median: float
    p99: float
    max: float
    mean: float
    late_ticks: int  # ticks emitted more than 10 ms after their schedule
    drift: float  # lag of the last emitted tick

    def __str__(self) -> str:
        return (
            f"lag over {self.ticks} ticks: median {self.median * 1000:.2f} ms, "
            f"p99 {self.p99 * 1000:.2f} ms, max {self.max * 1000:.2f} ms, "
            f"{self.late_ticks} late by more than 10 ms, drift at the end "
            f"{self.drift * 1000:.2f} ms"
        )


class Pacer:
    """Waits for each tick's turn; ``speed`` 1.0 is real time, 60 is a minute per second."""

    def __init__(
        self,
        tick_ms: float,
        speed: float,
        should_stop: Callable[[], bool],
        idle: Optional[Callable[[], None]] = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        speed = check_positive("speed", speed)
        self.seconds_per_tick = tick_ms / 1000.0 / speed
        self.should_stop = should_stop
        self.idle = idle
        self.clock = clock
        self.sleep = sleep
        self.wall_start = clock()
        self._lags = array("d")
        self._count = 0
        self._sum = 0.0
        self._max = 0.0
        self._late = 0
        self._last = 0.0
        #: How many ticks had a lag within each bound of :data:`LAG_BUCKETS` (not cumulative).
        self.lag_buckets = [0] * len(LAG_BUCKETS)
        #: The tick being waited for or worked on, for :meth:`behind_ticks`.
        self.tick: Optional[int] = None

    def due(self, tick: int) -> float:
        return self.wall_start + tick * self.seconds_per_tick

    def wait(self, tick: int) -> float:
        """Return when ``tick`` is due (or a stop was asked for); return its lag in seconds."""
        self.tick = tick
        due = self.due(tick)
        while True:
            now = self.clock()
            remaining = due - now
            if remaining <= 0 or self.should_stop():
                break
            self.sleep(min(remaining, _SLICE_SECONDS))
            if self.idle is not None:
                self.idle()
        lag = max(0.0, now - due)
        self._count += 1
        self._sum += lag
        if lag > self._max:
            self._max = lag
        if lag > 0.01:
            self._late += 1
        if len(self._lags) < _MAX_SAMPLES:
            self._lags.append(lag)
        self._last = lag
        self.lag_buckets[bisect_left(LAG_BUCKETS, lag)] += 1
        return lag

    @property
    def lag_sum(self) -> float:
        return self._sum

    @property
    def lag_count(self) -> int:
        return self._count

    def behind_ticks(self) -> float:
        """How many ticks the run is behind its schedule now: 0 while it waits for a tick
        that is not yet due; while it works on tick ``t``, the ticks that came due since."""
        tick = self.tick
        if tick is None:
            return 0.0
        return max(0.0, (self.clock() - self.due(tick)) / self.seconds_per_tick)

    def sleep_until(self, tick: Optional[int]) -> None:
        """Sleep until ``tick`` is due (``None``: until a stop is asked for), without
        counting it as an emitted tick. A paced run with nothing to do waits here instead
        of spinning through empty ticks."""
        self.tick = tick  # waiting for it, or (None) for nothing: not behind
        while not self.should_stop():
            remaining = math.inf if tick is None else self.due(tick) - self.clock()
            if remaining <= 0:
                return
            self.sleep(min(remaining, _SLICE_SECONDS))
            if self.idle is not None:
                self.idle()

    def ticks_elapsed(self) -> int:
        """How many ticks of the schedule have passed on the wall clock."""
        return max(0, int((self.clock() - self.wall_start) / self.seconds_per_tick))

    def stats(self) -> Optional[LagStats]:
        if not self._count:
            return None
        ordered = sorted(self._lags)
        n = len(ordered)
        return LagStats(
            ticks=self._count,
            median=ordered[(n - 1) // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2,
            p99=ordered[min(n - 1, math.ceil(0.99 * n) - 1)],
            max=self._max,
            mean=self._sum / self._count,
            late_ticks=self._late,
            drift=self._last,
        )
