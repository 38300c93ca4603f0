"""The analysis of larger chains against references computed here, independently of it: the
long run as the left eigenvector of the per-tick matrix, runs and weeks stepped one tick at a
time, and the dense tables against the sparse ones on the same model."""

import math
import random
from typing import Any, Dict, List, Optional

import numpy as np
import pytest

from doge_datagen import CountingSink, DataOnlineGenerator
from doge_datagen.analysis import markov as analysis_module
from doge_datagen.analysis.markov import analyze
from doge_datagen.profiles import Profiled, hourly, weekly

START = 1_704_067_200_000  # 2024-01-01T00:00:00Z, a Monday
DAY = [0.3, 0.2, 0.2, 0.2, 0.3, 0.5, 0.8, 1.1, 1.3, 1.3, 1.2, 1.2,
       1.3, 1.2, 1.1, 1.1, 1.2, 1.4, 1.6, 1.7, 1.5, 1.2, 0.8, 0.5]  # fmt: skip


class Thing:
    __slots__ = ()


def random_chain(
    n: int,
    exits: int,
    seed: int = 1,
    profiled: bool = False,
    tick_ms: int = 60_000,
    ticks: Optional[int] = 1440,
    final: int = 0,
    arrivals: Any = None,
    week: bool = False,
) -> DataOnlineGenerator:
    """``n`` states, each but the last ``final`` with ``exits`` transitions to distinct other
    states, 10 % to 55 % per tick in all (times an hourly factor of at most 1.7)."""
    rng = random.Random(seed)
    states = [f"s{i}" for i in range(n)]
    sink = CountingSink()
    datagen = DataOnlineGenerator(
        states, "s0", Thing, 1000, tick_ms, ticks, START, seed=seed, arrivals=arrivals
    )
    profile = hourly(DAY, name="day") if profiled else None
    if week:  # the day, quieter at the weekend
        profile = weekly([f * (0.5 if h >= 120 else 1.0) for h, f in enumerate(DAY * 7)])
    for i, state in enumerate(states[: n - final]):
        picked = range(n - 1) if exits >= n - 1 else rng.sample(range(n - 1), exits)
        weights = [rng.random() + 0.05 for _ in picked]
        total = rng.uniform(10.0, 55.0) / sum(weights)
        for j, w in zip(picked, weights):
            to = j + (j >= i)
            p: Any = w * total if profile is None else w * total * profile
            datagen.add_transition(f"t{i}_{to}", state, states[to], p, event_sinks=[sink])
    return datagen


