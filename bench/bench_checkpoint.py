"""Checkpoints: what writing one every ``--every`` seconds costs a run of the banking demo, how
large one is, and how long a resume takes to start.

    python bench/bench_checkpoint.py [--subjects 1000000] [--ticks 20000] [--every 10] [--rounds 1]

The same run (one-minute ticks, a counting sink) without checkpoints and with them, alternately,
best of ``--rounds``, in this process. The checkpoint is written to a temporary directory (the
disk the system's temporary files are on). Then the run is stopped half-way with a
checkpoint, and a second model resumes from it and stops at its first busy tick: that time is
the resume's start (reading the file, the subjects, the pending moves).
Targets: at most 1.05x with checkpoints; a resume of a million subjects starts in under 2 s.
"""

import argparse
import os
import sys
import tempfile
import time
from typing import List

from common import Row, banking, print_table


def run(subjects: int, ticks: int, checkpoint=None, every=None):
    datagen, _ = banking(subjects, ticks)
    began = time.perf_counter()
    summary = datagen.start(checkpoint=checkpoint, checkpoint_every=every)
    elapsed = time.perf_counter() - began
    return elapsed, summary, datagen


def stopped_half_way(subjects: int, ticks: int, path: str) -> int:
    """A run stopped at its middle tick, with a checkpoint there; returns that tick."""
    datagen, _ = banking(subjects, ticks)
    logout = next(t for t in datagen.transitions if t.trigger == "logout")
    half = datagen.timestamp_start + ticks // 2 * datagen.tick_ms

    def stop_there(subject, transition):
        if datagen.timestamp >= half:
            datagen.stop()
        return True

    logout.action_callback = stop_there
    return datagen.start(checkpoint=path, checkpoint_every=None).ticks


def resume_start(subjects: int, ticks: int, path: str) -> float:
    """Seconds from start(resume=...) to the end of the first busy tick after the checkpoint."""
    datagen, _ = banking(subjects, ticks)
    logout = next(t for t in datagen.transitions if t.trigger == "logout")
    seen = []

    def stop_at_once(subject, transition):
        if not seen:
            seen.append(time.perf_counter())
            datagen.stop()
        return True

    logout.action_callback = stop_at_once
    began = time.perf_counter()
    datagen.start(resume=path)
    return seen[0] - began


def measure(subjects: int, ticks: int, every: float = 10.0, rounds: int = 1) -> List[Row]:
    """The rows: a checkpoint every ``every`` seconds against none, and a resume's start."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "run.ckpt")
        plain, checked = float("inf"), float("inf")
        written, write_seconds = 0, 0.0
        for _ in range(rounds):
            plain = min(plain, run(subjects, ticks)[0])
            elapsed, _, datagen = run(subjects, ticks, path, every)
            if elapsed < checked:
                checked = elapsed
                keeper = datagen._last_run.checkpointer
                written, write_seconds = keeper.written, keeper.seconds
        tick = stopped_half_way(subjects, ticks, path)
        size = os.path.getsize(path)
        start = resume_start(subjects, ticks, path)
    ratio = checked / plain
    print(
        f"{subjects} subjects, {ticks} ticks: {plain:.1f} s without checkpoints, "
        f"{checked:.1f} s with one every {every:g} s ({written} written, "
        f"{write_seconds / max(written, 1):.2f} s each); checkpoint at tick {tick}: "
        f"{size / 1e6:.1f} MB ({size / subjects:.1f} bytes per subject); resume to the "
        f"first busy tick: {start:.2f} s"
    )
    return [
        (
            f"checkpoint every {every:g} s, {subjects:,} subjects",
            f"{checked:.1f} s",
            f"{plain:.1f} s",
            ratio,
            "<= 1.05x",
            ratio <= 1.05,
        ),
        ("resume start", f"{start:.2f} s", "2 s", start / 2.0, "<= 1.00x", start <= 2.0),
    ]


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    rows = measure(args.subjects, args.ticks, args.every, args.rounds)
    print_table(rows)
    return 0 if all(row[-1] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
