"""Checkpoints and resumed runs: a run stopped (or failing) after a checkpoint and resumed from
it leaves the JSON Lines file byte for byte as the uninterrupted run does, in both loops, for
the banking demo, its profiled variant (day and week) and a model with arrivals."""

import os
import pickle
import re
import signal
import subprocess
import sys
import threading

import pytest
from support.loops import CountingLoop

from doge_datagen import FileSink
from doge_datagen.demo import banking_generator
from doge_datagen.engine import HAS_SPEEDUPS
from doge_datagen.engine import checkpoint as checkpoints
from doge_datagen.engine import loop as engine
from doge_datagen.errors import ConfigurationError

SUBJECTS = 1000
TICKS = 800


def row(timestamp, subject, transition):
    return {
        "ts": timestamp,
        "user": subject.user_id,
        "event": transition.trigger,
        "balance": subject.balance,
        "loan": subject.loan_balance,
    }


def build(path, kind, **options):
    """The model of ``kind`` writing every event to the JSON Lines (or CSV) file ``path``."""
    sink = FileSink(path, row, buffer_lines=50, **options)
    datagen = banking_generator(
        sink,
        sink,
        sink,
        sink,
        subjects_num=SUBJECTS,
        ticks_num=TICKS,
        seed=11,
        day=kind == "profiled",
    )
    if kind == "arrivals":
        datagen.arrivals = 0.4
    return datagen


def stop_at(datagen, events, error=None):
    """Stop the run (or raise ``error`` in it) at its ``events``-th 'logout' event."""
    seen = [0]
    transition = next(t for t in datagen.transitions if t.trigger == "logout")

    def callback(subject, transition):
        seen[0] += 1
        if seen[0] == events:
            if error is not None:
                raise error
            datagen.stop()
        return True

    transition.action_callback = callback


