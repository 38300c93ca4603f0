"""The engine's contract: the README's semantics, ordering, validation and sink life cycle."""

import logging
import random
import subprocess
import sys

import pytest
from support.models import Thing, ThingFactory, ping_pong, three_states

from doge_datagen import (
    ConfigurationError,
    CountingSink,
    DataOnlineGenerator,
    EventSink,
    InMemorySink,
    SinkCloseError,
    Subject,
    SubjectFactory,
    Transition,
)


def test_timestamps_start_at_tick_zero_and_advance_by_tick_ms():
    datagen, sink = ping_pong(1, 4, timestamp_start=5_000, seed=1)
    datagen.start()
    assert [e.timestamp for e in sink.events] == [5_000, 6_000, 7_000, 8_000]
    assert [e.trigger for e in sink.events] == ["hit", "back", "hit", "back"]


def test_subjects_act_in_creation_order_within_a_tick():
    datagen, sink = ping_pong(5, 2, seed=2)
    datagen.start()
    assert [(e.timestamp, e.value) for e in sink.events] == [
        (t, n) for t in (0, 1000) for n in range(5)
    ]


def test_a_stay_emits_nothing_and_a_state_without_transitions_is_final():
    sink = InMemorySink()
    datagen = DataOnlineGenerator(["a", "b", "end"], "a", ThingFactory(), 3, 10, 50, seed=3)
    datagen.add_transition("go", "a", "b", 100, event_sinks=[sink])
    datagen.add_transition("finish", "b", "end", 100, event_sinks=[sink])
    summary = datagen.start()
    assert [e.trigger for e in sink.events] == ["go"] * 3 + ["finish"] * 3
    assert datagen.subject_states() == ["end", "end", "end"]
    assert summary.events == 6


def test_callback_runs_first_and_a_falsy_result_vetoes_the_move():
    seen = []
    sink = InMemorySink(lambda ts, s, t: list(seen))

    def callback(subject, transition):
        seen.append(transition.trigger)
        return len(seen) > 3  # the first three attempts fail

    datagen = DataOnlineGenerator(["a", "b"], "a", ThingFactory(), 1, 1000, 10, seed=4)
    datagen.add_transition("go", "a", "b", 100, action_callback=callback, event_sinks=[sink])
    summary = datagen.start()
    # Vetoed at ticks 0, 1, 2: the subject stayed and retried from the next tick.
    assert [(e.timestamp, e.to_state) for e in sink.events] == [(3000, "b")]
    assert sink.events[0].value == ["go"] * 4  # the callback ran before the sink
    assert summary.vetoed == 3 and summary.vetoed_per_trigger == {"go": 3}
    assert datagen.subject_states() == ["b"]


def test_sinks_are_called_in_list_order_and_self_loops_are_events():
    calls = []

    class Recorder(EventSink):
        def __init__(self, name):
            self.name = name

        def collect(self, timestamp, subject, transition):
            calls.append((self.name, transition.trigger))

    first, second = Recorder("first"), Recorder("second")
    datagen = DataOnlineGenerator(["a"], "a", ThingFactory(), 1, 1, 2, seed=5)
    datagen.add_transition("loop", "a", "a", 100, event_sinks=[second, first])
    summary = datagen.start()
    assert calls == [("second", "loop"), ("first", "loop")] * 2
    assert summary.events_per_sink == {"second": 2, "first": 2}


def test_unhashable_and_equal_subjects_are_distinct_subjects():
    sink = InMemorySink()
    datagen = DataOnlineGenerator(["a", "b"], "a", lambda: Thing(0), 3, 1, 1, seed=6)
    datagen.add_transition("go", "a", "b", 100, event_sinks=[sink])
    datagen.start()
    assert len(sink.events) == 3
    assert len({id(e.subject) for e in sink.events}) == 3


class Closer(EventSink):
    def __init__(self, fail=False):
        self.closes = 0
        self.fail = fail
        self.collected = 0

    def collect(self, timestamp, subject, transition):
        self.collected += 1

    def close(self):
        self.closes += 1
        if self.fail:
            raise RuntimeError("cannot close")


def test_every_sink_is_closed_exactly_once_also_when_a_callback_raises():
    shared, other = Closer(), Closer()

    def explode(subject, transition):
        raise KeyError("boom")

    datagen = DataOnlineGenerator(["a", "b"], "a", ThingFactory(), 2, 1, 5, seed=7)
    datagen.add_transition("go", "a", "b", 100, event_sinks=[shared, other, shared])
    datagen.add_transition("back", "b", "a", 100, action_callback=explode, event_sinks=[shared])
    with pytest.raises(KeyError) as info:
        datagen.start()
    assert shared.closes == 1 and other.closes == 1
    assert shared.collected == 4  # two subjects, listed twice on "go"
    assert info.value.summary.events_per_trigger == {"go": 2, "back": 0}
    assert any("'back'" in note for note in getattr(info.value, "__notes__", []))


