"""A banking run stopped, failed or killed at an exact moment: its n-th ``logout`` event.

The resume tests cut runs there: a logout happens often and changes nothing but the state, so
the moment is the same in every run of a seed, in both loops and in any shard.
"""

import os
import signal
from typing import Any, Callable, Optional


def on_logout(datagen: Any, act: Callable[[int], None]) -> None:
    """Call ``act(n)`` at the model's n-th ``logout`` event (n from 1), before it happens."""
    seen = [0]
    logout = next(t for t in datagen.transitions if t.trigger == "logout")

    def counted(subject: Any, transition: Any) -> bool:
        seen[0] += 1
        act(seen[0])
        return True

    logout.action_callback = counted


def stop_at(datagen: Any, stop: Optional[int], error: Optional[BaseException] = None) -> None:
    """At the ``stop``-th logout, raise ``error`` if given, else stop the run (no-op for
    ``stop`` None)."""
    if stop is None:
        return

    def act(n: int) -> None:
        if n == stop:
            if error is not None:
                raise error
            datagen.stop()

    on_logout(datagen, act)


def kill_at(datagen: Any, at: int, saved: Any = None) -> None:
    """SIGKILL this process at the ``at``-th logout, or at the first one after it once the
    checkpoint ``saved`` exists (when given): a crash just after a checkpoint was written."""

    def act(n: int) -> None:
        if n == at if saved is None else n >= at and saved.exists():
            os.kill(os.getpid(), signal.SIGKILL)

    on_logout(datagen, act)
