"""Kafka across a resume: a run that checkpoints produces in transactions, each committed
before its checkpoint is written. Runs killed with SIGKILL at seeded events after a checkpoint
and resumed: until the resume, a ``read_committed`` consumer sees exactly the uninterrupted
run's records up to a tick at or after the checkpoint's; after it, every event is there, and a
record read twice (``read_uncommitted``, or on a broker that hands out aborted records) carries
the event_id of its original. On a broker that hides aborted transactions (Apache Kafka:
``DOGE_TEST_KAFKA``), ``read_committed`` holds exactly the uninterrupted run's records."""

import json
import random
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from support.kafka_fixtures import create_topic
from support.kafka_transactions import by_event_id, hides_aborted_records, read_values

from doge_datagen.demo import banking_generator
from doge_datagen.engine.checkpoint import _read
from doge_datagen.sinks.kafka import KafkaSinkFactory
from doge_datagen.sinks.record import Record

SCRIPT = Path(__file__).resolve().parents[1] / "support" / "checkpoint_sinks_run.py"
RECORD = Record(["event_id", "timestamp", "user_id", ("event", "trigger"), "balance"])
START = 1_700_000_000_000
TICK_MS = 60_000


def launch(config_path, saved, *extra):
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(config_path), str(saved), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write_config(path, **config):
    path.write_text(json.dumps({"subjects": 2000, "ticks": 800, "every": 0.01, **config}))
    return path


def build(bootstrap, topic, stop=None):
    sink = KafkaSinkFactory(bootstrap).create(
        topic, lambda s, t: str(s.user_id), RECORD, value_serializer="json"
    )
    datagen = banking_generator(
        sink, sink, sink, sink, subjects_num=300, ticks_num=300, seed=3, timestamp_start=START
    )
    if stop is not None:
        seen = [0]
        logout = next(t for t in datagen.transitions if t.trigger == "logout")

        def callback(subject, transition):
            seen[0] += 1
            if seen[0] == stop:
                datagen.stop()
            return True

        logout.action_callback = callback
    return datagen, sink


def test_records_committed_after_the_checkpoint_a_resume_goes_back_to_are_not_repeated(
    tmp_path, kafka_bootstrap
):
    """A kill after a checkpoint's commit and before its file's rename: the transaction
    committed, the checkpoint on disk the one before. The records committed since are counted
    in the sink's consumer group in the same transaction, and not produced again."""
    whole_topic, topic = create_topic(kafka_bootstrap), create_topic(kafka_bootstrap)
    build(kafka_bootstrap, whole_topic)[0].start()
    whole = read_values(kafka_bootstrap, whole_topic, "read_committed")
    saved, kept = tmp_path / "run.ckpt", tmp_path / "kept.ckpt"
    build(kafka_bootstrap, topic, stop=20)[0].start(checkpoint=saved, checkpoint_every=None)
    shutil.copy(saved, kept)
    datagen, sink = build(kafka_bootstrap, topic, stop=20)
    datagen.start(resume=saved, checkpoint=saved, checkpoint_every=None)
    past = sink.delivered
    assert past > 0
    shutil.copy(kept, saved)  # the second checkpoint lost, its transaction committed
    datagen, sink = build(kafka_bootstrap, topic)
    datagen.start(resume=saved, checkpoint=saved)
    assert sink.repeated == past
    assert read_values(kafka_bootstrap, topic, "read_committed") == whole
    assert _read(saved)["sinks"][0]["records"] == len(whole)


def test_a_run_with_a_checkpoint_commits_its_records_and_one_without_uses_none(
    tmp_path, kafka_bootstrap
):
    plain_topic, topic = create_topic(kafka_bootstrap), create_topic(kafka_bootstrap)
    datagen, sink = build(kafka_bootstrap, plain_topic)
    datagen.start()
    assert sink.transactions is None
    whole = read_values(kafka_bootstrap, plain_topic, "read_uncommitted")
    datagen, sink = build(kafka_bootstrap, topic)
    datagen.start(checkpoint=tmp_path / "run.ckpt", checkpoint_every=0.001)
    assert sink.transactions == "on"
    assert sink.delivered == len(whole) > 200
    assert read_values(kafka_bootstrap, topic, "read_committed") == whole
    position = _read(tmp_path / "run.ckpt")["sinks"][0]
    assert position["transactional_id"].startswith("doge-datagen-")


