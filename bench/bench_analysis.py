"""The model analysis against PyDTMC: ``analyze()`` against ``MarkovChain(matrix, states)``
plus its ``stationary_distributions``, on the same chains, in the same run.

    python bench/bench_analysis.py [--repeat 5] [--skip-large]

The chains: the banking model of the demo, and random chains of 50 states (10 exits each),
200 states (5 exits each) and 200 states (every state to every other), one-minute ticks and a
day's run. PyDTMC gets the per-tick matrix built from the same transitions (its construction
is timed with the solve, as the analysis builds its own tables); the analysis gets the model.
Both are timed best of ``repeat``, interleaved. The long-run shares must agree to 1e-12 (a
chain whose initial state is recurrent has one stationary distribution, the one both give).
Target: the analysis takes at most the time of PyDTMC on each chain.

A 10,000-state chain (5 exits per state, every probability on an hourly profile, one-minute
ticks, a day's run) has no peer (PyDTMC has no time-varying chains): its target is one second
for the whole analysis, in CPU time (best of ``repeat // 2``; the wall time beside it also
counts the other processes of a shared machine), and its run's figures must match the
recurrence stepped tick by tick (to 1e-12; tests/analysis/test_analysis_large.py checks its long run
the same way).

PyDTMC is a benchmark-only dependency: ``pip install '.[bench]'`` (or ``pip install pydtmc``).
"""

import argparse
import random
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from common import Row, print_table

from doge_datagen import CountingSink, DataOnlineGenerator
from doge_datagen.demo import banking_generator
from doge_datagen.profiles import hourly

START = 1_704_067_200_000  # 2024-01-01T00:00:00Z, a Monday
#: An hourly profile (mean about 1): quiet nights, busy evenings.
DAY = [0.3, 0.2, 0.2, 0.2, 0.3, 0.5, 0.8, 1.1, 1.3, 1.3, 1.2, 1.2,
       1.3, 1.2, 1.1, 1.1, 1.2, 1.4, 1.6, 1.7, 1.5, 1.2, 0.8, 0.5]  # fmt: skip


class Thing:
    __slots__ = ()


def random_chain(
    n: int, exits: int, seed: int = 1, profiled: bool = False, ticks: Optional[int] = 1440
) -> DataOnlineGenerator:
    """``n`` states, each with ``exits`` transitions to distinct other states; a state leaves
    with 10 % to 55 % per tick in all (with a profile, that times the hour's factor, at most
    1.7, so under 100 %)."""
    rng = random.Random(seed)
    states = [f"s{i}" for i in range(n)]
    sink = CountingSink()
    datagen = DataOnlineGenerator(states, "s0", Thing, 1000, 60_000, ticks, START, seed=seed)
    profile = hourly(DAY, name="day") if profiled else None
    for i, state in enumerate(states):
        picked = range(n - 1) if exits >= n - 1 else rng.sample(range(n - 1), exits)
        targets = [j + (j >= i) for j in picked]  # every state but i
        weights = [rng.random() + 0.05 for _ in targets]
        total = rng.uniform(10.0, 55.0) / sum(weights)
        for j, w in zip(targets, weights):
            p: Any = w * total
            if profile is not None:
                p = p * profile
            datagen.add_transition(f"t{i}_{j}", state, states[j], p, event_sinks=[sink])
    return datagen


def banking() -> DataOnlineGenerator:
    sink = CountingSink()
    return banking_generator(sink, sink, sink, sink, subjects_num=1000, ticks_num=1440, seed=1)


def matrix_of(datagen: DataOnlineGenerator) -> np.ndarray:
    """The per-tick matrix from the transitions, for PyDTMC (constant probabilities)."""
    index = {s: i for i, s in enumerate(datagen.states)}
    n = len(index)
    matrix = np.zeros((n, n))
    for t in datagen.transitions:
        matrix[index[t.from_state], index[t.to_state]] += float(t.probability) / 100.0
    for i in range(n):
        matrix[i, i] += 1.0 - matrix[i].sum()
    return matrix


def best_of(fns: List[Callable[[], Any]], repeat: int) -> List[Tuple[float, Any]]:
    """Each function's best time over ``repeat`` interleaved rounds, and its last result."""
    best = [float("inf")] * len(fns)
    results: List[Any] = [None] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            began = time.perf_counter()
            results[k] = fn()
            best[k] = min(best[k], time.perf_counter() - began)
    return list(zip(best, results))


