"""The model analysis: exact figures on small models, and against long seeded runs."""

import json
import math
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from support.analysis_check import (
    Z_LIMIT,
    banking_table,
    banking_without_vetoes,
    compare,
    format_rows,
    funnel,
    funnel_table,
    stationary_gap,
)
from support.models import Thing, ThingFactory, ping_pong, three_states

from doge_datagen import DataOnlineGenerator, InMemorySink
from doge_datagen.analysis.markov import HOUR_MS, VETO_NOTE, analyze, speed_for_rate
from doge_datagen.profiles import Profiled, hourly, piecewise, profile, weekly


def probability_at(transition, ms):
    p = transition.probability
    return p.value_ms(ms) if isinstance(p, Profiled) else p


def per_tick_occupancy(datagen, ticks):
    """The literal recurrence, one tick at a time, reading every probability (profiles too)
    at the tick's timestamp: the share of a subject in each state at the start of every tick
    (the reference the matrix powers are checked against)."""
    x = {s: 0.0 for s in datagen.states}
    x[datagen.initial_state] = 1.0
    history = []
    for tick in range(ticks):
        history.append(dict(x))
        ms = datagen.timestamp_start + tick * datagen.tick_ms
        nxt = dict.fromkeys(datagen.states, 0.0)
        for s, share in x.items():
            stay = share
            for t in datagen.transitions_from(s):
                moved = share * probability_at(t, ms) / 100
                nxt[t.to_state] += moved
                stay -= moved
            nxt[s] += stay
        x = nxt
    return history, x


def test_matrix_rows_hold_the_probabilities_and_staying():
    datagen, _ = three_states(10, 5, seed=1)
    m = analyze(datagen).matrix
    assert m["A"] == pytest.approx({"A": 0.92, "B": 0.05, "C": 0.03})
    assert m["B"] == pytest.approx({"A": 0.20, "B": 0.80, "C": 0.0})
    # The self-loop c_loop keeps the subject in C: staying is 1 - 0.5.
    assert m["C"] == pytest.approx({"A": 0.50, "B": 0.0, "C": 0.50})


def test_stationary_dwell_and_long_run_events_of_three_states():
    datagen, _ = three_states(1000, 5, seed=1)
    a = analyze(datagen)
    # Balance equations by hand: pi_B * 0.2 = pi_A * 0.05, pi_C * 0.5 = pi_A * 0.03.
    pa = 1 / (1 + 0.05 / 0.2 + 0.03 / 0.5)
    expected = {"A": pa, "B": pa * 0.25, "C": pa * 0.06}
    assert a.stationary == pytest.approx(expected)
    assert a.dwell == pytest.approx({"A": 12.5, "B": 5.0, "C": 2.0})
    assert a.events_per_tick == pytest.approx(
        {
            "a_to_b": 1000 * expected["A"] * 0.05,
            "a_to_c": 1000 * expected["A"] * 0.03,
            "b_to_a": 1000 * expected["B"] * 0.20,
            "c_to_a": 1000 * expected["C"] * 0.50,
            "c_loop": 1000 * expected["C"] * 0.10,
        }
    )
    # One tick is a minute in three_states.
    assert a.events_per_second["a_to_b"] == pytest.approx(a.events_per_tick["a_to_b"] / 60)
    # The one sink gets every event.
    assert list(a.sink_events_per_tick.values()) == [pytest.approx(a.total_events_per_tick)]
    assert a.final_states == [] and a.absorption == {} and a.ticks_to_absorption is None


@pytest.mark.parametrize("ticks", [0, 1, 2, 7, 64, 301])
def test_run_figures_follow_the_per_tick_recurrence(ticks):
    datagen, _ = three_states(250, ticks, seed=1)
    a = analyze(datagen)
    history, end = per_tick_occupancy(datagen, ticks)
    for t in datagen.transitions:
        expected = 250 * sum(x[t.from_state] for x in history) * t.probability / 100
        assert a.run_events[t.trigger] == pytest.approx(expected, abs=1e-9)
    assert a.run_end_shares == pytest.approx(end)


