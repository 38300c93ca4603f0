"""The event-bus and Parquet sinks against hand-written loops with the same client library and
the same acknowledgement level, on the same records, in the same run.

    python bench/bench_buses.py [--records 20000] [--only redis|rabbitmq|mqtt|nats|parquet]

- Redis Streams sink vs redis-py pipelines of XADD (500 per round trip), each reply checked.
- RabbitMQ sink vs pika publishing with publisher confirms and ``mandatory``, one confirm
  awaited per message (what BlockingChannel offers).
- MQTT sink vs paho-mqtt publishing at QoS 1 with 20 messages in flight, every PUBACK counted.
- NATS JetStream sink vs nats-py ``publish_async`` on an asyncio loop, every PubAck awaited.
- Parquet sink vs pyarrow ``Table.from_pylist`` + ``ParquetWriter.write_table`` per 65,536
  rows (ten times as many records as the others: it is much faster).
Target for each: >= 0.8x the reference's records/s. The servers are the machine's (see
``$DOGE_BENCH_REDIS_URL``, ``$DOGE_BENCH_AMQP_URL``, ``$DOGE_BENCH_MQTT``,
``$DOGE_BENCH_NATS_URL``). Each figure is the best of a few rounds, run alternately.
"""

import asyncio
import os
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from bench_sinks import TRANSITION, best_alternating, events
from common import Row, run_scenarios, scenarios_main

