"""A model file checked and built into a :class:`~doge_datagen.DataOnlineGenerator`.

Everything is checked before anything is made: every key, type, state, sink name, expression
and probability, with an error ``FILE:LINE:COLUMN: message`` at the first fault
(:class:`ModelFileError`). Only then are the subject class, the factory, the transitions'
callbacks and the records compiled (each once) and the sinks made from their URLs, so that a
refused file opens no sink and writes nothing.
"""

import importlib
import os
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qsl

from doge_datagen.core.types import EventSink, SubjectFactory
from doge_datagen.engine.randomness import event_id
from doge_datagen.errors import ConfigurationError
from doge_datagen.model import DataOnlineGenerator
from doge_datagen.modelfile.expressions import (
    RESERVED,
    ExpressionError,
    Scope,
    check_expression,
    check_statement,
    closest,
    compile_functions,
    constant_value,
    function_globals,
    uses_fake,
)
from doge_datagen.modelfile.yamlmarks import Mark, MarkedDict, MarkedList, YamlError, parse

__all__ = ["ModelFileError", "Model", "load", "read_model", "SQL_TYPES"]

_UNSET: Any = object()

TOP_KEYS = (
    "name",
    "description",
    "states",
    "initial_state",
    "subjects",
    "tick",
    "tick_ms",
    "ticks",
    "seed",
    "timestamp_start",
    "timezone",
    "locale",
    "params",
    "subject",
    "factory",
    "attributes",
    "arrivals",
    "transitions",
    "sinks",
    "populations",
)
TRANSITION_KEYS = ("trigger", "from", "to", "probability", "let", "when", "do", "action", "sinks")
SINK_KEYS = (
    "url",
    "record",
    "key",
    "columns",
    "primary_key",
    "references",
    "table",
    "schema",
    "sink",
    "envelope",
)
PROFILE_KEYS = ("base", "hourly", "weekly", "piecewise", "tz")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)\s*$")
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_PYTHON_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

#: The SQL column type of a record field, from what its value is known to be.
SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE PRECISION", "str": "VARCHAR(255)", "bool": "BOOLEAN"}


class ModelFileError(ConfigurationError):
    """A model file that is refused: ``FILE:LINE:COLUMN: message``."""

    def __init__(self, filename: str, mark: Optional[Mark], message: str) -> None:
        self.filename = filename
        self.line: Optional[int] = mark[0] if mark is not None else None
        self.column: Optional[int] = mark[1] if mark is not None else None
        self.message = message
        place = f"{filename}:{mark[0]}:{mark[1]}" if mark is not None else filename
        super().__init__(f"{place}: {message}")