def test_every_sink_is_closed_even_when_closing_another_fails():
    bad1, good, bad2 = Closer(fail=True), Closer(), Closer(fail=True)
    datagen = DataOnlineGenerator(["a", "b"], "a", ThingFactory(), 1, 1, 1, seed=8)
    datagen.add_transition("go", "a", "b", 100, event_sinks=[bad1, good, bad2])
    with pytest.raises(SinkCloseError) as info:
        datagen.start()
    assert (bad1.closes, good.closes, bad2.closes) == (1, 1, 1)
    assert len(info.value.errors) == 2


def test_one_failing_sink_raises_its_own_error():
    bad = Closer(fail=True)
    datagen = DataOnlineGenerator(["a", "b"], "a", ThingFactory(), 1, 1, 1, seed=8)
    datagen.add_transition("go", "a", "b", 100, event_sinks=[bad])
    with pytest.raises(RuntimeError, match="cannot close") as info:
        datagen.start()
    assert info.value.summary.events == 1 and info.value.summary.ticks == 1


def test_the_same_seed_gives_the_same_events_and_another_seed_does_not():
    def run(seed):
        datagen, sink = three_states(200, 300, seed)
        datagen.start()
        return [(e.timestamp, e.value, e.trigger) for e in sink.events]

    assert run(42) == run(42)
    assert run(42) != run(43)
    assert run("a string seed") == run("a string seed")


def test_a_subjects_events_depend_only_on_seed_and_its_index():
    def events_of_first(n_subjects, keep):
        datagen, sink = three_states(n_subjects, 500, seed=99)
        datagen.start()
        return [(e.timestamp, e.value, e.trigger) for e in sink.events if e.value < keep]

    assert events_of_first(50, 50) == events_of_first(400, 50)


def test_the_exposed_random_is_seeded_and_the_global_one_is_untouched():
    random.seed(1234)
    before = random.getstate()
    draws = []

    def callback(subject, transition):
        draws.append(datagen.random.random())
        return True

    datagen = DataOnlineGenerator(["a", "b"], "a", ThingFactory(), 3, 1, 4, seed=10)
    datagen.add_transition("go", "a", "b", 100, action_callback=callback)
    datagen.add_transition("back", "b", "a", 100, action_callback=callback)
    datagen.start()
    first = list(draws)
    draws.clear()
    datagen.start()
    assert draws == first and len(first) == 12
    assert random.getstate() == before


def test_summary_counts_match_what_sinks_received():
    counter = CountingSink()
    datagen, sink = three_states(300, 400, seed=11, sinks=[counter])
    summary = datagen.start()
    assert summary.events == len(sink.events) == counter.count
    assert summary.events_per_trigger == sink.triggers()
    assert summary.events_per_sink == {"memory": len(sink.events), "counter": counter.count}
    assert counter.closed == 1
    assert str(summary.events) in str(summary)


def test_a_seed_is_chosen_and_recorded_when_none_is_given():
    datagen, _ = ping_pong(1, 1)
    assert isinstance(datagen.seed, int)
    assert datagen.start().seed == datagen.seed


def test_readme_style_subclasses_and_generic_factory():
    class User(Subject):
        def __init__(self, user_id):
            self.user_id = user_id

    class UserFactory(SubjectFactory[User]):
        def __init__(self):
            self.current_id = 0

        def create(self) -> User:
            self.current_id += 1
            return User(self.current_id)

    sink = InMemorySink(lambda ts, s, t: s.user_id)
    datagen = DataOnlineGenerator(["offline", "online"], "offline", UserFactory(), 2, 60000, 1)
    transition = datagen.add_transition("login", "offline", "online", 100, event_sinks=[sink])
    assert isinstance(transition, Transition)
    assert (transition.trigger, transition.from_state, transition.to_state) == (
        "login",
        "offline",
        "online",
    )
    assert transition.probability == 100 and transition.event_sinks == [sink]
    assert transition.action_callback is None
    assert datagen.start() is not None
    assert [e.value for e in sink.events] == [1, 2]


def make(**overrides):
    args = dict(
        states=["a", "b"],
        initial_state="a",
        subject_factory=ThingFactory(),
        subjects_num=1,
        tick_ms=1000,
        ticks_num=1,
    )
    args.update(overrides)
    return DataOnlineGenerator(**args)


