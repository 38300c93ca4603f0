"""Property-based tests (hypothesis): random models and random bad input.

* Random valid models, with vetoing callbacks and final states, keep the engine's invariants:
  one move per subject per tick, moves chain from the initial state, final states stay final,
  the per-trigger and per-sink counts of the summary equal what the sinks received, and the
  same seed gives the same events.
* Random invalid models, and random sink URLs, give a ``ConfigurationError`` or a
  ``UsageError`` (or, for a URL, a sink), never another exception.

The suite runs about 1,200 examples in all. ``DOGE_HYPOTHESIS_EXAMPLES=20000`` runs 20,000,
shared among the properties the same way:

    DOGE_HYPOTHESIS_EXAMPLES=20000 .venv/bin/python -m pytest tests/engine/test_properties.py
"""

import math
import os
from collections import Counter
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doge_datagen import ConfigurationError, DataOnlineGenerator, InMemorySink, Transition
from doge_datagen.cli.main import UsageError, _SinkBuilder

TOTAL = int(os.environ.get("DOGE_HYPOTHESIS_EXAMPLES", "1200"))


def share(fraction: float) -> Any:
    return settings(
        max_examples=max(1, int(TOTAL * fraction)),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


class Thing:
    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n


@st.composite
def models(draw: Any) -> Dict[str, Any]:
    """A valid model's description: states, transitions (some states final), veto odds."""
    n_states = draw(st.integers(1, 5))
    states = [f"s{i}" for i in range(n_states)]
    transitions: List[Dict[str, Any]] = []
    for state in states:
        if draw(st.booleans()) and n_states > 1 and state != states[0]:
            continue  # a final state
        budget = 100.0
        for k in range(draw(st.integers(0, 3))):
            p = draw(
                st.one_of(
                    st.just(budget),
                    st.floats(0, budget, allow_nan=False, allow_infinity=False),
                    st.sampled_from([0, 1, 50, 100]).filter(lambda x, budget=budget: x <= budget),
                )
            )
            budget -= p
            transitions.append(
                {
                    "trigger": f"{state}_t{k}",
                    "from": state,
                    "to": draw(st.sampled_from(states)),
                    "p": p,
                    "veto": draw(st.sampled_from([None, 0.0, 0.3, 1.0])),
                }
            )
    return {
        "states": states,
        "transitions": transitions,
        "subjects": draw(st.integers(0, 12)),
        "ticks": draw(st.integers(0, 25)),
        "tick_ms": draw(st.sampled_from([1, 1000, 60000])),
        "seed": draw(st.integers(0, 2**32)),
    }


def build(spec: Dict[str, Any]):
    counter = iter(range(10**9))
    datagen = DataOnlineGenerator(
        spec["states"],
        spec["states"][0],
        lambda: Thing(next(counter)),
        spec["subjects"],
        spec["tick_ms"],
        spec["ticks"],
        1_000_000,
        seed=spec["seed"],
    )
    everything = InMemorySink(lambda ts, s, t: s.n, name="everything")
    own: Dict[str, InMemorySink] = {}
    calls = Counter()
    for t in spec["transitions"]:
        veto = t["veto"]
        callback = None
        if veto is not None:

            def callback(subject, transition, veto=veto):
                calls[transition.trigger] += 1
                return datagen.random.random() >= veto

        own[t["trigger"]] = InMemorySink(lambda ts, s, t: s.n, name=t["trigger"])
        datagen.add_transition(
            t["trigger"],
            t["from"],
            t["to"],
            t["p"],
            action_callback=callback,
            event_sinks=[everything, own[t["trigger"]]],
        )
    return datagen, everything, own, calls


def events_of(sink: InMemorySink) -> List[tuple]:
    return [(e.timestamp, e.value, e.trigger, e.from_state, e.to_state) for e in sink.events]


@share(0.5)
@given(models())
def test_random_valid_models_keep_the_engine_invariants(spec):
    datagen, everything, own, calls = build(spec)
    summary = datagen.start()
    events = events_of(everything)
    finals = {s for s in spec["states"] if not any(t["from"] == s for t in spec["transitions"])}

    # One move per subject per tick.
    moves = [(ts, n) for ts, n, *_ in events]
    assert len(set(moves)) == len(moves)
    # Ticks ascend and, within a tick, subjects act in creation order.
    assert moves == sorted(moves)
    # Moves chain from the initial state, and nothing leaves a final state.
    where: Dict[int, str] = {}
    for ts, n, _trigger, source, target in events:
        assert source == where.get(n, spec["states"][0])
        assert source not in finals
        where[n] = target
        assert (ts - 1_000_000) % spec["tick_ms"] == 0
        assert 0 <= (ts - 1_000_000) // spec["tick_ms"] < spec["ticks"]
    # The summary's counts are what the sinks received.
    per_trigger = Counter(trigger for _, _, trigger, _, _ in events)
    assert {k: v for k, v in summary.events_per_trigger.items() if v} == dict(per_trigger)
    assert summary.events == len(events)
    assert summary.events_per_sink.get("everything", 0) == len(events)
    for trigger, sink in own.items():
        assert summary.events_per_sink[trigger] == len(sink.events) == per_trigger[trigger]
        assert sink.closed == 1
    # Every vetoed call is counted as such: a callback ran once per attempt.
    for trigger, attempts in calls.items():
        assert attempts == per_trigger[trigger] + summary.vetoed_per_trigger.get(trigger, 0)
    assert summary.vetoed == sum(summary.vetoed_per_trigger.values())
    # The same seed gives the same events.
    again, everything_again, _, _ = build(spec)
    again.start()
    assert events_of(everything_again) == events


ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.text(max_size=3), max_size=3),
    st.just(object()),
    st.just(InMemorySink()),
)


