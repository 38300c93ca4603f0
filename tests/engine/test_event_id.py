"""``event_id``: a stable id of the event being handled, ``SEED:SUBJECT:TICK:N``, in records
(``event_id`` as a source), model files and Python (``doge_datagen.event_id``): unique over a
run, the same in one process and in shards, and the same for an event a resumed run gives
again to a sink that delivers at least once."""

import json
import os
import subprocess
import sys
from collections import Counter
from functools import partial
from pathlib import Path

import pytest
from support.event_id_models import into_jsonl

from doge_datagen import ConfigurationError, FileSink, event_id
from doge_datagen.demo import banking_generator
from doge_datagen.distributed.sharded import run_sharded
from doge_datagen.sinks.record import Record


def lines(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_ids_are_unique_over_a_run_and_name_seed_subject_and_tick(tmp_path):
    out = tmp_path / "events.jsonl"
    into_jsonl(str(out)).start()
    records = lines(out)
    ids = [r["event_id"] for r in records]
    assert len(ids) > 1000
    assert len(set(ids)) == len(ids)
    numbers = Counter()
    for r in records:
        seed, subject, tick, n = r["event_id"].split(":")
        assert seed == "11"
        numbers[n] += 1
        assert int(subject) == r["user_id"]  # the demo's user ids are the global indices
        assert int(tick) * 60000 == r["timestamp"]  # one-minute ticks from 0
    # The demo gives some events to this one sink twice (it is all four of its sinks).
    assert {"0", "1"} <= set(numbers) <= {"0", "1", "2", "3"}


def test_the_c_loop_and_the_python_loop_give_the_same_ids(tmp_path):
    program = (
        "import sys; from support.event_id_models import into_jsonl; "
        "into_jsonl(sys.argv[1]).start()"
    )
    tests = str(Path(__file__).resolve().parents[1])
    outs = []
    for pure in ("", "1"):
        out = tmp_path / f"events{pure}.jsonl"
        env = dict(os.environ, DOGE_DATAGEN_PURE_PYTHON=pure, PYTHONPATH=tests)
        subprocess.run([sys.executable, "-c", program, str(out)], check=True, env=env)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert b'"event_id": "11:' in outs[0]


def test_shards_give_the_ids_of_the_run_in_one_process(tmp_path):
    whole, sharded = tmp_path / "whole.jsonl", tmp_path / "sharded.jsonl"
    into_jsonl(str(whole)).start()
    run_sharded(partial(into_jsonl, str(sharded)), shards=3)
    parts = sorted(tmp_path.glob("sharded-*-of-00003.jsonl"))
    assert len(parts) == 3
    from_shards = Counter(json.dumps(r, sort_keys=True) for p in parts for r in lines(p))
    assert from_shards == Counter(json.dumps(r, sort_keys=True) for r in lines(whole))


def test_python_callbacks_and_value_functions_read_the_id(tmp_path):
    seen = []
    out = tmp_path / "events.jsonl"

    def row(timestamp, subject, transition):
        return {"id": event_id(), "second": event_id(datagen, n=1)}

    sink = FileSink(out, row)
    datagen = banking_generator(sink, sink, sink, sink, subjects_num=50, ticks_num=100, seed=2)
    spending = next(t for t in datagen.transitions if t.trigger == "spending")
    spending.action_callback = lambda subject, transition: seen.append(event_id(datagen)) or True
    datagen.start()
    records = lines(out)
    assert seen and all(s.startswith("2:") and s.endswith(":0") for s in seen)
    assert all(r["second"] == r["id"][:-1] + "1" for r in records)
    assert set(seen) <= {r["id"] for r in records}  # a spending's row has the callback's id
    with pytest.raises(ConfigurationError, match="no event is being handled"):
        event_id(datagen)


def test_a_record_field_named_event_id_and_an_attribute_of_that_name():
    record = Record(["event_id", ("attr", "subject.event_id")])
    assert record.sources == ("event_id", "subject.event_id")
    with pytest.raises(
        ConfigurationError, match="timestamp, trigger, from_state, to_state, event_id"
    ):
        Record([("x", "not a source")])


MODEL = """\
name: ids
seed: 3
subjects: 30
ticks: 50
tick: 1m
subject:
  user_id: index
states: [offline, online]
initial_state: offline
transitions:
  - {trigger: login, from: offline, to: online, probability: 30, sinks: [events]}
  - {trigger: logout, from: online, to: offline, probability: 30, sinks: [events]}
sinks:
  events:
    url: jsonl:OUT
    record: [event_id, user_id, tick, trigger]
"""


def test_a_model_file_record_names_event_id(tmp_path):
    from doge_datagen import load

    out = tmp_path / "events.jsonl"
    path = tmp_path / "ids.yaml"
    path.write_text(MODEL.replace("OUT", str(out)))
    load(path).start()
    records = lines(out)
    assert len(records) > 50
    assert [r["event_id"] for r in records] == [f"3:{r['user_id']}:{r['tick']}:0" for r in records]
