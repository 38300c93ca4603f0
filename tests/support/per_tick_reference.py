"""The README's semantics, literally: every tick, every subject rolls once.

This is the reference the event-driven engine is checked against (statistically, in
``test_engine_vs_reference.py``) and measured against (``bench/``). It shares nothing with the
engine but the model definition.
"""

import math
import random
from typing import Any, Callable, List, Tuple

from doge_datagen import DataOnlineGenerator


def _tick(
    subjects: List[Any],
    state_of: List[int],
    tables: List[List[Tuple[float, Any, int]]],
    timestamp: Any,
    roll: Callable[[], float],
) -> None:
    """One tick of the literal rule: every subject, in order, rolls once against its state's
    cumulative probabilities ``(cumulative, transition, target)``; the remainder is a stay.
    The callback may veto the move; otherwise the subject moves and the sinks get the event."""
    for i, subject in enumerate(subjects):
        rows = tables[state_of[i]]
        if not rows:
            continue
        r = roll() * 100.0
        for row in rows:
            if r < row[0]:
                break
        else:
            continue  # stays
        _, transition, target = row
        callback = transition.action_callback
        if callback is not None and not callback(subject, transition):
            continue
        state_of[i] = target
        for sink in transition.event_sinks:
            sink.collect(timestamp, subject, transition)


def run_per_tick(datagen: DataOnlineGenerator, rng: random.Random) -> List[Any]:
    """Run ``datagen``'s model tick by tick with ``rng``; close its sinks; return the subjects."""
    index = {state: i for i, state in enumerate(datagen.states)}
    # Per state: (cumulative percent, transition, target state index), in definition order.
    tables: List[List[Any]] = []
    for state in datagen.states:
        running = 0.0
        rows = []
        for t in datagen.transitions_from(state):
            running += t.probability
            rows.append((running, t, index[t.to_state]))
        tables.append(rows)
    create = getattr(datagen.subject_factory, "create", datagen.subject_factory)
    subjects = [create() for _ in range(datagen.subjects_num)]
    state_of = [index[datagen.initial_state]] * len(subjects)
    roll = rng.random
    try:
        for tick in range(datagen.ticks_num):
            timestamp = datagen.timestamp_start + tick * datagen.tick_ms
            _tick(subjects, state_of, tables, timestamp, roll)
    finally:
        for sink in datagen.sinks:
            sink.close()
    return subjects


def run_per_tick_plain(datagen: DataOnlineGenerator, rng: random.Random) -> List[Any]:
    """The same loop written the straightforward way: states by name, the cumulative
    probability summed while walking a state's transitions, the stay as the remainder.

    Used only by the benchmarks, to show the cost of evaluating every subject every tick
    as a first implementation of the README would.
    """
    create = getattr(datagen.subject_factory, "create", datagen.subject_factory)
    subjects = [create() for _ in range(datagen.subjects_num)]
    states = [datagen.initial_state] * len(subjects)
    by_state = {state: datagen.transitions_from(state) for state in datagen.states}
    timestamp = datagen.timestamp_start
    try:
        for _ in range(datagen.ticks_num):
            for i, subject in enumerate(subjects):
                rand = rng.random() * 100
                cumulative = 0.0
                for transition in by_state[states[i]]:
                    cumulative += transition.probability
                    if rand < cumulative:
                        if transition.action_callback is None or transition.action_callback(
                            subject, transition
                        ):
                            states[i] = transition.to_state
                            for sink in transition.event_sinks:
                                sink.collect(timestamp, subject, transition)
                        break
            timestamp += datagen.tick_ms
    finally:
        for sink in datagen.sinks:
            sink.close()
    return subjects


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: multiply uniforms until the product drops below exp(-mean)."""
    limit, product, n = math.exp(-mean), rng.random(), 0
    while product > limit:
        n += 1
        product *= rng.random()
    return n


def run_per_tick_profiled(datagen: DataOnlineGenerator, rng: random.Random) -> List[Any]:
    """The per-tick loop for time-varying models: every tick, every subject reads each of its
    state's probabilities at that tick's timestamp (``value_ms`` of a profiled probability,
    the number otherwise) and rolls once; then ``datagen.arrivals`` (a number or a profiled
    rate of subjects per tick) brings a Poisson number of new subjects, who roll from the
    tick they arrive at, after the subjects already there. Closes the sinks; returns the
    subjects."""
    index = {state: i for i, state in enumerate(datagen.states)}
    outgoing = [
        [(t, index[t.to_state]) for t in datagen.transitions_from(state)]
        for state in datagen.states
    ]

    def percent(probability: Any, ms: float) -> float:
        value = getattr(probability, "value_ms", None)
        return value(ms) if value is not None else probability

    create = getattr(datagen.subject_factory, "create", datagen.subject_factory)
    subjects = [create() for _ in range(datagen.subjects_num)]
    state_of = [index[datagen.initial_state]] * len(subjects)
    rate = getattr(datagen, "arrivals", None)
    try:
        for tick in range(datagen.ticks_num):
            timestamp = datagen.timestamp_start + tick * datagen.tick_ms
            if rate is not None:
                for _ in range(_poisson(rng, percent(rate, timestamp))):
                    subjects.append(create())
                    state_of.append(index[datagen.initial_state])
            # This tick's probabilities per state, read once: (cumulative, transition, target).
            tables = []
            for rows in outgoing:
                running, table = 0.0, []
                for t, target in rows:
                    running += percent(t.probability, timestamp)
                    table.append((running, t, target))
                tables.append(table)
            _tick(subjects, state_of, tables, timestamp, rng.random)
    finally:
        for sink in datagen.sinks:
            sink.close()
    return subjects
