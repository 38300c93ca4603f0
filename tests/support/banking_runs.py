"""The banking model run into a sink under test, with the rows it was given kept aside, so
that a test can compare what arrived with what was sent."""

from typing import Any, Dict, List

from doge_datagen import InMemorySink
from doge_datagen.cli.main import event_row
from doge_datagen.demo import banking_generator

START = 1_700_000_000_000


def run_banking(sink: Any, subjects: int = 1000, ticks: int = 300, seed: int = 3) -> List[Dict]:
    """The banking model into ``sink``; the rows it was given, in order."""
    witness = InMemorySink(event_row)
    datagen = banking_generator(
        sink, sink, sink, sink, subjects_num=subjects, ticks_num=ticks, timestamp_start=START,
        seed=seed,
    )  # fmt: skip
    for transition in datagen.transitions:
        transition.event_sinks = [sink, witness]
    datagen.start()
    return [event.value for event in witness.events]