MONDAY = datetime(2024, 1, 1, tzinfo=timezone.utc)
LOGIN_HOURS = [0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.2, 1.6, 1.5, 1.1, 1.2]
LOGIN_HOURS += [1.6, 1.6, 1.1, 1.0, 1.1, 1.3, 1.7, 1.8, 1.9, 1.5, 1.0, 0.5]


def profiled_banking(kind, ticks=600, tick_ms=60_000):
    """The banking model (no callbacks) with a profiled login and weekday-only income; the
    engine's own validation is bypassed so that the analysis is tested on its own."""
    datagen = banking_without_vetoes(1000, ticks, seed=1)
    datagen.timestamp_start = MONDAY.timestamp() * 1000 - 3 * HOUR_MS  # Sunday 21:00
    datagen.tick_ms = tick_ms
    if kind == "hourly":
        shape = hourly(LOGIN_HOURS)
    elif kind == "callable":
        shape = profile(lambda when: 1 + math.sin(when.minute / 60 * 2 * math.pi), max=2)
    else:
        shape = piecewise([(MONDAY, 3.0), (MONDAY + timedelta(minutes=137), 0.0)])
    datagen.transitions[2].probability = 0.1 * shape
    datagen.transitions[0].probability = 0.01 * weekly([1.4] * 5 + [0, 0])
    return datagen


@pytest.mark.parametrize("kind", ["hourly", "callable", "piecewise"])
def test_profiled_run_figures_follow_the_per_tick_recurrence(kind):
    datagen = profiled_banking(kind, ticks=500, tick_ms=37_000)  # ticks across hour starts
    a = analyze(datagen)
    history, end = per_tick_occupancy(datagen, 500)
    for t in datagen.transitions:
        expected = (
            1000
            * sum(
                x[t.from_state] * probability_at(t, datagen.timestamp_start + n * datagen.tick_ms)
                for n, x in enumerate(history)
            )
            / 100
        )
        assert a.run_events[t.trigger] == pytest.approx(expected, rel=1e-9, abs=1e-9), t.trigger
    assert a.run_end_shares == pytest.approx(end)
    assert a.profiled and any("profiles" in note for note in a.notes)


def test_profiled_long_run_week_follows_the_profiles():
    datagen = profiled_banking("hourly")
    datagen.timestamp_start = MONDAY.timestamp() * 1000
    a = analyze(datagen)
    assert len(a.hourly_events) == len(a.hour_labels) == 168
    assert a.hour_labels[0] == "Mon 2024-01-01 00:00 UTC"
    logins = [h["login"] for h in a.hourly_events]
    # Logins per hour follow the hourly factors (offline share barely moves) ...
    for h in range(168):
        assert logins[h] / logins[8] == pytest.approx(LOGIN_HOURS[h % 24] / 1.6, rel=0.01)
    # ... every day alike; income only on weekdays, 1.4 times the flat model's.
    assert logins[:24] == pytest.approx(logins[24:48], rel=1e-6)
    income = [sum(h["income"] for h in a.hourly_events[24 * d : 24 * d + 24]) for d in range(7)]
    assert income[5] == income[6] == 0
    flat = analyze(banking_without_vetoes(1000, 600, seed=1))
    assert income[0] == pytest.approx(1.4 * 1440 * flat.events_per_tick["income"], rel=1e-3)
    # The week's average is the long-run figure; the factors average 1, as the flat model.
    assert sum(logins) / (168 * 60) == pytest.approx(a.events_per_tick["login"])
    assert a.events_per_tick["login"] == pytest.approx(flat.events_per_tick["login"], rel=2e-3)
    assert sum(a.stationary.values()) == pytest.approx(1.0)
    # Little's law: time in a state over the flow through it.
    assert a.dwell["online"] == pytest.approx(1.0, rel=1e-6)
    # The report prints the hours of the day and the days of the week.
    day = a.day_profile()
    assert [h["login"] for h in day] == pytest.approx(logins[:24], rel=1e-6)
    totals = a.day_totals()
    assert [d["income"] for d in totals] == pytest.approx(income)
    text = str(a)
    assert "Expected events per hour of the day" in text
    assert "Expected events per day of the week" in text
    assert "Sat 2024-01-06" in text
    assert "Expected events per hour" not in str(flat)


