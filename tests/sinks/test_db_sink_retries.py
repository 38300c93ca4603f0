"""The DB sink's retries after a lost connection, on the real PostgreSQL.

The connection is lost for real and exactly when wanted: a statement trigger on the table
ends its own server session (``pg_terminate_backend(pg_backend_pid())``) for the first ``N``
writes, counted by a sequence (which a rolled-back transaction does not undo).

``retries=N`` means N more attempts after the first: a batch whose connection is lost N
times is still written, once; lost N + 1 times, it is reported as failed. An interrupt
(Ctrl-C) during the pause before a retry leaves the batch counted as failed, so that
``delivered + failed + buffered`` is always every row collected.
"""

import logging
import os
import signal
import threading
from typing import Tuple

import pytest
import sqlalchemy as sa
from support.db_fixtures import Database

from doge_datagen import DbSink, DeliveryError, Transition

pytestmark = pytest.mark.postgres

MOVE = Transition("login", "offline", "online", 1.0)


class Dropping:
    """A table whose writes after the first ``after`` lose their connection, ``drops`` of
    them; :attr:`writes` counts the writes tried (the statements that reached the trigger)."""

    def __init__(self, db: Database, drops: int, after: int = 0) -> None:
        self.db = db
        table = db.create_table(None, sa.Column("n", sa.Integer), sa.Column("event", sa.String(32)))
        self.name = name = table.name
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SEQUENCE {name}_writes")
            conn.exec_driver_sql(
                f"CREATE FUNCTION {name}_drop() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"DECLARE k bigint := nextval('{name}_writes') - {int(after)}; BEGIN "
                f"IF k BETWEEN 1 AND {int(drops)} THEN "
                "PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); "
                "END IF; RETURN NULL; END $$"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER {name}_drop BEFORE INSERT ON {name} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}_drop()"
            )

    @property
    def writes(self) -> int:
        with self.db.engine.connect() as conn:
            row = conn.exec_driver_sql(f"SELECT last_value, is_called FROM {self.name}_writes")
            last, called = row.one()
            return int(last) if called else 0

    def drop(self) -> None:
        with self.db.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.name}")
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {self.name}_drop()")
            conn.exec_driver_sql(f"DROP SEQUENCE IF EXISTS {self.name}_writes")


def dropping_sink(
    db: Database, drops: int, retries: int, backoff: float, after: int = 0
) -> Tuple[DbSink, Dropping]:
    table = Dropping(db, drops, after)
    sink = DbSink(
        db.url,
        table.name,
        lambda ts, s, t: {"n": ts, "event": t.trigger},
        batch_size=1000,
        retries=retries,
        retry_backoff=backoff,
        flush_interval=None,
    )
    sink.open()
    return sink, table


@pytest.mark.parametrize("retries", [1, 3])
def test_a_batch_lost_as_many_times_as_retries_allow_is_written_once(
    postgres_db: Database, retries: int
) -> None:
    sink, table = dropping_sink(postgres_db, retries, retries, 0.0)
    try:
        for n in range(40):
            sink.collect(n, None, MOVE)
        sink.flush()
        assert (sink.delivered, sink.failed, sink.buffered) == (40, 0, 0)
        assert sink.reconnects == retries and table.writes == retries + 1
        assert postgres_db.count(table.name) == 40
        sink.close()
    finally:
        table.drop()


@pytest.mark.parametrize("retries", [0, 2])
def test_a_batch_lost_once_more_than_retries_allow_is_reported_failed(
    postgres_db: Database, retries: int
) -> None:
    sink, table = dropping_sink(postgres_db, retries + 1, retries, 0.0)
    try:
        for n in range(40):
            sink.collect(n, None, MOVE)
        with pytest.raises(DeliveryError, match=f"lost {retries + 1} times") as caught:
            sink.flush()
        assert (caught.value.delivered, caught.value.failed) == (0, 40)
        assert len(caught.value.pending or []) == 40
        assert sink.reconnects == retries and table.writes == retries + 1
        assert postgres_db.count(table.name) == 0
        # The next write keeps its connection: the sink goes on with the next batch.
        sink.collect(40, None, MOVE)
        sink.close()
        assert (sink.delivered, sink.failed) == (1, 40) and postgres_db.count(table.name) == 1
    finally:
        table.drop()


def test_an_interrupt_during_the_retry_pause_counts_the_batch_failed(
    postgres_db: Database,
) -> None:
    """Ctrl-C while the sink waits before writing a batch again (signalled as soon as the
    sink says it is waiting): ``KeyboardInterrupt`` comes out of ``flush``, the batch is not
    in the table, and it is counted: collected = delivered + failed + buffered."""
    sink, table = dropping_sink(postgres_db, 10**6, 3, 60.0, after=1)
    waiting, finished = threading.Event(), threading.Event()

    class OnRetry(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "writing them again" in record.getMessage():
                waiting.set()

    def interrupt() -> None:
        if waiting.wait(30) and not finished.is_set():
            os.kill(os.getpid(), signal.SIGINT)

    handler = OnRetry(logging.WARNING)
    logger = logging.getLogger("doge_datagen")
    logger.addHandler(handler)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupter = threading.Thread(target=interrupt)
    try:
        for n in range(25):
            sink.collect(n, None, MOVE)
        sink.flush()
        for n in range(25, 40):
            sink.collect(n, None, MOVE)
        # From now on every write loses its connection.
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            sink.flush()
        assert sink.reconnects >= 1 and waiting.is_set()  # interrupted in a pause
        assert (sink.delivered, sink.failed, sink.buffered) == (25, 15, 0)
        assert postgres_db.count(table.name) == 25
        sink.close()  # nothing left to write
        assert (sink.delivered, sink.failed, sink.buffered) == (25, 15, 0)
    finally:
        finished.set()
        waiting.set()
        if interrupter.is_alive():
            interrupter.join(30)
        signal.signal(signal.SIGINT, previous)
        logger.removeHandler(handler)
        table.drop()
