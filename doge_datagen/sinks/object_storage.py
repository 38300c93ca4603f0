"""File sinks on object storage and any fsspec file system: JSON Lines, CSV or Parquet at
``s3://BUCKET/KEY``, ``gs://BUCKET/KEY``, ``file:///PATH``, ``memory://...``.

Nothing is ever visible half-written. Rows go into a local temporary file; when the part is
complete it is published whole: renamed into place on the local file system, uploaded in one
piece on an object store (s3fs sends a large file as a multipart upload that is completed only
at the end, so the object appears all at once or not at all). ``delivered`` counts the rows of
published parts; the rows of the part being written are ``buffered``.

Without ``part_size`` the sink writes one object, published when the sink closes; opened again
(a second run) it publishes the earlier rows and then the new ones. With ``part_size`` (bytes)
it publishes ``STEM-part-00000.SUFFIX``, ``STEM-part-00001.SUFFIX``... as each reaches that
size: a JSON Lines or CSV part holds whole lines and at most ``part_size`` bytes (unless one
line is larger), a Parquet part ends after the row group that reaches it; each CSV part has
its header. In a shard of a sharded run the names get the shard's label first.

Credentials come from the storage's own settings (``key``, ``secret``, ``token``) or its usual
environment (``AWS_ACCESS_KEY_ID``...); their values are masked in every message.
"""

import csv
import io
import json
import logging
import os
import tempfile
from pathlib import PurePosixPath
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from doge_datagen.core import shards
from doge_datagen.core.checks import check_positive_count
from doge_datagen.core.masking import is_secret_key, mask_text, mask_url
from doge_datagen.core.types import Transition
from doge_datagen.errors import ConfigurationError, DeliveryError, DogeError, RecordError
from doge_datagen.sinks.base import Sink, optional_import

__all__ = ["ObjectSink"]

_LOGGER = logging.getLogger(__name__)

ValueFunction = Callable[[int, Any, Transition], Any]

_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
FORMATS = ("jsonl", "csv", "parquet")
#: The extra that installs each protocol's fsspec implementation.
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}
# s3fs names the access key id plainly ``key``; elsewhere ``key=`` names a column, no secret.
_ACCESS_KEY = "key"


def _fsspec(protocol: str) -> Any:
    return optional_import("fsspec", _EXTRAS.get(protocol, "s3"), "Writing to object storage")


class _LocalError(DogeError):
    """The local part file could not be made or written (a full or read-only disk); caught in
    this module, where it becomes the failed count of the part's rows."""

    def __init__(self, what: str, cause: OSError) -> None:
        super().__init__(f"{what}: {cause}")
        self.what = what


class _Part:
    """The local temporary file of the part being written, and what it holds."""

    def __init__(self, local: str, stream: Any) -> None:
        self.local = local
        self.stream = stream
        self.rows = 0
        self.size = 0
        self.writer: Any = None  # a Parquet part's ParquetWriter


