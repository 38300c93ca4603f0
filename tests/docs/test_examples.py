"""The example scripts that need no server: printing and graph (the others are run by the
Kafka, Avro, DB and file sink tests against real servers)."""

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.services import service_missing

from doge_datagen import InMemorySink

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def example_module(name: str) -> Any:
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


def run_example(script: str, *args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_printing_example_prints_each_event_once():
    stdout = run_example("doge_printing_example.py", "--subjects", "300", "--ticks", "400")
    printing = example_module("doge_printing_example")
    lines = stdout.splitlines()
    pattern = re.compile(r"^\[(\d+)\] User id: (\d+), balance: -?\d+, loan_balance: \d+ ")
    moves = [pattern.match(line).groups() for line in lines]  # type: ignore[union-attr]
    # A user moves at most once per tick: a spending (trx and balance) or a loan (three
    # streams) must not print once per stream.
    assert len(set(moves)) == len(moves) > 100
    # And it prints exactly the model's events, formatted by the README's function.
    memory = InMemorySink(printing.format_function)
    common = example_module("doge_example_common")
    seeded = run_example(
        "doge_printing_example.py", "--subjects", "300", "--ticks", "400", "--seed", "4"
    ).splitlines()
    common.banking_into(memory, subjects_num=300, ticks_num=400, seed=4).start()
    assert seeded == [event.value for event in memory.events]


def test_graph_example_renders_the_banking_model(tmp_path):
    if shutil.which("dot") is None:
        service_missing("Graphviz's dot program")
    out = tmp_path / "states.png"
    stdout = run_example("doge_graph_example.py", "-o", str(out))
    assert out.read_bytes().startswith(b"\x89PNG")
    assert str(out) in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["states.png"]
