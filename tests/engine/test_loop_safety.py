"""What user code may do to a run while it goes on, and what both loops (C and Python) do then.

Each model runs in a child process, once with the C loop and once with the Python loop, and
the child prints what it saw as JSON: a run that would crash the interpreter or never end then
fails its test instead of the whole test run (a hang trips the generous timeout, never a fast
run). The assertions are on simulated quantities: events, ticks, timestamps, draws.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict

import pytest

from doge_datagen.engine import loop as engine

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    engine._speedups is None and os.environ.get("CI") != "true",
    reason="the C speed-ups are not built in this checkout",
)

#: Defines ``both(run)``: ``run(loop_name)`` once with the C loop (checking that it ran) and
#: once with the Python loop; prints ``{"c": ..., "python": ...}``. ``failure(exc)`` describes
#: an error and the summary it carries.
PRELUDE = """
import json, os, signal, sys, threading, time
sys.path[:0] = [{root!r}, {tests!r}]
from doge_datagen import DataOnlineGenerator, EventSink, InMemorySink
from doge_datagen.engine import loop as engine
from doge_datagen.errors import ConfigurationError

class Counting:
    def __init__(self, module):
        self.module, self.runs = module, 0
    def __getattr__(self, name):
        return getattr(self.module, name)
    def run_ticks(self, *args):
        self.runs += 1
        return self.module.run_ticks(*args)

def failure(exc):
    summary = getattr(exc, "summary", None)
    return {{
        "error": type(exc).__name__,
        "message": str(exc),
        "notes": list(getattr(exc, "__notes__", [])),
        "summary": None if summary is None else [summary.ticks, summary.events, summary.vetoed],
    }}

def both(run):
    original = engine._speedups
    seen = {{}}
    for name in ("c", "python"):
        loop = Counting(original) if name == "c" else None
        engine._speedups = loop
        try:
            seen[name] = run(name)
        finally:
            engine._speedups = original
        if loop is not None:
            seen[name]["c_loop_ran"] = loop.runs > 0
    print(json.dumps(seen))

def two_states(subjects, ticks, probability=100.0, tick_ms=1000, start=0, sinks=(), seed=1):
    datagen = DataOnlineGenerator(
        ["a", "b"], "a", lambda: {{"n": 0}}, subjects, tick_ms, ticks,
        timestamp_start=start, seed=seed,
    )
    datagen.add_transition("go", "a", "b", probability, event_sinks=list(sinks))
    datagen.add_transition("back", "b", "a", probability, event_sinks=list(sinks))
    return datagen