def _said(exc: ExpressionError, where: str = "") -> str:
    """An expression's error, the place in the entry (`` in when``) before the suggestion."""
    return f"{exc.message}{where}{exc.hint}"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _File:
    """The file being checked: its name, for the messages."""

    def __init__(self, filename: str) -> None:
        self.filename = filename

    def fail(self, mark: Optional[Mark], message: str) -> "ModelFileError":
        return ModelFileError(self.filename, mark, message)

    def keys(self, mapping: MarkedDict, allowed: Sequence[str], what: str) -> None:
        for key in mapping:
            if key not in allowed:
                hint = closest(str(key), allowed)
                more = f" (did you mean {hint!r}?)" if hint else ""
                raise self.fail(mapping.key_marks[key], f"{what}: unknown key {key!r}{more}")

    def mapping(self, value: Any, mark: Optional[Mark], what: str) -> MarkedDict:
        if not isinstance(value, MarkedDict):
            raise self.fail(mark, f"{what} must be a mapping, got {_type_name(value)}")
        return value

    def sequence(self, value: Any, mark: Optional[Mark], what: str) -> MarkedList:
        if not isinstance(value, MarkedList):
            raise self.fail(mark, f"{what} must be a list, got {_type_name(value)}")
        return value

    def string(self, value: Any, mark: Optional[Mark], what: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(mark, f"{what} must be a non-empty string, got {_type_name(value)}")
        return value


class _Transition:
    def __init__(self, spec: MarkedDict, mark: Mark) -> None:
        self.spec = spec
        self.mark = mark
        self.trigger = ""
        self.from_states: List[str] = []
        self.to_state = ""
        self.probability: Any = None
        self.body: List[str] = []
        self.uses_timestamp = False
        self.uses_tick = False
        self.action: Optional[Callable[..., Any]] = None
        self.sinks: List[str] = []


class _Sink:
    def __init__(self, name: str, mark: Mark) -> None:
        self.name = name
        self.mark = mark
        self.url: Any = None
        self.fields: List[Tuple[str, str]] = []  # (name, python source)
        self.simple: Optional[List[Tuple[str, str]]] = None  # Record fields when plain sources
        self.kinds: Dict[str, str] = {}
        self.key: Optional[str] = None
        self.columns: Dict[str, str] = {}
        self.primary_key: List[str] = []
        self.references: Dict[str, str] = {}
        self.table: Optional[str] = None
        self.avro_schema: Optional[str] = None  # JSON text
        self.python: Optional[Callable[..., Any]] = None
        #: ``envelope: debezium``: the sink writes the subjects' changes (``key``: the
        #: attribute that keys them, ``None`` for the subject's index).
        self.envelope: Optional[str] = None
        self.envelope_key: Optional[str] = None


class Model:
    """A checked model file: what :func:`load` builds a generator from."""

    def __init__(self) -> None:
        self.name = "model"
        self.states: List[str] = []
        self.initial_state = ""
        self.subjects = 0
        self.tick_ms: Union[int, float] = 60_000
        self.ticks: Optional[int] = 1000
        self.seed: Any = None
        self.timestamp_start: Any = 0
        self.timezone: Optional[str] = None
        self.locale: Optional[str] = None  # of fake.NAME(...), en_US when not given
        self.params: Dict[str, Any] = {}
        self.attributes: List[Tuple[str, str]] = []  # (name, python source)
        self.attribute_kinds: Dict[str, str] = {}
        self.factory: Optional[Callable[..., Any]] = None
        self.arrivals: Any = None
        self.transitions: List[_Transition] = []
        self.sinks: Dict[str, _Sink] = {}
        self.filename = "<model>"
        #: A model of several populations (``populations:``): each by name, read by
        #: :mod:`doge_datagen.modelfile.populations`; empty for a model of one.
        self.populations: Dict[str, Any] = {}


def _read(source: Any) -> Tuple[str, str]:
    """The text of ``source`` (a path or the text itself) and the name messages give it."""
    if isinstance(source, Path):
        return source.read_text(encoding="utf-8"), str(source)
    if not isinstance(source, str):
        raise ConfigurationError(f"load() takes a path or the text of a model, got {source!r}")
    if "\n" not in source and (
        source.endswith((".yaml", ".yml", ".json")) or os.path.isfile(source)
    ):
        try:
            with open(source, encoding="utf-8") as handle:
                return handle.read(), source
        except OSError as exc:
            raise ConfigurationError(f"cannot read model file {source!r}: {exc.strerror}") from None
    return source, "<model>"


def _python_ref(file: _File, value: Any, mark: Mark, what: str, trust: bool) -> Any:
    text = file.string(value, mark, what)
    if not _PYTHON_REF.match(text):
        raise file.fail(mark, f"{what} must name Python code as MODULE:FUNCTION, got {text!r}")
    if not trust:
        raise file.fail(
            mark,
            f"{what} names Python code ({text}); a model file runs code only when trusted "
            "(--trust, load(..., trust=True))",
        )
    module, _, name = text.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise file.fail(mark, f"{what}: cannot import {text}: {exc}") from None


def _duration(file: _File, value: Any, mark: Mark, params: Dict[str, Any]) -> Union[int, float]:
    if isinstance(value, str):
        found = _DURATION.match(value)
        if found:
            ms = float(found.group(1)) * _UNITS[found.group(2)]
            return int(ms) if ms == int(ms) else ms
    return _number(file, value, mark, "tick", params, positive=True)


def _number(
    file: _File,
    value: Any,
    mark: Optional[Mark],
    what: str,
    params: Dict[str, Any],
    whole: bool = False,
    positive: bool = False,
) -> Any:
    if isinstance(value, str):
        try:
            value = constant_value(value, params)
        except ExpressionError as exc:
            raise file.fail(mark, f"{what}: {_said(exc)}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise file.fail(mark, f"{what} must be a number, got {_type_name(value)}")
    if whole:
        if value != int(value):
            raise file.fail(mark, f"{what} must be a whole number, got {value!r}")
        value = int(value)
    if value < 0 or (positive and value == 0):
        raise file.fail(
            mark, f"{what} must be {'above' if positive else 'at least'} 0, got {value}"
        )
    return value


def _timestamp(file: _File, value: Any, mark: Mark) -> Any:
    if value is None or value == "now":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise file.fail(
                mark, f"timestamp_start must be epoch milliseconds or an ISO date, got {value!r}"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, int):
        raise file.fail(mark, f"timestamp_start must be whole epoch milliseconds, got {value!r}")
    return value


def _params(file: _File, spec: Any, mark: Mark, overrides: Dict[str, Any]) -> Dict[str, Any]:
    params: Dict[str, Any] = {}
    if spec is not None:
        spec = file.mapping(spec, mark, "params")
        for name, value in spec.items():
            where = spec.key_marks[name]
            _check_name(file, name, where, "parameter")
            if isinstance(value, (dict, list)) and not isinstance(value, MarkedList):
                raise file.fail(spec.value_marks[name], f"parameter {name!r}: a value or a list")
            params[name] = list(value) if isinstance(value, list) else value
    for name, value in overrides.items():
        if name not in params:
            hint = closest(name, params)
            more = f" (did you mean {hint!r}?)" if hint else ""
            known = ", ".join(params) or "none"
            raise ConfigurationError(f"no parameter {name!r}{more}; the model's: {known}")
        default = params[name]
        if isinstance(value, str) and not isinstance(default, str):
            from doge_datagen.modelfile.yamlmarks import parse as parse_value

            try:
                value = parse_value(value)
            except YamlError:
                pass
        if isinstance(default, bool) != isinstance(value, bool) or (
            isinstance(default, (int, float))
            and not isinstance(default, bool)
            and not isinstance(value, (int, float))
        ):
            raise ConfigurationError(
                f"parameter {name!r} is {_type_name(default)} ({default!r}), got {value!r}"
            )
        if isinstance(default, str) and not isinstance(value, str):
            value = str(value)
        params[name] = value
    return params


def _check_name(file: _File, name: Any, mark: Mark, what: str) -> None:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise file.fail(
            mark, f"{what} {name!r}: a name is letters, digits and '_', starting with a letter"
        )
    if name in RESERVED:
        raise file.fail(mark, f"{what} {name!r}: the name is reserved by the expression language")


def _kind_of(source: str, known: Optional[Dict[str, str]] = None) -> Optional[str]:
    """What a subject expression's value is, when it is plain to see (for SQL columns)."""
    import ast

    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, ast.Name):
        return "int" if node.id in ("index", "timestamp", "tick") else (known or {}).get(node.id)
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            return "bool"
        return {int: "int", float: "float", str: "str"}.get(type(value))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id == "round" and len(node.args) + len(node.keywords) > 1:
            return "float"  # round(x, 2): a number with digits after the point
        return {
            "randint": "int",
            "randrange": "int",
            "int": "int",
            "len": "int",
            "round": "int",
            "hour": "int",
            "weekday": "int",
            "uniform": "float",
            "random": "float",
            "gauss": "float",
            "normalvariate": "float",
            "expovariate": "float",
            "lognormvariate": "float",
            "triangular": "float",
            "float": "float",
            "str": "str",
            "iso": "str",
            "date": "str",
            "bool": "bool",
        }.get(node.func.id)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return _FAKE_KINDS.get(node.func.attr) if uses_fake(node) else None
    if isinstance(node, ast.JoinedStr):
        return "str"
    return None


#: What ``fake.NAME(...)`` gives, where it is a number, a string or a truth value.
_FAKE_KINDS = {
    **{name: "str" for name in (
        "first_name", "last_name", "name", "email", "user_name", "phone_number",
        "street_address", "city", "postcode", "country_code", "address", "company", "job",
        "iban", "credit_card_number", "ipv4", "ipv6", "mac_address", "user_agent", "url",
        "word", "sentence", "product_name", "currency_code", "uuid4")},
    **{name: "int" for name in ("integer", "zipf", "poisson", "sequence", "id",
                                "timestamp_between")},
    **{name: "float" for name in ("uniform", "normal", "lognormal", "exponential", "pareto",
                                  "latitude", "longitude")},
    "bernoulli": "bool",
}  # fmt: skip


def _profile(file: _File, spec: MarkedDict, mark: Mark, params: Dict[str, Any], tz: Any) -> Any:
    from doge_datagen import profiles

    file.keys(spec, PROFILE_KEYS, "probability")
    if "base" not in spec:
        raise file.fail(mark, "a profiled probability needs 'base'")
    base = _number(file, spec["base"], spec.value_marks["base"], "base", params)
    zone = spec.get("tz", tz)
    shapes = [k for k in ("hourly", "weekly", "piecewise") if k in spec]
    if not shapes:
        raise file.fail(mark, "a profiled probability needs hourly, weekly or piecewise")
    result: Any = None
    for shape in shapes:
        where = spec.value_marks[shape]
        values = file.sequence(spec[shape], where, shape)
        try:
            if shape == "piecewise":
                pieces = []
                for piece, piece_mark in zip(values, values.item_marks):
                    if not isinstance(piece, list) or len(piece) != 2:
                        raise file.fail(piece_mark, "a piece is [START, FACTOR]")
                    start = piece[0]
                    if isinstance(start, str):
                        start = datetime.fromisoformat(start.replace("Z", "+00:00"))
                    pieces.append((start, _number(file, piece[1], piece_mark, "factor", params)))
                made = profiles.piecewise(pieces, tz=zone)
            else:
                factors = [
                    _number(file, v, m, f"{shape} factor", params)
                    for v, m in zip(values, values.item_marks)
                ]
                made = getattr(profiles, shape)(factors, tz=zone, name=shape)
        except ConfigurationError as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise file.fail(where, str(exc)) from None
        result = made if result is None else result * made
    return base * result


def read_model(
    source: Any,
    *,
    trust: bool = False,
    params: Optional[Dict[str, Any]] = None,
    filename: Optional[str] = None,
) -> Model:
    """Check a model file (a path or its text) and return what it says, compiled to Python
    source but not yet built. Raises :class:`ModelFileError` at the first fault."""
    text, name = _read(source)
    file = _File(filename or name)
    try:
        top = parse(text)
    except YamlError as exc:
        raise file.fail(exc.mark, exc.message) from None
    if not isinstance(top, MarkedDict):
        raise file.fail((1, 1), f"a model file is a mapping, got {_type_name(top)}")
    file.keys(top, TOP_KEYS, "model")
    model = Model()
    model.filename = file.filename
    if "populations" in top:
        from doge_datagen.modelfile.populations import read_populations

        read_populations(sys.modules[__name__], file, top, model, dict(params or {}), trust)
        return model
    for required in ("states", "transitions"):
        if required not in top:
            raise file.fail(top.mark, f"the model needs {required!r}")
    model.name = file.string(top.get("name", "model"), _at(top, "name"), "name")
    model.params = _params(file, top.get("params"), _at(top, "params"), dict(params or {}))
    _read_states(file, top, model)
    _read_timing(file, top, model)
    _read_locale(file, top, model)
    attributes = _read_subject_block(file, top, model, trust)
    _read_arrivals(file, top, model)
    _read_sinks(file, top, attributes, model, trust)
    _read_transitions(file, top, attributes, model, trust)
    _check_sums(file, model)
    return model


def _at(mapping: MarkedDict, key: str) -> Mark:
    """Where the value of ``key`` was written, or the mapping itself when it is not given."""
    return mapping.value_marks.get(key, mapping.mark)


def _state(file: _File, model: Model, value: Any, where: Mark, what: str) -> str:
    """``value``, a state the model lists."""
    text = file.string(value, where, what)
    if text not in model.states:
        hint = closest(text, model.states)
        more = f" (did you mean {hint!r}?)" if hint else ""
        raise file.fail(where, f"{what}: unknown state {text!r}{more}")
    return text


def _read_states(file: _File, top: MarkedDict, model: Model) -> None:
    """``states`` and ``initial_state``."""
    states = file.sequence(top["states"], _at(top, "states"), "states")
    for state_name, state_mark in zip(states, states.item_marks):
        file.string(state_name, state_mark, "a state")
        if model.states.count(state_name):
            raise file.fail(state_mark, f"state {state_name!r} is listed twice")
        model.states.append(state_name)
    if not model.states:
        raise file.fail(_at(top, "states"), "the model needs at least one state")
    model.initial_state = _state(
        file,
        model,
        top.get("initial_state", model.states[0]),
        _at(top, "initial_state"),
        "initial_state",
    )


def _read_timing(file: _File, top: MarkedDict, model: Model) -> None:
    """``subjects``, ``tick`` or ``tick_ms``, ``ticks``, ``seed``, ``timestamp_start`` and
    ``timezone``."""
    constants = model.params
    model.subjects = _number(file, top.get("subjects", 1), _at(top, "subjects"), "subjects",
                             constants, whole=True)  # fmt: skip
    if "tick" in top and "tick_ms" in top:
        raise file.fail(top.key_marks["tick_ms"], "give tick or tick_ms, not both")
    if "tick_ms" in top:
        model.tick_ms = _number(file, top["tick_ms"], _at(top, "tick_ms"), "tick_ms", constants,
                                positive=True)  # fmt: skip
    elif "tick" in top:
        model.tick_ms = _duration(file, top["tick"], _at(top, "tick"), constants)
    ticks = top.get("ticks", 1000)
    model.ticks = None if ticks is None else _number(file, ticks, _at(top, "ticks"), "ticks",
                                                     constants, whole=True)  # fmt: skip
    seed = top.get("seed")
    if isinstance(seed, (list, dict, float)):
        raise file.fail(_at(top, "seed"), f"seed must be a whole number or a string, got {seed!r}")
    model.seed = seed
    model.timestamp_start = _timestamp(
        file, top.get("timestamp_start", 0), _at(top, "timestamp_start")
    )
    tz = top.get("timezone")
    if tz is not None:
        model.timezone = file.string(tz, _at(top, "timezone"), "timezone")
        try:
            from doge_datagen.profiles import _zone

            _zone(model.timezone)
        except ConfigurationError as exc:
            raise file.fail(_at(top, "timezone"), str(exc)) from None


def _read_locale(file: _File, top: MarkedDict, model: Model) -> None:
    if "locale" in top:
        from doge_datagen.values import LOCALES

        locale = file.string(top["locale"], _at(top, "locale"), "locale").replace("-", "_")
        if locale not in LOCALES:
            hint = closest(locale, LOCALES)
            more = f" (did you mean {hint!r}?)" if hint else ""
            raise file.fail(
                _at(top, "locale"),
                f"locale: unknown locale {locale!r}{more}; the locales are {', '.join(LOCALES)}",
            )
        model.locale = locale


def _read_subject_block(file: _File, top: MarkedDict, model: Model, trust: bool) -> List[str]:
    """``factory`` with ``attributes``, or ``subject``; the names of the subjects' attributes."""
    if "factory" in top:
        model.factory = _python_ref(file, top["factory"], _at(top, "factory"), "factory", trust)
        if "subject" in top:
            raise file.fail(top.key_marks["factory"], "give subject or factory, not both")
        attributes: List[str] = []
        declared = top.get("attributes", MarkedList())
        declared = file.sequence(declared, _at(top, "attributes"), "attributes")
        for attribute, attribute_mark in zip(declared, getattr(declared, "item_marks", [])):
            _check_name(file, attribute, attribute_mark, "attribute")
            attributes.append(attribute)
        return attributes
    if "attributes" in top:
        raise file.fail(
            top.key_marks["attributes"],
            "attributes names the attributes of a factory's subjects: give it with factory",
        )
    subject = file.mapping(top.get("subject", MarkedDict()), _at(top, "subject"), "subject")
    return _read_subject_attributes(file, subject, model, trust)


def _read_subject_attributes(
    file: _File, subject: MarkedDict, model: Model, trust: bool
) -> List[str]:
    """The ``subject`` mapping: each attribute's expression sees the attributes before it."""
    if not hasattr(subject, "key_marks"):
        subject.key_marks, subject.value_marks = {}, {}
    attributes: List[str] = []
    for attribute, expression in subject.items():
        _check_name(file, attribute, subject.key_marks[attribute], "attribute")
        names = {a: f"v_{a}" for a in attributes}
        names["index"] = "index"
        scope = Scope(names, model.params, random=True, faker=trust)
        try:
            code, _ = check_expression(expression, scope)
        except ExpressionError as exc:
            raise file.fail(
                subject.value_marks[attribute], f"attribute {attribute!r}: {_said(exc)}"
            ) from None
        model.attributes.append((attribute, code))
        kind = _kind_of(str(expression), model.attribute_kinds)
        if kind is not None:
            model.attribute_kinds[attribute] = kind
        attributes.append(attribute)
    return attributes


def _read_arrivals(file: _File, top: MarkedDict, model: Model) -> None:
    if "arrivals" in top and top["arrivals"] is not None:
        value = top["arrivals"]
        if isinstance(value, MarkedDict):
            model.arrivals = _profile(file, value, _at(top, "arrivals"), model.params,
                                      model.timezone)  # fmt: skip
        else:
            model.arrivals = _number(file, value, _at(top, "arrivals"), "arrivals", model.params)


def _read_sinks(
    file: _File, top: MarkedDict, attributes: List[str], model: Model, trust: bool
) -> None:
    """``sinks``: each a URL, or a mapping of its options."""
    sinks = file.mapping(top.get("sinks", MarkedDict()), _at(top, "sinks"), "sinks")
    for sink_name, spec in sinks.items() if hasattr(sinks, "key_marks") else ():
        where = sinks.key_marks[sink_name]
        if not isinstance(sink_name, str) or not _IDENTIFIER.match(sink_name):
            raise file.fail(where, f"sink name {sink_name!r}: letters, digits and '_'")
        sink = _Sink(sink_name, where)
        if isinstance(spec, str):
            spec_map = MarkedDict({"url": spec})
            spec_map.mark = sinks.value_marks[sink_name]
            spec_map.key_marks = {"url": spec_map.mark}
            spec_map.value_marks = {"url": spec_map.mark}
            spec = spec_map
        spec = file.mapping(spec, sinks.value_marks[sink_name], f"sink {sink_name!r}")
        file.keys(spec, SINK_KEYS, f"sink {sink_name!r}")
        _read_sink(file, sink, spec, attributes, model, trust)
        model.sinks[sink_name] = sink


def _read_transitions(
    file: _File, top: MarkedDict, attributes: List[str], model: Model, trust: bool
) -> None:
    transitions = file.sequence(top["transitions"], _at(top, "transitions"), "transitions")
    seen: Dict[Tuple[str, str], Mark] = {}
    for spec, spec_mark in zip(transitions, transitions.item_marks):
        spec = file.mapping(spec, spec_mark, "a transition")
        file.keys(spec, TRANSITION_KEYS, "transition")
        t = _Transition(spec, spec_mark)
        for required in ("trigger", "from", "to"):
            if required not in spec:
                raise file.fail(spec.mark, f"a transition needs {required!r}")
        t.trigger = file.string(spec["trigger"], _at(spec, "trigger"), "trigger")
        what = f"transition {t.trigger!r}"
        _read_ends(file, t, spec, model, what, seen)
        _read_probability(file, t, spec, model, what)
        _read_body(file, t, spec, attributes, model, what, trust)
        sink_names: Any = spec.get("sinks", [])
        if sink_names:
            sink_names = file.sequence(sink_names, _at(spec, "sinks"), f"{what}: sinks")
        for sink_name, sink_mark in zip(sink_names, getattr(sink_names, "item_marks", [])):
            if sink_name not in model.sinks:
                hint = closest(str(sink_name), model.sinks)
                more = f" (did you mean {hint!r}?)" if hint else ""
                raise file.fail(sink_mark, f"{what}: undefined sink {sink_name!r}{more}")
            t.sinks.append(sink_name)
        model.transitions.append(t)


def _read_ends(
    file: _File,
    t: _Transition,
    spec: MarkedDict,
    model: Model,
    what: str,
    seen: Dict[Tuple[str, str], Mark],
) -> None:
    """``from`` (one state or a list) and ``to``; a trigger leaves each state once."""
    sources = spec["from"]
    if isinstance(sources, MarkedList):
        t.from_states = [
            _state(file, model, s, m, f"{what}: from") for s, m in zip(sources, sources.item_marks)
        ]
    else:
        t.from_states = [_state(file, model, sources, _at(spec, "from"), f"{what}: from")]
    t.to_state = _state(file, model, spec["to"], _at(spec, "to"), f"{what}: to")
    for source in t.from_states:
        if (source, t.trigger) in seen:
            raise file.fail(_at(spec, "trigger"), f"{what} leaves {source!r} twice")
        seen[(source, t.trigger)] = spec.mark


def _read_probability(
    file: _File, t: _Transition, spec: MarkedDict, model: Model, what: str
) -> None:
    """``probability``: percent per tick, or a profile of it."""
    probability = spec.get("probability", 0)
    if isinstance(probability, MarkedDict):
        t.probability = _profile(file, probability, _at(spec, "probability"), model.params,
                                 model.timezone)  # fmt: skip
    else:
        t.probability = _number(file, probability, _at(spec, "probability"),
                                f"{what}: probability", model.params)  # fmt: skip
        if t.probability > 100:
            raise file.fail(
                _at(spec, "probability"),
                f"{what}: probability {t.probability} is above 100 (percent per tick)",
            )


def _read_sink(
    file: _File,
    sink: _Sink,
    spec: MarkedDict,
    attributes: List[str],
    model: Model,
    trust: bool,
    objects: Optional[Dict[str, Any]] = None,
    more_names: Optional[Dict[str, str]] = None,
) -> None:
    """A sink's options and record; ``more_names``: more names the record may use (name ->
    Python source), ``objects``: those whose attributes it may read (``message``, in a model
    of populations)."""
    what = f"sink {sink.name!r}"
    if "sink" in spec:
        sink.python = _python_ref(file, spec["sink"], _at(spec, "sink"), f"{what}: sink", trust)
    if "url" in spec:
        sink.url = file.string(spec["url"], _at(spec, "url"), f"{what}: url")
    if "table" in spec:
        sink.table = file.string(spec["table"], _at(spec, "table"), f"{what}: table")
    names = {a: f"subject.{a}" for a in attributes}
    names.update(
        timestamp="timestamp",
        trigger="transition.trigger",
        from_state="transition.from_state",
        to_state="transition.to_state",
        tick="_rng._t",
    )
    if "event_id" not in attributes:  # an attribute of that name keeps it
        names["event_id"] = "_event_id(_dg)"
    names.update(more_names or {})
    if "envelope" in spec:
        _read_envelope(file, sink, spec, attributes, what)
        return
    scope = Scope(names, model.params, random=False, objects=objects)
    fields, marks = _record_fields(file, spec, attributes, what)
    _read_record(file, sink, fields, marks, scope, attributes, model, what)
    if "key" in spec:
        try:
            sink.key, _ = check_expression(spec["key"], scope)
        except ExpressionError as exc:
            raise file.fail(_at(spec, "key"), f"{what}: key: {_said(exc)}") from None
    if "columns" in spec:
        _read_columns(file, sink, spec, fields, what)
    _read_keys(file, sink, spec, fields, what)
    if "schema" in spec:
        _read_avro_schema(file, sink, spec, what)


#: What a sink of change events takes no more: its rows are the subjects' changes.
_NOT_WITH_ENVELOPE = ("record", "columns", "primary_key", "references", "schema")


def _read_envelope(
    file: _File, sink: _Sink, spec: MarkedDict, attributes: List[str], what: str
) -> None:
    """``envelope: debezium`` (as a URL's ``?envelope=debezium``), and ``key``: the attribute
    that keys the subjects' changes (a URL's ``&key=``)."""
    from doge_datagen.sinks.cdc import ENVELOPES

    mark = _at(spec, "envelope")
    envelope = file.string(spec["envelope"], mark, f"{what}: envelope")
    if envelope not in ENVELOPES:
        raise file.fail(mark, f"{what}: envelope {envelope!r} is not one of {', '.join(ENVELOPES)}")
    for key in _NOT_WITH_ENVELOPE:
        if key in spec:
            raise file.fail(
                spec.key_marks[key],
                f"{what}: {key} is not for a sink of change events (envelope: {envelope}), "
                "whose rows are the subjects' attributes and state",
            )
    url = str(sink.url or "")
    query = dict(parse_qsl(url.partition("?")[2], keep_blank_values=True))
    if query.get("mode") == "upsert":
        raise file.fail(
            mark, f"{what}: a url with mode=upsert writes the subjects' rows; it takes no envelope"
        )
    for setting in ("envelope", "key"):
        if setting in query:
            raise file.fail(
                _at(spec, "url"),
                f"{what}: the url gives {setting}= and the sink envelope:; give it once",
            )
    sink.envelope = envelope
    if "key" in spec:
        key_mark = _at(spec, "key")
        key = spec["key"]
        if not isinstance(key, str) or not _IDENTIFIER.match(key):
            raise file.fail(
                key_mark, f"{what}: key of change events names an attribute, got {key!r}"
            )
        if attributes and key not in attributes:
            hint = closest(key, attributes)
            more = f" (did you mean {hint!r}?)" if hint else ""
            raise file.fail(
                key_mark, f"{what}: key {key!r} is not an attribute of the subjects{more}"
            )
        sink.envelope_key = key


def _read_keys(
    file: _File, sink: _Sink, spec: MarkedDict, fields: List[Tuple[Any, Any]], what: str
) -> None:
    """``primary_key`` (a field or a list of fields) and ``references``
    (``{field: table(column)}``) of the table a SQL sink creates."""
    named = dict(fields)

    def field(name: Any, mark: Mark, role: str) -> str:
        if name not in named:
            hint = closest(str(name), named)
            more = f" (did you mean {hint!r}?)" if hint else ""
            raise file.fail(mark, f"{what}: {role}: no record field {name!r}{more}")
        return str(name)

    if "primary_key" in spec:
        value, mark = spec["primary_key"], _at(spec, "primary_key")
        if isinstance(value, MarkedList):
            if not value:
                raise file.fail(mark, f"{what}: primary_key: name at least one field")
            for item, item_mark in zip(value, value.item_marks):
                sink.primary_key.append(field(item, item_mark, "primary_key"))
            if len(set(sink.primary_key)) != len(sink.primary_key):
                raise file.fail(mark, f"{what}: primary_key names a field twice")
        else:
            sink.primary_key.append(
                field(file.string(value, mark, f"{what}: primary_key"), mark, "primary_key")
            )
    if "references" in spec:
        references = file.mapping(spec["references"], _at(spec, "references"),
                                  f"{what}: references")  # fmt: skip
        for name, target in references.items():
            field(name, references.key_marks[name], "references")
            text = file.string(target, references.value_marks[name], f"{what}: references")
            if not _REFERENCE.match(text):
                raise file.fail(
                    references.value_marks[name],
                    f"{what}: references: {name!r} must name 'table(column)', got {text!r}",
                )
            sink.references[name] = text


#: ``table(column)``, the table perhaps with its schema.
_REFERENCE = re.compile(r"^\s*[A-Za-z_]\w*(\.[A-Za-z_]\w*)?\s*\(\s*[A-Za-z_]\w*\s*\)\s*$")

#: The Avro types that take a record field of each kind known from its expression.
_AVRO_TAKES = {
    "int": ("int", "long", "float", "double"),
    "float": ("float", "double"),
    "str": ("string",),
    "bool": ("boolean",),
}


def _plain(value: Any) -> Any:
    """A parsed YAML value as plain dicts and lists (for JSON)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _read_avro_schema(file: _File, sink: _Sink, spec: MarkedDict, what: str) -> None:
    """``schema``: the Avro record schema of a ``kafka+avro://`` sink, inline (a mapping, or
    JSON text) or the path of a ``.avsc`` file relative to the model file; checked with
    fastavro and against the record's fields."""
    import json

    value, mark = spec["schema"], _at(spec, "schema")
    if sink.url is not None and not str(sink.url).lower().startswith("kafka+avro:"):
        raise file.fail(mark, f"{what}: schema is for kafka+avro:// sinks, not {sink.url!r}")
    if isinstance(value, MarkedDict):
        schema: Any = _plain(value)
        where = "schema"
    else:
        text = file.string(value, mark, f"{what}: schema")
        if text.lstrip().startswith("{"):
            where = "schema"
        else:
            base = Path(file.filename).parent if file.filename != "<model>" else Path.cwd()
            path = base / text
            where = f"schema {text!r}"
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise file.fail(
                    mark, f"{what}: cannot read schema {str(path)!r}: {exc.strerror}"
                ) from None
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise file.fail(mark, f"{what}: {where} is not JSON: {exc}") from None
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise file.fail(mark, f"{what}: {where} must be an Avro record (type: record)")
    try:
        from fastavro import parse_schema
    except ImportError:  # pragma: no cover - depends on the installation
        raise file.fail(
            mark, f"{what}: checking an Avro schema needs fastavro (the avro extra)"
        ) from None
    try:
        parse_schema(schema)
    except Exception as exc:  # fastavro's SchemaParseException, KeyError, TypeError, ...
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise file.fail(mark, f"{what}: {where} is not a valid Avro schema: {reason}") from None
    _match_avro_fields(file, sink, schema, value, mark, where, what)
    sink.avro_schema = json.dumps(schema)


