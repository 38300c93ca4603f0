"""What a model file's sinks say about their destination: Avro schemas of ``kafka+avro://``
sinks (inline, or a path relative to the file) and the keys of the tables SQL sinks create
(``primary_key:``, ``references:``). Mistakes are ``FILE:LINE:COLUMN`` errors, nothing
written."""

import io
import json
import os
import struct
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import sqlalchemy as sa

import doge_datagen
from doge_datagen.modelfile import ModelFileError

BANKING = (Path(__file__).resolve().parents[2] / "examples" / "banking.yaml").read_text()

TRX_SINK = """  trx:
    url: jsonl:out/trx.jsonl
    record: {timestamp: timestamp, user_id: user_id, balance: balance, event: trigger}
    key: user_id
"""
BALANCE_SINK = """  balance:
    url: jsonl:out/balance.jsonl
    record: {timestamp: timestamp, user_id: user_id, balance: balance, loan_balance: loan_balance}
    key: user_id
"""
TRX_AVRO = """  trx:
    url: URL
    record: {timestamp: timestamp, user_id: user_id, balance: balance, event: trigger}
    key: user_id
    schema:
      type: record
      name: Trx
      namespace: bank
      fields:
        - {name: timestamp, type: long}
        - {name: user_id, type: long}
        - {name: balance, type: long}
        - {name: event, type: string}
        - {name: channel, type: string, default: web}
"""
BALANCE_AVRO = """  balance:
    url: URL
    record: {timestamp: timestamp, user_id: user_id, balance: balance, loan_balance: loan_balance}
    key: user_id
    schema: schemas/balance.avsc
"""
BALANCE_SCHEMA = {
    "type": "record",
    "name": "Balance",
    "fields": [
        {"name": "timestamp", "type": "long"},
        {"name": "user_id", "type": "long"},
        {"name": "balance", "type": "long"},
        {"name": "loan_balance", "type": ["null", "long"]},
    ],
}


def avro_model(directory: Path, trx_url: str, balance_url: str) -> Path:
    """banking.yaml with its trx sink given an inline schema and its balance sink a schema
    file beside the model (schemas/balance.avsc)."""
    assert TRX_SINK in BANKING and BALANCE_SINK in BANKING
    text = BANKING.replace("jsonl:out/", f"jsonl:{directory}/out/")
    text = text.replace(TRX_SINK.replace("out/", f"{directory}/out/"),
                        TRX_AVRO.replace("URL", trx_url))  # fmt: skip
    text = text.replace(BALANCE_SINK.replace("out/", f"{directory}/out/"),
                        BALANCE_AVRO.replace("URL", balance_url))  # fmt: skip
    (directory / "schemas").mkdir(parents=True, exist_ok=True)
    (directory / "schemas" / "balance.avsc").write_text(json.dumps(BALANCE_SCHEMA))
    path = directory / "model.yaml"
    path.write_text(text)
    return path


def decode(data: bytes, schema: Dict[str, Any]) -> Any:
    """The datum of a Confluent-framed Avro payload (magic byte, schema id, body)."""
    from fastavro import parse_schema, schemaless_reader

    assert data[0] == 0
    struct.unpack(">I", data[1:5])
    body = io.BytesIO(data[5:])
    datum = schemaless_reader(body, parse_schema(schema), None)
    assert body.tell() == len(data) - 5
    return datum


