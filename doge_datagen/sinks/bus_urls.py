"""The builders behind the ``redis``, ``amqp``, ``mqtt``, ``nats`` and ``parquet`` URL schemes
(see :mod:`doge_datagen.sinks.registry`).

Each takes a parsed :class:`~doge_datagen.sinks.registry.SinkURL` and the model's
:class:`~doge_datagen.sinks.registry.Records`, pops the settings it knows from the query
string, refuses the rest, and returns a sink that is not open yet (building connects to
nothing). Keys are the records' key: a stream field, a routing key, a topic level or a subject
token; values are the records' rows (stream fields, JSON messages, Parquet columns).
"""

from typing import Any, List, Optional
from urllib.parse import quote

from doge_datagen.core.types import EventSink
from doge_datagen.sinks.urls import Records, SinkURL, SinkURLError, refuse_unknown_settings

__all__ = ["build_amqp", "build_mqtt", "build_nats", "build_parquet", "build_redis"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


_boolean.__name__ = "boolean (true/false)"


def _destination(url: SinkURL, what: str, example: str) -> str:
    name = url.topic
    if not name:
        raise SinkURLError(f"sink {url.masked!r}: give a {what}, e.g. {example}")
    return name


def _one_host(url: SinkURL, default_port: int) -> Any:
    hosts = url.hosts(default_port)
    if len(hosts) != 1:
        raise SinkURLError(f"sink {url.masked!r}: give one HOST:PORT, not {len(hosts)}")
    return hosts[0]


def _userinfo(url: SinkURL) -> str:
    if url.username is None and url.password is None:
        return ""
    user = quote(url.username or "", safe="")
    if url.password is None:
        return f"{user}@"
    return f"{user}:{quote(url.password, safe='')}@"


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def build_redis(url: SinkURL, records: Records) -> EventSink:
    """``redis://[[USER]:PASS@]HOST:PORT/STREAM`` (``rediss://`` for TLS); settings ``db``,
    ``maxlen``, ``approximate``, ``batch_size``, ``timeout``, ``explicit_ids`` (entry ids
    from the events, so that a resumed run's repeats are refused)."""
    from doge_datagen.sinks.redis_stream import DEFAULT_BATCH_SIZE, RedisStreamSinkFactory

    stream = _destination(url, "stream", "redis://localhost:6379/events")
    host, port = _one_host(url, 6379)
    db = url.pop("db", 0, int)
    maxlen = url.pop("maxlen", None, int)
    approximate = url.pop("approximate", True, _boolean)
    batch_size = url.pop("batch_size", DEFAULT_BATCH_SIZE, int)
    timeout = url.pop("timeout", 10.0, float)
    explicit_ids = url.pop("explicit_ids", False, _boolean)
    refuse_unknown_settings(url)
    scheme = "rediss" if url.scheme == "rediss" else "redis"
    server = f"{scheme}://{_userinfo(url)}{_host_text(host)}:{port}/{db}"
    factory = RedisStreamSinkFactory(server, timeout=timeout)
    return factory.create(
        stream,
        records.key,
        records.row,
        maxlen=maxlen,
        approximate=approximate,
        batch_size=batch_size,
        explicit_ids=explicit_ids,
    )


def build_amqp(url: SinkURL, records: Records) -> EventSink:
    """``amqp://USER:PASS@HOST:PORT/EXCHANGE`` (``amqps://`` for TLS; no exchange: the
    default one); settings ``routing_key`` (instead of the record key), ``vhost``,
    ``mandatory``, ``timeout``, ``declare`` (create the exchange and a queue bound to it)
    and ``queue`` (that queue's name, default the exchange's)."""
    from doge_datagen.sinks.rabbitmq import RabbitMQSinkFactory

    exchange = url.topic
    host, port = _one_host(url, 5671 if url.scheme == "amqps" else 5672)
    routing_key: Optional[str] = url.pop("routing_key", None)
    vhost = url.pop("vhost", "/")
    mandatory = url.pop("mandatory", True, _boolean)
    timeout = url.pop("timeout", 10.0, float)
    declare = url.pop("declare", False, _boolean)
    queue: Optional[str] = url.pop("queue", None)
    refuse_unknown_settings(url)
    if not exchange and routing_key is None and records.key is None:
        raise SinkURLError(
            f"sink {url.masked!r}: the default exchange routes by queue name: give "
            "?routing_key=QUEUE, or an exchange, e.g. amqp://guest:guest@localhost:5672/events"
        )
    scheme = "amqps" if url.scheme == "amqps" else "amqp"
    server = f"{scheme}://{_userinfo(url)}{_host_text(host)}:{port}/{quote(vhost, safe='')}"
    factory = RabbitMQSinkFactory(server, timeout=timeout)
    key = None if routing_key is not None else records.key
    return factory.create(
        exchange,
        key,
        records.row,
        routing_key=routing_key or "",
        mandatory=mandatory,
        declare=declare,
        queue=queue,
    )


def build_mqtt(url: SinkURL, records: Records) -> EventSink:
    """``mqtt://[USER:PASS@]HOST:PORT/TOPIC`` (``mqtts://`` for TLS); settings ``qos``,
    ``retain``, ``client_id``, ``timeout``; the record key is one more topic level."""
    from doge_datagen.sinks.mqtt import MqttSinkFactory

    topic = _destination(url, "topic", "mqtt://localhost:1883/doge/events")
    host, port = _one_host(url, 8883 if url.scheme == "mqtts" else 1883)
    qos = url.pop("qos", 1, int)
    retain = url.pop("retain", False, _boolean)
    client_id = url.pop("client_id", "doge-datagen")
    timeout = url.pop("timeout", 10.0, float)
    refuse_unknown_settings(url)
    factory = MqttSinkFactory(
        host,
        port,
        username=url.username,
        password=url.password,
        client_id=client_id,
        tls=True if url.scheme == "mqtts" else None,
        timeout=timeout,
    )
    return factory.create(topic, records.key, records.row, qos=qos, retain=retain)


def build_nats(url: SinkURL, records: Records) -> EventSink:
    """``nats://[USER:PASS@]HOST:PORT[,HOST:PORT]/SUBJECT``; settings ``stream`` (it must
    exist, unless ``declare``), ``timeout``, ``declare`` (create a stream for the subject
    when none captures it); the record key is one more subject token."""
    from doge_datagen.sinks.nats_jetstream import NatsSinkFactory

    subject = _destination(url, "subject", "nats://localhost:4222/doge.events?stream=DOGE")
    servers: List[str] = [
        f"nats://{_userinfo(url)}{_host_text(host)}:{port}" for host, port in url.hosts(4222)
    ]
    stream = url.pop("stream", None)
    timeout = url.pop("timeout", 10.0, float)
    declare = url.pop("declare", False, _boolean)
    refuse_unknown_settings(url)
    factory = NatsSinkFactory(servers, timeout=timeout)
    return factory.create(subject, records.key, records.row, stream=stream, declare=declare)


def build_parquet(url: SinkURL, records: Records) -> EventSink:
    """``parquet:PATH``; settings ``row_group_size``, ``compression``. The columns are
    inferred from the first row group."""
    import os

    from doge_datagen.sinks.parquet import DEFAULT_ROW_GROUP_SIZE, ParquetSink

    if url.opaque and "://" in url.path:  # parquet:s3://bucket/key: object storage
        from doge_datagen.sinks.remote_urls import build_object

        return build_object(url, records)
    if not url.opaque or not url.path:
        raise SinkURLError(f"sink {url.masked!r}: give a path, e.g. parquet:events.parquet")
    row_group_size = url.pop("row_group_size", DEFAULT_ROW_GROUP_SIZE, int)
    compression = url.pop("compression", "snappy")
    refuse_unknown_settings(url)
    return ParquetSink(
        os.path.abspath(url.path),
        records.row,
        row_group_size=row_group_size,
        compression=compression,
    )
