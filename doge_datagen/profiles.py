"""Time-varying probabilities: profiles that scale a transition's probability over time.

A profile is a factor (>= 0) as a function of time. A transition's probability may be a number
(percent per tick, as always) or a base times a profile::

    from doge_datagen.profiles import hourly, weekly, piecewise, profile

    daytime = hourly([0.1] * 7 + [1.0] * 12 + [0.5] * 5, tz="Europe/Paris")
    datagen.add_transition("login", "offline", "online", 0.5 * daytime)

At the tick whose timestamp is ``T`` the transition is then taken with ``0.5 * daytime(T)``
percent. The kinds of profile:

- :func:`hourly` (24 factors, one per hour of the day) and :func:`weekly` (7 factors, one per
  day from Monday, or 168, one per hour of the week from Monday 00:00);
- :func:`piecewise` (``[(start, factor), ...]``: a factor from each start on, for campaigns and
  outages; 1.0 before the first start);
- the product of profiles (``hourly(...) * weekly(...)``);
- :func:`profile` (any callable of the tick's ``datetime`` that declares its ``max``).

Time zones: naive datetimes are UTC; ``tz=`` takes a :mod:`zoneinfo` zone name (or a tzinfo),
in which hours and days are counted, with daylight saving time as that zone keeps it.

Why piecewise-constant profiles are kept apart from callables: the engine samples waiting
times instead of rolling every subject every tick. Between two step boundaries of a
piecewise-constant profile the probability is constant, the wait is geometric and, having no
memory, may be redrawn at the boundary. A callable can change at any tick, so the engine draws
candidate ticks at the declared maximum and keeps each with the ratio of the real probability
to that maximum (thinning). Both give exactly the per-tick model; a callable that returns more
than its declared maximum would silently lose events, so it is an error.
"""

import bisect
import math
import numbers
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

from doge_datagen.core.checks import check_non_negative
from doge_datagen.errors import ConfigurationError

__all__ = [
    "Profile",
    "Profiled",
    "hourly",
    "piecewise",
    "profile",
    "weekly",
]

HOUR_MS = 3_600_000
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# 1970-01-01 (epoch 0) was a Thursday.
_EPOCH_WEEKDAY = 3

Moment = Union[datetime, int, float]


def _zone(tz: Any) -> Optional[tzinfo]:
    """``None`` for UTC (the fast path), else a tzinfo. Unknown zone names are an error."""
    if tz is None or tz is timezone.utc:
        return None
    if isinstance(tz, tzinfo):
        return tz
    if not isinstance(tz, str):
        raise ConfigurationError(f"tz must be a zoneinfo zone name or a tzinfo, got {tz!r}")
    if tz.upper() == "UTC":
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(f"unknown time zone {tz!r}") from exc


def _zone_name(zone: Optional[tzinfo]) -> str:
    return "UTC" if zone is None else str(getattr(zone, "key", zone))


def to_ms(when: Moment, zone: Optional[tzinfo] = None) -> float:
    """Epoch milliseconds of ``when``: a datetime (naive ones are in ``zone``, UTC if none)
    or a number of epoch milliseconds."""
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=zone or timezone.utc)
        return when.timestamp() * 1000.0
    if isinstance(when, bool) or not isinstance(when, numbers.Real):
        raise ConfigurationError(f"a time must be a datetime or epoch milliseconds, got {when!r}")
    return float(when)


def _to_datetime(ms: float, zone: Optional[tzinfo]) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, zone or timezone.utc)


def describe_ms(ms: float, zone: Optional[tzinfo] = None) -> str:
    """An instant for error messages, in ``zone`` (UTC if none)."""
    return _to_datetime(ms, zone).isoformat()


