"""Change events: a sink that writes each subject's changes as Debezium-style envelopes.

:class:`ChangeEventSink` wraps any sink and passes it, instead of the run's events, the
changes they make to the subjects, as a consumer of a database's change-data-capture stream
sees them::

    {"before": {...} | null, "after": {...} | null, "op": "r" | "c" | "u" | "d",
     "ts_ms": 1700000000000, "key": 17,
     "source": {"model": ..., "population": ..., "shard": 0, "tick": 3}}

* ``r``: the snapshot of every subject the run starts with, before any event;
* ``c``: a subject that arrives during the run;
* ``u``: an event that changed the subject's attributes or its state;
* ``d``: an event that took the subject into a final state (one with no way out), after
  which it never changes again; ``before`` is its last row, ``after`` is null. With
  ``tombstones`` (a Kafka URL), a record with the key and no value follows it, so that a
  compacted topic forgets the key.

A row (``after``) is the subject's public attributes (``vars(subject)``, or its
``__slots__``, without names that start with ``_``) and its state under ``state``, as a new
dict: a shallow copy, so the stream keeps what the subject was at that change. The key is
the attribute named by ``key`` (``key=user_id`` in a URL), by default the subject's global
index. ``before`` of each change is ``after`` of the change before it with the same key,
which the sink knows because it keeps each live subject's last row: its memory grows with
the subjects alive, as a consumer's table would. An event that changes nothing is not a
change and writes nothing.

Why the snapshot and arrivals come from the run and not from events: a subject's first
event has already changed it when a sink sees the event, so its row as created exists only
when it is created. The engine calls the hooks in :attr:`Run.created
<doge_datagen.engine.Run.created>` right after it makes subjects; ``follow_run`` adds this
sink's. The sink must hear every transition (put it in each one's sinks), or it misses
changes. Without a run (events collected by hand, or the sink inside a wrapper that does not
pass ``follow_run`` on), a subject is announced with a ``c`` at its first event, its row as
that event left it, and no state is known to be final.

The wrapped sink receives ``collect(ts_ms, change, transition)`` with a :class:`Change` as
the subject; for ``r`` and ``c`` the transition is a stand-in (trigger ``snapshot`` or
``arrival``, from and to the initial state) that no model holds. A sink made from a URL with
``envelope=debezium`` writes ``change.envelope()`` and keys by ``change.key``.

Into JSON Lines (a :class:`~doge_datagen.sinks.file.FileSink` of :func:`envelope_row`, which a
``jsonl:`` URL with ``envelope=debezium`` makes), the sink writes the lines itself, the same
text: a dict per row, one per envelope and their encoding cost most of an event, and a change
needs none of them. Each key's last row is kept as its JSON text, which the next change's
``before`` is; a class with fixed public attributes (``__slots__``) has its row's text made
from a template of its names, its values read with one ``attrgetter`` (in C, from the slots)
and compared as a tuple; the C collector of ``_jsonlines.c`` writes the changes of such
subjects without a Python frame, this module's Python the others (snapshot, arrivals,
deletes, other classes). Such a row is kept as a ``Row`` of ``_jsonlines.c``: its values,
state and text in one block of memory, with the subject whose row it is and its key. An
event's cost is mostly memory that is not in the processor's cache (each subject's row is
read once in a while, and many thousands of rows are megabytes), so the C collector touches
little: a subject keyed by one of its names finds its own row by that value, without the
lookup of its key by its identity (``subject_id``, its address with the bits mixed:
addresses in a dict crowd a few of its slots), and a row of atoms is rewritten where it is.

Into a SQL sink's upsert mode whose mapper is :func:`change_row` (what ``mode=upsert`` on a
database URL makes), each change's row goes to the sink as it is, with whether it is a
``d``: a :class:`Change` and its ``source`` would be made only for the mapper to read the
row back out of it.
"""

import operator
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

from doge_datagen.core.types import Transition
from doge_datagen.errors import ConfigurationError, RecordError
from doge_datagen.sinks._json import ENCODE_ERRORS, CLines, line_buffer
from doge_datagen.sinks.base import Sink
from doge_datagen.sinks.file import FileSink

