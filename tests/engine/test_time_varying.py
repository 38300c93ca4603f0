"""Time-varying probabilities and arrivals in the engine, against the per-tick loop that reads
every profile at every tick (``per_tick_reference.run_per_tick_profiled``).

Statistical comparisons are chi-square tests of two samples (engine, reference) over the hours
of the day or of the week, one test per trigger, each with false-alarm rate ``ALPHA`` (the
two-sided tail of six standard deviations, about 2e-9); the limit is the real quantile
``scipy.stats.chi2.isf(ALPHA, df)``. The seeds are fixed, so the tests are deterministic; a
mutant (the same model without its profile) is shown to fail the same test, so it has power.

The test models avoid self-loops taken many times in a row: the chi-square treats events as
independent, and a subject looping at 30 % a tick puts bursts of events into one hour, which
spreads the counts beyond the multinomial's (two runs of the per-tick loop itself then differ
by more than ALPHA allows). Rare self-loops, like the banking model's income, are fine.
"""

import math
import random
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Tuple

import pytest
from scipy import stats
from support.models import ThingFactory
from support.per_tick_reference import run_per_tick_profiled

from doge_datagen import DataOnlineGenerator, InMemorySink
from doge_datagen.errors import ConfigurationError
from doge_datagen.profiles import hourly, piecewise, profile, weekly

ALPHA = 2 * float(stats.norm.sf(6.0))
UTC = timezone.utc
PARIS = "Europe/Paris"
START = datetime(2024, 3, 29, tzinfo=UTC)  # Paris leaves winter time on 2024-03-31
START_MS = round(START.timestamp() * 1000)

DAY = [0.1, 0.1, 0.1, 0.1, 0.1, 0.3, 0.8, 1.5, 2.0, 1.6, 1.2, 1.2]
DAY = DAY + [1.9, 1.5, 1.1, 1.0, 1.2, 1.5, 2.0, 2.5, 2.2, 1.4, 0.8, 0.4]


def chi_square_limit(df: int) -> float:
    return float(stats.chi2.isf(ALPHA, df))


def two_sample_chi_square(
    a: Dict[Any, int], b: Dict[Any, int], keys: List[Any]
) -> Tuple[float, int]:
    """Chi-square of two samples over ``keys`` (in order), merging neighbours until each bin
    holds at least 20 events of both samples together."""
    bins: List[Tuple[int, int]] = []
    x = y = 0
    for k in keys:
        x += a.get(k, 0)
        y += b.get(k, 0)
        if x + y >= 20:
            bins.append((x, y))
            x = y = 0
    if x + y:
        if bins:
            last = bins.pop()
            bins.append((last[0] + x, last[1] + y))
        else:
            bins.append((x, y))
    na, nb = sum(p for p, _ in bins), sum(q for _, q in bins)
    stat = sum((p * math.sqrt(nb / na) - q * math.sqrt(na / nb)) ** 2 / (p + q) for p, q in bins)
    return stat, len(bins) - 1


def per_hour(events, hour_of) -> Dict[str, Counter]:
    out: Dict[str, Counter] = {}
    for e in events:
        out.setdefault(e.trigger, Counter())[hour_of(e.timestamp)] += 1
    return out


def local_hour(tz: str):
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    return lambda ms: datetime.fromtimestamp(ms / 1000, zone).hour


def hour_of_week(ms: int) -> int:
    when = datetime.fromtimestamp(ms / 1000, UTC)
    return when.weekday() * 24 + when.hour


# -- models ------------------------------------------------------------------------------------


