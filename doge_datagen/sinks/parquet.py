"""Parquet files (pyarrow): every event becomes one row of a typed, columnar file.

``value_function(timestamp, subject, transition)`` turns an event into a dict. The columns
and their types come from ``schema`` (a ``pyarrow.Schema``, or a dict of column name to a
pyarrow type or type name such as ``"int64"``), or are inferred from the first row group:
the first row's keys give the columns, in order, and the values of the whole first row group
give their types. Later rows must fit: a key outside the columns, or a value of the wrong
type, is a :class:`~doge_datagen.errors.RecordError` when its row group is written (the
other rows are written); a missing key is written as null.

Rows are kept in memory and written ``row_group_size`` at a time, one row group each. The
file is written under a temporary name next to ``path`` and renamed to ``path`` by
:meth:`ParquetSink.close`: a Parquet file is unreadable until its footer is written, so a
reader never sees a half-written one. A sink opened again after :meth:`~ParquetSink.close`
(a second run) appends: the new file holds the earlier rows, then the new ones.

In a shard of a sharded run (:func:`doge_datagen.distributed.run_sharded`) the sink writes
its own part file, ``STEM-KKKKK-of-NNNNN.parquet`` (:func:`doge_datagen.shards.part_path`):
the parts of all shards together hold the run.
"""

import logging
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

from doge_datagen.core import shards
from doge_datagen.core.checks import check_positive_count
from doge_datagen.core.types import Transition
from doge_datagen.errors import ConfigurationError, RecordError
from doge_datagen.sinks.base import Sink, optional_import

__all__ = ["ParquetSink", "ParquetSinkFactory"]

_LOGGER = logging.getLogger(__name__)

ValueFunction = Callable[[int, Any, Transition], Any]
PathLike = Union[str, "os.PathLike[str]"]
SchemaLike = Any  # a pyarrow.Schema, or a mapping of column name to type

DEFAULT_ROW_GROUP_SIZE = 65536
SUFFIX = ".parquet"


def _pa() -> Any:
    return optional_import("pyarrow", "parquet", "The Parquet sink")


def _pq() -> Any:
    _pa()
    return optional_import("pyarrow.parquet", "parquet", "The Parquet sink")


def _schema(schema: SchemaLike) -> Any:
    """A ``pyarrow.Schema`` from a schema or a mapping of column name to type."""
    pa = _pa()
    if isinstance(schema, pa.Schema):
        if len(schema) == 0:
            raise ConfigurationError("schema has no columns")
        return schema
    if not isinstance(schema, Mapping) or not schema:
        raise ConfigurationError(
            f"schema must be a pyarrow.Schema or a dict of column name to type, got {schema!r}"
        )
    fields = []
    for column, kind in schema.items():
        if not isinstance(column, str) or not column:
            raise ConfigurationError(f"schema column names must be strings, got {column!r}")
        if isinstance(kind, str):
            try:
                kind = pa.type_for_alias(kind)
            except (ValueError, KeyError):
                raise ConfigurationError(
                    f"schema column {column!r}: unknown type name {kind!r}"
                ) from None
        if not isinstance(kind, pa.DataType):
            raise ConfigurationError(
                f"schema column {column!r}: type must be a pyarrow type or its name, got {kind!r}"
            )
        fields.append(pa.field(column, kind))
    return pa.schema(fields)


