"""Sink URLs of the Redis, RabbitMQ, MQTT, NATS and Parquet sinks: what each builds, what it
refuses, and the ``doge-datagen demo`` command writing through each to the real server (read
back and compared with a JSON Lines file written in the same run)."""

import json
import subprocess
import sys

import pytest
from support.bus_fixtures import MqttSubscriber, NatsStream, read_redis_stream, unique

from doge_datagen import (
    ConfigurationError,
    MqttSink,
    NatsSink,
    ParquetSink,
    RabbitMQSink,
    RedisStreamSink,
)
from doge_datagen.cli.main import event_key, event_row
from doge_datagen.sinks.registry import Records, SinkURLError, build_sink

RECORDS = Records(row=event_row, key=event_key)


def test_each_url_builds_its_sink_with_the_settings_of_the_query():
    redis = build_sink("redis://:pw@127.0.0.1:6380/events?db=2&maxlen=500&batch_size=50", RECORDS)
    assert isinstance(redis, RedisStreamSink)
    assert (redis.stream, redis.maxlen, redis.batch_size) == ("events", 500, 50)
    assert redis.factory.url == "redis://:pw@127.0.0.1:6380/2"
    amqp = build_sink("amqp://guest:guest@127.0.0.1:5672/ex?routing_key=k&vhost=v1", RECORDS)
    assert isinstance(amqp, RabbitMQSink)
    assert (amqp.exchange, amqp.routing_key, amqp.key_function) == ("ex", "k", None)
    assert amqp.factory.url == "amqp://guest:guest@127.0.0.1:5672/v1"
    keyed = build_sink("amqp://guest:guest@127.0.0.1/ex", RECORDS)
    assert keyed.key_function is event_key and keyed.factory.address == "127.0.0.1:5672"
    mqtt = build_sink("mqtt://u:p@127.0.0.1:1884/doge/events?qos=2&retain=true", RECORDS)
    assert isinstance(mqtt, MqttSink)
    assert (mqtt.topic, mqtt.qos, mqtt.retain) == ("doge/events", 2, True)
    assert (mqtt.factory.address, mqtt.factory.username) == ("127.0.0.1:1884", "u")
    nats = build_sink("nats://127.0.0.1:4222,127.0.0.1:4223/doge.events?stream=S", RECORDS)
    assert isinstance(nats, NatsSink)
    assert (nats.subject, nats.stream) == ("doge.events", "S")
    assert nats.factory.servers == ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]
    parquet = build_sink("parquet:out/e.parquet?row_group_size=10&compression=zstd", RECORDS)
    assert isinstance(parquet, ParquetSink)
    assert (parquet.path.name, parquet.row_group_size, parquet.compression) == (
        "e.parquet",
        10,
        "zstd",
    )


@pytest.mark.parametrize(
    "url, message",
    [
        ("redis://127.0.0.1:6379/", "give a stream"),
        ("redis://127.0.0.1:6379/s?colour=red", "unknown setting 'colour'"),
        ("redis://127.0.0.1:6379/s?maxlen=many", "maxlen='many'"),
        ("amqp://guest:pw@127.0.0.1:99999/ex", "port '99999'"),
        ("mqtt://127.0.0.1:1883/t?qos=high", "qos='high'"),
        ("mqtt://127.0.0.1:1883/", "give a topic"),
        ("nats://127.0.0.1:4222/subject?stream=S&durable=x", "unknown setting 'durable'"),
        ("parquet:", "give a path"),
        ("parquet:e.parquet?retain=true", "unknown setting 'retain'"),
    ],
)
def test_a_bad_url_is_refused_naming_the_part(url, message):
    with pytest.raises(SinkURLError, match=message):
        build_sink(url, RECORDS)


def test_bad_values_are_configuration_errors_and_the_password_stays_masked():
    with pytest.raises(ConfigurationError, match="qos must be 0, 1 or 2") as caught:
        build_sink("mqtt://u:s3cret@127.0.0.1:1883/t?qos=3", RECORDS)
    assert "s3cret" not in str(caught.value)
    with pytest.raises(SinkURLError, match="routing_key=QUEUE") as caught:
        build_sink("amqp://guest:s3cret@127.0.0.1/", Records(row=event_row))
    assert "s3cret" not in str(caught.value)


def test_the_help_lists_the_bus_url_forms():
    done = subprocess.run(
        [sys.executable, "-m", "doge_datagen", "demo", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    for form in (
        "redis://[:PASS@]HOST:PORT/STREAM",
        "amqp://USER:PASS@HOST:PORT/EXCHANGE[?routing_key=K",
        "mqtt://[USER:PASS@]HOST:PORT/TOPIC[?qos=1]",
        "nats://[USER:PASS@]HOST:PORT/SUBJECT[?stream=NAME&declare=1]",
        "parquet:PATH",
    ):
        assert form in done.stdout, form
    assert "pip install 'doge-datagen[nats]'" in done.stdout


def demo_through(sink_url, tmp_path):
    """Run the demo into ``sink_url`` and a JSON Lines file; the file's rows."""
    witness = tmp_path / "witness.jsonl"
    done = subprocess.run(
        [
            sys.executable, "-m", "doge_datagen", "demo", "--subjects", "200", "--ticks", "120",
            "--seed", "5", "--no-progress", "--sink", sink_url, "--sink", f"jsonl:{witness}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in witness.read_text().splitlines()]
    assert len(rows) > 20
    return rows


def test_the_demo_through_a_redis_url(redis_url, tmp_path):
    stream = unique("doge-cli")
    rows = demo_through(f"{redis_url.rsplit('/', 1)[0]}/{stream}", tmp_path)
    entries = read_redis_stream(redis_url, stream)
    assert [entry.pop("key") for entry in entries] == [str(r["user_id"]) for r in rows]
    assert entries == [{k: str(v) for k, v in r.items()} for r in rows]


def test_the_demo_through_an_amqp_url(amqp_url, rabbit_queue, tmp_path):
    rows = demo_through(f"{amqp_url.rstrip('/')}/{rabbit_queue.exchange}", tmp_path)
    received = rabbit_queue.read()
    assert [(k, json.loads(body)) for k, body in received] == [(str(r["user_id"]), r) for r in rows]


def test_the_demo_through_an_mqtt_url(mqtt_address, tmp_path):
    host, port = mqtt_address
    topic = f"doge-cli/{unique('t')}"
    subscriber = MqttSubscriber(host, port, topic)
    try:
        rows = demo_through(f"mqtt://{host}:{port}/{topic}?qos=2", tmp_path)
        received = subscriber.read(len(rows))
    finally:
        subscriber.close()
    assert [(t, json.loads(p), q) for t, p, q in received] == [
        (f"{topic}/{r['user_id']}", r, 2) for r in rows
    ]


def test_the_demo_through_a_nats_url(nats_url, tmp_path):
    stream = NatsStream(nats_url)
    try:
        rows = demo_through(f"{nats_url}/{stream.subject}?stream={stream.name}", tmp_path)
        received = stream.read()
    finally:
        stream.delete()
    assert [(s, json.loads(p)) for s, p in received] == [
        (f"{stream.subject}.{r['user_id']}", r) for r in rows
    ]


def test_the_demo_through_a_parquet_url(tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "events.parquet"
    rows = demo_through(f"parquet:{out}?row_group_size=16", tmp_path)
    assert pq.read_table(out).to_pylist() == rows
    assert pq.ParquetFile(out).metadata.row_group(0).num_rows == 16