def jsonl(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.kafka
def test_avro_schemas_inline_and_by_path_reach_kafka(tmp_path, monkeypatch, kafka_bootstrap):
    from support.kafka_fixtures import create_topic, read_all

    topics = {name: create_topic(kafka_bootstrap) for name in ("trx", "balance")}
    url = f"kafka+avro://{kafka_bootstrap}/{{}}?registry=mock://"
    model_dir = tmp_path / "model"
    path = avro_model(model_dir, url.format(topics["trx"]), url.format(topics["balance"]))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the schema's path is the model file's, not the cwd's
    (model_dir / "out").mkdir()
    summary = doge_datagen.load(path, seed=4, subjects=200).start()
    assert summary.events > 0
    # The same run into JSON Lines: the rows the Avro records must hold.
    doge_datagen.load(path, seed=4, subjects=200, sinks={
        "trx": f"jsonl:{tmp_path}/trx.jsonl", "balance": f"jsonl:{tmp_path}/balance.jsonl",
    }).start()  # fmt: skip
    trx, balance = jsonl(tmp_path / "trx.jsonl"), jsonl(tmp_path / "balance.jsonl")
    expected: Dict[str, List[Tuple[Any, Any]]] = {
        "trx": [(str(r["user_id"]), {**r, "channel": "web"}) for r in trx],
        "balance": [(str(r["user_id"]), r) for r in balance],
    }
    trx_schema = json.loads(json.dumps(_inline_trx_schema()))
    for name, schema in (("trx", trx_schema), ("balance", BALANCE_SCHEMA)):
        records = read_all(kafka_bootstrap, topics[name], expected=len(expected[name]))
        got = [(decode(r.key, {"type": "string"}), decode(r.value, schema)) for r in records]
        assert expected[name] and got == expected[name]


def _inline_trx_schema() -> Dict[str, Any]:
    import yaml

    block = TRX_AVRO.split("    schema:\n", 1)[1]
    return yaml.safe_load("\n".join(line[6:] for line in block.splitlines()))


def test_a_sink_override_without_schema_takes_the_files_schema(tmp_path):
    path = avro_model(tmp_path, "kafka+avro://127.0.0.1:9/t?registry=mock://",
                      "kafka+avro://127.0.0.1:9/b?registry=mock://")  # fmt: skip
    override = "kafka+avro://127.0.0.1:9/other?registry=mock://"
    datagen = doge_datagen.load(path, sinks={"trx": override})
    trx = next(s for s in datagen.sinks if s.name == "kafka:other")
    # The value the sink sends holds the schema's fields, the defaulted one left to the
    # serializer: the file's inline schema, not a schema= of the URL.
    subject = type("S", (), {"user_id": 1, "balance": 2, "loan_balance": 0})()
    event = doge_datagen.Transition("spending", "offline", "offline", 0.1)
    value = trx.value_function(0, subject, event)
    assert value == {"timestamp": 0, "user_id": 1, "balance": 2, "event": "spending"}
    assert trx.value_serializer._parsed["name"] == "bank.Trx"
    assert not (tmp_path / "out").exists()  # building opened nothing


def _refused(tmp_path: Path, text: str) -> ModelFileError:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    path = tmp_path / "model.yaml"
    path.write_text(text)
    with pytest.raises(ModelFileError) as refused:
        doge_datagen.load(str(path))
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{path}:"), message
    assert os.listdir(out) == []
    return refused.value


def _line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


def _avro_text(tmp_path: Path, replace: str = "", by: str = "") -> str:
    text = avro_model(tmp_path, "kafka+avro://127.0.0.1:9/t?registry=mock://",
                      "kafka+avro://127.0.0.1:9/b?registry=mock://").read_text()  # fmt: skip
    if replace:
        assert replace in text, replace
        text = text.replace(replace, by, 1)
    return text


@pytest.mark.parametrize(
    "replace, by, said, at",
    [
        (
            "{name: balance, type: long}",
            "{name: balance, type: lonng}",
            "sink 'trx': schema is not a valid Avro schema: UnknownType: bank.lonng",
            "type: record\n      name: Trx",
        ),
        (
            "{name: balance, type: long}",
            "{name: balanse, type: long}",
            "sink 'trx': schema: field 'balanse' is not a field of the record (did you mean "
            "'balance'?) and has no default",
            "{name: balanse",
        ),
        (
            "{name: event, type: string}",
            "{name: event, type: long}",
            "sink 'trx': schema: field 'event' is a string in the record but 'long' in the schema",
            "{name: event",
        ),
        (
            "schema: schemas/balance.avsc",
            "schema: schemas/missing.avsc",
            "sink 'balance': cannot read schema ",
            "schemas/missing.avsc",
        ),
        (
            "      type: record\n      name: Trx",
            "      type: enum\n      name: Trx",
            "sink 'trx': schema must be an Avro record (type: record)",
            "type: enum",
        ),
        (
            "schema: schemas/balance.avsc",
            'schema: \'{"type": "record"\'',
            "sink 'balance': schema is not JSON",
            "'{\"type",
        ),
    ],
)
def test_avro_schema_mistakes_are_placed(tmp_path, replace, by, said, at):
    text = _avro_text(tmp_path, replace, by)
    error = _refused(tmp_path, text)
    assert said in error.message, error.message
    assert error.line == _line_of(text, at), error


def test_a_schema_on_a_sink_that_is_not_kafka_avro_is_refused(tmp_path):
    text = BANKING.replace("jsonl:out/", f"jsonl:{tmp_path}/out/")
    text = text.replace("  loan:\n    url: jsonl", "  loan:\n    schema: x.avsc\n    url: jsonl")
    error = _refused(tmp_path, text)
    assert "sink 'loan': schema is for kafka+avro:// sinks" in error.message
    assert (error.line, error.column) == (_line_of(text, "schema: x.avsc"), 13)


def test_a_schema_file_that_does_not_match_the_record_is_placed_at_its_path(tmp_path):
    text = _avro_text(tmp_path)
    bad = {**BALANCE_SCHEMA, "fields": [*BALANCE_SCHEMA["fields"], {"name": "x", "type": "int"}]}
    (tmp_path / "schemas" / "balance.avsc").write_text(json.dumps(bad))
    error = _refused(tmp_path, text)
    assert error.message == (
        "sink 'balance': schema 'schemas/balance.avsc': field 'x' is not a field of the record "
        "and has no default"
    )
    assert error.line == _line_of(text, "schema: schemas/balance.avsc")


# -- tables with keys ------------------------------------------------------------------------

USERS = """name: members
states: [new, member]
initial_state: new
subjects: 6
ticks: 5
seed: 1
timestamp_start: 1704067200000
subject:
  user_id: index
  visits: 0
  score: uniform(0, 1)
transitions:
  - {trigger: signup, from: new, to: member, probability: 100, sinks: [users]}
  - {trigger: visit, from: member, to: member, probability: 100, do: [visits += 1],
     sinks: [visits]}
sinks:
  users:
    url: URL
    table: USERS
    record: [user_id, score]
    primary_key: user_id
  visits:
    url: URL
    table: VISITS
    record: {user_id: user_id, n: visits, at: timestamp}
    primary_key: [user_id, n]
    references: {user_id: USERS(user_id)}
"""


@pytest.mark.postgres
def test_a_model_files_tables_get_their_primary_and_foreign_keys(postgres_db, tmp_path):
    users, visits = postgres_db.table_name("users"), postgres_db.table_name("visits")
    postgres_db.drop_at_end(users)
    postgres_db.drop_at_end(visits)
    text = USERS.replace("URL", postgres_db.url).replace("USERS", users)
    text = text.replace("VISITS", visits)
    # First the users, then their visits (two runs: the foreign key wants the users first).
    doge_datagen.load(text, sinks={"visits": doge_datagen.CountingSink("v")}).start()
    assert not sa.inspect(postgres_db.engine).has_table(visits)
    doge_datagen.load(text, sinks={"users": doge_datagen.CountingSink("u")}).start()
    inspector = sa.inspect(postgres_db.engine)
    assert inspector.get_pk_constraint(users)["constrained_columns"] == ["user_id"]
    assert inspector.get_pk_constraint(visits)["constrained_columns"] == ["user_id", "n"]
    keys = inspector.get_foreign_keys(visits)
    assert [(k["constrained_columns"], k["referred_table"], k["referred_columns"])
            for k in keys] == [(["user_id"], users, ["user_id"])]  # fmt: skip
    types = {c["name"]: c["type"] for c in inspector.get_columns(users)}
    assert isinstance(types["user_id"], sa.BigInteger) and isinstance(types["score"], sa.Float)
    assert postgres_db.count(users) == 6 and postgres_db.count(visits) == 6 * 4
    with pytest.raises(sa.exc.IntegrityError, match="foreign key"):
        with postgres_db.engine.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO {visits} (user_id, n, at) VALUES (99, 1, 0)")


@pytest.mark.parametrize(
    "replace, by, said, at",
    [
        (
            "primary_key: user_id",
            "primary_key: userid",
            "sink 'users': primary_key: no record field 'userid' (did you mean 'user_id'?)",
            "userid",
        ),
        (
            "primary_key: [user_id, n]",
            "primary_key: [user_id, m]",
            "sink 'visits': primary_key: no record field 'm'",
            "m]",
        ),
        (
            "references: {user_id: USERS(user_id)}",
            "references: {user_id: USERS}",
            "sink 'visits': references: 'user_id' must name 'table(column)', got 'USERS'",
            "USERS}",
        ),
        (
            "references: {user_id: USERS(user_id)}",
            "references: {user: USERS(user_id)}",
            "sink 'visits': references: no record field 'user' (did you mean 'user_id'?)",
            "user: USERS",
        ),
        (
            "primary_key: user_id",
            "primary_key: {a: 1}",
            "sink 'users': primary_key must be a non-empty string, got a mapping",
            "{a: 1}",
        ),
    ],
)
def test_table_key_mistakes_are_placed(tmp_path, replace, by, said, at):
    text = USERS.replace("URL", f"sqlite:///{tmp_path}/out/x.db").replace(replace, by, 1)
    error = _refused(tmp_path, text)
    assert error.message == said
    assert error.line == _line_of(text, at)


def test_a_urls_schema_wins_over_the_files(tmp_path):
    path = avro_model(tmp_path, "kafka+avro://127.0.0.1:9/t?registry=mock://",
                      "kafka+avro://127.0.0.1:9/b?registry=mock://")  # fmt: skip
    other = {"type": "record", "name": "Other", "fields": [{"name": "event", "type": "string"}]}
    (tmp_path / "other.avsc").write_text(json.dumps(other))
    override = f"kafka+avro://127.0.0.1:9/o?registry=mock://&schema={tmp_path}/other.avsc"
    trx = next(s for s in doge_datagen.load(path, sinks={"trx": override}).sinks
               if s.name == "kafka:o")  # fmt: skip
    assert trx.value_serializer._parsed["name"] == "Other"


def test_the_format_schema_takes_the_new_sink_options(tmp_path):
    import yaml

    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(
        (Path(doge_datagen.__file__).parent / "modelfile" / "schema.json").read_text()
    )
    jsonschema.validate(yaml.safe_load(USERS.replace("URL", "sqlite:///x.db")), schema)
    jsonschema.validate(yaml.safe_load(_avro_text(tmp_path)), schema)
    bad = yaml.safe_load(USERS.replace("USERS(user_id)", "USERS").replace("URL", "sqlite:///x"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