def test_constant_model_hourly_figures_are_flat():
    datagen, _ = three_states(1000, 10, seed=1)  # one-minute ticks
    a = analyze(datagen)
    for hour in a.hourly_events:
        assert hour == pytest.approx({k: 60 * v for k, v in a.events_per_tick.items()})


def test_a_periodic_model_has_a_stationary_distribution_and_exact_run_counts():
    datagen, _ = ping_pong(40, 9)
    a = analyze(datagen)
    assert a.stationary == pytest.approx({"ping": 0.5, "pong": 0.5})
    # Every subject moves every tick: 9 ticks, alternating hit, back, hit ...
    assert a.run_events == pytest.approx({"hit": 40 * 5, "back": 40 * 4})
    assert a.run_end_shares == pytest.approx({"ping": 0.0, "pong": 1.0})


def test_final_states_absorption_and_time_to_absorption_match_the_recurrence():
    datagen = funnel(100, 3000, seed=1)
    a = analyze(datagen)
    assert a.final_states == ["bought", "left"]
    assert a.dwell["bought"] is None and a.dwell["left"] is None
    assert a.dwell["browsing"] == pytest.approx(1 / 0.18)
    # Iterate the chain until (almost) everyone has arrived: where they are is the absorption,
    # and the ticks spent before are the sum over ticks of the share not yet arrived.
    history, end = per_tick_occupancy(datagen, 3000)
    assert a.absorption == pytest.approx({"bought": end["bought"], "left": end["left"]})
    assert sum(a.absorption.values()) == pytest.approx(1.0)
    not_arrived = sum(x["visitor"] + x["browsing"] + x["cart"] for x in history)
    assert a.ticks_to_absorption == pytest.approx(not_arrived)
    # The long run: everyone in a final state; bought still fires reviews there.
    assert a.stationary == pytest.approx(
        {**dict.fromkeys(["visitor", "browsing", "cart"], 0.0), **a.absorption}
    )
    assert set(k for k, v in a.events_per_tick.items() if v > 0) == {"review"}
    assert a.events_per_tick["review"] == pytest.approx(100 * a.absorption["bought"] * 0.005)


def test_closed_class_of_several_states_is_reported_with_its_probability():
    datagen = DataOnlineGenerator(["start", "x", "y", "end"], "start", Thing, 1, 1000, 10)
    datagen.add_transition("into_loop", "start", "x", 30)
    datagen.add_transition("to_end", "start", "end", 10)
    datagen.add_transition("x_y", "x", "y", 50)
    datagen.add_transition("y_x", "y", "x", 25)
    a = analyze(datagen)
    assert a.absorption == pytest.approx({"end": 0.25})
    assert a.closed_classes[0][0] == ["x", "y"]
    assert a.closed_classes[0][1] == pytest.approx(0.75)
    assert a.ticks_to_absorption == pytest.approx(1 / 0.4)
    # Inside the loop: y holds x's 50 % against its own 25 %.
    assert a.stationary == pytest.approx(
        {"start": 0, "x": 0.75 / 3, "y": 0.75 * 2 / 3, "end": 0.25}
    )


def test_unreachable_states_states_without_exits_and_triggers_that_never_fire():
    datagen = DataOnlineGenerator(["a", "b", "island", "sink"], "a", Thing, 5, 1000, 10)
    datagen.add_transition("go", "a", "b", 10)
    datagen.add_transition("back", "b", "a", 10)
    datagen.add_transition("never", "a", "sink", 0)
    datagen.add_transition("stranded", "island", "a", 50)
    a = analyze(datagen)
    assert a.unreachable_states == ["island", "sink"]
    assert a.final_states == ["sink"]
    assert a.never_firing_triggers == ["never", "stranded"]
    text = str(a)
    assert "unreachable states: 'island', 'sink'" in text
    assert "states without exits: 'sink'" in text
    assert "triggers that can never fire: 'never', 'stranded'" in text


def test_the_analysis_says_it_cannot_see_vetoes_and_names_the_callback_triggers():
    datagen, _ = three_states(10, 10, seed=1)
    datagen.transitions[1].action_callback = lambda s, t: False
    a = analyze(datagen)
    assert a.callback_triggers == ["a_to_c"]
    text = str(a)
    assert VETO_NOTE in text
    assert "cannot see vetoes" in VETO_NOTE and "fall short" in VETO_NOTE
    assert "'a_to_c'" in text
    assert VETO_NOTE in a.to_dict()["notes"]


