"""Sinks that insert events as rows of an existing SQL table, through SQLAlchemy core.

A :class:`DbSink` turns every event into a flat dict with ``row_mapper_function`` and inserts
it into a table that already exists (it is reflected, never created). Rows are buffered and
written ``batch_size`` at a time, one transaction per batch, each batch by the fastest path the
database and its driver offer:

* PostgreSQL with psycopg2 or psycopg 3: ``COPY ... FROM STDIN`` in CSV format;
* SQLite (sqlite3), MySQL and MariaDB (PyMySQL, mysqlclient): the driver's ``executemany``
  on a statement compiled once;
* anything else, or a table with column types that need SQLAlchemy's own conversions (JSON,
  arrays, ...): SQLAlchemy ``insert()`` with a list of rows.

The paths store the same values (COPY rounds a float bound for an integer column as an INSERT
would). A batch the database rejects is rolled back as a whole and reported with
:class:`~doge_datagen.errors.DeliveryError`, which holds the rejected rows so they can be
retried.

Rows also go out when they have waited ``flush_interval`` seconds (one by default; the engine
polls the sink between ticks), so a slow paced run fills the table as it goes.

In upsert mode on PostgreSQL a full batch's rows are sent by the caller (``COPY`` into a
staging table), and the rest of its transaction (the move into the table, ``INSERT ... ON
CONFLICT``, an index probe per row, and ``COMMIT``) is awaited by a short-lived thread while
the caller collects the next batch. One batch at most is in flight, joined before the next
is sent and by ``flush``, ``checkpoint_position`` and ``close`` (so no thread of the sink's
outlives them, and a checkpoint writer or the shards of a run can still be forked). A batch
that fails there is raised by the next full batch, ``poll``, ``flush`` or ``close``, once the
rows collected since are written: its rows are counted as failed and are in the error's
``pending``, as if it had failed in place.

The append mode writes each batch in place. What it costs beyond one ``COPY`` of every row is
each batch's ``COMMIT``, the server's log flushed to disk: a few milliseconds, 40 times for
200,000 rows in batches of 5,000 (and three round trips a batch). A ``COMMIT`` awaited by a
thread was measured no faster in the best rounds on two cores (the thread waits for the GIL
once the ``COMMIT`` returns, while the run holds it), and it would leave a ``COMMIT`` in
flight when the run's next rows find the server gone: a batch whose outcome could not be
known then, where writing in place stops the run before it. An upsert's batch is worth the
thread: its move costs the server several times what its ``COMMIT`` does.

A dropped connection (the server restarted, an administrator ended the session, a proxy timed
out) does not lose the batch: the sink reconnects and writes the same batch again in a new
transaction, up to ``retries`` times with a growing pause (``retry_backoff`` seconds, doubled
each time, at most two seconds). A batch is one transaction, so a connection lost before
``COMMIT`` leaves nothing of it in the table and the retry writes each row exactly once. A
connection lost *during* ``COMMIT`` leaves it unknown whether the batch was committed, so the
sink asks the server: on PostgreSQL the status of the batch's transaction (``txid_status``);
on MySQL and MariaDB each batch is an XA transaction, prepared and then committed, and
``XA RECOVER`` tells a prepared batch (which the sink then commits) from a committed or a
rolled-back one. It asks only once the server session that wrote the batch has ended (the sink
ends it if the server has not): until then a PREPARE cut off by the lost connection may still
complete, and a batch read as rolled back would stay prepared, holding its locks, while its
rows are written again. On PostgreSQL a transaction whose session still runs (the server has
not noticed that the connection is gone) is "in progress": the sink ends that session too,
and asks again. A batch that was not committed is written again; rows are written exactly
once. Where the server cannot be asked (SQLite, other databases) the sink does not guess: the
batch is reported as failed, its rows in the error's ``pending``, and the message says that
they may be in the table.

Rows need not all have the same keys: a row whose keys differ from the previous row's is
checked again, so every key must name a column of the table (otherwise
:class:`~doge_datagen.errors.RecordError`); columns a row leaves out get their default.

With ``create=True`` the sink makes its table when it is missing. Nothing is done when the
sink is made (building a model has no side effects): the sink looks for the table when it
opens, at the start of a run, and creates a missing one before the run's first row is
written, a column for each field of that row, its SQL type given by ``columns=`` or seen in
the row's value (``int`` ``BIGINT``, ``float`` ``DOUBLE PRECISION``, ``str`` ``VARCHAR(255)``,
``bool`` ``BOOLEAN``, ``datetime`` a timestamp, ...), with the primary key and foreign keys
given. A table that exists is used as it is.

A run that checkpoints (append mode) keeps its progress in a small table of its own,
``doge_datagen_progress`` (``run_key``, ``sink``, ``committed_rows``), in the schema of the
sink's table: each batch updates its row in the same transaction as the batch's rows, and a
checkpoint stores the number of rows the sink had committed when it was written. A run
killed after the checkpoint may have committed more batches; the resumed run gives the same
events in the same order again, reads the committed number back and drops (does not insert)
the first ``committed - checkpoint's rows`` rows it is given, counted in ``repeated``. So the
table holds each event's row once. Upsert mode needs none of this: writing a key's row again
leaves the table as it was.
"""

import csv
import io
import logging
import os
import re
import threading
import time
import uuid
from decimal import ROUND_HALF_UP, Decimal
from itertools import chain
from operator import itemgetter
from typing import (
    AbstractSet,
    Any,
    Callable,
    Dict,
    FrozenSet,
    List,
    Mapping,
    NoReturn,
    Optional,
    Sequence,
    Tuple,
    Union,
)

try:
    import sqlalchemy
    from sqlalchemy import MetaData, Table, insert
    from sqlalchemy.engine import URL, Connection, Engine, make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, NoSuchTableError, SQLAlchemyError
    from sqlalchemy.sql import sqltypes
except ImportError as _exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "DbSinkFactory needs SQLAlchemy 2 and a driver for your database, e.g. "
        "pip install 'SQLAlchemy>=2' psycopg2-binary"
    ) from _exc

from doge_datagen.core.checks import check_count, check_positive_count, check_seconds
from doge_datagen.core.types import Transition
from doge_datagen.errors import ConfigurationError, DeliveryError, RecordError
from doge_datagen.sinks.base import DEFAULT_FLUSH_INTERVAL, Sink, check_flush_interval

__all__ = ["DEFAULT_BATCH_SIZE", "PROGRESS_TABLE", "DbSink", "DbSinkFactory"]

#: The table in which a checkpointing run's DB sinks keep the rows they committed.
PROGRESS_TABLE = "doge_datagen_progress"

_LOGGER = logging.getLogger(__name__)

RowMapper = Callable[[int, Any, Transition], Mapping[str, Any]]

#: Rows per transaction unless told otherwise.
DEFAULT_BATCH_SIZE = 5000
#: Seconds a PostgreSQL connection may take to be made (libpq's ``connect_timeout``), unless
#: the URL or ``connect_args`` say otherwise.
DEFAULT_CONNECT_TIMEOUT = 10
_LIBPQ_DRIVERS = ("psycopg2", "psycopg")
#: How often a batch is written again after its connection was lost.
DEFAULT_RETRIES = 3
#: The first pause before such a retry, in seconds; doubled each time, at most _MAX_BACKOFF.
DEFAULT_RETRY_BACKOFF = 0.2
_MAX_BACKOFF = 2.0
#: How long to wait for a lost connection's server session to end before asking about its
#: XA transaction; past it the batch's outcome is reported as unknown.
_SESSION_END_WAIT = 10.0

# Drivers to try, in order, when a URL names a database but no driver ("postgresql://...")
# and SQLAlchemy's default driver for it is not installed.
_DRIVER_FALLBACKS: Dict[str, Tuple[str, ...]] = {
    "postgresql": ("psycopg2", "psycopg"),
    "mysql": ("pymysql", "mysqldb"),
    "mariadb": ("pymysql", "mysqldb"),
}

# Drivers whose executemany() is fast on its own (native loop, or multi-row INSERT rewriting).
_FAST_EXECUTEMANY = {
    ("sqlite", "pysqlite"),
    ("mysql", "pymysql"),
    ("mysql", "mysqldb"),
    ("mariadb", "pymysql"),
    ("mariadb", "mysqldb"),
}
_COPY_DRIVERS = {"psycopg2", "psycopg"}
# The databases whose INSERT resolves a key conflict (upsert mode).
_UPSERT_DIALECTS = ("postgresql", "mysql", "mariadb", "sqlite")

# Column types whose values COPY reads correctly from their str(): everything else (JSON,
# arrays, intervals, binary, ...) goes through SQLAlchemy's own conversions instead.
_COPY_SAFE_TYPES: Tuple[type, ...] = (
    sqltypes.Integer,
    sqltypes.Numeric,
    sqltypes.String,
    sqltypes.Boolean,
    sqltypes.Date,
    sqltypes.DateTime,
    sqltypes.Time,
    sqltypes.Uuid,
)


def _copies_as_text(type_: Any) -> bool:
    """Whether COPY reads this column's values right from their ``str()``."""
    if isinstance(type_, sqltypes.Enum) and type_.enum_class is not None:
        return False  # Python enum members: SQLAlchemy stores their names
    return isinstance(type_, _COPY_SAFE_TYPES)


# How the rows of one key set are written; also what DbSink.method reports.
COPY = "copy"
EXECUTEMANY = "executemany"
INSERT = "insert"
UPSERT = "upsert"
DELETE = "delete"


