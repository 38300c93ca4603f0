"""The README's table of what each sink holds after a resume, and the sentences after it; each
test first finds its row where it is written, then does what the row says: a run stopped with
a checkpoint, resumed, failing after it had delivered more (no checkpoint since), and resumed
again from the same checkpoint, compared with the uninterrupted run."""

import json
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter

import pytest
from support.docs import page
from support.logouts import stop_at

from doge_datagen import DbSink, FileSink, KafkaSinkFactory, ParquetSink
from doge_datagen.demo import banking_generator
from doge_datagen.sinks.object_storage import ObjectSink
from doge_datagen.sinks.rabbitmq import RabbitMQSinkFactory
from doge_datagen.sinks.record import Record
from doge_datagen.sinks.redis_stream import RedisStreamSinkFactory

RECORD = Record(["event_id", "timestamp", "user_id", ("event", "trigger"), "balance"])


def readme_row(start: str) -> str:
    """The README's table row that begins with ``start``."""
    rows = [line for line in page("README.md").splitlines() if line.startswith(f"| {start} |")]
    assert len(rows) == 1, start
    return rows[0]


def build(make_sink, stop=None, error=None):
    sink = make_sink()
    datagen = banking_generator(
        sink, sink, sink, sink, subjects_num=500, ticks_num=600, seed=3, timestamp_start=0
    )
    stop_at(datagen, stop, error)
    return datagen, sink


def crash_and_resume(tmp_path, make_whole, make_resumed):
    """The uninterrupted run into ``make_whole()``'s sink; the stopped, failed and resumed
    runs into ``make_resumed()``'s; what the failed run delivered past the checkpoint."""
    build(make_whole)[0].start()
    saved = tmp_path / f"{uuid.uuid4().hex[:6]}.ckpt"
    build(make_resumed, stop=20)[0].start(checkpoint=saved)
    datagen, sink = build(make_resumed, stop=30, error=RuntimeError("gone"))
    with pytest.raises(RuntimeError, match="gone"):
        datagen.start(resume=saved)
    past = sink.delivered
    assert past > 0  # delivered after the checkpoint, then given again
    datagen, sink = build(make_resumed)
    datagen.start(resume=saved)
    return saved, sink


def test_files_hold_each_event_once(tmp_path):
    assert "| exactly once | the file is cut back to the checkpoint's byte offset |" in (
        readme_row("JSON Lines and CSV files")
    )
    for suffix in ("jsonl", "csv"):
        whole, resumed = tmp_path / f"whole.{suffix}", tmp_path / f"resumed.{suffix}"
        crash_and_resume(
            tmp_path,
            lambda w=whole: FileSink(w, RECORD, buffer_lines=10),
            lambda r=resumed: FileSink(r, RECORD, buffer_lines=10),
        )
        assert resumed.read_bytes() == whole.read_bytes()
        assert len(whole.read_text().splitlines()) > 300


def test_sql_tables_hold_each_row_once_in_append_and_upsert_mode(tmp_path):
    row = readme_row("SQL tables (PostgreSQL, MariaDB, MySQL, SQLite), append mode")
    assert "| exactly once |" in row and "in each batch's transaction" in row
    assert "| exactly once | writing a key's row again" in readme_row("SQL tables, upsert mode")
    url = f"sqlite:///{tmp_path / 'e.db'}"
    with sqlite3.connect(tmp_path / "e.db") as conn:
        for table in ("whole", "resumed"):
            conn.execute(f"CREATE TABLE {table} (ts INTEGER, user_id INTEGER, event TEXT)")
        for table in ("whole_now", "resumed_now"):
            conn.execute(f"CREATE TABLE {table} (user_id INTEGER PRIMARY KEY, balance INTEGER)")

    def rows(ts, s, t):
        return {"ts": ts, "user_id": s.user_id, "event": t.trigger}

    def balances(ts, s, t):
        return {"user_id": s.user_id, "balance": s.balance}

    def read(table):
        with sqlite3.connect(tmp_path / "e.db") as conn:
            return Counter(conn.execute(f"SELECT * FROM {table}").fetchall())

    _, sink = crash_and_resume(
        tmp_path,
        lambda: DbSink(url, "whole", rows, batch_size=10),
        lambda: DbSink(url, "resumed", rows, batch_size=10),
    )
    assert sink.repeated > 0  # rows committed after the checkpoint, not written again
    assert read("resumed") == read("whole") and sum(read("whole").values()) > 300
    crash_and_resume(
        tmp_path,
        lambda: DbSink(url, "whole_now", balances, batch_size=10, mode="upsert", key="user_id"),
        lambda: DbSink(url, "resumed_now", balances, batch_size=10, mode="upsert", key="user_id"),
    )
    assert read("resumed_now") == read("whole_now") and len(read("whole_now")) > 100


