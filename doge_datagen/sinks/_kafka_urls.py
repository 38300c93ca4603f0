"""What the Kafka schemes share (``kafka://``, ``kafka+avro://``, ``kafka+protobuf://``,
``kafka+jsonschema://``): the factory's options and librdkafka's settings from a URL, the
Schema Registry's URL, schema file and client settings, the record key, and a setting
librdkafka refuses named in one line."""

import re
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, TypeVar

from doge_datagen.core.types import Transition
from doge_datagen.errors import ConfigurationError
from doge_datagen.sinks.urls import Records, SinkURL, SinkURLError

CLIENT_ID = "doge-datagen"

F = TypeVar("F")


def _kafka_settings(url: SinkURL) -> Dict[str, Any]:
    conf: Dict[str, Any] = {}
    if url.username is not None or url.password is not None:
        conf["sasl.username"] = url.username or ""
        conf["sasl.password"] = url.password or ""
        conf["security.protocol"] = "SASL_PLAINTEXT"
        conf["sasl.mechanism"] = "PLAIN"
    conf.update(url.params)
    return conf


def _kafka_factory(url: SinkURL) -> Dict[str, Any]:
    bootstrap = ",".join(f"{host}:{port}" for host, port in url.hosts())
    if not url.topic:
        raise SinkURLError(f"sink {url.masked!r}: expected {url.scheme}://HOST:PORT/TOPIC")
    options: Dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": url.pop("client_id", CLIENT_ID),
    }
    flush_timeout = url.pop("flush_timeout", None, float)
    buffer_size = url.pop("buffer_size", None, int)
    if flush_timeout is not None:
        options["flush_timeout"] = flush_timeout
    if buffer_size is not None:
        options["buffer_size"] = buffer_size
    return options


def _registry_parts(
    url: SinkURL, what: str, schema_given: bool = False
) -> Tuple[str, str, Dict[str, Any]]:
    """The registry URL, the schema file and the ``registry.*`` settings (their prefix
    dropped, numbers as numbers) of a ``kafka+FORMAT://`` URL; the file may be left out
    (``""``) when the schema is ``schema_given`` otherwise."""
    registry = url.pop("registry")
    schema = url.pop("schema", "")
    if not registry or not (schema or schema_given):
        raise SinkURLError(f"sink {url.masked!r}: give registry=URL and schema={what} in the query")
    registry_conf: Dict[str, Any] = {}
    for key in list(url.params):
        if key.startswith("registry."):
            name = key[len("registry.") :]
            kind = _REGISTRY_NUMBERS.get(name)
            registry_conf[name] = url.pop(key, None, kind) if kind else url.params.pop(key)
    return registry, schema, registry_conf


#: The registry client's settings that are numbers (a URL gives text).
_REGISTRY_NUMBERS = {
    "timeout": float,
    "max.retries": int,
    "retries.wait.ms": int,
    "retries.max.wait.ms": int,
    "cache.capacity": int,
    "cache.latest.ttl.sec": int,
}


def _read_schema(url: SinkURL, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError as exc:
        raise ConfigurationError(
            f"sink {url.masked!r}: cannot read schema {path!r}: {exc.strerror}"
        ) from exc


def _registry_factory(
    factory_class: Callable[..., F], url: SinkURL, registry: str, registry_conf: Dict[str, Any]
) -> F:
    """A Schema Registry sink factory of ``factory_class`` for ``url``."""
    options = _kafka_factory(url)
    with _librdkafka_settings(url):
        return factory_class(
            options.pop("bootstrap_servers"),
            registry,
            options.pop("client_id"),
            conf=_kafka_settings(url),
            schema_registry_conf=registry_conf,
            **options,
        )


def _key(records: Records) -> Callable[[Any, Transition], Any]:
    return records.key if records.key is not None else (lambda subject, transition: None)


@contextmanager
def _librdkafka_settings(url: SinkURL) -> Iterator[None]:
    """librdkafka checks its settings when a client is made (the factories do, without
    connecting): a setting it refuses is part of the URL, named in one line."""
    try:
        yield
    except ConfigurationError as exc:
        if type(exc.__cause__).__name__ != "KafkaException":
            raise
        # The factory's message, secrets masked: ... KafkaError{code=...,str="REASON"}
        text = str(exc)
        found = re.search(r'str="(.*)"\}', text)
        reason = found.group(1) if found else text.partition(": ")[2]
        named = re.search(r'"([^"]+)"', reason)
        setting = named.group(1) if named else None
        if setting is not None and setting not in url.params:
            # librdkafka names an alias by its property (linger.ms: queue.buffering.max.ms)
            setting = _refused_alone(url.params) or setting
        what = f"setting {setting!r}" if setting else "a setting"
        raise SinkURLError(f"sink {url.masked!r}: librdkafka refuses {what}: {reason}") from None


def _refused_alone(settings: Dict[str, str]) -> Optional[str]:
    """The first of ``settings`` that librdkafka refuses on its own, if one is."""
    from confluent_kafka import KafkaException, Producer

    for key, value in settings.items():
        try:
            Producer({key: value, "log_level": 0})
        except (KafkaException, TypeError, ValueError):
            return key
    return None
