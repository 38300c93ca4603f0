"""Model files of several populations: a top-level ``populations:`` mapping, checked and built
into a :class:`~doge_datagen.populations.World`.

Each population is read as a model of one is (``subject:`` or ``factory:``, ``states``,
``transitions``), with ``size``, ``key``, the ``sinks`` of its rows and ``receive:`` blocks;
a population without ``transitions`` is a table of entities. Expressions also get
``pick('NAME', by=..., zipf=...)`` and ``ref('NAME', i)``, whose value reads the picked
subject's attributes (``product.price``, ``product.key``), and a transition or a ``receive``
block may ``send:`` messages after its ``do``; a ``receive`` block reads them as
``message.FIELD`` and ``message.sender``. Population names in ``pick``, ``ref`` and ``send``
are literal, so every reference, every message and every attribute read is checked when the
file is, with ``FILE:LINE:COLUMN``.

The reading and building of the parts a model of one has too (sinks, probabilities, subjects)
are :mod:`.builder`'s, given to :func:`read_populations` and :func:`build_world` by the
builder itself (``helpers``), which calls them.
"""

import ast
from typing import Any, Dict, List, Optional, Set, Tuple

from doge_datagen.errors import ConfigurationError
from doge_datagen.modelfile.expressions import (
    ExpressionError,
    Fields,
    Scope,
    check_expression,
    check_statement,
    closest,
    compile_functions,
)
from doge_datagen.modelfile.yamlmarks import Mark, MarkedDict, MarkedList

__all__ = ["WORLD_KEYS", "POPULATION_KEYS", "RECEIVE_KEYS", "read_populations", "build_world"]

#: The top-level keys of a model of several populations.
WORLD_KEYS = (
    "name",
    "description",
    "tick",
    "tick_ms",
    "ticks",
    "seed",
    "timestamp_start",
    "timezone",
    "locale",
    "params",
    "sinks",
    "populations",
)
POPULATION_KEYS = (
    "description",
    "size",
    "subjects",
    "key",
    "subject",
    "factory",
    "attributes",
    "states",
    "initial_state",
    "arrivals",
    "transitions",
    "sinks",
    "receive",
)
RECEIVE_KEYS = ("let", "when", "do", "send", "sinks")
SEND_KEYS = ("to", "kind")

#: Attribute names a subject of a population cannot have: the names a picked subject or an
#: expression of a population gives another meaning.
_TAKEN = ("key", "population", "message", "pick", "ref", "send", "kind")


class _Send:
    """A ``send:`` entry: the receiving population(s), the kind, the payload's fields."""

    def __init__(self, mark: Mark, kind: str, targets: Set[str], fields: List[str]) -> None:
        self.mark = mark
        self.kind = kind
        self.targets = targets
        self.fields = fields
        self.to_code = ""
        self.payload: List[Tuple[str, str]] = []


class _Body:
    """A transition's or a receive block's body: Python lines, names used, sends."""

    def __init__(self) -> None:
        self.lines: List[str] = []
        self.used: Set[str] = set()
        self.sends: List[_Send] = []


class _Population:
    def __init__(self, name: str, mark: Mark, spec: MarkedDict, model: Any) -> None:
        self.name = name
        self.mark = mark
        self.spec = spec
        #: The population's own model of one (states, attributes, transitions), as the
        #: builder reads it.
        self.model = model
        self.key: Optional[str] = None
        self.attributes: List[str] = []
        self.entities = True
        self.sinks: List[str] = []
        #: kind -> (spec, mark) of its receive block, then its body.
        self.receive: Dict[str, Tuple[MarkedDict, Mark]] = {}
        self.receive_bodies: Dict[str, _Body] = {}
        self.receive_sinks: List[str] = []
        #: The sinks each receive block writes to, by kind.
        self.receive_sinks_by_kind: Dict[str, List[str]] = {}
        #: trigger -> its body's sends (for the graph's message edges).
        self.transition_sends: List[Tuple[str, _Send]] = []


def _ref_fields(population: _Population) -> Fields:
    fields: Fields = {"key": None, "index": None}
    fields.update({name: None for name in population.attributes})
    return fields


