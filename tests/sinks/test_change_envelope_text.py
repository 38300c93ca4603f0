"""Change events into JSON Lines are written from the rows' text (and by the C collector for
classes of fixed attributes): the same bytes as ``json.dumps`` of each change's envelope, the
way a sink that is not a file receives them, over subjects of every kind of class and values
of every kind (floats, unicode, None, nested, values equal but written differently)."""

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import pytest
from support.accounts import RECORDS

import doge_datagen
from doge_datagen import DataOnlineGenerator, FileSink
from doge_datagen.demo import banking_generator
from doge_datagen.errors import RecordError
from doge_datagen.sinks import cdc
from doge_datagen.sinks.cdc import Change, ChangeEventSink, envelope_row
from doge_datagen.sinks.registry import build_sink

T0 = 1_700_000_000_000


class EnvelopeDumps:
    """The reference: each change's envelope as ``json.dumps`` writes it, one line each, as a
    file sink wrote them before rows were kept as text."""

    def __init__(self) -> None:
        self.lines: List[str] = []

    def collect(self, timestamp: int, change: Change, transition: Any) -> None:
        self.lines.append(json.dumps(change.envelope()))

    def text(self) -> bytes:
        return "".join(line + "\n" for line in self.lines).encode()


class Plain:
    """Attributes in a ``__dict__``."""

    def __init__(self, index: int) -> None:
        self.user_id = 500 + index
        self.name = ["Zoë", "Łukasz", "李雷", 'Ana\n"q"', "😀"][index % 5]
        self.score = index / 7
        self.tags: Any = ["a", index] if index % 2 else None
        self._hidden = object()


class Slotted:
    __slots__ = ("user_id", "name", "score", "extra", "_private")

    def __init__(self, index: int) -> None:
        self.user_id = 500 + index
        self.name = "Zoë" if index % 2 else "Ana"
        self.score: Any = 1  # 1, 1.0, True and 0.0 / -0.0: equal, written differently
        self.extra: Any = {"nested": [index, {"deep": None}], "f": 0.1}
        self._private = index


class SlottedChild(Slotted):
    __slots__ = ("level",)

    def __init__(self, index: int) -> None:
        super().__init__(index)
        if index % 3:
            self.level = index  # a slot left unset in every third subject


class Base:
    """A class without slots under a slotted one: its subjects have a ``__dict__`` too."""


class Mixed(Base):
    __slots__ = ("user_id", "balance")

    def __init__(self, index: int) -> None:
        self.user_id = 500 + index
        self.balance = float(index)


class Keyed:
    """Atoms only, two subjects a key at the start, the key's value moving and a text that
    outgrows the room its row was made with."""

    __slots__ = ("user_id", "label", "count")

    def __init__(self, index: int) -> None:
        self.user_id = 500 + index // 2
        self.label = "x"
        self.count: Any = index


@dataclass
class Data:
    user_id: int
    amount: float = 0.5


def _change(subject: Any, transition: Any, rng: Any) -> None:
    r = rng.random()
    if isinstance(subject, Slotted):
        if r < 0.2:
            subject.score = rng.choice([1, 1.0, True, 0.0, -0.0, math.inf, 2**70, float("nan")])
        elif r < 0.3:
            subject.name = rng.choice(["Zoë", "Ана", "\u2028", "x" * 40])
        elif r < 0.35:
            subject.extra = {"nested": [r], "t": (1, "two")}
        elif r < 0.4 and isinstance(subject, SlottedChild):
            subject.level = None
    elif isinstance(subject, Plain):
        if r < 0.3:
            subject.score += 0.25
        elif r < 0.35:
            subject.new_attribute = r  # a column more from here on
    elif isinstance(subject, Mixed):
        if r < 0.3:
            subject.balance += 1.5
        elif r < 0.33:
            subject.note = "now with a dict"  # type: ignore[attr-defined]
    elif isinstance(subject, Keyed):
        if r < 0.15:
            subject.label += "é" * rng.randint(1, 30)
        elif r < 0.25:
            subject.user_id = 500 + rng.randrange(20)  # another subject's key, or none's
        elif r < 0.3:
            subject.count = float(subject.count)  # equal, written differently
        elif r < 0.6:
            subject.count += 1
    elif isinstance(subject, Data):
        if r < 0.4:
            subject.amount = round(subject.amount * 1.5, 3)


def _generator(make: Callable[[int], Any], sink: Any, arrivals: Any = None) -> DataOnlineGenerator:
    datagen: DataOnlineGenerator = DataOnlineGenerator(
        ["on", "paused", "gone"], "on", make, 30, 1000, 60, T0, seed=11, arrivals=arrivals
    )
    rng = datagen.random

    def act(subject: Any, transition: Any) -> bool:
        _change(subject, transition, rng)
        return True

    datagen.add_transition("act", "on", "on", 40, act, [sink])
    datagen.add_transition("idle", "on", "on", 10, None, [sink])
    datagen.add_transition("pause", "on", "paused", 5, act, [sink])
    datagen.add_transition("resume", "paused", "on", 20, None, [sink])
    datagen.add_transition("leave", "on", "gone", 2, None, [sink])
    return datagen


def _both(tmp_path: Any, run: Callable[[Any], None], key: Optional[str]) -> Dict[str, bytes]:
    path = tmp_path / "changes.jsonl"
    written = ChangeEventSink(FileSink(str(path), envelope_row), key=key)
    run(written)
    reference = EnvelopeDumps()
    run(ChangeEventSink(reference, key=key))
    return {"written": path.read_bytes(), "reference": reference.text()}


MAKERS = {
    "plain": Plain,
    "slotted": Slotted,
    "slotted child": SlottedChild,
    "mixed": Mixed,
    "dataclass": lambda index: Data(500 + index),
    "two classes": lambda index: Slotted(index) if index % 2 else Mixed(index),
}