_CChanges: Any
_CRow: Any
_subject_id: Any
try:
    from doge_datagen.sinks._jsonlines import Changes as _CChanges
    from doge_datagen.sinks._jsonlines import Row as _CRow
    from doge_datagen.sinks._jsonlines import subject_id as _subject_id
except ImportError:  # the C extension was not built: envelopes as dicts
    _CChanges = _CRow = _subject_id = None

__all__ = ["ENVELOPES", "Change", "ChangeEventSink", "attributes"]

#: The values ``envelope=`` takes.
ENVELOPES = ("debezium",)

#: The row field that holds the subject's state.
STATE_FIELD = "state"


class Change:
    """One change of one subject: what the wrapped sink receives as the subject."""

    __slots__ = ("op", "before", "after", "key", "ts_ms", "source")

    def __init__(
        self,
        op: Optional[str],
        before: Optional[Dict[str, Any]],
        after: Optional[Dict[str, Any]],
        key: Any,
        ts_ms: int,
        source: Dict[str, Any],
    ) -> None:
        self.op = op
        self.before = before
        self.after = after
        self.key = key
        self.ts_ms = ts_ms
        self.source = source

    @property
    def row(self) -> Dict[str, Any]:
        """The subject's row: ``after``, or for a ``d`` the last row (``before``)."""
        return self.after if self.after is not None else self.before  # type: ignore[return-value]

    def envelope(self) -> Optional[Dict[str, Any]]:
        """The Debezium-style envelope as a dict; ``None`` for a tombstone (``op`` None)."""
        if self.op is None:
            return None
        return {
            "before": self.before,
            "after": self.after,
            "op": self.op,
            "ts_ms": self.ts_ms,
            "source": self.source,
            "key": self.key,
        }

    def __repr__(self) -> str:
        return f"<Change {self.op} key={self.key!r} ts_ms={self.ts_ms}>"


def attributes(subject: Any) -> Dict[str, Any]:
    """The subject's public attributes as a new dict (``__dict__`` and ``__slots__``)."""
    found = getattr(subject, "__dict__", None)
    row = {} if found is None else {k: v for k, v in found.items() if k[:1] != "_"}
    for cls in type(subject).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name[:1] != "_" and name != "__dict__" and hasattr(subject, name):
                row[name] = getattr(subject, name)
    return row


def _tick(run: Any, timestamp: int) -> int:
    """The tick of ``timestamp`` in ``run``, as a change's ``source`` gives it."""
    tick: int = round((timestamp - run.timestamp_start) / run.model.tick_ms)
    return tick


def _row_of_dict_subject(subject: Any) -> Dict[str, Any]:
    return {k: v for k, v in subject.__dict__.items() if k[:1] != "_"}


def _has_slots(cls: type) -> bool:
    return any(getattr(c, "__slots__", ()) for c in cls.__mro__ if c is not object)


def _slot_names(cls: type) -> Optional[Tuple[str, ...]]:
    """The public slots of a class without a ``__dict__`` slot, in their order; ``None``
    when its rows are not read from a fixed set of names."""
    if not _has_slots(cls):
        return None
    names: List[str] = []
    for c in reversed(cls.__mro__):
        for name in getattr(c, "__slots__", ()):
            if name == "__dict__":
                return None
            if name[:1] != "_" and name not in names:
                names.append(name)
    return tuple(names) or None


def _entry(subject: Any, key: Any, values: Any, state: str, text: bytes) -> Any:
    """A key's last row into JSON Lines: a ``Row`` of ``_jsonlines.c`` of a class's names
    (as the C collector keeps it: values, state, text, and whose row it is with its key),
    ``[row, state, text]`` of a row read as a dict."""
    if type(values) is dict:
        return [values, state, text]
    return _CRow(_subject_id(subject), key, values, state, text)


