"""KafkaSink and KafkaSinkFactory: records checked against a real Kafka-protocol broker.

Each run puts an ``InMemorySink`` right after the Kafka sink on the same transitions, so the
records read back from the broker can be compared one by one with what the sink was given.
"""

import importlib
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any, List, Optional, Tuple

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.serialization import SerializationContext, Serializer
from support.kafka_fixtures import create_topic, read_all, read_topic, shadow, unused_address

from doge_datagen import (
    ConfigurationError,
    DataOnlineGenerator,
    DeliveryError,
    InMemorySink,
    RecordError,
    SinkCloseError,
    Transition,
)
from doge_datagen.kafka_sink_factory import KafkaSink, KafkaSinkFactory

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
START = 1_700_000_000_000  # a timestamp of 0 would read as "now" to librdkafka
ROLES = ("clickstream", "trx", "balance", "loan")


def example_module(name: str) -> Any:
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


def banking_model(sinks: List[Any], subjects: int, ticks: int, seed: int) -> DataOnlineGenerator:
    common = example_module("doge_example_common")
    return common.create_example_data_online_generator(
        *sinks, subjects_num=subjects, ticks_num=ticks, timestamp_start=START, seed=seed
    )


# The key and value functions of the README.
def key_function(subject: Any, transition: Transition) -> str:
    return str(subject.user_id)


def value_function(timestamp: int, subject: Any, transition: Transition) -> str:
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


def key_and_value(timestamp: int, subject: Any, transition: Transition) -> Tuple[str, str]:
    return key_function(subject, transition), value_function(timestamp, subject, transition)


def expected_records(memory: InMemorySink) -> List[Tuple[bytes, bytes, int]]:
    return [(e.value[0].encode(), e.value[1].encode(), e.timestamp) for e in memory.events]


def as_tuples(records: List[Any]) -> List[Tuple[Optional[bytes], bytes, int]]:
    return [(r.key, r.value, r.timestamp) for r in records]


# -- against the broker ----------------------------------------------------------------------


@pytest.mark.kafka
def test_banking_run_arrives_record_by_record(kafka_bootstrap: str) -> None:
    topics = {role: create_topic(kafka_bootstrap) for role in ROLES}
    factory = KafkaSinkFactory([kafka_bootstrap], "doge-test")
    sinks = {role: factory.create(topics[role], key_function, value_function) for role in ROLES}
    assert len({id(sink.producer) for sink in sinks.values()}) == 1
    datagen = banking_model(list(sinks.values()), subjects=2000, ticks=500, seed=11)
    memories = {
        role: shadow(datagen, sinks[role], key_and_value, f"memory:{role}") for role in ROLES
    }

    summary = datagen.start()

    for role in ROLES:
        sink, memory = sinks[role], memories[role]
        assert sink.name == f"kafka:{topics[role]}"
        assert len(memory) > 0
        assert summary.events_per_sink[sink.name] == len(memory)
        assert (sink.produced, sink.delivered, sink.failed) == (len(memory), len(memory), 0)
        records = read_all(kafka_bootstrap, topics[role], expected=len(memory))
        assert as_tuples(records) == expected_records(memory)
        events = Counter(json.loads(r.value)["event"] for r in records)
        assert events == Counter(memory.triggers())


@pytest.mark.kafka
def test_order_per_key_across_partitions(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap, partitions=3)
    sink = KafkaSinkFactory(kafka_bootstrap, "doge-test").create(
        topic, key_function, value_function
    )
    datagen = banking_model([sink] * 4, subjects=1000, ticks=300, seed=5)
    memory = shadow(datagen, sink, key_and_value, "memory")

    summary = datagen.start()

    per_partition = read_topic(kafka_bootstrap, topic, expected=len(memory))
    assert sum(len(records) for records in per_partition.values()) == len(memory)
    assert summary.events_per_sink[sink.name] == len(memory)
    partition_of = {}
    for partition, records in per_partition.items():
        for record in records:
            assert partition_of.setdefault(record.key, partition) == partition
    assert len(set(partition_of.values())) > 1
    for partition, records in per_partition.items():
        wanted = [r for r in expected_records(memory) if partition_of.get(r[0]) == partition]
        assert as_tuples(records) == wanted