def read_populations(
    helpers: Any,
    file: Any,
    top: MarkedDict,
    model: Any,
    params: Dict[str, Any],
    trust: bool,
) -> None:
    """Check a model of several populations into ``model`` (``model.populations``)."""
    b = helpers
    for key in top:
        if key not in WORLD_KEYS:
            where = top.key_marks[key]
            if key in POPULATION_KEYS:
                raise file.fail(
                    where,
                    f"model: {key!r} belongs to a population in a model with populations "
                    "(give it under populations: NAME:)",
                )
            hint = closest(str(key), WORLD_KEYS)
            more = f" (did you mean {hint!r}?)" if hint else ""
            raise file.fail(where, f"model: unknown key {key!r}{more}")
    model.name = file.string(top.get("name", "model"), b._at(top, "name"), "name")
    model.params = b._params(file, top.get("params"), b._at(top, "params"), params)
    b._read_timing(file, top, model)
    b._read_locale(file, top, model)
    spec = file.mapping(top["populations"], b._at(top, "populations"), "populations")
    if not spec:
        raise file.fail(b._at(top, "populations"), "populations: give at least one population")
    populations: Dict[str, _Population] = {}
    owner: Dict[str, str] = {}
    for name, body in spec.items():
        where = spec.key_marks[name]
        b._check_name(file, name, where, "population")
        body = file.mapping(body, spec.value_marks[name], f"population {name!r}")
        file.keys(body, POPULATION_KEYS, f"population {name!r}")
        populations[name] = _read_population(b, file, model, name, where, body, trust, owner)
    model.populations = populations
    sink_spec = file.mapping(top.get("sinks", MarkedDict()), b._at(top, "sinks"), "sinks")
    _check_sink_lists(b, file, model, populations, sink_spec)
    sends = _collect_sends(b, file, populations)
    _check_receivers(file, populations, sends)
    _read_world_sinks(b, file, model, populations, sink_spec, sends, trust)
    for population in populations.values():
        _read_bodies(b, file, model, population, populations, sends, trust)


def _read_population(
    b: Any,
    file: Any,
    world: Any,
    name: str,
    where: Mark,
    spec: MarkedDict,
    trust: bool,
    owner: Dict[str, str],
) -> _Population:
    """A population's size, key, subject, states and the names in its lists (bodies later)."""
    model = b.Model()
    model.name = name
    model.filename = world.filename
    model.params = world.params
    model.timezone = world.timezone
    model.tick_ms = world.tick_ms
    population = _Population(name, where, spec, model)
    what = f"population {name!r}"
    if "size" in spec and "subjects" in spec:
        raise file.fail(spec.key_marks["subjects"], f"{what}: give size or subjects, not both")
    size_key = "subjects" if "subjects" in spec else "size"
    if size_key not in spec:
        raise file.fail(spec.mark, f"{what} needs 'size' (how many subjects)")
    model.subjects = b._number(file, spec[size_key], b._at(spec, size_key), f"{what}: {size_key}",
                               world.params, whole=True)  # fmt: skip
    population.attributes = b._read_subject_block(file, spec, model, trust)
    for attribute in population.attributes:
        if attribute in _TAKEN:
            mark = _attribute_mark(spec, attribute)
            raise file.fail(
                mark,
                f"{what}: attribute {attribute!r}: the name means something else in a model "
                f"with populations ({', '.join(_TAKEN)} are taken)",
            )
    if "key" in spec:
        key = file.string(spec["key"], b._at(spec, "key"), f"{what}: key")
        if key not in population.attributes:
            hint = closest(key, population.attributes)
            more = f" (did you mean {hint!r}?)" if hint else ""
            raise file.fail(b._at(spec, "key"), f"{what}: key: no attribute {key!r}{more}")
        population.key = key
    population.entities = "transitions" not in spec
    if population.entities:
        for key in ("states", "initial_state", "arrivals", "receive"):
            if key in spec:
                raise file.fail(
                    spec.key_marks[key],
                    f"{what}: {key!r} needs transitions (a population without transitions "
                    "is a table of entities, which never moves)",
                )
    else:
        if "states" not in spec:
            raise file.fail(spec.mark, f"{what} has transitions, so it needs 'states'")
        b._read_states(file, spec, model)
        b._read_arrivals(file, spec, model)
        states = spec["states"]
        for state, mark in zip(states, states.item_marks):
            if state in owner:
                raise file.fail(
                    mark,
                    f"{what}: state {state!r} is a state of population {owner[state]!r} too; "
                    "the populations of a model have states of different names",
                )
            owner[state] = name
    if "receive" in spec:
        receive = file.mapping(spec["receive"], b._at(spec, "receive"), f"{what}: receive")
        for kind, block in receive.items():
            b._check_name(file, kind, receive.key_marks[kind], f"{what}: receive kind")
            block = file.mapping(block, receive.value_marks[kind], f"{what}: receive {kind!r}")
            file.keys(block, RECEIVE_KEYS, f"{what}: receive {kind!r}")
            population.receive[kind] = (block, receive.key_marks[kind])
    return population


def _attribute_mark(spec: MarkedDict, attribute: str) -> Mark:
    subject = spec.get("subject")
    if isinstance(subject, MarkedDict) and attribute in subject.key_marks:
        mark: Mark = subject.key_marks[attribute]
        return mark
    return spec.mark


