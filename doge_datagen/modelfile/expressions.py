"""The expression language of model files, checked and compiled once.

An expression is Python's expression syntax over an allow-list: numbers, strings, lists,
tuples, dicts, arithmetic, comparisons, ``and``/``or``/``not``, ``x if c else y``,
subscripts and calls of the functions named in :data:`LIBRARY` and :data:`RANDOM`
(``math.NAME`` for the names in :data:`MATH`), and the realistic values of ``datagen.fake``
as ``fake.NAME(...)`` (:data:`FAKE`, ``fake.unique.NAME(...)``, in another locale
``fake['de_DE'].NAME(...)`` or ``fake.for_country(country).NAME(...)``;
``fake.faker.NAME(...)`` only in a trusted file). There is no attribute access but
``math.NAME`` and those, no lambda, comprehension, walrus, star or f-string format width
beyond a few digits, and no name outside the ones a place allows, so ``__import__``,
``open``, ``eval`` or ``().__class__`` cannot be written.

Growth is bounded: a constant part (``10**10**10``, ``'x' * 10**12``) is worked out when the
file is checked, through the same guarded operations that ``**``, ``*`` and ``%`` go through at
run time (:func:`guarded_pow`, :func:`guarded_mul`, :func:`guarded_mod`), which refuse results
above :data:`MAX_INT_BITS` bits or :data:`MAX_LENGTH` items with a clear error.

Each checked expression becomes Python source (names rewritten to ``subject.NAME``, a local
of a ``let`` value, a constant of a parameter) and a whole transition or record is compiled
into one function with :func:`compile`: an event costs one call, as a Python callback does.
"""

import ast
import math
import re
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from doge_datagen.errors import ConfigurationError
from doge_datagen.values import LOCALES, PROVIDERS, UNIQUE_PROVIDERS

__all__ = [
    "ExpressionError",
    "ExpressionLimitError",
    "FAKE",
    "FAKE_UNIQUE",
    "FAKE_VALUES",
    "LIBRARY",
    "MATH",
    "RANDOM",
    "Scope",
    "check_expression",
    "check_statement",
    "closest",
    "guarded_mod",
    "guarded_mul",
    "guarded_pow",
]

#: The largest whole number an expression may make, in bits.
MAX_INT_BITS = 65_536
#: The longest string, list or tuple an expression may make.
MAX_LENGTH = 1_000_000
#: The longest expression text, and the deepest nesting of its syntax tree.
MAX_CHARS = 10_000
MAX_DEPTH = 60

#: The random functions, drawn from the subject's own stream (``datagen.random``).
RANDOM = (
    "randint",
    "randrange",
    "uniform",
    "random",
    "choice",
    "gauss",
    "normalvariate",
    "lognormvariate",
    "expovariate",
    "triangular",
    "betavariate",
    "gammavariate",
    "paretovariate",
    "weibullvariate",
    "vonmisesvariate",
)

#: ``fake.NAME(...)``: the value providers and distributions of ``datagen.fake``, drawn, as the
#: random functions are, from the subject's own stream.
FAKE = PROVIDERS
#: ``fake.unique.NAME(...)``: values no two subjects share.
FAKE_UNIQUE = UNIQUE_PROVIDERS
#: ``fake.NAME`` read without a call: the locale and its country (ISO 3166 alpha-2).
FAKE_VALUES = frozenset({"locale", "country"})
#: The values whose argument is a count of items (``fake.words(n)``, ``fake.sentence(words)``,
#: ``fake.zipf(n)``): the argument's position and keyword, bounded by :data:`MAX_LENGTH`.
_FAKE_SIZES = {"words": (0, "n"), "sentence": (0, "words"), "zipf": (0, "n")}

#: ``math.NAME`` that expressions may use (no ``factorial``, ``comb``, ``perm``: their cost
#: grows without bound with their argument).
MATH = frozenset(
    {
        "sqrt", "exp", "log", "log2", "log10", "log1p", "expm1", "pow", "sin", "cos", "tan",
        "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "hypot", "floor", "ceil",
        "trunc", "fabs", "copysign", "isfinite", "isnan", "isinf", "fmod", "pi", "e", "tau",
        "inf", "nan",
    }
)  # fmt: skip


