"""Build script; the metadata lives in setup.cfg and the build system in pyproject.toml.

The engine's hot loop has a C version (``doge_datagen/_speedups.c``). It is optional: where
no C compiler or Python headers are at hand, the build goes on without it and the engine runs
its Python loop, which writes the same events, only slower.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Builds the C extension when it can; says so on standard error when it cannot."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all
            self._skipped(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # a compiler that failed
            self._skipped(exc)

    def _skipped(self, exc: Exception) -> None:
        print(
            f"doge-datagen: the C speed-ups were not built ({exc}); the engine runs in Python",
            file=sys.stderr,
        )


speedups = Extension(
    "doge_datagen._speedups",
    sources=["doge_datagen/_speedups.c"],
    optional=True,
)
# JSON Lines with json.dumps's text (doge_datagen/sinks/_json.py falls back to json.dumps).
jsonlines = Extension(
    "doge_datagen._jsonlines",
    sources=["doge_datagen/_jsonlines.c"],
    optional=True,
)
# The commonest values of datagen.fake (doge_datagen/values/_fake.py falls back to Python).
cvalues = Extension(
    "doge_datagen.values._cvalues",
    sources=["doge_datagen/values/_cvalues.c"],
    optional=True,
)

setup(
    ext_modules=[]
    if os.environ.get("DOGE_DATAGEN_PURE_PYTHON")
    else [speedups, jsonlines, cvalues],
    cmdclass={"build_ext": OptionalBuildExt},
)
