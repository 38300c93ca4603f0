"""Kafka sinks writing JSON values checked against a JSON Schema, in the Confluent Schema
Registry wire format: magic byte 0, the schema id, then the JSON document.

Each value is validated against the schema before it is written (a value that does not fit is
a :class:`~doge_datagen.errors.RecordError` naming the place in the document); the schema is
registered under the topic's value subject on the first record. Keys are written as UTF-8
strings. Install with ``pip install 'doge-datagen[jsonschema]'``.
"""

import json
from typing import Any, Callable, Dict, Mapping, Optional

from confluent_kafka.serialization import StringSerializer

from doge_datagen.errors import ConfigurationError
from doge_datagen.sinks._schema_registry import CheckedSerializer, RegistrySinkFactory
from doge_datagen.sinks.base import optional_import
from doge_datagen.sinks.kafka import KafkaSink, KeyFunction, ValueFunction

__all__ = ["KafkaJsonSchemaSinkFactory", "check_json_schema"]


def check_json_schema(schema: Any, where: str = "the schema") -> Any:
    """``schema`` (a JSON string or a dict) as a dict, checked against its metaschema."""
    jsonschema = optional_import("jsonschema", "jsonschema", "JSON Schema values")
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{where} is not JSON: {exc}") from exc
    if not isinstance(schema, Mapping):
        raise ConfigurationError(f"{where} must be a JSON object, got {type(schema).__name__}")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigurationError(f"{where} is not a valid JSON Schema: {exc.message}") from exc
    return dict(schema)


def _where(schema: Dict[str, Any]) -> Callable[[Any], Optional[str]]:
    """``value -> "field 'a.b': "``: the place of the first error in a value that does not
    fit (the serializer's own message leaves it out). Runs only for such a value."""
    jsonschema = optional_import("jsonschema", "jsonschema", "JSON Schema values")
    validator = jsonschema.validators.validator_for(schema)(schema)

    def where(value: Any) -> Optional[str]:
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is None or not error.absolute_path:
            return None
        return f"field {'.'.join(map(str, error.absolute_path))!r}: "

    return where


class KafkaJsonSchemaSinkFactory(RegistrySinkFactory):
    """Creates :class:`~doge_datagen.sinks.kafka.KafkaSink` instances writing JSON Schema
    values; the arguments are those of
    :class:`~doge_datagen.sinks.kafka_protobuf.KafkaProtobufSinkFactory`."""

    def _check_installed(self) -> None:
        optional_import("jsonschema", "jsonschema", "JSON Schema values")

    def create(
        self,
        topic: str,
        key_function: KeyFunction,
        value_function: ValueFunction,
        schema: Any,
        *,
        serializer_conf: Optional[Mapping[str, Any]] = None,
        name: Optional[str] = None,
    ) -> KafkaSink:
        """Create a sink writing string keys and JSON values of ``schema`` to ``topic``.

        :param value_function: ``(timestamp, subject, transition) -> dict``.
        :param schema: the value's JSON Schema, a JSON string or a dict.
        :param serializer_conf: ``JSONSerializer`` settings (``auto.register.schemas``...).
        """
        from confluent_kafka.schema_registry.json_schema import JSONSerializer

        if not isinstance(topic, str) or not topic:
            raise ConfigurationError(f"topic must be a non-empty string, got {topic!r}")
        checked_schema = check_json_schema(schema, f"topic {topic!r}: the value schema")
        try:
            serializer = JSONSerializer(
                json.dumps(checked_schema),
                self.schema_registry_client,
                conf=dict(serializer_conf) if serializer_conf else None,
            )
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"topic {topic!r}: cannot build the JSON Schema serializer: {exc}"
            ) from exc
        checked = CheckedSerializer(
            serializer, None, "value", topic, self._registry, _where(checked_schema)
        )
        return self.kafka_sink_factory.create(
            topic, key_function, value_function, StringSerializer("utf_8"), checked, name=name
        )
