"""Fitting a model from an event log (doge_datagen.fit): the round trip through the banking
model, exact exposures on hand-made logs, the columnar fit against the row loop, the
generated module, the command and every bad input."""

import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from scipy import stats
from support.docs import code_blocks, page
from support.models import ThingFactory

from doge_datagen import CountingSink, DataOnlineGenerator, InMemorySink
from doge_datagen.cli.main import event_row, main
from doge_datagen.demo import UserFactory, banking_generator
from doge_datagen.errors import ConfigurationError, RecordError
from doge_datagen.file_sink import FileSink
from doge_datagen.fit import fitter as fit_module
from doge_datagen.fit._rows import Z95 as wilson_z95
from doge_datagen.fit._rows import wilson_interval
from doge_datagen.fit.fitter import FittedModel, fit_events, read_events
from doge_datagen.profiles import Profiled

ROOT = Path(__file__).resolve().parents[2]
MONDAY = 1_704_067_200_000  # 2024-01-01T00:00:00Z, a Monday
MINUTE = 60_000
TRANSITION_FIELDS = dict(from_state="from_state", to_state="to_state", trigger="event")


def banking_log(path: Path, seed: int, subjects: int, ticks: int) -> Tuple[Any, Any]:
    """Run the banking model of ``doge_datagen.demo`` with its day (logins by the hour,
    income on weekdays), every event into one JSON Lines file; return (generator, summary).

    The callbacks are removed: a veto (spending more than the balance) hides a move, so the
    log would show a lower rate than the probability written in the model."""
    sink = FileSink(path, event_row)
    datagen = banking_generator(
        sink, sink, sink, sink, subjects_num=subjects, ticks_num=ticks, seed=seed,
        timestamp_start=MONDAY, day=True,
    )  # fmt: skip
    assert isinstance(truth(datagen)["login"], Profiled)
    assert isinstance(truth(datagen)["income"], Profiled)
    for transition in datagen.transitions:
        transition.action_callback = None
        transition.event_sinks = [sink]
    return datagen, datagen.start()


def truth(datagen: Any) -> Dict[str, Any]:
    return {t.trigger.strip(): t.probability for t in datagen.transitions}


def true_value(probability: Any, hour_of_week: int) -> float:
    """The true probability (percent) in an hour of the week from Monday 00:00 UTC."""
    if isinstance(probability, (int, float)):
        return float(probability)
    return float(probability.value_ms(MONDAY + hour_of_week * 3_600_000))


@pytest.fixture(scope="module")
def week_logs(tmp_path_factory: Any) -> List[Tuple[Any, Any, Path]]:
    """Three seeded weeks of the banking model, 600 users, one-minute ticks."""
    runs = []
    for seed in (11, 12, 13):
        path = tmp_path_factory.mktemp("fit") / f"banking-{seed}.jsonl"
        datagen, summary = banking_log(path, seed, 600, 7 * 24 * 60)
        runs.append((datagen, summary, path))
    return runs


def fit_week(datagen: Any, path: Path) -> FittedModel:
    return fit_events(
        read_events(path), tick_ms=MINUTE, subject="user_id", timestamp="timestamp",
        subjects=datagen.subjects_num, initial_state="offline", start=MONDAY,
        end=MONDAY + datagen.ticks_num * MINUTE, weekly=True, **TRANSITION_FIELDS,
    )  # fmt: skip


def test_round_trip_95_percent_intervals_hold_the_true_probabilities(week_logs):
    """Every interval (each transition's overall one where its truth is constant, and its
    168 hourly ones) either holds the true probability or misses it. If the intervals are
    right, misses ~ Binomial(n, 0.05); the test fails when they exceed the binomial's
    0.999 quantile (false-alarm rate 0.1%). A 10% bias in the truth must fail it (power)."""
    misses = biased = total = 0
    for datagen, _summary, path in week_logs:
        model = fit_week(datagen, path)
        real = truth(datagen)
        assert {t.trigger for t in model.transitions} == set(real)
        for t in model.transitions:
            p = real[t.trigger]
            if isinstance(p, (int, float)):
                total += 1
                misses += not (t.low <= p <= t.high)
                biased += not (t.low <= 1.1 * p <= t.high)
            assert t.profile is not None and len(t.profile.factors) == 168
            for h, (low, high) in enumerate(t.profile.intervals()):
                if t.profile.exposure[h] == 0:
                    continue
                value = true_value(p, h)
                total += 1
                misses += not (low <= value <= high)
                biased += not (low <= 1.1 * value <= high)
    limit = stats.binom.ppf(0.999, total, 0.05)
    coverage = 1 - misses / total
    print(f"{total} intervals, {misses} misses (coverage {coverage:.3f}), limit {limit:.0f}")
    assert misses <= limit, f"{misses} of {total} intervals miss (limit {limit})"
    assert biased > limit, f"a 10% bias went unnoticed: {biased} misses of {total}"


