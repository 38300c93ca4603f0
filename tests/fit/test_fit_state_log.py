"""A per-tick log of states: the fit against the counts of the sequences themselves (the
maximum likelihood of a chain observed at every tick), from a list of rows, from an iterator
and by the row loop."""

import random
from collections import Counter
from typing import Any, Dict, List, Tuple

import pytest

from doge_datagen.fit import fitter as fit_module
from doge_datagen.fit.fitter import fit_events

STATES = ["idle", "busy", "away"]
MATRIX = {
    "idle": [0.9, 0.08, 0.02],
    "busy": [0.3, 0.65, 0.05],
    "away": [0.1, 0.0, 0.9],
}


def sequences(subjects: int, ticks: int, seed: int) -> Dict[int, List[str]]:
    rng = random.Random(seed)
    out = {}
    for sid in range(subjects):
        at, walk = "idle", []
        for _ in range(ticks):
            walk.append(at)
            at = rng.choices(STATES, MATRIX[at])[0]
        out[sid] = walk
    return out


def expected(walks: Dict[int, List[str]]) -> Dict[Tuple[str, str], float]:
    """Moves from a to b over the ticks spent in a with a tick after them."""
    moves: Counter = Counter()
    stays: Counter = Counter()
    for walk in walks.values():
        for a, b in zip(walk, walk[1:]):
            stays[a] += 1
            if a != b:
                moves[(a, b)] += 1
    return {key: n / stays[key[0]] for key, n in moves.items()}


def rows_of(walks: Dict[int, List[str]], by_subject: bool) -> List[Dict[str, Any]]:
    rows = [
        {"who": sid, "at": 1_700_000_000_000 + 60_000 * t, "state": s}
        for sid, walk in walks.items()
        for t, s in enumerate(walk)
    ]
    if not by_subject:  # time order, the subjects interleaved
        rows.sort(key=lambda r: (r["at"], r["who"]))
    return rows


def fitted(model: Any) -> Dict[Tuple[str, str], float]:
    return {(t.from_state, t.to_state): t.probability / 100 for t in model.transitions}


@pytest.mark.parametrize("by_subject", [True, False], ids=["by-subject", "interleaved"])
def test_a_state_log_fits_the_counts_of_its_sequences(by_subject, monkeypatch):
    walks = sequences(5, 20_000, seed=3)  # several chunks of rows
    rows = rows_of(walks, by_subject)
    options = dict(tick_ms=60_000, subject="who", timestamp="at", state="state")
    reference = expected(walks)
    from_list = fit_events(rows, **options)
    from_iterator = fit_events(iter(rows), **options)
    monkeypatch.setattr(fit_module, "_engine", lambda needs_rows: fit_module._Fit)
    by_rows = fit_events(rows, **options)
    for model in (from_list, from_iterator, by_rows):
        found = fitted(model)
        assert found.keys() == reference.keys()
        for key, p in reference.items():
            assert found[key] == pytest.approx(p, rel=1e-12, abs=1e-15)
        assert model.rows == len(rows) and model.subjects == 5
    assert [(t.trigger, t.events, t.exposure) for t in from_list.transitions] == [
        (t.trigger, t.events, t.exposure) for t in by_rows.transitions
    ]


def test_a_state_log_with_triggers_counts_each_row_as_an_event(monkeypatch):
    walks = sequences(2, 5_000, seed=4)
    rows = rows_of(walks, by_subject=True)
    for row in rows:
        row["why"] = "tick"
    options = dict(tick_ms=60_000, subject="who", timestamp="at", state="state", trigger="why")
    from_list = fit_events(rows, **options)
    monkeypatch.setattr(fit_module, "_engine", lambda needs_rows: fit_module._Fit)
    by_rows = fit_events(rows, **options)
    summary = [
        (t.trigger, t.from_state, t.to_state, t.events, t.exposure) for t in by_rows.transitions
    ]
    assert [
        (t.trigger, t.from_state, t.to_state, t.events, t.exposure) for t in from_list.transitions
    ] == summary
    # Every row after a subject's first is an event, staying included.
    assert sum(t.events for t in from_list.transitions) == len(rows) - 2
