"""Imported by the workers' server as it starts (the last module of
:data:`doge_datagen.process_server.PRELOAD`): loads the models' modules and files named in
:data:`~doge_datagen.process_server.MODELS_VARIABLE`, so that every shard forked from the server
finds them loaded.

A model that fails to load here is left alone, whatever it raised: each shard then loads it
again, and reports the error as it would without a server.
"""

import os
import sys

from doge_datagen import loading
from doge_datagen.process_server import MODELS_VARIABLE


def _load_models() -> None:
    path, *names = os.environ.pop(MODELS_VARIABLE, "").split("\n")
    if path:
        sys.path[:] = path.split(os.pathsep)  # as a shard's process gets it: the command's
    for name in names:
        if name:
            try:
                loading.load_module(name)
            except (Exception, SystemExit):  # the shards load it again and report it
                pass


_load_models()
