"""Two workers against one process: the banking model at 200,000 subjects x 1,440 ticks, into
JSON Lines (parts) and into a counting sink.

    python bench/bench_sharded.py [--subjects 200000] [--ticks 1440] [--workers 2] [--rounds 2]

Both sides are the ``doge-datagen`` command, run alternately, best of ``--rounds``, timed on
the wall clock from start to exit (interpreter start-up and, for the sharded side, starting
the workers included): ``demo --sink jsonl:PATH`` against ``demo --sink jsonl:PATH --workers
2``, and ``run bench_sharded.py:counting_model`` with and without ``--workers 2``. Both sides
write the same events (checked). Target: at least 1.7x on a 2-core machine with nothing else
running (``uptime`` is printed with the figures: other load on the machine lowers it).
"""

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time
from typing import List, Sequence, Tuple

from common import Row, print_table

HERE = os.path.abspath(__file__)


def counting_model():  # type: ignore[no-untyped-def]
    """The banking model into one counting sink (``run`` overrides its size)."""
    from doge_datagen import CountingSink
    from doge_datagen.demo import banking_generator

    sink = CountingSink()
    return banking_generator(sink, sink, sink, sink, subjects_num=1000, seed=1, timestamp_start=0)


def timed_command(argv: Sequence[str], cwd: str) -> Tuple[float, str]:
    began = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "doge_datagen", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    took = time.perf_counter() - began
    if out.returncode != 0:
        raise RuntimeError(f"doge-datagen {' '.join(argv)} failed: {out.stderr.strip()}")
    return took, out.stdout


def events_of(output: str) -> int:
    return int(output.split(" events from ", 1)[0].split()[-1])


def compare(
    name: str, one: List[str], many: List[str], cwd: str, rounds: int, check: str = ""
) -> Row:
    best_one = best_many = float("inf")
    events = (0, 0)
    for _ in range(rounds):
        took, out_one = timed_command(one, cwd)
        best_one = min(best_one, took)
        if check:
            lines_one = _count_lines(glob.glob(os.path.join(cwd, "one.jsonl")))
        took, out_many = timed_command(many, cwd)
        best_many = min(best_many, took)
        events = (events_of(out_one), events_of(out_many))
        if check:
            lines_many = _count_lines(glob.glob(os.path.join(cwd, "many-*-of-*.jsonl")))
            if lines_one != events[0] or lines_many != events[1]:
                raise RuntimeError(f"{name}: files hold {lines_one}/{lines_many} lines")
    if events[0] != events[1]:
        raise RuntimeError(f"{name}: {events[0]} events in one process, {events[1]} sharded")
    ratio = best_one / best_many
    return (
        name,
        f"{best_many:.2f}s ({events[1] / best_many:,.0f} ev/s)",
        f"{best_one:.2f}s ({events[0] / best_one:,.0f} ev/s)",
        ratio,
        ">= 1.7x",
        ratio >= 1.7,
    )


def _count_lines(paths: List[str]) -> int:
    total = 0
    for path in paths:
        with open(path, "rb") as f:
            total += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return total


def run(subjects: int, ticks: int, workers: int = 2, rounds: int = 2) -> List[Row]:
    size = ["--subjects", str(subjects), "--ticks", str(ticks), "--seed", "1", "--no-progress"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="doge-bench-sharded-") as tmp:
        demo = ["demo", "--timestamp-start", "0", *size]
        rows.append(
            compare(
                f"demo into JSON Lines {subjects:,}x{ticks:,}: {workers} workers vs 1 process",
                [*demo, "--sink", "jsonl:one.jsonl"],
                [*demo, "--sink", "jsonl:many.jsonl", "--workers", str(workers)],
                tmp,
                rounds,
                check="lines",
            )
        )
        model = ["run", f"{HERE}:counting_model", *size]
        rows.append(
            compare(
                f"banking into a counting sink {subjects:,}x{ticks:,}: {workers} workers vs 1",
                model,
                [*model, "--workers", str(workers)],
                tmp,
                rounds,
            )
        )
    load = os.getloadavg()
    print(
        f"load average during the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", file=sys.stderr
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=200_000)
    parser.add_argument("--ticks", type=int, default=1_440)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print_table(run(args.subjects, args.ticks, args.workers, args.rounds))


if __name__ == "__main__":
    main()
