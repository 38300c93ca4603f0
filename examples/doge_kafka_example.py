"""The banking model producing JSON records to a Kafka topic.

    python examples/doge_kafka_example.py [--bootstrap-servers HOST:PORT] [--topic NAME]
        [--subjects N] [--ticks N] [--seed S] [--conf KEY=VALUE ...]

The broker address defaults to $DOGE_KAFKA_BOOTSTRAP, else localhost:9092. Every event of
the model (logins, loan screens, loans, balance changes) goes to the one topic, keyed by user.
"""

import argparse
import json
import os
import sys
from typing import Dict, List, Optional

from doge_example_common import User, add_run_arguments, run_into

from doge_datagen import KafkaSinkFactory, Transition

__all__ = ["add_run_arguments", "key_function", "key_values", "run_into", "value_function"]


def key_function(subject: User, transition: Transition) -> str:
    return str(subject.user_id)


def value_function(timestamp: int, subject: User, transition: Transition) -> str:
    value = {
        "timestamp": timestamp,
        "user": {
            "user_id": subject.user_id,
            "balance": subject.balance,
            "loan_balance": subject.loan_balance,
        },
        "event": transition.trigger,
    }
    return json.dumps(value)


def key_values(pairs: Optional[List[str]]) -> Dict[str, str]:
    """``["security.protocol=SASL_SSL", ...]`` as a dict."""
    settings = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"expected KEY=VALUE, got {pair!r}")
        settings[key.strip()] = value
    return settings


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("DOGE_KAFKA_BOOTSTRAP", "localhost:9092"),
        help="comma-separated host:port list (default: $DOGE_KAFKA_BOOTSTRAP or localhost:9092)",
    )
    parser.add_argument("--topic", default="test_topic")
    parser.add_argument(
        "--conf",
        action="append",
        metavar="KEY=VALUE",
        help="a librdkafka setting, e.g. security.protocol=SASL_SSL (repeatable)",
    )
    add_run_arguments(parser)
    args = parser.parse_args()

    factory = KafkaSinkFactory(
        args.bootstrap_servers, "doge-kafka-example", conf=key_values(args.conf)
    )
    sink = factory.create(args.topic, key_function, value_function)
    return run_into(sink, args)


if __name__ == "__main__":
    sys.exit(main())