def _match_avro_fields(
    file: _File, sink: _Sink, schema: Dict[str, Any], value: Any, mark: Mark, where: str,
    what: str,
) -> None:  # fmt: skip
    """Every field of the schema is a field of the record (or has a default), of an Avro
    type that takes the record field's value where its kind is known."""
    names = [name for name, _ in sink.fields]
    inline = value.get("fields") if isinstance(value, MarkedDict) else None
    for index, avro_field in enumerate(schema.get("fields", [])):
        name = avro_field.get("name")
        place = mark
        if isinstance(inline, MarkedList) and index < len(inline.item_marks):
            place = inline.item_marks[index]
        if name not in names:
            if "default" in avro_field:
                continue
            hint = closest(str(name), names)
            more = f" (did you mean {hint!r}?)" if hint else ""
            raise file.fail(
                place,
                f"{what}: {where}: field {name!r} is not a field of the record{more} and has "
                "no default",
            )
        kind = sink.kinds.get(name)
        avro_type = avro_field.get("type")
        members = avro_type if isinstance(avro_type, list) else [avro_type]
        plain = [m for m in members if isinstance(m, str)]
        if kind is None or len(plain) != len(members):
            continue  # a kind not seen, or a complex or logical type: not checked here
        if not any(m in _AVRO_TAKES[kind] for m in plain):
            raise file.fail(
                place,
                f"{what}: {where}: field {name!r} is {_AVRO_KIND[kind]} in the record but "
                f"{avro_type!r} in the schema",
            )


