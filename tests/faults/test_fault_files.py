"""A disk that is full from the start (``/dev/full``) or fills up mid-run (a 1 MiB tmpfs).

The file holds exactly the lines the sink counts as delivered, each complete (a batch cut off
by the full disk is removed again); the rest are counted as failed; the sink after it holds
every event; the summary and the error say the same.
"""

import os

import pytest
from support.fault_tools import banking, jsonl_rows, rows_of

from doge_datagen import DeliveryError, FileSink, InMemorySink
from doge_datagen.demo import user_row


def run_into(path, buffer_lines=64):
    sink = FileSink(path, user_row, buffer_lines=buffer_lines)
    beside = InMemorySink(user_row, name="beside")
    datagen, truth = banking([sink, beside], subjects=12000, ticks=600, seed=9)
    with pytest.raises(DeliveryError) as raised:
        datagen.start()
    return sink, beside, truth, raised.value


def check(sink, beside, truth, error, stored):
    events = rows_of(truth)
    summary = error.summary
    counts = summary.delivery[sink.name]
    # The failed write ends the run (its error is raised from collect), with every event
    # generated so far accounted for.
    assert counts["delivered"] + counts["failed"] == summary.events == len(events) > 0
    assert counts["failed"] > 0
    assert (error.delivered, error.failed) == (counts["delivered"], counts["failed"])
    assert stored == events[: counts["delivered"]]  # exactly what was counted, in order
    assert [e.value for e in beside.events] == events  # the sink after it has everything
    assert summary.delivery["beside"] == {"delivered": len(events), "failed": 0}


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_dev_full_fails_every_line_and_counts_it():
    sink, beside, truth, error = run_into("/dev/full")
    check(sink, beside, truth, error, stored=[])
    assert error.failed == len(truth) == 64  # the first batch
    assert "No space left on device" in str(error)


def test_a_disk_that_fills_up_mid_run(small_tmpfs):
    path = small_tmpfs / "events.jsonl"
    sink, beside, truth, error = run_into(path)
    stored = jsonl_rows(path)  # every line is complete JSON
    check(sink, beside, truth, error, stored)
    assert 5000 < len(stored) < len(truth)
    assert os.path.getsize(path) <= 1024 * 1024