@pytest.fixture(params=["c", "python"])
def loop(request, monkeypatch):
    """Which loop runs: the C one (counted, so that a test knows it ran) or the Python one."""
    if request.param == "c":
        if not HAS_SPEEDUPS:
            pytest.skip("the C extension is not built here")
        counting = CountingLoop(engine._speedups)
        monkeypatch.setattr(engine, "_speedups", counting)
        return counting
    monkeypatch.setattr(engine, "_speedups", None)
    return None


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The uninterrupted run's bytes for each model (the same in both loops), and its
    summary as ``seen[kind, "summary"]``."""
    seen = {}
    for kind in ("banking", "profiled", "arrivals"):
        path = tmp_path_factory.mktemp("full") / "events.jsonl"
        seen[kind, "summary"] = build(path, kind).start()
        seen[kind] = path.read_bytes()
    return seen


KINDS = ["banking", "profiled", "arrivals"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stops", [[40], [7, 200, 201]])
def test_a_stopped_run_resumed_from_its_checkpoint_writes_the_uninterrupted_runs_bytes(
    tmp_path, loop, uninterrupted, kind, stops
):
    path, saved = tmp_path / "events.jsonl", tmp_path / "run.ckpt"
    datagen = build(path, kind)
    stop_at(datagen, stops[0])
    first = datagen.start(checkpoint=saved, checkpoint_every=None)
    assert first.stopped and first.ticks < TICKS
    done = first.ticks
    for events in stops[1:]:
        datagen = build(path, kind)
        stop_at(datagen, events)
        again = datagen.start(resume=saved, checkpoint=saved, checkpoint_every=None)
        assert again.stopped and done <= again.ticks < TICKS
        done = again.ticks
    assert path.read_bytes() != uninterrupted[kind]
    # Lines written after the checkpoint, lost with the run that wrote them, go.
    with open(path, "ab") as out:
        out.write(b'{"ts": 1, "user": 7, "event": "lo')
    summary = build(path, kind).start(resume=saved)
    assert summary.ticks == TICKS and not summary.stopped
    assert path.read_bytes() == uninterrupted[kind]
    # The summary counts the whole run's events, from tick 0.
    whole = uninterrupted[kind, "summary"]
    assert summary.events_per_trigger == whole.events_per_trigger
    assert summary.vetoed == whole.vetoed and summary.arrivals == whole.arrivals
    if loop is not None:
        assert loop.runs >= 2


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_that_fails_resumes_from_its_last_periodic_checkpoint(
    tmp_path, loop, uninterrupted, kind
):
    path, saved = tmp_path / "events.jsonl", tmp_path / "run.ckpt"
    datagen = build(path, kind)
    stop_at(datagen, 300, error=RuntimeError("the machine went away"))
    # A checkpoint at every busy tick (the C loop returns to Python for each).
    with pytest.raises(RuntimeError, match="went away"):
        datagen.start(checkpoint=saved, checkpoint_every=1e-9)
    state = checkpoints.load(saved, checkpoints.fingerprint(build(path, kind), 0, SUBJECTS))
    assert 0 < state["tick"] < TICKS
    # The file holds at least what the checkpoint says (and the lines of the failing tick).
    assert path.stat().st_size >= state["sinks"][0]["offset"] > 0
    if loop is not None:
        assert loop.runs > 10  # paused for checkpoints, not one call
    build(path, kind).start(resume=saved)
    assert path.read_bytes() == uninterrupted[kind]


def test_checkpoints_at_every_busy_tick_leave_the_events_as_they_were(
    tmp_path, loop, uninterrupted
):
    path, saved = tmp_path / "events.jsonl", tmp_path / "run.ckpt"
    # Left by a run killed while it wrote a checkpoint: removed.
    (tmp_path / ".run.ckpt.12345.tmp").write_bytes(b"DOGECKP")
    summary = build(path, "arrivals").start(checkpoint=saved, checkpoint_every=1e-9)
    assert path.read_bytes() == uninterrupted["arrivals"]
    assert summary.ticks == TICKS
    state = checkpoints.load(saved, checkpoints.fingerprint(build(path, "arrivals"), 0, SUBJECTS))
    assert state["tick"] == TICKS
    assert state["sinks"][0]["offset"] == len(uninterrupted["arrivals"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "run.ckpt"]


def test_a_finished_runs_checkpoint_resumes_to_no_event(tmp_path, loop, uninterrupted):
    path, saved = tmp_path / "events.jsonl", tmp_path / "run.ckpt"
    build(path, "banking").start(checkpoint=saved)
    summary = build(path, "banking").start(resume=saved)
    assert summary.ticks == TICKS
    assert path.read_bytes() == uninterrupted["banking"]


def test_a_csv_file_resumes_without_a_second_header(tmp_path):
    whole, path, saved = tmp_path / "whole.csv", tmp_path / "events.csv", tmp_path / "run.ckpt"
    build(whole, "banking").start()
    datagen = build(path, "banking")
    stop_at(datagen, 100)
    datagen.start(checkpoint=saved)
    build(path, "banking").start(resume=saved)
    assert path.read_bytes() == whole.read_bytes()
    assert path.read_text().count("ts,user,event") == 1


def test_a_changed_model_is_refused_naming_what_changed_unless_forced(tmp_path):
    path, saved = tmp_path / "events.jsonl", tmp_path / "run.ckpt"
    datagen = build(path, "banking")
    stop_at(datagen, 50)
    datagen.start(checkpoint=saved)
    changed = build(path, "banking")
    next(t for t in changed.transitions if t.trigger == "login").probability = 0.3
    changed.seed = 12
    with pytest.raises(ConfigurationError) as caught:
        changed.start(resume=saved)
    message = str(caught.value)
    assert "'login', 'offline', 'online', '0.1'" in message
    assert "'0.3'" in message and "seed: '11' -> '12'" in message
    assert "subjects_num" not in message
    summary = changed.start(resume=saved, force=True)
    assert summary.ticks == TICKS


def test_what_is_not_a_checkpoint_is_refused(tmp_path):
    path, saved = tmp_path / "events.jsonl", tmp_path / "run.ckpt"
    saved.write_bytes(pickle.dumps({"format": 1}))
    with pytest.raises(ConfigurationError, match="is not a doge-datagen checkpoint"):
        build(path, "banking").start(resume=saved)
    with pytest.raises(ConfigurationError, match="cannot read checkpoint"):
        build(path, "banking").start(resume=tmp_path / "missing.ckpt")
    with pytest.raises(ConfigurationError, match="checkpoint_every must be a positive number"):
        build(path, "banking").start(checkpoint=saved, checkpoint_every=0)
    with pytest.raises(ConfigurationError, match="no directory"):
        build(path, "banking").start(checkpoint=tmp_path / "nowhere" / "run.ckpt")


def test_a_file_shorter_than_the_checkpoints_offset_is_refused(tmp_path):
    path, saved = tmp_path / "events.jsonl", tmp_path / "run.ckpt"
    datagen = build(path, "banking")
    stop_at(datagen, 200)
    datagen.start(checkpoint=saved)
    size = path.stat().st_size
    os.truncate(path, size - 1)
    with pytest.raises(ConfigurationError, match=f"fewer than the {size} of the checkpoint"):
        build(path, "banking").start(resume=saved)


def make_unpicklable(datagen):
    """Each subject of ``datagen`` made of a class local to a function, which pickle refuses."""
    factory = datagen.subject_factory
    make = factory.create

    def create(index):
        user = make(index)
        user.__class__ = type("Local", (type(user),), {"__slots__": ()})
        return user

    factory.create = create


def test_subjects_that_cannot_be_pickled_are_a_configuration_error(tmp_path):
    path, saved = tmp_path / "events.jsonl", tmp_path / "run.ckpt"
    datagen = build(path, "banking")
    make_unpicklable(datagen)
    with pytest.raises(ConfigurationError, match="picklable subjects"):
        datagen.start(checkpoint=saved)
    assert not saved.exists()


class Slotted:
    __slots__ = ("a", "__b")

    def __init__(self, a, b):
        self.a = a
        self.__b = b

    def seen(self):
        return self.a, self.__b


class WithDict(Slotted):
    pass


class Reduced:
    def __init__(self, a):
        self.a = a

    def __reduce__(self):
        return (Reduced, (self.a * 2,))


def test_subjects_are_stored_by_columns_with_gaps_private_slots_and_dicts():
    subjects = [Slotted(1, "x"), None, Slotted(2, [3]), None]
    encoded = checkpoints.encode_subjects(subjects)
    assert encoded[0] == "columns"
    back = checkpoints.decode_subjects(pickle.loads(pickle.dumps(encoded)))
    assert back[1] is None and back[3] is None
    assert [back[0].seen(), back[2].seen()] == [(1, "x"), (2, [3])]
    with_dicts = [WithDict(1, 2), WithDict(3, 4)]
    with_dicts[1].extra = "e"
    back = checkpoints.decode_subjects(checkpoints.encode_subjects(with_dicts))
    assert [s.seen() for s in back] == [(1, 2), (3, 4)]
    assert vars(back[1]) == {"extra": "e"} and vars(back[0]) == {}
    # A class that pickles its own way, or subjects of several classes: one by one, by pickle.
    reduced = checkpoints.encode_subjects([Reduced(1)])
    assert reduced[0] == "objects"
    assert checkpoints.decode_subjects(pickle.loads(pickle.dumps(reduced)))[0].a == 2
    assert checkpoints.encode_subjects([Slotted(1, 2), WithDict(1, 2)])[0] == "objects"
    unset = Slotted(1, 2)
    del unset.a
    assert checkpoints.encode_subjects([unset])[0] == "objects"


def test_an_unseeded_model_resumes_with_the_seed_and_start_the_checkpoint_holds(tmp_path):
    whole, path, saved = tmp_path / "whole.jsonl", tmp_path / "events.jsonl", tmp_path / "run.ckpt"

    def unseeded(out, seed=None, start=None):
        sink = FileSink(out, row)
        return banking_generator(
            sink,
            sink,
            sink,
            sink,
            subjects_num=SUBJECTS,
            ticks_num=TICKS,
            seed=seed,
            timestamp_start=start,
        )

    first = unseeded(path)  # a seed of its own, and the time start() is called
    stop_at(first, 60)
    first.start(checkpoint=saved)
    again = unseeded(path)
    with pytest.raises(ConfigurationError, match="seed: "):
        again.start(resume=saved)
    stored = checkpoints.run_options(saved)
    assert stored == {"seed": first.seed, "timestamp_start": first._last_run.timestamp_start}
    again.seed = stored["seed"]
    again.start(resume=saved)
    unseeded(whole, stored["seed"], stored["timestamp_start"]).start()
    assert path.read_bytes() == whole.read_bytes()


def resumed_from(saved, datagen):
    """The timestamp of the first tick a run resumed from ``saved`` runs."""
    return datagen.timestamp_start + checkpoints._read(saved)["tick"] * datagen.tick_ms


@pytest.mark.parametrize("kind", ["parquet", "disordered"])
def test_a_parquet_file_or_a_file_behind_a_wrapper_holds_the_events_from_the_checkpoint_on(
    tmp_path, kind
):
    """Only a file sink given to the model itself is cut back: a Parquet file, or a file
    behind a sink that wraps it, is written afresh by the resumed run."""
    import json

    import pyarrow.parquet as pq

    from doge_datagen import ParquetSink
    from doge_datagen.demo import event_row
    from doge_datagen.sinks.disorder import DisorderedSink

    def model(path):
        if kind == "parquet":
            sink = ParquetSink(path, event_row)
        else:
            sink = DisorderedSink(FileSink(path, event_row), duplicate=0.1)
        return banking_generator(
            sink, sink, sink, sink, subjects_num=300, ticks_num=TICKS, seed=5, timestamp_start=0
        )

    def rows(path):
        if kind == "parquet":
            return pq.read_table(path).to_pylist()
        return [json.loads(line) for line in path.read_text().splitlines()]

    whole, path, saved = tmp_path / "whole.out", tmp_path / "events.out", tmp_path / "run.ckpt"
    model(whole).start()
    datagen = model(path)
    stop_at(datagen, 40)
    datagen.start(checkpoint=saved)
    before = len(rows(path))
    assert before > 0
    resumed = model(path)
    resumed.start(resume=saved)
    boundary = resumed_from(saved, resumed)
    expected = [row for row in rows(whole) if row["timestamp"] >= boundary]
    assert rows(path) == expected
    assert len(expected) < len(rows(whole))  # the events before the checkpoint are gone


def test_events_a_disordered_sink_held_back_at_the_checkpoint_are_not_passed_on_again(tmp_path):
    from doge_datagen import InMemorySink
    from doge_datagen.sinks.disorder import DisorderedSink

    def model(inner):
        sink = DisorderedSink(inner, late=0.3, max_delay_ms=3_600_000)
        return banking_generator(
            sink, sink, sink, sink, subjects_num=300, ticks_num=TICKS, seed=5, timestamp_start=0
        )

    saved = tmp_path / "run.ckpt"
    whole = InMemorySink()
    model(whole).start()
    datagen = model(InMemorySink())
    stop_at(datagen, 60)
    datagen.start(checkpoint=saved)
    inner = InMemorySink()
    resumed = model(inner)
    resumed.start(resume=saved)
    boundary = resumed_from(saved, resumed)
    times = [event.timestamp for event in whole.events]
    first_after = next(i for i, t in enumerate(times) if t >= boundary)
    # The uninterrupted run passes on events of before the checkpoint after it (held back)...
    assert any(t < boundary for t in times[first_after:])
    # ... the resumed run does not: it starts with no event held.
    assert inner.events and all(event.timestamp >= boundary for event in inner.events)


class Numbered:
    __slots__ = ("number",)

    def __init__(self, number):
        self.number = number


def test_a_factory_without_an_index_numbers_the_arrivals_of_a_resumed_run_from_the_start(
    tmp_path,
):
    from doge_datagen import DataOnlineGenerator, InMemorySink, SubjectFactory

    class Counting(SubjectFactory):
        def __init__(self):
            self.made = 0

        def create(self):
            self.made += 1
            return Numbered(self.made)

    def model():
        datagen = DataOnlineGenerator(["a", "b"], "a", Counting(), 50, 60_000, 400, 0, seed=3)
        datagen.arrivals = 0.5
        sink = InMemorySink()
        datagen.add_transition("go", "a", "b", 5, event_sinks=[sink])
        datagen.add_transition("back", "b", "a", 5, event_sinks=[sink])
        return datagen

    saved = tmp_path / "run.ckpt"
    whole = model()
    whole.start()
    numbers = [subject.number for subject in whole.subjects]
    assert len(set(numbers)) == len(numbers)
    datagen = model()
    stop_at_go = [0]

    def callback(subject, transition):
        stop_at_go[0] += 1
        if stop_at_go[0] == 300:
            datagen.stop()
        return True

    datagen.transitions[0].action_callback = callback
    datagen.start(checkpoint=saved)
    there = len(datagen.subjects)
    resumed = model()
    resumed.start(resume=saved)
    numbers = [subject.number for subject in resumed.subjects]
    # The subjects of the checkpoint keep their numbers; the first to arrive after it is 1.
    assert numbers[:there] == list(range(1, there + 1))
    assert len(numbers) > there and numbers[there] == 1


def test_the_command_refuses_force_without_resume(tmp_path, capsys):
    from doge_datagen.cli.main import main

    demo = ["demo", "--subjects", "10", "--ticks", "10", "--sink", f"jsonl:{tmp_path / 'e.jsonl'}"]
    assert main([*demo, "--force"]) == 2
    assert "--force applies to --resume" in capsys.readouterr().err
    assert main([*demo, "--workers", "2", "--force"]) == 2
    assert "--force applies to --resume" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_database_holds_the_events_after_the_checkpoint_exactly_once(tmp_path):
    """A run stopped with a checkpoint, resumed, failing after it had written more rows (no
    checkpoint since), and resumed from the same checkpoint: the table holds the rows of the
    uninterrupted run, each once; those the failed run committed are not written again."""
    import sqlite3
    from collections import Counter

    from doge_datagen.demo import event_row
    from doge_datagen.sinks.db import DbSink

    database = tmp_path / "events.db"
    with sqlite3.connect(database) as connection:
        for table in ("whole", "resumed"):
            connection.execute(
                f"CREATE TABLE {table} (timestamp INTEGER, user_id INTEGER, balance INTEGER,"
                " loan_balance INTEGER, event TEXT, from_state TEXT, to_state TEXT)"
            )

    def model(table):
        sink = DbSink(f"sqlite:///{database}", table, event_row, batch_size=10)
        return banking_generator(
            sink, sink, sink, sink, subjects_num=300, ticks_num=TICKS, seed=5, timestamp_start=0
        )

    def rows(table):
        with sqlite3.connect(database) as connection:
            return Counter(connection.execute(f"SELECT * FROM {table}").fetchall())

    saved = tmp_path / "run.ckpt"
    model("whole").start()
    datagen = model("resumed")
    stop_at(datagen, 30)
    datagen.start(checkpoint=saved)
    datagen = model("resumed")
    stop_at(datagen, 40, error=RuntimeError("gone"))
    with pytest.raises(RuntimeError, match="gone"):
        datagen.start(resume=saved)
    again = model("resumed")
    again.start(resume=saved)
    whole, resumed = rows("whole"), rows("resumed")
    assert resumed == whole
    assert again.sinks[0].repeated > 0  # rows committed after the checkpoint, given again


needs_fork = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="checkpoints are written by forked copies on Linux"
)


@pytest.fixture
def forking(monkeypatch):
    """Checkpoints written by forked copies even in this process, which other tests may have
    given a thread (pyarrow's pool): the copy only pickles and writes."""
    monkeypatch.setattr(checkpoints, "can_fork", lambda: True)


@needs_fork
def test_only_a_process_with_a_single_thread_is_forked():
    ask = "from doge_datagen.engine.checkpoint import can_fork; print(can_fork())"
    second = "import threading; e = threading.Event(); threading.Thread(target=e.wait).start(); "
    answers = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for code in (ask, second + ask + "; e.set()")
    ]
    assert answers == ["True", "False"]