"""


def both_loops(body: str, timeout: float = 120.0) -> Dict[str, Any]:
    """Run ``body`` (which calls ``both``) in a child process; what each loop saw."""
    code = PRELUDE.format(root=str(ROOT), tests=str(ROOT / "tests")) + textwrap.dedent(body)
    env = {k: v for k, v in os.environ.items() if k != "DOGE_DATAGEN_PURE_PYTHON"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(ROOT),
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the run did not end within {timeout:.0f} s: {exc.stderr!r}")
    assert done.returncode == 0, f"the child process failed ({done.returncode}): {done.stderr}"
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["c"].pop("c_loop_ran"), "the C loop did not run this model"
    return seen


def test_a_factory_or_a_callback_adding_a_transition_is_a_configuration_error() -> None:
    """The tables are compiled when the run starts: a transition added then would have no
    count (the C loop wrote past the end of the counts)."""
    seen = both_loops(
        """
        def run(name):
            found = {}
            for where in ("factory", "callback"):
                datagen = two_states(50, 100, probability=30.0)
                made = []
                def factory():
                    if where == "factory" and len(made) == 10:
                        datagen.add_transition("late", "a", "a", 5.0)
                    made.append(1)
                    return {"n": len(made)}
                def callback(subject, transition):
                    if where == "callback" and subject["n"] == 20:
                        datagen.add_transition("late", "b", "b", 5.0)
                    return True
                datagen.subject_factory = factory
                datagen.transitions[0].action_callback = callback
                try:
                    summary = datagen.start()
                    found[where] = {"events": summary.events}
                except Exception as exc:
                    found[where] = failure(exc)
                found[where]["transitions"] = len(datagen.transitions)
            return found
        both(run)
        """
    )
    assert seen["c"] == seen["python"]
    for where in ("factory", "callback"):
        outcome = seen["c"][where]
        assert outcome["error"] == "ConfigurationError", outcome
        assert "add_transition('late'" in outcome["message"]
        assert "during a run" in outcome["message"]
        assert outcome["transitions"] == 2  # nothing was added
    assert seen["c"]["callback"]["summary"][1] > 0  # events before the callback's attempt


@pytest.mark.parametrize(
    "change",
    [
        "datagen.subjects.clear()",
        "datagen.subjects.extend([{'n': -1}] * 3000)",
        "datagen.subjects.pop()",
        "datagen.subjects.append({'n': -2})",
    ],
)
def test_user_code_resizing_the_subjects_list_is_a_configuration_error(change: str) -> None:
    """``datagen.subjects`` is the run's live list: a callback that resizes it gets an error
    naming what happened, at the event it did it in, in both loops (the C loop read a freed
    array after a clear or an extend)."""
    seen = both_loops(
        f"""
        def run(name):
            datagen = two_states(2000, 50, probability=50.0, sinks=[InMemorySink()])
            calls = []
            def callback(subject, transition):
                calls.append(datagen.timestamp)
                if len(calls) == 1500:
                    {change}
                return True
            datagen.transitions[1].action_callback = callback
            try:
                datagen.start()
                return {{"error": None}}
            except Exception as exc:
                return dict(failure(exc), calls=len(calls))
        both(run)
        """
    )
    assert seen["c"] == seen["python"]
    outcome = seen["c"]
    assert outcome["error"] == "ConfigurationError", outcome
    assert "datagen.subjects went from 2000 to" in outcome["message"]
    assert outcome["calls"] == 1500
    assert any("while subject #" in note for note in outcome["notes"])


def test_a_subject_replaced_in_place_is_the_one_that_moves_on() -> None:
    seen = both_loops(
        """
        def run(name):
            sink = InMemorySink(lambda ts, s, t: s["n"])
            datagen = two_states(300, 40, probability=40.0, sinks=[sink], seed=4)
            def callback(subject, transition):
                if subject["n"] % 7 == 0 and subject["n"] < 1000:
                    position = datagen.subjects.index(subject)
                    datagen.subjects[position] = {"n": subject["n"] + 1000}
                return True
            datagen.transitions[0].action_callback = callback
            summary = datagen.start()
            return {"values": [e.value for e in sink.events], "events": summary.events}
        both(run)
        """
    )
    assert seen["c"] == seen["python"]
    assert any(value >= 1000 for value in seen["c"]["values"])


def test_stop_from_another_thread_ends_a_run_without_callbacks_within_its_tick() -> None:
    """No callback and no sink: no bytecode runs in the C loop, which must still let the
    thread that calls stop() run. After stop() at most the rest of the tick happens."""
    seen = both_loops(
        """
        def run(name):
            datagen = two_states(2000, None)
            at_stop = []
            def stopper():
                while datagen._last_run is None or sum(datagen._last_run.counts) < 100_000:
                    time.sleep(0.001)
                datagen.stop()
                at_stop.append(sum(datagen._last_run.counts))
            thread = threading.Thread(target=stopper)
            thread.start()
            summary = datagen.start()
            thread.join()
            return {"at_stop": at_stop[0], "events": summary.events, "stopped": summary.stopped}
        both(run)
        """
    )
    for outcome in seen.values():
        assert outcome["stopped"]
        assert 0 <= outcome["events"] - outcome["at_stop"] <= 2000  # the rest of one tick


def test_a_signal_ends_a_run_without_callbacks_within_its_tick() -> None:
    """SIGINT to a run without a tick limit: its handler runs within a few thousand events,
    not after hundreds of ticks (the C loop looked at signals every 256 busy ticks)."""
    seen = both_loops(
        """
        def run(name):
            datagen = two_states(2000, None)
            at_signal = []
            def interrupter():
                while datagen._last_run is None or sum(datagen._last_run.counts) < 100_000:
                    time.sleep(0.001)
                os.kill(os.getpid(), signal.SIGINT)
                at_signal.append(sum(datagen._last_run.counts))
            thread = threading.Thread(target=interrupter)
            thread.start()
            summary = datagen.start()
            thread.join()
            return {
                "at_signal": at_signal[0],
                "events": summary.events,
                "signals": summary.signals,
            }
        both(run)
        """
    )
    for outcome in seen.values():
        assert outcome["signals"] == [2]
        assert 0 <= outcome["events"] - outcome["at_signal"] <= 2000


@pytest.mark.parametrize(
    "tick_ms, start, probability",
    [
        pytest.param(2**31 - 1, 0, 1e-9, id="timestamp-beyond-2**63"),
        pytest.param(1, -(2**62) + 1, 1e-17, id="tick-beyond-2**62"),
    ],
)
def test_a_run_past_64_bit_timestamps_stops_with_an_error(
    tick_ms: int, start: int, probability: float
) -> None:
    """A run without a tick limit whose rare moves come after the last tick a 64-bit
    timestamp (or tick) can hold: both loops stop there with the same error, after the same
    events, instead of a wrapped timestamp (the C loop) or one past 64 bits (Python)."""
    seen = both_loops(
        f"""
        def run(name):
            sink = InMemorySink()
            datagen = two_states(
                20, None, probability={probability!r}, tick_ms={tick_ms}, start={start},
                sinks=[sink], seed=7,
            )
            try:
                datagen.start()
                return {{"error": None, "timestamps": [e.timestamp for e in sink.events]}}
            except Exception as exc:
                return dict(
                    failure(exc),
                    timestamps=[e.timestamp for e in sink.events],
                    ticks_done=datagen._last_run.ticks_done,
                    now=datagen.timestamp,
                )
        both(run)
        """
    )
    assert seen["c"] == seen["python"]
    outcome = seen["c"]
    assert outcome["error"] == "ConfigurationError", outcome
    assert "beyond the 64-bit milliseconds" in outcome["message"]
    assert all(-(2**63) <= ts < 2**63 for ts in outcome["timestamps"])
    assert outcome["ticks_done"] * tick_ms + start >= 2**63 or outcome["ticks_done"] >= 2**62 - 1


def test_sinks_after_a_failing_sink_see_the_subjects_stream_and_timestamp() -> None:
    """The sinks listed after one that raised get the event as in the Python loop: with
    datagen.timestamp of the event and draws from the subject's stream."""
    seen = both_loops(
        """
        class Broken(EventSink):
            def __init__(self):
                self.seen = 0
            def collect(self, timestamp, subject, transition):
                self.seen += 1
                if self.seen == 500:
                    raise RuntimeError("broken sink")

        class Watching(EventSink):
            def __init__(self, datagen):
                self.datagen, self.seen = datagen, []
            def collect(self, timestamp, subject, transition):
                g = self.datagen
                self.seen.append([timestamp, g.timestamp, g.random.randint(0, 10**6)])

        def run(name):
            datagen = two_states(100, 200, probability=30.0, tick_ms=60000, start=5000)
            watching = Watching(datagen)
            datagen.transitions[0].event_sinks = [Broken(), watching]
            try:
                datagen.start()
            except RuntimeError as exc:
                return dict(failure(exc), last=watching.seen[-1], count=len(watching.seen))
        both(run)
        """
    )
    assert seen["c"] == seen["python"]
    timestamp, now, _ = seen["c"]["last"]
    assert now == timestamp and seen["c"]["count"] == 500


