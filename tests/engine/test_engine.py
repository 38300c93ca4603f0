"""The engine's own contracts: ranges of subjects, its one draw, opening and closing sinks,
and the model checked again when a run starts."""

import math
import threading
from fractions import Fraction
from typing import Any, List, Tuple

import pytest

from doge_datagen import ConfigurationError, DataOnlineGenerator, EventSink, InMemorySink
from doge_datagen.demo import banking_generator
from doge_datagen.engine import loop as engine


def _three_state(sink: Any, subjects: int = 300, ticks: int = 400, seed: Any = 5) -> Any:
    datagen = DataOnlineGenerator(["a", "b", "c"], "a", object, subjects, 1000, ticks, seed=seed)
    datagen.add_transition("ab", "a", "b", 7.5, event_sinks=[sink])
    datagen.add_transition("ac", "a", "c", 0.5, event_sinks=[sink])
    datagen.add_transition("ba", "b", "a", 20, event_sinks=[sink])
    datagen.add_transition("ca", "c", "a", 100, event_sinks=[sink])
    return datagen


def _events(sink: InMemorySink, subjects: List[Any]) -> List[Tuple[int, int, str]]:
    index = {id(s): n for n, s in enumerate(subjects)}
    return [(e.timestamp, index[id(e.subject)], e.trigger) for e in sink.events]


def test_the_inlined_draw_of_the_loop_agrees_with_next_move() -> None:
    """Replaying every subject with ``engine.next_move`` alone gives exactly the events of
    the loop, whose copy of the draw is inlined for speed."""
    sink = InMemorySink()
    datagen = _three_state(sink)
    datagen.start()
    run = datagen._last_run
    key = engine.engine_key(datagen.seed)
    tables = engine.compile_tables(datagen)
    replayed = []
    for i in range(datagen.subjects_num):
        table, tick = tables[0], 0
        while True:
            at, move = engine.next_move(key, table, i, tick)
            if at is None or at >= datagen.ticks_num:
                break
            replayed.append((at * datagen.tick_ms, i, move[0].trigger))
            table, tick = move[3], at + 1
    assert sorted(replayed) == _events(sink, run.subjects)
    assert len(replayed) > 1000


@pytest.mark.parametrize("first, stop", [(0, 300), (0, 1), (17, 211), (299, 300)])
def test_a_range_of_subjects_moves_as_in_the_whole_run(first: int, stop: int) -> None:
    whole = InMemorySink()
    datagen = _three_state(whole)
    datagen.start()
    wanted = [e for e in _events(whole, datagen.subjects) if first <= e[1] < stop]

    part = InMemorySink()
    datagen = _three_state(part)
    datagen.start_range(first, stop)
    got = [(ts, first + i, trigger) for ts, i, trigger in _events(part, datagen.subjects)]
    assert got == wanted
    assert len(datagen.subjects) == stop - first


def test_every_timestamp_is_a_whole_millisecond() -> None:
    sink = InMemorySink()
    datagen = DataOnlineGenerator(["a"], "a", object, 2, 0.5, 9, 1000.4, seed=1)
    datagen.add_transition("t", "a", "a", 100, event_sinks=[sink])
    datagen.start()
    stamps = [e.timestamp for e in sink.events]
    assert all(type(ts) is int for ts in stamps)
    assert stamps == [1000 + round(t * 0.5) for t in range(9) for _ in range(2)]


def test_a_fraction_is_a_valid_speed() -> None:
    sink = InMemorySink()
    datagen = DataOnlineGenerator(["a"], "a", object, 1, 1, 3, seed=1)
    datagen.add_transition("t", "a", "a", 100, event_sinks=[sink])
    summary = datagen.start(speed=Fraction(1000))
    assert summary.events == 3 and summary.lag is not None


@pytest.mark.parametrize("speed", [0, -1, math.nan, math.inf, True, "10", Fraction(0)])
def test_a_bad_speed_names_speed(speed: Any) -> None:
    datagen = DataOnlineGenerator(["a"], "a", object, 1, 1, 3, seed=1)
    with pytest.raises(ConfigurationError, match="speed"):
        datagen.start(speed=speed)