@needs_fork
@pytest.mark.parametrize("kind", KINDS)
def test_checkpoints_written_by_forked_copies_resume_to_the_uninterrupted_runs_bytes(
    tmp_path, loop, uninterrupted, kind, forking
):
    path, saved = tmp_path / "events.jsonl", tmp_path / "run.ckpt"
    datagen = build(path, kind)
    stop_at(datagen, 250, error=RuntimeError("the machine went away"))
    with pytest.raises(RuntimeError, match="went away"):
        datagen.start(checkpoint=saved, checkpoint_every=1e-9)
    keeper = datagen._last_run.checkpointer
    # Every checkpoint of the failed run was periodic, and each written by a copy.
    assert keeper.written > 10 and keeper.forked == keeper.written
    assert 0 < checkpoints._read(saved)["tick"] < TICKS
    # A resumed run goes on checkpointing the same way; its last checkpoint is its own.
    datagen = build(path, kind)
    stop_at(datagen, 600)
    stopped = datagen.start(resume=saved, checkpoint=saved, checkpoint_every=1e-9)
    keeper = datagen._last_run.checkpointer
    assert keeper.forked == keeper.written - 1 > 0
    assert checkpoints._read(saved)["tick"] == stopped.ticks
    build(path, kind).start(resume=saved)
    assert path.read_bytes() == uninterrupted[kind]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "run.ckpt"]


