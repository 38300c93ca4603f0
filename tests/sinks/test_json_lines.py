"""JSON text of the sinks: the C encoder and its fallback write json.dumps's very text.

Files, Kafka values and the demo's lines are compared byte for byte with ``json.dumps`` of
the same records, for both encoders (the C one and ``json.dumps`` itself, used where the C
extension is not built), including the values where a fast encoder could differ: floats,
non-ASCII text, nesting, None and booleans, ints beyond 64 bits, subclasses of the basic
types, keys that are not strings and values json refuses.
"""

import collections
import enum
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doge_datagen import ConfigurationError, FileSink, InMemorySink, RecordError, Transition
from doge_datagen.demo import banking_generator, event_row
from doge_datagen.sinks import _json
from doge_datagen.sinks.record import Record

ROOT = Path(__file__).resolve().parents[2]
BUILT = _json._CLines is not None

# The C encoder is skipped on a checkout without the built extension, except in CI, which
# builds it: there a missing extension fails.
ENCODERS = ["python"] + (["c"] if BUILT or os.environ.get("CI") == "true" else [])


def buffer(kind: str, names: Any = None) -> Any:
    return _json.line_buffer(names, c_encoder=kind == "c")


class Color(enum.IntEnum):
    RED = 3


class Text(str):
    pass


class Number(float):
    pass


def deep(levels: int) -> List[Any]:
    value: List[Any] = [1]
    for _ in range(levels):
        value = [value]
    return value


CASES: List[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    -(2**63) - 1,
    2**64,
    2**200,
    -(2**70),
    1.5,
    -0.0,
    0.1 + 0.2,
    1e16,
    1e15,
    123456789012345.67,
    1e-4,
    1e-5,
    1e-7,
    5e-324,
    1.7976931348623157e308,
    math.nan,
    math.inf,
    -math.inf,
    "",
    "plain",
    'quote " backslash \\ / slash',
    "\n\r\t\b\f\x00\x01\x1f\x7f",
    "café €uro 😀 \u2028\u2029",
    "lone \ud800 surrogate",
    [],
    {},
    (),
    [1, [2, [3, [{}]]]],
    {"a": {"b": [1.5, None, True, "x"]}, "c": ()},
    {"é": "😀", "": ""},
    {2: "int key", None: "none key", 1.5: "float key", True: "bool key"},
    Color.RED,
    Text("a str subclass"),
    Number(2.5),
    collections.OrderedDict([("b", 1), ("a", 2)]),
    {"nested": collections.OrderedDict(z=1)},
    deep(70),  # deeper than the C encoder goes: json writes it
    {"timestamp": 1_700_000_000_000, "user_id": 7, "event": "login", "price": 12.99},
]


@pytest.mark.parametrize("kind", ENCODERS)
def test_each_record_is_json_dumps_text(kind: str) -> None:
    lines = buffer(kind)
    for case in CASES:
        assert lines.encode(case) == json.dumps(case).encode("ascii"), case
        lines.append(case)
    assert len(lines) == len(CASES)
    assert lines.take() == "".join(json.dumps(c) + "\n" for c in CASES).encode("ascii")
    assert (len(lines), lines.take()) == (0, b"")


@pytest.mark.parametrize("kind", ENCODERS)
def test_floats_are_repr_as_json_writes_them(kind: str) -> None:
    """The C encoder formats most floats itself (a short decimal read back exactly) and the
    rest as repr() does: both must be repr's digits."""
    lines = buffer(kind)
    rng = random.Random(20)
    floats: List[float] = []
    for _ in range(20_000):
        digits = rng.randint(0, 10 ** rng.randint(1, 17))
        places = rng.randint(0, 20)
        floats += [digits / 10**places, -digits / 10**places, float(f"{digits}e-{places}")]
        floats.append(rng.uniform(-1, 1) * 10 ** rng.randint(-320, 308))
        value = round(rng.uniform(0, 1e6), rng.randint(0, 8))
        floats += [math.nextafter(value, 0), math.nextafter(value, math.inf)]
    text = lines.encode(floats).decode("ascii")
    assert text == json.dumps(floats)


