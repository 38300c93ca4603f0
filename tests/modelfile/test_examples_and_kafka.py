"""Every model file of ``examples/`` loads and runs; ``--sink NAME=kafka://...`` sends one
stream of a model file to Kafka, keyed by the file's ``key:``."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import doge_datagen
from doge_datagen.sinks.memory import CountingSink

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_the_examples_are_there():
    assert {p.name for p in EXAMPLES} >= {"banking.yaml", "banking_day.yaml", "funnel.yaml",
                                          "iot.yaml"}  # fmt: skip


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_an_example_model_file_runs_into_its_files(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    datagen = doge_datagen.load(path, seed=1, ticks=1440, subjects=300)
    summary = datagen.start()
    assert summary.events > 0
    written = sorted((tmp_path / "out").glob("*.jsonl"))
    assert written and all(p.stat().st_size > 0 for p in written)
    for line in written[0].read_text().splitlines()[:20]:
        assert isinstance(json.loads(line), dict)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_an_example_model_file_analyzes_without_sinks(path):
    from doge_datagen.modelfile.builder import build, read_model

    datagen = build(read_model(path), make_sinks=False)
    assert all(isinstance(s, CountingSink) for s in datagen.sinks)
    analysis = datagen.analyze()
    assert analysis.to_json()


def test_sink_name_kafka_url_sends_one_stream_keyed(tmp_path, kafka_bootstrap):
    from support.kafka_fixtures import create_topic, read_all

    topic = create_topic(kafka_bootstrap)
    model = EXAMPLES[[p.name for p in EXAMPLES].index("iot.yaml")]
    done = subprocess.run(
        [sys.executable, "-m", "doge_datagen", "run", str(model), "--seed", "1", "--ticks",
         "300", "--set", "devices=20", "--sink", f"alarms=kafka://{kafka_bootstrap}/{topic}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    local = doge_datagen.load(
        model,
        params={"devices": 20},
        ticks=300,
        seed=1,
        sinks={"alarms": CountingSink("alarms"), "readings": CountingSink("readings")},
    )
    local.start()
    expected = [s for s in local.sinks if s.name == "alarms"][0].count
    records = read_all(kafka_bootstrap, topic, expected=expected)
    assert expected > 0 and len(records) == expected
    first = json.loads(records[0].value)
    assert set(first) == {"ts", "device_id", "alarm", "temperature"}
    assert records[0].key.decode() == first["device_id"]
    assert (tmp_path / "out" / "iot-readings.jsonl").exists()
    assert not (tmp_path / "out" / "iot-alarms.jsonl").exists()
