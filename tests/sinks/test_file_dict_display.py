"""A value function that returns one dict display of constant keys: a file sink writes its
lines as from a record, from the values alone, and the file is what the dicts give.

``literal_values`` is checked on its own (which functions it reads, and that the values it
gives are the dict's, with the function's side effects, defaults, closure and errors), then
in files against ``json.dumps`` and ``csv.writer`` of the dicts the same function returns.
"""

import csv
import io
import json
import random
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

from doge_datagen import FileSink, RecordError, Transition
from doge_datagen.sinks.record import literal_values

MOVE = Transition("buy", "cart", "away", 1.0)
LIMIT = 3


class Shopper:
    def __init__(self, shopper_id: int, basket: Any) -> None:
        self.shopper_id = shopper_id
        self.basket = basket


def row(timestamp: int, subject: Any, transition: Any) -> Dict[str, Any]:
    """A mapper as users write it."""
    return {
        "timestamp": timestamp,
        "shopper_id": subject.shopper_id,
        "event": transition.trigger,
        "basket": subject.basket,
        "big": subject.shopper_id > LIMIT,
        "nested": {"items": [subject.basket], "n": 1},
    }


def branches(timestamp: int, subject: Any, transition: Any) -> Dict[str, Any]:
    if subject.shopper_id % 2:
        return {"id": subject.shopper_id, "kind": "odd"}
    kind = "even" if subject.shopper_id % 4 else "four"
    return {"id": subject.shopper_id, "kind": kind}


def closure(offset: int) -> Callable[..., Dict[str, Any]]:
    def shifted(timestamp: int, subject: Any, transition: Any, step: int = 10, *, by: int = 2):
        return {"at": timestamp + offset, "step": step * by}

    return shifted


class Mapper:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def row(self, timestamp: int, subject: Any, transition: Any) -> Dict[str, Any]:
        return {"name": self.prefix + str(subject.shopper_id), "ts": timestamp}


def sometimes_none(timestamp: int, subject: Any, transition: Any) -> Optional[Dict[str, Any]]:
    if subject.shopper_id:
        return {"a": 1, "b": 2}
    return None


def other_keys(timestamp: int, subject: Any, transition: Any) -> Dict[str, Any]:
    if subject.shopper_id:
        return {"a": 1, "b": 2}
    return {"a": 1, "c": 2}


def built(timestamp: int, subject: Any, transition: Any) -> Dict[str, Any]:
    record = {"a": timestamp, "b": 2}
    return record


def spread(timestamp: int, subject: Any, transition: Any) -> Dict[str, Any]:
    return {"a": timestamp, **{"b": 2}}


def one_key(timestamp: int, subject: Any, transition: Any) -> Dict[str, Any]:
    return {"a": timestamp}


def key_from_variable(timestamp: int, subject: Any, transition: Any) -> Dict[str, Any]:
    key = "a"
    return {key: timestamp, "b": 2}


def generator(timestamp: int, subject: Any, transition: Any) -> Any:
    yield {"a": timestamp, "b": 2}


class Callable3:
    def __call__(self, timestamp: int, subject: Any, transition: Any) -> Dict[str, Any]:
        return {"a": timestamp, "b": 2}


def test_the_values_of_a_dict_display_are_the_dict_s_values() -> None:
    shoppers = [Shopper(i, b) for i, b in enumerate([1.5, "café", None, [1], 2**70, True])]
    for function in (row, branches, closure(7), Mapper("p-").row):
        derived = literal_values(function)
        assert derived is not None, function
        names, values = derived
        for shopper in shoppers:
            value = values(1_700_000_000_000, shopper, MOVE)
            assert type(value) is tuple
            assert dict(zip(names, value)) == function(1_700_000_000_000, shopper, MOVE)
    names, values = literal_values(closure(7))  # type: ignore[misc]
    assert (names, values(1, None, MOVE), values(1, None, MOVE, 3, by=5)) == (
        ("at", "step"), (8, 20), (8, 15)
    )  # fmt: skip


@pytest.mark.parametrize(
    "function",
    [sometimes_none, other_keys, built, spread, one_key, key_from_variable, generator,
     Callable3(), lambda t, s, x: {"a": t, "b": 2} if s else None, print, None],
)  # fmt: skip
def test_other_value_functions_are_left_as_they_are(function: Any) -> None:
    assert literal_values(function) is None