class Stepper:
    """One subject's occupancy stepped a tick at a time, every probability read at the
    tick's timestamp: ``x_(t+1)[j] = x_t[j] * stay_j + sum over moves into j``."""

    def __init__(self, datagen: DataOnlineGenerator) -> None:
        index = {s: i for i, s in enumerate(datagen.states)}
        self.datagen = datagen
        self.n = len(index)
        self.frm = np.array([index[t.from_state] for t in datagen.transitions])
        self.to = np.array([index[t.to_state] for t in datagen.transitions])
        self.x = np.zeros(self.n)
        self.x[index[datagen.initial_state]] = 1.0
        self.tick = 0
        self.by_hour: Dict[int, np.ndarray] = {}

    def probs(self) -> np.ndarray:
        """The probabilities at this tick (read once per hour of the day: the profiles here
        are hourly ones, the same every day)."""
        ms = self.datagen.timestamp_start + self.tick * self.datagen.tick_ms
        hour = int(ms // 3_600_000) % 24
        if hour not in self.by_hour:
            self.by_hour[hour] = (
                np.array(
                    [
                        t.probability.value_ms(ms) if isinstance(t.probability, Profiled)
                        else t.probability
                        for t in self.datagen.transitions
                    ]
                )
                / 100.0
            )  # fmt: skip
        return self.by_hour[hour]

    def step(self) -> np.ndarray:
        """One tick; the expected events of each transition in it."""
        probs = self.probs()
        moved = self.x[self.frm] * probs
        stay = 1.0 - np.bincount(self.frm, probs, minlength=self.n)
        self.x = self.x * stay + np.bincount(self.to, moved, minlength=self.n)
        self.tick += 1
        return moved


def unreachable(datagen: DataOnlineGenerator) -> List[str]:
    """The states no path of transitions leads to from the initial state (breadth first)."""
    seen = {datagen.initial_state}
    todo = [datagen.initial_state]
    while todo:
        for t in datagen.transitions_from(todo.pop()):
            if t.to_state not in seen:
                seen.add(t.to_state)
                todo.append(t.to_state)
    return [s for s in datagen.states if s not in seen]


def per_trigger(datagen: DataOnlineGenerator, per_transition: np.ndarray) -> Dict[str, float]:
    out: Dict[str, float] = {}
    for t, v in zip(datagen.transitions, per_transition.tolist()):
        out[t.trigger] = out.get(t.trigger, 0.0) + v
    return out


def assert_close(found: Dict[str, float], expected: Dict[str, float], rel: float) -> None:
    assert list(found) == list(expected)
    scale = max(abs(v) for v in expected.values())
    worst = max(abs(found[k] - expected[k]) for k in expected)
    assert worst <= rel * scale, (worst, scale)


@pytest.mark.parametrize(
    ("n", "exits"), [(50, 10), (200, 5), (200, 199)], ids=["50", "sparse-200", "dense-200"]
)
def test_long_run_is_the_left_eigenvector_and_the_run_follows_the_ticks(n, exits):
    datagen = random_chain(n, exits, ticks=300)
    a = analyze(datagen)
    index = {s: i for i, s in enumerate(datagen.states)}
    matrix = np.zeros((n, n))
    for t in datagen.transitions:
        matrix[index[t.from_state], index[t.to_state]] += t.probability / 100.0
    matrix[np.diag_indices(n)] += 1.0 - matrix.sum(axis=1)
    values, vectors = np.linalg.eig(matrix.T)
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    pi = pi / pi.sum()
    shares = np.array([a.stationary[s] for s in datagen.states])
    assert np.max(np.abs(shares - pi)) <= 1e-12
    expected = per_trigger(
        datagen,
        np.array(
            [1000 * pi[index[t.from_state]] * t.probability / 100 for t in datagen.transitions]
        ),
    )
    assert_close(a.events_per_tick, expected, 1e-12)
    # The run: 300 ticks from the initial state.
    stepper = Stepper(datagen)
    events = sum(stepper.step() for _ in range(300))
    assert_close(a.run_events, per_trigger(datagen, 1000 * events), 1e-12)
    assert_close(a.run_end_shares, dict(zip(datagen.states, stepper.x.tolist())), 1e-12)
    assert a.final_states == [] and a.absorption == {}
    assert a.unreachable_states == unreachable(datagen)


def flat(value: Any, path: str = "") -> Dict[str, Any]:
    """Every leaf of the analysis's JSON, by its path."""
    if isinstance(value, dict):
        out: Dict[str, Any] = {}
        for k, v in value.items():
            out.update(flat(v, f"{path}.{k}"))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(flat(v, f"{path}[{i}]"))
        return out
    return {path: value}


def assert_same_figures(dense: Any, sparse: Any) -> None:
    a, b = flat(dense.to_dict()), flat(sparse.to_dict())
    assert list(a) == list(b)
    for path, x in a.items():
        y = b[path]
        if isinstance(x, float) and isinstance(y, float):
            assert abs(x - y) <= 1e-12 * max(1.0, abs(x)), (path, x, y)
        else:
            assert x == y, (path, x, y)


@pytest.mark.parametrize(
    "kind",
    [
        "profiled",
        "profiled-weekly",
        "profiled-final-states",
        "profiled-long-run",
        "constant-arrivals",
    ],
)
def test_sparse_tables_give_the_figures_of_the_dense_ones(kind, monkeypatch):
    if kind == "profiled":
        datagen = random_chain(60, 5, profiled=True)
    elif kind == "profiled-weekly":
        datagen = random_chain(60, 5, profiled=True, week=True)
    elif kind == "profiled-final-states":
        datagen = random_chain(40, 3, seed=3, profiled=True, ticks=3000, final=5)
    elif kind == "profiled-long-run":  # a run longer than a week, and none
        datagen = random_chain(30, 4, seed=4, profiled=True, tick_ms=600_000, ticks=2000)
    else:
        datagen = random_chain(40, 3, seed=5, ticks=3000, final=4, arrivals=2.0)
    monkeypatch.setattr(analysis_module, "SPARSE_STATES", 10**9)
    dense = analyze(datagen)
    monkeypatch.setattr(analysis_module, "SPARSE_STATES", 5)
    sparse = analyze(datagen)
    assert_same_figures(dense, sparse)
    if kind == "profiled-long-run":
        monkeypatch.setattr(analysis_module, "SPARSE_STATES", 10**9)
        dense_open = analyze(datagen, ticks_num=None)
        monkeypatch.setattr(analysis_module, "SPARSE_STATES", 5)
        assert_same_figures(dense_open, analyze(datagen, ticks_num=None))
    if kind.endswith("final-states") or kind == "constant-arrivals":
        assert dense.final_states and sum(dense.absorption.values()) > 0.5


def test_without_scipy_a_large_model_gets_the_same_figures(monkeypatch):
    datagen = random_chain(410, 5, seed=6, ticks=500, final=3)
    with_scipy = analyze(datagen)
    monkeypatch.setattr(analysis_module, "_SCIPY", False)
    assert analysis_module._scipy() is None
    assert_same_figures(with_scipy, analyze(datagen))


def test_a_10000_state_profiled_chain_repeats_its_long_run_week():
    """Ten-minute ticks: a week is 1,008 ticks. The reference walks the chain tick by tick
    from the initial state for two weeks; by then it has long settled (it mixes within
    hours), so its second week is the long-run week."""
    datagen = random_chain(10_000, 5, seed=2, profiled=True, tick_ms=600_000, ticks=144)
    a = analyze(datagen)
    week = 1008
    stepper = Stepper(datagen)
    run_events = sum(stepper.step() for _ in range(144))
    assert_close(a.run_events, per_trigger(datagen, 1000 * run_events), 1e-12)
    assert_close(a.run_end_shares, dict(zip(datagen.states, stepper.x.tolist())), 1e-12)
    while stepper.tick < week:
        stepper.step()
    occupancy = np.zeros(stepper.n)
    hours: List[np.ndarray] = [np.zeros(len(datagen.transitions)) for _ in range(168)]
    for tick in range(week):
        occupancy += stepper.x
        hours[tick // 6] += stepper.step()
    shares = np.array([a.stationary[s] for s in datagen.states])
    assert math.isclose(shares.sum(), 1.0, abs_tol=1e-12)
    assert np.max(np.abs(shares - occupancy / week)) <= 1e-12
    expected = per_trigger(datagen, 1000 * sum(hours) / week)
    assert_close(a.events_per_tick, expected, 1e-12)
    for h in (0, 7, 19, 100, 167):
        assert_close(a.hourly_events[h], per_trigger(datagen, 1000 * hours[h]), 1e-12)
    assert a.final_states == []
    assert a.unreachable_states == unreachable(datagen)
    assert a.unreachable_states == [s for s, x in zip(datagen.states, occupancy) if x == 0]


def test_a_model_without_transitions_stays_where_it_starts():
    datagen = DataOnlineGenerator(["a", "b"], "a", Thing, 10, 1000, 50, START, seed=1)
    a = analyze(datagen)
    assert a.matrix == {"a": {"a": 1.0, "b": 0.0}, "b": {"a": 0.0, "b": 1.0}}
    assert a.stationary == {"a": 1.0, "b": 0.0}
    assert a.final_states == ["a", "b"] and a.unreachable_states == ["b"]
    assert a.events_per_tick == {} and a.run_end_shares == {"a": 1.0, "b": 0.0}
