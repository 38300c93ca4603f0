"""Database fixtures: PostgreSQL, MariaDB (or MySQL) and SQLite, with tables made per test.

* PostgreSQL: ``DOGE_TEST_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``.
* MariaDB: ``DOGE_TEST_MARIADB_URL``, default ``mysql+pymysql://root@127.0.0.1:3306/test``.
* SQLite: a file in the test's temporary directory.

Each fixture yields a :class:`Database`: the URL to hand to the code under test, an engine
of the test's own for setting up and reading back, and helpers that create uniquely named
tables which are dropped when the test ends. A server that cannot be reached skips the test
on a developer's machine and fails it under ``CI=true`` (see ``conftest.service_missing``).
"""

import os
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import pytest
import sqlalchemy as sa  # a required dependency of the package: never skipped

from support.services import service_missing

POSTGRES_URL = os.environ.get("DOGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("DOGE_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")

# The columns of the banking model's rows (examples/doge_example_common.py: user_row).
EVENT_COLUMNS = ("timestamp", "user_id", "balance", "loan_balance", "event")

# A driver to use when a URL names no driver and SQLAlchemy's default one is not installed.
_FALLBACK_DRIVERS = {"postgresql": ("psycopg2", "psycopg"), "mysql": ("pymysql",)}


def make_engine(url: str) -> Any:
    """An engine for the tests' own SQL (independent of the library's engine handling)."""
    parsed = sa.engine.make_url(url)
    candidates = [parsed] + [
        parsed.set(drivername=f"{parsed.drivername}+{driver}")
        for driver in _FALLBACK_DRIVERS.get(parsed.drivername, ())
    ]
    connect_args = {} if parsed.get_backend_name() == "sqlite" else {"connect_timeout": 5}
    error: Optional[BaseException] = None
    for candidate in candidates:
        try:
            return sa.create_engine(candidate, connect_args=connect_args)
        except ImportError as exc:
            error = exc
    raise ImportError(f"no driver for {parsed.render_as_string()}: {error}")


class Database:
    """One database for one test: its URL, an engine, and tables dropped at the end."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.url = url
        self.engine = make_engine(url)
        self._tables: List[Any] = []

    def table_name(self, prefix: str = "doge") -> str:
        """A fresh table name (lower case, so every database spells it the same)."""
        return f"{prefix}_{uuid.uuid4().hex[:12]}"

    def create_table(self, name: Optional[str], *columns: Any) -> Any:
        """Create ``name`` (or a fresh name) with ``columns`` and constraints; return it."""
        table = sa.Table(
            name or self.table_name(),
            sa.MetaData(),
            *columns,
            mysql_charset="utf8mb4",
        )
        self._tables.append(table)
        table.create(self.engine)
        return table

    def events_table(
        self, name: Optional[str] = None, *constraints: Any, event_nullable: bool = True
    ) -> Any:
        """A table for the banking model's rows, with an autoincrement ``id`` first."""
        return self.create_table(
            name,
            id_column(),
            sa.Column("timestamp", sa.BigInteger),
            sa.Column("user_id", sa.Integer),
            sa.Column("balance", sa.BigInteger),
            sa.Column("loan_balance", sa.BigInteger),
            sa.Column("event", sa.String(64), nullable=event_nullable),
            *constraints,
        )

    def quote(self, identifier: str) -> str:
        return self.engine.dialect.identifier_preparer.quote(identifier)

    def fetch(
        self, table_name: str, columns: Sequence[str] = EVENT_COLUMNS
    ) -> List[Dict[str, Any]]:
        """Every row of ``table_name`` in insertion (``id``) order, by plain SQL."""
        names = ", ".join(self.quote(c) for c in columns)
        sql = f"SELECT {names} FROM {self.quote(table_name)} ORDER BY {self.quote('id')}"
        with self.engine.connect() as conn:
            return [dict(zip(columns, row)) for row in conn.exec_driver_sql(sql)]

    def count(self, table_name: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.exec_driver_sql(f"SELECT COUNT(*) FROM {self.quote(table_name)}").scalar()
            )

    def drop_at_end(self, table_name: str) -> None:
        """Drop a table the test made by other means (an example script, say)."""
        self._tables.append(sa.Table(table_name, sa.MetaData()))

    def cleanup(self) -> None:
        try:
            for table in reversed(self._tables):
                with self.engine.begin() as conn:
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.quote(table.name)}")
        finally:
            self.engine.dispose()


def id_column() -> Any:
    """An autoincrement primary key that every database fills in insertion order."""
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


def _reachable(url: str, what: str) -> str:
    try:
        engine = make_engine(url)
    except ImportError as exc:
        service_missing(f"{what} (driver: {exc})")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.SQLAlchemyError as exc:
        reason = (str(getattr(exc, "orig", None) or exc).strip() or repr(exc)).splitlines()[0]
        service_missing(f"{what} at {sa.engine.make_url(url).render_as_string()} ({reason})")
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return _reachable(POSTGRES_URL, "PostgreSQL")


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    return _reachable(MARIADB_URL, "MariaDB")


@pytest.fixture
def postgres_db(postgres_url: str) -> Iterator[Database]:
    db = Database("postgresql", postgres_url)
    yield db
    db.cleanup()


@pytest.fixture
def mariadb_db(mariadb_url: str) -> Iterator[Database]:
    db = Database("mariadb", mariadb_url)
    yield db
    db.cleanup()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database("sqlite", f"sqlite:///{tmp_path / 'doge.db'}")
    yield db
    db.cleanup()


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
        "sqlite",
    ]
)
def any_db(request: pytest.FixtureRequest) -> Database:
    """Each of the three databases in turn."""
    return request.getfixturevalue(f"{request.param}_db")
