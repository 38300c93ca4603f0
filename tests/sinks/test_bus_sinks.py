"""The event-bus sinks (Redis Streams, RabbitMQ, MQTT, NATS JetStream) and the Parquet sink,
each against its real server (or real files), read back with an independent client.

Every fault is caused to something the test owns: a port where nothing listens, a server
process started here (Redis, Mosquitto, NATS), or a TCP proxy in front of the shared RabbitMQ.
"""

import json

import pytest
from support.bus_fixtures import (
    MqttSubscriber,
    NatsStream,
    RabbitQueue,
    read_redis_stream,
    unique,
    unused_port,
    wait_for,
)

from doge_datagen import (
    ConfigurationError,
    DeliveryError,
    InMemorySink,
    MqttSinkFactory,
    NatsSinkFactory,
    ParquetSink,
    ParquetSinkFactory,
    RabbitMQSinkFactory,
    RecordError,
    RedisStreamSinkFactory,
    Transition,
)
from doge_datagen.demo import banking_generator, user_row

T0 = 1_700_000_000_000
MOVE = Transition("take_loan", "loan_screen", "online", 10)


class User:
    def __init__(self, user_id):
        self.user_id = user_id
        self.balance = user_id * 10
        self.loan_balance = 0


def key(subject, transition):
    return str(subject.user_id)


def as_json(timestamp, subject, transition):
    return json.dumps(user_row(timestamp, subject, transition))


def banking_run(sink, subjects=300, ticks=600, seed=11, record=as_json):
    """The seeded banking model with every move going to ``sink``; returns what it was sent
    (``(key, record)`` in order) and the run summary."""
    memory = InMemorySink(lambda ts, s, t: (str(s.user_id), record(ts, s, t)))
    datagen = banking_generator(
        memory, memory, memory, memory, subjects, ticks_num=ticks, timestamp_start=T0, seed=seed
    )
    for transition in datagen.transitions:
        transition.event_sinks = [sink, memory]
    summary = datagen.start()
    sent = [event.value for event in memory.events]
    assert sent, "the run emitted nothing"
    return sent, summary


def per_key(pairs):
    groups = {}
    for k, v in pairs:
        groups.setdefault(k, []).append(v)
    return groups


# -- Redis Streams --------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 64, 500])
def test_redis_stream_holds_every_event_in_order(redis_url, batch_size):
    stream = unique("doge-stream")
    sink = RedisStreamSinkFactory(redis_url).create(stream, key, as_json, batch_size=batch_size)
    sent, summary = banking_run(sink)
    entries = read_redis_stream(redis_url, stream)
    assert [(e["key"], e["value"]) for e in entries] == sent
    assert (sink.delivered, sink.failed) == (len(sent), 0)
    assert summary.delivery[sink.name] == {"delivered": len(sent), "failed": 0}


def test_redis_stream_name_from_a_function_and_dict_values_as_fields(redis_url):
    prefix = unique("doge-stream")
    streams = {f"{prefix}:{t}" for t in ("clicks", "money")}

    def stream_of(subject, transition):
        money = transition.trigger in ("income", "spending", "take_loan")
        return f"{prefix}:{'money' if money else 'clicks'}"

    def row(timestamp, subject, transition):
        return {**user_row(timestamp, subject, transition), "tags": [transition.trigger]}

    sink = RedisStreamSinkFactory(redis_url).create(stream_of, key, row)
    memory = InMemorySink(lambda ts, s, t: (stream_of(s, t), key(s, t), row(ts, s, t)))
    datagen = banking_generator(memory, memory, memory, memory, 300, ticks_num=600, seed=5)
    for transition in datagen.transitions:
        transition.event_sinks = [sink, memory]
    datagen.start()
    for stream in streams:
        expected = [
            {
                "key": k,
                **{f: json.dumps(v) if isinstance(v, list) else str(v) for f, v in r.items()},
            }
            for s, k, r in (e.value for e in memory.events)
            if s == stream
        ]
        assert expected, stream
        assert read_redis_stream(redis_url, stream) == expected
    assert sink.delivered == len(memory.events)