@pytest.mark.kafka
def test_full_queue_waits_instead_of_dropping(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap)
    factory = KafkaSinkFactory([kafka_bootstrap], "doge-test", buffer_size=20)
    sink = factory.create(topic, key_function, value_function)
    datagen = banking_model([sink] * 4, subjects=1000, ticks=300, seed=3)
    memory = shadow(datagen, sink, key_and_value, "memory")

    datagen.start()

    assert len(memory) > 20 * 10
    assert (sink.delivered, sink.failed) == (len(memory), 0)
    assert as_tuples(read_all(kafka_bootstrap, topic, expected=len(memory))) == expected_records(
        memory
    )


class TaggingSerializer(Serializer):
    """Writes ``topic/field/value``: shows the context each call received."""

    def __call__(self, obj: Any, ctx: Optional[SerializationContext] = None) -> Optional[bytes]:
        assert ctx is not None
        return f"{ctx.topic}/{ctx.field}/{obj}".encode()


@pytest.mark.kafka
def test_custom_serializers_and_records_without_key(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap)
    factory = KafkaSinkFactory([kafka_bootstrap], "doge-test")

    def odd_users_only(subject: Any, transition: Transition) -> Optional[int]:
        return subject.user_id if subject.user_id % 2 else None

    def trigger(timestamp: int, subject: Any, transition: Transition) -> str:
        return transition.trigger

    sink = factory.create(topic, odd_users_only, trigger, TaggingSerializer(), TaggingSerializer())
    datagen = banking_model([sink] * 4, subjects=300, ticks=300, seed=8)
    memory = shadow(
        datagen, sink, lambda ts, s, t: (odd_users_only(s, t), trigger(ts, s, t)), "memory"
    )

    datagen.start()

    records = read_all(kafka_bootstrap, topic, expected=len(memory))
    wanted = [
        (
            None if key is None else f"{topic}/key/{key}".encode(),
            f"{topic}/value/{value}".encode(),
            e.timestamp,
        )
        for e in memory.events
        for key, value in [e.value]
    ]
    assert as_tuples(records) == wanted
    assert any(r.key is None for r in records) and any(r.key is not None for r in records)


@pytest.mark.kafka
def test_conf_overrides_the_address_and_fractional_ticks_give_whole_timestamps(
    kafka_bootstrap: str,
) -> None:
    topic = create_topic(kafka_bootstrap)
    factory = KafkaSinkFactory(
        [unused_address()], "ignored", conf={"bootstrap.servers": kafka_bootstrap}
    )
    sink = factory.create(topic, lambda s, t: None, lambda ts, s, t: str(ts))
    datagen = DataOnlineGenerator(["a"], "a", object, 3, 333.3, 10, START, seed=1)
    datagen.add_transition("tick", "a", "a", 100, event_sinks=[sink])
    memory = shadow(datagen, sink, lambda ts, s, t: str(ts), "memory")

    datagen.start()

    records = read_all(kafka_bootstrap, topic, expected=len(memory))
    assert len(records) == len(memory) == 30
    assert all(type(e.timestamp) is int for e in memory.events)
    assert [e.timestamp - START for e in memory.events] == [
        round(tick * 333.3) for tick in range(10) for _ in range(3)
    ]
    assert [r.timestamp for r in records] == [e.timestamp for e in memory.events]
    assert [r.value.decode() for r in records] == [e.value for e in memory.events]


@pytest.mark.kafka
def test_a_second_run_reopens_the_sink(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap)
    sink = KafkaSinkFactory([kafka_bootstrap], "doge-test").create(
        topic, key_function, value_function
    )
    datagen = banking_model([sink] * 4, subjects=500, ticks=200, seed=2)
    memory = shadow(datagen, sink, key_and_value, "memory")

    first = datagen.start()
    after_first = len(memory)
    assert sink.closed and sink.delivered == after_first
    second = datagen.start()

    assert first.events_per_sink[sink.name] == after_first
    assert second.events_per_sink[sink.name] == len(memory) - after_first
    assert sink.delivered == len(memory) - after_first
    assert as_tuples(read_all(kafka_bootstrap, topic, expected=len(memory))) == expected_records(
        memory
    )


# -- failures --------------------------------------------------------------------------------


