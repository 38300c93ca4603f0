"""The README's semantics, literally: every tick, every subject rolls once.

This is the reference the event-driven engine is checked against (statistically, in
``test_engine_vs_reference.py``) and measured against (``bench/``). It shares nothing with the
engine but the model definition.
"""

import random
from typing import Any, List

from doge_datagen import DataOnlineGenerator


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
