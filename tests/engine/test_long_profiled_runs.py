"""Profiled runs of any number of ticks cost what their events cost, in both loops.

A state whose probability has a profile is checked and drawn over one period of its profiles
(and what comes before the period), not tick range by tick range over the whole run: a run of
2**31 - 1 hourly ticks starts at once. Each model runs in a child process (see
``test_loop_safety``), so a run that would spend years of hours before its first event fails
on the generous timeout instead of holding up the test run.
"""

import textwrap
from typing import Any, Dict

from test_loop_safety import both_loops

#: A model of one subject, ``ticks`` ticks of ``tick_ms``, its state ``a`` left with ``5 %
#: x profile`` and the run stopped by the first event's callback.
STOP_AT_FIRST = """
from datetime import datetime, timezone
from doge_datagen.profiles import hourly, piecewise, profile, weekly

def stopped_at_first(profiled, tick_ms, ticks, start=0):
    def run(name):
        datagen = DataOnlineGenerator(["a"], "a", object, 1, tick_ms, ticks, start, seed=1)
        def stop(subject, transition):
            datagen.stop()
            return True
        datagen.add_transition("x", "a", "a", profiled, stop)
        try:
            summary = datagen.start()
        except Exception as exc:
            return failure(exc)
        return {"events": summary.events, "ticks": summary.ticks}
    return run
"""


def run_both(body: str) -> Dict[str, Any]:
    return both_loops(STOP_AT_FIRST + textwrap.dedent(body))


def test_a_run_of_2_31_hourly_ticks_with_an_hourly_profile_stops_at_its_first_event() -> None:
    seen = run_both(
        """
        both(stopped_at_first(5 * hourly([1] * 12 + [0.5] * 12), 3_600_000, 2**31 - 1))
        """
    )
    assert seen["c"] == seen["python"]
    assert seen["c"]["events"] == 1
    assert 0 < seen["c"]["ticks"] < 1000  # stopped at the first event, not at the run's end


def test_a_long_run_with_a_campaign_a_weekly_and_a_callable_profile_stops_at_once() -> None:
    """A campaign months into the run (before which nothing repeats), a weekly profile and a
    callable, over 2**31 - 1 minute ticks: the first event comes, and the run stops, at once.
    A wait of 1e-6 % per minute reaches years into the run in one draw."""
    seen = run_both(
        """
        monday = datetime(2024, 1, 1, tzinfo=timezone.utc)
        campaign = piecewise([(datetime(2024, 6, 1, tzinfo=timezone.utc), 3.0)])
        week = weekly([1, 1, 1, 1, 1, 0.5, 0])
        minutes = profile(lambda when: 0.5 + (when.minute % 2) / 2, max=1.0)
        start = monday.timestamp() * 1000
        found = {}
        def run(name):
            return {
                "campaign": stopped_at_first(5 * week * campaign, 60_000, 2**31 - 1, start)(name),
                "callable": stopped_at_first(5 * week * minutes, 60_000, 2**31 - 1, start)(name),
                "rare": stopped_at_first(1e-6 * week, 60_000, 2**31 - 1, start)(name),
            }
        both(run)
        """
    )
    assert seen["c"] == seen["python"]
    for name in ("campaign", "callable", "rare"):
        assert seen["c"][name]["events"] == 1, seen["c"]
    assert seen["c"]["campaign"]["ticks"] < 10_000
    assert seen["c"]["callable"]["ticks"] < 10_000
    assert seen["c"]["rare"]["ticks"] > 10 * 7 * 24 * 60  # the first event years into the run


