"""Kafka sinks writing Avro records in the Confluent Schema Registry wire format.

:class:`KafkaAvroSinkFactory` wraps a :class:`~doge_datagen.sinks.kafka.KafkaSinkFactory`
and gives each sink confluent-kafka ``AvroSerializer`` instances for its key and value. The
key and value functions return what fastavro writes: dicts for records, tuples or type hints
to pick a union branch. A record that does not fit its schema raises
:class:`~doge_datagen.errors.RecordError` naming the topic, the field and the transition.

The registry URL may be ``mock://...``: confluent-kafka's in-memory registry, for tests.
"""

import json
import logging
from typing import Any, Mapping, Optional

from confluent_kafka.schema_registry.avro import AvroSerializer
from fastavro import parse_schema
from fastavro.validation import ValidationError, validate

from doge_datagen.errors import ConfigurationError
from doge_datagen.sinks._schema_registry import CheckedSerializer, RegistrySinkFactory
from doge_datagen.sinks.kafka import KafkaSink, KeyFunction, ValueFunction

_LOGGER = logging.getLogger(__name__)

__all__ = ["KafkaAvroSinkFactory"]


def _parse(topic: str, part: str, schema: Any) -> Any:
    """The fastavro-parsed form of ``schema`` (a JSON string), or a ConfigurationError."""
    if not isinstance(schema, str):
        raise ConfigurationError(
            f"topic {topic!r}: the {part} schema must be an Avro schema as a JSON string, "
            f"got {type(schema).__name__}"
        )
    try:
        return parse_schema(json.loads(schema))
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"topic {topic!r}: the {part} schema is not JSON: {exc}") from exc
    except Exception as exc:  # fastavro raises several types for a bad schema
        raise ConfigurationError(
            f"topic {topic!r}: the {part} schema is not a valid Avro schema: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


class _CheckedAvroSerializer(CheckedSerializer):
    """An ``AvroSerializer`` whose failures say which field of the datum does not fit, or
    which registry did not answer.

    The serializer asks the registry for the schema's id on its first record (registering
    the schema unless told not to), so a registry that is down or refuses the schema shows
    up here, in the middle of a run: the error then names the registry (password masked)
    and the topic, instead of an HTTP library's bare ``Connection refused``.
    """

    __slots__ = ("_parsed",)

    def __init__(
        self, serializer: AvroSerializer, parsed: Any, part: str, topic: str, registry: str
    ) -> None:
        super().__init__(serializer, None, part, topic, registry)
        self._parsed = parsed

    def _misfit(self, obj: Any, exc: BaseException) -> str:
        detail = f"{type(exc).__name__}: {exc}"
        try:
            validate(obj, self._parsed, raise_errors=True)
        except ValidationError as invalid:
            problems = [
                f"{_field(error.field, self._part)}: {error.datum!r} does not fit "
                f"{_short(error.schema)}"
                for error in invalid.errors
            ]
            if problems:
                return f"{'; '.join(problems)} ({detail})"
        except Exception:  # validation is best effort: keep the serializer's own message
            _LOGGER.debug("validating a misfit datum failed", exc_info=True)
        return f"does not fit its schema ({detail})"


def _field(field: Optional[str], part: str) -> str:
    return f"field {field!r}" if field else f"the {part} itself"


def _short(schema: Any) -> str:
    """A schema, shortened to what a one-line message can hold."""
    if isinstance(schema, dict):
        name = schema.get("name")
        return f"{schema.get('type')} {name}" if name else str(schema.get("type"))
    text = json.dumps(schema) if isinstance(schema, list) else str(schema)
    return text if len(text) <= 80 else text[:77] + "..."


class KafkaAvroSinkFactory(RegistrySinkFactory):
    """Creates Avro :class:`~doge_datagen.sinks.kafka.KafkaSink` instances.

    :param bootstrap_servers: Kafka addresses, a list or a comma-separated string.
    :param schema_registry_url: the Schema Registry URL; ``mock://`` for an in-memory one.
    :param client_id: the Kafka ``client.id``.
    :param buffer_size: how many records the producer queue holds. These four are
        positional, in the order of the first releases; the rest are keywords.
    :param conf: librdkafka settings, as for :class:`KafkaSinkFactory`.
    :param schema_registry_conf: more registry client settings (``basic.auth.user.info``,
        ``ssl.ca.location``, ...); a ``url`` here overrides ``schema_registry_url``.
    :param flush_timeout: how long, in seconds, closing a sink waits for acknowledgements.
    :param connect_timeout: how long the cluster has to answer when a run starts (see
        :class:`~doge_datagen.sinks.kafka.KafkaSinkFactory`; ``None`` skips the check).
    """

    def create(
        self,
        topic: str,
        key_function: KeyFunction,
        key_schema: str,
        value_function: ValueFunction,
        value_schema: str,
        *,
        serializer_conf: Optional[Mapping[str, Any]] = None,
        name: Optional[str] = None,
    ) -> KafkaSink:
        """Create a sink writing Avro keys and values to ``topic``.

        :param key_function: ``(subject, transition) -> key datum``; ``None`` means no key.
        :param key_schema: the key's Avro schema, as a JSON string.
        :param value_function: ``(timestamp, subject, transition) -> value datum``.
        :param value_schema: the value's Avro schema, as a JSON string.
        :param serializer_conf: ``AvroSerializer`` settings for both serializers
            (``auto.register.schemas``, ``subject.name.strategy``, ...).
        :param name: how run summaries name the sink; ``kafka:<topic>`` by default.
        """
        if not isinstance(topic, str) or not topic:
            raise ConfigurationError(f"topic must be a non-empty string, got {topic!r}")
        serializers = []
        for part, schema in (("key", key_schema), ("value", value_schema)):
            parsed = _parse(topic, part, schema)
            try:
                serializer = AvroSerializer(
                    self.schema_registry_client,
                    schema,
                    conf=dict(serializer_conf) if serializer_conf else None,
                )
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(
                    f"topic {topic!r}: cannot build the {part} Avro serializer: {exc}"
                ) from exc
            serializers.append(
                _CheckedAvroSerializer(serializer, parsed, part, topic, self._registry)
            )
        return self.kafka_sink_factory.create(
            topic, key_function, value_function, serializers[0], serializers[1], name=name
        )
