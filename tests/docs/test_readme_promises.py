"""Sentences of the README and of its pages under doc/ that promise a behaviour and had no
test of their own; each test first finds its sentence where it is written."""

import importlib
import inspect
import json
import pkgutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from support.docs import page
from support.kafka_fixtures import create_topic, read_all

import doge_datagen
from doge_datagen import DbSinkFactory, DogeError, InMemorySink, KafkaSinkFactory
from doge_datagen.demo import banking_generator, user_row

ROOT = Path(__file__).resolve().parents[2]


def test_all_errors_derive_from_doge_error():
    """doc/sinks.md: "All errors derive from `DogeError`". Every exception class it defines."""
    assert "All errors derive from `DogeError`." in page("doc/sinks.md")
    found = {}
    for module_info in pkgutil.walk_packages(doge_datagen.__path__, "doge_datagen."):
        try:
            module = importlib.import_module(module_info.name)
        except ImportError:  # an optional client that is not installed
            continue
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.startswith("doge_datagen")
            ):
                found[f"{value.__module__}.{name}"] = value
    # By class name, wherever the package keeps the class.
    names = {cls.__qualname__ for cls in found.values()}
    assert "UsageError" in names and len(found) >= 6, sorted(found)
    strays = sorted(cls.__qualname__ for cls in found.values() if not issubclass(cls, DogeError))
    # Internal control-flow signals that never leave the package are the only exceptions.
    assert set(strays) <= {"_Disconnected", "Terminated"}, sorted(found)


@pytest.mark.kafka
def test_summary_delivery_counts_kafka_and_database_sinks(kafka_bootstrap, tmp_path):
    """The README: "delivered and failed records of the sinks that count them (Kafka,
    databases)"."""
    assert "delivered and failed records of the sinks that\ncount them (Kafka, databases)" in (
        page("README.md")
    )
    topic = create_topic(kafka_bootstrap)
    kafka = KafkaSinkFactory(kafka_bootstrap, "doge-test").create(
        topic, lambda s, t: str(s.user_id), lambda ts, s, t: json.dumps(user_row(ts, s, t))
    )
    path = tmp_path / "e.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE events (timestamp BIGINT, user_id BIGINT, balance BIGINT, "
            "loan_balance BIGINT, event TEXT)"
        )
    db = DbSinkFactory(f"sqlite:///{path}").create("events", user_row)
    memory = InMemorySink(user_row)
    datagen = banking_generator(
        memory, memory, memory, memory, subjects_num=300, ticks_num=300, seed=3,
        timestamp_start=1_700_000_000_000,
    )  # fmt: skip
    for transition in datagen.transitions:
        transition.event_sinks = [kafka, db, memory]
    summary = datagen.start()
    n = len(memory.events)
    assert n > 50
    assert summary.delivery[kafka.name] == {"delivered": n, "failed": 0}
    assert summary.delivery[db.name] == {"delivered": n, "failed": 0}
    assert len(read_all(kafka_bootstrap, topic, expected=n)) == n
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == n


@pytest.mark.slow
def test_scripts_demo_sh_runs_the_demo_on_embedded_defaults(tmp_path):
    """`bash scripts/demo.sh` (README, set-up on a fresh machine): installs into .venv and runs
    the demo; extra arguments go to the demo."""
    assert "```shell\nbash scripts/demo.sh\n```" in page("README.md")
    out = tmp_path / "out"
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh"), "--out", str(out)]
        + ["--subjects", "200", "--ticks", "300", "--seed", "2"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    events = int(done.stdout.split(" events from", 1)[0].split()[-1])
    streams = sorted(p.name for p in out.iterdir())
    assert streams == sorted(
        ["balance.jsonl", "clickstream.jsonl", "events.db", "loan.jsonl", "trx.jsonl"]
    )
    with sqlite3.connect(out / "events.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == events > 0