def test_round_trip_overall_estimates_within_their_intervals(week_logs):
    """The constant transitions' own 95% intervals, over the three seeds: 5 of them per seed,
    15 in all; more than binom.ppf(0.999, 15, 0.05) = 3 misses has probability < 0.1%."""
    misses = total = 0
    for datagen, _summary, path in week_logs:
        model = fit_week(datagen, path)
        for t in model.transitions:
            p = truth(datagen)[t.trigger]
            if isinstance(p, (int, float)):
                total += 1
                misses += not (t.low <= p <= t.high)
    assert total == 15
    assert misses <= stats.binom.ppf(0.999, total, 0.05)


def test_fitted_model_run_with_a_new_seed_gives_the_same_event_rates(week_logs):
    """Per trigger, the fitted model's count minus the original's is within 3 sigma, sigma
    being the Poisson standard deviation of a difference of two counts, sqrt(n1 + n2)
    (two-sided 0.27% false alarm per trigger, about 2% for the seven)."""
    datagen, summary, path = week_logs[0]
    model = fit_week(datagen, path)
    sink = CountingSink()
    fitted = model.generator(UserFactory(), seed=99, event_sinks=[sink])
    assert fitted.subjects_num == 600 and fitted.ticks_num == 7 * 24 * 60
    again = fitted.start()
    original = {k.strip(): n for k, n in summary.events_per_trigger.items()}
    assert set(again.events_per_trigger) == set(original)
    for trigger, n1 in original.items():
        n2 = again.events_per_trigger[trigger]
        sigma = math.sqrt(n1 + n2)
        assert abs(n2 - n1) <= 3 * sigma, (trigger, n1, n2)
    assert again.events == sink.count


def test_fitted_profiles_follow_the_day(week_logs):
    """Login's fitted hourly shape matches the true one: the night hours (factors 0.1 to 0.2)
    come out far below the evening ones (1.3 to 1.9), and income is zero at weekends."""
    datagen, _summary, path = week_logs[0]
    model = fit_events(
        read_events(path), tick_ms=MINUTE, subject="user_id", timestamp="timestamp",
        subjects=600, initial_state="offline", hourly=True, **TRANSITION_FIELDS,
    )  # fmt: skip
    login = model.transition("login").profile
    assert login is not None and login.kind == "hourly"
    night = sum(login.events[:6]) / sum(login.exposure[:6])
    evening = sum(login.events[17:21]) / sum(login.exposure[17:21])
    assert evening / night > 5
    weekly_model = fit_week(datagen, path)
    income = weekly_model.transition("income").profile
    assert income is not None and sum(income.events[5 * 24 :]) == 0
    assert all(f == 0.0 for f in income.factors[5 * 24 :])


