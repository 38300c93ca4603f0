"""Build script; the metadata lives in setup.cfg and the build system in pyproject.toml.

The engine's hot loop has a C version (``doge_datagen/engine/_speedups.c``). It is optional: where
no C compiler or Python headers are at hand, the build goes on without it and the engine runs
its Python loop, which writes the same events, only slower.

pip shows nothing of a build that succeeds but its warnings (and those only when it installs
from a directory), so a message on standard error would go unseen: the warning that the
extensions were not built is a Python warning and also goes to the terminal pip runs in, when
there is one (see ``_tell``). ``doge-datagen --version`` says afterwards which loop runs.
A build without any compiled extension makes the pure-Python wheel, ``py3-none-any``, not one
tagged for this interpreter and platform.
"""

import os
import sys
import warnings
from typing import Optional, Set

from setuptools import Distribution, Extension, setup
from setuptools.command.build_ext import build_ext

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools before 70.1: the wheel package's command
    from wheel.bdist_wheel import bdist_wheel


def _built(distribution: Distribution) -> Set[str]:
    """The names of the extensions built so far in this build (set by OptionalBuildExt)."""
    built: Set[str] = distribution.__dict__.setdefault("doge_built_extensions", set())
    return built


class SpeedupsNotBuilt(UserWarning):
    """A C extension could not be built: the package works, its engine runs in Python."""


def _tell(message: str) -> None:
    """Warn with ``message`` where the user installing sees it.

    pip shows the output of a build only when it fails (or with ``-v``). It does show the
    build's warnings when it installs from a directory (``pip install .``), not when it builds
    a downloaded source archive; so the message also goes to the terminal the install runs in,
    when there is one and standard error is not it.
    """
    warnings.warn(message, SpeedupsNotBuilt, stacklevel=2)
    if sys.stderr.isatty():
        return
    try:
        with open("/dev/tty", "w") as terminal:  # no terminal (CI, Windows): the warning only
            terminal.write(message + "\n")
    except OSError:
        pass


class OptionalBuildExt(build_ext):
    """Builds the C extensions it can; warns, where the user sees it, of those it cannot."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all
            self._skipped(None, exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # a compiler that failed
            self._skipped(ext, exc)
        else:
            _built(self.distribution).add(ext.name)

    def _skipped(self, ext: Optional[Extension], exc: Exception) -> None:
        what = "the C extensions were" if ext is None else f"the C extension {ext.name} was"
        _tell(
            f"WARNING: doge-datagen: {what} not built ({exc}). doge-datagen works without "
            "them, several times slower: its engine runs in Python. For the fast engine, "
            "install a C compiler and the Python headers (Debian: apt-get install gcc "
            "python3-dev) and install doge-datagen again; `doge-datagen --version` shows "
            "which engine runs."
        )


class PureWheelWithoutExtensions(bdist_wheel):
    """Tags the wheel for this interpreter and platform only when it holds a compiled
    extension: without one (no compiler, or DOGE_DATAGEN_PURE_PYTHON=1) the wheel is the
    pure-Python ``py3-none-any`` that installs anywhere.

    ``bdist_wheel`` decides purity before it builds, from the extensions declared; this builds
    first (as ``bdist_wheel`` would, then skipping its own build) and decides from the
    extensions actually built.
    """

    def run(self) -> None:
        if not self.skip_build:
            scripts = self.reinitialize_command("build_scripts")
            scripts.executable = "python"
            scripts.force = True
            self.reinitialize_command("build_ext").inplace = False
            self.run_command("build")
            self.skip_build = True
        if not _built(self.distribution):
            # Installed as pure Python too (purelib, not platlib): nothing compiled is left.
            self.root_is_pure = True
            self.distribution.ext_modules = []
        super().run()


# The C draws must give Python's floats bit for bit: a multiply-add fused into one rounding
# (which GCC and Clang may do on aarch64 and other targets with FMA) would not.
speedups = Extension(
    "doge_datagen.engine._speedups",
    sources=["doge_datagen/engine/_speedups.c"],
    extra_compile_args=[] if os.name == "nt" else ["-ffp-contract=off"],
    optional=True,
)
# JSON Lines with json.dumps's text (doge_datagen/sinks/_json.py falls back to json.dumps).
jsonlines = Extension(
    "doge_datagen.sinks._jsonlines",
    sources=["doge_datagen/sinks/_jsonlines.c"],
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
    cmdclass={"build_ext": OptionalBuildExt, "bdist_wheel": PureWheelWithoutExtensions},
)