def _sink_list(b: Any, file: Any, model: Any, spec: MarkedDict, what: str) -> List[str]:
    """A ``sinks: [names]`` list, each a sink the model defines."""
    value = spec.get("sinks")
    if not value:
        return []
    names = file.sequence(value, b._at(spec, "sinks"), f"{what}: sinks")
    found: List[str] = []
    for name, mark in zip(names, names.item_marks):
        if name not in model.sinks_spec:
            hint = closest(str(name), model.sinks_spec)
            more = f" (did you mean {hint!r}?)" if hint else ""
            raise file.fail(mark, f"{what}: undefined sink {name!r}{more}")
        found.append(name)
    return found


def _check_sink_lists(
    b: Any, file: Any, model: Any, populations: Dict[str, _Population], sink_spec: MarkedDict
) -> None:
    """The names in every ``sinks`` list are sinks of the model; each receive block writes
    its kind of message to its own sinks."""
    model.sinks_spec = {name: sink_spec.key_marks[name] for name in sink_spec}
    for population in populations.values():
        what = f"population {population.name!r}"
        population.sinks = _sink_list(b, file, model, population.spec, what)
        for kind, (block, _) in population.receive.items():
            names = _sink_list(b, file, model, block, f"{what}: receive {kind!r}")
            population.receive_sinks_by_kind[kind] = names
            for name in names:
                if name not in population.receive_sinks:
                    population.receive_sinks.append(name)


# -- sends ----------------------------------------------------------------------------------


def _literal_population(node: ast.Call, populations: Dict[str, Any], function: str) -> str:
    """The population a ``pick(...)`` or ``ref(...)`` names, a literal it has."""
    if (
        not node.args
        or not isinstance(node.args[0], ast.Constant)
        or not isinstance(node.args[0].value, str)
    ):
        raise ExpressionError(f"{function}() takes the name of a population, in quotes, first")
    name = node.args[0].value
    if name not in populations:
        hint = closest(name, populations)
        more = f" (did you mean {hint!r}?)" if hint else ""
        raise ExpressionError(
            f"{function}(): no population {name!r}; the model's: {', '.join(populations)}", more
        )
    return name


def _target_of(
    node: ast.AST,
    refs: Dict[str, str],
    senders: Optional[Set[str]],
    populations: Dict[str, Any],
) -> Optional[Set[str]]:
    """The population(s) a subject expression refers to: a ``pick``/``ref`` call, a ``let``
    value holding one, ``message.sender`` in a receive block; None for anything else."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in ("pick", "ref"):
            return {_literal_population(node, populations, node.func.id)}
    if isinstance(node, ast.Name) and node.id in refs:
        return {refs[node.id]}
    if (
        senders is not None
        and isinstance(node, ast.Attribute)
        and node.attr == "sender"
        and isinstance(node.value, ast.Name)
        and node.value.id == "message"
    ):
        return set(senders)
    return None


def _let_refs(
    b: Any, file: Any, spec: MarkedDict, populations: Dict[str, Any], what: str
) -> Dict[str, str]:
    """The ``let`` values of a body that hold a picked subject, and its population; a ``let``
    that is not an expression, or picks from no population, is refused here already."""
    refs: Dict[str, str] = {}
    let = spec.get("let")
    if isinstance(let, MarkedDict):
        for name, expression in let.items():
            try:
                try:
                    node = ast.parse(str(expression).strip(), mode="eval").body
                except (SyntaxError, ValueError):
                    check_expression(expression, Scope({}))  # says why, as for any expression
                    raise
                found = _target_of(node, refs, None, populations)
            except ExpressionError as exc:
                said = b._said(exc, " in let")
                raise file.fail(let.value_marks[name], f"{what}: {said}") from None
            except (SyntaxError, ValueError):
                continue  # the body's check says what is wrong
            if found:
                refs[str(name)] = next(iter(found))
    return refs


def _send_specs(b: Any, file: Any, spec: MarkedDict, what: str) -> List[Tuple[MarkedDict, Mark]]:
    value = spec.get("send")
    if value is None:
        return []
    where = b._at(spec, "send")
    if isinstance(value, MarkedDict):
        return [(value, where)]
    items = file.sequence(value, where, f"{what}: send")
    return [
        (file.mapping(item, mark, f"{what}: send"), mark)
        for item, mark in zip(items, items.item_marks)
    ]


def _read_send_head(
    b: Any,
    file: Any,
    spec: MarkedDict,
    mark: Mark,
    what: str,
    refs: Dict[str, str],
    senders: Optional[Set[str]],
    populations: Dict[str, _Population],
) -> _Send:
    """A send's kind, its receiving population(s) and its fields, before any body is read."""
    for key in SEND_KEYS:
        if key not in spec:
            raise file.fail(mark, f"{what}: send needs {key!r}")
    kind = file.string(spec["kind"], b._at(spec, "kind"), f"{what}: send: kind")
    b._check_name(file, kind, b._at(spec, "kind"), f"{what}: send: kind")
    to = spec["to"]
    where = b._at(spec, "to")
    try:
        node = ast.parse(str(to).strip(), mode="eval").body
        targets = _target_of(node, refs, senders, populations)
    except SyntaxError:
        try:
            check_expression(to, Scope({}))
        except ExpressionError as exc:  # the same words as for any expression
            raise file.fail(where, f"{what}: send: to: {b._said(exc)}") from None
        raise
    except ExpressionError as exc:
        raise file.fail(where, f"{what}: send: to: {b._said(exc)}") from None
    if not targets:
        raise file.fail(
            where,
            f"{what}: send: to must be a subject: pick('NAME'), ref('NAME', i), a let value "
            f"holding one{', or message.sender' if senders is not None else ''}; got {to!r}",
        )
    fields = [str(k) for k in spec if k not in SEND_KEYS]
    for field in fields:
        b._check_name(file, field, spec.key_marks[field], f"{what}: send: field")
        if field in ("sender", "receiver", "kind", "sent_at", "seq", "payload"):
            raise file.fail(
                spec.key_marks[field],
                f"{what}: send: field {field!r}: a message has it already; give it another name",
            )
    return _Send(mark, kind, targets, fields)


