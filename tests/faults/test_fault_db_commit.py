"""The DB sink's connection lost exactly at COMMIT, where the sink cannot know on its own
whether its batch was committed: it asks the server, and writes the batch again only if it
was not, so that every row ends up in the table exactly once.

A proxy between the sink and the real server (``db_proxy.DbProxy``) cuts the connection at
the statement in question, either after passing it on (the server did it, the reply is lost)
or before (the server never saw it), and waits until the server has ended that session, so
that each case happens the same way on every run. PostgreSQL: the sink asks
``txid_status`` about the batch's transaction. MariaDB: every batch is an XA transaction;
``XA RECOVER`` tells a prepared batch (which the sink commits) from a committed or a rolled
back one.
"""

import logging
import re
from collections import Counter

import pytest
from support.db_proxy import DbProxy
from support.fault_tools import banking, rows_of

from doge_datagen import DbSinkFactory
from doge_datagen.demo import user_row

BATCH = 200
ASKED = re.compile(r": the batch's transaction (\S+) is (\w[\w ]*)$")


def run(proxy, db, caplog):
    """The banking model into a table through ``proxy``, ``BATCH`` rows a transaction:
    ``(sink, summary, generated rows, table name, the sink's answers about its batches)``."""
    table = db.events_table().name
    factory = DbSinkFactory(proxy.url, batch_size=BATCH, flush_interval=None, retry_backoff=0.01)
    sink = factory.create(table, user_row)
    datagen, truth = banking([sink], subjects=2000, ticks=300, seed=11)
    with caplog.at_level(logging.INFO, logger="doge_datagen.sinks.db"):
        summary = datagen.start()
    factory.close()
    answers = [
        ASKED.search(r.getMessage()).groups()
        for r in caplog.records
        if r.name == "doge_datagen.sinks.db" and ASKED.search(r.getMessage())
    ]
    return sink, summary, rows_of(truth), table, answers


def assert_exactly_once(db, table, sink, summary, events):
    """Each generated row is in the table once, and every count says so."""
    assert len(events) > 3 * BATCH
    stored = db.fetch(table)
    assert Counter(map(repr, stored)) == Counter(map(repr, events))
    assert summary.delivery[sink.name] == {"delivered": len(events), "failed": 0}
    assert (sink.delivered, sink.failed, sink.buffered) == (len(events), 0, 0)


def prepared(db, proxy):
    """Which of the XA transactions the sink began through ``proxy`` the server holds
    prepared; rolled back, so as not to stay (other tests' are left alone)."""
    began = {re.search(r"'(doge-[0-9a-f]+)'", s).group(1) for s in proxy.sent("XA BEGIN")}
    assert began
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        found = [row[3].decode() for row in conn.exec_driver_sql("XA RECOVER")]
        found = [xid for xid in found if xid in began]
        for xid in found:
            conn.exec_driver_sql(f"XA ROLLBACK '{xid}'")
    return found


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(
    "forward, status, rewrites",
    [(True, "committed", 0), (False, "aborted", 1)],
    ids=["commit-done-reply-lost", "commit-never-arrived"],
)
def test_postgres_connection_lost_at_commit(postgres_db, caplog, forward, status, rewrites):
    with DbProxy(postgres_db.url) as proxy:
        cut = proxy.cut_at("COMMIT", forward=forward, after=1)  # the second batch's COMMIT
        sink, summary, events, table, answers = run(proxy, postgres_db, caplog)
        asked = proxy.sent("SELECT txid_status")
    assert cut.done.is_set() and cut.statement.strip() == "COMMIT"
    assert_exactly_once(postgres_db, table, sink, summary, events)
    # The server was asked once, about the cut batch, and its answer decided.
    assert len(asked) == 1
    assert answers == [(answers[0][0], status)]
    assert answers[0][0] in asked[0]
    assert sink.reconnects == rewrites


# -- MariaDB ---------------------------------------------------------------------------------


@pytest.mark.mariadb
@pytest.mark.parametrize(
    "statement, forward, rewrites, commits",
    [
        # Prepared, never told: the sink commits it (its own COMMIT was never sent).
        ("XA PREPARE", True, 0, 1),
        # Never prepared: rolled back with its session, written again in another.
        ("XA PREPARE", False, 1, 0),
        # Committed, never told.
        ("XA COMMIT", True, 0, 1),
        # Left prepared: the sink commits it, after the COMMIT that never arrived.
        ("XA COMMIT", False, 0, 2),
    ],
    ids=["prepare-done", "prepare-never-arrived", "commit-done", "commit-never-arrived"],
)
def test_mariadb_connection_lost_at_prepare_or_commit(
    mariadb_db, caplog, statement, forward, rewrites, commits
):
    with DbProxy(mariadb_db.url) as proxy:
        cut = proxy.cut_at(statement, forward=forward, after=1)
        try:
            sink, summary, events, table, answers = run(proxy, mariadb_db, caplog)
        finally:
            left = prepared(mariadb_db, proxy)
        recovered = proxy.sent("XA RECOVER")
        committed = proxy.sent("XA COMMIT")
    assert cut.done.is_set()
    token = re.search(r"'(doge-[0-9a-f]+)'", cut.statement).group(1)
    assert not left  # no batch left holding its locks
    assert_exactly_once(mariadb_db, table, sink, summary, events)
    assert len(recovered) == 1
    assert answers == [(token, "aborted" if rewrites else "committed")]
    # The COMMITs of the cut batch that reached the proxy, the sink's own and its resolver's.
    assert committed.count(f"XA COMMIT '{token}'") == commits
    assert sink.reconnects == rewrites


@pytest.mark.mariadb
def test_mariadb_commit_of_a_prepared_batch_lost_too(mariadb_db, caplog):
    """The batch's PREPARE is done but its reply lost; the sink finds it prepared and commits
    it, and that COMMIT's reply is lost as well: asked again, the sink must read the batch,
    now gone from ``XA RECOVER``, as committed, not as never prepared."""
    with DbProxy(mariadb_db.url) as proxy:
        first = proxy.cut_at("XA PREPARE", forward=True, after=1)
        second = proxy.cut_at("XA COMMIT", forward=True)  # the sink's own, after XA RECOVER
        try:
            sink, summary, events, table, answers = run(proxy, mariadb_db, caplog)
        finally:
            left = prepared(mariadb_db, proxy)
        recovered = proxy.sent("XA RECOVER")
    assert first.done.is_set() and second.done.is_set()
    token = re.search(r"'(doge-[0-9a-f]+)'", first.statement).group(1)
    assert second.statement == f"XA COMMIT '{token}'"
    assert not left
    assert_exactly_once(mariadb_db, table, sink, summary, events)
    assert len(recovered) == 2
    assert answers == [(token, "committed")]
    assert sink.reconnects == 0


@pytest.mark.postgres
def test_postgres_session_left_running_after_the_connection_is_lost(postgres_db, caplog):
    """The COMMIT never arrives and the server does not notice that the connection is gone
    (as when the network, not the client, fails): the batch's transaction is still in
    progress when the sink asks. The sink ends that session, and its answer is then final."""
    with DbProxy(postgres_db.url) as proxy:
        cut = proxy.cut_at("COMMIT", forward=False, end_session=False, after=1)
        sink, summary, events, table, answers = run(proxy, postgres_db, caplog)
        asked = proxy.sent("SELECT txid_status")
    assert cut.done.is_set()
    assert_exactly_once(postgres_db, table, sink, summary, events)
    assert answers == [(answers[0][0], "aborted")]
    assert len(asked) == 2  # in progress, then aborted once the session was ended
    assert sink.reconnects == 1
