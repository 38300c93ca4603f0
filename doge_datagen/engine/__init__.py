"""The engine: what happens to a model once :meth:`DataOnlineGenerator.start` hands it over.

- :mod:`~doge_datagen.engine.loop`: compiled tables, the draw, the loop (in Python, and in C
  through ``_speedups``) and a run's life cycle, from opening the sinks to the summary;
- :mod:`~doge_datagen.engine.timevarying`: the draws of states and arrivals whose rates follow
  profiles;
- :mod:`~doge_datagen.engine.randomness`: ``datagen.random``, keyed per subject and event;
- :mod:`~doge_datagen.engine.pacing`: keeping a run to the wall clock;
- :mod:`~doge_datagen.engine.progress`: the progress line;
- :mod:`~doge_datagen.engine.summary`: the :class:`RunSummary` a run returns;
- :mod:`~doge_datagen.engine.validators`: the checks of a model's states, transitions and sinks.

The engine reads a model through :class:`~doge_datagen.engine.loop.Model` (a protocol), never
the generator class: it imports the ground floor (:mod:`doge_datagen.core`), the profiles and
the errors, and nothing above it. ``HAS_SPEEDUPS`` says whether the C loop is built and in use
(``DOGE_DATAGEN_PURE_PYTHON=1`` turns it off).
"""

from doge_datagen.core.keys import draw, engine_key
from doge_datagen.engine.loop import (
    HAS_SPEEDUPS,
    Run,
    close_sinks,
    compile_tables,
    next_move,
    open_sinks,
    run,
    summarize,
)
from doge_datagen.engine.summary import RunSummary

__all__ = [
    "HAS_SPEEDUPS",
    "Run",
    "RunSummary",
    "close_sinks",
    "compile_tables",
    "draw",
    "engine_key",
    "next_move",
    "open_sinks",
    "run",
    "summarize",
]