_AVRO_KIND = {"int": "a whole number", "float": "a number", "str": "a string", "bool": "a boolean"}


def _record_fields(
    file: _File, spec: MarkedDict, attributes: List[str], what: str
) -> Tuple[List[Tuple[Any, Any]], Dict[Any, Mark]]:
    """A sink's ``record``, as (field name, expression) pairs and where each was written: by
    default the timestamp, the attributes and the transition; a list names fields that are
    each their own expression; a mapping gives each field's expression."""
    record = spec.get("record")
    if record is None:
        fields = [("timestamp", "timestamp"), *((a, a) for a in attributes)]
        fields += [("event", "trigger"), ("from_state", "from_state"), ("to_state", "to_state")]
        marks = {name: spec.mark for name, _ in fields}
    elif isinstance(record, MarkedList):
        fields = []
        for item, item_mark in zip(record, record.item_marks):
            fields.append((file.string(item, item_mark, f"{what}: a record field"),) * 2)
        marks = dict(zip((f[0] for f in fields), record.item_marks))
    else:
        record = file.mapping(record, _at(spec, "record"), f"{what}: record")
        fields = []
        for name, expression in record.items():
            if not isinstance(name, str) or not name:
                raise file.fail(record.key_marks[name], f"{what}: a field name is a string")
            fields.append((name, expression))
        marks = dict(record.value_marks)
    return fields, marks


