"""KafkaAvroSinkFactory: Avro records on a real broker, schemas in the in-memory registry.

The records read back are decoded here, independently of confluent-kafka's deserializer:
magic byte 0, the 4-byte big-endian schema id the registry handed out, then the Avro body,
read with fastavro and the schema from examples/avro.
"""

import importlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from fastavro import parse_schema, schemaless_reader
from support.kafka_fixtures import create_topic, read_all, shadow, unused_address

from doge_datagen import (
    ConfigurationError,
    DataOnlineGenerator,
    DeliveryError,
    InMemorySink,
    RecordError,
    Transition,
)
from doge_datagen.kafka_avro_sink_factory import KafkaAvroSinkFactory
from doge_datagen.kafka_sink_factory import KafkaSink, KafkaSinkFactory

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
KEY_SCHEMA = (EXAMPLES / "avro" / "Key.avsc").read_text(encoding="utf-8")
EVENT_SCHEMA = (EXAMPLES / "avro" / "Event.avsc").read_text(encoding="utf-8")
START = 1_700_000_000_000
ROLES = ("clickstream", "trx", "balance", "loan")


def example_module(name: str) -> Any:
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


def banking_model(sinks: List[Any], subjects: int, ticks: int, seed: int) -> DataOnlineGenerator:
    return example_module("doge_example_common").create_example_data_online_generator(
        *sinks, subjects_num=subjects, ticks_num=ticks, timestamp_start=START, seed=seed
    )


# The README's Avro key and value functions, as the example defines them.
def key_function(subject: Any, transition: Transition) -> Dict[str, Any]:
    return example_module("doge_kafka_avro_example").key_function(subject, transition)


def value_function(timestamp: int, subject: Any, transition: Transition) -> Dict[str, Any]:
    return example_module("doge_kafka_avro_example").value_function(timestamp, subject, transition)


def key_and_value(timestamp: int, subject: Any, transition: Transition) -> Tuple[Any, Any]:
    return key_function(subject, transition), value_function(timestamp, subject, transition)


def decode(data: bytes, schema: str) -> Tuple[int, Any]:
    """``(schema id, datum)`` of a Confluent-framed Avro payload; the body must be used up."""
    assert data[0] == 0, f"magic byte {data[0]}"
    (schema_id,) = struct.unpack(">I", data[1:5])
    body = io.BytesIO(data[5:])
    datum = schemaless_reader(body, parse_schema(json.loads(schema)), None)
    assert body.tell() == len(data) - 5, "bytes left after the Avro body"
    return schema_id, datum


def decode_all(records: List[Any]) -> List[Tuple[Optional[int], Any, int, Any, int]]:
    """``(key id, key, value id, value, timestamp)`` for each record."""
    decoded = []
    for record in records:
        key_id, key = decode(record.key, KEY_SCHEMA) if record.key is not None else (None, None)
        value_id, value = decode(record.value, EVENT_SCHEMA)
        decoded.append((key_id, key, value_id, value, record.timestamp))
    return decoded


# -- against the broker ----------------------------------------------------------------------


@pytest.mark.kafka
def test_banking_run_in_avro_record_by_record(kafka_bootstrap: str) -> None:
    topics = {role: create_topic(kafka_bootstrap) for role in ROLES}
    factory = KafkaAvroSinkFactory([kafka_bootstrap], "mock://", "doge-test")
    sinks = {
        role: factory.create(topics[role], key_function, KEY_SCHEMA, value_function, EVENT_SCHEMA)
        for role in ROLES
    }
    assert len({id(sink.producer) for sink in sinks.values()}) == 1
    datagen = banking_model(list(sinks.values()), subjects=2000, ticks=400, seed=12)
    memories = {role: shadow(datagen, sinks[role], key_and_value, role) for role in ROLES}

    summary = datagen.start()

    registry = factory.schema_registry_client
    for role in ROLES:
        topic, sink, memory = topics[role], sinks[role], memories[role]
        assert len(memory) > 0
        assert summary.events_per_sink[sink.name] == len(memory) == sink.delivered
        key_id = registry.get_latest_version(f"{topic}-key").schema_id
        value_id = registry.get_latest_version(f"{topic}-value").schema_id
        registered = json.loads(registry.get_schema(value_id).schema_str)
        assert registered == json.loads(EVENT_SCHEMA)
        records = read_all(kafka_bootstrap, topic, expected=len(memory))
        assert decode_all(records) == [
            (key_id, e.value[0], value_id, e.value[1], e.timestamp) for e in memory.events
        ]