def _collect_sends(
    b: Any, file: Any, populations: Dict[str, _Population]
) -> Dict[Tuple[str, str], List[Tuple[str, _Send]]]:
    """Every send of the model, by (receiving population, kind), each with its sender's
    population: what each receive block's ``message`` holds. A receive block that sends to
    ``message.sender`` is read once the senders of its kind are known."""
    sends: Dict[Tuple[str, str], List[Tuple[str, _Send]]] = {}

    def add(origin: str, send: _Send) -> None:
        for target in send.targets:
            sends.setdefault((target, send.kind), []).append((origin, send))

    waiting: List[Tuple[_Population, str, MarkedDict, Mark, Dict[str, str]]] = []
    for population in populations.values():
        transitions = population.spec.get("transitions")
        if isinstance(transitions, MarkedList):
            for spec in transitions:
                if not isinstance(spec, MarkedDict):
                    continue
                trigger = str(spec.get("trigger", "?"))
                what = f"population {population.name!r}: transition {trigger!r}"
                refs = _let_refs(b, file, spec, populations, what)
                for item, mark in _send_specs(b, file, spec, what):
                    send = _read_send_head(b, file, item, mark, what, refs, None, populations)
                    add(population.name, send)
                    population.transition_sends.append((trigger, send))
        for kind, (block, _) in population.receive.items():
            what = f"population {population.name!r}: receive {kind!r}"
            refs = _let_refs(b, file, block, populations, what)
            for item, mark in _send_specs(b, file, block, what):
                waiting.append((population, kind, item, mark, refs))
    progress = True
    while waiting and progress:  # replies to replies: until nothing changes
        progress = False
        for entry in list(waiting):
            population, kind, item, mark, refs = entry
            senders = {origin for origin, _ in sends.get((population.name, kind), [])}
            if not senders and _sends_to_sender(item):
                continue  # its senders are not known yet
            what = f"population {population.name!r}: receive {kind!r}"
            add(population.name, _read_send_head(b, file, item, mark, what, refs, senders,
                                                 populations))  # fmt: skip
            waiting.remove(entry)
            progress = True
    for population, kind, item, _mark, _refs in waiting:
        raise file.fail(
            b._at(item, "to"),
            f"population {population.name!r}: receive {kind!r}: send: to: message.sender, "
            f"but nothing sends {kind!r} to population {population.name!r}",
        )
    return sends


def _sends_to_sender(item: MarkedDict) -> bool:
    return str(item.get("to", "")).replace(" ", "") == "message.sender"


def _check_receivers(
    file: Any,
    populations: Dict[str, _Population],
    sends: Dict[Tuple[str, str], List[Tuple[str, _Send]]],
) -> None:
    """Every send goes to a population that receives its kind."""
    for (target, kind), found in sends.items():
        receiver = populations[target]
        for origin, send in found:
            if not receiver.receive:
                raise file.fail(
                    send.mark,
                    f"population {origin!r}: send {kind!r} to population {target!r}, which has "
                    "no receive: block",
                )
            if kind not in receiver.receive:
                hint = closest(kind, receiver.receive)
                more = f" (did you mean {hint!r}?)" if hint else ""
                raise file.fail(
                    send.mark,
                    f"population {origin!r}: send {kind!r} to population {target!r}, which "
                    f"receives {', '.join(receiver.receive)}{more}",
                )


def _message_fields(
    population: str,
    kind: str,
    populations: Dict[str, _Population],
    sends: Dict[Tuple[str, str], List[Tuple[str, _Send]]],
) -> Fields:
    """What ``message`` holds in ``population``'s receive block of ``kind``."""
    found = sends.get((population, kind), [])
    fields: Fields = {"kind": None, "sent_at": None}
    origins = {origin for origin, _ in found}
    if len(origins) == 1:
        fields["sender"] = _ref_fields(populations[next(iter(origins))])
    else:
        fields["sender"] = {"key": None, "index": None}
    fields["receiver"] = _ref_fields(populations[population])
    for _, send in found:
        fields.update({name: None for name in send.fields})
    return fields


