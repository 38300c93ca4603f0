"""The original module path of the Kafka Avro sink, now :mod:`doge_datagen.sinks.kafka_avro`."""

from doge_datagen.sinks.kafka_avro import (
    KafkaAvroSinkFactory,
)

__all__ = [
    "KafkaAvroSinkFactory",
]
