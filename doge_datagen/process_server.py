"""The server that the ``"processes"`` backend of a sharded run forks each shard's process
from (the standard library's ``forkserver`` start method).

A shard's process forked from that server starts with doge-datagen and the model's module
already imported, in a few milliseconds. The server itself is a new interpreter: it needs
about 0.1 s to import them before the first shard can start, which is a tenth of a run of a
second or two. So it is started as early as possible, and in the background: by the command
line before it imports anything else, and by :func:`doge_datagen.distributed.run_sharded`
before it builds its own copy of the model. This module imports nothing but
:mod:`multiprocessing`, so that starting the server does not wait for the engine's imports.
Where there is no ``forkserver`` (Windows), shards are spawned and there is no server to
start.
"""

import multiprocessing
from typing import Any, Iterable, List

__all__ = ["context", "start"]

#: What the server imports before it forks any shard, besides the model's module: the
#: coordinator's side of a shard, and what building a model and running it import on first
#: use (sink URLs, profiles). Each is imported once here instead of once per shard.
PRELOAD = (
    "doge_datagen.distributed",
    "doge_datagen.sinks.registry",
    "doge_datagen.sinks.url_builders",
    "doge_datagen.profiles",
    "doge_datagen.timevarying",
)


def context(modules: Iterable[str] = ()) -> Any:
    """The multiprocessing context for shards: ``forkserver``, whose server imports
    :data:`PRELOAD` and ``modules`` when it starts, where there is one; else ``spawn``."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    server = multiprocessing.get_context("forkserver")
    preload: List[str] = list(PRELOAD)
    preload.extend(m for m in modules if m not in preload)
    # Takes effect when this process starts its server; a running server keeps its imports,
    # and a shard imports what the server had not.
    server.set_forkserver_preload(preload)
    return server


def start(modules: Iterable[str] = ()) -> None:
    """Start the server (see :func:`context`) in the background and return at once; nothing
    if it runs already, or if shards are spawned."""
    if context(modules).get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()