def test_unreachable_broker_fails_fast_at_the_start_before_any_event() -> None:
    """Nothing listens: the run fails within connect_timeout, naming the address, before a
    single event is generated (not after generating them all and a minute of retries)."""
    address = unused_address()
    factory = KafkaSinkFactory([address], "doge-test", connect_timeout=1.0)
    kafka = factory.create("events", key_function, value_function)
    others = [InMemorySink(key_and_value, name=role) for role in ROLES[1:]]
    datagen = banking_model([kafka, *others], subjects=500, ticks=300, seed=4)
    memory = shadow(datagen, kafka, key_and_value, "memory")

    with pytest.raises(DeliveryError) as raised:
        datagen.start()

    assert len(memory) == 0  # failed before the first event
    assert raised.value.sink == kafka.name
    assert address in str(raised.value) and "did not answer within 1 s" in str(raised.value)
    assert (raised.value.failed, raised.value.delivered) == (0, 0)
    for other in others:
        assert other.closed == 1 and len(other) == 0
    assert kafka.closed


def test_unreachable_broker_without_the_check_fails_every_record() -> None:
    """connect_timeout=None: records wait for the broker up to message.timeout.ms, then every
    one counts as failed and the other sinks keep theirs."""
    factory = KafkaSinkFactory(
        [unused_address()], "doge-test", conf={"message.timeout.ms": 1000}, connect_timeout=None
    )
    kafka = factory.create("events", key_function, value_function)
    others = [InMemorySink(key_and_value, name=role) for role in ROLES[1:]]
    datagen = banking_model([kafka, *others], subjects=500, ticks=300, seed=4)
    memory = shadow(datagen, kafka, key_and_value, "memory")
    reference = [InMemorySink(key_and_value, name=role) for role in ROLES]
    banking_model(reference, subjects=500, ticks=300, seed=4).start()

    with pytest.raises(DeliveryError) as raised:
        datagen.start()

    assert len(memory) == len(reference[0]) > 0
    assert raised.value.sink == kafka.name
    assert (raised.value.failed, raised.value.delivered) == (len(memory), 0)
    assert (kafka.produced, kafka.failed, kafka.delivered) == (len(memory), len(memory), 0)
    assert "_MSG_TIMED_OUT" in str(raised.value)
    assert str(len(memory)) in str(raised.value)
    for got, wanted in zip(others, reference[1:]):
        assert got.closed == 1
        assert [(e.timestamp, e.trigger, e.value) for e in got.events] == [
            (e.timestamp, e.trigger, e.value) for e in wanted.events
        ]
    kafka.close()  # idempotent: nothing new to report


def test_flush_timeout_counts_queued_records_as_failed() -> None:
    factory = KafkaSinkFactory(
        unused_address(),
        "doge-test",
        conf={"message.timeout.ms": 300000},
        flush_timeout=0.2,
        connect_timeout=None,
    )
    first = factory.create("one", key_function, value_function)
    second = factory.create("two", key_function, value_function)
    datagen = banking_model([first, second, first, second], subjects=300, ticks=300, seed=6)
    memory_first = shadow(datagen, first, key_and_value, "memory:one")
    memory_second = shadow(datagen, second, key_and_value, "memory:two")

    with pytest.raises(DeliveryError) as raised:
        datagen.start()

    assert raised.value.failed == len(memory_first) + len(memory_second) > 0
    assert raised.value.delivered == 0
    # The first sink gives up on its records; closing the last one purges the producer.
    assert isinstance(raised.value, SinkCloseError)
    first_error, second_error = raised.value.errors
    assert "still unacknowledged after the flush timeout of 0.2 s" in str(first_error)
    assert "were purged" in str(second_error)
    assert "_PURGE_QUEUE" in str(second_error)
    for sink, memory in ((first, memory_first), (second, memory_second)):
        assert (sink.failed, sink.delivered, sink.produced) == (len(memory), 0, len(memory))
        assert sink.closed and sink.producer is None
        sink.close()


def test_close_raises_once_then_is_quiet() -> None:
    factory = KafkaSinkFactory(
        [unused_address()], "doge-test", conf={"message.timeout.ms": 200}, connect_timeout=None
    )
    sink = factory.create("t", key_function, value_function)
    transition = Transition("login", "offline", "online", 1.0)
    subject = example_module("doge_example_common").User(7, 10, 0)
    for tick in range(5):
        sink.collect(START + tick, subject, transition)

    with pytest.raises(DeliveryError) as raised:
        sink.close()
    assert (raised.value.failed, raised.value.delivered) == (5, 0)
    sink.close()
    assert (sink.failed, sink.delivered) == (5, 0)