class ExpressionError(ConfigurationError):
    """An expression that is refused; :attr:`message` says why."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message + hint)
        self.message = message
        #: `` (did you mean 'x'?)`` when a name is close to a known one, else empty.
        self.hint = hint


class ExpressionLimitError(ExpressionError):
    """An operation whose result would be larger than the limits allow."""


def guarded_pow(a: Any, b: Any) -> Any:
    """``a ** b``, refused when a whole-number result would have more than
    :data:`MAX_INT_BITS` bits."""
    if type(a) is int and type(b) is int and b > 0 and (a > 1 or a < -1):
        if (a.bit_length() - 1) * b > MAX_INT_BITS:
            raise ExpressionLimitError(
                f"{a} ** {b} would have more than {MAX_INT_BITS} bits; expressions are bounded"
            )
    return a**b


def guarded_mul(a: Any, b: Any) -> Any:
    """``a * b``, refused when a string or list would get more than :data:`MAX_LENGTH` items
    or a whole number more than :data:`MAX_INT_BITS` bits."""
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        if a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise ExpressionLimitError(
                f"a product of more than {MAX_INT_BITS} bits; expressions are bounded"
            )
    elif ta in (str, list, tuple) and tb in (int, bool):
        if ta is not str and b > 1 and any(isinstance(x, (list, tuple, dict)) for x in a):
            raise ExpressionLimitError(
                "repeating a list that holds lists, tuples or dicts; expressions are bounded"
            )
        if len(a) * b > MAX_LENGTH:
            raise ExpressionLimitError(
                f"repeating a {ta.__name__} of {len(a)} items {b} times makes more than "
                f"{MAX_LENGTH} items; expressions are bounded"
            )
    elif tb in (str, list, tuple) and ta in (int, bool):
        return guarded_mul(b, a)
    return a * b


_WIDE_FORMAT = re.compile(r"%[^a-zA-Z%]*(\d{5,}|\*)")


def guarded_mod(a: Any, b: Any) -> Any:
    """``a % b``; for ``%``-formatting, refused when a width or precision has 5 digits or
    more."""
    if type(a) is str and _WIDE_FORMAT.search(a):
        raise ExpressionLimitError(
            "a %-format with a width or precision of 5 digits or more, or taken from the "
            "arguments (*); expressions are bounded"
        )
    return a % b


def guarded_size(n: Any) -> Any:
    """A count of items for ``fake.words``, ``fake.sentence`` or ``fake.zipf``, refused above
    :data:`MAX_LENGTH`."""
    if type(n) is int and n > MAX_LENGTH:
        raise ExpressionLimitError(
            f"a count of {n} items is more than {MAX_LENGTH}; expressions are bounded"
        )
    return n


def total(values: Any) -> Any:
    """``sum(values)`` of numbers (no start value: lists and strings are not added up)."""
    return sum(values)


def _ms_datetime(ms: Any) -> datetime:
    return datetime.fromtimestamp(float(ms) / 1000.0, tz=timezone.utc)


def iso(ms: Any) -> str:
    """An epoch-milliseconds timestamp as ISO 8601 text in UTC, to the millisecond."""
    return _ms_datetime(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def date(ms: Any) -> str:
    """``YYYY-MM-DD`` of an epoch-milliseconds timestamp, in UTC."""
    return _ms_datetime(ms).date().isoformat()


def hour(ms: Any) -> int:
    """The hour of the day (0-23, UTC) of an epoch-milliseconds timestamp."""
    return int(ms // 3_600_000 % 24)


def weekday(ms: Any) -> int:
    """The day of the week (0 Monday .. 6 Sunday, UTC) of an epoch-milliseconds timestamp."""
    return int((ms // 86_400_000 + 3) % 7)


#: The library functions every expression may call, by name.
LIBRARY: Dict[str, Any] = {
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "len": len,
    "sum": total,
    "sorted": sorted,
    "iso": iso,
    "date": date,
    "hour": hour,
    "weekday": weekday,
}

#: Names reserved by the language: not usable as attributes, ``let`` values or parameters.
RESERVED = frozenset(
    {"index", "timestamp", "tick", "trigger", "from_state", "to_state", "subject",
     "transition", "math", "fake", "True", "False", "None"}
    | set(LIBRARY)
    | set(RANDOM)
)  # fmt: skip

_ALLOWED_NODES: Tuple[type, ...] = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.UnaryOp,
    ast.UAdd,
    ast.USub,
    ast.Not,
    ast.IfExp,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Call,
    ast.keyword,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Subscript,
    ast.Slice,
    ast.Attribute,
    ast.JoinedStr,
    ast.FormattedValue,
)

_NODE_WORDS = {
    "Lambda": "a lambda",
    "ListComp": "a comprehension",
    "SetComp": "a comprehension",
    "DictComp": "a comprehension",
    "GeneratorExp": "a generator expression",
    "NamedExpr": "an assignment expression (:=)",
    "Starred": "a starred argument",
    "Await": "await",
    "Yield": "yield",
    "YieldFrom": "yield",
    "LShift": "a shift (<<)",
    "RShift": "a shift (>>)",
    "BitOr": "a bitwise |",
    "BitAnd": "a bitwise &",
    "BitXor": "a bitwise ^",
    "Invert": "a bitwise ~",
    "MatMult": "@",
    "Is": "'is'",
    "IsNot": "'is not'",
    "Set": "a set",
}

_FORMAT_SPEC = re.compile(r"^[<>^=]?[+\- ]?[0#]?\d{0,3}[,_]?(\.\d{1,3})?[bcdeEfFgGnosxX%]?$")


def closest(name: str, candidates: Iterable[str]) -> Optional[str]:
    """The candidate most like ``name``, if one is close enough to suggest."""
    import difflib

    found = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return found[0] if found else None


class Scope:
    """The names an expression may use in one place, and the Python code each becomes.

    :param names: name -> Python source it is rewritten to (``subject.balance``, ``l_payment``)
    :param constants: name -> value, inlined (parameters)
    :param random: whether the random functions and ``fake`` may be called here
    :param attributes: the attributes a ``do`` statement may assign
    :param faker: whether ``fake.faker.NAME(...)`` (Faker's providers) may be called: only in
        a trusted file, as Faker's surface is not bounded (``binary(length=...)``,
        ``set_formatter``, ``seed_instance``)
    :param objects: names (among ``names``) whose attributes may be read, each with the
        attributes it has (:data:`Fields`): a picked subject (``product.price``), a message
        (``message.amount``, ``message.sender.key``)
    :param calls: more functions, by name, each with the check of its call (``pick``, whose
        population is a literal name)
    """

    def __init__(
        self,
        names: Dict[str, str],
        constants: Optional[Dict[str, Any]] = None,
        random: bool = True,
        attributes: Iterable[str] = (),
        faker: bool = False,
        objects: Optional[Dict[str, "Fields"]] = None,
        calls: Optional[Dict[str, Callable[[ast.Call], None]]] = None,
    ) -> None:
        self.names = names
        self.constants = constants or {}
        self.random = random
        self.attributes = set(attributes)
        self.faker = faker
        self.objects = objects or {}
        self.calls = calls or {}

    def known(self) -> Set[str]:
        found = set(self.names) | set(self.constants) | set(LIBRARY) | {"math"}
        if self.random:
            found |= set(RANDOM) | {"fake"} | set(self.calls)
        return found


#: The attributes an object of an expression has: each name with the attributes of its value
#: when that is an object too, else None.
Fields = Dict[str, Optional[Dict[str, Any]]]


class _Rewriter(ast.NodeTransformer):
    """Names to their code; ``**``, ``*`` and ``%`` to the guarded calls."""

    def __init__(self, scope: Scope, used: Set[str]) -> None:
        self.scope = scope
        self.used = used

    def visit_Name(self, node: ast.Name) -> Any:
        name = node.id
        self.used.add(name)
        if name in self.scope.constants:
            value = self.scope.constants[name]
            if isinstance(value, (int, float, str, bool)) or value is None:
                return ast.copy_location(ast.Constant(value), node)
            return ast.copy_location(ast.Name(f"p_{name}", ast.Load()), node)
        if name in self.scope.names:
            code = self.scope.names[name]
            return ast.copy_location(ast.parse(code, mode="eval").body, node)
        return node  # library, random: globals of the compiled function

    def visit_Call(self, node: ast.Call) -> Any:
        func = node.func
        counts: List[ast.expr] = []
        if isinstance(func, ast.Attribute) and _fake_target(func.value) == "fake":
            size = _FAKE_SIZES.get(func.attr)
            if size is not None:
                position, keyword = size
                counts = node.args[position : position + 1]
                counts += [item.value for item in node.keywords if item.arg == keyword]
                for count in counts:
                    _check_constant_size(count)
        self.generic_visit(node)
        if counts:
            node.args = [_guarded_size_call(a) if i == position else a
                         for i, a in enumerate(node.args)]  # fmt: skip
            for item in node.keywords:
                if item.arg == keyword:
                    item.value = _guarded_size_call(item.value)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        self.generic_visit(node)
        guard = {ast.Pow: "_pow", ast.Mult: "_mul", ast.Mod: "_mod"}.get(type(node.op))
        if guard is None:
            return node
        call = ast.Call(ast.Name(guard, ast.Load()), [node.left, node.right], [])
        return ast.copy_location(call, node)


def _guarded_size_call(node: ast.expr) -> ast.expr:
    return ast.copy_location(ast.Call(ast.Name("_size", ast.Load()), [node], []), node)


_CONSTANT_NODES = (ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop)


def _check_constant_size(node: ast.expr) -> None:
    """A constant count (``fake.words(10**9)``) is refused when the file is checked."""
    if all(isinstance(n, _CONSTANT_NODES) for n in ast.walk(node)):
        # Constants and operators only, whose value _fold_constants has already worked out
        # through the guards: working it out again is bounded.
        code = compile(ast.fix_missing_locations(ast.Expression(node)), "<count>", "eval")
        try:
            value = eval(code, {"__builtins__": {}})  # noqa: S307
        except Exception:  # noqa: BLE001 - the call says what is wrong with it at run time
            return
        guarded_size(value)


def _fake_target(node: ast.AST) -> Optional[str]:
    """``"fake"`` when ``node`` is ``fake`` or a locale's view of it (``fake['de_DE']``,
    ``fake.for_country(...)``), ``"unique"`` for ``fake.unique``, ``"faker"`` for
    ``fake.faker`` (of any view); else None."""
    if isinstance(node, ast.Name):
        return "fake" if node.id == "fake" else None
    if isinstance(node, ast.Subscript):
        return "fake" if _fake_target(node.value) == "fake" else None
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "for_country":
            return "fake" if _fake_target(func.value) == "fake" else None
        return None
    if isinstance(node, ast.Attribute) and node.attr in ("unique", "faker"):
        return node.attr if _fake_target(node.value) == "fake" else None
    return None


def uses_fake(node: ast.AST) -> bool:
    """Whether ``node`` is ``fake``, a view of it, a value read from it or a call of one."""
    if _fake_target(node) is not None:
        return True
    if isinstance(node, ast.Attribute):
        return _fake_target(node.value) is not None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return _fake_target(node.func.value) is not None
    return False


def _check_fake(node: ast.AST, scope: Scope, visit: Callable[[ast.AST], None]) -> None:
    """``fake.NAME(...)``, ``fake.unique.NAME(...)``, ``fake.faker.NAME(...)`` (trusted),
    ``fake.locale``, ``fake.country``, each on ``fake`` or a locale's view; ``visit`` checks
    the expressions inside (arguments, a locale, a country)."""
    if not scope.random:
        raise ExpressionError("fake values cannot be drawn here")
    kind = _fake_target(node)
    if kind is not None:
        raise ExpressionError(
            f"{ast.unparse(node)} is not a value: call one of its values, such as fake.name()"
        )
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Attribute)
        name, target = node.func.attr, node.func.value
    else:
        assert isinstance(node, ast.Attribute)
        name, target = node.attr, node.value
    if name.startswith("_"):
        raise ExpressionError(f"attribute names starting with '_' are not allowed ({name!r})")
    kind = _fake_target(target)
    where = "fake.unique" if kind == "unique" else "fake.faker" if kind == "faker" else "fake"
    if kind == "faker":
        if not scope.faker:
            raise ExpressionError(
                f"fake.faker.{name}() calls Faker, whose providers are not bounded: a model file "
                "calls it only when trusted (--trust, load(..., trust=True))"
            )
        if not isinstance(node, ast.Call):
            raise ExpressionError(f"fake.faker.{name} is called: fake.faker.{name}()")
    elif not isinstance(node, ast.Call):
        if kind == "fake" and name in FAKE_VALUES:
            _visit_view(target, visit)
            return
        if name in (FAKE if kind == "fake" else FAKE_UNIQUE):
            raise ExpressionError(f"{where}.{name} is called: {where}.{name}()")
        raise ExpressionError(f"{where}.{name} is not available", _fake_hint(name, kind, where))
    else:
        allowed = FAKE if kind == "fake" else FAKE_UNIQUE
        if name not in allowed:
            hint = _fake_hint(name, kind, where)
            raise ExpressionError(f"{where}.{name}() is not available", hint)
        for item in node.keywords:
            if item.arg is None:
                raise ExpressionError("a ** argument is not allowed")
            if item.arg == "locale":
                raise ExpressionError(
                    f"{where}.{name}() takes no locale: write fake['fr_FR'].{name}() for "
                    "another locale"
                )
    for argument in node.args:
        visit(argument)
    for item in node.keywords:
        visit(item.value)
    _visit_view(target, visit)


def _fake_hint(name: str, kind: Optional[str], where: str) -> str:
    candidates = set(FAKE) | FAKE_VALUES if kind == "fake" else set(FAKE_UNIQUE)
    hint = closest(name, candidates)
    return f" (did you mean '{where}.{hint}'?)" if hint else ""


def _visit_view(node: ast.AST, visit: Callable[[ast.AST], None]) -> None:
    """The expressions inside ``fake``'s views: a locale, a country."""
    while not isinstance(node, ast.Name):
        if isinstance(node, ast.Subscript):
            locale = node.slice
            if isinstance(locale, ast.Constant) and (
                not isinstance(locale.value, str) or locale.value.replace("-", "_") not in LOCALES
            ):
                hint = closest(str(locale.value), LOCALES)
                more = f" (did you mean {hint!r}?)" if hint else ""
                raise ExpressionError(
                    f"fake[{locale.value!r}]: unknown locale; the locales are {', '.join(LOCALES)}",
                    more,
                )
            visit(locale)
            node = node.value
        elif isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Attribute)
            if node.keywords or not 1 <= len(node.args) <= 2:
                raise ExpressionError(
                    "fake.for_country takes a country and, if you like, a default locale"
                )
            for argument in node.args:
                visit(argument)
            node = node.func.value
        else:
            assert isinstance(node, ast.Attribute)
            node = node.value


