"""JSON text of records, as ``json.dumps(record)`` writes it, made fast.

The sinks write ``json.dumps``'s text (``", "`` and ``": "`` separators, ASCII with ``\\uXXXX``
escapes, ``NaN``, ints of any size), so that a file or a Kafka value is the same whichever
encoder made it, and the same as files written before. The C encoder of ``_jsonlines.c``
writes that text into one buffer per batch: a record costs one call and no object besides the
record. Where the extension is not built, :class:`PyLines` does the same with ``json.dumps``.
Records the C encoder does not take itself (keys that are not strings, dict subclasses,
objects only a ``default`` could encode) go whole to ``json.dumps``, so that their text, or
their error, is exactly json's.
"""

import csv
import io
import json
from typing import Any, Callable, List, Optional, Tuple

__all__ = [
    "CLines",
    "Collector",
    "ENCODE_ERRORS",
    "PyLines",
    "csv_buffer",
    "csv_row",
    "dumps_bytes",
    "line_buffer",
    "lines_of",
]

#: What encoding a record may raise: a type json cannot encode, a circular record, too deep.
ENCODE_ERRORS = (TypeError, ValueError, OverflowError, RecursionError)


class PyLines:
    """The C encoder's interface in Python: ``append(record)`` adds ``json.dumps(record)`` and a
    line break and returns how many lines are held; ``take()`` returns them as bytes."""

    __slots__ = ("_lines", "_dumps", "names")

    def __init__(
        self, fallback: Callable[[Any], str] = json.dumps, names: Optional[Tuple[str, ...]] = None
    ) -> None:
        self._lines: List[str] = []
        self._dumps = fallback
        self.names = names

    def append(self, record: Any) -> int:
        lines = self._lines
        lines.append(self._dumps(record))
        return len(lines)

    def append_values(self, values: Tuple[Any, ...]) -> int:
        """``append(dict(zip(names, values)))``."""
        names = self.names
        if names is None:
            raise TypeError("this buffer has no field names")
        if type(values) is not tuple or len(values) != len(names):
            raise TypeError(f"expected a tuple of {len(names)} values")
        return self.append(dict(zip(names, values)))

    def append_row(self, row: Tuple[Any, ...]) -> int:
        """A CSV row (the fallback is :func:`csv_row`), without its line break."""
        lines = self._lines
        lines.append(self._dumps(row)[:-1])
        return len(lines)

    def encode(self, record: Any) -> bytes:
        return self._dumps(record).encode("utf-8")

    def take(self) -> bytes:
        lines = self._lines
        self._lines = []
        return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""

    def clear(self) -> None:
        self._lines = []

    @property
    def size(self) -> int:
        return sum(len(line) + 1 for line in self._lines)

    def __len__(self) -> int:
        return len(self._lines)


_CLines: Any
Collector: Any
try:
    from doge_datagen.sinks._jsonlines import Collector
    from doge_datagen.sinks._jsonlines import Lines as _CLines
except ImportError:  # the C extension was not built: json.dumps does it all
    _CLines = Collector = None
#: The C buffer's type (a class nothing is an instance of where it is not built).
CLines: Any = _CLines if _CLines is not None else type("CLines", (), {})


def line_buffer(names: Optional[Tuple[str, ...]] = None, c_encoder: Optional[bool] = None) -> Any:
    """A new buffer of JSON lines: the C encoder's where it is built (or where ``c_encoder``
    asks for it), else :class:`PyLines`. With ``names``, ``append_values(tuple)`` adds the
    record of those fields, their text made once."""
    if c_encoder is None:
        c_encoder = _CLines is not None
    if c_encoder:
        if _CLines is None:
            raise ImportError("doge_datagen._jsonlines (the C JSON encoder) is not built")
        return _CLines(json.dumps, names)
    return PyLines(json.dumps, names)


def csv_row(row: Tuple[Any, ...]) -> str:
    """``row`` as ``csv.writer(..., lineterminator="\\n")`` writes it."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(row)
    return text.getvalue()


def csv_buffer(c_encoder: Optional[bool] = None) -> Any:
    """A new buffer of CSV rows (``append_row(tuple)``), csv.writer's text: the C encoder's
    for plain fields, :func:`csv_row` for the rest and where the extension is not built."""
    if c_encoder is None:
        c_encoder = _CLines is not None
    if c_encoder:
        if _CLines is None:
            raise ImportError("doge_datagen._jsonlines (the C JSON encoder) is not built")
        return _CLines(csv_row)
    return PyLines(csv_row)


_ONE = line_buffer()


def dumps_bytes(record: Any) -> bytes:
    """``json.dumps(record).encode()``, faster: for one value at a time (a Kafka record)."""
    encoded: bytes = _ONE.encode(record)
    return encoded


def lines_of(text: str) -> List[str]:
    """The lines of a batch, for a :class:`~doge_datagen.errors.DeliveryError`'s ``pending``."""
    return text.split("\n")[:-1]