def test_json_has_the_documented_keys_and_round_trips():
    datagen, _ = three_states(1000, 50, seed=1)
    a = analyze(datagen)
    data = json.loads(a.to_json())
    assert data["stationary"] == pytest.approx(a.stationary)
    assert data["dwell"] == pytest.approx(a.dwell)
    assert data["events_per_tick"] == pytest.approx(a.events_per_tick)
    assert data["run"]["events"] == pytest.approx(a.run_events)
    assert sum(data["matrix"]["A"].values()) == pytest.approx(1.0)


def test_analysis_reads_the_model_without_running_it():
    created = []

    def factory():
        created.append(1)
        return Thing()

    sink = InMemorySink()
    datagen = DataOnlineGenerator(["p", "q"], "p", factory, 3, 1000, 10, seed=1)
    datagen.add_transition("go", "p", "q", 50, action_callback=lambda s, t: created.append(2))
    datagen.add_transition("back", "q", "p", 50, event_sinks=[sink])
    analyze(datagen)
    assert created == [] and len(sink) == 0 and sink.closed == 0


def test_subjects_and_ticks_can_be_overridden():
    datagen, _ = three_states(10, 10, seed=1)
    a = analyze(datagen, subjects_num=20, ticks_num=None)
    assert a.subjects == 20 and a.run_events is None
    assert a.total_events_per_tick == pytest.approx(2 * analyze(datagen).total_events_per_tick)


def test_speed_for_rate_makes_the_run_produce_the_rate():
    # ping_pong at 100 %: every subject moves every tick, so 40 subjects on 1-second ticks
    # make exactly 40 events per simulated second; 2,000 events/s needs speed 50.
    datagen, _ = ping_pong(40, 100)
    assert speed_for_rate(analyze(datagen), 2000) == pytest.approx(50)
    # In general: the run's expected events over its paced wall time equal the rate.
    datagen, _ = three_states(1000, 1440, seed=1)
    a = analyze(datagen)
    speed = speed_for_rate(a, 2000)
    wall = a.ticks * a.tick_ms / 1000 / speed
    assert a.run_total_events / wall == pytest.approx(2000)
    # Without a tick limit, the long-run rate is used.
    a = analyze(datagen, ticks_num=None)
    assert speed_for_rate(a, 10) * a.total_events_per_second == pytest.approx(10)


def test_speed_for_rate_refuses_a_model_without_events_and_a_bad_rate():
    datagen = DataOnlineGenerator(["a", "b"], "a", Thing, 5, 1000, 10)
    datagen.add_transition("never", "a", "b", 0)
    with pytest.raises(ValueError, match="no events"):
        speed_for_rate(analyze(datagen), 100)
    datagen, _ = ping_pong(4, 10)
    for bad in (0, -5, float("inf"), float("nan"), True):
        with pytest.raises(ValueError, match="rate must be a positive number"):
            speed_for_rate(analyze(datagen), bad)


