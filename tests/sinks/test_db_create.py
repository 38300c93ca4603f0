"""``DbSinkFactory.create(..., create=True)``: a missing table made when the run starts, its
column types from the rows or ``columns=``, with primary and foreign keys, on PostgreSQL,
MariaDB and SQLite."""

import datetime
from decimal import Decimal
from typing import Any, Dict

import pytest
import sqlalchemy as sa
from support.db_fixtures import Database

from doge_datagen import ConfigurationError, DataOnlineGenerator, DbSinkFactory, InMemorySink

START = datetime.datetime(2024, 1, 1)


class Visitor:
    def __init__(self, index: int) -> None:
        self.id = index
        self.visits = 0


class Visitors:
    def create(self, index: int) -> Visitor:
        return Visitor(index)


def model(users: Any = None, visits: Any = None, subjects: int = 5, ticks: int = 4):
    """Subjects sign up once (into ``users``), then visit every tick (into ``visits``)."""
    datagen = DataOnlineGenerator(
        ["new", "member"], "new", Visitors(), subjects, 60_000, ticks, 1_704_067_200_000, seed=1
    )

    def visit(subject: Visitor, transition: Any) -> bool:
        subject.visits += 1
        return True

    datagen.add_transition("signup", "new", "member", 100, event_sinks=[s for s in [users] if s])
    datagen.add_transition("visit", "member", "member", 100, visit,
                           event_sinks=[s for s in [visits] if s])  # fmt: skip
    return datagen


def user_row(timestamp: int, subject: Visitor, transition: Any) -> Dict[str, Any]:
    return {
        "id": subject.id,
        "score": subject.id / 4,
        "name": f"user {subject.id}",
        "active": subject.id % 2 == 0,
        "joined": START + datetime.timedelta(milliseconds=timestamp - 1_704_067_200_000),
    }


def visit_row(timestamp: int, subject: Visitor, transition: Any) -> Dict[str, Any]:
    return {"user_id": subject.id, "n": subject.visits, "timestamp": timestamp}


def columns(db: Database, table: str) -> Dict[str, Any]:
    return {c["name"]: c for c in sa.inspect(db.engine).get_columns(table)}


def test_the_table_is_made_at_the_runs_start_with_types_from_the_rows(any_db):
    table = any_db.table_name("users")
    any_db.drop_at_end(table)
    factory = DbSinkFactory(any_db.url)
    memory = InMemorySink(user_row)
    sink = factory.create(table, user_row, create=True, primary_key="id")
    datagen = model(users=sink)
    datagen.transitions[0].event_sinks.insert(0, memory)
    assert not sa.inspect(any_db.engine).has_table(table)  # building made nothing
    assert sink.name == f"db:{table}"
    datagen.start()
    found = columns(any_db, table)
    assert list(found) == ["id", "score", "name", "active", "joined"]
    assert isinstance(found["id"]["type"], sa.BigInteger)
    assert isinstance(found["score"]["type"], sa.Float)
    assert isinstance(found["name"]["type"], sa.String) and found["name"]["type"].length == 255
    if any_db.kind == "mariadb":  # BOOLEAN is TINYINT(1) there
        assert type(found["active"]["type"]).__name__ in ("TINYINT", "BOOLEAN")
    else:
        assert isinstance(found["active"]["type"], sa.Boolean)
    assert isinstance(found["joined"]["type"], sa.DateTime)
    assert sa.inspect(any_db.engine).get_pk_constraint(table)["constrained_columns"] == ["id"]
    reflected = sa.Table(table, sa.MetaData(), autoload_with=any_db.engine)
    with any_db.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(reflected).order_by("id"))]
    expected = sorted((e.value for e in memory.events), key=lambda r: r["id"])
    assert len(expected) == 5
    for row in rows:
        row["active"] = bool(row["active"])
    assert rows == expected


def test_columns_give_types_and_an_existing_table_is_used_as_it_is(any_db):
    table = any_db.table_name("visits")
    any_db.drop_at_end(table)
    factory = DbSinkFactory(any_db.url)
    sink = factory.create(table, visit_row, create=True,
                          columns={"n": "INTEGER", "note": "VARCHAR(40)"})  # fmt: skip
    model(visits=sink).start()
    found = columns(any_db, table)
    # The row's fields in order, then a column of columns= that the rows lack.
    assert list(found) == ["user_id", "n", "timestamp", "note"]
    assert isinstance(found["n"]["type"], sa.Integer)
    assert not isinstance(found["n"]["type"], sa.BigInteger)
    assert found["note"]["type"].length == 40
    assert any_db.count(table) == 5 * 3
    # A second run finds the table and appends to it; another columns= changes nothing.
    again = factory.create(table, visit_row, create=True, columns={"n": "VARCHAR(10)"})
    model(visits=again).start()
    assert any_db.count(table) == 2 * 5 * 3
    assert isinstance(columns(any_db, table)["n"]["type"], sa.Integer)
    factory.close()