def test_redis_with_explicit_ids_holds_each_entry_once(tmp_path, redis_url):
    import redis

    row = readme_row("Redis Streams with explicit ids (`explicit_ids=true`)")
    assert "| exactly once | entry ids from the events: the server refuses the repeats |" in row
    streams = [f"doge-readme-{uuid.uuid4().hex[:8]}-{n}" for n in (1, 2)]
    client = redis.Redis.from_url(redis_url)
    try:
        _, sink = crash_and_resume(
            tmp_path,
            *(
                lambda s=s: RedisStreamSinkFactory(redis_url).create(
                    s, None, RECORD, batch_size=10, explicit_ids=True, name="redis:e"
                )
                for s in streams
            ),
        )
        assert sink.repeated > 0
        whole, resumed = (client.xrange(s) for s in streams)
        assert resumed == whole and len(whole) > 300
    finally:
        client.delete(*streams)
        client.close()


def at_least_once(first, again):
    """Every event of the uninterrupted run, some twice, each repeat with its event_id."""
    by_id = {m["event_id"]: m for m in first}
    assert len(by_id) == len(first) > 300
    assert len(again) > len(first)
    assert {m["event_id"] for m in again} == set(by_id)
    assert all(m == by_id[m["event_id"]] for m in again)


def test_buses_hold_every_event_at_least_once_with_its_event_id(tmp_path, amqp_url):
    from support.bus_fixtures import RabbitQueue

    row = readme_row("RabbitMQ, MQTT, NATS, HTTP, Redis without explicit ids")
    assert "| at least once, with `event_id` |" in row
    queues = [RabbitQueue(amqp_url), RabbitQueue(amqp_url)]
    try:
        crash_and_resume(
            tmp_path,
            *(
                lambda q=q: RabbitMQSinkFactory(amqp_url).create(q.exchange, None, RECORD)
                for q in queues
            ),
        )
        first, again = ([json.loads(body) for _, body in q.read()] for q in queues)
        at_least_once(first, again)
    finally:
        for queue in queues:
            queue.close()


def test_nats_holds_every_event_at_least_once_with_its_event_id(tmp_path, nats_url):
    from support.bus_fixtures import NatsStream

    from doge_datagen.sinks.nats_jetstream import NatsSinkFactory

    assert "NATS" in readme_row("RabbitMQ, MQTT, NATS, HTTP, Redis without explicit ids")
    streams = [NatsStream(nats_url), NatsStream(nats_url)]
    try:
        crash_and_resume(
            tmp_path,
            *(
                lambda n=n: NatsSinkFactory(nats_url).create(n.subject, None, RECORD)
                for n in streams
            ),
        )
        first, again = ([json.loads(body) for _, body in n.read()] for n in streams)
        at_least_once(first, again)
    finally:
        for stream in streams:
            stream.delete()


