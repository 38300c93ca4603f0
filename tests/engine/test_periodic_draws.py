"""Waits of periodic profiles that reach past the two periods the C loop's lists hold.

A timeline whose segments repeat (hourly and weekly profiles in UTC, after any campaign) keeps
two periods in the lists the C loop reads; a wait whose hazard is used up further on is found
by ``StateTimeline._find``'s arithmetic (whole periods by division, then a bisection within
one), which the C loop does itself from ``_periodic``. Each model here runs in both loops: the
events, summaries and ticks done must be the same, and the C run may call the timeline's
Python draw at most once per segment (the first draw from a tick of a new segment, which
moves the lists on), however far the waits go.
"""

import os
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from support.loops import CountingLoop
from support.models import ThingFactory

from doge_datagen import DataOnlineGenerator, InMemorySink
from doge_datagen.engine import loop as engine
from doge_datagen.engine.timevarying import StateTimeline
from doge_datagen.profiles import hourly, piecewise, weekly

pytestmark = pytest.mark.skipif(
    engine._speedups is None and os.environ.get("CI") != "true",
    reason="the C speed-ups are not built in this checkout",
)

MONDAY = datetime(2024, 5, 6, tzinfo=timezone.utc)
MONDAY_MS = round(MONDAY.timestamp() * 1000)
MINUTE_MS = 60_000
DAY = 1440  # minutes
#: An hourly curve with hours that are never left (zero hazard) at night.
NIGHTS_OFF = [0, 0, 0, 0.1, 0.2, 0.5, 1.2, 1.6, 1.5, 1.1, 1.2, 1.6]
NIGHTS_OFF = NIGHTS_OFF + [1.6, 1.1, 1.0, 1.1, 1.3, 1.7, 1.8, 1.9, 1.5, 1.0, 0.5, 0]

Build = Callable[[], Tuple[DataOnlineGenerator, InMemorySink]]


def one_state(
    probability: Any,
    subjects: int,
    ticks: Optional[int],
    tick_ms: int = MINUTE_MS,
    start: int = MONDAY_MS,
    stop_after: int = 0,
) -> Build:
    """A model of one state ``a`` left for itself with ``probability``: every event is one
    wait of one subject. With ``stop_after``, the run stops after that many events."""

    def build() -> Tuple[DataOnlineGenerator, InMemorySink]:
        sink = InMemorySink(lambda ts, s, t: s.n)
        datagen = DataOnlineGenerator(
            ["a"], "a", ThingFactory(), subjects, tick_ms, ticks, start, seed=7
        )

        def stop(subject: Any, transition: Any) -> bool:
            if len(sink.events) + 1 >= stop_after:
                datagen.stop()
            return True

        datagen.add_transition("x", "a", "a", probability, stop if stop_after else None, [sink])
        return datagen, sink

    return build


def run_both(build: Build, monkeypatch: pytest.MonkeyPatch) -> List[Dict[str, Any]]:
    """The C run's and the Python run's events, summaries and ticks, with the number of draws
    each made with the timeline's Python ``draw``."""
    outcomes = []
    original = StateTimeline.draw
    for speedups in (CountingLoop(engine._speedups), None):
        calls = [0]

        def draw(
            self: StateTimeline, key: int, index: int, tick: int, calls: List[int] = calls
        ) -> Tuple[float, Any]:
            calls[0] += 1
            return original(self, key, index, tick)

        with monkeypatch.context() as patch:
            patch.setattr(engine, "_speedups", speedups)
            patch.setattr(StateTimeline, "draw", draw)
            datagen, sink = build()
            summary = datagen.start()
        if speedups is not None:
            assert speedups.runs >= 1, "the C loop did not run this model"
        outcomes.append(
            {
                "events": [(e.timestamp, e.value) for e in sink.events],
                "summary": (summary.events, summary.events_per_trigger),
                "ticks_done": datagen._last_run.ticks_done,
                "python_draws": calls[0],
            }
        )
    return outcomes