def test_records_that_cannot_be_serialized_name_topic_part_and_trigger() -> None:
    factory = KafkaSinkFactory([unused_address()], "doge-test", connect_timeout=None)
    subject = example_module("doge_example_common").User(1, 10, 0)
    transition = Transition("take_loan", "loan_screen", "online", 10)

    bad_value = factory.create("numbers", key_function, lambda ts, s, t: s.balance)
    with pytest.raises(RecordError, match=r"topic 'numbers'.*value.*'take_loan'"):
        bad_value.collect(START, subject, transition)

    bad_key = factory.create("keys", lambda s, t: s.user_id, value_function)
    with pytest.raises(RecordError, match=r"topic 'keys'.*key.*'take_loan'"):
        bad_key.collect(START, subject, transition)

    class Refusing(Serializer):
        def __call__(self, obj: Any, ctx: Optional[SerializationContext] = None) -> bytes:
            raise TypeError(f"cannot encode {obj!r}")

    refused = factory.create("refused", key_function, value_function, Refusing())
    with pytest.raises(RecordError, match=r"topic 'refused'.*key.*'take_loan'.*cannot encode '1'"):
        refused.collect(START, subject, transition)

    bad_time = factory.create("times", key_function, value_function)
    with pytest.raises(RecordError, match=r"timestamp 'soon'"):
        bad_time.collect("soon", subject, transition)  # type: ignore[arg-type]

    for sink in (bad_value, bad_key, refused, bad_time):
        assert sink.produced == 0
        sink.close()


# -- configuration and the shared producer (no broker needed) --------------------------------


def test_sinks_of_a_factory_share_one_producer_until_the_last_closes() -> None:
    factory = KafkaSinkFactory(unused_address(), "doge-test", connect_timeout=None)
    one = factory.create("one", key_function, value_function)
    two = factory.create("two", key_function, value_function)
    other = KafkaSinkFactory(unused_address(), "doge-test", connect_timeout=None).create(
        "one", key_function, str
    )
    assert factory._producer is None and one.producer is None  # made when a sink opens
    for sink in (one, two, other):
        sink.open()

    assert one.producer is two.producer is factory.producer
    assert other.producer is not one.producer
    shared = one.producer
    one.close()
    assert one.producer is None and two.producer is shared and factory.producer is shared
    two.close()
    two.close()
    assert factory.producer is not shared
    three = factory.create("three", key_function, value_function)
    three.open()
    assert three.producer is factory.producer
    for sink in (three, other):
        sink.close()


def numbered_key(subject: Any, transition: Transition) -> str:
    return str(subject.n)


def numbered_value(timestamp: int, subject: Any, transition: Transition) -> str:
    return json.dumps({"n": subject.n})


def refuse_once(sink: KafkaSink, error: Any, settle: bool, full_first: bool = False) -> None:
    """The sink's next produce() fails as a producer does after ``error``; with ``settle``,
    everything the producer held was acknowledged first; with ``full_first``, the queue is
    full at the first try and the error comes at the retry."""
    producer = sink.producer
    assert producer is not None
    tries = []

    def refuse(*args: Any) -> None:
        tries.append(args)
        if full_first and len(tries) == 1:
            raise BufferError("queue full")
        if settle:
            assert producer.flush(30) == 0
        raise KafkaException(error)

    sink._produce = refuse


