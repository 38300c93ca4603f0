"""DbSinkFactory / DbSink against real PostgreSQL, MariaDB and SQLite databases.

Every run of the banking model also feeds an InMemorySink placed just before the database sink
on the same transitions, so what the generator emitted can be compared, row by row, with what
plain SQL reads back from the table (in ``id`` order).
"""

import datetime
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List

import pytest
import sqlalchemy as sa  # a required dependency: a missing one fails, never skips
from support.db_fixtures import EVENT_COLUMNS, Database, id_column, make_engine

from doge_datagen import (
    ConfigurationError,
    CountingSink,
    DataOnlineGenerator,
    DbSink,
    DbSinkFactory,
    DeliveryError,
    InMemorySink,
    RecordError,
    Transition,
)
from doge_datagen.demo import User, user_row
from doge_datagen.demo import (
    banking_generator as create_example_data_online_generator,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

SEED = 20240611
TRANSITION = Transition("login", "offline", "online", 1.0)


def banking_beside(
    sink: Any, memory: InMemorySink, subjects: int = 2000, ticks: int = 200, seed: int = SEED
) -> DataOnlineGenerator:
    """The banking model with ``sink`` as its clickstream and transaction sink (so no
    transition uses it twice) and ``memory`` just before it on every transition."""
    other = CountingSink()
    datagen = create_example_data_online_generator(
        sink, sink, other, other, subjects_num=subjects, ticks_num=ticks, seed=seed
    )
    for transition in datagen.transitions:
        transition.event_sinks = [
            s
            for used in transition.event_sinks
            for s in ((memory, used) if used is sink else (used,))
        ]
    return datagen


def emitted_rows(subjects: int = 2000, ticks: int = 200, seed: int = SEED) -> List[Dict[str, Any]]:
    """The rows the banking model sends to the sink of :func:`banking_beside`."""
    memory = InMemorySink(user_row)
    other = CountingSink()
    create_example_data_online_generator(
        memory, memory, other, other, subjects_num=subjects, ticks_num=ticks, seed=seed
    ).start()
    return [event.value for event in memory.events]


def example_rows(subjects: int, ticks: int, seed: int) -> List[Dict[str, Any]]:
    """The rows of the example script, which uses its one sink in every role, each event once."""
    memory = InMemorySink(user_row)
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    from doge_example_common import banking_into

    banking_into(memory, subjects_num=subjects, ticks_num=ticks, seed=seed).start()
    rows = [event.value for event in memory.events]
    moves = [(row["timestamp"], row["user_id"]) for row in rows]
    assert len(set(moves)) == len(moves)  # one row per move, not one per stream
    return rows


def values(memory: InMemorySink) -> List[Any]:
    return [event.value for event in memory.events]


def expected_method(db: Database) -> str:
    return "copy" if db.kind == "postgresql" else "executemany"


# -- the banking model, end to end ---------------------------------------------------------


def test_banking_model_rows_read_back_exactly(any_db: Database) -> None:
    table = any_db.events_table()
    factory = DbSinkFactory(any_db.url, batch_size=200)
    sink = factory.create(table.name, user_row)
    memory = InMemorySink(user_row)

    summary = banking_beside(sink, memory, ticks=500).start()

    emitted = values(memory)
    assert len(emitted) > 10 * 200  # many batches, the last one partial
    assert len(emitted) % 200 != 0
    assert any_db.fetch(table.name) == emitted
    assert sink.name == f"db:{table.name}"
    assert summary.events_per_sink[sink.name] == len(emitted)
    assert summary.events_per_sink[memory.name] == len(emitted)
    assert sink.written == sink.delivered == len(emitted)
    assert sink.failed == 0
    assert sink.buffered == 0
    assert sink.method == expected_method(any_db)


@pytest.mark.postgres
def test_postgresql_url_without_driver_uses_an_installed_one(postgres_db: Database) -> None:
    if "+" in sa.engine.make_url(postgres_db.url).drivername:
        pytest.skip("DOGE_TEST_POSTGRES_URL names a driver")
    factory = DbSinkFactory(postgres_db.url)
    assert factory.engine.dialect.driver in ("psycopg2", "psycopg")
    # The "postgres://" spelling works too.
    with DbSinkFactory("postgres://" + postgres_db.url.split("://", 1)[1]) as other:
        assert other.engine.dialect.name == "postgresql"
    table = postgres_db.events_table()
    with factory.create(table.name, user_row) as sink:
        sink.collect(1, User(7, 10, 0), TRANSITION)
    assert sink.method == "copy"
    assert postgres_db.fetch(table.name) == [user_row(1, User(7, 10, 0), TRANSITION)]
    factory.close()


# -- values that need quoting -------------------------------------------------------------

EDGE_STRINGS = [
    "plain",
    "a,b",
    ",",
    'say "hi"',
    '"',
    '""',
    "line1\nline2",
    "\n",
    "cr\rlf\r\n",
    "",
    "  padded  ",
    "tab\tseparated",
    "\\",
    "\\N",
    "\\.",
    "end with backslash\\",
    "NULL",
    "None",
    "null",
    "'single'",
    "ünïcødé ✓ 🚀 中文",
    '"quoted, with commas\nand lines"',
    "x" * 3000,
]


def feed(sink: DbSink, rows: List[Dict[str, Any]]) -> None:
    """Collect ``rows`` through ``sink``'s real row mapper (row i at timestamp i)."""
    for i in range(len(rows)):
        sink.collect(i, None, TRANSITION)


def test_quoting_edge_cases_round_trip(any_db: Database) -> None:
    table = any_db.create_table(
        None,
        id_column(),
        sa.Column("a", sa.Text),
        sa.Column("b", sa.Text),
        sa.Column("n", sa.BigInteger),
    )
    rows = []
    for i, text in enumerate(EDGE_STRINGS):
        rows.append({"a": text, "b": None if i % 3 == 0 else text[::-1], "n": None if i % 2 else i})
    rows.append({"a": None, "b": None, "n": None})
    rows.append({"a": "", "b": None, "n": 0})
    factory = DbSinkFactory(any_db.url, batch_size=7)
    sink = factory.create(table.name, lambda ts, subject, transition: rows[ts])
    feed(sink, rows)
    sink.close()
    assert sink.method == expected_method(any_db)
    assert any_db.fetch(table.name, ["a", "b", "n"]) == rows


def test_single_text_column_round_trip(any_db: Database) -> None:
    """One column per line: an empty line, a lone ``\\.`` and an empty string must survive."""
    table = any_db.create_table(None, id_column(), sa.Column("s", sa.Text))
    rows = [{"s": v} for v in ["\\.", "", None, "x", "\\.\n", None, ""]]
    sink = DbSinkFactory(any_db.url).create(table.name, lambda ts, subject, transition: rows[ts])
    feed(sink, rows)
    sink.close()
    assert any_db.fetch(table.name, ["s"]) == rows


def test_rows_of_only_strings_and_whole_numbers_round_trip(any_db: Database) -> None:
    """Batches with no NULL, float or other type, and batches where a string holds a double
    quote: every string and whole number comes back as it was."""
    table = any_db.create_table(
        None, id_column(), sa.Column("a", sa.Text), sa.Column("n", sa.BigInteger)
    )
    numbers = [0, -1, 2**62, -(2**62), 7]
    rows = [{"a": text, "n": numbers[i % 5]} for i, text in enumerate(EDGE_STRINGS)]
    sink = DbSinkFactory(any_db.url, batch_size=2).create(
        table.name, lambda ts, subject, transition: rows[ts]
    )
    feed(sink, rows)
    sink.close()
    assert any_db.fetch(table.name, ["a", "n"]) == rows
    assert (sink.delivered, sink.failed) == (len(rows), 0)


def test_typed_values_round_trip(any_db: Database) -> None:
    columns = [
        id_column(),
        sa.Column("flag", sa.Boolean),
        sa.Column("ratio", sa.Double),
        sa.Column("day", sa.Date),
        sa.Column("at", sa.DateTime),
        sa.Column("count", sa.BigInteger),
    ]
    if any_db.kind != "sqlite":  # SQLite has no exact decimal type
        columns.append(sa.Column("amount", sa.Numeric(12, 2)))
    table = any_db.create_table(None, *columns)
    rows: List[Dict[str, Any]] = [
        {
            "flag": True,
            "ratio": 0.1,
            "day": datetime.date(2024, 2, 29),
            "at": datetime.datetime(2024, 1, 2, 3, 4, 5),
            "count": -(2**62),
        },
        {
            "flag": False,
            "ratio": -1.5e300,
            "day": datetime.date(1999, 12, 31),
            "at": datetime.datetime(1970, 1, 1),
            "count": 0,
        },
        {"flag": None, "ratio": None, "day": None, "at": None, "count": None},
    ]
    if any_db.kind != "sqlite":
        for row, amount in zip(rows, [Decimal("12345.67"), Decimal("-0.01"), None]):
            row["amount"] = amount
    sink = DbSinkFactory(any_db.url).create(table.name, lambda ts, subject, transition: rows[ts])
    feed(sink, rows)
    sink.close()
    with any_db.engine.connect() as conn:
        stored = [dict(row._mapping) for row in conn.execute(sa.select(table).order_by(table.c.id))]
    for row in stored:
        del row["id"]
    assert stored == rows


def test_whole_floats_in_integer_columns_are_stored_as_integers(any_db: Database) -> None:
    """A float timestamp (say from a float ``tick_ms``) fits a BIGINT column on every path."""
    table = any_db.events_table()
    rows = [
        {
            "timestamp": 1700000000000.0,
            "user_id": 1,
            "balance": 10,
            "loan_balance": 0,
            "event": "a",
        },
        {
            "timestamp": 1700000060000.0,
            "user_id": 2,
            "balance": 5.0,
            "loan_balance": None,
            "event": "b",
        },
    ]
    sink = DbSinkFactory(any_db.url).create(table.name, lambda ts, subject, transition: rows[ts])
    feed(sink, rows)
    sink.close()
    stored = any_db.fetch(table.name)
    assert stored == rows
    assert all(type(row["timestamp"]) is int for row in stored)


@pytest.mark.postgres
def test_types_copy_cannot_take_go_through_insert(postgres_db: Database) -> None:
    from sqlalchemy.dialects.postgresql import JSONB

    table = postgres_db.create_table(
        None, id_column(), sa.Column("payload", JSONB), sa.Column("note", sa.Text)
    )
    rows = [
        {"payload": {"user": {"id": 1, "tags": ["a", "b"]}}, "note": "x,y"},
        {"payload": [1, 2.5, None, "ü"], "note": None},
    ]
    sink = DbSinkFactory(postgres_db.url).create(
        table.name, lambda ts, subject, transition: rows[ts]
    )
    feed(sink, rows)
    sink.close()
    assert sink.method == "insert"
    assert postgres_db.fetch(table.name, ["payload", "note"]) == rows


def test_a_table_object_with_python_side_defaults(any_db: Database) -> None:
    """Defaults that only SQLAlchemy knows about are applied: such rows go through insert()."""
    any_db.events_table()  # not this one: a table defined here, never reflected
    table = any_db.create_table(
        None,
        id_column(),
        sa.Column("event", sa.String(64)),
        sa.Column("origin", sa.String(32), default="doge"),
    )
    engine = make_engine(any_db.url)
    try:
        sink = DbSink(engine, table, lambda ts, s, t: {"event": t.trigger}, batch_size=2)
        for i in range(3):
            sink.collect(i, None, TRANSITION)
        sink.close()
    finally:
        engine.dispose()
    assert sink.method == "insert"
    assert sink.name == f"db:{table.name}"
    assert (
        any_db.fetch(table.name, ["event", "origin"]) == [{"event": "login", "origin": "doge"}] * 3
    )


# -- rows with different keys ------------------------------------------------------------


def test_rows_with_different_keys_keep_their_order(any_db: Database) -> None:
    table = any_db.events_table()

    def sparse_row(timestamp: int, subject: User, transition: Transition) -> Dict[str, Any]:
        row = user_row(timestamp, subject, transition)
        if row["loan_balance"] == 0:
            del row["loan_balance"]
        if transition.trigger == "login":
            del row["balance"]
        return row

    sink = DbSinkFactory(any_db.url, batch_size=50).create(table.name, sparse_row)
    memory = InMemorySink(sparse_row)
    banking_beside(sink, memory).start()
    expected = [{c: row.get(c) for c in EVENT_COLUMNS} for row in values(memory)]
    assert len({frozenset(row) for row in values(memory)}) == 4
    assert any_db.fetch(table.name) == expected
    assert sink.written == len(expected)


# -- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["check constraint", "not null"])
@pytest.mark.parametrize("where", ["middle", "last batch"])
def test_rejected_batch_is_rolled_back_and_reported(
    any_db: Database, fault: str, where: str
) -> None:
    batch = 100
    rows = emitted_rows()
    assert len(rows) % batch > 10
    k = len(rows) // 2 + 37 if where == "middle" else len(rows) - 3
    victim = (rows[k]["timestamp"], rows[k]["user_id"])
    first = next(i for i, r in enumerate(rows) if (r["timestamp"], r["user_id"]) == victim)
    start = first // batch * batch

    if fault == "not null":
        table = any_db.events_table(event_nullable=False)

        def mapper(timestamp: int, subject: User, transition: Transition) -> Dict[str, Any]:
            row = user_row(timestamp, subject, transition)
            if (timestamp, subject.user_id) == victim:
                row["event"] = None
            return row

    else:
        q = any_db.quote
        check = sa.CheckConstraint(
            f"NOT ({q('timestamp')} = {victim[0]} AND {q('user_id')} = {victim[1]})"
        )
        table = any_db.events_table(None, check)
        mapper = user_row

    sink = DbSinkFactory(any_db.url, batch_size=batch).create(table.name, mapper)
    memory = InMemorySink(mapper)
    with pytest.raises(DeliveryError) as info:
        banking_beside(sink, memory).start()
    error = info.value

    emitted = values(memory)
    stored = any_db.fetch(table.name)
    assert error.delivered == len(stored) == start == sink.written
    assert stored == emitted[:start]
    assert error.pending == emitted[start:]  # the memory sink saw every event, up to the end
    assert error.failed == len(error.pending) == sink.failed
    if where == "middle":
        assert error.failed == batch
        assert len(emitted) == start + batch < len(rows)  # the run stopped there
    else:
        assert error.failed == len(rows) - start < batch
        assert len(emitted) == len(rows)
    assert error.sink == sink.name
    message = str(error)
    assert f"{start} delivered" in message
    assert f"batch of {error.failed} rows" in message
    assert ("constraint" if fault == "check constraint" else "null") in message.lower()
    assert error.__cause__ is not None


def test_sink_keeps_working_after_a_rejected_batch(any_db: Database) -> None:
    table = any_db.events_table(event_nullable=False)
    rows = [user_row(i, User(i, i, 0), TRANSITION) for i in range(6)]
    rows[4]["event"] = None
    sink = DbSinkFactory(any_db.url, batch_size=3).create(
        table.name, lambda ts, subject, transition: rows[ts]
    )
    with pytest.raises(DeliveryError) as info:
        feed(sink, rows)  # the second batch (rows 3 to 5) is rejected
    assert info.value.pending == rows[3:6]
    assert info.value.delivered == 3
    rows[4]["event"] = "fixed"
    for i in range(3, 6):  # the caller retries the rejected rows
        sink.collect(i, None, TRANSITION)
    sink.close()
    assert any_db.fetch(table.name) == rows
    assert (sink.written, sink.failed) == (6, 3)


def test_missing_table_is_a_configuration_error(any_db: Database) -> None:
    name = any_db.table_name("missing")
    with DbSinkFactory(any_db.url) as factory, pytest.raises(ConfigurationError) as info:
        factory.create(name, user_row)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert repr(name) in message
    assert str(sa.engine.make_url(any_db.url).database) in message
    with pytest.raises(ConfigurationError, match=name):
        DbSink(any_db.url, name, user_row)


@pytest.mark.postgres
def test_missing_table_message_hides_the_password(postgres_db: Database) -> None:
    url = (
        sa.engine.make_url(postgres_db.url)
        .set(password="s3cret-pw")
        .render_as_string(hide_password=False)
    )
    name = postgres_db.table_name("missing")
    with DbSinkFactory(url) as factory, pytest.raises(ConfigurationError) as info:
        factory.create(name, user_row)
    message = str(info.value)
    assert name in message
    assert "s3cret-pw" not in message
    assert "***" in message


def test_unknown_key_is_a_record_error_naming_key_and_table(any_db: Database) -> None:
    table = any_db.events_table()

    def with_colour(timestamp: int, subject: User, transition: Transition) -> Dict[str, Any]:
        return {**user_row(timestamp, subject, transition), "colour": "red"}

    sink = DbSinkFactory(any_db.url).create(table.name, with_colour)
    with pytest.raises(RecordError) as info:
        sink.collect(0, User(1, 2, 3), TRANSITION)
    assert "'colour'" in str(info.value)
    assert table.name in str(info.value)
    assert sink.buffered == 0
    sink.close()
    assert any_db.count(table.name) == 0


def test_unknown_key_in_the_middle_of_a_run(any_db: Database) -> None:
    table = any_db.events_table()
    rows = emitted_rows()
    bad_at = len(rows) // 3
    bad = (rows[bad_at]["timestamp"], rows[bad_at]["user_id"])

    def mapper(timestamp: int, subject: User, transition: Transition) -> Dict[str, Any]:
        row = user_row(timestamp, subject, transition)
        if (timestamp, subject.user_id) == bad:
            row["balanse"] = row.pop("balance")
        return row

    sink = DbSinkFactory(any_db.url, batch_size=64).create(table.name, mapper)
    memory = InMemorySink(mapper)
    with pytest.raises(RecordError, match="'balanse'"):
        banking_beside(sink, memory).start()
    emitted = values(memory)
    assert "balanse" in emitted[-1]
    # The rows before the bad one were written when the run closed its sinks.
    assert any_db.fetch(table.name) == emitted[:-1]
    assert sink.written == len(emitted) - 1


def test_row_mapper_must_return_a_dict(sqlite_db: Database) -> None:
    table = sqlite_db.events_table()
    sink = DbSinkFactory(sqlite_db.url).create(table.name, lambda ts, s, t: [ts])
    with pytest.raises(RecordError, match="dict"):
        sink.collect(0, None, TRANSITION)
    sink.close()


# -- buffering, closing and engines ---------------------------------------------------------


def test_close_writes_the_rest_and_is_idempotent(any_db: Database) -> None:
    table = any_db.events_table()
    sink = DbSinkFactory(any_db.url, batch_size=1000).create(table.name, user_row)
    for i in range(5):
        sink.collect(i, User(i, 10 * i, 0), TRANSITION)
    assert sink.buffered == 5
    assert any_db.count(table.name) == 0
    sink.close()
    assert any_db.count(table.name) == 5
    sink.close()
    assert any_db.count(table.name) == 5
    assert sink.written == 5
    # A closed sink can be used again: a second run appends.
    sink.collect(5, User(5, 50, 0), TRANSITION)
    sink.close()
    assert [row["user_id"] for row in any_db.fetch(table.name)] == [0, 1, 2, 3, 4, 5]


def test_a_second_run_of_the_same_generator_appends(sqlite_db: Database) -> None:
    table = sqlite_db.events_table()
    sink = DbSinkFactory(sqlite_db.url, batch_size=128).create(table.name, user_row)
    memory = InMemorySink(user_row)
    datagen = banking_beside(sink, memory)
    datagen.start()
    first = len(memory)
    summary = datagen.start()
    assert summary.events_per_sink[sink.name] == len(memory) - first > 0
    assert sqlite_db.fetch(table.name) == values(memory)
    assert sink.written == len(memory) - first  # the counts are the second run's


def test_an_engine_passed_in_is_left_alone(any_db: Database) -> None:
    table = any_db.events_table()
    engine = make_engine(any_db.url)
    try:
        sink = DbSinkFactory(engine).create(table.name, user_row)
        sink.collect(0, User(1, 2, 3), TRANSITION)
        sink.close()
        assert engine.pool.checkedin() == 1  # its pooled connection is still there
    finally:
        engine.dispose()
    owned = DbSinkFactory(any_db.url)
    sink = owned.create(table.name, user_row)
    sink.collect(1, User(1, 2, 3), TRANSITION)
    sink.close()
    assert owned.engine.pool.checkedin() == 0  # released on close
    assert any_db.count(table.name) == 2


@pytest.mark.parametrize(
    "db_name, schema",
    [pytest.param("postgres", "public", marks=pytest.mark.postgres), ("sqlite", "main")],
)
def test_schema_argument(db_name: str, schema: str, request: pytest.FixtureRequest) -> None:
    db: Database = request.getfixturevalue(f"{db_name}_db")
    name = db.table_name()
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {schema}.{name} (id INTEGER PRIMARY KEY, note TEXT)")
    db.drop_at_end(name)
    sink = DbSinkFactory(db.url).create(
        name, lambda ts, s, t: {"id": ts, "note": "n,1"}, schema=schema
    )
    assert sink.name == f"db:{schema}.{name}"
    sink.collect(3, None, TRANSITION)
    sink.close()
    assert sink.method == expected_method(db)
    with db.engine.connect() as conn:
        assert list(conn.exec_driver_sql(f"SELECT id, note FROM {schema}.{name}")) == [(3, "n,1")]


# -- configuration errors --------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [0, -1, True, "10", 1.5])
def test_bad_batch_size(sqlite_db: Database, batch_size: Any) -> None:
    with pytest.raises(ConfigurationError, match="batch_size"):
        DbSinkFactory(sqlite_db.url, batch_size=batch_size)


@pytest.mark.parametrize(
    "url, words",
    [
        ("not a database url", "parse"),
        ("nosuchdb://user:pw@host/db", "dialect"),
        ("postgresql+nosuchdriver://user:pw@host/db", "dialect"),
        (12345, "url must be"),
    ],
)
def test_bad_urls(url: Any, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words) as info:
        DbSinkFactory(url)
    assert ":pw@" not in str(info.value)


def test_bad_engine_options(sqlite_db: Database) -> None:
    with pytest.raises(ConfigurationError, match="engine options"):
        DbSinkFactory(sqlite_db.url, no_such_option=1)
    engine = make_engine(sqlite_db.url)
    with pytest.raises(ConfigurationError, match="echo"):
        DbSinkFactory(engine, echo=True)
    engine.dispose()


def test_row_mapper_must_be_callable(sqlite_db: Database) -> None:
    table = sqlite_db.events_table()
    with pytest.raises(ConfigurationError, match="callable"):
        DbSinkFactory(sqlite_db.url).create(table.name, "not a function")  # type: ignore[arg-type]


def test_importing_the_package_does_not_import_sqlalchemy() -> None:
    code = "import sys, doge_datagen; assert 'sqlalchemy' not in sys.modules, 'imported'"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


# -- the example script -------------------------------------------------------------------


def run_example(*args: str, cwd: Path, env: Dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "doge_db_example.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    "db_name", [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"]
)
def test_db_example_script(db_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    db: Database = request.getfixturevalue(f"{db_name}_db")
    table = db.table_name("example")
    db.drop_at_end(table)
    args = ["--table", table, "--subjects", "500", "--ticks", "300", "--seed", "5"]
    env = {k: v for k, v in os.environ.items() if k != "DOGE_DB_URL"}
    stdout = run_example("--db-url", db.url, *args, cwd=tmp_path, env=env)
    expected = example_rows(subjects=500, ticks=300, seed=5)
    assert db.fetch(table) == expected
    assert f"db:{table}" in stdout
    assert f"{len(expected)} rows written to {table!r}" in stdout
    # Run again with the URL from the environment: the table exists, rows are added.
    stdout = run_example(*args, cwd=tmp_path, env={**env, "DOGE_DB_URL": db.url})
    assert db.fetch(table) == expected + expected


def test_db_example_script_default_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DOGE_DB_URL"}
    run_example("--subjects", "200", "--ticks", "200", "--seed", "9", cwd=tmp_path, env=env)
    db = Database("sqlite", f"sqlite:///{tmp_path / 'doge_events.db'}")
    try:
        assert db.fetch("events") == example_rows(subjects=200, ticks=200, seed=9)
    finally:
        db.cleanup()
