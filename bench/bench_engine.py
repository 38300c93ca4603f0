"""The engine against the per-tick reference on the banking model (a sparse model: most
subject-ticks are stays), and the same model at 1-second ticks.

    python bench/bench_engine.py [--subjects 10000] [--ticks 1000]

Two per-tick references from tests/support/per_tick_reference.py: the plain loop (states by name,
probabilities summed while walking them) and a tuned one (precomputed cumulative tables,
state indices). Targets: the engine at least 50x the plain reference; at 1-second ticks
(probabilities / 60, ticks x 60) the engine's time grows at most 1.3x.
"""

import argparse
import random
from typing import List

from common import Row, banking, print_table, timed
from support.per_tick_reference import run_per_tick, run_per_tick_plain


def run(subjects: int, ticks: int, seed: int = 1) -> List[Row]:
    counts = {}

    def engine_minute():
        datagen, sink = banking(subjects, ticks, seed)
        datagen.start()
        counts["engine"] = sink.count

    def engine_second():
        datagen, sink = banking(subjects, ticks, seed, one_second_ticks=True)
        datagen.start()
        counts["engine_s"] = sink.count

    def reference_minute():
        datagen, sink = banking(subjects, ticks, seed)
        run_per_tick(datagen, random.Random(seed))
        counts["reference"] = sink.count

    def plain_minute():
        datagen, sink = banking(subjects, ticks, seed)
        run_per_tick_plain(datagen, random.Random(seed))
        counts["plain"] = sink.count

    # The two engine runs take a few hundredths of a second: they alternate, nine times each,
    # so that both sides of their ratio are taken from the same stretch of the machine's time.
    t_engine = t_second = float("inf")
    for _ in range(9):
        t_engine = min(t_engine, timed(engine_minute))
        t_second = min(t_second, timed(engine_second))
    t_reference = timed(reference_minute, repeat=2)
    t_plain = timed(plain_minute, repeat=2)
    speedup = t_reference / t_engine
    speedup_plain = t_plain / t_engine
    growth = t_second / t_engine
    size = f"{subjects:,}x{ticks:,}"
    return [
        (
            f"sparse banking {size}, engine vs tuned per-tick",
            f"{t_engine:.3f}s ({counts['engine']:,} ev)",
            f"{t_reference:.3f}s ({counts['reference']:,} ev)",
            speedup,
            ">= 50x",
            speedup >= 50,
        ),
        (
            f"sparse banking {size}, engine vs plain per-tick",
            f"{t_engine:.3f}s",
            f"{t_plain:.3f}s ({counts['plain']:,} ev)",
            speedup_plain,
            ">= 50x",
            speedup_plain >= 50,
        ),
        (
            f"banking 1-s ticks ({subjects:,}x{ticks * 60:,}) vs 1-min",
            f"{t_second:.3f}s ({counts['engine_s']:,} ev)",
            f"{t_engine:.3f}s",
            growth,
            "<= 1.3x",
            growth <= 1.3,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print_table(run(args.subjects, args.ticks, args.seed))


if __name__ == "__main__":
    main()