def longest_wait(events: List[Tuple[int, int]], tick_ms: int = MINUTE_MS) -> int:
    """The longest time, in ticks, between two events of one subject."""
    last: Dict[int, int] = {}
    longest = 0
    for timestamp, subject in events:
        if subject in last:
            longest = max(longest, (timestamp - last[subject]) // tick_ms)
        last[subject] = timestamp
    return longest


def check(build: Build, monkeypatch: pytest.MonkeyPatch, segments: int) -> Dict[str, Any]:
    """Both loops alike, and the C run's Python draws at most one per segment of the run."""
    fast, pure = run_both(build, monkeypatch)
    python_draws = fast.pop("python_draws")
    all_draws = pure.pop("python_draws")
    assert fast == pure
    assert python_draws <= segments, (python_draws, all_draws)
    fast["all_draws"] = all_draws
    return fast


def test_waits_of_days_in_an_hourly_profile_are_drawn_in_c_as_in_python(monkeypatch) -> None:
    """Waits of a few days: many end beyond the day after the one they start in."""
    ticks = 20 * DAY
    seen = check(one_state(0.03 * hourly(NIGHTS_OFF), 1500, ticks), monkeypatch, ticks // 60)
    assert seen["summary"][0] > 5000
    assert seen["all_draws"] > 2 * ticks // 60  # most draws were made in C
    assert longest_wait(seen["events"]) > 3 * DAY  # past both periods the lists hold


def test_waits_of_many_weeks_in_a_weekly_profile_are_drawn_in_c_as_in_python(
    monkeypatch,
) -> None:
    """A weekly and an hourly profile (a period of a week), waits of months over two years:
    many end dozens of periods on, and many after the run's end (the subject rests)."""
    ticks = 2 * 365 * DAY
    profiled = 2e-4 * weekly([1, 1, 1, 1, 1, 0.5, 0]) * hourly(NIGHTS_OFF)
    seen = check(one_state(profiled, 300, ticks), monkeypatch, ticks // 60)
    assert seen["summary"][0] > 300
    assert longest_wait(seen["events"]) > 20 * 7 * DAY  # twenty periods on
    assert seen["ticks_done"] == ticks


def test_waits_that_end_near_or_past_the_end_of_a_run_cut_within_a_day(monkeypatch) -> None:
    """A run that ends within a day (and within an hour): the last draws land in the last,
    cut period or after the run's end, and rest."""
    ticks = 9 * DAY + 7 * 60 + 13
    seen = check(one_state(0.02 * hourly(NIGHTS_OFF), 800, ticks), monkeypatch, ticks // 60 + 1)
    last = max(timestamp for timestamp, _ in seen["events"])
    assert (last - MONDAY_MS) // MINUTE_MS > ticks - 60  # events in the run's last hour
    assert seen["all_draws"] > seen["summary"][0]  # some draws found no tick before the end


def test_a_campaign_that_ends_leaves_its_subjects_resting_for_good(monkeypatch) -> None:
    """An hourly profile times a campaign that ends after two days and a half: the segments
    repeat from then on, with no hazard in any period; a wait past the campaign rests."""
    end = MONDAY + timedelta(days=2, hours=12)
    campaign = piecewise([(MONDAY + timedelta(hours=5), 1.0), (end, 0.0)])
    ticks = 30 * DAY
    seen = check(one_state(0.05 * hourly(NIGHTS_OFF) * campaign, 1000, ticks), monkeypatch, 3 * 24)
    events = seen["events"]
    assert len(events) > 1000
    assert max(timestamp for timestamp, _ in events) < end.timestamp() * 1000
    assert seen["ticks_done"] == ticks


def test_ticks_off_the_hour_from_a_start_off_the_hour(monkeypatch) -> None:
    """Ticks of seven minutes from 00:17: the hours' boundaries fall between ticks, the
    segments repeat every week (1,440 ticks) after the first whole hour."""
    tick_ms = 7 * MINUTE_MS
    ticks = 6 * 1440
    build = one_state(
        0.2 * hourly(NIGHTS_OFF), 600, ticks, tick_ms=tick_ms, start=MONDAY_MS + 17 * MINUTE_MS
    )
    seen = check(build, monkeypatch, ticks * 7 // 60 + 2)
    assert seen["summary"][0] > 3000
    assert longest_wait(seen["events"], tick_ms) > 2 * 1440


def test_a_run_without_end_draws_far_waits_in_c_as_in_python(monkeypatch) -> None:
    """No tick limit: the run is stopped by a callback after 4,000 events."""
    build = one_state(0.01 * hourly(NIGHTS_OFF), 500, None, stop_after=4000)
    fast, pure = run_both(build, monkeypatch)
    python_draws = fast.pop("python_draws")
    pure.pop("python_draws")
    assert fast == pure
    assert fast["summary"][0] == 4000
    assert python_draws <= fast["ticks_done"] // 60 + 1
    assert longest_wait(fast["events"]) > 3 * DAY


def test_without_the_periodic_figures_the_c_loop_leaves_far_waits_to_python(
    monkeypatch,
) -> None:
    """The same model with ``_periodic`` withheld from the C loop: the waits past its lists
    are drawn in Python, with the same events (so the count above measures the C path)."""
    ensure = StateTimeline._ensure_period

    def withheld(self: StateTimeline) -> bool:
        built = ensure(self)
        self._periodic = None
        return built

    ticks = 20 * DAY
    build = one_state(0.03 * hourly(NIGHTS_OFF), 1500, ticks)
    with_figures, _ = run_both(build, monkeypatch)
    monkeypatch.setattr(StateTimeline, "_ensure_period", withheld)
    without, pure = run_both(build, monkeypatch)
    assert without["events"] == with_figures["events"] == pure["events"]
    assert without["python_draws"] > ticks // 60  # more than one per segment
    assert with_figures["python_draws"] <= ticks // 60


def test_the_c_draw_finds_the_segment_python_finds_for_targets_periods_ahead() -> None:
    """Timeline by timeline: ``_find`` gives the same segment whether the target is in the
    lists the C loop reads or far beyond them (the C arithmetic follows ``_find``)."""
    datagen, _ = one_state(0.03 * hourly(NIGHTS_OFF), 1, 30 * DAY)()
    datagen.start()
    (timeline,) = [
        t for t in (table[3] for table in datagen._last_run.tables) if isinstance(t, StateTimeline)
    ]
    assert timeline._periodic is not None
    first, ticks, c0, hazard, used, fasts = timeline._periodic
    assert (first, ticks) == (0, DAY) and len(fasts) == len(used) == 24
    for n in (0, 1, 2, 7, 29):
        for k in range(24):
            found = timeline._find(c0 + n * hazard + used[k])
            if fasts[k][6] == 0.0:
                continue  # a night hour: the hazard there is the next hour's too
            assert found.start == fasts[k][0] + n * ticks
            assert found.end == fasts[k][1] + n * ticks
            assert found.thresholds is timeline._period[k].thresholds
