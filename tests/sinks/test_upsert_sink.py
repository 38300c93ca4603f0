"""The SQL sink's upsert mode: a current-state table, one row per subject, equal at the end
to the subjects' final attributes and to their change stream replayed."""

from typing import List

import pytest
from support.accounts import (
    RECORDS,
    accounts_table,
    bank,
    envelopes,
    final_rows,
    replay,
    table_rows,
)

from doge_datagen.errors import ConfigurationError
from doge_datagen.sinks.db import DbSink
from doge_datagen.sinks.registry import SinkURLError, build_sink


def test_upsert_table_equals_final_attributes_and_the_replayed_stream(any_db, tmp_path):
    table = accounts_table(any_db)
    sink = build_sink(
        f"{any_db.url}?table={table.name}&mode=upsert&key=user_id&batch_size=37", RECORDS
    )
    path = tmp_path / "changes.jsonl"
    stream_sink = build_sink(f"jsonl:{path}?envelope=debezium&key=user_id", RECORDS)
    datagen = bank([sink, stream_sink], subjects=60, ticks=40, arrivals=0.4)
    datagen.start()
    expected = final_rows(datagen)
    assert 0 < len(expected) < 60 + datagen._last_run.arrived  # some rows were deleted
    assert table_rows(any_db, table.name) == expected
    assert replay(envelopes(path)) == expected
    inner = sink.inner
    assert isinstance(inner, DbSink) and inner.mode == "upsert"
    # every change was delivered, though each batch wrote only each key's last one
    assert sink.delivered == len(envelopes(path)) and sink.failed == 0


def test_a_second_run_deletes_and_rewrites_rows_over_an_existing_table(sqlite_db):
    table = accounts_table(sqlite_db)
    url = f"{sqlite_db.url}?table={table.name}&mode=upsert&key=user_id&batch_size=5"
    for seed in (4, 5):
        sink = build_sink(url, RECORDS)
        datagen = bank([sink], subjects=20, ticks=25, seed=seed)
        datagen.start()
    # The second run started from the same users: its snapshot rewrote their rows.
    assert table_rows(sqlite_db, table.name) == final_rows(datagen)


def test_upsert_needs_a_unique_key_and_names_what_is_wrong(sqlite_db):
    plain = accounts_table(sqlite_db, primary=False)
    with pytest.raises(ConfigurationError, match="neither the primary key .* nor unique"):
        build_sink(f"{sqlite_db.url}?table={plain.name}&mode=upsert&key=user_id", RECORDS)
    keyed = accounts_table(sqlite_db)
    with pytest.raises(ConfigurationError, match="'nope' is not a column"):
        build_sink(f"{sqlite_db.url}?table={keyed.name}&mode=upsert&key=nope", RECORDS)
    with pytest.raises(SinkURLError, match="mode=upsert needs key=COLUMN"):
        build_sink(f"{sqlite_db.url}?table={keyed.name}&mode=upsert", RECORDS)
    with pytest.raises(SinkURLError, match="mode='merge'"):
        build_sink(f"{sqlite_db.url}?table={keyed.name}&mode=merge", RECORDS)
    with pytest.raises(SinkURLError, match="takes no envelope"):
        build_sink(
            f"{sqlite_db.url}?table={keyed.name}&mode=upsert&key=user_id&envelope=debezium",
            RECORDS,
        )
    with pytest.raises(ConfigurationError, match="key is a setting of mode='upsert'"):
        DbSink(sqlite_db.url, keyed.name, lambda *a: {}, key="user_id")


def test_a_batch_writes_each_keys_last_change(sqlite_db):
    """Three changes of one key in one batch: the row is the last one; a d removes it."""
    from doge_datagen.sinks.cdc import Change

    table = accounts_table(sqlite_db)
    sink = DbSink(
        sqlite_db.url,
        table.name,
        lambda ts, c, t: c.row,
        mode="upsert",
        key="user_id",
        batch_size=100,
    )
    row = {"user_id": 1, "balance": 0, "moves": 0, "state": "active"}
    changes: List[Change] = [
        Change("r", None, row, 1, 0, {}),
        Change("u", row, {**row, "balance": 5}, 1, 1, {}),
        Change("r", None, {**row, "user_id": 2}, 2, 0, {}),
        Change("u", {**row, "balance": 5}, {**row, "balance": 9, "moves": 2}, 1, 2, {}),
        Change("d", {**row, "user_id": 2}, None, 2, 3, {}),
    ]
    with sink:
        for change in changes:
            sink.collect(change.ts_ms, change, None)
        assert sink.buffered == 5
    assert sink.delivered == 5
    assert table_rows(sqlite_db, table.name) == {1: {**row, "balance": 9, "moves": 2}}


def test_after_a_rejected_batch_the_next_one_is_upserted(postgres_db):
    """PostgreSQL copies each batch into a temporary table made once per session: made in
    a batch that is rolled back, it is gone, and the next batch makes it again."""
    from doge_datagen.errors import DeliveryError
    from doge_datagen.sinks.cdc import Change

    table = accounts_table(postgres_db)
    sink = DbSink(postgres_db.url, table.name, lambda ts, c, t: c.row, mode="upsert", key="user_id")
    row = {"user_id": 1, "balance": 0, "moves": 0, "state": "active"}
    with sink:
        sink.collect(0, Change("r", None, {**row, "balance": 10**30}, 1, 0, {}), None)
        with pytest.raises(DeliveryError, match="rejected and rolled back"):
            sink.flush()
        for balance in (5, 7):  # two batches on the same session
            sink.collect(1, Change("u", row, {**row, "balance": balance}, 1, 1, {}), None)
            sink.flush()
            assert table_rows(postgres_db, table.name) == {1: {**row, "balance": balance}}
    assert (sink.delivered, sink.failed) == (2, 1)