def _row_maker(cls: type) -> Callable[[Any], Dict[str, Any]]:
    """How rows are read from subjects of class ``cls``: for a slotted class without a
    ``__dict__``, every public slot in one ``attrgetter`` call (a slot left unset falls back
    to :func:`attributes`, which leaves it out)."""
    if not _has_slots(cls):
        return _row_of_dict_subject
    names: List[str] = []
    for c in reversed(cls.__mro__):
        for name in getattr(c, "__slots__", ()):
            if name == "__dict__":
                return attributes
            if name[:1] != "_" and name not in names:
                names.append(name)
    if not names:
        return attributes
    names_t = tuple(names)
    get = operator.attrgetter(*names_t)
    if cls.__dictoffset__:  # slots and a __dict__ (a slotted class over a plain base)

        def mixed(subject: Any) -> Dict[str, Any]:
            found = subject.__dict__
            if found:
                return attributes(subject)
            try:
                values = get(subject)
            except AttributeError:
                return attributes(subject)
            return dict(zip(names_t, values)) if len(names_t) > 1 else {names_t[0]: values}

        return mixed
    if len(names_t) == 1:
        only = names_t[0]

        def one(subject: Any) -> Dict[str, Any]:
            try:
                return {only: get(subject)}
            except AttributeError:
                return attributes(subject)

        return one

    def many(subject: Any) -> Dict[str, Any]:
        try:
            return dict(zip(names_t, get(subject)))
        except AttributeError:
            return attributes(subject)

    return many


