"""Protobuf and JSON Schema values on a real broker, schemas in the in-memory registry.

Records are read back from the broker and decoded twice: by confluent-kafka's own
``ProtobufDeserializer`` / ``JSONDeserializer``, and by hand from the Confluent wire format
(magic byte 0, the 4-byte schema id, for Protobuf the message indexes, then the body).
"""

import json
import struct
import uuid
from pathlib import Path
from typing import Any, List, Tuple

import pytest
from support.banking_runs import run_banking
from support.kafka_fixtures import create_topic, read_all, unused_address

from doge_datagen import ConfigurationError, DeliveryError, RecordError
from doge_datagen.cli.main import event_row
from doge_datagen.sinks.registry import Records, SinkURLError, build_sink

pytestmark = pytest.mark.kafka

DATA = Path(__file__).resolve().parents[1] / "data"
PROTO = DATA / "event_row.proto"
JSON_SCHEMA = DATA / "event_row.schema.json"
FIELDS = ("timestamp", "user_id", "balance", "loan_balance", "event", "from_state", "to_state")


def key(subject: Any, transition: Any) -> str:
    return str(subject.user_id)


RECORDS = Records(row=event_row, key=key)


def varint(data: bytes, at: int) -> Tuple[int, int]:
    """A zigzag varint (as the message indexes are written) and the position after it."""
    shift = value = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (value >> 1) ^ -(value & 1), at


def protobuf_frame(data: bytes) -> Tuple[int, List[int], bytes]:
    """``(schema id, message indexes, message bytes)`` of a Confluent Protobuf payload."""
    assert data[0] == 0, data[:6]
    (schema_id,) = struct.unpack(">I", data[1:5])
    count, at = varint(data, 5)
    indexes = []
    for _ in range(count):
        index, at = varint(data, at)
        indexes.append(index)
    if count == 0:  # the short form of [0]
        indexes = [0]
    return schema_id, indexes, data[at:]


def protobuf_url(bootstrap: str, topic: str, registry: str, message: str = "EventRow") -> str:
    return (
        f"kafka+protobuf://{bootstrap}/{topic}?registry={registry}&schema={PROTO}&message={message}"
    )


def test_protobuf_records_read_back_with_confluents_deserializer(kafka_bootstrap: str) -> None:
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from doge_datagen.sinks.kafka_protobuf import message_class

    topic = create_topic(kafka_bootstrap)
    registry = f"mock://{uuid.uuid4().hex}"
    sink = build_sink(protobuf_url(kafka_bootstrap, topic, registry), RECORDS)
    sent = run_banking(sink, seed=5)

    records = read_all(kafka_bootstrap, topic, expected=len(sent))
    assert len(sent) > 300 and len(records) == len(sent)
    assert (sink.delivered, sink.failed) == (len(sent), 0)
    cls = message_class(PROTO, "doge_datagen.test.EventRow")
    deserializer = ProtobufDeserializer(cls, {"use.deprecated.format": False})
    context = SerializationContext(topic, MessageField.VALUE)
    decoded = [deserializer(r.value, context) for r in records]
    assert [{f: getattr(m, f) for f in FIELDS} for m in decoded] == sent
    assert not any(m.HasField("recorded") for m in decoded)
    assert [r.key.decode() for r in records] == [str(row["user_id"]) for row in sent]
    assert [r.timestamp for r in records] == [row["timestamp"] for row in sent]

    # The wire format, by hand: one schema id, EventRow is the file's second message.
    frames = [protobuf_frame(r.value) for r in records]
    assert {(schema_id, tuple(indexes)) for schema_id, indexes, _ in frames} == {
        (frames[0][0], (1,))
    }
    assert cls.FromString(frames[0][2]) == decoded[0]
    # The schema was registered under the topic's value subject.
    client = sink.value_serializer._serializer._registry  # the sink's in-memory registry
    latest = client.get_latest_version(f"{topic}-value")
    assert latest.schema_id == frames[0][0] and latest.schema.schema_type == "PROTOBUF"


def test_json_schema_records_read_back_with_confluents_deserializer(kafka_bootstrap: str) -> None:
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    topic = create_topic(kafka_bootstrap)
    registry = f"mock://{uuid.uuid4().hex}"
    url = f"kafka+jsonschema://{kafka_bootstrap}/{topic}?registry={registry}&schema={JSON_SCHEMA}"
    sink = build_sink(url, RECORDS)
    sent = run_banking(sink, seed=6)

    records = read_all(kafka_bootstrap, topic, expected=len(sent))
    assert len(sent) > 300 and len(records) == len(sent)
    assert (sink.delivered, sink.failed) == (len(sent), 0)
    deserializer = JSONDeserializer(JSON_SCHEMA.read_text())
    context = SerializationContext(topic, MessageField.VALUE)
    assert [deserializer(r.value, context) for r in records] == sent
    ids = {struct.unpack(">bI", r.value[:5]) for r in records}
    assert len(ids) == 1 and next(iter(ids))[0] == 0
    assert [json.loads(r.value[5:]) for r in records] == sent