@pytest.mark.parametrize("kind", ENCODERS)
def test_ints_around_a_digit_and_a_repeated_int_are_json_dumps_text(kind: str) -> None:
    """The C encoder reads an int within one digit directly, and keeps the text of the last
    larger one (a timestamp, the same object all through a tick): each must be json's text,
    whichever object comes next."""
    edges = [0, 1, -1, 9, 10, 99, 100, 2**15, 2**30 - 1, 2**30, 2**31, 2**32, 2**60, 2**62,
             2**63 - 1, 2**63, 2**64, 10**19, 10**20]  # fmt: skip
    ints = [s * (e + d) for e in edges for d in (-1, 0, 1) for s in (1, -1)]
    timestamp = 1_700_000_000_000
    other = int("1700000060000")  # another object, after the first one's text is kept
    same_value = int(str(timestamp))
    records = [{"ts": timestamp, "n": n, "again": timestamp} for n in ints]
    records += [{"ts": other}, {"ts": timestamp}, {"ts": same_value}, {"c": Color.RED}]
    records += [{"big": 2**40, "enum": Color.RED}, {"big": 2**40}, [2**40, -(2**40), 2**40]]
    lines = buffer(kind)
    for record in records:
        lines.append(record)
    assert lines.take() == "".join(json.dumps(r) + "\n" for r in records).encode("ascii")


@pytest.mark.parametrize("kind", ENCODERS)
def test_zero_floats_are_json_dumps_text(kind: str) -> None:
    values = [0.0, -0.0, Number(0.0), Number(-0.0), 5e-324, -5e-324, [0.0, -0.0]]
    lines = buffer(kind)
    for value in values:
        assert lines.encode(value) == json.dumps(value).encode("ascii")
        assert lines.encode({"v": value}) == json.dumps({"v": value}).encode("ascii")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(json_values, max_size=5))
def test_random_records_are_json_dumps_text(records: List[Any]) -> None:
    want = "".join(json.dumps(r) + "\n" for r in records).encode("ascii")
    for kind in ENCODERS:
        lines = buffer(kind)
        for record in records:
            lines.append(record)
        assert lines.take() == want


@pytest.mark.parametrize("kind", ENCODERS)
def test_what_json_refuses_fails_with_json_s_error_and_the_buffer_keeps_the_rest(
    kind: str,
) -> None:
    circular: List[Any] = []
    circular.append(circular)
    lines = buffer(kind)
    lines.append({"kept": 1})
    for bad in ({"a": object()}, {(1, 2): "tuple key"}, circular, {"s": {1, 2}}):
        with pytest.raises((TypeError, ValueError)) as caught:
            json.dumps(bad)
        with pytest.raises(type(caught.value)) as ours:
            lines.append(bad)
        assert str(ours.value) == str(caught.value)
    assert lines.take() == b'{"kept": 1}\n'


@pytest.mark.parametrize("kind", ENCODERS)
def test_a_template_writes_the_dict_s_text(kind: str) -> None:
    names = ("timestamp", "name", "price", "tags", "é")
    lines = buffer(kind, names)
    rows = [
        (1, "a", 1.5, ["x"], None),
        (2**70, "café", math.nan, {"k": 1}, True),
        (3, Text("t"), 1e-7, (), {1: "int key goes to json"}),
    ]
    for values in rows:
        lines.append_values(values)
    want = "".join(json.dumps(dict(zip(names, v))) + "\n" for v in rows)
    assert lines.take().decode("ascii") == want
    with pytest.raises(TypeError):
        lines.append_values((1, 2))  # one value per name
    with pytest.raises(TypeError):
        lines.append_values((object(), "a", 1.0, [], None))
    assert (len(lines), lines.take()) == (0, b"")


def test_the_c_encoder_is_built() -> None:
    if os.environ.get("CI") != "true" and not BUILT:
        pytest.skip("the C encoder is not built in this checkout")
    assert BUILT, "doge_datagen._jsonlines is not built"


# -- records ---------------------------------------------------------------------------------


class Shopper:
    __slots__ = ("shopper_id", "basket", "timestamp")

    def __init__(self, shopper_id: int, basket: Any) -> None:
        self.shopper_id = shopper_id
        self.basket = basket
        self.timestamp = "the subject's own"


MOVE = Transition("buy", "cart", "away", 10)


