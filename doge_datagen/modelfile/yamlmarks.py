"""YAML parsed safely, with the place of every key and value.

The text is composed into YAML nodes by PyYAML's safe loader and turned into plain values here,
so that only the standard scalar tags are accepted (a ``!!python/...`` tag, or any other, is an
error naming its line), anchors and aliases are refused (an alias repeated in a tree of aliases
is the "billion laughs" expansion), and each mapping and sequence remembers where its entries
were written: :class:`MarkedDict` and :class:`MarkedList`.
"""

from typing import Any, Dict, List, Optional, Tuple

from doge_datagen.errors import ConfigurationError

__all__ = ["Mark", "MarkedDict", "MarkedList", "YamlError", "parse"]

#: (line, column), both from 1.
Mark = Tuple[int, int]

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"

#: Nesting deeper than this is refused (no model needs it; a deep tree costs the parser).
MAX_DEPTH = 64
#: Characters in a model file.
MAX_CHARS = 4_000_000


class YamlError(ConfigurationError):
    """A file that is not YAML this format takes; ``mark`` is where."""

    def __init__(self, message: str, mark: Optional[Mark]) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class MarkedDict(Dict[Any, Any]):
    """A mapping with :attr:`mark` (where it starts), :attr:`key_marks` and
    :attr:`value_marks` (where each key and its value were written)."""

    mark: Mark
    key_marks: Dict[Any, Mark]
    value_marks: Dict[Any, Mark]


class MarkedList(List[Any]):
    """A sequence with :attr:`mark` and :attr:`item_marks` (one per item)."""

    mark: Mark
    item_marks: List[Mark]


def _mark(node: Any) -> Mark:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def parse(text: str) -> Any:
    """The values of a YAML (or JSON) text, mappings and sequences marked."""
    if len(text) > MAX_CHARS:
        raise YamlError(f"the file has more than {MAX_CHARS} characters", (1, 1))
    node = _compose(text)
    if node is None:
        return None
    return _Converter().convert(node, 0)


def _compose(text: str) -> Any:
    """The single YAML node of ``text`` (None for an empty document); a syntax error is a
    :class:`YamlError` naming where."""
    import yaml

    try:
        # libyaml's parser when PyYAML has it (the same nodes and marks, ten times faster).
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark is not None else None
        raise YamlError(f"not valid YAML: {exc.problem or exc.context}", where) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"not valid YAML: {exc}", None) from None


class _Converter:
    """Turns composed nodes into plain values; every node is converted once, so a node met
    again is an alias."""

    def __init__(self) -> None:
        from yaml.constructor import SafeConstructor

        self.constructor = SafeConstructor()
        self.seen: Dict[int, bool] = {}

    def convert(self, node: Any, depth: int) -> Any:
        import yaml

        if depth > MAX_DEPTH:
            raise YamlError(f"nested more than {MAX_DEPTH} levels deep", _mark(node))
        if id(node) in self.seen:
            raise YamlError(
                "anchors and aliases (&name, *name) are not taken: write the value out",
                _mark(node),
            )
        self.seen[id(node)] = True
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return self._sequence(node, depth)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, depth)
        raise YamlError(f"unexpected YAML node {type(node).__name__}", _mark(node))

    def _scalar(self, node: Any) -> Any:
        import yaml

        if node.tag == "tag:yaml.org,2002:timestamp":
            return str(node.value)  # a date stays text: the model reads it as ISO 8601
        if node.tag not in _SCALAR_TAGS:
            raise YamlError(
                f"the tag {node.tag!r} is not taken: a model file holds plain strings, "
                "numbers, booleans, null, mappings and lists",
                _mark(node),
            )
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            raise YamlError(f"bad value: {exc}", _mark(node)) from None

    def _sequence(self, node: Any, depth: int) -> MarkedList:
        if node.tag != _SEQ_TAG:
            raise YamlError(f"the tag {node.tag!r} is not taken", _mark(node))
        items = MarkedList()
        items.mark = _mark(node)
        items.item_marks = []
        for item in node.value:
            items.append(self.convert(item, depth + 1))
            items.item_marks.append(_mark(item))
        return items

    def _mapping(self, node: Any, depth: int) -> MarkedDict:
        if node.tag != _MAP_TAG:
            raise YamlError(f"the tag {node.tag!r} is not taken", _mark(node))
        mapping = MarkedDict()
        mapping.mark = _mark(node)
        mapping.key_marks = {}
        mapping.value_marks = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlError("merge keys (<<) are not taken", _mark(key_node))
            key = self.convert(key_node, depth + 1)
            if isinstance(key, (list, dict)):
                raise YamlError("a key must be a string", _mark(key_node))
            if key in mapping:
                raise YamlError(f"{key!r} is given twice", _mark(key_node))
            mapping[key] = self.convert(value_node, depth + 1)
            mapping.key_marks[key] = _mark(key_node)
            mapping.value_marks[key] = _mark(value_node)
        return mapping