def _read_record(
    file: _File,
    sink: _Sink,
    fields: List[Tuple[Any, Any]],
    marks: Dict[Any, Mark],
    scope: Scope,
    attributes: List[str],
    model: Model,
    what: str,
) -> None:
    """Each field's expression checked and compiled, with its kind when known; ``simple`` when
    every field is a plain name."""
    simple: List[Tuple[str, str]] = []
    for name, expression in fields:
        try:
            code, _ = check_expression(expression, scope)
        except ExpressionError as exc:
            raise file.fail(marks[name], f"{what}: field {name!r}: {_said(exc)}") from None
        sink.fields.append((name, code))
        text = str(expression).strip()
        if text in ("timestamp", "trigger", "from_state", "to_state") or text in attributes:
            simple.append((name, text))
            kind = {"timestamp": "int", "trigger": "str", "from_state": "str",
                    "to_state": "str"}.get(text, model.attribute_kinds.get(text))  # fmt: skip
        else:
            kind = _kind_of(text, model.attribute_kinds)
        if kind is not None:
            sink.kinds[name] = kind
    sink.simple = simple if len(simple) == len(fields) else None


def _read_columns(
    file: _File, sink: _Sink, spec: MarkedDict, fields: List[Tuple[Any, Any]], what: str
) -> None:
    """``columns``: the SQL type of some record fields."""
    columns = file.mapping(spec["columns"], _at(spec, "columns"), f"{what}: columns")
    for name, sql_type in columns.items():
        if name not in dict(fields):
            hint = closest(str(name), dict(fields))
            more = f" (did you mean {hint!r}?)" if hint else ""
            raise file.fail(columns.key_marks[name], f"{what}: no record field {name!r}{more}")
        text = file.string(sql_type, columns.value_marks[name], f"{what}: column {name!r}")
        if not re.match(r"^[A-Za-z][A-Za-z0-9_ ]*(\(\d+(,\s*\d+)?\))?$", text):
            raise file.fail(columns.value_marks[name], f"{what}: {text!r} is not a SQL type")
        sink.columns[name] = text


