"""Data Online Generator: simulate actors with a probabilistic state machine and stream
their transitions, as events, into sinks (stdout, files, Kafka, Kafka + Avro, SQL databases).

Every public name is resolved on first use: ``import doge_datagen`` imports nothing else, and
``from doge_datagen import KafkaSinkFactory`` is what imports confluent-kafka. The names and
the original module paths (``doge_datagen.doge``, ``doge_datagen.printing_sink``, ...) are the
same as when they were imported eagerly.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any, Dict

if TYPE_CHECKING:  # for type checkers and editors; at run time every name comes lazily
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

# Public name -> module that defines it, imported on first access (PEP 562). Nothing is
# imported with the package itself: ``from doge_datagen import X`` costs what X needs, and a
# command or a workers' server imports only what it uses. The sinks among __all__ come from
# doge_datagen.sinks, whose own table says which module defines each.
_LAZY: Dict[str, str] = {
    "ConfigurationError": "doge_datagen.errors",
    "DataOnlineGenerator": "doge_datagen.model",
    "DataOnlineGeneratorGrapher": "doge_datagen.graph",
    "DeliveryError": "doge_datagen.errors",
    "DogeError": "doge_datagen.errors",
    "EventSink": "doge_datagen.model",
    "RecordError": "doge_datagen.errors",
    "RunSummary": "doge_datagen.summary",
    "SinkCloseError": "doge_datagen.errors",
    "Subject": "doge_datagen.model",
    "SubjectFactory": "doge_datagen.model",
    "Transition": "doge_datagen.model",
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
    if module is None and name in __all__:
        module = "doge_datagen.sinks"  # a sink: resolved there
    if module is None:
        if not name.startswith("__"):
            # A submodule that nothing has imported yet (``doge_datagen.doge`` after a bare
            # ``import doge_datagen``), as an eager package would have had it.
            try:
                return import_module(f"{__name__}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{__name__}.{name}":
                    raise
        raise AttributeError(f"module 'doge_datagen' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> Any:
    return sorted(set(globals()) | set(__all__))
