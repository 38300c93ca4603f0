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
"""

import operator
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence

from doge_datagen.core.types import Transition
from doge_datagen.errors import ConfigurationError, RecordError
from doge_datagen.sinks.base import Sink

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


def _row_of_dict_subject(subject: Any) -> Dict[str, Any]:
    return {k: v for k, v in subject.__dict__.items() if k[:1] != "_"}


def _has_slots(cls: type) -> bool:
    return any(getattr(c, "__slots__", ()) for c in cls.__mro__ if c is not object)


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
        self._keys: Dict[int, Any] = {}  # id(subject) -> key, for the subjects alive
        self._last: Dict[Any, Dict[str, Any]] = {}  # key -> last row
        self._rows: Dict[type, Callable[[Any], Dict[str, Any]]] = {}
        self._counted = 0
        self._source_at: Any = None
        self._last_source: Dict[str, Any] = {}
        #: Changes passed on since :meth:`open`, by op.
        self.changes: Dict[str, int] = {"r": 0, "c": 0, "u": 0, "d": 0}

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
        tick_ms = model.tick_ms
        return {
            "model": getattr(model, "name", None),
            "population": getattr(model, "population", None),
            "shard": run.arrivals_shard[0],
            "tick": round((timestamp - run.timestamp_start) / tick_ms),
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
        self.changes[op] += 1
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
        self.changes[op] += 1
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
