"""Every Python block of the README and of its pages under doc/ runs as written and plain
``mypy`` accepts it: the blocks, in order (the README, then the pages in the order of its
sections, :data:`support.docs.PAGES`), are one program, except those whose first line names
a file of their own (``# my_models.py``), which are written to that file.

The run happens in an empty directory holding what the README's text around the blocks says
is there: the Avro schemas of ``examples/avro`` and the ``events.jsonl`` that the README's own
``doge-datagen demo`` command writes. The addresses of
servers are pointed at the test services (the Kafka-protocol broker, PostgreSQL, an
in-memory Schema Registry, a free port for the metrics), and the program then hands one event
to each sink that writes somewhere, which is read back from there.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from support.docs import PAGES, ROOT, code_blocks, page, user_docs
from support.services import free_port

README = user_docs()
BLOCKS = code_blocks(README)
FILE_LINE = re.compile(r"# (\w+\.py)\n")
FILES = {m.group(1): b for b in BLOCKS for m in [FILE_LINE.match(b)] if m}
PROGRAM = "\n\n".join(b for b in BLOCKS if not FILE_LINE.match(b))


def write_files(where: Path) -> None:
    for name, text in FILES.items():
        (where / name).write_text(text)


# What the program does after the README's blocks: one event into each sink that writes
# somewhere, each sink closed (which flushes it).
EPILOGUE = """

user = User(7, 250, 1000)
login = Transition('login', 'offline', 'online', 0.1)
for written in (kafka_sink, avro_sink, db_sink, file_sink, csv_sink, printing_sink):
    with written:
        written.collect(1_700_000_000_000, user, login)
print('README program done')
"""


def run(command, cwd, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_readme_has_python_blocks_with_their_imports():
    assert len(BLOCKS) >= 24
    # Every page's blocks are part of the program or a file of its own, in the pages' order.
    for name in ("README.md", *PAGES):
        for code in code_blocks(page(name)):
            assert code in FILES.values() or code in PROGRAM, (name, code[:60])
    assert PROGRAM.index("shop = DataOnlineGenerator(") < PROGRAM.index("MetricsServer(")
    # The model's block comes after the pieces it uses, which all come with their imports.
    assert PROGRAM.index("class UserFactory(") < PROGRAM.index("datagen = DataOnlineGenerator(")
    assert PROGRAM.startswith("from doge_datagen import")


def test_plain_mypy_accepts_the_readme_program(tmp_path):
    (tmp_path / "readme_program.py").write_text(PROGRAM)
    write_files(tmp_path)
    assert {"my_models.py", "run_shards.py"} <= set(FILES)
    result = run([sys.executable, "-m", "mypy", "readme_program.py", *FILES], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


FACTORIES = """\
from doge_datagen import DataOnlineGenerator, Subject, SubjectFactory


class User(Subject):
    pass


class Counting(SubjectFactory[User]):  # the first releases' form
    def create(self) -> User:
        return User()


class Indexed(SubjectFactory[User]):
    def create(self, index: int) -> User:
        return User()


first = DataOnlineGenerator(['a'], 'a', Counting(), 1, 1000, 1)
second = DataOnlineGenerator(['a'], 'a', Indexed(), 1, 1000, 1)
users: list[User] = first.subjects + second.subjects
"""


def test_plain_mypy_accepts_factories_with_and_without_the_index(tmp_path):
    (tmp_path / "factories.py").write_text(FACTORIES)
    result = run([sys.executable, "-m", "mypy", "factories.py"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # and a mistake is still caught
    (tmp_path / "factories.py").write_text(FACTORIES + "wrong: int = first.subjects\n")
    result = run([sys.executable, "-m", "mypy", "factories.py"], tmp_path)
    assert result.returncode == 1 and "Incompatible types" in result.stdout


@pytest.mark.kafka
@pytest.mark.postgres
def test_the_readme_program_runs_as_written(tmp_path, kafka_bootstrap, postgres_url):
    import sqlalchemy
    from fastavro import parse_schema, schemaless_reader
    from support.db_fixtures import make_engine
    from support.kafka_fixtures import create_topic, read_all

    shutil.copytree(ROOT / "examples" / "avro", tmp_path / "avro")
    write_files(tmp_path)
    # The events.jsonl the fitting block reads, made by the README's own command.
    (command,) = [
        line
        for line in README.splitlines()
        if line.startswith("doge-datagen demo --day --sink jsonl:events.jsonl")
    ]
    words = shlex.split(command)
    made = run([sys.executable, "-m", "doge_datagen", *words[1:]], tmp_path)
    assert made.returncode == 0, made.stderr

    topic, avro_topic = create_topic(kafka_bootstrap), create_topic(kafka_bootstrap)
    table = f"readme_{uuid.uuid4().hex[:8]}"
    readme_db = "postgresql://postgres:postgres@localhost:5432/postgres"
    program = PROGRAM
    for written, local in (
        ("'localhost:9092'", repr(kafka_bootstrap)),
        ("'http://localhost:8081'", repr(f"mock://readme-{table}")),
        ("'test_topic'", repr(topic)),
        ("'test_avro_topic'", repr(avro_topic)),
        (repr(readme_db), repr(postgres_url)),
        ("db_factory.create('events'", f"db_factory.create({table!r}"),
        ("MetricsServer(9100", f"MetricsServer({free_port()}"),
    ):
        assert written in program, written
        program = program.replace(written, local)
    (tmp_path / "readme_program.py").write_text(program + EPILOGUE)

    engine = make_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text(
                f"CREATE TABLE {table} (timestamp BIGINT, user_id BIGINT, balance BIGINT, "
                "loan_balance BIGINT, event TEXT)"
            )
        )
    try:
        result = run([sys.executable, "readme_program.py"], tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.rstrip().endswith("README program done")
        with engine.begin() as connection:
            rows = connection.execute(sqlalchemy.text(f"SELECT * FROM {table}")).fetchall()
    finally:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"DROP TABLE {table}"))
        engine.dispose()
    assert [tuple(row) for row in rows] == [(1_700_000_000_000, 7, 250, 1000, "login")]

    (record,) = read_all(kafka_bootstrap, topic, expected=1)
    assert record.key == b"7" and json.loads(record.value)["event"] == "login"
    (avro,) = read_all(kafka_bootstrap, avro_topic, expected=1)
    schema = parse_schema(json.loads((tmp_path / "avro" / "Event.avsc").read_text()))
    import io

    assert avro.value[0] == 0
    decoded = schemaless_reader(io.BytesIO(avro.value[5:]), schema)
    assert decoded["event"] == "login" and decoded["user"]["userId"] == "7"

    assert json.loads((tmp_path / "out" / "events.jsonl").read_text())["user_id"] == 7
    assert (tmp_path / "out" / "events.csv").read_text().splitlines()[1] == (
        "1700000000000,7,250,1000,login"
    )
    assert "[1700000000000] User id: 7, balance: 250" in result.stdout
    assert (tmp_path / "model.py").exists()  # written by the fitting block

    sharded = run([sys.executable, "run_shards.py"], tmp_path)
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    total, per_shard = sharded.stdout.split(" ", 1)
    counts = json.loads(per_shard)
    assert len(counts) == 4 and sum(counts) == int(total) > 0
