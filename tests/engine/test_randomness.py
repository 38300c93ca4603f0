"""``datagen.random`` gives every subject its own stream while it is created and while it
handles an event, so what user code draws does not depend on the other subjects."""

import pickle
import random
from typing import Any, Dict, List, Tuple

import pytest
from scipy import stats

from doge_datagen import DataOnlineGenerator, InMemorySink, SubjectFactory
from doge_datagen.demo import banking_generator, event_row
from doge_datagen.engine import loop as engine
from doge_datagen.engine.randomness import CREATE_TICK, SubjectRandom

# Every statistical test here fails by chance with probability ALPHA when the streams are
# what they should be (independent uniform draws).
ALPHA = 1e-6


def banking_events(subjects: int, seed: int = 5, ticks: int = 1440) -> List[Dict[str, Any]]:
    sink = InMemorySink(event_row)
    datagen = banking_generator(
        sink, sink, sink, sink, subjects_num=subjects, ticks_num=ticks, seed=seed
    )
    for transition in datagen.transitions:
        transition.event_sinks = [sink]
    datagen.start()
    return [event.value for event in sink.events]


def test_a_subjects_balances_do_not_depend_on_how_many_subjects_run():
    small = banking_events(10)
    large = banking_events(20)
    assert small, "the model produced no events"
    # Subject 0's balances: the example that used to differ between 10 and 20 subjects.
    first = [row for row in small if row["user_id"] == 0]
    assert first and first == [row for row in large if row["user_id"] == 0]
    assert small == [row for row in large if row["user_id"] < 10]
    assert any(row["user_id"] >= 10 for row in large)


def test_ranges_of_subjects_together_make_the_whole_run():
    def events(first: int, stop: int) -> List[Tuple[Any, ...]]:
        sink = InMemorySink(event_row)
        datagen = banking_generator(sink, sink, sink, sink, subjects_num=30, seed=8)
        for transition in datagen.transitions:
            transition.event_sinks = [sink]
        datagen.start_range(first, stop)
        return [tuple(sorted(event.value.items())) for event in sink.events]

    whole = events(0, 30)
    parts = events(0, 7) + events(7, 19) + events(19, 30)
    assert len(whole) > 30
    assert sorted(parts) == sorted(whole)


class CountingFactory(SubjectFactory[Dict[str, Any]]):
    """The README's kind of factory: it numbers subjects itself and takes no index."""

    def __init__(self, rng: random.Random) -> None:
        self.next_id = 0
        self.random = rng

    def create(self) -> Dict[str, Any]:
        subject = {"id": self.next_id, "start": self.random.randint(0, 10**9)}
        self.next_id += 1
        return subject


class IndexFactory(SubjectFactory[Dict[str, Any]]):
    def __init__(self, rng: random.Random) -> None:
        self.random = rng
        self.calls: List[int] = []

    def create(self, index: int) -> Dict[str, Any]:
        self.calls.append(index)
        return {"id": index, "start": self.random.randint(0, 10**9)}


def subjects_of(factory_class: Any, first: int, stop: int) -> Tuple[List[Any], Any]:
    datagen: DataOnlineGenerator[Any] = DataOnlineGenerator(
        ["a", "b"], "a", lambda: None, 12, 1000, 3, seed=4
    )
    factory = factory_class(datagen.random)
    datagen.subject_factory = factory
    datagen.add_transition("go", "a", "b", 50)
    datagen.start_range(first, stop)
    return datagen.subjects, factory


@pytest.mark.parametrize("factory_class", [CountingFactory, IndexFactory])
def test_factories_of_both_kinds_make_the_same_subjects_in_a_range(factory_class):
    whole, _ = subjects_of(factory_class, 0, 12)
    assert [s["id"] for s in whole] == list(range(12))
    assert len({s["start"] for s in whole}) == 12
    part, factory = subjects_of(factory_class, 5, 9)
    assert part == whole[5:9]
    if factory_class is IndexFactory:
        assert factory.calls == [5, 6, 7, 8]  # only the range's indices
    else:
        assert factory.next_id == 9  # called for the indices before the range too


