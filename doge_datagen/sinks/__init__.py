"""The sinks: where events go.

One module per family (``printing``, ``memory``, ``file``, ``kafka``, ``kafka_avro``,
``kafka_protobuf``, ``kafka_jsonschema``, ``db``, ``http``, ``object_storage`` and the event
buses); :mod:`doge_datagen.sinks.disorder` wraps any of them to make its stream late,
duplicated and lossy; :mod:`doge_datagen.sinks.base` holds what they share and
:mod:`doge_datagen.sinks.registry` maps URL schemes to sink builders. The modules that need a
client library are imported on first use, so ``import doge_datagen.sinks`` imports none.
"""

from importlib import import_module
from typing import Any, Dict

from doge_datagen.sinks.base import Sink, delivery_counts, mask_url, optional_import

# Public name -> module that defines it, imported on first access (PEP 562).
_LAZY: Dict[str, str] = {
    "CountingSink": "doge_datagen.sinks.memory",
    "DbSink": "doge_datagen.sinks.db",
    "DbSinkFactory": "doge_datagen.sinks.db",
    "DisorderedSink": "doge_datagen.sinks.disorder",
    "FileSink": "doge_datagen.sinks.file",
    "FileSinkFactory": "doge_datagen.sinks.file",
    "HttpSink": "doge_datagen.sinks.http",
    "InMemorySink": "doge_datagen.sinks.memory",
    "KafkaAvroSinkFactory": "doge_datagen.sinks.kafka_avro",
    "KafkaJsonSchemaSinkFactory": "doge_datagen.sinks.kafka_jsonschema",
    "KafkaProtobufSinkFactory": "doge_datagen.sinks.kafka_protobuf",
    "KafkaSink": "doge_datagen.sinks.kafka",
    "KafkaSinkFactory": "doge_datagen.sinks.kafka",
    "MqttSink": "doge_datagen.sinks.mqtt",
    "MqttSinkFactory": "doge_datagen.sinks.mqtt",
    "NatsSink": "doge_datagen.sinks.nats_jetstream",
    "NatsSinkFactory": "doge_datagen.sinks.nats_jetstream",
    "ObjectSink": "doge_datagen.sinks.object_storage",
    "ParquetSink": "doge_datagen.sinks.parquet",
    "ParquetSinkFactory": "doge_datagen.sinks.parquet",
    "PrintingSink": "doge_datagen.sinks.printing",
    "RabbitMQSink": "doge_datagen.sinks.rabbitmq",
    "RabbitMQSinkFactory": "doge_datagen.sinks.rabbitmq",
    "RedisStreamSink": "doge_datagen.sinks.redis_stream",
    "RedisStreamSinkFactory": "doge_datagen.sinks.redis_stream",
}

__all__ = [
    "CountingSink",
    "DbSink",
    "DbSinkFactory",
    "DisorderedSink",
    "FileSink",
    "FileSinkFactory",
    "HttpSink",
    "InMemorySink",
    "KafkaAvroSinkFactory",
    "KafkaJsonSchemaSinkFactory",
    "KafkaProtobufSinkFactory",
    "KafkaSink",
    "KafkaSinkFactory",
    "MqttSink",
    "MqttSinkFactory",
    "NatsSink",
    "NatsSinkFactory",
    "ObjectSink",
    "ParquetSink",
    "ParquetSinkFactory",
    "PrintingSink",
    "RabbitMQSink",
    "RabbitMQSinkFactory",
    "RedisStreamSink",
    "RedisStreamSinkFactory",
    "Sink",
    "delivery_counts",
    "mask_url",
    "optional_import",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'doge_datagen.sinks' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> Any:
    return sorted(set(globals()) | set(_LAZY))
