"""The builders behind doge-datagen's own URL schemes (see :mod:`doge_datagen.sinks.registry`).

Each takes a parsed :class:`~doge_datagen.sinks.registry.SinkURL` and the model's
:class:`~doge_datagen.sinks.registry.Records`, pops the settings it knows from the query
string and refuses the rest, and returns a sink that is not open yet.
"""

import json
import os
from typing import Any, Dict, List, Optional, Tuple

from doge_datagen.core.types import EventSink, Transition
from doge_datagen.errors import ConfigurationError
from doge_datagen.sinks._kafka_urls import (
    _kafka_factory,
    _kafka_settings,
    _key,
    _librdkafka_settings,
    _read_schema,
    _registry_factory,
    _registry_parts,
)
from doge_datagen.sinks.urls import Records, SinkURL, SinkURLError, refuse_unknown_settings

__all__ = [
    "build_db",
    "build_file",
    "build_kafka",
    "build_kafka_avro",
    "build_print",
    "check_db_url",
]

DEFAULT_TABLE = "events"


def build_file(url: SinkURL, records: Records) -> EventSink:
    """``jsonl:PATH`` and ``csv:PATH`` (settings: ``mode``, ``buffer_lines``, ``encoding``)."""
    from doge_datagen.sinks.file import FileSink

    if url.opaque and "://" in url.path:  # jsonl:s3://bucket/key: object storage
        from doge_datagen.sinks.remote_urls import build_object

        return build_object(url, records)
    if not url.opaque or not url.path:
        raise SinkURLError(
            f"sink {url.masked!r}: give a path, e.g. {url.scheme}:events.{url.scheme}"
        )
    options: Dict[str, Any] = {}
    for key, kind in (("mode", str), ("buffer_lines", int), ("encoding", str)):
        value = url.pop(key, None, kind)
        if value is not None:
            options[key] = value
    refuse_unknown_settings(url)
    path = os.path.abspath(url.path)
    if url.scheme == "jsonl" and records.jsonl is not None:
        return records.jsonl(path, _make_directory=True, **options)
    return FileSink(path, records.row, format=url.scheme, _make_directory=True, **options)


def build_print(url: SinkURL, records: Records) -> EventSink:
    """``print:``: one JSON line per event on standard output."""
    from doge_datagen.sinks.printing import PrintingSink

    if url.path or url.netloc:
        raise SinkURLError(f"sink {url.masked!r}: print: takes nothing after the colon")
    refuse_unknown_settings(url)
    return PrintingSink(records.json)


