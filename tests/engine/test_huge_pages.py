"""A large population's memory on huge pages: ``_speedups.huge_arenas`` gives the objects made
while it is on arenas from chunks advised to use 2 MiB pages (Linux), and a run turns it on
while it creates and files 100,000 subjects or more (``engine.loop._making_many``)."""

import os
import re
import sys
from typing import Dict, Tuple

import pytest

from doge_datagen.demo import banking_generator
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


def test_objects_made_while_it_is_on_live_on_advised_memory() -> None:
    huge = engine._speedups.huge_arenas
    before = [float(n) for n in range(100_000)]  # made without: on ordinary arenas
    was = huge(True)
    try:
        assert huge(True) is True  # it says it was on
        made = [float(n) for n in range(300_000)]  # 7 MiB of floats: new arenas
    finally:
        assert huge(was) is True
    assert on_huge_pages(id(made[-1]))
    assert not on_huge_pages(id(before[-1]))
    assert sum(made) == sum(range(300_000))


def test_arenas_given_back_serve_again() -> None:
    huge = engine._speedups.huge_arenas
    was = huge(True)
    try:
        first = [float(n) for n in range(400_000)]
        last = id(first[-1])
        del first  # its arenas go back: their memory to the system, their addresses kept
        again = [float(-n) for n in range(400_000)]
    finally:
        huge(was)
    assert on_huge_pages(last)
    assert on_huge_pages(id(again[-1]))
    assert sum(again) == -sum(range(400_000))  # memory given back and taken again reads right


@pytest.mark.parametrize("subjects, huge", [(engine._HUGE_PAGES_FROM, True), (2_000, False)])
def test_a_run_creates_a_large_population_on_huge_pages(subjects: int, huge: bool) -> None:
    sink = CountingSink()
    datagen = banking_generator(sink, sink, sink, sink, subjects_num=subjects, ticks_num=10, seed=3)
    run = Run(datagen, 0, subjects, 0)
    run.create_subjects()
    assert on_huge_pages(id(run.subjects[-1])) is huge
    assert on_huge_pages(id(run.subjects[-1].balance)) is huge or run.subjects[-1].balance < 257
    assert engine._speedups.huge_arenas(False) is False  # off again after the creation