def _describe(node: ast.AST) -> str:
    name = type(node).__name__
    return _NODE_WORDS.get(name, name)


def _check_tree(tree: ast.AST, scope: Scope) -> None:
    def walk(node: ast.AST, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"nested more than {MAX_DEPTH} levels deep")
        if not isinstance(node, _ALLOWED_NODES):
            raise ExpressionError(f"{_describe(node)} is not allowed in an expression")
        if uses_fake(node):
            _check_fake(node, scope, lambda inner: walk(inner, depth + 1))
            return
        if isinstance(node, ast.Constant):
            _check_constant(node)
        elif isinstance(node, ast.Name):
            if node.id in scope.calls:
                raise ExpressionError(f"{node.id} is called: {node.id}(...)")
            _check_name(node, scope)
        elif isinstance(node, ast.Attribute):
            root = _object_root(node)
            if root in scope.objects:
                _check_object_attribute(node, scope)
            elif root is not None and root != "math" and root not in scope.known():
                _check_name(ast.Name(root, ast.Load()), scope)  # an unknown name, placed
            else:
                _check_math_attribute(node)
            return
        elif isinstance(node, ast.Call):
            _check_call(node, scope)
            if isinstance(node.func, ast.Name) and node.func.id in scope.calls and scope.random:
                for child in [*node.args, *node.keywords]:
                    walk(child, depth + 1)
                return
        elif isinstance(node, ast.FormattedValue):
            _check_format_spec(node)
            walk(node.value, depth + 1)
            return
        for child in ast.iter_child_nodes(node):
            walk(child, depth + 1)

    walk(tree, 0)


