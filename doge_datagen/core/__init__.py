"""The ground floor: plain types and single rules that every other part uses.

- :mod:`~doge_datagen.core.types`: ``Subject``, ``SubjectFactory``, ``Transition``, ``EventSink``;
- :mod:`~doge_datagen.core.checks`: the number checks (counts, positive numbers, ticks, timestamps);
- :mod:`~doge_datagen.core.keys`: SplitMix64 and the derivation of every stream's key;
- :mod:`~doge_datagen.core.delivery`: a sink's delivered and failed counts, read one way;
- :mod:`~doge_datagen.core.shards`: which part of a sharded run this process is;
- :mod:`~doge_datagen.core.forking`: when this process may be copied with ``fork``;
- :mod:`~doge_datagen.core.masking`: which values are secrets, and how they are masked;
- :mod:`~doge_datagen.core.text`: durations, instants and aligned tables written as text.

Modules here import nothing of the package but :mod:`doge_datagen.errors`.
"""

from doge_datagen.core.delivery import delivery_counts, extra_counts
from doge_datagen.core.keys import derive_key, draw, engine_key
from doge_datagen.core.types import EventSink, Subject, SubjectFactory, Transition

__all__ = [
    "EventSink",
    "Subject",
    "SubjectFactory",
    "Transition",
    "delivery_counts",
    "derive_key",
    "draw",
    "engine_key",
    "extra_counts",
]
