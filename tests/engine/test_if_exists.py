"""``if_exists``: what each sink does with data already where it writes (append, replace,
fail), the same for files, SQL tables and Redis streams; sinks that cannot look refuse replace
and fail; the summary says whether each sink appended to data that was there."""

import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from doge_datagen import ConfigurationError, DbSink, FileSink
from doge_datagen.demo import banking_generator
from doge_datagen.sinks.rabbitmq import RabbitMQSinkFactory
from doge_datagen.sinks.redis_stream import RedisStreamSinkFactory


def row(timestamp, subject, transition):
    return {"ts": timestamp, "user_id": subject.user_id, "event": transition.trigger}


def run(sink, **options):
    datagen = banking_generator(
        sink, sink, sink, sink, subjects_num=100, ticks_num=100, seed=1, timestamp_start=0
    )
    return datagen.start(**options)


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_files_append_replace_or_fail(tmp_path, suffix):
    path = tmp_path / f"events.{suffix}"
    one = run(FileSink(path, row))
    once = path.read_text()
    assert one.appended[f"{suffix}:{path}"] is False
    run(FileSink(path, row))  # the default: replaced, as in 1.0.4
    assert path.read_text() == once
    two = run(FileSink(path, row), if_exists="append")
    assert two.appended[f"{suffix}:{path}"] is True
    body = once.split("\n", 1)[1] if suffix == "csv" else once  # one header
    assert path.read_text() == once + body
    three = run(FileSink(path, row), if_exists="replace")
    assert three.appended[f"{suffix}:{path}"] is False
    assert path.read_text() == once
    with pytest.raises(ConfigurationError, match="holds data, and if_exists is 'fail'"):
        run(FileSink(path, row), if_exists="fail")
    assert path.read_text() == once
    (tmp_path / "empty.jsonl").write_text("")
    run(FileSink(tmp_path / "empty.jsonl", row), if_exists="fail")  # nothing there: runs
    assert (tmp_path / "empty.jsonl").stat().st_size > 0


def test_sql_tables_append_replace_or_fail_and_touch_no_other_table(any_db):
    table = any_db.create_table(
        None,
        sa.Column("ts", sa.BigInteger),
        sa.Column("user_id", sa.Integer),
        sa.Column("event", sa.String(32)),
    )
    other = any_db.create_table(None, sa.Column("x", sa.Integer))
    with any_db.engine.begin() as conn:
        conn.execute(other.insert(), [{"x": 1}, {"x": 2}])

    def sink():
        return DbSink(any_db.url, table.name, row, name="db:events")

    first = run(sink())
    n = any_db.count(table.name)
    assert n > 20 and first.appended["db:events"] is False
    again = run(sink())  # the default: appended, as in 1.0.4
    assert any_db.count(table.name) == 2 * n and again.appended["db:events"] is True
    run(sink(), if_exists="append")
    assert any_db.count(table.name) == 3 * n
    replaced = run(sink(), if_exists="replace")
    assert any_db.count(table.name) == n and replaced.appended["db:events"] is False
    with pytest.raises(ConfigurationError, match="holds rows, and if_exists is 'fail'"):
        run(sink(), if_exists="fail")
    assert any_db.count(table.name) == n
    assert any_db.count(other.name) == 2  # replace deleted the run's table's rows only
    with any_db.engine.begin() as conn:
        conn.execute(table.delete())
    run(sink(), if_exists="fail")  # an empty table: runs
    assert any_db.count(table.name) == n


def test_redis_streams_append_replace_or_fail(redis_url):
    import redis

    stream = f"doge-if-exists-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)

    def sink():
        return RedisStreamSinkFactory(redis_url).create(stream, None, row, name="redis:events")

    try:
        first = run(sink())
        n = client.xlen(stream)
        assert n > 20 and first.appended["redis:events"] is False
        assert run(sink()).appended["redis:events"] is True  # default: append
        assert client.xlen(stream) == 2 * n
        run(sink(), if_exists="append")
        assert client.xlen(stream) == 3 * n
        assert run(sink(), if_exists="replace").appended["redis:events"] is False
        assert client.xlen(stream) == n
        with pytest.raises(ConfigurationError, match="holds entries, and if_exists is 'fail'"):
            run(sink(), if_exists="fail")
        assert client.xlen(stream) == n
    finally:
        client.delete(stream)
        client.close()


def test_a_sink_that_cannot_look_appends_and_refuses_replace_and_fail(amqp_url):
    from support.bus_fixtures import RabbitQueue

    queue = RabbitQueue(amqp_url)
    try:

        def sink():
            return RabbitMQSinkFactory(amqp_url).create(queue.exchange, None, row, name="amqp:ev")

        for mode in ("replace", "fail"):
            with pytest.raises(ConfigurationError, match=f"sink amqp:ev cannot .* {mode} it"):
                run(sink(), if_exists=mode)
        assert queue.read() == []  # refused before anything was sent
        summary = run(sink(), if_exists="append")
        assert "amqp:ev" not in summary.appended  # it cannot tell
        assert len(queue.read()) == summary.delivery["amqp:ev"]["delivered"] > 20
    finally:
        queue.close()


