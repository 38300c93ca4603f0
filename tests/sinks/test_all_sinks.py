"""The banking model into every real sink at once, and faults that must not lose data.

One seeded run of 10,000 subjects x 200 ticks writes each event to Kafka, Kafka + Avro,
PostgreSQL, MariaDB, SQLite and a JSON Lines file; every one of them is read back with an
independent client and must hold exactly the events the generator emitted, in order.
"""

import io
import json
import struct
import uuid

import pytest
from fastavro import parse_schema, schemaless_reader
from support.kafka_fixtures import create_topic, read_all, unused_address

from doge_datagen import (
    DbSinkFactory,
    DeliveryError,
    FileSink,
    InMemorySink,
    KafkaAvroSinkFactory,
    KafkaSinkFactory,
)
from doge_datagen.demo import banking_generator, user_row

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.mariadb, pytest.mark.slow]

KEY_SCHEMA = json.dumps(
    {"type": "record", "name": "Key", "fields": [{"name": "key", "type": "string"}]}
)
VALUE_SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Row",
        "fields": [
            {"name": "timestamp", "type": "long"},
            {"name": "user_id", "type": "long"},
            {"name": "balance", "type": "long"},
            {"name": "loan_balance", "type": "long"},
            {"name": "event", "type": "string"},
        ],
    }
)
T0 = 1_700_000_000_000


def key(subject, transition):
    return str(subject.user_id)


def as_json(timestamp, subject, transition):
    return json.dumps(user_row(timestamp, subject, transition))


def banking_into(sinks, subjects, ticks, seed):
    """The seeded banking model with each move (logouts included) going once to each sink."""
    unused = InMemorySink()
    datagen = banking_generator(
        unused,
        unused,
        unused,
        unused,
        subjects_num=subjects,
        ticks_num=ticks,
        timestamp_start=T0,
        seed=seed,
    )
    for transition in datagen.transitions:
        transition.event_sinks = list(sinks)
    return datagen


def test_every_sink_holds_exactly_the_events_emitted(
    tmp_path, kafka_bootstrap, postgres_db, mariadb_db, sqlite_db
):
    topic, avro_topic = create_topic(kafka_bootstrap), create_topic(kafka_bootstrap)
    kafka = KafkaSinkFactory([kafka_bootstrap], "doge-e2e").create(topic, key, as_json)
    avro_factory = KafkaAvroSinkFactory([kafka_bootstrap], f"mock://{uuid.uuid4().hex}", "doge-e2e")
    avro = avro_factory.create(
        avro_topic, lambda s, t: {"key": str(s.user_id)}, KEY_SCHEMA, user_row, VALUE_SCHEMA
    )
    dbs = {}
    for db in (postgres_db, mariadb_db, sqlite_db):
        table = db.events_table()
        dbs[db.kind] = (db, table.name, DbSinkFactory(db.url).create(table.name, user_row))
    jsonl = FileSink(tmp_path / "events.jsonl", user_row)
    memory = InMemorySink(user_row)
    datagen = banking_into(
        [memory, kafka, avro, jsonl] + [s for _, _, s in dbs.values()], 10_000, 200, seed=2024
    )
    summary = datagen.start()

    expected = [e.value for e in memory.events]
    assert summary.events == len(expected) > 5000
    assert set(summary.events_per_sink.values()) == {len(expected)}

    # Kafka: keys, values, record timestamps, in order (one partition).
    records = read_all(kafka_bootstrap, topic, expected=len(expected))
    assert [json.loads(r.value) for r in records] == expected
    assert [r.key.decode() for r in records] == [str(row["user_id"]) for row in expected]
    assert [r.timestamp for r in records] == [row["timestamp"] for row in expected]
    assert kafka.delivered == len(expected) and kafka.failed == 0

    # Avro: the Confluent wire format, decoded here with fastavro.
    records = read_all(kafka_bootstrap, avro_topic, expected=len(expected))
    registry = avro_factory.schema_registry_client
    parsed = parse_schema(json.loads(VALUE_SCHEMA))
    ids = set()
    decoded = []
    for record in records:
        magic, schema_id = struct.unpack(">bI", record.value[:5])
        assert magic == 0
        ids.add(schema_id)
        decoded.append(schemaless_reader(io.BytesIO(record.value[5:]), parsed))
    assert decoded == expected
    (schema_id,) = ids
    assert json.loads(registry.get_schema(schema_id).schema_str)["name"] == "Row"

    # Databases, by plain SQL in insertion order.
    for kind, (db, table, sink) in dbs.items():
        assert db.fetch(table) == expected, kind
        assert sink.delivered == len(expected) and sink.failed == 0, kind

    # The file.
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == expected