def test_a_single_sink_without_a_list_is_refused() -> None:
    datagen = DataOnlineGenerator(["a"], "a", object, 1, 1, 3, seed=1)
    with pytest.raises(ConfigurationError, match=r"'t'.*single sink.*event_sinks=\[sink\]"):
        datagen.add_transition("t", "a", "a", 1, event_sinks=InMemorySink())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change, message",
    [
        (("probability", 500), r"'go'.*from 0 to 100, got 500"),
        (("probability", 95), r"would sum to 105"),
        (("probability", math.nan), r"'go'.*probability must be a finite number"),
        (("probability", -1), r"'go'.*probability"),
        (("to_state", "zzz"), r"'go'.*to_state 'zzz' is not one of the states"),
        (("from_state", "zzz"), r"'go'.*from_state 'zzz'"),
        (("trigger", "stay"), r"already has trigger 'stay'"),
        (("action_callback", 3), r"'go'.*action_callback 3 is not callable"),
    ],
)
def test_a_transition_changed_after_it_was_added_is_checked_at_start(
    change: Tuple[str, Any], message: str
) -> None:
    sink = InMemorySink()
    datagen = DataOnlineGenerator(["a", "b"], "a", object, 5, 1, 10, seed=1)
    datagen.add_transition("stay", "a", "a", 10, event_sinks=[sink])
    transition = datagen.add_transition("go", "a", "b", 50, event_sinks=[sink])
    setattr(transition, *change)
    with pytest.raises(ConfigurationError, match=message):
        datagen.start()
    assert sink.events == []


def test_a_probability_raised_within_bounds_after_adding_takes_effect() -> None:
    sink = InMemorySink()
    datagen = DataOnlineGenerator(["a", "b"], "a", object, 5, 1, 10, seed=1)
    transition = datagen.add_transition("go", "a", "b", 0, event_sinks=[sink])
    transition.probability = 100
    datagen.start()
    assert len(sink.events) == 5


class _Recorder(EventSink):
    def __init__(self, log: List[str], name: str) -> None:
        self.log, self.name = log, name

    def open(self) -> None:
        self.log.append(f"open {self.name}")

    def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
        self.log.append(f"collect {self.name}")

    def close(self) -> None:
        self.log.append(f"close {self.name}")


def test_sinks_are_opened_in_order_when_the_run_starts_before_any_subject() -> None:
    log: List[str] = []
    first, second = _Recorder(log, "first"), _Recorder(log, "second")

    def factory() -> object:
        log.append("create")
        return object()

    datagen = DataOnlineGenerator(["a"], "a", factory, 1, 1, 1, seed=1)
    datagen.add_transition("t", "a", "a", 100, event_sinks=[first, second])
    assert log == []  # building the model opens nothing
    datagen.start()
    assert log == [
        "open first",
        "open second",
        "create",
        "collect first",
        "collect second",
        "close first",
        "close second",
    ]


class _Interrupting(_Recorder):
    def close(self) -> None:
        super().close()
        raise KeyboardInterrupt


def test_a_keyboard_interrupt_while_closing_one_sink_still_closes_the_others() -> None:
    log: List[str] = []
    sinks = [_Recorder(log, "a"), _Interrupting(log, "b"), _Recorder(log, "c")]
    datagen = DataOnlineGenerator(["a"], "a", object, 1, 1, 2, seed=1)
    datagen.add_transition("t", "a", "a", 100, event_sinks=sinks)
    with pytest.raises(KeyboardInterrupt) as caught:
        datagen.start()
    assert [line for line in log if line.startswith("close")] == ["close a", "close b", "close c"]
    assert caught.value.summary.events == 2  # type: ignore[attr-defined]


def test_a_keyboard_interrupt_during_the_run_closes_every_sink_once() -> None:
    log: List[str] = []
    sinks = [_Recorder(log, "a"), _Recorder(log, "b")]

    def interrupt(subject: Any, transition: Any) -> bool:
        raise KeyboardInterrupt

    datagen = DataOnlineGenerator(["a"], "a", object, 1, 1, 2, seed=1)
    datagen.add_transition("t", "a", "a", 100, interrupt, event_sinks=sinks)
    with pytest.raises(KeyboardInterrupt):
        datagen.start()
    assert [line for line in log if line.startswith("close")] == ["close a", "close b"]