@pytest.mark.kafka
def test_kafka_in_a_run_that_checkpoints_produces_in_transactions(tmp_path, kafka_bootstrap):
    from support.kafka_fixtures import create_topic
    from support.kafka_transactions import hides_aborted_records, read_values

    row = readme_row("Kafka")
    assert "| exactly once for `read_committed` consumers, in a run that checkpoints, on a " in row
    assert "else at least once, with `event_id` | the producer is transactional: each " in row
    topics = [create_topic(kafka_bootstrap), create_topic(kafka_bootstrap)]
    factories = [KafkaSinkFactory(kafka_bootstrap, "doge-readme") for _ in topics]
    made = []

    def make(factory, topic):
        sink = factory.create(topic, lambda s, tr: str(s.user_id), RECORD, value_serializer="json")
        made.append(sink)
        return sink

    crash_and_resume(
        tmp_path,
        *(lambda f=f, t=t: make(f, t) for f, t in zip(factories, topics)),
    )
    assert [sink.transactions for sink in made] == [None, "on", "on", "on"]
    first = read_values(kafka_bootstrap, topics[0], "read_committed")
    at_least_once(first, read_values(kafka_bootstrap, topics[1], "read_uncommitted"))
    committed = read_values(kafka_bootstrap, topics[1], "read_committed")
    if hides_aborted_records(kafka_bootstrap):  # the failed run's transaction was aborted
        assert committed == first
    else:  # Tansu hands out aborted records
        at_least_once(first, committed)


def test_a_parquet_file_is_rewritten_from_the_checkpoint_s_tick(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from doge_datagen.engine.checkpoint import _read

    row = readme_row("Parquet files, object storage (`s3://`, `gs://`, `file://`)")
    assert "| rewritten | the resumed run's file (objects, parts) holds the events from" in row
    whole, resumed = tmp_path / "whole.parquet", tmp_path / "resumed.parquet"
    saved, _ = crash_and_resume(
        tmp_path, lambda: ParquetSink(whole, RECORD), lambda: ParquetSink(resumed, RECORD)
    )
    since = _read(saved)["tick"] * 60_000  # the next tick to run, of one minute each
    kept = [r for r in pq.read_table(whole).to_pylist() if r["timestamp"] >= since]
    assert pq.read_table(resumed).to_pylist() == kept
    assert 0 < len(kept) < pq.read_table(whole).num_rows
    for options in ({}, {"part_size": 4000}):  # one object, or parts
        where = tmp_path / f"objects{len(options)}"
        where.mkdir()
        saved, _ = crash_and_resume(
            tmp_path,
            lambda w=where, o=options: ObjectSink(f"file://{w}/whole.jsonl", RECORD, **o),
            lambda w=where, o=options: ObjectSink(f"file://{w}/resumed.jsonl", RECORD, **o),
        )
        since = _read(saved)["tick"] * 60_000

        def rows(stem, w=where):
            found = []
            for path in sorted(w.glob(f"{stem}*.jsonl")):
                found += [json.loads(line) for line in path.read_text().splitlines()]
            return found

        assert rows("resumed") == [r for r in rows("whole") if r["timestamp"] >= since]
        assert len(rows("resumed")) < len(rows("whole"))


def test_event_ids_and_if_exists_as_the_readme_says(tmp_path):
    text = " ".join(page("README.md").split())
    assert "`event_id` (`SEED:SUBJECT:TICK:N`) names an event the same way in every run" in text
    assert "by default files replace and servers append, as in 1.0.4" in text
    assert "the summary says for each sink whether it appended to data that was there" in text
    # (Sameness across shards and resumes: tests/engine/test_event_id.py and
    # tests/faults/test_fault_resume_event_id.py; each mode: tests/engine/test_if_exists.py.)
    path = tmp_path / "events.jsonl"
    path.write_text("{}\n")
    done = subprocess.run(
        [sys.executable, "-m", "doge_datagen", "demo", "--subjects", "20", "--ticks", "30"]
        + ["--no-progress", "--if-exists", "append", "--sink", f"jsonl:{path}"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert f"jsonl:{path}: appended to data already there" in done.stdout