@pytest.mark.kafka
@pytest.mark.parametrize("full_first", [False, True], ids=["at-once", "after-a-full-queue"])
def test_a_fatal_producer_error_hands_the_rest_of_the_run_to_a_new_producer(
    kafka_bootstrap: str, full_first: bool
) -> None:
    topics = [create_topic(kafka_bootstrap) for _ in range(2)]
    factory = KafkaSinkFactory([kafka_bootstrap], "doge-test")
    sinks = [factory.create(topic, numbered_key, numbered_value) for topic in topics]
    for sink in sinks:
        sink.open()
    first_producer = factory.producer
    transition = Transition("t", "a", "b", 100.0, None, [])
    # After a fatal error, produce() raises a KafkaError with the code _FATAL, without the flag.
    fatal = KafkaError(KafkaError._FATAL, "injected: producer in a fatal state")
    for n in range(300):
        if n == 120:
            refuse_once(sinks[0], fatal, settle=True, full_first=full_first)
        for sink in sinks:
            sink.collect(START + n, SimpleNamespace(n=n), transition)

    assert factory.producers_replaced == 1
    assert sinks[0].producer is sinks[1].producer is factory.producer is not first_producer
    for sink in sinks:
        sink.close()
        assert (sink.produced, sink.delivered, sink.failed) == (300, 300, 0)
    for topic in topics:  # every record once, in order, the refused one included
        records = read_all(kafka_bootstrap, topic, expected=300)
        assert [json.loads(r.value)["n"] for r in records] == list(range(300))


@pytest.mark.kafka
def test_a_fatal_error_raised_by_poll_also_hands_over_to_a_new_producer(
    kafka_bootstrap: str,
) -> None:
    """poll() (between ticks, or every few hundred records) raises the fatal error itself."""
    topic = create_topic(kafka_bootstrap)
    factory = KafkaSinkFactory([kafka_bootstrap], "doge-test")
    sink = factory.create(topic, numbered_key, numbered_value)
    sink.open()
    transition = Transition("t", "a", "b", 100.0, None, [])
    fatal = KafkaError(KafkaError.UNKNOWN_PRODUCER_ID, "injected: unknown producer id", fatal=True)
    for n in range(200):
        if n == 80:
            first = sink.producer
            assert first is not None and first.flush(30) == 0

            def raising(timeout: float) -> int:
                raise KafkaException(fatal)

            sink._poll = raising
            sink.poll()
            assert sink.producer is not first and factory.producers_replaced == 1
        sink.collect(START + n, SimpleNamespace(n=n), transition)
    sink.close()
    assert (sink.produced, sink.delivered, sink.failed) == (200, 200, 0)
    records = read_all(kafka_bootstrap, topic, expected=200)
    assert [json.loads(r.value)["n"] for r in records] == list(range(200))


@pytest.mark.kafka
def test_records_held_by_a_producer_at_its_fatal_error_count_as_failed(
    kafka_bootstrap: str,
) -> None:
    topic = create_topic(kafka_bootstrap)
    factory = KafkaSinkFactory([kafka_bootstrap], "doge-test", conf={"linger.ms": 60000})
    sink = factory.create(topic, numbered_key, numbered_value)
    sink.open()
    transition = Transition("t", "a", "b", 100.0, None, [])
    fatal = KafkaError(KafkaError._FATAL, "injected: unknown producer id", fatal=True)
    for n in range(200):
        if n == 50:  # 50 records wait in the old producer (linger.ms holds them back)
            refuse_once(sink, fatal, settle=False)
        sink.collect(START + n, SimpleNamespace(n=n), transition)
    sink.producer.flush(30)

    with pytest.raises(DeliveryError, match=r"kafka:.*50 of 200 records were not delivered"):
        sink.close()
    assert (sink.delivered, sink.failed) == (150, 50)
    assert factory.producers_replaced == 1
    records = read_all(kafka_bootstrap, topic, expected=150)
    assert [json.loads(r.value)["n"] for r in records] == list(range(50, 200))


@pytest.mark.kafka
def test_acknowledgements_cost_no_python_call_and_are_counted_from_the_queue(
    kafka_bootstrap: str,
) -> None:
    """The producer reports failures only: no callback runs for an acknowledged record.
    Records still queued are not counted delivered; a flush that empties the queue makes
    every record not reported failed a delivered one."""
    topic = create_topic(kafka_bootstrap)
    factory = KafkaSinkFactory([kafka_bootstrap], "doge-test", conf={"linger.ms": 60000})
    assert factory.conf["delivery.report.only.error"] is True
    sink = factory.create(topic, numbered_key, numbered_value)
    sink.open()
    calls: List[Any] = []
    reports = sink._on_delivery

    def counted(err: Any, msg: Any) -> None:
        calls.append(err)
        reports(err, msg)

    sink._on_delivery = counted
    transition = Transition("t", "a", "b", 100.0, None, [])
    for n in range(50):
        sink.collect(START + n, SimpleNamespace(n=n), transition)
    sink.poll()
    # linger.ms holds them back: queued, neither delivered nor failed yet.
    assert (sink.produced, sink.delivered, sink.failed) == (50, 0, 0)
    sink.flush()
    assert (sink.produced, sink.delivered, sink.failed) == (50, 50, 0)
    for n in range(50, 80):
        sink.collect(START + n, SimpleNamespace(n=n), transition)
    sink.close()
    assert (sink.produced, sink.delivered, sink.failed) == (80, 80, 0)
    assert calls == []
    records = read_all(kafka_bootstrap, topic, expected=80)
    assert [json.loads(r.value)["n"] for r in records] == list(range(80))


