"""Data Online Generator: simulate actors with a probabilistic state machine and stream
their transitions, as events, into sinks (stdout, files, Kafka, Kafka + Avro, SQL databases).

The engine and the light sinks are imported here; the sinks that need Kafka, SQLAlchemy or
graphviz are resolved on first use, so ``import doge_datagen`` imports none of them.
"""

from importlib import import_module
from typing import Any, Dict

from doge_datagen.doge import (
    DataOnlineGenerator,
    EventSink,
    RunSummary,
    Subject,
    SubjectFactory,
    Transition,
)
from doge_datagen.errors import (
    ConfigurationError,
    DeliveryError,
    DogeError,
    RecordError,
    SinkCloseError,
)
from doge_datagen.sinks.memory import CountingSink, InMemorySink
from doge_datagen.sinks.printing import PrintingSink

__version__ = "1.0.0"

# Public name -> module that defines it, imported on first access (PEP 562).
_LAZY: Dict[str, str] = {
    "DataOnlineGeneratorGrapher": "doge_datagen.graph",
    "DbSink": "doge_datagen.sinks.db",
    "DbSinkFactory": "doge_datagen.sinks.db",
    "FileSink": "doge_datagen.sinks.file",
    "FileSinkFactory": "doge_datagen.sinks.file",
    "KafkaAvroSinkFactory": "doge_datagen.sinks.kafka_avro",
    "KafkaSink": "doge_datagen.sinks.kafka",
    "KafkaSinkFactory": "doge_datagen.sinks.kafka",
    "MqttSink": "doge_datagen.sinks.mqtt",
    "MqttSinkFactory": "doge_datagen.sinks.mqtt",
    "NatsSink": "doge_datagen.sinks.nats_jetstream",
    "NatsSinkFactory": "doge_datagen.sinks.nats_jetstream",
    "ParquetSink": "doge_datagen.sinks.parquet",
    "ParquetSinkFactory": "doge_datagen.sinks.parquet",
    "RabbitMQSink": "doge_datagen.sinks.rabbitmq",
    "RabbitMQSinkFactory": "doge_datagen.sinks.rabbitmq",
    "RedisStreamSink": "doge_datagen.sinks.redis_stream",
    "RedisStreamSinkFactory": "doge_datagen.sinks.redis_stream",
}

__all__ = [
    "ConfigurationError",
    "CountingSink",
    "DataOnlineGenerator",
    "DataOnlineGeneratorGrapher",
    "DbSink",
    "DbSinkFactory",
    "DeliveryError",
    "DogeError",
    "EventSink",
    "FileSink",
    "FileSinkFactory",
    "InMemorySink",
    "KafkaAvroSinkFactory",
    "KafkaSink",
    "KafkaSinkFactory",
    "MqttSink",
    "MqttSinkFactory",
    "NatsSink",
    "NatsSinkFactory",
    "ParquetSink",
    "ParquetSinkFactory",
    "PrintingSink",
    "RabbitMQSink",
    "RabbitMQSinkFactory",
    "RecordError",
    "RedisStreamSink",
    "RedisStreamSinkFactory",
    "RunSummary",
    "SinkCloseError",
    "Subject",
    "SubjectFactory",
    "Transition",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'doge_datagen' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> Any:
    return sorted(set(globals()) | set(_LAZY))