def test_a_poll_that_stops_the_run_ends_it_after_the_first_busy_tick() -> None:
    """Both loops poll after the first busy tick (then at most every 10 ms)."""
    seen = both_loops(
        """
        class Stopping(EventSink):
            def __init__(self, datagen):
                self.datagen, self.events, self.polls = datagen, 0, []
            def collect(self, timestamp, subject, transition):
                self.events += 1
            def poll(self):
                self.polls.append([self.datagen.timestamp, self.datagen.random._i, self.events])
                self.datagen.stop()

        def run(name):
            datagen = two_states(3, 10_000, probability=100.0, start=100)
            sink = Stopping(datagen)
            for transition in datagen.transitions:
                transition.event_sinks = [sink]
            summary = datagen.start()
            return {"events": summary.events, "ticks": summary.ticks, "polls": sink.polls}
        both(run)
        """
    )
    assert seen["c"] == seen["python"]
    assert seen["c"]["events"] == 3 and seen["c"]["polls"] == [[1100, None, 3]]


def test_keyboard_interrupt_from_a_sink_leaves_both_loops_alike() -> None:
    seen = both_loops(
        """
        class Interrupting(EventSink):
            def __init__(self):
                self.seen = 0
            def collect(self, timestamp, subject, transition):
                self.seen += 1
                if self.seen == 100_000:
                    raise KeyboardInterrupt

        def run(name):
            datagen = two_states(1000, 5000, probability=100.0, sinks=[Interrupting()])
            try:
                datagen.start()
            except KeyboardInterrupt as exc:
                return dict(
                    failure(exc),
                    keyed=datagen.random._i,
                    now=datagen.timestamp,
                    ticks_done=datagen._last_run.ticks_done,
                )
        both(run)
        """
    )
    assert seen["c"] == seen["python"]
    outcome = seen["c"]
    assert outcome["summary"] == [99, 100_000, 0]  # the 100,000th event is at tick 99
    assert outcome["keyed"] is None and outcome["now"] == 99_000
    assert any("while subject #999" in note for note in outcome["notes"])