def test_a_record_reads_its_fields_from_the_event() -> None:
    record = Record(
        [
            "timestamp",
            "shopper_id",
            ("event", "trigger"),
            "from_state",
            ("own", "subject.timestamp"),
        ]
    )
    shopper = Shopper(4, [1, 2])
    assert record.values(99, shopper, MOVE) == (99, 4, "buy", "cart", "the subject's own")
    assert record(99, shopper, MOVE) == {
        "timestamp": 99,
        "shopper_id": 4,
        "event": "buy",
        "from_state": "cart",
        "own": "the subject's own",
    }
    assert Record(dict(zip(record.names, record.sources))) == record
    assert "Record([" in repr(record)
    import pickle

    assert pickle.loads(pickle.dumps(record)).values(1, shopper, MOVE)[:2] == (1, 4)


@pytest.mark.parametrize(
    "fields, message",
    [
        ([], "at least one"),
        ("timestamp", "list of names"),
        (["a", "a"], "named twice: a"),
        ([("a", "no such-name")], "not a source"),
        ([("a", "subject.__class__.x")], "not a source"),
        ([("a", 1)], "must be a name"),
        ([3], "a name or a"),
    ],
)
def test_bad_records_are_refused(fields: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Record(fields)


def shop_row(timestamp: int, subject: Any, transition: Transition) -> Dict[str, Any]:
    return {
        "timestamp": timestamp,
        "shopper_id": subject.shopper_id,
        "event": transition.trigger,
        "basket": subject.basket,
    }


SHOP = Record(["timestamp", "shopper_id", ("event", "trigger"), "basket"])
BASKETS = [1.25, "café", None, [1, "2"], 2**65, math.inf, {"k": "v"}, True, 0.1 + 0.2]


def feed(sink: Any, count: int = 2500) -> None:
    for i in range(count):
        sink.collect(1_700_000_000_000 + i, Shopper(i, BASKETS[i % len(BASKETS)]), MOVE)
    sink.close()


@pytest.mark.parametrize("kind", ENCODERS)
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_file_of_a_record_or_of_a_dict_is_the_text_of_json_and_csv(
    tmp_path: Path, kind: str, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import doge_datagen.sinks.file as file_module

    monkeypatch.setattr(
        file_module, "line_buffer", lambda names=None, c_encoder=None: buffer(kind, names)
    )
    paths = {}
    for way, options in (
        ("dict", {"value_function": shop_row}),
        ("dict built otherwise", {"value_function": lambda *event: dict(shop_row(*event))}),
        ("record", {"record": SHOP}),
        ("record given as the value function", {"value_function": SHOP}),
        ("small batches", {"value_function": shop_row, "buffer_lines": 7}),
    ):
        paths[way] = tmp_path / f"{way}.{fmt}"
        feed(FileSink(paths[way], format=fmt, **options))
    memory = InMemorySink(shop_row)
    feed(memory)
    rows = [event.value for event in memory.events]
    if fmt == "jsonl":
        want = "".join(json.dumps(row) + "\n" for row in rows).encode("ascii")
    else:
        import csv
        import io

        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(list(rows[0]))
        writer.writerows(list(row.values()) for row in rows)
        want = text.getvalue().encode("utf-8")
    for way, path in paths.items():
        assert path.read_bytes() == want, way


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_a_file_in_another_encoding_holds_the_same_text(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "e.jsonl"
    feed(FileSink(path, shop_row, encoding=encoding), 50)
    memory = InMemorySink(shop_row)
    feed(memory, 50)
    want = "".join(json.dumps(e.value) + "\n" for e in memory.events)
    assert path.read_text(encoding=encoding) == want


def test_a_record_value_json_cannot_write_is_a_record_error_naming_it(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "r.jsonl", record=["timestamp", "basket"])
    sink.collect(1, Shopper(1, "fine"), MOVE)
    with pytest.raises(RecordError, match=r"'basket': <object object"):
        sink.collect(2, Shopper(2, object()), MOVE)
    sink.close()
    assert (tmp_path / "r.jsonl").read_text() == '{"timestamp": 1, "basket": "fine"}\n'


def test_record_and_value_function_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        FileSink(tmp_path / "x.jsonl", shop_row, record=SHOP)


def test_a_dumps_of_the_caller_s_still_writes_its_text(tmp_path: Path) -> None:
    path = tmp_path / "own.jsonl"
    feed(FileSink(path, shop_row, dumps=lambda v: json.dumps(v, separators=(",", ":"))), 30)
    first = path.read_text().splitlines()[0]
    assert first == '{"timestamp":1700000000000,"shopper_id":0,"event":"buy","basket":1.25}'


# -- the demo --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 7])
def test_the_demo_writes_json_dumps_of_each_event_row(tmp_path: Path, seed: int) -> None:
    """The demo's lines, byte for byte: json.dumps of event_row for each event of the same
    seeded model, in order."""
    path = tmp_path / "demo.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "doge_datagen", "demo", "--subjects", "400", "--ticks", "300"]
        + ["--seed", str(seed), "--timestamp-start", "1700000000000", "--no-progress"]
        + ["--sink", f"jsonl:{path}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    memory = InMemorySink(event_row)
    streams = [InMemorySink(event_row) for _ in range(4)]
    datagen = banking_generator(
        *streams, subjects_num=400, ticks_num=300, seed=seed, timestamp_start=1_700_000_000_000
    )
    for transition in datagen.transitions:  # every move once, as one --sink gets it
        transition.event_sinks = [memory]
    datagen.start()
    want = "".join(json.dumps(e.value) + "\n" for e in memory.events)
    assert len(memory.events) > 100
    assert path.read_bytes() == want.encode("ascii")


def test_event_row_is_a_record_and_still_a_function() -> None:
    assert isinstance(event_row, Record)
    row: Callable[..., Dict[str, Any]] = event_row
    assert list(row(5, type("U", (), {"user_id": 1, "balance": 2, "loan_balance": 3})(), MOVE)) == [
        "timestamp",
        "user_id",
        "balance",
        "loan_balance",
        "event",
        "from_state",
        "to_state",
    ]


# -- Kafka -----------------------------------------------------------------------------------


def test_kafka_json_values_are_json_dumps_text(kafka_bootstrap: str, kafka_topic: Any) -> None:
    from support.kafka_fixtures import read_all

    from doge_datagen import KafkaSinkFactory

    topic = kafka_topic()
    factory = KafkaSinkFactory(kafka_bootstrap, "doge-test-json")
    sink = factory.create(topic, lambda s, t: str(s.shopper_id), shop_row, value_serializer="json")
    feed(sink, 40)
    assert (sink.delivered, sink.failed) == (40, 0)
    memory = InMemorySink(shop_row)
    feed(memory, 40)
    records = read_all(kafka_bootstrap, topic, expected=40)
    assert [r.value for r in records] == [json.dumps(e.value).encode() for e in memory.events]
    assert [r.key for r in records] == [str(i).encode() for i in range(40)]


def test_a_kafka_value_json_cannot_write_is_a_record_error(kafka_bootstrap: str) -> None:
    from doge_datagen import KafkaSinkFactory

    factory = KafkaSinkFactory(kafka_bootstrap, "doge-test-json")
    sink = factory.create("unused", lambda s, t: None, shop_row, value_serializer="json")
    with pytest.raises(RecordError, match="cannot serialize the value"):
        sink.collect(1, Shopper(1, object()), MOVE)
    sink.close()
    with pytest.raises(ConfigurationError, match="only name it takes is 'json'"):
        factory.create("unused", lambda s, t: None, shop_row, value_serializer="avro")


# -- CSV -------------------------------------------------------------------------------------

csv_fields = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.sampled_from(["", " ", "a,b", 'say "hi"', "two\nlines", "cr\r", "nul\x00", "café"])
    | st.builds(Color, st.just(3))
    | st.builds(Text, st.text(max_size=3))
    | st.lists(st.integers(), max_size=2)
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(csv_fields, max_size=5).map(tuple), max_size=5))
def test_csv_rows_are_csv_writer_text(rows: List[Any]) -> None:
    import csv
    import io

    text = io.StringIO()
    try:
        csv.writer(text, lineterminator="\n").writerows(rows)
    except csv.Error:
        return  # a row csv refuses: the buffers ask csv for it and raise its error too
    want = text.getvalue().encode("utf-8", "surrogatepass")
    for kind in ENCODERS:
        rows_buffer = _json.csv_buffer(c_encoder=kind == "c")
        for row in rows:
            rows_buffer.append_row(row)
        got = rows_buffer.take()
        if any(isinstance(f, str) and _has_surrogate(f) for row in rows for f in row):
            continue  # text a file cannot hold: the write fails, as it did with csv alone
        assert got == want, kind


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)