def test_faults_end_the_run_with_counts_and_lose_nothing_from_healthy_sinks(
    tmp_path, kafka_bootstrap, postgres_db
):
    """An unreachable broker and a table that rejects a batch, in one run beside healthy sinks."""
    import sqlalchemy as sa

    dead = KafkaSinkFactory(
        [unused_address()],
        "doge-fault",
        conf={"message.timeout.ms": 2000},
        flush_timeout=10,
        connect_timeout=None,
    ).create(create_topic(kafka_bootstrap), key, as_json)
    healthy_topic = create_topic(kafka_bootstrap)
    healthy = KafkaSinkFactory([kafka_bootstrap], "doge-ok").create(healthy_topic, key, as_json)
    strict = postgres_db.events_table(None, sa.CheckConstraint("balance < 3000", name="cap"))
    rejecting = DbSinkFactory(postgres_db.url, batch_size=500).create(strict.name, user_row)
    jsonl = FileSink(tmp_path / "events.jsonl", user_row)
    memory = InMemorySink(user_row)
    datagen = banking_into([memory, dead, healthy, rejecting, jsonl], 3000, 300, seed=7)

    with pytest.raises(DeliveryError) as info:
        datagen.start()
    error = info.value
    # The database batch failed first, during the run; the sinks were all closed after it.
    assert error.sink == rejecting.name
    in_table = postgres_db.count(strict.name)
    assert error.delivered == in_table
    assert error.failed == len(error.pending) > 0
    assert any(row["balance"] >= 3000 for row in error.pending)  # the rejected row is there
    emitted = [e.value for e in memory.events]
    assert in_table + error.failed <= len(emitted)
    # Healthy sinks hold everything generated before the fault.
    assert [
        json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()
    ] == emitted
    records = read_all(kafka_bootstrap, healthy_topic, expected=len(emitted))
    assert [json.loads(r.value) for r in records] == emitted
    # The dead broker's sink counted every record as failed, none as delivered.
    assert dead.delivered == 0 and dead.failed == len(emitted)
    notes = " ".join(getattr(error, "__notes__", []))
    assert f"{len(emitted)} of {len(emitted)} records were not delivered" in notes


