"""A large population's memory on huge pages: ``_speedups.huge_arenas`` gives the objects made
while it is on arenas from chunks advised to use 2 MiB pages (Linux), and a run turns it on
while it creates and files 100,000 subjects or more (``engine.loop._making_many``)."""

import os
import re
import sys
from typing import Any, Dict, List, Tuple

import pytest

from doge_datagen.core.types import SubjectFactory
from doge_datagen.demo import UserFactory, banking_generator
from doge_datagen.engine import loop as engine
from doge_datagen.engine.loop import Run
from doge_datagen.sinks.memory import CountingSink

pytestmark = [
    pytest.mark.skipif(
        engine._speedups is None and os.environ.get("CI") != "true",
        reason="the C speed-ups are not built in this checkout",
    ),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="huge pages: Linux only"),
    # Without Python's own allocator (the sanitizer build) there are no arenas to place.
    pytest.mark.skipif(
        os.environ.get("PYTHONMALLOC", "").startswith("malloc"),
        reason="Python's allocator is switched off",
    ),
]

_RANGE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) ")


def advice() -> Dict[Tuple[int, int], bool]:
    """Each mapping of this process: whether it is advised to use huge pages (flag ``hg``)."""
    found: Dict[Tuple[int, int], bool] = {}
    span = None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            match = _RANGE.match(line)
            if match:
                span = (int(match.group(1), 16), int(match.group(2), 16))
                found[span] = False
            elif line.startswith("VmFlags:") and span is not None:
                found[span] = "hg" in line.split()[1:]
    return found


def on_huge_pages(address: int) -> bool:
    return any(low <= address < high and hg for (low, high), hg in advice().items())


def share_on_huge_pages(objects: List[Any]) -> float:
    """The share of ``objects`` (a sample of a thousand) that live on advised memory."""
    spans = [span for span, hg in advice().items() if hg]
    sample = objects[:: max(1, len(objects) // 1000)]
    inside = sum(any(low <= id(o) < high for low, high in spans) for o in sample)
    return inside / len(sample)


def test_objects_made_while_it_is_on_live_on_advised_memory() -> None:
    """Python fills the free room of its arenas before it asks for new ones, and after a long
    test session that room can be several MiB: so enough floats are made to need new arenas,
    and some of them (not a given one) must be on advised memory."""
    huge = engine._speedups.huge_arenas
    before = [float(n) for n in range(100_000)]  # made without: on ordinary arenas
    was = huge(True)
    try:
        assert huge(True) is True  # it says it was on
        made = [float(n) for n in range(3_000_000)]  # 72 MiB of floats: new arenas
    finally:
        assert huge(was) is True
    assert share_on_huge_pages(made) > 0
    assert sum(made) == sum(range(3_000_000))
    del before  # (it may fill room left in arenas made while on by an earlier run)


def test_arenas_given_back_serve_again() -> None:
    huge = engine._speedups.huge_arenas
    was = huge(True)
    try:
        first = [float(n) for n in range(3_000_000)]
        assert share_on_huge_pages(first) > 0
        del first  # its arenas go back: their memory to the system, their addresses kept
        again = [float(-n) for n in range(3_000_000)]
    finally:
        huge(was)
    assert share_on_huge_pages(again) > 0
    assert sum(again) == -sum(range(3_000_000))  # memory given back and taken again reads right


class _Watching(SubjectFactory[Any]):
    """The demo's users, noting whether huge arenas were on while each was made."""

    def __init__(self) -> None:
        self.users = UserFactory()
        self.on: List[bool] = []

    def create(self) -> Any:
        was = engine._speedups.huge_arenas(True)
        engine._speedups.huge_arenas(was)
        self.on.append(was)
        return self.users.create()


@pytest.mark.parametrize("subjects, huge", [(engine._HUGE_PAGES_FROM, True), (2_000, False)])
def test_a_run_creates_a_large_population_on_huge_pages(subjects: int, huge: bool) -> None:
    sink = CountingSink()
    datagen = banking_generator(sink, sink, sink, sink, subjects_num=subjects, ticks_num=10, seed=3)
    watching = _Watching()
    datagen.subject_factory = watching
    run = Run(datagen, 0, subjects, 0)
    run.create_subjects()
    # On while every subject is made, or never. (Where the subjects then live depends on the
    # free room the process's arenas already have: the tests above show new arenas' place.)
    assert set(watching.on) == {huge}
    assert engine._speedups.huge_arenas(False) is False  # off again after the creation
