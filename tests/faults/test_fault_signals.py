"""SIGINT and SIGTERM at random moments of a ``--forever`` run, and a second signal while the
graceful stop waits for a broker that is gone.

Whenever the signal comes, what the run reports and what the sinks hold agree: a summary
that counts N events goes with N lines in the file and N rows in the table, each once; a run
stopped before it began writes nothing and claims nothing.
"""

import random
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from support.fault_tools import (
    SUMMARY,
    Broker,
    assert_no_duplicates,
    finish,
    jsonl_rows,
    read_stderr_until,
    start,
)
from support.kafka_fixtures import create_topic

SINK_ROW = r"^\s+{name}\s+(\d+)\s+(\d+|-)\s+(\d+|-)\s*$"


def stored(jsonl: Path, db: Path):
    lines = jsonl_rows(jsonl) if jsonl.exists() else []
    rows = 0
    if db.exists():
        with sqlite3.connect(db) as conn:
            try:
                rows = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            except sqlite3.OperationalError:  # stopped before the table was made
                rows = 0
    return lines, rows


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(20))
def test_a_signal_at_a_random_moment(tmp_path, trial):
    rng = random.Random(trial)
    signum = rng.choice([signal.SIGINT, signal.SIGTERM])
    delay = rng.uniform(0.0, 1.2)
    jsonl, db = tmp_path / "e.jsonl", tmp_path / "e.db"
    proc = start(
        "--forever",
        "--speed",
        "3000",
        "--subjects",
        "3000",
        "--seed",
        str(trial),
        "--sink",
        f"jsonl:{jsonl}",
        "--sink",
        f"sqlite:///{db}",
    )
    read_stderr_until(proc, "banking demo writing to")
    time.sleep(delay)
    proc.send_signal(signum)
    stdout, stderr = finish(proc, timeout=60)

    lines, rows = stored(jsonl, db)
    assert_no_duplicates(lines, "the JSON Lines file")
    match = SUMMARY.search(stdout)
    if proc.returncode == 0:
        # Stopped gracefully: the summary counts exactly what each sink holds.
        assert match and "(stopped)" in stdout, stderr
        assert int(match.group(1)) == len(lines) == rows
    else:
        # The signal came before the run began (while the sinks were being set up): it is
        # reported as an interruption, and whatever summary there is matches the sinks.
        assert proc.returncode == (130 if signum == signal.SIGINT else 143), stderr
        assert ("interrupted" if signum == signal.SIGINT else "terminated") in stderr
        events = int(match.group(1)) if match else 0
        assert events == len(lines) == rows


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_during_a_flush_to_a_dead_broker(tmp_path, signum):
    broker = Broker(tmp_path)
    broker.start()
    try:
        topic = create_topic(broker.bootstrap, prefix="doge-fault")
        jsonl = tmp_path / "after-kafka.jsonl"
        proc = start(
            "--forever",
            "--speed",
            "3000",
            "--subjects",
            "3000",
            "--progress",
            "--sink",
            f"kafka://{broker.bootstrap}/{topic}",
            "--sink",
            f"jsonl:{jsonl}",
        )
        read_stderr_until(proc, r"\d+ events, [\d,]+/s")
        broker.pause()  # records pile up unacknowledged...
        time.sleep(0.5)
        broker.kill()  # ...and will never be
        proc.send_signal(signum)  # graceful stop: Kafka's flush now waits for a dead broker
        time.sleep(1.5)
        assert proc.poll() is None, "the flush should still be waiting"
        proc.send_signal(signum)  # cut it short
        stdout, stderr = finish(proc, timeout=30)  # no hang: the flush gave up at once
    finally:
        broker.stop()

    assert proc.returncode == (130 if signum == signal.SIGINT else 143), stderr
    events = int(SUMMARY.search(stdout).group(1))
    kafka = re.search(SINK_ROW.format(name=re.escape(f"kafka:{topic}")), stdout, re.MULTILINE)
    assert kafka, stdout
    counted, delivered, failed = (int(kafka.group(i)) for i in (1, 2, 3))
    # Nothing silently lost: what Kafka did not confirm is counted as failed...
    assert counted == events and delivered + failed == events and failed > 0
    # ...and the sink listed after Kafka was still closed, with every event in it.
    lines = jsonl_rows(jsonl)
    assert len(lines) == events > 0
    assert_no_duplicates(lines, "the JSON Lines file")
    assert "not delivered" in stdout and "error" in stderr
