"""Random models run through the C loop and through the Python loop agree on everything user
code can see.

Each example is a small random model (vetoes, callbacks and sinks that raise or stop the run,
sinks with ``poll()``, profiled probabilities and arrivals, a range of subjects as a shard
runs it, runs without a tick limit, tick lengths and starts at the edges). It is built twice
and run once with the C loop and once with ``engine._speedups`` set to None, and the two runs
must agree on: every call into user code, in order (factories, callbacks, sinks, polls), with
what each saw of ``datagen.timestamp`` and drew from ``datagen.random``; the events each sink
got; the subjects' attributes and states; the summary, also the one attached to an error or
a ``KeyboardInterrupt`` raised by user code; the error itself; ticks done and the final
``datagen.timestamp``. Where the C loop can take the run, the test checks that it did.

1,000 models under ``CI=true``, 200 otherwise; ``DOGE_FUZZ_EXAMPLES=N`` sets the number. The
examples are derandomized, so a run is the same on every machine.
"""

import faulthandler
import os
import random
import threading
import time
import types
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Tuple
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.loops import CountingLoop

from doge_datagen import DataOnlineGenerator
from doge_datagen.core.shards import split
from doge_datagen.engine import loop as engine
from doge_datagen.profiles import hourly, piecewise, profile, weekly

IN_CI = os.environ.get("CI") == "true"
EXAMPLES = int(os.environ.get("DOGE_FUZZ_EXAMPLES") or (1000 if IN_CI else 200))

pytestmark = pytest.mark.skipif(
    engine._speedups is None and not IN_CI,
    reason="the C speed-ups are not built in this checkout",
)

# A run that goes on longer than this (wall time) is stopped from a thread and reported; one
# that does not stop then either ends the test process with every thread's traceback.
WATCHDOG_SECONDS = 60.0

STATES = ["s0", "s1", "s2", "s3"]
MONDAY_2024_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a Monday

# -- what a model is made of --------------------------------------------------------------------

# Probabilities per tick, percent: certain moves, common ones, rare ones (a wait of up to 2**50
# ticks, which both loops must skip, not walk), one too small to ever happen, never.
probabilities = st.one_of(
    st.sampled_from([100, 100.0, 50, 30, 10, 5, 1, 0.5, 0]),
    st.floats(min_value=0.5, max_value=100.0),
    st.sampled_from([1e-6, 1e-9, 1e-13, 5e-324]),
)

# What user code does at its n-th call besides recording what it saw: stop the run, raise,
# or change the run's subjects list or the model under the running loop.
ACTIONS = [
    "stop",
    "raise-value",
    "raise-interrupt",
    "subjects-clear",
    "subjects-extend",
    "subjects-pop",
    "subjects-replace",
    "add-transition",
    "set-probability",
]

# What a transition's action_callback does when called ("stop"/"raise" act at the n-th call).
callbacks = st.one_of(
    st.none(),
    st.sampled_from(["ok", "veto-draw", "veto-odd", "falsy", "truthy"]).map(lambda k: (k, 0)),
    st.tuples(st.sampled_from(ACTIONS), st.integers(1, 12)),
)

sinks = st.fixed_dictionaries(
    {
        "poll": st.booleans(),
        # collect() raises (ValueError or KeyboardInterrupt) or stops the run at its n-th call.
        "collect": st.one_of(
            st.none(),
            st.tuples(st.sampled_from(ACTIONS), st.integers(1, 12)),
        ),
        # poll() does the same at its n-th call.
        "on_poll": st.one_of(
            st.none(),
            st.tuples(st.sampled_from(ACTIONS), st.integers(1, 6)),
        ),
    }
)

tick_lengths = st.one_of(
    st.sampled_from(
        [1, 2, 1000, 60_000, 3_600_000, 2**31 - 1, 2**31, 2**40, 2**62, 2**63 - 1, 0.5, 333.3, 1.5]
    ),
    st.sampled_from([60_000, 420_000, 900_000]),  # minutes: hourly profiles repeat
    st.integers(1, 10**7),
)

starts = st.one_of(
    st.sampled_from(
        [
            0,
            MONDAY_2024_MS,
            MONDAY_2024_MS + 3_599_999,
            -(10**12),
            2**62 - 1,
            2**62,
            -(2**62) + 1,
            2**63 - 1 - 10**6,
            -(2**63),
            2**63,
            2**64,
            -(2**64),
        ]
    ),
    st.integers(-(2**63), 2**63),
)


