"""The Redis, RabbitMQ, MQTT, NATS and Parquet examples, run as scripts against the real
servers: each must deliver exactly the seeded model's events, read back independently."""

import json

from support.bus_fixtures import MqttSubscriber, NatsStream, RabbitQueue, read_redis_stream, unique
from test_examples import example_module, run_example

from doge_datagen import InMemorySink

T0 = 1_700_000_040_000
RUN = ("--subjects", "200", "--ticks", "400", "--seed", "9", "--timestamp-start", str(T0))


def expected_rows():
    """``(user id, row)`` of each event of the seeded run, in order."""
    common = example_module("doge_example_common")
    memory = InMemorySink(lambda ts, s, t: (str(s.user_id), common.user_row(ts, s, t)))
    common.banking_into(memory, subjects_num=200, ticks_num=400, timestamp_start=T0, seed=9).start()
    rows = [event.value for event in memory.events]
    assert len(rows) > 100
    return rows


def test_redis_example(redis_url):
    stream = unique("doge-example")
    stdout = run_example("doge_redis_example.py", "--url", redis_url, "--stream", stream, *RUN)
    entries = read_redis_stream(redis_url, stream)
    expected = expected_rows()
    assert [
        (e.pop("key"), {k: (v if k == "event" else int(v)) for k, v in e.items()}) for e in entries
    ] == expected
    assert f"redis:{stream}" in stdout


def test_rabbitmq_example(amqp_url):
    exchange, queue = unique("doge-example"), unique("doge-example")
    try:
        stdout = run_example(
            "doge_rabbitmq_example.py",
            "--url",
            amqp_url,
            "--exchange",
            exchange,
            "--queue",
            queue,
            *RUN,
        )
    finally:
        reader = RabbitQueue(amqp_url, exchange=exchange, queue=queue, declare=False)
        received = reader.read()
        reader.close()
    assert [(k, json.loads(body)) for k, body in received] == expected_rows()
    assert f"amqp:{exchange}" in stdout


def test_mqtt_example(mqtt_address):
    host, port = mqtt_address
    topic = f"doge-example/{unique('t')}"
    subscriber = MqttSubscriber(host, port, topic)
    try:
        expected = expected_rows()
        stdout = run_example(
            "doge_mqtt_example.py", "--host", host, "--port", str(port), "--topic", topic, *RUN
        )
        received = subscriber.read(len(expected))
    finally:
        subscriber.close()
    assert [(t, json.loads(p)) for t, p, _ in received] == [
        (f"{topic}/{k}", row) for k, row in expected
    ]
    assert f"mqtt:{topic}" in stdout


def test_nats_example(nats_url):
    stream = NatsStream(nats_url)  # the example finds it and does not create another
    try:
        stdout = run_example(
            "doge_nats_example.py",
            "--url",
            nats_url,
            "--subject",
            stream.subject,
            "--stream",
            stream.name,
            *RUN,
        )
        received = stream.read()
    finally:
        stream.delete()
    assert [(s, json.loads(p)) for s, p in received] == [
        (f"{stream.subject}.{k}", row) for k, row in expected_rows()
    ]
    assert f"nats:{stream.subject}" in stdout


def test_parquet_example(tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "events.parquet"
    stdout = run_example(
        "doge_parquet_example.py", "--output", str(out), "--row-group-size", "50", *RUN
    )
    expected = expected_rows()
    table = pq.read_table(out)
    assert table.to_pylist() == [row for _, row in expected]
    assert pq.ParquetFile(out).metadata.num_row_groups == -(-len(expected) // 50)
    assert f"parquet:{out}" in stdout
