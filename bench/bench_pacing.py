"""Pacing: how late each tick is emitted against its wall-clock schedule.

    python bench/bench_pacing.py [--ticks 100] [--tick-ms 100] [--speed 10] [--subjects 1000]

A dense model (every subject moves every tick, so every tick has work) runs paced; its lag
per tick (median, p99, max) and the drift at the end are compared with a naive loop that
sleeps one tick interval after doing the same work (it drifts by the work's duration every
tick). Target: the paced run's final drift stays below one tick interval.
"""

import argparse
import time
from typing import List

from common import Row, print_table

from doge_datagen import CountingSink, DataOnlineGenerator


class Thing:
    __slots__ = ()


def model(subjects: int, ticks: int, tick_ms: int) -> DataOnlineGenerator:
    sink = CountingSink()
    datagen = DataOnlineGenerator(["ping", "pong"], "ping", Thing, subjects, tick_ms, ticks, seed=1)
    datagen.add_transition("hit", "ping", "pong", 100, event_sinks=[sink])
    datagen.add_transition("back", "pong", "ping", 100, event_sinks=[sink])
    return datagen


def naive_drift(subjects: int, ticks: int, interval: float) -> float:
    """Sleep a full interval after each tick's work; return how late the last tick was."""
    datagen = model(subjects, 1, 1000)
    began = time.monotonic()
    for tick in range(ticks):
        if tick == ticks - 1:
            return time.monotonic() - (began + tick * interval)
        datagen.start()  # one tick's work
        time.sleep(interval)
    return 0.0


def run(ticks: int, tick_ms: int, speed: float, subjects: int) -> List[Row]:
    interval = tick_ms / 1000 / speed
    summary = model(subjects, ticks, tick_ms).start(speed=speed)
    lag = summary.lag
    assert lag is not None
    naive = naive_drift(subjects, ticks, interval)
    return [
        (
            f"paced {ticks} ticks of {tick_ms} ms at speed {speed:g}: lag median/p99/max",
            f"{lag.median * 1e3:.2f}/{lag.p99 * 1e3:.2f}/{lag.max * 1e3:.2f} ms",
            f"interval {interval * 1e3:.1f} ms",
            lag.max / interval,
            "(lag / interval)",
            True,
        ),
        (
            "paced run: drift at the end vs a sleep-per-tick loop",
            f"{lag.drift * 1e3:.2f} ms",
            f"{naive * 1e3:.2f} ms",
            (naive / lag.drift) if lag.drift > 0 else float("inf"),
            "drift < 1 interval",
            lag.drift < interval,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ticks", type=int, default=100)
    parser.add_argument("--tick-ms", type=int, default=100)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--subjects", type=int, default=1000)
    args = parser.parse_args()
    print_table(run(args.ticks, args.tick_ms, args.speed, args.subjects))


if __name__ == "__main__":
    main()
