"""Change events (Debezium-style envelopes) and their replay into a current-state table."""

import json
from typing import Any, Dict, List

import pytest
from support.accounts import RECORDS, T0, bank, envelopes, final_rows, replay

from doge_datagen import InMemorySink
from doge_datagen.errors import ConfigurationError
from doge_datagen.sinks.cdc import Change, ChangeEventSink, change_row
from doge_datagen.sinks.registry import SinkURLError, build_sink


def check_invariants(stream: List[Dict[str, Any]], subjects: int) -> None:
    last: Dict[Any, Any] = {}
    gone = set()
    for n, change in enumerate(stream):
        key = change["key"]
        assert set(change) == {"before", "after", "op", "ts_ms", "source", "key"}
        assert key not in gone, f"change {n} of a deleted key {key}"
        if change["op"] in ("r", "c"):
            assert key not in last and change["before"] is None
        else:
            assert change["before"] == last[key], f"change {n}: before is not the last after"
        if change["op"] == "u":
            assert change["after"] != change["before"]
        if change["op"] == "d":
            assert change["after"] is None
            gone.add(key)
            del last[key]
        else:
            last[key] = change["after"]
    ops = [c["op"] for c in stream]
    assert ops[:subjects] == ["r"] * subjects
    assert "r" not in ops[subjects:]


def test_jsonl_envelopes_keep_the_chain_and_replay_to_the_final_attributes(tmp_path):
    path = tmp_path / "changes.jsonl"
    sink = build_sink(f"jsonl:{path}?envelope=debezium&key=user_id", RECORDS)
    assert isinstance(sink, ChangeEventSink)
    datagen = bank([sink])
    datagen.start()
    stream = envelopes(path)
    check_invariants(stream, 40)
    assert {c["key"] for c in stream if c["op"] == "r"} == set(range(1000, 1040))
    ops = {op: sum(c["op"] == op for c in stream) for op in "rcud"}
    assert ops["u"] > 0 and ops["d"] > 0
    # every event into "closed" is one d; idle events make no change
    closes = sum(1 for s in datagen._last_run.subject_states() if s == "closed")
    assert ops["d"] == closes
    assert replay(stream) == final_rows(datagen)
    assert {c["source"]["shard"] for c in stream} == {0}
    first_u = next(c for c in stream if c["op"] == "u")
    assert first_u["ts_ms"] == T0 + first_u["source"]["tick"] * 1000
    assert sink.delivered == len(stream)


def test_arrivals_are_c_at_their_tick_and_the_default_key_is_the_global_index(tmp_path):
    path = tmp_path / "changes.jsonl"
    sink = build_sink(f"jsonl:{path}?envelope=debezium", RECORDS)
    datagen = bank([sink], subjects=10, ticks=40, arrivals=0.5)
    datagen.start()
    stream = envelopes(path)
    check_invariants(stream, 10)
    run = datagen._last_run
    created = [c for c in stream if c["op"] == "c"]
    assert len(created) == run.arrived > 0
    assert {c["key"] for c in stream if c["op"] == "r"} == set(range(10))
    assert all(c["key"] >= 10 for c in created)
    for c in created:
        assert c["ts_ms"] == T0 + c["source"]["tick"] * 1000
        assert c["after"]["state"] == "active"
    by_index = {
        i: {**vars(s), "state": st}
        for i, (s, st) in enumerate(zip(run.subjects, run.subject_states()))
        if s is not None and st != "closed"
    }
    assert replay(stream) == by_index


def test_in_memory_sink_receives_change_objects():
    memory = InMemorySink(lambda ts, change, t: change)
    sink = ChangeEventSink(memory, key="user_id")
    datagen = bank([sink], subjects=5, ticks=10)
    datagen.start()
    changes = [event.subject for event in memory.events]
    assert all(isinstance(c, Change) for c in changes)
    assert [c.op for c in changes[:5]] == ["r"] * 5
    assert all(change_row(0, c, None) == (c.after or c.before) for c in changes)


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(SinkURLError, match="envelope='maxwell'"):
        build_sink(f"jsonl:{tmp_path}/x.jsonl?envelope=maxwell", RECORDS)
    with pytest.raises(SinkURLError, match="key= names no attribute"):
        build_sink(f"jsonl:{tmp_path}/x.jsonl?envelope=debezium&key=", RECORDS)
    with pytest.raises(ConfigurationError, match="key must name"):
        ChangeEventSink(InMemorySink(lambda *a: a), key=3)  # type: ignore[arg-type]


def test_the_readme_replay_example_runs_as_written(capsys):
    from support.docs import code_blocks, page

    (code,) = [b for b in code_blocks(page("doc/sinks.md")) if "ChangeEventSink(" in b]
    namespace: Dict[str, Any] = {}
    exec(compile(code, "doc/sinks.md", "exec"), namespace)
    rows, replayed = namespace["cdc_rows"], namespace["replayed"]
    assert rows == replayed
    stream = namespace["cdc_stream"]
    assert stream.changes["r"] == 100 and stream.changes["u"] > 0
    datagen = namespace["datagen"]
    final = {s.user_id: s.balance for s in datagen._last_run.subjects}
    assert {k: r["balance"] for k, r in rows.items()} == final
    assert f"{stream.changes['u']} updates" in capsys.readouterr().out


@pytest.mark.kafka
def test_a_kafka_topic_holds_the_envelopes_keyed_and_a_tombstone_after_each_delete(
    kafka_bootstrap,
):
    from support.kafka_fixtures import create_topic, read_all

    topic = create_topic(kafka_bootstrap)
    sink = build_sink(f"kafka://{kafka_bootstrap}/{topic}?envelope=debezium&key=user_id", RECORDS)
    datagen = bank([sink], subjects=50, ticks=40)
    summary = datagen.start()
    deletes = sink.changes["d"]
    assert deletes > 0 and sink.tombstones_written == deletes
    written = sum(sink.changes.values()) + deletes
    records = read_all(kafka_bootstrap, topic, expected=written)
    assert len(records) == written == sink.delivered
    stream = []
    for record in records:
        if record.value is None:  # a tombstone: right after its key's d
            previous = stream[-1]
            assert previous["op"] == "d" and record.key.decode() == str(previous["key"])
            continue
        change = json.loads(record.value)
        assert record.key.decode() == str(change["key"])
        assert record.timestamp == change["ts_ms"]
        stream.append(change)
    check_invariants(stream, 50)
    assert replay(stream) == final_rows(datagen)
    (counts,) = summary.delivery.values()
    assert counts["tombstones"] == deletes


def test_a_sharded_demo_writes_each_subjects_snapshot_once_with_its_shard(tmp_path):
    """Two worker processes: each writes its own subjects' changes; together every user has
    one r, and each change names the shard that made it."""
    import subprocess
    import sys

    out = tmp_path / "changes.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "doge_datagen",
            "demo",
            "--sink",
            f"jsonl:{out}?envelope=debezium&key=user_id",
            "--subjects",
            "40",
            "--ticks",
            "200",
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    parts = sorted(tmp_path.glob("changes-*-of-00002.jsonl"))
    assert len(parts) == 2
    snapshot = []
    for shard, part in enumerate(parts):
        stream = envelopes(part)
        assert {c["source"]["shard"] for c in stream} == {shard}
        assert {c["op"] for c in stream} >= {"r", "u"}
        snapshot += [c["key"] for c in stream if c["op"] == "r"]
        check_invariants(stream, 20)
    assert sorted(snapshot) == list(range(40))
