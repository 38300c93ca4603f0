"""Sink URLs: which scheme makes which sink.

A sink URL names a destination and, in its query string, the client's settings::

    kafka://USER:PASS@HOST:PORT/TOPIC?security.protocol=SASL_SSL&sasl.mechanism=PLAIN
    postgresql://USER@HOST:5432/DB?table=events&password_env=PGPASSWORD

Each scheme maps to a builder ``build(url: SinkURL, records: Records) -> EventSink``.
``records`` says what the events look like (a key and a flat row per event), so the same URL
works for any model that provides them. doge-datagen's own schemes are listed in
:data:`BUILTIN`; other packages add theirs through the ``doge_datagen.sinks`` entry point
group, each entry point naming a :class:`SinkScheme` (or a builder function), for example in
a ``pyproject.toml``::

    [project.entry-points."doge_datagen.sinks"]
    s3 = "my_package.doge:S3_SCHEME"

Secrets need not be written in a URL: ``password_env=VAR`` takes the URL's password from the
environment variable ``VAR``, and ``KEY_env=VAR`` sets the setting ``KEY`` (for example
``sasl.password_env=KAFKA_PASSWORD``) likewise. Passwords are masked wherever a URL is shown.
"""

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union, cast

from doge_datagen.core.types import EventSink
from doge_datagen.errors import ConfigurationError
from doge_datagen.sinks.urls import (
    Records,
    SinkURL,
    SinkURLError,
)

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "Records",
    "SinkScheme",
    "SinkURL",
    "SinkURLError",
    "build_sink",
    "find_scheme",
    "register",
    "schemes",
    "schemes_help",
]

_LOGGER = logging.getLogger(__name__)

#: The entry point group through which other packages add URL schemes.
ENTRY_POINT_GROUP = "doge_datagen.sinks"

Builder = Callable[[SinkURL, Records], EventSink]


@dataclass(frozen=True)
class SinkScheme:
    """One URL scheme: its name, the URL form ``--help`` shows, and its builder.

    :param build: the builder, or ``"module:function"`` imported when first used (so that
        listing the schemes imports no client library).
    :param extra: the extra of doge-datagen that installs the client, if any.
    :param aliases: more schemes that mean the same (``postgres`` for ``postgresql``).
    """

    scheme: str
    form: str
    description: str
    build: Union[str, Builder] = field(repr=False)
    extra: Optional[str] = None
    aliases: Tuple[str, ...] = ()

    def builder(self) -> Builder:
        if callable(self.build):
            return self.build
        module, _, name = self.build.partition(":")
        return cast(Builder, getattr(importlib.import_module(module), name))


_DB = "doge_datagen.sinks.url_builders:"
_BUS = "doge_datagen.sinks.bus_urls:"
_REMOTE = "doge_datagen.sinks.remote_urls:"