# -- sinks ----------------------------------------------------------------------------------


def _read_world_sinks(
    b: Any,
    file: Any,
    model: Any,
    populations: Dict[str, _Population],
    sink_spec: MarkedDict,
    sends: Dict[Tuple[str, str], List[Tuple[str, _Send]]],
    trust: bool,
) -> None:
    """The model's sinks, each record checked against the populations that write to it: the
    attributes they all have; ``message`` when only receive blocks write to it."""
    writers: Dict[str, List[_Population]] = {}
    by_message: Dict[str, Set[Tuple[str, str]]] = {}  # sink -> (population, kind) writing
    others: Set[str] = set()
    events: Set[str] = set()  # sinks of events and messages, not only of rows
    for population in populations.values():
        for name in population.sinks:
            writers.setdefault(name, []).append(population)
            others.add(name)
        transitions = population.spec.get("transitions")
        for spec in transitions if isinstance(transitions, MarkedList) else []:
            listed = spec.get("sinks") if isinstance(spec, MarkedDict) else None
            for name in listed if isinstance(listed, list) else []:
                writers.setdefault(str(name), []).append(population)
                others.add(str(name))
                events.add(str(name))
        for name in population.receive_sinks:
            writers.setdefault(name, []).append(population)
            events.add(name)
        for kind, listed in population.receive_sinks_by_kind.items():
            for name in listed:
                by_message.setdefault(name, set()).add((population.name, kind))
    for sink_name, spec in sink_spec.items():
        where = sink_spec.key_marks[sink_name]
        if not isinstance(sink_name, str) or not b._IDENTIFIER.match(sink_name):
            raise file.fail(where, f"sink name {sink_name!r}: letters, digits and '_'")
        sink = b._Sink(sink_name, where)
        if isinstance(spec, str):
            spec_map = MarkedDict({"url": spec})
            spec_map.mark = sink_spec.value_marks[sink_name]
            spec_map.key_marks = {"url": spec_map.mark}
            spec_map.value_marks = {"url": spec_map.mark}
            spec = spec_map
        spec = file.mapping(spec, sink_spec.value_marks[sink_name], f"sink {sink_name!r}")
        file.keys(spec, b.SINK_KEYS, f"sink {sink_name!r}")
        found = writers.get(sink_name, [])
        attributes = list(found[0].attributes) if found else []
        for population in found[1:]:
            attributes = [a for a in attributes if a in population.attributes]
        kinds = b.Model()
        kinds.params = model.params
        for population in reversed(found):
            kinds.attribute_kinds.update(population.model.attribute_kinds)
        objects: Optional[Dict[str, Any]] = None
        names: Optional[Dict[str, str]] = None
        if sink_name in by_message and sink_name not in others:
            message: Fields = {}
            for population_name, kind in by_message[sink_name]:
                message.update(_message_fields(population_name, kind, populations, sends))
            objects = {"message": message}
            # The tick a message is handled at (the stream's key then is the message's own).
            names = {"message": "transition.message", "tick": "(transition.message.sent_at + 1)"}
        elif sink_name in others and sink_name not in events:
            names = {"tick": "0"}  # rows only: the subjects of a population are made at tick 0
        b._read_sink(file, sink, spec, attributes, kinds, trust, objects=objects, more_names=names)
        model.sinks[sink_name] = sink


# -- bodies ---------------------------------------------------------------------------------


def _calls(populations: Dict[str, _Population], params: Dict[str, Any]) -> Dict[str, Any]:
    """The checks of ``pick(...)`` and ``ref(...)``."""

    def pick(node: ast.Call) -> None:
        name = _literal_population(node, populations, "pick")
        if len(node.args) > 1:
            raise ExpressionError("pick() takes a population, and by= or zipf=")
        keywords = {item.arg: item.value for item in node.keywords}
        for key in keywords:
            if key not in ("by", "zipf"):
                raise ExpressionError(f"pick() takes by= or zipf=, not {key}=")
        if "by" in keywords and "zipf" in keywords:
            raise ExpressionError("pick() by an attribute or by zipf, not both")
        by = keywords.get("by")
        if by is not None:
            if not isinstance(by, ast.Constant) or not isinstance(by.value, str):
                raise ExpressionError("pick(by=...) names an attribute, in quotes")
            attributes = populations[name].attributes
            if by.value not in attributes:
                hint = closest(by.value, attributes)
                more = f" (did you mean {hint!r}?)" if hint else ""
                raise ExpressionError(
                    f"pick({name!r}, by={by.value!r}): population {name!r} has no attribute "
                    f"{by.value!r}",
                    more,
                )
        zipf = keywords.get("zipf")
        if zipf is not None:
            # A constant exponent: each exponent's table of weights is worked out once.
            value = params.get(zipf.id) if isinstance(zipf, ast.Name) else None
            if isinstance(zipf, ast.Constant):
                value = zipf.value
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ExpressionError("pick(zipf=...) takes a number above 0 or a parameter")

    def ref(node: ast.Call) -> None:
        _literal_population(node, populations, "ref")
        if len(node.args) != 2 or node.keywords:
            raise ExpressionError("ref() takes a population, in quotes, and an index")

    return {"pick": pick, "ref": ref}


