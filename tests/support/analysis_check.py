"""The model analysis against a long seeded run: predicted, observed, sigma and z per figure.

    python tests/support/analysis_check.py        # prints the tables for both models

How sigma is derived. Without callbacks the subjects never interact and each draws from its own
hash stream, so a subject's count of a trigger over the run, ``X_i``, is independent of the
other subjects' and identically distributed (all start in the initial state). The run's total
``sum X_i`` then has variance ``n * Var(X)``; ``Var(X)`` is estimated from the ``n`` observed
per-subject counts (sample variance; with n in the tens of thousands its error is a fraction
of a percent, so z is normal to that accuracy). The number of subjects in a state at the end
is binomial: variance ``n * p * (1 - p)`` with ``p`` the predicted share. The mean time to
absorption: the sample standard deviation over subjects divided by ``sqrt(n)``.

Each figure passes when ``|z| <= 3``: a false alarm rate of ``2 * norm.sf(3)`` = 0.27 % per
figure, at most ``m`` times that for a table of ``m`` figures (Bonferroni).
"""

import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from doge_datagen import DataOnlineGenerator, EventSink, Transition  # noqa: E402
from doge_datagen.analysis.markov import ModelAnalysis, analyze  # noqa: E402
from doge_datagen.demo import banking_generator  # noqa: E402
from support.models import ThingFactory  # noqa: E402

Z_LIMIT = 3.0


class TallySink(EventSink):
    """Per transition (by position in the model), how many times each subject took it.
    ``subject_id(subject)`` must be the subject's creation index."""

    def __init__(self, datagen: DataOnlineGenerator, subject_id: Any) -> None:
        self.position = {id(t): k for k, t in enumerate(datagen.transitions)}
        self.subject_id = subject_id
        self.counts: List[Dict[int, int]] = [{} for _ in datagen.transitions]
        self.first_tick: Dict[Tuple[int, int], int] = {}
        self.timestamp_start = datagen.timestamp_start or 0
        self.tick_ms = datagen.tick_ms

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        k = self.position[id(transition)]
        i = self.subject_id(subject)
        per_subject = self.counts[k]
        per_subject[i] = per_subject.get(i, 0) + 1
        self.first_tick.setdefault((k, i), round((timestamp - self.timestamp_start) / self.tick_ms))


@dataclass
class Row:
    figure: str
    predicted: float
    observed: float
    sigma: float

    @property
    def z(self) -> Optional[float]:
        if self.sigma > 0:
            return (self.observed - self.predicted) / self.sigma
        return None if self.observed == self.predicted else math.inf


def _sum_stats(values_per_subject: Sequence[float], n: int) -> Tuple[float, float]:
    """The total over ``n`` subjects (absent ones count 0) and its standard deviation."""
    total = sum(values_per_subject)
    squares = sum(v * v for v in values_per_subject)
    mean = total / n
    variance = (squares - n * mean * mean) / (n - 1)
    return total, math.sqrt(n * max(variance, 0.0))


def compare(
    datagen: DataOnlineGenerator,
    subject_id: Any,
    analysis: Optional[ModelAnalysis] = None,
) -> Tuple[ModelAnalysis, List[Row]]:
    """Run ``datagen`` (callbacks must not veto) with a tally sink on every transition and
    compare it with ``analysis`` (by default the model's own)."""
    n = datagen.subjects_num
    analysis = analysis or analyze(datagen)
    tally = TallySink(datagen, subject_id)
    own_sinks = datagen.sinks
    for t in datagen.transitions:
        t.event_sinks = [*t.event_sinks, tally]
    try:
        summary = datagen.start()
    finally:
        for t in datagen.transitions:
            t.event_sinks = [s for s in t.event_sinks if s is not tally]
    assert summary.vetoed == 0, "the comparison needs a model whose callbacks never veto"
    assert analysis.run_events is not None and analysis.run_end_shares is not None
    rows: List[Row] = []
    triggers = list(analysis.run_events)
    for trigger in triggers:
        per_subject: Dict[int, int] = {}
        for k, t in enumerate(datagen.transitions):
            if t.trigger == trigger:
                for i, c in tally.counts[k].items():
                    per_subject[i] = per_subject.get(i, 0) + c
        total, sigma = _sum_stats(list(per_subject.values()), n)
        assert total == summary.events_per_trigger[trigger]
        rows.append(Row(f"events {trigger.strip()}", analysis.run_events[trigger], total, sigma))
    assert analysis.run_sink_events is not None
    for label, sink in zip(analysis.run_sink_events, own_sinks):
        per_subject: Dict[int, int] = {}
        for k, t in enumerate(datagen.transitions):
            times = sum(1 for s in t.event_sinks if s is sink)
            for i, c in tally.counts[k].items():
                per_subject[i] = per_subject.get(i, 0) + c * times
        total, sigma = _sum_stats(list(per_subject.values()), n)
        rows.append(Row(f"sink {label}", analysis.run_sink_events[label], total, sigma))
    ends: Dict[str, int] = dict.fromkeys(analysis.states, 0)
    for state in datagen.subject_states():
        ends[state] += 1
    for state, share in analysis.run_end_shares.items():
        # Binomial: each subject is in ``state`` at the end with probability ``share``. After
        # a long run this share is the long-run (stationary) one; see stationary_gap().
        sigma = math.sqrt(n * share * (1 - share))
        rows.append(Row(f"share {state} (x{n})", n * share, ends[state], sigma))
    if analysis.ticks_to_absorption is not None:
        final = {
            k
            for k, t in enumerate(datagen.transitions)
            if t.to_state in analysis.absorption and t.to_state != t.from_state
        }
        ticks = [tick + 1 for (k, _), tick in tally.first_tick.items() if k in final]
        assert len(ticks) == n, "every subject must have been absorbed by the end of the run"
        mean = sum(ticks) / n
        sd = math.sqrt(sum((x - mean) ** 2 for x in ticks) / (n - 1))
        rows.append(
            Row("ticks to absorption (mean)", analysis.ticks_to_absorption, mean, sd / math.sqrt(n))
        )
    return analysis, rows


