"""The checks every part of doge-datagen runs on what it is given.

They live in one place so that a value is judged the same way wherever it comes in (the
constructor, ``add_transition``, ``start``, a sharded run, the command line), and so that every
message names the culprit the same way. Each check raises :class:`ConfigurationError` (a
``ValueError``) and returns the value in the form the engine uses (an ``int`` of milliseconds,
a ``float`` speed), so callers never convert twice.
"""

import math
import numbers
from datetime import datetime, timezone
from typing import Any, Collection, Dict, Iterable, List, Optional, Sequence, Union

from doge_datagen.errors import ConfigurationError

__all__ = [
    "SUM_TOLERANCE",
    "check_arrivals",
    "check_callback",
    "check_count",
    "check_optional_count",
    "check_outgoing",
    "check_positive",
    "check_probability",
    "check_sinks",
    "check_state",
    "check_states",
    "check_tick_ms",
    "check_timestamp",
]

# Float noise allowed when probabilities of one state add up to 100 (33.4 + 33.3 + 33.3).
SUM_TOLERANCE = 1e-9


def _is_real(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real)


def check_count(name: str, value: Any) -> int:
    """A whole number, zero or more (``subjects_num``, ``ticks_num``, ``shards``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigurationError(f"{name} must be a whole number, got {value!r}")
    if value < 0:
        raise ConfigurationError(f"{name} must not be negative, got {value!r}")
    return int(value)


def check_optional_count(name: str, value: Any) -> Optional[int]:
    """Like :func:`check_count`, with ``None`` meaning "no limit"."""
    return None if value is None else check_count(name, value)


def check_positive(name: str, value: Any) -> float:
    """A finite number above zero, as a ``float`` (``Fraction`` and ``Decimal`` welcome)."""
    if not _is_real(value):
        raise ConfigurationError(f"{name} must be a positive number, got {value!r}")
    try:
        number = float(value)
    except (OverflowError, ValueError):
        raise ConfigurationError(f"{name} must be a positive number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ConfigurationError(f"{name} must be a positive number, got {value!r}")
    return number


def _whole(value: Any) -> Optional[int]:
    """``value`` as an ``int`` if it is a whole real number, else ``None``."""
    if not _is_real(value):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    try:
        number = float(value)
    except (OverflowError, ValueError):
        return None
    if not math.isfinite(number) or number != math.floor(number):
        return None
    return int(number)


def check_tick_ms(value: Any) -> Union[int, float]:
    """The length of a tick in milliseconds: a positive number, kept as an ``int`` when it
    is whole. A fractional tick is allowed (three ticks a second is ``333.3``); the engine
    rounds each tick's timestamp to a whole millisecond, so sinks only ever see integers."""
    whole = _whole(value)
    if whole is not None:
        if whole <= 0:
            raise ConfigurationError(f"tick_ms must be a positive number, got {value!r}")
        return whole
    return check_positive("tick_ms", value)