class ChangeEventSink(Sink):
    """Passes ``inner`` each subject's changes as :class:`Change` objects (see the module).

    :param inner: the sink that writes them (its mapper reads a :class:`Change`).
    :param key: the attribute that keys a subject; ``None``: its global index.
    :param name: how summaries name the sink; the inner sink's name by default.
    :param tombstones: pass on, after each ``d``, a :class:`Change` whose ``op`` is ``None``
        (its envelope is ``None``: a Kafka record with the key and no value).
    """

    def __init__(
        self,
        inner: Any,
        key: Optional[str] = None,
        name: Optional[str] = None,
        tombstones: bool = False,
    ) -> None:
        if not callable(getattr(inner, "collect", None)):
            raise ConfigurationError(f"the inner sink must have collect(), got {inner!r}")
        if key is not None and (not isinstance(key, str) or not key):
            raise ConfigurationError(f"key must name an attribute of the subjects, got {key!r}")
        self.inner = inner
        self.key = key
        self.tombstones = bool(tombstones)
        #: Tombstones passed on since :meth:`open`.
        self.tombstones_written = 0
        self.name = name or str(getattr(inner, "name", None) or type(inner).__name__)
        self._run: Any = None
        self._finals: FrozenSet[str] = frozenset()
        # id(subject) -> key, for the subjects alive (into JSON Lines: subject_id(subject),
        # as the C collector keys them)
        self._keys: Dict[int, Any] = {}
        # key -> last row (into JSON Lines: its entry, see _entry)
        self._last: Dict[Any, Any] = {}
        self._rows: Dict[type, Callable[[Any], Dict[str, Any]]] = {}
        self._counted = 0
        self._source_at: Any = None
        self._last_source: Dict[str, Any] = {}
        self._changes: Dict[str, int] = {"r": 0, "c": 0, "u": 0, "d": 0}
        # JSON Lines written here (see the module): the file sink's buffer, the C collector
        # and the u lines it had written when last counted, each class's reader.
        self._text: Any = None
        self._fast: Any = None
        self._fast_counted = 0
        self._readers: Dict[type, Any] = {}
        self._c_readers: Dict[type, Tuple[Any, Any, bool, int]] = {}
        self._source_text_at: Any = None
        self._source_text = b""
        self._source_head: Tuple[Any, bytes] = (None, b"")  # (run, text before the tick)
        # Into a SQL sink's upsert mode with change_row as its mapper: its collector of rows
        # (see _rows_into_table).
        self._rows_into: Any = None

    @property
    def changes(self) -> Dict[str, int]:
        """Changes passed on since :meth:`open`, by op."""
        fast = self._fast
        if fast is not None and fast.updates != self._fast_counted:
            self._changes["u"] += fast.updates - self._fast_counted
            self._fast_counted = fast.updates
        return self._changes

    @changes.setter
    def changes(self, value: Dict[str, int]) -> None:
        self._changes = value

    # -- counts ------------------------------------------------------------------------------

    @property
    def delivered(self) -> int:  # type: ignore[override]
        return int(getattr(self.inner, "delivered", 0) or 0)

    @property
    def failed(self) -> int:
        return int(getattr(self.inner, "failed", 0) or 0)

    @failed.setter
    def failed(self, value: int) -> None:  # the inner sink counts its own
        pass

    @property
    def buffered(self) -> int:
        return int(getattr(self.inner, "buffered", 0) or 0)

    def extra_counts(self) -> Dict[str, int]:
        """The changes written, by op, for the run summary."""
        counts = {f"op_{op}": n for op, n in self.changes.items()}
        if self.tombstones:
            counts["tombstones"] = self.tombstones_written
        return counts

    def _reset_counts(self) -> None:
        self.changes = {"r": 0, "c": 0, "u": 0, "d": 0}
        self.tombstones_written = 0

    # -- the run -----------------------------------------------------------------------------

    def follow_run(self, run: Any) -> None:
        """Called by the engine before a run opens its sinks: the snapshot and the arrivals
        come from the run's hook, the final states from its model."""
        self._run = run
        self._set_model(run.model)
        run.created.append(self._created)
        follow = getattr(self.inner, "follow_run", None)
        if callable(follow):
            follow(run)

    def _set_model(self, model: Any) -> None:
        leaving = {t.from_state for t in model.transitions}
        self._finals = frozenset(s for s in model.states if s not in leaving)
        initial = model.initial_state
        self._made = {
            "r": Transition("snapshot", initial, initial, 0.0),
            "c": Transition("arrival", initial, initial, 0.0),
        }

    def _source(self, timestamp: int) -> Dict[str, Any]:
        """The ``source`` block, one dict shared by the changes of one timestamp."""
        if timestamp == self._source_at:
            return self._last_source
        self._source_at = timestamp
        self._last_source = source = self._make_source(timestamp)
        return source

    def _make_source(self, timestamp: int) -> Dict[str, Any]:
        run = self._run
        if run is None:
            return {"model": None, "population": None, "shard": 0, "tick": None}
        model = run.model
        return {
            "model": getattr(model, "name", None),
            "population": getattr(model, "population", None),
            "shard": run.arrivals_shard[0],
            "tick": _tick(run, timestamp),
        }

    def _row(self, subject: Any, state: str) -> Dict[str, Any]:
        cls = type(subject)
        make = self._rows.get(cls)
        if make is None:
            make = self._rows[cls] = _row_maker(cls)
        row = make(subject)
        if STATE_FIELD in row:
            raise RecordError(
                f"{self.name}: a subject's attribute {STATE_FIELD!r} clashes with the row's "
                f"state field: {subject!r}"
            )
        row[STATE_FIELD] = state
        return row

    def _key_of(self, subject: Any, row: Dict[str, Any], index: Optional[int]) -> Any:
        if self.key is not None:
            try:
                return row[self.key]
            except KeyError:
                raise RecordError(
                    f"{self.name}: key {self.key!r} is not an attribute of the subject {subject!r}"
                ) from None
        if index is None:  # outside a run: numbered as they come
            index = self._counted
            self._counted += 1
        return index

    def _created(self, tick: Optional[int], positions: Sequence[int]) -> None:
        """The run made subjects: the snapshot (``tick`` None) or arrivals at ``tick``."""
        run = self._run
        if not self._is_open:
            self.open()
        if tick is None:
            op, timestamp = "r", run.timestamp_start
        else:
            tick_ms = run.model.tick_ms
            op = "c"
            timestamp = run.timestamp_start + (
                tick * tick_ms if isinstance(tick_ms, int) else round(tick * tick_ms)
            )
        state = run.model.initial_state
        subjects = run.subjects
        first = run.first
        if self._text is not None:
            self._created_text(op, positions, state, timestamp)
            return
        for i in positions:
            subject = subjects[i]
            row = self._row(subject, state)
            self._emit(op, subject, None, row, first + i, timestamp, self._made[op])

    def _emit(
        self,
        op: str,
        subject: Any,
        before: Optional[Dict[str, Any]],
        row: Dict[str, Any],
        index: Optional[int],
        timestamp: int,
        transition: Transition,
    ) -> None:
        key = self._key_of(subject, row, index)
        self._keys[id(subject)] = key
        self._last[key] = row
        self._changes[op] += 1  # (no C collector on this path: its count is kept here)
        if self._rows_into is not None:
            self._rows_into(row, False)
            return
        self.inner.collect(
            timestamp, Change(op, before, row, key, timestamp, self._source(timestamp)), transition
        )

    # -- events ------------------------------------------------------------------------------

    def _open(self) -> None:
        self._source_at = None
        self._keys = {}
        self._last = {}
        self._counted = 0
        opener = getattr(self.inner, "open", None)
        if callable(opener):
            opener()
        self._write_text()
        self._rows_into_table()

    def _rows_into_table(self) -> None:
        """Into a SQL sink's upsert mode whose mapper is :func:`change_row`, the rows go to
        the sink as they are: a :class:`Change` per change (its ``source`` included) would be
        made only for the mapper to read the row back out of it."""
        inner = self.inner
        into = getattr(inner, "_collect_row", None)
        self._rows_into = None
        if (
            callable(into)
            and getattr(inner, "mode", None) == "upsert"
            and getattr(inner, "row_mapper_function", None) is change_row
            and not self.tombstones
        ):
            self._rows_into = into

    def _write_text(self) -> None:
        """Into JSON Lines, write the lines here (see the module), changes through the C
        collector where it is built."""
        inner = self.inner
        self._text = self._fast = None
        self._fast_counted = 0
        self._source_text_at = None
        self._source_head = (None, b"")
        closed = getattr(inner, "_closed_collect", None)
        if (
            not isinstance(inner, FileSink)
            or getattr(closed, "__func__", None) is not FileSink._collect_lines
            or inner.value_function is not envelope_row
            or inner._recode
            or self.tombstones
            or _CChanges is None
            or not isinstance(inner._lines, CLines)
        ):
            return
        self._text = inner._lines
        self._fast = _CChanges(
            self._text,
            self._keys,
            self._last,
            self._c_readers,
            self._finals,
            self._collect_text,
            self._source_bytes,
            inner._drain,
            inner.buffer_lines,
        )
        self.collect = self._fast  # type: ignore[method-assign]

    # -- JSON Lines written here -------------------------------------------------------------

    def _reader(self, cls: type) -> Any:
        """``(names, getter, has a __dict__, template)`` of a class of fixed public
        attributes, ``None`` for the others (their rows are dicts, as for other sinks)."""
        names = _slot_names(cls)
        reader = None
        if names is not None and STATE_FIELD not in names:
            get = operator.attrgetter(*names)
            template = line_buffer((*names, STATE_FIELD), c_encoder=True)
            has_dict = bool(cls.__dictoffset__)
            reader = (names, get, has_dict, template)
            if self.key is None:
                key_index = -1  # the subject's index
            else:
                key_index = names.index(self.key) if self.key in names else -2
            self._c_readers[cls] = (get, template, has_dict, key_index)
        self._readers[cls] = reader
        return reader

    def _read_text(self, subject: Any, state: str) -> Tuple[Any, bytes]:
        """The subject's row as its values (a tuple of the class's names, or the row's dict)
        and its JSON text."""
        cls = type(subject)
        reader = self._readers[cls] if cls in self._readers else self._reader(cls)
        if reader is not None:
            names, get, has_dict, template = reader
            if not has_dict or not subject.__dict__:
                try:
                    got = get(subject)
                except AttributeError:
                    pass  # a slot not set: the row leaves it out
                else:
                    values = (got,) if len(names) == 1 else got
                    try:
                        return values, template.encode_values((*values, state))
                    except ENCODE_ERRORS as exc:
                        row = dict(zip(names, values), state=state)
                        raise RecordError(f"{self.name}: cannot write {row!r}: {exc}") from exc
        row = self._row(subject, state)
        return row, self._encode_text(row)

    def _encode_text(self, value: Any) -> bytes:
        try:
            encoded: bytes = self._text.encode(value)
        except ENCODE_ERRORS as exc:
            raise RecordError(f"{self.name}: cannot write {value!r}: {exc}") from exc
        return encoded

    def _as_row(self, subject: Any, values: Any, state: str) -> Dict[str, Any]:
        if isinstance(values, dict):
            return values  # the row's dict, its state in it
        return dict(zip(self._readers[type(subject)][0], values), state=state)

    def _source_bytes(self, timestamp: int) -> bytes:
        """The text of the ``source`` block of ``timestamp``. A run's blocks differ only in
        their tick, the last field: the text before it is made once a run."""
        if timestamp == self._source_text_at and self._source_text_at is not None:
            return self._source_text
        run = self._run
        if run is None:
            text = self._encode_text(self._make_source(timestamp))
        else:
            if self._source_head[0] is not run:
                block = self._make_source(timestamp)
                block["tick"] = None
                self._source_head = (run, self._encode_text(block)[: -len(b"null}")])
            tick = self._encode_text(_tick(run, timestamp))
            text = b"".join((self._source_head[1], tick, b"}"))
        self._source_text, self._source_text_at = text, timestamp
        return text

    def _write_line(
        self, op: bytes, before: Optional[bytes], after: Optional[bytes], key: Any, timestamp: int
    ) -> None:
        line = b"".join(
            (
                b'{"before": ',
                b"null" if before is None else before,
                b', "after": ',
                b"null" if after is None else after,
                b', "op": "',
                op,
                b'", "ts_ms": ',
                self._encode_text(timestamp),
                b', "source": ',
                self._source_bytes(timestamp),
                b', "key": ',
                self._encode_text(key),
                b"}",
            )
        )
        if self._text.append_raw(line) >= self.inner.buffer_lines:
            self.inner._drain()

    def _created_text(self, op: str, positions: Sequence[int], state: str, timestamp: int) -> None:
        """The ``r`` or ``c`` lines of subjects the run made, their ``source`` and time
        alike."""
        run = self._run
        subjects = run.subjects
        first = run.first
        keys, last, encode = self._keys, self._last, self._encode_text
        read, key_of = self._read_text, self._key_of
        middle = b"".join(
            (
                b', "op": "',
                op.encode(),
                b'", "ts_ms": ',
                encode(timestamp),
                b', "source": ',
                self._source_bytes(timestamp),
                b', "key": ',
            )
        )
        append, limit, drain = self._text.append_raw, self.inner.buffer_lines, self.inner._drain
        made = self._fast.created if type(subjects) is list else None
        by_key = self.key
        at, count = 0, len(positions)
        while at < count:
            # The C collector writes the subjects of the classes it reads, up to one that it
            # does not; that one is written here.
            if made is not None:
                cls = type(subjects[positions[at]])
                if cls not in self._readers:
                    self._reader(cls)
                done = made(subjects, positions, at, first, state, middle)
                self._changes[op] += done
                at += done
                if at == count:
                    break
            i = positions[at]
            subject = subjects[i]
            values, text = read(subject, state)
            if by_key is None:
                key = first + i
            else:
                key = key_of(subject, self._as_row(subject, values, state), None)
            keys[_subject_id(subject)] = key
            last[key] = _entry(subject, key, values, state, text)
            self._changes[op] += 1
            line = b"".join((b'{"before": null, "after": ', text, middle, encode(key), b"}"))
            if append(line) >= limit:
                drain()
            at += 1

    def _emit_text(
        self,
        op: str,
        subject: Any,
        values: Any,
        state: str,
        text: bytes,
        index: Optional[int],
        timestamp: int,
    ) -> None:
        if self.key is None or isinstance(values, dict):
            key = self._key_of(subject, values, index)
        else:
            key = self._key_of(subject, self._as_row(subject, values, state), index)
        self._keys[_subject_id(subject)] = key
        self._last[key] = _entry(subject, key, values, state, text)
        self._changes[op] += 1
        self._write_line(op.encode(), None, text, key, timestamp)

    def _collect_text(self, timestamp: int, subject: Any, transition: Transition) -> None:
        """:meth:`collect` into JSON Lines: the same lines, made from the rows' text."""
        if not self._is_open:
            self.open()
        ident = _subject_id(subject)
        key = self._keys.get(ident)
        state = transition.to_state
        values, text = self._read_text(subject, state)
        if key is None:  # a subject the run did not announce (no run, or a finished one)
            self._emit_text("c", subject, values, state, text, None, timestamp)
            key = self._keys[ident]
            if state not in self._finals:
                return
        last = self._last
        entry = last[key]
        if type(entry) is list:
            before_values, before_state, before = entry
        else:
            before_values, before_state, before = entry.values, entry.state, entry.text
        if state in self._finals:
            del self._keys[ident]
            del last[key]
            op, after = "d", None
        elif (
            values == before_values and state == before_state
            if type(values) is type(before_values)
            else self._as_row(subject, values, state)
            == self._as_row(subject, before_values, before_state)
        ):
            return
        else:
            last[key] = _entry(subject, key, values, state, text)
            op, after = "u", text
        self.changes[op] += 1
        self._write_line(op.encode(), before, after, key, timestamp)

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        if not self._is_open:
            self.open()
        key = self._keys.get(id(subject))
        state = transition.to_state
        make = self._rows.get(type(subject))
        if make is None:
            row = self._row(subject, state)
        else:
            row = make(subject)
            if STATE_FIELD in row:
                row = self._row(subject, state)  # raises, naming the subject
            row[STATE_FIELD] = state
        if key is None:  # a subject the run did not announce (no run, or a finished one)
            self._emit("c", subject, None, row, None, timestamp, transition)
            key = self._keys[id(subject)]
            if state not in self._finals:
                return
        last = self._last
        before = last[key]
        if state in self._finals:
            del self._keys[id(subject)]
            del last[key]
            op, after = "d", None
        elif row == before:
            return
        else:
            last[key] = after = row
            op = "u"
        self._changes[op] += 1  # (no C collector on this path: its count is kept here)
        if self._rows_into is not None:
            self._rows_into(before if after is None else after, after is None)
            return
        source = self._last_source if timestamp == self._source_at else self._source(timestamp)
        self.inner.collect(timestamp, Change(op, before, after, key, timestamp, source), transition)
        if op == "d" and self.tombstones:
            self.tombstones_written += 1
            self.inner.collect(
                timestamp, Change(None, None, None, key, timestamp, source), transition
            )

    def poll(self) -> None:
        poll = getattr(self.inner, "poll", None)
        if callable(poll):
            poll()

    def hurry(self) -> None:
        hurry = getattr(self.inner, "hurry", None)
        if callable(hurry):
            hurry()

    def flush(self) -> None:
        flush = getattr(self.inner, "flush", None)
        if callable(flush):
            flush()

    def _close(self) -> None:
        if self._run is not None:
            try:
                self._run.created.remove(self._created)
            except ValueError:
                pass
        self._run = None
        self._keys = {}
        self._last = {}
        self._changes = self.changes  # with the C collector's count
        self._text = self._fast = self._rows_into = None
        self.__dict__.pop("collect", None)
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()

    def __repr__(self) -> str:
        return f"<ChangeEventSink of {self.inner!r} key={self.key!r}>"


