"""The suite's own layout: pytest imports each test module by its file name (``rootdir``-based
import mode, with ``tests/`` on the path), so two test files of one name in two folders would
stop the whole run at collection."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_file_name():
    names = Counter(
        path.name
        for path in TESTS.rglob("*.py")
        if path.name not in ("__init__.py", "conftest.py") and "support" not in path.parts
    )
    assert [name for name, count in names.items() if count > 1] == []


def test_every_test_folder_is_a_part_of_the_package_or_a_whole_of_its_own():
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    assert "support" in folders and "data" in folders
    assert not list(TESTS.glob("test_*.py")), "test modules live in the folder of their part"
