"""Pacing: how late each tick is emitted against its wall-clock schedule.

    python bench/bench_pacing.py [--ticks 100] [--tick-ms 100] [--speed 10] [--subjects 1000]

A dense model (every subject moves every tick, so every tick has work) runs paced; its lag
per tick (median, p99, max) and the drift at the end are compared with a naive loop that
makes the same moves into the same kind of sink and sleeps one tick interval after each tick
(it drifts by the work's duration every tick). Targets, both computed from the run: lag p99
below one tick interval, and the paced run's final drift below one tick interval.
"""

import argparse
import time
from typing import List, Tuple

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


def naive_loop(subjects: int, ticks: int, tick_ms: int, interval: float) -> Tuple[float, int]:
    """The same model by hand, paced the naive way: each tick, every subject makes its move
    (the callback-free dense model: one ``collect`` per subject, into the same kind of sink),
    then sleep one full interval. Return how late the last tick started, and the events."""
    datagen = model(subjects, ticks, tick_ms)
    hit, back = datagen.transitions
    sink = hit.event_sinks[0]
    things = [Thing() for _ in range(subjects)]
    on_ping = [True] * subjects
    began = time.monotonic()
    drift = 0.0
    for tick in range(ticks):
        drift = time.monotonic() - (began + tick * interval)
        timestamp = tick * tick_ms
        for i, thing in enumerate(things):
            transition = hit if on_ping[i] else back
            on_ping[i] = not on_ping[i]
            sink.collect(timestamp, thing, transition)
        if tick < ticks - 1:
            time.sleep(interval)
    return drift, sink.count


def run(ticks: int, tick_ms: int, speed: float, subjects: int) -> List[Row]:
    interval = tick_ms / 1000 / speed
    datagen = model(subjects, ticks, tick_ms)
    summary = datagen.start(speed=speed)
    lag = summary.lag
    assert lag is not None
    naive, naive_events = naive_loop(subjects, ticks, tick_ms, interval)
    # The reference did the same work: every subject moved every tick in both.
    assert naive_events == summary.events == subjects * ticks, (naive_events, summary.events)
    return [
        (
            f"paced {ticks} ticks of {tick_ms} ms at speed {speed:g}: lag median/p99/max",
            f"{lag.median * 1e3:.2f}/{lag.p99 * 1e3:.2f}/{lag.max * 1e3:.2f} ms",
            f"interval {interval * 1e3:.1f} ms",
            lag.p99 / interval,
            "p99 lag < 1 interval",
            lag.p99 < interval,
        ),
        (
            "paced run: drift at the end vs the interval (a sleep-per-tick loop doing the "
            "same work drifts by the reference's second figure)",
            f"{lag.drift * 1e3:.2f} ms",
            f"interval {interval * 1e3:.1f} ms; the loop {naive * 1e3:.2f} ms",
            lag.drift / interval,
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
