"""Two workers against one process: the banking model at 200,000 subjects x 1,440 ticks, into
JSON Lines (parts) and into a counting sink.

    python bench/bench_sharded.py [--subjects 200000] [--ticks 1440] [--workers 2] [--rounds 9]

Both sides are the ``doge-datagen`` command, run one right after the other, ``--rounds``
times; each side's figure is its best round (the least disturbed by the rest of the machine:
two processes at once need both cores free, and on a shared machine they often are not, so
the median of the rounds' own ratios is printed too, on standard error):
``demo --sink jsonl:PATH`` against ``demo --sink jsonl:PATH --workers 2``, and ``run
bench_sharded.py:counting_model`` with and without ``--workers 2``. Both sides write the same
events (checked). Each command is timed twice:

- **the run**, as its summary line reports it (``... in X s``): for one process, from opening
  the sinks to closing them; for the workers, from the coordinator's call to the merged
  summary, so starting the shards' processes, building the model in each shard and joining
  them are in it. The target, at least 1.7x, is for this figure;
- **end to end**, on the wall clock from the command's start to its exit and the end of its
  output, interpreter start-up, imports and exit included.

The ceiling rows are the bound of each figure on this machine: the same work split over as
many commands as ``--workers`` asks for, which share nothing (no server, no coordinator), each
with its part of the subjects, side by side, against the whole in one command; "the run"
takes their slowest summary line. Two processes on a virtual machine with two cores do not
always get two cores' worth of work done, and no sharded command does better than these.

Other load on the machine lowers every ratio: ``uptime`` is printed with the figures.
"""

import argparse
import glob
import os
import re
import statistics
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


def timed_commands(argvs: Sequence[Sequence[str]], cwd: str) -> Tuple[float, List[str]]:
    """Start every command at once; the wall-clock time until the last one has ended and
    closed its output, and each one's standard output."""
    began = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "doge_datagen", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        for argv in argvs
    ]
    outputs = [process.communicate() for process in processes]
    took = time.perf_counter() - began
    for argv, process, (_, err) in zip(argvs, processes, outputs):
        if process.returncode != 0:
            raise RuntimeError(f"doge-datagen {' '.join(argv)} failed: {err.strip()}")
    return took, [out for out, _ in outputs]


SUMMARY = re.compile(r"(\d+) events from .* in ([0-9.]+) s")


def reported(output: str) -> Tuple[int, float]:
    """The events and the seconds of the run, from the command's summary line."""
    found = SUMMARY.search(output)
    if found is None:
        raise RuntimeError(f"no summary line in {output!r}")
    return int(found.group(1)), float(found.group(2))


def compare(
    name: str, one: List[str], many: List[str], cwd: str, rounds: int, check: bool = False
) -> List[Row]:
    runs: List[Tuple[float, float]] = []  # (one process, workers): the run, as reported
    ends: List[Tuple[float, float]] = []  # the same commands, end to end
    events = (0, 0)
    for _ in range(rounds):
        end_one, (out_one,) = timed_commands([one], cwd)
        if check:
            lines_one = _count_lines(glob.glob(os.path.join(cwd, "one.jsonl")))
        end_many, (out_many,) = timed_commands([many], cwd)
        (events_one, seconds_one), (events_many, seconds_many) = (
            reported(out_one),
            reported(out_many),
        )
        runs.append((seconds_one, seconds_many))
        ends.append((end_one, end_many))
        events = (events_one, events_many)
        if check:
            lines_many = _count_lines(glob.glob(os.path.join(cwd, "many-*-of-*.jsonl")))
            if lines_one != events[0] or lines_many != events[1]:
                raise RuntimeError(f"{name}: files hold {lines_one}/{lines_many} lines")
    if events[0] != events[1]:
        raise RuntimeError(f"{name}: {events[0]} events in one process, {events[1]} sharded")
    return [
        _row(f"{name}: the run", runs, events[0], ">= 1.7x", 1.7),
        _row(f"{name}: end to end", ends, events[0], "(see the ceilings)", None),
    ]