REDIS_URL = os.environ.get("DOGE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("DOGE_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
MQTT = os.environ.get("DOGE_BENCH_MQTT", "127.0.0.1:1883")
NATS_URL = os.environ.get("DOGE_BENCH_NATS_URL", "nats://127.0.0.1:4222")
ROUNDS = 3


def key_of(subject: Any, transition: Any) -> str:
    return subject.key


def value_of(timestamp: int, subject: Any, transition: Any) -> str:
    return subject.value


def row_of(timestamp: int, subject: Any, transition: Any) -> Dict[str, Any]:
    return subject.row


def _row(what: str, n: int, t_ours: float, t_ref: float) -> Row:
    ratio = t_ref / t_ours
    return (
        f"{what}, {n:,} records",
        f"{n / t_ours:,.0f} rec/s",
        f"{n / t_ref:,.0f} rec/s",
        ratio,
        ">= 0.8x",
        ratio >= 0.8,
    )


def _feed(sink: Any, data: List[Any]) -> None:
    sink.open()
    collect = sink.collect
    for e in data:
        collect(e.row["timestamp"], e, TRANSITION)
    sink.close()


# -- Redis Streams ----------------------------------------------------------------------------


def bench_redis(n: int) -> List[Row]:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from doge_datagen import RedisStreamSinkFactory

    data = events(n)
    streams = [f"doge-bench-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    admin = redis.Redis.from_url(REDIS_URL)

    def plain() -> None:
        client = redis.Redis.from_url(
            REDIS_URL, socket_connect_timeout=10, socket_timeout=10, retry=Retry(NoBackoff(), 0)
        )
        pipe = client.pipeline(transaction=False)
        stored = pending = 0
        for e in data:
            pipe.xadd(streams[0], {"key": e.key, "value": e.value})
            pending += 1
            if pending == 500:
                stored += sum(not isinstance(r, Exception) for r in pipe.execute(False))
                pending = 0
        stored += sum(not isinstance(r, Exception) for r in pipe.execute(False))
        client.close()
        assert stored == n, stored
        admin.delete(streams[0])

    def ours() -> None:
        sink = RedisStreamSinkFactory(REDIS_URL).create(streams[1], key_of, value_of)
        _feed(sink, data)
        assert sink.delivered == n, sink.delivered
        admin.delete(streams[1])

    t_ours, t_ref = best_alternating(ours, plain, ROUNDS)
    admin.close()
    return [_row("Redis Streams sink vs redis-py XADD pipelines", n, t_ours, t_ref)]


# -- RabbitMQ ---------------------------------------------------------------------------------


def bench_rabbitmq(n: int) -> List[Row]:
    import pika

    from doge_datagen import RabbitMQSinkFactory

    data = events(n)
    admin = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = admin.channel()
    exchange, queue = f"doge-bench-{uuid.uuid4().hex[:8]}", f"doge-bench-{uuid.uuid4().hex[:8]}"
    channel.exchange_declare(exchange, "topic")
    channel.queue_declare(queue)
    channel.queue_bind(queue, exchange, "#")

    def plain() -> None:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        publisher = connection.channel()
        publisher.confirm_delivery()
        confirmed = 0
        for e in data:
            try:
                publisher.basic_publish(exchange, e.key, e.value.encode(), None, True)
                confirmed += 1
            except (pika.exceptions.UnroutableError, pika.exceptions.NackError):
                pass
        connection.close()
        assert confirmed == n, confirmed
        channel.queue_purge(queue)

    def ours() -> None:
        sink = RabbitMQSinkFactory(AMQP_URL).create(exchange, key_of, value_of)
        _feed(sink, data)
        assert sink.delivered == n, sink.delivered
        channel.queue_purge(queue)

    try:
        t_ours, t_ref = best_alternating(ours, plain, ROUNDS)
    finally:
        channel.queue_delete(queue)
        channel.exchange_delete(exchange)
        admin.close()
    return [_row("RabbitMQ sink vs pika with confirms + mandatory", n, t_ours, t_ref)]


# -- MQTT -------------------------------------------------------------------------------------


def bench_mqtt(n: int) -> List[Row]:
    import paho.mqtt.client as mqtt

    from doge_datagen import MqttSinkFactory

    host, _, port_text = MQTT.rpartition(":")
    port = int(port_text)
    data = events(n)
    topic = f"doge-bench/{uuid.uuid4().hex[:8]}"

    def plain() -> None:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        acked = [0]
        done = threading.Event()

        def on_publish(c: Any, u: Any, mid: int, reason: Any, props: Any) -> None:
            acked[0] += 1
            if acked[0] == n:
                done.set()

        client.on_publish = on_publish
        client.max_inflight_messages_set(20)
        client.max_queued_messages_set(0)
        client.connect(host, port)
        client.loop_start()
        for e in data:
            client.publish(f"{topic}/{e.key}", e.value.encode(), 1)
        done.wait(120)
        client.disconnect()
        client.loop_stop()
        assert acked[0] == n, acked[0]

    def ours() -> None:
        sink = MqttSinkFactory(host, port).create(topic, key_of, value_of, qos=1)
        _feed(sink, data)
        assert sink.delivered == n, sink.delivered

    t_ours, t_ref = best_alternating(ours, plain, ROUNDS)
    return [_row("MQTT sink vs paho-mqtt, QoS 1", n, t_ours, t_ref)]


# -- NATS JetStream ---------------------------------------------------------------------------


def bench_nats(n: int) -> List[Row]:
    import nats

    from doge_datagen import NatsSinkFactory

    data = events(n)
    stream = f"DOGE_BENCH_{uuid.uuid4().hex[:8].upper()}"
    subject = stream.lower()

    async def admin(work: Callable[[Any], Any]) -> Any:
        connection = await nats.connect(NATS_URL)
        try:
            return await work(connection.jetstream())
        finally:
            await connection.close()

    asyncio.run(admin(lambda js: js.add_stream(name=stream, subjects=[f"{subject}.>"])))

    async def reference() -> int:
        connection = await nats.connect(NATS_URL)
        js = connection.jetstream()
        futures = []
        for e in data:
            futures.append(await js.publish_async(f"{subject}.{e.key}", e.value.encode()))
        await js.publish_async_completed()
        await connection.close()
        return sum(1 for f in futures if f.exception() is None)

    def plain() -> None:
        acked = asyncio.run(reference())
        assert acked == n, acked

    def ours() -> None:
        sink = NatsSinkFactory(NATS_URL).create(subject, key_of, value_of)
        _feed(sink, data)
        assert sink.delivered == n, sink.delivered

    try:
        t_ours, t_ref = best_alternating(ours, plain, ROUNDS)
    finally:
        asyncio.run(admin(lambda js: js.delete_stream(stream)))
    return [_row("NATS JetStream sink vs nats-py publish_async", n, t_ours, t_ref)]


# -- Parquet ----------------------------------------------------------------------------------

PARQUET_SCHEMA = {
    "timestamp": "int64",
    "user_id": "int64",
    "balance": "int64",
    "loan_balance": "int64",
    "event": "string",
}


def bench_parquet(n: int) -> List[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from doge_datagen import ParquetSink

    n *= 10
    data = events(n)
    schema = pa.schema([(name, pa.type_for_alias(t)) for name, t in PARQUET_SCHEMA.items()])
    group = 65536
    with tempfile.TemporaryDirectory() as directory:
        paths = [Path(directory) / "plain.parquet", Path(directory) / "ours.parquet"]

        def plain() -> None:
            writer = pq.ParquetWriter(str(paths[0]), schema, compression="snappy")
            rows = []
            for e in data:
                rows.append(e.row)
                if len(rows) == group:
                    writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                    rows = []
            if rows:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            writer.close()

        def ours() -> None:
            sink = ParquetSink(paths[1], row_of, PARQUET_SCHEMA, row_group_size=group)
            _feed(sink, data)
            assert sink.delivered == n, sink.delivered

        t_ours, t_ref = best_alternating(ours, plain, ROUNDS)
        assert pq.read_table(paths[1]).equals(pq.read_table(paths[0]))
    return [_row("Parquet sink vs pyarrow ParquetWriter", n, t_ours, t_ref)]


SCENARIOS: Dict[str, Callable[[int], List[Row]]] = {
    "redis": bench_redis,
    "rabbitmq": bench_rabbitmq,
    "mqtt": bench_mqtt,
    "nats": bench_nats,
    "parquet": bench_parquet,
}


def run(records: int, only: Optional[str] = None) -> List[Row]:
    return run_scenarios("buses", SCENARIOS, records, only)


def main() -> None:
    scenarios_main(__doc__, run, SCENARIOS, 20_000)


if __name__ == "__main__":
    main()