@st.composite
def models(draw: Any) -> Dict[str, Any]:
    """A description of a model (the model itself is built anew for each loop)."""
    n_states = draw(st.integers(1, 4))
    n_sinks = draw(st.integers(0, 3))
    state = st.integers(0, n_states - 1)
    transitions = []
    for _ in range(draw(st.integers(0, 6))):
        transitions.append(
            {
                "from": draw(state),
                "to": draw(state),
                "probability": draw(probabilities),
                "profile": draw(
                    st.sampled_from(
                        [None, None, "hourly", "piecewise", "callable", "weekly", "campaign"]
                    )
                ),
                "callback": draw(callbacks),
                "sinks": draw(st.lists(st.integers(0, n_sinks - 1), max_size=3)) if n_sinks else [],
                "trigger": draw(st.sampled_from(["a", "b", "c"])),
            }
        )
    # The outgoing probabilities of a state add up to at most 100 %.
    for s in range(n_states):
        outgoing = [t for t in transitions if t["from"] == s]
        total = sum(t["probability"] for t in outgoing)
        if total > 100:
            for t in outgoing:
                t["probability"] = t["probability"] * 100 / total * 0.999
    ticks_num = draw(
        st.one_of(
            st.none(),
            st.integers(0, 40),
            st.sampled_from([2**31 - 1, 2**31, 2**40, 2**62]),
            # Days and weeks of minutes: profiles repeat, and waits go past the two periods
            # the C loop's lists hold, or past the run's end.
            st.sampled_from([3 * 1440 + 7, 10_080, 100_000]),
        )
    )
    subjects_num = draw(st.integers(0, 8))
    spec = {
        "n_states": n_states,
        "transitions": transitions,
        "sinks": [draw(sinks) for _ in range(n_sinks)],
        "subjects_num": subjects_num,
        "ticks_num": ticks_num,
        "tick_ms": draw(tick_lengths),
        "timestamp_start": draw(starts),
        "seed": draw(st.one_of(st.integers(0, 2**64), st.sampled_from(["s", None]))),
        "arrivals": draw(st.sampled_from([None, None, 0.0, 0.3, 1.5, "hourly"])),
        "factory": {
            "index": draw(st.booleans()),
            "raise_at": draw(st.one_of(st.none(), st.integers(1, 10))),
            # The factory adds a transition when it creates this subject (during the run
            # for an arriving one).
            "add_at": draw(st.one_of(st.none(), st.integers(1, 10))),
        },
        "plain_random": draw(st.booleans()),
        # How the clock the loops read for the sinks' polls moves: frozen (one poll, after the
        # first busy tick) or by a second at every reading (a poll after every busy tick).
        "clock_step": draw(st.sampled_from([0.0, 1.0])),
        # A run without a tick limit ends when user code has been called this often.
        "budget": draw(st.integers(5, 120)),
        "shard": draw(
            st.one_of(
                st.none(),
                st.integers(2, 3).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))),
            )
        ),
    }
    if ticks_num is None or ticks_num > 1000:
        # Something must call stop(): every transition without a sink gets a callback.
        for t in transitions:
            if t["callback"] is None and not t["sinks"]:
                t["callback"] = ("ok", 0)
    return spec


# -- building and running one ------------------------------------------------------------------


class Subject:
    def __init__(self, ident: int, made: Any) -> None:
        self.ident = ident
        self.made = made
        self.visits = 0

    def attributes(self) -> Tuple[Any, ...]:
        return (self.ident, self.made, self.visits)


class Observer:
    """Records every call into user code with what it saw, and stops the run on its budget."""

    def __init__(self, datagen: DataOnlineGenerator, budget: Optional[int]) -> None:
        self.datagen = datagen
        self.budget = budget
        self.log: List[Tuple[Any, ...]] = []

    def saw(self, *what: Any) -> None:
        g = self.datagen
        self.log.append(what + (g.timestamp, g.random.randint(0, 10**6), g.random.random()))
        if self.budget is not None and len(self.log) >= self.budget:
            g.stop()


def act(kind: str, n: int, calls: int, datagen: DataOnlineGenerator, where: str) -> None:
    """What a callback, sink or poll told to ``kind`` at its ``n``-th call does at ``calls``."""
    if calls != n:
        return
    if kind == "stop":
        datagen.stop()
    elif kind == "raise-value":
        raise ValueError(f"{where} fails at call {n}")
    elif kind == "raise-interrupt":
        raise KeyboardInterrupt(f"{where} interrupted at call {n}")
    elif kind == "subjects-clear":
        datagen.subjects.clear()
    elif kind == "subjects-extend":
        datagen.subjects.extend([Subject(-1, 0), Subject(-2, 0)])
    elif kind == "subjects-pop":
        if datagen.subjects:
            datagen.subjects.pop()
    elif kind == "subjects-replace":
        if datagen.subjects:  # allowed: another subject in the same place
            datagen.subjects[0] = Subject(-3, 0)
    elif kind == "add-transition":
        datagen.add_transition(f"late{n}", datagen.states[0], datagen.states[-1], 50)
    elif kind == "set-probability":
        if datagen.transitions:
            datagen.transitions[0].probability = 100


