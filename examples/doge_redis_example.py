"""The banking model appending to a Redis stream, one entry per event.

    python examples/doge_redis_example.py [--url redis://HOST:PORT/DB] [--stream NAME]
        [--maxlen N] [--subjects N] [--ticks N] [--seed S]

The server defaults to $DOGE_REDIS_URL, else redis://localhost:6379/0. Each entry holds the
user id (field ``key``) and the event's fields (timestamp, user_id, balance, loan_balance,
event). Read them with ``redis-cli XRANGE doge_events - + COUNT 10``.
"""

import argparse
import os
import sys

from doge_example_common import add_run_arguments, run_into, user_row

from doge_datagen import RedisStreamSinkFactory, Transition


def key_function(subject, transition: Transition) -> str:
    return str(subject.user_id)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url", default=os.environ.get("DOGE_REDIS_URL", "redis://localhost:6379/0")
    )
    parser.add_argument("--stream", default="doge_events")
    parser.add_argument("--maxlen", type=int, default=None, help="keep about this many entries")
    add_run_arguments(parser)
    args = parser.parse_args()

    factory = RedisStreamSinkFactory(args.url)
    sink = factory.create(args.stream, key_function, user_row, maxlen=args.maxlen)
    return run_into(sink, args)


if __name__ == "__main__":
    sys.exit(main())
