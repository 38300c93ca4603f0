"""The engine's C loop (``doge_datagen/_speedups.c``) against its Python loop (``Run.loop``):
for every kind of model the two write the same events, with the same attributes, counts,
vetoes and summary, and fail the same way.

Each model is built twice and run once with the C loop and once with ``engine._speedups``
set to None, which is how a machine without the built extension runs.
"""

import math
import os
import random
import time
import warnings
from typing import Any, Callable, Dict, List, Tuple

import pytest
from support.arrival_models import MONDAY_MS
from support.loops import CountingLoop, output_by_pure_python
from support.models import ping_pong, three_states

from doge_datagen import DataOnlineGenerator, EventSink, FileSink, InMemorySink
from doge_datagen.demo import banking_generator, user_row
from doge_datagen.engine import loop as engine
from doge_datagen.profiles import hourly

# Skipped on a checkout without the built extension, except in CI, which builds it: there a
# missing extension fails (test_the_extension_is_built says so first).
pytestmark = pytest.mark.skipif(
    engine._speedups is None and os.environ.get("CI") != "true",
    reason="the C speed-ups are not built in this checkout",
)

Build = Callable[[], Tuple[DataOnlineGenerator, List[InMemorySink]]]


def test_the_extension_is_built() -> None:
    assert engine._speedups is not None, (
        "doge_datagen._speedups is not built: `python setup.py build_ext --inplace` or "
        "`pip install -e .` with a C compiler at hand"
    )


def run_both(build: Build, monkeypatch: pytest.MonkeyPatch, **start: Any) -> List[Any]:
    """The events, summary figures and engine state of the C run and of the Python run,
    having checked that the first one was the C loop's."""
    outcomes = []
    for speedups in (CountingLoop(engine._speedups), None):
        with monkeypatch.context() as patch:
            patch.setattr(engine, "_speedups", speedups)
            datagen, sinks = build()
            summary = datagen.start(**start)
        if speedups is not None:
            assert speedups.runs >= 1, "the C loop did not run this model"
        run = datagen._last_run
        outcomes.append(
            {
                "events": [
                    [(e.timestamp, e.trigger, e.value) for e in sink.events] for sink in sinks
                ],
                "summary": (
                    summary.events,
                    summary.vetoed,
                    summary.events_per_trigger,
                    summary.vetoed_per_trigger,
                ),
                "ticks_done": run.ticks_done,
                "timestamp": run.timestamp,
            }
        )
    return outcomes


def stop_after(datagen: DataOnlineGenerator, sink: InMemorySink, events: int) -> Any:
    """An action callback that asks ``datagen`` to stop once ``sink`` holds ``events``."""

    def callback(subject: Any, transition: Any) -> bool:
        if len(sink.events) >= events:
            datagen.stop()
        return True

    return callback


def rows_sink() -> InMemorySink:
    return InMemorySink(user_row)


def banking(**options: Any) -> Build:
    def build() -> Tuple[DataOnlineGenerator, List[InMemorySink]]:
        sinks = [rows_sink() for _ in range(4)]
        return banking_generator(*sinks, **options), sinks

    return build


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(
            banking(subjects_num=2000, ticks_num=1440, timestamp_start=0, seed=3), id="banking"
        ),
        pytest.param(
            banking(
                subjects_num=500, ticks_num=3 * 1440, timestamp_start=MONDAY_MS, seed=4, day=True
            ),
            id="banking-profiled-day",
        ),
        pytest.param(lambda: _pair(ping_pong(300, 500)), id="dense-every-tick"),
        pytest.param(lambda: _pair(ping_pong(200, 700, probability=0.3, seed=9)), id="sparse"),
        pytest.param(lambda: _pair(three_states(400, 2000, seed=1)), id="self-loop"),
        pytest.param(lambda: _pair(ping_pong(50, 1, seed=2)), id="one-tick"),
    ],
)
def test_the_c_loop_writes_what_the_python_loop_writes(build: Build, monkeypatch) -> None:
    fast, pure = run_both(build, monkeypatch)
    assert fast == pure
    assert sum(len(events) for events in fast["events"]) > 0


def _pair(made: Tuple[DataOnlineGenerator, InMemorySink]):
    datagen, sink = made
    return datagen, [sink]


