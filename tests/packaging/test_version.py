"""One version, above the release it replaces: the package, its metadata, ``--version`` and the
changelog say the same."""

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import doge_datagen

ROOT = Path(__file__).resolve().parents[2]


def as_tuple(text: str) -> tuple:
    return tuple(int(part) for part in re.match(r"(\d+)\.(\d+)\.(\d+)", text).groups())


def test_the_version_is_above_the_release_this_package_replaces():
    assert as_tuple(doge_datagen.__version__) > (1, 0, 4)


def test_the_installed_metadata_has_the_packages_version():
    assert version("doge-datagen") == doge_datagen.__version__


def test_the_command_prints_the_packages_version():
    done = subprocess.run(
        [sys.executable, "-m", "doge_datagen", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"doge-datagen {doge_datagen.__version__}"


def test_the_changelog_s_newest_release_is_the_packages_version():
    releases = re.findall(r"^## (\d+\.\d+\.\d+)", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert releases and releases[0] == doge_datagen.__version__


def test_the_version_is_written_once_in_the_sources():
    found = [
        str(path.relative_to(ROOT))
        for path in [
            ROOT / "setup.py",
            ROOT / "setup.cfg",
            *sorted(ROOT.glob("doge_datagen/**/*.py")),
        ]
        if re.search(r"""^\s*(__version__|version)\s*=\s*["']?\d+\.\d+""", path.read_text(), re.M)
    ]
    assert found == ["doge_datagen/__init__.py"]