def test_failed_records_are_reported_to_their_own_sink() -> None:
    """Each record carries its sink's callback: the failures of a shared producer are
    counted by the sink that produced them, and its first error is named."""
    factory = KafkaSinkFactory(
        unused_address(), "doge-test", conf={"message.timeout.ms": 200}, connect_timeout=None
    )
    one = factory.create("one", numbered_key, numbered_value)
    two = factory.create("two", numbered_key, numbered_value)
    transition = Transition("t", "a", "b", 100.0, None, [])
    for n in range(7):
        one.collect(START + n, SimpleNamespace(n=n), transition)
    for n in range(3):
        two.collect(START + n, SimpleNamespace(n=n), transition)
    assert one.producer is not None and one.producer.flush(30) == 0
    assert (one.failed, one.delivered, two.failed, two.delivered) == (7, 0, 3, 0)
    with pytest.raises(DeliveryError, match=r"kafka:one: 7 of 7 .*_MSG_TIMED_OUT"):
        one.close()
    with pytest.raises(DeliveryError, match=r"kafka:two: 3 of 3 .*_MSG_TIMED_OUT"):
        two.close()


def test_a_refusal_that_is_not_fatal_stops_with_a_delivery_error_naming_the_sink() -> None:
    factory = KafkaSinkFactory(unused_address(), "doge-test", connect_timeout=None)
    sink = factory.create("topic", numbered_key, numbered_value)
    sink.open()
    refuse_once(sink, KafkaError(KafkaError._INVALID_ARG, "injected"), settle=False)
    with pytest.raises(DeliveryError, match="kafka:topic: the producer refuses records"):
        sink.collect(START, SimpleNamespace(n=0), Transition("t", "a", "b", 100.0, None, []))
    assert factory.producers_replaced == 0
    assert (sink.produced, sink.failed) == (1, 1)
    sink.hurry()
    with pytest.raises(DeliveryError):
        sink.close()


def test_bootstrap_servers_forms_and_conf_overrides() -> None:
    assert KafkaSinkFactory("a:1, b:2", "id").conf["bootstrap.servers"] == "a:1,b:2"
    assert KafkaSinkFactory(["a:1", "b:2"], "id").conf["bootstrap.servers"] == "a:1,b:2"
    both = KafkaSinkFactory(["a:1"], "id", conf={"bootstrap.servers": "c:3", "client.id": "x"})
    assert (both.conf["bootstrap.servers"], both.conf["client.id"]) == ("c:3", "x")
    only_conf = KafkaSinkFactory(conf={"bootstrap.servers": "d:4", "client.id": "y"})
    assert (only_conf.conf["bootstrap.servers"], only_conf.conf["client.id"]) == ("d:4", "y")
    sized = KafkaSinkFactory("a:1", "id", buffer_size=123)
    assert sized.conf["queue.buffering.max.messages"] == 123