@pytest.mark.postgres
def test_a_foreign_key_is_in_force_on_postgresql(postgres_db):
    users, visits = postgres_db.table_name("users"), postgres_db.table_name("visits")
    postgres_db.drop_at_end(users)
    postgres_db.drop_at_end(visits)  # dropped first
    factory = DbSinkFactory(postgres_db.url)
    model(users=factory.create(users, user_row, create=True, primary_key="id")).start()
    child = factory.create(visits, visit_row, create=True, primary_key=("user_id", "n"),
                           foreign_keys={"user_id": f"{users}(id)"})  # fmt: skip
    model(visits=child).start()
    assert postgres_db.count(visits) == 5 * 3
    keys = sa.inspect(postgres_db.engine).get_foreign_keys(visits)
    assert [(k["constrained_columns"], k["referred_table"], k["referred_columns"])
            for k in keys] == [(["user_id"], users, ["id"])]  # fmt: skip
    with pytest.raises(sa.exc.IntegrityError, match="foreign key"):
        with postgres_db.engine.begin() as conn:
            conn.exec_driver_sql(
                f"INSERT INTO {visits} (user_id, n, timestamp) VALUES (999999, 1, 0)"
            )
    with pytest.raises(sa.exc.IntegrityError):  # the composite primary key too
        with postgres_db.engine.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO {visits} (user_id, n, timestamp) VALUES (0, 1, 0)")
    factory.close()


def test_the_first_releases_call_is_unchanged_and_still_wants_the_table(sqlite_db):
    factory = DbSinkFactory(sqlite_db.url)
    with pytest.raises(ConfigurationError, match="does not exist"):
        factory.create("missing", visit_row)
    with pytest.raises(ConfigurationError, match="does not exist"):
        factory.create("missing", visit_row, 10)
    assert not sa.inspect(sqlite_db.engine).has_table("missing")


@pytest.mark.parametrize(
    "options, said",
    [
        ({"columns": {"n": "INTEGER"}}, "give create=True"),
        ({"primary_key": "id"}, "give create=True"),
        ({"create": True, "columns": {"n": "INTEGER; DROP TABLE x"}}, "is not a SQL type"),
        ({"create": True, "foreign_keys": {"user_id": "users"}}, "table(column)"),
        ({"create": True, "primary_key": ["id", "id"]}, "primary_key must be"),
        ({"create": True, "mode": "upsert", "key": "id"}, "mode='append'"),
        ({"create": "yes"}, "True or False"),
    ],
)
def test_create_options_are_checked_when_the_sink_is_made(sqlite_db, options, said):
    factory = DbSinkFactory(sqlite_db.url)
    with pytest.raises(ConfigurationError) as refused:
        factory.create("made", visit_row, **options)
    assert said in str(refused.value)
    assert not sa.inspect(sqlite_db.engine).has_table("made")


def test_a_key_that_is_not_a_column_is_named_when_the_table_would_be_made(sqlite_db):
    factory = DbSinkFactory(sqlite_db.url)
    sink = factory.create("made", visit_row, create=True, primary_key="visit_id")
    with pytest.raises(ConfigurationError, match="key column 'visit_id'"):
        model(visits=sink).start()
    assert not sa.inspect(sqlite_db.engine).has_table("made")


def other_row(timestamp: int, subject: Visitor, transition: Any) -> Dict[str, Any]:
    return {
        "id": subject.id,
        "amount": Decimal("12.50"),
        "blob": b"\x00\x01",
        "doc": {"visits": subject.visits},
        "day": datetime.date(2024, 1, 1),
        "at": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
        "nothing": None,
    }


@pytest.mark.postgres
def test_more_value_types_on_postgresql(postgres_db):
    from sqlalchemy.dialects import postgresql

    table = postgres_db.table_name("other")
    postgres_db.drop_at_end(table)
    sink = DbSinkFactory(postgres_db.url).create(table, other_row, create=True)
    model(users=sink).start()
    found = {name: c["type"] for name, c in columns(postgres_db, table).items()}
    assert isinstance(found["amount"], sa.Numeric) and not isinstance(found["amount"], sa.Float)
    assert isinstance(found["blob"], sa.LargeBinary)
    assert isinstance(found["doc"], postgresql.JSONB)
    assert isinstance(found["day"], sa.Date) and not isinstance(found["day"], sa.DateTime)
    assert isinstance(found["at"], sa.DateTime) and found["at"].timezone
    assert isinstance(found["nothing"], sa.Text)
    with postgres_db.engine.connect() as conn:
        row = conn.exec_driver_sql(f"SELECT amount, doc, at FROM {table} WHERE id = 3").one()
    assert row[0] == Decimal("12.50") and row[1] == {"visits": 0}
    assert row[2] == datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
