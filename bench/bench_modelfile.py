"""``examples/banking.yaml`` against the Python banking model (:mod:`doge_datagen.demo`), in
the same process and the same run: into counting sinks, and into JSON Lines files.

    python bench/bench_modelfile.py [--subjects 50000] [--ticks 1440] [--rounds 3]

Both sides run the same seed (so the same events), alternately, best of ``--rounds``; a figure
is events per second of CPU time (user + system) of building the model and running it. The
JSON Lines sides write the same records (the file's ``record:`` fields) to files of their own.
Target: the model file at >= 0.9x the Python model in both.
"""

import argparse
import gc
import os
import tempfile
import time
from typing import Any, Callable, Dict, List, Tuple

from common import ROOT, Row, print_table

import doge_datagen
from doge_datagen.demo import STREAMS, banking_generator
from doge_datagen.sinks.memory import CountingSink
from doge_datagen.sinks.record import Record
from doge_datagen.sinks.registry import Records, build_sink

BANKING_YAML = os.path.join(ROOT, "examples", "banking.yaml")

#: The records of examples/banking.yaml's sinks, for the Python model's files.
FIELDS: Dict[str, List[Any]] = {
    "clickstream": ["timestamp", "user_id", ("event", "trigger")],
    "trx": ["timestamp", "user_id", "balance", ("event", "trigger")],
    "balance": ["timestamp", "user_id", "balance", "loan_balance"],
    "loan": ["timestamp", "user_id", "loan_balance"],
}


def _timed(build: Callable[[], Any]) -> Tuple[float, int]:
    gc.collect()
    began = time.process_time()
    summary = build().start()
    return time.process_time() - began, summary.events


def python_counting(subjects: int, ticks: int) -> Any:
    sinks = [CountingSink(stream) for stream in STREAMS]
    return banking_generator(*sinks, subjects_num=subjects, ticks_num=ticks, seed=1)


def file_counting(subjects: int, ticks: int) -> Any:
    sinks = {stream: CountingSink(stream) for stream in STREAMS}
    return doge_datagen.load(BANKING_YAML, sinks=sinks, subjects=subjects, ticks=ticks, seed=1)


def python_jsonl(folder: str, subjects: int, ticks: int) -> Any:
    sinks = [
        build_sink(f"jsonl:{folder}/py-{stream}.jsonl", Records(row=Record(FIELDS[stream])))
        for stream in STREAMS
    ]
    return banking_generator(*sinks, subjects_num=subjects, ticks_num=ticks, seed=1)


def file_jsonl(folder: str, subjects: int, ticks: int) -> Any:
    sinks = {stream: f"jsonl:{folder}/yaml-{stream}.jsonl" for stream in STREAMS}
    return doge_datagen.load(BANKING_YAML, sinks=sinks, subjects=subjects, ticks=ticks, seed=1)


def run(subjects: int = 50_000, ticks: int = 1440, rounds: int = 3) -> List[Row]:
    """The two rows: counting sinks and JSON Lines, the model file against the Python model
    (the promises ``model files`` of bench/promises.py)."""
    rows: List[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        pairs = {
            "counting sinks": (
                lambda: file_counting(subjects, ticks),
                lambda: python_counting(subjects, ticks),
            ),
            "JSON Lines": (
                lambda: file_jsonl(folder, subjects, ticks),
                lambda: python_jsonl(folder, subjects, ticks),
            ),
        }
        for name, (ours, reference) in pairs.items():
            best = {"file": float("inf"), "python": float("inf")}
            events = {}
            for _ in range(rounds):
                for side, build in (("file", ours), ("python", reference)):
                    seconds, events[side] = _timed(build)
                    best[side] = min(best[side], seconds)
            assert events["file"] == events["python"], events
            rate = {side: events[side] / best[side] for side in best}
            ratio = rate["file"] / rate["python"]
            rows.append(
                (
                    f"banking.yaml vs Python, {name} ({events['file']:,} events)",
                    f"{rate['file']:,.0f} ev/s",
                    f"{rate['python']:,.0f} ev/s",
                    ratio,
                    ">= 0.9x",
                    ratio >= 0.9,
                )
            )
        with open(f"{folder}/yaml-trx.jsonl", "rb") as a, open(f"{folder}/py-trx.jsonl", "rb") as b:
            assert a.read() == b.read(), "the two models wrote different lines"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=50_000)
    parser.add_argument("--ticks", type=int, default=1440)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print_table(run(args.subjects, args.ticks, args.rounds))


if __name__ == "__main__":
    main()