class Profile:
    """A factor >= 0 as a function of time. Call it with a datetime (or epoch ms).

    ``name`` labels it in graphs and messages; ``max`` is an upper bound of its values;
    ``step`` is true when it is piecewise constant with known change instants
    (:meth:`next_change_ms`), false for callables.
    """

    name: str = "profile"
    step: bool = True

    @property
    def max(self) -> float:
        raise NotImplementedError

    def value_ms(self, ms: float) -> float:
        """The factor at epoch millisecond ``ms``."""
        raise NotImplementedError

    def next_change_ms(self, ms: float) -> Optional[float]:
        """The first instant after ``ms`` at which the factor may change (``None``: never).
        Only for step profiles; a change instant may leave the factor as it was."""
        raise NotImplementedError

    def periodic_key(self) -> Optional[Tuple[Optional[tzinfo], Callable[[int], float]]]:
        """``(zone, factor by hour of week)`` when the factor depends only on the hour of the
        week in one zone (hourly, weekly and their products), else ``None``."""
        return None

    def __call__(self, when: Moment) -> float:
        return self.value_ms(to_ms(when))

    def __mul__(self, other: Any) -> Any:
        if isinstance(other, Profile):
            return _Product([self, other])
        if isinstance(other, Profiled):
            return other * self
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return Profiled(float(other), self)
        return NotImplemented

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class _Periodic(Profile):
    """Hourly (24 factors) or weekly (7 or 168 factors) in one zone."""

    def __init__(self, factors: Sequence[float], kind: str, zone: Optional[tzinfo], name: str):
        self.factors = tuple(factors)
        self.kind = kind
        self.zone = zone
        self.name = name
        self._max = max(self.factors)

    @property
    def max(self) -> float:
        return self._max

    def _by_hour_of_week(self, h: int) -> float:
        n = len(self.factors)
        if n == 24:
            return self.factors[h % 24]
        if n == 7:
            return self.factors[h // 24]
        return self.factors[h]

    def periodic_key(self) -> Optional[Tuple[Optional[tzinfo], Callable[[int], float]]]:
        return self.zone, self._by_hour_of_week

    def hour_of_week(self, ms: float) -> int:
        if self.zone is None:
            hours = int(ms // HOUR_MS)
            return ((hours // 24 + _EPOCH_WEEKDAY) % 7) * 24 + hours % 24
        local = _to_datetime(ms, self.zone)
        return local.weekday() * 24 + local.hour

    def value_ms(self, ms: float) -> float:
        return self._by_hour_of_week(self.hour_of_week(ms))

    def _offset_ms(self, ms: float) -> float:
        offset = _to_datetime(ms, self.zone).utcoffset()
        return 0.0 if offset is None else offset.total_seconds() * 1000.0

    def next_change_ms(self, ms: float) -> Optional[float]:
        if self.zone is None:
            return (ms // HOUR_MS + 1) * HOUR_MS
        offset = self._offset_ms(ms)
        candidate = ((ms + offset) // HOUR_MS + 1) * HOUR_MS - offset
        if self._offset_ms(candidate - 1) == offset:
            return candidate
        # The zone changes its offset (daylight saving time) before the next local hour:
        # that instant is a boundary too. Offsets change at whole seconds.
        lo, hi = math.floor(ms / 1000.0), math.ceil((candidate - 1) / 1000.0)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._offset_ms(mid * 1000.0) == offset:
                lo = mid
            else:
                hi = mid
        return max(hi * 1000.0, math.nextafter(ms, math.inf))

    def __repr__(self) -> str:
        return (
            f"{self.kind}({list(self.factors)!r}, tz={_zone_name(self.zone)!r}, name={self.name!r})"
        )


class _Piecewise(Profile):
    def __init__(
        self, starts: List[float], factors: List[float], zone: Optional[tzinfo], name: str
    ):
        self.starts = starts
        self.factors = factors
        self.zone = zone
        self.name = name
        self._max = max([1.0, *factors]) if starts else 1.0

    @property
    def max(self) -> float:
        return self._max

    def value_ms(self, ms: float) -> float:
        k = bisect.bisect_right(self.starts, ms)
        return self.factors[k - 1] if k else 1.0

    def next_change_ms(self, ms: float) -> Optional[float]:
        k = bisect.bisect_right(self.starts, ms)
        return self.starts[k] if k < len(self.starts) else None

    def __repr__(self) -> str:
        pieces = [(describe_ms(s, self.zone), f) for s, f in zip(self.starts, self.factors)]
        return f"piecewise({pieces!r}, name={self.name!r})"


class _Callable(Profile):
    step = False

    def __init__(
        self, fn: Callable[[datetime], float], maximum: float, zone: Optional[tzinfo], name: str
    ):
        self.fn = fn
        self._max = maximum
        self.zone = zone
        self.name = name

    @property
    def max(self) -> float:
        return self._max

    def value_ms(self, ms: float) -> float:
        when = _to_datetime(ms, self.zone)
        value = self.fn(when)
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ConfigurationError(
                f"profile {self.name!r} returned {value!r} at {when.isoformat()}: "
                "a profile must return a finite number >= 0"
            )
        if value > self._max:
            raise ConfigurationError(
                f"profile {self.name!r} returned {value!r} at {when.isoformat()}, "
                f"above its declared max {self._max!r}"
            )
        return float(value)

    def next_change_ms(self, ms: float) -> Optional[float]:
        raise TypeError(f"profile {self.name!r} is a callable: it has no step boundaries")

    def __repr__(self) -> str:
        return f"profile({self.fn!r}, max={self._max!r}, name={self.name!r})"


class _Product(Profile):
    parts: List[Profile]

    def __init__(self, parts: Iterable[Profile]):
        flat: List[Profile] = []
        for part in parts:
            flat.extend(part.parts if isinstance(part, _Product) else [part])
        self.parts = flat
        self.name = " x ".join(p.name for p in flat)
        self.step = all(p.step for p in flat)

    @property
    def max(self) -> float:
        return math.prod(p.max for p in self.parts)

    def value_ms(self, ms: float) -> float:
        value = 1.0
        for part in self.parts:
            value *= part.value_ms(ms)
        return value

    def next_change_ms(self, ms: float) -> Optional[float]:
        changes = [c for c in (p.next_change_ms(ms) for p in self.parts) if c is not None]
        return min(changes) if changes else None

    def periodic_key(self) -> Optional[Tuple[Optional[tzinfo], Callable[[int], float]]]:
        keys = [p.periodic_key() for p in self.parts]
        zones = {id(k[0]) if k is not None else None for k in keys}
        if any(k is None for k in keys) or len(zones) != 1:
            return None
        fns = [k[1] for k in keys if k is not None]

        def by_hour(h: int) -> float:
            return math.prod(fn(h) for fn in fns)

        return keys[0][0] if keys[0] is not None else None, by_hour

    def __repr__(self) -> str:
        return " * ".join(repr(p) for p in self.parts)


class Profiled:
    """A base times a profile: the time-varying value of a transition's probability (percent
    per tick) or of an arrival rate (subjects per tick). Made by ``base * profile``."""

    __slots__ = ("base", "profile")

    def __init__(self, base: float, profile: Profile) -> None:
        self.base = check_non_negative("the base of a profiled value", base)
        if not isinstance(profile, Profile):
            raise ConfigurationError(f"expected a profile, got {profile!r}")
        self.profile = profile

    @property
    def max(self) -> float:
        return self.base * self.profile.max

    @property
    def step(self) -> bool:
        return self.profile.step

    def value_ms(self, ms: float) -> float:
        return self.base * self.profile.value_ms(ms)

    def __call__(self, when: Moment) -> float:
        return self.value_ms(to_ms(when))

    def label(self, unit: str = "%") -> str:
        """``base% x profile-name``, as the graph shows it."""
        return f"{self.base:g}{unit} x {self.profile.name}"

    def __mul__(self, other: Any) -> "Profiled":
        if isinstance(other, Profile):
            return Profiled(self.base, self.profile * other)
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return Profiled(
                self.base * check_non_negative("a profile's multiplier", other), self.profile
            )
        return NotImplemented

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"{self.base!r} * {self.profile!r}"


def _factors(values: Any, lengths: Tuple[int, ...], what: str) -> List[float]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise ConfigurationError(f"{what} takes a list of factors, got {values!r}")
    values = list(values)
    if len(values) not in lengths:
        allowed = " or ".join(str(n) for n in lengths)
        raise ConfigurationError(f"{what} takes {allowed} factors, got {len(values)}")
    return [check_non_negative(f"{what} factor #{k}", v) for k, v in enumerate(values)]


def hourly(factors: Sequence[float], *, tz: Any = None, name: Optional[str] = None) -> Profile:
    """One factor per hour of the day (24, from 00:00 to 23:00) in zone ``tz`` (UTC if none)."""
    return _Periodic(_factors(factors, (24,), "hourly()"), "hourly", _zone(tz), name or "hourly")


def weekly(factors: Sequence[float], *, tz: Any = None, name: Optional[str] = None) -> Profile:
    """One factor per day from Monday (7), or per hour of the week from Monday 00:00 (168),
    in zone ``tz`` (UTC if none)."""
    return _Periodic(_factors(factors, (7, 168), "weekly()"), "weekly", _zone(tz), name or "weekly")


def piecewise(
    pieces: Sequence[Tuple[Moment, float]], *, tz: Any = None, name: Optional[str] = None
) -> Profile:
    """``[(start, factor), ...]``: ``factor`` from each ``start`` (a datetime; naive ones are in
    ``tz``, UTC if none) until the next start. Before the first start the factor is 1.0."""
    zone = _zone(tz)
    if isinstance(pieces, (str, bytes)) or not hasattr(pieces, "__iter__"):
        raise ConfigurationError(f"piecewise() takes a list of (start, factor), got {pieces!r}")
    starts: List[float] = []
    factors: List[float] = []
    for k, piece in enumerate(pieces):
        try:
            start, factor = piece
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"piecewise() piece #{k} must be a (start, factor) pair, got {piece!r}"
            ) from None
        ms = to_ms(start, zone)
        if starts and ms <= starts[-1]:
            raise ConfigurationError(
                f"piecewise() piece #{k} starts at {start!r}, not after the piece before it"
            )
        starts.append(ms)
        factors.append(check_non_negative(f"piecewise() factor #{k}", factor))
    return _Piecewise(starts, factors, zone, name or "piecewise")


def profile(
    fn: Callable[[datetime], float],
    *,
    max: float,
    tz: Any = None,
    name: Optional[str] = None,
) -> Profile:
    """Any callable of the tick's datetime (aware, in ``tz``, UTC if none) returning a factor
    between 0 and the declared ``max``. It must depend on the datetime only: the engine may call
    it ahead of time, more than once, in any order. A value above ``max`` is an error.

    A callable has no period, so it cannot be checked over a run of any length before it
    starts: a finite run reads it at its first ticks (65,536) before any event, and later
    ticks as the draws reach them, a few thousand at a time; an error there stops the run
    with the same message (the profile and the instant), the events before it delivered."""
    if not callable(fn):
        raise ConfigurationError(f"profile() takes a callable, got {fn!r}")
    maximum = check_non_negative("profile() max", max)
    label = name or getattr(fn, "__name__", None) or "profile"
    if label == "<lambda>":
        label = "profile"
    return _Callable(fn, maximum, _zone(tz), label)


ProbabilityLike = Union[float, Profiled]


def hour_of_week_label(h: int, zone: Optional[tzinfo], hourly_only: bool) -> str:
    clock = f"{h % 24:02d}:00"
    where = _zone_name(zone)
    return f"{clock} ({where})" if hourly_only else f"{DAY_NAMES[h // 24]} {clock} ({where})"


def first_excess(
    values: Sequence[ProbabilityLike], limit: float = 100.0, tolerance: float = 1e-9
) -> Optional[Tuple[float, str]]:
    """Check, without a run, that ``values`` (numbers and profiled values of one state) never
    sum above ``limit``. Returns ``(sum, where)`` for the first hour where they do, or ``None``
    when they never do or when this cannot be known before the run (piecewise and callable
    profiles are checked over the run's ticks instead)."""
    constant = sum(float(v) for v in values if not isinstance(v, Profiled))
    profiled = [v for v in values if isinstance(v, Profiled)]
    if constant + sum(p.max for p in profiled) <= limit + tolerance:
        return None
    keys = [p.profile.periodic_key() for p in profiled]
    if any(k is None for k in keys):
        return None
    zones = {id(k[0]) for k in keys if k is not None}
    hourly_only = all(_only_hourly(p.profile) for p in profiled)
    if len(zones) == 1:
        zone = keys[0][0] if keys[0] is not None else None
        for h in range(24 if hourly_only else 168):
            total = constant + sum(
                p.base * k[1](h) for p, k in zip(profiled, keys) if k is not None
            )
            if total > limit + tolerance:
                return total, hour_of_week_label(h, zone, hourly_only)
        return None
    # Profiles in different zones: walk the hours of a year (every daylight-saving pattern).
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for n in range(366 * 24):
        ms = (start + timedelta(hours=n)).timestamp() * 1000.0
        total = constant + sum(p.value_ms(ms) for p in profiled)
        if total > limit + tolerance:
            return total, describe_ms(ms)
    return None


def _only_hourly(p: Profile) -> bool:
    if isinstance(p, _Product):
        return all(_only_hourly(q) for q in p.parts)
    return isinstance(p, _Periodic) and len(p.factors) == 24
