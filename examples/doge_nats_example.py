"""The banking model publishing JSON messages to NATS JetStream, one subject token per user.

    python examples/doge_nats_example.py [--url nats://HOST:PORT] [--subject PREFIX]
        [--stream NAME] [--subjects N] [--ticks N] [--seed S]

The server defaults to $DOGE_NATS_URL, else nats://localhost:4222. The example first creates
the stream if it is missing (capturing ``PREFIX`` and ``PREFIX.>``; the sink itself creates
nothing), then publishes every event to ``PREFIX.USER_ID``; each counts as delivered when
the stream acknowledges it. Read them with ``nats stream view DOGE_EVENTS``.
"""

import argparse
import asyncio
import os
import sys

import nats
from doge_example_common import add_run_arguments, run_into, user_row
from nats.js.errors import NotFoundError

from doge_datagen import NatsSinkFactory, Transition


def key_function(subject, transition: Transition) -> str:
    return str(subject.user_id)


async def ensure_stream(url: str, stream: str, subject: str) -> None:
    connection = await nats.connect(url)
    try:
        js = connection.jetstream()
        try:
            await js.stream_info(stream)
        except NotFoundError:
            await js.add_stream(name=stream, subjects=[subject, f"{subject}.>"])
    finally:
        await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=os.environ.get("DOGE_NATS_URL", "nats://localhost:4222"))
    parser.add_argument("--subject", default="doge.events")
    parser.add_argument("--stream", default="DOGE_EVENTS")
    add_run_arguments(parser)
    args = parser.parse_args()

    asyncio.run(ensure_stream(args.url, args.stream, args.subject))
    factory = NatsSinkFactory(args.url)
    sink = factory.create(args.subject, key_function, user_row, stream=args.stream)
    return run_into(sink, args)


if __name__ == "__main__":
    sys.exit(main())