def test_a_row_that_does_not_fit_names_the_field(tmp_path: Path) -> None:
    from doge_datagen.sinks.kafka_protobuf import KafkaProtobufSinkFactory, message_class

    cls = message_class(PROTO, "EventRow")
    factory = KafkaProtobufSinkFactory(unused_address(), "mock://", "t", connect_timeout=None)
    sink = factory.create("t", lambda s, t: "k", lambda ts, s, t: {}, cls)
    serializer = sink.value_serializer
    with pytest.raises(RecordError, match=r"field 'balance'.*'many'.*int64"):
        serializer({"timestamp": 1, "balance": "many"}, sink._value_ctx)

    from doge_datagen.sinks.kafka_jsonschema import KafkaJsonSchemaSinkFactory

    json_factory = KafkaJsonSchemaSinkFactory(
        unused_address(), "mock://", "t", connect_timeout=None
    )
    json_sink = json_factory.create(
        "t", lambda s, t: "k", lambda ts, s, t: {}, JSON_SCHEMA.read_text()
    )
    with pytest.raises(RecordError, match="field 'balance': .*'many' is not of type 'integer'"):
        json_sink.value_serializer(
            {"timestamp": 1, "user_id": 2, "event": "e", "balance": "many"}, json_sink._value_ctx
        )


def test_bad_schema_files_and_urls_are_named(tmp_path: Path) -> None:
    from doge_datagen.sinks.kafka_protobuf import message_class

    broken = tmp_path / "broken.proto"
    broken.write_text('syntax = "proto3";\nmessage Event { int64 id = 1 }\n')
    with pytest.raises(ConfigurationError, match=r"broken.proto.*does not compile.*Expected \";\""):
        message_class(broken, "Event")
    with pytest.raises(ConfigurationError, match=r"has no message 'Nope' \(it has: .*EventRow"):
        message_class(PROTO, "Nope")
    with pytest.raises(ConfigurationError, match="no .proto file"):
        message_class(tmp_path / "missing.proto", "Event")
    with pytest.raises(SinkURLError, match="message=NAME"):
        build_sink(f"kafka+protobuf://h:1/t?registry=mock://&schema={PROTO}", RECORDS)
    with pytest.raises(SinkURLError, match="registry=URL and schema=PATH.json"):
        build_sink("kafka+jsonschema://h:1/t?registry=mock://", RECORDS)
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "objekt"}')
    with pytest.raises(ConfigurationError, match="not a valid JSON Schema"):
        build_sink(f"kafka+jsonschema://h:1/t?registry=mock://&schema={bad}", RECORDS)


def test_an_unreachable_registry_is_a_delivery_error_naming_it(kafka_bootstrap: str) -> None:
    from support.services import free_port

    topic = create_topic(kafka_bootstrap)
    secret = f"pw-{uuid.uuid4().hex}"
    registry = f"http://127.0.0.1:{free_port()}"
    url = protobuf_url(kafka_bootstrap, topic, registry)
    url += f"&registry.basic.auth.user.info=u:{secret}&registry.timeout=2"
    sink = build_sink(url, RECORDS)
    with pytest.raises(DeliveryError) as raised:
        run_banking(sink, subjects=20, ticks=20, seed=5)
    text = str(raised.value)
    assert f"Schema Registry at {registry}" in text and topic in text
    assert secret not in text and secret not in repr(sink)


def test_imports_from_an_include_path_are_registered_as_references(tmp_path: Path) -> None:
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer

    from doge_datagen.sinks.kafka_protobuf import KafkaProtobufSinkFactory, message_class

    (tmp_path / "inc").mkdir()
    (tmp_path / "main").mkdir()
    (tmp_path / "inc" / "money.proto").write_text(
        'syntax = "proto3";\npackage shop;\n'
        "message Money { int64 cents = 1; string currency = 2; }\n"
    )
    (tmp_path / "main" / "order.proto").write_text(
        'syntax = "proto3";\npackage shop;\nimport "money.proto";\n'
        "message Order { int64 id = 1; Money total = 2; repeated string items = 3; }\n"
    )
    with pytest.raises(ConfigurationError, match="money.proto"):
        message_class(tmp_path / "main" / "order.proto", "Order")  # the import is not found
    cls = message_class(tmp_path / "main" / "order.proto", "Order", [tmp_path / "inc"])
    factory = KafkaProtobufSinkFactory(unused_address(), "mock://", "t", connect_timeout=None)
    sink = factory.create("orders", lambda s, t: "k", lambda ts, s, t: {}, cls)
    row = {"id": 7, "total": {"cents": 1250, "currency": "EUR"}, "items": ["a", "b"], "x": 1}

    data = sink.value_serializer(row, sink._value_ctx)

    schema_id, indexes, body = protobuf_frame(data)
    assert indexes == [0] and data[5] == 0  # the first message: the one-byte short form
    decoded = ProtobufDeserializer(cls, {"use.deprecated.format": False})(data, sink._value_ctx)
    assert decoded.id == 7 and decoded.total.cents == 1250 and list(decoded.items) == ["a", "b"]
    assert cls.FromString(body) == decoded
    registry = sink.value_serializer._serializer._registry
    latest = registry.get_latest_version("orders-value")
    assert latest.schema_id == schema_id
    assert [(r.name, r.subject) for r in latest.schema.references] == [
        ("money.proto", "money.proto")
    ]
