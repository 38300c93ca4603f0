"""The command line as a Unix tool: what goes to stdout and stderr, exit codes, --version,
--debug, refused option combinations, progress, and the sink URLs the README lists."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.docs import page

import doge_datagen
from doge_datagen.cli.main import EXIT_CODES
from doge_datagen.engine import loop as engine

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, cwd=None, timeout=120, program=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [program] if program else [sys.executable, "-m", "doge_datagen"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=timeout,
    )


SUMMARY = re.compile(r"^(\d+) events from \d+ subjects over \d+ ticks", re.MULTILINE)

RUN = ["--subjects", "200", "--ticks", "300", "--seed", "3", "--timestamp-start", "0"]


def test_events_on_stdout_put_the_summary_and_banner_on_stderr():
    result = cli("demo", "--sink", "print:", *RUN)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    events = [json.loads(line) for line in lines]  # what `| jq .` reads: JSON only
    match = SUMMARY.search(result.stderr)
    assert match and int(match.group(1)) == len(events) > 0
    assert "banking demo writing to" in result.stderr


def test_a_file_sink_on_dev_stdout_counts_as_events_on_stdout():
    result = cli("demo", "--sink", "jsonl:/dev/stdout", *RUN)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    match = SUMMARY.search(result.stderr)
    assert match and int(match.group(1)) == len(events) > 0


def test_without_events_on_stdout_the_summary_stays_on_stdout(tmp_path):
    result = cli("demo", "--sink", f"jsonl:{tmp_path / 'e.jsonl'}", *RUN)
    assert result.returncode == 0, result.stderr
    assert SUMMARY.search(result.stdout) and not SUMMARY.search(result.stderr)


def test_version():
    result = cli("--version")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"doge-datagen {doge_datagen.__version__}"
    # Which loop runs: the C extension is optional, and a build without it warns only there.
    loop = "C loop" if engine._speedups is not None else "Python loop"
    assert lines[1].startswith(f"engine: {loop}"), lines
    assert lines[2].startswith("package: "), lines
    assert (Path(lines[2].split(": ", 1)[1]) / "__init__.py").exists(), lines


def test_the_installed_console_script_runs():
    """`pip install` puts a `doge-datagen` program beside the interpreter."""
    program = Path(sys.executable).with_name("doge-datagen")
    assert program.exists(), f"no console script at {program}"
    result = cli("--version", program=str(program))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"doge-datagen {doge_datagen.__version__}"
    result = cli("demo", "--sink", "print:", *RUN, program=str(program))
    assert result.returncode == 0 and SUMMARY.search(result.stderr)


@pytest.mark.parametrize(
    "args, words",
    [
        (["demo", "--forever", "--ticks", "10"], ["--forever", "--ticks"]),
        (["run", "m.py:build", "--forever", "--ticks", "10"], ["--forever", "--ticks"]),
        (["demo", "--out", "x", "--sink", "print:"], ["--out", "--sink"]),
        (["demo", "--sink", "jsonl:a.jsonl", "--sink", "jsonl:./a.jsonl"], ["a.jsonl", "both"]),
        (["demo", "--sink", "csv:a.csv", "--sink", "csv:sub/../a.csv"], ["a.csv", "both"]),
        (["demo", "--sink", "sqlite:///a.db", "--sink", "sqlite:///./a.db"], ["a.db", "both"]),
        (["demo", "--sink", "kafka://127.0.0.1:notaport/t"], ["notaport", "port"]),
        (["demo", "--sink", "kafka://127.0.0.1:0/t"], ["port 0"]),
        (["demo", "--sink", "kafka://127.0.0.1/t"], ["port"]),
        (["demo", "--sink", "sqlite://"], ["in-memory", "sqlite:///PATH"]),
        (["demo", "--sink", "sqlite:///:memory:"], ["in-memory"]),
    ],
)
def test_conflicting_or_broken_options_are_refused_before_anything_is_written(
    tmp_path, args, words
):
    (tmp_path / "m.py").write_text(FAILING_MODEL)
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    for word in words:
        assert word in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.py"]  # nothing opened


FAILING_MODEL = """
from doge_datagen import DataOnlineGenerator, InMemorySink

calls = [0]

def explode(subject, transition):
    calls[0] += 1
    if calls[0] == 25:
        raise RuntimeError("the callback broke")
    return True

def build():
    datagen = DataOnlineGenerator(["a", "b"], "a", object, 10, 1000, 50, seed=1)
    datagen.add_transition("go", "a", "b", 100, action_callback=explode,
                           event_sinks=[InMemorySink(name="mem")])
    datagen.add_transition("back", "b", "a", 100, event_sinks=[InMemorySink(name="mem2")])
    return datagen