@pytest.mark.parametrize("maker", list(MAKERS))
@pytest.mark.parametrize("key", ["user_id", None])
def test_the_lines_are_json_dumps_of_the_envelopes(tmp_path, maker, key):
    def run(sink: Any) -> None:
        _generator(MAKERS[maker], sink, arrivals=0.3).start()

    found = _both(tmp_path, run, key)
    assert found["written"] == found["reference"]
    ops = [json.loads(line)["op"] for line in found["written"].decode().splitlines()]
    assert ops[:30] == ["r"] * 30
    assert {"c", "u", "d"} <= set(ops)


def test_the_banking_model_and_its_users(tmp_path):
    def run(sink: Any) -> None:
        datagen = banking_generator(sink, sink, sink, sink, subjects_num=300, ticks_num=200,
                                    seed=5, timestamp_start=T0)  # fmt: skip
        for transition in datagen.transitions:
            transition.event_sinks = [sink]
        datagen.start()

    found = _both(tmp_path, run, "user_id")
    assert found["written"] == found["reference"]
    assert found["written"].count(b'"op": "u"') > 100


@pytest.mark.parametrize("key", ["user_id", None])
def test_rows_kept_by_shared_and_moving_keys(tmp_path, key):
    """Subjects of one key share its last row; one whose key's value moved keeps the key it
    was announced with; rows rewritten where they are and rows made anew write the same."""

    def run(sink: Any) -> None:
        datagen = DataOnlineGenerator(["on", "paused"], "on", Keyed, 30, 1000, 80, T0, seed=3)
        rng = datagen.random

        def act(subject: Any, transition: Any) -> bool:
            _change(subject, transition, rng)
            return True

        datagen.add_transition("act", "on", "on", 50, act, [sink])
        datagen.add_transition("pause", "on", "paused", 5, act, [sink])
        datagen.add_transition("resume", "paused", "on", 20, None, [sink])
        datagen.start()

    found = _both(tmp_path, run, key)
    assert found["written"] == found["reference"]
    lines = [json.loads(line) for line in found["written"].decode().splitlines()]
    updates = [line for line in lines if line["op"] == "u"]
    assert len(updates) > 500
    if key is not None:
        assert any(line["key"] != line["after"]["user_id"] for line in updates)
    assert any(line["before"]["user_id"] != line["after"]["user_id"] for line in updates)
    assert max(len(line["after"]["label"]) for line in updates) > 100


def test_a_model_file_and_its_url(tmp_path):
    model = """\
name: shop
states: [browsing, bought]
initial_state: browsing
subjects: 25
tick: 1s
ticks: 80
seed: 2
arrivals: 0.5
subject:
  user_id: 100 + index
  city: choice(['Kraków', 'Zürich', '東京', None])
  total: 0.0
transitions:
  - trigger: add
    from: browsing
    to: browsing
    probability: 30
    do:
      - total += round(uniform(0.1, 9.9), 2)
    sinks: [changes]
  - {trigger: buy, from: browsing, to: bought, probability: 2, sinks: [changes]}
sinks:
  changes: jsonl:unused.jsonl
"""
    path = tmp_path / "shop.yaml"
    path.write_text(model)
    out = tmp_path / "url.jsonl"
    doge_datagen.load(
        str(path), sinks={"changes": f"jsonl:{out}?envelope=debezium&key=user_id"}
    ).start()
    reference = EnvelopeDumps()
    doge_datagen.load(
        str(path), sinks={"changes": ChangeEventSink(reference, key="user_id")}
    ).start()
    assert out.read_bytes() == reference.text()
    assert b"\\u6771\\u4eac" in out.read_bytes()


def test_without_a_run_the_first_event_announces_the_subject(tmp_path):
    path = tmp_path / "x.jsonl"
    transitions = [doge_datagen.Transition("t", "on", "on", 1.0)] * 3

    def run(sink: Any) -> None:
        subjects = [Slotted(0), Plain(1), Slotted(2)]
        with sink:
            for n, transition in enumerate(transitions):
                for subject in subjects:
                    subject.user_id += n % 2
                    sink.collect(T0 + n, subject, transition)

    written = ChangeEventSink(FileSink(str(path), envelope_row))
    run(written)
    reference = EnvelopeDumps()
    run(ChangeEventSink(reference))
    assert path.read_bytes() == reference.text()


def test_a_value_json_cannot_write_is_named(tmp_path):
    class Odd:
        __slots__ = ("user_id", "blob")

        def __init__(self, index: int) -> None:
            self.user_id = index
            self.blob: Any = 1

    def act(subject: Any, transition: Any) -> bool:
        subject.blob = object()
        return True

    sink = build_sink(f"jsonl:{tmp_path}/odd.jsonl?envelope=debezium&key=user_id", RECORDS)
    datagen = DataOnlineGenerator(["on"], "on", Odd, 3, 1000, 5, T0, seed=1)
    datagen.add_transition("act", "on", "on", 100, act, [sink])
    with pytest.raises(RecordError, match="cannot write .*blob.*object"):
        datagen.start()


def test_the_c_collector_writes_the_changes_where_it_is_built(tmp_path):
    if cdc._CChanges is None:
        pytest.skip("the C extension is not built")
    sink = ChangeEventSink(FileSink(str(tmp_path / "c.jsonl"), envelope_row), key="user_id")
    sink.open()
    assert isinstance(sink.collect, cdc._CChanges)
    sink.close()
    assert "collect" not in vars(sink)
    kafka_like = ChangeEventSink(EnvelopeDumps(), key="user_id")
    kafka_like.open()
    assert not isinstance(kafka_like.collect, cdc._CChanges)
    kafka_like.close()
