"""Aimed load: a paced run asked for N events per second, against what it achieved.

    python bench/bench_rate.py [--rate 2000] [--seconds 120] [--subjects 100000]

The banking model without its callbacks (nothing can veto, so the analysis sees everything)
runs with ``start(rate=N)``: the speed comes from the model analysis (the run's expected
events over its paced wall time). The number of one-minute ticks is chosen so that the run
should last ``--seconds``. The reference is the rate asked for; the target is an achieved rate
(events / elapsed wall time, subject creation included) within 5 % of it.
"""

import argparse
from typing import List

from common import Row, print_table

from doge_datagen import CountingSink
from doge_datagen.demo import banking_generator


def model(subjects: int, seconds: float, rate: float):
    sinks = [CountingSink(name) for name in ("clickstream", "trx", "balance", "loan")]
    datagen = banking_generator(*sinks, subjects_num=subjects, ticks_num=1, seed=1)
    for transition in datagen.transitions:
        transition.action_callback = None
    per_tick = datagen.analyze(ticks_num=None).total_events_per_tick
    datagen.ticks_num = max(1, round(rate * seconds / per_tick))
    return datagen


def run(rate: float, seconds: float, subjects: int) -> List[Row]:
    datagen = model(subjects, seconds, rate)
    summary = datagen.start(rate=rate)
    achieved = summary.events_per_second
    ratio = achieved / rate
    return [
        (
            f"paced run asked for {rate:,.0f} events/s ({subjects:,} subjects, "
            f"{datagen.ticks_num} ticks, speed {summary.speed:.4g}): "
            f"{summary.events:,} events in {summary.elapsed_seconds:.1f} s",
            f"{achieved:,.0f} events/s",
            f"{rate:,.0f} events/s asked",
            ratio,
            "0.95x - 1.05x",
            0.95 <= ratio <= 1.05,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--subjects", type=int, default=100_000)
    args = parser.parse_args()
    print_table(run(args.rate, args.seconds, args.subjects))


if __name__ == "__main__":
    main()
