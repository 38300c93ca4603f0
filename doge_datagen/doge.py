"""The original module of doge-datagen, kept so that ``from doge_datagen.doge import ...`` works.

The model lives in :mod:`doge_datagen.model`, the engine in :mod:`doge_datagen.engine` and the
run summary in :mod:`doge_datagen.summary`; this module re-exports their public names.
"""

from doge_datagen.engine.summary import RunSummary
from doge_datagen.model import (
    DataOnlineGenerator,
    EventSink,
    Subject,
    SubjectFactory,
    Transition,
)

__all__ = [
    "DataOnlineGenerator",
    "EventSink",
    "RunSummary",
    "Subject",
    "SubjectFactory",
    "Transition",
]