def stepped(subjects: int, ticks: int, seed: int, flat: bool = False):
    """Hourly profiles in Paris across the change to summer time, a weekly one, a piecewise
    campaign, and constant transitions beside them in the same states."""
    sink = InMemorySink(lambda ts, s, t: s.n)
    datagen = DataOnlineGenerator(
        ["A", "B", "C"], "A", ThingFactory(), subjects, 60000, ticks, START_MS, seed=seed
    )
    day = hourly(DAY, tz=PARIS, name="day")
    weekend = weekly([1, 1, 1, 1, 1.2, 2.0, 0.5], name="weekend")
    campaign = piecewise([(datetime(2024, 3, 30, 9), 3.0), (datetime(2024, 3, 30, 15), 0.0)])
    if flat:  # the mutant: every profile replaced by its mean
        day, weekend, campaign = 1.0, 1.0, 1.0  # type: ignore[assignment]
    datagen.add_transition("a_to_b", "A", "B", 4 * day, event_sinks=[sink])
    datagen.add_transition("a_to_c", "A", "C", 1.5, event_sinks=[sink])
    datagen.add_transition("a_loop", "A", "A", 0.3 * day, event_sinks=[sink])
    datagen.add_transition("b_to_a", "B", "A", 12 * day * weekend, event_sinks=[sink])
    datagen.add_transition("c_to_a", "C", "A", 20, event_sinks=[sink])
    datagen.add_transition("c_to_b", "C", "B", 10 * campaign, event_sinks=[sink])
    return datagen, sink


def lunch_and_evening(when: datetime) -> float:
    """A smooth daily curve (it changes every minute) with a weekend lift: up to 2.6."""
    minutes = when.hour * 60 + when.minute
    curve = 1.0 + 0.8 * math.sin(2 * math.pi * (minutes - 360) / 1440)
    return curve * (1.3 if when.weekday() >= 5 else 1.0)


def smooth(
    subjects: int, ticks: int, seed: int, flat: bool = False, arrivals: Any = None, veto=True
):
    """A callable profile beside an hourly one and a constant transition, with a veto (that
    draws from the generator's shared ``random``, so not for comparing shards)."""
    sink = InMemorySink(lambda ts, s, t: s.n)
    datagen = DataOnlineGenerator(
        ["X", "Y", "Z"], "X", ThingFactory(), subjects, 300000, ticks, START_MS, seed=seed
    )
    curve: Any = profile(lunch_and_evening, max=2.6, name="curve")
    night: Any = hourly([2.0] * 6 + [1.0] * 18, name="night")
    if flat:
        curve, night = 1.0, 1.0
    datagen.add_transition("x_to_y", "X", "Y", 8 * curve, event_sinks=[sink])
    datagen.add_transition("x_to_z", "X", "Z", 5, event_sinks=[sink])
    datagen.add_transition("y_to_x", "Y", "X", 30 * night, event_sinks=[sink])
    datagen.add_transition("z_to_x", "Z", "X", 25, event_sinks=[sink])
    datagen.add_transition(
        "y_to_z",
        "Y",
        "Z",
        20 * curve,
        action_callback=(lambda s, t: datagen.random.random() < 0.5) if veto else None,
        event_sinks=[sink],
    )
    if arrivals is not None:
        datagen.arrivals = arrivals
    return datagen, sink


# -- exactness ---------------------------------------------------------------------------------


def chi_squares(engine_events, reference_events, hour_of, keys, min_events):
    """Per trigger: (statistic, degrees of freedom)."""
    engine = per_hour(engine_events, hour_of)
    reference = per_hour(reference_events, hour_of)
    assert set(engine) == set(reference)
    out = {}
    for trigger in engine:
        assert sum(engine[trigger].values()) >= min_events, trigger  # enough to mean something
        out[trigger] = two_sample_chi_square(engine[trigger], reference[trigger], keys)
    return out


def check_exact_and_powerful(make, ticks, subjects, hour_of, keys, min_events):
    """The engine agrees with the per-tick loop on every trigger; the flat mutant (every
    profile replaced by 1) run against the same reference fails, so the test has power."""
    datagen, reference = make(subjects, ticks, seed=2)
    run_per_tick_profiled(datagen, random.Random(2))
    datagen, engine = make(subjects, ticks, seed=1)
    datagen.start()
    for trigger, (stat, df) in chi_squares(
        engine.events, reference.events, hour_of, keys, min_events
    ).items():
        assert df >= 10, (trigger, df)
        assert stat < chi_square_limit(df), (trigger, stat, df)
    datagen, mutant = make(subjects, ticks, seed=1, flat=True)
    datagen.start()
    failed = [
        trigger
        for trigger, (stat, df) in chi_squares(
            mutant.events, reference.events, hour_of, keys, min_events
        ).items()
        if stat >= chi_square_limit(df)
    ]
    assert len(failed) >= 3, failed


