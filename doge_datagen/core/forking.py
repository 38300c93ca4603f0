"""When a copy of this process may be made with ``fork``: the one rule the shards of a
sharded run and the checkpoint writer follow."""

import os
import sys
import threading

__all__ = ["fork_is_safe"]


def fork_is_safe() -> bool:
    """Whether this process can be copied with ``fork`` as it is: only on Linux (where
    ``fork`` of a process that has used system frameworks is safe), and only while it has a
    single thread, Python's or another's (``/proc/self/task``): a copy gets the locks a
    second thread held, without the thread to release them."""
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False
