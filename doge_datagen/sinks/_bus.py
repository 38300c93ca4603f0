"""What the event-bus sinks (Redis Streams, RabbitMQ, MQTT, NATS) share: checking their
arguments, choosing the destination of an event and turning a value into a message body.

A destination (stream, exchange, topic, subject) is a string, or a function
``(subject, transition) -> str`` so that one sink can spread events over several of them.
A value is sent as it is when it is ``bytes``, UTF-8 encoded when it is a ``str``, and as
JSON otherwise (a dict, a list, a number).
"""

import json
from typing import Any, Callable, Optional, Tuple, Union

from doge_datagen.core.types import Transition
from doge_datagen.errors import ConfigurationError, RecordError

KeyFunction = Callable[[Any, Transition], Any]
ValueFunction = Callable[[int, Any, Transition], Any]
Destination = Union[str, Callable[[Any, Transition], str]]

_json = json.JSONEncoder(separators=(",", ":")).encode


def check_destination(what: str, destination: Any) -> Tuple[str, Optional[Callable[..., Any]]]:
    """``(text, function)``: a fixed destination has no function; a function is shown by name."""
    if callable(destination):
        return getattr(destination, "__name__", repr(destination)), destination
    if not isinstance(destination, str) or not destination:
        raise ConfigurationError(
            f"{what} must be a non-empty string or a function (subject, transition) -> str, "
            f"got {destination!r}"
        )
    return destination, None


def check_functions(where: str, key_function: Any, value_function: Any) -> None:
    """``key_function`` may be ``None``; ``value_function`` must be callable."""
    if key_function is not None and not callable(key_function):
        raise ConfigurationError(f"{where}: key_function {key_function!r} is not callable")
    if not callable(value_function):
        raise ConfigurationError(f"{where}: value_function {value_function!r} is not callable")


def payload(value: Any) -> bytes:
    """A message body: bytes as they are, text as UTF-8, anything else as JSON."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return _json(value).encode()


def encode_or_record_error(name: str, value: Any, transition: Transition) -> bytes:
    """:func:`payload`, with a value JSON cannot encode reported as a :class:`RecordError`."""
    try:
        return payload(value)
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise RecordError(
            f"{name}: cannot encode the value of an event of transition "
            f"{transition.trigger!r}: {exc}"
        ) from exc


def destination_of(
    name: str, what: str, function: Callable[..., Any], subject: Any, transition: Transition
) -> str:
    """Call a destination function and check that it gave a non-empty string."""
    result = function(subject, transition)
    if not isinstance(result, str) or not result:
        raise RecordError(
            f"{name}: the {what} function returned {result!r} for an event of transition "
            f"{transition.trigger!r}; it must return a non-empty string"
        )
    return result


def key_text(name: str, key: Any, transition: Transition) -> str:
    """A key used as a routing key or a topic/subject level: text, or a number."""
    if isinstance(key, str):
        return key
    if isinstance(key, bytes):
        return key.decode()
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return str(key)
    raise RecordError(
        f"{name}: the key of an event of transition {transition.trigger!r} must be a string "
        f"or a number, got {type(key).__name__}"
    )
