"""Sinks that write one line per event to a file: JSON Lines or CSV.

``value_function(timestamp, subject, transition)`` turns an event into a dict. A JSON Lines
sink writes it as one JSON document per line; a CSV sink writes its values under a header
taken from ``fieldnames`` or from the first row's keys. Lines are buffered in memory and
handed to the file ``buffer_lines`` at a time; :meth:`FileSink.close` writes the rest and
closes the file. The file is opened by :meth:`FileSink.open` (when a run starts), never when
the sink is created: building a model leaves its files as they were.
"""

import codecs
import csv
import io
import json
import logging
import os
from collections.abc import Sequence as SequenceABC
from operator import itemgetter
from pathlib import Path
from typing import (
    Any,
    BinaryIO,
    Callable,
    Dict,
    FrozenSet,
    List,
    Mapping,
    Optional,
    Sequence,
    TextIO,
    Tuple,
    Union,
    cast,
)

from doge_datagen.core import shards
from doge_datagen.core.checks import check_positive_count
from doge_datagen.core.types import Transition
from doge_datagen.errors import ConfigurationError, RecordError
from doge_datagen.sinks._json import (
    ENCODE_ERRORS,
    CLines,
    Collector,
    csv_buffer,
    line_buffer,
    lines_of,
)
from doge_datagen.sinks.base import DEFAULT_FLUSH_INTERVAL, Sink, check_flush_interval
from doge_datagen.sinks.record import Record, literal_values

__all__ = ["FORMATS", "FileSink", "FileSinkFactory"]

_LOGGER = logging.getLogger(__name__)

ValueFunction = Callable[[int, Any, Transition], Any]
PathOrStream = Union[str, "os.PathLike[str]", TextIO]

#: The supported formats and the file suffix each one gets from :class:`FileSinkFactory`.
FORMATS = {"jsonl": ".jsonl", "csv": ".csv"}
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_MODES = ("w", "a", "x")
DEFAULT_BUFFER_LINES = 1024


