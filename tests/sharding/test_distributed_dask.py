"""Sharded runs on real Dask clusters: a LocalCluster of processes, and a ``dask scheduler``
with two ``dask worker`` processes on loopback, started as a user deploys them (scheduler
file). The same exactness and faults as ``tests/sharding/test_distributed.py``."""

import functools
import glob
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, List

import distributed  # the [dask] extra, part of [test]
import pytest
from support import shard_models
from support.kafka_fixtures import create_topic, read_all
from test_distributed import (
    COLUMNS,
    fetch,
    jsonl_rows,
    line_count,
    rows_of_lines,
    single_run_rows,
)

from doge_datagen.core.shards import part_path, split
from doge_datagen.distributed.sharded import run_sharded
from doge_datagen.errors import ShardError

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[str]:
    """A LocalCluster of two one-thread worker processes; its scheduler's address."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def deployed_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """``dask scheduler`` and two ``dask worker`` processes, as separate programs."""
    where = tmp_path_factory.mktemp("dask")
    scheduler_file = where / "scheduler.json"
    dask = str(Path(sys.executable).with_name("dask"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)]))
    log = open(where / "cluster.log", "w")
    processes = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
        )
    ]  # fmt: skip
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if not scheduler_file.exists():
        pytest.fail(f"dask scheduler did not start (see {where / 'cluster.log'})")
    for n in range(2):
        processes.append(
            subprocess.Popen(
                [dask, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                 "--name", f"w{n}", "--no-dashboard"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
            )
        )  # fmt: skip
    address = json.loads(scheduler_file.read_text())["address"]
    with distributed.Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
    try:
        yield {"address": address, "processes": processes}
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "shards"), [(41, 2), (42, 3), (43, 7)])
def test_a_local_cluster_writes_the_events_of_one_run(tmp_path, local_cluster, seed, shards):
    subjects = 140 if shards == 7 else 300
    argv = ("--subjects", str(subjects), "--seed", str(seed))
    path = tmp_path / "events.jsonl"
    build = functools.partial(shard_models.demo, "--sink", f"jsonl:{path}", *argv)
    summary = run_sharded(build, shards=shards, backend="dask", address=local_cluster)
    assert len(glob.glob(str(tmp_path / f"events-*-of-{shards:05d}.jsonl"))) == shards
    expected = single_run_rows(tmp_path, *argv)
    assert jsonl_rows(str(tmp_path / "events-*-of-*.jsonl")) == expected
    assert summary.events == sum(expected.values()) and len(summary.shards) == shards


@pytest.mark.slow
def test_without_an_address_a_local_cluster_is_started(tmp_path):
    argv = ("--subjects", "200", "--seed", "44")
    path = tmp_path / "events.jsonl"
    build = functools.partial(shard_models.demo, "--sink", f"jsonl:{path}", *argv)
    summary = run_sharded(build, shards=2, backend="dask")
    assert jsonl_rows(str(tmp_path / "events-*-of-*.jsonl")) == single_run_rows(tmp_path, *argv)
    assert [p.subjects for p in summary.shards] == [100, 100]


@pytest.mark.slow
def test_dask_writes_one_postgresql_table(tmp_path, local_cluster, postgres_db):
    table = postgres_db.table_name()
    postgres_db.drop_at_end(table)
    argv = ("--subjects", "250", "--seed", "45")
    build = functools.partial(
        shard_models.demo, "--sink", f"{postgres_db.url}?table={table}", *argv
    )
    summary = run_sharded(build, shards=3, backend="dask", address=local_cluster)
    written = Counter(tuple(r[c] for c in COLUMNS) for r in fetch(postgres_db, table))
    assert written == single_run_rows(tmp_path, *argv)
    assert summary.events == sum(written.values())


@pytest.mark.slow
def test_dask_writes_one_kafka_topic(tmp_path, local_cluster, kafka_bootstrap):
    topic = create_topic(kafka_bootstrap, partitions=2)
    argv = ("--subjects", "200", "--seed", "46")
    build = functools.partial(
        shard_models.demo, "--sink", f"kafka://{kafka_bootstrap}/{topic}", *argv
    )
    summary = run_sharded(build, shards=3, backend="dask", address=local_cluster)
    records = read_all(kafka_bootstrap, topic, expected=summary.events)
    assert rows_of_lines([r.value.decode() for r in records]) == single_run_rows(tmp_path, *argv)


@pytest.mark.slow
def test_a_failing_callback_on_dask_names_its_shard(tmp_path, local_cluster):
    path = tmp_path / "events.jsonl"
    build = functools.partial(
        shard_models.failing, 150, "--sink", f"jsonl:{path}", "--subjects", "300", "--seed", "5"
    )
    with pytest.raises(ShardError) as caught:
        run_sharded(build, shards=3, backend="dask", address=local_cluster)
    error = caught.value
    assert error.shard == 1 and "shard 1 of 3 (subjects 100..199)" in str(error)
    assert "user 150 cannot log in" in str(error)
    for shard, part_summary in zip(split(300, 3), error.summary.shards):
        assert line_count(str(part_path(path, shard))) == part_summary.events


@pytest.mark.slow
def test_a_deployed_cluster_writes_the_events_of_one_run(tmp_path, deployed_cluster):
    argv = ("--subjects", "300", "--seed", "47")
    path = tmp_path / "events.jsonl"
    build = functools.partial(shard_models.demo, "--sink", f"jsonl:{path}", *argv)
    summary = run_sharded(build, shards=3, backend="dask", address=deployed_cluster["address"])
    assert jsonl_rows(str(tmp_path / "events-*-of-*.jsonl")) == single_run_rows(tmp_path, *argv)
    assert summary.events == sum(p.events for p in summary.shards)


@pytest.mark.slow
def test_the_cli_runs_on_a_deployed_cluster(tmp_path, deployed_cluster):
    out = subprocess.run(
        [sys.executable, "-m", "doge_datagen", "demo", "--sink", f"jsonl:{tmp_path / 'e.jsonl'}",
         "--dask", deployed_cluster["address"], "--subjects", "200", "--seed", "48",
         "--timestamp-start", "0", "--no-progress"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    # Without --workers: one shard per worker thread (two workers of one thread).
    assert len(glob.glob(str(tmp_path / "e-*-of-00002.jsonl"))) == 2
    assert jsonl_rows(str(tmp_path / "e-*-of-*.jsonl")) == single_run_rows(
        tmp_path, "--subjects", "200", "--seed", "48"
    )
    assert any(line.strip().startswith("total") for line in out.stdout.splitlines())


@pytest.mark.slow
def test_a_dask_worker_killed_mid_run_fails_the_run_with_the_shards_name(
    tmp_path, deployed_cluster
):
    path = tmp_path / "events.jsonl"
    pids = tmp_path / "pids"
    pids.mkdir()
    build = functools.partial(
        shard_models.leaving_pid, str(pids), "--sink", f"jsonl:{path}", "--subjects", "2000",
        "--ticks", "100000", "--seed", "49",
    )  # fmt: skip
    outcome: List[Any] = []

    def run() -> None:
        try:
            outcome.append(
                run_sharded(
                    build, shards=2, backend="dask", address=deployed_cluster["address"],
                    speed=600.0,
                )
            )  # fmt: skip
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    victim = pids / "1.pid"
    deadline = time.monotonic() + 60
    while not victim.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)
    os.kill(int(victim.read_text()), signal.SIGKILL)
    runner.join(timeout=180)
    assert not runner.is_alive(), "the run hung after a Dask worker was killed"
    (error,) = outcome
    assert isinstance(error, ShardError), error
    assert error.shard == 1 and "shard 1 of 2 (subjects 1000..1999)" in str(error)
    assert "died" in str(error) or "ended" in str(error)
    summary = error.summary
    shard_zero = str(part_path(path, split(2000, 2)[0]))
    assert summary.shards[0].stopped
    assert line_count(shard_zero) == summary.shards[0].events > 0
    # The cluster lives on: the killed worker's nanny starts it again.
    with distributed.Client(deployed_cluster["address"], timeout=60) as client:
        client.wait_for_workers(2, timeout=60)


@pytest.mark.slow
def test_the_cli_runs_on_a_local_dask_cluster(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "doge_datagen", "demo", "--sink", f"jsonl:{tmp_path / 'e.jsonl'}",
         "--dask", "local", "--workers", "2", "--subjects", "200", "--seed", "50",
         "--timestamp-start", "0", "--no-progress"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert len(glob.glob(str(tmp_path / "e-*-of-00002.jsonl"))) == 2
    assert jsonl_rows(str(tmp_path / "e-*-of-*.jsonl")) == single_run_rows(
        tmp_path, "--subjects", "200", "--seed", "50"
    )


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_a_signal_to_the_group_of_a_local_dask_run_stops_it_gracefully(tmp_path, signum):
    """A terminal's Ctrl-C (or ``kill -TERM -PGID``) reaches the LocalCluster's worker
    processes too, which are in the command's group: they must not shut down under the
    shards the coordinator is stopping, so that every shard's result is read and counted."""
    path = tmp_path / "ev.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "doge_datagen", "demo", "--sink", f"jsonl:{path}",
         "--dask", "local", "--workers", "2", "--subjects", "2000", "--ticks", "100000",
         "--speed", "600", "--seed", "9", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        start_new_session=True,  # its own process group, as a terminal's job has
    )  # fmt: skip
    parts = [str(part_path(path, shard)) for shard in split(2000, 2)]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(
        os.path.exists(p) and os.path.getsize(p) > 0 for p in parts
    ):
        time.sleep(0.2)
    os.killpg(process.pid, signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr
    assert "(stopped)" in stdout
    word = "interrupted" if signum == signal.SIGINT else "terminated"
    assert stderr.strip().splitlines()[-1] == f"doge-datagen: {word}", stderr
    (total,) = [line.split() for line in stdout.splitlines() if line.strip().startswith("total")]
    assert int(total[2]) == sum(line_count(p) for p in parts) > 0
    for part in parts:
        assert Path(part).read_text().endswith("\n")  # no line cut short