@pytest.mark.parametrize("trial", range(2))
def test_sigkill_at_seeded_events_then_resumed_read_committed(tmp_path, kafka_bootstrap, trial):
    rng = random.Random(trial)
    whole_topic, topic = create_topic(kafka_bootstrap), create_topic(kafka_bootstrap)
    saved = tmp_path / "run.ckpt"
    proc = launch(
        write_config(tmp_path / "whole.json", kafka=[kafka_bootstrap, whole_topic]),
        saved,
        "--plain",
    )
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    whole = read_values(kafka_bootstrap, whole_topic, "read_uncommitted")
    config = write_config(tmp_path / "run.json", kafka=[kafka_bootstrap, topic])
    for kill in range(3):
        proc = launch(config, saved, "--kill-at", str(rng.randint(100, 300)))
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == -signal.SIGKILL, err
        if kill == 0:
            # Before any resume: the committed records are the uninterrupted run's up to a
            # tick, one at or after the checkpoint's; the rest waits in an open transaction.
            committed = read_values(kafka_bootstrap, topic, "read_committed")
            everything = read_values(kafka_bootstrap, topic, "read_uncommitted")
            tick = _read(saved)["tick"]
            assert committed == whole[: len(committed)]
            assert (
                len(everything)
                > len(committed)
                >= sum(v["timestamp"] < START + tick * TICK_MS for v in whole)
                > 0
            )
            if len(committed) < len(whole):
                assert whole[len(committed)]["timestamp"] > committed[-1]["timestamp"]
    proc = launch(config, saved)
    printed, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert printed.startswith("ended 800")
    originals = by_event_id(whole)
    assert len(originals) == len(whole)
    again = read_values(kafka_bootstrap, topic, "read_uncommitted")
    assert len(again) > len(whole)  # the killed runs' records stay in the log
    assert set(by_event_id(again)) == set(originals)
    assert all(value == originals[value["event_id"]] for value in again)
    committed = read_values(kafka_bootstrap, topic, "read_committed")
    if hides_aborted_records(kafka_bootstrap):
        assert Counter(map(json.dumps, committed)) == Counter(map(json.dumps, whole))
    else:  # Tansu hands out aborted records: every event, the repeats with their event_id
        assert set(by_event_id(committed)) == set(originals)
        assert all(value == originals[value["event_id"]] for value in committed)


def test_a_change_event_sink_over_kafka_commits_at_each_checkpoint(tmp_path, kafka_bootstrap):
    """The wrapper passes the run on (transactions) and its flush at each checkpoint: the
    records are committed as the run goes, not left to an abort at its end."""
    from doge_datagen.sinks.cdc import ChangeEventSink

    topic = create_topic(kafka_bootstrap)
    inner = KafkaSinkFactory(kafka_bootstrap).create(
        topic, lambda change, t: str(change.key), lambda ts, change, t: json.dumps(change.op)
    )
    sink = ChangeEventSink(inner)
    datagen = banking_generator(
        sink, sink, sink, sink, subjects_num=300, ticks_num=300, seed=3, timestamp_start=START
    )
    seen, during = [0], []
    logout = next(t for t in datagen.transitions if t.trigger == "logout")

    def look(subject, transition):
        seen[0] += 1
        if seen[0] == 20:  # while the run goes on: what its checkpoints committed
            during.append(len(read_values(kafka_bootstrap, topic, "read_committed", 0.3)))
        return True

    logout.action_callback = look
    datagen.start(checkpoint=tmp_path / "run.ckpt", checkpoint_every=0.001)
    assert inner.transactions == "on"
    assert during[0] > 0
    committed = read_values(kafka_bootstrap, topic, "read_committed")
    assert len(committed) == inner.delivered > during[0]