def envelope_row(timestamp: int, change: Change, transition: Any) -> Optional[Dict[str, Any]]:
    """A URL-made sink's row: the change's envelope (``None``: a tombstone)."""
    return change.envelope()


def envelope_key(change: Any, transition: Any) -> str:
    """A URL-made keyed sink's key: the change's key as text."""
    return str(change.key)


def change_row(timestamp: int, change: Change, transition: Any) -> Dict[str, Any]:
    """An upsert table's row: the subject's row (its last one for a ``d``)."""
    return change.row


def cdc_from_url(url: Any) -> Optional[Dict[str, Any]]:
    """The change-event settings of a sink URL (taken out of its query): ``envelope`` and
    ``key``; ``None`` without ``envelope``. The database sink's ``mode=upsert`` takes
    ``key`` itself."""
    from doge_datagen.sinks.urls import SinkURLError

    envelope = url.params.get("envelope")
    if envelope is None:
        return None
    url.params.pop("envelope")
    if envelope not in ENVELOPES:
        raise SinkURLError(
            f"sink {url.masked!r}: envelope={envelope!r} is not one of {', '.join(ENVELOPES)}"
        )
    key = url.params.pop("key", None)
    if key is not None and not key:
        raise SinkURLError(f"sink {url.masked!r}: key= names no attribute")
    return {"key": key}


def envelope_records(records: Any) -> Any:
    """``records`` for the sink inside a :class:`ChangeEventSink`: envelopes keyed by the
    change's key."""
    from doge_datagen.sinks.urls import Records

    return Records(row=envelope_row, key=envelope_key)  # type: ignore[arg-type]
