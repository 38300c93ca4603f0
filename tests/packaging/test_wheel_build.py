"""The wheel doge-datagen builds, with and without a C compiler.

With a compiler the wheel holds the compiled extensions and is tagged for this interpreter and
platform. Without one (or with ``DOGE_DATAGEN_PURE_PYTHON=1``) it is the pure-Python
``py3-none-any`` wheel, and the user is told: pip shows a build's warnings when it installs
from a directory, and the warning also goes to the terminal of an install from a source
archive, where pip shows nothing of a build that succeeded.

Each test builds a wheel from a copy of the sources with ``pip wheel --no-build-isolation``.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["setup.py", "setup.cfg", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"]
NOT_BUILT = "WARNING: doge-datagen: the C extension doge_datagen.engine._speedups was not built"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's sources, without anything built in the work tree."""
    copy = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, copy / name)
    shutil.copytree(
        ROOT / "doge_datagen",
        copy / "doge_datagen",
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"),
    )
    return copy


def environment(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.pop("DOGE_DATAGEN_PURE_PYTHON", None)
    env.update(extra)
    return env


def pip_wheel(target: Path, out: Path, env: Dict[str, str]) -> Tuple[str, Path]:
    """``pip wheel`` of ``target`` (a directory or an archive), as a user types it: pip's
    output (without ``-v``) and the wheel."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
        + ["--no-cache-dir", "-w", str(out), str(target)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("*.whl")
    return result.stdout + result.stderr, wheel


def contents(wheel: Path) -> Tuple[List[str], str]:
    """The file names in ``wheel`` and its WHEEL metadata."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/WHEEL")]
        return names, archive.read(metadata).decode()


@pytest.mark.parametrize(
    "setting",
    [{"CC": "/bin/false"}, {"DOGE_DATAGEN_PURE_PYTHON": "1"}],
    ids=["without-a-compiler", "pure-python-asked"],
)
def test_a_build_without_extensions_makes_the_pure_python_wheel(
    source: Path, tmp_path: Path, setting: Dict[str, str]
) -> None:
    output, wheel = pip_wheel(source, tmp_path / "out", environment(**setting))
    names, metadata = contents(wheel)
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    assert "Root-Is-Purelib: true" in metadata and "Tag: py3-none-any" in metadata, metadata
    assert not [n for n in names if n.endswith((".so", ".pyd"))], names
    assert "doge_datagen/engine/loop.py" in names
    assert "doge_datagen/engine/_speedups.pyi" in names
    assert "doge_datagen/sinks/_jsonlines.pyi" in names
    if "CC" in setting:
        # Shown by a plain pip install from a directory: a build warning.
        assert NOT_BUILT in output, output
    else:
        assert "was not built" not in output, output

    # Installed, it runs its engine in Python, and says so.
    target = tmp_path / "installed"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
        + [str(wheel)],
        check=True,
        env=environment(),
        timeout=120,
    )
    version = subprocess.run(
        [sys.executable, "-m", "doge_datagen", "--version"],
        capture_output=True,
        text=True,
        env=environment(PYTHONPATH=str(target)),
        cwd=tmp_path,
        timeout=60,
    )
    assert version.returncode == 0, version.stderr
    assert "engine: Python loop" in version.stdout, version.stdout
    assert str(target) in version.stdout, version.stdout  # the copy just installed ran


def test_with_a_compiler_the_wheel_holds_the_extension_and_is_tagged_for_this_platform(
    source: Path, tmp_path: Path
) -> None:
    if shutil.which(os.environ.get("CC", "cc")) is None and os.environ.get("CI") != "true":
        pytest.skip("no C compiler on this machine")
    output, wheel = pip_wheel(source, tmp_path / "out", environment())
    names, metadata = contents(wheel)
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert wheel.name.split("-")[2] == tag and not wheel.name.endswith("-any.whl"), wheel.name
    assert "Root-Is-Purelib: false" in metadata, metadata
    assert [n for n in names if n.startswith("doge_datagen/engine/_speedups.")], names
    assert "was not built" not in output, output


def test_the_warning_reaches_the_terminal_of_an_install_from_a_source_archive(
    source: Path, tmp_path: Path
) -> None:
    """pip shows nothing of a build from an archive that succeeded, warnings included: the
    warning is written to the terminal the install runs in."""
    pty = pytest.importorskip("pty")
    subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "dist")],
        cwd=source,
        check=True,
        capture_output=True,
        env=environment(),
        timeout=120,
    )
    (archive,) = (tmp_path / "dist").glob("*.tar.gz")
    leader, follower = pty.openpty()
    # pip in a session of its own whose controlling terminal is the pseudo-terminal; its own
    # output goes to a pipe, so what arrives at the terminal was written there directly.
    in_session = (
        "import fcntl, os, subprocess, sys, termios; os.setsid(); "
        "fcntl.ioctl(0, termios.TIOCSCTTY, 0); sys.exit(subprocess.call(sys.argv[1:]))"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", in_session, sys.executable, "-m", "pip", "wheel"]
            + ["--no-deps", "--no-build-isolation", "--no-cache-dir"]
            + ["-w", str(tmp_path / "out"), str(archive)],
            stdin=follower,
            capture_output=True,
            text=True,
            env=environment(CC="/bin/false"),
            timeout=300,
        )
        os.set_blocking(leader, False)
        terminal = b""
        try:
            while chunk := os.read(leader, 65536):
                terminal += chunk
        except (BlockingIOError, OSError):
            pass
    finally:
        os.close(leader)
        os.close(follower)
    assert result.returncode == 0, result.stdout + result.stderr
    assert NOT_BUILT not in result.stdout + result.stderr  # pip kept the build's output
    assert NOT_BUILT in terminal.decode(errors="replace"), terminal
    (wheel,) = (tmp_path / "out").glob("*.whl")
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
