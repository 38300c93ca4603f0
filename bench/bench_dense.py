"""A dense model: two states bouncing at 100 %, so every subject moves every tick and nothing
can be skipped. The engine must not lose to the per-tick reference here.

    python bench/bench_dense.py [--subjects 10000] [--ticks 100]

Target: at least 1x the tuned per-tick reference (aim: 2x).
"""

import argparse
import random
from typing import List

from common import Row, print_table, timed
from support.per_tick_reference import run_per_tick

from doge_datagen import CountingSink, DataOnlineGenerator


class Thing:
    __slots__ = ()


def ping_pong(subjects: int, ticks: int, seed: int):
    sink = CountingSink()
    datagen = DataOnlineGenerator(["ping", "pong"], "ping", Thing, subjects, 1000, ticks, seed=seed)
    datagen.add_transition("hit", "ping", "pong", 100, event_sinks=[sink])
    datagen.add_transition("back", "pong", "ping", 100, event_sinks=[sink])
    return datagen, sink


def run(subjects: int, ticks: int, seed: int = 1) -> List[Row]:
    counts = {}

    def engine():
        datagen, sink = ping_pong(subjects, ticks, seed)
        datagen.start()
        counts["engine"] = sink.count

    def reference():
        datagen, sink = ping_pong(subjects, ticks, seed)
        run_per_tick(datagen, random.Random(seed))
        counts["reference"] = sink.count

    t_engine = timed(engine, repeat=3)
    t_reference = timed(reference, repeat=3)
    ratio = t_reference / t_engine
    return [
        (
            f"dense ping-pong {subjects:,}x{ticks:,}, engine vs tuned per-tick",
            f"{t_engine:.3f}s ({counts['engine']:,} ev)",
            f"{t_reference:.3f}s ({counts['reference']:,} ev)",
            ratio,
            ">= 1x (aim 2x)",
            ratio >= 1.0,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print_table(run(args.subjects, args.ticks, args.seed))


if __name__ == "__main__":
    main()
