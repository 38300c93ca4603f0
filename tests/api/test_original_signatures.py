"""Code written against the first releases' signatures runs unchanged.

Their README shows only the positional forms; their code also took these arguments, in this
order, and kept these attributes, and scripts written for them use both:

- ``DbSinkFactory(db_url)`` and ``create(table_name, row_mapper_function, batch_size)``;
- ``KafkaSinkFactory(bootstrap_servers, client_id, buffer_size)``;
- ``KafkaAvroSinkFactory(bootstrap_servers, schema_registry_url, client_id, buffer_size)``;
- ``DataOnlineGenerator.STAY_TRIGGER``, ``.timestamp`` (the current tick's time, which a
  callback reads) and ``.subjects_states``.
"""

from typing import Any, List, Tuple

import pytest
from support.db_fixtures import Database
from support.kafka_fixtures import unused_address
from support.models import three_states

from doge_datagen import (
    ConfigurationError,
    DataOnlineGenerator,
    DbSinkFactory,
    InMemorySink,
    KafkaAvroSinkFactory,
    KafkaSinkFactory,
    Transition,
)
from doge_datagen.demo import user_row
from doge_datagen.engine import loop as engine

LOGIN = Transition("login", "offline", "online", 10)


class User:
    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.balance = 100
        self.loan_balance = 0


@pytest.mark.parametrize(
    "db", ["sqlite_db", pytest.param("postgres_db", marks=pytest.mark.postgres)]
)
def test_db_factory_takes_db_url_and_a_batch_size_third(
    db: str, request: pytest.FixtureRequest
) -> None:
    database: Database = request.getfixturevalue(db)
    table = database.events_table()
    factory = DbSinkFactory(db_url=database.url)
    sink = factory.create(table.name, user_row, 3)
    assert sink.batch_size == 3
    sink.open()
    for ts in range(3):
        sink.collect(ts, User(ts), LOGIN)
    assert database.count(table.name) == 3  # a full batch is written at once
    for ts in range(3, 5):
        sink.collect(ts, User(ts), LOGIN)
    sink.close()
    assert [row["timestamp"] for row in database.fetch(table.name)] == [0, 1, 2, 3, 4]
    factory.close()


def test_db_factory_create_refuses_a_schema_in_the_batch_size_place(sqlite_db: Database) -> None:
    table = sqlite_db.events_table()
    with DbSinkFactory(sqlite_db.url) as factory:
        with pytest.raises(ConfigurationError, match=r"batch_size.*'main'.*schema=") as raised:
            factory.create(table.name, user_row, "main")  # type: ignore[arg-type]
        assert isinstance(raised.value, ValueError)
        named = factory.create(table.name, user_row, schema="main")
        assert named.batch_size == factory.batch_size


def test_kafka_factories_take_a_buffer_size_third() -> None:
    plain = KafkaSinkFactory([unused_address()], "doge-test", 500, connect_timeout=None)
    assert plain.buffer_size == 500
    assert plain.conf["queue.buffering.max.messages"] == 500
    avro = KafkaAvroSinkFactory(
        [unused_address()], "mock://", "doge-test", 700, connect_timeout=None
    )
    assert avro.kafka_sink_factory.buffer_size == 700
    assert avro.kafka_sink_factory.conf["client.id"] == "doge-test"


@pytest.mark.parametrize("which", ["plain", "avro"])
def test_kafka_settings_in_the_buffer_size_place_are_refused_clearly(which: str) -> None:
    settings = {"linger.ms": 5}
    with pytest.raises(ConfigurationError, match=r"buffer_size.*conf="):
        if which == "plain":
            KafkaSinkFactory([unused_address()], "doge-test", settings)  # type: ignore[arg-type]
        else:
            KafkaAvroSinkFactory(
                [unused_address()],
                "mock://",
                "doge-test",
                settings,  # type: ignore[arg-type]
            )


def test_stay_trigger_is_the_first_releases_name() -> None:
    assert DataOnlineGenerator.STAY_TRIGGER == "__stay"
    datagen, _ = three_states(subjects=5, ticks=50, seed=1)
    summary = datagen.start()
    assert DataOnlineGenerator.STAY_TRIGGER not in summary.events_per_trigger


