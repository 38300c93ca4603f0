"""The contract between the C loop and Python: the C file reads the engine's ``LoopContext`` by
position, under names (``CTX_DUE`` ...) that must follow the NamedTuple's field order, and
``HAS_SPEEDUPS`` says truly whether the C loop runs."""

import re
from pathlib import Path

import pytest
from support.loops import CountingLoop, output_by_pure_python

from doge_datagen import DataOnlineGenerator, InMemorySink
from doge_datagen.engine import HAS_SPEEDUPS
from doge_datagen.engine import loop as engine
from doge_datagen.engine.loop import LoopContext

C_FILE = Path(engine.__file__).with_name("_speedups.c")


def c_indices() -> dict:
    return {
        name.lower(): int(index)
        for name, index in re.findall(r"^#define CTX_([A-Z0-9_]+) (\d+)$", C_FILE.read_text(), re.M)
    }


def test_every_field_of_the_context_has_its_index_in_the_c_file_and_in_the_same_order():
    indices = c_indices()
    size = indices.pop("size")
    assert size == len(LoopContext._fields)
    assert indices == {field: n for n, field in enumerate(LoopContext._fields)}


def test_the_c_file_reads_the_context_only_through_the_named_indices():
    text = C_FILE.read_text()
    assert re.findall(r"PyTuple_GET_ITEM\(context, \d", text) == []
    used = set(re.findall(r"PyTuple_GET_ITEM\(context, CTX_([A-Z0-9_]+)\)", text))
    # due, counts, ... : every field is read somewhere, none is left behind.
    assert {name.lower() for name in used} == set(LoopContext._fields)


def test_has_speedups_is_whether_the_c_loop_takes_the_run(monkeypatch):
    if not HAS_SPEEDUPS:
        pytest.skip("the C extension is not built here")
    counting = CountingLoop(engine._speedups)
    monkeypatch.setattr(engine, "_speedups", counting)
    sink = InMemorySink()
    datagen = DataOnlineGenerator(["a", "b"], "a", lambda: object(), 20, 1000, 50, 0, seed=1)
    datagen.add_transition("go", "a", "b", 30, None, [sink])
    datagen.add_transition("back", "b", "a", 30, None, [sink])
    datagen.start()
    assert counting.runs >= 1 and len(sink.events) > 0


def test_has_speedups_is_false_with_the_environment_variable_and_the_version_says_so():
    probe = (
        "from doge_datagen.engine import HAS_SPEEDUPS\n"
        "from doge_datagen.cli.main import version_text\n"
        "print(HAS_SPEEDUPS, version_text().splitlines()[1])\n"
    )
    seen = output_by_pure_python(probe, ("1", ""))
    assert seen["1"].startswith("False engine: Python loop")
    assert seen[""].startswith(f"{HAS_SPEEDUPS} engine: {'C loop' if HAS_SPEEDUPS else 'Python'}")