def test_arrivals_and_a_range_of_subjects_agree(monkeypatch) -> None:
    def build():
        datagen, sinks = banking(
            subjects_num=300, ticks_num=2 * 1440, timestamp_start=MONDAY_MS, seed=6, day=True
        )()
        datagen.arrivals = 0.4 * hourly([1.0] * 12 + [2.0] * 12)
        return datagen, sinks

    fast, pure = run_both(build, monkeypatch)
    assert fast == pure

    for speedups in (engine._speedups, None):
        with monkeypatch.context() as patch:
            patch.setattr(engine, "_speedups", speedups)
            datagen, sinks = banking(subjects_num=300, ticks_num=600, timestamp_start=0, seed=6)()
            datagen.start_range(120, 250)
        events = [(e.timestamp, e.trigger, e.value) for sink in sinks for e in sink.events]
        if speedups is not None:
            first = events
    assert first == events and events


def test_rare_moves_far_beyond_a_run_without_end_agree(monkeypatch) -> None:
    """Waits beyond 64-bit ticks (a probability of 1e-300 %) in a run that stops itself."""

    def build():
        sink = InMemorySink(lambda ts, s, t: None)
        datagen = DataOnlineGenerator(["a", "b", "z"], "a", object, 50, 1000, None, seed=1)
        datagen.add_transition("ab", "a", "b", 30, event_sinks=[sink])
        datagen.add_transition("ba", "b", "a", 1e-300, event_sinks=[sink])
        datagen.add_transition("bz", "b", "z", 1e-15, event_sinks=[sink])

        datagen.transitions[0].action_callback = stop_after(datagen, sink, 45)
        return datagen, [sink]

    fast, pure = run_both(build, monkeypatch)
    assert fast == pure
    run_events = fast["events"][0]
    assert 45 <= len(run_events) <= 50


def test_a_fractional_tick_and_a_paced_run_take_the_python_loop(monkeypatch) -> None:
    datagen, _ = ping_pong(10, 10)
    run = engine.Run(datagen, 0, 10, 0)
    assert run._fast_loop(0, 10) is not None
    datagen.tick_ms = 0.5
    assert engine.Run(datagen, 0, 10, 0)._fast_loop(0, 10) is None
    datagen.tick_ms = 1000
    assert engine.Run(datagen, 0, 10, 0, pacer=object())._fast_loop(0, 10) is None
    assert engine.Run(datagen, 0, 10, 0, reporter=object())._fast_loop(0, 10) is None
    assert engine.Run(datagen, 0, 10, 2**70)._fast_loop(0, math.inf) is None


class Failing(EventSink):
    def __init__(self, after: int) -> None:
        self.after = after
        self.seen = 0

    def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
        self.seen += 1
        if self.seen > self.after:
            raise RuntimeError(f"sink broke at event {self.seen}")


def _failure(monkeypatch, speedups: Any, where: str) -> Tuple[str, List[str], List[int], Any]:
    with monkeypatch.context() as patch:
        patch.setattr(engine, "_speedups", speedups)
        before, after = InMemorySink(), InMemorySink()
        broken = Failing(after=40)
        datagen, _ = ping_pong(30, 100, probability=20, seed=3)
        datagen.transitions[0].event_sinks = [before, broken, after]
        if where == "callback":
            datagen.transitions[1].event_sinks = []
            calls = iter(range(1000))

            def callback(subject: Any, transition: Any) -> bool:
                if next(calls) == 25:
                    raise ValueError("callback broke")
                return True

            datagen.transitions[1].action_callback = callback
        with pytest.raises((RuntimeError, ValueError)) as caught:
            datagen.start()
        run = datagen._last_run
        return (
            str(caught.value),
            list(getattr(caught.value, "__notes__", [])),
            [len(before.events), len(after.events)],
            (run.ticks_done, run.timestamp, list(run.counts), datagen.random._i),
        )


@pytest.mark.parametrize("where", ["sink", "callback"])
def test_an_error_in_a_sink_or_a_callback_is_reported_alike(monkeypatch, where: str) -> None:
    fast = _failure(monkeypatch, engine._speedups, where)
    pure = _failure(monkeypatch, None, where)
    assert fast == pure
    message, notes, (before, after), (_, _, _, keyed) = fast
    assert any("while subject #" in note for note in notes)
    assert keyed is None  # datagen.random is unkeyed again
    if where == "sink":
        # The sink after the broken one still got the event it failed on.
        assert before == after == 41 and "sink broke at event 41" in message


