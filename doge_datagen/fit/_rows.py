"""The row-by-row fit and what a fit gives: the counts kept per state, transition and profile
bin as rows are read (:class:`_Fit`), the event files they are read from, and the fitted model
(:class:`FittedModel`, with its table, its generator and its Python source).

:mod:`doge_datagen.fit.fitter` chooses between this fit and the columnar one
(:mod:`doge_datagen.fit._columns`), which is a subclass of :class:`_Fit`; the reasoning behind
the estimates is in that module's docstring.
"""

import logging
import math
import numbers
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from operator import itemgetter
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from doge_datagen.core.checks import check_optional_count, check_positive_count
from doge_datagen.core.text import text_table
from doge_datagen.errors import ConfigurationError, RecordError

_LOGGER = logging.getLogger(__name__)

#: The standard normal quantile of a two-sided 95% interval (scipy.stats.norm.isf(0.025)).
Z95 = 1.959963984540054
_HOUR_MS = 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Epoch hour 0 is a Thursday; weekly bins start on Monday 00:00 UTC.
_WEEK_SHIFT_HOURS = 72
_FAR = 1 << 62

# A state's record (a list, for speed in the loop): exposure in ms, name, first row, and the
# profile accumulators (see _Bins).
_EXPO, _NAME, _WHERE, _BINS = 0, 1, 2, 3
# A transition's record: events, from record, to record, trigger, events per profile bin.
_COUNT, _FROM, _TO, _TRIGGER, _EVENT_BINS = 0, 1, 2, 3, 4


def wilson_interval(events: int, trials: int, z: float = Z95) -> Tuple[float, float]:
    """Wilson's score interval for a binomial proportion, as fractions (not percent)."""
    if trials <= 0:
        return 0.0, 1.0
    p = events / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / trials + z2 / (4 * trials * trials)) / denominator
    low = 0.0 if events == 0 else max(0.0, centre - half)
    high = 1.0 if events == trials else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class FittedProfile:
    """How a transition's probability varies over the hours of a day (``"hourly"``, 24 bins)
    or of a week (``"weekly"``, 168 bins from Monday 00:00 UTC).

    ``events[b]`` moves were seen in bin ``b`` out of ``exposure[b]`` subject-ticks spent in the
    transition's ``from_state`` then; ``factors[b]`` is that bin's estimate divided by the
    transition's overall probability (1.0 for a bin without exposure: no data, no change).
    """

    kind: str
    factors: Tuple[float, ...]
    events: Tuple[int, ...]
    exposure: Tuple[int, ...]

    def probabilities(self) -> List[float]:
        """The per-bin estimates, in percent per tick."""
        return [100.0 * e / x if x else math.nan for e, x in zip(self.events, self.exposure)]

    def intervals(self) -> List[Tuple[float, float]]:
        """Wilson 95% intervals of the per-bin estimates, in percent."""
        return [
            (100.0 * lo, 100.0 * hi)
            for lo, hi in (wilson_interval(e, x) for e, x in zip(self.events, self.exposure))
        ]


@dataclass(frozen=True)
class FittedTransition:
    """One fitted transition. ``probability``, ``low`` and ``high`` are percent per tick, as
    ``add_transition`` takes them; ``exposure`` is the subject-ticks spent in ``from_state``
    (the trials), ``events`` the moves seen."""

    trigger: str
    from_state: str
    to_state: str
    probability: float
    low: float
    high: float
    exposure: int
    events: int
    profile: Optional[FittedProfile] = None


