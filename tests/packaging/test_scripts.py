"""The set-up scripts: apt-get waits, within a bound, for a package lock another process
holds, instead of failing with status 100.

The apt-get run here is a stand-in on the PATH that behaves as apt-get does with a lock
held: it takes the lock file with ``flock`` and, failing that, says "Could not get lock" and
exits 100. The lock is held by a real ``flock`` process the test starts and ends.
"""

import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKE_APT_GET = """#!/usr/bin/env bash
if ! flock -n "$DOGE_FAKE_LOCK" true; then
    echo "E: Could not get lock $DOGE_FAKE_LOCK. It is held by process 4242 (apt-get)" >&2
    exit 100
fi
if [ "$DOGE_FAKE_FAIL" = 1 ]; then
    echo "E: Unable to locate package nosuchpackage" >&2
    exit 100
fi
echo "$*" >> "$DOGE_FAKE_LOG"
"""


def apt_get(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "apt-get"
    fake.write_text(FAKE_APT_GET)
    fake.chmod(0o755)
    environment = dict(
        os.environ,
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        DOGE_FAKE_LOCK=str(tmp_path / "lock"),
        DOGE_FAKE_LOG=str(tmp_path / "log"),
        DOGE_APT_LOCK_POLL="0.2",
        **env,
    )
    script = f'source "{ROOT}/scripts/apt.sh" && apt_get "$@"'
    return subprocess.run(
        ["bash", "-c", script, "apt_get", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


def hold_lock(tmp_path: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(["flock", str(tmp_path / "lock"), "sleep", str(seconds)])
    (tmp_path / "lock").touch()
    deadline = time.monotonic() + 10
    while subprocess.run(["flock", "-n", str(tmp_path / "lock"), "true"]).returncode == 0:
        assert time.monotonic() < deadline, "the lock holder did not take the lock"
        time.sleep(0.02)
    return holder


def test_apt_get_waits_for_the_lock_and_says_so(tmp_path):
    holder = hold_lock(tmp_path, 2)
    try:
        result = apt_get(tmp_path, "install", "-y", "graphviz")
    finally:
        holder.wait()
    assert result.returncode == 0, result.stderr
    assert "another process holds the package lock; waiting for it" in result.stderr
    assert result.stderr.count("waiting for it") == 1
    assert (tmp_path / "log").read_text().splitlines() == [
        "-o DPkg::Lock::Timeout=0.2 install -y graphviz"
    ]


def test_apt_get_gives_up_after_its_bound_with_apt_gets_message(tmp_path):
    holder = hold_lock(tmp_path, 60)
    try:
        result = apt_get(tmp_path, "update", DOGE_APT_LOCK_WAIT="1")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 100
    assert "Could not get lock" in result.stderr
    assert "still holds the package lock after 1 s" in result.stderr
    assert not (tmp_path / "log").exists()


def test_other_apt_get_errors_are_not_waited_for(tmp_path):
    result = apt_get(tmp_path, "install", "-y", "nosuchpackage", DOGE_FAKE_FAIL="1")
    assert result.returncode == 100
    assert "Unable to locate package" in result.stderr and "waiting" not in result.stderr


def test_setup_env_installs_with_apt_get_through_the_waiting_function():
    text = (ROOT / "scripts/setup-env.sh").read_text()
    lines = [line for line in text.splitlines() if "apt-get " in line or "apt_get " in line]
    assert lines and all("apt_get " in line for line in lines if "install" in line), lines
    assert "source scripts/apt.sh" in text
