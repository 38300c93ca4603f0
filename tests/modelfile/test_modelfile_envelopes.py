"""``envelope: debezium`` on a model file's sink: the same change events as the URL form
``?envelope=debezium&key=...``, byte for byte; its mistakes are ``FILE:LINE:COLUMN`` errors."""

import json
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

import doge_datagen
from doge_datagen.modelfile import ModelFileError
from doge_datagen.sinks.cdc import ChangeEventSink

ACCOUNTS = """\
name: accounts
states: [active, closed]
initial_state: active
subjects: 30
tick: 1s
ticks: 200
seed: 7
arrivals: 0.2
subject:
  user_id: 1000 + index
  owner: choice(['Zoë', 'Łukasz', '李', 'Ana'])
  balance: round(uniform(0, 100), 2)
transitions:
  - trigger: pay
    from: active
    to: active
    probability: 20
    let:
      amount: round(uniform(0.5, 20), 2)
    when: amount <= balance
    do:
      - balance -= amount
    sinks: [changes]
  - {trigger: look, from: active, to: active, probability: 10, sinks: [changes]}
  - {trigger: close, from: active, to: closed, probability: 1, sinks: [changes]}
sinks:
  changes:
SINK
"""


def _write(tmp_path: Path, sink: str, name: str = "model.yaml") -> Path:
    path = tmp_path / name
    path.write_text(ACCOUNTS.replace("SINK\n", sink))
    return path


def _lines(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_file_envelope_writes_what_the_url_form_writes(tmp_path):
    by_file = tmp_path / "file.jsonl"
    by_url = tmp_path / "url.jsonl"
    file_model = _write(
        tmp_path, f"    url: jsonl:{by_file}\n    envelope: debezium\n    key: user_id\n", "a.yaml"
    )
    url_model = _write(
        tmp_path, f"    url: jsonl:{by_url}?envelope=debezium&key=user_id\n", "b.yaml"
    )
    datagen = doge_datagen.load(str(file_model))
    assert isinstance(datagen.transitions[0].event_sinks[0], ChangeEventSink)
    datagen.start()
    doge_datagen.load(str(url_model)).start()
    assert by_file.read_bytes() == by_url.read_bytes()
    stream = _lines(by_file)
    ops = {op: sum(c["op"] == op for c in stream) for op in "rcud"}
    assert ops["r"] == 30 and ops["c"] > 0 and ops["u"] > 0 and ops["d"] > 0
    assert {c["key"] for c in stream if c["op"] == "r"} == set(range(1000, 1030))
    first = stream[0]["after"]
    assert set(first) == {"user_id", "owner", "balance", "state"}


def test_without_a_key_changes_are_keyed_by_index_and_a_replacing_url_keeps_the_envelope(
    tmp_path,
):
    model = _write(tmp_path, f"    url: jsonl:{tmp_path}/unused.jsonl\n    envelope: debezium\n")
    out = tmp_path / "replaced.jsonl"
    doge_datagen.load(str(model), sinks={"changes": f"jsonl:{out}"}).start()
    stream = _lines(out)
    assert [c["key"] for c in stream[:30]] == list(range(30))
    assert not (tmp_path / "unused.jsonl").exists()


def test_a_python_sink_receives_the_envelopes(tmp_path, monkeypatch):
    (tmp_path / "envelope_target.py").write_text(
        "ROWS = []\n"
        "class Rows:\n"
        "    def __init__(self, records):\n"
        "        self.records = records\n"
        "    def collect(self, timestamp, subject, transition):\n"
        "        ROWS.append(self.records.row(timestamp, subject, transition))\n"
        "def make(records):\n"
        "    return Rows(records)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = _write(tmp_path, "    sink: envelope_target:make\n    envelope: debezium\n")
    doge_datagen.load(str(model), trust=True).start()
    rows = sys.modules["envelope_target"].ROWS
    assert [r["op"] for r in rows[:30]] == ["r"] * 30
    assert all(set(r) == {"before", "after", "op", "ts_ms", "source", "key"} for r in rows)


@pytest.mark.parametrize(
    "sink, where, message",
    [
        (
            "    url: jsonl:x.jsonl\n    envelope: maxwell\n",
            (29, 15),
            "sink 'changes': envelope 'maxwell' is not one of debezium",
        ),
        (
            "    url: jsonl:x.jsonl\n    envelope: debezium\n    key: user\n",
            (30, 10),
            "sink 'changes': key 'user' is not an attribute of the subjects "
            "(did you mean 'user_id'?)",
        ),
        (
            "    url: jsonl:x.jsonl\n    envelope: debezium\n    key: user_id + 1\n",
            (30, 10),
            "sink 'changes': key of change events names an attribute, got 'user_id + 1'",
        ),
        (
            "    url: jsonl:x.jsonl\n    envelope: debezium\n    record: [user_id]\n",
            (30, 5),
            "sink 'changes': record is not for a sink of change events (envelope: debezium), "
            "whose rows are the subjects' attributes and state",
        ),
        (
            "    url: jsonl:x.jsonl?envelope=debezium\n    envelope: debezium\n",
            (28, 10),
            "sink 'changes': the url gives envelope= and the sink envelope:; give it once",
        ),
        (
            "    url: sqlite:///x.db?mode=upsert&key=user_id\n    envelope: debezium\n",
            (29, 15),
            "sink 'changes': a url with mode=upsert writes the subjects' rows; it takes no "
            "envelope",
        ),
    ],
)
def test_a_bad_envelope_is_placed(tmp_path, sink, where, message):
    path = _write(tmp_path, sink)
    with pytest.raises(ModelFileError) as refused:
        doge_datagen.load(str(path))
    assert refused.value.message == message
    assert (refused.value.line, refused.value.column) == where
    assert str(refused.value).startswith(f"{path}:{where[0]}:{where[1]}: ")
    assert not (tmp_path / "x.jsonl").exists()