@dataclass
class FittedModel:
    """What :func:`fit_events` found. Build a generator from it or write it as a module."""

    states: List[str]
    initial_state: str
    #: The share of subjects in each state at the start of the window (sums to 1).
    initial_shares: Dict[str, float]
    transitions: List[FittedTransition]
    tick_ms: int
    #: Epoch milliseconds of the window's first tick, and of the end (exclusive).
    start: int
    end: int
    subjects: int
    rows: int
    #: ``None``, ``"hourly"`` or ``"weekly"``.
    profile_kind: Optional[str] = None
    #: The fields the log was read with (subject, timestamp, state or from/to, trigger).
    fields: Dict[str, str] = field(default_factory=dict)
    #: Rows after the end of the window, which were skipped.
    skipped: int = 0

    @property
    def field_names(self) -> Tuple[str, str, str, str, str]:
        """The log's names of the subject, timestamp, trigger, from-state and to-state fields,
        which the fitted model's records use again (the Python module and the model file)."""
        fields = self.fields
        return (
            fields.get("subject", "subject"),
            fields.get("timestamp", "timestamp"),
            fields.get("trigger", "trigger"),
            fields.get("from_state", "from_state"),
            fields.get("to_state", fields.get("state", "to_state")),
        )

    @property
    def ticks(self) -> int:
        """The length of the window, in ticks."""
        return (self.end - self.start) // self.tick_ms

    @property
    def profiles(self) -> Dict[str, FittedProfile]:
        """The fitted profile of each transition, by trigger (empty without hourly/weekly)."""
        return {t.trigger: t.profile for t in self.transitions if t.profile is not None}

    def transition(self, trigger: str, from_state: Optional[str] = None) -> FittedTransition:
        """The fitted transition named ``trigger`` (from ``from_state`` when that is needed)."""
        found = [
            t
            for t in self.transitions
            if t.trigger == trigger and (from_state is None or t.from_state == from_state)
        ]
        if len(found) != 1:
            raise KeyError(f"{len(found)} fitted transitions match trigger {trigger!r}")
        return found[0]

    def probability(self, transition: FittedTransition) -> Any:
        """What ``add_transition`` gets for ``transition``: a number, or with a profile,
        ``probability * hourly([...])`` (or ``weekly``) from :mod:`doge_datagen.profiles`."""
        if transition.profile is None:
            return transition.probability
        from doge_datagen import profiles

        make = getattr(profiles, transition.profile.kind)
        return transition.probability * make(list(transition.profile.factors))

    def generator(
        self,
        subject_factory: Any,
        subjects_num: Optional[int] = None,
        ticks_num: Optional[int] = None,
        timestamp_start: Any = None,
        *,
        seed: Any = None,
        event_sinks: Union[Sequence[Any], Mapping[str, Sequence[Any]], None] = None,
        action_callbacks: Optional[Mapping[str, Callable[..., Any]]] = None,
    ) -> Any:
        """A ready :class:`~doge_datagen.DataOnlineGenerator` with the fitted states and
        transitions.

        :param subject_factory: creates the subjects, as for ``DataOnlineGenerator``.
        :param subjects_num: how many subjects; by default as many as were fitted.
        :param ticks_num: how many ticks; by default the fitted window's length.
        :param timestamp_start: by default the fitted window's start.
        :param event_sinks: sinks every transition writes to, or a mapping from trigger to
            the sinks of that trigger.
        :param action_callbacks: a mapping from trigger to its action callback.

        Every subject starts in :attr:`initial_state` (the engine has one initial state; the
        other :attr:`initial_shares` are not reproduced).
        """
        from doge_datagen.model import DataOnlineGenerator

        datagen: Any = DataOnlineGenerator(
            self.states,
            self.initial_state,
            subject_factory,
            self.subjects if subjects_num is None else subjects_num,
            self.tick_ms,
            self.ticks if ticks_num is None else ticks_num,
            self.start if timestamp_start is None else timestamp_start,
            seed=seed,
        )
        callbacks = dict(action_callbacks or {})
        unknown = set(callbacks) - {t.trigger for t in self.transitions}
        if isinstance(event_sinks, Mapping):
            unknown |= set(event_sinks) - {t.trigger for t in self.transitions}
        if unknown:
            raise ConfigurationError(
                f"no fitted transition has trigger {sorted(unknown)[0]!r}; "
                f"the triggers are {[t.trigger for t in self.transitions]!r}"
            )
        for t in self.transitions:
            if isinstance(event_sinks, Mapping):
                sinks = list(event_sinks.get(t.trigger, ()))
            else:
                sinks = list(event_sinks or ())
            datagen.add_transition(
                t.trigger,
                t.from_state,
                t.to_state,
                self.probability(t),
                action_callback=callbacks.get(t.trigger),
                event_sinks=sinks,
            )
        return datagen

    def table(self) -> str:
        """The fit as a table: one line per transition, with its interval and exposure."""
        window = f"{_iso(self.start)} to {_iso(self.end)}"
        lines = [
            f"{self.rows} rows, {self.subjects} subjects, {self.ticks} ticks of "
            f"{self.tick_ms} ms ({window})",
            "initial state "
            + f"{self.initial_state!r}; shares at the start: "
            + ", ".join(f"{s} {100 * v:.1f}%" for s, v in self.initial_shares.items()),
        ]
        if self.skipped:
            lines.append(f"{self.skipped} rows at or after the end were skipped")
        header = ("trigger", "from", "to", "events", "exposure", "% per tick", "95% low", "high")
        rows: List[Tuple[str, ...]] = [header]
        for t in self.transitions:
            rows.append(
                (
                    t.trigger + (f" x {t.profile.kind}" if t.profile else ""),
                    t.from_state,
                    t.to_state,
                    str(t.events),
                    str(t.exposure),
                    _num(t.probability),
                    _num(t.low),
                    _num(t.high),
                )
            )
        lines.extend(text_table(rows, left=3))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_python(self, path: Union[str, "os.PathLike[str]"]) -> Path:
        """Write the model as a module to read, edit and run: ``doge-datagen run PATH:build``.

        Its events are printed as JSON lines with the log's own field names (subject,
        timestamp, trigger, from and to state).
        """
        target = Path(path)
        target.write_text(_module_source(self))
        return target


def _num(value: float) -> str:
    return f"{value:.6g}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


# -- reading files --------------------------------------------------------------------------


def read_events(path: Union[str, "os.PathLike[str]"], format: Optional[str] = None) -> "EventFile":
    """The rows of a JSON Lines or CSV file (by suffix: ``.csv`` is CSV), read lazily.

    Iterating yields mappings; :func:`fit_events` names the file and line in its errors.
    """
    return EventFile(path, format)


