"""Models for the tests of sharded runs that checkpoint and resume, built in every worker (by
reference, so importable)."""

from typing import Any, Optional, Sequence

from doge_datagen import DataOnlineGenerator
from doge_datagen.core import shards
from support.shard_models import demo


def stopping(stops: Sequence[Optional[int]], *argv: str) -> DataOnlineGenerator:
    """The demo with ``doge-datagen demo`` options; shard ``k`` stops itself at its
    ``stops[k]``-th logout (None: it does not), as ``stop()`` (or a signal) would stop it."""
    datagen = demo(*argv)
    shard = shards.current()
    at = stops[shard.index if shard is not None else 0]
    seen = [0]

    def logout(subject: Any, transition: Any) -> bool:
        seen[0] += 1
        if seen[0] == at:
            datagen.stop()
        return True

    for transition in datagen.transitions:
        if transition.trigger == "logout":
            transition.action_callback = logout
    return datagen
