"""Sharded runs (``doge_datagen.distributed.run_sharded``, ``--workers``, ``--dask``) write the
events of a single run: exact multisets, read back from JSON Lines parts, one PostgreSQL table
and one Kafka topic; faults name their shard, hang nothing and close every sink.

The processes backend runs here; the Dask backend runs on a LocalCluster and on a
``dask scheduler`` with two ``dask worker`` processes started as a user would (see
``tests/sharding/test_distributed_dask.py``).
"""

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
from typing import Any, List, Tuple
from typing import Counter as CounterType

import pytest
from support import shard_models
from support.kafka_fixtures import create_topic, read_all

from doge_datagen import RunSummary
from doge_datagen.core.shards import Shard, part_path, split
from doge_datagen.distributed.sharded import run_sharded
from doge_datagen.engine.pacing import LagStats
from doge_datagen.errors import ConfigurationError, ShardError

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ("timestamp", "user_id", "balance", "loan_balance", "event", "from_state", "to_state")
Row = Tuple[Any, ...]


def rows_of_lines(lines: List[str]) -> CounterType[Row]:
    return Counter(tuple(json.loads(line)[c] for c in COLUMNS) for line in lines)


def jsonl_rows(pattern: str) -> CounterType[Row]:
    lines: List[str] = []
    for path in sorted(glob.glob(pattern)):
        lines.extend(Path(path).read_text().splitlines())
    return rows_of_lines(lines)


def single_run_rows(tmp_path: Path, *argv: str) -> CounterType[Row]:
    """The events of the same demo run in this process, as the reference."""
    path = tmp_path / "single.jsonl"
    shard_models.demo("--sink", f"jsonl:{path}", *argv).start()
    return jsonl_rows(str(path))


def line_count(path: str) -> int:
    return len(Path(path).read_text().splitlines())


# -- the pieces ------------------------------------------------------------------------------


def test_split_gives_contiguous_ranges_covering_every_subject():
    for subjects, count in ((10, 3), (7, 7), (3, 5), (1000, 7), (0, 2)):
        parts = split(subjects, count)
        assert [p.index for p in parts] == list(range(count))
        assert parts[0].start == 0 and parts[-1].stop == subjects
        assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))
        sizes = [p.stop - p.start for p in parts]
        assert max(sizes) - min(sizes) <= 1


def test_a_part_is_named_stem_k_of_n_suffix():
    shard = Shard(1, 3, 10, 20)
    assert part_path("out/events.jsonl", shard) == Path("out/events-00001-of-00003.jsonl")
    assert part_path("/x/y.tar.csv", shard).name == "y.tar-00001-of-00003.csv"
    assert part_path("plain", Shard(0, 12, 0, 1)).name == "plain-00000-of-00012"


def test_merge_adds_counts_combines_lag_and_keeps_the_parts():
    def part(events: int, lag: LagStats) -> RunSummary:
        return RunSummary(
            seed=3,
            subjects=10,
            ticks=5,
            events=events,
            vetoed=1,
            elapsed_seconds=events / 10,
            events_per_trigger={"a": events, "b": 0},
            events_per_sink={"jsonl:x": events},
            delivery={"jsonl:x": {"delivered": events, "failed": 0}},
            lag=lag,
        )

    slow = LagStats(ticks=10, median=0.5, p99=2.0, max=3.0, mean=0.6, late_ticks=4, drift=1.0)
    fast = LagStats(ticks=30, median=0.1, p99=0.2, max=0.3, mean=0.1, late_ticks=1, drift=0.0)
    merged = RunSummary.merge([part(20, slow), part(40, fast)], elapsed_seconds=7.0)
    assert (merged.events, merged.vetoed, merged.subjects) == (60, 2, 20)
    assert merged.events_per_trigger == {"a": 60, "b": 0}
    assert merged.delivery == {"jsonl:x": {"delivered": 60, "failed": 0}}
    assert merged.elapsed_seconds == 7.0 and len(merged.shards) == 2
    assert merged.lag is not None
    assert (merged.lag.ticks, merged.lag.late_ticks, merged.lag.max) == (40, 5, 3.0)
    assert merged.lag.mean == pytest.approx((0.6 * 10 + 0.1 * 30) / 40)
    assert merged.lag.p99 == 2.0 and merged.lag.median == 0.1


