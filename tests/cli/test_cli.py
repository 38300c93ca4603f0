"""The doge-datagen command: demo, run, graph, errors, and stopping by signal."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from doge_datagen import InMemorySink
from doge_datagen.cli.main import event_row
from doge_datagen.demo import banking_generator

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, cwd=None, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "doge_datagen", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=timeout,
    )


def summary_events(stdout: str) -> int:
    match = re.search(r"^(\d+) events from", stdout, re.MULTILINE)
    assert match, stdout
    return int(match.group(1))


def test_demo_writes_the_streams_to_jsonl_and_every_event_to_sqlite(tmp_path):
    out = tmp_path / "demo"
    result = cli(
        "demo",
        "--out",
        str(out),
        "--subjects",
        "300",
        "--ticks",
        "500",
        "--seed",
        "5",
        "--timestamp-start",
        "1700000000000",
    )
    assert result.returncode == 0, result.stderr
    # The same seeded model in memory: what the files must hold, line by line.
    streams = [InMemorySink(event_row, name=s) for s in ("clickstream", "trx", "balance", "loan")]
    everything = InMemorySink(event_row)
    datagen = banking_generator(
        *streams, subjects_num=300, ticks_num=500, seed=5, timestamp_start=1_700_000_000_000
    )
    for transition in datagen.transitions:
        transition.event_sinks.append(everything)
    summary = datagen.start()
    assert summary_events(result.stdout) == summary.events == len(everything.events) > 100
    for sink in streams:
        lines = (out / f"{sink.name}.jsonl").read_text().splitlines()
        assert [json.loads(line) for line in lines] == [e.value for e in sink.events]
    with sqlite3.connect(out / "events.db") as db:
        rows = db.execute(
            "SELECT timestamp, user_id, balance, loan_balance, event, from_state, to_state "
            "FROM events ORDER BY rowid"
        ).fetchall()
    assert rows == [tuple(e.value.values()) for e in everything.events]


def test_demo_into_named_sinks_writes_each_event_once(tmp_path):
    jsonl = tmp_path / "all.jsonl"
    db = tmp_path / "all.db"
    result = cli(
        "demo",
        "--sink",
        f"jsonl:{jsonl}",
        "--sink",
        f"sqlite:///{db}?table=moves",
        "--subjects",
        "200",
        "--ticks",
        "300",
        "--seed",
        "6",
    )
    assert result.returncode == 0, result.stderr
    events = summary_events(result.stdout)
    assert len(jsonl.read_text().splitlines()) == events
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM moves").fetchone()[0] == events


def test_help_documents_commands_options_and_sink_urls():
    top = cli("--help")
    assert top.returncode == 0
    for word in ("demo", "run", "graph"):
        assert word in top.stdout
    demo = cli("demo", "--help").stdout
    for word in (
        "--sink",
        "--subjects",
        "--ticks",
        "--seed",
        "--speed",
        "--forever",
        "kafka://",
        "jsonl:",
    ):
        assert word in demo, word


MODEL = """
from doge_datagen import DataOnlineGenerator, InMemorySink

def build():
    datagen = DataOnlineGenerator(["a", "b"], "a", object, 10, 1000, 5, seed=1)
    datagen.add_transition("go", "a", "b", 50, event_sinks=[InMemorySink(name="mem")])
    datagen.add_transition("back", "b", "a", 50)
    return datagen

def not_a_model():
    return 42

def raising():
    raise ZeroDivisionError("no model today")

def too_likely():
    datagen = build()
    datagen.transitions[0].probability = 500
    return datagen