def compare(name: str, datagen: DataOnlineGenerator, repeat: int) -> Row:
    from pydtmc import MarkovChain

    matrix = matrix_of(datagen)
    states = list(datagen.states)

    def pydtmc() -> Any:
        return MarkovChain(matrix, states).stationary_distributions

    (ours, analysis), (theirs, distributions) = best_of([datagen.analyze, pydtmc], repeat)
    if len(distributions) != 1:
        raise AssertionError(f"{name}: PyDTMC found {len(distributions)} recurrent classes")
    shares = np.array([analysis.stationary[s] for s in states])
    gap = float(np.max(np.abs(shares - distributions[0])))
    if not gap <= 1e-12:
        raise AssertionError(f"{name}: the long-run shares differ from PyDTMC's by {gap:.3g}")
    ratio = ours / theirs
    return (
        f"analysis of {name} vs PyDTMC (max gap {gap:.1e})",
        f"{ours * 1e3:.3f}ms",
        f"{theirs * 1e3:.3f}ms",
        ratio,
        "<= 1x",
        ratio <= 1.0,
    )


def large(repeat: int) -> Row:
    datagen = random_chain(10_000, 5, seed=2, profiled=True)
    datagen.analyze()  # scipy's first import is not the analysis's
    cpu = wall = float("inf")
    for _ in range(repeat):
        began, began_cpu = time.perf_counter(), time.process_time()
        analysis = datagen.analyze()
        wall = min(wall, time.perf_counter() - began)
        cpu = min(cpu, time.process_time() - began_cpu)
    # The run's figures against the recurrence the engine follows, a tick at a time from the
    # initial state, every probability read at the tick's timestamp.
    index = {s: i for i, s in enumerate(datagen.states)}
    frm = np.array([index[t.from_state] for t in datagen.transitions])
    to = np.array([index[t.to_state] for t in datagen.transitions])
    n = len(index)
    x = np.zeros(n)
    x[index[datagen.initial_state]] = 1.0
    events = np.zeros(len(frm))
    by_hour: Dict[int, np.ndarray] = {}
    for tick in range(datagen.ticks_num or 0):
        ms = START + tick * datagen.tick_ms
        hour = ms // 3_600_000
        if hour not in by_hour:
            by_hour[hour] = np.array([t.probability.value_ms(ms) for t in datagen.transitions])
        probs = by_hour[hour] / 100.0
        moved = x[frm] * probs
        events += moved
        x = x * (1.0 - np.bincount(frm, probs, minlength=n)) + np.bincount(to, moved, minlength=n)
    assert analysis.run_end_shares is not None and analysis.run_events is not None
    shares = np.array([analysis.run_end_shares[s] for s in datagen.states])
    gap = float(np.max(np.abs(shares - x)))
    found = np.array([analysis.run_events[t.trigger] for t in datagen.transitions])
    gap = max(gap, float(np.max(np.abs(found - 1000 * events))) / float(np.max(1000 * events)))
    if not gap <= 1e-12:
        raise AssertionError(f"10,000 states: the run differs from the recurrence by {gap:.3g}")
    return (
        f"analysis of a 10,000-state profiled chain vs one second (gap {gap:.1e})",
        f"{cpu:.3f}s cpu ({wall:.3f}s wall)",
        "1.000s",
        cpu,
        "< 1x",
        cpu < 1.0,
    )


def run(repeat: int = 5, skip_large: bool = False) -> List[Row]:
    chains = [
        ("the banking model", banking()),
        ("a 50-state chain", random_chain(50, 10)),
        ("a sparse 200-state chain", random_chain(200, 5)),
        ("a dense 200-state chain", random_chain(200, 199)),
    ]
    try:
        import pydtmc  # noqa: F401
    except ImportError:
        print("PyDTMC is not installed (pip install pydtmc): no comparison", file=sys.stderr)
        rows = []
    else:
        rows = [compare(name, datagen, repeat) for name, datagen in chains]
    if not skip_large:
        rows.append(large(max(1, repeat // 2)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-large", action="store_true", help="skip the 10,000 states")
    args = parser.parse_args()
    print_table(run(args.repeat, args.skip_large))


if __name__ == "__main__":
    main()