def _check_constant(node: ast.Constant) -> None:
    if not isinstance(node.value, (int, float, str, bool)) and node.value is not None:
        raise ExpressionError(f"the constant {node.value!r} is not allowed")


def _check_name(node: ast.Name, scope: Scope) -> None:
    """A name the scope knows; an unknown one is refused with the closest known name."""
    if node.id.startswith("_"):
        raise ExpressionError(f"names starting with '_' are not allowed ({node.id!r})")
    if node.id not in scope.known():
        hint = closest(node.id, scope.known() - set(LIBRARY) - {"math"})
        if node.id in RANDOM and not scope.random:
            raise ExpressionError(f"{node.id}() cannot be drawn here")
        if node.id == "fake":
            raise ExpressionError("fake values cannot be drawn here")
        more = f" (did you mean {hint!r}?)" if hint else ""
        raise ExpressionError(f"unknown name {node.id!r}", more)


def _object_root(node: ast.Attribute) -> Optional[str]:
    """The name at the start of ``a.b.c``, if it starts with a name."""
    value: ast.AST = node
    while isinstance(value, ast.Attribute):
        value = value.value
    return value.id if isinstance(value, ast.Name) else None


def _check_object_attribute(node: ast.Attribute, scope: Scope) -> None:
    """``NAME.a.b`` of an object of the scope: each attribute one the object has."""
    chain: List[str] = []
    value: ast.AST = node
    while isinstance(value, ast.Attribute):
        chain.append(value.attr)
        value = value.value
    assert isinstance(value, ast.Name)
    fields: Optional[Dict[str, Any]] = scope.objects[value.id]
    path = value.id
    for name in reversed(chain):
        if name.startswith("_"):
            raise ExpressionError(f"attribute names starting with '_' are not allowed ({name!r})")
        if fields is None:
            raise ExpressionError(f"{path} is a value, not a subject: it has no .{name}")
        if name not in fields:
            hint = closest(name, fields)
            more = f" (did you mean '{path}.{hint}'?)" if hint else ""
            known = ", ".join(sorted(fields)) or "none"
            raise ExpressionError(f"{path} has no attribute {name!r} (it has {known})", more)
        fields = fields[name]
        path = f"{path}.{name}"
    _check_name(value, scope)