@pytest.mark.parametrize("approximate", [False, True])
def test_redis_stream_maxlen_trims(redis_url, approximate):
    import redis

    stream = unique("doge-stream")
    factory = RedisStreamSinkFactory(redis_url)
    sink = factory.create(
        stream, None, lambda ts, s, t: str(ts), maxlen=100, approximate=approximate
    )
    with sink:
        for n in range(2_000):
            sink.collect(n, User(n), MOVE)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    length = client.xlen(stream)
    last = client.xrevrange(stream, count=1)[0][1]["value"]
    client.delete(stream)
    client.close()
    assert sink.delivered == 2_000
    assert last == "1999"
    if approximate:
        assert 100 <= length < 2_000
    else:
        assert length == 100


def test_redis_text_values_with_keys_of_every_kind(redis_url):
    stream = unique("doge-stream")
    keys = {0: "k0", 1: 7, 2: 2.5, 3: True, 4: None, 5: b"k5", 6: {"id": 6}}
    values = {3: b"bytes"}
    sink = RedisStreamSinkFactory(redis_url).create(
        stream, lambda s, t: keys[s.user_id], lambda ts, s, t: values.get(ts, f"v{ts}")
    )
    with sink:
        for n in range(7):
            sink.collect(n, User(n), MOVE)
    assert read_redis_stream(redis_url, stream) == [
        {"key": "k0", "value": "v0"},
        {"key": "7", "value": "v1"},
        {"key": "2.5", "value": "v2"},
        {"key": "true", "value": "bytes"},
        {"value": "v4"},
        {"key": "k5", "value": "v5"},
        {"key": '{"id":6}', "value": "v6"},
    ]
    assert (sink.delivered, sink.failed) == (7, 0)

    as_value = RedisStreamSinkFactory(redis_url).create(
        stream, lambda s, t: "k", lambda ts, s, t: "v", key_field="value"
    )
    with as_value:
        as_value.collect(0, User(0), MOVE)
    assert read_redis_stream(redis_url, stream) == [{"value": "v"}]

    unwritable = RedisStreamSinkFactory(redis_url).create(
        stream, lambda s, t: object(), lambda ts, s, t: "v"
    )
    with pytest.raises(RecordError, match="field 'key'"):
        with unwritable:
            unwritable.collect(0, User(0), MOVE)
    assert (unwritable.delivered, unwritable.failed) == (0, 0)
    assert read_redis_stream(redis_url, stream) == []


def test_redis_entries_the_server_refuses_count_as_failed(redis_url):
    import redis

    stream = unique("doge-stream")
    client = redis.Redis.from_url(redis_url)
    client.set(stream, "not a stream")
    sink = RedisStreamSinkFactory(redis_url).create(
        lambda s, t: stream if s.user_id % 2 else stream + ":ok", None, lambda ts, s, t: "v"
    )
    sink.open()
    for n in range(10):
        sink.collect(n, User(n), MOVE)
    with pytest.raises(DeliveryError) as caught:
        sink.close()
    client.delete(stream, stream + ":ok")
    client.close()
    assert (caught.value.delivered, caught.value.failed) == (5, 5)
    assert "WRONGTYPE" in str(caught.value)


def test_redis_unreachable_is_a_delivery_error_at_open_without_the_password():
    factory = RedisStreamSinkFactory(f"redis://:s3cret@127.0.0.1:{unused_port()}/0", timeout=2)
    sink = factory.create("stream", None, as_json)  # building connects to nothing
    with pytest.raises(DeliveryError, match="cannot reach Redis at 127.0.0.1") as caught:
        sink.open()
    assert "s3cret" not in str(caught.value) + repr(sink) + repr(factory)
    assert not sink.is_open


def test_redis_server_killed_mid_run_fails_the_batch_with_counts(own_redis):
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    sink = RedisStreamSinkFactory(url, timeout=2).create("events", None, as_json, batch_size=50)
    sink.open()
    for n in range(120):
        sink.collect(n, User(n), MOVE)  # two batches sent, 20 entries waiting
    assert sink.delivered == 100
    own_redis.kill()
    with pytest.raises(DeliveryError, match="lost the connection") as caught:
        for n in range(120, 200):
            sink.collect(n, User(n), MOVE)
    assert (caught.value.delivered, caught.value.failed) == (100, 50)
    assert len(caught.value.pending) == 50
    sink.close()