def _read_body(
    file: _File,
    t: _Transition,
    spec: MarkedDict,
    attributes: List[str],
    model: Model,
    what: str,
    trust: bool,
) -> None:
    """``let``, then ``when``, then ``do``, as Python lines of one function."""
    names = {a: f"subject.{a}" for a in attributes}
    names.update(
        timestamp="timestamp",
        tick="_rng._t",
        trigger=repr(t.trigger),
        to_state=repr(t.to_state),
        from_state="transition.from_state",
    )
    used: set = set()
    let = spec.get("let")
    if let is not None:
        let = file.mapping(let, spec.value_marks["let"], f"{what}: let")
        for name, expression in let.items():
            _check_name(file, name, let.key_marks[name], f"{what}: let value")
            if name in attributes:
                raise file.fail(let.key_marks[name], f"{what}: let {name!r} hides an attribute")
            scope = Scope(dict(names), model.params, attributes=attributes, faker=trust)
            try:
                code, found = check_expression(expression, scope)
            except ExpressionError as exc:
                raise file.fail(let.value_marks[name], f"{what}: {_said(exc, ' in let')}") from None
            used |= found
            t.body.append(f"    l_{name} = {code}")
            names[name] = f"l_{name}"
    if spec.get("when") is not None:
        scope = Scope(dict(names), model.params, attributes=attributes, faker=trust)
        try:
            code, found = check_expression(spec["when"], scope)
        except ExpressionError as exc:
            raise file.fail(spec.value_marks["when"], f"{what}: {_said(exc, ' in when')}") from None
        used |= found
        t.body.append(f"    if not {code}:\n        return False")
    statements = spec.get("do")
    if statements is not None:
        if isinstance(statements, str):
            statements = MarkedList([statements])
            statements.item_marks = [spec.value_marks["do"]]
        statements = file.sequence(statements, spec.value_marks["do"], f"{what}: do")
        scope = Scope(dict(names), model.params, attributes=attributes, faker=trust)
        for statement, statement_mark in zip(statements, statements.item_marks):
            try:
                target, code, found = check_statement(statement, scope)
            except ExpressionError as exc:
                raise file.fail(statement_mark, f"{what}: {_said(exc, ' in do')}") from None
            used |= found
            t.body.append(f"    subject.{target} = {code}")
    if "action" in spec:
        t.action = _python_ref(file, spec["action"], spec.value_marks["action"],
                               f"{what}: action", trust)  # fmt: skip
    t.uses_timestamp = "timestamp" in used
    t.uses_tick = "tick" in used