def _create_engine(url: Union[str, URL], engine_kwargs: Dict[str, Any]) -> Engine:
    """``create_engine`` with readable errors and a fallback for a missing default driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            "could not parse the database URL: expected dialect[+driver]://user:password@host/db"
        ) from None
    if parsed.drivername.split("+")[0] == "postgres":  # a common spelling SQLAlchemy refuses
        parsed = parsed.set(drivername="postgresql" + parsed.drivername[len("postgres") :])
    shown = parsed.render_as_string(hide_password=True)
    candidates = [parsed]
    if "+" not in parsed.drivername:
        candidates += [
            parsed.set(drivername=f"{parsed.drivername}+{driver}")
            for driver in _DRIVER_FALLBACKS.get(parsed.drivername, ())
        ]
    missing: List[str] = []
    for candidate in candidates:
        try:
            engine = sqlalchemy.create_engine(candidate, **_bounded(candidate, engine_kwargs))
        except NoSuchModuleError as exc:
            raise ConfigurationError(
                f"unknown database dialect or driver in {shown}: {exc}"
            ) from exc
        except ImportError as exc:
            missing.append(f"{candidate.drivername}: {exc}")
            continue
        except (TypeError, ArgumentError) as exc:
            raise ConfigurationError(f"invalid engine options for {shown}: {exc}") from exc
        if candidate is not parsed:
            _LOGGER.debug("default driver for %s missing; using %s", shown, candidate.drivername)
        return engine
    raise ConfigurationError(
        f"no database driver is installed for {shown} ({'; '.join(missing)}); "
        "install one, e.g. psycopg2-binary for PostgreSQL or PyMySQL for MySQL/MariaDB"
    )


def _bounded(url: URL, engine_kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """``engine_kwargs`` with a connection timeout for libpq, which has none by default: a
    server that accepts the connection and never answers would otherwise hang the sink (at
    ``create()``, which reads the table) for ever. A timeout in the URL or in
    ``connect_args`` is kept."""
    if url.get_backend_name() != "postgresql" or url.get_driver_name() not in _LIBPQ_DRIVERS:
        return engine_kwargs
    connect_args = dict(engine_kwargs.get("connect_args") or {})
    if "connect_timeout" in url.query or "connect_timeout" in connect_args:
        return engine_kwargs
    connect_args["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
    return {**engine_kwargs, "connect_args": connect_args}


def _check_retries(retries: Any, backoff: Any) -> None:
    check_count("retries", retries)
    if check_seconds("retry_backoff", backoff, zero=True) > 60:
        raise ConfigurationError(
            f"retry_backoff must be a number of seconds from 0 to 60, got {backoff!r}"
        )


class _Disconnected(Exception):
    """The connection was lost while a batch was written.

    ``phase`` says when: ``"write"`` (nothing is committed: the server rolled back),
    ``"prepare"`` or ``"commit"`` (the outcome must be asked for); ``token`` is what to ask
    about: PostgreSQL's transaction id, or the XA transaction id on MySQL and MariaDB;
    ``session`` is the server's id of the lost connection (the thread id on MySQL and
    MariaDB, the backend's process id on PostgreSQL), whose end must be awaited before the
    answer is final.
    """

    def __init__(
        self, cause: BaseException, phase: str, token: Any, session: Optional[int] = None
    ) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.phase = phase
        self.token = token
        self.session = session

    @property
    def in_commit(self) -> bool:
        return self.phase != "write"


def _session_id(conn: Connection) -> int:
    """The server's id of ``conn``'s session (MySQL and MariaDB), from the driver where it
    keeps it (PyMySQL and mysqlclient: ``thread_id()``), else asked for."""
    raw = conn.connection.dbapi_connection
    thread_id = getattr(raw, "thread_id", None)
    if callable(thread_id):
        found = thread_id()
        if isinstance(found, int):
            return found
    return int(conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar())  # type: ignore[arg-type]


def _reflect(engine: Engine, table_name: str, schema: Optional[str]) -> Table:
    if not isinstance(table_name, str) or not table_name:
        raise ConfigurationError(f"table name must be a non-empty string, got {table_name!r}")
    where = f"{schema}.{table_name}" if schema else table_name
    shown = engine.url.render_as_string(hide_password=True)
    try:
        return Table(table_name, MetaData(), autoload_with=engine, schema=schema)
    except NoSuchTableError:
        raise ConfigurationError(
            f"table {where!r} does not exist in database {shown}; create it first"
        ) from None
    except SQLAlchemyError as exc:
        raise ConfigurationError(
            f"cannot read table {where!r} from database {shown}: {_reason(exc)}"
        ) from exc


_SQL_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?$")
_REFERENCE = re.compile(r"^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)\s*\(\s*([A-Za-z_]\w*)\s*\)\s*$")


class _TableSpec:
    """What ``create=True`` makes a missing table of: column types (SQL), the primary key and
    the foreign keys (column -> (table, column)), each checked when the sink is made."""

    def __init__(
        self,
        columns: Optional[Mapping[str, str]],
        primary_key: Union[str, Sequence[str], None],
        foreign_keys: Optional[Mapping[str, str]],
    ) -> None:
        if columns is not None and not isinstance(columns, Mapping):
            raise ConfigurationError(f"columns must map column names to SQL types, got {columns!r}")
        self.columns: Dict[str, str] = {}
        for name, sql in (columns or {}).items():
            if not isinstance(name, str) or not name:
                raise ConfigurationError(f"columns: a column name is a string, got {name!r}")
            if not isinstance(sql, str) or not _SQL_TYPE.match(sql):
                raise ConfigurationError(
                    f"columns: {sql!r} (column {name!r}) is not a SQL type such as BIGINT or "
                    "VARCHAR(40)"
                )
            self.columns[name] = sql
        keys = (primary_key,) if isinstance(primary_key, str) else tuple(primary_key or ())
        if not all(isinstance(k, str) and k for k in keys) or len(set(keys)) != len(keys):
            raise ConfigurationError(
                f"primary_key must be a column name or a sequence of them, got {primary_key!r}"
            )
        self.primary_key: Tuple[str, ...] = keys
        if foreign_keys is not None and not isinstance(foreign_keys, Mapping):
            raise ConfigurationError(
                f"foreign_keys must map columns to 'table(column)', got {foreign_keys!r}"
            )
        self.foreign_keys: Dict[str, Tuple[str, str]] = {}
        for name, target in (foreign_keys or {}).items():
            found = _REFERENCE.match(target) if isinstance(target, str) else None
            if not isinstance(name, str) or not name or found is None:
                raise ConfigurationError(
                    f"foreign_keys: column {name!r} must reference 'table(column)', got {target!r}"
                )
            self.foreign_keys[name] = (found.group(1), found.group(2))

    def ddl(self, engine: Engine, table: Table, row: Mapping[str, Any]) -> str:
        """``CREATE TABLE IF NOT EXISTS`` of the columns of ``row`` and of :attr:`columns`."""
        preparer = engine.dialect.identifier_preparer
        dialect = engine.dialect.name
        names = list(row.keys()) + [c for c in self.columns if c not in row]
        for column in (*self.primary_key, *self.foreign_keys):
            if column not in names:
                raise ConfigurationError(
                    f"table {table.fullname!r}: key column {column!r} is neither a field of "
                    f"the rows nor in columns= (the rows' fields: {', '.join(map(str, row))})"
                )
        parts = []
        for name in names:
            if not isinstance(name, str) or not name:
                raise RecordError(
                    f"table {table.fullname!r}: a column name is a string, got {name!r}"
                )
            sql = self.columns.get(name) or _sql_type(row.get(name), dialect)
            parts.append(f"{preparer.quote(name)} {sql}")
        if self.primary_key:
            keys = ", ".join(preparer.quote(k) for k in self.primary_key)
            parts.append(f"PRIMARY KEY ({keys})")
        for name, (target, column) in self.foreign_keys.items():
            target_sql = ".".join(preparer.quote(p) for p in target.split("."))
            parts.append(
                f"FOREIGN KEY ({preparer.quote(name)}) REFERENCES {target_sql} "
                f"({preparer.quote(column)})"
            )
        return f"CREATE TABLE IF NOT EXISTS {preparer.format_table(table)} ({', '.join(parts)})"


def _sql_type(value: Any, dialect: str) -> str:
    """The SQL type of a column made for ``value`` (a row's value) on ``dialect``: what
    ``create=True`` gives a column that ``columns=`` does not name."""
    import datetime as dt

    mysql = dialect in ("mysql", "mariadb")
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT"
    if isinstance(value, float):
        return "DOUBLE PRECISION"
    if isinstance(value, Decimal):
        return "DECIMAL(38, 10)" if mysql else "NUMERIC"
    if isinstance(value, str):
        return "VARCHAR(255)"
    if isinstance(value, dt.datetime):
        if mysql:
            return "DATETIME(6)"
        if dialect == "postgresql" and value.tzinfo is not None:
            return "TIMESTAMP WITH TIME ZONE"
        return "TIMESTAMP"
    if isinstance(value, dt.date):
        return "DATE"
    if isinstance(value, dt.time):
        return "TIME"
    if isinstance(value, (bytes, bytearray)):
        return "BYTEA" if dialect == "postgresql" else "BLOB"
    if isinstance(value, (dict, list)):
        return "JSONB" if dialect == "postgresql" else "JSON"
    return "VARCHAR(255)" if mysql else "TEXT"  # None, or a type without a column type


def _reason(exc: BaseException) -> str:
    """The first line of what the database (or driver) said."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip() or type(original).__name__
    return text.splitlines()[0]


def _tuple_getter(keys: Sequence[str]) -> Callable[[Mapping[str, Any]], Tuple[Any, ...]]:
    """``row -> tuple of row[k] for k in keys``, a tuple even for a single key."""
    if len(keys) == 1:
        key = keys[0]
        return lambda row: (row[key],)
    return itemgetter(*keys)


class _Null:
    """Stands for ``None`` in COPY data: the csv module writes it as an unquoted empty field
    (``__index__`` makes it a number, which QUOTE_NONNUMERIC leaves unquoted), and an unquoted
    empty field is NULL to PostgreSQL, while a real empty string is written quoted."""

    __slots__ = ()

    def __index__(self) -> int:
        return 0

    def __str__(self) -> str:
        return ""


_NULL = _Null()
_NONE_TYPE = type(None)
_FRACTIONAL = (float, Decimal)


def _to_integer(value: Union[float, Decimal]) -> Any:
    """What an INSERT makes of a float or decimal in an integer column: the nearest whole
    number, halves away from zero. Infinities and NaN stay, for the database to reject."""
    try:
        return int(Decimal(value).to_integral_value(rounding=ROUND_HALF_UP))
    except (ValueError, OverflowError, ArithmeticError):
        return value


def _round_for_integers(
    values: List[Tuple[Any, ...]], positions: Sequence[int]
) -> List[Tuple[Any, ...]]:
    result = []
    for row in values:
        if any(isinstance(row[i], _FRACTIONAL) for i in positions):
            fixed = list(row)
            for i in positions:
                if isinstance(fixed[i], _FRACTIONAL):
                    fixed[i] = _to_integer(fixed[i])
            row = tuple(fixed)
        result.append(row)
    return result


# Values written by one format string, every one quoted: a quoted number is the same number
# to COPY (quoting tells an empty string from NULL only, and neither is among these).
_PLAIN_KINDS = frozenset((int, str))
_PLAIN_CHUNK = 10_000


def _plain_payload(values: List[Tuple[Any, ...]]) -> Optional[str]:
    """Rows of ``int`` and ``str`` values only, as CSV, several times faster than the csv
    module; ``None`` if a string holds a double quote (which would have to be doubled)."""
    width = len(values[0])
    line = ",".join(['"%s"'] * width) + "\n"
    parts = []
    for start in range(0, len(values), _PLAIN_CHUNK):
        chunk = values[start : start + _PLAIN_CHUNK]
        parts.append((line * len(chunk)) % tuple(chain.from_iterable(chunk)))
    payload = "".join(parts)
    if payload.count('"') != 2 * width * len(values):
        return None
    return payload


def _rows_payload(
    rows: List[Any],
    getter: Callable[[Any], Tuple[Any, ...]],
    width: int,
    integer_positions: Sequence[int],
) -> str:
    """:func:`_csv_payload` of ``map(getter, rows)``; rows of ``int`` and ``str`` values
    only (the usual case) are formatted from one flat tuple of their values, without a list
    of a tuple per row to go through twice."""
    flat = tuple(chain.from_iterable(map(getter, rows)))
    if set(map(type, flat)) <= _PLAIN_KINDS:
        line = ",".join(['"%s"'] * width) + "\n"
        count = len(rows)
        if count <= _PLAIN_CHUNK:
            payload = (line * count) % flat
        else:
            step = _PLAIN_CHUNK * width
            payload = "".join(
                (line * (min(step, len(flat) - start) // width)) % flat[start : start + step]
                for start in range(0, len(flat), step)
            )
        if payload.count('"') == 2 * width * count:
            return payload
    return _csv_payload(list(map(getter, rows)), integer_positions)


def _csv_payload(values: List[Tuple[Any, ...]], integer_positions: Sequence[int]) -> str:
    """Rows as PostgreSQL COPY CSV: strings always quoted, numbers bare, None unquoted empty.

    COPY parses every value from its text, where an INSERT lets the database convert typed
    values: floats and decimals bound for integer columns are rounded here as an INSERT would.
    """
    kinds = set(map(type, chain.from_iterable(values)))
    if kinds <= _PLAIN_KINDS:
        plain = _plain_payload(values)
        if plain is not None:
            return plain
    if integer_positions and any(issubclass(kind, _FRACTIONAL) for kind in kinds):
        values = _round_for_integers(values, integer_positions)
    if len(values[0]) == 1:
        # The csv module quotes a lone empty field, which would turn NULL into '': one
        # column is written by hand, every value quoted and NULL as an empty line.
        return "".join(
            "\n" if v is None else '"' + str(v).replace('"', '""') + '"\n' for (v,) in values
        )
    if _NONE_TYPE in kinds:
        values = [
            tuple([_NULL if v is None else v for v in row]) if None in row else row
            for row in values
        ]
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n").writerows(values)
    return buffer.getvalue()


class _Sent:
    """A PostgreSQL batch whose rows are sent, not yet committed: its segments, its cursor,
    its transaction's id, the server session's id, the statements still to run before its
    ``COMMIT`` (an upsert's move from its staging table), and how often the batch was
    written again before."""

    __slots__ = ("segments", "cursor", "token", "session", "after", "attempt")

    def __init__(
        self,
        segments: List[Tuple["_Plan", List[Any]]],
        cursor: Any,
        token: Any,
        session: Optional[int],
        after: List[str],
    ) -> None:
        self.segments = segments
        self.cursor = cursor
        self.token = token
        self.session = session
        self.after = after
        self.attempt = 0


class _Plan:
    """How rows with one particular set of keys are written to the table: ``write(conn,
    rows)`` sends them, and returns a statement that must run before the ``COMMIT`` (on
    PostgreSQL, where it may run in the thread that commits), or ``None``."""

    __slots__ = ("keys", "method", "write")

    def __init__(
        self, keys: FrozenSet[str], method: str, write: Callable[[Connection, List[Any]], Any]
    ) -> None:
        self.keys = keys
        self.method = method
        self.write = write


class DbSink(Sink):
    """Inserts ``row_mapper_function(timestamp, subject, transition)`` into a table.

    :param engine: a SQLAlchemy :class:`~sqlalchemy.engine.Engine`, or a database URL (the
        sink then creates an engine of its own and disposes of it on :meth:`close`).
    :param table: the table: a :class:`~sqlalchemy.Table`, or the name of an existing table to
        reflect.
    :param row_mapper_function: ``(timestamp, subject, transition) -> dict`` of column values.
    :param schema: the schema of ``table`` when it is given by name.
    :param batch_size: rows per transaction.
    :param name: how the run summary names this sink; ``db:<table>`` by default.
    :param flush_interval: seconds a row may wait in the buffer during a run (``None``: no
        time bound, only ``batch_size``).
    :param retries: how often a batch is written again after its connection was lost.
    :param retry_backoff: the pause before the first such retry, doubled for each next one.
    :param mode: ``"append"`` inserts a row per event; ``"upsert"`` keeps one row per key, a
        current-state table (see :meth:`collect_change`).
    :param key: upsert mode: the column (or columns) of the table's primary key or of a
        unique constraint that identify a row.
    :param create: make the table when it is missing (append mode): the sink looks for it
        when it opens and creates it before the first row is written, a column for each of
        that row's fields (see the module's notes); a table that exists is used as it is.
    :param columns: ``create=True``: ``{column: SQL type}`` for columns whose type is not
        to be seen in the first row's value (``{"amount": "NUMERIC(12, 2)"}``); a column named
        here that the row lacks is made too.
    :param primary_key: ``create=True``: the primary key's column, or a tuple of columns.
    :param foreign_keys: ``create=True``: ``{column: "table(column)"}``, each column a
        foreign key referencing that column of that table.

    ``delivered`` (also ``written``) counts rows committed since :meth:`open`, ``failed``
    rows in batches that were rolled back, ``repeated`` the rows a resumed run was given again
    and did not write (committed after its checkpoint; see the module's notes); ``appended``
    says whether the table held rows when the sink opened (``if_exists``). A table given by
    name is read (reflected) when the sink is created, which checks that the database answers
    and the table exists (with ``create=True``: when it opens); nothing is written before the
    run. :meth:`close` writes what is buffered and releases pooled connections; the sink may
    be opened again afterwards (a new run appends to the table).
    """

    def __init__(
        self,
        engine: Union[Engine, str, URL],
        table: Union[Table, str],
        row_mapper_function: RowMapper,
        *,
        schema: Optional[str] = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        name: Optional[str] = None,
        flush_interval: Optional[float] = DEFAULT_FLUSH_INTERVAL,
        retries: int = DEFAULT_RETRIES,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF,
        mode: str = "append",
        key: Union[str, Sequence[str], None] = None,
        create: bool = False,
        columns: Optional[Mapping[str, str]] = None,
        primary_key: Union[str, Sequence[str], None] = None,
        foreign_keys: Optional[Mapping[str, str]] = None,
    ) -> None:
        if not callable(row_mapper_function):
            raise ConfigurationError(
                f"row_mapper_function must be callable, got {row_mapper_function!r}"
            )
        self.batch_size = check_positive_count("batch_size", batch_size)
        self.flush_interval = check_flush_interval(flush_interval)
        _check_retries(retries, retry_backoff)
        self.retries = retries
        self.retry_backoff = float(retry_backoff)
        #: Batches written again after a lost connection, since :meth:`open`.
        self.reconnects = 0
        self._hurried = False
        #: ``create=True``: what a missing table is made of, until the table is found or made.
        self._create = _check_create(create, columns, primary_key, foreign_keys, mode)
        self._schema = schema
        self._open_engine(engine)
        if self._create is not None and not isinstance(table, Table):
            if not isinstance(table, str) or not table:
                raise ConfigurationError(f"table name must be a non-empty string, got {table!r}")
            # Found or made when the sink opens (see _find_table); until then only its name.
            self.table = Table(table, MetaData(), schema=schema)
        else:
            self.table = table if isinstance(table, Table) else self._reflect_table(table, schema)
        self.row_mapper_function = row_mapper_function
        self.name = name or f"db:{self.table.fullname}"
        self._read_dialect()
        self._plans: Dict[FrozenSet[str], _Plan] = {}
        # PostgreSQL: the thread writing the last full batch, its rows, and its failure.
        self._writer: Optional[threading.Thread] = None
        self._in_flight = 0
        self._failure: Optional[BaseException] = None
        # The buffer: finished segments (plan, rows) plus the rows of the current key set.
        self._segments: List[Tuple[_Plan, List[Any]]] = []
        self._plan: Optional[_Plan] = None
        self._keys: Optional[AbstractSet[str]] = None
        self._rows: List[Any] = []
        self._room = self.batch_size
        #: ``"append"`` or ``"upsert"``.
        self.mode = mode
        #: Upsert mode: the columns that identify a row.
        self.key: Tuple[str, ...] = ()
        # Upsert mode: key -> (deleted, row) of the buffered changes, each key's last one.
        self._changes: Optional[Dict[Tuple[Any, ...], Tuple[bool, Mapping[str, Any]]]] = None
        self._change_plans: Dict[Any, _Plan] = {}
        self._set_mode(mode, key)
        #: Rows of a resumed run dropped because they were committed after its checkpoint.
        self.repeated = 0
        self._if_exists: Optional[str] = None
        #: Whether the last open found rows in the table and added to them.
        self.appended: Optional[bool] = None
        # A checkpointing run: (run key, sink key) of its row in the progress table, the
        # table, the rows committed by the run so far (a resumed run's included), the
        # checkpoint's rows on resume, and the rows still to drop.
        self._progress: Optional[Tuple[str, str]] = None
        self._progress_table: Optional[Table] = None
        self._committed = 0
        self._resume_rows: Optional[int] = None
        self._skip = 0

    def _open_engine(self, engine: Union[Engine, str, URL]) -> None:
        """The engine given, or one created from a URL (disposed of on :meth:`close`)."""
        if isinstance(engine, Engine):
            self.engine = engine
            self._dispose_on_close = False
        else:
            self.engine = _create_engine(engine, {"pool_pre_ping": True})
            self._dispose_on_close = True

    def _reflect_table(self, table: str, schema: Optional[str]) -> Table:
        """The table named ``table``, read from the database; on failure an engine the sink
        created is disposed of."""
        try:
            return _reflect(self.engine, table, schema)
        except ConfigurationError:
            if self._dispose_on_close:
                self.engine.dispose()
            raise

    def _read_dialect(self) -> None:
        """How batches are written to the engine's database."""
        dialect = self.engine.dialect
        self._database = self.engine.url.render_as_string(hide_password=True)
        self._can_copy = dialect.name == "postgresql" and dialect.driver in _COPY_DRIVERS
        # MySQL and MariaDB: each batch an XA transaction, so that its outcome can be asked
        # for after a connection lost during COMMIT.
        self._xa = dialect.name in ("mysql", "mariadb")
        self._fast_executemany = (dialect.name, dialect.driver) in _FAST_EXECUTEMANY
        # PostgreSQL: the connection kept between batches (see _write_postgres_batch).
        self._connection: Optional[Connection] = None
        self._begin_with_id = dialect.driver == "psycopg2"
        # Upsert mode on PostgreSQL: the connection whose session holds the temporary tables
        # the batches are copied into, and their names; made once per session (a table made
        # in a batch that is rolled back is gone: the names are forgotten then).
        self._staged_on: Any = None
        self._staged: List[str] = []

    def _set_mode(self, mode: str, key: Union[str, Sequence[str], None]) -> None:
        """``mode`` and ``key`` checked; upsert mode's key columns and collect set up (on
        a bad key an engine the sink created is disposed of)."""
        if mode == "upsert":
            try:
                self.key = self._check_upsert(key)
            except ConfigurationError:
                if self._dispose_on_close:
                    self.engine.dispose()
                raise
            self._changes = {}
            # the key's value, or a tuple of the values of several key columns
            self._key_of = itemgetter(*self.key)
            self.collect = self.collect_change  # type: ignore[method-assign,assignment]
        elif mode != "append":
            raise ConfigurationError(f"mode must be 'append' or 'upsert', got {mode!r}")
        elif key is not None:
            raise ConfigurationError("key is a setting of mode='upsert'")

    # -- counters ----------------------------------------------------------------------------

    @property
    def written(self) -> int:
        """Rows committed to the table since :meth:`open` (same as ``delivered``)."""
        return self.delivered

    @property
    def buffered(self) -> int:
        """Rows collected but not yet written (a batch being written included)."""
        return self.batch_size - self._room + len(self._rows) + self._in_flight

    @property
    def method(self) -> Optional[str]:
        """How the current rows are written: ``"copy"``, ``"executemany"`` or ``"insert"``
        (``None`` before the first row)."""
        return self._plan.method if self._plan is not None else None

    # -- the hot path ------------------------------------------------------------------------

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        if not self._is_open:
            self.open()  # used without a run: open on the first event
        row = self.row_mapper_function(timestamp, subject, transition)
        try:
            changed = row.keys() != self._keys
        except AttributeError:
            raise RecordError(
                f"{self.name}: row_mapper_function must return a dict, "
                f"got {type(row).__name__}: {row!r}"
            ) from None
        if changed:
            self._switch_keys(row)
        rows = self._rows
        rows.append(row)
        if len(rows) >= self._room:
            self._hand_off()

    def collect_change(self, timestamp: int, change: Any, transition: Transition) -> None:
        """Upsert mode's collect: ``change`` is a :class:`~doge_datagen.sinks.cdc.Change`
        (what a :class:`~doge_datagen.sinks.cdc.ChangeEventSink` passes on); the mapper's
        row is written over the row with its key, or, for a ``d``, that row is deleted.

        Within a batch only each key's last change is written: the batch is one
        transaction, so the table goes from one batch's end to the next's as if every
        change had been applied in order.
        """
        if not self._is_open:
            self.open()
        row = self.row_mapper_function(timestamp, change, transition)
        self._collect_row(row, getattr(change, "op", None) == "d", "row_mapper_function's row")

    def _collect_row(
        self, row: Mapping[str, Any], deleted: bool, whose: str = "a change's row"
    ) -> None:
        """Upsert mode: what :meth:`collect_change` does with a change whose row is ``row``
        (``deleted``: a ``d``); also called directly by a
        :class:`~doge_datagen.sinks.cdc.ChangeEventSink` that would pass
        :func:`~doge_datagen.sinks.cdc.change_row`, this sink's mapper, a
        :class:`~doge_datagen.sinks.cdc.Change` only to be read back into the same row.
        ``whose`` names the row in an error."""
        if not self._is_open:
            self.open()
        try:
            key = self._key_of(row)
        except (KeyError, TypeError):
            raise RecordError(
                f"{self.name}: {whose} must be a dict with the key columns "
                f"{', '.join(self.key)}, got {row!r}"
            ) from None
        self._changes[key] = (deleted, row)  # type: ignore[index]
        self._room -= 1
        if self._room <= 0:
            self._hand_off()

    def _switch_keys(self, row: Mapping[str, Any]) -> None:
        """Start a run of rows with the keys of ``row`` (checked against the table)."""
        if self._create is not None:
            self._make_table(row)
        keys = frozenset(row.keys())
        plan = self._plans.get(keys)
        if plan is None:
            plan = self._plans[keys] = self._make_plan(tuple(row.keys()))
        if self._rows:
            self._segments.append((self._plan, self._rows))  # type: ignore[arg-type]
            self._room -= len(self._rows)
            self._rows = []
        self._plan = plan
        self._keys = keys

    # -- writing -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every buffered row now, in one transaction (again after a lost connection),
        once the ``COMMIT`` of the batch before, if it is still awaited, has ended (see
        :meth:`_hand_off`).

        A failure of that batch is raised here, once the buffered rows are written too (or
        failed, and counted so): it names the batch, and its rows are in its ``pending``.
        """
        failure = self._join_writer()
        if failure is not None:
            self._surface(failure)
        self._write_buffer()

    def _hand_off(self) -> None:
        """A full batch. In upsert mode on PostgreSQL its rows are sent here (``COPY`` into
        the staging table), and the rest of its transaction (the move into the table, the
        run's progress, ``COMMIT``) is left to a thread of its own while the run goes on
        collecting the next batch: the server probes the key's index for each row and makes
        the batch durable while the rows of the next one are made; psycopg2 lets go of the
        GIL while it waits. The rows are not sent by the thread: it would wait for the GIL
        after each of its statements, up to Python's switch interval (5 ms) each time, while
        the server waited for it, and building the rows' text there would take the GIL from
        the run anyway (measured: slower than writing the batch in place).

        At most one batch is in flight: the thread is joined before the next batch is sent,
        so the batches are committed in order. The thread lives for its batch only, and
        :meth:`flush` (hence :meth:`close` and :meth:`checkpoint_position`) joins it, so
        the process has no thread of the sink's when a checkpoint writer or the shards of a
        run are forked. If the rest fails, the thread does what :meth:`flush` would (asks
        the server about a lost ``COMMIT``, writes the batch again on a new connection); a
        batch that still failed is raised by the next hand-off, :meth:`poll`,
        :meth:`flush` or :meth:`close` (see :meth:`_surface`), its rows counted as failed
        and held by the error's ``pending``.

        Append mode, and other databases, write the whole batch here (see the module's
        notes).
        """
        if not self._can_copy or self._changes is None:
            self._write_buffer()
            return
        failure = self._join_writer(reap=False)
        if failure is not None:
            self._surface(failure)
        batch = self._take_batch()
        if batch is None:
            return
        segments, count = batch
        try:
            sent = self._write_with_retries(segments, count, send_only=True)
        except DeliveryError:
            raise
        except BaseException:
            self.failed += count
            raise
        if sent is None:  # (committed by the server's word after a lost connection)
            self._count_written(count)
            return
        thread = threading.Thread(
            target=self._commit_in_thread, args=(segments, count, sent), name=f"{self.name} commit"
        )
        self._in_flight = count
        self._writer = thread
        try:
            thread.start()
        except BaseException:
            self._writer = None
            self._in_flight = 0
            self._commit_in_thread(segments, count, sent)  # no thread to be had: here
            failure, self._failure = self._failure, None
            if failure is not None:
                raise failure from None

    def _commit_in_thread(
        self, segments: List[Tuple[_Plan, List[Any]]], count: int, sent: "_Sent"
    ) -> None:
        """The writer thread: the batch's ``COMMIT`` (with what follows a failed one)."""
        try:
            self._write_counted(segments, count, sent)
        except BaseException as exc:  # raised in the caller's thread by _join_writer
            self._failure = exc

    def _join_writer(self, reap: bool = True) -> Optional[BaseException]:
        """Wait for the batch whose ``COMMIT`` is awaited, if any; its failure returned (not
        raised). With ``reap``, also until the thread is gone from the process
        (``/proc/self/task``): Python's join returns before the system thread has quite
        ended, and a process with a second thread is not forked
        (:mod:`doge_datagen.core.forking`)."""
        thread = self._writer
        if thread is None:
            return None
        thread.join()  # an interrupt here leaves the thread to the next join
        self._writer = None
        self._in_flight = 0
        failure, self._failure = self._failure, None
        if reap and thread.native_id is not None:
            task = f"/proc/self/task/{thread.native_id}"
            deadline = time.monotonic() + 1.0
            while os.path.exists(task) and time.monotonic() < deadline:
                time.sleep(0.0002)
        return failure

    def poll(self) -> None:
        """Between ticks: a committed batch's thread joined (its failure raised), and rows
        that waited ``flush_interval`` written."""
        writer = self._writer
        if writer is not None and not writer.is_alive():
            failure = self._join_writer(reap=False)
            if failure is not None:
                self._surface(failure)
        super().poll()

    def _surface(self, failure: BaseException) -> NoReturn:
        """Raise the failure of the batch committed by the writer thread, once the rows
        collected since are written here (or failed, and counted so), as they would not have
        been collected had the batch failed in place: the error's counts are the sink's
        then, and its ``pending`` holds every row that failed."""
        then: Optional[BaseException] = None
        try:
            self._write_buffer()
        except DeliveryError as later:
            then = later
            if isinstance(failure, DeliveryError):
                failure.pending.extend(later.pending)
        except BaseException as interrupted:  # counted as failed by _write_counted
            then = interrupted
        if then is not None and hasattr(failure, "add_note"):
            failure.add_note(f"then the rows collected after it: {type(then).__name__}: {then}")
        self._recount(failure)
        raise failure

    def _recount(self, failure: BaseException) -> None:
        """A DeliveryError's counts, and those its message gives, made the sink's now."""
        if not isinstance(failure, DeliveryError):
            return
        then = f"({failure.delivered} delivered, {failure.failed} failed)"
        now = f"({self.delivered} delivered, {self.failed} failed)"
        text = failure.args[0] if failure.args else None
        if isinstance(text, str) and then in text:
            failure.args = (text.replace(then, now, 1), *failure.args[1:])
        failure.delivered, failure.failed = self.delivered, self.failed

    def _write_buffer(self) -> None:
        """The buffered rows written here, in one transaction."""
        batch = self._take_batch()
        if batch is None:
            return
        self._write_counted(*batch)

    def _write_counted(
        self, segments: List[Tuple[_Plan, List[Any]]], count: int, sent: Optional["_Sent"] = None
    ) -> None:
        """A batch written (with its retries; ``sent``: only its ``COMMIT`` left) and
        counted, delivered or failed."""
        try:
            self._write_with_retries(segments, count, sent=sent)
        except DeliveryError:
            raise
        except BaseException:
            # Interrupted (a second Ctrl-C during a retry pause): the batch is not in the
            # table, and it is counted, never silently dropped.
            self.failed += count
            raise
        self._count_written(count)

    def _count_written(self, count: int) -> None:
        self._in_flight = 0  # (first: delivered + buffered never counts the batch twice)
        self.delivered += count
        self._committed += count
        if _LOGGER.isEnabledFor(logging.DEBUG):
            _LOGGER.debug("%s: wrote %d rows (%d in total)", self.name, count, self.delivered)

    def _take_batch(self) -> Optional[Tuple[List[Tuple[_Plan, List[Any]]], int]]:
        """The buffered rows as ``(segments, number of rows)``, and the buffer emptied; None
        when nothing is buffered."""
        segments = self._segments
        if self._rows:
            segments.append((self._plan, self._rows))  # type: ignore[arg-type]
        changes = self._changes
        if changes:  # upsert mode: the changes collected, each key's last one written
            count = self.batch_size - self._room
            segments = self._change_segments(changes)
            self._changes = {}
        elif not segments:
            return None
        else:
            count = sum(len(rows) for _, rows in segments)
        self._segments = []
        self._rows = []
        self._room = self.batch_size
        return segments, count

    def _write_with_retries(
        self,
        segments: List[Tuple[_Plan, List[Any]]],
        count: int,
        *,
        send_only: bool = False,
        sent: Optional["_Sent"] = None,
    ) -> Optional["_Sent"]:
        """:meth:`_write_batch`, again after a lost connection (up to ``retries`` times, with
        a growing pause); a rejected batch, or one still not written, is a DeliveryError.

        PostgreSQL's batches can be written in two steps: ``send_only`` sends the rows and
        returns what their ``COMMIT`` needs (``None`` if a lost connection's transaction
        was found committed); ``sent`` (from the first step) commits them, and if the
        connection is lost then, goes on as a whole batch would.
        """
        where = f"table {self.table.fullname!r} of {self._database}"
        what = f"a batch of {count} rows was rejected and rolled back ({where})"
        pending = [row for _, rows in segments for row in rows]
        attempt = 0 if sent is None else sent.attempt
        while True:
            lost: Optional[_Disconnected] = None
            with self.translate_errors(count, what, delivery=Exception, pending=pending):
                try:
                    if sent is not None:
                        self._commit_postgres_batch(sent)
                    elif send_only:
                        started = self._send_postgres_batch(segments)
                        started.attempt = attempt
                        return started
                    else:
                        self._write_batch(segments)
                except _Disconnected as exc:
                    lost = exc  # not the data's fault: handled below, not translated
                finally:
                    sent = None
            if lost is None:
                return None
            if lost.in_commit and not self._resolve_commit(lost):
                raise self.delivery_error(
                    f"the connection was lost during the COMMIT of a batch of {count} "
                    f"rows, which may or may not be in {where}",
                    count,
                    lost.cause,
                    pending=pending,
                ) from lost.cause
            if lost.phase == "committed":
                return None  # the server says it was committed
            if attempt >= self.retries or self._hurried:
                raise self.delivery_error(
                    f"a batch of {count} rows could not be written to {where}: the "
                    f"connection was lost {attempt + 1} times",
                    count,
                    lost.cause,
                    pending=pending,
                ) from lost.cause
            pause = min(self.retry_backoff * 2**attempt, _MAX_BACKOFF)
            attempt += 1
            self.reconnects += 1
            _LOGGER.warning(
                "%s: connection lost while writing %d rows (%s); writing them again "
                "in %.1f s (retry %d of %d)",
                self.name,
                count,
                _reason(lost.cause),
                pause,
                attempt,
                self.retries,
            )
            time.sleep(pause)

    def _write_batch(self, segments: List[Tuple[_Plan, List[Any]]]) -> None:
        """One transaction for the batch; a lost connection becomes :class:`_Disconnected`."""
        if self._can_copy:
            self._write_postgres_batch(segments)
            return
        token: Any = None
        session: Optional[int] = None
        phase = "write"
        try:
            conn = self.engine.connect()
        except Exception as exc:
            if self._is_disconnect(exc, None):
                raise _Disconnected(exc, phase, None) from exc
            raise
        try:
            if self._xa:
                session = _session_id(conn)
                token = f"doge-{uuid.uuid4().hex}"
                transaction: Any = conn.begin_twophase(token)
            else:
                transaction = conn.begin()
            for plan, rows in segments:
                plan.write(conn, rows)
            self._write_progress(conn, segments)
            if self._xa:
                phase = "prepare"
                transaction.prepare()
            phase = "commit"
            transaction.commit()
        except Exception as exc:
            if self._is_disconnect(exc, conn):
                try:
                    conn.invalidate()
                except Exception:  # pragma: no cover - the connection is gone anyway
                    pass
                raise _Disconnected(exc, phase, token, session) from exc
            raise
        finally:
            try:
                conn.close()
            except Exception:  # pragma: no cover - closing a dead connection
                _LOGGER.debug("%s: closing a lost connection failed", self.name, exc_info=True)

    def _write_postgres_batch(self, segments: List[Tuple[_Plan, List[Any]]]) -> None:
        """The batch in one transaction on the sink's own connection, in three round trips:
        ``BEGIN`` with the transaction's id (to ask the server about it if the connection is
        lost during ``COMMIT``), the rows, ``COMMIT``. A batch costs the server's work and
        little else: no pool check-out, ping and reset each time, as a plain COPY loop.

        A lost connection becomes :class:`_Disconnected`. The connection is kept between
        batches; one that died while idle (it fails at ``BEGIN``, before any row was sent) is
        replaced at once, as a pool's ping would have, without a retry.
        """
        self._commit_postgres_batch(self._send_postgres_batch(segments))

    def _send_postgres_batch(self, segments: List[Tuple[_Plan, List[Any]]]) -> "_Sent":
        """:meth:`_write_postgres_batch` up to its ``COMMIT``: the transaction begun and the
        rows sent, on the connection returned with the transaction's id."""
        for reused in (True, False):
            conn = self._connection if reused else None
            if conn is None:
                reused = False
                try:
                    conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                except Exception as exc:
                    if self._is_disconnect(exc, None):
                        raise _Disconnected(exc, "write", None) from exc
                    raise
                self._connection = conn
            raw: Any = conn.connection.dbapi_connection
            session = raw.info.backend_pid
            token: Any = None
            phase = "begin"
            cursor = raw.cursor()
            try:
                if self._begin_with_id:
                    cursor.execute("BEGIN; SELECT txid_current()")
                else:  # psycopg 3 positions the cursor on the first statement's result
                    cursor.execute("BEGIN")
                    cursor.execute("SELECT txid_current()")
                token = cursor.fetchone()[0]
                phase = "write"
                after = []
                for plan, rows in segments:
                    then = plan.write(conn, rows)
                    if then is not None:
                        after.append(then)
                return _Sent(segments, cursor, token, session, after)
            except Exception as exc:
                if not self._is_disconnect(exc, conn):
                    self._roll_back(cursor)
                    self._close_cursor(cursor)
                    raise
                self._close_cursor(cursor)
                self._release(invalidate=True)
                if phase == "begin" and reused:
                    continue  # it died while idle: nothing of the batch was sent
                raise _Disconnected(exc, "write", token, session) from exc
            except BaseException:
                # Interrupted mid-protocol: the connection cannot be used again.
                self._close_cursor(cursor)
                self._release(invalidate=True)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _commit_postgres_batch(self, sent: "_Sent") -> None:
        """The rest of a batch :meth:`_send_postgres_batch` sent: the statements left (an
        upsert's move), the run's progress, ``COMMIT``."""
        cursor = sent.cursor
        phase = "write"
        try:
            for sql in sent.after:
                cursor.execute(sql)
            self._write_progress(self._connection, sent.segments)  # type: ignore[arg-type]
            phase = "commit"
            cursor.execute("COMMIT")
        except Exception as exc:
            if not self._is_disconnect(exc, self._connection):
                self._roll_back(cursor)
                raise
            self._release(invalidate=True)
            raise _Disconnected(exc, phase, sent.token, sent.session) from exc
        except BaseException:
            self._release(invalidate=True)
            raise
        finally:
            self._close_cursor(cursor)

    @staticmethod
    def _close_cursor(cursor: Any) -> None:
        try:
            cursor.close()
        except Exception:  # pragma: no cover - closing a cursor of a lost connection
            pass

    def _roll_back(self, cursor: Any) -> None:
        """End a transaction the server refused, so that the kept connection can be reused;
        a connection that cannot is let go."""
        self._staged_on = None
        try:
            cursor.execute("ROLLBACK")
        except Exception:
            _LOGGER.debug("%s: rolling back a refused batch failed", self.name, exc_info=True)
            self._release(invalidate=True)

    def _release(self, invalidate: bool = False) -> None:
        """Let go of the connection the sink keeps between batches (PostgreSQL)."""
        conn, self._connection = self._connection, None
        self._staged_on = None
        if conn is None:
            return
        try:
            if invalidate:
                conn.invalidate()
            conn.close()
        except Exception:  # pragma: no cover - the connection is gone anyway
            _LOGGER.debug("%s: closing a lost connection failed", self.name, exc_info=True)

    def _is_disconnect(self, exc: BaseException, conn: Optional[Connection]) -> bool:
        """Whether ``exc`` says the connection is gone (not that the data was refused)."""
        if isinstance(exc, sqlalchemy.exc.DBAPIError):
            if exc.connection_invalidated:
                return True
            exc = exc.orig  # type: ignore[assignment]
        dbapi = self.engine.dialect.dbapi
        if dbapi is None or not isinstance(exc, getattr(dbapi, "Error", ())):
            return False
        raw = None
        if conn is not None:
            try:
                raw = conn.connection.dbapi_connection
            except Exception:
                raw = None
        try:
            return bool(self.engine.dialect.is_disconnect(exc, raw, None))  # type: ignore[arg-type]
        except Exception:  # pragma: no cover - a dialect that cannot tell
            return False

    def _resolve_commit(self, lost: _Disconnected) -> bool:
        """After a connection lost during PREPARE or COMMIT: whether the batch's outcome is
        now known. If it is, ``lost.phase`` says which: ``"committed"`` (the batch is in the
        table; the caller counts it delivered) or ``"write"`` (it is not; written again).
        """
        if lost.token is None:
            return False
        status: Optional[str] = "unknown"
        for attempt in range(self.retries + 1):
            try:
                status = self._ask_about(lost)
                break
            except Exception as exc:
                # The connection asking was lost too: ask again, within the same bounds.
                _LOGGER.debug(
                    "%s: cannot ask about transaction %s", self.name, lost.token, exc_info=True
                )
                if attempt >= self.retries or self._hurried or not self._is_disconnect(exc, None):
                    return False
                time.sleep(min(self.retry_backoff * 2**attempt, _MAX_BACKOFF))
        _LOGGER.info("%s: the batch's transaction %s is %s", self.name, lost.token, status)
        if status == "committed":
            lost.phase = "committed"
            return True
        if status in ("aborted", None):
            lost.phase = "write"
            return True
        return False

    def _ask_about(self, lost: _Disconnected) -> Optional[str]:
        """The server's word on the batch's transaction: committed, aborted, or other."""
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        with conn:
            if not self._xa:
                return self._txid_status(conn, lost)
            if not self._session_ended(conn, lost.session):
                return "unknown"
            prepared = {
                row[3].decode() if isinstance(row[3], bytes) else str(row[3])
                for row in conn.exec_driver_sql("XA RECOVER")
            }
            if lost.token in prepared:
                # Prepared, so it can only end committed (by us) from here: if this COMMIT is
                # cut off too, the next question must read "gone" as committed.
                lost.phase = "commit"
                conn.exec_driver_sql(f"XA COMMIT '{lost.token}'")  # ours, hex only
                return "committed"
            if lost.phase == "prepare":
                return "aborted"  # never prepared: rolled back with its connection
            return "committed"  # prepared, and no longer waiting: committed

    def _txid_status(self, conn: Connection, lost: _Disconnected) -> Optional[str]:
        """PostgreSQL's word on the batch's transaction. "in progress" means that its session
        still runs (the server has not noticed that the connection is gone, as when the
        network failed): the sink ends that session, whose transaction then ends committed
        (a COMMIT that reached it) or aborted, and asks again."""
        status = sqlalchemy.text("SELECT txid_status(:t)")
        found = conn.execute(status, {"t": lost.token}).scalar()
        if found != "in progress" or lost.session is None:
            return found
        # Only the session still running this transaction (a process id may be reused).
        conn.execute(
            sqlalchemy.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid = :p AND backend_xid::text = (:t % 4294967296)::text"
            ),
            {"p": lost.session, "t": lost.token},
        )
        deadline = time.monotonic() + _SESSION_END_WAIT
        while found == "in progress" and time.monotonic() < deadline:
            time.sleep(0.02)
            found = conn.execute(status, {"t": lost.token}).scalar()
        return found

    def _session_ended(self, conn: Connection, session: Optional[int]) -> bool:
        """End the lost connection's server session, if the server has not yet, and wait until
        it is gone: only then is a batch that ``XA RECOVER`` does not list really not prepared
        (a PREPARE that the lost connection cut off may still be completing in that session).
        """
        if session is None:
            return False
        try:
            conn.exec_driver_sql(f"KILL {int(session)}")
        except Exception:  # already gone (unknown thread id): the usual case
            pass
        alive = sqlalchemy.text("SELECT COUNT(*) FROM information_schema.processlist WHERE id = :i")
        deadline = time.monotonic() + _SESSION_END_WAIT
        while conn.execute(alive, {"i": int(session)}).scalar():
            if time.monotonic() >= deadline:
                _LOGGER.warning(
                    "%s: the lost session %d has not ended after %.0f s",
                    self.name,
                    session,
                    _SESSION_END_WAIT,
                )
                return False
            time.sleep(0.02)
        return True

    def hurry(self) -> None:
        """Give up retrying (a second signal during a graceful stop): a batch whose connection
        is lost from now on is reported as failed at once instead of written again."""
        self._hurried = True

    def _find_table(self) -> None:
        """``create=True``: the table, if it exists, read from the database (and nothing left
        to create); a missing one is made from the first row."""
        assert self._create is not None
        name, schema = self.table.name, self._schema
        try:
            exists = sqlalchemy.inspect(self.engine).has_table(name, schema=schema)
        except SQLAlchemyError as exc:
            raise ConfigurationError(
                f"{self.name}: cannot look for table {self.table.fullname!r} in database "
                f"{self._database}: {_reason(exc)}"
            ) from exc
        if exists:
            self.table = _reflect(self.engine, name, schema)
            self._create = None

    def _make_table(self, row: Mapping[str, Any]) -> None:
        """``create=True``: the missing table created for ``row``, then read back."""
        assert self._create is not None
        if not self._is_open:
            self.open()
            if self._create is None:
                return
        ddl = self._create.ddl(self.engine, self.table, row)
        try:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(ddl)
        except SQLAlchemyError as exc:
            # Another process (a shard of the same run) may have made it at the same time.
            if not sqlalchemy.inspect(self.engine).has_table(self.table.name, self._schema):
                raise ConfigurationError(
                    f"{self.name}: cannot create table {self.table.fullname!r} in database "
                    f"{self._database}: {_reason(exc)}"
                ) from exc
        _LOGGER.debug("%s: %s", self.name, ddl)
        self.table = _reflect(self.engine, self.table.name, self._schema)
        self._create = None

    def if_exists(self, mode: str) -> None:
        """The next run's way with a table that holds rows: ``"append"`` adds to them (the
        default), ``"replace"`` deletes them when the sink opens (the table's rows only: the
        table, and every other, stays), ``"fail"`` refuses to open."""
        self._if_exists = mode

    def _look_at_rows(self) -> None:
        """Whether the table holds rows (``appended``), and the run's ``if_exists`` done."""
        choice, self._if_exists = self._if_exists, None
        if self._create is not None:  # the table is missing: made for the first row
            self.appended = False
            return
        table = self.table
        try:
            with self.engine.begin() as conn:
                one = sqlalchemy.select(sqlalchemy.literal(1)).select_from(table).limit(1)
                held = conn.execute(one).first() is not None
                if held and choice == "fail":
                    raise ConfigurationError(
                        f"{self.name}: table {table.fullname!r} of {self._database} holds "
                        "rows, and if_exists is 'fail': give another table, or append or "
                        "replace"
                    )
                if held and choice == "replace":
                    conn.execute(sqlalchemy.delete(table))
                    held = False
        except SQLAlchemyError as exc:
            raise ConfigurationError(
                f"{self.name}: cannot look at the rows of table {table.fullname!r} of "
                f"{self._database}: {_reason(exc)}"
            ) from exc
        self.appended = held

    def _open(self) -> None:
        stray = self._join_writer()  # a close interrupted while a batch was written
        if stray is not None:
            _LOGGER.debug("%s: a batch of the last run failed: %s", self.name, stray)
        if self._create is not None:
            self._find_table()
        self._look_at_rows()
        self._hurried = False
        self.reconnects = 0
        self.repeated = 0
        self._committed = 0
        if self._skip:  # a run that ended while rows still came again
            self._skip = 0
            del self.collect
        if self._resume_rows is not None:
            self._open_progress()
        else:
            self._progress = None  # a new run keeps its progress under a key of its own
        self._dirty_since = None
        self._segments = []
        self._plan = None
        self._keys = None
        self._rows = []
        self._room = self.batch_size
        if self._changes is not None:
            self._changes = {}

    def _close(self) -> None:
        """Write what is buffered, then release the pooled connections the sink owns."""
        try:
            self.flush()
        finally:
            self._release()
            if self._dispose_on_close:
                self.engine.dispose()

    # -- checkpoints -------------------------------------------------------------------------

    def checkpoint_position(self) -> Optional[Dict[str, Any]]:
        """For a run's checkpoint: every buffered row written, and the number of rows the run
        has committed (None in upsert mode, which is idempotent). The first checkpoint of a
        run adds the sink's row to :data:`PROGRESS_TABLE`; from then on each batch updates
        it in the batch's transaction."""
        self.flush()
        if self.mode != "append":
            return None
        if self._progress is None:
            self._progress = (uuid.uuid4().hex, self.name)
            self._open_progress()
        run_key, sink_key = self._progress
        return {"run_key": run_key, "sink": sink_key, "rows": self._committed}

    def resume_at(self, position: Dict[str, Any]) -> None:
        """A resumed run: the next :meth:`open` reads the rows committed since the checkpoint
        and drops that many of the first rows it is given (written before the crash)."""
        self._resume_rows = int(position["rows"])
        self._progress = (str(position["run_key"]), str(position["sink"]))

    def _open_progress(self) -> None:
        """The progress table made when missing, and this sink's row read (a resumed run)
        or added (the first checkpoint of a run) with the rows committed so far."""
        assert self._progress is not None
        run_key, sink_key = self._progress
        table = self._progress_table
        if table is None:
            table = self._progress_table = Table(
                PROGRESS_TABLE,
                MetaData(),
                sqlalchemy.Column("run_key", sqlalchemy.String(64), primary_key=True),
                sqlalchemy.Column("sink", sqlalchemy.String(191), primary_key=True),
                sqlalchemy.Column("committed_rows", sqlalchemy.BigInteger, nullable=False),
                schema=self._schema,
            )
        where = (table.c.run_key == run_key) & (table.c.sink == sink_key)
        rows, self._resume_rows = self._resume_rows, None
        try:
            try:
                table.create(self.engine, checkfirst=True)
            except SQLAlchemyError:
                # Another process (a shard) made it at the same time.
                if not sqlalchemy.inspect(self.engine).has_table(PROGRESS_TABLE, self._schema):
                    raise
            with self.engine.begin() as conn:
                found = conn.execute(sqlalchemy.select(table.c.committed_rows).where(where))
                committed = found.scalar()
                if committed is None and rows is None:
                    committed = self._committed
                    conn.execute(
                        insert(table).values(
                            run_key=run_key, sink=sink_key, committed_rows=committed
                        )
                    )
        except SQLAlchemyError as exc:
            raise ConfigurationError(
                f"{self.name}: cannot keep the run's progress in table {PROGRESS_TABLE!r} of "
                f"{self._database}: {_reason(exc)}"
            ) from exc
        self._progress_update = (
            sqlalchemy.update(table)
            .where(where)
            .values(committed_rows=sqlalchemy.bindparam("doge_committed"))
        )
        if rows is None:
            return
        if committed is None or committed < rows:
            raise ConfigurationError(
                f"{self.name}: table {PROGRESS_TABLE!r} of {self._database} holds "
                f"{'no row' if committed is None else f'{committed} rows'} committed by run "
                f"{run_key} ({sink_key}), fewer than the {rows} of the checkpoint: it is not "
                f"the database the run wrote"
            )
        self._committed = committed
        self._skip = committed - rows
        if self._skip:
            self.collect = self._collect_again  # type: ignore[method-assign]

    def _collect_again(self, timestamp: int, subject: Any, transition: Transition) -> None:
        """A resumed run's collect while rows committed after the checkpoint come again."""
        if self._skip > 0:
            self._skip -= 1
            self.repeated += 1
            self.row_mapper_function(timestamp, subject, transition)
            if not self._skip:
                del self.collect
            return
        DbSink.collect(self, timestamp, subject, transition)

    def _write_progress(self, conn: Connection, segments: List[Tuple[_Plan, List[Any]]]) -> None:
        """In the batch's transaction: the run's committed rows, this batch's included."""
        if self._progress is None:
            return
        count = sum(len(rows) for _, rows in segments)
        conn.execute(self._progress_update, {"doge_committed": self._committed + count})

    # -- plans -------------------------------------------------------------------------------

    def _make_plan(self, keys: Tuple[str, ...]) -> _Plan:
        table = self.table
        if not keys:
            raise RecordError(f"{self.name}: row_mapper_function returned an empty row")
        unknown = [k for k in keys if k not in table.c]
        if unknown:
            raise RecordError(
                f"{self.name}: key {unknown[0]!r} is not a column of table "
                f"{table.fullname!r} (columns: {', '.join(table.c.keys())})"
            )
        keyset = frozenset(keys)
        columns = [table.c[k] for k in keys]
        # Python-side defaults of omitted columns are applied by SQLAlchemy's insert() only.
        python_defaults = any(c.default is not None for c in table.c if c.key not in keyset)
        dialect = self.engine.dialect
        statement = insert(table)
        if not python_defaults:
            if self._can_copy and all(_copies_as_text(c.type) for c in columns):
                return _Plan(keyset, COPY, self._copy_writer(keys))
            if self._fast_executemany and not any(
                c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns
            ):
                write = self._executemany_writer(keys, statement)
                if write is not None:
                    return _Plan(keyset, EXECUTEMANY, write)

        def write_insert(conn: Connection, rows: List[Any]) -> None:
            conn.execute(statement, rows)

        return _Plan(keyset, INSERT, write_insert)

    # -- upsert mode ------------------------------------------------------------------------

    def _check_upsert(self, key: Union[str, Sequence[str], None]) -> Tuple[str, ...]:
        """The key columns, checked: columns of the table that are its primary key or have
        a unique constraint or index (the conflict an upsert resolves)."""
        table = self.table
        dialect = self.engine.dialect.name
        if dialect not in _UPSERT_DIALECTS:
            raise ConfigurationError(
                f"{self.name}: mode='upsert' works on PostgreSQL, MySQL, MariaDB and SQLite, "
                f"not {dialect}"
            )
        columns = (key,) if isinstance(key, str) else tuple(key or ())
        if not columns or not all(isinstance(c, str) and c for c in columns):
            raise ConfigurationError(
                f"{self.name}: mode='upsert' needs key=COLUMN naming the column that "
                f"identifies a row, got {key!r}"
            )
        unknown = [c for c in columns if c not in table.c]
        if unknown:
            raise ConfigurationError(
                f"{self.name}: key {unknown[0]!r} is not a column of table {table.fullname!r} "
                f"(columns: {', '.join(table.c.keys())})"
            )
        wanted = {table.c[c].name for c in columns}
        unique = [{c.name for c in table.primary_key.columns}]
        unique += [
            {c.name for c in constraint.columns}
            for constraint in table.constraints
            if isinstance(constraint, sqlalchemy.UniqueConstraint)
        ]
        unique += [{c.name for c in index.columns} for index in table.indexes if index.unique]
        if wanted not in unique:
            raise ConfigurationError(
                f"{self.name}: key {', '.join(columns)} is neither the primary key of table "
                f"{table.fullname!r} nor unique in it; an upsert needs one of them"
            )
        return columns

    def _change_segments(
        self, changes: Dict[Tuple[Any, ...], Tuple[bool, Mapping[str, Any]]]
    ) -> List[Tuple[_Plan, List[Any]]]:
        """The batch's writes: the deleted keys' rows, then the other rows by key set."""
        deleted: List[Any] = []
        groups: Dict[FrozenSet[str], List[Any]] = {}
        keys: Optional[FrozenSet[str]] = None
        rows: List[Any] = []
        for gone, row in changes.values():
            if gone:
                deleted.append(row)
                continue
            # Rows mostly share their keys: compared with the last row's set, a new set is
            # made only when they differ.
            if keys is None or row.keys() != keys:
                keys = frozenset(row.keys())
                found = groups.get(keys)
                if found is None:
                    found = groups[keys] = []
                rows = found
            rows.append(row)
        segments: List[Tuple[_Plan, List[Any]]] = []
        if deleted:
            segments.append((self._delete_plan(), deleted))
        for rows in groups.values():
            segments.append((self._upsert_plan(tuple(rows[0].keys())), rows))
        return segments

    def _delete_plan(self) -> _Plan:
        plan = self._change_plans.get("delete")
        if plan is not None:
            return plan
        table = self.table
        columns = [table.c[k] for k in self.key]
        target = columns[0] if len(columns) == 1 else sqlalchemy.tuple_(*columns)
        statement = table.delete().where(target.in_(sqlalchemy.bindparam("keys", expanding=True)))
        key = self.key
        single = len(key) == 1

        def write_delete(conn: Connection, rows: List[Any]) -> None:
            if single:
                values: List[Any] = [row[key[0]] for row in rows]
            else:
                values = [tuple([row[k] for k in key]) for row in rows]
            conn.execute(statement, {"keys": values})

        plan = self._change_plans["delete"] = _Plan(frozenset(key), DELETE, write_delete)
        return plan

    def _upsert_plan(self, keys: Tuple[str, ...]) -> _Plan:
        keyset = frozenset(keys)
        plan = self._change_plans.get(keyset)
        if plan is not None:
            return plan
        table = self.table
        unknown = [k for k in keys if k not in table.c]
        if unknown:
            raise RecordError(
                f"{self.name}: key {unknown[0]!r} is not a column of table "
                f"{table.fullname!r} (columns: {', '.join(table.c.keys())})"
            )
        missing = [k for k in self.key if k not in keyset]
        if missing:
            raise RecordError(f"{self.name}: a row without its key column {missing[0]!r}")
        dialect = self.engine.dialect.name
        others = [k for k in keys if k not in self.key]
        if self._can_copy and all(_copies_as_text(table.c[k].type) for k in keys):
            plan = self._change_plans[keyset] = _Plan(
                keyset, UPSERT, self._staged_upsert_writer(keys, others)
            )
            return plan
        statement: Any
        if dialect in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import insert as mysql_insert

            statement = mysql_insert(table)
            # With nothing but the key, "update" the key to itself: the row stays as it is.
            update = others or list(self.key)
            statement = statement.on_duplicate_key_update(
                {k: statement.inserted[k] for k in update}
            )
        else:
            from sqlalchemy.dialects import postgresql, sqlite

            module: Any = postgresql if dialect == "postgresql" else sqlite
            statement = module.insert(table)
            target = [table.c[k] for k in self.key]
            if others:
                statement = statement.on_conflict_do_update(
                    index_elements=target, set_={k: statement.excluded[k] for k in others}
                )
            else:
                statement = statement.on_conflict_do_nothing(index_elements=target)

        def write_upsert(conn: Connection, rows: List[Any]) -> None:
            conn.execute(statement, rows)

        plan = self._change_plans[keyset] = _Plan(keyset, UPSERT, write_upsert)
        return plan

    def _staged_upsert_writer(
        self, keys: Tuple[str, ...], others: Sequence[str]
    ) -> Callable[[Connection, List[Any]], Optional[str]]:
        """PostgreSQL: the rows copied (``COPY``) into a temporary table of the session,
        emptied at each commit, then moved over in one ``INSERT ... SELECT ... ON CONFLICT``;
        an ``executemany`` of the upsert would cost a round trip per row. The temporary table
        is made once per session, in its first batch (again after a batch rolled back).

        A ``MERGE`` (or ``UPDATE ... FROM``, then the new rows) was measured no faster when
        it probes the key's index for each row, and faster only when the planner hashes the
        whole table, which costs the table's size at every batch; ``ON CONFLICT`` costs the
        batch's rows, whatever the table's size."""
        preparer = self.engine.dialect.identifier_preparer
        table = self.table
        target = preparer.format_table(table)
        names = ", ".join(preparer.quote(table.c[k].name) for k in keys)
        stage = preparer.quote(f"doge_upsert_{uuid.uuid4().hex[:16]}")
        create = (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
            f"SELECT {names} FROM {target} WITH NO DATA"
        )
        copy_sql = f"COPY {stage} ({names}) FROM STDIN WITH (FORMAT csv)"
        conflict = ", ".join(preparer.quote(table.c[k].name) for k in self.key)
        if others:
            sets = ", ".join(
                f"{preparer.quote(table.c[k].name)} = EXCLUDED.{preparer.quote(table.c[k].name)}"
                for k in others
            )
            action = f"DO UPDATE SET {sets}"
        else:
            action = "DO NOTHING"
        move = (
            f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage} "
            f"ON CONFLICT ({conflict}) {action}"
        )
        getter = _tuple_getter(keys)
        width = len(keys)
        integers = [i for i, k in enumerate(keys) if isinstance(table.c[k].type, sqltypes.Integer)]
        psycopg2 = self.engine.dialect.driver == "psycopg2"

        def write(conn: Connection, rows: List[Any]) -> Optional[str]:
            payload = _rows_payload(rows, getter, width, integers)
            raw: Any = conn.connection.dbapi_connection
            cursor = raw.cursor()
            try:
                if self._staged_on is not raw:
                    self._staged_on = raw
                    self._staged.clear()
                if stage not in self._staged:
                    cursor.execute(create)
                    self._staged.append(stage)  # forgotten if the batch is rolled back
                if psycopg2:
                    cursor.copy_expert(copy_sql, io.StringIO(payload), size=1 << 20)
                else:
                    with cursor.copy(copy_sql) as copy:
                        copy.write(payload)
            finally:
                cursor.close()
            return move  # run before the COMMIT (one key set per stage: each used once a batch)

        return write

    def _copy_writer(self, keys: Tuple[str, ...]) -> Callable[[Connection, List[Any]], None]:
        preparer = self.engine.dialect.identifier_preparer
        names = ", ".join(preparer.quote(self.table.c[k].name) for k in keys)
        sql = f"COPY {preparer.format_table(self.table)} ({names}) FROM STDIN WITH (FORMAT csv)"
        getter = _tuple_getter(keys)
        width = len(keys)
        integers = [
            i for i, k in enumerate(keys) if isinstance(self.table.c[k].type, sqltypes.Integer)
        ]

        if self.engine.dialect.driver == "psycopg2":

            def write(conn: Connection, rows: List[Any]) -> None:
                payload = _rows_payload(rows, getter, width, integers)
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                try:
                    cursor.copy_expert(sql, io.StringIO(payload), size=1 << 20)
                finally:
                    cursor.close()

        else:

            def write(conn: Connection, rows: List[Any]) -> None:
                payload = _rows_payload(rows, getter, width, integers)
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                try:
                    with cursor.copy(sql) as copy:
                        copy.write(payload)
                finally:
                    cursor.close()

        return write

    def _executemany_writer(
        self, keys: Tuple[str, ...], statement: Any
    ) -> Optional[Callable[[Connection, List[Any]], None]]:
        """The driver's executemany on SQLAlchemy's compiled SQL, or None when the compiled
        parameters cannot be fed straight from the rows (renamed bind parameters)."""
        dialect = self.engine.dialect
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        sql = str(compiled)
        positions = compiled.positiontup
        if positions is not None:
            if sorted(positions) != sorted(keys):
                return None
            getter = _tuple_getter(list(positions))

            def write_positional(conn: Connection, rows: List[Any]) -> None:
                conn.exec_driver_sql(sql, list(map(getter, rows)))

            return write_positional
        style = dialect.paramstyle
        if style == "pyformat":
            marks = [f"%({k})s" for k in keys]
        elif style == "named":
            marks = [f":{k}" for k in keys]
        else:
            return None
        if not all(k.isidentifier() for k in keys) or not all(m in sql for m in marks):
            return None

        def write_named(conn: Connection, rows: List[Any]) -> None:
            # collect() made sure every row has exactly these keys: pass the rows as they are.
            conn.exec_driver_sql(sql, rows)

        return write_named

    def __repr__(self) -> str:
        return f"DbSink({self.table.fullname!r}, {self._database}, batch_size={self.batch_size})"


def _check_create(
    create: bool,
    columns: Optional[Mapping[str, str]],
    primary_key: Union[str, Sequence[str], None],
    foreign_keys: Optional[Mapping[str, str]],
    mode: str,
) -> Optional[_TableSpec]:
    """What ``create=True`` makes a missing table of, checked; None without ``create``."""
    if not isinstance(create, bool):
        raise ConfigurationError(f"create must be True or False, got {create!r}")
    if not create:
        given = [n for n, v in (("columns", columns), ("primary_key", primary_key),
                                ("foreign_keys", foreign_keys)) if v is not None]  # fmt: skip
        if given:
            raise ConfigurationError(
                f"{given[0]}= describes a table to create: give create=True with it"
            )
        return None
    if mode != "append":
        raise ConfigurationError(
            "create=True makes a table for mode='append'; an upsert needs a table that exists "
            "with its key"
        )
    return _TableSpec(columns, primary_key, foreign_keys)


class DbSinkFactory:
    """Creates :class:`DbSink` objects writing to one database.

    :param db_url: a database URL (``postgresql://user:password@host:5432/db``,
        ``mysql+pymysql://...``, ``sqlite:///file.db``) or an existing
        :class:`~sqlalchemy.engine.Engine` (the name is the first releases' own, so that
        ``DbSinkFactory(db_url=...)`` keeps working).
    :param batch_size: rows per transaction for the sinks it creates.
    :param flush_interval: ``retries``, ``retry_backoff``: defaults for its sinks (see
        :class:`DbSink`).
    :param engine_kwargs: passed to :func:`sqlalchemy.create_engine` when ``db_url`` is a URL.
        An engine the factory creates checks a pooled connection before using it
        (``pool_pre_ping``), so a connection that died while idle is replaced unnoticed.

    An engine the factory creates is its own: its sinks release its pooled connections when
    they close, and :meth:`close` disposes of it. An engine passed in is left alone.
    """

    def __init__(
        self,
        db_url: Union[str, URL, Engine],
        batch_size: int = DEFAULT_BATCH_SIZE,
        *,
        flush_interval: Optional[float] = DEFAULT_FLUSH_INTERVAL,
        retries: int = DEFAULT_RETRIES,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF,
        **engine_kwargs: Any,
    ) -> None:
        self.batch_size = check_positive_count("batch_size", batch_size)
        self.flush_interval = check_flush_interval(flush_interval)
        _check_retries(retries, retry_backoff)
        self.retries = retries
        self.retry_backoff = float(retry_backoff)
        url = db_url
        if isinstance(url, Engine):
            if engine_kwargs:
                raise ConfigurationError(
                    "engine options cannot be applied to an existing Engine: "
                    f"{', '.join(sorted(engine_kwargs))}"
                )
            self.engine = url
            self._owns_engine = False
        elif isinstance(url, (str, URL)):
            self.engine = _create_engine(url, {"pool_pre_ping": True, **engine_kwargs})
            self._owns_engine = True
        else:
            raise ConfigurationError(
                f"db_url must be a database URL or a SQLAlchemy Engine, got {url!r}"
            )

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def create(
        self,
        table_name: str,
        row_mapper_function: RowMapper,
        batch_size: Optional[int] = None,
        *,
        schema: Optional[str] = None,
        name: Optional[str] = None,
        mode: str = "append",
        key: Union[str, Sequence[str], None] = None,
        create: bool = False,
        columns: Optional[Mapping[str, str]] = None,
        primary_key: Union[str, Sequence[str], None] = None,
        foreign_keys: Optional[Mapping[str, str]] = None,
    ) -> DbSink:
        """A sink inserting ``row_mapper_function``'s rows into the existing ``table_name``.

        :param batch_size: rows per transaction for this sink; the factory's by default. It
            is the third argument, as in the first releases (``create('events', rows, 500)``).
        :param schema: the table's schema (PostgreSQL) or database (MySQL), where it is not
            the connection's default.
        :param name: how run summaries name the sink; ``db:<table>`` by default.
        :param mode: ``key``: ``"upsert"`` and its key columns for a current-state table
            (see :class:`DbSink`).
        :param create: make the table when it is missing, at the start of the run, with
            column types from the first row (or ``columns``), ``primary_key`` and
            ``foreign_keys`` (see :class:`DbSink`):
            ``create('trx', rows, create=True, primary_key='id',
            foreign_keys={'user_id': 'users(id)'})``.
        :raises ConfigurationError: the table does not exist (or cannot be read); with
            ``create=True``, when the run opens the sink.
        """
        if isinstance(batch_size, str):
            raise ConfigurationError(
                f"batch_size must be a positive whole number, got {batch_size!r}: the third "
                "argument of create() is the batch size; give a schema as schema=..."
            )
        sink = DbSink(
            self.engine,
            table_name,
            row_mapper_function,
            schema=schema,
            batch_size=self.batch_size if batch_size is None else batch_size,
            name=name,
            flush_interval=self.flush_interval,
            retries=self.retries,
            retry_backoff=self.retry_backoff,
            mode=mode,
            key=key,
            create=create,
            columns=columns,
            primary_key=primary_key,
            foreign_keys=foreign_keys,
        )
        # The sinks of a factory that owns its engine release its pool when they close.
        sink._dispose_on_close = self._owns_engine
        return sink

    def close(self) -> None:
        """Dispose of the engine if the factory created it."""
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> "DbSinkFactory":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DbSinkFactory({self.url!r}, batch_size={self.batch_size})"