def _csv_text(rows: List[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _ascii_compatible(encoding: str) -> bool:
    """Whether ``encoding`` writes ASCII text as its ASCII bytes (UTF-8, Latin-1, ...)."""
    sample = "".join(map(chr, range(128)))
    try:
        return sample.encode(encoding) == sample.encode("ascii")
    except (UnicodeError, LookupError):
        return False


def _check_fieldnames(fieldnames: Any) -> Tuple[str, ...]:
    if isinstance(fieldnames, str) or not fieldnames:
        raise ConfigurationError(
            f"fieldnames must be a non-empty list of names, got {fieldnames!r}"
        )
    names = tuple(fieldnames)
    for field in names:
        if not isinstance(field, str):
            raise ConfigurationError(f"field names must be strings, got {field!r}")
    if len(set(names)) != len(names):
        raise ConfigurationError(f"fieldnames has duplicates: {names!r}")
    return names


def _format_for(path: Any, format: Optional[str]) -> str:
    if format is None:
        suffix = Path(path).suffix.lower() if isinstance(path, (str, os.PathLike)) else ""
        return _SUFFIXES.get(suffix, "jsonl")
    if format not in FORMATS:
        raise ConfigurationError(
            f"format must be one of {', '.join(sorted(FORMATS))}, got {format!r}"
        )
    return format


def _check_value_function(value_function: Optional[ValueFunction], record: Any) -> ValueFunction:
    """The value function, or the :class:`~doge_datagen.sinks.record.Record` of ``record``."""
    if record is not None:
        if value_function is not None:
            raise ConfigurationError("give a value_function or record=, not both")
        value_function = record if isinstance(record, Record) else Record(record)
    if value_function is None:
        raise ConfigurationError("value_function must be callable, got None (or give record=)")
    if not callable(value_function):
        raise ConfigurationError(f"value_function must be callable, got {value_function!r}")
    return value_function


def _check_options(
    format: str,
    mode: str,
    buffer_lines: int,
    encoding: str,
    dumps: Optional[Callable[[Any], str]],
    fieldnames: Optional[Sequence[str]],
) -> Optional[Tuple[str, ...]]:
    """The settings of a sink of ``format`` checked; the CSV columns given, if any."""
    if mode not in _MODES:
        raise ConfigurationError(f"mode must be one of {', '.join(_MODES)}, got {mode!r}")
    check_positive_count("buffer_lines", buffer_lines)
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise ConfigurationError(f"unknown encoding {encoding!r}") from None
    if dumps is not None and not callable(dumps):
        raise ConfigurationError(f"dumps must be callable, got {dumps!r}")
    if format != "csv" and fieldnames is not None:
        raise ConfigurationError("fieldnames apply to the csv format only")
    names = _check_fieldnames(fieldnames) if fieldnames is not None else None
    if format != "jsonl" and dumps is not None:
        raise ConfigurationError("dumps applies to the jsonl format only")
    return names


class FileSink(Sink):
    """Writes every event as a line of a JSON Lines or CSV file.

    :param path: the file to write, or an open text stream (which is flushed, not closed).
    :param value_function: ``(timestamp, subject, transition) -> dict``, called once per event.
        One written as ``return {"key": ..., ...}`` (a dict display of constant keys) is run
        without its dict: its values are written as a record's, the same text (see
        :func:`~doge_datagen.sinks.record.literal_values`).
    :param record: instead of ``value_function``: the record's fields, a
        :class:`~doge_datagen.sinks.record.Record` or what it takes (``["timestamp",
        "user_id", ("event", "trigger")]``). The sink then writes each line from the values,
        through a template made once, without a dict per event; the text is the same. A
        ``Record`` given as ``value_function`` does the same.
    :param format: ``"jsonl"`` or ``"csv"``; by default ``"csv"`` for a ``.csv`` path and
        ``"jsonl"`` otherwise.
    :param mode: how the first :meth:`open` opens the file: ``"w"`` truncates it, ``"a"``
        appends to it, ``"x"`` refuses an existing file. After :meth:`close` the sink may be
        opened again (a second run): it then appends.
    :param fieldnames: CSV only: the columns, in order. By default the first row's keys. A
        row with a key outside them is a :class:`~doge_datagen.errors.RecordError`; a missing
        key is written as an empty field. A header is written unless the file already had
        content.
    :param dumps: JSON Lines only: turns a value into one line of JSON. It must not produce
        line breaks. By default each line is ``json.dumps(value)``'s text, written by a C
        encoder into one buffer per batch (``json.dumps`` itself where the C extension is not
        built; the text is the same).
    :param encoding: the file's encoding.
    :param buffer_lines: how many lines are kept in memory before they go to the file.
    :param flush_interval: and for how long at most, in seconds (during a run; ``None`` for
        no time bound): a slow paced run's lines reach the file within about this long.
    :param name: how the run summary names this sink; ``<format>:<path>`` by default.

    ``delivered`` (also ``written``) counts the lines (rows, not the CSV header) written to
    the file since :meth:`open`, ``buffered`` those still in memory, ``failed`` those a write
    error lost (see :class:`~doge_datagen.errors.DeliveryError`). ``value_function`` must
    return a new dict for every event: values are kept until written.
    """

    def __init__(
        self,
        path: PathOrStream,
        value_function: Optional[ValueFunction] = None,
        format: Optional[str] = None,
        *,
        record: Any = None,
        mode: str = "w",
        fieldnames: Optional[Sequence[str]] = None,
        dumps: Optional[Callable[[Any], str]] = None,
        encoding: str = "utf-8",
        buffer_lines: int = DEFAULT_BUFFER_LINES,
        name: Optional[str] = None,
        flush_interval: Optional[float] = DEFAULT_FLUSH_INTERVAL,
        _make_directory: bool = False,
    ) -> None:
        value_function = _check_value_function(value_function, record)
        self.format = _format_for(path, format)
        names = _check_options(self.format, mode, buffer_lines, encoding, dumps, fieldnames)
        self.value_function = value_function
        self.mode = mode
        self.encoding = encoding
        self.buffer_lines = buffer_lines
        self.flush_interval = check_flush_interval(flush_interval)
        shown = self._check_path(path, mode, _make_directory)
        self.name = name or f"{self.format}:{shown}"
        self._items: List[Any] = []
        self._fieldnames: Optional[Tuple[str, ...]] = None
        self._field_set: FrozenSet[str] = frozenset()
        self._getter: Optional[Callable[[Mapping[str, Any]], Tuple[Any, ...]]] = None
        self._needs_header = False
        names = self._set_up_writing(value_function, dumps, encoding, names)
        self._raw: Optional[BinaryIO] = None
        self._next_mode = mode
        # A resumed run's offset (resume_at): the next open cuts the file back to it.
        self._resume_offset: Optional[int] = None
        # The run's if_exists (append, replace, fail), for the next open only; and whether
        # that open found data in the file and added to it (None: a stream, not known).
        self._if_exists: Optional[str] = None
        #: Whether the last open found data in the file and added to it.
        self.appended: Optional[bool] = None
        self._make_directory = _make_directory
        if names is not None:
            self._fieldnames_from(names)

    def _check_path(self, path: PathOrStream, mode: str, make_directory: bool) -> str:
        """``path``: a text stream, or a file path checked (``mode`` ``"x"``, its directory);
        the name the sink shows for it."""
        self._stream: Optional[TextIO] = None
        if hasattr(path, "write"):
            self._stream = path  # type: ignore[assignment]
            self.path: Optional[Path] = None
            return str(getattr(path, "name", None) or f"<{type(path).__name__}>")
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigurationError(f"path must be a file path or a text stream, got {path!r}")
        self.path = Path(path)
        shown = str(self.path)
        # Checked now, when they are cheap to check and clear to report; opening may
        # still fail later, and says so.
        if mode == "x" and self.path.exists():
            raise ConfigurationError(f"{shown!r} exists and mode 'x' refuses to replace it")
        if not self.path.parent.is_dir() and not make_directory:
            raise ConfigurationError(
                f"cannot write {shown!r}: no directory {str(self.path.parent)!r}"
            )
        return shown

    def _set_up_writing(
        self,
        value_function: ValueFunction,
        dumps: Optional[Callable[[Any], str]],
        encoding: str,
        names: Optional[Tuple[str, ...]],
    ) -> Optional[Tuple[str, ...]]:
        """How lines are encoded and buffered, and the sink's collect(); the CSV columns (a
        record's names when none are given)."""
        # The default JSON Lines go through one C buffer (json.dumps's text), a record's
        # values through its template, CSV rows through another; a dumps of the caller's
        # through the list of items. Each way has its own collect(): while the sink is open,
        # where the C extension is built, a C one without a Python frame (_fast says which).
        self._closed_collect: Optional[Callable[[int, Any, Transition], None]] = None
        self._fast: Optional[Tuple[Callable[..., Any], int]] = None
        # A record's names and values; or a value function's own, when it is one dict
        # display of constant keys: its lines are then written as a record's, with no dict.
        template = (
            (value_function.names, value_function.values)
            if isinstance(value_function, Record)
            else literal_values(value_function)
            if dumps is None
            else None
        )
        self._lines: Any = None
        self._values: Optional[Callable[[int, Any, Transition], Tuple[Any, ...]]] = None
        self._recode = False
        self._header_at_open = True
        if self.format == "jsonl":
            self._encode: Callable[[Any], Any] = dumps or json.JSONEncoder().encode
            if dumps is None:
                self._recode = not _ascii_compatible(encoding)
                if template is not None:
                    self._lines = line_buffer(template[0])
                    self._append: Callable[[Any], int] = self._lines.append_values
                    self._values = template[1]
                    self._closed_collect = self._collect_values
                    self._fast = (template[1], 1)
                else:
                    self._lines = line_buffer()
                    self._append = self._lines.append
                    self._closed_collect = self._collect_lines
                    self._fast = (value_function, 0)
        else:
            # CSV rows go into a C buffer too (csv.writer's text; its own for other rows).
            self._encode = self._csv_values
            self._recode = codecs.lookup(encoding).name != "utf-8"
            self._lines = csv_buffer()
            self._append = self._lines.append_row
            if template is not None and names in (None, template[0]):
                # a dict's columns, as from its first row: the header with the first row
                self._header_at_open = names is not None or isinstance(value_function, Record)
                names = template[0]
                self._values = template[1]
                self._closed_collect = self._collect_row_values
                self._fast = (template[1], 2)
            else:
                self._closed_collect = self._collect_row
                self._fast = (value_function, 3)  # once the columns are known
        if self._closed_collect is not None:
            self.collect = self._closed_collect  # type: ignore[method-assign]
        return names

    # -- counters ----------------------------------------------------------------------------

    @property
    def written(self) -> int:
        """Lines handed to the file since :meth:`open` (the same as ``delivered``)."""
        return self.delivered

    @property
    def buffered(self) -> int:
        """Lines collected but not written to the file yet."""
        lines = self._lines
        return len(self._items) if lines is None else len(lines)

    # -- the hot path ------------------------------------------------------------------------

    def _collect_lines(self, timestamp: int, subject: Any, transition: Transition) -> None:
        """JSON Lines of the value function's dicts, into the C buffer."""
        if not self._is_open:
            self.open()  # used without a run (or a with block): open on the first event
        value = self.value_function(timestamp, subject, transition)
        try:
            held = self._append(value)
        except ENCODE_ERRORS as exc:
            raise RecordError(f"{self.name}: cannot write {value!r}: {exc}") from exc
        if held >= self.buffer_lines:
            self._drain()

    def _collect_values(self, timestamp: int, subject: Any, transition: Transition) -> None:
        """JSON Lines of a record's values, through its template: no dict per event."""
        if not self._is_open:
            self.open()
        values = self._values(timestamp, subject, transition)  # type: ignore[misc]
        try:
            held = self._append(values)
        except ENCODE_ERRORS as exc:
            row = dict(zip(self._lines.names, values))
            raise RecordError(f"{self.name}: cannot write {row!r}: {exc}") from exc
        if held >= self.buffer_lines:
            self._drain()

    def _collect_row(self, timestamp: int, subject: Any, transition: Transition) -> None:
        """A CSV row of the value function's dict."""
        if not self._is_open:
            self.open()
        row = self.value_function(timestamp, subject, transition)
        try:
            values = self._getter(row)  # type: ignore[misc]
            if len(row) != len(self._field_set):
                values = self._csv_values_slow(row)  # a key too many, or one missing
        except (KeyError, TypeError, AttributeError, IndexError):
            values = self._csv_values(row)  # no header yet, or a row that is not a dict
            if self.collect == self._collect_row:
                self._use_fast_collect()  # the columns are known now
        if self._append(values) >= self.buffer_lines:
            self._drain()

    def _collect_row_values(self, timestamp: int, subject: Any, transition: Transition) -> None:
        """A CSV row of a record's values, in its fields' order."""
        if not self._is_open:
            self.open()
        values = self._values(timestamp, subject, transition)  # type: ignore[misc]
        if self._append(values) >= self.buffer_lines:
            self._drain()

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        """One event as a line (each sink replaces this with the way of its format)."""
        if not self._is_open:
            self.open()  # used without a run (or a with block): open on the first event
        value = self.value_function(timestamp, subject, transition)
        try:
            item = self._encode(value)
        except RecordError:
            raise
        except (TypeError, ValueError) as exc:
            raise RecordError(f"{self.name}: cannot write {value!r}: {exc}") from exc
        items = self._items
        items.append(item)
        if len(items) >= self.buffer_lines:
            self._drain()

    # -- files -------------------------------------------------------------------------------

    def _open(self) -> None:
        mode = self._next_mode
        self._items = []
        if self._lines is not None:
            self._lines.clear()
        self._use_fast_collect()
        if self._stream is not None:
            self._needs_header = True
        else:
            self._open_file(mode)
            self._next_mode = "a"  # opened again after close(): append
        if self._fieldnames is not None and self._needs_header and self._header_at_open:
            try:
                self._write(self._header())  # a header even if no event ever comes
            except (OSError, ValueError) as exc:
                self._release()
                raise ConfigurationError(f"{self.name}: cannot write the header: {exc}") from exc
            self._needs_header = False

    def target(self) -> Optional[Path]:
        """The file a run writes: ``path``, or in a shard of a sharded run its own part,
        ``STEM-KKKKK-of-NNNNN.SUFFIX`` (:func:`doge_datagen.shards.part_path`)."""
        if self.path is None:
            return None
        shard = shards.current()
        return self.path if shard is None else shards.part_path(self.path, shard)

    def checkpoint_position(self) -> Optional[Dict[str, Any]]:
        """For a run's checkpoint: the lines so far written and synced to disk, and the
        file's byte offset after them (None for a stream given in, which cannot go back)."""
        if self._raw is None or self._stream is not None:
            return None
        self.flush()
        raw = self._raw
        try:
            os.fsync(raw.fileno())
            offset = raw.tell()
        except OSError as exc:
            raise ConfigurationError(f"{self.name}: cannot sync for a checkpoint: {exc}") from exc
        return {"path": str(self.target() or self.path), "offset": offset}

    def resume_at(self, position: Dict[str, Any]) -> None:
        """A resumed run: the next :meth:`open` cuts the file back to the checkpoint's
        offset and appends from there, so that the lines written after the checkpoint, and
        lost with it, are written once."""
        self._resume_offset = int(position["offset"])

    def if_exists(self, mode: str) -> None:
        """The next run's way with a file that holds data: ``"append"`` writes after it,
        ``"replace"`` truncates it (the default, as the sink's ``mode="w"``), ``"fail"``
        refuses to open it."""
        self._if_exists = mode

    def _open_file(self, mode: str) -> None:
        assert self.path is not None
        choice, self._if_exists = self._if_exists, None
        target = self.target() or self.path
        try:
            held = os.path.getsize(target) > 0
        except OSError:  # missing (or unreadable: opening says so)
            held = False
        if self._resume_offset is None and choice is not None:
            if choice == "fail" and held:
                raise ConfigurationError(
                    f"{self.name}: {str(target)!r} exists and holds data, and if_exists is "
                    f"'fail': give another path, or append or replace"
                )
            mode = "a" if choice == "append" else "w"
        if self._resume_offset is not None:
            offset, self._resume_offset = self._resume_offset, None
            target = self.target() or self.path
            try:
                size = os.path.getsize(target)
                if size < offset:
                    raise ConfigurationError(
                        f"{self.name}: {str(target)!r} holds {size} bytes, fewer than the "
                        f"{offset} of the checkpoint: it is not the file the run wrote"
                    )
                os.truncate(target, offset)
            except OSError as exc:
                raise ConfigurationError(
                    f"{self.name}: cannot go back to the checkpoint in {str(target)!r}: "
                    f"{exc.strerror}"
                ) from exc
            mode = "a"
        if self._make_directory:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot create directory {str(self.path.parent)!r}: {exc.strerror}"
                ) from exc
        try:
            # Unbuffered: the sink's own buffer is the only one, so what it counts as written
            # has reached the operating system.
            raw = cast(BinaryIO, open(self.target() or self.path, mode + "b", buffering=0))
        except OSError as exc:
            raise ConfigurationError(
                f"{self.name}: cannot open {str(self.path)!r} for writing: {exc.strerror}"
            ) from exc
        try:
            empty = not (raw.seekable() and raw.tell() > 0)
        except OSError:
            empty = True
        self._raw = raw
        self.appended = held and mode == "a"
        self._needs_header = empty  # a CSV header goes only into a file without content
        _LOGGER.debug("%s: opened with mode %r", self.name, mode)

    def _write(self, text: Union[str, bytes]) -> None:
        """Write ``text``, or ``bytes`` already in the file's encoding."""
        if self._stream is not None:
            self._stream.write(text if isinstance(text, str) else text.decode(self.encoding))
            return
        raw = self._raw
        assert raw is not None, "the sink is not open"
        view = memoryview(text if isinstance(text, bytes) else text.encode(self.encoding))
        while view:
            count = raw.write(view)
            if not count:
                raise BlockingIOError(f"no progress writing to {str(self.path)!r}")
            view = view[count:]

    def _position(self) -> Optional[int]:
        """Where the next batch starts in the file, if the file can be cut back to it."""
        raw = self._raw
        if raw is None:
            return None
        try:
            return raw.tell() if raw.seekable() else None
        except OSError:
            return None

    def _cut_back(self, start: Optional[int]) -> None:
        """A batch failed half-way (a full disk takes part of it): remove the part, so that
        the file holds exactly the ``delivered`` lines, each complete, and the batch's lines
        are all counted as failed, none both failed and in the file."""
        if start is None or self._raw is None:
            return
        try:
            self._raw.truncate(start)
            self._raw.seek(start)
        except OSError:  # pragma: no cover - the file cannot even be truncated
            _LOGGER.warning("%s: could not remove a partly written batch", self.name)

    def _header(self) -> str:
        if self._needs_header and self._fieldnames is not None:
            return _csv_text([self._fieldnames])
        return ""

    def _drain(self) -> None:
        """Write the buffered lines to the file."""
        if self._lines is not None:
            self._drain_lines()
            return
        items = self._items
        if not items:
            return
        self._items = []
        header = self._header()
        start = self._position()
        with self.translate_errors(
            len(items),
            f"{len(items)} lines could not be written",
            delivery=(OSError, ValueError, TypeError),
            pending=items,
        ):
            if self.format == "jsonl":
                body = "\n".join(items) + "\n"
            else:
                body = _csv_text(items)
            try:
                self._write(header + body)
            except OSError:
                self._cut_back(start)
                raise
        if header:
            self._needs_header = False
        self.delivered += len(items)

    def _drain_lines(self) -> None:
        """Write the C buffer's lines (UTF-8, ASCII for JSON) to the file."""
        lines = self._lines
        count = len(lines)
        if not count:
            return
        body = lines.take()
        header = self._header()
        start = self._position()
        with self.translate_errors(
            count,
            f"{count} lines could not be written",
            delivery=(OSError, ValueError, TypeError),
            pending=_Pending(body),
        ):
            if self._recode:
                body = body.decode("utf-8").encode(self.encoding)
            if header:
                body = header.encode(self.encoding) + body
            try:
                self._write(body)
            except OSError:
                self._cut_back(start)
                raise
        if header:
            self._needs_header = False
        self.delivered += count

    def flush(self) -> None:
        """Write the buffered lines now (and flush a stream given in)."""
        self._drain()
        if self._stream is not None:
            self._stream.flush()

    def _close(self) -> None:
        """Write the buffered lines and close the file (a stream given in is only flushed)."""
        if self._closed_collect is not None:
            self.collect = self._closed_collect  # type: ignore[method-assign,assignment]
        try:
            self.flush()
        finally:
            self._release()

    def _use_fast_collect(self) -> None:
        """While open, collect() is the C collector where it is built: the value function
        called and its value written into the buffer without a Python frame between."""
        if self._fast is None or Collector is None or not isinstance(self._lines, CLines):
            return
        function, kind = self._fast
        if kind == 3 and self._fieldnames is None:
            return  # CSV rows of dicts: the first row gives the columns, in Python
        self.collect = Collector(  # type: ignore[method-assign]
            function,
            self._lines,
            kind,
            self.buffer_lines,
            self._drain,
            self._collect_failed,
            self._fieldnames,
            self._csv_values,
        )

    def _collect_failed(self, value: Any, error: BaseException) -> None:
        """The C collector could not write ``value``: the error collect() raises."""
        if not isinstance(error, ENCODE_ERRORS):
            raise error
        if self._values is not None and self.format == "jsonl":
            value = dict(zip(self._lines.names, value))
        raise RecordError(f"{self.name}: cannot write {value!r}: {error}") from error

    def _release(self) -> None:
        raw = self._raw
        if raw is not None:
            self._raw = None
            raw.close()
            _LOGGER.debug("%s: closed after %d lines", self.name, self.delivered)

    # -- CSV rows ----------------------------------------------------------------------------

    def _fieldnames_from(self, names: Tuple[str, ...]) -> None:
        self._fieldnames = names
        self._field_set = frozenset(names)
        self._getter = (lambda row: (row[names[0]],)) if len(names) == 1 else itemgetter(*names)

    @property
    def fieldnames(self) -> Optional[Tuple[str, ...]]:
        """CSV only: the columns (``None`` until known)."""
        return self._fieldnames

    def _csv_values(self, row: Any) -> Tuple[Any, ...]:
        getter = self._getter
        if getter is None:
            if not isinstance(row, Mapping):
                raise RecordError(
                    f"{self.name}: value_function must return a dict, got {type(row).__name__}"
                )
            try:
                names = _check_fieldnames(list(row.keys()))
            except ConfigurationError as exc:
                raise RecordError(f"{self.name}: the first row cannot be a header: {exc}") from None
            self._fieldnames_from(names)
            getter = self._getter
        try:
            values = getter(row)  # type: ignore[misc]
            if len(row) == len(self._field_set):
                return values
        except (KeyError, TypeError, AttributeError):
            pass
        return self._csv_values_slow(row)

    def _csv_values_slow(self, row: Any) -> Tuple[Any, ...]:
        if not isinstance(row, Mapping):
            raise RecordError(
                f"{self.name}: value_function must return a dict, got {type(row).__name__}"
            )
        extra = [k for k in row if k not in self._field_set]
        if extra:
            raise RecordError(
                f"{self.name}: key {extra[0]!r} is not one of the CSV fields "
                f"{', '.join(self._fieldnames or ())}"
            )
        return tuple(row.get(k, "") for k in self._fieldnames or ())

    def __repr__(self) -> str:
        return f"FileSink({self.name!r}, written={self.written}, failed={self.failed})"


class _Pending(SequenceABC[str]):
    """The lines of a batch that could not be written, split only when an error needs them."""

    def __init__(self, body: bytes) -> None:
        self.body = body  # UTF-8
        self._lines: Optional[List[str]] = None

    def _split(self) -> List[str]:
        if self._lines is None:
            self._lines = lines_of(self.body.decode("utf-8", "surrogateescape"))
        return self._lines

    def __getitem__(self, index: Any) -> Any:
        return self._split()[index]

    def __len__(self) -> int:
        return len(self._split())


class FileSinkFactory:
    """Creates :class:`FileSink` objects writing files in one directory.

    :param directory: where the files go (created, if missing, when a sink opens); the
        current directory by default.
    :param format: the default format, ``"jsonl"`` or ``"csv"``.
    :param options: defaults for every sink (``mode``, ``encoding``, ``buffer_lines``, ...).
    """

    def __init__(
        self,
        directory: Union[str, "os.PathLike[str]", None] = None,
        format: str = "jsonl",
        **options: Any,
    ) -> None:
        self.directory = Path(directory) if directory is not None else Path(".")
        self.format = _format_for(None, format)
        self.options = options

    def create(
        self, name: str, value_function: ValueFunction, format: Optional[str] = None, **options: Any
    ) -> FileSink:
        """A sink writing ``<directory>/<name>``; the format's suffix is added to a name
        without one, and a name's ``.csv``/``.jsonl`` suffix picks the format if none is given.
        """
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"file name must be a non-empty string, got {name!r}")
        suffix = Path(name).suffix.lower()
        if format is None:
            format = _SUFFIXES.get(suffix, self.format)
        format = _format_for(None, format)
        filename = name if suffix else name + FORMATS[format]
        merged = {**self.options, **options}
        # The directory is created when the sink opens, not now.
        return FileSink(
            self.directory / filename, value_function, format, _make_directory=True, **merged
        )

    def __repr__(self) -> str:
        return f"FileSinkFactory({str(self.directory)!r}, format={self.format!r})"
