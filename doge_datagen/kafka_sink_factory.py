"""The original module path of the Kafka sink, now :mod:`doge_datagen.sinks.kafka`."""

from doge_datagen.sinks.kafka import (
    POLL_EVERY,
    KafkaSink,
    KafkaSinkFactory,
    KeyFunction,
    ValueFunction,
)

__all__ = [
    "KafkaSink",
    "KafkaSinkFactory",
    "KeyFunction",
    "POLL_EVERY",
    "ValueFunction",
]
