"""What the Schema Registry formats share (Protobuf, JSON Schema): a registry client made from
a URL and settings, a serializer whose failures name the registry or the record, and the
``kafka+protobuf://`` / ``kafka+jsonschema://`` URL parts common to both.

The registry URL may be ``mock://...``: confluent-kafka's in-memory registry, for tests.
"""

from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import SerializationContext, Serializer

from doge_datagen.errors import ConfigurationError, DeliveryError, RecordError
from doge_datagen.sinks.base import mask_url
from doge_datagen.sinks.kafka import _ENCODING_ERRORS
from doge_datagen.sinks.kafka_avro import _REGISTRY_UNREACHABLE

__all__ = ["CheckedSerializer", "registry_client"]


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
            where = self._describe(obj) if self._describe is not None else None
            raise RecordError(
                f"topic {self._topic!r}: the {self._part} does not fit its schema: "
                f"{where or ''}{type(exc).__name__}: {exc}"
            ) from exc
