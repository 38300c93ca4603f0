"""Scale: the banking model at 1,000,000 subjects x 10,080 ticks (a week of one-minute ticks).

    python bench/bench_scale.py [--subjects 1000000] [--ticks 10080] [--small 10000] [--rounds 3]

Each measurement runs in a fresh process so that its peak memory (VmHWM) is its own, and is
timed in CPU seconds (the process is single-threaded: on a shared machine the wall clock
would measure the neighbours too). The two sizes take turns, small, big, small, big, ...,
small, and each of the ``--rounds`` big processes makes one measurement: its cost per event
against the mean of the two small processes just before and just after it, which sample the
same stretch of the machine's speed. Each small process builds and runs the small model 20
times over, so that both sides are averages over seconds of CPU. The figure is the worst of
the rounds, not the best: a large population must be cheap in every run, and the best of a
few hides the runs where the machine's caches were shared with busier neighbours (the big
run's working set is far larger than the caches, the small one's is not). The big row also
says how much of the big process's memory was on transparent huge pages: a run creates a
large population on them (doc/scaling.md), and a machine with huge pages switched off
("never") makes the big side slower.
Targets: the cost per event at --subjects within 1.3x of the cost at --small subjects (same
ticks, so that set-up weighs the same), in every round; peak memory of the run at most 1.5x
the peak of a process that only creates the same subjects with the same factory.
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


def child(mode: str, subjects: int, ticks: int, seed: int, times: int = 1) -> None:
    """Build and run the model ``times`` times over (a new model each time, creation of the
    subjects included); the CPU seconds and the events of all of them."""
    began = time.process_time()
    events = 0
    for _ in range(times):
        datagen, sink = banking(subjects, ticks, seed)
        if mode == "hold":
            from doge_datagen.engine.loop import Run

            held = Run(datagen, 0, datagen.subjects_num, 0)  # the same factory and subjects
            held.create_subjects()
        else:
            summary = datagen.start()
            events += summary.events
        del datagen, sink
    elapsed = time.process_time() - began
    print(
        json.dumps(
            {
                "elapsed": elapsed,
                "events": events,
                "peak_mib": peak_kib() / 1024,
                "huge_mib": huge_kib() / 1024,
            }
        )
    )


def _proc_kib(path: str, field: str) -> "float | None":
    """The kB figure of ``field`` in a /proc file of this process (None where there is none)."""
    try:
        with open(path) as lines:
            for line in lines:
                if line.startswith(field):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def peak_kib() -> float:
    """This process's peak resident memory. VmHWM belongs to the process image, whereas
    Linux carries ru_maxrss over from the parent across fork and exec."""
    found = _proc_kib("/proc/self/status", "VmHWM:")
    return found if found is not None else float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def huge_kib() -> float:
    """How much of this process's memory is on transparent huge pages (Linux; 0 elsewhere):
    a large population's subjects are made on them (``engine.loop._making_many``)."""
    return _proc_kib("/proc/self/smaps_rollup", "AnonHugePages:") or 0.0


def measure(mode: str, subjects: int, ticks: int, seed: int, times: int = 1) -> dict:
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
            "--times",
            str(times),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(subjects: int, ticks: int, small: int, seed: int = 1, rounds: int = 3) -> List[Row]:
    # The small model runs for a tenth of a second: each of its processes runs it over and
    # over, so that its figure, like the big one's, is an average over seconds of CPU and not
    # the luckiest tenth of a second of many.
    again = max(1, min(20, subjects // (small * 5)))
    # The sizes take turns (small, big, small, big, ..., small): the machine's speed drifts
    # over tens of seconds, and each big process is compared with the small ones around it.
    bigs = []
    littles = [measure("run", small, ticks, seed, again)]
    for _ in range(max(1, rounds)):
        bigs.append(measure("run", subjects, ticks, seed))
        littles.append(measure("run", small, ticks, seed, again))

    def per_event(r: dict) -> float:
        return float(r["elapsed"]) / max(int(r["events"]), 1)

    ratios = [
        per_event(big) / ((per_event(littles[k]) + per_event(littles[k + 1])) / 2)
        for k, big in enumerate(bigs)
    ]
    # The worst round is the figure: every run of a large population must hold the target.
    worst = max(range(len(bigs)), key=lambda k: ratios[k])
    big = bigs[worst]
    little_cost = (per_event(littles[worst]) + per_event(littles[worst + 1])) / 2
    hold = measure("hold", subjects, ticks, seed)
    cost_ratio = ratios[worst]
    # Peak memory does not drift with the machine's speed: the largest of the big processes.
    peak = max(float(r["peak_mib"]) for r in bigs)
    memory_ratio = peak / hold["peak_mib"]
    each = ", ".join(f"{r:.2f}x" for r in ratios)
    return [
        (
            f"banking {subjects:,}x{ticks:,}: cost/event vs {small:,} subjects",
            f"worst of {len(bigs)} runs ({each}): {per_event(big) * 1e6:.2f}us "
            f"({big['events'] / big['elapsed']:,.0f} ev/s, {big['events']:,} ev, "
            f"{big['elapsed']:.0f}s, {big.get('huge_mib', 0):.0f} MiB on huge pages)",
            f"{little_cost * 1e6:.2f}us ({littles[worst]['events']:,} ev in {again} runs, "
            "mean of the runs before and after)",
            cost_ratio,
            "<= 1.3x",
            cost_ratio <= 1.3,
        ),
        (
            f"banking {subjects:,}x{ticks:,}: peak memory vs holding the subjects",
            f"{peak:.0f} MiB",
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
    parser.add_argument(
        "--rounds", type=int, default=3, help="measurements (big processes); the worst counts"
    )
    parser.add_argument("--child", choices=("run", "hold"), help=argparse.SUPPRESS)
    parser.add_argument("--times", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.subjects, args.ticks, args.seed, args.times)
        return
    print_table(run(args.subjects, args.ticks, args.small, args.seed, args.rounds))


if __name__ == "__main__":
    main()
