"""Pacing a run against the wall clock.

Tick ``t`` is due at ``wall_start + t * tick_ms / 1000 / speed`` seconds. Every wait aims at
that absolute schedule, so errors never accumulate; a tick that is already late is emitted
at once and its lag recorded.
"""

import math
import time
from array import array
from dataclasses import dataclass
from typing import Callable, Optional

# Longest single sleep, so that stop() and signals are noticed promptly.
_SLICE_SECONDS = 0.05
# Lags kept for the quantiles; beyond this only the maximum and the mean are updated.
_MAX_SAMPLES = 1_000_000


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
        if isinstance(speed, bool) or not isinstance(speed, (int, float)):
            raise TypeError(f"speed must be a number, got {speed!r}")
        if not math.isfinite(speed) or speed <= 0:
            raise ValueError(f"speed must be a positive number, got {speed!r}")
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

    def due(self, tick: int) -> float:
        return self.wall_start + tick * self.seconds_per_tick

    def wait(self, tick: int) -> float:
        """Return when ``tick`` is due (or a stop was asked for); return its lag in seconds."""
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
        return lag

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
