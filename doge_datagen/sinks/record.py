"""Records whose fields are known before the run, compiled once.

A value function written by hand builds a dict per event, and a sink learns its shape only
from the records. A :class:`Record` says the shape up front, as a list of fields::

    Record(["timestamp", "user_id", "balance", ("event", "trigger")])

Each field is a name, which is also where its value comes from, or a pair ``(name, source)``
(or a dict ``{name: source}``). A source is ``timestamp`` (the event's), ``trigger``,
``from_state`` or ``to_state`` (the transition's), ``event_id`` (the event's stable id,
:func:`doge_datagen.event_id`), or the name of an attribute of the subject
(``subject.NAME`` says so explicitly, for an attribute named like one of the others).

A record is a value function: ``record(timestamp, subject, transition)`` returns the dict
(for any sink). Sinks that know it write from its values without making the dict: a JSON
Lines file writes each line from a template whose names were encoded once, a CSV file takes
the values as its row. The text is the same as from the dict.

A value function written as one dict display of constant keys (``return {"user_id":
subject.user_id, ...}``) has a known shape too: :func:`literal_values` reads it from the
function's code and gives the same function returning the values as a tuple, so that a file
sink writes its lines as from a record, without a dict per event.
"""

import dis
import keyword
import platform
import sys
import types
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from doge_datagen.core.types import Transition
from doge_datagen.engine.randomness import numbered_event_ids
from doge_datagen.errors import ConfigurationError

__all__ = ["Record", "SOURCES", "literal_values"]

#: The sources that are not attributes of the subject.
SOURCES = {
    "timestamp": "timestamp",
    "trigger": "transition.trigger",
    "from_state": "transition.from_state",
    "to_state": "transition.to_state",
    "event_id": "_event_id()",
}

Field = Union[str, Tuple[str, str]]


def _source_code(source: Any, name: str) -> str:
    if not isinstance(source, str) or not source:
        raise ConfigurationError(
            f"record field {name!r}: the source must be a name, got {source!r}"
        )
    if source in SOURCES:
        return SOURCES[source]
    attribute = source[len("subject.") :] if source.startswith("subject.") else source
    if not attribute.isidentifier() or keyword.iskeyword(attribute):
        raise ConfigurationError(
            f"record field {name!r}: {source!r} is not a source: use timestamp, trigger, "
            "from_state, to_state, event_id or the name of an attribute of the subject"
        )
    return f"subject.{attribute}"


class Record:
    """A record of known fields; see the module's documentation.

    ``names`` are the record's keys in order, ``sources`` where each value comes from.
    ``values(timestamp, subject, transition)`` returns the values as a tuple and the record
    itself, called the same way, the dict.
    """

    names: Tuple[str, ...]
    sources: Tuple[str, ...]
    values: Callable[[int, Any, Transition], Tuple[Any, ...]]

    def __init__(self, fields: Union[Iterable[Field], Mapping[str, str]]) -> None:
        if isinstance(fields, Record):
            fields = list(zip(fields.names, fields.sources))
        if isinstance(fields, str) or not isinstance(fields, (Mapping, Iterable)):
            raise ConfigurationError(
                f"record fields must be a list of names or (name, source) pairs, got {fields!r}"
            )
        pairs: List[Tuple[str, str]] = []
        for field in fields.items() if isinstance(fields, Mapping) else fields:
            if isinstance(field, str):
                pairs.append((field, field))
            elif isinstance(field, tuple) and len(field) == 2:
                pairs.append(field)
            else:
                raise ConfigurationError(
                    f"a record field is a name or a (name, source) pair, got {field!r}"
                )
        if not pairs:
            raise ConfigurationError("a record needs at least one field")
        codes = []
        for name, source in pairs:
            if not isinstance(name, str) or not name:
                raise ConfigurationError(f"record field names must be strings, got {name!r}")
            codes.append(_source_code(source, name))
        names = [name for name, _ in pairs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigurationError(f"record fields named twice: {', '.join(duplicates)}")
        self.names = tuple(names)
        self.sources = tuple(source for _, source in pairs)
        # Compiled once from names checked above: one function call per event, the values
        # read straight from the subject and the transition.
        tuple_code = ", ".join(codes) + ("," if len(codes) == 1 else "")
        dict_code = ", ".join(f"{name!r}: {code}" for name, code in zip(names, codes))
        source = (
            "def values(timestamp, subject, transition):\n"
            f"    return ({tuple_code})\n"
            "def row(timestamp, subject, transition):\n"
            f"    return {{{dict_code}}}\n"
        )
        # event_id: numbered per record, so that a sink given one event twice gets two ids
        namespace: Dict[str, Any] = {"_event_id": numbered_event_ids()}
        exec(compile(source, f"<record {', '.join(names)}>", "exec"), namespace)  # noqa: S102
        self.values = namespace["values"]
        self._row: Callable[[int, Any, Transition], Dict[str, Any]] = namespace["row"]

    def __call__(self, timestamp: int, subject: Any, transition: Transition) -> Dict[str, Any]:
        return self._row(timestamp, subject, transition)

    def __reduce__(self) -> Any:
        return (Record, (list(zip(self.names, self.sources)),))

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, Record)
            and self.names == other.names
            and self.sources == other.sources
        )

    def __hash__(self) -> int:
        return hash((self.names, self.sources))

    def __repr__(self) -> str:
        fields = [n if n == s else (n, s) for n, s in zip(self.names, self.sources)]
        return f"Record({fields!r})"