class Sink:
    def __init__(self, name: str, spec: Dict[str, Any], observer: Observer) -> None:
        self.name = name
        self.spec = spec
        self.observer = observer
        self.events: List[Tuple[Any, ...]] = []
        self.collects = 0
        self.polls = 0
        self.closed = 0
        if spec["poll"]:
            self.poll = self._poll

    def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
        self.collects += 1
        g = self.observer.datagen
        self.events.append((timestamp, transition.trigger, subject.attributes(), g.timestamp))
        self.observer.saw("collect", self.name, timestamp, transition.trigger, subject.ident)
        if self.spec["collect"]:
            act(*self.spec["collect"], self.collects, g, f"sink {self.name}")

    def _poll(self) -> None:
        self.polls += 1
        self.observer.saw("poll", self.name, self.polls)
        if self.spec["on_poll"]:
            act(*self.spec["on_poll"], self.polls, self.observer.datagen, f"poll {self.name}")

    def close(self) -> None:
        self.closed += 1


def build(spec: Dict[str, Any]) -> Tuple[DataOnlineGenerator, Observer, List[Sink]]:
    factory_spec = spec["factory"]
    made = [0]
    holder: List[Any] = []

    def made_one(ident: int) -> Subject:
        made[0] += 1
        observer.saw("create", ident)
        if factory_spec["raise_at"] == made[0]:
            raise ValueError(f"factory fails at subject {ident}")
        if factory_spec["add_at"] == made[0]:
            act("add-transition", made[0], made[0], holder[0], "factory")
        return Subject(ident, holder[0].random.randint(0, 999))

    def create_counted() -> Subject:
        return made_one(made[0] + 1)

    def create_indexed(index: int) -> Subject:
        return made_one(index)

    arrivals: Any = spec["arrivals"]
    if arrivals == "hourly":
        arrivals = 0.8 * hourly([k % 3 for k in range(24)])
    datagen = DataOnlineGenerator(
        STATES[: spec["n_states"]],
        "s0",
        create_indexed if factory_spec["index"] else create_counted,
        spec["subjects_num"],
        spec["tick_ms"],
        spec["ticks_num"],
        spec["timestamp_start"],
        seed=spec["seed"] if spec["seed"] is not None else 7,
        arrivals=arrivals,
    )
    holder.append(datagen)
    if spec["plain_random"]:
        datagen.random = random.Random(spec["seed"])
    long_run = spec["ticks_num"] is None or spec["ticks_num"] > 1000
    observer = Observer(datagen, spec["budget"] if long_run else None)
    the_sinks = [Sink(f"k{n}", s, observer) for n, s in enumerate(spec["sinks"])]
    used: Dict[int, List[str]] = {}
    for number, t in enumerate(spec["transitions"]):
        # Transitions from different states may share a trigger; one state's are distinct.
        trigger = t["trigger"]
        if trigger in used.setdefault(t["from"], []):
            trigger = f"{trigger}{number}"
        used[t["from"]].append(trigger)
        datagen.add_transition(
            trigger,
            STATES[t["from"]],
            STATES[t["to"]],
            probability(t),
            callback(t["callback"], observer, f"callback #{number}"),
            [the_sinks[k] for k in t["sinks"]],
        )
    return datagen, observer, the_sinks


def probability(t: Dict[str, Any]) -> Any:
    base = t["probability"]
    kind = t["profile"]
    if kind is None or base == 0:
        return base
    if kind == "hourly":
        return base * hourly([(h * 7) % 5 / 4 for h in range(24)])
    if kind == "piecewise":
        day = datetime(2024, 1, 1, tzinfo=timezone.utc)
        return base * piecewise(
            [(day, 0.5), (day + timedelta(hours=1), 0.0), (day + timedelta(hours=3), 1.0)]
        )
    if kind == "weekly":  # repeats every week, with whole days and hours never left
        week = weekly([1, 0.5, 1, 0, 1, 0.25, 0])
        return base * week * hourly([(h * 5) % 7 / 6 for h in range(24)])
    if kind == "campaign":  # hourly for a day and a half, then never again
        day = datetime(2024, 1, 1, 5, tzinfo=timezone.utc)
        ends = piecewise([(day, 1.0), (day + timedelta(hours=36), 0.0)])
        return base * hourly([(h * 7) % 5 / 4 for h in range(24)]) * ends
    # Never 0 for long: a callable is called at every tick it might act on (thinning).
    return base * profile(lambda when: 0.25 + (when.second % 4) / 4, max=1.0)


