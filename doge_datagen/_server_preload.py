"""Imported by the workers' server as it starts (the last module of
:data:`doge_datagen.process_server.PRELOAD`): loads the models' modules and files named in
:data:`~doge_datagen.process_server.MODELS_VARIABLE`, so that every shard forked from the server
finds them loaded.

A model that fails to load here is left alone, whatever it raised: each shard then loads it
again, and reports the error as it would without a server.

A model whose loading starts threads (a client library's, say, made at the module's top level)
is not kept either: a shard forked from this process would get the model's objects without
the threads that serve them, and could wait on them forever. The server then starts over as the
same process (``exec``, with the same listening socket), without the models, and each shard
loads its model itself.
"""

import os
import sys
import threading

from doge_datagen import loading
from doge_datagen.process_server import MODELS_VARIABLE


def _threads() -> int:
    """This process's threads: those of the operating system where it lists them (a client
    library's threads are not Python's), else Python's."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _load_models() -> None:
    path, *names = os.environ.pop(MODELS_VARIABLE, "").split("\n")
    if path:
        sys.path[:] = path.split(os.pathsep)  # as a shard's process gets it: the command's
    threads = _threads()
    for name in names:
        if name:
            try:
                loading.load_module(name)
            except (Exception, SystemExit):  # the shards load it again and report it
                pass
    if _threads() > threads:
        # The variable is gone from the environment: the new image loads no model.
        os.execv(sys.executable, sys.orig_argv)


_load_models()
