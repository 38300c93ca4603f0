"""One core, end to end: ``doge-datagen demo --sink jsonl:PATH`` against an earlier release.

    python bench/bench_demo.py [--subjects 100000] [--ticks 1440] [--reference COMMIT] [--rounds 3]

The reference is the package as it was at ``--reference`` (default: the commit before the
single-core speed-up), exported from git into a temporary directory and run with
``PYTHONPATH`` pointing there, by the same interpreter, in the same run. Both sides run the
same command as separate processes, alternately, best of ``--rounds``; a figure is events per
second of the whole process (start-up, subject creation, the run and the file's last write),
counted in the process's CPU time (user + system): on a machine shared with other work the
wall clock measures the neighbours as much as the program; both are shown.
Target: at least 2.5x the reference.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

from common import ROOT, Row, print_table

#: The last commit before the single-core work: the "release" the target compares against.
REFERENCE_COMMIT = "b1cb2be"


def export(commit: str, into: str) -> str:
    """The package at ``commit``, extracted under ``into``; returns the directory for PYTHONPATH."""
    archive = subprocess.run(
        ["git", "-C", ROOT, "archive", "--format=tar", commit, "doge_datagen"],
        capture_output=True,
        check=True,
    ).stdout
    os.makedirs(into, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return into


def demo_once(
    pythonpath: Optional[str], subjects: int, ticks: int, path: str, extra: Tuple[str, ...] = ()
) -> Tuple[float, float, int]:
    """CPU and wall-clock seconds of one demo process, and the events it reported.

    The process runs in the directory of ``path``, so that ``-m`` finds the package on
    ``PYTHONPATH`` (the reference) or installed (ours), never the checkout in the current
    directory.
    """
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    else:
        env.pop("PYTHONPATH", None)
    command = [
        sys.executable,
        "-m",
        "doge_datagen",
        "demo",
        "--subjects",
        str(subjects),
        "--ticks",
        str(ticks),
        "--seed",
        "1",
        "--timestamp-start",
        "0",
        "--no-progress",
        "--sink",
        f"jsonl:{path}",
        *extra,
    ]
    before = os.times()
    began = time.perf_counter()
    out = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=os.path.dirname(path)
    )
    took = time.perf_counter() - began
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {out.stderr.strip()}")
    found = re.search(r"(\d+) events from", out.stdout + out.stderr)
    if not found:
        raise RuntimeError(f"no summary in the demo's output: {out.stdout!r} {out.stderr!r}")
    return cpu, took, int(found.group(1))


def count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def run(subjects: int, ticks: int, reference: str = REFERENCE_COMMIT, rounds: int = 3) -> List[Row]:
    with tempfile.TemporaryDirectory(prefix="doge-bench-demo-") as tmp:
        ref_root = export(reference, os.path.join(tmp, "ref"))
        cpu: Dict[str, float] = {"ours": float("inf"), "ref": float("inf")}
        wall: Dict[str, float] = {"ours": float("inf"), "ref": float("inf")}
        events: Dict[str, int] = {}
        lines: Dict[str, int] = {}
        for _ in range(rounds):
            for side in ("ref", "ours"):
                path = os.path.join(tmp, f"{side}.jsonl")
                used, took, n = demo_once(
                    ref_root if side == "ref" else None, subjects, ticks, path
                )
                cpu[side] = min(cpu[side], used)
                wall[side] = min(wall[side], took)
                events[side] = n
                lines[side] = count_lines(path)
                os.unlink(path)
    for side in ("ref", "ours"):
        if lines[side] != events[side]:
            raise RuntimeError(f"{side}: {lines[side]} lines written for {events[side]} events")
    rate = {side: events[side] / cpu[side] for side in cpu}
    ratio = rate["ours"] / rate["ref"]
    return [
        (
            f"demo --sink jsonl {subjects:,}x{ticks:,}, one core (CPU s), vs {reference}",
            f"{rate['ours']:,.0f} ev/s ({events['ours']:,} ev, {cpu['ours']:.2f}s CPU, "
            f"{wall['ours']:.2f}s wall)",
            f"{rate['ref']:,.0f} ev/s ({events['ref']:,} ev, {cpu['ref']:.2f}s CPU, "
            f"{wall['ref']:.2f}s wall)",
            ratio,
            ">= 2.5x",
            ratio >= 2.5,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--ticks", type=int, default=1_440)
    parser.add_argument("--reference", default=REFERENCE_COMMIT)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print_table(run(args.subjects, args.ticks, args.reference, args.rounds))


if __name__ == "__main__":
    main()