def _check_math_attribute(node: ast.Attribute) -> None:
    """``math.NAME``, the only attribute an expression reads (``fake.NAME`` is checked as a
    fake call)."""
    if node.attr.startswith("_"):
        raise ExpressionError(f"attribute names starting with '_' are not allowed ({node.attr!r})")
    if not (isinstance(node.value, ast.Name) and node.value.id == "math"):
        raise ExpressionError(
            f"attribute access (.{node.attr}) is not allowed; only math.NAME and fake.NAME are"
        )
    if node.attr not in MATH:
        hint = closest(node.attr, MATH)
        more = f" (did you mean 'math.{hint}'?)" if hint else ""
        raise ExpressionError(f"math.{node.attr} is not available", more)


def _check_call(node: ast.Call, scope: Scope) -> None:
    func = node.func
    if isinstance(func, ast.Name):
        if func.id in scope.calls and scope.random:
            scope.calls[func.id](node)
        elif func.id not in LIBRARY and func.id not in RANDOM:
            if func.id in scope.known():
                raise ExpressionError(f"{func.id!r} is not a function")
    elif not (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "math"
    ):
        raise ExpressionError("only the library functions, math.NAME and fake.NAME can be called")


def _check_format_spec(node: ast.FormattedValue) -> None:
    """An f-string's format: a width of at most 3 digits."""
    spec = node.format_spec
    if spec is not None:
        parts = spec.values if isinstance(spec, ast.JoinedStr) else [spec]
        text = "".join(
            p.value if isinstance(p, ast.Constant) and isinstance(p.value, str) else "\0"
            for p in parts
        )
        if not _FORMAT_SPEC.match(text):
            raise ExpressionError(
                f"the format {text!r} is not allowed (a width of at most 3 digits)"
            )