"""


def test_a_failed_run_prints_its_summary_and_the_subject_and_tick_of_the_fault(tmp_path):
    (tmp_path / "m.py").write_text(FAILING_MODEL)
    result = cli("run", "m.py:build", cwd=tmp_path)
    assert result.returncode == 1
    # 24 moves of "go" went through before the 25th call raised: all ten subjects at ticks
    # 0 and 2, subjects 0..3 at tick 4; and "back" for all ten at ticks 1 and 3.
    match = SUMMARY.search(result.stdout)
    assert match and int(match.group(1)) == 24 + 20, result.stdout
    assert re.search(r"^\s+mem\s+24\b", result.stdout, re.MULTILINE), result.stdout
    err = result.stderr.strip().splitlines()
    assert err[0] == "doge-datagen: error: RuntimeError: the callback broke"
    assert "subject #4" in err[1] and "'go'" in err[1] and "tick 4" in err[1]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_with_the_engine_note(tmp_path, where):
    (tmp_path / "m.py").write_text(FAILING_MODEL)
    args = ["run", "m.py:build"]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert 'raise RuntimeError("the callback broke")' in result.stderr
    assert result.stderr.count("while subject #4") == 1  # the note, shown once
    assert "doge-datagen: error: RuntimeError: the callback broke" in result.stderr


def test_progress_shows_ticks_events_and_every_sinks_delivered_counts(tmp_path):
    jsonl = tmp_path / "e.jsonl"
    result = cli("demo", "--sink", f"jsonl:{jsonl}", *RUN, "--progress")
    assert result.returncode == 0, result.stderr
    events = int(SUMMARY.search(result.stdout).group(1))
    assert events == len(jsonl.read_text().splitlines()) > 0
    # The last progress line, drawn after the sinks are closed, has the final counts.
    assert f"{events} events" in result.stderr
    assert re.search(rf"\b{events} ok/0 failed", result.stderr), result.stderr
    assert "300/300" in result.stderr  # ticks done of the total (tqdm's bar)


def test_no_progress_draws_nothing_on_stderr(tmp_path):
    result = cli("demo", "--sink", f"jsonl:{tmp_path / 'e.jsonl'}", *RUN, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"banking demo writing to jsonl:{tmp_path / 'e.jsonl'}"
    ]


def test_csv_url_writes_a_header_and_one_row_per_event(tmp_path):
    path = tmp_path / "e.csv"
    result = cli("demo", "--sink", f"csv:{path}", *RUN)
    assert result.returncode == 0, result.stderr
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == int(SUMMARY.search(result.stdout).group(1)) > 0
    assert set(rows[0]) == {
        "timestamp",
        "user_id",
        "balance",
        "loan_balance",
        "event",
        "from_state",
        "to_state",
    }


@pytest.mark.mariadb
def test_mysql_pymysql_url_writes_every_event(mariadb_url):
    import sqlalchemy

    table = f"doge_cli_{os.getpid()}"
    result = cli("demo", "--sink", f"{mariadb_url}?table={table}", *RUN)
    engine = sqlalchemy.create_engine(mariadb_url)
    try:
        assert result.returncode == 0, result.stderr
        with engine.begin() as conn:
            count = conn.execute(sqlalchemy.text(f"SELECT COUNT(*) FROM {table}")).scalar()
        assert count == int(SUMMARY.search(result.stdout).group(1)) > 0
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


def test_exit_codes_are_documented_in_the_readme():
    readme = page("doc/cli.md")  # the README's section on the command line
    for code in EXIT_CODES:
        assert re.search(rf"`{code}`", readme), code


def wait_for_progress(proc: subprocess.Popen, timeout: float = 60.0) -> str:
    """Read stderr until the run draws its progress (it is running, handlers in place)."""
    import select

    text = ""
    fd = proc.stderr.fileno()
    deadline = time.monotonic() + timeout
    while not re.search(r"\d+ events, [\d,]+/s", text):
        left = deadline - time.monotonic()
        assert left > 0, f"the run did not start: {text!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"the run ended early: {text!r}"
            text += chunk.decode(errors="replace")
    return text


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_interrupts_a_run_with_a_tick_limit_with_its_summary(tmp_path, signum, status):
    jsonl = tmp_path / "e.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "doge_datagen", "demo", "--sink", f"jsonl:{jsonl}"]
        + ["--subjects", "2000", "--ticks", "100000", "--speed", "6000", "--progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        wait_for_progress(proc)
        time.sleep(0.5)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, stderr
    match = SUMMARY.search(stdout.decode())
    assert match, stdout
    # Interrupted, yet every event generated so far reached the file.
    assert int(match.group(1)) == len(jsonl.read_text().splitlines()) > 0
    assert ("interrupted" if status == 130 else "terminated") in stderr.decode()


def test_a_paced_forever_run_fills_files_and_tables_while_it_runs(tmp_path):
    """The README's own `--forever --speed 60` command: a few events a second, far fewer than
    a buffer holds, must still reach the file and the table within about a second."""
    import sqlite3

    jsonl, db = tmp_path / "e.jsonl", tmp_path / "e.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "doge_datagen", "demo", "--forever", "--speed", "60"]
        + ["--subjects", "10000", "--sink", f"jsonl:{jsonl}", "--sink", f"sqlite:///{db}"]
        + ["--progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        wait_for_progress(proc)
        lines = rows = 0
        deadline = time.monotonic() + 20  # the bound is 1 s; a full buffer would take minutes
        while (lines == 0 or rows == 0) and time.monotonic() < deadline:
            time.sleep(0.2)
            lines = len(jsonl.read_text().splitlines()) if jsonl.exists() else 0
            if db.exists():
                with sqlite3.connect(db) as conn:
                    try:
                        rows = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
                    except sqlite3.OperationalError:  # locked or not created yet
                        rows = 0
        assert proc.poll() is None  # still running: the data came while it ran
        assert lines > 0 and rows > 0
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    events = int(SUMMARY.search(stdout.decode()).group(1))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == events
    assert len(jsonl.read_text().splitlines()) == events
