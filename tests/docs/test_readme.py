"""The code of the README and of its pages under doc/ runs unchanged against the package.

Each ```python block of README.md and of those pages (:mod:`support.docs`) is executed as
written, in a namespace holding what the README assumes is around it (imports, a factory,
callbacks, sinks); the Kafka, Avro and DB blocks are then run a second time with only their
addresses pointed at the test services, and what they wrote is read back.
"""

import json
import random
import uuid
from typing import Any, Dict, List

import pytest
from support.docs import ROOT, code_blocks, user_docs

import doge_datagen
import doge_datagen.demo
from doge_datagen import InMemorySink
from doge_datagen.demo import User, UserFactory, make_callbacks

README = user_docs()
BLOCKS: List[str] = code_blocks(README)


def block(containing: str) -> str:
    found = [b for b in BLOCKS if containing in b]
    assert len(found) == 1, f"{len(found)} blocks of the docs contain {containing!r}"
    return found[0]


def namespace(**extra: Any) -> Dict[str, Any]:
    """What a README reader has imported: the package's names, json and typing."""
    ns: Dict[str, Any] = {name: getattr(doge_datagen, name) for name in doge_datagen.__all__}
    ns.update(json=json, Dict=Dict, Any=Any, random=random, User=User)
    ns.update(extra)
    return ns


def user() -> User:
    return User(7, 250, 1000)


def test_the_banking_model_block_runs_unchanged():
    sinks = {name: InMemorySink(name=name) for name in ("clickstream", "trx", "balance", "loan")}
    ns = namespace(UserFactory=UserFactory, **make_callbacks(random.Random(3)))
    ns.update({f"{name}_sink": sink for name, sink in sinks.items()})
    exec(block("datagen = DataOnlineGenerator("), ns)
    datagen = ns["datagen"]
    assert datagen.states == ["offline", "online", "loan_screen"]
    assert [t.trigger for t in datagen.transitions][:3] == ["income", "spending", "login"]
    # Trigger names are what sinks write: no stray whitespace, in the README or the demo.
    assert all(t.trigger == t.trigger.strip() for t in datagen.transitions)
    demo = doge_datagen.demo.banking_generator(*sinks.values())
    assert [t.trigger for t in demo.transitions] == [t.trigger for t in datagen.transitions]
    assert datagen.subjects_num == 10 and datagen.ticks_num == 1000 and datagen.tick_ms == 60000
    assert sum(len(s.events) for s in sinks.values()) > 0
    assert all(s.closed == 1 for s in sinks.values())


def test_the_subject_block_defines_a_working_factory_and_callback():
    ns = namespace()
    exec(block("class UserFactory(SubjectFactory[User]):"), ns)
    ns["datagen"] = doge_datagen.DataOnlineGenerator(["a"], "a", lambda: None, 1, 1, 1, seed=1)
    factory = ns["UserFactory"]()
    first, second = factory.create(0), factory.create(1)
    assert (first.user_id, second.user_id) == (0, 1)
    first.balance = 5
    assert ns["spending_callback"](first, None) is False and first.balance == 5


def run_readme_model(subjects: int) -> List[Any]:
    """The README's two blocks together, the other callbacks drawing from datagen.random."""
    sink = InMemorySink(doge_datagen.demo.event_row)
    ns = namespace(**{f"{name}_sink": sink for name in ("clickstream", "trx", "balance", "loan")})

    def drawing(name: str) -> Any:
        return lambda subject, transition: make_callbacks(ns["datagen"].random)[name](
            subject, transition
        )

    ns.update(income_callback=drawing("income_callback"))
    ns.update(take_loan_callback=drawing("take_loan_callback"))
    exec(block("class UserFactory(SubjectFactory[User]):"), ns)
    # The block makes sinks of its own; one sink here keeps every event in order.
    ns.update({f"{name}_sink": sink for name in ("clickstream", "trx", "balance", "loan")})
    exec(block("datagen = DataOnlineGenerator("), ns)  # ends with a first run: 10 users
    datagen = ns["datagen"]
    datagen.subjects_num, datagen.seed = subjects, 17
    sink.events.clear()
    datagen.start()
    return [event.value for event in sink.events]


def test_the_readme_users_live_the_same_lives_whatever_the_number_of_users():
    ten = run_readme_model(10)
    twenty = run_readme_model(20)
    assert len(ten) > 10 and any(row["user_id"] >= 10 for row in twenty)
    assert ten == [row for row in twenty if row["user_id"] < 10]


def test_the_printing_block(capsys):
    ns = namespace()
    exec(block("printing_sink = PrintingSink(format_function)"), ns)
    transition = doge_datagen.Transition("login", "offline", "online", 0.1)
    ns["printing_sink"].collect(60000, user(), transition)
    assert capsys.readouterr().out == (
        "[60000] User id: 7, balance: 250, loan_balance: 1000 made a transition login "
        "from offline to online\n"
    )


def test_the_own_sink_block():
    ns = namespace()
    exec(block("class ListSink(EventSink):"), ns)
    sink = ns["ListSink"]()
    sink.collect(1, user(), doge_datagen.Transition("go", "a", "b", 1))
    assert sink.rows == [(1, 7, "go")]