@pytest.mark.kafka
def test_a_record_not_fitting_its_schema_stops_the_run(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap)
    factory = KafkaAvroSinkFactory([kafka_bootstrap], "mock://", "doge-test")

    def balance_as_number_on_loans(timestamp: int, subject: Any, transition: Transition) -> Any:
        value = value_function(timestamp, subject, transition)
        if transition.trigger == "take_loan":
            value["user"]["balance"] = subject.balance
        return value

    sink = factory.create(topic, key_function, KEY_SCHEMA, balance_as_number_on_loans, EVENT_SCHEMA)
    datagen = banking_model([sink] * 4, subjects=2000, ticks=300, seed=9)
    memory = shadow(datagen, sink, key_and_value, "memory")

    with pytest.raises(RecordError) as raised:
        datagen.start()

    message = str(raised.value)
    assert repr(topic) in message
    assert "balance" in message and "take_loan" in message
    # The failing event still reached the sinks listed after the Kafka sink (here the memory
    # sink after each of its three uses); everything before it was delivered.
    before = [e for e in memory.events if e.trigger != "take_loan"]
    failing = memory.events[len(before) :]
    assert memory.events[: len(before)] == before and len(before) > 0
    assert [e.trigger for e in failing] == ["take_loan"] * 3
    assert len({(e.timestamp, id(e.subject)) for e in failing}) == 1
    assert sink.closed and (sink.delivered, sink.failed) == (len(before), 0)
    records = read_all(kafka_bootstrap, topic, expected=len(before))
    assert [value for _, _, _, value, _ in decode_all(records)] == [e.value[1] for e in before]