def test_redis_paused_server_gives_a_bounded_timeout(own_redis):
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    sink = RedisStreamSinkFactory(url, timeout=0.5).create("events", None, as_json)
    sink.open()
    sink.collect(0, User(0), MOVE)
    own_redis.pause()
    try:
        with pytest.raises(DeliveryError) as caught:
            sink.close()
    finally:
        own_redis.resume()
    assert (caught.value.delivered, caught.value.failed) == (0, 1)


# -- RabbitMQ -------------------------------------------------------------------------------


def test_rabbitmq_queue_holds_every_event_in_order(amqp_url, rabbit_queue):
    sink = RabbitMQSinkFactory(amqp_url).create(rabbit_queue.exchange, key, as_json)
    sent, summary = banking_run(sink, subjects=200, ticks=500)
    received = [(k, body.decode()) for k, body in rabbit_queue.read()]
    assert received == sent
    assert (sink.delivered, sink.failed, sink.returned) == (len(sent), 0, 0)
    assert summary.delivery[sink.name] == {"delivered": len(sent), "failed": 0}


def test_rabbitmq_returned_messages_count_as_failed_never_delivered(amqp_url):
    # A direct exchange bound for user 1's key only: every other message is unroutable.
    queue = RabbitQueue(amqp_url, kind="direct", binding="1")
    try:
        sink = RabbitMQSinkFactory(amqp_url).create(queue.exchange, key, as_json)
        sink.open()
        for n in range(20):
            sink.collect(n, User(n % 4), MOVE)
        with pytest.raises(DeliveryError, match="unroutable") as caught:
            sink.close()
        received = queue.read()
    finally:
        queue.close()
    assert len(received) == 5 and {k for k, _ in received} == {"1"}
    assert (caught.value.delivered, caught.value.failed) == (5, 15)
    assert (sink.delivered, sink.failed, sink.returned) == (5, 15, 15)


