"""FileSink (JSON Lines and CSV) and FileSinkFactory, read back from the files they wrote.

Runs of the banking model feed an InMemorySink placed just before the file sink on the same
transitions; the file must hold exactly what the generator emitted, in order.
"""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

from doge_datagen import (  # noqa: E402
    ConfigurationError,
    DataOnlineGenerator,
    DeliveryError,
    FileSink,
    FileSinkFactory,
    InMemorySink,
    RecordError,
    Transition,
)
from doge_datagen.demo import User, user_row  # noqa: E402
from doge_datagen.demo import (  # noqa: E402
    banking_generator as create_example_data_online_generator,
)

SEED = 424242
TRANSITION = Transition("login", "offline", "online", 1.0)
FIELDS = ["timestamp", "user_id", "balance", "loan_balance", "event"]


def banking_beside(
    sink: Any, memory: InMemorySink, subjects: int = 2000, ticks: int = 300, seed: int = SEED
) -> DataOnlineGenerator:
    """The banking model with ``sink`` in every role and ``memory`` just before each use."""
    datagen = create_example_data_online_generator(
        sink, sink, sink, sink, subjects_num=subjects, ticks_num=ticks, seed=seed
    )
    for transition in datagen.transitions:
        transition.event_sinks = [
            s
            for used in transition.event_sinks
            for s in ((memory, used) if used is sink else (used,))
        ]
    return datagen


def values(memory: InMemorySink) -> List[Any]:
    return [event.value for event in memory.events]


def read_jsonl(path: Path) -> List[Any]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.split("\n")[:-1]]


