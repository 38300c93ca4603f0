"""Sharded runs: one model cut into ranges of subjects, run in processes or on Dask.

- :mod:`~doge_datagen.distributed.sharded`: :func:`run_sharded`, the backends and the
  combined summary;
- :mod:`~doge_datagen.distributed.loading`: a model's build function found by name;
- :mod:`~doge_datagen.distributed.process_server`: the workers' server (forkserver) and
  :mod:`~doge_datagen.distributed._server_preload`, what it imports before forking.

The names are resolved on first use, so that the workers' server, which imports
:mod:`~doge_datagen.distributed.process_server` alone, starts without the engine.
"""

from importlib import import_module
from typing import Any

__all__ = ["BACKENDS", "load_build", "run_sharded", "start_process_server"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = getattr(import_module("doge_datagen.distributed.sharded"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
