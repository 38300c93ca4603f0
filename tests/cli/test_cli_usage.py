"""The command line as a new user meets it: options checked before anything is made, outputs
whose directories are created (and said so), a closed pipe, URL settings named, a seed that
repeats a run on its own, and --help texts whose examples run as written."""

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest
from support.services import free_port, require_module

from doge_datagen.cli.main import EXIT_CODES, SEEDED_START_MS, build_parser

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("demo", "run", "graph", "analyze", "fit")
SMALL = ["--subjects", "20", "--ticks", "60"]


def cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m doge_datagen ARGS``, the package of this checkout first on the path."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "doge_datagen", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def error_lines(result: subprocess.CompletedProcess) -> List[str]:
    return [line for line in result.stderr.splitlines() if "error" in line]


# -- every option is checked before anything is made ------------------------------------


def test_an_unknown_time_zone_exits_2_and_makes_nothing(tmp_path):
    result = cli("demo", "--tz", "Mars/Olympus", "--day", *SMALL, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Mars/Olympus" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_bad_sink_after_a_database_one_leaves_no_table_and_no_directory(tmp_path):
    result = cli(
        "demo",
        "--sink",
        f"sqlite:///{tmp_path}/new/events.db",
        "--sink",
        f"jsonl:{tmp_path}/other/e.jsonl",
        "--sink",
        "kafka://127.0.0.1:9/t?no.such.setting=1",
        *SMALL,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "'no.such.setting'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_dask_scheduler_is_named_before_any_sink_is_made(tmp_path):
    require_module("distributed", "dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    for workers in ([], ["--workers", "2"]):
        result = cli("demo", "--dask", address, *workers, *SMALL, "--out", "out", cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        (line,) = error_lines(result)
        assert address in line and "Dask scheduler" in line and "10 s" in line
        assert not (tmp_path / "out").exists()


# -- outputs in directories that do not exist yet ---------------------------------------


def test_every_output_creates_its_missing_directory_and_says_so(tmp_path):
    result = cli("demo", "--sink", "jsonl:a/b/events.jsonl", *SMALL, "--seed", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"created directory {tmp_path / 'a' / 'b'}" in result.stderr
    assert (tmp_path / "a/b/events.jsonl").read_text().count("\n") > 0

    result = cli("demo", "--out", "c/out", *SMALL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"created directory {tmp_path / 'c' / 'out'}" in result.stderr
    assert (tmp_path / "c/out/events.db").exists()

    result = cli("demo", "--sink", "sqlite:///d/events.db", *SMALL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"created directory {tmp_path / 'd'}" in result.stderr
    assert (tmp_path / "d/events.db").exists()

    model = "doge_datagen.demo:demo_model"
    result = cli("graph", model, "-o", "e/states.mmd", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"created directory {tmp_path / 'e'}" in result.stderr
    assert (tmp_path / "e/states.mmd").read_text().startswith("stateDiagram")

    require_module("matplotlib", "plot")
    result = cli("analyze", model, "--plot", "f/rates.svg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"created directory {tmp_path / 'f'}" in result.stderr
    assert (tmp_path / "f/rates.svg").stat().st_size > 0

    result = cli(
        "fit", "a/b/events.jsonl", "--tick-ms", "60000", "--subject", "user_id",
        "--timestamp", "timestamp", "--from-state", "from_state", "--to-state", "to_state",
        "--trigger", "event", "-o", "g/model.py", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"created directory {tmp_path / 'g'}" in result.stderr
    assert "def build" in (tmp_path / "g/model.py").read_text()

    # A directory that exists is not announced.
    result = cli("demo", "--sink", "jsonl:a/b/events.jsonl", *SMALL, cwd=tmp_path)
    assert result.returncode == 0 and "created directory" not in result.stderr


def test_a_directory_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    result = cli("demo", "--sink", "jsonl:file/x.jsonl", *SMALL, cwd=tmp_path)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "cannot create directory" in line and "file" in line


def test_a_plot_format_matplotlib_cannot_write_stops_before_the_report(tmp_path):
    require_module("matplotlib", "plot")
    result = cli("analyze", "doge_datagen.demo:demo_model", "--plot", "x.bmp", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = error_lines(result)
    assert "'bmp'" in line and "png" in line
    assert list(tmp_path.iterdir()) == []


# -- a closed pipe ----------------------------------------------------------------------


def test_a_reader_that_closes_the_pipe_ends_the_run_quietly_with_its_sinks_closed(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "doge_datagen", "demo", "--sink", "print:",
         "--sink", "jsonl:events.jsonl", "--ticks", "5000", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    first = [process.stdout.readline() for _ in range(2)]
    process.stdout.close()  # as `| head -2` does
    with process.stderr:
        stderr = process.stderr.read().decode()
    status = process.wait(timeout=120)
    assert all(json.loads(line)["user_id"] >= 0 for line in first)
    assert status == 141 and status in EXIT_CODES, stderr
    assert stderr.splitlines() == ["banking demo writing to print:, jsonl:events.jsonl"]
    # The file sink was closed: every line it holds is whole.
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["event"] for line in lines)


# -- URLs -------------------------------------------------------------------------------


@pytest.mark.kafka
def test_a_setting_librdkafka_does_not_know_is_named_in_one_line(kafka_bootstrap, tmp_path):
    from support.kafka_fixtures import create_topic, read_all

    topic = create_topic(kafka_bootstrap)
    url = f"kafka://{kafka_bootstrap}/{topic}"
    result = cli("demo", "--sink", f"{url}?bogus.setting=1", *SMALL, cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "'bogus.setting'" in line and "KafkaError{" not in line
    # linger.ms is an alias: librdkafka names its property, the error names the URL's.
    result = cli("demo", "--sink", f"{url}?linger.ms=soon", *SMALL, cwd=tmp_path)
    assert result.returncode == 2 and "setting 'linger.ms'" in result.stderr
    # A setting it knows goes through to the broker.
    result = cli("demo", "--sink", f"{url}?linger.ms=5", *SMALL, "--seed", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    events = int(result.stdout.split()[0])
    assert events > 0 and len(read_all(kafka_bootstrap, topic, expected=events)) == events


@pytest.mark.postgres
def test_a_database_port_that_is_not_a_number_is_named(postgres_url, tmp_path):
    result = cli(
        "demo", "--sink", "postgresql://postgres@127.0.0.1:notaport/test", *SMALL, cwd=tmp_path
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "port 'notaport'" in line and "dialect" not in line


# -- a seed alone repeats a run ----------------------------------------------------------


def first_timestamps(tmp_path: Path, *args: str) -> List[int]:
    result = cli("demo", "--sink", "print:", "--subjects", "50", "--ticks", "300", *args,
                 cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["timestamp"] for line in result.stdout.splitlines()]


def test_a_seeded_demo_starts_at_a_fixed_time_and_now_keeps_the_clock(tmp_path):
    seeded = first_timestamps(tmp_path, "--seed", "5")
    assert seeded and SEEDED_START_MS <= seeded[0] and seeded[-1] < SEEDED_START_MS + 300 * 60000
    assert first_timestamps(tmp_path, "--seed", "5") == seeded
    before = int(time.time()) // 60 * 60000
    now = first_timestamps(tmp_path, "--seed", "5", "--timestamp-start", "now")
    assert now[0] >= before and [t - now[0] for t in now] == [t - seeded[0] for t in seeded]
    given = first_timestamps(tmp_path, "--seed", "5", "--timestamp-start", "60000")
    assert [t - 60000 for t in given] == [t - SEEDED_START_MS for t in seeded]


# -- --help -----------------------------------------------------------------------------


def help_text(command: str) -> str:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    return commands.choices[command].format_help()  # type: ignore[attr-defined]


def test_no_help_text_has_printf_leftovers():
    for command in COMMANDS:
        text = help_text(command)
        assert not re.search(r"%%|%\(\w+\)|%[sdr]\b", text), (command, text)
    assert "95% Wilson" in help_text("fit")


def examples(command: str) -> List[List[str]]:
    """The commands under 'examples:' at the end of ``command --help``, lines ending in a
    backslash joined to the next, as a shell reads them."""
    text = help_text(command)
    head, found, tail = text.rpartition("\nexamples:\n")
    assert found, f"{command} --help has no examples"
    joined = tail.replace("\\\n", " ")
    lines = [shlex.split(line) for line in joined.splitlines() if line.strip()]
    assert 2 <= len(lines) <= 3 and all(line[0] == "doge-datagen" for line in lines), lines
    return [line[1:] for line in lines]


@pytest.mark.parametrize("command", ["run", "graph", "analyze", "fit"])
def test_the_help_examples_run_as_written(command, tmp_path):
    if command == "analyze":
        require_module("matplotlib", "plot")
    for words in examples(command):
        result = cli(*words, cwd=tmp_path)
        assert result.returncode == 0, (words, result.stderr)
    written = sorted(p.name for p in tmp_path.iterdir())
    expected = {
        "run": [],
        "graph": ["states.mmd", "states.png", "states.svg"],
        "analyze": ["rates.png"],
        "fit": ["events.jsonl", "model.py"],
    }[command]
    assert written == expected


@pytest.mark.postgres
def test_the_demo_help_examples_run_as_written(postgres_url, tmp_path):
    import sqlalchemy
    from support.db_fixtures import make_engine

    engine = make_engine(postgres_url.rsplit("/", 1)[0] + "/postgres")
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP TABLE IF EXISTS demo_events"))
    try:
        outputs = []
        for words in examples("demo"):
            result = cli(*words, cwd=tmp_path)
            assert result.returncode == 0, (words, result.stderr)
            outputs.append(result)
        assert (tmp_path / "demo-out/events.db").exists()
        printed = outputs[1].stdout.splitlines()
        assert printed and all(json.loads(line)["event"] for line in printed)
        stored = int(outputs[2].stdout.split()[0])
        with engine.begin() as connection:
            rows = connection.execute(sqlalchemy.text("SELECT count(*) FROM demo_events"))
            assert rows.scalar() == stored > 0
    finally:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("DROP TABLE IF EXISTS demo_events"))
        engine.dispose()