class ParquetSink(Sink):
    """Writes every event as a row of a Parquet file.

    :param path: the file to write (``.parquet``).
    :param value_function: ``(timestamp, subject, transition) -> dict``, called once per event.
    :param schema: the columns and their types; inferred from the first row group if ``None``.
    :param row_group_size: rows per row group (and kept in memory before they are written).
    :param compression: the Parquet codec (``"snappy"``, ``"zstd"``, ``"gzip"``, ``"none"``).
    :param name: how the run summary names this sink; ``parquet:<path>`` by default.

    ``delivered`` counts the rows written into row groups since :meth:`open` (all of them
    become visible at :meth:`close`), ``buffered`` those still in memory, ``failed`` those
    that could not be written. ``value_function`` must return a new dict for every event:
    values are kept until written.
    """

    def __init__(
        self,
        path: PathLike,
        value_function: ValueFunction,
        schema: Optional[SchemaLike] = None,
        *,
        row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
        compression: str = "snappy",
        name: Optional[str] = None,
    ) -> None:
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise ConfigurationError(f"path must be a file path, got {path!r}")
        if not callable(value_function):
            raise ConfigurationError(f"value_function must be callable, got {value_function!r}")
        check_positive_count("row_group_size", row_group_size)
        if not isinstance(compression, str):
            raise ConfigurationError(f"compression must be a codec name, got {compression!r}")
        self.path = Path(path)
        self.value_function = value_function
        self.schema = _schema(schema) if schema is not None else None
        self.row_group_size = row_group_size
        self.compression = compression
        self.name = name or f"parquet:{self.path}"
        self._given_schema = self.schema
        self._keys: Any = None
        self._struct: Any = None  # the schema as a struct type, made on first use
        self._rows: List[Any] = []
        self._writer: Any = None
        self._temp: Optional[Path] = None
        self._target = self.path
        self._append = False
        # The run's if_exists (append, replace, fail), for the next open only.
        self._if_exists: Optional[str] = None
        #: Whether the last open found rows in the file and kept them before the new ones.
        self.appended: Optional[bool] = None
        self._carried = 0

    @property
    def buffered(self) -> int:
        """Rows collected but not written into a row group yet."""
        return len(self._rows)

    # -- the hot path ------------------------------------------------------------------------

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        if not self._is_open:
            self.open()  # used without a run: open on the first event
        row = self.value_function(timestamp, subject, transition)
        rows = self._rows
        rows.append(row)
        if len(rows) >= self.row_group_size:
            self._write_rows()

    def _misfit(self, row: Any) -> Optional[str]:
        """Why ``row`` cannot be a row of the file (``None`` if it can, as far as keys go)."""
        if not isinstance(row, dict):
            return f"value_function must return a dict, got {type(row).__name__}"
        assert self._keys is not None
        extra = [k for k in row if k not in self._keys]
        if extra:
            return f"key {extra[0]!r} is not one of the columns {', '.join(map(str, self._keys))}"
        return None

    def _write_rows(self) -> None:
        """Write the buffered rows as one row group.

        The checks run once per row group, in C where they can: the conversion silently
        leaves out a key that is not a column, so the rows' keys must lie within the columns.
        When the first row's keys are the columns, every row has as many keys as there are
        columns and no value came out null, each row holds exactly the columns (a key outside
        them would have left a column missing, so null); otherwise the union of the rows'
        keys is compared with the columns.
        """
        rows = self._rows
        if not rows:
            return
        self._rows = []
        if set(map(type, rows)) != {dict}:
            self._write_good_rows(rows, None)
            return
        keys = self._keys
        if keys is None:
            names = [f.name for f in self.schema] if self.schema is not None else list(rows[0])
            keys = self._keys = dict.fromkeys(names).keys()
        pa = _pa()
        try:
            table = self._table(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            self._write_good_rows(rows, exc)
            return
        exact = (
            rows[0].keys() == keys
            and sum(map(len, rows)) == len(keys) * len(rows)
            and not any(column.null_count for column in table.itercolumns())
        )
        if not exact and not set().union(*rows) <= keys:
            self._write_good_rows(rows, None)
            return
        self._write_table(table, rows)

    def _table(self, rows: List[Any]) -> Any:
        """The rows as a table of the schema's columns (a missing key gives a null).

        With a known schema the rows are converted as one struct array, in C, rather than
        by ``from_pylist``'s list per column; a type that conversion does not handle falls
        back to ``from_pylist``. The first row's keys choose text or bytes lookups in the
        struct conversion: the key checks of :meth:`_write_rows` admit only text keys that
        are column names, for which both conversions agree.
        """
        pa = _pa()
        schema = self.schema
        if schema is not None:
            struct = self._struct
            if struct is None:
                struct = self._struct = pa.struct(list(schema))
            try:
                array = pa.array(rows, type=struct)
            except pa.ArrowNotImplementedError:
                pass
            else:
                return pa.Table.from_arrays(array.flatten(), schema=schema)
        return pa.Table.from_pylist(rows, schema=schema)

    def _write_table(self, table: Any, rows: List[Any]) -> None:
        if self.schema is None:
            self.schema = table.schema
        writer = self._writer or self._start_writer()
        with self.translate_errors(
            len(rows), f"cannot write {len(rows)} rows", delivery=(OSError,), pending=rows
        ):
            writer.write_table(table, row_group_size=self.row_group_size)
        self.delivered += len(rows)

    def _write_good_rows(self, rows: List[Any], exc: Optional[Exception]) -> None:
        """A row group did not convert: write the rows that fit, report the first that did not."""
        pa = _pa()
        good, bad = [], []
        for row in rows:
            reason: Any = self._misfit(row)
            if reason is None:
                try:
                    pa.Table.from_pylist([row], schema=self.schema)
                except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as error:
                    reason = error
            if reason is None:
                good.append(row)
            else:
                bad.append((row, reason))
        if good:
            try:
                table = pa.Table.from_pylist(good, schema=self.schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as error:
                # Every row fits alone but not together (types inferred row by row).
                bad += [(row, error) for row in good]
            else:
                self._write_table(table, good)
        self.failed += len(bad)
        first, cause = bad[0]
        record_error = RecordError(
            f"{self.name}: {len(bad)} rows do not fit the columns ({self._columns()}); "
            f"the first: {first!r}: {cause}"
        )
        if isinstance(cause, BaseException):
            raise record_error from cause
        raise record_error

    def _columns(self) -> str:
        if self.schema is None:
            return "inferred"
        return ", ".join(f"{field.name}: {field.type}" for field in self.schema)

    # -- files -------------------------------------------------------------------------------

    def _start_writer(self) -> Any:
        pq = _pq()
        assert self._temp is not None and self.schema is not None
        with self.translate_errors(
            len(self._rows), f"cannot create {str(self._temp)!r}", delivery=(OSError,)
        ):
            writer = pq.ParquetWriter(str(self._temp), self.schema, compression=self.compression)
        self._writer = writer
        if self._append:
            self._copy_earlier_rows(writer)
        return writer

    def _copy_earlier_rows(self, writer: Any) -> None:
        """Reopened after a close: the rows of the earlier runs go first into the new file."""
        pq = _pq()
        if not self._target.exists():
            return
        earlier = pq.ParquetFile(str(self._target))
        if earlier.metadata.num_rows == 0:
            return
        if earlier.schema_arrow != self.schema:
            raise RecordError(
                f"{self.name}: cannot append rows with columns ({self._columns()}) to "
                f"{str(self._target)!r}, whose columns differ: {earlier.schema_arrow.names}"
            )
        for group in range(earlier.num_row_groups):
            table = earlier.read_row_group(group)
            writer.write_table(table, row_group_size=max(len(table), 1))
            self._carried += len(table)

    def target(self) -> Path:
        """The file a run writes: ``path``, or in a shard of a sharded run its own part."""
        shard = shards.current()
        return self.path if shard is None else shards.part_path(self.path, shard)

    def if_exists(self, mode: str) -> None:
        """The next run's way with a file that holds rows: ``"append"`` keeps them before the
        new ones (the file is written again, whole), ``"replace"`` writes the run's rows only
        (the default), ``"fail"`` refuses to open."""
        self._if_exists = mode

    def _open(self) -> None:
        target = self.target()
        if target != self._target:
            self._append = False  # a new file: a part, or the whole file again
        self._target = target
        choice, self._if_exists = self._if_exists, None
        held = target.exists() and target.stat().st_size > 0
        if choice == "fail" and held:
            raise ConfigurationError(
                f"{self.name}: {str(target)!r} exists and holds data, and if_exists is "
                "'fail': give another path, or append or replace"
            )
        if choice is not None:
            self._append = choice == "append"
        self.appended = held and self._append
        self.schema = self._given_schema
        if self._append and self.schema is None and self._target.exists():
            earlier = _pq().read_schema(str(self._target))
            self.schema = earlier if len(earlier) else None
        self._struct = None
        if self.schema is not None:
            self._keys = {field.name: None for field in self.schema}.keys()
        else:
            self._keys = None
        self._rows = []
        self._carried = 0
        directory = self._target.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"{self.name}: cannot create directory {str(directory)!r}: {exc.strerror}"
            ) from exc
        self._temp = directory / f".{self._target.name}.{uuid.uuid4().hex[:8]}.tmp"
        if self.schema is not None:
            self._start_writer()  # the file has its columns even if no event comes

    def _close(self) -> None:
        try:
            self._write_rows()
        finally:
            self._finish()

    def _finish(self) -> None:
        pa = _pa()
        if self._writer is None and self.schema is None:
            # No event and no schema: an empty file with no columns.
            self.schema = pa.schema([])
            self._start_writer()
        writer, self._writer = self._writer, None
        temp, self._temp = self._temp, None
        assert writer is not None and temp is not None
        try:
            with self.translate_errors(
                0, f"cannot finish {str(self._target)!r}", delivery=(OSError, pa.ArrowException)
            ):
                try:
                    writer.close()
                    os.replace(temp, self._target)
                except BaseException:
                    # The file is lost: its rows were not delivered after all.
                    self.failed += self.delivered
                    self.delivered = 0
                    raise
        finally:
            if temp.exists():
                temp.unlink()
        self._append = True  # opened again: append
        _LOGGER.debug("%s: %d rows written", self.name, self.delivered)

    def __repr__(self) -> str:
        state = "open" if self._is_open else "closed"
        return f"<ParquetSink {self.name!r} {state} delivered={self.delivered}>"


class ParquetSinkFactory:
    """Creates :class:`ParquetSink` objects writing files in one directory.

    :param directory: where the files go (created when a sink opens); the current directory
        by default.
    :param options: defaults for every sink (``row_group_size``, ``compression``, ...).
    """

    def __init__(self, directory: Optional[PathLike] = None, **options: Any) -> None:
        self.directory = Path(directory) if directory is not None else Path(".")
        self.options: Dict[str, Any] = options

    def create(
        self,
        name: str,
        value_function: ValueFunction,
        schema: Optional[SchemaLike] = None,
        **options: Any,
    ) -> ParquetSink:
        """A sink writing ``<directory>/<name>`` (``.parquet`` added to a name without suffix)."""
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"file name must be a non-empty string, got {name!r}")
        filename = name if Path(name).suffix else name + SUFFIX
        merged = {**self.options, **options}
        return ParquetSink(self.directory / filename, value_function, schema, **merged)

    def __repr__(self) -> str:
        return f"ParquetSinkFactory({str(self.directory)!r})"
