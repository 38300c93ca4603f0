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
import signal
import sys
import threading

from doge_datagen.distributed import loading
from doge_datagen.distributed.process_server import MODELS_VARIABLE


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


def _outlive_the_group_signals() -> None:
    """Let the server outlive SIGTERM, as the standard library lets it outlive SIGINT.

    A signal sent to the command's whole process group (a terminal's Ctrl-C, ``kill -TERM
    -PGID``, a service manager's stop) reaches the server too. The shards stop gracefully on
    it, but the coordinator learns how each shard's process ended from the server: a server
    that died first makes every shard look lost, and their results are never read. The
    server still ends when the coordinator does (it reads the end of a pipe from it). A
    process forked from it gets SIGTERM's default back, and a shard then sets its own.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))


_outlive_the_group_signals()
_load_models()