@pytest.mark.slow
def test_step_profiles_give_the_per_tick_loop_events_per_hour_of_day():
    """Hourly in Paris across the change to summer time, weekly, piecewise, constants."""
    check_exact_and_powerful(stepped, 3 * 1440, 600, local_hour(PARIS), list(range(24)), 500)


@pytest.mark.slow
def test_callable_profiles_give_the_per_tick_loop_events_per_hour_of_week():
    """A callable that changes every tick, beside an hourly profile, with a veto."""
    check_exact_and_powerful(smooth, 7 * 288, 400, hour_of_week, list(range(168)), 200)


def test_a_profile_that_never_changes_gives_the_constant_engine_events():
    """The profiled draw and the engine's own draw hold the same bits: one segment, the same
    leave probability, thresholds and hash input give the very same events."""
    events = []
    for make in (lambda p: p, lambda p: p * piecewise([])):
        sink = InMemorySink(lambda ts, s, t: s.n)
        datagen = DataOnlineGenerator(["a", "b"], "a", ThingFactory(), 300, 1000, 500, seed=9)
        datagen.add_transition("go", "a", "b", make(3.0), event_sinks=[sink])
        datagen.add_transition("stay", "a", "a", make(2.0), event_sinks=[sink])
        datagen.add_transition("back", "b", "a", make(25.0), event_sinks=[sink])
        datagen.add_transition("leave", "b", "a", 100 - 25.0, event_sinks=[sink])
        datagen.start()
        events.append([(e.timestamp, e.value, e.trigger) for e in sink.events])
    assert len(events[0]) > 1000
    assert events[0] == events[1]