def test_a_failed_store_into_the_pending_moves_is_raised_at_its_event() -> None:
    """The run's pending moves emptied under the loop: the store of the next move fails,
    and the error says which event it was, in both loops."""
    seen = both_loops(
        """
        def run(name):
            datagen = two_states(1, 100, probability=100.0, sinks=[InMemorySink()])
            calls = []
            def callback(subject, transition):
                calls.append(1)
                if len(calls) == 5:
                    datagen._last_run.pending.clear()
                return True
            datagen.transitions[0].action_callback = callback
            try:
                datagen.start()
            except Exception as exc:
                return failure(exc)
        both(run)
        """
    )
    assert seen["c"] == seen["python"]
    assert seen["c"]["error"] == "IndexError"
    assert any("while subject #0 took transition 'go'" in n for n in seen["c"]["notes"])


def test_a_trillion_one_millisecond_ticks_cost_what_their_events_cost() -> None:
    """2**40 ticks, ten subjects with one rare move each: both loops go from event to event
    (the Python loop stepped through the empty ticks one by one)."""
    seen = both_loops(
        """
        def run(name):
            sink = InMemorySink()
            datagen = DataOnlineGenerator(
                ["a", "b"], "a", lambda: {}, 10, 1, 2**40, timestamp_start=0, seed=3
            )
            datagen.add_transition("go", "a", "b", 1e-10, event_sinks=[sink])
            summary = datagen.start()
            return {
                "timestamps": [e.timestamp for e in sink.events],
                "ticks": summary.ticks,
                "now": datagen.timestamp,
            }
        both(run)
        """,
    )
    assert seen["c"] == seen["python"]
    outcome = seen["c"]
    assert outcome["ticks"] == 2**40 and outcome["now"] == 2**40
    assert len(outcome["timestamps"]) >= 3
    assert max(outcome["timestamps"]) > 2**31  # beyond what the C loop took before


def test_a_factory_of_arriving_subjects_reads_their_arrival_time_with_any_generator() -> None:
    """``datagen.random`` replaced by another generator: a factory still reads the timestamp
    of its subject's arrival tick, in both loops."""
    seen = both_loops(
        """
        import random

        def run(name):
            seen = []
            def create():
                seen.append(datagen.timestamp)
                return {"n": len(seen)}
            datagen = DataOnlineGenerator(
                ["s0"], "s0", create, 0, 10, 5, 0, seed=1, arrivals=1.5
            )
            datagen.random = random.Random(1)
            datagen.start()
            return {"seen": seen}
        both(run)
        """
    )
    assert seen["c"] == seen["python"]
    assert seen["c"]["seen"] == [0, 0, 20, 20, 30, 40]


def test_start_from_a_callback_of_the_same_model_is_a_configuration_error() -> None:
    seen = both_loops(
        """
        def run(name):
            datagen = two_states(20, 50, probability=50.0, sinks=[InMemorySink()])
            calls = []
            def callback(subject, transition):
                calls.append(1)
                if len(calls) == 7:
                    datagen.start()
                return True
            datagen.transitions[0].action_callback = callback
            try:
                datagen.start()
            except Exception as exc:
                return dict(failure(exc), keyed=datagen.random._i, calls=len(calls))
        both(run)
        """
    )
    assert seen["c"] == seen["python"]
    outcome = seen["c"]
    assert outcome["error"] == "ConfigurationError" and "start() while a run" in outcome["message"]
    assert outcome["calls"] == 7 and outcome["keyed"] is None
    assert any("while subject #" in note for note in outcome["notes"])
