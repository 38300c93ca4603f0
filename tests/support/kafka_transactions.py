"""Reading a Kafka topic at an isolation level, and what the test broker does with aborted
transactions, for the tests of the Kafka sink's transactions."""

import json
import time
import uuid
import warnings
from typing import Any, Dict, List

from support.kafka_fixtures import create_topic, read_all


def read_values(bootstrap: str, topic: str, isolation: str, settle: float = 1.0) -> List[Any]:
    """The JSON values of a one-partition topic, in order, as a consumer at ``isolation``
    (``read_committed`` or ``read_uncommitted``) reads them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level=isolation,
    )
    try:
        part = TopicPartition(topic, 0)
        consumer.assign([part])
        consumer.seek_to_beginning(part)
        values: List[Any] = []
        quiet_since = time.monotonic()
        deadline = quiet_since + 60
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200, max_records=50000)
            got = [record for records in batch.values() for record in records]
            values.extend(json.loads(record.value) for record in got)
            if got:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                break
        return values
    finally:
        consumer.close()


def hides_aborted_records(bootstrap: str) -> bool:
    """Whether a ``read_committed`` consumer of this broker skips the records of an aborted
    transaction, as Apache Kafka does (Tansu hands them out)."""
    from confluent_kafka import Producer

    topic = create_topic(bootstrap)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": uuid.uuid4().hex})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b'"aborted"')
    producer.flush(30)
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, b'"committed"')
    producer.flush(30)
    producer.commit_transaction(30)
    read_all(bootstrap, topic, expected=1, settle=0.3)  # both on the broker
    return read_values(bootstrap, topic, "read_committed", settle=0.5) == ["committed"]


def by_event_id(values: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    return {value["event_id"]: value for value in values}
