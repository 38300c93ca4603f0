"""One run killed with SIGKILL at 20 seeded moments (its N-th 'logout' event after a
checkpoint) and stopped once with SIGTERM, resumed each time, into JSON Lines, PostgreSQL,
Redis (explicit ids), Kafka (transactions) and RabbitMQ at once, every record carrying its
event_id, compared with the uninterrupted run: the file, the table and the stream hold exactly
its events; Kafka read ``read_committed`` holds every one (exactly its records on a broker
that hides aborted transactions), RabbitMQ holds every one, and each repeat carries the
event_id of its original."""

import json
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from support.bus_fixtures import RabbitQueue, read_redis_stream, unique
from support.kafka_fixtures import create_topic
from support.kafka_transactions import by_event_id, hides_aborted_records, read_values

from doge_datagen.engine.checkpoint import _read
from doge_datagen.sinks.db import PROGRESS_TABLE

SCRIPT = Path(__file__).resolve().parents[1] / "support" / "checkpoint_sinks_run.py"
KILLS = 20
TICKS = 2000
COLUMNS = ("event_id", "timestamp", "user_id", "event", "balance")


def launch(config_path, saved, *extra):
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(config_path), str(saved), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc):
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out, err


def table_rows(db, table):
    names = ", ".join(db.quote(c) for c in COLUMNS)
    with db.engine.connect() as conn:
        return Counter(map(tuple, conn.exec_driver_sql(f"SELECT {names} FROM {db.quote(table)}")))


def kept_once(values):
    """What a consumer that drops repeated event ids keeps, in order."""
    kept, seen = [], set()
    for value in values:
        if value["event_id"] not in seen:
            seen.add(value["event_id"])
            kept.append(value)
    return kept


def test_twenty_sigkills_and_a_sigterm_then_resumed_every_sink(
    tmp_path, postgres_db, redis_url, amqp_url, kafka_bootstrap
):
    rng = random.Random(28)
    queues = [RabbitQueue(amqp_url), RabbitQueue(amqp_url)]
    streams = [unique("doge-twenty"), unique("doge-twenty")]
    tables = [postgres_db.table_name("whole"), postgres_db.table_name("resumed")]
    for table in tables:
        postgres_db.drop_at_end(table)
    topics = [create_topic(kafka_bootstrap), create_topic(kafka_bootstrap)]
    base = redis_url.rsplit("/", 1)[0]
    configs = []
    for i, name in enumerate(("whole", "resumed")):
        config = {
            "subjects": 3000,
            "ticks": TICKS,
            "every": 0.01,
            "jsonl": str(tmp_path / f"{name}.jsonl"),
            "postgres": [postgres_db.url, tables[i]],
            "redis": [f"{base}/0", streams[i]],
            "kafka": [kafka_bootstrap, topics[i]],
            "amqp": [amqp_url, queues[i].exchange],
        }
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(config))
        configs.append(path)
    saved = tmp_path / "run.ckpt"
    run_key = None
    try:
        code, _, err = finish(launch(configs[0], tmp_path / "unused.ckpt", "--plain"))
        assert code == 0, err
        moments = [("--kill-at", rng.randint(40, 120)) for _ in range(KILLS)]
        moments.insert(rng.randrange(1, KILLS), ("--term-at", rng.randint(40, 120)))
        ticks = []
        for flag, at in moments:
            code, out, err = finish(launch(configs[1], saved, flag, str(at)))
            if flag == "--kill-at":
                assert code == -signal.SIGKILL, (at, out, err)
            else:  # a graceful stop: the last checkpoint where it stopped
                assert code == 0 and out.startswith("stopped"), (out, err)
            assert saved.exists(), "killed before the first checkpoint"
            ticks.append(_read(saved)["tick"])
        assert ticks == sorted(ticks) and ticks[-1] < TICKS  # each resumed, none finished
        code, out, err = finish(launch(configs[1], saved))
        assert code == 0 and out.startswith(f"ended {TICKS}"), (out, err)
        run_key = _read(saved)["sinks"][1]["run_key"]

        whole_lines = (tmp_path / "whole.jsonl").read_text().splitlines()
        whole = [json.loads(line) for line in whole_lines]
        originals = by_event_id(whole)
        assert len(originals) == len(whole) > 5000
        # JSON Lines: byte for byte.
        assert (tmp_path / "resumed.jsonl").read_bytes() == (tmp_path / "whole.jsonl").read_bytes()
        # PostgreSQL: the same rows, each once.
        assert table_rows(postgres_db, tables[1]) == table_rows(postgres_db, tables[0])
        assert sum(table_rows(postgres_db, tables[1]).values()) == len(whole)
        # Redis with explicit ids: the same entries in the same order.
        whole_entries = read_redis_stream(redis_url, streams[0])
        entries = read_redis_stream(redis_url, streams[1])
        assert len(whole_entries) == len(whole)
        assert entries == whole_entries
        # Kafka: every event committed; repeats (aborted records handed out) the same event.
        committed = read_values(kafka_bootstrap, topics[1], "read_committed")
        everything = read_values(kafka_bootstrap, topics[1], "read_uncommitted")
        assert read_values(kafka_bootstrap, topics[0], "read_committed") == whole
        assert len(everything) > len(whole)  # the killed runs' open transactions
        assert all(value == originals[value["event_id"]] for value in everything)
        assert set(by_event_id(committed)) == set(originals)
        if hides_aborted_records(kafka_bootstrap):
            assert Counter(map(json.dumps, committed)) == Counter(map(json.dumps, whole))
        else:
            assert all(value == originals[value["event_id"]] for value in committed)
        # RabbitMQ: at least once, a repeat with its original's event_id.
        first = [json.loads(body) for _, body in queues[0].read()]
        again = [json.loads(body) for _, body in queues[1].read()]
        assert first == whole
        assert len(again) > len(first)
        assert all(value == originals[value["event_id"]] for value in again)
        assert set(by_event_id(again)) == set(originals)
        assert sorted(kept_once(again), key=lambda v: v["event_id"]) == sorted(
            whole, key=lambda v: v["event_id"]
        )
    finally:
        for queue in queues:
            queue.close()
        if run_key is not None:
            with postgres_db.engine.begin() as conn:
                conn.execute(
                    sa.text(f"DELETE FROM {PROGRESS_TABLE} WHERE run_key = :key"), {"key": run_key}
                )