@pytest.mark.parametrize(
    "overrides, words",
    [
        (dict(initial_state="c"), ["'c'", "initial state"]),
        (dict(states=["a", "b", "a"]), ["'a'", "twice"]),
        (dict(states="ab"), ["'ab'"]),
        (dict(subjects_num=-1), ["subjects_num", "-1"]),
        (dict(ticks_num=-5), ["ticks_num", "-5"]),
        (dict(ticks_num=2.5), ["ticks_num", "2.5"]),
        (dict(tick_ms=0), ["tick_ms", "0"]),
        (dict(tick_ms=-10), ["tick_ms", "-10"]),
        (dict(subject_factory=42), ["subject_factory", "42"]),
    ],
)
def test_bad_constructor_arguments_are_named(overrides, words):
    with pytest.raises(ValueError) as info:
        make(**overrides)
    assert isinstance(info.value, ConfigurationError)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    "args, words",
    [
        (("go", "x", "b", 1), ["'go'", "'x'", "from_state"]),
        (("go", "a", "y", 1), ["'go'", "'y'", "to_state"]),
        (("go", "a", "b", -1), ["'go'", "-1"]),
        (("go", "a", "b", float("nan")), ["'go'", "nan"]),
        (("go", "a", "b", float("inf")), ["'go'", "inf"]),
        (("go", "a", "b", "0.1"), ["'go'", "'0.1'"]),
        (("go", "a", "b", True), ["'go'", "True"]),
        (("go", "a", "b", 100.5), ["'go'", "100.5", "'a'"]),
    ],
)
def test_bad_transitions_are_named(args, words):
    datagen = make()
    with pytest.raises(ConfigurationError) as info:
        datagen.add_transition(*args)
    for word in words:
        assert word in str(info.value)


def test_duplicate_trigger_from_one_state_and_sums_above_100():
    datagen = make()
    datagen.add_transition("go", "a", "b", 60)
    datagen.add_transition("go", "b", "a", 60)  # same trigger, other state: fine
    with pytest.raises(ConfigurationError, match="'go'.*already"):
        datagen.add_transition("go", "a", "a", 1)
    with pytest.raises(ConfigurationError, match=r"'a'.*100"):
        datagen.add_transition("stay", "a", "a", 40.5)
    with pytest.raises(ConfigurationError, match="callable"):
        datagen.add_transition("cb", "a", "a", 1, action_callback="not a function")
    with pytest.raises(ConfigurationError, match="collect"):
        datagen.add_transition("sink", "a", "a", 1, event_sinks=[object()])


def test_float_noise_in_a_sum_of_100_is_accepted():
    datagen = make(states=["a", "b", "c", "d"])
    for trigger, target, p in (("x", "b", 33.4), ("y", "c", 33.3), ("z", "d", 33.3)):
        datagen.add_transition(trigger, "a", target, p)
    datagen.start()
    assert datagen.subject_states()[0] in ("b", "c", "d")


def test_importing_the_package_configures_no_logging_and_no_heavy_modules():
    code = (
        "import logging, sys; root = logging.getLogger(); before = list(root.handlers);"
        "import doge_datagen, doge_datagen.doge, doge_datagen.printing_sink;"
        "assert root.handlers == before, root.handlers;"
        "assert root.level == logging.WARNING;"
        "heavy = [m for m in ('confluent_kafka', 'kafka', 'sqlalchemy', 'graphviz', 'fastavro',"
        " 'redis', 'pika', 'paho', 'nats', 'pyarrow') if m in sys.modules];"
        "assert not heavy, heavy;"
        "print('clean')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "clean"


def test_library_loggers_have_no_handlers():
    assert logging.getLogger("doge_datagen").handlers == []
    assert logging.getLogger("doge_datagen.doge").handlers == []


def test_a_failing_sink_does_not_keep_the_event_from_the_sinks_after_it():
    class Failing(Closer):
        def collect(self, timestamp, subject, transition):
            super().collect(timestamp, subject, transition)
            if self.collected == 3:
                raise ConnectionError("down")

    before, failing, after = InMemorySink(), Failing(), InMemorySink()
    datagen = DataOnlineGenerator(["a", "b"], "a", ThingFactory(), 2, 1, 10, seed=9)
    datagen.add_transition("go", "a", "b", 100, event_sinks=[before, failing, after])
    datagen.add_transition("back", "b", "a", 100, event_sinks=[before, failing, after])
    with pytest.raises(ConnectionError):
        datagen.start()
    assert len(before.events) == len(after.events) == 3  # the third event reached both
    assert before.closed == after.closed == failing.closes == 1


def test_transition_and_probability_matrices_describe_the_model():
    datagen, _ = three_states(1, 1, seed=1)
    assert datagen.probability_matrix["A"] == {"a_to_b": 5, "a_to_c": 3}
    assert datagen.transition_matrix["C"]["c_loop"].to_state == "C"
    assert set(datagen.transition_matrix) == {"A", "B", "C"}