def test_a_dict_display_s_values_have_the_function_s_side_effects_and_errors() -> None:
    draws = random.Random(5)

    def drawn(timestamp: int, subject: Any, transition: Any) -> Dict[str, Any]:
        return {"a": draws.random(), "b": draws.randint(1, 9), "c": 1 / subject.shopper_id}

    line = 'return {"a": draws.random(), "b": draws.randint(1, 9), "c": 1 / subject.shopper_id}'

    names, values = literal_values(drawn)  # type: ignore[misc]
    got = values(0, Shopper(1, None), MOVE)
    draws.seed(5)
    assert got == tuple(drawn(0, Shopper(1, None), MOVE).values())
    with pytest.raises(ZeroDivisionError) as caught:
        values(0, Shopper(0, None), MOVE)
    # the traceback points into the function's own line
    where = traceback.extract_tb(caught.value.__traceback__)[-1]
    assert (where.filename, where.name, where.line) == (__file__, "drawn", line)


BASKETS = [1.25, 'café, "quoted"', None, [1, "2"], 2**65, float("inf"), 0.0, True, 0.1 + 0.2]


def feed(sink: Any, count: int = 2500) -> List[Dict[str, Any]]:
    rows = []
    for i in range(count):
        shopper = Shopper(i, BASKETS[i % len(BASKETS)])
        rows.append(row(1_700_000_000_000 + i, shopper, MOVE))
        sink.collect(1_700_000_000_000 + i, shopper, MOVE)
    sink.close()
    return rows


def csv_text(rows: List[Dict[str, Any]], header: bool = True) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    if header and rows:
        writer.writerow(list(rows[0]))
    writer.writerows(list(r.values()) for r in rows)
    return text.getvalue().encode("utf-8")


@pytest.mark.parametrize("buffer_lines", [1024, 7])
def test_a_json_lines_file_of_a_dict_display_is_json_dumps_of_the_dicts(
    tmp_path: Path, buffer_lines: int
) -> None:
    path = tmp_path / "shop.jsonl"
    sink = FileSink(path, row, buffer_lines=buffer_lines)
    assert sink._values is not None  # written from the values, no dict per event
    rows = feed(sink)
    assert path.read_bytes() == "".join(json.dumps(r) + "\n" for r in rows).encode("ascii")
    assert sink.value_function is row


def test_a_csv_file_of_a_dict_display_is_csv_writer_s_text_of_the_dicts(tmp_path: Path) -> None:
    rows: List[Dict[str, Any]] = []
    for fieldnames in (None, list(row(0, Shopper(0, 0), MOVE))):
        path = tmp_path / "shop.csv"
        sink = FileSink(path, row, fieldnames=fieldnames)
        assert sink._values is not None
        rows = feed(sink)
        assert path.read_bytes() == csv_text(rows)
    # other columns than the keys: the dicts' way, which refuses a key outside them
    sink = FileSink(tmp_path / "other.csv", row, fieldnames=["event", "timestamp"])
    assert sink._values is None
    with pytest.raises(RecordError, match="not one of the CSV fields"):
        sink.collect(1, Shopper(1, 2), MOVE)
    sink.close()


def test_a_csv_file_of_a_dict_display_without_events_has_no_header(tmp_path: Path) -> None:
    """As with any dict, the header comes with the first row."""
    path = tmp_path / "empty.csv"
    sink = FileSink(path, row)
    sink.open()
    sink.close()
    assert path.read_bytes() == b""
    feed(sink, 1)  # opened again: appends
    assert path.read_bytes() == csv_text([row(1_700_000_000_000, Shopper(0, 1.25), MOVE)])


def test_a_value_json_cannot_write_is_a_record_error_naming_the_dict(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "bad.jsonl", row)
    sink.collect(1, Shopper(1, 2), MOVE)
    with pytest.raises(RecordError) as caught:
        sink.collect(2, Shopper(2, {1, 2}), MOVE)
    assert repr(row(2, Shopper(2, {1, 2}), MOVE)) in str(caught.value)
    sink.close()
    assert (tmp_path / "bad.jsonl").read_bytes() == (
        json.dumps(row(1, Shopper(1, 2), MOVE)) + "\n"
    ).encode()