def _check_sums(file: _File, model: Model) -> None:
    """The probabilities leaving each state add up to at most 100, at every hour."""
    from doge_datagen.profiles import Profiled, first_excess

    for source in model.states:
        leaving = [t for t in model.transitions if source in t.from_states]
        total = 0.0
        for t in leaving:
            if isinstance(t.probability, Profiled):
                continue
            total += t.probability
            if total > 100 + 1e-9:
                raise file.fail(
                    t.spec.value_marks.get("probability", t.mark),
                    f"the probabilities leaving {source!r} add up to {total:g}, above 100",
                )
        profiled = [t for t in leaving if isinstance(t.probability, Profiled)]
        found = first_excess([t.probability for t in leaving]) if profiled else None
        if found is not None:
            excess, when = found
            last = profiled[-1]
            raise file.fail(
                last.spec.value_marks.get("probability", last.mark),
                f"the probabilities leaving {source!r} add up to {excess:g} percent at {when}, "
                "above 100",
            )


# -- building ------------------------------------------------------------------------------


def _subject_class(model: Model) -> type:
    names = [name for name, _ in model.attributes]
    init = "\n".join(f"        self.{n} = {n}" for n in names) or "        pass"
    fields = ", ".join(f"{n}={{self.{n}!r}}" for n in names)
    source = (
        f"class Subject:\n"
        f"    __slots__ = {tuple(names)!r}\n"
        f"    def __init__(self, {', '.join(names)}):\n{init}\n"
        f"    def __repr__(self):\n"
        f"        return f'{model.name}({fields})'\n"
    )
    namespace: Dict[str, Any] = {"__name__": "doge_datagen.modelfile.subjects"}
    exec(compile(source, f"<subject of {model.name}>", "exec"), namespace)  # noqa: S102
    cls = namespace["Subject"]
    cls.__qualname__ = cls.__name__ = "".join(p.title() for p in model.name.split("_")) or "S"
    return cls


class _Factory(SubjectFactory[Any]):
    """Subjects made by the compiled ``create(index)``.

    The compiled function is also the instance's ``create``, so that the engine, which looks
    ``create`` up once per run, calls it with no method in between (one call per subject
    less)."""

    def __init__(self, create: Callable[[int], Any]) -> None:
        self._create = create
        self.create = create  # type: ignore[method-assign,assignment]

    def create(self, index: int) -> Any:
        return self._create(index)


class _PythonFactory(SubjectFactory[Any]):
    """``factory: MODULE:FUNCTION``: ``FUNCTION(index, random)``."""

    def __init__(self, function: Callable[..., Any], rng: Any) -> None:
        self._function = function
        self._rng = rng

    def create(self, index: int) -> Any:
        return self._function(index, self._rng)


def _records(sink: _Sink, namespace: Dict[str, Any]) -> Any:
    from doge_datagen.sinks.record import Record
    from doge_datagen.sinks.urls import Records

    if sink.simple is not None:
        row: Any = Record(sink.simple)
    else:
        body = ", ".join(f"{name!r}: {code}" for name, code in sink.fields)
        source = f"def row(timestamp, subject, transition):\n    return {{{body}}}\n"
        row = compile_functions(source, dict(namespace), f"<record of sink {sink.name}>")["row"]
    key = None
    if sink.key is not None:
        source = (
            "def key(subject, transition):\n"
            "    timestamp = _dg.timestamp\n"
            f"    return str({sink.key})\n"
        )
        key = compile_functions(source, dict(namespace), f"<key of sink {sink.name}>")["key"]
    # A SQL sink makes its table when missing, when the run starts: the types of the fields
    # whose kind the expressions show (or columns: gives), the others' from the first row.
    columns = {
        name: sink.columns.get(name) or SQL_TYPES[sink.kinds[name]]
        for name, _ in sink.fields
        if name in sink.columns or sink.kinds.get(name) in SQL_TYPES
    }
    return Records(
        row=row,
        key=key,
        create=True,
        columns=columns,
        primary_key=sink.primary_key or None,
        foreign_keys=sink.references or None,
        avro_schema=sink.avro_schema,
    )


def _with_table(url: str, sink: _Sink) -> str:
    scheme = url.partition(":")[0].lower().split("+")[0]
    if scheme in ("sqlite", "postgresql", "postgres", "mysql", "mariadb") and "table=" not in url:
        url = f"{url}{'&' if '?' in url else '?'}table={sink.table or sink.name}"
    return _with_envelope(url, sink)


def _with_envelope(url: str, sink: _Sink) -> str:
    """The URL with the sink's ``envelope:`` and its key as settings (a ``--sink NAME=URL``
    that gives its own ``envelope=`` keeps it)."""
    if sink.envelope is None or "envelope" in dict(parse_qsl(url.partition("?")[2])):
        return url
    url = f"{url}{'&' if '?' in url else '?'}envelope={sink.envelope}"
    return url if sink.envelope_key is None else f"{url}&key={sink.envelope_key}"


def build(
    model: Model,
    *,
    sinks: Optional[Dict[str, Any]] = None,
    sink: Any = None,
    subjects: Optional[int] = None,
    ticks: Any = _UNSET,
    seed: Any = _UNSET,
    timestamp_start: Any = _UNSET,
    make_sinks: bool = True,
) -> DataOnlineGenerator:
    """The generator of a checked model, its sinks made from their URLs (or ``sinks``, by
    name, URLs or sink objects; ``sink``: one URL or sink for every stream)."""
    overrides = dict(sinks or {})
    _check_overrides(model, overrides)
    if model.populations:
        from doge_datagen.modelfile.populations import build_world

        return build_world(
            sys.modules[__name__], model, overrides, sink, subjects, ticks, seed,
            timestamp_start, make_sinks,
        )  # fmt: skip
    datagen: DataOnlineGenerator[Any] = DataOnlineGenerator(
        model.states,
        model.initial_state,
        lambda index: None,
        model.subjects if subjects is None else subjects,
        model.tick_ms,  # type: ignore[arg-type]  # a fractional tick is taken too
        model.ticks if ticks is _UNSET else ticks,
        model.timestamp_start if timestamp_start is _UNSET else timestamp_start,
        seed=model.seed if seed is _UNSET else seed,
        arrivals=model.arrivals,
    )
    if model.locale is not None:
        datagen.fake_locale = model.locale
    namespace = _namespace(datagen, model)
    datagen.subject_factory = _subject_factory(model, namespace, datagen.random)
    built: Dict[str, Any] = {}
    single: Any = None
    if sink is not None:
        single = _single_sink(model, sink, namespace, make_sinks)
    elif make_sinks:
        built = _build_sinks(model, overrides, namespace)
    for t in model.transitions:
        callback = _callback(t, namespace)
        if single is not None:
            event_sinks = [single] if t.sinks else []
        elif make_sinks:
            event_sinks = [built[name] for name in t.sinks]
        else:
            from doge_datagen.sinks.memory import CountingSink

            event_sinks = [built.setdefault(n, CountingSink(n)) for n in t.sinks]
        for source in t.from_states:
            datagen.add_transition(
                t.trigger, source, t.to_state, t.probability, callback, event_sinks
            )
    return datagen


