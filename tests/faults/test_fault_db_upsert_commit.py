"""The upsert mode's batches across a connection lost exactly at COMMIT: the sink asks the
server whether the batch was committed and writes it again only if not, so the table ends
equal to the subjects' final attributes and every change is counted delivered once."""

import logging
import re

import pytest
from support.accounts import RECORDS, accounts_table, bank, envelopes, final_rows, table_rows
from support.db_proxy import DbProxy

from doge_datagen.sinks.registry import build_sink

ASKED = re.compile(r": the batch's transaction (\S+) is (\w[\w ]*)$")


def upsert_run(proxy, db, caplog, tmp_path):
    table = accounts_table(db).name
    joint = "&" if "?" in proxy.url else "?"
    sink = build_sink(
        f"{proxy.url}{joint}table={table}&mode=upsert&key=user_id&batch_size=60", RECORDS
    )
    sink.inner.flush_interval = None  # batches by size only: the cut one is the second
    sink.inner.retry_backoff = 0.01
    path = tmp_path / "changes.jsonl"
    stream = build_sink(f"jsonl:{path}?envelope=debezium&key=user_id", RECORDS)
    datagen = bank([sink, stream], subjects=300, ticks=30, seed=8)
    with caplog.at_level(logging.INFO, logger="doge_datagen.sinks.db"):
        summary = datagen.start()
    answers = [
        ASKED.search(r.getMessage()).groups()
        for r in caplog.records
        if r.name == "doge_datagen.sinks.db" and ASKED.search(r.getMessage())
    ]
    return sink, summary, datagen, table, answers, envelopes(path)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "forward, status, rewrites",
    [(True, "committed", 0), (False, "aborted", 1)],
    ids=["commit-done-reply-lost", "commit-never-arrived"],
)
def test_postgres_upsert_connection_lost_at_commit(
    postgres_db, caplog, tmp_path, forward, status, rewrites
):
    with DbProxy(postgres_db.url) as proxy:
        cut = proxy.cut_at("COMMIT", forward=forward, after=1)  # the second batch's COMMIT
        sink, summary, datagen, table, answers, changes = upsert_run(
            proxy, postgres_db, caplog, tmp_path
        )
    assert cut.done.is_set() and cut.statement.strip() == "COMMIT"
    assert len(changes) > 3 * 60
    assert table_rows(postgres_db, table) == final_rows(datagen)
    counts = summary.delivery[sink.name]
    assert (counts["delivered"], counts["failed"]) == (len(changes), 0)
    assert counts["op_r"] == 300 and sum(counts[f"op_{op}"] for op in "rcud") == len(changes)
    assert (sink.delivered, sink.failed, sink.buffered) == (len(changes), 0, 0)
    assert answers == [(answers[0][0], status)]
    assert sink.inner.reconnects == rewrites


@pytest.mark.mariadb
@pytest.mark.parametrize(
    "statement, forward, rewrites",
    [("XA PREPARE", False, 1), ("XA COMMIT", False, 0)],
    ids=["prepare-never-arrived", "commit-never-arrived"],
)
def test_mariadb_upsert_connection_lost_at_prepare_or_commit(
    mariadb_db, caplog, tmp_path, statement, forward, rewrites
):
    from test_fault_db_commit import prepared

    with DbProxy(mariadb_db.url) as proxy:
        cut = proxy.cut_at(statement, forward=forward, after=1)
        try:
            sink, summary, datagen, table, answers, changes = upsert_run(
                proxy, mariadb_db, caplog, tmp_path
            )
        finally:
            left = prepared(mariadb_db, proxy)
    assert cut.done.is_set() and not left
    assert table_rows(mariadb_db, table) == final_rows(datagen)
    counts = summary.delivery[sink.name]
    assert (counts["delivered"], counts["failed"]) == (len(changes), 0)
    assert answers == [(answers[0][0], "aborted" if rewrites else "committed")]
    assert sink.inner.reconnects == rewrites
