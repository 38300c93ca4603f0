"""What the tests of the engine's C loop against its Python loop share: a count of the runs the
C loop took over, and a program run once per setting of ``DOGE_DATAGEN_PURE_PYTHON``."""

import os
import subprocess
import sys
from typing import Any, Dict, Iterable


class CountingLoop:
    """``engine._speedups`` with a count of the runs its loop took over, so that a test knows
    the C loop ran (a run it refuses falls back to the Python loop without a word)."""

    def __init__(self, module: Any) -> None:
        self._module = module
        self.runs = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def run_ticks(self, *args: Any) -> Any:
        self.runs += 1
        return self._module.run_ticks(*args)


def output_by_pure_python(probe: str, settings: Iterable[str]) -> Dict[str, str]:
    """What ``python -c probe`` prints with each of ``settings`` as DOGE_DATAGEN_PURE_PYTHON
    (the variable is read at import, so each needs its own interpreter); each must exit 0."""
    seen = {}
    for pure in settings:
        done = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            env=dict(os.environ, DOGE_DATAGEN_PURE_PYTHON=pure),
        )
        assert done.returncode == 0, done.stderr
        seen[pure] = done.stdout
    return seen
