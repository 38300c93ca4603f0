"""Building a model has no side effects: its sinks open files and connections when a run
starts, so ``doge-datagen graph``, an analysis, or a model built and never run leave every
output as it was and connect to nothing."""

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict

import pytest
from support.services import service_missing

MODEL = """
from doge_datagen import (
    DataOnlineGenerator, DbSinkFactory, FileSink, FileSinkFactory, KafkaAvroSinkFactory,
    KafkaSinkFactory, PrintingSink,
)

OUT = {out!r}
KAFKA = {kafka!r}


def row(timestamp, subject, transition):
    return {{"timestamp": timestamp, "n": subject.n}}


class Thing:
    def __init__(self, n):
        self.n = n


def build():
    made = iter(range(1000))
    datagen = DataOnlineGenerator(["a", "b"], "a", lambda: Thing(next(made)), 10, 1000, 10)
    files = FileSinkFactory(OUT + "/new-dir", fieldnames=["timestamp", "n"])
    quick = {{"message.timeout.ms": 1000}}
    kafka = KafkaSinkFactory([KAFKA], "doge-side-effects", conf=quick, flush_timeout=2)
    avro = KafkaAvroSinkFactory(
        [KAFKA], "mock://", "doge-side-effects", conf=quick, flush_timeout=2
    )
    schema = '{{"type": "record", "name": "R", "fields": [{{"name": "n", "type": "long"}}]}}'
    sinks = [
        FileSink(OUT + "/kept.jsonl", row),
        FileSink(OUT + "/kept.csv", row, fieldnames=["timestamp", "n"]),
        files.create("fresh", row, format="csv"),
        DbSinkFactory("sqlite:///" + OUT + "/kept.db", batch_size=1).create("events", row),
        kafka.create("topic", lambda s, t: str(s.n), lambda ts, s, t: str(s.n)),
        avro.create("topic", lambda s, t: None, '"string"', lambda ts, s, t: {{"n": s.n}}, schema),
        PrintingSink(),
    ]
    datagen.add_transition("go", "a", "b", 50, event_sinks=sinks)
    datagen.add_transition("back", "b", "a", 50, event_sinks=sinks)
    return datagen
"""


def outputs(out: Path) -> Dict[str, Any]:
    """Everything under ``out`` (file contents, directories) and the rows of the table."""
    found: Dict[str, Any] = {
        str(p.relative_to(out)): p.read_bytes() if p.is_file() else "dir"
        for p in sorted(out.rglob("*"))
        if p.name != "kept.db"
    }
    with sqlite3.connect(out / "kept.db") as connection:
        found["rows"] = connection.execute("SELECT timestamp, n FROM events").fetchall()
    return found


@pytest.fixture
def listener() -> Any:
    """A listening socket standing in for a Kafka broker: it records who connects."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    yield sock
    sock.close()


def connections(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            peer, _ = sock.accept()
        except BlockingIOError:
            return count
        peer.close()
        count += 1


def make_outputs(tmp_path: Path, kafka: str) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "kept.jsonl").write_text(json.dumps({"timestamp": 1, "n": 1}) + "\n")
    (out / "kept.csv").write_text("timestamp,n\n1,1\n")
    with sqlite3.connect(out / "kept.db") as connection:
        connection.execute("CREATE TABLE events (timestamp BIGINT, n BIGINT)")
        connection.execute("INSERT INTO events VALUES (1, 1)")
    (tmp_path / "model.py").write_text(textwrap.dedent(MODEL.format(out=str(out), kafka=kafka)))
    return out


def test_the_graph_and_analyze_commands_leave_every_output_untouched(
    tmp_path: Path, listener: Any
) -> None:
    if shutil.which("dot") is None:
        service_missing("Graphviz dot")
    kafka = f"127.0.0.1:{listener.getsockname()[1]}"
    out = make_outputs(tmp_path, kafka)
    before = outputs(out)

    for command in (["graph", "model.py:build", "-o", "g.png"], ["analyze", "model.py:build"]):
        done = subprocess.run(
            [sys.executable, "-m", "doge_datagen", *command],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

    assert (tmp_path / "g.png").exists()
    assert outputs(out) == before
    assert not (out / "new-dir").exists()
    assert connections(listener) == 0


def test_a_model_built_and_analyzed_but_never_run_leaves_every_output_untouched(
    tmp_path: Path, listener: Any, monkeypatch: Any
) -> None:
    kafka = f"127.0.0.1:{listener.getsockname()[1]}"
    out = make_outputs(tmp_path, kafka)
    before = outputs(out)
    monkeypatch.syspath_prepend(str(tmp_path))
    import model  # type: ignore[import-not-found]

    from doge_datagen.analysis.markov import analyze

    datagen = model.build()
    analysis = analyze(datagen)
    assert analysis is not None
    del datagen

    assert outputs(out) == before
    assert connections(listener) == 0
    sys.modules.pop("model", None)


def test_a_run_opens_the_outputs_it_left_alone_when_built(tmp_path: Path, listener: Any) -> None:
    """The other side: the same model, run, does write (so the checks above could fail)."""
    kafka = f"127.0.0.1:{listener.getsockname()[1]}"
    out = make_outputs(tmp_path, kafka)
    before = outputs(out)
    script = (
        "import model, sys\n"
        "try:\n"
        "    model.build().start()\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    after = outputs(out)
    assert after != before, done.stderr
    assert after["kept.jsonl"] != before["kept.jsonl"]  # mode "w": the run starts it afresh
    assert (out / "new-dir" / "fresh.csv").exists()
    assert connections(listener) > 0  # (the stand-in broker answers nothing: the run fails)
