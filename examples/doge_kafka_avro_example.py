"""The banking model producing Avro records (Confluent wire format) to a Kafka topic.

    python examples/doge_kafka_avro_example.py [--bootstrap-servers HOST:PORT]
        [--schema-registry URL] [--topic NAME] [--subjects N] [--ticks N] [--seed S]

The broker address defaults to $DOGE_KAFKA_BOOTSTRAP, else localhost:9092; the Schema
Registry to $DOGE_SCHEMA_REGISTRY_URL, else http://localhost:8081 (``mock://`` uses an
in-memory registry). Keys and values follow avro/Key.avsc and avro/Event.avsc.
"""

import argparse
import os
import sys
from typing import Any, Dict

from doge_example_common import User, add_run_arguments, run_into
from doge_kafka_example import key_values

from doge_datagen import KafkaAvroSinkFactory, Transition

AVRO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "avro")


def key_function(subject: User, transition: Transition) -> Dict[str, Any]:
    return {"key": str(subject.user_id)}


def value_function(timestamp: int, subject: User, transition: Transition) -> Dict[str, Any]:
    value = {
        "timestamp": timestamp,
        "user": {
            "userId": str(subject.user_id),
            "balance": str(subject.balance),
            "loanBalance": str(subject.loan_balance),
        },
        "event": transition.trigger,
    }
    return value


def get_schema(name: str) -> str:
    with open(os.path.join(AVRO_DIR, name), encoding="utf-8") as f:
        return f.read()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("DOGE_KAFKA_BOOTSTRAP", "localhost:9092"),
        help="comma-separated host:port list (default: $DOGE_KAFKA_BOOTSTRAP or localhost:9092)",
    )
    parser.add_argument(
        "--schema-registry",
        default=os.environ.get("DOGE_SCHEMA_REGISTRY_URL", "http://localhost:8081"),
        help="Schema Registry URL (default: $DOGE_SCHEMA_REGISTRY_URL or http://localhost:8081)",
    )
    parser.add_argument("--topic", default="test_avro_topic")
    parser.add_argument(
        "--conf",
        action="append",
        metavar="KEY=VALUE",
        help="a librdkafka setting, e.g. security.protocol=SASL_SSL (repeatable)",
    )
    parser.add_argument(
        "--registry-conf",
        action="append",
        metavar="KEY=VALUE",
        help="a Schema Registry client setting, e.g. basic.auth.user.info=USER:SECRET",
    )
    add_run_arguments(parser)
    args = parser.parse_args()

    key_schema = get_schema("Key.avsc")
    event_schema = get_schema("Event.avsc")
    factory = KafkaAvroSinkFactory(
        args.bootstrap_servers,
        args.schema_registry,
        "doge-kafka-example",
        conf=key_values(args.conf),
        schema_registry_conf=key_values(args.registry_conf),
    )
    sink = factory.create(args.topic, key_function, key_schema, value_function, event_schema)
    return run_into(sink, args)


if __name__ == "__main__":
    sys.exit(main())