#: doge-datagen's own schemes, in the order ``--help`` lists them.
BUILTIN: Tuple[SinkScheme, ...] = (
    SinkScheme("jsonl", "jsonl:PATH", "JSON Lines file", _DB + "build_file"),
    SinkScheme("csv", "csv:PATH", "CSV file with a header", _DB + "build_file"),
    SinkScheme("print", "print:", "standard output, one JSON line per event", _DB + "build_print"),
    SinkScheme(
        "sqlite",
        "sqlite:///PATH?table=events",
        "SQLite database",
        _DB + "build_db",
    ),
    SinkScheme(
        "postgresql",
        "postgresql://USER[:PASS]@HOST[:PORT]/DB?table=events",
        "PostgreSQL",
        _DB + "build_db",
        aliases=("postgres",),
    ),
    SinkScheme(
        "mysql",
        "mysql+pymysql://USER[:PASS]@HOST[:PORT]/DB?table=events",
        "MySQL or MariaDB",
        _DB + "build_db",
        extra="mysql",
        aliases=("mariadb",),
    ),
    SinkScheme(
        "kafka",
        "kafka://[USER:PASS@]HOST:PORT[,HOST:PORT]/TOPIC[?SETTING=VALUE&...]",
        "Kafka: JSON values; settings are librdkafka's",
        _DB + "build_kafka",
    ),
    SinkScheme(
        "kafka+avro",
        "kafka+avro://HOST:PORT/TOPIC?registry=URL&schema=PATH.avsc",
        "Kafka, Avro values (Schema Registry wire format)",
        _DB + "build_kafka_avro",
    ),
    SinkScheme(
        "kafka+protobuf",
        "kafka+protobuf://HOST:PORT/TOPIC?registry=URL&schema=PATH.proto&message=NAME",
        "Kafka, Protobuf values (Schema Registry wire format, message indexes)",
        _REMOTE + "build_kafka_protobuf",
        extra="protobuf",
    ),
    SinkScheme(
        "kafka+jsonschema",
        "kafka+jsonschema://HOST:PORT/TOPIC?registry=URL&schema=PATH.json",
        "Kafka, JSON values checked against a JSON Schema (Schema Registry wire format)",
        _REMOTE + "build_kafka_jsonschema",
        extra="jsonschema",
    ),
    SinkScheme(
        "http",
        "http[s]://HOST[:PORT]/PATH[?format=ndjson&batch_size=N&token_env=VAR]",
        "HTTP POST of batches (JSON array or NDJSON), retried on 429 and 5xx",
        _REMOTE + "build_http",
        aliases=("https",),
    ),
    SinkScheme(
        "s3",
        "s3://BUCKET/KEY.{jsonl,csv,parquet}[?part_size=64MB&endpoint_url=URL]",
        "S3 objects (also jsonl:URL, csv:URL, parquet:URL for any fsspec URL), parts "
        "published whole",
        _REMOTE + "build_object",
        extra="s3",
        aliases=("s3a",),
    ),
    SinkScheme(
        "gs",
        "gs://BUCKET/KEY.{jsonl,csv,parquet}[?part_size=64MB]",
        "Google Cloud Storage objects, parts published whole",
        _REMOTE + "build_object",
        extra="gcs",
        aliases=("gcs",),
    ),
    SinkScheme(
        "file",
        "file:///PATH.{jsonl,csv,parquet}[?part_size=64MB]",
        "local files in parts, each renamed into place when whole",
        _REMOTE + "build_object",
    ),
    SinkScheme(
        "redis",
        "redis://[:PASS@]HOST:PORT/STREAM[?db=0&maxlen=N&explicit_ids=true]",
        "Redis Streams: one entry (XADD) per event, the row as its fields",
        _BUS + "build_redis",
        extra="redis",
        aliases=("rediss",),
    ),
    SinkScheme(
        "amqp",
        "amqp://USER:PASS@HOST:PORT/EXCHANGE[?routing_key=K&vhost=/&declare=1]",
        "RabbitMQ: JSON, routing key = user id, publisher confirms",
        _BUS + "build_amqp",
        extra="rabbitmq",
        aliases=("amqps",),
    ),
    SinkScheme(
        "mqtt",
        "mqtt://[USER:PASS@]HOST:PORT/TOPIC[?qos=1]",
        "MQTT: JSON to TOPIC/USER_ID at QoS 0, 1 or 2",
        _BUS + "build_mqtt",
        extra="mqtt",
        aliases=("mqtts",),
    ),
    SinkScheme(
        "nats",
        "nats://[USER:PASS@]HOST:PORT/SUBJECT[?stream=NAME&declare=1]",
        "NATS JetStream: JSON to SUBJECT.USER_ID, acknowledged by the stream",
        _BUS + "build_nats",
        extra="nats",
    ),
    SinkScheme(
        "parquet",
        "parquet:PATH[?row_group_size=N&compression=zstd]",
        "Parquet file, columns inferred from the first row group",
        _BUS + "build_parquet",
        extra="parquet",
    ),
)

_REGISTERED: Dict[str, SinkScheme] = {}


def register(scheme: SinkScheme) -> None:
    """Add (or replace) a scheme for this process, beside the built-in and entry-point ones."""
    if not isinstance(scheme, SinkScheme):
        raise ConfigurationError(f"register() takes a SinkScheme, got {scheme!r}")
    _REGISTERED[scheme.scheme.lower()] = scheme


def _entry_points() -> List[Any]:
    from importlib.metadata import entry_points

    try:
        return list(entry_points(group=ENTRY_POINT_GROUP))
    except TypeError:  # pragma: no cover - Python 3.9's entry_points() takes no group
        return list(entry_points().get(ENTRY_POINT_GROUP, []))


def _load(entry_point: Any) -> SinkScheme:
    try:
        loaded = entry_point.load()
    except Exception as exc:
        raise ConfigurationError(
            f"sink scheme {entry_point.name!r} from entry point {entry_point.value!r} "
            f"cannot be loaded: {type(exc).__name__}: {exc}"
        ) from exc
    if isinstance(loaded, SinkScheme):
        return loaded
    if callable(loaded):
        doc = (getattr(loaded, "__doc__", None) or "").strip().splitlines()
        return SinkScheme(
            entry_point.name,
            f"{entry_point.name}://...",
            doc[0] if doc else f"from {entry_point.value}",
            loaded,
        )
    raise ConfigurationError(
        f"entry point {entry_point.name!r} ({entry_point.value!r}) is neither a SinkScheme "
        "nor a builder function"
    )


