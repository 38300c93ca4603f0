"""The fault scenarios again, in sharded runs (``run_sharded`` over two processes, and the CLI's
``--workers 2``): a broker paused, killed, or killed and restarted; PostgreSQL connections
ended mid-run; a disk that fills up; SIGINT and SIGTERM at random moments; a second signal
during a flush to a dead broker.

The reference is the same run in one process (a sharded run writes the same events); the
merged summary, the sinks' counts and what the servers hold must agree with it.
"""

import functools
import glob
import json
import random
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from support import shard_models
from support.db_fixtures import make_engine
from support.fault_tools import (
    SUMMARY,
    Background,
    Broker,
    finish,
    first_found,
    read_stderr_until,
    start,
)
from support.kafka_fixtures import create_topic, read_all
from support.services import service_missing

from doge_datagen import DogeError
from doge_datagen.distributed.sharded import run_sharded

pytestmark = pytest.mark.slow

COLUMNS = ("timestamp", "user_id", "balance", "loan_balance", "event", "from_state", "to_state")
START = "1700000000000"


def as_rows(dicts):
    return Counter(tuple(d[c] for c in COLUMNS) for d in dicts)


def jsonl_dicts(pattern: str):
    found = []
    for path in sorted(glob.glob(pattern)):
        found.extend(json.loads(line) for line in Path(path).read_text().splitlines())
    return found


def single_run(tmp_path: Path, *argv: str) -> Counter:
    """The same demo in this process, unpaced: the events a sharded run must write."""
    path = tmp_path / f"single-{uuid.uuid4().hex[:6]}.jsonl"
    shard_models.demo("--sink", f"jsonl:{path}", *argv).start()
    return as_rows(jsonl_dicts(str(path)))


def paced(argv):
    return (*argv, "--timestamp-start", START, "--ticks", "600")


@pytest.fixture
def broker(tmp_path):
    own = Broker(tmp_path)
    own.start()
    yield own
    own.stop()


@pytest.mark.kafka
def test_sharded_broker_paused_for_5_seconds(tmp_path, broker):
    topic = create_topic(broker.bootstrap, prefix="doge-fault")
    argv = paced(("--subjects", "3000", "--seed", "31"))
    build = functools.partial(
        shard_models.demo, "--sink", f"kafka://{broker.bootstrap}/{topic}", *argv
    )
    run = Background(lambda: run_sharded(build, shards=2, speed=6000))
    time.sleep(2.0)
    broker.pause()
    time.sleep(5)
    broker.resume()
    run.join(180)

    assert run.error is None, run.error
    expected = single_run(tmp_path, *argv)
    events = sum(expected.values())
    assert run.result.events == events > 1000
    assert run.result.delivery[f"kafka:{topic}"] == {"delivered": events, "failed": 0}
    records = read_all(broker.bootstrap, topic, expected=events)
    assert as_rows(json.loads(r.value) for r in records) == expected  # once each


@pytest.mark.kafka
@pytest.mark.parametrize("restart", [False, True], ids=["not-restarted", "restarted"])
def test_sharded_broker_killed(tmp_path, broker, restart):
    topic = create_topic(broker.bootstrap, prefix="doge-fault")
    jsonl = tmp_path / "beside.jsonl"
    argv = paced(("--subjects", "3000", "--seed", "32"))
    url = f"kafka://{broker.bootstrap}/{topic}?flush_timeout={30 if restart else 3}"
    if not restart:
        url += "&message.timeout.ms=3000"
    build = functools.partial(shard_models.demo, "--sink", url, "--sink", f"jsonl:{jsonl}", *argv)
    run = Background(lambda: run_sharded(build, shards=2, speed=6000))
    time.sleep(2.0)
    broker.kill()
    if restart:
        time.sleep(1.5)
        broker.start()
    run.join(180)

    expected = single_run(tmp_path, *argv)
    events = sum(expected.values())
    summary = run.summary
    assert summary is not None, run.error
    label = next(k for k in summary.delivery if k.startswith("kafka:"))
    counts = summary.delivery[label]
    # Every event is accounted for across the shards: acknowledged or counted as failed.
    assert counts["delivered"] + counts["failed"] == summary.events == events
    # The file sink listed after Kafka holds every event, in its parts.
    assert as_rows(jsonl_dicts(str(tmp_path / "beside-*-of-*.jsonl"))) == expected
    if not restart:
        assert isinstance(run.error, DogeError) and counts["failed"] > 0
        assert "shard" in str(run.error)
    else:
        # The restarted (memory-only) broker holds at most the records acknowledged after
        # the restart: each a generated event, none twice.
        held = as_rows(json.loads(r.value) for r in read_all(broker.bootstrap, topic))
        assert all(n == 1 for n in held.values())
        assert not held - expected
        assert sum(held.values()) <= counts["delivered"]
        assert run.error is None or counts["failed"] > 0