@pytest.mark.s3
def test_registry_formats_http_and_object_storage_hold_exactly_the_events_emitted(
    tmp_path, kafka_bootstrap, endpoint, moto_s3
):
    """The same model into Protobuf and JSON Schema topics, an HTTP endpoint and S3 and local
    parts, each read back with a client of its own."""
    from pathlib import Path

    import pyarrow.parquet as pq
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext
    from support.remote_fixtures import new_bucket, s3_client, s3_query

    from doge_datagen.sinks.kafka_protobuf import message_class
    from doge_datagen.sinks.registry import Records, build_sink

    data = Path(__file__).resolve().parents[1] / "data"
    records = Records(row=user_row, key=key)
    pb_topic, js_topic = create_topic(kafka_bootstrap), create_topic(kafka_bootstrap)
    registry = f"mock://{uuid.uuid4().hex}"
    bucket = new_bucket(moto_s3)
    urls = [
        f"kafka+protobuf://{kafka_bootstrap}/{pb_topic}?registry={registry}"
        f"&schema={data / 'event_row.proto'}&message=EventRow",
        f"kafka+jsonschema://{kafka_bootstrap}/{js_topic}?registry={registry}"
        f"&schema={data / 'event_row.schema.json'}",
        f"{endpoint.url}/events?format=ndjson&batch_size=500",
        f"s3://{bucket}/e2e/events.jsonl?part_size=256KB&{s3_query(moto_s3)}",
        f"parquet:file://{tmp_path}/parts/events.parquet?part_size=16KB&buffer_rows=2000",
    ]
    sinks = [build_sink(url, records) for url in urls]
    memory = InMemorySink(user_row)
    summary = banking_into([memory, *sinks], 10_000, 250, seed=2025).start()

    expected = [e.value for e in memory.events]
    assert summary.events == len(expected) > 5000
    for sink in sinks:
        assert (sink.delivered, sink.failed) == (len(expected), 0), sink.name

    fields = list(expected[0])
    context = SerializationContext(pb_topic, MessageField.VALUE)
    protobuf = ProtobufDeserializer(
        message_class(data / "event_row.proto", "EventRow"), {"use.deprecated.format": False}
    )
    messages = [
        protobuf(r.value, context) for r in read_all(kafka_bootstrap, pb_topic, len(expected))
    ]
    assert [{f: getattr(m, f) for f in fields} for m in messages] == expected

    context = SerializationContext(js_topic, MessageField.VALUE)
    json_schema = JSONDeserializer((data / "event_row.schema.json").read_text())
    records_read = read_all(kafka_bootstrap, js_topic, len(expected))
    assert [json_schema(r.value, context) for r in records_read] == expected

    assert endpoint.rows() == expected

    client = s3_client(moto_s3)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert len(keys) > 1
    lines = [
        line
        for k in keys
        for line in client.get_object(Bucket=bucket, Key=k)["Body"].read().decode().splitlines()
    ]
    assert [json.loads(line) for line in lines] == expected

    parts = sorted((tmp_path / "parts").iterdir())
    assert len(parts) > 1 and all(p.name.startswith("events-part-") for p in parts)
    assert [row for p in parts for row in pq.read_table(p).to_pylist()] == expected


def test_a_disordered_topic_holds_the_truths_events_late_twice_or_not_at_all(
    tmp_path, kafka_bootstrap
):
    """A Kafka sink made from a URL with late=, duplicate=, drop= and truth=: the truth file
    holds exactly the events emitted; the topic holds each of them once, twice or not at all
    as the sink counted, the late ones with their event time as the record's timestamp."""
    from collections import Counter

    from doge_datagen.sinks.registry import Records, build_sink

    topic = create_topic(kafka_bootstrap)
    url = (
        f"kafka://{kafka_bootstrap}/{topic}?late=0.05&max_delay=10m&duplicate=0.01&drop=0.01"
        f"&truth=jsonl%3A{tmp_path}/truth.jsonl"
    )
    sink = build_sink(url, Records(row=user_row, key=key))
    memory = InMemorySink(user_row)
    summary = banking_into([memory, sink], 10_000, 200, seed=2026).start()

    expected = [e.value for e in memory.events]
    truth = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    assert truth == expected and len(expected) > 5000
    written = len(expected) - sink.dropped + sink.duplicated
    records = read_all(kafka_bootstrap, topic, expected=written)
    rows = [json.loads(r.value) for r in records]
    assert len(rows) == written == sink.delivered and sink.failed == 0
    assert [r.timestamp for r in records] == [row["timestamp"] for row in rows]

    def event(row):
        return tuple(row.values())

    kept, emitted = Counter(map(event, rows)), Counter(map(event, expected))
    assert sum((emitted - kept).values()) == sink.dropped > 0
    assert sum((kept - emitted).values()) == sink.duplicated > 0
    out_of_order = sum(1 for a, b in zip(rows, rows[1:]) if b["timestamp"] < a["timestamp"])
    assert 0 < out_of_order <= sink.late
    (counts,) = [c for c in summary.delivery.values() if "late" in c]
    assert counts["truth_delivered"] == len(expected) and counts["late"] == sink.late