def read_csv(path: Path) -> List[List[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def as_csv_fields(row: Dict[str, Any], fields: List[str] = FIELDS) -> List[str]:
    return ["" if row.get(k) is None else str(row[k]) for k in fields]


def feed(sink: FileSink, count: int) -> None:
    for i in range(count):
        sink.collect(i, None, TRANSITION)


# -- the banking model ---------------------------------------------------------------------


def test_jsonl_holds_every_event_in_order(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = FileSink(path, user_row, buffer_lines=100)
    memory = InMemorySink(user_row)

    summary = banking_beside(sink, memory).start()

    emitted = values(memory)
    assert len(emitted) > 1000
    assert read_jsonl(path) == emitted
    # Exactly the lines json.dumps gives.
    assert path.read_text(encoding="utf-8") == "".join(json.dumps(v) + "\n" for v in emitted)
    assert sink.name == f"jsonl:{path}"
    assert summary.events_per_sink[sink.name] == len(emitted) == sink.written


def test_csv_holds_every_event_in_order(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    sink = FileSink(path, user_row, buffer_lines=64)
    memory = InMemorySink(user_row)

    summary = banking_beside(sink, memory).start()

    assert sink.format == "csv"
    emitted = values(memory)
    header, *rows = read_csv(path)
    assert header == FIELDS
    assert rows == [as_csv_fields(row) for row in emitted]
    assert sink.name == f"csv:{path}"
    assert summary.events_per_sink[sink.name] == len(emitted) == sink.written


def test_each_sink_in_its_own_role(tmp_path: Path) -> None:
    factory = FileSinkFactory(tmp_path / "out")
    sinks = [factory.create(name, user_row) for name in ("clickstream", "trx", "balance", "loan")]
    memories = [InMemorySink(user_row, name=f"memory-{i}") for i in range(4)]
    datagen = create_example_data_online_generator(
        *sinks, subjects_num=2000, ticks_num=300, seed=SEED
    )
    for transition in datagen.transitions:
        transition.event_sinks = [
            s
            for used in transition.event_sinks
            for s in ((memories[sinks.index(used)], used) if used in sinks else (used,))
        ]
    summary = datagen.start()
    for sink, memory in zip(sinks, memories):
        assert sink.path is not None and sink.path.suffix == ".jsonl"
        assert read_jsonl(sink.path) == values(memory)
        assert summary.events_per_sink[sink.name] == len(memory)
    assert sum(len(m) for m in memories) == sum(summary.events_per_sink[s.name] for s in sinks)


# -- values that need quoting -------------------------------------------------------------

EDGE_STRINGS = [
    "plain",
    "a,b",
    'say "hi"',
    '"',
    "line1\nline2",
    "cr\rlf\r\n",
    "",
    "  padded  ",
    "tab\tseparated",
    "\\",
    "\\N",
    "ünïcødé ✓ 🚀 中文",
    "\u2028 line separator",
    "x" * 3000,
]


def test_csv_quoting_round_trip(tmp_path: Path) -> None:
    rows = [
        {"text": s, "other": None if i % 2 else i, "third": s[::-1]}
        for i, s in enumerate(EDGE_STRINGS)
    ]
    path = tmp_path / "edge.csv"
    sink = FileSink(path, lambda ts, subject, transition: rows[ts], buffer_lines=5)
    feed(sink, len(rows))
    sink.close()
    header, *read = read_csv(path)
    assert header == ["text", "other", "third"]
    assert read == [as_csv_fields(row, header) for row in rows]


def test_jsonl_round_trip_of_awkward_values(tmp_path: Path) -> None:
    rows: List[Any] = [{"text": s, "n": i, "none": None} for i, s in enumerate(EDGE_STRINGS)]
    rows.append({"nested": {"list": [1, 2.5, None, True], "empty": {}}, "big": 2**70})
    path = tmp_path / "edge.jsonl"
    sink = FileSink(path, lambda ts, subject, transition: rows[ts])
    feed(sink, len(rows))
    sink.close()
    assert read_jsonl(path) == rows  # one line per event: line breaks in values are escaped
    assert sink.written == len(rows)


def test_custom_dumps(tmp_path: Path) -> None:
    path = tmp_path / "custom.jsonl"
    dumps = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode
    sink = FileSink(path, lambda ts, s, t: {"b": "ü", "a": ts}, dumps=dumps)
    feed(sink, 2)
    sink.close()
    assert path.read_text(encoding="utf-8") == '{"a":0,"b":"ü"}\n{"a":1,"b":"ü"}\n'


# -- CSV fields -----------------------------------------------------------------------------


def test_csv_fieldnames_order_missing_and_unknown_keys(tmp_path: Path) -> None:
    rows: List[Dict[str, Any]] = [
        {"b": 1, "a": "x"},
        {"a": "only a"},
        {"a": "y", "b": 2, "c": "not a field"},
    ]
    path = tmp_path / "fields.csv"
    sink = FileSink(path, lambda ts, s, t: rows[ts], fieldnames=["a", "b"])
    feed(sink, 2)
    with pytest.raises(RecordError) as info:
        sink.collect(2, None, TRANSITION)
    assert "'c'" in str(info.value)
    assert str(path) in str(info.value)
    sink.close()
    assert read_csv(path) == [["a", "b"], ["x", "1"], ["only a", ""]]
    assert sink.written == 2


def test_csv_header_comes_from_the_first_row(tmp_path: Path) -> None:
    rows: List[Dict[str, Any]] = [{"z": 1, "y": 2}, {"y": 3, "z": 4}, {"z": 5, "w": 6}]
    path = tmp_path / "first.csv"
    sink = FileSink(path, lambda ts, s, t: rows[ts])
    feed(sink, 2)
    with pytest.raises(RecordError, match="'w'"):
        sink.collect(2, None, TRANSITION)
    sink.close()
    assert sink.fieldnames == ("z", "y")
    assert read_csv(path) == [["z", "y"], ["1", "2"], ["4", "3"]]


def test_csv_with_fieldnames_and_no_events_has_a_header(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    sink = FileSink(path, user_row, fieldnames=FIELDS)
    assert not path.exists()  # nothing is written before the sink opens
    sink.open()
    sink.close()
    assert read_csv(path) == [FIELDS]


def test_csv_single_field(tmp_path: Path) -> None:
    rows = [{"only": "a"}, {"only": ""}, {"only": None}, {"only": "b,c"}]
    path = tmp_path / "single.csv"
    sink = FileSink(path, lambda ts, s, t: rows[ts])
    feed(sink, len(rows))
    sink.close()
    assert read_csv(path) == [["only"], ["a"], [""], [""], ["b,c"]]


# -- records that cannot be written --------------------------------------------------------


def test_value_json_cannot_encode_is_a_record_error(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "bad.jsonl", lambda ts, s, t: {"when": {1, 2}} if ts else {"ok": 1})
    sink.collect(0, None, TRANSITION)
    with pytest.raises(RecordError, match="set"):
        sink.collect(1, None, TRANSITION)
    sink.close()
    assert read_jsonl(tmp_path / "bad.jsonl") == [{"ok": 1}]


def test_csv_value_must_be_a_dict(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "bad.csv", lambda ts, s, t: [ts, "x"])
    with pytest.raises(RecordError, match="dict"):
        sink.collect(0, None, TRANSITION)
    sink.close()


def test_csv_first_row_must_make_a_header(tmp_path: Path) -> None:
    rows: List[Dict[Any, Any]] = [{}, {1: "a"}, {"ok": 1}]
    sink = FileSink(tmp_path / "header.csv", lambda ts, s, t: rows[ts])
    for i in range(2):
        with pytest.raises(RecordError, match="header"):
            sink.collect(i, None, TRANSITION)
    sink.collect(2, None, TRANSITION)
    sink.close()
    assert read_csv(tmp_path / "header.csv") == [["ok"], ["1"]]


# -- files, modes and closing --------------------------------------------------------------


def test_append_mode_adds_lines_and_no_second_header(tmp_path: Path) -> None:
    jsonl, csv_path = tmp_path / "a.jsonl", tmp_path / "a.csv"
    for mode in ("w", "a"):
        with FileSink(jsonl, user_row, mode=mode) as sink:
            sink.collect(1, User(1, 10, 0), TRANSITION)
        with FileSink(csv_path, user_row, mode=mode) as sink:
            sink.collect(1, User(1, 10, 0), TRANSITION)
    row = user_row(1, User(1, 10, 0), TRANSITION)
    assert read_jsonl(jsonl) == [row, row]
    assert read_csv(csv_path) == [FIELDS, as_csv_fields(row), as_csv_fields(row)]
    # "w" starts over.
    with FileSink(jsonl, user_row, mode="w"):
        pass
    assert jsonl.read_text() == ""


def test_exclusive_mode_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("keep\n")
    with pytest.raises(ConfigurationError, match="x.jsonl"):
        FileSink(path, user_row, mode="x")
    assert path.read_text() == "keep\n"


def test_close_is_idempotent_and_a_closed_sink_appends(tmp_path: Path) -> None:
    path = tmp_path / "reuse.csv"
    sink = FileSink(path, user_row)
    datagen = banking_beside(sink, InMemorySink(), subjects=300, ticks=200)
    first = datagen.start()
    sink.close()
    sink.close()
    lines = len(read_csv(path))
    second = datagen.start()  # the run closed the sink; a new run reopens it to append
    n = first.events_per_sink[sink.name]
    assert n > 0 and second.events_per_sink[sink.name] > 0
    rows = read_csv(path)
    assert lines == 1 + n
    assert len(rows) == 1 + n + second.events_per_sink[sink.name]
    assert rows.count(FIELDS) == 1
    assert sink.written == second.events_per_sink[sink.name]  # counts start again at open()


def test_flush_hands_buffered_lines_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "flush.jsonl"
    sink = FileSink(path, lambda ts, s, t: {"i": ts}, buffer_lines=1000)
    feed(sink, 25)
    assert (sink.written, sink.buffered) == (0, 25)
    assert path.read_text() == ""
    sink.flush()
    assert (sink.written, sink.buffered) == (25, 0)
    assert read_jsonl(path) == [{"i": i} for i in range(25)]
    feed(sink, 2)
    sink.close()
    assert read_jsonl(path) == [{"i": i} for i in range(25)] + [{"i": 0}, {"i": 1}]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_failed_write_is_a_delivery_error_with_the_lost_lines() -> None:
    sink = FileSink("/dev/full", lambda ts, s, t: {"i": ts}, buffer_lines=10)
    feed(sink, 9)
    with pytest.raises(DeliveryError) as info:
        sink.collect(9, None, TRANSITION)
    error = info.value
    assert (error.delivered, error.failed) == (0, 10)
    assert error.pending == [json.dumps({"i": i}) for i in range(10)]
    assert error.sink == sink.name == "jsonl:/dev/full"
    assert (sink.written, sink.failed, sink.buffered) == (0, 10, 0)
    sink.close()


def test_a_stream_is_flushed_not_closed() -> None:
    stream = io.StringIO()
    sink = FileSink(stream, lambda ts, s, t: {"i": ts}, format="jsonl")
    feed(sink, 3)
    sink.close()
    assert not stream.closed
    assert stream.getvalue() == '{"i": 0}\n{"i": 1}\n{"i": 2}\n'
    assert sink.name == "jsonl:<StringIO>"


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"format": "xml"}, "format"),
        ({"mode": "r"}, "mode"),
        ({"buffer_lines": 0}, "buffer_lines"),
        ({"buffer_lines": True}, "buffer_lines"),
        ({"format": "jsonl", "fieldnames": ["a"]}, "fieldnames"),
        ({"format": "csv", "fieldnames": ["a", "a"]}, "duplicates"),
        ({"format": "csv", "fieldnames": "ab"}, "fieldnames"),
        ({"format": "csv", "dumps": json.dumps}, "dumps"),
        ({"dumps": "not callable"}, "dumps"),
        ({"encoding": "no-such-codec"}, "encoding"),
    ],
)
def test_bad_settings(tmp_path: Path, kwargs: Dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        FileSink(tmp_path / "f", user_row, **kwargs)


def test_bad_path_and_value_function(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no-such-dir"):
        FileSink(tmp_path / "no-such-dir" / "f.jsonl", user_row)
    with pytest.raises(ConfigurationError, match="path"):
        FileSink(42, user_row)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="callable"):
        FileSink(tmp_path / "f.jsonl", None)  # type: ignore[arg-type]


# -- the factory ----------------------------------------------------------------------------


def test_factory_names_files_and_picks_formats(tmp_path: Path) -> None:
    factory = FileSinkFactory(tmp_path / "deep" / "dir", buffer_lines=7)
    plain = factory.create("clicks", user_row)
    by_suffix = factory.create("trx.csv", user_row)
    by_format = factory.create("loans", user_row, format="csv")
    overridden = factory.create("bal", user_row, buffer_lines=3)
    assert plain.path == tmp_path / "deep" / "dir" / "clicks.jsonl"
    assert (plain.format, plain.buffer_lines) == ("jsonl", 7)
    assert (by_suffix.path.name, by_suffix.format) == ("trx.csv", "csv")  # type: ignore[union-attr]
    assert (by_format.path.name, by_format.format) == ("loans.csv", "csv")  # type: ignore[union-attr]
    assert overridden.buffer_lines == 3
    for sink in (plain, by_suffix, by_format, overridden):
        sink.collect(1, User(2, 3, 4), TRANSITION)
        sink.close()
    assert read_jsonl(plain.path) == [user_row(1, User(2, 3, 4), TRANSITION)]  # type: ignore[arg-type]
    assert read_csv(by_format.path)[0] == FIELDS  # type: ignore[arg-type]
    with FileSinkFactory(tmp_path, format="csv").create("x", user_row) as sink:
        assert sink.format == "csv"
    with pytest.raises(ConfigurationError, match="format"):
        FileSinkFactory(tmp_path, format="parquet")
    with pytest.raises(ConfigurationError, match="format"):
        factory.create("y", user_row, format="parquet")


def test_factory_defaults_to_the_current_directory(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    sink = FileSinkFactory().create("here", user_row)
    sink.open()
    sink.close()
    assert (tmp_path / "here.jsonl").exists()


# -- the example script -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_file_example_script(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "doge_file_example.py"),
            "--output-dir",
            str(out),
            "--format",
            fmt,
            "--subjects",
            "500",
            "--ticks",
            "300",
            "--seed",
            "5",
        ],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    names = ("clickstream", "trx", "balance", "loan")
    memories = [InMemorySink(user_row, name=name) for name in names]
    create_example_data_online_generator(*memories, subjects_num=500, ticks_num=300, seed=5).start()
    for name, memory in zip(names, memories):
        path = out / f"{name}.{fmt}"
        assert len(memory) > 0
        if fmt == "jsonl":
            assert read_jsonl(path) == values(memory)
        else:
            assert read_csv(path) == [FIELDS] + [as_csv_fields(v) for v in values(memory)]
        assert f"{fmt}:{path}" in result.stdout


def test_the_run_summary_reports_the_lines_delivered(tmp_path):
    from support.models import ping_pong

    from doge_datagen import FileSink

    sink = FileSink(tmp_path / "e.jsonl", lambda ts, s, t: {"ts": ts, "n": s.n})
    datagen, _ = ping_pong(3, 5, seed=1)
    datagen.transitions[0].event_sinks.append(sink)
    summary = datagen.start()
    assert summary.delivery[sink.name] == {"delivered": 9, "failed": 0}
    assert len((tmp_path / "e.jsonl").read_text().splitlines()) == 9