def _fold_constants(tree: ast.AST) -> None:
    """Work out every constant part once, through the guards: ``10**10**10`` is refused
    when the file is checked."""
    constant_types = (ast.Constant, ast.BinOp, ast.UnaryOp, ast.Tuple, ast.List)
    operations = {
        ast.Add: lambda a, b: a + b,
        ast.Sub: lambda a, b: a - b,
        ast.Mult: guarded_mul,
        ast.Div: lambda a, b: a / b,
        ast.FloorDiv: lambda a, b: a // b,
        ast.Mod: guarded_mod,
        ast.Pow: guarded_pow,
    }

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp):
            operand = value(node.operand)
            if isinstance(node.op, ast.USub):
                return -operand
            if isinstance(node.op, ast.UAdd):
                return +operand
            return not operand
        if isinstance(node, (ast.Tuple, ast.List)):
            items = [value(e) for e in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.BinOp):
            left, right = value(node.left), value(node.right)
            result = operations[type(node.op)](left, right)
            if isinstance(result, (str, list, tuple)) and len(result) > MAX_LENGTH:
                raise ExpressionLimitError(f"a value of more than {MAX_LENGTH} items")
            if isinstance(result, int) and result.bit_length() > MAX_INT_BITS:
                raise ExpressionLimitError(f"a number of more than {MAX_INT_BITS} bits")
            return result
        raise LookupError  # not constant

    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and all(
            isinstance(n, constant_types) for n in ast.walk(node) if isinstance(n, ast.expr)
        ):
            try:
                value(node)
            except ExpressionLimitError:
                raise
            except LookupError:
                continue
            except (ArithmeticError, TypeError, ValueError) as exc:
                raise ExpressionError(f"{type(exc).__name__}: {exc}") from None


