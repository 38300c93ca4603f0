"""``doge-datagen run|graph|analyze FILE.yaml``, ``--set``, ``--sink``, ``--trust``, ``schema``
and ``init``, run as a user runs them (a new process), into real files and databases."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from doge_datagen.demo import STREAMS
from tests.support.modelfile_models import BANKING_YAML, Recorder, banking_python

ROOT = Path(__file__).resolve().parents[2]


def cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "doge_datagen", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _rows(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_writes_the_files_of_the_model_with_the_python_models_events(tmp_path):
    done = cli("run", str(BANKING_YAML), "--seed", "5", "--subjects", "80", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [f"{s}.jsonl" for s in sorted(STREAMS)]
    events: list = []
    from doge_datagen.demo import banking_generator

    banking_generator(
        *(Recorder(s, events) for s in STREAMS), subjects_num=80, ticks_num=1000, seed=5
    ).start()
    clicks = [
        {"timestamp": e[1], "user_id": e[2], "event": e[5]} for e in events if e[0] == "clickstream"
    ]
    assert clicks and _rows(out / "clickstream.jsonl") == clicks
    balances = [
        {"timestamp": e[1], "user_id": e[2], "balance": e[3], "loan_balance": e[4]}
        for e in events
        if e[0] == "balance"
    ]
    assert balances and _rows(out / "balance.jsonl") == balances


def test_run_with_two_workers_writes_the_lines_of_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    assert cli("run", str(BANKING_YAML), "--seed", "9", "--subjects", "60", cwd=one).returncode == 0
    done = cli("run", str(BANKING_YAML), "--seed", "9", "--subjects", "60", "--workers", "2",
               cwd=two)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for stream in STREAMS:
        parts = sorted((two / "out").glob(f"{stream}-*-of-00002.jsonl"))
        assert len(parts) == 2
        lines = sorted(line for p in parts for line in p.read_text().splitlines())
        assert lines == sorted((one / "out" / f"{stream}.jsonl").read_text().splitlines())


def test_sink_name_url_replaces_one_sink_and_set_sets_a_parameter(tmp_path):
    model = tmp_path / "m.yaml"
    model.write_text(
        BANKING_YAML.read_text().replace("subjects: 10", "params: {users: 10}\nsubjects: users")
    )
    done = cli("run", str(model), "--seed", "1", "--set", "users=40", "--sink",
               "trx=csv:elsewhere/trx.csv", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "from 40 subjects" in done.stdout
    assert not (tmp_path / "out" / "trx.jsonl").exists()
    header = (tmp_path / "elsewhere" / "trx.csv").read_text().splitlines()[0]
    assert header == "timestamp,user_id,balance,event"
    assert (tmp_path / "out" / "clickstream.jsonl").exists()


def test_one_sink_url_gets_every_event_once(tmp_path):
    done = cli("run", str(BANKING_YAML), "--seed", "2", "--subjects", "50", "--sink",
               "jsonl:all.jsonl", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = _rows(tmp_path / "all.jsonl")
    events: list = []
    banking_python_events = Recorder("x", events)
    from doge_datagen.demo import banking_generator

    sink = banking_python_events
    banking_generator(sink, sink, sink, sink, subjects_num=50, seed=2).start()
    moves = [e for e in events if e[5] != "logout"]
    deduplicated = [e for k, e in enumerate(moves) if k == 0 or e != moves[k - 1]]
    assert [(r["timestamp"], r["user_id"], r["event"]) for r in rows] == [
        (e[1], e[2], e[5]) for e in deduplicated
    ]
    assert set(rows[0]) == {"timestamp", "user_id", "balance", "loan_balance", "event",
                            "from_state", "to_state"}  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_a_bad_model_exits_1_with_one_placed_line_and_writes_nothing(tmp_path):
    model = tmp_path / "bad.yaml"
    model.write_text(BANKING_YAML.read_text().replace("payment <= balance", "payment <= balnce"))
    done = cli("run", str(model), "--seed", "1", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"doge-datagen: error: {model}:29:11: transition 'spending': unknown name 'balnce' in "
        "when (did you mean 'balance'?)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_python_code_needs_trust(tmp_path):
    model = tmp_path / "m.yaml"
    model.write_text(
        BANKING_YAML.read_text().replace(
            "{trigger: logout, from: online, to: offline, probability: 70}",
            "{trigger: logout, from: online, to: offline, probability: 70,"
            " action: 'tests.support.modelfile_models:refuse_logout'}",
        )
    )
    refused = cli("run", str(model), "--seed", "1", cwd=tmp_path)
    assert refused.returncode == 1
    assert f"{model}:34:" in refused.stderr and "--trust" in refused.stderr
    assert not (tmp_path / "out").exists()
    env_path = f"{ROOT}"
    done = subprocess.run(
        [sys.executable, "-m", "doge_datagen", "run", str(model), "--seed", "1", "--trust",
         "--subjects", "100"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": env_path},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "logout                  0" in done.stdout


def test_graph_and_analyze_read_a_model_file_and_make_no_sink(tmp_path):
    done = cli("graph", str(BANKING_YAML), "-o", "states.mmd", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "loan_screen" in (tmp_path / "states.mmd").read_text()
    done = cli("analyze", str(BANKING_YAML), "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    python = json.loads(
        cli(
            "analyze",
            "doge_datagen.demo:demo_model",
            "--format",
            "json",
            "--subjects",
            "10",
            "--ticks",
            "1000",
            cwd=tmp_path,
        ).stdout  # fmt: skip
    )
    assert json.dumps(report, sort_keys=True).count("take_loan") > 0
    assert report.get("states") == python.get("states")
    assert not (tmp_path / "out").exists()


def test_schema_prints_a_json_schema_that_takes_the_examples(tmp_path):
    done = cli("schema", cwd=tmp_path)
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    assert schema["else"]["required"] == ["states", "transitions"]  # without populations
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    jsonschema.validate(yaml.safe_load(BANKING_YAML.read_text()), schema)
    bad = yaml.safe_load(BANKING_YAML.read_text())
    bad["tick_count"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_init_writes_a_starter_model_that_runs(tmp_path):
    done = cli("init", "model.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "model.yaml").read_text().startswith("# A doge-datagen model file")
    assert cli("init", "model.yaml", cwd=tmp_path).returncode == 2
    done = cli("run", "model.yaml", "--seed", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(_rows(tmp_path / "out" / "events.jsonl")) > 0


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
        "sqlite",
    ],
)
def test_a_database_sink_creates_its_table_with_types_from_the_record(request, tmp_path, kind):
    db = request.getfixturevalue(f"{kind}_db")
    table = db.table_name("trx")
    db.drop_at_end(table)
    url = f"{db.url}?table={table}"
    done = cli("run", str(BANKING_YAML), "--seed", "3", "--subjects", "100", "--sink",
               f"trx={url}", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    columns = {c["name"]: c["type"] for c in sa.inspect(db.engine).get_columns(table)}
    assert list(columns) == ["timestamp", "user_id", "balance", "event"]
    assert isinstance(columns["timestamp"], sa.BigInteger)
    assert isinstance(columns["balance"], sa.BigInteger)
    assert isinstance(columns["event"], sa.String)
    with db.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            f"SELECT timestamp, user_id, balance, event FROM {table}"
        ).fetchall()
    events: list = []
    from doge_datagen.demo import banking_generator

    banking_generator(*(Recorder(s, events) for s in STREAMS), subjects_num=100, seed=3).start()
    expected = sorted((e[1], e[2], e[3], e[5]) for e in events if e[0] == "trx")
    assert expected and sorted(tuple(r) for r in rows) == expected


def test_python_model_is_unchanged_by_the_model_file_options(tmp_path):
    done = cli("run", "doge_datagen.demo:demo_model", "--ticks", "30", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert banking_python  # the shard models stay importable


def test_sink_name_url_replaces_a_named_sink_of_a_python_model(tmp_path):
    done = cli("run", "doge_datagen.demo:demo_model", "--subjects", "100", "--ticks", "600",
               "--seed", "4", "--sink", "trx=jsonl:trx.jsonl", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = _rows(tmp_path / "trx.jsonl")
    events: list = []
    from doge_datagen.demo import banking_generator

    banking_generator(
        *(Recorder(s, events) for s in STREAMS),
        subjects_num=100,
        ticks_num=600,
        timestamp_start=1_704_067_200_000,
        seed=4,
    ).start()
    expected = [(e[1], e[2], e[3], e[5]) for e in events if e[0] == "trx"]
    assert (
        expected
        and [(r["timestamp"], r["user_id"], r["balance"], r["event"]) for r in rows] == expected
    )
    assert set(rows[0]) == {"timestamp", "user_id", "balance", "loan_balance", "event",
                            "from_state", "to_state"}  # fmt: skip
    wrong = cli("run", "doge_datagen.demo:demo_model", "--ticks", "10", "--sink", "tx=print:",
                cwd=tmp_path)  # fmt: skip
    assert wrong.returncode == 2
    assert "no sink named 'tx'" in wrong.stderr
