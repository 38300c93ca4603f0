"""The DB sink's full batches in upsert mode on PostgreSQL: the rows sent by the caller, the
move into the table and the ``COMMIT`` awaited by a thread while the caller collects the next
batch.

What the caller sees stays as if the batch were written in place: the batches are applied in
order; a batch the server refuses in its move (a constraint the staging table does not have)
or at ``COMMIT`` (a deferred constraint) is raised, by the next full batch, ``flush`` or
``close``, as a :class:`DeliveryError` that names the table and holds the batch's rows,
counted as failed, once the rows collected meanwhile are written, so that its counts are the
sink's; and no thread of the sink's is left after ``flush``, ``checkpoint_position`` and
``close`` (a process with a second thread is not forked for a checkpoint or a shard).
"""

import os
from types import SimpleNamespace
from typing import Any, Dict, List, Tuple

import pytest
import sqlalchemy as sa
from support.db_fixtures import Database

from doge_datagen import DbSink, DeliveryError, Transition

pytestmark = pytest.mark.postgres

MOVE = Transition("login", "offline", "online", 1.0)
BATCH = 10


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def row(ts: int, change: Any, t: Transition) -> Dict[str, Any]:
    return {"user_id": change.key, "balance": change.balance}


def changes(pairs: List[Tuple[int, int]]) -> List[Any]:
    return [SimpleNamespace(op="u", key=k, balance=v) for k, v in pairs]


def upsert_sink(db: Database, table: Any) -> DbSink:
    return DbSink(
        db.url,
        table.name,
        row,
        mode="upsert",
        key="user_id",
        batch_size=BATCH,
        flush_interval=None,
    )


def checked_table(db: Database) -> Any:
    """``(user_id, balance)``, ``balance >= 0`` checked by the table, not by the staging
    table the rows are copied into: a negative balance fails the move."""
    return db.create_table(
        None,
        sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("balance", sa.Integer, sa.CheckConstraint("balance >= 0")),
    )


def stored(db: Database, table: Any) -> Dict[int, int]:
    with db.engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.user_id, table.c.balance)).all())


def test_batches_are_applied_in_order_and_no_thread_is_left(postgres_db: Database) -> None:
    table = checked_table(postgres_db)
    sink = upsert_sink(postgres_db, table)
    sink.open()
    before = threads()
    # Each batch writes the same ten keys: a batch applied before the one ahead of it would
    # leave that one's values.
    for n, change in enumerate(changes([(k % BATCH, k) for k in range(BATCH * 7 + 3)])):
        sink.collect(0, change, MOVE)
        assert sink.delivered + sink.buffered == n + 1
    sink.flush()
    assert threads() == before
    assert (sink.delivered, sink.failed, sink.buffered) == (BATCH * 7 + 3, 0, 0)
    assert stored(postgres_db, table) == {
        k: BATCH * 7 + k if k < 3 else BATCH * 6 + k for k in range(BATCH)
    }
    for change in changes([(k % BATCH, 1000 + k) for k in range(BATCH * 3)]):
        sink.collect(0, change, MOVE)
    assert sink.checkpoint_position() is None  # (upsert mode needs no position)
    assert threads() == before
    for change in changes([(k % BATCH, 2000 + k) for k in range(BATCH * 3)]):
        sink.collect(0, change, MOVE)
    sink.close()
    assert threads() == before
    assert (sink.delivered, sink.failed) == (BATCH * 13 + 3, 0)
    assert stored(postgres_db, table) == {k: 2000 + 2 * BATCH + k for k in range(BATCH)}


def test_a_batch_refused_in_its_move_is_raised_by_the_next_full_batch(
    postgres_db: Database,
) -> None:
    table = checked_table(postgres_db)
    sink = upsert_sink(postgres_db, table)
    first = [(k, k) for k in range(BATCH)]
    second = [(k, -1 if k == 3 else 50) for k in range(BATCH)]  # refused
    third = [(k, 70) for k in range(5, 5 + BATCH)]
    with pytest.raises(DeliveryError) as caught:
        for change in changes(first + second + third):
            sink.collect(0, change, MOVE)
    error = caught.value
    assert "rejected and rolled back" in str(error) and table.name in str(error)
    # The third batch, collected meanwhile, was written before the error was raised: the
    # error's counts are the sink's, as if the second batch had failed in place.
    assert (error.delivered, error.failed) == (2 * BATCH, BATCH) == (sink.delivered, sink.failed)
    assert f"({2 * BATCH} delivered, {BATCH} failed)" in str(error)
    assert [r["balance"] for r in error.pending or []] == [v for _, v in second]
    assert sink.buffered == 0
    expected = {**{k: k for k in range(5)}, **{k: 70 for k in range(5, 15)}}
    assert stored(postgres_db, table) == expected
    for change in changes([(1, 90), (2, 91)]):
        sink.collect(0, change, MOVE)
    sink.close()
    assert (sink.delivered, sink.failed, sink.buffered) == (2 * BATCH + 2, BATCH, 0)
    assert stored(postgres_db, table) == {
        **{k: k for k in range(5)},
        **{k: 70 for k in range(5, 15)},
        1: 90,
        2: 91,
    }


@pytest.mark.parametrize("ending", ["flush", "close"])
def test_a_batch_refused_at_commit_is_raised_by_flush_or_close_after_the_rows_since(
    postgres_db: Database, ending: str
) -> None:
    """A deferred foreign key, checked at ``COMMIT``."""
    parents = postgres_db.create_table(
        None, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False)
    )
    with postgres_db.engine.begin() as conn:
        conn.execute(parents.insert(), [{"id": n} for n in range(100)])
    table = postgres_db.create_table(
        None,
        sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column(
            "balance",
            sa.Integer,
            sa.ForeignKey(parents.c.id, deferrable=True, initially="DEFERRED"),
        ),
    )
    sink = upsert_sink(postgres_db, table)
    for change in changes([(k, 500 + k) for k in range(BATCH)] + [(1, 1), (2, 2), (3, 3)]):
        sink.collect(0, change, MOVE)
    with pytest.raises(DeliveryError, match="rejected and rolled back") as caught:
        getattr(sink, ending)()
    assert [r["balance"] for r in caught.value.pending or []] == [500 + k for k in range(BATCH)]
    assert (sink.delivered, sink.failed, sink.buffered) == (3, BATCH, 0)
    assert (caught.value.delivered, caught.value.failed) == (3, BATCH)
    assert stored(postgres_db, table) == {1: 1, 2: 2, 3: 3}
    if ending == "flush":
        sink.collect(0, changes([(4, 4)])[0], MOVE)
        sink.close()
        assert stored(postgres_db, table) == {1: 1, 2: 2, 3: 3, 4: 4}