def _is_subject(
    node: ast.AST, refs: Dict[str, str], receive: bool, populations: Dict[str, Any]
) -> bool:
    try:
        return bool(_target_of(node, refs, set() if receive else None, populations)) or (
            receive
            and isinstance(node, ast.Attribute)
            and node.attr in ("sender", "receiver")
            and isinstance(node.value, ast.Name)
            and node.value.id == "message"
        )
    except ExpressionError:
        return False


def _read_body(
    b: Any,
    file: Any,
    model: Any,
    population: _Population,
    spec: MarkedDict,
    what: str,
    names: Dict[str, str],
    objects: Dict[str, Fields],
    populations: Dict[str, _Population],
    sends: List[_Send],
    trust: bool,
) -> _Body:
    """``let``, ``when``, ``do`` and ``send``, as Python lines of one function."""
    body = _Body()
    attributes = population.attributes
    calls = _calls(populations, model.params)
    refs: Dict[str, str] = {}
    receive = "message" in objects

    def scope() -> Scope:
        return Scope(dict(names), model.params, attributes=attributes, faker=trust,
                     objects=dict(objects), calls=calls)  # fmt: skip

    def plain(text: Any, mark: Mark, where: str) -> None:
        """A value kept or sent is a value, not a subject."""
        try:
            node = ast.parse(str(text).strip(), mode="eval").body
        except SyntaxError:
            return
        if _is_subject(node, refs, receive, populations):
            raise file.fail(
                mark,
                f"{what}: {where} holds a subject; keep or send a value of it, such as its key "
                f"({str(text).strip()}.key)",
            )

    let = spec.get("let")
    if let is not None:
        let = file.mapping(let, spec.value_marks["let"], f"{what}: let")
        for name, expression in let.items():
            b._check_name(file, name, let.key_marks[name], f"{what}: let value")
            if name in attributes:
                raise file.fail(let.key_marks[name], f"{what}: let {name!r} hides an attribute")
            if name in _TAKEN:
                raise file.fail(let.key_marks[name], f"{what}: let {name!r}: the name is taken")
            try:
                code, found = check_expression(expression, scope())
                node = ast.parse(str(expression).strip(), mode="eval").body
                target = _target_of(node, refs, None, populations)
            except ExpressionError as exc:
                raise file.fail(let.value_marks[name],
                                f"{what}: {b._said(exc, ' in let')}") from None  # fmt: skip
            body.used |= found
            body.lines.append(f"    l_{name} = {code}")
            names[name] = f"l_{name}"
            if target:
                refs[name] = next(iter(target))
                objects[name] = _ref_fields(populations[refs[name]])
    if spec.get("when") is not None:
        try:
            code, found = check_expression(spec["when"], scope())
        except ExpressionError as exc:
            raise file.fail(spec.value_marks["when"],
                            f"{what}: {b._said(exc, ' in when')}") from None  # fmt: skip
        body.used |= found
        body.lines.append(f"    if not {code}:\n        return False")
    statements = spec.get("do")
    if statements is not None:
        if isinstance(statements, str):
            statements = MarkedList([statements])
            statements.item_marks = [spec.value_marks["do"]]
        statements = file.sequence(statements, spec.value_marks["do"], f"{what}: do")
        for statement, mark in zip(statements, statements.item_marks):
            try:
                target_name, code, found = check_statement(statement, scope())
            except ExpressionError as exc:
                raise file.fail(mark, f"{what}: {b._said(exc, ' in do')}") from None
            if isinstance(statement, str) and "=" in statement:
                plain(statement.split("=", 1)[1], mark, f"do {target_name!r}")
            body.used |= found
            body.lines.append(f"    subject.{target_name} = {code}")
    for send, (item, _) in zip(sends, _send_specs(b, file, spec, what)):
        try:
            send.to_code, found = check_expression(item["to"], scope())
        except ExpressionError as exc:
            raise file.fail(b._at(item, "to"), f"{what}: send: to: {b._said(exc)}") from None
        body.used |= found
        for field in send.fields:
            plain(item[field], item.value_marks[field], f"send: field {field!r}")
            try:
                code, found = check_expression(item[field], scope())
            except ExpressionError as exc:
                said = b._said(exc)
                raise file.fail(
                    item.value_marks[field], f"{what}: send: field {field!r}: {said}"
                ) from None
            body.used |= found
            send.payload.append((field, code))
        payload = "".join(f", {field}={code}" for field, code in send.payload)
        body.lines.append(f"    _send({send.to_code}, {send.kind!r}{payload})")
        body.sends.append(send)
    return body


