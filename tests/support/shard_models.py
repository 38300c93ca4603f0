"""Models for the sharded-run tests, built in every worker (by reference, so importable).

``demo(*argv)`` is exactly what ``doge-datagen demo ARGV`` runs; the others add a fault.
"""

import os
import time
from pathlib import Path
from typing import Any, Optional

from doge_datagen import CountingSink, DataOnlineGenerator, InMemorySink
from doge_datagen.cli.main import build_parser, demo_model
from doge_datagen.demo import banking_generator


def demo_args(*argv: str) -> Any:
    args = build_parser().parse_args(["demo", "--no-progress", *argv])
    args.timestamp_start = args.timestamp_start if args.timestamp_start is not None else 0
    if args.ticks is None and not args.forever:
        args.ticks = 1440
    return args


def demo(*argv: str) -> DataOnlineGenerator:
    """The banking demo with ``doge-datagen demo`` options, e.g. ``--sink jsonl:PATH``."""
    return demo_model(demo_args(*argv))


def unseeded(path: str, subjects: int) -> DataOnlineGenerator:
    """The demo into JSON Lines at ``path``, with neither a seed nor a first tick: a process
    that built it alone would draw its own seed and read its own clock."""
    datagen = demo("--sink", f"jsonl:{path}", "--subjects", str(subjects))
    datagen.timestamp_start = None
    return datagen


def placed_by_environment() -> DataOnlineGenerator:
    """The demo into JSON Lines in the folder ``DOGE_TEST_OUT`` names, read as it is built."""
    return demo("--sink", f"jsonl:{os.environ['DOGE_TEST_OUT']}/ev.jsonl", "--subjects", "60")


def counting() -> DataOnlineGenerator:
    """The demo into one counting sink: 10 subjects, 1,000 ticks and seed 1, unless the run
    overrides them."""
    sink = CountingSink()
    return banking_generator(sink, sink, sink, sink, subjects_num=10, seed=1)


def failing(bad_subject: int, *argv: str) -> DataOnlineGenerator:
    """The demo, whose callbacks raise when subject ``bad_subject`` logs in."""
    datagen = demo(*argv)

    def login(subject: Any, transition: Any) -> bool:
        if subject.user_id == bad_subject:
            raise ZeroDivisionError(f"user {bad_subject} cannot log in")
        return True

    for transition in datagen.transitions:
        if transition.trigger == "login":
            transition.action_callback = login
    return datagen


def leaving_pid(pid_dir: str, *argv: str) -> DataOnlineGenerator:
    """The demo, and this worker's process id in ``pid_dir/<shard>.pid`` once it runs."""
    from doge_datagen.core import shards

    shard = shards.current()
    if shard is not None:
        Path(pid_dir, f"{shard.index}.pid").write_text(str(os.getpid()))
    return demo(*argv)


def memory(subjects: int, seed: int, slow: Optional[float] = None) -> DataOnlineGenerator:
    """A small model into an in-memory sink (nothing leaves the worker but the summary)."""
    sink = InMemorySink()
    datagen: DataOnlineGenerator[Any] = DataOnlineGenerator(
        ["a", "b"], "a", lambda index: {"id": index}, subjects, 1000, 50, seed=seed
    )

    def nap(subject: Any, transition: Any) -> bool:
        if slow:
            time.sleep(slow)
        return True

    datagen.add_transition("ab", "a", "b", 30, action_callback=nap, event_sinks=[sink])
    datagen.add_transition("ba", "b", "a", 30, event_sinks=[sink])
    return datagen


def late(late_shard: int, seconds: float, *argv: str) -> DataOnlineGenerator:
    """The demo; shard ``late_shard`` is built ``seconds`` late (a slow worker to start)."""
    from doge_datagen.core import shards

    shard = shards.current()
    if shard is not None and shard.index == late_shard:
        time.sleep(seconds)
    return demo(*argv)