@share(0.25)
@given(
    states=st.one_of(ANYTHING, st.lists(st.sampled_from(["a", "b", "c", "a"]), max_size=4)),
    initial=st.one_of(ANYTHING, st.sampled_from(["a", "b", "z"])),
    factory=st.one_of(st.just(lambda: Thing(0)), ANYTHING),
    subjects=st.one_of(st.integers(-3, 30), ANYTHING),
    tick_ms=st.one_of(st.sampled_from([1, 0.5, 60000, 0, -1]), ANYTHING),
    ticks=st.one_of(st.integers(-3, 30), ANYTHING),
    start=ANYTHING,
    transition=st.fixed_dictionaries(
        {
            "trigger": st.one_of(st.sampled_from(["go", " go", "go "]), ANYTHING),
            "from_state": st.one_of(st.sampled_from(["a", "b", "z"]), ANYTHING),
            "to_state": st.one_of(st.sampled_from(["a", "b", "z"]), ANYTHING),
            "probability": st.one_of(st.floats(-10, 120), ANYTHING),
            "action_callback": st.one_of(st.none(), st.just(lambda s, t: True), ANYTHING),
            "event_sinks": st.one_of(st.just([InMemorySink()]), ANYTHING),
        }
    ),
    later=st.sampled_from(["probability", "to_state", "from_state", "trigger", None]),
    later_value=ANYTHING,
    speed=st.one_of(st.none(), st.sampled_from([1e6, 0, -1, math.nan]), ANYTHING),
)
def test_random_invalid_models_give_configuration_errors(
    states, initial, factory, subjects, tick_ms, ticks, start, transition, later, later_value, speed
):
    try:
        datagen = DataOnlineGenerator(states, initial, factory, subjects, tick_ms, ticks, start)
        added = datagen.add_transition(**transition)
        assert isinstance(added, Transition)
        if later is not None:
            setattr(added, later, later_value)  # changed after it was checked
        datagen.start(speed=speed if speed is None or not isinstance(speed, float) else None)
    except ConfigurationError:
        pass  # named, clear and a ValueError: what bad input must give


