"""Change events into the SQL sink's upsert mode: with :func:`change_row` as the mapper the
rows go to the sink as they are (no :class:`Change` made to be read back); the table, the
counts of the sink and those of the change events are those of any other mapper that
returns the same rows."""

from typing import Any, Dict, Tuple

import pytest
from support.accounts import accounts_table, bank, final_rows, table_rows

from doge_datagen.sinks.cdc import Change, ChangeEventSink, change_row
from doge_datagen.sinks.db import DbSink


def own_row(timestamp: int, change: Change, transition: Any) -> Dict[str, Any]:
    """A user's mapper: the same row, read from the change."""
    assert isinstance(change, Change)
    return change.after if change.after is not None else change.before  # type: ignore[return-value]


def run(db: Any, mapper: Any) -> Tuple[Any, Any, Any]:
    table = accounts_table(db)
    inner = DbSink(db.url, table.name, mapper, mode="upsert", key="user_id", batch_size=23)
    sink = ChangeEventSink(inner, key="user_id")
    datagen = bank([sink], subjects=50, ticks=40, arrivals=0.3, seed=8)
    datagen.start()
    return table, sink, datagen


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_change_row_and_a_mapper_of_the_same_rows_write_the_same(request, kind):
    db = request.getfixturevalue(f"{kind}_db")
    fast_table, fast, datagen = run(db, change_row)
    slow_table, slow, _ = run(db, own_row)
    expected = final_rows(datagen)
    assert 0 < len(expected)
    assert table_rows(db, fast_table.name) == expected == table_rows(db, slow_table.name)
    assert fast.changes == slow.changes and fast.changes["d"] > 0 and fast.changes["u"] > 0
    assert (fast.delivered, fast.failed) == (slow.delivered, slow.failed)
    assert fast.delivered == sum(fast.changes.values())