def check_db_url(url: SinkURL) -> Tuple[str, Optional[int], Any]:
    """The table, batch size and SQLAlchemy URL of a database sink's URL, checked without
    connecting anywhere or creating anything (``table`` and ``batch_size`` are taken out
    of ``url``'s settings)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    table = url.pop("table", DEFAULT_TABLE)
    batch_size = url.pop("batch_size", None, int)
    if url.hosts_text and not url.scheme.startswith("sqlite"):
        url.hosts(default_port=0)  # a port that is not a number is named, not a bad URL form
    base = url.url.split("?", 1)[0]
    if base.lower().startswith("postgres://"):
        base = "postgresql://" + base[len("postgres://") :]
    try:
        parsed = make_url(base)
    except (ArgumentError, ValueError):
        raise SinkURLError(
            f"sink {url.masked!r}: expected dialect[+driver]://user:password@host/db"
        ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise SinkURLError(
            f"sink {url.masked!r} is an in-memory SQLite database that vanishes when the run "
            "ends; give a file: sqlite:///PATH"
        )
    if parsed.get_backend_name() == "sqlite":
        refuse_unknown_settings(url)  # the sqlite3 driver takes no settings from a URL
    return table, batch_size, parsed.set(password=url.password, query=dict(url.params))


def build_db(url: SinkURL, records: Records) -> EventSink:
    """SQLAlchemy URLs; ``table`` (default ``events``) and ``batch_size`` are taken out of
    the query, the other settings go to the driver as SQLAlchemy passes them.

    ``mode=upsert&key=COLUMN`` keeps one row per subject in an existing table whose
    primary key (or a unique constraint) is ``COLUMN``, an attribute of the subjects: the
    rows are the subjects' change events' rows (:mod:`doge_datagen.sinks.cdc`)."""
    from sqlalchemy.exc import SQLAlchemyError

    from doge_datagen.sinks.db import DbSinkFactory, _reason

    mode = url.pop("mode", "append")
    key = url.pop("key", None)
    if mode not in ("append", "upsert"):
        raise SinkURLError(f"sink {url.masked!r}: mode={mode!r} is not 'append' or 'upsert'")
    if mode == "upsert" and not key:
        raise SinkURLError(
            f"sink {url.masked!r}: mode=upsert needs key=COLUMN, the subjects' attribute "
            "that is the table's primary key"
        )
    if mode == "append" and key is not None:
        raise SinkURLError(f"sink {url.masked!r}: key= is a setting of mode=upsert")
    table, batch_size, parsed = check_db_url(url)
    factory = DbSinkFactory(parsed) if batch_size is None else DbSinkFactory(parsed, batch_size)
    if mode == "upsert":
        from doge_datagen.sinks.cdc import ChangeEventSink, change_row

        try:
            return ChangeEventSink(factory.create(table, change_row, mode=mode, key=key), key=key)
        except BaseException:
            factory.close()
            raise
    try:
        if records.create_table is not None:
            try:
                records.create_table(factory.engine, table)
            except SQLAlchemyError as exc:
                raise ConfigurationError(
                    f"cannot create table {table!r} in database {factory.url}: {_reason(exc)}"
                ) from exc
            except TypeError as exc:  # the driver refused a setting of the query string
                raise SinkURLError(
                    f"sink {url.masked!r}: a setting the database driver does not take: {exc}"
                ) from exc
        if records.create:
            return factory.create(
                table,
                records.row,
                create=True,
                columns=records.columns,
                primary_key=records.primary_key,
                foreign_keys=records.foreign_keys,
            )
        return factory.create(table, records.row)
    except BaseException:
        factory.close()
        raise


def build_kafka(url: SinkURL, records: Records) -> EventSink:
    """``kafka://[USER:PASS@]HOST:PORT[,HOST:PORT]/TOPIC``; every other query setting is a
    librdkafka setting (``security.protocol``, ``sasl.mechanism``, ``ssl.ca.location``...).
    A user and password in the URL set SASL PLAIN over plaintext unless the query says
    otherwise. ``client_id``, ``flush_timeout`` (seconds) and ``buffer_size`` are the
    factory's own."""
    from doge_datagen.sinks.kafka import KafkaSinkFactory

    options = _kafka_factory(url)
    with _librdkafka_settings(url):
        factory = KafkaSinkFactory(conf=_kafka_settings(url), **options)
    return factory.create(url.topic, _key(records), records.row, value_serializer="json")


def _field_names(schema: Any, where: str) -> List[str]:
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ConfigurationError(f"{where}: the value schema must be an Avro record")
    return [f["name"] for f in schema.get("fields", []) if isinstance(f, dict) and "name" in f]


def _defaulted(schema: Any) -> List[str]:
    """The fields of a record schema that have a default (left out of a value that lacks
    them, for the serializer to fill in)."""
    return [
        f["name"]
        for f in schema.get("fields", [])
        if isinstance(f, dict) and "name" in f and "default" in f
    ]


def build_kafka_avro(url: SinkURL, records: Records) -> EventSink:
    """``kafka+avro://HOST:PORT/TOPIC?registry=URL&schema=PATH.avsc``: Avro values of the
    record schema in the file (or the records' ``avro_schema`` when the URL names no file),
    made of the row's fields of the same names; string keys.
    ``registry.*`` settings go to the Schema Registry client (``registry.basic.auth.user.info``
    ...), the rest to librdkafka as for ``kafka://``."""
    from doge_datagen.sinks.kafka_avro import KafkaAvroSinkFactory

    given = records.avro_schema
    registry, schema_path, registry_conf = _registry_parts(url, "PATH.avsc", given is not None)
    if schema_path:
        schema_text, where = _read_schema(url, schema_path), f"schema {schema_path!r}"
    else:
        schema_text, where = str(given), "the model's schema"
    try:
        schema = json.loads(schema_text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{where} is not JSON: {exc}") from exc
    names = _field_names(schema, where)
    defaulted = _defaulted(schema)
    required = [name for name in names if name not in defaulted]
    factory = _registry_factory(KafkaAvroSinkFactory, url, registry, registry_conf)
    row = records.row

    def value(timestamp: int, subject: Any, transition: Transition) -> Optional[Dict[str, Any]]:
        full = row(timestamp, subject, transition)
        return {name: full.get(name) for name in names}

    def value_with_defaults(
        timestamp: int, subject: Any, transition: Transition
    ) -> Optional[Dict[str, Any]]:
        full = row(timestamp, subject, transition)
        found = {name: full.get(name) for name in required}
        for name in defaulted:
            if name in full:
                found[name] = full[name]
        return found

    if defaulted:
        value = value_with_defaults  # noqa: F811

    return factory.create(url.topic, _key(records), '"string"', value, schema_text)