def test_an_idle_paced_forever_run_keeps_time_until_stopped() -> None:
    """Every subject reaches a final state at once; the run then sleeps, tick by tick on
    the wall clock, until it is stopped, and says how many ticks went by."""
    sink = InMemorySink()
    datagen = DataOnlineGenerator(["a", "end"], "a", object, 3, 1000, None, seed=1)
    datagen.add_transition("leave", "a", "end", 100, event_sinks=[sink])
    seen = threading.Event()

    class Watch(EventSink):
        def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
            seen.set()

    datagen.transitions[0].event_sinks.append(Watch())
    done: List[Any] = []
    worker = threading.Thread(target=lambda: done.append(datagen.start(speed=50)))
    worker.start()
    assert seen.wait(10)
    # 1,000 ms ticks at speed 50 last 20 ms: wait until the run has kept time for a while.
    while datagen._last_run is None or datagen._last_run.pacer.ticks_elapsed() < 10:
        threading.Event().wait(0.02)
    datagen.stop()
    worker.join(10)
    assert not worker.is_alive()
    summary = done[0]
    assert summary.stopped and summary.events == 3
    assert summary.ticks >= 10


def test_the_banking_model_runs_through_the_engine_module() -> None:
    sinks = [InMemorySink() for _ in range(4)]
    datagen = banking_generator(*sinks, subjects_num=50, ticks_num=300, seed=3)
    summary = datagen.start_range()
    assert summary.subjects == 50 and summary.events > 0
    assert summary.events == sum(summary.events_per_trigger.values())
    assert sorted(len(s.events) for s in sinks) == sorted(summary.events_per_sink.values())


def test_a_naive_datetime_start_is_utc_whatever_the_machine_zone() -> None:
    import os
    import time
    from datetime import datetime, timezone

    sink = InMemorySink()
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        datagen = DataOnlineGenerator(["a"], "a", object, 1, 1000, 1, datetime(2024, 5, 6, 12))
    finally:
        if previous is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = previous
        time.tzset()
    datagen.add_transition("t", "a", "a", 100, event_sinks=[sink])
    datagen.start()
    wanted = datetime(2024, 5, 6, 12, tzinfo=timezone.utc).timestamp() * 1000
    assert sink.events[0].timestamp == wanted


class _GcWatchingFactory:
    """Subjects that note whether the cyclic collector ran while they were made."""

    def __init__(self, fail_at: Any = None) -> None:
        self.seen: List[bool] = []
        self.fail_at = fail_at

    def create(self, index: int) -> Any:
        import gc

        if index == self.fail_at:
            raise ValueError(f"subject {index} cannot be made")
        self.seen.append(gc.isenabled())
        return object()


@pytest.mark.parametrize("enabled", [True, False], ids=["gc-on", "gc-off"])
def test_many_subjects_are_made_with_the_cyclic_collector_paused_and_it_is_restored(
    enabled: bool,
) -> None:
    """A million subjects made with full collections walking them all again and again took
    half again as long: a large population is made with the collector paused. It is on
    again afterwards, also after a factory error, unless it was off to begin with."""
    import gc

    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        many = _GcWatchingFactory()
        datagen = DataOnlineGenerator(["a"], "a", many, 20_000, 1000, 1, seed=1)
        datagen.start()
        assert not any(many.seen) and len(many.seen) == 20_000
        assert gc.isenabled() is enabled

        few = _GcWatchingFactory()
        DataOnlineGenerator(["a"], "a", few, 50, 1000, 1, seed=1).start()
        assert all(seen is enabled for seen in few.seen)  # a small one is left alone

        failing = _GcWatchingFactory(fail_at=15_000)
        with pytest.raises(ValueError, match="subject 15000"):
            DataOnlineGenerator(["a"], "a", failing, 20_000, 1000, 1, seed=1).start()
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_many_subjects_are_filed_under_their_first_tick_with_the_collector_paused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Filing a large population under its first ticks makes a list per tick, enough to set
    off collections that walk the new subjects again: the collector is paused then too, and
    on again for the run."""
    import gc

    from doge_datagen.engine.loop import Run

    filing: List[bool] = []
    running: List[bool] = []
    schedule_all = Run.schedule_all

    def watched(self: Any, *args: Any) -> None:
        filing.append(gc.isenabled())
        schedule_all(self, *args)

    def during_the_run(subject: Any, transition: Any) -> bool:
        running.append(gc.isenabled())
        return True

    monkeypatch.setattr(Run, "schedule_all", watched)
    was = gc.isenabled()
    gc.enable()
    try:
        for subjects in (20_000, 50):
            datagen = DataOnlineGenerator(["a", "b"], "a", object, subjects, 1000, 1000, seed=1)
            datagen.add_transition("go", "a", "b", 1.0, action_callback=during_the_run)
            datagen.start()
            assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    assert filing == [False, True]  # paused to file 20,000; a small population left alone
    assert running and all(running)  # on again for the runs