def test_rabbitmq_messages_a_full_queue_refuses_count_as_failed_never_delivered(amqp_url):
    """A queue of at most 3 messages that refuses publishes when full (``x-overflow:
    reject-publish``): the broker confirms the first 3 and sends a negative acknowledgement
    for each of the others, which the sink counts as failed."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    queue = unique("doge-full")
    channel.queue_declare(queue, arguments={"x-max-length": 3, "x-overflow": "reject-publish"})
    try:
        sink = RabbitMQSinkFactory(amqp_url).create("", None, as_json, routing_key=queue)
        sink.open()
        for n in range(10):
            sink.collect(n, User(n), MOVE)
        with pytest.raises(DeliveryError, match="negative acknowledgement") as caught:
            sink.close()
        count = channel.queue_declare(queue, passive=True).method.message_count
    finally:
        channel.queue_delete(queue)
        connection.close()
    assert count == 3
    assert (caught.value.delivered, caught.value.failed) == (3, 7)
    assert (sink.delivered, sink.failed, sink.returned) == (3, 7, 0)


def test_rabbitmq_fixed_routing_key_and_default_exchange(amqp_url):
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    queue = unique("doge-q")
    channel.queue_declare(queue)
    try:
        sink = RabbitMQSinkFactory(amqp_url).create("", None, as_json, routing_key=queue)
        with sink:
            for n in range(7):
                sink.collect(n, User(n), MOVE)
        count = channel.queue_declare(queue, passive=True).method.message_count
    finally:
        channel.queue_delete(queue)
        connection.close()
    assert count == sink.delivered == 7


def test_rabbitmq_missing_exchange_fails_at_once(amqp_url):
    sink = RabbitMQSinkFactory(amqp_url).create(unique("no-such-exchange"), None, as_json)
    sink.open()
    with pytest.raises(DeliveryError, match="NOT_FOUND") as caught:
        sink.collect(0, User(0), MOVE)
    assert (caught.value.delivered, caught.value.failed) == (0, 1)
    sink.close()  # nothing left to report
    assert not sink.is_open


def test_rabbitmq_unreachable_or_refused_login_without_the_password(amqp_url):
    port = unused_port()
    factory = RabbitMQSinkFactory(f"amqp://guest:s3cret@127.0.0.1:{port}/", timeout=2)
    with pytest.raises(DeliveryError, match=f"cannot reach RabbitMQ at 127.0.0.1:{port}") as one:
        factory.create("ex", None, as_json).open()
    wrong = amqp_url.replace("guest:guest@", "guest:s3cret-wrong@")
    with pytest.raises(DeliveryError, match="ACCESS_REFUSED") as two:
        RabbitMQSinkFactory(wrong, timeout=5).create("ex", None, as_json).open()
    for caught in (one, two):
        assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(factory)


def test_rabbitmq_connection_lost_mid_run_fails_with_counts(amqp_proxy, rabbit_queue):
    proxy, url = amqp_proxy
    sink = RabbitMQSinkFactory(url, timeout=2).create(rabbit_queue.exchange, key, as_json)
    sink.open()
    for n in range(30):
        sink.collect(n, User(n), MOVE)
    proxy.stop()
    with pytest.raises(DeliveryError, match="failed") as caught:
        for n in range(30, 60):
            sink.collect(n, User(n), MOVE)
    sink.close()
    assert (caught.value.delivered, caught.value.failed) == (30, 1)
    assert len(rabbit_queue.read()) == 30


# -- MQTT -----------------------------------------------------------------------------------


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mqtt_subscriber_gets_every_event_in_order(mqtt_address, qos):
    host, port = mqtt_address
    topic = f"doge-test/{unique('t')}"
    subscriber = MqttSubscriber(host, port, topic)
    try:
        sink = MqttSinkFactory(host, port).create(topic, key, as_json, qos=qos)
        # Fewer messages than the broker queues for a subscriber (max_queued_messages 1000).
        sent, summary = banking_run(sink, subjects=100, ticks=500)
        received = subscriber.read(len(sent))
    finally:
        subscriber.close()
    assert [(t, p.decode()) for t, p, _ in received] == [(f"{topic}/{k}", v) for k, v in sent]
    assert {q for _, _, q in received} == {qos}
    assert (sink.delivered, sink.failed, sink.published) == (len(sent), 0, len(sent))
    assert summary.delivery[sink.name] == {"delivered": len(sent), "failed": 0}


def test_mqtt_topic_from_a_function_without_key(mqtt_address):
    host, port = mqtt_address
    topic = f"doge-test/{unique('t')}"
    subscriber = MqttSubscriber(host, port, topic)
    try:
        sink = MqttSinkFactory(host, port).create(
            lambda s, t: f"{topic}/{t.trigger}", None, lambda ts, s, t: {"ts": ts}
        )
        with sink:
            for n in range(10):
                sink.collect(n, User(n), MOVE)
        received = subscriber.read(10)
    finally:
        subscriber.close()
    assert [(t, json.loads(p)) for t, p, _ in received] == [
        (f"{topic}/take_loan", {"ts": n}) for n in range(10)
    ]


def test_mqtt_wildcard_topic_and_bad_qos_are_configuration_errors():
    factory = MqttSinkFactory()
    with pytest.raises(ConfigurationError, match="wildcard"):
        factory.create("a/+/b", None, as_json)
    with pytest.raises(ConfigurationError, match="qos must be 0, 1 or 2"):
        factory.create("a/b", None, as_json, qos=3)


def test_mqtt_unreachable_broker_is_a_delivery_error_at_open():
    port = unused_port()
    factory = MqttSinkFactory("127.0.0.1", port, username="u", password="s3cret", timeout=2)
    sink = factory.create("t", None, as_json)
    with pytest.raises(
        DeliveryError, match=f"cannot reach the MQTT broker at 127.0.0.1:{port}"
    ) as caught:
        sink.open()
    assert "s3cret" not in str(caught.value) + repr(sink) + repr(factory)


@pytest.mark.parametrize("qos", [1, 2])
def test_mqtt_paused_broker_counts_unacknowledged_messages_as_failed(own_mosquitto, qos):
    factory = MqttSinkFactory("127.0.0.1", own_mosquitto.port, timeout=1)
    sink = factory.create("doge/events", None, as_json, qos=qos, max_outstanding=50)
    sink.open()
    for n in range(20):
        sink.collect(n, User(n), MOVE)
    assert wait_for(lambda: sink.delivered == 20)
    own_mosquitto.pause()
    try:
        with pytest.raises(DeliveryError, match="acknowledged nothing") as caught:
            for n in range(20, 200):
                sink.collect(n, User(n), MOVE)
        sink.close()
    finally:
        own_mosquitto.resume()
    error = caught.value
    # 70 published (50 unacknowledged), and the 71st event, which found no room, also failed.
    assert (error.delivered, error.failed) == (20, 51)
    assert sink.published == 70


def test_mqtt_broker_killed_before_close_counts_the_rest_as_failed(own_mosquitto):
    factory = MqttSinkFactory("127.0.0.1", own_mosquitto.port, timeout=1)
    sink = factory.create("doge/events", None, as_json, qos=1)
    sink.open()
    for n in range(10):
        sink.collect(n, User(n), MOVE)
    assert wait_for(lambda: sink.delivered == 10)
    own_mosquitto.kill()
    for n in range(10, 30):
        sink.collect(n, User(n), MOVE)
    with pytest.raises(DeliveryError) as caught:
        sink.close()
    assert (caught.value.delivered, caught.value.failed) == (10, 20)


# -- NATS JetStream -------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 256])
def test_nats_stream_holds_every_event_in_order(nats_url, nats_stream, batch_size):
    factory = NatsSinkFactory(nats_url)
    sink = factory.create(
        nats_stream.subject, key, as_json, stream=nats_stream.name, batch_size=batch_size
    )
    sent, summary = banking_run(sink)
    received = [(s, p.decode()) for s, p in nats_stream.read()]
    assert received == [(f"{nats_stream.subject}.{k}", v) for k, v in sent]
    assert (sink.delivered, sink.failed, sink.published) == (len(sent), 0, len(sent))
    assert summary.delivery[sink.name] == {"delivered": len(sent), "failed": 0}


def test_nats_messages_no_stream_takes_count_as_failed(nats_url, nats_stream):
    factory = NatsSinkFactory(nats_url, timeout=2)

    def subject(s, t):
        return nats_stream.subject if s.user_id % 2 else unique("nobody-listens")

    sink = factory.create(subject, None, as_json)
    sink.open()
    for n in range(10):
        sink.collect(n, User(n), MOVE)
    with pytest.raises(DeliveryError, match="not acknowledged") as caught:
        sink.close()
    assert (caught.value.delivered, caught.value.failed) == (5, 5)
    assert len(nats_stream.read()) == 5


def test_nats_a_small_window_waits_for_room_and_counts_every_reply(nats_url, nats_stream):
    factory = NatsSinkFactory(nats_url, timeout=5)
    nobody = unique("nobody-listens")

    def subject(s, t):
        return nobody if s.user_id % 3 == 0 else nats_stream.subject

    sink = factory.create(subject, None, as_json, batch_size=7, max_outstanding=20)
    sink.open()
    for n in range(600):
        sink.collect(n, User(n), MOVE)
        assert sink.outstanding <= 20
    with pytest.raises(DeliveryError, match="not acknowledged") as caught:
        sink.close()
    assert (caught.value.delivered, caught.value.failed) == (400, 200)
    assert [json.loads(p)["timestamp"] for _, p in nats_stream.read()] == [
        n for n in range(600) if n % 3
    ]


def add_events_stream(url):
    """A JetStream stream ``EVENTS`` of the subjects ``events.>`` on the server at ``url``."""
    import asyncio

    import nats

    async def create():
        connection = await nats.connect(url)
        await connection.jetstream().add_stream(name="EVENTS", subjects=["events.>"])
        await connection.close()

    asyncio.run(create())


def test_nats_a_stalled_server_fails_the_run_while_it_waits_for_room(own_nats):
    url = f"nats://127.0.0.1:{own_nats.port}"
    add_events_stream(url)
    sink = NatsSinkFactory(url, timeout=1).create(
        "events.all", None, as_json, batch_size=5, max_outstanding=10
    )
    sink.open()
    for n in range(20):
        sink.collect(n, User(n), MOVE)
    assert wait_for(lambda: sink.delivered == 20)
    own_nats.pause()
    try:
        with pytest.raises(DeliveryError, match="acknowledged nothing") as caught:
            for n in range(20, 100):
                sink.collect(n, User(n), MOVE)
    finally:
        own_nats.resume()
    error = caught.value
    assert error.delivered == 20
    assert 0 < error.failed <= 15  # the window, and the batch that waited for room
    assert not sink.is_open


def test_nats_expected_stream_must_exist_and_match(nats_url, nats_stream):
    factory = NatsSinkFactory(nats_url, timeout=2)
    with pytest.raises(ConfigurationError, match="no stream 'NO_SUCH_STREAM'"):
        factory.create(nats_stream.subject, None, as_json, stream="NO_SUCH_STREAM").open()
    other = NatsStream(nats_url)
    try:
        # The subject is captured by nats_stream, but the sink expects the other stream.
        sink = factory.create(nats_stream.subject, None, as_json, stream=other.name)
        sink.open()
        sink.collect(0, User(0), MOVE)
        with pytest.raises(DeliveryError) as caught:
            sink.close()
    finally:
        other.delete()
    assert (caught.value.delivered, caught.value.failed) == (0, 1)
    assert nats_stream.read() == []


def test_nats_unreachable_server_is_a_delivery_error_at_open():
    port = unused_port()
    factory = NatsSinkFactory(f"nats://u:s3cret@127.0.0.1:{port}", timeout=2)
    sink = factory.create("subject", None, as_json)
    with pytest.raises(DeliveryError, match="cannot reach NATS") as caught:
        sink.open()
    assert "s3cret" not in str(caught.value) + repr(sink) + repr(factory)
    assert not sink.is_open


def test_nats_server_killed_mid_run_counts_the_rest_as_failed(own_nats):
    url = f"nats://127.0.0.1:{own_nats.port}"
    add_events_stream(url)
    sink = NatsSinkFactory(url, timeout=1).create("events.all", None, as_json, batch_size=10)
    sink.open()
    for n in range(30):
        sink.collect(n, User(n), MOVE)
    assert wait_for(lambda: sink.delivered == 30)
    own_nats.kill()
    with pytest.raises(DeliveryError) as caught:
        for n in range(30, 100):
            sink.collect(n, User(n), MOVE)
        sink.close()
    error = caught.value
    assert error.delivered == 30
    assert error.failed == 70


# -- Parquet --------------------------------------------------------------------------------

SCHEMA = {
    "timestamp": "int64",
    "user_id": "int32",
    "balance": "int64",
    "loan_balance": "int64",
    "event": "string",
}


def test_parquet_with_a_schema_reads_back_typed_in_row_groups(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "events.parquet"
    sink = ParquetSink(path, user_row, SCHEMA, row_group_size=100)
    sent, summary = banking_run(sink, record=user_row)
    table = pq.read_table(path)
    assert table.to_pylist() == [row for _, row in sent]
    assert table.schema.field("user_id").type == pa.int32()
    assert table.schema.field("event").type == pa.string()
    metadata = pq.ParquetFile(path).metadata
    sizes = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
    assert sizes[:-1] == [100] * (len(sizes) - 1) and 0 < sizes[-1] <= 100
    assert (sink.delivered, sink.failed) == (len(sent), 0)
    assert summary.delivery[sink.name] == {"delivered": len(sent), "failed": 0}


def test_parquet_infers_the_columns_from_the_first_row_group(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    def row(ts, s, t):
        return {"ts": ts, "user": s.user_id, "score": s.user_id / 2, "ok": bool(s.user_id % 2)}

    sink = ParquetSinkFactory(tmp_path, row_group_size=7).create("inferred", row)
    with sink:
        for n in range(50):
            sink.collect(n, User(n), MOVE)
    table = pq.read_table(tmp_path / "inferred.parquet")
    assert table.schema.types == [pa.int64(), pa.int64(), pa.float64(), pa.bool_()]
    assert table.to_pylist() == [row(n, User(n), MOVE) for n in range(50)]


def test_parquet_rows_that_do_not_fit_are_record_errors_and_the_others_are_written(tmp_path):
    import pyarrow.parquet as pq

    def row(ts, s, t):
        return {**user_row(ts, s, t), "user_id": "seven" if ts == 7 else s.user_id}

    path = tmp_path / "typed.parquet"
    sink = ParquetSink(path, row, SCHEMA, row_group_size=5)
    sink.open()
    for n in range(5):
        sink.collect(n, User(n), MOVE)
    with pytest.raises(RecordError, match="'seven'"):
        for n in range(5, 10):
            sink.collect(n, User(n), MOVE)
    sink.close()
    assert [r["timestamp"] for r in pq.read_table(path).to_pylist()] == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    assert (sink.delivered, sink.failed) == (9, 1)

    extra = ParquetSink(
        tmp_path / "extra.parquet", lambda ts, s, t: {"ts": ts, "x": 1}, {"ts": "int64"}
    )
    with pytest.raises(RecordError, match="key 'x'"):
        with extra:
            extra.collect(0, User(0), MOVE)


def test_parquet_a_key_outside_the_columns_fails_even_when_the_row_has_as_many_keys(tmp_path):
    import pyarrow.parquet as pq

    columns = {"ts": "int64", "a": "int64", "b": "string"}
    odd = {
        1: {"ts": 1, "a": 1, "x": "y"},  # as many keys as columns, but "x" instead of "b"
        3: {"ts": 3, "a": 1, "b": "z", "x": "y"},  # every column, and one more key
        4: {b"ts": 4, b"a": 1, b"b": "z"},  # bytes keys are not column names
        5: {b"ts": 5, b"a": 1, b"b": "z"},
    }

    def row(ts, s, t):
        return odd.get(ts) or {"ts": ts, "a": ts * 2, "b": str(ts)}

    path = tmp_path / "rows.parquet"
    sink = ParquetSink(path, row, columns, row_group_size=2)
    sink.open()
    refused = []
    for n in range(8):
        try:
            sink.collect(n, User(n), MOVE)
        except RecordError as exc:
            refused.append((n, str(exc)))
    sink.close()
    assert [n for n, _ in refused] == [1, 3, 5]  # raised as each row group is written
    assert "key 'x'" in refused[0][1] and "key 'x'" in refused[1][1]
    assert "2 rows do not fit" in refused[2][1] and "key b'ts'" in refused[2][1]
    assert pq.read_table(path).to_pylist() == [
        {"ts": n, "a": n * 2, "b": str(n)} for n in (0, 2, 6, 7)
    ]
    assert (sink.delivered, sink.failed) == (4, 4)


def test_parquet_values_of_none_and_missing_keys_are_nulls(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"ts": "int64", "tag": pa.dictionary(pa.int32(), pa.string()), "n": "int64"}
    rows = [{"ts": 0, "tag": "a", "n": None}, {"ts": 1, "tag": "b"}, {"ts": 2, "n": 5, "tag": "a"}]
    sink = ParquetSink(tmp_path / "nulls.parquet", lambda ts, s, t: dict(rows[ts]), columns)
    with sink:
        for n in range(3):
            sink.collect(n, User(n), MOVE)
    table = pq.read_table(tmp_path / "nulls.parquet")
    assert table.to_pylist() == [
        {"ts": 0, "tag": "a", "n": None},
        {"ts": 1, "tag": "b", "n": None},
        {"ts": 2, "tag": "a", "n": 5},
    ]
    assert (sink.delivered, sink.failed) == (3, 0)


def test_parquet_building_writes_nothing_and_reopening_appends(tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "events.parquet"
    path.write_bytes(b"an earlier file")
    sink = ParquetSink(path, lambda ts, s, t: {"ts": ts})
    assert path.read_bytes() == b"an earlier file"
    for run in range(2):
        with sink:
            for n in range(3):
                sink.collect(10 * run + n, User(n), MOVE)
        assert sink.delivered == 3
    assert [r["ts"] for r in pq.read_table(path).to_pylist()] == [0, 1, 2, 10, 11, 12]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.parquet"]


def test_parquet_without_events_still_writes_a_readable_file(tmp_path):
    import pyarrow.parquet as pq

    typed = ParquetSink(tmp_path / "typed.parquet", user_row, SCHEMA)
    typed.open()
    typed.close()
    assert pq.read_table(tmp_path / "typed.parquet").schema.names == list(SCHEMA)
    bare = ParquetSink(tmp_path / "bare.parquet", user_row)
    bare.open()
    bare.close()
    assert pq.read_table(tmp_path / "bare.parquet").num_rows == 0


def test_parquet_in_a_shard_writes_its_own_part(tmp_path):
    import pyarrow.parquet as pq

    from doge_datagen.core.shards import Shard, running

    sink = ParquetSink(tmp_path / "events.parquet", lambda ts, s, t: {"ts": ts})
    with running(Shard(2, 8, 0, 10)):
        with sink:
            sink.collect(1, User(1), MOVE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events-00002-of-00008.parquet"]
    assert pq.read_table(tmp_path / "events-00002-of-00008.parquet").to_pylist() == [{"ts": 1}]


@pytest.mark.slow
def test_parquet_parts_of_a_sharded_run_hold_the_unsharded_run(tmp_path):
    import functools

    import pyarrow.parquet as pq
    from support import shard_models

    from doge_datagen.core.shards import part_path, split
    from doge_datagen.distributed.sharded import run_sharded

    argv = ("--subjects", "300", "--ticks", "300", "--seed", "5")
    whole = tmp_path / "whole.parquet"
    shard_models.demo("--sink", f"parquet:{whole}", *argv).start()
    path = tmp_path / "events.parquet"
    summary = run_sharded(
        functools.partial(shard_models.demo, "--sink", f"parquet:{path}", *argv), shards=3
    )
    parts = [part_path(path, shard) for shard in split(300, 3)]
    rows = [row for part in parts for row in pq.read_table(part).to_pylist()]
    expected = pq.read_table(whole).to_pylist()
    assert len(rows) == summary.events == len(expected) > 0
    key = lambda r: (r["timestamp"], r["user_id"], r["event"])  # noqa: E731
    assert sorted(rows, key=key) == sorted(expected, key=key)
    assert not path.exists()


def test_parquet_bad_schema_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="column 'ts': unknown type name 'integer'"):
        ParquetSink(tmp_path / "x.parquet", user_row, {"ts": "integer"})


def test_redis_and_nats_poll_send_a_partial_batch_after_the_flush_interval(
    redis_url, nats_url, nats_stream
):
    import time

    stream = unique("doge-stream")
    redis_sink = RedisStreamSinkFactory(redis_url).create(
        stream, None, as_json, flush_interval=0.05
    )
    nats_sink = NatsSinkFactory(nats_url).create(
        nats_stream.subject, None, as_json, flush_interval=0.05
    )
    for sink in (redis_sink, nats_sink):
        sink.open()
        for n in range(3):
            sink.collect(n, User(n), MOVE)
        sink.poll()  # starts the clock
        assert sink.buffered == 3
        time.sleep(0.1)
        sink.poll()
        assert sink.buffered == 0
    assert wait_for(lambda: nats_sink.delivered == 3)
    assert len(read_redis_stream(redis_url, stream, delete=False)) == 3
    assert len(nats_stream.read()) == 3
    for sink in (redis_sink, nats_sink):
        sink.close()
    read_redis_stream(redis_url, stream)


# -- a missing client ---------------------------------------------------------------------------

MISSING = {
    "redis": "RedisStreamSinkFactory().create('s', None, str).open()",
    "pika": "RabbitMQSinkFactory().create('x', None, str).open()",
    "paho": "MqttSinkFactory().create('t', None, str).open()",
    "nats": "NatsSinkFactory().create('s', None, str).open()",
    "pyarrow": "ParquetSink('x.parquet', str, {'a': 'int64'})",
}
EXTRAS = {
    "redis": "redis",
    "pika": "rabbitmq",
    "paho": "mqtt",
    "nats": "nats",
    "pyarrow": "parquet",
}


@pytest.mark.parametrize("module", sorted(MISSING))
def test_a_missing_client_names_the_extra_to_install(module, tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\n"
        f"sys.modules[{module!r}] = None  # as if not installed\n"
        "from doge_datagen import *\n"
        "import doge_datagen\n"
        f"doge_datagen.{MISSING[module].split('(')[0]}\n"  # the names import without it
        "try:\n"
        f"    {MISSING[module]}\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert f"pip install 'doge-datagen[{EXTRAS[module]}]'" in done.stdout