class ObjectSink(Sink):
    """Writes rows as JSON Lines, CSV or Parquet to an fsspec URL, in parts published whole.

    :param url: ``s3://BUCKET/KEY.jsonl``, ``gs://...``, ``file:///PATH``, any fsspec URL.
    :param value_function: ``(timestamp, subject, transition) -> dict``.
    :param format: ``"jsonl"``, ``"csv"`` or ``"parquet"``; by default from the suffix.
    :param part_size: publish a part when it reaches this many bytes; ``None``: one object,
        published at :meth:`close`.
    :param buffer_rows: rows kept in memory before they go to the local part file (a
        Parquet row group).
    :param compression: Parquet's codec.
    :param storage_options: the file system's settings (s3fs: ``key``, ``secret``,
        ``endpoint_url``, ``client_kwargs``...).
    :param name: how the run summary names the sink; ``FORMAT:URL`` by default.
    """

    def __init__(
        self,
        url: str,
        value_function: ValueFunction,
        *,
        format: Optional[str] = None,
        part_size: Optional[int] = None,
        buffer_rows: Optional[int] = None,
        row_group_size: Optional[int] = None,
        compression: str = "snappy",
        storage_options: Optional[Mapping[str, Any]] = None,
        name: Optional[str] = None,
    ) -> None:
        if not callable(value_function):
            raise ConfigurationError(f"value_function must be callable, got {value_function!r}")
        if not isinstance(url, str) or "://" not in url:
            raise ConfigurationError(
                f"url must be an fsspec URL such as s3://BUCKET/KEY, got {url!r}"
            )
        protocol, _, rest = url.partition("://")
        self.protocol = protocol.lower()
        fsspec = _fsspec(self.protocol)
        options = self._read_storage_options(storage_options)
        self._fs_class = self._filesystem_class(fsspec, protocol, url)
        self.url = url
        self._path: str = self._fs_class._strip_protocol(url)
        if not rest or self._path.endswith("/"):
            raise ConfigurationError(f"{self._masked(url)!r}: give an object name, not a directory")
        self.format = self._check_format(format)
        if part_size is not None:
            check_positive_count("part_size", part_size)
        rows = buffer_rows if buffer_rows is not None else row_group_size
        if rows is None:
            rows = 65536 if self.format == "parquet" else 1024
        check_positive_count("buffer_rows", rows)
        if self.format == "parquet":
            optional_import("pyarrow.parquet", "parquet", "The Parquet format")
        self.part_size = part_size
        self.buffer_rows = rows
        self.compression = compression
        self.value_function = value_function
        self.storage_options = options
        self.name = name or f"{self.format}:{self._masked(mask_url(url))}"
        self.parts: List[str] = []
        self._rows: List[Any] = []
        self._fs: Any = None
        self._part: Optional[_Part] = None
        self._next_part = 0
        self._published_once = False
        self._columns: Optional[Tuple[str, ...]] = None
        self._schema: Any = None
        self._encode = json.JSONEncoder().encode
        self._unwritten = 0  # rows of the batch being written not yet in the local part
        self._if_exists: Optional[str] = None  # the run's, for the next open only

    def _read_storage_options(self, storage_options: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        """The file system's settings (s3: ``endpoint_url`` and ``region`` moved into
        ``client_kwargs``); their secrets are kept, to be masked in messages."""
        options = dict(storage_options or {})
        if self.protocol == "s3" and "endpoint_url" in options:
            options.setdefault("client_kwargs", {})["endpoint_url"] = options.pop("endpoint_url")
        if self.protocol == "s3" and "region" in options:
            options.setdefault("client_kwargs", {})["region_name"] = options.pop("region")
        self._secrets = [
            str(v)
            for k, v in options.items()
            if (k == _ACCESS_KEY or is_secret_key(k)) and isinstance(v, str) and v
        ]
        return options

    def _filesystem_class(self, fsspec: Any, protocol: str, url: str) -> Any:
        """fsspec's file system class of the URL's protocol (an ImportError naming the extra
        to install when its package is missing)."""
        try:
            return fsspec.get_filesystem_class(self.protocol)
        except ValueError:
            raise ConfigurationError(
                f"{self._masked(url)!r}: no file system {protocol!r}"
            ) from None
        except ImportError as exc:
            extra = _EXTRAS.get(self.protocol)
            hint = f": pip install 'doge-datagen[{extra}]'" if extra else ""
            raise ImportError(
                f"writing to {protocol}:// needs a package that is not installed ({exc}){hint}"
            ) from exc

    def _check_format(self, format: Optional[str]) -> str:
        """``format``, or the one of the object name's suffix."""
        suffix = PurePosixPath(self._path).suffix.lower()
        found = format or _SUFFIXES.get(suffix, "")
        if found not in FORMATS:
            raise ConfigurationError(
                f"{self._masked(self.url)!r}: give format=jsonl, csv or parquet (no format "
                f"from the suffix {suffix!r})"
            )
        return found

    def _masked(self, text: str) -> str:
        return mask_text(text, self._secrets)

    @property
    def buffered(self) -> int:
        """Rows collected and not published yet."""
        return len(self._rows) + (self._part.rows if self._part is not None else 0)

    # -- the hot path ------------------------------------------------------------------------

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        if not self._is_open:
            self.open()
        rows = self._rows
        rows.append(self.value_function(timestamp, subject, transition))
        if len(rows) >= self.buffer_rows:
            self._write_rows()

    # -- opening and closing -----------------------------------------------------------------

    def if_exists(self, mode: str) -> None:
        """The next run's way with an object already where it writes: ``"replace"`` writes
        over it (what the sink always does), ``"fail"`` refuses to open; ``"append"`` is
        refused: an object is published whole, so a new run writes its objects afresh."""
        if mode == "append":
            raise ConfigurationError(
                f"{self.name}: objects are published whole, so a run writes them afresh and "
                "cannot append to them: use if_exists='replace' or 'fail'"
            )
        self._if_exists = mode

    def _open(self) -> None:
        self._rows = []
        self.parts = []
        if self._fs is None:
            try:
                self._fs = self._fs_class(**self.storage_options)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(
                    f"{self.name}: the file system refuses its settings: {self._masked(str(exc))}"
                ) from exc
        choice, self._if_exists = self._if_exists, None
        if choice == "fail":
            first = self._target()
            try:
                found = self._fs.exists(first)
            except OSError as exc:
                raise ConfigurationError(
                    f"{self.name}: cannot look for {self._masked(first)!r}: {exc}"
                ) from exc
            if found:
                raise ConfigurationError(
                    f"{self.name}: {self._masked(first)!r} exists, and if_exists is 'fail': "
                    "give another path, or replace"
                )
        if self._local():  # made when the run starts: a directory that cannot be is named now
            directory = os.path.dirname(self._base()) or "."
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(
                    f"{self.name}: cannot create directory {directory!r}: {exc.strerror}"
                ) from exc

    def _close(self) -> None:
        try:
            self._write_rows()
            if self.part_size is None or (self._part is not None and self._part.rows):
                self._publish()
        except _LocalError as exc:  # an empty part that could not even be made
            raise self.delivery_error(exc.what, 0, exc.__cause__) from exc.__cause__
        finally:
            self._discard()

    def flush(self) -> None:
        """Move the rows kept in memory into the local part file (publishes nothing)."""
        self._write_rows()

    # -- names -------------------------------------------------------------------------------

    def _base(self) -> str:
        shard = shards.current()
        if shard is None:
            return self._path
        return str(shards.part_path(PurePosixPath(self._path), shard))

    def _target(self) -> str:
        base = self._base()
        if self.part_size is None:
            return base
        path = PurePosixPath(base)
        stem = path.name[: -len(path.suffix)] if path.suffix else path.name
        return str(path.with_name(f"{stem}-part-{self._next_part:05d}{path.suffix}"))

    def _local(self) -> bool:
        from fsspec.implementations.local import LocalFileSystem

        return isinstance(self._fs, LocalFileSystem)

    # -- parts -------------------------------------------------------------------------------

    def _start_part(self) -> _Part:
        target = self._target()
        if self._local():
            directory: Optional[str] = os.path.dirname(target) or "."
            prefix = f".{os.path.basename(target)}."
        else:
            directory, prefix = None, "doge-part-"
        try:
            handle, local = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
        except OSError as exc:
            raise _LocalError("cannot create a local part file", exc) from exc
        part = _Part(local, os.fdopen(handle, "w+b"))
        self._part = part
        if self.part_size is None and self._published_once:
            self._carry_earlier(part, target)
        return part

    def _carry_earlier(self, part: _Part, target: str) -> None:
        """Opened again without parts: the object holds the earlier rows, then the new ones."""
        try:
            if not self._fs.exists(target):
                return
            with self._fs.open(target, "rb") as earlier:
                data = earlier.read()
        except OSError as exc:
            raise self.delivery_error(f"cannot read {target!r} to append to it", 0, exc) from exc
        if self.format == "parquet":
            pq = optional_import("pyarrow.parquet", "parquet", "The Parquet format")
            table = pq.read_table(io.BytesIO(data))
            if table.num_columns:
                self._schema = self._schema or table.schema
                self._parquet_write(part, table)
                part.rows = 0  # the earlier rows were counted by the run that wrote them
            return
        part.stream.write(data)
        part.size = len(data)

    def _publish(self, after: int = 0) -> None:
        """Publish the part being written (an empty one too, when there are no parts);
        ``after`` rows that were to follow it are counted as failed with it if it fails."""
        part = self._part or self._start_part()
        target = self._target()
        try:
            if self.format == "parquet":
                if part.writer is None:
                    # No row ever: a file with no columns, still a valid Parquet file.
                    pa = optional_import("pyarrow", "parquet", "The Parquet format")
                    self._parquet_writer(part, self._schema or pa.schema([]))
                part.writer.close()
            part.stream.close()
            if self._local():
                os.replace(part.local, target)
            else:
                self._fs.put_file(part.local, target)
                self._fs.invalidate_cache(target)
        except Exception as exc:
            self._part = None
            self._remove(part.local)
            raise self._lost(part, target, exc, after) from exc
        self._part = None
        self._remove(part.local)
        self.delivered += part.rows
        self.parts.append(target)
        self._next_part += 1
        self._published_once = True
        _LOGGER.debug("%s: published %s (%d rows)", self.name, target, part.rows)

    def _lost(self, part: _Part, target: str, exc: BaseException, after: int) -> DeliveryError:
        reason = self._masked(f"{type(exc).__name__}: {exc}")
        what = f"cannot publish {target!r} ({part.rows} rows"
        what += f", and {after} rows after them)" if after else ")"
        return self.delivery_error(what, part.rows + after, reason)

    def _discard(self) -> None:
        part, self._part = self._part, None
        if part is not None:
            self.failed += part.rows
            self._drop(part)

    def _drop(self, part: _Part) -> None:
        """Close and remove a part's local file that will not be published."""
        try:
            part.stream.close()  # flushes what it buffered: may fail on a full disk
        except OSError:
            _LOGGER.debug("%s: closing a dropped part failed", self.name, exc_info=True)
        self._remove(part.local)

    @staticmethod
    def _remove(path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    # -- writing rows ------------------------------------------------------------------------

    def _write_rows(self) -> None:
        rows = self._rows
        if not rows:
            return
        self._rows = []
        self._unwritten = len(rows)
        try:
            if self.format == "parquet":
                self._write_parquet(rows)
            else:
                self._write_lines(rows)
        except _LocalError as exc:
            # The local part is unusable: its rows and the batch's unwritten ones are lost.
            part, self._part = self._part, None
            lost = self._unwritten + (part.rows if part is not None else 0)
            if part is not None:
                self._drop(part)
            raise self.delivery_error(exc.what, lost, exc.__cause__) from exc.__cause__

    def _lines(self, rows: List[Any]) -> List[bytes]:
        if self.format == "jsonl":
            encode = self._encode
            try:
                return [(encode(row) + "\n").encode("utf-8") for row in rows]
            except (TypeError, ValueError) as exc:
                self.failed += len(rows)
                raise RecordError(f"{self.name}: a row is not JSON: {exc}") from exc
        columns = self._columns
        if columns is None:
            first = rows[0]
            if not isinstance(first, Mapping) or not first:
                self.failed += len(rows)
                raise RecordError(f"{self.name}: value_function must return a non-empty dict")
            columns = self._columns = tuple(first)
        lines = []
        for row in rows:
            if not isinstance(row, Mapping) or not set(row) <= set(columns):
                self.failed += len(rows)
                extra = sorted(set(row) - set(columns)) if isinstance(row, Mapping) else row
                raise RecordError(
                    f"{self.name}: {extra!r} is not among the CSV columns {', '.join(columns)}"
                )
            lines.append(_csv_line([row.get(c, "") for c in columns]))
        return lines

    def _write_lines(self, rows: List[Any]) -> None:
        lines = self._lines(rows)
        part = self._part or self._begin_lines()
        limit = self.part_size
        if limit is None:
            self._write_chunk(part, lines)
            return
        start, size = 0, part.size
        for end, line in enumerate(lines):
            if size + len(line) > limit and (part.rows or end > start):
                self._write_chunk(part, lines[start:end])
                self._unwritten = len(lines) - end
                # If the part is lost, the rows after it in this batch are lost with it:
                # the error counts them all, and nothing of the batch is left to fail later.
                self._publish(after=len(lines) - end)
                part = self._begin_lines()
                start, size = end, part.size
            size += len(line)
        self._write_chunk(part, lines[start:])

    def _begin_lines(self) -> _Part:
        part = self._start_part()
        if self.format == "csv" and part.size == 0:
            assert self._columns is not None
            header = _csv_line(list(self._columns))
            self._raw_write(part, header)
        return part

    def _write_chunk(self, part: _Part, lines: List[bytes]) -> None:
        if not lines:
            return
        self._raw_write(part, b"".join(lines))
        part.rows += len(lines)
        self._unwritten -= len(lines)

    def _raw_write(self, part: _Part, data: bytes) -> None:
        try:
            part.stream.write(data)
        except OSError as exc:
            raise _LocalError("cannot write the local part file", exc) from exc
        part.size += len(data)

    # -- Parquet -----------------------------------------------------------------------------

    def _write_parquet(self, rows: List[Any]) -> None:
        pa = optional_import("pyarrow", "parquet", "The Parquet format")
        try:
            table = pa.Table.from_pylist(rows, schema=self._schema)
            if self._schema is not None and set().union(*rows) - set(self._schema.names):
                raise ValueError(
                    f"keys {sorted(set().union(*rows) - set(self._schema.names))} are not columns"
                )
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            self.failed += len(rows)
            raise RecordError(
                f"{self.name}: {len(rows)} rows do not fit the columns: {exc}"
            ) from exc
        if self._schema is None:
            self._schema = table.schema
        part = self._part or self._start_part()
        self._parquet_write(part, table)
        if self.part_size is not None and part.size >= self.part_size:
            self._publish()

    def _parquet_writer(self, part: _Part, schema: Any = None) -> Any:
        if part.writer is None:
            pq = optional_import("pyarrow.parquet", "parquet", "The Parquet format")
            part.writer = pq.ParquetWriter(
                part.stream, schema or self._schema, compression=self.compression
            )
        return part.writer

    def _parquet_write(self, part: _Part, table: Any) -> None:
        writer = self._parquet_writer(part)
        try:
            writer.write_table(table, row_group_size=max(len(table), 1))
        except OSError as exc:
            raise _LocalError("cannot write the local part file", exc) from exc
        part.rows += len(table)
        self._unwritten = 0
        part.size = part.stream.tell()

    def __repr__(self) -> str:
        state = "open" if self._is_open else "closed"
        return (
            f"<ObjectSink {self.name!r} {state} delivered={self.delivered} "
            f"failed={self.failed} parts={len(self.parts)}>"
        )


def _csv_line(values: List[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode("utf-8")


def storage_options_from_text(options: Dict[str, str]) -> Dict[str, Any]:
    """Settings given as text (a URL's query): JSON values (numbers, true, objects) are
    decoded, anything else is kept as text."""
    decoded: Dict[str, Any] = {}
    for key, text in options.items():
        try:
            decoded[key] = json.loads(text)
        except ValueError:
            decoded[key] = text
    return decoded
