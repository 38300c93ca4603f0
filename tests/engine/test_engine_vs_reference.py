"""The event-driven engine against the literal per-tick loop (``per_tick_reference``).

Both run the same models with fixed seeds, so these tests are deterministic. Every check is a
hypothesis test whose false-alarm rate is ``ALPHA`` (one in a million): the limits are the real
quantiles of the normal and chi-square distributions for that rate (``scipy.stats``), so a
changed seed fails one of these checks about once in a million tries, while a wrong
distribution (an off-by-one in the waiting time, a veto retried a tick late) fails it by a wide
margin. ``tests/support/mutation_probe.py`` runs such broken engines against this file.
"""

import math
import random
from collections import Counter, defaultdict

import pytest
from scipy import stats
from support.models import three_states
from support.per_tick_reference import run_per_tick

from doge_datagen import InMemorySink
from doge_datagen.demo import banking_generator


def banking(engine: bool, subjects: int, ticks: int, seed: int):
    sink = InMemorySink(lambda ts, s, t: s.user_id, name="all")
    datagen = banking_generator(
        sink, sink, sink, sink, subjects_num=subjects, ticks_num=ticks, seed=seed
    )
    # "logout" has no sink in the README's model; listen to it too, to see every move.
    for t in datagen.transitions:
        if not t.event_sinks:
            t.event_sinks.append(sink)
    if engine:
        datagen.start()
    else:
        run_per_tick(datagen, random.Random(seed))
    return sink


def dedupe(events):
    """The banking model passes one event to several of its sinks; keep one per move."""
    out, last = [], None
    for e in events:
        key = (e.timestamp, e.value, e.trigger)
        if key != last:
            out.append(e)
        last = key
    return out


#: The false-alarm rate of each statistical check in this file.
ALPHA = 1e-6
#: Two-sided normal quantile for ALPHA (about 4.89 standard deviations).
Z_LIMIT = float(stats.norm.isf(ALPHA / 2))


def assert_counts_close(a, b, label):
    """Two Poisson counts from runs of equal size: ``x - y`` has variance ``x + y``."""
    for key in set(a) | set(b):
        x, y = a.get(key, 0), b.get(key, 0)
        sigma = math.sqrt(max(x + y, 1))
        assert abs(x - y) <= Z_LIMIT * sigma, (label, key, x, y)


def chi_square(a: Counter, b: Counter, min_expected: float = 10.0) -> tuple:
    """Two-sample chi-square over bins, merging the sparse tail into one bin."""
    na, nb = sum(a.values()), sum(b.values())
    keys = sorted(set(a) | set(b))
    bins, acc_a, acc_b = [], 0, 0
    for k in keys:
        acc_a += a.get(k, 0)
        acc_b += b.get(k, 0)
        if (acc_a + acc_b) >= 2 * min_expected:
            bins.append((acc_a, acc_b))
            acc_a = acc_b = 0
    if acc_a + acc_b:
        bins.append((acc_a, acc_b))
    stat = 0.0
    for x, y in bins:
        stat += (x * math.sqrt(nb / na) - y * math.sqrt(na / nb)) ** 2 / (x + y)
    return stat, len(bins) - 1


def chi_square_limit(df: int) -> float:
    """The chi-square statistic that a true null exceeds with probability ALPHA."""
    return float(stats.chi2.isf(ALPHA, df))


def test_chi_square_limit_is_the_real_quantile():
    """Not a hand-made bound: exceeded by chance exactly ALPHA of the time."""
    for df in (2, 10, 40):
        assert stats.chi2.sf(chi_square_limit(df), df) == pytest.approx(ALPHA, rel=1e-6)


@pytest.mark.slow
def test_banking_model_gives_the_same_events_per_trigger():
    engine = dedupe(banking(True, 2000, 1500, seed=7).events)
    reference = dedupe(banking(False, 2000, 1500, seed=8).events)
    per_trigger_engine = Counter(e.trigger for e in engine)
    per_trigger_reference = Counter(e.trigger for e in reference)
    assert per_trigger_engine["login"] > 1000  # enough events for the comparison to mean something
    assert_counts_close(per_trigger_engine, per_trigger_reference, "events per trigger")


def dwell_times(events, state, last_entry):
    """Ticks spent in ``state`` between entering it and leaving it, per visit entered at or
    before tick ``last_entry``.

    Visits still open when the run ends are the long ones; dropping them would bias the mean
    low. So only visits that start early enough to have ended, but for a negligible chance,
    are counted: a visit entered at ``last_entry`` has ``ticks - last_entry`` ticks to end.
    """
    entered = {}
    dwell = Counter()
    for e in events:
        tick = e.timestamp // 60000
        if e.from_state == state and e.value in entered:
            start = entered.pop(e.value)
            if start <= last_entry:
                dwell[tick - start] += 1
        if e.to_state == state:
            entered[e.value] = tick
    return dwell


