"""The server that the ``"processes"`` backend of a sharded run forks each shard's process
from (the standard library's ``forkserver`` start method) when the coordinator cannot simply be
copied.

A coordinator with a single thread, on Linux, is copied by ``fork`` instead: it has built its
own copy of the model, so it has imported everything a shard needs, and its copies start their
shards at once. This server is for a coordinator with a second thread (a client library's, a
metrics server's), which ``fork`` would copy without that thread: a shard's process forked from
the server starts with doge-datagen and the model's module already imported, in a few
milliseconds, but the server itself is a new interpreter, which needs about 0.1 s to import them
before the first shard can start. It is started when a run needs it, or earlier by
:func:`doge_datagen.distributed.start_process_server`, in the background. It is not started
speculatively: on a machine of two cores its start competes with the coordinator and the shards
for the CPU (0.1-0.2 s of it, and a third interpreter, the resource tracker). This module
imports nothing but :mod:`multiprocessing`, :mod:`os` and :mod:`sys`, so that starting the
server does not wait for the engine's imports. Where there is no ``forkserver`` (Windows),
shards are spawned and there is no server to start.

The model's own module or file is loaded in the server too (:mod:`doge_datagen._server_preload`),
once, instead of once in every shard: its imports (a fake-data library, say) are then paid while
the command goes on, not by each shard after the run has begun. It is loaded through the same
loader as the shards use (:mod:`doge_datagen.loading`), and a model that fails to load there is
left alone: each shard loads it again and reports the error as a run without a server would.
"""

import multiprocessing
import os
import sys
from typing import Any, Iterable

__all__ = ["context", "start"]

#: What the server imports before it forks any shard, besides the model's module: the
#: coordinator's side of a shard, and what building a model and running it import on first
#: use (sink URLs, profiles). Each is imported once here instead of once per shard.
PRELOAD = (
    "doge_datagen.distributed.sharded",
    "doge_datagen.sinks.registry",
    "doge_datagen.sinks.url_builders",
    "doge_datagen.profiles",
    "doge_datagen.engine.timevarying",
    # What a shard's process imports as it unpickles its job and reports back.
    "multiprocessing.synchronize",
    "multiprocessing.popen_forkserver",
    # Last: loads the models named in MODELS_VARIABLE.
    "doge_datagen.distributed._server_preload",
)

#: The environment variable that hands the server, as it starts, the models to load. Its first
#: line is this process's ``sys.path`` (joined by ``os.pathsep``: the standard library's server
#: keeps its own before Python 3.12), then one line per model: the part before ``:`` of a
#: ``module:function`` or a ``file.py:function``.
MODELS_VARIABLE = "DOGE_DATAGEN_SERVER_MODELS"


def context() -> Any:
    """The multiprocessing context for shards: ``forkserver``, whose server imports
    :data:`PRELOAD` when it starts, where there is one; else ``spawn``."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    server = multiprocessing.get_context("forkserver")
    # Takes effect when this process starts its server; a running server keeps its imports,
    # and a shard imports what the server had not.
    server.set_forkserver_preload(list(PRELOAD))
    return server


def start(models: Iterable[str] = ()) -> None:
    """Start the server (see :func:`context`) in the background and return at once; nothing
    if it runs already, or if shards are spawned. ``models`` are modules or model files (the
    part before ``:`` of a build's name) for the server to load as it starts."""
    if context().get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    names = [name for name in models if name and "\n" not in name]
    if not names:
        forkserver.ensure_running()
        return
    # The server inherits this process's environment when it is started, here or never:
    # set for that moment only.
    path = [entry for entry in sys.path if os.pathsep not in entry and "\n" not in entry]
    before = os.environ.get(MODELS_VARIABLE)
    os.environ[MODELS_VARIABLE] = "\n".join([os.pathsep.join(path), *names])
    try:
        forkserver.ensure_running()
    finally:
        if before is None:
            del os.environ[MODELS_VARIABLE]
        else:
            os.environ[MODELS_VARIABLE] = before
