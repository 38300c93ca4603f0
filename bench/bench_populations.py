"""Several populations (a ``World``): what the second population costs per event, what two
workers give the payments world, and the memory of a long run with many messages.

    python bench/bench_populations.py [--subjects 200000] [--ticks 1440] [--rounds 3]
        [--payments-ticks 120] [--messages-ticks 2000]

Three rows, each a ratio of two runs measured here, one right after the other:

- **two populations against one**: the banking model's subjects split into two populations of
  the same machine (states renamed apart), against one population of all of them, into
  counting sinks; CPU time per event, best of ``--rounds``. Both give the same number of
  events (checked): a subject's draws depend on its global index and its state's table only.
  Target: at most 1.2x.
- **payments, two workers against one process**: ``tests/support/world_models.py``'s payments
  world (transfers between users, handled a tick later) at ``--subjects`` users for
  ``--payments-ticks`` ticks (a tick is about a million events and messages at 200,000 users),
  with ``run_sharded(shards=2)`` against ``start()``, wall time, best of ``--rounds``; the two
  write the same number of lines. Target: at least 1.5x.
- **memory of messages**: a world whose users send 1,000 messages per tick of 1 ms (a million
  messages per simulated second), run for ``--messages-ticks`` and for 4 times as many, each
  in a fresh interpreter; the peak resident memory of the long run against the short one.
  Messages live for one tick, so it should not grow with the run: target at most 1.1x.
"""

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, List, Tuple

from common import ROOT, Row, print_table

from doge_datagen import CountingSink, DataOnlineGenerator, World
from doge_datagen.demo import banking_generator
from doge_datagen.distributed import run_sharded

sys.path.insert(0, os.path.join(ROOT, "tests"))
from support import world_models  # noqa: E402


def _renamed(model: DataOnlineGenerator, suffix: str, subjects: int) -> DataOnlineGenerator:
    """The same machine with every state renamed ``STATE_SUFFIX`` and ``subjects`` subjects."""
    copy = DataOnlineGenerator(
        [f"{s}_{suffix}" for s in model.states],
        f"{model.initial_state}_{suffix}",
        model.subject_factory,
        subjects,
        model.tick_ms,
        model.ticks_num,
        model.timestamp_start,
    )
    for t in model.transitions:
        copy.add_transition(
            t.trigger,
            f"{t.from_state}_{suffix}",
            f"{t.to_state}_{suffix}",
            t.probability,
            t.action_callback,
            t.event_sinks,
        )
    copy.random = model.random  # the callbacks draw from the model they were written for
    return copy


def one_population(subjects: int, ticks: int) -> Any:
    sink = CountingSink()
    return banking_generator(sink, sink, sink, sink, subjects_num=subjects, ticks_num=ticks, seed=1)


def two_populations(subjects: int, ticks: int) -> Any:
    sink = CountingSink()
    model = banking_generator(
        sink, sink, sink, sink, subjects_num=subjects, ticks_num=ticks, seed=1
    )
    world = World(model.tick_ms, ticks, model.timestamp_start, seed=1)
    # The banking callbacks and factory hold the model's datagen.random: the world keys it.
    world.random = model.random
    half = subjects // 2
    first = _renamed(model, "a", half)
    second = _renamed(model, "b", subjects - half)
    world.add_population("early", first)
    world.add_population("late", second)
    return world


def _cpu(build: Any) -> Tuple[float, int]:
    model = build()
    began = time.process_time()
    summary = model.start()
    return time.process_time() - began, summary.events


def two_against_one(subjects: int, ticks: int, rounds: int) -> Row:
    best = {"two": float("inf"), "one": float("inf")}
    events = {}
    for _ in range(rounds):
        for side, build in (
            ("two", lambda: two_populations(subjects, ticks)),
            ("one", lambda: one_population(subjects, ticks)),
        ):
            seconds, events[side] = _cpu(build)
            best[side] = min(best[side], seconds)
    assert events["two"] == events["one"], events
    per = {side: best[side] / events[side] * 1e6 for side in best}
    ratio = per["two"] / per["one"]
    return (
        f"two populations vs one, per event ({events['one']:,} events)",
        f"{per['two']:.3f} us/event",
        f"{per['one']:.3f} us/event",
        ratio,
        "<= 1.2x",
        ratio <= 1.2,
    )


def _lines(folder: str) -> int:
    total = 0
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "rb") as f:
            total += sum(1 for _ in f)
    return total


def payments_two_workers(users: int, ticks: int, rounds: int) -> Row:
    best = {"sharded": float("inf"), "single": float("inf")}
    lines = {}
    for _ in range(rounds):
        for side in ("sharded", "single"):
            with tempfile.TemporaryDirectory() as folder:
                build = functools.partial(world_models.payments, folder, users, ticks, 5)
                began = time.perf_counter()
                if side == "sharded":
                    run_sharded(build, shards=2)
                else:
                    build().start()
                best[side] = min(best[side], time.perf_counter() - began)
                lines[side] = _lines(folder)
    assert lines["sharded"] == lines["single"], lines
    ratio = best["single"] / best["sharded"]
    return (
        f"payments world, {users:,} users x {ticks:,} ticks, 2 workers vs 1 process",
        f"{best['sharded']:.2f} s",
        f"{best['single']:.2f} s",
        ratio,
        ">= 1.5x",
        ratio >= 1.5,
    )


_MESSAGES = """
import resource, sys
from doge_datagen import CountingSink, DataOnlineGenerator, World
ticks = int(sys.argv[1])
world = World(1, ticks, 0, seed=1)
users = DataOnlineGenerator(["on"], "on", lambda index: index, 1_000, 1, ticks)
sink = CountingSink()
def ping(subject, transition):
    world.send(world.pick("users"), "ping", n=subject)
    return True
users.add_transition("ping", "on", "on", 100, ping)
world.add_population("users", users, receive=lambda s, m: True, receive_sinks=[sink])
summary = world.start()
print(summary.messages["delivered"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def messages_memory(ticks: int) -> Row:
    peak = {}
    delivered = {}
    for n in (ticks, 4 * ticks):
        done = subprocess.run(
            [sys.executable, "-c", _MESSAGES, str(n)], capture_output=True, text=True, check=True
        )
        count, rss = done.stdout.split()
        delivered[n], peak[n] = int(count), int(rss)
    assert delivered[4 * ticks] == 4 * delivered[ticks] == 4_000 * ticks, delivered
    ratio = peak[4 * ticks] / peak[ticks]
    return (
        f"1M messages per simulated second: peak memory, {4 * ticks:,} vs {ticks:,} ticks",
        f"{peak[4 * ticks] / 1024:.0f} MB",
        f"{peak[ticks] / 1024:.0f} MB",
        ratio,
        "<= 1.1x",
        ratio <= 1.1,
    )


def run(
    subjects: int = 200_000,
    ticks: int = 1440,
    rounds: int = 3,
    messages_ticks: int = 2000,
    payments_ticks: int = 120,
) -> List[Row]:
    return [
        two_against_one(subjects, ticks, rounds),
        payments_two_workers(subjects, payments_ticks, rounds),
        messages_memory(messages_ticks),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=200_000)
    parser.add_argument("--ticks", type=int, default=1440)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages-ticks", type=int, default=2000)
    parser.add_argument("--payments-ticks", type=int, default=120)
    args = parser.parse_args()
    rows = run(args.subjects, args.ticks, args.rounds, args.messages_ticks, args.payments_ticks)
    print_table(rows)


if __name__ == "__main__":
    main()
