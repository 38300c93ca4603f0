"""``examples/banking.yaml`` gives the very events of the Python banking model of
:mod:`doge_datagen.demo`, seed for seed, in one process and in shards."""

import functools
from pathlib import Path

import pytest

import doge_datagen
from doge_datagen.demo import STREAMS, banking_generator
from doge_datagen.distributed.sharded import run_sharded
from tests.support.modelfile_models import BANKING_YAML, Recorder, banking_file, banking_python


@pytest.mark.parametrize(
    "seed, subjects, ticks",
    [(1, 10, 1000), (2, 100, 1440), (7, 3, 20000), (123, 500, 300), ("text seed", 40, 2000)],
)
def test_banking_yaml_gives_the_python_models_events(seed, subjects, ticks):
    from_file, from_python = [], []
    datagen = doge_datagen.load(
        BANKING_YAML,
        sinks={s: Recorder(s, from_file) for s in STREAMS},
        seed=seed,
        subjects=subjects,
        ticks=ticks,
    )
    file_summary = datagen.start()
    python = banking_generator(
        *(Recorder(s, from_python) for s in STREAMS),
        subjects_num=subjects,
        ticks_num=ticks,
        seed=seed,
    )
    python_summary = python.start()
    assert len(from_file) > 0
    assert {event[0] for event in from_file} >= {"clickstream", "balance"}
    assert from_file == from_python
    assert file_summary.events == python_summary.events
    assert [repr(s) for s in datagen.subjects] != []
    assert [(s.user_id, s.balance, s.loan_balance) for s in datagen.subjects] == [
        (s.user_id, s.balance, s.loan_balance) for s in python.subjects
    ]


def test_a_different_seed_gives_different_events():
    runs = []
    for seed in (1, 2):
        events = []
        doge_datagen.load(
            BANKING_YAML, sinks={s: Recorder(s, events) for s in STREAMS}, seed=seed, subjects=50
        ).start()
        runs.append(events)
    assert runs[0] != runs[1]


def _lines(folder: Path) -> dict:
    found = {}
    for stream in STREAMS:
        parts = sorted(folder.glob(f"{stream}*.jsonl"))
        found[stream] = sorted(line for p in parts for line in p.read_text().splitlines())
    return found


@pytest.mark.parametrize("seed, subjects, ticks", [(3, 60, 1440), (11, 200, 600)])
def test_banking_yaml_in_two_shards_writes_the_python_models_lines(tmp_path, seed, subjects, ticks):
    sharded, python = tmp_path / "sharded", tmp_path / "python"
    sharded.mkdir()
    python.mkdir()
    summary = run_sharded(
        functools.partial(banking_file, str(sharded), seed, subjects, ticks), shards=2
    )
    python_summary = banking_python(str(python), seed, subjects, ticks).start()
    assert len(list(sharded.glob("clickstream-*-of-00002.jsonl"))) == 2
    expected = _lines(python)
    assert summary.events == python_summary.events > 0
    assert sum(len(v) for v in expected.values()) > 0
    assert _lines(sharded) == expected


BANKING_DAY = BANKING_YAML.parent / "banking_day.yaml"


@pytest.mark.parametrize(
    "seed, subjects, ticks, tz",
    [(1, 300, 10080, None), (4, 50, 20160, "Europe/Paris"), (8, 200, 3000, "America/New_York")],
)
def test_banking_day_yaml_gives_the_python_day_models_events(seed, subjects, ticks, tz):
    text = BANKING_DAY.read_text()
    if tz is not None:
        text = text.replace("timezone: UTC ", f"timezone: {tz} ")
    from_file, from_python = [], []
    doge_datagen.load(
        text,
        sinks={s: Recorder(s, from_file) for s in STREAMS},
        seed=seed,
        subjects=subjects,
        ticks=ticks,
    ).start()
    banking_generator(
        *(Recorder(s, from_python) for s in STREAMS),
        subjects_num=subjects,
        ticks_num=ticks,
        timestamp_start=1_704_067_200_000,
        seed=seed,
        day=True,
        tz=tz,
    ).start()
    logins = [e for e in from_file if e[5] == "login"]
    assert len(logins) > 20
    assert from_file == from_python


def test_a_profile_changes_when_events_happen():
    flat, day = [], []
    for text, out in ((BANKING_YAML.read_text(), flat), (BANKING_DAY.read_text(), day)):
        text = text.replace("ticks: 1000\n", "ticks: 10080\n")
        doge_datagen.load(
            text, sinks={s: Recorder(s, out) for s in STREAMS}, seed=1, subjects=300, ticks=10080
        ).start()
    weekend_income = [
        e for e in day if e[5] == "income" and e[1] >= 1_704_067_200_000 + 5 * 86_400_000
    ]
    assert weekend_income == []
    assert any(e[5] == "income" and e[1] >= 5 * 86_400_000 for e in flat)