def _parse(text: Any, mode: str) -> ast.AST:
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ExpressionError(f"an expression must be a string or a number, got {text!r}")
    text = str(text)
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"an expression of more than {MAX_CHARS} characters")
    if "\0" in text:
        raise ExpressionError("an expression cannot hold a NUL character")
    try:
        return ast.parse(text.strip(), mode=mode)
    except SyntaxError as exc:
        hint = ""
        if "was never closed" in str(exc.msg):
            # YAML ends a value of a flow mapping ({a: f(x, y)}) at its first comma.
            hint = " (in YAML's {...}, quote an expression that has a comma)"
        raise ExpressionError(f"not an expression: {exc.msg}{hint}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ExpressionError(f"not an expression: {type(exc).__name__}") from None


def check_expression(text: Any, scope: Scope) -> Tuple[str, Set[str]]:
    """The Python source an expression compiles to, and the names it uses."""
    tree = _parse(text, "eval")
    _check_tree(tree, scope)
    _fold_constants(tree)
    used: Set[str] = set()
    tree = ast.fix_missing_locations(_Rewriter(scope, used).visit(tree))
    assert isinstance(tree, ast.Expression)
    return f"({ast.unparse(tree.body)})", used


_AUGMENTED = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}


def check_statement(text: Any, scope: Scope) -> Tuple[str, str, Set[str]]:
    """A ``do`` statement (``NAME = EXPR``, ``NAME += EXPR``, ...): the attribute it assigns
    and the Python source of the value it assigns (``subject.NAME + (...)`` for ``+=``)."""
    if not isinstance(text, str):
        raise ExpressionError(f"a 'do' entry is an assignment such as 'x += 1', got {text!r}")
    tree = _parse(text, "exec")
    assert isinstance(tree, ast.Module)
    if len(tree.body) != 1 or not isinstance(tree.body[0], (ast.Assign, ast.AugAssign)):
        raise ExpressionError(f"a 'do' entry is one assignment such as 'x += 1', got {text!r}")
    statement = tree.body[0]
    if isinstance(statement, ast.Assign):
        if len(statement.targets) != 1:
            raise ExpressionError("a 'do' entry assigns one name")
        target = statement.targets[0]
    else:
        target = statement.target
    if not isinstance(target, ast.Name):
        raise ExpressionError("a 'do' entry assigns to the name of an attribute")
    name = target.id
    if name not in scope.attributes:
        hint = closest(name, scope.attributes)
        more = f" (did you mean {hint!r}?)" if hint else ""
        raise ExpressionError(f"'do' assigns to {name!r}, which is not an attribute", more)
    value: ast.expr = statement.value
    if isinstance(statement, ast.AugAssign):
        if type(statement.op) not in _AUGMENTED:
            raise ExpressionError(f"{_describe(statement.op)} is not allowed in 'do'")
        value = ast.BinOp(ast.Name(name, ast.Load()), statement.op, value)
    expression = ast.fix_missing_locations(ast.Expression(value))
    _check_tree(expression, scope)
    _fold_constants(expression)
    used: Set[str] = set()
    expression = _Rewriter(scope, used).visit(expression)
    ast.fix_missing_locations(expression)
    return name, ast.unparse(expression.body), used


