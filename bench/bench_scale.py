"""Scale: the banking model at 1,000,000 subjects x 10,080 ticks (a week of one-minute ticks).

    python bench/bench_scale.py [--subjects 1000000] [--ticks 10080] [--small 10000]

Each measurement runs in a fresh process so that its peak memory (VmHWM) is its own.
Targets: the cost per event at --subjects within 1.5x of the cost at --small subjects (same
ticks); peak memory of the run at most 1.5x the peak of a process that only creates the same
subjects with the same factory.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import List

from common import Row, banking, print_table


def child(mode: str, subjects: int, ticks: int, seed: int) -> None:
    began = time.perf_counter()
    datagen, sink = banking(subjects, ticks, seed)
    if mode == "hold":
        datagen._create_subjects()
        events = 0
    else:
        summary = datagen.start()
        events = summary.events
    elapsed = time.perf_counter() - began
    print(json.dumps({"elapsed": elapsed, "events": events, "peak_mib": peak_kib() / 1024}))


def peak_kib() -> float:
    """This process's peak resident memory. VmHWM belongs to the process image, whereas
    Linux carries ru_maxrss over from the parent across fork and exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def measure(mode: str, subjects: int, ticks: int, seed: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            mode,
            "--subjects",
            str(subjects),
            "--ticks",
            str(ticks),
            "--seed",
            str(seed),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(subjects: int, ticks: int, small: int, seed: int = 1) -> List[Row]:
    big = measure("run", subjects, ticks, seed)
    little = measure("run", small, ticks, seed)
    hold = measure("hold", subjects, ticks, seed)
    per_event_big = big["elapsed"] / max(big["events"], 1)
    per_event_small = little["elapsed"] / max(little["events"], 1)
    cost_ratio = per_event_big / per_event_small
    memory_ratio = big["peak_mib"] / hold["peak_mib"]
    return [
        (
            f"banking {subjects:,}x{ticks:,}: cost/event vs {small:,} subjects",
            f"{per_event_big * 1e6:.2f}us ({big['events'] / big['elapsed']:,.0f} ev/s, "
            f"{big['events']:,} ev, {big['elapsed']:.0f}s)",
            f"{per_event_small * 1e6:.2f}us ({little['events']:,} ev)",
            cost_ratio,
            "<= 1.5x",
            cost_ratio <= 1.5,
        ),
        (
            f"banking {subjects:,}x{ticks:,}: peak memory vs holding the subjects",
            f"{big['peak_mib']:.0f} MiB",
            f"{hold['peak_mib']:.0f} MiB",
            memory_ratio,
            "<= 1.5x",
            memory_ratio <= 1.5,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=10_080)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", choices=("run", "hold"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.subjects, args.ticks, args.seed)
        return
    print_table(run(args.subjects, args.ticks, args.small, args.seed))


if __name__ == "__main__":
    main()