def _row(
    name: str,
    pairs: List[Tuple[float, float]],
    events: "int | None",
    target: str,
    at_least: "float | None",
) -> Row:
    """Each side's best time (with its event rate, given ``events``) and their ratio
    (reference / ours); the median of the rounds' own ratios goes to standard error."""
    reference = min(one for one, _ in pairs)
    ours = min(many for _, many in pairs)
    ratio = reference / ours
    ratios = sorted(one / many for one, many in pairs)
    print(
        f"{name}: best {ratio:.2f}x; rounds' ratios: median {statistics.median(ratios):.2f}x, "
        f"from {ratios[0]:.2f}x to {ratios[-1]:.2f}x",
        file=sys.stderr,
    )

    def shown(seconds: float) -> str:
        return f"{seconds:.2f}s" + (f" ({events / seconds:,.0f} ev/s)" if events else "")

    return (
        name,
        shown(ours),
        shown(reference),
        ratio,
        target,
        ratio >= at_least if at_least is not None else True,
    )


def ceiling(
    name: str, whole: List[str], parts: List[List[str]], cwd: str, rounds: int
) -> List[Row]:
    """The bound of a sharded run on this machine: the ``parts`` commands, which share
    nothing (no server, no coordinator), side by side, against the ``whole`` command. Two
    figures, as for the sharded command: the run (the parts' slowest summary line against the
    whole's) and end to end."""
    runs, ends = [], []
    for _ in range(rounds):
        end_whole, (out_whole,) = timed_commands([whole], cwd)
        end_parts, outs = timed_commands(parts, cwd)
        runs.append((reported(out_whole)[1], max(reported(out)[1] for out in outs)))
        ends.append((end_whole, end_parts))
    return [
        _row(f"ceiling, the run: {name}", runs, None, "(a bound)", None),
        _row(f"ceiling, end to end: {name}", ends, None, "(a bound)", None),
    ]


def _count_lines(paths: List[str]) -> int:
    total = 0
    for path in paths:
        with open(path, "rb") as f:
            total += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return total


def run(subjects: int, ticks: int, workers: int = 2, rounds: int = 9) -> List[Row]:
    size = ["--ticks", str(ticks), "--seed", "1", "--no-progress"]
    rows: List[Row] = []
    with tempfile.TemporaryDirectory(prefix="doge-bench-sharded-") as tmp:
        demo = ["demo", "--timestamp-start", "0", "--subjects", str(subjects), *size]
        rows += compare(
            f"demo into JSON Lines {subjects:,}x{ticks:,}, {workers} workers vs 1 process",
            [*demo, "--sink", "jsonl:one.jsonl"],
            [*demo, "--sink", "jsonl:many.jsonl", "--workers", str(workers)],
            tmp,
            rounds,
            check=True,
        )
        model = ["run", f"{HERE}:counting_model", "--subjects", str(subjects), *size]
        rows += compare(
            f"banking into a counting sink {subjects:,}x{ticks:,}, {workers} workers vs 1",
            model,
            [*model, "--workers", str(workers)],
            tmp,
            rounds,
        )
        part = subjects // workers
        demo = ["demo", "--timestamp-start", "0", *size]
        rows += ceiling(
            f"{workers} separate demos of {part:,} subjects into JSON Lines vs one",
            [*demo, "--subjects", str(subjects), "--sink", "jsonl:whole.jsonl"],
            [
                [*demo, "--subjects", str(part), "--sink", f"jsonl:part{k}.jsonl"]
                for k in range(workers)
            ],
            tmp,
            rounds,
        )
        model = ["run", f"{HERE}:counting_model", *size]
        rows += ceiling(
            f"{workers} separate runs of {part:,} subjects into a counting sink vs one",
            [*model, "--subjects", str(subjects)],
            [[*model, "--subjects", str(part)] for _ in range(workers)],
            tmp,
            rounds,
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
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    print_table(run(args.subjects, args.ticks, args.workers, args.rounds))


if __name__ == "__main__":
    main()