def function_globals(rng: Any, params: Dict[str, Any]) -> Dict[str, Any]:
    """The globals of compiled functions: the library, ``math``, the random functions bound
    to ``rng``, the guards and the parameters that are not inlined, without builtins."""
    namespace: Dict[str, Any] = {"__builtins__": {}}
    namespace.update(LIBRARY)
    namespace["math"] = _MathNames()
    if rng is not None:
        for name in RANDOM:
            namespace[name] = getattr(rng, name)
    namespace["_pow"] = guarded_pow
    namespace["_mul"] = guarded_mul
    namespace["_mod"] = guarded_mod
    namespace["_size"] = guarded_size
    for name, value in params.items():
        namespace[f"p_{name}"] = value
    return namespace


class _MathNames:
    """``math`` as expressions see it: the names of :data:`MATH` only."""

    __slots__ = tuple(sorted(MATH))

    def __init__(self) -> None:
        for name in MATH:
            setattr(self, name, getattr(math, name))


def compile_functions(source: str, namespace: Dict[str, Any], label: str) -> Dict[str, Any]:
    """Compile ``source`` (definitions made of checked expressions) once, in ``namespace``."""
    code = compile(source, label, "exec")
    exec(code, namespace)  # noqa: S102 - source made of checked, rewritten expressions
    return namespace


def constant_value(text: Any, constants: Dict[str, Any]) -> Any:
    """An expression over the parameters only (no random draws), worked out now."""
    scope = Scope({}, constants, random=False)
    source, _ = check_expression(text, scope)
    namespace = function_globals(None, constants)
    try:
        return eval(compile(source, "<constant>", "eval"), namespace)  # noqa: S307
    except ExpressionError:
        raise
    except Exception as exc:
        raise ExpressionError(f"{type(exc).__name__}: {exc}") from None


def names_of(functions: List[Callable[..., Any]]) -> List[str]:
    return [getattr(f, "__name__", "?") for f in functions]
