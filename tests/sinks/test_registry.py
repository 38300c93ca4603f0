"""Sink URLs: parsing, secrets from the environment, the built-in schemes, plug-in schemes."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support.drivers import AVRO_SCHEMA, key, row

from doge_datagen.errors import ConfigurationError
from doge_datagen.sinks.base import mask_url
from doge_datagen.sinks.registry import (
    BUILTIN,
    Records,
    SinkScheme,
    SinkURL,
    build_sink,
    find_scheme,
    register,
    schemes_help,
)

ROOT = Path(__file__).resolve().parents[2]
RECORDS = Records(row=row, key=key)


def test_a_url_splits_into_hosts_path_user_password_and_settings() -> None:
    url = SinkURL("kafka://u:p%40ss@a:1,b:2/events?security.protocol=SASL_SSL&linger.ms=5")
    assert url.scheme == "kafka" and url.topic == "events"
    assert url.hosts() == [("a", 1), ("b", 2)]
    assert (url.username, url.password) == ("u", "p@ss")
    assert url.params == {"security.protocol": "SASL_SSL", "linger.ms": "5"}
    assert "p%40ss" not in str(url) and "p@ss" not in repr(url) and "u:***@a:1" in str(url)


def test_a_setting_or_the_password_can_come_from_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("DOGE_PW", "from-env")
    monkeypatch.setenv("DOGE_SASL", "sasl-secret")
    url = SinkURL("kafka://u@h:1/t?password_env=DOGE_PW&sasl.password_env=DOGE_SASL")
    assert url.password == "from-env"
    assert url.params == {"sasl.password": "sasl-secret"}
    assert "from-env" not in str(url) and "sasl-secret" not in str(url)
    with pytest.raises(ConfigurationError, match="'DOGE_MISSING'.*'sasl.password'"):
        SinkURL("kafka://h:1/t?sasl.password_env=DOGE_MISSING")


@pytest.mark.parametrize(
    ("url", "culprit"),
    [
        ("kafka://127.0.0.1:notaport/t", "port 'notaport'"),
        ("kafka://127.0.0.1:0/t", "port 0"),
        ("kafka://127.0.0.1:70000/t", "port '70000'"),
        ("kafka://127.0.0.1/t", "no port"),
        ("kafka://127.0.0.1:9092/", "TOPIC"),
        ("kafka://127.0.0.1:9092/t?flush_timeout=soon", "flush_timeout='soon'"),
        ("jsonl:", "give a path"),
        ("jsonl:x.jsonl?colour=red", "unknown setting 'colour'"),
        ("print:x", "print:"),
        ("kafka+avro://127.0.0.1:9092/t?registry=mock://", "schema=PATH.avsc"),
        ("ftp://nowhere/x", "unknown sink 'ftp://nowhere/x': no sink scheme 'ftp'"),
        ("nocolon", "SCHEME:"),
    ],
)
def test_bad_urls_name_the_part_that_is_wrong(url: str, culprit: str) -> None:
    with pytest.raises(ConfigurationError, match=culprit.replace("?", r"\?")):
        build_sink(url, RECORDS)


def test_mask_url_hides_passwords_and_secret_settings() -> None:
    assert mask_url("postgresql://u:s3cret@h/db") == "postgresql://u:***@h/db"
    masked = mask_url("kafka://h:1/t?sasl.password=s3cret&linger.ms=5")
    assert "s3cret" not in masked and "linger.ms=5" in masked
    assert mask_url("jsonl:out.jsonl") == "jsonl:out.jsonl"


def test_every_builtin_scheme_makes_its_sink_and_opens_nothing(tmp_path: Path) -> None:
    from doge_datagen import DbSink, FileSink, KafkaSink, PrintingSink

    schema = tmp_path / "event.avsc"
    schema.write_text(json.dumps(AVRO_SCHEMA))
    made = {
        "jsonl": build_sink(f"jsonl:{tmp_path}/deep/a.jsonl", RECORDS),
        "csv": build_sink(f"csv:{tmp_path}/b.csv?buffer_lines=3", RECORDS),
        "print": build_sink("print:", RECORDS),
        "kafka": build_sink(
            "kafka://u:pw@127.0.0.1:9/t?sasl.mechanism=SCRAM-SHA-256&linger.ms=5", RECORDS
        ),
        "kafka+avro": build_sink(
            f"kafka+avro://127.0.0.1:9/t?registry=mock://&schema={schema}", RECORDS
        ),
    }
    assert isinstance(made["jsonl"], FileSink) and made["jsonl"].format == "jsonl"
    assert isinstance(made["csv"], FileSink) and made["csv"].buffer_lines == 3
    assert isinstance(made["print"], PrintingSink)
    kafka = made["kafka"]
    assert isinstance(kafka, KafkaSink) and kafka.producer is None
    conf = kafka._factory.conf
    assert conf["sasl.mechanism"] == "SCRAM-SHA-256" and conf["linger.ms"] == "5"
    assert (conf["sasl.username"], conf["sasl.password"]) == ("u", "pw")
    assert conf["security.protocol"] == "SASL_PLAINTEXT"
    assert isinstance(made["kafka+avro"], KafkaSink)
    assert not (tmp_path / "deep").exists() and not (tmp_path / "b.csv").exists()
    sqlite = build_sink(
        f"sqlite:///{tmp_path}/x.db?table=t1",
        Records(row=row, create_table=_create_table),
    )
    assert isinstance(sqlite, DbSink) and sqlite.table.name == "t1"


def _create_table(engine: Any, table: str) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE TABLE {table} (timestamp BIGINT)")


def test_the_help_lists_every_scheme_with_its_url_form() -> None:
    text = schemes_help()
    for scheme in BUILTIN:
        assert scheme.form in text
    assert "kafka+avro://HOST:PORT/TOPIC?registry=URL&schema=PATH.avsc" in text
    assert find_scheme("postgresql+psycopg2").scheme == "postgresql"
    assert find_scheme("mariadb+pymysql").scheme == "mysql"


def test_a_registered_scheme_is_found_and_used(monkeypatch: Any) -> None:
    from doge_datagen import InMemorySink
    from doge_datagen.sinks import registry

    monkeypatch.setattr(registry, "_REGISTERED", {})  # this test's registrations only

    made = []

    def build(url: SinkURL, records: Records) -> InMemorySink:
        made.append(url.topic)
        return InMemorySink(records.row, name=f"mem:{url.topic}")

    register(SinkScheme("memtest", "memtest://NAME", "in memory", build))
    sink = build_sink("memtest://host/abc", RECORDS)
    assert made == ["abc"] and sink.name == "mem:abc"
    assert "memtest://NAME" in schemes_help()

    # A registration may replace a built-in scheme, for this process only.
    register(SinkScheme("jsonl", "jsonl://NAME", "in memory too", build))
    replaced = build_sink("jsonl://host/xyz", RECORDS)
    assert made == ["abc", "xyz"] and replaced.name == "mem:xyz"


PLUGIN = '''
"""A third-party sink scheme: counts events into a file named by the URL."""
from doge_datagen.sinks.base import Sink
from doge_datagen.sinks.registry import SinkScheme


class CountFile(Sink):
    def __init__(self, path):
        self.path = path
        self.name = "countfile:" + path

    def collect(self, timestamp, subject, transition):
        self.delivered += 1

    def _close(self):
        with open(self.path, "w") as f:
            f.write(str(self.delivered))


def build(url, records):
    return CountFile(url.path)


SCHEME = SinkScheme("countfile", "countfile:PATH", "the number of events, in a file", build)
SHADOW = SinkScheme("jsonl", "jsonl:PATH", "a count in place of the events", build)
'''


def test_a_package_adds_a_scheme_through_the_entry_point(tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = site / "doge_countfile-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "doge_countfile.py").write_text(textwrap.dedent(PLUGIN))
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: doge-countfile\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[doge_datagen.sinks]\ncountfile = doge_countfile:SCHEME\njsonl = doge_countfile:SHADOW\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    command = [sys.executable, "-m", "doge_datagen", "demo"]

    shown = subprocess.run([*command, "--help"], capture_output=True, text=True, env=env)
    count = tmp_path / "count.txt"
    run = subprocess.run(
        [*command, "--ticks", "60", "--subjects", "300", "--seed", "3", "--sink",
         f"countfile:{count}", "--sink", f"jsonl:{tmp_path / 'all.jsonl'}"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip

    assert shown.returncode == 0, shown.stderr
    assert "countfile:PATH" in shown.stdout and "the number of events" in shown.stdout
    assert run.returncode == 0, run.stderr
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    assert len(lines) > 0 and count.read_text() == str(len(lines))
    # The entry point named "jsonl" does not replace the built-in scheme: the events are
    # written as JSON lines, and the help does not offer the shadow.
    assert all("event" in json.loads(line) for line in lines)
    assert "a count in place of the events" not in shown.stdout
