"""Parts on a local disk that fills up mid-run (a 1 MiB tmpfs): the published parts hold
exactly the rows the sink counts as delivered, each part whole; the part being written when
the disk filled is removed and its rows counted as failed with the batch's; nothing else is
left behind."""

import os

import pytest
from support.fault_tools import banking, jsonl_rows, rows_of

from doge_datagen import DeliveryError, InMemorySink
from doge_datagen.demo import user_row
from doge_datagen.sinks.registry import Records, build_sink


def test_parts_on_a_disk_that_fills_up_mid_run(small_tmpfs):
    sink = build_sink(
        f"file://{small_tmpfs}/events.jsonl?part_size=100KB&buffer_rows=64",
        Records(row=user_row),
    )
    beside = InMemorySink(user_row, name="beside")
    datagen, truth = banking([sink, beside], subjects=12000, ticks=600, seed=9)
    with pytest.raises(DeliveryError) as raised:
        datagen.start()

    error = raised.value
    events = rows_of(truth)
    counts = error.summary.delivery[sink.name]
    assert counts["delivered"] + counts["failed"] == len(events) > 0
    assert counts["failed"] > 0 and "No space left on device" in str(error)
    assert (error.delivered, error.failed) == (counts["delivered"], counts["failed"])
    names = sorted(os.listdir(small_tmpfs))
    assert names == [f"events-part-{i:05d}.jsonl" for i in range(len(names))]  # no temp file
    stored = [row for name in names for row in jsonl_rows(small_tmpfs / name)]
    assert stored == events[: counts["delivered"]] and len(names) >= 5
    assert [e.value for e in beside.events] == events
