"""The banking model publishing JSON messages to a RabbitMQ exchange, routed by user id.

    python examples/doge_rabbitmq_example.py [--url amqp://USER:PASS@HOST:PORT/]
        [--exchange NAME] [--queue NAME] [--subjects N] [--ticks N] [--seed S]

The server defaults to $DOGE_AMQP_URL, else amqp://guest:guest@localhost:5672/. The example
first declares a topic exchange and a queue bound to it for every routing key (the sink
itself declares nothing: a message no queue takes is returned and counted as failed), then
publishes with publisher confirms.
"""

import argparse
import os
import sys

import pika
from doge_example_common import add_run_arguments, run_into, user_row

from doge_datagen import RabbitMQSinkFactory, Transition


def key_function(subject, transition: Transition) -> str:
    return str(subject.user_id)


def declare(url: str, exchange: str, queue: str) -> None:
    """A topic exchange and a durable queue taking every routing key."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.exchange_declare(exchange, "topic", durable=True)
        channel.queue_declare(queue, durable=True)
        channel.queue_bind(queue, exchange, "#")
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("DOGE_AMQP_URL", "amqp://guest:guest@localhost:5672/"),
    )
    parser.add_argument("--exchange", default="doge_events")
    parser.add_argument("--queue", default="doge_events")
    add_run_arguments(parser)
    args = parser.parse_args()

    declare(args.url, args.exchange, args.queue)
    factory = RabbitMQSinkFactory(args.url)
    sink = factory.create(args.exchange, key_function, user_row)
    return run_into(sink, args)


if __name__ == "__main__":
    sys.exit(main())