# -- a value function's own dict display -----------------------------------------------------

_OP = dis.opmap
_NOP, _BUILD_TUPLE = _OP["NOP"], _OP["BUILD_TUPLE"]
_LOAD_CONST, _BUILD_MAP = _OP["LOAD_CONST"], _OP.get("BUILD_CONST_KEY_MAP")
_RETURN, _RETURN_CONST = _OP["RETURN_VALUE"], _OP.get("RETURN_CONST")
_SPECIAL_FLAGS = 0x20 | 0x80 | 0x100 | 0x200  # generator, coroutine, async, async generator


def literal_values(
    function: Any,
) -> Optional[Tuple[Tuple[str, ...], Callable[[int, Any, Transition], Tuple[Any, ...]]]]:
    """``(names, values)`` of a value function whose every ``return`` is one dict display of
    constant string keys, ``return {"a": x, "b": y}``; ``None`` for any other function.

    ``values`` is the function with its code changed at those returns only: the keys are not
    loaded and the values go into a tuple instead of a dict (``BUILD_CONST_KEY_MAP`` becomes
    ``BUILD_TUPLE``, every offset kept). Everything else is the function's own: the same
    expressions in the same order, its globals, defaults and closure, file and lines in a
    traceback. So ``dict(zip(names, values(*args)))`` is what ``function(*args)`` returns,
    with the same side effects. CPython only, and only where its compiler writes such a
    display that way (3.9 to 3.13); a bound method's function is read the same way.
    """
    bound = None
    if isinstance(function, types.MethodType):
        bound, function = function.__self__, function.__func__
    if type(function) is not types.FunctionType or _BUILD_MAP is None:
        return None
    if platform.python_implementation() != "CPython" or sys.version_info >= (3, 14):
        return None
    code = function.__code__
    if code.co_flags & _SPECIAL_FLAGS:
        return None
    try:
        instructions = [i for i in dis.get_instructions(code) if i.opname != "CACHE"]
    except Exception:  # pragma: no cover - a code object dis cannot read
        return None
    names: Optional[Tuple[str, ...]] = None
    raw = bytearray(code.co_code)
    for at, instruction in enumerate(instructions):
        if instruction.opcode == _RETURN_CONST:
            return None  # a return of a constant (None): not always a dict
        if instruction.opcode != _RETURN:
            continue
        if at < 2:
            return None
        build, keys = instructions[at - 1], instructions[at - 2]
        if (
            build.opcode != _BUILD_MAP
            or build.arg is None
            or keys.arg is None
            or build.is_jump_target
            or keys.opcode != _LOAD_CONST
            or type(keys.argval) is not tuple
            or len(keys.argval) != build.arg
            or not keys.argval
            or any(type(name) is not str for name in keys.argval)
            or len(set(keys.argval)) != len(keys.argval)
            or (names is not None and keys.argval != names)
            or build.arg > 255
            or keys.arg > 255  # no EXTENDED_ARG before either
        ):
            return None
        names = keys.argval
        raw[keys.offset] = _NOP
        raw[keys.offset + 1] = 0
        raw[build.offset] = _BUILD_TUPLE
    if names is None:
        return None
    values = types.FunctionType(
        code.replace(co_code=bytes(raw)),
        function.__globals__,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    values.__kwdefaults__ = function.__kwdefaults__
    values.__qualname__ = function.__qualname__
    values.__module__ = function.__module__
    if bound is not None:
        return names, types.MethodType(values, bound)
    return names, values