def callback_draws(subjects: int, method: Any) -> Dict[Tuple[int, str], List[Any]]:
    """What callbacks drew with ``method(datagen.random)``, per subject and trigger, in order."""
    drawn: Dict[Tuple[int, str], List[Any]] = {}
    datagen: DataOnlineGenerator[Any] = DataOnlineGenerator(
        ["a", "b"], "a", lambda index: {"id": index}, subjects, 1, 200, seed=11
    )

    def callback(subject: Any, transition: Any) -> bool:
        drawn.setdefault((subject["id"], transition.trigger), []).append(method(datagen.random))
        return True

    datagen.add_transition("ab", "a", "b", 20, action_callback=callback)
    datagen.add_transition("ba", "b", "a", 30, action_callback=callback)
    datagen.start()
    return drawn


METHODS = {
    "random": lambda r: r.random(),
    "randint": lambda r: r.randint(-5, 10**6),
    "randrange with a step": lambda r: r.randrange(3, 1000, 7),
    "choice": lambda r: r.choice("abcdefgh"),
    "gauss": lambda r: r.gauss(10, 2),
    "gauss twice": lambda r: (r.gauss(), r.gauss()),
    "uniform": lambda r: r.uniform(1, 2),
    "sample": lambda r: tuple(r.sample(range(100), 5)),
    "shuffle": lambda r: tuple(r.sample("abcdef", 6)),
    "choices": lambda r: tuple(r.choices("xyz", weights=[1, 2, 3], k=4)),
    "getrandbits(100)": lambda r: r.getrandbits(100),
    "randbytes": lambda r: r.randbytes(9),
    "expovariate": lambda r: r.expovariate(0.5),
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_random_method_draws_from_the_subjects_own_stream(name):
    method = METHODS[name]
    few = callback_draws(6, method)
    many = callback_draws(15, method)
    assert few and all(values for values in few.values())
    assert {k: v for k, v in many.items() if k[0] < 6} == few
    # Streams differ between subjects (with overwhelming probability).
    assert len({repr(values) for values in many.values()}) == len(many)


def test_a_gaussian_value_held_back_does_not_leak_into_the_next_event():
    rng = SubjectRandom(3)
    rng.key(0, 5)
    rng.gauss()  # holds a second value back
    rng.key(1, 5)
    after_other = rng.gauss()
    rng.key(1, 5)
    fresh = rng.gauss()
    assert after_other == fresh


def test_outside_a_creation_or_an_event_it_is_a_plain_generator_seeded_with_the_seed():
    datagen = banking_generator(*[InMemorySink()] * 4, subjects_num=5, seed=42)
    assert isinstance(datagen.random, SubjectRandom)
    plain = random.Random(42)
    assert [datagen.random.random() for _ in range(3)] == [plain.random() for _ in range(3)]
    datagen.start()
    # Re-seeded at start(); the subjects' draws did not move the plain generator on.
    plain = random.Random(42)
    assert [datagen.random.randint(0, 99) for _ in range(5)] == [
        plain.randint(0, 99) for _ in range(5)
    ]
    assert datagen.random.getstate() == plain.getstate()


def test_a_generator_replaced_by_the_user_still_runs():
    sink = InMemorySink(event_row)
    datagen = banking_generator(sink, sink, sink, sink, subjects_num=20, seed=1)
    rng = random.Random(9)
    datagen.random = rng
    datagen.subject_factory.random = rng
    summary = datagen.start()
    assert summary.events > 0 and len(sink.events) > 0


def test_the_same_key_gives_the_same_stream_and_keys_differ():
    rng = SubjectRandom("seed")
    rng.begin(0)

    def stream(index: int, tick: int) -> List[float]:
        rng.key(index, tick)
        return [rng.random() for _ in range(4)]

    assert stream(3, 7) == stream(3, 7)
    assert len({tuple(stream(i, t)) for i in range(5) for t in (CREATE_TICK, 0, 1)}) == 15
    # A run starting at global index 100 keys local index 0 as global 100.
    shifted = SubjectRandom("seed")
    shifted.begin(100)
    shifted.key(0, 7)
    assert [shifted.random() for _ in range(4)] == stream(100, 7)


def test_pickled_it_keeps_its_place():
    rng = SubjectRandom(1)
    rng.key(4, 2)
    rng.random()
    copy = pickle.loads(pickle.dumps(rng))
    assert [copy.random() for _ in range(3)] == [rng.random() for _ in range(3)]
    rng.key(None)
    copy.key(None)
    assert copy.random() == rng.random()


def test_bad_arguments_fail_as_with_random_random():
    rng = SubjectRandom(1)
    rng.key(0, 0)
    with pytest.raises(ValueError):
        rng.randint(5, 4)
    with pytest.raises(ValueError):
        rng.getrandbits(-1)
    with pytest.raises(IndexError):
        rng.choice([])
    assert rng.randint(3, 3) == 3
    assert 0 <= rng.randint(0, 2**70) <= 2**70  # wider than one 64-bit draw


def chi_square_p(counts: List[int]) -> float:
    expected = sum(counts) / len(counts)
    statistic = sum((c - expected) ** 2 / expected for c in counts)
    return float(stats.chi2.sf(statistic, len(counts) - 1))


def first_draws(subjects: int, ticks: int) -> Dict[Tuple[int, int], int]:
    rng = SubjectRandom(2024)
    rng.begin(0)
    out = {}
    for t in range(ticks):
        for i in range(subjects):
            rng.key(i, t)
            out[(i, t)] = rng.getrandbits(64)
    return out


@pytest.fixture(scope="module")
def grid() -> Dict[Tuple[int, int], int]:
    return first_draws(300, 200)


def test_first_draws_are_uniform_in_high_and_low_bits(grid):
    values = list(grid.values())
    for name, bucket in (("high", lambda v: v >> 56), ("low", lambda v: v & 255)):
        counts = [0] * 256
        for v in values:
            counts[bucket(v)] += 1
        assert chi_square_p(counts) > ALPHA, name


@pytest.mark.parametrize("neighbour", ["next subject", "next tick", "next draw"])
def test_neighbouring_streams_are_independent(grid, neighbour):
    """Pairs of draws of neighbours (4 high bits each): uniform over the 256 pairs."""
    rng = SubjectRandom(2024)
    rng.begin(0)
    counts = [0] * 256
    for (i, t), v in grid.items():
        if neighbour == "next subject":
            other = grid.get((i + 1, t))
        elif neighbour == "next tick":
            other = grid.get((i, t + 1))
        else:
            rng.key(i, t)
            rng.getrandbits(64)
            other = rng.getrandbits(64)
        if other is not None:
            counts[(v >> 60) * 16 + (other >> 60)] += 1
    assert chi_square_p(counts) > ALPHA


def sink_draws(subjects: int, pure: bool, monkeypatch: Any) -> Dict[Tuple[int, int], float]:
    """What a sink draws from ``datagen.random`` at each event, by (subject, timestamp)."""
    if pure:
        monkeypatch.setattr(engine, "_speedups", None)
    draws: Dict[Tuple[int, int], float] = {}

    class Drawing(InMemorySink):
        def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
            draws[(subject["n"], timestamp)] = datagen.random.random()

    datagen = DataOnlineGenerator(
        ["a", "b"], "a", lambda index: {"n": index}, subjects, 1000, 400, seed=17
    )
    sink = Drawing()
    datagen.add_transition("go", "a", "b", 3, None, [sink])
    datagen.add_transition("back", "b", "a", 4, None, [sink])
    datagen.start()
    return draws


@pytest.mark.parametrize("pure", [False, True], ids=["c-loop", "python-loop"])
def test_what_a_sink_draws_comes_from_the_subjects_own_stream(pure, monkeypatch):
    few = sink_draws(5, pure, monkeypatch)
    many = sink_draws(40, pure, monkeypatch)
    assert len(few) > 20
    assert {key: value for key, value in many.items() if key[0] < 5} == few
    assert len(set(many.values())) == len(many)  # no two events share a stream


def test_a_run_without_a_seed_is_repeated_by_the_seed_its_summary_gives():
    def run(seed: Any) -> Tuple[Any, List[Any]]:
        sink = InMemorySink(event_row)
        datagen = banking_generator(sink, sink, sink, sink, subjects_num=50, seed=seed)
        summary = datagen.start()
        return summary.seed, [event.value for event in sink.events]

    drawn, first = run(None)
    other_drawn, other = run(None)
    assert drawn != other_drawn and first != other  # each run drew its own seed
    again_seed, again = run(drawn)
    assert again_seed == drawn
    assert again == first and len(first) > 100


def test_seed_is_a_keyword_only_argument():
    with pytest.raises(TypeError):
        DataOnlineGenerator(["a"], "a", dict, 1, 1000, 5, 0, 7)  # type: ignore[misc]
    assert DataOnlineGenerator(["a"], "a", dict, 1, 1000, 5, 0, seed=7).seed == 7
