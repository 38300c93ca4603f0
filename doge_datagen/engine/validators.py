"""The checks every part of doge-datagen runs on what it is given.

They live in one place so that a value is judged the same way wherever it comes in (the
constructor, ``add_transition``, ``start``, a sharded run, the command line), and so that every
message names the culprit the same way. Each check raises :class:`ConfigurationError` (a
``ValueError``) and returns the value in the form the engine uses (an ``int`` of milliseconds,
a ``float`` speed), so callers never convert twice.
"""

import math
from typing import Any, Collection, Dict, Iterable, List, Sequence

from doge_datagen.core.checks import (
    check_count,
    check_optional_count,
    check_positive,
    check_tick_ms,
    check_timestamp,
)
from doge_datagen.core.checks import is_real as _is_real
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