def test_a_merged_summary_says_stopped_when_any_part_was():
    """One shard stopped early (a failing shard stops the others; a lost one is counted as
    stopped) makes the whole run stopped, even when the other parts ran to their end."""

    def part(stopped: bool) -> RunSummary:
        return RunSummary(seed=1, subjects=5, ticks=10, events=7, stopped=stopped)

    for flags in ([False, True, False], [True, False], [False, False, True]):
        merged = RunSummary.merge([part(f) for f in flags])
        assert merged.stopped, flags
        assert [p.stopped for p in merged.shards] == flags
    assert not RunSummary.merge([part(False), part(False)]).stopped
    assert RunSummary.merge([part(True), part(True)]).stopped


def test_bad_arguments_are_refused_before_anything_runs(tmp_path):
    build = functools.partial(shard_models.memory, 10, 1)
    with pytest.raises(ConfigurationError, match="backend"):
        run_sharded(build, shards=2, backend="threads")
    with pytest.raises(ConfigurationError, match="address"):
        run_sharded(build, shards=2, address="tcp://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match="shards"):
        run_sharded(build, shards=0)
    with pytest.raises(ConfigurationError, match="top level of a module"):
        run_sharded(lambda: shard_models.memory(10, 1), shards=2)
    with pytest.raises(ConfigurationError, match="no function"):
        run_sharded("support.shard_models:nothing_here", shards=2)


def test_the_dask_backend_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'doge-datagen\[dask\]'"):
        run_sharded(functools.partial(shard_models.memory, 10, 1), shards=2, backend="dask")


# -- exactness through processes -------------------------------------------------------------


@pytest.fixture(params=["as this process is", "from the server"])
def coordinator(request):
    """How this process's shards start: as it is (copies of it, ``fork``, where it has a single
    thread; a whole test run's process may have more), or from the workers' server, with a
    second thread made here as a client library's would be. Shards that are copies of a
    command are tested through the command line (``test_the_command_copies_itself...``)."""
    if request.param == "as this process is":
        yield
        return
    release = threading.Event()
    helper = threading.Thread(target=release.wait, name="a client library's thread")
    helper.start()
    try:
        yield
    finally:
        release.set()
        helper.join()


@pytest.mark.parametrize(("seed", "shards"), [(11, 1), (12, 2), (13, 3), (14, 7), (15, 2)])
def test_processes_write_the_events_of_one_run_into_jsonl_parts(
    tmp_path, seed, shards, coordinator
):
    subjects = 120 if shards == 7 else 300
    argv = ("--subjects", str(subjects), "--seed", str(seed))
    path = tmp_path / "events.jsonl"
    build = functools.partial(shard_models.demo, "--sink", f"jsonl:{path}", *argv)
    summary = run_sharded(build, shards=shards)
    parts = sorted(glob.glob(str(tmp_path / "events-*-of-*.jsonl")))
    assert [Path(p).name for p in parts] == [
        f"events-{k:05d}-of-{shards:05d}.jsonl" for k in range(shards)
    ]
    assert not path.exists()
    expected = single_run_rows(tmp_path, *argv)
    assert sum(expected.values()) > subjects
    assert jsonl_rows(str(tmp_path / "events-*-of-*.jsonl")) == expected
    assert summary.events == sum(expected.values()) and len(summary.shards) == shards
    # Each shard's part holds its own subjects, as many lines as its summary says.
    for shard, part, part_summary in zip(split(subjects, shards), parts, summary.shards):
        users = {json.loads(line)["user_id"] for line in Path(part).read_text().splitlines()}
        assert users <= set(range(shard.start, shard.stop))
        assert line_count(part) == part_summary.events
        assert part_summary.delivery[f"jsonl:{path}"]["delivered"] == part_summary.events


def test_one_seed_and_one_first_tick_are_resolved_for_every_shard(tmp_path):
    path = tmp_path / "events.jsonl"
    summary = run_sharded(functools.partial(shard_models.unseeded, str(path), 240), shards=3)
    assert summary.seed is not None and summary.timestamp_start is not None
    assert {(s.seed, s.timestamp_start) for s in summary.shards} == {
        (summary.seed, summary.timestamp_start)
    }
    single_path = tmp_path / "single.jsonl"
    single = shard_models.unseeded(str(single_path), 240)
    single.seed, single.timestamp_start = summary.seed, summary.timestamp_start
    single.start()
    expected = jsonl_rows(str(single_path))
    assert sum(expected.values()) > 240
    assert jsonl_rows(str(tmp_path / "events-*-of-*.jsonl")) == expected


def test_a_module_function_string_and_the_overrides(tmp_path):
    summary = run_sharded(
        "support.shard_models:counting", shards=2, subjects_num=300, ticks_num=700, seed=5
    )
    reference = shard_models.counting()
    reference.subjects_num, reference.ticks_num, reference.seed = 300, 700, 5
    expected = reference.start()
    assert summary.seed == 5
    assert summary.events == expected.events > 300
    assert summary.events_per_trigger == expected.events_per_trigger
    assert summary.events_per_sink == expected.events_per_sink
    assert [s.events for s in summary.shards] != [0, 0]
    assert sum(s.events for s in summary.shards) == summary.events
    assert shard_models.counting().start().events != summary.events  # the overrides counted


def test_each_run_gives_its_shards_the_environment_it_has_as_it_starts(
    tmp_path, monkeypatch, coordinator
):
    """The workers' server outlives a run and serves the next ones in this process; shards
    forked from it get the coordinator's environment of their own run, not the server's. Shards
    that are copies of the coordinator have it anyway."""
    summaries = {}
    for name, seed in (("first", 1), ("second", 2)):
        (tmp_path / name).mkdir()
        monkeypatch.setenv("DOGE_TEST_OUT", str(tmp_path / name))
        summaries[name] = run_sharded(shard_models.placed_by_environment, shards=2, seed=seed)
    for name, summary in summaries.items():
        parts = glob.glob(str(tmp_path / name / "ev-*-of-00002.jsonl"))
        assert len(parts) == 2
        assert sum(line_count(part) for part in parts) == summary.events > 0


def test_processes_write_one_postgresql_table(tmp_path, postgres_db):
    table = postgres_db.table_name()
    postgres_db.drop_at_end(table)
    argv = ("--subjects", "250", "--seed", "21")
    url = f"{postgres_db.url}?table={table}"
    summary = run_sharded(functools.partial(shard_models.demo, "--sink", url, *argv), shards=3)
    written = Counter(tuple(r[c] for c in COLUMNS) for r in fetch(postgres_db, table))
    assert written == single_run_rows(tmp_path, *argv)
    assert summary.events == sum(written.values())
    assert summary.delivery[summary_label(summary)]["delivered"] == summary.events


def fetch(db: Any, table: str) -> List[dict]:
    names = ", ".join(db.quote(c) for c in COLUMNS)
    with db.engine.connect() as conn:
        return [
            dict(zip(COLUMNS, row))
            for row in conn.exec_driver_sql(f"SELECT {names} FROM {db.quote(table)}")
        ]


def summary_label(summary: RunSummary) -> str:
    (label,) = summary.delivery
    return label


def test_processes_write_one_kafka_topic_keyed_by_user(tmp_path, kafka_bootstrap):
    topic = create_topic(kafka_bootstrap, partitions=3)
    argv = ("--subjects", "200", "--seed", "31")
    url = f"kafka://{kafka_bootstrap}/{topic}"
    summary = run_sharded(functools.partial(shard_models.demo, "--sink", url, *argv), shards=2)
    records = read_all(kafka_bootstrap, topic, expected=summary.events)
    assert rows_of_lines([r.value.decode() for r in records]) == single_run_rows(tmp_path, *argv)
    assert all(r.key.decode() == str(json.loads(r.value)["user_id"]) for r in records)
    # Each user's records are in one partition, in the order of their ticks.
    partitions: dict = {}
    times: dict = {}
    for record in records:  # read_all: partition by partition, each in offset order
        user = record.key.decode()
        partitions.setdefault(user, set()).add(record.partition)
        times.setdefault(user, []).append(json.loads(record.value)["timestamp"])
    assert all(len(p) == 1 for p in partitions.values())
    assert all(t == sorted(t) for t in times.values())
    assert len({p for ps in partitions.values() for p in ps}) == 3


def test_paced_shards_keep_one_schedule_from_one_origin(tmp_path):
    """A shard that starts 2 s late is 2 s behind the run's schedule (and catches up), not on
    a schedule of its own: the shards share the coordinator's wall-clock start."""
    build = functools.partial(
        shard_models.late, 1, 2.0, "--sink", f"jsonl:{tmp_path / 'e.jsonl'}", "--subjects",
        "400", "--ticks", "40", "--seed", "3",
    )  # fmt: skip
    summary = run_sharded(build, shards=2, speed=600.0)  # 40 minutes in 4 s
    on_time, late = (part.lag for part in summary.shards)
    assert on_time is not None and late is not None
    assert late.max > 1.0 > on_time.max
    assert summary.lag is not None and summary.lag.max == late.max
    assert summary.lag.ticks == on_time.ticks + late.ticks


# -- faults ----------------------------------------------------------------------------------


def test_a_failing_callback_names_its_shard_and_the_others_close_their_sinks(tmp_path):
    path = tmp_path / "events.jsonl"
    # Subject 150 is in shard 1 of 3 (subjects 100..199).
    build = functools.partial(
        shard_models.failing, 150, "--sink", f"jsonl:{path}", "--subjects", "300", "--seed", "5"
    )
    began = time.monotonic()
    with pytest.raises(ShardError) as caught:
        run_sharded(build, shards=3)
    assert time.monotonic() - began < 120  # it ended: no shard was left waiting
    error = caught.value
    assert error.shard == 1 and set(error.failures) == {1}
    assert "shard 1 of 3 (subjects 100..199)" in str(error)
    assert "user 150 cannot log in" in str(error) and "ZeroDivisionError" in str(error)
    assert isinstance(error.__cause__, ZeroDivisionError)
    summary = error.summary
    parts = [str(part_path(path, shard)) for shard in split(300, 3)]
    # Every shard's file was flushed and closed: its lines are what its summary counted.
    for part, part_summary in zip(parts, summary.shards):
        assert line_count(part) == part_summary.events
    assert summary.events == sum(line_count(p) for p in parts)
    assert summary.shards[1].events < summary.shards[0].events


def test_a_run_whose_shard_fails_mid_run_says_stopped(tmp_path):
    """Shard 1 fails at its tick 922 of ten million; the coordinator stops the other two long
    before their end. The failing part did not stop (it failed), the others did: the run's
    summary, carried by the ShardError, says stopped."""
    build = functools.partial(
        shard_models.failing, 150, "--sink", f"jsonl:{tmp_path / 'events.jsonl'}",
        "--subjects", "300", "--seed", "5", "--ticks", "10000000",
    )  # fmt: skip
    with pytest.raises(ShardError) as caught:
        run_sharded(build, shards=3)
    summary = caught.value.summary
    assert [part.stopped for part in summary.shards] == [True, False, True]
    assert summary.stopped and summary.ticks < 10_000_000


FAILING_MODEL = """
from doge_datagen import DataOnlineGenerator, FileSink

def build():
    def login(subject, transition):
        if subject["n"] == 150:
            raise ZeroDivisionError("user 150 cannot log in")
        return True

    datagen = DataOnlineGenerator(["a", "b"], "a", lambda i: {"n": i}, 300, 1000, 200, seed=5)
    sink = FileSink(PATH, lambda ts, subject, t: {"ts": ts, "n": subject["n"]})
    datagen.add_transition("login", "a", "b", 10, login, [sink])
    datagen.add_transition("logout", "b", "a", 10, None, [sink])
    return datagen
"""


def test_the_command_reports_a_failed_shard_in_a_line_and_its_traceback_with_debug(tmp_path):
    model = tmp_path / "failing_model.py"
    model.write_text(FAILING_MODEL.replace("PATH", repr(str(tmp_path / "e.jsonl"))))
    argv = ("run", f"{model}:build", "--workers", "3", "--no-progress")
    out = cli(*argv)
    assert out.returncode == 1, out.stderr
    assert "shard 1 of 3 (subjects 100..199) failed" in out.stderr
    assert "user 150 cannot log in" in out.stderr
    assert "Traceback" not in out.stderr and 'File "' not in out.stderr, out.stderr
    debug = cli(*argv, "--debug")
    assert debug.returncode == 1
    assert "traceback of shard 1 of 3" in debug.stderr and 'File "' in debug.stderr


def test_a_killed_shard_process_fails_the_run_with_its_name(tmp_path):
    path = tmp_path / "events.jsonl"
    pids = tmp_path / "pids"
    pids.mkdir()
    build = functools.partial(
        shard_models.leaving_pid,
        str(pids),
        "--sink",
        f"jsonl:{path}",
        "--subjects",
        "3000",
        "--ticks",
        "100000",
        "--seed",
        "6",
    )
    outcome: List[Any] = []

    def run() -> None:  # in a thread: the coordinator's signal handlers stay the test's
        try:
            outcome.append(run_sharded(build, shards=3, speed=600.0))
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    victim = pids / "1.pid"
    deadline = time.monotonic() + 60
    while not victim.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)  # let it write a while
    os.kill(int(victim.read_text()), signal.SIGKILL)
    runner.join(timeout=120)
    assert not runner.is_alive(), "the run hung after a shard's process was killed"
    (error,) = outcome
    assert isinstance(error, ShardError), error
    assert error.shard == 1 and "shard 1 of 3 (subjects 1000..1999)" in str(error)
    assert "signal 9" in str(error)
    parts = [str(part_path(path, shard)) for shard in split(3000, 3)]
    summary = error.summary
    for k in (0, 2):  # stopped, flushed and closed: the file holds what the summary counts
        assert summary.shards[k].stopped
        assert line_count(parts[k]) == summary.shards[k].events > 0
    # What the killed shard wrote before it died is a part of its own events.
    users = {json.loads(line)["user_id"] for line in Path(parts[1]).read_text().splitlines()}
    assert users <= set(range(1000, 2000))