@pytest.mark.parametrize(
    ("arguments", "culprit"),
    [
        ({"bootstrap_servers": None}, "bootstrap"),
        ({"bootstrap_servers": ""}, "bootstrap"),
        ({"bootstrap_servers": ["a:1", 5]}, "bootstrap_servers"),
        ({"bootstrap_servers": 9092}, "bootstrap_servers"),
        ({"conf": {"no.such.setting": 1}}, "no.such.setting"),
        ({"conf": {"linger.ms": "soon"}}, "Invalid value"),
        ({"conf": [("linger.ms", 5)]}, "conf"),
        ({"conf": {"delivery.report.only.error": False}}, "delivery.report.only.error"),
        ({"buffer_size": 0}, "buffer_size"),
        ({"buffer_size": "big"}, "buffer_size"),
        ({"flush_timeout": -1}, "flush_timeout"),
        ({"client_id": 42}, "client_id"),
    ],
)
def test_factory_configuration_errors_name_the_culprit(arguments: dict, culprit: str) -> None:
    settings = {"bootstrap_servers": "localhost:9092", "client_id": "doge-test", **arguments}
    with pytest.raises(ConfigurationError, match=culprit) as raised:
        KafkaSinkFactory(**settings)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("arguments", "culprit"),
    [
        ({"topic": ""}, "topic"),
        ({"topic": None}, "topic"),
        ({"key_function": None}, "key_function"),
        ({"value_function": "v"}, "value_function"),
        ({"key_serializer": b"x"}, "key_serializer"),
        ({"value_serializer": 3}, "value_serializer"),
    ],
)
def test_create_configuration_errors_name_the_culprit(arguments: dict, culprit: str) -> None:
    factory = KafkaSinkFactory(unused_address(), "doge-test", connect_timeout=None)
    settings = {
        "topic": "t",
        "key_function": key_function,
        "value_function": value_function,
        **arguments,
    }
    with pytest.raises(ConfigurationError, match=culprit):
        factory.create(**settings)


def test_sink_is_an_event_sink_and_context_manager() -> None:
    factory = KafkaSinkFactory(unused_address(), "doge-test", connect_timeout=None)
    with factory.create("t", key_function, value_function) as sink:
        assert isinstance(sink, KafkaSink) and not sink.closed
    assert sink.closed and sink.producer is None


def test_import_doge_datagen_does_not_import_confluent_kafka() -> None:
    code = (
        "import sys, doge_datagen\n"
        "assert 'confluent_kafka' not in sys.modules, 'imported too early'\n"
        "from doge_datagen import KafkaSinkFactory, KafkaSink\n"
        "assert 'confluent_kafka' in sys.modules\n"
        "print(KafkaSinkFactory.__module__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "doge_datagen.sinks.kafka"


# -- the example script ----------------------------------------------------------------------


@pytest.mark.kafka
def test_kafka_example_script(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap)
    arguments = ["--subjects", "400", "--ticks", "300", "--seed", "21"]
    done = subprocess.run(
        [sys.executable, "examples/doge_kafka_example.py", "--bootstrap-servers", kafka_bootstrap]
        + ["--topic", topic, "--timestamp-start", str(START), *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    example = example_module("doge_kafka_example")
    memory = InMemorySink(
        lambda ts, s, t: (example.key_function(s, t), example.value_function(ts, s, t))
    )
    example_module("doge_example_common").banking_into(
        memory, subjects_num=400, ticks_num=300, timestamp_start=START, seed=21
    ).start()
    reported = re.search(rf"kafka:{re.escape(topic)}\s+(\d+)", done.stdout)
    assert reported is not None, done.stdout
    assert int(reported.group(1)) == len(memory) > 0

    records = read_all(kafka_bootstrap, topic, expected=len(memory))
    assert as_tuples(records) == expected_records(memory)
    # One record per move: a user moves at most once per tick, and a spending (trx and
    # balance streams) or a loan (three streams) is not written once per stream.
    moves = [(r.key, json.loads(r.value)["timestamp"]) for r in records]
    assert len(set(moves)) == len(moves)


def test_librdkafka_logs_to_python_logging_once_per_kind_of_line(caplog) -> None:
    """A broker that is not there: librdkafka retries the connection again and again; its log
    lines reach Python logging (not stderr), each kind once a minute."""
    import logging
    import time

    from doge_datagen.sinks import kafka as kafka_module

    caplog.set_level(logging.DEBUG, logger="doge_datagen.sinks.kafka.librdkafka")
    for each in kafka_module._CLIENT_LOGGER.filters:  # forget lines earlier tests logged
        each._seen.clear()  # type: ignore[attr-defined]
    factory = KafkaSinkFactory(
        unused_address(), "doge-test", conf={"reconnect.backoff.ms": 10}, connect_timeout=None
    )
    sink = factory.create("t", key_function, value_function)
    sink.open()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        sink.poll()
        time.sleep(0.05)
    factory.hurry()
    sink.close()
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("librdkafka")]
    failures = [line for line in lines if "Connection refused" in line]
    assert len(failures) == 1, lines  # dozens of retries, one line