def test_the_file_block(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = namespace()
    # The DB block defines row_mapper_function; take just that part of it.
    exec(block("def row_mapper_function(").split("db_factory = ")[0], ns)
    exec(block("file_factory = FileSinkFactory('out')"), ns)
    transition = doge_datagen.Transition("login", "offline", "online", 0.1)
    with ns["file_sink"] as sink, ns["csv_sink"] as csv_sink:
        sink.collect(5, user(), transition)
        csv_sink.collect(5, user(), transition)
    assert json.loads((tmp_path / "out/events.jsonl").read_text()) == {
        "timestamp": 5,
        "user_id": 7,
        "balance": 250,
        "loan_balance": 1000,
        "event": "login",
    }
    assert (tmp_path / "out/events.csv").read_text().splitlines() == [
        "timestamp,user_id,balance,loan_balance,event",
        "5,7,250,1000,login",
    ]


@pytest.mark.kafka
def test_the_kafka_block_as_written_and_against_the_test_broker(kafka_bootstrap):
    from support.kafka_fixtures import create_topic, read_all

    code = block("kafka_factory = KafkaSinkFactory(")
    ns = namespace()
    exec(code, ns)  # as written: a producer for localhost:9092, nothing sent yet
    assert ns["kafka_sink"].topic == "test_topic"
    ns["kafka_sink"].close()

    topic = create_topic(kafka_bootstrap)
    local = code.replace("'localhost:9092'", repr(kafka_bootstrap)).replace(
        "'test_topic'", repr(topic)
    )
    ns = namespace()
    exec(local, ns)
    transition = doge_datagen.Transition("login", "offline", "online", 0.1)
    ns["kafka_sink"].collect(1_700_000_000_000, user(), transition)
    ns["kafka_sink"].close()
    (record,) = read_all(kafka_bootstrap, topic, expected=1)
    assert record.key == b"7" and record.timestamp == 1_700_000_000_000
    assert json.loads(record.value) == {
        "timestamp": 1_700_000_000_000,
        "user": {"user_id": 7, "balance": 250, "loan_balance": 1000},
        "event": "login",
    }


@pytest.mark.kafka
def test_the_avro_block_as_written_and_against_the_test_broker(kafka_bootstrap, monkeypatch):
    from fastavro import parse_schema, schemaless_reader
    from support.kafka_fixtures import create_topic, read_all

    monkeypatch.chdir(ROOT / "examples")  # the block reads ./avro/*.avsc
    code = block("avro_factory = KafkaAvroSinkFactory(")
    ns = namespace()
    exec(code, ns)
    assert ns["avro_sink"].topic == "test_avro_topic"
    ns["avro_sink"].close()

    topic = create_topic(kafka_bootstrap)
    registry = f"mock://readme-{uuid.uuid4().hex[:8]}"
    local = (
        code.replace("'localhost:9092'", repr(kafka_bootstrap))
        .replace("'http://localhost:8081'", repr(registry))
        .replace("'test_avro_topic'", repr(topic))
    )
    ns = namespace()
    exec(local, ns)
    transition = doge_datagen.Transition("take_loan", "loan_screen", "online", 10)
    ns["avro_sink"].collect(1_700_000_000_000, user(), transition)
    ns["avro_sink"].close()
    (record,) = read_all(kafka_bootstrap, topic, expected=1)
    import io

    assert record.value[0] == 0
    body = io.BytesIO(record.value[5:])
    decoded = schemaless_reader(body, parse_schema(json.loads(ns["event_schema"])))
    assert decoded["event"] == "take_loan" and decoded["user"]["userId"] == "7"
    assert decoded["timestamp"] == 1_700_000_000_000


@pytest.mark.postgres
def test_the_db_block_as_written(postgres_url):
    """The README's URL (postgres:postgres@localhost:5432/postgres) is the compose stack's;
    the test database accepts it as long as it trusts local connections, else its URL is used."""
    import sqlalchemy

    code = block("db_factory = DbSinkFactory(")
    readme_url = "postgresql://postgres:postgres@localhost:5432/postgres"
    url = readme_url
    engine = doge_datagen.DbSinkFactory(url).engine  # picks an installed PostgreSQL driver
    try:
        engine.connect().close()
    except sqlalchemy.exc.OperationalError:
        url = postgres_url
        code = code.replace(repr(readme_url), repr(url))
        engine = doge_datagen.DbSinkFactory(url).engine
    # A table of its own, so that an existing 'events' table is never touched (nor a reason
    # to skip); the block is otherwise run as written.
    table = f"events_{uuid.uuid4().hex[:8]}"
    assert code.count("'events'") == 1
    code = code.replace("'events'", repr(table))
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text(
                f"CREATE TABLE {table} (timestamp BIGINT, user_id BIGINT, balance BIGINT, "
                "loan_balance BIGINT, event TEXT)"
            )
        )
    try:
        ns = namespace()
        exec(code, ns)
        transition = doge_datagen.Transition("take_loan", "loan_screen", "online", 10)
        ns["db_sink"].collect(123, user(), transition)
        ns["db_sink"].close()
        with engine.begin() as conn:
            rows = conn.execute(sqlalchemy.text(f"SELECT * FROM {table}")).fetchall()
        assert [tuple(r) for r in rows] == [(123, 7, 250, 1000, "take_loan")]
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP TABLE {table}"))
        engine.dispose()