# -- the command line ------------------------------------------------------------------------


def cli(*argv: str, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "doge_datagen", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=kwargs.pop("cwd", ROOT),
        **kwargs,
    )


def test_cli_workers_writes_parts_and_shows_each_shard_and_the_total(tmp_path):
    argv = ("--subjects", "900", "--seed", "8", "--timestamp-start", "0", "--no-progress")
    out = cli("demo", "--sink", f"jsonl:{tmp_path / 'ev.jsonl'}", "--workers", "3", *argv)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    shard_rows = [line.split() for line in lines if line.strip().split(" ")[0] in "012"]
    assert [row[0] for row in shard_rows if row[1].count("..")] == ["0", "1", "2"]
    assert [row[1] for row in shard_rows if row[1].count("..")] == [
        "0..299",
        "300..599",
        "600..899",
    ]
    (total,) = [line.split() for line in lines if line.strip().startswith("total")]
    events = sum(line_count(p) for p in glob.glob(str(tmp_path / "ev-*-of-00003.jsonl")))
    assert int(total[2]) == events
    assert jsonl_rows(str(tmp_path / "ev-*-of-*.jsonl")) == single_run_rows(
        tmp_path, "--subjects", "900", "--seed", "8"
    )


@pytest.mark.parametrize(
    ("signum", "to_group", "forever"),
    [
        (signal.SIGINT, False, True),
        (signal.SIGTERM, False, True),
        (signal.SIGINT, True, True),
        (signal.SIGTERM, True, True),
        (signal.SIGINT, True, False),
        (signal.SIGTERM, False, False),
    ],
    ids=[
        "SIGINT",
        "SIGTERM",
        "Ctrl-C to the process group",
        "SIGTERM to the process group",
        "Ctrl-C, tick limit",
        "SIGTERM, tick limit",
    ],
)
def test_a_signal_to_the_coordinator_stops_every_shard_gracefully(
    tmp_path, signum, to_group, forever
):
    """Every shard stops and closes its sinks, and the summary counts what the parts hold;
    the status is that of a run without workers: 0 for a run without end, 130 or 143 for
    one that a signal cut short of its tick limit. A signal to the whole group (a terminal's
    Ctrl-C, ``kill -TERM -PGID``, a service manager's stop) reaches the workers' server as
    well, which must outlive it."""
    path = tmp_path / "ev.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "doge_datagen",
            "demo",
            "--sink",
            f"jsonl:{path}",
            "--workers",
            "2",
            "--subjects",
            "2000",
            *(["--forever"] if forever else ["--ticks", "100000"]),
            "--speed",
            "600",
            "--seed",
            "9",
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=to_group,  # its own process group, as a terminal's job has
    )
    parts = [str(part_path(path, shard)) for shard in split(2000, 2)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(
        os.path.exists(p) and os.path.getsize(p) > 0 for p in parts
    ):
        time.sleep(0.2)
    if to_group:  # what Ctrl-C in a terminal does: the coordinator and every shard get it
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == (0 if forever else 128 + signum), stderr
    assert "(stopped)" in stdout
    assert "lost" not in stderr and "Traceback" not in stderr, stderr
    if not forever:
        word = "interrupted" if signum == signal.SIGINT else "terminated"
        assert stderr.strip().splitlines()[-1] == f"doge-datagen: {word}", stderr
    (total,) = [line.split() for line in stdout.splitlines() if line.strip().startswith("total")]
    assert int(total[2]) == sum(line_count(p) for p in parts) > 0


def test_cli_progress_of_a_sharded_run_goes_to_stderr(tmp_path):
    out = cli(
        "demo", "--sink", f"jsonl:{tmp_path / 'p.jsonl'}", "--workers", "2", "--subjects",
        "3000", "--ticks", "3000", "--progress", "--seed", "1",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "events" in out.stderr and "tick" in out.stderr
    assert "total" in out.stdout


def test_cli_refuses_what_a_sharded_run_cannot_do(tmp_path):
    out = cli("demo", "--workers", "2", "--rate", "100", "--sink", f"jsonl:{tmp_path / 'x'}")
    assert out.returncode != 0 and "--rate is not available with --workers" in out.stderr
    out = cli("demo", "--workers", "0")
    assert out.returncode == 2 and "at least 1" in out.stderr


# -- the workers' server ----------------------------------------------------------------------

NO_SERVER = """
import sys
from doge_datagen.distributed import process_server

seen = []
start = process_server.start


def spy(modules=()):
    seen.append(list(modules))
    start(modules)


if __name__ == "__main__":  # a shard's process imports this module again
    process_server.start = spy
    sys.argv = ["doge-datagen", *sys.argv[1:]]
    from doge_datagen.__main__ import main

    status = main()
    print("STARTED", seen, file=sys.stderr)
    sys.exit(status)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shards are copies on Linux")
@pytest.mark.parametrize(("seed", "workers"), [(4, 1), (5, 2), (6, 3), (7, 7)])
def test_the_command_copies_itself_for_its_shards_and_starts_no_server(tmp_path, seed, workers):
    script = tmp_path / "no_server.py"
    script.write_text(NO_SERVER)
    subjects = "120" if workers == 7 else "300"
    argv = ("--subjects", subjects, "--ticks", "30", "--seed", str(seed), "--timestamp-start", "0")
    out = subprocess.run(
        [sys.executable, str(script), "demo", "--sink", f"jsonl:{tmp_path / 'ev.jsonl'}",
         "--workers", str(workers), "--no-progress", *argv],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert eval(out.stderr.split("STARTED ", 1)[1]) == []  # noqa: S307 - our own repr
    parts = glob.glob(str(tmp_path / f"ev-*-of-{workers:05d}.jsonl"))
    assert len(parts) == workers
    expected = single_run_rows(tmp_path, *argv)
    assert jsonl_rows(str(tmp_path / "ev-*-of-*.jsonl")) == expected and sum(expected.values())


LOGGED_MODEL = """
import os
import sys

import logged_model_helper  # beside this file: the loader puts its directory on sys.path
from doge_datagen import CountingSink, DataOnlineGenerator


def log(what):
    with open(os.environ["MODEL_LOG"], "a") as out:
        out.write(f"{what} {os.getpid()}\\n")


import multiprocessing

with open("/proc/self/cmdline", "rb") as cmdline:  # a shard, forked from the server, has its
    in_server = b"forkserver" in cmdline.read()  # command line, but a name of its own
in_server = in_server and multiprocessing.current_process().name == "MainProcess"
if in_server and os.environ.get("FAIL_IN_SERVER"):
    raise RuntimeError("this model cannot load in the workers' server")
log("load")
if os.environ.get("START_A_THREAD"):  # as a client library made at the top level would
    import threading
    import time

    CLIENT = threading.Thread(target=time.sleep, args=(3600,), daemon=True)
    CLIENT.start()


def build():
    log("build" if "CLIENT" not in globals() or CLIENT.is_alive() else "build-without-thread")
    if os.environ.get("START_A_THREAD_IN_BUILD"):  # the coordinator then has a second thread
        import threading
        import time

        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
    factory = logged_model_helper.Factory()
    datagen = DataOnlineGenerator(["a", "b"], "a", factory, 40, 1000, 30, seed=5)
    sink = CountingSink()
    datagen.add_transition("go", "a", "b", 30, event_sinks=[sink])
    datagen.add_transition("back", "b", "a", 30, event_sinks=[sink])
    return datagen
"""

LOGGED_MODEL_HELPER = """
class Factory:
    def create(self):
        return object()
"""


def logged_model(tmp_path: Path) -> Tuple[Path, dict]:
    (tmp_path / "logged_model.py").write_text(LOGGED_MODEL)
    (tmp_path / "logged_model_helper.py").write_text(LOGGED_MODEL_HELPER)
    log = tmp_path / "model.log"
    return log, dict(os.environ, MODEL_LOG=str(log))


def pids_of(log: Path) -> Tuple[List[int], List[int]]:
    """The processes that loaded the model's file, and those that built its model."""
    entries = [line.split() for line in log.read_text().splitlines()]
    return (
        [int(pid) for what, pid in entries if what == "load"],
        [int(pid) for what, pid in entries if what == "build"],
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/cmdline")
@pytest.mark.parametrize("spec", ["logged_model.py:build", "logged_model:build"])
def test_the_workers_server_loads_the_model_once_for_every_shard(tmp_path, spec):
    log, env = logged_model(tmp_path)
    env["START_A_THREAD_IN_BUILD"] = "1"  # the command cannot be copied: the server forks
    out = cli("run", spec, "--workers", "2", "--no-progress", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    loads, builds = pids_of(log)
    assert len(loads) == len(set(loads)) == 2  # the command, and the server: once each
    assert len(set(builds) - set(loads)) == 2  # two shards, which did not load it themselves
    assert len(set(loads) - set(builds)) == 1  # the server, which builds nothing
    single = cli("run", spec, "--no-progress", cwd=tmp_path, env=env)
    assert out.stdout.split()[0] == single.stdout.split()[0] != "0"  # the same events


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shards are copies on Linux")
@pytest.mark.parametrize("spec", ["logged_model.py:build", "logged_model:build"])
def test_the_shards_copied_from_the_command_do_not_load_the_model_again(tmp_path, spec):
    log, env = logged_model(tmp_path)
    out = cli("run", spec, "--workers", "2", "--no-progress", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    loads, builds = pids_of(log)
    assert len(loads) == 1  # the command; no server, and the shards have it loaded
    assert len(set(builds)) == 3 and loads[0] in builds  # the command and two shards
    single = cli("run", spec, "--no-progress", cwd=tmp_path, env=env)
    assert out.stdout.split()[0] == single.stdout.split()[0] != "0"  # the same events


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/cmdline")
@pytest.mark.parametrize(
    "how",
    [
        "FAIL_IN_SERVER",  # its loading raises there
        "START_A_THREAD",  # a forked shard would get the model's objects without their thread
    ],
)
def test_a_model_the_server_cannot_keep_is_loaded_by_each_shard(tmp_path, how):
    log, env = logged_model(tmp_path)
    env[how] = "1"
    env["START_A_THREAD_IN_BUILD"] = "1"  # the command cannot be copied: the server forks
    out = cli(
        "run", "logged_model.py:build", "--workers", "2", "--no-progress", cwd=tmp_path, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "build-without-thread" not in log.read_text()
    loads, builds = pids_of(log)
    assert len(set(builds)) == 3  # the command and two shards ...
    assert set(builds) <= set(loads)  # ... each of which loaded the file itself
    single = cli("run", "logged_model.py:build", "--no-progress", cwd=tmp_path, env=env)
    assert out.stdout.split()[0] == single.stdout.split()[0] != "0"  # the same events


SERVER_CHILDREN = """
import functools, os, sys, time

sys.path.insert(0, "tests")
from support import shard_models
from doge_datagen.distributed.sharded import run_sharded, start_process_server


def children():
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().replace(b"\\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and "forkserver" in command:
            found[int(pid)] = command
    return found


if __name__ == "__main__":
    import threading

    # A second thread, as a client library's would be: this process is not copied for its
    # shards, the server forks them.
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
    build = functools.partial(shard_models.memory, 50, 3)
    start_process_server(build)  # returns at once; the server starts in the background
    deadline = time.monotonic() + 60
    while not children() and time.monotonic() < deadline:
        time.sleep(0.05)
    before = children()
    summary = run_sharded(build, shards=2)
    print(repr((before, children(), summary.events)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table in /proc")
def test_the_workers_server_starts_in_the_background_and_later_runs_reuse_it(tmp_path):
    script = tmp_path / "children.py"
    script.write_text(SERVER_CHILDREN)
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    before, after, events = eval(out.stdout)  # noqa: S307 - our own repr
    (server,) = before.values()
    for module in ("doge_datagen.distributed.sharded", "doge_datagen.distributed._server_preload"):
        assert repr(module) in server, (module, server)
    assert after == before  # the run's shards were forked from that same server
    assert events > 0