@needs_fork
def test_a_forked_copy_that_cannot_write_the_checkpoint_fails_the_next_write(
    tmp_path, loop, forking
):
    """Subjects that cannot be pickled, found by the copy writing a periodic checkpoint: the
    run fails at its next checkpoint, naming the tick and why, and leaves no file."""
    path, saved = tmp_path / "events.jsonl", tmp_path / "run.ckpt"
    datagen = build(path, "banking")
    make_unpicklable(datagen)
    with pytest.raises(ConfigurationError) as caught:
        datagen.start(checkpoint=saved, checkpoint_every=1e-9)
    message = str(caught.value)
    assert re.search(r"the checkpoint of tick \d+ was not written to '.*run\.ckpt'", message)
    assert "picklable subjects" in message
    assert datagen._last_run.checkpointer.forked == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]


@needs_fork
def test_a_forked_copy_killed_while_it_writes_is_reported_and_its_file_removed(
    tmp_path, monkeypatch, forking
):
    path, saved = tmp_path / "events.jsonl", tmp_path / "run.ckpt"
    parent = os.getpid()
    write = checkpoints._write_atomically
    written = []

    def killed_in_the_copy(target, data):
        if os.getpid() != parent:
            with open(target.with_name(f".{target.name}.{os.getpid()}.tmp"), "wb") as out:
                out.write(data[:10])
            os.kill(os.getpid(), signal.SIGKILL)
        written.append(target)
        write(target, data)

    monkeypatch.setattr(checkpoints, "_write_atomically", killed_in_the_copy)
    datagen = build(path, "banking")
    with pytest.raises(ConfigurationError, match=r"failed: killed by signal 9\)"):
        datagen.start(checkpoint=saved, checkpoint_every=1e-9)
    assert written == []  # no checkpoint was written in this process
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]


def test_a_process_with_a_second_thread_writes_its_checkpoints_itself(tmp_path, uninterrupted):
    path, saved = tmp_path / "events.jsonl", tmp_path / "run.ckpt"
    done = threading.Event()
    waiting = threading.Thread(target=done.wait)
    waiting.start()
    try:
        assert not checkpoints.can_fork()
        datagen = build(path, "arrivals")
        summary = datagen.start(checkpoint=saved, checkpoint_every=1e-9)
    finally:
        done.set()
        waiting.join()
    keeper = datagen._last_run.checkpointer
    assert keeper.written > 10 and keeper.forked == 0
    assert summary.ticks == TICKS and path.read_bytes() == uninterrupted["arrivals"]
    assert checkpoints._read(saved)["tick"] == TICKS