def test_a_sum_above_100_after_a_campaign_in_a_long_run_is_refused_before_any_event() -> None:
    seen = run_both(
        """
        start = datetime(2024, 12, 1, tzinfo=timezone.utc).timestamp() * 1000
        def run(name):
            found = {}
            for factor in (4.0, 3.0):  # above 100 % from March 2025, and never
                campaign = piecewise([(datetime(2025, 3, 1, tzinfo=timezone.utc), factor)])
                datagen = DataOnlineGenerator(
                    ["a", "b"], "a", object, 3, 3_600_000, 2**31 - 1, start, seed=1
                )
                datagen.add_transition("go", "a", "b", 30 * hourly([1] * 23 + [0.5]) * campaign)
                datagen.add_transition("back", "b", "a", 10, lambda s, t: datagen.stop() or True)
                try:
                    summary = datagen.start()
                    found[str(factor)] = {"events": summary.events}
                except Exception as exc:
                    found[str(factor)] = failure(exc)
            return found
        both(run)
        """
    )
    assert seen["c"] == seen["python"]
    outcome = seen["c"]["4.0"]
    assert outcome["error"] == "ConfigurationError", outcome
    assert "state 'a' sum to 120 at tick" in outcome["message"]
    assert "2025-03-01T00:00" in outcome["message"]
    assert outcome["summary"][1] == 0  # before the run: no event
    assert seen["c"]["3.0"]["events"] >= 1  # 90 % from March 2025: it runs


def test_a_callable_above_its_max_beyond_the_first_period_of_a_long_run_stops_it() -> None:
    """A callable is checked where the draws read it past the first ticks: the run stops
    with the clear error when it gets there, the events before it delivered."""
    seen = run_both(
        """
        bad_from = datetime(1970, 4, 1, tzinfo=timezone.utc)  # 90 days of minutes in
        sneaky = profile(lambda when: 3.0 if when >= bad_from else 1.0, max=2.0, name="sneaky")
        def run(name):
            sink = InMemorySink()
            datagen = DataOnlineGenerator(["a", "b"], "a", object, 5, 60_000, 2**31 - 1, 0, seed=1)
            day = hourly([1.0] * 8 + [0.5] * 16)
            datagen.add_transition("go", "a", "b", 10 * day * sneaky, event_sinks=[sink])
            datagen.add_transition("back", "b", "a", 5, event_sinks=[sink])
            found = {}
            try:
                datagen.start()
            except Exception as exc:
                found = failure(exc)
            found["delivered"] = len(sink.events)
            found["last"] = max(e.timestamp for e in sink.events) if sink.events else None
            found["bad_from"] = bad_from.timestamp() * 1000
            return found
        both(run)
        """
    )
    assert seen["c"] == seen["python"]
    outcome = seen["c"]
    assert outcome["error"] == "ConfigurationError", outcome
    assert "'sneaky' returned 3.0 at 1970-04-01T00:00" in outcome["message"]
    assert "above its declared max 2.0" in outcome["message"]
    assert outcome["delivered"] > 1000 and outcome["summary"][1] == outcome["delivered"]
    assert outcome["last"] < outcome["bad_from"]


def test_a_subject_first_entering_an_hourly_profiled_state_ages_into_a_run_draws_at_once() -> None:
    """Ticks of 2**31 - 1 ms (which do not divide a day, so nothing repeats and every tick is
    a step of the hourly profile) in a run without end: the subject reaches the profiled
    state only after a wait of 1e-6 % per tick, some 10**8 ticks in. The state's draws begin
    their steps at that tick, not at tick 0 (which took minutes and gigabytes)."""
    seen = run_both(
        """
        def run(name):
            states = ["s0", "s1", "s2"]
            datagen = DataOnlineGenerator(states, "s0", object, 1, 2**31 - 1, None, 0, seed=1)
            def stop(subject, transition):
                datagen.stop()
                return True
            datagen.add_transition("go", "s0", "s1", 100)
            datagen.add_transition("rare", "s1", "s2", 1e-6)
            datagen.add_transition("x", "s2", "s1", 50 * hourly([1] * 12 + [0.5] * 12), stop)
            summary = datagen.start()
            return {"events": summary.events, "ticks": summary.ticks}
        both(run)
        """
    )
    assert seen["c"] == seen["python"]
    assert seen["c"]["events"] == 3
    assert seen["c"]["ticks"] > 1_000_000  # the profiled state reached far into the run