def schemes() -> List[SinkScheme]:
    """Every known scheme: built-in, then from entry points, then registered ones.

    A registered scheme replaces one of the same name. An entry point cannot replace a
    built-in scheme: installing a package never changes what ``jsonl:`` or ``kafka://``
    means (it is left out and logged, as is an entry point that cannot be loaded).
    """
    found: Dict[str, SinkScheme] = {s.scheme: s for s in BUILTIN}
    for entry_point in _entry_points():
        try:
            scheme = _load(entry_point)
        except ConfigurationError as exc:
            _LOGGER.warning("%s", exc)
            continue
        name = scheme.scheme.lower()
        if _builtin(name) is not None:
            _LOGGER.warning(
                "entry point %r (%r) is left out: %r is a built-in sink scheme",
                entry_point.name,
                entry_point.value,
                name,
            )
            continue
        found[name] = scheme
    found.update(_REGISTERED)
    return list(found.values())


def _builtin(name: str) -> Optional[SinkScheme]:
    """The built-in scheme called ``name``, one of its aliases, or ``name`` without
    ``+driver`` (``postgresql+psycopg``, ``mysql+pymysql``)."""
    candidates = [name]
    if "+" in name:
        candidates.append(name.split("+", 1)[0])
    for candidate in candidates:
        for scheme in BUILTIN:
            if candidate in (scheme.scheme, *scheme.aliases):
                return scheme
    return None


def find_scheme(name: str) -> SinkScheme:
    """The scheme called ``name``: a registered one, else a built-in one (or one of its
    aliases, or ``name`` without ``+driver``), else one from an entry point.

    Built-in names are looked up before the installed packages' entry points are read, so a
    run whose sinks are all built in never pays for reading them (about 40 ms in a new
    process: ``importlib.metadata`` and every installed distribution's ``entry_points.txt``),
    which a sharded run would pay again in every shard's process.
    """
    name = name.lower()
    for scheme in _REGISTERED.values():
        if name in (scheme.scheme, *scheme.aliases):
            return scheme
    builtin = _builtin(name)
    if builtin is not None:
        return builtin
    for entry_point in _entry_points():
        if entry_point.name.lower() == name:
            return _load(entry_point)
    known = ", ".join(s.scheme for s in schemes())
    raise SinkURLError(f"no sink scheme {name!r} (known: {known})")


def build_sink(url: Union[str, SinkURL], records: Records) -> EventSink:
    """The sink a URL names, writing ``records``' rows. Opens nothing: the run does."""
    parsed = url if isinstance(url, SinkURL) else SinkURL(url)
    try:
        scheme = find_scheme(parsed.scheme)
    except SinkURLError as exc:
        raise SinkURLError(f"unknown sink {parsed.masked!r}: {exc}") from None
    try:
        builder = scheme.builder()
    except ImportError as exc:
        extra = f": pip install 'doge-datagen[{scheme.extra}]'" if scheme.extra else ""
        raise ImportError(f"sink {parsed.masked!r} needs a missing package ({exc}){extra}") from exc
    from doge_datagen.sinks.cdc import ChangeEventSink, cdc_from_url, envelope_records
    from doge_datagen.sinks.disorder import disorder_from_url, wrap_from_url

    disorder = disorder_from_url(parsed)  # late=, drop=, ... are any sink's settings
    changes = cdc_from_url(parsed)  # envelope=debezium: any sink writes change events
    if changes is not None:
        if parsed.params.get("mode") == "upsert":
            raise SinkURLError(
                f"sink {parsed.masked!r}: mode=upsert writes the subjects' rows; it takes "
                "no envelope"
            )
        records = envelope_records(records)
    sink = builder(parsed, records)
    if disorder is not None:
        sink = wrap_from_url(parsed, disorder, sink, records, build_sink)
    if changes is None:
        return sink
    # Kafka: a tombstone after each delete, so that a compacted topic forgets the key.
    return ChangeEventSink(sink, tombstones=parsed.scheme == "kafka", **changes)


def schemes_help() -> str:
    """The scheme list ``--help`` prints: each URL form, then what it is."""
    lines = []
    for scheme in schemes():
        extra = f" (pip install 'doge-datagen[{scheme.extra}]')" if scheme.extra else ""
        lines.append(f"  {scheme.form}\n      {scheme.description}{extra}")
    return "\n".join(lines)
