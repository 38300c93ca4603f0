"""The README blocks of the Redis, RabbitMQ, MQTT, NATS and Parquet sinks run as written
(their addresses pointed at the test services), and the sinks they make deliver events."""

import json

import pytest
from support.bus_fixtures import MqttSubscriber, NatsStream, read_redis_stream, unique
from test_readme import block, namespace, user

from doge_datagen import Transition

LOGIN = Transition("login", "offline", "online", 10)


def readme_functions():
    ns = namespace()
    exec(block("def row_mapper_function(").split("db_factory = ")[0], ns)
    ns["key_function"] = lambda subject, transition: str(subject.user_id)
    return ns


def run(code: str, **names):
    ns = readme_functions()
    ns.update(names)
    exec(code, ns)
    return ns


def send(sink, count=3):
    with sink:
        for n in range(count):
            sink.collect(1_700_000_000_000 + n, user(), LOGIN)
    assert (sink.delivered, sink.failed) == (count, 0)


def test_the_redis_block(redis_url):
    code = block("redis_factory = RedisStreamSinkFactory(")
    stream = unique("doge-readme")
    code = code.replace("'redis://localhost:6379/0'", repr(redis_url)).replace(
        "'doge_events'", repr(stream)
    )
    ns = run(code)
    send(ns["redis_sink"])
    entries = read_redis_stream(redis_url, stream)
    assert [e["key"] for e in entries] == ["7"] * 3
    assert entries[0]["event"] == "login" and entries[0]["balance"] == "250"
    assert ns["by_kind"].stream is None  # the stream name comes from a function
    prefix = unique("doge-readme")
    ns["by_kind"]._stream_function = lambda u, t: f"{prefix}:{t.to_state}"
    send(ns["by_kind"], 1)
    assert len(read_redis_stream(redis_url, f"{prefix}:online")) == 1


def test_the_rabbitmq_block(amqp_url, rabbit_queue):
    code = block("rabbit_factory = RabbitMQSinkFactory(")
    code = code.replace("'amqp://guest:guest@localhost:5672/'", repr(amqp_url))
    code = code.replace("'doge_events'", repr(rabbit_queue.exchange))
    ns = run(code.replace("'doge_queue'", repr(rabbit_queue.queue)))
    send(ns["rabbit_sink"])
    send(ns["fixed"], 2)
    received = rabbit_queue.read()
    assert [k for k, _ in received] == ["7", "7", "7", rabbit_queue.queue, rabbit_queue.queue]
    assert json.loads(received[0][1])["user_id"] == 7


def test_the_mqtt_block(mqtt_address):
    host, port = mqtt_address
    topic = f"doge-readme/{unique('t')}"
    code = block("mqtt_factory = MqttSinkFactory(")
    code = code.replace("'localhost', 1883", f"{host!r}, {port}").replace(
        "'doge/events'", repr(topic)
    )
    subscriber = MqttSubscriber(host, port, topic)
    try:
        ns = run(code)
        send(ns["mqtt_sink"])
        received = subscriber.read(3)
    finally:
        subscriber.close()
    assert [(t, q) for t, _, q in received] == [(f"{topic}/7", 1)] * 3


def test_the_nats_block(nats_url):
    stream = NatsStream(nats_url)
    try:
        code = block("nats_factory = NatsSinkFactory(")
        code = code.replace("'nats://localhost:4222'", repr(nats_url))
        code = code.replace("'doge.events'", repr(stream.subject))
        ns = run(code.replace("'DOGE_EVENTS'", repr(stream.name)))
        send(ns["nats_sink"])
        received = stream.read()
    finally:
        stream.delete()
    assert [s for s, _ in received] == [f"{stream.subject}.7"] * 3


def test_the_parquet_block(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.chdir(tmp_path)
    ns = run(block("parquet_sink = ParquetSink("))
    send(ns["parquet_sink"])
    send(ns["loans"], 2)
    table = pq.read_table(tmp_path / "out" / "events.parquet")
    assert table.schema.field("user_id").type == pa.int32()
    assert table.column("event").to_pylist() == ["login"] * 3
    loans = pq.ParquetFile(tmp_path / "out" / "loans.parquet")
    assert loans.metadata.num_rows == 2
    assert loans.metadata.row_group(0).column(0).compression == "ZSTD"


@pytest.mark.parametrize(
    "extra", ["[redis]", "[rabbitmq]", "[mqtt]", "[nats]", "[parquet]", "[all]"]
)
def test_the_readme_names_each_extra_and_setup_cfg_defines_it(extra):
    from test_readme import README, ROOT

    assert f"`{extra}`" in README
    setup = (ROOT / "setup.cfg").read_text()
    assert f"\n{extra.strip('[]')} =\n" in setup