@pytest.mark.kafka
def test_records_without_key(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap)
    factory = KafkaAvroSinkFactory(
        schema_registry_url="mock://", conf={"bootstrap.servers": kafka_bootstrap}
    )
    user = example_module("doge_example_common").User(3, 100, 5)
    sink = factory.create(
        topic,
        lambda s, t: None,
        KEY_SCHEMA,
        lambda ts, s, t: value_function(ts, user, t),
        EVENT_SCHEMA,
    )
    datagen = DataOnlineGenerator(["a"], "a", object, 2, 1000, 5, START, seed=1)
    datagen.add_transition("tick", "a", "a", 100, event_sinks=[sink])

    datagen.start()

    records = read_all(kafka_bootstrap, topic, expected=10)
    assert [r.key for r in records] == [None] * 10
    assert [value["timestamp"] for _, _, _, value, _ in decode_all(records)] == [
        START + 1000 * (i // 2) for i in range(10)
    ]


# -- misfits and configuration (no broker needed) --------------------------------------------


def test_misfit_messages_name_topic_field_and_trigger() -> None:
    factory = KafkaAvroSinkFactory(unused_address(), "mock://", "doge-test", connect_timeout=None)
    user = example_module("doge_example_common").User(1, 10, 0)
    login = Transition("login", "offline", "online", 0.1)

    def without_loan_balance(ts: int, subject: Any, transition: Transition) -> Any:
        value = value_function(ts, subject, transition)
        del value["user"]["loanBalance"]
        return value

    cases = [
        ("missing", key_function, without_loan_balance, r"value.*loanBalance"),
        (
            "keytype",
            lambda s, t: {"key": s.user_id},
            value_function,
            r"key.*'doge_datagen\.example\.Key\.key'",
        ),
        ("string", key_function, lambda ts, s, t: "not a record", r"value.*the value itself"),
        (
            "late",
            key_function,
            lambda ts, s, t: {**value_function(ts, s, t), "timestamp": "x"},
            r"Event\.timestamp",
        ),
    ]
    for topic, keys, values, detail in cases:
        sink = factory.create(topic, keys, KEY_SCHEMA, values, EVENT_SCHEMA)
        with pytest.raises(RecordError) as raised:
            sink.collect(START, user, login)
        message = str(raised.value)
        assert f"topic {topic!r}" in message and "'login'" in message
        assert re.search(detail, message), message
        assert sink.produced == 0
        sink.close()


def test_a_registry_that_does_not_answer_is_named_with_its_password_masked() -> None:
    registry = f"http://reader:s3cret-pw@{unused_address()}"
    factory = KafkaAvroSinkFactory(unused_address(), registry, "doge-test", connect_timeout=None)
    sink = factory.create("payments", key_function, KEY_SCHEMA, value_function, EVENT_SCHEMA)
    user = example_module("doge_example_common").User(1, 10, 0)
    sink.open()
    with pytest.raises(DeliveryError) as raised:
        sink.collect(START, user, Transition("login", "offline", "online", 0.1))
    message = str(raised.value)
    host = registry.split("@", 1)[1]
    assert f"Schema Registry at http://reader:***@{host}" in message, message
    assert "'payments'" in message and "key schema" in message
    assert "s3cret-pw" not in message
    assert sink.produced == 0
    sink.close()
    assert sink.delivered == sink.failed == 0


def test_a_schema_the_registry_refuses_is_a_delivery_error_naming_it() -> None:
    # Not registered, and the serializer told not to register it: the registry answers 404.
    registry = f"mock://{uuid.uuid4().hex}"
    factory = KafkaAvroSinkFactory(unused_address(), registry, "doge-test", connect_timeout=None)
    sink = factory.create(
        "payments",
        key_function,
        KEY_SCHEMA,
        value_function,
        EVENT_SCHEMA,
        serializer_conf={"auto.register.schemas": False},
    )
    user = example_module("doge_example_common").User(1, 10, 0)
    sink.open()
    with pytest.raises(DeliveryError) as raised:
        sink.collect(START, user, Transition("login", "offline", "online", 0.1))
    message = str(raised.value)
    assert f"Schema Registry at {registry} refused the key schema" in message, message
    assert "'payments'" in message and "404" in message
    assert sink.produced == 0
    sink.close()


@pytest.mark.parametrize(
    ("key_schema", "value_schema", "culprit"),
    [
        ("{not json", EVENT_SCHEMA, "key schema is not JSON"),
        (
            KEY_SCHEMA,
            '{"type": "record", "name": "E", "fields": [{"name": "a", "type": "nope"}]}',
            "value schema is not a valid Avro schema",
        ),
        (
            KEY_SCHEMA,
            json.loads(EVENT_SCHEMA),
            "value schema must be an Avro schema as a JSON string",
        ),
        (None, EVENT_SCHEMA, "key schema"),
    ],
)
def test_bad_schemas_are_refused_at_create(
    key_schema: Any, value_schema: Any, culprit: str
) -> None:
    factory = KafkaAvroSinkFactory(unused_address(), "mock://", "doge-test", connect_timeout=None)
    with pytest.raises(ConfigurationError, match=culprit) as raised:
        factory.create("payments", key_function, key_schema, value_function, value_schema)
    assert "'payments'" in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_bad_serializer_conf_is_refused() -> None:
    factory = KafkaAvroSinkFactory(unused_address(), "mock://", "doge-test", connect_timeout=None)
    with pytest.raises(ConfigurationError, match=r"'t'.*no\.such\.setting"):
        factory.create(
            "t",
            key_function,
            KEY_SCHEMA,
            value_function,
            EVENT_SCHEMA,
            serializer_conf={"no.such.setting": True},
        )


@pytest.mark.parametrize(
    ("arguments", "culprit"),
    [
        ({"schema_registry_url": None}, "schema_registry_url"),
        ({"schema_registry_url": ""}, "schema_registry_url"),
        ({"schema_registry_url": "localhost"}, "Invalid url"),
        ({"schema_registry_conf": {"no.such.setting": 1}}, "no.such.setting"),
        ({"schema_registry_conf": "basic.auth"}, "schema_registry_conf"),
        ({"conf": {"no.such.setting": 1}}, "no.such.setting"),
        ({"bootstrap_servers": None}, "bootstrap"),
    ],
)
def test_factory_configuration_errors(arguments: dict, culprit: str) -> None:
    settings = {
        "bootstrap_servers": unused_address(),
        "schema_registry_url": "mock://",
        "client_id": "doge-test",
        **arguments,
    }
    with pytest.raises(ConfigurationError, match=culprit):
        KafkaAvroSinkFactory(**settings)


def test_factory_wraps_a_plain_factory_and_exposes_its_registry() -> None:
    factory = KafkaAvroSinkFactory(
        [unused_address()],
        "mock://",
        "doge-test",
        schema_registry_conf={"basic.auth.user.info": "u:p"},
        connect_timeout=None,
    )
    assert isinstance(factory.kafka_sink_factory, KafkaSinkFactory)
    assert type(factory.schema_registry_client).__name__ == "MockSchemaRegistryClient"
    one = factory.create("one", key_function, KEY_SCHEMA, value_function, EVENT_SCHEMA)
    two = factory.create("two", key_function, KEY_SCHEMA, value_function, EVENT_SCHEMA)
    assert isinstance(one, KafkaSink) and one.name == "kafka:one"
    assert one.producer is None  # nothing is made before the sink opens
    one.open()
    two.open()
    assert one.producer is two.producer is factory.producer
    for sink in (one, two):
        sink.close()

    overridden = KafkaAvroSinkFactory(
        unused_address(),
        "http://unused:1",
        "doge-test",
        schema_registry_conf={"url": "mock://"},
        connect_timeout=None,
    )
    assert type(overridden.schema_registry_client).__name__ == "MockSchemaRegistryClient"


# -- the example script ----------------------------------------------------------------------


@pytest.mark.kafka
def test_kafka_avro_example_script(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap)
    environment = {
        **os.environ,
        "DOGE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "DOGE_SCHEMA_REGISTRY_URL": "mock://",
    }
    done = subprocess.run(
        [sys.executable, "examples/doge_kafka_avro_example.py", "--topic", topic]
        + ["--subjects", "400", "--ticks", "300", "--seed", "31", "--timestamp-start", str(START)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    memory = InMemorySink(key_and_value)
    example_module("doge_example_common").banking_into(
        memory, subjects_num=400, ticks_num=300, timestamp_start=START, seed=31
    ).start()
    reported = re.search(rf"kafka:{re.escape(topic)}\s+(\d+)", done.stdout)
    assert reported is not None, done.stdout
    assert int(reported.group(1)) == len(memory) > 0

    decoded = decode_all(read_all(kafka_bootstrap, topic, expected=len(memory)))
    assert [(k, v, ts) for _, k, _, v, ts in decoded] == [
        (e.value[0], e.value[1], e.timestamp) for e in memory.events
    ]
    moves = [(k["key"], ts) for _, k, _, _, ts in decoded]
    assert len(set(moves)) == len(moves)  # one record per move, not one per stream
    key_ids = {key_id for key_id, _, _, _, _ in decoded}
    value_ids = {value_id for _, _, value_id, _, _ in decoded}
    assert len(key_ids) == len(value_ids) == 1 and key_ids != value_ids