def check_timestamp(name: str, value: Any) -> Optional[int]:
    """Epoch milliseconds or a ``datetime``, rounded to a whole millisecond; or ``None``.

    A naive ``datetime`` is UTC, as everywhere in doge-datagen (profiles read it the same
    way), so a run's timestamps never depend on the time zone of the machine it runs on.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return round(value.timestamp() * 1000)
    if _is_real(value):
        try:
            number = float(value)
        except (OverflowError, ValueError):
            number = math.nan
        if math.isfinite(number):
            return int(value) if isinstance(value, numbers.Integral) else round(number)
    raise ConfigurationError(
        f"{name} must be epoch milliseconds, a datetime or None, got {value!r}"
    )


def check_states(states: Any) -> List[str]:
    """The list of state names: strings, each once."""
    if isinstance(states, (str, bytes)) or not isinstance(states, Iterable):
        raise ConfigurationError(f"states must be a list of state names, got {states!r}")
    names = list(states)
    seen = set()
    for state in names:
        if not isinstance(state, str):
            raise ConfigurationError(f"state {state!r} is not a string")
        if state in seen:
            raise ConfigurationError(f"state {state!r} is listed twice in states")
        seen.add(state)
    return names


def check_state(where: str, role: str, state: Any, states: Collection[str]) -> str:
    if not isinstance(state, str) or state not in states:
        raise ConfigurationError(
            f"{where}: {role} {state!r} is not one of the states {list(states)!r}"
        )
    return state


def check_probability(where: str, value: Any) -> Any:
    """A probability in percent per tick: a finite number from 0 to 100, or a base times a
    profile (:mod:`doge_datagen.profiles`), whose sums per state :func:`check_outgoing`
    checks hour by hour."""
    from doge_datagen.profiles import Profile, Profiled

    if isinstance(value, Profiled):
        return value
    if isinstance(value, Profile):
        raise ConfigurationError(
            f"{where}: probability {value!r} is a profile without its base: "
            "write base * profile, e.g. 0.5 * hourly([...])"
        )
    if not _is_real(value) or not math.isfinite(value) or value < 0 or value > 100 + SUM_TOLERANCE:
        raise ConfigurationError(
            f"{where}: probability must be a finite number from 0 to 100, got {value!r}"
        )
    return value


def check_callback(where: str, callback: Any) -> None:
    if callback is not None and not callable(callback):
        raise ConfigurationError(f"{where}: action_callback {callback!r} is not callable")


def check_sinks(where: str, event_sinks: Any) -> List[Any]:
    """The sinks of a transition: a list (or other iterable) of objects with ``collect``.

    A single sink passed without a list is the most common slip, and iterating over it would
    either drop it silently or fail far from here, so it gets its own message.
    """
    if event_sinks is None:
        return []
    if callable(getattr(event_sinks, "collect", None)):
        raise ConfigurationError(
            f"{where}: event_sinks must be a list of sinks, got the single sink {event_sinks!r}; "
            "write event_sinks=[sink]"
        )
    if isinstance(event_sinks, (str, bytes)) or not isinstance(event_sinks, Iterable):
        raise ConfigurationError(
            f"{where}: event_sinks must be a list of sinks, got {event_sinks!r}"
        )
    sinks = list(event_sinks)
    for sink in sinks:
        if not callable(getattr(sink, "collect", None)):
            raise ConfigurationError(f"{where}: event sink {sink!r} has no collect() method")
    return sinks


def check_outgoing(state: str, transitions: Sequence[Any]) -> None:
    """One state's transitions: each trigger once, probabilities adding up to at most 100."""
    triggers: Dict[str, Any] = {}
    for transition in transitions:
        if transition.trigger in triggers:
            raise ConfigurationError(
                f"transition {transition.trigger!r} from {state!r}: state {state!r} already has "
                f"trigger {transition.trigger!r}"
            )
        triggers[transition.trigger] = transition
    from doge_datagen.profiles import Profiled, first_excess

    probabilities = [t.probability for t in transitions]
    if any(isinstance(p, Profiled) for p in probabilities):
        excess = first_excess(probabilities, 100.0, SUM_TOLERANCE)
        if excess is not None:
            last = transitions[-1]
            total, when = excess
            raise ConfigurationError(
                f"transition {last.trigger!r} from {state!r}: probabilities from state "
                f"{state!r} would sum to {total:g} at {when}, above 100"
            )
        return
    total = sum(probabilities)
    if total > 100 + SUM_TOLERANCE:
        last = transitions[-1]
        raise ConfigurationError(
            f"transition {last.trigger!r} from {state!r}: probabilities from state {state!r} "
            f"would sum to {total!r}, above 100"
        )


def check_arrivals(value: Any) -> Any:
    """An arrival rate: ``None``, new subjects per tick (a finite number >= 0), or a base
    rate times a profile (``2.0 * hourly([...])``)."""
    from doge_datagen.profiles import Profile, Profiled

    if value is None or isinstance(value, Profiled):
        return value
    if isinstance(value, Profile):
        raise ConfigurationError(
            f"arrivals {value!r} is a profile without its base rate: write rate * profile, "
            "e.g. 2.0 * hourly([...]) for 2 new subjects per tick on average"
        )
    if not _is_real(value) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(
            f"arrivals must be a number of new subjects per tick (>= 0), or a rate times a "
            f"profile, got {value!r}"
        )
    return value
