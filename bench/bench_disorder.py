"""What disorder costs: the same model into the same sink, with and without a DisorderedSink.

    python bench/bench_disorder.py [--subjects 20000] [--ticks 1440] [--rounds 3]

The README's banking model (every move, logouts included) into a JSON Lines file
(``FileSink(path, user_row)``), against the same run with the file wrapped in
``DisorderedSink(late=0.05, max_delay_ms=600_000, duplicate=0.01, drop=0.001)``: each
event's fate drawn, 5 % of them held back up to ten minutes of event time with a copy of
their subject, 1 % written twice. Figures are CPU seconds of the whole run (engine and
sink), best of --rounds with the sides taking turns; target: disordered <= 1.2x plain.
The default size, a day of 20,000 users, gives about five events per user: with fewer
events per user, creating the users takes most of the run and hides what disorder costs.
An event that meets no fate goes through the C collect (about 1.07x alone); the late ones
(a copy of the subject, a heap) take most of the rest.
The same run with a truth file beside (every event written a second time) is shown
without a target.
"""

import argparse
import gc
import os
import sys
import tempfile
import time
from typing import Any, Callable, List

from common import Row, print_table

from doge_datagen import FileSink
from doge_datagen.demo import banking_generator, user_row
from doge_datagen.sinks.disorder import DisorderedSink

TARGET = 1.2
OPTIONS = {"late": 0.05, "max_delay_ms": 600_000, "duplicate": 0.01, "drop": 0.001}


def run_once(make_sink: Callable[[str], Any], directory: str, subjects: int, ticks: int) -> float:
    sink = make_sink(directory)
    datagen = banking_generator(
        sink, sink, sink, sink, subjects_num=subjects, ticks_num=ticks, seed=1, timestamp_start=0
    )
    for transition in datagen.transitions:
        transition.event_sinks = [sink]
    gc.collect()
    began = time.process_time()
    summary = datagen.start()
    elapsed = time.process_time() - began
    assert summary.events > 0
    return elapsed


def plain(directory: str) -> Any:
    return FileSink(os.path.join(directory, "plain.jsonl"), user_row)


def disordered(directory: str) -> Any:
    inner = FileSink(os.path.join(directory, "disordered.jsonl"), user_row)
    return DisorderedSink(inner, **OPTIONS)


def with_truth(directory: str) -> Any:
    inner = FileSink(os.path.join(directory, "disordered.jsonl"), user_row)
    truth = FileSink(os.path.join(directory, "truth.jsonl"), user_row)
    return DisorderedSink(inner, truth=truth, **OPTIONS)


def measure(subjects: int, ticks: int, rounds: int) -> List[Row]:
    best = {"plain": float("inf"), "disordered": float("inf"), "truth": float("inf")}
    makers = {"plain": plain, "disordered": disordered, "truth": with_truth}
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(rounds):
            for name, maker in makers.items():
                best[name] = min(best[name], run_once(maker, directory, subjects, ticks))
    size = f"{subjects:,} users x {ticks} ticks"
    ratio = best["disordered"] / best["plain"]
    truth_ratio = best["truth"] / best["plain"]
    return [
        (
            f"disordered JSON Lines vs plain ({size})",
            f"{best['disordered']:.2f} s",
            f"{best['plain']:.2f} s",
            ratio,
            f"<= {TARGET}x",
            ratio <= TARGET,
        ),
        (
            f"disordered JSON Lines + truth file vs plain ({size})",
            f"{best['truth']:.2f} s",
            f"{best['plain']:.2f} s",
            truth_ratio,
            "-",
            True,
        ),
    ]


def main(argv: Any = None) -> List[Row]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=20_000)
    parser.add_argument("--ticks", type=int, default=1440)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    rows = measure(args.subjects, args.ticks, args.rounds)
    print_table(rows)
    return rows


if __name__ == "__main__":
    rows = main()
    sys.exit(0 if rows[0][5] else 1)
