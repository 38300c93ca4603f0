"""What profiles cost: the banking model with an hourly login profile against the same model
with constant probabilities, per event (the profile averages 1, so both make about as many
events), plus the demo's whole day (hourly logins and weekday income) and a callable profile.

    python bench/bench_profiles.py [--subjects 10000] [--days 7]

Target: the hourly login profile costs at most 1.5x the constant model per event.
"""

import argparse
import math
from datetime import datetime, timezone
from typing import Any, Callable, List, Tuple

from common import Row, print_table, timed

from doge_datagen import CountingSink, DataOnlineGenerator
from doge_datagen.demo import LOGIN_HOURS, banking_generator
from doge_datagen.profiles import hourly, profile

MONDAY = datetime(2024, 5, 6, tzinfo=timezone.utc)


def smooth_day(when: datetime) -> float:
    """A login curve that changes every minute (mean about 1, at most 2)."""
    minutes = when.hour * 60 + when.minute
    return 1.0 + 0.9 * math.sin(2 * math.pi * (minutes - 480) / 1440)


def banking(subjects: int, ticks: int, kind: str) -> Tuple[DataOnlineGenerator, CountingSink]:
    sink = CountingSink()
    datagen = banking_generator(
        sink,
        sink,
        sink,
        sink,
        subjects_num=subjects,
        ticks_num=ticks,
        timestamp_start=MONDAY,
        seed=1,
        day=kind == "day",
    )
    login = next(t for t in datagen.transitions if t.trigger == "login")
    if kind == "hourly":
        login.probability = 0.1 * hourly(LOGIN_HOURS, name="daily")
    elif kind == "callable":
        login.probability = 0.1 * profile(smooth_day, max=1.9)
    return datagen, sink


def once(subjects: int, ticks: int, kind: str) -> Tuple[float, int]:
    counts = {}

    def go() -> None:
        datagen, sink = banking(subjects, ticks, kind)
        datagen.start()
        counts["n"] = sink.count

    return timed(go), counts["n"]


def run(subjects: int, days: int, repeat: int = 5) -> List[Row]:
    """Each case is timed ``repeat`` times, interleaved with the others so that a busy
    machine slows them alike; the best time of each counts."""
    ticks = days * 1440
    kinds = ["flat", "hourly", "day", "callable"]
    best = {kind: (float("inf"), 0) for kind in kinds}
    for _ in range(repeat):
        for kind in kinds:
            seconds, n = once(subjects, ticks, kind)
            if seconds < best[kind][0]:
                best[kind] = (seconds, n)
    t_flat, n_flat = best["flat"]
    rows: List[Row] = []
    cases: List[Tuple[str, str, Callable[[float], bool], str]] = [
        ("hourly", "hourly login profile", lambda r: r <= 1.5, "<= 1.5x"),
        ("day", "demo day (hourly logins, weekday income)", lambda r: True, "(shown)"),
        ("callable", "login by a callable (thinning)", lambda r: True, "(shown)"),
    ]
    for kind, label, ok, target in cases:
        seconds, n = best[kind]
        ratio = (seconds / n) / (t_flat / n_flat)
        rows.append(
            (
                f"banking {subjects:,}x{ticks:,}, {label} vs constant, per event",
                f"{seconds:.3f}s ({n:,} ev)",
                f"{t_flat:.3f}s ({n_flat:,} ev)",
                ratio,
                target,
                ok(ratio),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=7)
    args: Any = parser.parse_args()
    print_table(run(args.subjects, args.days))


if __name__ == "__main__":
    main()
