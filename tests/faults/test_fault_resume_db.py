"""Exactly once into SQL tables across crashes: a checkpointing run's DB sink keeps the rows it
committed in ``doge_datagen_progress``, in each batch's transaction, and a resumed run drops the
rows it gives again that were committed after its checkpoint.

The PostgreSQL test kills a run with SIGKILL at seeded moments (its N-th 'logout' event), after
batches were committed past its last checkpoint, resumes it each time and compares the table
with the uninterrupted run's, as multisets of rows. The test on each database stops a run with
a checkpoint, fails a resumed run after more batches and resumes again from the same
checkpoint.
"""

import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.logouts import stop_at

from doge_datagen import DbSink
from doge_datagen.demo import banking_generator
from doge_datagen.engine.checkpoint import _read
from doge_datagen.sinks.db import PROGRESS_TABLE

SCRIPT = Path(__file__).resolve().parents[1] / "support" / "checkpoint_db_run.py"
SUBJECTS, TICKS = "5000", "1500"
COLUMNS = ("ts", "user_id", "event", "balance")


def launch(db, table: str, saved: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), db.url, table, str(saved), SUBJECTS, TICKS, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def rows(db, table: str) -> Counter:
    names = ", ".join(db.quote(c) for c in COLUMNS)
    with db.engine.connect() as conn:
        return Counter(map(tuple, conn.exec_driver_sql(f"SELECT {names} FROM {db.quote(table)}")))


def committed(db, run_key: str) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                f"SELECT committed_rows FROM {PROGRESS_TABLE} WHERE run_key = '{run_key}'"
            ).scalar()
        )


def forget(db, run_keys) -> None:
    """The test's rows of the progress table removed (the table is shared by runs)."""
    with db.engine.begin() as conn:
        for key in run_keys:
            conn.exec_driver_sql(f"DELETE FROM {PROGRESS_TABLE} WHERE run_key = '{key}'")


@pytest.fixture(scope="module")
def uninterrupted_rows(postgres_url):
    from support.db_fixtures import Database

    db = Database("postgresql", postgres_url)
    table = db.table_name("whole")
    db.drop_at_end(table)
    try:
        proc = launch(db, table, Path("unused.ckpt"), "--plain")
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        yield rows(db, table)
    finally:
        db.cleanup()


@pytest.mark.parametrize("trial", range(3))
def test_sigkill_after_batches_past_the_checkpoint_then_resumed(
    tmp_path, postgres_db, uninterrupted_rows, trial
):
    rng = random.Random(trial)
    table, saved = postgres_db.table_name("resumed"), tmp_path / "run.ckpt"
    postgres_db.drop_at_end(table)
    kills = [rng.randint(1000, 2500) for _ in range(3)]  # logouts of each process
    past = []
    keys = set()
    try:
        for kill_at in kills:
            proc = launch(postgres_db, table, saved, "--kill-at", str(kill_at))
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == -signal.SIGKILL, err
            assert saved.exists(), "killed before the first checkpoint"
            position = _read(saved)["sinks"][0]
            keys.add(position["run_key"])
            done = committed(postgres_db, position["run_key"])
            # The table holds what the progress table says, more than the checkpoint's rows.
            assert sum(rows(postgres_db, table).values()) == done
            assert done >= position["rows"]
            past.append(done - position["rows"])
        assert any(n >= 40 for n in past), past  # batches committed after the checkpoint
        proc = launch(postgres_db, table, saved)
        printed, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert printed.startswith("resumed 1500")
        assert keys == {_read(saved)["sinks"][0]["run_key"]}  # one run, resumed
        assert rows(postgres_db, table) == uninterrupted_rows
    finally:
        forget(postgres_db, keys)


def row(timestamp, subject, transition):
    return {
        "ts": timestamp,
        "user_id": subject.user_id,
        "event": transition.trigger,
        "balance": subject.balance,
    }


def build(db, table, stop=None, error=None):
    sink = DbSink(db.url, table, row, create=True, batch_size=15, flush_interval=None)
    datagen = banking_generator(
        sink, sink, sink, sink, subjects_num=300, ticks_num=400, seed=3, timestamp_start=0
    )
    stop_at(datagen, stop, error)
    return datagen, sink


def test_each_database_holds_each_row_once_after_a_failed_resume(tmp_path, any_db):
    whole, resumed = any_db.table_name("whole"), any_db.table_name("resumed")
    any_db.drop_at_end(whole)
    any_db.drop_at_end(resumed)
    saved = tmp_path / "run.ckpt"
    build(any_db, whole)[0].start()
    datagen, _ = build(any_db, resumed, stop=20)
    datagen.start(checkpoint=saved)
    position = _read(saved)["sinks"][0]
    try:
        assert committed(any_db, position["run_key"]) == position["rows"] > 0
        datagen, sink = build(any_db, resumed, stop=30, error=RuntimeError("gone"))
        with pytest.raises(RuntimeError, match="gone"):
            datagen.start(resume=saved)
        past = sink.delivered
        assert past >= 30  # batches committed past the checkpoint
        assert committed(any_db, position["run_key"]) == position["rows"] + past
        datagen, sink = build(any_db, resumed)
        datagen.start(resume=saved, checkpoint=saved)
        assert sink.repeated == past  # given again, dropped
        assert rows(any_db, resumed) == rows(any_db, whole)
        assert sum(rows(any_db, whole).values()) > 300
        assert committed(any_db, position["run_key"]) == sum(rows(any_db, resumed).values())
    finally:
        forget(any_db, [position["run_key"]])


def test_a_resume_into_a_table_the_run_did_not_write_is_refused(tmp_path, sqlite_db):
    from doge_datagen.errors import ConfigurationError

    table, saved = sqlite_db.table_name("resumed"), tmp_path / "run.ckpt"
    sqlite_db.drop_at_end(table)
    datagen, _ = build(sqlite_db, table, stop=20)
    datagen.start(checkpoint=saved)
    forget(sqlite_db, [_read(saved)["sinks"][0]["run_key"]])
    datagen, _ = build(sqlite_db, table)
    with pytest.raises(ConfigurationError, match="holds no row committed by run .*checkpoint"):
        datagen.start(resume=saved)


def test_upsert_mode_keeps_no_progress(tmp_path, sqlite_db):
    table = sqlite_db.create_table(
        None, sa.Column("user_id", sa.Integer, primary_key=True), sa.Column("event", sa.String(32))
    )
    sink = DbSink(
        sqlite_db.url,
        table.name,
        lambda ts, s, t: {"user_id": s.user_id, "event": t.trigger},
        mode="upsert",
        key="user_id",
    )
    sink.open()
    try:
        assert sink.checkpoint_position() is None
    finally:
        sink.close()
    assert not sa.inspect(sqlite_db.engine).has_table(PROGRESS_TABLE)
