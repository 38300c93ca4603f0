"""The rest of the format: parameters, arrivals, piecewise profiles, JSON files, computed
records and keys, the expression library, and Python code in trusted files."""

import json

import pytest
import yaml

import doge_datagen
from doge_datagen.demo import STREAMS
from doge_datagen.sinks.memory import InMemorySink
from tests.support.modelfile_models import BANKING_YAML, Recorder

SMALL = """
name: counter
states: [idle, busy, gone]
subjects: users
tick: 1s
ticks: 600
timestamp_start: 2024-03-01T12:00:00Z
params: {users: 20, step: 5, label: "n"}
subject:
  sid: index
  total: 0
  name: label + str(index)
transitions:
  - trigger: work
    from: idle
    to: busy
    probability: 10
    let:
      amount: step * randint(1, 3)
    do:
      - total += amount
    sinks: [rows]
  - {trigger: rest, from: busy, to: idle, probability: 50, sinks: [rows]}
  - {trigger: leave, from: [idle, busy], to: gone, probability: 0.5, sinks: [rows]}
sinks:
  rows:
    record:
      at: iso(timestamp)
      day: date(timestamp)
      sid: sid
      name: name
      total: total
      doubled: total * 2
      tick: tick
      move: from_state + '>' + to_state
    key: name
"""


def _rows(text: str, **options: object) -> list:
    sink = InMemorySink(name="rows")
    datagen = doge_datagen.load(text, sinks={"rows": sink}, seed=1, **options)
    datagen.start()
    records = datagen.transitions[0].event_sinks[0]
    assert records is sink
    return [(e.timestamp, e.subject.sid, e.trigger) for e in sink.events]


def test_parameters_are_used_in_numbers_and_expressions_and_can_be_set():
    datagen = doge_datagen.load(SMALL, sinks={"rows": InMemorySink()}, seed=1)
    assert datagen.subjects_num == 20
    assert datagen.tick_ms == 1000
    assert datagen.timestamp_start == 1_709_294_400_000
    datagen = doge_datagen.load(
        SMALL, sinks={"rows": InMemorySink()}, params={"users": 7, "label": "u"}, seed=1
    )
    datagen.start()
    assert [s.name for s in datagen.subjects] == [f"u{i}" for i in range(7)]
    assert {s.total % 5 for s in datagen.subjects} == {0}
    assert max(s.total for s in datagen.subjects) > 0


def test_a_computed_record_and_its_key(tmp_path):
    text = SMALL.replace(
        "  rows:\n    record:", f"  rows:\n    url: jsonl:{tmp_path}/rows.jsonl\n    record:"
    )
    doge_datagen.load(text, seed=2).start()
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert rows
    first = rows[0]
    assert first["at"].startswith("2024-03-01T12:") and first["at"].endswith("Z")
    assert first["day"] == "2024-03-01"
    assert first["doubled"] == 2 * first["total"]
    assert first["move"] in ("idle>busy", "busy>idle", "idle>gone", "busy>gone")
    assert 0 <= first["tick"] < 600
    assert first["name"] == f"n{first['sid']}"
    from doge_datagen.modelfile.builder import _records, build, read_model  # noqa: F401

    model = read_model(text)
    key_code = model.sinks["rows"].key
    assert key_code is not None and "subject.name" in key_code


def test_a_transition_from_several_states():
    datagen = doge_datagen.load(SMALL, sinks={"rows": InMemorySink()}, seed=1)
    leaving = [(t.from_state, t.to_state) for t in datagen.transitions if t.trigger == "leave"]
    assert leaving == [("idle", "gone"), ("busy", "gone")]


def test_arrivals_bring_new_subjects():
    text = SMALL.replace("ticks: 600\n", "ticks: 600\narrivals: 0.5\n")
    sink = InMemorySink()
    datagen = doge_datagen.load(text, sinks={"rows": sink}, seed=1)
    summary = datagen.start()
    assert summary.arrivals > 100
    assert max(e.subject.sid for e in sink.events) >= 20


def test_a_piecewise_profile_stops_a_transition_from_a_date():
    text = SMALL.replace(
        "    probability: 10\n",
        "    probability: {base: 10, piecewise: [[2024-03-01T12:05:00Z, 0]]}\n",
    )
    sink = InMemorySink()
    doge_datagen.load(text, sinks={"rows": sink}, seed=1).start()
    works = [e.timestamp for e in sink.events if e.trigger == "work"]
    assert works and max(works) < 1_709_294_400_000 + 5 * 60_000


def test_a_json_model_file_is_the_same_model(tmp_path):
    as_json = tmp_path / "banking.json"
    as_json.write_text(json.dumps(yaml.safe_load(BANKING_YAML.read_text()), indent=1))
    runs = []
    for source in (BANKING_YAML, str(as_json)):
        events: list = []
        doge_datagen.load(
            source, sinks={s: Recorder(s, events) for s in STREAMS}, seed=4, subjects=40
        ).start()
        runs.append(events)
    assert runs[0] and runs[0] == runs[1]


def test_trusted_python_factory_and_sink_run():
    text = BANKING_YAML.read_text()
    start, end = text.index("subject:"), text.index("transitions:")
    text = (
        text[:start]
        + "factory: 'tests.support.modelfile_models:make_customer'\n"
        + "attributes: [user_id, balance, loan_balance]\n"
        + text[end:]
    )
    text = text.replace(
        "  trx:\n    url: jsonl:out/trx.jsonl",
        "  trx:\n    sink: 'tests.support.modelfile_models:memory_sink'",
    )
    with pytest.raises(doge_datagen.ConfigurationError, match="--trust"):
        doge_datagen.load(text)
    others = {s: Recorder(s, []) for s in STREAMS if s != "trx"}
    datagen = doge_datagen.load(text, trust=True, sinks=others, seed=1, subjects=100)
    datagen.start()
    assert type(datagen.subjects[0]).__name__ == "Customer"
    trx = [s for s in datagen.sinks if getattr(s, "name", "") == "rows"][0]
    assert trx.events
    assert set(trx.events[0].value) == {"timestamp", "user_id", "balance", "event"}
    from_python: list = []
    from doge_datagen.demo import banking_generator

    banking_generator(
        *(Recorder(s, from_python) for s in STREAMS), subjects_num=100, seed=1
    ).start()
    expected = [(e[1], e[2], e[3]) for e in from_python if e[0] == "trx"]
    assert [(e.timestamp, e.value["user_id"], e.value["balance"]) for e in trx.events] == expected


def test_an_expression_error_at_run_time_names_the_transition():
    text = SMALL.replace("      - total += amount", "      - total += amount // (sid - sid)")
    with pytest.raises(ZeroDivisionError):
        doge_datagen.load(text, sinks={"rows": InMemorySink()}, seed=1).start()