def timestamps_seen(tick_ms: Any, monkeypatch: pytest.MonkeyPatch, pure: bool) -> Tuple[Any, ...]:
    """What a callback and a sink read from ``datagen.timestamp`` against the events' own."""
    if pure:
        monkeypatch.setattr(engine, "_speedups", None)
    read_in_callback: List[int] = []
    read_in_sink: List[int] = []

    class Reading(InMemorySink):
        def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
            read_in_sink.append(datagen.timestamp)
            super().collect(timestamp, subject, transition)

    def remember(subject: Any, transition: Any) -> bool:
        read_in_callback.append(datagen.timestamp)
        return True

    made = iter(range(10**6))
    datagen = DataOnlineGenerator(
        ["a", "b"], "a", lambda: User(next(made)), 20, tick_ms, 300, 1_000_000, seed=4
    )
    sink = Reading()
    datagen.add_transition("go", "a", "b", 5, remember, [sink])
    datagen.add_transition("back", "b", "a", 7, remember, [sink])
    before = datagen.timestamp
    datagen.start()
    return before, read_in_callback, read_in_sink, sink, datagen


@pytest.mark.parametrize("pure", [False, True], ids=["c-loop", "python-loop"])
@pytest.mark.parametrize("tick_ms", [60000, 1500.5])
def test_timestamp_is_the_current_events_in_callbacks_and_sinks(
    tick_ms: Any, pure: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, in_callback, in_sink, sink, datagen = timestamps_seen(tick_ms, monkeypatch, pure)
    emitted = [event.timestamp for event in sink.events]
    assert before == 1_000_000
    assert len(set(emitted)) > 50  # many ticks, so a stale value would show
    assert in_callback == emitted
    assert in_sink == emitted
    assert datagen.timestamp == 1_000_000 + round(300 * tick_ms)  # the tick after the last


def test_timestamp_when_subjects_are_created_is_their_arrival_tick() -> None:
    created: List[Tuple[int, Any]] = []
    datagen: Any = None

    class Factory:
        def create(self, index: int) -> User:
            created.append((index, datagen.timestamp))
            return User(index)

    datagen = DataOnlineGenerator(
        ["a", "b"], "a", Factory(), 5, 1000, 2000, 7_000, seed=2, arrivals=0.01
    )
    firsts = {}
    sink = InMemorySink(lambda ts, subject, t: (ts, subject.user_id))
    datagen.add_transition("go", "a", "b", 20, None, [sink])
    datagen.start()
    for ts, user in (event.value for event in sink.events):
        firsts.setdefault(user, ts)
    initial = [ts for index, ts in created if index < 5]
    arrived = [(index, ts) for index, ts in created if index >= 5]
    assert initial == [7_000] * 5
    assert len(arrived) > 5
    assert [ts for _, ts in arrived] == sorted(ts for _, ts in arrived)
    assert all(ts > 7_000 and (ts - 7_000) % 1000 == 0 for _, ts in arrived)
    for index, ts in arrived:
        if index in firsts:
            assert ts <= firsts[index]  # a subject moves from the tick it arrives at


def test_subjects_states_maps_each_subject_to_its_state() -> None:
    made = iter(range(100))
    datagen = DataOnlineGenerator(["a", "b"], "a", lambda: User(next(made)), 30, 1000, 40, seed=3)
    datagen.add_transition("go", "a", "b", 5)
    datagen.add_transition("back", "b", "a", 5)
    assert datagen.subjects_states == {}
    datagen.start()
    mapping = datagen.subjects_states
    assert list(mapping) == datagen.subjects
    assert list(mapping.values()) == datagen.subject_states()
    assert len(set(mapping.values())) > 1

    unhashable = DataOnlineGenerator(["a", "b"], "a", lambda: {"n": 1}, 3, 1000, 5)
    unhashable.add_transition("go", "a", "b", 50)
    unhashable.start()
    with pytest.raises(TypeError, match=r"subject_states\(\)"):
        _ = unhashable.subjects_states
