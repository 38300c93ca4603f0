"""The builders behind the ``kafka+protobuf``, ``kafka+jsonschema``, ``http(s)`` and object
storage (``s3``, ``gs``, any fsspec URL) schemes (see :mod:`doge_datagen.sinks.registry`).

Each takes a parsed :class:`~doge_datagen.sinks.registry.SinkURL` and the model's
:class:`~doge_datagen.sinks.registry.Records`, pops the settings it knows from the query
string, refuses the rest, and returns a sink that is not open yet (building connects to
nothing, except that a ``.proto`` file is compiled).
"""

import os
from typing import Any, Dict, Optional

from doge_datagen.core.types import EventSink, Transition
from doge_datagen.sinks._kafka_urls import _key, _read_schema, _registry_factory, _registry_parts
from doge_datagen.sinks.urls import Records, SinkURL, SinkURLError, refuse_unknown_settings

__all__ = ["build_http", "build_kafka_jsonschema", "build_kafka_protobuf", "build_object"]


def build_kafka_protobuf(url: SinkURL, records: Records) -> EventSink:
    """``kafka+protobuf://HOST:PORT/TOPIC?registry=URL&schema=PATH.proto&message=NAME``:
    Protobuf values of the message type ``NAME`` of the file (the row's fields of the same
    names), string keys; ``include=DIR[:DIR]`` adds import paths. ``registry.*`` settings go
    to the registry client, the rest to librdkafka as for ``kafka://``."""
    from doge_datagen.sinks.kafka_protobuf import KafkaProtobufSinkFactory, message_class

    registry, schema, registry_conf = _registry_parts(url, "PATH.proto")
    message = url.pop("message")
    if not message:
        raise SinkURLError(f"sink {url.masked!r}: give message=NAME, the message type to write")
    include = [p for p in (url.pop("include") or "").split(os.pathsep) if p]
    cls = message_class(schema, message, include)
    factory = _registry_factory(KafkaProtobufSinkFactory, url, registry, registry_conf)
    return factory.create(url.topic, _key(records), records.row, cls)


def build_kafka_jsonschema(url: SinkURL, records: Records) -> EventSink:
    """``kafka+jsonschema://HOST:PORT/TOPIC?registry=URL&schema=PATH.json``: JSON values
    validated against the schema; with ``properties`` in the schema, the row's fields of
    those names. String keys."""
    from doge_datagen.sinks.kafka_jsonschema import KafkaJsonSchemaSinkFactory, check_json_schema

    registry, schema_path, registry_conf = _registry_parts(url, "PATH.json")
    text = _read_schema(url, schema_path)
    schema = check_json_schema(text, f"schema {schema_path!r}")
    properties = schema.get("properties")
    factory = _registry_factory(KafkaJsonSchemaSinkFactory, url, registry, registry_conf)
    row = records.row
    if isinstance(properties, dict) and properties:
        names = tuple(properties)

        def value(timestamp: int, subject: Any, transition: Transition) -> Dict[str, Any]:
            full = row(timestamp, subject, transition)
            return {name: full[name] for name in names if name in full}

        return factory.create(url.topic, _key(records), value, schema)
    return factory.create(url.topic, _key(records), row, schema)


def build_http(url: SinkURL, records: Records) -> EventSink:
    """``http(s)://[USER:PASS@]HOST[:PORT]/PATH``: POST batches of rows. Settings:
    ``format`` (``json`` for a JSON array, ``ndjson``), ``batch_size``, ``timeout`` (one
    request), ``max_time`` (a batch, retries included), ``retries``, ``token`` (``token_env=VAR``:
    sent as ``Authorization: Bearer``), ``header.NAME=VALUE``, ``query.NAME=VALUE`` (sent to
    the endpoint), ``ca_file``."""
    from doge_datagen.sinks.http import HttpSink

    if url.opaque or not url.hosts_text:
        raise SinkURLError(f"sink {url.masked!r}: expected {url.scheme}://HOST[:PORT]/PATH")
    default_port = 443 if url.scheme == "https" else 80
    hosts = url.hosts(default_port)
    if len(hosts) != 1:
        raise SinkURLError(f"sink {url.masked!r}: give one HOST[:PORT], not {len(hosts)}")
    host, port = hosts[0]
    options: Dict[str, Any] = {}
    for key, kind in (
        ("format", str),
        ("batch_size", int),
        ("timeout", float),
        ("max_time", float),
        ("retries", int),
        ("ca_file", str),
        ("flush_interval", float),
    ):
        value = url.pop(key, None, kind)
        if value is not None:
            options[key] = value
    token: Optional[str] = url.pop("token")
    headers = {}
    query = []
    for key in list(url.params):
        if key.startswith("header.") and len(key) > len("header."):
            headers[key[len("header.") :]] = url.params.pop(key)
        elif key.startswith("query.") and len(key) > len("query."):
            query.append((key[len("query.") :], url.params.pop(key)))
    refuse_unknown_settings(url)
    return HttpSink(
        f"{url.scheme}://{_host(host)}:{port}{url.path or '/'}",
        records.row,
        headers=headers,
        token=token,
        username=url.username,
        password=url.password,
        query=query,
        **options,
    )


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def build_object(url: SinkURL, records: Records) -> EventSink:
    """``s3://BUCKET/PATH``, ``gs://BUCKET/PATH``, ``file:///PATH`` and, after ``jsonl:``,
    ``csv:`` or ``parquet:``, any fsspec URL: JSON Lines, CSV or Parquet (by ``format`` or
    the suffix) in parts of ``part_size`` bytes (``64MB``), each visible only when whole."""
    from doge_datagen.sinks.object_storage import ObjectSink, storage_options_from_text

    if url.opaque:  # jsonl:s3://bucket/key
        fmt: Optional[str] = url.scheme
        target = url.path
    else:
        fmt = None
        target = url.url.split("?", 1)[0]
    if "@" in target.split("://", 1)[-1].split("/", 1)[0]:
        raise SinkURLError(
            f"sink {url.masked!r}: credentials go in settings (key_env=VAR&secret_env=VAR) "
            "or the environment, not before the bucket"
        )
    fmt = url.pop("format", fmt)
    options: Dict[str, Any] = {}
    part_size = url.pop("part_size")
    if part_size is not None:
        options["part_size"] = _size(url, part_size)
    for key, kind in (("buffer_rows", int), ("row_group_size", int), ("compression", str)):
        value = url.pop(key, None, kind)
        if value is not None:
            options[key] = value
    storage: Dict[str, Any] = {}
    for key in ("key", "secret", "token", "endpoint_url", "region"):
        value = url.pop(key)
        if value is not None:
            storage[key] = value
    given = {}
    for key in list(url.params):
        if key.startswith("fs.") and len(key) > len("fs."):
            given[key[len("fs.") :]] = url.params.pop(key)
    storage.update(storage_options_from_text(given))
    refuse_unknown_settings(url)
    return ObjectSink(target, records.row, format=fmt, storage_options=storage, **options)


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20}
_UNITS["gib"] = 2**30


def _size(url: SinkURL, text: str) -> int:
    """``64MB``, ``512KiB``, ``1000000``: a size in bytes."""
    import re

    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = found.group(2).lower() if found else ""
    if not found or unit not in _UNITS or float(found.group(1)) * _UNITS[unit] < 1:
        raise SinkURLError(
            f"sink {url.masked!r}: part_size={text!r} is not a size such as 64MB, 512KiB or "
            "1000000 (bytes)"
        )
    return int(float(found.group(1)) * _UNITS[unit])