def stationary_gap(analysis: ModelAnalysis) -> float:
    """The largest gap between the expected number of subjects in a state at the end of the
    run and the long-run share, in units of the binomial sigma of that count: near 0 means
    the run was long enough for the share rows to test the stationary distribution."""
    assert analysis.run_end_shares is not None
    n = analysis.subjects
    worst = 0.0
    for state, share in analysis.stationary.items():
        sigma = math.sqrt(n * share * (1 - share)) or 1.0
        worst = max(worst, abs(analysis.run_end_shares[state] - share) * n / sigma)
    return worst


def format_rows(title: str, rows: Sequence[Row]) -> str:
    lines = [title, f"{'figure':<34} {'predicted':>12} {'observed':>10} {'sigma':>9} {'z':>6}"]
    for row in rows:
        z = row.z
        lines.append(
            f"{row.figure:<34} {row.predicted:>12.2f} {row.observed:>10.2f} {row.sigma:>9.2f} "
            f"{'-' if z is None else f'{z:+.2f}':>6}"
        )
    return "\n".join(lines)


# -- the two models -------------------------------------------------------------------------


def banking_without_vetoes(subjects: int, ticks: int, seed: int) -> DataOnlineGenerator:
    """The banking demo without its callbacks: spending can no longer be vetoed."""
    sinks = [InMemoryCount(name) for name in ("clickstream", "trx", "balance", "loan")]
    datagen = banking_generator(*sinks, subjects_num=subjects, ticks_num=ticks, seed=seed)
    for t in datagen.transitions:
        t.action_callback = None
    return datagen


class InMemoryCount(EventSink):
    """A named counter (CountingSink under another name, so a test can tell them apart)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        self.count += 1


def funnel(
    subjects: int, ticks: int, seed: int, sinks: Sequence[EventSink] = ()
) -> DataOnlineGenerator:
    """A shop visit with two final states: 'bought' (which still fires reviews, a self-loop)
    and 'left' (nothing more)."""
    datagen = DataOnlineGenerator(
        ["visitor", "browsing", "cart", "bought", "left"],
        "visitor",
        ThingFactory(),
        subjects,
        1000,
        ticks,
        seed=seed,
    )
    s = list(sinks)
    datagen.add_transition("browse", "visitor", "browsing", 20, event_sinks=s)
    datagen.add_transition("bounce", "visitor", "left", 2, event_sinks=s)
    datagen.add_transition("view", "browsing", "browsing", 30, event_sinks=s)
    datagen.add_transition("add_to_cart", "browsing", "cart", 10, event_sinks=s)
    datagen.add_transition("back", "browsing", "visitor", 5, event_sinks=s)
    datagen.add_transition("leave", "browsing", "left", 3, event_sinks=s)
    datagen.add_transition("buy", "cart", "bought", 15, event_sinks=s)
    datagen.add_transition("keep_browsing", "cart", "browsing", 10, event_sinks=s)
    datagen.add_transition("abandon", "cart", "left", 2, event_sinks=s)
    datagen.add_transition("review", "bought", "bought", 0.5, event_sinks=s)
    return datagen


def banking_table(subjects: int = 20_000, ticks: int = 10_000, seed: int = 11):
    return compare(banking_without_vetoes(subjects, ticks, seed), lambda u: u.user_id)


def funnel_table(subjects: int = 20_000, ticks: int = 2_000, seed: int = 1):
    return compare(funnel(subjects, ticks, seed), lambda thing: thing.n)


if __name__ == "__main__":
    from scipy.stats import norm

    for title, make in (
        ("banking demo without vetoes", banking_table),
        ("funnel with final states", funnel_table),
    ):
        analysis, rows = make()
        print(format_rows(f"{title}: {analysis.subjects} subjects, {analysis.ticks} ticks", rows))
        worst = max(abs(r.z) for r in rows if r.z is not None)
        print(
            f"largest |z| {worst:.2f}; {len(rows)} figures, false alarm "
            f"{2 * norm.sf(Z_LIMIT) * 100:.2f} % each, at most "
            f"{len(rows) * 2 * norm.sf(Z_LIMIT) * 100:.1f} % for the table\n"
        )


# -- zero-argument builders, for the command line (MODULE:FUNCTION) ---------------------------


def cli_banking() -> DataOnlineGenerator:
    """The banking model without vetoes, four named sinks, from Monday 2024-01-01 00:00 UTC."""
    datagen = banking_without_vetoes(1000, 1440, seed=1)
    datagen.timestamp_start = 1_704_067_200_000
    return datagen


def cli_funnel() -> DataOnlineGenerator:
    return funnel(500, 200, seed=1, sinks=[InMemoryCount("shop")])