class EventFile:
    """A JSON Lines or CSV file as an iterable of ``(line number, row)`` pairs."""

    def __init__(self, path: Union[str, "os.PathLike[str]"], format: Optional[str] = None) -> None:
        self.path = os.fspath(path)
        if format is None:
            format = "csv" if self.path.lower().endswith(".csv") else "jsonl"
        if format not in ("jsonl", "csv"):
            raise ConfigurationError(f"format must be 'jsonl' or 'csv', got {format!r}")
        self.format = format

    def numbered(self) -> Iterator[Tuple[int, Any]]:
        if self.format == "csv":
            return self._csv()
        return self._jsonl()

    def __iter__(self) -> Iterator[Any]:
        return (row for _, row in self.numbered())

    def chunks(self, size: int = 1 << 22) -> Iterator[Tuple[Any, List[Any]]]:
        """``(line numbers, rows)`` about ``size`` bytes at a time (JSON Lines are parsed
        with one call per chunk; blank lines are skipped)."""
        if self.format == "csv":
            from itertools import islice

            numbered = self.numbered()
            while True:
                pairs = list(islice(numbered, 32768))
                if not pairs:
                    return
                yield [n for n, _ in pairs], [row for _, row in pairs]
        loads, error = json_loader()
        base = 1
        with open(self.path, "rb") as f:
            while True:
                lines = f.readlines(size)
                if not lines:
                    return
                try:
                    rows = list(map(loads, lines))
                    numbers: Any = range(base, base + len(rows))
                except error:
                    rows, numbers = [], []
                    for line_no, line in enumerate(lines, base):
                        if not line.strip():
                            continue
                        try:
                            rows.append(loads(line))
                        except error as exc:
                            raise RecordError(
                                f"{self.path}, line {line_no}: not a JSON document ({exc})"
                            ) from None
                        numbers.append(line_no)
                base += len(lines)
                yield numbers, rows

    def _jsonl(self) -> Iterator[Tuple[int, Any]]:
        loads, error = json_loader()
        with open(self.path, "rb") as f:
            for line_no, line in enumerate(f, 1):
                try:
                    yield line_no, loads(line)
                except error as exc:
                    if line.strip():
                        raise RecordError(
                            f"{self.path}, line {line_no}: not a JSON document ({exc})"
                        ) from None

    def _csv(self) -> Iterator[Tuple[int, Any]]:
        import csv

        with open(self.path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            for row in reader:
                yield reader.line_num, row


def json_loader() -> Tuple[Callable[[bytes], Any], Any]:
    """``orjson.loads`` when installed (``pip install 'doge-datagen[fit]'``), else ``json``."""
    try:
        import orjson
    except ImportError:
        import json

        return json.loads, ValueError
    return orjson.loads, orjson.JSONDecodeError


# -- the fit -------------------------------------------------------------------------------


def _check_ms(name: str, value: Any) -> int:
    if isinstance(value, datetime):
        return _datetime_ms(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigurationError(
            f"{name} must be epoch milliseconds (an integer) or a datetime, got {value!r}"
        )
    return int(value)


def _datetime_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _log_fields(
    subject: str,
    timestamp: str,
    state: Optional[str],
    from_state: Optional[str],
    to_state: Optional[str],
    trigger: Optional[str],
) -> Dict[str, str]:
    """The log's field of each role: a log of states or one of transitions, not both."""
    if state is not None and (from_state is not None or to_state is not None):
        raise ConfigurationError(
            "give either state= (a log of states) or from_state= and to_state= "
            "(a log of transitions), not both"
        )
    if state is None and (from_state is None or to_state is None):
        raise ConfigurationError(
            "give state= (a log of states) or both from_state= and to_state= "
            "(a log of transitions); trigger= alone does not say where subjects go"
        )
    fields: Dict[str, str] = {"subject": subject, "timestamp": timestamp}
    for role, name in (
        ("state", state),
        ("from_state", from_state),
        ("to_state", to_state),
        ("trigger", trigger),
    ):
        if name is not None:
            fields[role] = name
    for role, name in fields.items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"{role}= must name a field, got {name!r}")
    return fields


class _Fit:
    """The streaming fit: one pass over numbered rows, then :meth:`result`."""

    def __init__(
        self,
        *,
        tick_ms: Any,
        subject: str,
        timestamp: str,
        state: Optional[str],
        from_state: Optional[str],
        to_state: Optional[str],
        trigger: Optional[str],
        start: Any,
        end: Any,
        initial_state: Optional[str],
        subjects: Any,
        hourly: bool,
        weekly: bool,
        where: str,
    ) -> None:
        self.tick = check_positive_count("tick_ms", tick_ms)
        self.fields = _log_fields(subject, timestamp, state, from_state, to_state, trigger)
        self.state_log = state is not None
        self.has_trigger = trigger is not None
        self.start = None if start is None else _check_ms("start", start)
        self.end = None if end is None else _check_ms("end", end)
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ConfigurationError(f"end ({self.end}) must be after start ({self.start})")
        self.subjects = check_optional_count("subjects", subjects)
        if initial_state is not None and not isinstance(initial_state, str):
            raise ConfigurationError(f"initial_state must be a state name, got {initial_state!r}")
        self.initial_state = initial_state
        self.kind: Optional[str] = "weekly" if weekly else ("hourly" if hourly else None)
        if self.kind is not None and _HOUR_MS % self.tick:
            raise ConfigurationError(
                f"an {self.kind} profile needs a tick that divides an hour; "
                f"tick_ms={self.tick} does not divide {_HOUR_MS}"
            )
        self.where = where
        self.period = 168 if self.kind == "weekly" else 24
        self.per_hour = _HOUR_MS // self.tick if self.kind else 1
        self.shift = _WEEK_SHIFT_HOURS * self.per_hour if self.kind == "weekly" else 0
        # Filled while reading.
        self.origin: Optional[int] = self.start
        self.states: Dict[Any, List[Any]] = {}
        self.transitions: Dict[Tuple[Any, ...], List[Any]] = {}
        self.last: Dict[Any, Tuple[int, List[Any], int]] = {}
        #: Per state: how many subjects start their first spell at the window start, and the
        #: sum of the timestamps that spell ends at (its exposure needs the start).
        self.first_n: Dict[str, int] = {}
        self.first_sum: Dict[str, int] = {}
        #: Subjects seen before ``start``: their real last timestamp and state at the start.
        self.before: Dict[Any, List[Any]] = {}
        self.rows = 0
        self.skipped = 0
        self.lowest: Optional[int] = None
        self.highest: Optional[int] = None

    # -- messages --

    def at(self, line: int) -> str:
        return f"{self.where} {line}"

    # -- records --

    def state_record(self, name: Any, line: int, role: str) -> List[Any]:
        record = self.states.get(name)
        if record is None:
            if name is None or name == "":
                raise RecordError(f"{self.at(line)}: field {self.fields[role]!r} is empty")
            if not isinstance(name, str):
                raise RecordError(
                    f"{self.at(line)}: field {self.fields[role]!r} holds {name!r}; "
                    "state names must be strings"
                )
            bins = None
            if self.kind is not None:
                # [whole periods, signed count per bin, signed remainder per bin]
                bins = [0, [0] * self.period, [0] * self.period]
            where = self.at(line) if line else "given as initial_state"
            record = [0, name, where, bins]
            self.states[name] = record
        return record

    def transition_record(self, key: Tuple[Any, ...], line: int) -> List[Any]:
        """A transition seen for the first time: its states and trigger are checked here."""
        if self.state_log:
            from_name, to_name = key[0], key[1]
            from_record = self.states[from_name]
        else:
            from_name, to_name = key[0], key[1]
            from_record = self.state_record(from_name, line, "from_state")
        to_record = self.state_record(to_name, line, "state" if self.state_log else "to_state")
        if self.has_trigger:
            trigger = key[2]
            if trigger is None or trigger == "":
                raise RecordError(f"{self.at(line)}: field {self.fields['trigger']!r} is empty")
            if not isinstance(trigger, str):
                raise RecordError(
                    f"{self.at(line)}: field {self.fields['trigger']!r} holds {trigger!r}; "
                    "triggers must be strings"
                )
            trigger = trigger.strip() or trigger
        else:
            trigger = f"{from_name}->{to_name}"
        record = [0, from_record, to_record, trigger, [0] * self.period if self.kind else None]
        self.transitions[key] = record
        return record

    # -- timestamps --

    def timestamp(self, value: Any, line: int) -> int:
        """Epoch ms from an int, an integral float, a numeric string, an ISO 8601 string or a
        ``datetime`` (naive ones are UTC)."""
        if type(value) is int:
            return value
        if isinstance(value, str):
            text = value.strip()
            try:
                return int(text)
            except ValueError:
                pass
            try:
                number = float(text)
            except ValueError:
                try:
                    parsed = datetime.fromisoformat(
                        text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
                    )
                except ValueError:
                    raise RecordError(
                        f"{self.at(line)}: timestamp {value!r} in field "
                        f"{self.fields['timestamp']!r} is neither epoch milliseconds nor "
                        "an ISO 8601 date-time"
                    ) from None
                return _datetime_ms(parsed)
            value = number
        if isinstance(value, datetime):
            return _datetime_ms(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        raise RecordError(
            f"{self.at(line)}: timestamp {value!r} in field {self.fields['timestamp']!r} "
            "is not whole epoch milliseconds or a date-time"
        )

    def off_grid(self, ts: int, line: int) -> RecordError:
        assert self.origin is not None
        return RecordError(
            f"{self.at(line)}: timestamp {ts} is not a whole number of ticks "
            f"({self.tick} ms) from {self.origin}: the tick must divide the data's resolution "
            "(choose a tick_ms that divides the time between rows, or round the timestamps "
            "to the tick)"
        )

    def out_of_order(self, sid: Any, ts: int, state: Any, prev: Tuple[int, Any, int], line: int):
        pts, prec, pline = prev
        if ts < pts:
            return RecordError(
                f"{self.at(line)}: timestamp {ts} of subject {sid!r} is earlier than its "
                f"previous row ({self.at(pline)}, timestamp {pts}): each subject's rows must "
                "be in time order"
            )
        if self.state_log and state != prec[_NAME]:
            return RecordError(
                f"{self.at(line)}: subject {sid!r} is in two states at timestamp {ts}: "
                f"{prec[_NAME]!r} ({self.at(pline)}) and {state!r}"
            )
        return RecordError(
            f"{self.at(line)}: subject {sid!r} has two moves at timestamp {ts} (the other at "
            f"{self.at(pline)}); a subject moves at most once per tick"
        )

    def missing(self, row: Any, line: int, getter_fields: Sequence[str]) -> RecordError:
        if not isinstance(row, Mapping):
            return RecordError(
                f"{self.at(line)}: a row must be a mapping of fields, got {type(row).__name__}"
            )
        absent = [name for name in getter_fields if name not in row]
        return RecordError(
            f"{self.at(line)}: missing field {absent[0]!r}; the row has "
            f"{', '.join(map(repr, row)) or 'no fields'}"
        )

    # -- profile accumulators --

    def bound(self, record: List[Any], ts: int, sign: int) -> None:
        """Add ``sign`` times the count of ticks before ``ts`` in each bin (see _exposure_bins)."""
        k = (ts - self.residue) // self.tick + self.shift
        width = self.per_hour * self.period
        q, m = divmod(k, width)
        j, rem = divmod(m, self.per_hour)
        bins = record[_BINS]
        bins[0] += sign * q
        bins[1][j] += sign
        bins[2][j] += sign * rem

    def bin_of(self, ts: int) -> int:
        k = (ts - self.residue) // self.tick + self.shift
        return (k // self.per_hour) % self.period

    # -- the pass --

    def feed(self, numbered: Iterable[Tuple[int, Any]]) -> None:
        iterator = iter(numbered)
        for line, row in iterator:
            self.rows += 1
            # The first row fixes the tick grid (when start= does not).
            self.prepare(row, line)
            self.row(line, row)
            break
        else:
            return
        if self.kind is not None or self.start is not None or self.end is not None:
            # Profiles or a window: the general loop.
            for line, row in iterator:
                self.rows += 1
                self.row(line, row)
        elif self.state_log:
            self.state_loop(iterator)
        else:
            self.transition_loop(iterator)

    def prepare(self, row: Any, line: int) -> None:
        names = [self.fields["subject"], self.fields["timestamp"]]
        if self.state_log:
            names += [self.fields["state"], self.fields["state"]]
            names.append(self.fields.get("trigger", self.fields["state"]))
        else:
            names += [self.fields["from_state"], self.fields["to_state"]]
            names.append(self.fields.get("trigger", self.fields["from_state"]))
        self.names = names
        self.get = itemgetter(*names)
        if self.origin is None:
            try:
                self.origin = self.timestamp(self.get(row)[1], line)
            except (KeyError, TypeError, IndexError):
                raise self.missing(row, line, names) from None
        self.residue = self.origin % self.tick
        self.low_bound = -_FAR if self.start is None else self.start
        self.high_bound = _FAR if self.end is None else self.end

    def row(self, line: int, row: Any) -> None:
        """One row, every case handled (the loops below inline the common ones)."""
        try:
            sid, ts, a, b, c = self.get(row)
        except (KeyError, TypeError, IndexError):
            raise self.missing(row, line, self.names) from None
        if type(ts) is not int:
            ts = self.timestamp(ts, line)
        if ts % self.tick != self.residue:
            raise self.off_grid(ts, line)
        if ts >= self.high_bound:
            self.skipped += 1
            return
        prev = self.last.get(sid)
        if ts < self.low_bound:
            self.before_start(sid, ts, a, b, c, prev, line)
            return
        if self.lowest is None or ts < self.lowest:
            self.lowest = ts
        if self.highest is None or ts > self.highest:
            self.highest = ts
        if prev is None:
            self.first(sid, ts, a, b, c, line)
            return
        pts, prec, pline = prev
        if ts <= pts:
            if ts == pts and self.state_log and not self.has_trigger and a == prec[_NAME]:
                return  # the same observation twice
            raise self.out_of_order(sid, ts, a, prev, line)
        self.move(sid, ts, pts, prec, a, b, c, line)

    def move(
        self, sid: Any, ts: int, pts: int, prec: List[Any], a: Any, b: Any, c: Any, line: int
    ) -> None:
        """A row after the subject's previous one (at ``pts``, in the state of ``prec``)."""
        prec[_EXPO] += ts - pts
        if self.kind is not None:
            self.bound(prec, ts + self.tick, 1)
            self.bound(prec, pts + self.tick, -1)
        if self.state_log and a == prec[_NAME] and not self.has_trigger:
            self.last[sid] = (ts, prec, line)  # only an observation
            return
        self.count_move(sid, ts, prec, a, b, c, line)

    def from_mismatch(self, sid: Any, ts: int, a: Any, prec: List[Any], line: int) -> RecordError:
        prev = self.last[sid]
        return RecordError(
            f"{self.at(line)}: subject {sid!r} moves from {a!r} at timestamp {ts}, but its "
            f"previous row ({self.at(prev[2])}) left it in {prec[_NAME]!r}"
        )

    def first(self, sid: Any, ts: int, a: Any, b: Any, c: Any, line: int) -> None:
        """A subject's first row in the window."""
        if sid is None:
            raise RecordError(f"{self.at(line)}: field {self.fields['subject']!r} is empty")
        if self.state_log:
            if self.initial_state is None:
                # Seen in ``a`` from ``ts`` on; its draws start at the next tick.
                record = self.state_record(a, line, "state")
                self.last[sid] = (ts, record, line)
                return
            start_record = self.state_record(self.initial_state, line, "state")
        else:
            start_record = self.state_record(a, line, "from_state")
        # In ``start_record``'s state from the window start: a draw at the start tick too.
        name = start_record[_NAME]
        self.first_n[name] = self.first_n.get(name, 0) + 1
        self.first_sum[name] = self.first_sum.get(name, 0) + ts
        if self.kind is not None:
            self.bound(start_record, ts + self.tick, 1)
        self.last[sid] = (ts, start_record, line)
        if self.state_log and a == name and not self.has_trigger:
            return
        self.count_move(sid, ts, start_record, a, b, c, line)

    def count_move(
        self, sid: Any, ts: int, prec: List[Any], a: Any, b: Any, c: Any, line: int
    ) -> None:
        """The move of a row from the state of ``prec`` (the subject's current one)."""
        key = (prec[_NAME], a, c) if self.state_log else (a, b, c)
        t = self.transitions.get(key)
        if t is None:
            t = self.transition_record(key, line)
        if t[_FROM] is not prec:
            raise self.from_mismatch(sid, ts, a, prec, line)
        t[_COUNT] += 1
        if self.kind is not None:
            t[_EVENT_BINS][self.bin_of(ts)] += 1
        self.last[sid] = (ts, t[_TO], line)

    def before_start(self, sid: Any, ts: int, a: Any, b: Any, c: Any, prev: Any, line: int) -> None:
        """A row before ``start``: only the subject's state at the start is kept."""
        assert self.start is not None
        seen = self.before.get(sid)
        if seen is not None and ts <= seen[0]:
            if not (ts == seen[0] and self.state_log and a == seen[1][_NAME]):
                raise self.out_of_order(sid, ts, a, (seen[0], seen[1], seen[2]), line)
        if self.state_log:
            record = self.state_record(a, line, "state")
        else:
            if seen is not None and seen[1][_NAME] != a:
                raise self.from_mismatch(sid, ts, a, seen[1], line)
            record = self.state_record(b, line, "to_state")
            self.state_record(a, line, "from_state")
        self.before[sid] = [ts, record, line]
        # As if it entered that state just before the first tick: its draws start at start.
        self.last[sid] = (self.start - self.tick, record, line)

    def state_loop(self, iterator: Iterator[Tuple[int, Any]]) -> None:
        """Every row after the first of a log of states, without window or profiles."""
        get = self.get
        tick = self.tick
        residue = self.residue
        last = self.last
        last_get = last.get
        transitions_get = self.transitions.get
        observe_only = not self.has_trigger
        rows = 0
        lowest = self.lowest
        highest = self.highest
        assert lowest is not None and highest is not None
        line = 0
        try:
            for line, row in iterator:
                rows += 1
                try:
                    sid, ts, st, _, trig = get(row)
                except (KeyError, TypeError, IndexError):
                    raise self.missing(row, line, self.names) from None
                if type(ts) is not int:
                    ts = self.timestamp(ts, line)
                if ts % tick != residue:
                    raise self.off_grid(ts, line)
                if ts > highest:
                    highest = ts
                elif ts < lowest:
                    lowest = ts
                prev = last_get(sid)
                if prev is None:
                    self.first(sid, ts, st, None, trig, line)
                    continue
                pts, prec, _ = prev
                if ts <= pts:
                    if ts == pts and observe_only and st == prec[_NAME]:
                        continue
                    raise self.out_of_order(sid, ts, st, prev, line)
                prec[_EXPO] += ts - pts
                if observe_only and st == prec[_NAME]:
                    last[sid] = (ts, prec, line)
                    continue
                t = transitions_get((prec[_NAME], st, trig))
                if t is None:
                    t = self.transition_record((prec[_NAME], st, trig), line)
                t[_COUNT] += 1
                last[sid] = (ts, t[_TO], line)
        finally:
            self.rows += rows
            self.lowest, self.highest = lowest, highest

    def transition_loop(self, iterator: Iterator[Tuple[int, Any]]) -> None:
        """Every row after the first of a log of transitions, without window or profiles."""
        get = self.get
        tick = self.tick
        residue = self.residue
        last = self.last
        last_get = last.get
        transitions_get = self.transitions.get
        rows = 0
        lowest = self.lowest
        highest = self.highest
        assert lowest is not None and highest is not None
        try:
            for line, row in iterator:
                rows += 1
                try:
                    sid, ts, frm, to, trig = get(row)
                except (KeyError, TypeError, IndexError):
                    raise self.missing(row, line, self.names) from None
                if type(ts) is not int:
                    ts = self.timestamp(ts, line)
                if ts % tick != residue:
                    raise self.off_grid(ts, line)
                if ts > highest:
                    highest = ts
                elif ts < lowest:
                    lowest = ts
                prev = last_get(sid)
                if prev is None:
                    self.first(sid, ts, frm, to, trig, line)
                    continue
                pts, prec, _ = prev
                if ts <= pts:
                    raise self.out_of_order(sid, ts, frm, prev, line)
                t = transitions_get((frm, to, trig))
                if t is None:
                    t = self.transition_record((frm, to, trig), line)
                if t[_FROM] is not prec:
                    raise self.from_mismatch(sid, ts, frm, prec, line)
                prec[_EXPO] += ts - pts
                t[_COUNT] += 1
                last[sid] = (ts, t[_TO], line)
        finally:
            self.rows += rows
            self.lowest, self.highest = lowest, highest

    # -- the result --

    def result(self) -> FittedModel:
        if self.rows == 0 or self.lowest is None or self.highest is None:
            raise RecordError("the log has no rows to fit in the window")
        start, end = self.window(self.lowest, self.highest)
        shares = self.close_first_spells(start)
        seen = self.censor(end)
        subjects = seen if self.subjects is None else int(self.subjects)
        if subjects < seen:
            raise ConfigurationError(
                f"subjects={subjects} is fewer than the {seen} subjects seen in the log"
            )
        self.add_silent(subjects, seen, start, end, shares)
        self.check_involved()
        states, initial = self.initial_first(shares)
        total_shares = sum(shares.values())
        fitted = self.fitted_transitions()
        order = {name: i for i, name in enumerate(states)}
        fitted.sort(key=lambda f: order[f.from_state])
        return FittedModel(
            states=states,
            initial_state=initial,
            initial_shares={s: shares.get(s, 0) / total_shares for s in states if shares.get(s, 0)}
            if total_shares
            else {initial: 1.0},
            transitions=fitted,
            tick_ms=self.tick,
            start=start,
            end=end,
            subjects=subjects,
            rows=self.rows,
            profile_kind=self.kind,
            fields=dict(self.fields),
            skipped=self.skipped,
        )

    def window(self, lowest: int, highest: int) -> Tuple[int, int]:
        """The fitted window ``(start, end)``: the one given, else from the lowest row's
        tick to the tick after the highest's; either way whole ticks from the rows."""
        tick = self.tick
        start = lowest if self.start is None else self.start
        end = highest + tick if self.end is None else self.end
        if (start - (self.origin or 0)) % tick or (end - (self.origin or 0)) % tick:
            raise ConfigurationError(
                f"start ({start}) and end ({end}) must be whole ticks ({tick} ms) from the "
                f"rows' timestamps (e.g. {self.origin})"
            )
        return start, end

    def close_first_spells(self, start: int) -> Dict[str, int]:
        """Add the first spells to the exposure; return how many subjects each state holds
        at ``start`` as far as the log tells."""
        tick = self.tick
        # First spells: from the start tick up to and including their first row's tick.
        for name, n in self.first_n.items():
            record = self.states[name]
            record[_EXPO] += self.first_sum[name] - n * (start - tick)
            if self.kind is not None:
                self.bound(record, start, -n)
        shares: Dict[str, int] = dict(self.first_n)
        for _ts, record, _line in self.before.values():
            shares[record[_NAME]] = shares.get(record[_NAME], 0) + 1
        return shares

    def add_silent(
        self, subjects: int, seen: int, start: int, end: int, shares: Dict[str, int]
    ) -> None:
        """The subjects that never appear in the log spend the window in the initial state."""
        silent = subjects - seen
        if not silent:
            return
        if self.initial_state is None:
            raise ConfigurationError(
                f"{silent} of the subjects={subjects} never appear in the log: give "
                "initial_state= to say which state they stayed in"
            )
        record = self.state_record(self.initial_state, 0, "state")
        record[_EXPO] += silent * (end - start)
        shares[self.initial_state] = shares.get(self.initial_state, 0) + silent
        if self.kind is not None:
            self.bound(record, end, silent)
            self.bound(record, start, -silent)

    def check_involved(self) -> None:
        """Every state must take part in some move."""
        involved = set()
        for t in self.transitions.values():
            involved.add(t[_FROM][_NAME])
            involved.add(t[_TO][_NAME])
        for name, record in self.states.items():
            if name not in involved:
                raise RecordError(
                    f"state {name!r} ({record[_WHERE]}) is never left and never entered: "
                    "no move of the log involves it, so nothing about it can be fitted"
                )

    def initial_first(self, shares: Dict[str, int]) -> Tuple[List[str], str]:
        """The states with the initial one first, and the initial state: the one given, else
        the one most subjects start in."""
        states = list(self.states)
        initial = self.initial_state
        if initial is None:
            initial = (
                max(shares, key=lambda s: (shares[s], -states.index(s))) if shares else states[0]
            )
        if initial in states:
            states.remove(initial)
            states.insert(0, initial)
        return states, initial

    def fitted_transitions(self) -> List[FittedTransition]:
        """Each transition's estimate, interval and profile, in the order first seen."""
        tick = self.tick
        fitted: List[FittedTransition] = []
        used: Dict[Tuple[str, str], int] = {}
        for _key, t in self.transitions.items():
            from_record, to_record = t[_FROM], t[_TO]
            exposure = from_record[_EXPO] // tick
            events = t[_COUNT]
            trigger = t[_TRIGGER]
            # The engine takes a trigger once per from_state: a second target gets its name.
            used[(from_record[_NAME], trigger)] = used.get((from_record[_NAME], trigger), 0) + 1
            if used[(from_record[_NAME], trigger)] > 1:
                trigger = f"{trigger}->{to_record[_NAME]}"
            low, high = wilson_interval(events, exposure)
            profile = None
            if self.kind is not None and events:
                profile = self.profile(from_record, t, events / exposure)
            fitted.append(
                FittedTransition(
                    trigger=trigger,
                    from_state=from_record[_NAME],
                    to_state=to_record[_NAME],
                    probability=100.0 * events / exposure if exposure else 0.0,
                    low=100.0 * low,
                    high=100.0 * high,
                    exposure=exposure,
                    events=events,
                    profile=profile,
                )
            )
        return fitted

    def censor(self, end: int) -> int:
        """Add the censored spells (after each subject's last row up to ``end``) to the
        exposure; return how many subjects were seen."""
        tick = self.tick
        for ts, record, _line in self.last.values():
            record[_EXPO] += end - ts - tick
            if self.kind is not None:
                self.bound(record, end, 1)
                self.bound(record, ts + tick, -1)
        return len(self.last)

    def exposure_bins(self, record: List[Any]) -> List[int]:
        """Subject-ticks per bin from the signed boundaries :meth:`bound` collected.

        The ticks before absolute tick ``k`` in bin ``h`` are ``per_hour`` for every whole
        period before ``k``, plus ``per_hour`` if ``h`` comes before ``k``'s bin in its period,
        plus ``k``'s offset in its hour if ``h`` is ``k``'s bin. Summed with signs over the
        boundaries of every spell this is each spell's count of ticks per bin.
        """
        q, counts, rems = record[_BINS]
        per_hour = self.per_hour
        result = [0] * self.period
        after = 0
        for h in range(self.period - 1, -1, -1):
            result[h] = per_hour * (q + after) + rems[h]
            after += counts[h]
        return result

    def profile(self, from_record: List[Any], t: List[Any], overall: float) -> FittedProfile:
        exposure = self.exposure_bins(from_record)
        events = t[_EVENT_BINS]
        factors = tuple((e / x) / overall if x else 1.0 for e, x in zip(events, exposure))
        assert self.kind is not None
        return FittedProfile(self.kind, factors, tuple(events), tuple(exposure))


def _module_source(model: FittedModel) -> str:
    lines = _source_head(model)
    lines.extend(_source_profiles(model))
    lines.extend(_source_subjects())
    lines.extend(_source_event_json(model))
    lines.extend(_source_build(model))
    return "\n".join(lines) + "\n"


def _source_head(model: FittedModel) -> List[str]:
    """The module docstring, the imports and the settings."""
    kinds = sorted({t.profile.kind for t in model.transitions if t.profile is not None})
    lines: List[str] = []
    w = lines.append
    w(f'"""A model fitted by doge-datagen from {model.rows} rows of an event log.')
    w("")
    w(
        f"Window: {_iso(model.start)} to {_iso(model.end)} ({model.ticks} ticks of "
        f"{model.tick_ms} ms), {model.subjects} subjects."
    )
    w("Each probability is the maximum-likelihood estimate, in percent per tick; the comment")
    w("beside it gives its 95% interval (Wilson), the moves seen and the subject-ticks spent")
    w("in the from state (the exposure). Edit at will, then run:")
    w("")
    w("    doge-datagen run THIS_FILE.py:build")
    w("")
    w("Events are printed as JSON lines with the log's field names.")
    w('"""')
    w("")
    w("import json")
    w("")
    w("from doge_datagen import DataOnlineGenerator, PrintingSink, Subject, SubjectFactory")
    if kinds:
        w(f"from doge_datagen.profiles import {', '.join(kinds)}")
    w("")
    w(f"STATES = {model.states!r}")
    shares = ", ".join(f"{s} {100 * v:.2f}%" for s, v in model.initial_shares.items())
    w(f"INITIAL_STATE = {model.initial_state!r}  # shares at the start of the log: {shares}")
    w(f"TICK_MS = {model.tick_ms!r}")
    w(f"SUBJECTS_NUM = {model.subjects!r}")
    w(f"TICKS_NUM = {model.ticks!r}")
    w(f"TIMESTAMP_START = {model.start!r}  # {_iso(model.start)}; None starts at the current time")
    w("")
    return lines


def _source_profiles(model: FittedModel) -> List[str]:
    """The factors of each profiled transition."""
    lines: List[str] = []
    w = lines.append
    for t in model.transitions:
        if t.profile is not None:
            name = _profile_name(t)
            w(
                f"# {t.profile.kind} factors of {t.trigger!r}, from the moves per "
                + (
                    "hour of day (UTC)"
                    if t.profile.kind == "hourly"
                    else "hour of the week (from Monday 00:00 UTC)"
                )
            )
            w(f"{name} = {t.profile.kind}([")
            per_line = 6
            values = [repr(_round_down(f)) for f in t.profile.factors]
            for i in range(0, len(values), per_line):
                w("    " + ", ".join(values[i : i + per_line]) + ",")
            w("])")
            w("")
    return lines


def _source_subjects() -> List[str]:
    """The subject and its factory."""
    lines: List[str] = []
    w = lines.append
    w("")
    w("class FittedSubject(Subject):")
    w("    def __init__(self, subject_id: int) -> None:")
    w("        self.subject_id = subject_id")
    w("")
    w("    def __repr__(self) -> str:")
    w('        return f"FittedSubject({self.subject_id})"')
    w("")
    w("")
    w("class FittedSubjectFactory(SubjectFactory[FittedSubject]):")
    w("    def __init__(self) -> None:")
    w("        self.next_id = 0")
    w("")
    w("    def create(self) -> FittedSubject:")
    w("        subject = FittedSubject(self.next_id)")
    w("        self.next_id += 1")
    w("        return subject")
    w("")
    w("")
    return lines


def _source_event_json(model: "FittedModel") -> List[str]:
    """The events as JSON lines with the log's field names."""
    subject_field, timestamp_field, trigger_field, from_field, to_field = model.field_names
    lines: List[str] = []
    w = lines.append
    w("def event_json(timestamp, subject, transition):")
    w("    return json.dumps(")
    w("        {")
    w(f"            {timestamp_field!r}: timestamp,")
    w(f"            {subject_field!r}: subject.subject_id,")
    w(f"            {trigger_field!r}: transition.trigger,")
    w(f"            {from_field!r}: transition.from_state,")
    w(f"            {to_field!r}: transition.to_state,")
    w("        }")
    w("    )")
    w("")
    w("")
    return lines


def _source_build(model: FittedModel) -> List[str]:
    """``build()``: the generator with every transition and its interval."""
    lines: List[str] = []
    w = lines.append
    w("def build(seed=None):")
    w("    sink = PrintingSink(event_json)")
    w("    datagen = DataOnlineGenerator(")
    w("        STATES, INITIAL_STATE, FittedSubjectFactory(), SUBJECTS_NUM, TICK_MS, TICKS_NUM,")
    w("        TIMESTAMP_START, seed=seed,")
    w("    )")
    for t in model.transitions:
        probability = repr(round(t.probability, 12))
        if t.profile is not None:
            probability = f"{probability} * {_profile_name(t)}"
        w(
            f"    # {_num(t.low)} to {_num(t.high)} % (95%), {t.events} moves in "
            f"{t.exposure} subject-ticks"
        )
        w(
            f"    datagen.add_transition({t.trigger!r}, {t.from_state!r}, {t.to_state!r}, "
            f"{probability},"
        )
        w("                           event_sinks=[sink])")
    w("    return datagen")
    return lines


def _round_down(value: float, digits: int = 6) -> float:
    """``value`` to ``digits`` significant digits, rounded down: the written factors of a
    state whose moves take all its ticks in some hour then add up to 100, not above it."""
    if value <= 0 or not math.isfinite(value):
        return 0.0 if value <= 0 else value
    scale = 10.0 ** (digits - 1 - math.floor(math.log10(value)))
    return math.floor(value * scale) / scale


def _profile_name(t: FittedTransition) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in f"{t.trigger}_{t.from_state}")
    return f"{cleaned.strip('_').upper()}_PROFILE"