def test_import_doge_datagen_imports_neither_numpy_nor_matplotlib():
    code = (
        "import sys, doge_datagen, doge_datagen.cli;"
        "heavy = [m for m in ('numpy', 'matplotlib', 'scipy') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- against long seeded runs ---------------------------------------------------------------
# Sigma and the false alarm rate are derived in analysis_check.py: per figure |z| <= 3 fails
# by chance with probability 2 * norm.sf(3) = 0.27 %.


def _check(title, analysis, rows):
    from scipy.stats import norm

    print()
    print(format_rows(f"{title}: {analysis.subjects} subjects, {analysis.ticks} ticks", rows))
    assert 2 * norm.sf(Z_LIMIT) == pytest.approx(0.0027, abs=1e-4)
    bad = [r for r in rows if r.z is not None and abs(r.z) > Z_LIMIT]
    assert not bad, bad
    assert all(r.observed == r.predicted for r in rows if r.z is None)


@pytest.mark.slow
def test_banking_demo_without_vetoes_matches_a_long_run():
    analysis, rows = banking_table()
    assert analysis.final_states == []
    assert len(rows) == 7 + 4 + 3  # triggers, sinks, states
    assert stationary_gap(analysis) < 0.01  # the share rows test the stationary shares
    _check("banking demo without vetoes", analysis, rows)


@pytest.mark.slow
def test_model_with_final_states_matches_a_long_run():
    analysis, rows = funnel_table()
    assert analysis.final_states == ["bought", "left"]
    assert any(r.figure.startswith("ticks to absorption") for r in rows)
    assert stationary_gap(analysis) < 0.01
    _check("funnel with final states", analysis, rows)


@pytest.mark.slow
def test_the_comparison_catches_a_wrong_prediction():
    """The check has power: an analysis of a model whose login is 10 % more likely than the
    model that runs is rejected by the same comparison."""
    datagen = banking_without_vetoes(5000, 5000, seed=3)
    wrong = banking_without_vetoes(5000, 5000, seed=3)
    wrong.transitions[2].probability *= 1.1
    _, rows = compare(datagen, lambda u: u.user_id, analysis=analyze(wrong))
    assert max(abs(r.z) for r in rows if r.z is not None) > Z_LIMIT


def test_per_subject_variance_sigma_is_that_of_independent_subjects():
    """The sigma of a total is sqrt(n * Var(X)): checked on counts whose variance is known
    (ping_pong at 100 %: every subject makes exactly the same moves, so sigma is 0)."""
    datagen, _ = ping_pong(50, 11)
    _, rows = compare(datagen, lambda thing: thing.n)
    events = {r.figure: r for r in rows if r.figure.startswith("events")}
    assert events["events hit"].observed == 50 * 6 and events["events hit"].sigma == 0
    assert math.isclose(events["events back"].predicted, 50 * 5)


def test_three_states_matches_a_short_run_too():
    datagen, _ = three_states(2000, 300, seed=5)
    datagen.subject_factory = ThingFactory()
    analysis, rows = compare(datagen, lambda thing: thing.n)
    assert all(
        abs(r.z) <= Z_LIMIT for r in rows if r.z is not None and r.figure.startswith("events")
    )


def per_tick_counts_with_arrivals(datagen, ticks):
    """The literal recurrence with arrivals: numbers of subjects per state at every tick,
    new ones joining the initial state before the tick's moves."""
    x = dict.fromkeys(datagen.states, 0.0)
    x[datagen.initial_state] = float(datagen.subjects_num)
    events = dict.fromkeys((t.trigger for t in datagen.transitions), 0.0)
    arrivals = datagen.arrivals
    for tick in range(ticks):
        ms = datagen.timestamp_start + tick * datagen.tick_ms
        rate = arrivals.value_ms(ms) if isinstance(arrivals, Profiled) else arrivals
        x[datagen.initial_state] += rate
        nxt = dict.fromkeys(datagen.states, 0.0)
        for s, count in x.items():
            stay = count
            for t in datagen.transitions_from(s):
                moved = count * probability_at(t, ms) / 100
                events[t.trigger] += moved
                nxt[t.to_state] += moved
                stay -= moved
            nxt[s] += stay
        x = nxt
    return events, x


@pytest.mark.parametrize(
    "arrivals", [3.0, 4.0 * hourly([0.0] * 6 + [2.0] * 12 + [0.0] * 6), "callable"]
)
def test_arrivals_are_counted_in_the_run_figures(arrivals):
    datagen = funnel(100, 300, seed=1)
    datagen.timestamp_start = MONDAY.timestamp() * 1000 + 5.5 * HOUR_MS
    if arrivals == "callable":
        arrivals = 2.0 * profile(lambda when: when.minute / 30, max=2)
    datagen.arrivals = arrivals
    datagen.tick_ms = 60_000
    a = analyze(datagen)
    events, end = per_tick_counts_with_arrivals(datagen, 300)
    assert a.run_events == pytest.approx(events)
    assert a.run_population == pytest.approx(sum(end.values()))
    assert a.run_arrivals == pytest.approx(a.run_population - 100)
    assert a.run_end_shares == pytest.approx({s: v / a.run_population for s, v in end.items()})
    assert a.arrivals_per_tick is not None and a.arrivals_per_tick > 0
    assert any("arrive" in note for note in a.notes)
    assert "Arrivals: " in str(a)
    assert json.loads(a.to_json())["arrivals"]["run"] == pytest.approx(a.run_arrivals)


@pytest.mark.slow
def test_arrivals_run_matches_the_analysis():
    """The engine with arrivals against the analysis: the count of each trigger over the run
    is a sum over the independent initial subjects plus a sum over a Poisson process of
    arrivals, whose variance is the sum of E[X_j^2] over arrivals (estimated by the sum of the
    squared per-arrival counts); |z| <= 3 for each trigger (0.27 % false alarm each). The
    number of arrivals is Poisson: within 3 sigma of its mean."""
    datagen = funnel(2000, 400, seed=21)
    datagen.arrivals = 5.0
    a = analyze(datagen)
    counts = {}
    sink_by_trigger = InMemorySink(lambda ts, s, t: s.n)
    for t in datagen.transitions:
        t.event_sinks = [sink_by_trigger]
    datagen.subject_factory = ThingFactory()
    summary = datagen.start()
    for e in sink_by_trigger.events:
        counts.setdefault(e.trigger, {}).setdefault(e.value, 0)
        counts[e.trigger][e.value] += 1
    rows = []
    for trigger, predicted in a.run_events.items():
        per_subject = counts.get(trigger, {})
        initial = [c for i, c in per_subject.items() if i < 2000]
        later = [c for i, c in per_subject.items() if i >= 2000]
        var_initial = 2000 * (sum(c * c for c in initial) / 2000 - (sum(initial) / 2000) ** 2)
        var_later = sum(c * c for c in later)
        sigma = math.sqrt(var_initial + var_later)
        observed = summary.events_per_trigger[trigger]
        rows.append((trigger, predicted, observed, (observed - predicted) / sigma))
    print()
    for row in rows:
        print(f"{row[0]:<15} predicted {row[1]:10.1f} observed {row[2]:7d} z {row[3]:+.2f}")
    assert all(abs(z) <= 3 for *_, z in rows), rows
    arrived = len(datagen.subjects) - 2000
    assert arrived == pytest.approx(a.run_arrivals, abs=3 * math.sqrt(a.run_arrivals))


@pytest.mark.slow
def test_profiled_banking_matches_a_seeded_run():
    """Profiles too: hourly logins and weekday income, two days from Monday 00:00; the run's
    counts per trigger and sink and the shares at its end against the exact run figures."""
    datagen = banking_without_vetoes(20_000, 2 * 1440, seed=5)
    datagen.timestamp_start = int(MONDAY.timestamp() * 1000)
    login, income = datagen.transitions[2], datagen.transitions[0]
    login.probability = 0.1 * hourly(LOGIN_HOURS)
    income.probability = 0.01 * weekly([1.4] * 5 + [0, 0])
    analysis, rows = compare(datagen, lambda u: u.user_id)
    _check("banking demo with a day, without vetoes", analysis, rows)


def test_arrivals_into_final_states_settle_to_a_steady_population():
    """A funnel without the reviews: every arrival ends in a final state that fires nothing,
    so the recurrence's events per tick approach a * (expected events per lifetime)."""
    datagen = funnel(0, 3000, seed=1)
    datagen.transitions[-1].probability = 0  # no reviews after buying
    datagen.arrivals = 4.0
    a = analyze(datagen)
    assert a.arrivals_steady_events_per_tick is not None
    events, end = per_tick_counts_with_arrivals(datagen, 3000)
    previous, _ = per_tick_counts_with_arrivals(datagen, 2999)
    last_tick = {k: events[k] - previous[k] for k in events}
    assert a.arrivals_steady_events_per_tick == pytest.approx(last_tick, rel=1e-6, abs=1e-9)
    # Counted during a tick: those left after the last tick's moves plus the next arrivals.
    active = sum(v for s, v in end.items() if s not in ("bought", "left")) + 4.0
    assert a.arrivals_steady_active == pytest.approx(active, rel=1e-6)
    assert a.arrivals_steady_active == pytest.approx(4.0 * a.ticks_to_absorption)
    assert "the population settles at" in str(a)
    # With the reviews, bought subjects pile up and keep firing: no steady figure.
    datagen.transitions[-1].probability = 0.5
    b = analyze(datagen)
    assert b.arrivals_steady_events_per_tick is None
    assert "do not settle" in str(b)