def _read_bodies(
    b: Any,
    file: Any,
    model: Any,
    population: _Population,
    populations: Dict[str, _Population],
    sends: Dict[Tuple[str, str], List[Tuple[str, _Send]]],
    trust: bool,
) -> None:
    """The transitions (with their probabilities, ends and sinks) and the receive blocks."""
    pop_model = population.model
    what_population = f"population {population.name!r}"
    attribute_names = {a: f"subject.{a}" for a in population.attributes}
    if not population.entities:
        transitions = file.sequence(population.spec["transitions"],
                                    b._at(population.spec, "transitions"),
                                    f"{what_population}: transitions")  # fmt: skip
        seen: Dict[Tuple[str, str], Mark] = {}
        own_sends = iter(population.transition_sends)
        for spec, spec_mark in zip(transitions, transitions.item_marks):
            spec = file.mapping(spec, spec_mark, "a transition")
            file.keys(spec, (*b.TRANSITION_KEYS, "send"), "transition")
            t = b._Transition(spec, spec_mark)
            for required in ("trigger", "from", "to"):
                if required not in spec:
                    raise file.fail(spec.mark, f"a transition needs {required!r}")
            t.trigger = file.string(spec["trigger"], b._at(spec, "trigger"), "trigger")
            what = f"{what_population}: transition {t.trigger!r}"
            b._read_ends(file, t, spec, pop_model, what, seen)
            b._read_probability(file, t, spec, pop_model, what)
            names = dict(attribute_names)
            names.update(timestamp="timestamp", tick="_rng._t", trigger=repr(t.trigger),
                         to_state=repr(t.to_state),
                         from_state="transition.from_state")  # fmt: skip
            # the sends _collect_sends read from this transition, in order
            mine = [next(own_sends)[1] for _ in _send_specs(b, file, spec, what)]
            body = _read_body(b, file, model, population, spec, what, names, {}, populations,
                              mine, trust)  # fmt: skip
            t.body = body.lines
            t.uses_timestamp = "timestamp" in body.used
            t.uses_tick = "tick" in body.used
            if "action" in spec:
                t.action = b._python_ref(file, spec["action"], b._at(spec, "action"),
                                         f"{what}: action", trust)  # fmt: skip
            t.sinks = _sink_list(b, file, model, spec, what)
            pop_model.transitions.append(t)
        b._check_sums(file, pop_model)
    for kind, (block, _) in population.receive.items():
        what = f"{what_population}: receive {kind!r}"
        names = dict(attribute_names)
        names.update(timestamp="timestamp", tick="(message.sent_at + 1)", trigger=repr(kind),
                     message="message")  # fmt: skip
        objects: Dict[str, Fields] = {
            "message": _message_fields(population.name, kind, populations, sends)
        }
        senders = {origin for origin, _ in sends.get((population.name, kind), [])}
        refs = _let_refs(b, file, block, populations, what)
        mine = [
            _read_send_head(b, file, item, mark, what, refs, senders, populations)
            for item, mark in _send_specs(b, file, block, what)
        ]
        population.receive_bodies[kind] = _read_body(
            b, file, model, population, block, what, names, objects, populations, mine, trust
        )


# -- building -------------------------------------------------------------------------------


