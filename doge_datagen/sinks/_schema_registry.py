"""What the Schema Registry formats share (Avro, Protobuf, JSON Schema): a registry client
made from a URL and settings, a factory holding it with its Kafka sink factory, and a
serializer whose failures name the registry or the record.

The registry URL may be ``mock://...``: confluent-kafka's in-memory registry, for tests.
"""

import importlib
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Type, Union

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import SerializationContext, Serializer

from doge_datagen.errors import ConfigurationError, DeliveryError, RecordError
from doge_datagen.sinks.base import mask_url
from doge_datagen.sinks.kafka import _ENCODING_ERRORS, KafkaSinkFactory

__all__ = ["CheckedSerializer", "RegistrySinkFactory", "registry_client"]


def _transport_errors() -> Tuple[Type[BaseException], ...]:
    """What the registry client raises when the registry does not answer: its HTTP library's
    transport errors (httpx2's or httpx's, whichever confluent-kafka found), and OSError."""
    found: List[Type[BaseException]] = [OSError]
    for library in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(library).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(found)


_REGISTRY_UNREACHABLE = _transport_errors()


def registry_client(
    url: Optional[str], conf: Optional[Mapping[str, Any]]
) -> Tuple[SchemaRegistryClient, str]:
    """A registry client for ``url`` (``conf['url']`` wins) and the URL to show, masked."""
    if conf is not None and not isinstance(conf, Mapping):
        raise ConfigurationError(f"schema_registry_conf must be a dict, got {conf!r}")
    settings: Dict[str, Any] = dict(conf or {})
    if url is not None:
        settings.setdefault("url", url)
    given = settings.get("url")
    if not isinstance(given, str) or not given:
        raise ConfigurationError(
            f"schema_registry_url must be a non-empty URL string, got {given!r}"
        )
    try:
        client = SchemaRegistryClient.new_client(settings)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"invalid Schema Registry configuration: {exc}") from exc
    return client, mask_url(given)


class RegistrySinkFactory:
    """What the Schema Registry sink factories share: a registry client, the
    :class:`~doge_datagen.sinks.kafka.KafkaSinkFactory` whose producer their sinks use, and
    the registry URL (password masked) that their errors name.

    The first four arguments are positional, in the order of the first releases of the Avro
    factory; the rest are keywords.
    """

    def __init__(
        self,
        bootstrap_servers: Union[str, Iterable[str], None] = None,
        schema_registry_url: Optional[str] = None,
        client_id: Optional[str] = None,
        buffer_size: int = 100000,
        *,
        conf: Optional[Mapping[str, Any]] = None,
        schema_registry_conf: Optional[Mapping[str, Any]] = None,
        flush_timeout: float = 60.0,
        connect_timeout: Optional[float] = 10.0,
    ) -> None:
        self._check_installed()
        self.schema_registry_client, self._registry = registry_client(
            schema_registry_url, schema_registry_conf
        )
        self.kafka_sink_factory = KafkaSinkFactory(
            bootstrap_servers,
            client_id,
            buffer_size,
            conf=conf,
            flush_timeout=flush_timeout,
            connect_timeout=connect_timeout,
        )

    def _check_installed(self) -> None:
        """Raise the error naming the extra to install when the format's libraries are not
        there, before anything is connected."""

    @property
    def producer(self) -> Any:
        """The producer shared by the sinks of this factory."""
        return self.kafka_sink_factory.producer

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kafka_sink_factory!r}>"


class CheckedSerializer(Serializer):
    """A registry serializer whose failures say what went wrong in doge-datagen's terms.

    ``convert`` turns the value function's dict into what the serializer takes (a Protobuf
    message) and names the field that does not fit; a value the serializer refuses is a
    :class:`RecordError` (``describe(value)`` says where, when the serializer does not); a
    registry that does not answer, or refuses the schema, is a :class:`DeliveryError` naming
    the registry (password masked) and the topic. The registry is first asked on the first
    record, so that is where these show up.
    """

    __slots__ = ("_serializer", "_convert", "_part", "_topic", "_registry", "_describe")

    def __init__(
        self,
        serializer: Callable[[Any, Optional[SerializationContext]], Optional[bytes]],
        convert: Optional[Callable[[Any], Any]],
        part: str,
        topic: str,
        registry: str,
        describe: Optional[Callable[[Any], Optional[str]]] = None,
    ) -> None:
        self._describe = describe
        self._serializer = serializer
        self._convert = convert
        self._part = part
        self._topic = topic
        self._registry = registry

    def __call__(self, obj: Any, ctx: Optional[SerializationContext] = None) -> Optional[bytes]:
        if self._convert is not None and obj is not None:
            obj = self._convert(obj)
        try:
            return self._serializer(obj, ctx)
        except _REGISTRY_UNREACHABLE as exc:
            raise DeliveryError(
                f"topic {self._topic!r}: the Schema Registry at {self._registry} did not "
                f"answer for the {self._part} schema ({type(exc).__name__}: {exc}); is it "
                "running and the URL right?"
            ) from exc
        except SchemaRegistryError as exc:
            raise DeliveryError(
                f"topic {self._topic!r}: the Schema Registry at {self._registry} refused the "
                f"{self._part} schema: {exc}"
            ) from exc
        except _ENCODING_ERRORS as exc:
            raise RecordError(self._misfit(obj, exc)) from exc

    def _misfit(self, obj: Any, exc: BaseException) -> str:
        """What the :class:`RecordError` says of ``obj``, which the serializer refused."""
        where = self._describe(obj) if self._describe is not None else None
        return (
            f"topic {self._topic!r}: the {self._part} does not fit its schema: "
            f"{where or ''}{type(exc).__name__}: {exc}"
        )
