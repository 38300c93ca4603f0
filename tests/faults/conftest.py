"""Fixtures of the fault suite; the rest of what it shares is in ``support/fault_tools.py``."""

import subprocess
import uuid

import pytest
from support.services import service_missing


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs of the test's own (mounting needs root), for a disk that fills up."""
    mount = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        service_missing(f"a 1 MiB tmpfs (mount failed: {done.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