def build_world(
    helpers: Any,
    model: Any,
    overrides: Dict[str, Any],
    sink: Any,
    subjects: Optional[int],
    ticks: Any,
    seed: Any,
    timestamp_start: Any,
    make_sinks: bool,
) -> Any:
    """The :class:`~doge_datagen.populations.World` of a checked model of populations."""
    from doge_datagen.populations import World

    b = helpers
    populations: Dict[str, _Population] = model.populations
    sizes = {name: p.model.subjects for name, p in populations.items()}
    if subjects is not None:
        moving = [name for name, p in populations.items() if not p.entities]
        if len(moving) != 1:
            raise ConfigurationError(
                f"{model.filename}: a number of subjects is the size of the one population "
                f"with transitions, and this model has {len(moving)}; set the sizes with "
                "parameters (--set) instead"
            )
        sizes[moving[0]] = subjects
    world = World(
        model.tick_ms,
        model.ticks if ticks is b._UNSET else ticks,
        model.timestamp_start if timestamp_start is b._UNSET else timestamp_start,
        seed=model.seed if seed is b._UNSET else seed,
    )
    if model.locale is not None:
        world.fake_locale = model.locale
    namespace = b._namespace(world, model)
    namespace["pick"] = world.pick
    namespace["ref"] = world.ref
    namespace["_send"] = world.send
    if sink is not None:
        one = _single_sink(b, model, sink, namespace) if make_sinks else None
        built: Dict[str, Any] = {name: one for name in model.sinks}
    elif make_sinks:
        built = b._build_sinks(model, overrides, namespace)
    else:
        from doge_datagen.sinks.memory import CountingSink

        built = {name: CountingSink(name) for name in model.sinks}
    for population in populations.values():
        pop_model = population.model
        factory = b._subject_factory(pop_model, namespace, world.random)
        rows = [built[name] for name in population.sinks]
        if population.entities:
            world.add_entities(population.name, factory, sizes[population.name],
                               key=population.key, sinks=rows)  # fmt: skip
            continue
        from doge_datagen.model import DataOnlineGenerator

        generator: DataOnlineGenerator[Any] = DataOnlineGenerator(
            pop_model.states,
            pop_model.initial_state,
            factory,
            sizes[population.name],
            world.tick_ms,  # type: ignore[arg-type]  # a fractional tick is taken too
            world.ticks_num,
            world.timestamp_start,
            seed=world.seed,
            arrivals=pop_model.arrivals,
        )
        for t in pop_model.transitions:
            callback = b._callback(t, namespace)
            event_sinks = [built[name] for name in t.sinks]
            for source in t.from_states:
                generator.add_transition(
                    t.trigger, source, t.to_state, t.probability, callback, event_sinks
                )
        world.add_population(
            population.name,
            generator,
            key=population.key,
            sinks=rows,
            receive=_receive(population, namespace, world),
            receive_sinks={
                kind: [built[name] for name in names]
                for kind, names in population.receive_sinks_by_kind.items()
            },
        )
    for population in populations.values():
        for trigger, send in population.transition_sends:
            for target in sorted(send.targets):
                world.declare_messages(population.name, trigger, target, send.kind)
    return world


def _single_sink(b: Any, model: Any, sink: Any, namespace: Dict[str, Any]) -> Any:
    """One sink for every stream: a sink object as given, or one made from a URL whose records
    hold the timestamp, the population, every attribute of every population (null where a
    subject has none) and the event."""
    if not isinstance(sink, str):
        return sink
    populations: Dict[str, _Population] = model.populations
    owner = {s: name for name, p in populations.items() for s in p.model.states}
    attributes: List[str] = []
    kinds: Dict[str, str] = {}
    for population in populations.values():
        for name in population.attributes:
            if name not in attributes:
                attributes.append(name)
            kind = population.model.attribute_kinds.get(name)
            if kinds.setdefault(name, kind or "") != (kind or ""):
                kinds[name] = ""  # of different kinds in different populations
    everything = b._Sink("events", (0, 0))
    everything.fields = [("timestamp", "timestamp"), ("population", "_population(transition)")]
    everything.fields += [(a, f"_attribute(subject, {a!r})") for a in attributes]
    everything.fields += [("event", "transition.trigger"),
                          ("from_state", "transition.from_state"),
                          ("to_state", "transition.to_state")]  # fmt: skip
    everything.kinds = {"timestamp": "int", "population": "str", "event": "str",
                        "from_state": "str", "to_state": "str"}  # fmt: skip
    everything.kinds.update({name: kind for name, kind in kinds.items() if kind})
    scope = dict(namespace)
    scope["_attribute"] = lambda subject, name: getattr(subject, name, None)
    scope["_population"] = lambda event: (
        getattr(event, "population", None) or owner.get(event.to_state)
    )
    return b._make_sink(everything, sink, scope)


def _receive(population: _Population, namespace: Dict[str, Any], world: Any) -> Any:
    """The population's ``receive(subject, message)``: each kind's block, compiled once."""
    if not population.receive_bodies:
        return None
    scope = dict(namespace)

    def stamp(message: Any) -> Any:
        run = world._last_run
        start = run.timestamp_start if run is not None else world.timestamp_start
        tick_ms = world.tick_ms
        tick = message.sent_at + 1
        return start + (tick * tick_ms if isinstance(tick_ms, int) else round(tick * tick_ms))

    scope["_stamp"] = stamp
    handlers: Dict[str, Any] = {}
    for kind, body in population.receive_bodies.items():
        lines = [f"def receive_{kind}(subject, message):"]
        if "timestamp" in body.used:
            lines.append("    timestamp = _stamp(message)")
        lines.extend(body.lines)
        lines.append("    return True")
        label = f"<receive {kind} of {population.name}>"
        source = "\n".join(lines) + "\n"
        handlers[kind] = compile_functions(source, scope, label)[f"receive_{kind}"]

    def receive(subject: Any, message: Any) -> Any:
        handler = handlers.get(message.kind)
        if handler is None:
            raise ConfigurationError(
                f"population {population.name!r} has no receive {message.kind!r}"
            )
        return handler(subject, message)

    receive.__qualname__ = receive.__name__ = f"receive_{population.name}"
    return receive