@pytest.mark.slow
@pytest.mark.parametrize("state, leave", [("A", 0.08), ("B", 0.20), ("C", 0.60)])
def test_dwell_times_are_geometric_in_both_implementations(state, leave):
    ticks = 1500
    # A visit outlasts `margin` ticks with probability (1 - leave) ** margin < 1e-12: the
    # visits entered before ticks - margin have all ended, and counting them is unbiased.
    margin = math.ceil(math.log(1e-12) / math.log(1 - leave))
    datagen, engine = three_states(1500, ticks, seed=21)
    datagen.start()
    datagen, reference = three_states(1500, ticks, seed=22)
    run_per_tick(datagen, random.Random(22))
    dwell_engine = dwell_times(engine.events, state, ticks - margin)
    dwell_reference = dwell_times(reference.events, state, ticks - margin)
    stat, df = chi_square(dwell_engine, dwell_reference)
    assert df >= 2
    assert stat < chi_square_limit(df), (state, stat, df)
    # And both against theory: mean 1 / leave, each visit lasting at least one tick.
    for dwell in (dwell_engine, dwell_reference):
        n = sum(dwell.values())
        mean = sum(k * c for k, c in dwell.items()) / n
        sd = math.sqrt(1 - leave) / leave / math.sqrt(n)
        assert abs(mean - 1 / leave) < Z_LIMIT * sd, (state, mean, 1 / leave)
        assert min(dwell) >= 1


@pytest.mark.slow
def test_choice_between_transitions_is_proportional_in_both():
    datagen, engine = three_states(1000, 1000, seed=31)
    datagen.start()
    datagen, reference = three_states(1000, 1000, seed=32)
    run_per_tick(datagen, random.Random(32))
    for sink in (engine, reference):
        counts = sink.triggers()
        for first, second, p in (("a_to_b", "a_to_c", 5 / 8), ("c_to_a", "c_loop", 5 / 6)):
            n = counts[first] + counts[second]
            # Binomial: the share of `first` has standard deviation sqrt(p(1-p)/n).
            sd = math.sqrt(p * (1 - p) / n)
            assert abs(counts[first] / n - p) < Z_LIMIT * sd, (first, counts[first], n)


def check_ordering(events):
    """Ticks ascend; within a tick subjects act in creation order, at most once each."""
    keys = [(e.timestamp, e.value) for e in events]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    # A subject that moved at tick t acts from its new state: consecutive events chain.
    last_state = defaultdict(lambda: "offline")
    for e in events:
        assert e.from_state == last_state[e.value], e
        last_state[e.value] = e.to_state


def test_ordering_rules_hold_in_both():
    check_ordering(dedupe(banking(True, 300, 600, seed=41).events))
    check_ordering(dedupe(banking(False, 300, 600, seed=41).events))


def test_vetoed_transitions_retry_from_the_next_tick_in_both():
    """A 50% veto halves the effective rate: waits are geometric with p = 50% * 50%.

    The transition is below 100% (the engine's drawn path, not the certain one) and fast, so
    that one veto costs a visible share of the wait: a subject that retried one tick late
    after a veto would wait about 4 ticks on average instead of 3, which is more than fifteen
    standard deviations with 3,000 subjects.
    """

    def run(engine, seed):
        from support.models import ThingFactory

        from doge_datagen import DataOnlineGenerator

        sink = InMemorySink(lambda ts, s, t: s.n)
        datagen = DataOnlineGenerator(["a", "b"], "a", ThingFactory(), 3000, 1, 200, seed=seed)
        datagen.add_transition(
            "go",
            "a",
            "b",
            50,
            action_callback=lambda s, t: datagen.random.random() < 0.5,
            event_sinks=[sink],
        )
        if engine:
            summary = datagen.start()
            assert summary.vetoed > 2000  # the vetoes this test is about did happen
        else:
            run_per_tick(datagen, random.Random(seed))
        assert len(sink.events) == 3000  # everyone got through within 200 ticks
        return Counter(e.timestamp for e in sink.events)  # tick of the first (only) move

    waits_engine, waits_reference = run(True, 51), run(False, 52)
    stat, df = chi_square(waits_engine, waits_reference)
    assert stat < chi_square_limit(df), (stat, df)
    p = 0.25
    for waits in (waits_engine, waits_reference):
        n = sum(waits.values())
        mean = sum(k * c for k, c in waits.items()) / n
        # Ticks before the move: geometric on {0, 1, ...}, mean (1 - p) / p, sd sqrt(1 - p) / p.
        assert abs(mean - (1 - p) / p) < Z_LIMIT * math.sqrt(1 - p) / p / math.sqrt(n), mean
