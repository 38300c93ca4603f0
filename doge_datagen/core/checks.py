"""The number checks: counts, finite and positive numbers, seconds, tick lengths and
timestamps, each with an error that names the setting and the value it refused. Every part of
the package checks numbers here.
"""

import math
import numbers
from datetime import datetime, timezone
from typing import Any, Optional, Union

from doge_datagen.errors import ConfigurationError

__all__ = [
    "check_count",
    "check_finite",
    "check_non_negative",
    "check_optional_count",
    "check_optional_seconds",
    "check_positive",
    "check_positive_count",
    "check_seconds",
    "check_tick_ms",
    "check_timestamp",
    "is_real",
    "whole",
]


def is_real(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real)


def check_count(name: str, value: Any) -> int:
    """A whole number, zero or more (``subjects_num``, ``ticks_num``, ``shards``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigurationError(f"{name} must be a whole number, got {value!r}")
    if value < 0:
        raise ConfigurationError(f"{name} must not be negative, got {value!r}")
    return int(value)


def check_positive_count(name: str, value: Any) -> int:
    """A whole number, one or more (batch sizes, buffer lengths, ``inflight``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigurationError(f"{name} must be a positive whole number, got {value!r}")
    return int(value)


def check_optional_count(name: str, value: Any) -> Optional[int]:
    """Like :func:`check_count`, with ``None`` meaning "no limit"."""
    return None if value is None else check_count(name, value)


def check_positive(name: str, value: Any) -> float:
    """A finite number above zero, as a ``float`` (``Fraction`` and ``Decimal`` welcome)."""
    number = _finite(value)
    if number is None or number <= 0:
        raise ConfigurationError(f"{name} must be a positive number, got {value!r}")
    return number


def _finite(value: Any) -> Optional[float]:
    """``value`` as a finite ``float`` if it is a real number, else ``None``."""
    if not is_real(value):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError):
        return None
    return number if math.isfinite(number) else None


def check_finite(name: str, value: Any) -> float:
    """A finite number, as a ``float``."""
    number = _finite(value)
    if number is None:
        raise ConfigurationError(f"{name} must be a finite number, got {value!r}")
    return number


def check_non_negative(name: str, value: Any) -> float:
    """A finite number, zero or more, as a ``float`` (a factor, a weight)."""
    number = _finite(value)
    if number is None or number < 0:
        raise ConfigurationError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def check_seconds(name: str, value: Any, *, zero: bool = False) -> float:
    """A finite number of seconds above zero, or zero or more with ``zero=True`` (timeouts,
    pauses, intervals), as a ``float``."""
    number = _finite(value)
    if number is None or not (number >= 0 if zero else number > 0):
        what = "a number of seconds >= 0" if zero else "a positive number of seconds"
        raise ConfigurationError(f"{name} must be {what}, got {value!r}")
    return number


def check_optional_seconds(name: str, value: Any) -> Optional[float]:
    """Like :func:`check_seconds` (above zero), with ``None`` meaning "no bound"."""
    if value is None:
        return None
    number = _finite(value)
    if number is None or number <= 0:
        raise ConfigurationError(
            f"{name} must be a positive number of seconds or None, got {value!r}"
        )
    return number


def whole(value: Any) -> Optional[int]:
    """``value`` as an ``int`` if it is a whole real number, else ``None``."""
    if not is_real(value):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    number = _finite(value)
    if number is None or number != math.floor(number):
        return None
    return int(number)


def check_tick_ms(value: Any) -> Union[int, float]:
    """The length of a tick in milliseconds: a positive number, kept as an ``int`` when it
    is whole. A fractional tick is allowed (three ticks a second is ``333.3``); the engine
    rounds each tick's timestamp to a whole millisecond, so sinks only ever see integers."""
    number = whole(value)
    if number is not None:
        if number <= 0:
            raise ConfigurationError(f"tick_ms must be a positive number, got {value!r}")
        return number
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
    if is_real(value):
        try:
            number = float(value)
        except (OverflowError, ValueError):
            number = math.nan
        if math.isfinite(number):
            return int(value) if isinstance(value, numbers.Integral) else round(number)
    raise ConfigurationError(
        f"{name} must be epoch milliseconds, a datetime or None, got {value!r}"
    )