def callback(spec: Any, observer: Observer, name: str) -> Any:
    if spec is None:
        return None
    kind, n = spec
    calls = [0]

    def call(subject: Any, transition: Any) -> Any:
        calls[0] += 1
        g = observer.datagen
        observer.saw("callback", name, subject.ident, transition.trigger)
        subject.visits += 1
        if kind == "veto-draw":
            return g.random.random() < 0.6
        if kind == "veto-odd":
            return calls[0] % 2
        if kind == "falsy":
            return [] if calls[0] % 3 == 0 else ()
        if kind == "truthy":
            return "yes"
        act(kind, n, calls[0], g, name)
        return True

    return call


class Clock:
    """``time.perf_counter`` as the loops read it for the polls: frozen, or a step per read."""

    def __init__(self, step: float) -> None:
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def c_loop_takes(spec: Dict[str, Any]) -> bool:
    """Whether the C loop runs a model of these ticks (else the Python loop runs it alone)."""
    tick_ms, start, ticks = spec["tick_ms"], spec["timestamp_start"], spec["ticks_num"]
    return (
        type(tick_ms) is int
        and 0 < tick_ms < 2**31
        and -(2**62) < start < 2**62
        and (ticks is None or ticks < 2**31)
    )


def described(exc: BaseException) -> Tuple[Any, ...]:
    summary = getattr(exc, "summary", None)
    return (
        type(exc).__name__,
        str(exc),
        tuple(getattr(exc, "__notes__", ())),
        summary_fields(summary) if summary is not None else None,
    )


def summary_fields(summary: Any) -> Dict[str, Any]:
    fields = dict(vars(summary))
    fields.pop("elapsed_seconds")
    return fields


def run_once(spec: Dict[str, Any], speedups: Any) -> Dict[str, Any]:
    datagen, observer, the_sinks = build(spec)
    clock = Clock(spec["clock_step"])
    fake_time = types.SimpleNamespace(
        **{n: getattr(time, n) for n in dir(time) if not n.startswith("__")}
    )
    fake_time.perf_counter = clock
    watchdog = threading.Timer(WATCHDOG_SECONDS, datagen.stop)
    watchdog.daemon = True
    outcome: Dict[str, Any] = {}
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(engine, "_speedups", speedups))
        stack.enter_context(mock.patch.object(engine, "time", fake_time))
        watchdog.start()
        faulthandler.dump_traceback_later(5 * WATCHDOG_SECONDS, exit=True)
        stack.callback(faulthandler.cancel_dump_traceback_later)
        began = time.monotonic()
        try:
            if spec["shard"] is None:
                summary = datagen.start()
            else:
                k, count = spec["shard"]
                part = split(spec["subjects_num"], count)[k]
                datagen.validate()
                summary = datagen.start_range(
                    part.start,
                    part.stop,
                    arrivals_shard=(k, count),
                    timestamp_start=spec["timestamp_start"],
                )
            outcome["summary"] = summary_fields(summary)
        except BaseException as exc:  # KeyboardInterrupt from user code included
            outcome["error"] = described(exc)
        finally:
            watchdog.cancel()
        outcome["hung"] = time.monotonic() - began >= WATCHDOG_SECONDS
    run = datagen._last_run
    outcome.update(
        calls=observer.log,
        events={s.name: s.events for s in the_sinks},
        closed=[s.closed for s in the_sinks],
        subjects=[None if s is None else s.attributes() for s in datagen.subjects],
        states=datagen.subject_states(),
        ticks_done=None if run is None else run.ticks_done,
        timestamp=datagen.timestamp,
        after=(datagen.random.randint(0, 10**6), datagen.random.random()),
    )
    return outcome


def difference(name: str, c: Any, python: Any) -> str:
    """Where the C loop's ``name`` first differs from the Python loop's."""
    if isinstance(c, list) and isinstance(python, list):
        at = next(
            (k for k, (x, y) in enumerate(zip(c, python)) if x != y), min(len(c), len(python))
        )
        return (
            f"{name} differ at #{at} (C {len(c)}, Python {len(python)} in all): "
            f"C {c[at : at + 2]!r}, Python {python[at : at + 2]!r}"
        )
    return f"{name}: C {c!r} != Python {python!r}"


def compare(spec: Dict[str, Any]) -> None:
    loop = CountingLoop(engine._speedups)
    fast = run_once(spec, loop)
    slow = run_once(spec, None)
    assert not slow["hung"], "the Python loop did not end"
    assert not fast["hung"], "the C loop did not end"
    for name in (
        "error",
        "summary",
        "calls",
        "events",
        "closed",
        "subjects",
        "states",
        "ticks_done",
        "timestamp",
        "after",
    ):
        assert fast.get(name) == slow.get(name), difference(name, fast.get(name), slow.get(name))
    loop_calls = [c for c in slow["calls"] if c[0] != "create"]
    if c_loop_takes(spec) and loop_calls:
        assert loop.runs >= 1, "the C loop did not run this model"


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
@given(models())
def test_the_two_loops_agree_on_random_models(spec: Dict[str, Any]) -> None:
    compare(spec)