# Random sink URLs that stay on this machine: a server URL always names a loopback address
# on a closed port (some malformed), so nothing is contacted beyond a refused connection; a
# file URL names a relative path, made in a temporary directory.
SERVER_SCHEMES = [
    "kafka",
    "kafka+avro",
    "postgresql",
    "postgres",
    "mysql+pymysql",
    "mariadb",
    "redis",
    "amqp",
    "mqtt",
    "nats",
    "ftp",
    "KAFKA",
    "",
]
HOSTS = [
    "127.0.0.1:1",
    "127.0.0.1:notaport",
    "127.0.0.1:0",
    "127.0.0.1:99999",
    "[::1]:1",
    "u:p@127.0.0.1:1",
    ":1",
    "127.0.0.1:1,127.0.0.1:",
    "@127.0.0.1:1",
]
TAILS = st.lists(
    st.sampled_from(
        [
            "/",
            "/t",
            "/db",
            "?",
            "?table=",
            "?table=x;drop",
            "&qos=7",
            "?qos=x",
            "?stream=",
            "?batch_size=-1",
            "?flush_timeout=x",
            "?password_env=DOGE_NO_SUCH_VAR",
            "%",
            "#",
            "\x00",
            "?registry=mock://&schema=/nonexistent.avsc",
            "?routing_key=",
            "/a/b",
        ]
    )
    | st.text(alphabet="abc/?&=%:._-", max_size=6),
    max_size=3,
).map("".join)
SERVER_URLS = st.builds(
    lambda scheme, host, tail: f"{scheme}://{host}{tail}",
    st.sampled_from(SERVER_SCHEMES),
    st.sampled_from(HOSTS),
    TAILS,
)
FILE_URLS = st.builds(
    lambda scheme, path: f"{scheme}{path}",
    st.sampled_from(["jsonl:", "csv:", "parquet:", "print:", "sqlite://", "sqlite:///", "x:"]),
    st.text(alphabet="abc._-?=&", max_size=8),
)


@pytest.fixture(scope="module")
def in_a_temporary_directory(tmp_path_factory):
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("urls"))
    yield
    os.chdir(here)


@share(0.25)
@given(st.one_of(SERVER_URLS, FILE_URLS))
def test_random_sink_urls_give_a_sink_or_a_usage_or_configuration_error(
    in_a_temporary_directory, url
):
    try:
        sink = _SinkBuilder().build(url)
    except (UsageError, ConfigurationError):
        return
    except ImportError:  # an optional client that is not installed: named, with its extra
        return
    assert hasattr(sink, "collect")  # a URL that parses builds a sink, and opens nothing


@pytest.mark.parametrize("probability", [5e-324, 1e-300, 1e-200])
def test_a_vanishing_probability_is_a_state_never_left(probability):
    """Found by the property above: 5e-324 % made the engine divide by zero."""
    datagen, everything, _, _ = build(
        {
            "states": ["a", "b"],
            "transitions": [
                {"trigger": "go", "from": "a", "to": "b", "p": probability, "veto": None}
            ],
            "subjects": 50,
            "ticks": 100,
            "tick_ms": 1,
            "seed": 1,
        }
    )
    summary = datagen.start()
    assert summary.events == len(everything.events) == 0


@pytest.mark.parametrize(
    "url",
    [
        "SQLITE://:",  # a raw ValueError from SQLAlchemy's URL parser
        "sqlite://",  # an in-memory database that vanishes with the run
        "sqlite:///=?=",  # a setting the sqlite3 driver does not take (was a warning)
        "mysql+pymysql://127.0.0.1:1?qos=x",  # a TypeError from the driver
        "amqp://127.0.0.1:1:",  # a ValueError from pika's address check
        "postgresql://127.0.0.1:1/\x00",  # a ValueError from psycopg2 (embedded NUL)
    ],
)
def test_urls_the_properties_found_are_refused_clearly(in_a_temporary_directory, url):
    with pytest.raises((UsageError, ConfigurationError)) as raised:
        _SinkBuilder().build(url)
    assert "sink" in str(raised.value) or "database" in str(raised.value)