def test_a_stop_from_a_callback_ends_both_loops_at_the_same_tick(monkeypatch) -> None:
    def build():
        datagen, sink = ping_pong(40, 10_000, probability=5, seed=8)
        datagen.transitions[0].action_callback = stop_after(datagen, sink, 300)
        return datagen, [sink]

    fast, pure = run_both(build, monkeypatch)
    assert fast == pure
    assert fast["ticks_done"] < 10_000  # stopped early


def _draws(method: str, seed: int) -> List[Any]:
    """A mix of randint ranges, other draws and re-keyings, drawn through ``method``."""
    from doge_datagen.engine.randomness import SubjectRandom

    chooser = random.Random(seed)
    rng = SubjectRandom(seed)
    rng.begin(chooser.randrange(0, 1000))
    out: List[Any] = [getattr(rng, method)(1, 6)]  # unkeyed: the Mersenne Twister
    for _ in range(3000):
        roll = chooser.random()
        if roll < 0.05:
            rng.key(chooser.randrange(-50, 50), chooser.randrange(-1, 10**6))
        elif roll < 0.1:
            out.append(rng.random())
        elif roll < 0.12:
            out.append(rng.gauss(0, 1))
        elif roll < 0.14:
            rng.key(None)
        else:
            low = chooser.choice([0, 1, -7, -(2**63), 2**40, 10])
            span = chooser.choice([0, 1, 5, 1000, 2**32, 2**62, 2**63, 2**64 - 2, 2**70])
            try:
                out.append(getattr(rng, method)(low, low + span))
            except (ValueError, OverflowError) as exc:
                out.append(repr(exc))
    rng.key(3, 4)
    for bad in ((True, 3), (1.0, 3), (1.5, 3), (5, 1), ("1", 3)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # randrange() of a float
            try:
                out.append(getattr(rng, method)(*bad))
            except (TypeError, ValueError) as exc:
                out.append(type(exc).__name__)
    out.append(rng.__getstate__()[1:])
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_randint_in_c_draws_what_randint_in_python_draws(seed: int) -> None:
    from doge_datagen.engine.randomness import SubjectRandom

    assert SubjectRandom.randint is not SubjectRandom._randint_py
    assert _draws("randint", seed) == _draws("_randint_py", seed)


def test_a_generator_whose_keys_are_properties_is_keyed_through_them(monkeypatch) -> None:
    """The C loop and randint reach SubjectRandom's keys in its slots; a subclass that makes
    a key a property is served through setattr and getattr instead, and draws the same."""
    from doge_datagen import model as model_module
    from doge_datagen.engine.randomness import SubjectRandom

    class Watched(SubjectRandom):
        seen = 0

        @property
        def _i(self) -> Any:
            return self._index

        @_i.setter
        def _i(self, value: Any) -> None:
            Watched.seen += 1
            self._index = value

    build = banking(subjects_num=300, ticks_num=720, timestamp_start=0, seed=5)
    plain = run_both(build, monkeypatch)
    # The model's own generator, which the factory and the callbacks draw from, is a Watched.
    monkeypatch.setattr(model_module, "SubjectRandom", Watched)
    watched = run_both(build, monkeypatch)
    assert Watched.seen > 2 * plain[0]["summary"][0]  # both loops set the key at each event
    assert watched == plain
    assert plain[0]["events"][1]  # balances were drawn


def test_waits_beyond_the_calendar_window_agree(monkeypatch) -> None:
    """Waits of thousands of ticks (beyond the C loop's wheel of near ticks) in a long run."""
    fast, pure = run_both(
        lambda: _pair(ping_pong(300, 200_000, probability=0.02, seed=4)), monkeypatch
    )
    assert fast == pure
    ticks = [timestamp for timestamp, _, _ in fast["events"][0]]
    assert len(ticks) > 300 and max(ticks) - min(ticks) > 50_000 * 1000

    # Few subjects, each far from the others: the wheel is empty between their events.
    fast, pure = run_both(
        lambda: _pair(ping_pong(3, 3_000_000, probability=0.001, seed=5)), monkeypatch
    )
    assert fast == pure
    assert len(fast["events"][0]) > 20


@pytest.mark.parametrize("subjects, probability", [(1500, 50.0), (6000, 30.0)])
def test_large_ticks_run_their_subjects_in_index_order(
    monkeypatch, subjects: int, probability: float
) -> None:
    """Ticks of hundreds to thousands of events, filed over many earlier ticks: the C loop
    sorts those by digits (one pass of 11 bits, two of 7), and runs them in the order of the
    Python loop's sort."""
    fast, pure = run_both(
        lambda: _pair(ping_pong(subjects, 40, probability=probability, seed=8)), monkeypatch
    )
    assert fast == pure
    by_tick: Dict[int, List[int]] = {}
    for timestamp, _, n in fast["events"][0]:
        by_tick.setdefault(timestamp, []).append(n)
    assert min(len(ns) for ns in by_tick.values()) > subjects / 4
    assert all(ns == sorted(set(ns)) for ns in by_tick.values())


def test_a_buffering_sink_is_flushed_while_a_fast_run_goes_on(tmp_path) -> None:
    """The sinks' poll() runs during an unpaced run too: a file sink's lines reach the file
    within its flush_interval, long before the run ends."""
    path = tmp_path / "events.jsonl"
    sink = FileSink(path, lambda ts, s, t: {"n": s.n}, flush_interval=0.01)
    datagen, _ = ping_pong(1, 400)
    datagen.transitions[0].event_sinks = datagen.transitions[1].event_sinks = [sink]
    seen_in_the_file = []

    def slow(subject: Any, transition: Any) -> bool:
        time.sleep(0.001)
        seen_in_the_file.append(len(path.read_text().splitlines()) if path.exists() else 0)
        return True

    datagen.transitions[0].action_callback = slow
    assert datagen._last_run is None
    datagen.start()
    assert engine.Run(datagen, 0, 1, 0)._fast_loop(0, 400) is not None  # the C loop ran it
    assert max(seen_in_the_file) > 0  # lines were in the file while events were still coming
    assert len(path.read_text().splitlines()) == 400


class _PollWatcher(EventSink):
    """A sink whose poll() notes which subject ``datagen.random`` was keyed to then."""

    def __init__(self) -> None:
        self.datagen: Any = None
        self.at_poll: List[Any] = []
        self.events = 0

    def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
        self.events += 1
        if self.events % 10 == 0:
            time.sleep(0.001)  # so that the loop's polls (at most every 10 ms) come

    def poll(self) -> None:
        self.at_poll.append(self.datagen.random._i)


def test_between_ticks_and_after_the_run_datagen_random_is_keyed_to_nobody() -> None:
    """The C loop keys ``datagen.random`` to each subject for its event, and to nobody once
    the tick is over: the sinks' polls between ticks, and whatever follows the run, find it
    unkeyed."""
    datagen, _ = ping_pong(8, 600)
    watcher = _PollWatcher()
    watcher.datagen = datagen
    for transition in datagen.transitions:
        transition.event_sinks = [watcher]
    keyed_in_events: List[Any] = []

    def note(subject: Any, transition: Any) -> bool:
        keyed_in_events.append(datagen.random._i)
        return True

    datagen.transitions[0].action_callback = note
    datagen.start()
    assert engine.Run(datagen, 0, 1, 0)._fast_loop(0, 600) is not None  # the C loop ran it
    assert watcher.events > 100 and len(watcher.at_poll) > 3
    assert set(watcher.at_poll) == {None}
    assert datagen.random._i is None
    assert None not in keyed_in_events and len(set(keyed_in_events)) == 8  # keyed in events


def test_a_profiled_run_without_end_agrees(monkeypatch) -> None:
    """Profiled states in a run without a tick limit (segments made as the run goes on),
    stopped from a callback."""

    def build():
        datagen, sinks = banking(
            subjects_num=300, ticks_num=None, timestamp_start=MONDAY_MS, seed=9, day=True
        )()
        datagen.transitions[0].action_callback = stop_after(datagen, sinks[0], 2000)
        return datagen, sinks

    fast, pure = run_both(build, monkeypatch)
    assert fast == pure
    assert fast["ticks_done"] > 1440  # more than a day: segments beyond the first ones


def test_the_environment_variable_keeps_every_run_in_python() -> None:
    """DOGE_DATAGEN_PURE_PYTHON=1: no C loop and the Python randint; the events are the same."""
    probe = (
        "from doge_datagen import engine\n"
        "from doge_datagen.engine.randomness import SubjectRandom\n"
        "from doge_datagen.demo import demo_model\n"
        "print(not engine.HAS_SPEEDUPS, hasattr(SubjectRandom, '_randint_py'),"
        " demo_model(subjects_num=200, ticks_num=300).start().events)\n"
    )
    seen = {pure: out.split() for pure, out in output_by_pure_python(probe, ("1", "")).items()}
    assert seen["1"][:2] == ["True", "False"]
    assert seen[""][:2] == ["False", "True"]
    assert seen["1"][2] == seen[""][2] and int(seen["1"][2]) > 0