def test_hours_a_short_log_does_not_cover_keep_the_overall_probability(engine):
    """A log of two hours (09:00 to 11:00 UTC) fitted with ``hourly=True``: the 22 hours
    without exposure have no data, so their factor is 1 (the overall probability), not 0. A
    day run of the fitted model then moves in every hour; with about 1,000 expected moves per
    hour, an hour without any has probability below e**-900."""
    sink = InMemorySink(
        lambda ts, s, t: {"s": s.n, "t": ts, "a": t.from_state, "b": t.to_state, "e": t.trigger}
    )
    start = MONDAY + 9 * 3_600_000
    datagen = DataOnlineGenerator(
        ["off", "on"], "off", ThingFactory(), 300, MINUTE, 120, start, seed=4
    )
    datagen.add_transition("login", "off", "on", 5, event_sinks=[sink])
    datagen.add_transition("logout", "on", "off", 10, event_sinks=[sink])
    datagen.start()
    model = fit_events(
        [e.value for e in sink.events], tick_ms=MINUTE, subject="s", timestamp="t",
        from_state="a", to_state="b", trigger="e", subjects=300, initial_state="off",
        hourly=True,
    )  # fmt: skip
    for trigger in ("login", "logout"):
        profile = model.transition(trigger).profile
        assert profile is not None
        covered = [h for h in range(24) if profile.exposure[h]]
        assert covered == [9, 10], (trigger, covered)
        assert all(profile.factors[h] == 1.0 for h in range(24) if h not in covered), trigger
    hours = InMemorySink(lambda ts, s, t: (ts - MONDAY) // 3_600_000)
    twin = model.generator(
        ThingFactory(), ticks_num=24 * 60, timestamp_start=MONDAY, seed=5, event_sinks=[hours]
    )
    twin.start()
    per_hour = Counter(e.value for e in hours.events)
    assert sorted(per_hour) == list(range(24)), per_hour
    assert min(per_hour.values()) > 500, per_hour


# -- exact exposures on hand-made logs ------------------------------------------------------


def rows_ab() -> List[Dict[str, Any]]:
    return [
        {"s": 1, "t": 0, "a": "A", "b": "B"},
        {"s": 2, "t": MINUTE, "a": "A", "b": "B"},
        {"s": 1, "t": 2 * MINUTE, "a": "B", "b": "A"},
    ]


@pytest.fixture(params=["columns", "rows"])
def engine(request, monkeypatch):
    """Run a test with the columnar fit and with the row loop."""
    if request.param == "rows":
        monkeypatch.setattr(fit_module, "_engine", lambda needs_rows: fit_module._Fit)
    return request.param


def test_exposure_counts_each_draw_as_the_engine_makes_it(engine):
    """Subject 1 leaves A at tick 0 (1 draw), subject 2 at tick 1 (2 draws: ticks 0 and 1);
    subject 1 draws in B at ticks 1 and 2 and leaves at 2, then is in A at the last tick: no
    draw left. Subject 2 enters B at tick 1: one draw at tick 2, censored at the end."""
    model = fit_events(rows_ab(), tick_ms=MINUTE, subject="s", timestamp="t",
                       from_state="a", to_state="b")  # fmt: skip
    ab, ba = model.transitions
    assert (ab.trigger, ab.events, ab.exposure) == ("A->B", 2, 3)
    assert (ba.trigger, ba.events, ba.exposure) == ("B->A", 1, 3)
    assert ab.probability == pytest.approx(200 / 3)
    assert (model.start, model.end, model.ticks, model.subjects) == (0, 3 * MINUTE, 3, 2)


def test_subjects_that_never_moved_add_their_window_to_the_initial_state(engine):
    model = fit_events(rows_ab(), tick_ms=MINUTE, subject="s", timestamp="t", from_state="a",
                       to_state="b", subjects=5, initial_state="A")  # fmt: skip
    ab = model.transition("A->B")
    assert ab.exposure == 3 + 3 * 3
    assert model.subjects == 5
    assert model.initial_shares == {"A": 1.0}


def test_end_censors_the_last_spells(engine):
    """With end= four ticks later, subject 1 (in A after tick 2) and subject 2 (in B after
    tick 1) keep drawing until tick 9."""
    model = fit_events(rows_ab(), tick_ms=MINUTE, subject="s", timestamp="t", from_state="a",
                       to_state="b", end=10 * MINUTE)  # fmt: skip
    assert model.transition("A->B").exposure == 3 + 7
    assert model.transition("B->A").exposure == 2 + 8


def test_a_log_of_states_with_and_without_initial_state(engine):
    rows = [
        {"u": "x", "ts": 0, "st": "on"},
        {"u": "x", "ts": 3 * MINUTE, "st": "on"},  # only an observation
        {"u": "x", "ts": 5 * MINUTE, "st": "off"},
        {"u": "y", "ts": 2 * MINUTE, "st": "off"},
        {"u": "y", "ts": 4 * MINUTE, "st": "on"},
    ]
    observed = fit_events(rows, tick_ms=MINUTE, subject="u", timestamp="ts", state="st")
    on_off = observed.transition("on->off")
    # x is seen in 'on' at tick 0: draws at ticks 1..5; y enters 'on' at 4: draw at 5.
    assert (on_off.events, on_off.exposure) == (1, 6)
    off_on = observed.transition("off->on")
    assert (off_on.events, off_on.exposure) == (1, 2)  # y: draws at ticks 3 and 4
    started = fit_events(rows, tick_ms=MINUTE, subject="u", timestamp="ts", state="st",
                         initial_state="off")  # fmt: skip
    # Both start in 'off' at tick 0: x leaves at tick 0, y at tick 4 after 'off' at 2.
    assert (started.transition("off->on").events, started.transition("off->on").exposure) == (
        2,
        1 + 5,
    )
    assert started.initial_state == "off"


def test_a_trigger_names_self_loops_in_a_log_of_states(engine):
    rows = [
        {"u": 1, "ts": 0, "st": "idle", "ev": "ping"},
        {"u": 1, "ts": MINUTE, "st": "idle", "ev": "ping"},
        {"u": 1, "ts": 2 * MINUTE, "st": "busy", "ev": "start"},
        {"u": 1, "ts": 3 * MINUTE, "st": "idle", "ev": "stop"},
    ]
    model = fit_events(rows, tick_ms=MINUTE, subject="u", timestamp="ts", state="st",
                       trigger="ev", initial_state="idle")  # fmt: skip
    assert {t.trigger: t.events for t in model.transitions} == {"ping": 2, "start": 1, "stop": 1}
    assert model.transition("ping").exposure == 3  # ticks 0, 1 and 2 in idle


def test_timestamps_may_be_iso_strings_or_datetimes(engine):
    from datetime import datetime, timezone

    rows = [
        {"s": 1, "t": "2024-01-01T00:00:00Z", "a": "A", "b": "B"},
        {"s": 1, "t": datetime(2024, 1, 1, 0, 2, tzinfo=timezone.utc), "a": "B", "b": "A"},
        {"s": 2, "t": str(MONDAY + MINUTE), "a": "A", "b": "B"},
    ]
    model = fit_events(rows, tick_ms=MINUTE, subject="s", timestamp="t", from_state="a",
                       to_state="b")  # fmt: skip
    assert model.start == MONDAY and model.ticks == 3
    assert model.transition("A->B").exposure == 3


def test_wilson_interval_matches_the_formula():
    low, high = wilson_interval(30, 100)
    z = stats.norm.isf(0.025)
    centre = (0.3 + z * z / 200) / (1 + z * z / 100)
    half = z * math.sqrt(0.3 * 0.7 / 100 + z * z / 40000) / (1 + z * z / 100)
    assert (low, high) == pytest.approx((centre - half, centre + half))
    assert wilson_z95 == pytest.approx(z, rel=1e-12)


# -- the columnar fit against the row loop ----------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        dict(TRANSITION_FIELDS),
        dict(from_state="from_state", to_state="to_state"),
        dict(state="to_state"),
        dict(state="to_state", trigger="event"),
        dict(state="to_state", initial_state="offline"),
        dict(state="to_state", trigger="event", initial_state="offline", subjects=600),
        dict(TRANSITION_FIELDS, hourly=True, subjects=600, initial_state="offline"),
        dict(state="to_state", hourly=True),
        dict(state="to_state", trigger="event", initial_state="offline", weekly=True),
    ],
    ids=[
        "transitions",
        "no-trigger",
        "states",
        "states+trigger",
        "initial",
        "subjects",
        "hourly",
        "states+hourly",
        "weekly",
    ],
)
def test_the_columnar_fit_equals_the_row_loop(week_logs, fields, monkeypatch):
    """On the JSON Lines file (msgspec), on its rows as dicts, on a CSV copy."""
    path = week_logs[1][2]
    csv_path = path.with_suffix(".csv")
    if not csv_path.exists():
        import csv

        with open(path) as f, open(csv_path, "w", newline="") as out:
            rows = [json.loads(line) for line in f]
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    common = dict(tick_ms=MINUTE, subject="user_id", timestamp="timestamp", **fields)
    columnar = fit_events(read_events(path), **common)
    from_dicts = fit_events([json.loads(line) for line in path.read_text().splitlines()], **common)
    from_csv = fit_events(read_events(csv_path), **common)
    monkeypatch.setattr(fit_module, "_engine", lambda needs_rows: fit_module._Fit)
    rows = fit_events(read_events(path), **common)
    assert columnar == rows
    assert from_dicts == rows
    assert from_csv.transitions == rows.transitions