def _check_overrides(model: Model, overrides: Dict[str, Any]) -> None:
    """Every sink replaced by name is one the model has."""
    for name in overrides:
        if name not in model.sinks:
            hint = closest(name, model.sinks)
            more = f" (did you mean {hint!r}?)" if hint else ""
            raise ConfigurationError(
                f"{model.filename}: no sink {name!r} to replace{more}; the model's: "
                f"{', '.join(model.sinks) or 'none'}"
            )


def _namespace(datagen: DataOnlineGenerator, model: Model) -> Dict[str, Any]:
    """The globals of the compiled functions."""
    rng = datagen.random
    namespace = function_globals(rng, model.params)
    namespace["_dg"] = datagen
    namespace["_rng"] = rng
    namespace["_event_id"] = event_id
    # fake.NAME(...): datagen.fake, drawing from the same generator as the random functions.
    namespace["fake"] = datagen.fake
    return namespace


def _subject_factory(model: Model, namespace: Dict[str, Any], rng: Any) -> Any:
    """The file's Python factory, or one ``create(index)`` compiled from ``subject``."""
    if model.factory is not None:
        return _PythonFactory(model.factory, rng)
    cls = _subject_class(model)
    lines = [f"    v_{name} = {code}" for name, code in model.attributes]
    arguments = ", ".join(f"v_{name}" for name, _ in model.attributes)
    source = "def create(index):\n" + "\n".join(lines) + f"\n    return _Subject({arguments})\n"
    functions = compile_functions(
        source, {**namespace, "_Subject": cls}, f"<subjects of {model.name}>"
    )
    return _Factory(functions["create"])


def _single_sink(model: Model, sink: Any, namespace: Dict[str, Any], make_sinks: bool) -> Any:
    """One sink for every stream: a sink object as given, or one made from a URL whose records
    hold the timestamp, every attribute and the transition."""
    if not isinstance(sink, str):
        return sink
    everything = _Sink("events", (0, 0))
    attributes = [name for name, _ in model.attributes]
    everything.fields = [("timestamp", "timestamp")]
    everything.fields += [(a, f"subject.{a}") for a in attributes]
    everything.fields += [("event", "transition.trigger"),
                          ("from_state", "transition.from_state"),
                          ("to_state", "transition.to_state")]  # fmt: skip
    everything.simple = [("timestamp", "timestamp"), *((a, a) for a in attributes),
                         ("event", "trigger"), ("from_state", "from_state"),
                         ("to_state", "to_state")]  # fmt: skip
    everything.kinds = {"timestamp": "int", "event": "str", "from_state": "str",
                        "to_state": "str", **model.attribute_kinds}  # fmt: skip
    return _make_sink(everything, sink, namespace) if make_sinks else None


def _build_sinks(
    model: Model, overrides: Dict[str, Any], namespace: Dict[str, Any]
) -> Dict[str, Any]:
    """The model's sinks by name: replaced ones as given, the others from their URL or their
    Python ``sink``."""
    built: Dict[str, Any] = {}
    for name, spec in model.sinks.items():
        target = overrides.get(name, spec.url)
        if target is None and spec.python is None:
            raise ModelFileError(
                model.filename, spec.mark, f"sink {name!r} has no url (give one, or --sink)"
            )
        if name in overrides or spec.python is None:
            built[name] = _make_sink(spec, target, namespace) if isinstance(target, str) else target
        elif spec.envelope is not None:
            from doge_datagen.sinks.cdc import ChangeEventSink, envelope_records

            inner = spec.python(envelope_records(_records(spec, namespace)))
            built[name] = ChangeEventSink(inner, key=spec.envelope_key)
        else:
            built[name] = spec.python(_records(spec, namespace))
    return built


def _make_sink(spec: _Sink, url: str, namespace: Dict[str, Any]) -> EventSink:
    from doge_datagen.sinks.registry import build_sink

    url = _with_table(url, spec)
    return build_sink(url, _records(spec, namespace))


def _callback(t: _Transition, namespace: Dict[str, Any]) -> Optional[Callable[..., Any]]:
    if not t.body and t.action is None:
        return None  # a transition without effects: no call per event, as in Python
    lines = ["def action(subject, transition):"]
    if t.uses_timestamp:
        lines.append("    timestamp = _dg.timestamp")
    lines.extend(t.body)
    if t.action is not None:
        lines.append("    return _action(subject, transition)")
    else:
        lines.append("    return True")
    source = "\n".join(lines) + "\n"
    scope = dict(namespace)
    scope["_action"] = t.action
    function = compile_functions(source, scope, f"<transition {t.trigger}>")["action"]
    function.__qualname__ = function.__name__ = f"{t.trigger}_action"
    return function


def load(
    source: Any,
    *,
    trust: bool = False,
    params: Optional[Dict[str, Any]] = None,
    sinks: Optional[Dict[str, Any]] = None,
    sink: Any = None,
    subjects: Optional[int] = None,
    ticks: Any = _UNSET,
    seed: Any = _UNSET,
    timestamp_start: Any = _UNSET,
    filename: Optional[str] = None,
    **param_values: Any,
) -> DataOnlineGenerator:
    """A :class:`~doge_datagen.DataOnlineGenerator` from a model file.

    :param source: a path (``str`` or :class:`~pathlib.Path`) or the text of the model.
    :param trust: run the Python code the file names (``action:``, ``factory:``, ``sink:``);
        without it such a file is refused, naming the line.
    :param params: values of the file's ``params``, by name; other keyword arguments
        (``load(path, visitors=500)``) are parameters too.
    :param sinks: ``{name: URL or sink}`` replacing the file's sinks of those names.
    :param sink: one URL (or sink) for every stream, each event once, with every attribute.
    :param subjects: the number of subjects, overriding the file's; likewise ``ticks``,
        ``seed`` and ``timestamp_start``.
    :param filename: the name errors give the file (default: its path, or ``<model>``).

    Nothing is opened: the run opens the sinks (a database sink creates its table when it
    is missing, at the start of the run, with column types from the record).
    """
    values = {**(params or {}), **param_values}
    model = read_model(source, trust=trust, params=values, filename=filename)
    return build(
        model,
        sinks=sinks,
        sink=sink,
        subjects=subjects,
        ticks=ticks,
        seed=seed,
        timestamp_start=timestamp_start,
    )