def test_bad_values_and_a_resume_with_replace_are_refused(tmp_path):
    path = tmp_path / "events.jsonl"
    with pytest.raises(ConfigurationError, match="if_exists must be one of append, replace"):
        run(FileSink(path, row), if_exists="overwrite")
    run(FileSink(path, row), checkpoint=tmp_path / "run.ckpt")
    with pytest.raises(ConfigurationError, match="with a resume"):
        run(FileSink(path, row), resume=tmp_path / "run.ckpt", if_exists="replace")


def test_the_command_line_takes_if_exists_and_says_what_each_sink_did(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"before": 1}\n')

    def demo(*extra):
        return subprocess.run(
            [sys.executable, "-m", "doge_datagen", "demo", "--subjects", "20", "--ticks", "30"]
            + ["--seed", "1", "--no-progress", "--sink", f"jsonl:{path}", *extra],
            capture_output=True,
            text=True,
        )

    failed = demo("--if-exists", "fail")
    assert failed.returncode != 0 and "if_exists is 'fail'" in failed.stderr
    assert path.read_text() == '{"before": 1}\n'
    appended = demo("--if-exists", "append")
    assert appended.returncode == 0, appended.stderr
    assert f"jsonl:{path}: appended to data already there" in appended.stdout
    assert path.read_text().startswith('{"before": 1}\n{')
    replaced = demo()  # files replace by default
    assert f"jsonl:{path}: started empty" in replaced.stdout
    assert not path.read_text().startswith('{"before"')
    usage = demo("--if-exists", "replace", "--resume", str(tmp_path / "run.ckpt"))
    assert usage.returncode == 2 and "contradicts --resume" in usage.stderr


def test_a_parquet_file_appends_replaces_or_fails(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from doge_datagen import ParquetSink

    path = tmp_path / "events.parquet"
    first = run(ParquetSink(path, row))
    n = pq.read_table(path).num_rows
    assert n > 20 and first.appended[f"parquet:{path}"] is False
    run(ParquetSink(path, row))  # the default: replaced, as in 1.0.4
    assert pq.read_table(path).num_rows == n
    appended = run(ParquetSink(path, row), if_exists="append")
    assert appended.appended[f"parquet:{path}"] is True
    assert pq.read_table(path).num_rows == 2 * n
    run(ParquetSink(path, row), if_exists="replace")
    assert pq.read_table(path).num_rows == n
    with pytest.raises(ConfigurationError, match="holds data, and if_exists is 'fail'"):
        run(ParquetSink(path, row), if_exists="fail")
    assert pq.read_table(path).num_rows == n


def test_wrapped_sinks_and_streams_named_per_event_only_append(tmp_path, redis_url):
    from doge_datagen.sinks.disorder import DisorderedSink

    wrapped = DisorderedSink(FileSink(tmp_path / "late.jsonl", row), late=0.1)
    with pytest.raises(ConfigurationError, match="sink .*late.jsonl.* cannot .* replace it"):
        run(wrapped, if_exists="replace")
    per_event = RedisStreamSinkFactory(redis_url).create(
        lambda subject, transition: f"doge-{transition.trigger}", None, row, name="redis:each"
    )
    with pytest.raises(ConfigurationError, match="redis:each: its streams are named per event"):
        run(per_event, if_exists="fail")


def test_sharded_runs_do_not_take_if_exists_yet(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "doge_datagen", "demo", "--subjects", "20", "--ticks", "30"]
        + ["--workers", "2", "--if-exists", "append", "--sink", f"jsonl:{tmp_path / 'e.jsonl'}"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "--if-exists applies to a run in one process" in done.stderr


def test_object_storage_replaces_or_fails_and_refuses_append(tmp_path):
    from doge_datagen.sinks.object_storage import ObjectSink

    url = f"file://{tmp_path}/events.jsonl"
    run(ObjectSink(url, row))
    once = (tmp_path / "events.jsonl").read_text()
    assert once
    with pytest.raises(ConfigurationError, match="published whole.* cannot append"):
        run(ObjectSink(url, row), if_exists="append")
    with pytest.raises(ConfigurationError, match="exists, and if_exists is 'fail'"):
        run(ObjectSink(url, row), if_exists="fail")
    run(ObjectSink(url, row), if_exists="replace")
    assert (tmp_path / "events.jsonl").read_text() == once
    run(ObjectSink(f"file://{tmp_path}/new.jsonl", row), if_exists="fail")  # nothing there
    assert (tmp_path / "new.jsonl").read_text() == once


@pytest.mark.kafka
def test_a_kafka_topic_appends_or_fails_and_refuses_replace(kafka_bootstrap):
    from support.kafka_fixtures import create_topic, read_all

    from doge_datagen import KafkaSinkFactory

    topic = create_topic(kafka_bootstrap)

    def sink():
        return KafkaSinkFactory(kafka_bootstrap, "doge-if-exists").create(
            topic, lambda s, t: str(s.user_id), lambda ts, s, t: str(row(ts, s, t))
        )

    with pytest.raises(ConfigurationError, match="cannot remove a topic's records"):
        run(sink(), if_exists="replace")
    first = run(sink(), if_exists="fail")  # an empty topic: runs
    assert first.appended[f"kafka:{topic}"] is False
    n = len(read_all(kafka_bootstrap, topic, first.delivery[f"kafka:{topic}"]["delivered"]))
    assert n > 20
    with pytest.raises(ConfigurationError, match="holds records, and if_exists is 'fail'"):
        run(sink(), if_exists="fail")
    run(sink(), if_exists="append")
    assert len(read_all(kafka_bootstrap, topic, 2 * n)) == 2 * n