def postgres_side(postgres_url, table):
    """(URL for the sink, admin engine, kill()) for PostgreSQL: the shards' connections are
    told apart by their application_name.

    ``kill()`` ends a connection in the middle of a write, not between writes (an idle
    connection that died is replaced by the pool's pre-ping unnoticed, and a write lasts too
    short for polling to catch it): it locks the table, waits until a shard's write is blocked
    on the lock, ends that connection, and lets the others go on."""
    name = f"doge-fault-{uuid.uuid4().hex[:8]}"
    admin = make_engine(postgres_url)
    separator = "&" if "?" in postgres_url else "?"
    blocked = sa.text(
        "SELECT pid FROM pg_stat_activity "
        "WHERE application_name = :name AND wait_event_type = 'Lock'"
    )

    def kill():
        with admin.begin() as conn:
            conn.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            with admin.connect() as watch:
                pids = first_found(lambda: watch.execute(blocked, {"name": name}).scalars().all())
                for pid in pids:
                    watch.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            return len(pids)

    return f"{postgres_url}{separator}application_name={name}&table={table}", admin, kill, None


def mariadb_side(mariadb_url, table):
    """The same for MariaDB: a user made for the test, whose connections are killed."""
    user, password = f"dogefault{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = make_engine(mariadb_url)
    hosts = ("localhost", "127.0.0.1", "::1")
    with admin.begin() as conn:
        for host in hosts:
            conn.exec_driver_sql(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")
            conn.exec_driver_sql(f"GRANT ALL ON `{admin.url.database}`.* TO '{user}'@'{host}'")

    def kill():
        """As for PostgreSQL: a write blocked on a table lock, ended."""
        processes = sa.text(
            "SELECT id FROM information_schema.processlist "
            "WHERE user = :u AND command = 'Query' AND state LIKE 'Waiting for%lock%'"
        )
        with admin.connect() as conn:
            conn.exec_driver_sql(f"LOCK TABLES `{table}` WRITE")
            try:
                with admin.connect() as watch:
                    ids = first_found(lambda: watch.execute(processes, {"u": user}).scalars().all())
                    killed = 0
                    for connection_id in ids:
                        try:
                            watch.exec_driver_sql(f"KILL {int(connection_id)}")
                            killed += 1
                        except sa.exc.DBAPIError:  # it ended meanwhile
                            pass
                    return killed
            finally:
                conn.exec_driver_sql("UNLOCK TABLES")

    def drop_user():
        with admin.begin() as conn:
            for host in hosts:
                conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'{host}'")

    url = admin.url.set(username=user, password=password).render_as_string(hide_password=False)
    return f"{url}?table={table}", admin, kill, drop_user


@pytest.mark.parametrize("paced", [False, True], ids=["fast", "paced"])
@pytest.mark.parametrize(
    "database",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_sharded_connections_ended_mid_run(tmp_path, request, database, paced):
    table = f"doge_fault_{uuid.uuid4().hex[:8]}"
    side = postgres_side if database == "postgres" else mariadb_side
    url, admin, kill, cleanup = side(request.getfixturevalue(f"{database}_url"), table)
    argv = ("--subjects", "12000", "--seed", "33", "--ticks", "500", "--timestamp-start", START)
    build = functools.partial(shard_models.demo, "--sink", f"{url}&batch_size=50", *argv)
    kills = []
    done = threading.Event()
    both_wrote = sa.text(
        "SELECT SUM(CASE WHEN user_id < 6000 THEN 1 ELSE 0 END) > 0 "
        f"AND SUM(CASE WHEN user_id >= 6000 THEN 1 ELSE 0 END) > 0 FROM {table}"
    )

    def killer():
        while not done.wait(0.05):
            try:
                with admin.connect() as conn:
                    ready = conn.execute(both_wrote).scalar()
            except sa.exc.DBAPIError:  # the table is not made yet
                continue
            if ready:  # both shards are past their set-up (reading the table)
                kills.append(kill())
                if sum(kills) >= 2:
                    return
                done.wait(0.5)  # let the run recover before the next fault

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        summary = run_sharded(build, shards=2, speed=7500 if paced else None)
    finally:
        done.set()
        thread.join(10)
        try:
            with admin.connect() as conn:
                written = as_rows(
                    dict(row._mapping)
                    for row in conn.execute(sa.text(f"SELECT {', '.join(COLUMNS)} FROM {table}"))
                )
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
            if cleanup is not None:
                cleanup()
            admin.dispose()
    expected = single_run(tmp_path, *argv)
    assert sum(kills) > 0, "the fault did not happen"
    assert written == expected  # every row once, across both shards
    assert summary.delivery[f"db:{table}"] == {"delivered": summary.events, "failed": 0}


def test_sharded_disk_that_fills_up(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        service_missing("a 1 MiB tmpfs (mount failed)")
    try:
        argv = ("--subjects", "12000", "--seed", "34", "--ticks", "600")
        build = functools.partial(shard_models.demo, "--sink", f"jsonl:{mount}/e.jsonl", *argv)
        with pytest.raises(DogeError) as raised:
            run_sharded(build, shards=2)
        summary = raised.value.summary
        stored = jsonl_dicts(str(mount / "e-*-of-*.jsonl"))  # every line complete JSON
        label = next(k for k in summary.delivery if k.startswith("jsonl:"))
        counts = summary.delivery[label]
        assert len(stored) == counts["delivered"] > 1000
        assert counts["failed"] > 0
        assert not as_rows(stored) - single_run(tmp_path, *argv)  # generated events only
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.parametrize("trial", range(6))
def test_sharded_signal_at_a_random_moment(tmp_path, trial):
    rng = random.Random(100 + trial)
    signum = rng.choice([signal.SIGINT, signal.SIGTERM])
    jsonl = tmp_path / "e.jsonl"
    proc = start(
        "--forever",
        "--speed",
        "3000",
        "--subjects",
        "3000",
        "--workers",
        "2",
        "--sink",
        f"jsonl:{jsonl}",
    )
    read_stderr_until(proc, "banking demo writing to")
    time.sleep(rng.uniform(0.0, 3.0))
    proc.send_signal(signum)
    stdout, stderr = finish(proc, timeout=60)
    stored = jsonl_dicts(str(tmp_path / "e-*-of-*.jsonl"))
    keys = Counter((d["timestamp"], d["user_id"]) for d in stored)
    assert all(n == 1 for n in keys.values())
    match = SUMMARY.search(stdout)
    if proc.returncode == 0:
        assert match, stderr
        assert int(match.group(1)) == len(stored)
    else:
        assert proc.returncode in (130, 143), stderr
        assert (int(match.group(1)) if match else 0) == len(stored)


@pytest.mark.kafka
def test_sharded_second_signal_during_a_flush_to_a_dead_broker(tmp_path, broker):
    topic = create_topic(broker.bootstrap, prefix="doge-fault")
    jsonl = tmp_path / "after.jsonl"
    proc = start(
        "--forever",
        "--speed",
        "3000",
        "--subjects",
        "3000",
        "--workers",
        "2",
        "--progress",
        "--sink",
        f"kafka://{broker.bootstrap}/{topic}",
        "--sink",
        f"jsonl:{jsonl}",
    )
    read_stderr_until(proc, r"\d+ events")
    time.sleep(1.0)
    broker.pause()
    time.sleep(0.5)
    broker.kill()
    proc.send_signal(signal.SIGTERM)
    time.sleep(2.0)
    assert proc.poll() is None, "the flush should still be waiting"
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = finish(proc, timeout=60)

    assert proc.returncode == 143, stderr
    events = int(SUMMARY.search(stdout).group(1))
    row = re.search(rf"^\s+kafka:{re.escape(topic)}\s+(\d+)\s+(\d+)\s+(\d+)", stdout, re.MULTILINE)
    assert row, stdout
    counted, delivered, failed = map(int, row.groups())
    assert counted == events == delivered + failed and failed > 0
    assert len(jsonl_dicts(str(tmp_path / "after-*-of-*.jsonl"))) == events