@pytest.mark.parametrize(
    "kind",
    ["hourly in Paris", "hourly x weekly", "piecewise", "callable", "callable x hourly"],
)
def test_long_waits_across_many_boundaries_follow_the_exact_survival(kind):
    """One move at a low rate, so that waits cross dozens of hourly boundaries (and the end
    of the run): the ticks of the first moves, per hour, against the exact law
    ``P(leave at t) = p(t) * prod(1 - p(s), s < t)``, with the subjects that never leave
    as one more bin (chi-square goodness of fit, real quantile at ALPHA)."""
    n, ticks = 20000, 4 * 1440
    day = hourly(DAY, tz=PARIS)
    probability = {
        "hourly in Paris": 0.15 * day,
        "hourly x weekly": 0.15 * day * weekly([1, 1, 1, 1, 1, 3, 0.2]),
        "piecewise": 0.1
        * piecewise([(datetime(2024, 3, 29, 6), 0.0), (datetime(2024, 3, 30, 1, 30), 2.0)]),
        "callable": 0.15 * profile(lunch_and_evening, max=2.6),
        "callable x hourly": 0.15 * profile(lunch_and_evening, max=2.6) * day,
    }[kind]
    sink = InMemorySink()
    datagen = DataOnlineGenerator(
        ["a", "b"], "a", ThingFactory(), n, 60000, ticks, START_MS, seed=6
    )
    datagen.add_transition("go", "a", "b", probability, event_sinks=[sink])
    datagen.start()
    observed = Counter((e.timestamp - START_MS) // 3600_000 for e in sink.events)
    observed["never"] = n - len(sink.events)
    expected: Counter = Counter()
    stay = 1.0
    for tick in range(ticks):
        p = probability.value_ms(START_MS + tick * 60000) / 100
        expected[tick // 60] += n * stay * p
        stay *= 1 - p
    expected["never"] = n * stay
    keys = [k for k in expected if expected[k] >= 5]
    rest = sum(v for k, v in expected.items() if k not in keys)
    stat = sum((observed[k] - expected[k]) ** 2 / expected[k] for k in keys)
    if rest:
        o = sum(v for k, v in observed.items() if k not in keys)
        stat += (o - rest) ** 2 / rest
    df = len(keys) - (0 if rest else 1)
    assert df >= 40 and len(sink.events) > n / 2
    assert stat < chi_square_limit(df), (kind, stat, df)


@pytest.mark.parametrize("loop", ["C", "Python"])
def test_a_wait_carried_past_a_step_follows_the_exact_law_tick_by_tick(loop, monkeypatch):
    """5 % a tick for ten ticks, then 30 %: most subjects' first wait runs past the step and
    its rest is used up at the new rate, a whole number of ticks cut down (a wait of 0.9
    tick is the step's own tick). The tick of each first move against the exact law, tick by
    tick (chi-square goodness of fit, real quantile at ALPHA). A rest rounded to the nearest
    tick would leave at the step's tick 16 % of those who reach it, not 30 %."""
    from doge_datagen.engine import loop as engine

    if loop == "Python":
        monkeypatch.setattr(engine, "_speedups", None)
    n, ticks = 20000, 40
    probability = 30 * piecewise([(START, 1 / 6), (START + timedelta(minutes=10), 1.0)])
    sink = InMemorySink()
    datagen = DataOnlineGenerator(
        ["a", "b"], "a", ThingFactory(), n, 60000, ticks, START_MS, seed=24
    )
    datagen.add_transition("go", "a", "b", probability, event_sinks=[sink])
    datagen.start()
    observed = Counter((e.timestamp - START_MS) // 60000 for e in sink.events)
    expected: Dict[Any, float] = {}
    stay = 1.0
    for tick in range(ticks):
        p = probability.value_ms(START_MS + tick * 60000) / 100
        expected[tick] = n * stay * p
        stay *= 1 - p
    keys = [k for k in expected if expected[k] >= 5]
    tail = n - sum(expected[k] for k in keys)  # later ticks and the subjects that never move
    observed_tail = n - sum(observed[k] for k in keys)
    stat = sum((observed[k] - expected[k]) ** 2 / expected[k] for k in keys)
    stat += (observed_tail - tail) ** 2 / tail
    df = len(keys)
    assert df >= 20 and expected[10] > 3000
    assert stat < chi_square_limit(df), (stat, df, observed[10], expected[10])


def test_the_loop_and_next_move_draw_alike_in_profiled_states():
    """Replaying every subject with ``engine.next_move`` alone (which hands profiled states
    to their timeline) gives exactly the loop's events: the inlined copy stays in step."""
    from doge_datagen.engine import loop as engine

    datagen, sink = stepped(200, 2 * 1440, seed=8)
    datagen.start()
    subjects = datagen.subjects
    index = {id(s): n for n, s in enumerate(subjects)}
    tables = engine.compile_tables(datagen, START_MS, datagen.ticks_num)
    key = engine.engine_key(datagen.seed)
    replayed = []
    for i in range(len(subjects)):
        table, tick = tables[0], 0
        while True:
            at, move = engine.next_move(key, table, i, tick)
            if at is None or at >= datagen.ticks_num:
                break
            replayed.append((START_MS + at * 60000, i, move[0].trigger))
            table, tick = move[3], at + 1
    assert len(replayed) > 5000
    assert sorted(replayed) == sorted(
        (e.timestamp, index[id(e.subject)], e.trigger) for e in sink.events
    )


def test_the_timeline_draw_is_next_move_for_a_profile_that_never_changes():
    """The timeline's inlined hash and wait against ``engine.next_move`` (which calls
    ``engine.draw``), draw by draw, for many subjects and ticks."""
    from doge_datagen.engine import loop as engine

    tables = {}
    for kind, make in (("plain", lambda p: p), ("profiled", lambda p: p * piecewise([]))):
        datagen = DataOnlineGenerator(["a", "b"], "a", ThingFactory(), 1, 1000, 10**6, seed=3)
        datagen.add_transition("go", "a", "b", make(0.7))
        datagen.add_transition("stay", "a", "a", make(2.5))
        datagen.add_transition("certain", "b", "a", make(100.0))
        tables[kind] = engine.compile_tables(datagen, 0, 10**6)
    key = engine.engine_key(3)
    for index in range(0, 3000, 7):
        for tick in (0, 1, 999, 123456):
            for state in (0, 1):
                plain = engine.next_move(key, tables["plain"][state], index, tick)
                profiled = engine.next_move(key, tables["profiled"][state], index, tick)
                assert plain[0] == profiled[0], (index, tick, state)
                assert plain[1][0] is not None and plain[1][0].trigger == profiled[1][0].trigger


def test_a_state_left_only_while_a_campaign_runs():
    """Zero outside the campaign: every move falls inside it, and stays exact at its edges."""
    sink = InMemorySink(lambda ts, s, t: s.n)
    start, end = datetime(2024, 1, 1, 10), datetime(2024, 1, 1, 11)
    datagen = DataOnlineGenerator(
        ["a", "b"],
        "a",
        ThingFactory(),
        2000,
        60000,
        24 * 60,
        datetime(2024, 1, 1, tzinfo=UTC),
        seed=5,
    )
    datagen.add_transition(
        "go",
        "a",
        "b",
        5 * piecewise([(datetime(2024, 1, 1), 0.0), (start, 1.0), (end, 0.0)]),
        event_sinks=[sink],
    )
    datagen.start()
    minutes = Counter((e.timestamp - datagen.timestamp_start) // 60000 for e in sink.events)
    assert set(minutes) <= set(range(600, 660)) and min(minutes) == 600 and max(minutes) == 659
    # Leaving at 5 % a minute for an hour: 1 - 0.95 ** 60 of them do.
    p = 1 - 0.95**60
    z = (len(sink.events) - 2000 * p) / math.sqrt(2000 * p * (1 - p))
    assert abs(z) < 6, z


# -- validation ----------------------------------------------------------------------------------


def model(ticks: Any = 100, start: Any = START_MS):
    return DataOnlineGenerator(["a", "b"], "a", ThingFactory(), 10, 60000, ticks, start, seed=1)


def test_a_state_above_100_at_some_hour_is_refused_when_the_transition_is_added():
    datagen = model()
    datagen.add_transition("go", "a", "b", 50, event_sinks=[])
    peak = hourly([1.0] * 18 + [2.0] + [1.0] * 5, tz=PARIS)
    with pytest.raises(ConfigurationError, match=r"state 'a'.* 130 at 18:00 \(Europe/Paris\)"):
        datagen.add_transition("more", "a", "b", 40 * peak, event_sinks=[])
    assert [t.trigger for t in datagen.transitions] == ["go"]


def test_a_campaign_above_100_is_refused_before_the_run_naming_state_and_tick():
    datagen = model(ticks=24 * 60)
    sink = InMemorySink()
    datagen.add_transition("go", "a", "b", 60, event_sinks=[sink])
    boost = piecewise([(datetime(2024, 3, 29, 13, 0), 2.0)])
    datagen.add_transition("boost", "a", "a", 30 * boost, event_sinks=[sink])
    with pytest.raises(
        ConfigurationError, match=r"state 'a' sum to 120 at tick 780 \(2024-03-29T13:00"
    ):
        datagen.start()
    assert sink.events == []


def test_a_callable_above_its_declared_max_is_detected_not_clipped():
    datagen = model(ticks=24 * 60)
    sink = InMemorySink()
    sneaky = profile(lambda when: 3.0 if when.hour == 20 else 1.0, max=2.0, name="sneaky")
    datagen.add_transition("go", "a", "b", 1 * sneaky, event_sinks=[sink])
    with pytest.raises(
        ConfigurationError, match=r"'sneaky' returned 3.0 at 2024-03-29T20:00.*max 2.0"
    ):
        datagen.start()
    assert sink.events == []


def test_a_callable_above_its_max_in_a_run_without_end_is_detected_where_read():
    """Without an end the callable is read a few thousand ticks ahead of the draws: the
    error comes before the run reaches the bad tick, after the events before it."""
    datagen = model(ticks=None)
    sink = InMemorySink()
    bad_from = datetime(2024, 4, 2, tzinfo=UTC)  # four days in: past the first ticks read
    sneaky = profile(lambda when: 3.0 if when >= bad_from else 1.0, max=2.0, name="sneaky")
    datagen.add_transition("go", "a", "b", 40 * sneaky, event_sinks=[sink])
    datagen.add_transition("back", "b", "a", 50, event_sinks=[sink])
    with pytest.raises(ConfigurationError, match=r"'sneaky' returned 3.0 at 2024-04-02T00:00"):
        datagen.start()
    assert len(sink.events) > 1000 and sink.closed == 1
    assert max(e.timestamp for e in sink.events) < bad_from.timestamp() * 1000


def test_profiled_arrivals_must_be_a_rate():
    datagen = model()
    with pytest.raises(ConfigurationError, match="arrivals"):
        datagen.arrivals = -1
    with pytest.raises(ConfigurationError, match="arrivals"):
        datagen.arrivals = hourly([1.0] * 24)  # a profile without its base rate


# -- seeds, shards, pacing, forever --------------------------------------------------------------


def moves(sink) -> Counter:
    return Counter((e.timestamp, e.trigger) for e in sink.events)


def test_the_same_seed_gives_the_same_events_with_profiles_and_arrivals():
    runs = []
    for _ in range(2):
        datagen, sink = smooth(50, 600, seed=11, arrivals=0.2 * hourly(DAY))
        summary = datagen.start()
        runs.append(([(e.timestamp, e.value, e.trigger) for e in sink.events], summary.arrivals))
    assert runs[0] == runs[1] and runs[0][1] > 50


@pytest.mark.parametrize("shards", [2, 3])
def test_shards_with_arrivals_hold_the_single_run_events(shards):
    whole, sink = smooth(40, 600, seed=12, arrivals=0.3 * hourly(DAY), veto=False)
    total = whole.start_range()
    parts: Counter = Counter()
    arrived = 0
    bounds = [40 * k // shards for k in range(shards + 1)]
    for k in range(shards):
        datagen, part = smooth(40, 600, seed=12, arrivals=0.3 * hourly(DAY), veto=False)
        summary = datagen.start_range(
            bounds[k],
            bounds[k + 1],
            arrivals_shard=(k, shards),
            timestamp_start=START_MS,
        )
        arrived += summary.arrivals
        parts += moves(part)
    assert total.arrivals > 40 and arrived == total.arrivals
    assert parts == moves(sink)


def test_a_paced_run_with_profiles_keeps_working():
    datagen, sink = smooth(30, 40, seed=13, arrivals=0.5 * hourly(DAY))
    summary = datagen.start(speed=300000 * 200)  # 40 five-minute ticks in about 0.01 s
    assert summary.ticks == 40 and summary.events == len(sink.events) > 0
    assert summary.lag is not None and summary.arrivals > 0
    datagen, unpaced = smooth(30, 40, seed=13, arrivals=0.5 * hourly(DAY))
    datagen.start()
    assert [(e.timestamp, e.trigger) for e in unpaced.events] == [
        (e.timestamp, e.trigger) for e in sink.events
    ]


def test_a_run_without_end_with_profiles_and_arrivals_stops_when_asked():
    datagen, sink = smooth(20, None, seed=14, arrivals=1.0 * hourly(DAY))
    seen = []

    class Stopper:
        def collect(self, ts, subject, transition):
            seen.append(ts)
            if len(seen) == 2000:
                datagen.stop()

    datagen.transitions[0].event_sinks.append(Stopper())
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("s", datagen.start()))
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    summary = result["s"]
    assert summary.stopped and len(seen) >= 2000 and summary.arrivals > 0


# -- arrivals ------------------------------------------------------------------------------------


def test_arrivals_per_hour_follow_their_profile_within_6_sigma():
    """Seven days of 1-minute ticks; arrivals per hour of day against the Poisson mean."""
    created: List[int] = []

    class Factory:
        def create(self):
            created.append(len(created))
            return created[-1]

    rate = 0.5 * hourly(DAY, tz=PARIS)
    sink = InMemorySink(lambda ts, s, t: s)
    datagen = DataOnlineGenerator(
        ["new", "old"], "new", Factory(), 0, 60000, 7 * 1440, START_MS, seed=15
    )
    datagen.add_transition("arrive", "new", "old", 100, event_sinks=[sink])  # marks the arrival
    datagen.arrivals = rate
    summary = datagen.start()
    assert summary.arrivals == len(created) == len(sink.events)
    hour = local_hour(PARIS)
    observed = Counter(hour(e.timestamp) for e in sink.events)
    expected: Counter = Counter()
    for tick in range(7 * 1440):
        ms = START_MS + tick * 60000
        expected[hour(ms)] += rate.value_ms(ms)
    for h in range(24):
        z = (observed[h] - expected[h]) / math.sqrt(expected[h])
        assert abs(z) < 6, (h, observed[h], expected[h])
    # A flat rate would miss the night: the quietest hour is far below the busiest.
    assert observed[3] * 10 < observed[19]


def test_a_large_arrival_rate_gives_poisson_counts_per_tick():
    """At 1,000 arrivals per tick the count is drawn in parts (each a Poisson count of part of
    the mean, from bits of its own): their sum must have the Poisson variance, the mean.

    1,500 ticks of ``Arrivals``, as the run reads them. The dispersion statistic
    ``sum((x - mean)^2) / mean`` follows chi-square with ``n - 1`` degrees of freedom; it is
    held within both tails at ALPHA, and the total within ALPHA's normal quantile of its
    mean. Parts that shared their bits would be equal, so the count would be twice one part:
    twice the variance (the statistic near 3,000, beyond the limit near 1,850) and never odd.
    """
    from doge_datagen.engine.loop import engine_key
    from doge_datagen.engine.timevarying import Arrivals

    rate, n = 1000.0, 1500
    arrivals = Arrivals(rate, engine_key(23), 0, 1000, n, 0)
    counts = [0] * n
    while True:
        tick, indices = arrivals.next()
        if tick == math.inf:
            break
        counts[int(tick)] = len(indices)
    mean = sum(counts) / n
    dispersion = sum((x - mean) ** 2 for x in counts) / mean
    low, high = stats.chi2.isf(1 - ALPHA / 2, n - 1), stats.chi2.isf(ALPHA / 2, n - 1)
    assert low < dispersion < high, (dispersion, low, high)
    z = (sum(counts) - n * rate) / math.sqrt(n * rate)
    assert abs(z) < stats.norm.isf(ALPHA / 2), z
    # Odd counts come about half the time; none in 1,500 ticks has probability 2**-1500.
    assert any(x % 2 for x in counts)


def test_arrived_subjects_take_indices_after_the_initial_ones():
    created = []

    class Factory:
        def create(self):
            created.append(object())
            return created[-1]

    sink = InMemorySink(lambda ts, s, t: created.index(s))
    datagen = DataOnlineGenerator(["a", "b"], "a", Factory(), 5, 1000, 50, 0, seed=16)
    datagen.add_transition("go", "a", "b", 100, event_sinks=[sink])
    datagen.arrivals = 0.5
    summary = datagen.start()
    first_moves = {e.value: e.timestamp for e in sink.events}
    assert sorted(first_moves) == list(range(5 + summary.arrivals))
    assert all(first_moves[i] == 0 for i in range(5))
    # Later arrivals move later: indices follow the order of arrival.
    later = [first_moves[i] for i in range(5, 5 + summary.arrivals)]
    assert later == sorted(later) and later[-1] > 0


def test_final_states_are_how_subjects_leave():
    sink = InMemorySink(lambda ts, s, t: s.n)
    datagen = DataOnlineGenerator(["in", "gone"], "in", ThingFactory(), 100, 1000, 400, 0, seed=17)
    datagen.add_transition("churn", "in", "gone", 2, event_sinks=[sink])
    datagen.arrivals = 1.0
    summary = datagen.start()
    states = Counter(datagen.subject_states())
    assert (
        states["gone"] == len(sink.events)
        and states["in"] + states["gone"] == 100 + summary.arrivals
    )
    # Steady state: arrivals at 1 per tick, leaving at 2 % per tick, about 50 present.
    assert 25 < states["in"] < 100


def test_a_paced_run_that_starts_empty_waits_for_its_arrivals():
    sink = InMemorySink()
    datagen = DataOnlineGenerator(["in", "out"], "in", ThingFactory(), 0, 1000, 200, 0, seed=18)
    datagen.add_transition("leave", "in", "out", 30, event_sinks=[sink])
    datagen.arrivals = 0.1
    summary = datagen.start(speed=1000 * 20_000)  # 200 one-second ticks in about 0.01 s
    assert summary.arrivals > 5 and summary.subjects == summary.arrivals
    assert 0 < len(sink.events) <= summary.arrivals


def test_a_campaign_above_100_in_a_run_without_end_stops_it_naming_state_and_tick():
    datagen = model(ticks=None)
    sink = InMemorySink()
    datagen.add_transition("go", "a", "b", 60, event_sinks=[sink])
    datagen.add_transition("back", "b", "a", 50, event_sinks=[sink])
    boost = piecewise([(datetime(2024, 3, 29, 3, 0), 2.0)])
    datagen.add_transition("boost", "a", "a", 30 * boost, event_sinks=[sink])
    with pytest.raises(ConfigurationError, match=r"state 'a' sum to 120 at tick 180 \(") as caught:
        datagen.start()
    assert sink.events and sink.closed == 1
    assert caught.value.summary.events == len(sink.events)  # type: ignore[attr-defined]


def test_a_profile_without_its_base_is_refused_naming_the_transition():
    datagen = model()
    with pytest.raises(ConfigurationError, match=r"'go' from 'a'.*profile without its base"):
        datagen.add_transition("go", "a", "b", hourly([1.0] * 24))


def test_profiles_that_are_zero_for_ever_leave_a_run_without_end_nothing_to_do():
    datagen = model(ticks=None)
    sink = InMemorySink()
    datagen.add_transition("never", "a", "b", 50 * hourly([0.0] * 24), event_sinks=[sink])
    night_only = hourly([1.0] * 6 + [0.0] * 18)
    datagen.add_transition(
        "nor", "a", "b", 10 * night_only * hourly([0.0] * 6 + [1.0] * 18), event_sinks=[sink]
    )
    summary = datagen.start()  # ends at once: nobody will ever move
    assert summary.events == 0 and sink.events == []


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "shards"), [(21, 2), (22, 3)])
def test_a_sharded_run_with_arrivals_writes_the_single_run_events(tmp_path, seed, shards):
    """Every attribute the sinks wrote (user ids of arrived users included), as multisets."""
    import functools
    import glob
    import json

    from support import arrival_models

    from doge_datagen.distributed.sharded import run_sharded

    def rows(pattern):
        found: Counter = Counter()
        for path in glob.glob(pattern):
            with open(path) as lines:
                found.update(tuple(sorted(json.loads(line).items())) for line in lines)
        return found

    single = tmp_path / "single.jsonl"
    alone = arrival_models.day_with_arrivals(str(single), 60, seed).start()
    path = tmp_path / "events.jsonl"
    build = functools.partial(arrival_models.day_with_arrivals, str(path), 60, seed)
    summary = run_sharded(build, shards=shards)
    expected = rows(str(single))
    assert alone.arrivals > 500 and summary.arrivals == alone.arrivals
    arrived = {row for row in expected if dict(row)["user_id"] >= 60}
    assert len(arrived) > 500  # arrived users act, and they are compared too
    assert rows(str(tmp_path / "events-*-of-*.jsonl")) == expected
    # Each shard created its share of the arrivals (arrival j is shard j % K's).
    parts = [s.arrivals for s in summary.shards]
    assert sum(parts) == alone.arrivals and max(parts) - min(parts) <= 1
