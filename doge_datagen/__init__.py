"""Data Online Generator: simulate actors with a probabilistic state machine and stream
their transitions, as events, into sinks (stdout, files, Kafka, Kafka + Avro, SQL databases).

Every public name is resolved on first use: ``import doge_datagen`` imports nothing else, and
``from doge_datagen import KafkaSinkFactory`` is what imports confluent-kafka. The names and
the original module paths (``doge_datagen.doge``, ``doge_datagen.printing_sink``, ...) are the
same as when they were imported eagerly.
"""

import sys
from importlib import import_module
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence

if TYPE_CHECKING:  # for type checkers and editors; at run time every name comes lazily
    from doge_datagen.analysis.graph import DataOnlineGeneratorGrapher
    from doge_datagen.core.types import EventSink, Subject, SubjectFactory, Transition
    from doge_datagen.engine.randomness import event_id
    from doge_datagen.engine.summary import RunSummary
    from doge_datagen.errors import (
        ConfigurationError,
        DeliveryError,
        DogeError,
        RecordError,
        SinkCloseError,
    )
    from doge_datagen.model import DataOnlineGenerator
    from doge_datagen.modelfile.builder import load
    from doge_datagen.populations.world import World
    from doge_datagen.sinks.memory import CountingSink, InMemorySink
    from doge_datagen.sinks.printing import PrintingSink

__version__ = "1.1.0"

# Public name -> module that defines it, imported on first access (PEP 562). Nothing is
# imported with the package itself: ``from doge_datagen import X`` costs what X needs, and a
# command or a workers' server imports only what it uses. The sinks among __all__ come from
# doge_datagen.sinks, whose own table says which module defines each.
_LAZY: Dict[str, str] = {
    "ConfigurationError": "doge_datagen.errors",
    "DataOnlineGenerator": "doge_datagen.model",
    "DataOnlineGeneratorGrapher": "doge_datagen.analysis.graph",
    "DeliveryError": "doge_datagen.errors",
    "DogeError": "doge_datagen.errors",
    "EventSink": "doge_datagen.core.types",
    "RecordError": "doge_datagen.errors",
    "RunSummary": "doge_datagen.engine.summary",
    "SinkCloseError": "doge_datagen.errors",
    "Subject": "doge_datagen.core.types",
    "SubjectFactory": "doge_datagen.core.types",
    "Transition": "doge_datagen.core.types",
    "World": "doge_datagen.populations.world",
    "event_id": "doge_datagen.engine.randomness",
    "load": "doge_datagen.modelfile.builder",
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
    "World",
    "event_id",
    "load",
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


# Modules of earlier releases that now live in a subpackage: ``import doge_datagen.pacing`` (or
# ``from doge_datagen.fit_cli import ...``) gives the module at its new place, the same object,
# so that code written for those releases runs unchanged. The package itself never imports
# these names. (The modules of the original release, ``doge_datagen.doge``,
# ``doge_datagen.printing_sink``, ..., are files of their own.)
_MOVED_MODULES: Dict[str, str] = {
    "_fit_columns": "doge_datagen.fit._columns",
    "_server_preload": "doge_datagen.distributed._server_preload",
    "fit_cli": "doge_datagen.cli.fit",
    "loading": "doge_datagen.distributed.loading",
    "pacing": "doge_datagen.engine.pacing",
    "plots": "doge_datagen.analysis.plots",
    "process_server": "doge_datagen.distributed.process_server",
    "progress": "doge_datagen.engine.progress",
    "randomness": "doge_datagen.engine.randomness",
    "shards": "doge_datagen.core.shards",
    "status_page": "doge_datagen.metrics.status_page",
    "summary": "doge_datagen.engine.summary",
    "timevarying": "doge_datagen.engine.timevarying",
    "validators": "doge_datagen.engine.validators",
}


class _MovedModule(Loader, MetaPathFinder):
    """Finds ``doge_datagen.<old name>`` and gives the module that now holds it."""

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]], target: Any = None
    ) -> Optional[ModuleSpec]:
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in _MOVED_MODULES:
            return None
        return ModuleSpec(fullname, self)

    def create_module(self, spec: ModuleSpec) -> Any:
        return import_module(_MOVED_MODULES[spec.name.rpartition(".")[2]])

    def exec_module(self, module: Any) -> None:
        """The module is the new one, already run."""


if not any(isinstance(finder, _MovedModule) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModule())