# -- the generated module ------------------------------------------------------------------


def test_the_generated_module_runs_with_doge_datagen_run_unchanged(week_logs, tmp_path):
    datagen, _summary, path = week_logs[2]
    model = fit_events(
        read_events(path), tick_ms=MINUTE, subject="user_id", timestamp="timestamp",
        subjects=600, initial_state="offline", hourly=True, start=MONDAY,
        end=MONDAY + datagen.ticks_num * MINUTE, **TRANSITION_FIELDS,
    )  # fmt: skip
    target = model.to_python(tmp_path / "model.py")
    text = target.read_text()
    assert "from doge_datagen.profiles import hourly" in text
    assert "0.1" in text and "LOGIN_OFFLINE_PROFILE = hourly([" in text
    login = model.transition("login")
    assert f"% (95%), {login.events} moves in {login.exposure} subject-ticks" in text
    result = subprocess.run(
        [sys.executable, "-m", "doge_datagen", "run", "model.py:build"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert events and set(events[0]) == {"timestamp", "user_id", "event", "from_state", "to_state"}
    assert {e["event"] for e in events} == {t.trigger for t in model.transitions}
    reported = re.search(
        r"([\d,]+) events from ([\d,]+) subjects over ([\d,]+) ticks", result.stderr
    )
    assert reported, result.stderr
    numbers = [int(group.replace(",", "")) for group in reported.groups()]
    assert numbers == [len(events), 600, 7 * 24 * 60]
    # The module's build() is the fitted model: same states, transitions and probabilities.
    namespace: Dict[str, Any] = {}
    exec(compile(text, str(target), "exec"), namespace)
    built = namespace["build"](seed=1)
    assert built.states == model.states
    for t, fitted in zip(built.transitions, model.transitions):
        assert (t.trigger, t.from_state, t.to_state) == (
            fitted.trigger, fitted.from_state, fitted.to_state,
        )  # fmt: skip
        assert t.probability.base == pytest.approx(fitted.probability, rel=1e-9)


def test_generator_takes_sinks_and_callbacks_by_trigger():
    model = fit_events(rows_ab(), tick_ms=MINUTE, subject="s", timestamp="t", from_state="a",
                       to_state="b")  # fmt: skip
    sink = InMemorySink()
    seen = []
    datagen = model.generator(
        lambda: object(), 4, 50, seed=3, event_sinks={"A->B": [sink]},
        action_callbacks={"B->A": lambda s, t: seen.append(t.trigger) or True},
    )  # fmt: skip
    summary = datagen.start()
    assert len(sink.events) == summary.events_per_trigger["A->B"] > 0
    assert len(seen) == summary.events_per_trigger["B->A"] > 0
    with pytest.raises(ConfigurationError, match="'nope'"):
        model.generator(lambda: object(), event_sinks={"nope": [sink]})


# -- the command ---------------------------------------------------------------------------


def test_the_fit_command_reads_csv_prints_the_table_and_writes_the_module(tmp_path, capsys):
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,ts,state\n1,0,off\n1,60000,on\n2,60000,off\n1,120000,off\n2,180000,on\n"
    )
    out = tmp_path / "model.py"
    status = main(["fit", str(path), "--tick-ms", "60000", "--subject", "user_id",
                   "--timestamp", "ts", "--state", "state", "-o", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "off->on" in captured.out and "on->off" in captured.out and "% per tick" in captured.out
    assert "doge-datagen run" in captured.err and out.exists()
    assert "datagen.add_transition('off->on', 'off', 'on'," in out.read_text()


def test_the_fit_command_names_the_line_of_a_bad_row(tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    path.write_text('{"u": 1, "t": 0, "s": "a"}\n\n{"u": 1, "t": 60000}\n')
    status = main(["fit", str(path), "--tick-ms", "60000", "--subject", "u", "--timestamp",
                   "t", "--state", "s"])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1
    assert f"{path}, line 3: missing field 's'" in err


def test_the_fit_command_wants_a_way_to_read_states(tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    path.write_text('{"u": 1, "t": 0, "s": "a"}\n')
    status = main(["fit", str(path), "--tick-ms", "60000", "--subject", "u", "--timestamp",
                   "t", "--trigger", "s"])  # fmt: skip
    assert status == 2
    assert "--state FIELD" in capsys.readouterr().err


# -- bad input -----------------------------------------------------------------------------


def write_jsonl(path: Path, rows: List[Dict[str, Any]]) -> Any:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return read_events(path)


def bad(tmp_path: Path, rows: List[Dict[str, Any]], **fields: Any) -> str:
    """The error message for ``rows`` read from a file (file and line named)."""
    events = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(RecordError) as info:
        fit_events(events, tick_ms=MINUTE, subject="u", timestamp="t", **fields)
    return str(info.value)


def test_a_timestamp_going_backwards_names_both_rows(tmp_path, engine):
    rows = [{"u": 1, "t": 2 * MINUTE, "a": "x", "b": "y"}, {"u": 2, "t": 0, "a": "x", "b": "y"},
            {"u": 1, "t": MINUTE, "a": "y", "b": "x"}]  # fmt: skip
    message = bad(tmp_path, rows, from_state="a", to_state="b")
    assert "bad.jsonl, line 3: timestamp 60000 of subject 1 is earlier" in message
    assert "line 1, timestamp 120000" in message


def test_a_missing_field_is_named_with_its_row(tmp_path, engine):
    rows = [{"u": 1, "t": 0, "a": "x", "b": "y"}, {"u": 1, "t": MINUTE, "a": "y"}]
    message = bad(tmp_path, rows, from_state="a", to_state="b")
    assert "line 2: missing field 'b'" in message
    with pytest.raises(RecordError, match=r"row 2: missing field 'b'"):
        fit_events(rows, tick_ms=MINUTE, subject="u", timestamp="t", from_state="a",
                   to_state="b")  # fmt: skip


def test_a_state_never_left_and_never_entered_is_named(tmp_path, engine):
    rows = [{"u": 1, "t": 0, "s": "on"}, {"u": 2, "t": 0, "s": "zombie"},
            {"u": 1, "t": MINUTE, "s": "off"}]  # fmt: skip
    message = bad(tmp_path, rows, state="s")
    assert "state 'zombie' (" in message and "line 2) is never left and never entered" in message


def test_a_tick_that_does_not_divide_the_resolution_names_the_row(tmp_path, engine):
    rows = [{"u": 1, "t": 0, "s": "on"}, {"u": 1, "t": 90_000, "s": "off"}]
    message = bad(tmp_path, rows, state="s")
    assert "line 2: timestamp 90000 is not a whole number of ticks (60000 ms)" in message
    assert "the tick must divide the data's resolution" in message


def test_a_subject_in_two_states_at_one_timestamp_is_reported(tmp_path, engine):
    rows = [{"u": 7, "t": 0, "s": "on"}, {"u": 7, "t": MINUTE, "s": "off"},
            {"u": 7, "t": MINUTE, "s": "on"}]  # fmt: skip
    message = bad(tmp_path, rows, state="s")
    assert "line 3: subject 7 is in two states at timestamp 60000: 'off' (" in message
    assert "line 2) and 'on'" in message
    # The same observation twice is not a conflict.
    same = [{"u": 7, "t": 0, "s": "on"}, {"u": 7, "t": 0, "s": "on"},
            {"u": 7, "t": MINUTE, "s": "off"}]  # fmt: skip
    model = fit_events(same, tick_ms=MINUTE, subject="u", timestamp="t", state="s")
    assert model.transition("on->off").events == 1


def test_a_move_from_a_state_the_subject_is_not_in_is_named(tmp_path, engine):
    rows = [{"u": 1, "t": 0, "a": "x", "b": "y"}, {"u": 1, "t": MINUTE, "a": "x", "b": "y"}]
    message = bad(tmp_path, rows, from_state="a", to_state="b")
    assert "line 2: subject 1 moves from 'x'" in message and "left it in 'y'" in message


def test_bad_json_and_bad_arguments(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text('{"u": 1, "t": 0, "s": "a"}\n{"u": 1, "t": \n')
    with pytest.raises(RecordError, match=r"e\.jsonl, line 2: not a JSON document"):
        fit_events(read_events(path), tick_ms=MINUTE, subject="u", timestamp="t", state="s")
    rows = rows_ab()
    for kwargs, match in [
        (dict(tick_ms=0), "tick_ms must be a positive whole number"),
        (dict(tick_ms=7 * MINUTE, hourly=True), "needs a tick that divides an hour"),
        (dict(state="a"), "not both"),
        (dict(from_state=None), "give state="),
        (dict(subjects=1), "fewer than the 2 subjects"),
        (dict(subjects=3), "give initial_state="),
    ]:
        args = dict(tick_ms=MINUTE, subject="s", timestamp="t", from_state="a", to_state="b")
        args.update(kwargs)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match=match):
            fit_events(rows, **args)


# -- what the README promises -------------------------------------------------------------


def readme_block(kind: str, containing: str) -> str:
    """A block of the README's section on fitting, doc/fitting.md."""
    found = [b for b in code_blocks(page("doc/fitting.md"), kind) if containing in b]
    assert len(found) == 1, f"{len(found)} doc/fitting.md blocks contain {containing!r}"
    return found[0]


def test_the_readme_commands_fit_the_demo_and_run_the_twin(tmp_path, monkeypatch, capsys):
    """The README's shell block, with a smaller demo (200 users, a day)."""
    text = readme_block("shell", "doge-datagen run model.py:build --seed 2")
    commands = [c.replace("\\\n", " ") for c in re.split(r"\n(?=doge-datagen)", text.strip())]
    monkeypatch.chdir(tmp_path)
    demo, fit, run = (c.split("#")[0].split()[1:] for c in commands)
    demo[demo.index("--subjects") + 1] = "200"
    demo[demo.index("--ticks") + 1] = "1440"
    assert main(demo) == 0
    fit[fit.index("--subjects") + 1] = "200"
    assert main(fit) == 0
    out = capsys.readouterr().out
    assert "login x hourly" in out and "offline" in out
    assert main([*run, "--ticks", "120"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert lines and {"timestamp", "user_id", "event"} <= set(json.loads(lines[0]))


def test_the_readme_python_block_runs(tmp_path, monkeypatch, week_logs):
    datagen, _summary, path = week_logs[0]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "events.jsonl").write_bytes(path.read_bytes())
    namespace: Dict[str, Any] = {"UserFactory": UserFactory, "InMemorySink": InMemorySink}
    exec(readme_block("python", "fit_events("), namespace)
    assert namespace["model"].transition("login").events > 0
    assert len(namespace["factors"]) == 24
    assert (tmp_path / "model.py").exists()
    assert namespace["twin"].subjects_num == 1000  # as the block's subjects= says


def test_rows_before_start_give_the_state_at_start_and_rows_after_end_are_skipped():
    rows = [
        {"s": 1, "t": 0, "a": "A", "b": "B"},  # before the window: 1 is in B at its start
        {"s": 1, "t": 3 * MINUTE, "a": "B", "b": "A"},
        {"s": 2, "t": 4 * MINUTE, "a": "A", "b": "B"},
        {"s": 2, "t": 9 * MINUTE, "a": "B", "b": "A"},  # at the end: skipped
    ]
    model = fit_events(rows, tick_ms=MINUTE, subject="s", timestamp="t", from_state="a",
                       to_state="b", start=2 * MINUTE, end=9 * MINUTE)  # fmt: skip
    assert (model.start, model.ticks, model.skipped) == (2 * MINUTE, 7, 1)
    ba = model.transition("B->A")
    assert (ba.events, ba.exposure) == (1, 2 + 4)  # 1: ticks 2, 3; 2: ticks 5..8
    ab = model.transition("A->B")
    assert (ab.events, ab.exposure) == (1, 5 + 3)  # 1: ticks 4..8; 2: ticks 2..4
    assert model.initial_shares == {"A": 0.5, "B": 0.5}


def test_the_initial_state_is_the_most_common_one_at_the_start():
    rows = [{"s": n, "t": MINUTE, "a": a, "b": b} for n, (a, b) in enumerate(
        [("x", "y"), ("y", "x"), ("y", "x")])]  # fmt: skip
    model = fit_events(rows, tick_ms=MINUTE, subject="s", timestamp="t", from_state="a",
                       to_state="b")  # fmt: skip
    assert model.initial_state == "y" and model.states[0] == "y"
    assert model.initial_shares == pytest.approx({"y": 2 / 3, "x": 1 / 3})
    assert model.generator(lambda: object()).initial_state == "y"


def test_line_numbers_stay_right_across_blocks_and_blank_lines(tmp_path, engine):
    """Large enough for many blocks of the columnar reader; a blank line early on must not
    shift the line named in a later error."""
    lines = []
    for n in range(30_000):
        a, b = ("x", "y") if n % 2 == 0 else ("y", "x")
        lines.append(json.dumps({"u": 1, "t": n * MINUTE, "a": a, "b": b, "pad": "." * 40}))
    lines.insert(4_999, "")  # line 5000 is blank
    lines[25_000] = json.dumps({"u": 1, "t": 25_000 * MINUTE, "a": "x"})  # line 25001
    path = tmp_path / "long.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordError, match=r"long\.jsonl, line 25001: missing field 'b'"):
        fit_events(read_events(path), tick_ms=MINUTE, subject="u", timestamp="t",
                   from_state="a", to_state="b")  # fmt: skip
    lines[25_000] = json.dumps({"u": 1, "t": 3 * MINUTE, "a": "x", "b": "y"})
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordError, match=r"line 25001: timestamp 180000 of subject 1 is earlier"):
        fit_events(read_events(path), tick_ms=MINUTE, subject="u", timestamp="t",
                   from_state="a", to_state="b")  # fmt: skip


def test_subject_ids_of_every_kind_give_the_same_fit(week_logs, monkeypatch):
    """Small integer ids index the columnar fit's arrays directly; a large id half-way
    through the log switches it to numbering ids in a dict, as strings need from the start.
    Each gives the row loop's result."""
    rows = [json.loads(line) for line in week_logs[0][2].read_text().splitlines()]
    late = [dict(r, user_id=r["user_id"] + 10**12 * (n > len(rows) // 2 and r["user_id"] % 2))
            for n, r in enumerate(rows)]  # fmt: skip
    named = [dict(r, user_id=f"user-{r['user_id']}") for r in rows]
    common = dict(tick_ms=MINUTE, subject="user_id", timestamp="timestamp", **TRANSITION_FIELDS)
    columnar = [fit_events(log, **common) for log in (rows, late, named)]
    monkeypatch.setattr(fit_module, "_engine", lambda needs_rows: fit_module._Fit)
    for log, model in zip((rows, late, named), columnar):
        assert model == fit_events(log, **common)
    assert columnar[1].subjects > columnar[0].subjects  # the late ids are new subjects


def test_only_each_subjects_rows_need_be_in_time_order(engine):
    rows = rows_ab() + [
        {"s": 3, "t": 0, "a": "A", "b": "B"},
        {"s": 3, "t": 2 * MINUTE, "a": "B", "b": "A"},
    ]
    shuffled = [rows[3], rows[1], rows[0], rows[4], rows[2]]
    common = dict(tick_ms=MINUTE, subject="s", timestamp="t", from_state="a", to_state="b")
    assert fit_events(shuffled, **common).transitions == fit_events(rows, **common).transitions


# -- many blocks folded in at once -----------------------------------------------------------


def cycling_rows(n: int, **fields: str) -> List[Dict[str, Any]]:
    """``n`` rows of four subjects going x -> y -> x, a minute apart each."""
    a, b = fields.get("a", "a"), fields.get("b", "b")
    rows = []
    for i in range(n):
        step = i // 4
        frm, to = ("x", "y") if step % 2 == 0 else ("y", "x")
        rows.append({"u": i % 4, "t": step * MINUTE, a: frm, b: to, "e": f"{frm}-{to}"})
    return rows


def first_error(rows: List[Dict[str, Any]], path: Path, **fields: Any) -> List[str]:
    """The error of each reader (a file, a list) and of the row loop, with blocks of a few
    rows, all of them folded in as one batch."""
    write_jsonl(path, rows)
    found = []
    for source in (lambda: read_events(path), lambda: rows):
        with pytest.raises(RecordError) as info:
            fit_events(source(), tick_ms=MINUTE, subject="u", timestamp="t", **fields)
        found.append(str(info.value).replace(f"{path}, line", "row"))
    return found


@pytest.mark.parametrize(
    "early, late",
    [
        ("order", "grid"),
        ("grid", "from"),
        ("from", "missing"),
        ("from", "order"),
        ("trigger", "order"),
    ],
)
def test_a_batch_of_blocks_reports_the_first_bad_row_as_the_row_loop(
    tmp_path, monkeypatch, early, late
):
    """Blocks of about eight rows, thousands of them in one batch: whatever the kinds of
    two bad rows, the one reported is the earlier, with the row loop's message."""
    from doge_datagen.fit import _columns

    monkeypatch.setattr(_columns, "BLOCK_BYTES", 512)
    monkeypatch.setattr(_columns, "CHUNK_ROWS", 8)
    state_log = "trigger" in (early, late)
    rows = cycling_rows(4000)
    if state_log:
        rows = [{"u": r["u"], "t": r["t"], "s": r["b"], "e": r["e"]} for r in rows]
        fields = dict(state="s", trigger="e")
    else:
        fields = dict(from_state="a", to_state="b", trigger="e")
    for kind, at in ((early, 301), (late, 3001)):
        row = rows[at]
        if kind == "order":
            row["t"] -= 3 * MINUTE
        elif kind == "grid":
            row["t"] += 1
        elif kind == "from":
            row["a"] = row["b"]
        elif kind == "missing":
            del row["b"]
        elif kind == "trigger":
            row["e"] = ""
    columnar = first_error(rows, tmp_path / "log.jsonl", **fields)
    monkeypatch.setattr(fit_module, "_engine", lambda needs_rows: fit_module._Fit)
    by_rows = first_error(rows, tmp_path / "log.jsonl", **fields)
    assert columnar == by_rows
    assert "row 302" in columnar[0] and "row 302" in columnar[1], columnar


def test_ids_that_change_kind_after_many_blocks_give_the_row_loops_fit(tmp_path, monkeypatch):
    """Small integer ids are read as numbers, straight into arrays; a large id, then string
    ids, after many blocks not yet folded in, switch the subject numbers to a dict and the
    file's decoder to strings, and the blocks read before keep their subjects."""
    from doge_datagen.fit import _columns

    monkeypatch.setattr(_columns, "BLOCK_BYTES", 512)
    monkeypatch.setattr(_columns, "CHUNK_ROWS", 8)
    rows = cycling_rows(4000, a="from_state", b="to_state")
    for n, row in enumerate(rows):
        if n >= 2000:
            row["u"] = 10**12 if row["u"] == 3 else row["u"]
        if n >= 3000 and row["u"] == 2:
            row["u"] = "two"
    path = tmp_path / "ids.jsonl"
    write_jsonl(path, rows)
    common = dict(tick_ms=MINUTE, subject="u", timestamp="t", from_state="from_state",
                  to_state="to_state", trigger="e")  # fmt: skip
    columnar = [fit_events(read_events(path), **common), fit_events(rows, **common)]
    monkeypatch.setattr(fit_module, "_engine", lambda needs_rows: fit_module._Fit)
    by_rows = fit_events(rows, **common)
    assert columnar == [by_rows, by_rows]
    assert by_rows.subjects == 6  # 0, 1, 2, 3, then 10**12 and "two"