"""


def test_run_a_users_model_from_a_file_with_overrides(tmp_path):
    (tmp_path / "mymodel.py").write_text(MODEL)
    result = cli("run", f"{tmp_path / 'mymodel.py'}:build", "--ticks", "40", "--subjects", "25")
    assert result.returncode == 0, result.stderr
    assert "from 25 subjects over 40 ticks" in result.stdout
    # By module name, from the working directory.
    result = cli("run", "mymodel:build", "--seed", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "seed 3" in result.stdout


def test_graph_renders_a_users_model(tmp_path):
    (tmp_path / "mymodel.py").write_text(MODEL)
    target = tmp_path / "g.png"
    result = cli("graph", "mymodel:build", "-o", str(target), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "args, words, status",
    [
        (["demo", "--sink", "ftp://nowhere"], ["unknown sink", "ftp://nowhere"], 2),
        (["demo", "--sink", "jsonl:"], ["jsonl:"], 2),
        (["run", "no_such_module_xyz:build"], ["no_such_module_xyz"], 2),
        (["run", "mymodel:missing"], ["missing"], 2),
        (["run", "nocolon"], ["MODULE:FUNCTION"], 2),
        (["run", "mymodel:not_a_model"], ["not_a_model", "int"], 1),
        (["run", "mymodel:raising"], ["ZeroDivisionError", "no model today"], 1),
        (["run", "mymodel:too_likely"], ["'go'", "500"], 1),
    ],
)
def test_errors_are_one_line_and_their_exit_status(tmp_path, args, words, status):
    (tmp_path / "mymodel.py").write_text(MODEL)
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_sink_that_could_not_deliver_everything_exits_1_after_its_summary():
    result = cli("demo", "--ticks", "200", "--no-progress", "--sink", "jsonl:/dev/full")
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("doge-datagen: error: jsonl:/dev/full") and "failed" in last
    failed = re.search(r"(\d+) failed", last)
    assert failed and int(failed.group(1)) > 0
    assert "Traceback" not in result.stderr


def test_bad_option_values_are_refused_by_the_parser():
    result = cli("demo", "--speed", "0")
    assert result.returncode == 2 and "positive" in result.stderr
    result = cli("demo", "--ticks", "-3")
    assert result.returncode == 2 and "negative" in result.stderr


def start_forever(tmp_path, *sinks):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = [
        sys.executable,
        "-m",
        "doge_datagen",
        "demo",
        "--forever",
        "--speed",
        "3000",
        "--progress",
    ]
    for sink in sinks:
        args += ["--sink", sink]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # Wait until the run reports progress ("N events, R/s"): the run, and its signal
    # handlers, are in place by then. The progress bar redraws with carriage returns, so
    # read raw chunks rather than lines.
    seen = threading.Event()
    err_lines = []
    progress = re.compile(r"\d+ events, [\d,]+/s")

    def read_err():
        text = ""
        fd = proc.stderr.fileno()
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            text += chunk.decode(errors="replace")
            if progress.search(text):
                seen.set()
        err_lines.append(text)
        seen.set()

    reader = threading.Thread(target=read_err, daemon=True)
    reader.start()
    assert seen.wait(60), "the demo did not start"
    time.sleep(1.0)  # let some ticks run
    return proc, reader, err_lines


def finish(proc, reader, timeout):
    """Wait for the demo to exit; return its standard output; close its pipes."""
    proc.wait(timeout=timeout)
    stdout = proc.stdout.read().decode()
    reader.join(10)
    proc.stdout.close()
    proc.stderr.close()
    return stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_a_forever_demo_cleanly_with_every_event_stored(tmp_path, signum):
    db = tmp_path / "events.db"
    jsonl = tmp_path / "events.jsonl"
    proc, reader, err = start_forever(tmp_path, f"sqlite:///{db}", f"jsonl:{jsonl}")
    proc.send_signal(signum)
    stdout = finish(proc, reader, timeout=60)
    assert proc.returncode == 0, "".join(err)
    events = summary_events(stdout)
    assert "(stopped)" in stdout and events > 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == events
    assert len(jsonl.read_text().splitlines()) == events


@pytest.mark.kafka
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_a_forever_demo_into_kafka_and_sqlite(tmp_path, kafka_bootstrap, signum):
    from support.kafka_fixtures import create_topic, read_all

    topic = create_topic(kafka_bootstrap)
    db = tmp_path / "events.db"
    proc, reader, err = start_forever(
        tmp_path, f"kafka://{kafka_bootstrap}/{topic}", f"sqlite:///{db}"
    )
    proc.send_signal(signum)
    stdout = finish(proc, reader, timeout=120)
    assert proc.returncode == 0, "".join(err)
    events = summary_events(stdout)
    assert events > 0 and "(stopped)" in stdout
    records = read_all(kafka_bootstrap, topic, expected=events)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT timestamp, user_id, event FROM events ORDER BY rowid"
        ).fetchall()
    assert len(records) == len(rows) == events
    # The same events, in the same order, in both systems.
    values = [json.loads(r.value) for r in records]
    assert [(v["timestamp"], v["user_id"], v["event"]) for v in values] == rows
    assert [r.timestamp for r in records] == [row[0] for row in rows]
    assert [r.key.decode() for r in records] == [str(row[1]) for row in rows]


@pytest.mark.postgres
def test_demo_into_postgresql_with_a_plain_url(postgres_url):
    import sqlalchemy

    from doge_datagen import DbSinkFactory

    table = f"doge_cli_{os.getpid()}"
    url = postgres_url.replace("postgresql+psycopg2://", "postgresql://")
    result = cli(
        "demo",
        "--sink",
        f"{url}?table={table}",
        "--subjects",
        "100",
        "--ticks",
        "400",
        "--seed",
        "8",
    )
    engine = DbSinkFactory(url).engine
    try:
        assert result.returncode == 0, result.stderr
        with engine.begin() as conn:
            count = conn.execute(sqlalchemy.text(f"SELECT COUNT(*) FROM {table}")).scalar()
        assert count == summary_events(result.stdout) > 0
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()
