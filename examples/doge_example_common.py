"""The banking model of the README, shared by every example.

The model itself lives in ``doge_datagen.demo`` so that the ``doge-datagen demo`` command and
these examples run the very same thing; each example only decides where the events go. Read
``doge_datagen/demo.py`` for the states, transitions, subjects and callbacks.
"""

import argparse
import os
import sys
import time
from typing import Any, List

# Run from a checkout without installing: make the package importable.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from doge_datagen import DataOnlineGenerator, DogeError, EventSink  # noqa: E402
from doge_datagen.demo import (  # noqa: E402
    STATES,
    User,
    UserFactory,
    banking_generator,
    make_callbacks,
    user_row,
)

create_example_data_online_generator = banking_generator

__all__ = [
    "STATES",
    "User",
    "UserFactory",
    "add_run_arguments",
    "banking_into",
    "create_example_data_online_generator",
    "make_callbacks",
    "run_into",
    "timestamp_start",
    "user_row",
]


def banking_into(sink: EventSink, **kwargs: Any) -> DataOnlineGenerator:
    """The banking model with all four streams going to ``sink``, each event once.

    The model sends some moves to several streams (a spending to trx and balance, a loan to
    clickstream, loan and balance); when one sink plays every role, it must still get each
    event once, not once per role.
    """
    datagen = create_example_data_online_generator(sink, sink, sink, sink, **kwargs)
    for transition in datagen.transitions:
        distinct: List[EventSink] = []
        for each in transition.event_sinks:
            if not any(each is seen for seen in distinct):
                distinct.append(each)
        transition.event_sinks = distinct
    return datagen


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--timestamp-start",
        type=int,
        default=None,
        help="epoch ms of the first tick (default: now, rounded down to the minute)",
    )


def timestamp_start(args: argparse.Namespace) -> int:
    if args.timestamp_start is not None:
        return args.timestamp_start
    return int(time.time()) // 60 * 60000


def run_into(sink: EventSink, args: argparse.Namespace) -> int:
    """Run the banking model with every stream going to ``sink`` (each event once); print the
    summary."""
    datagen = banking_into(
        sink,
        subjects_num=args.subjects,
        ticks_num=args.ticks,
        timestamp_start=timestamp_start(args),
        seed=args.seed,
    )
    try:
        summary = datagen.start()
    except DogeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary)
    return 0
