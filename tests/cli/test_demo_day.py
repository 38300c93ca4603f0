"""The banking demo's day: logins follow the hour of the day, income comes on weekdays."""

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from doge_datagen import InMemorySink
from doge_datagen.demo import LOGIN_HOURS, WEEKDAY_INCOME, banking_generator

MONDAY = datetime(2024, 5, 6, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[2]


def cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "doge_datagen", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def week(tz=None):
    sink = InMemorySink(lambda ts, s, t: s.user_id)
    datagen = banking_generator(
        sink,
        sink,
        sink,
        sink,
        subjects_num=3000,
        ticks_num=7 * 1440,
        timestamp_start=MONDAY,
        seed=4,
        day=True,
        tz=tz,
    )
    datagen.start()
    return datagen, sink


def test_the_profiles_average_one_so_a_day_holds_as_many_events_as_the_flat_model():
    assert abs(sum(LOGIN_HOURS) / 24 - 1) < 1e-12
    assert abs(sum(WEEKDAY_INCOME) / 7 - 1) < 1e-12


def test_income_arrives_on_weekdays_and_logins_follow_the_hours():
    datagen, sink = week(tz="Europe/Paris")
    zone = ZoneInfo("Europe/Paris")
    local = [(datetime.fromtimestamp(e.timestamp / 1000, zone), e.trigger) for e in sink.events]
    income_days = Counter(when.weekday() for when, trigger in local if trigger == "income")
    assert set(income_days) <= {0, 1, 2, 3, 4} and sum(income_days.values()) > 100
    logins = Counter(when.hour for when, trigger in local if trigger == "login")
    # Nearly every user is offline at any time, so logins per hour follow LOGIN_HOURS:
    # at least 60 logins an hour at the quietest, within 25 % of the profile's share.
    total = sum(logins.values())
    for hour, factor in enumerate(LOGIN_HOURS):
        expected = total * factor / sum(LOGIN_HOURS)
        assert abs(logins[hour] - expected) < 0.25 * expected + 5 * expected**0.5, hour
    assert logins[19] > 10 * logins[3]


def test_the_graph_names_the_profiles():
    from doge_datagen import DataOnlineGeneratorGrapher

    datagen = banking_generator(*[InMemorySink()] * 4, day=True)
    source = DataOnlineGeneratorGrapher(datagen).generate_graph().source
    assert "login (0.1% x daily)" in source and "income (0.01% x weekdays)" in source


def test_cli_demo_with_a_day_writes_no_income_over_a_weekend(tmp_path):
    saturday = round(datetime(2024, 5, 11, tzinfo=timezone.utc).timestamp() * 1000)
    out = tmp_path / "events.jsonl"
    args = ["demo", "--day", "--subjects", "2000", "--ticks", "2880", "--seed", "3"]
    result = cli(*args, "--timestamp-start", str(saturday), "--sink", f"jsonl:{out}")
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    assert lines and not any('"event": "income"' in line for line in lines)
    assert any('"event": "spending"' in line for line in lines)
    # The same weekend without --day has income.
    flat = tmp_path / "flat.jsonl"
    args = ["demo", "--subjects", "2000", "--ticks", "2880", "--seed", "3"]
    result = cli(*args, "--timestamp-start", str(saturday), "--sink", f"jsonl:{flat}")
    assert result.returncode == 0, result.stderr
    assert '"event": "income"' in flat.read_text()


def test_cli_demo_names_an_unknown_time_zone(tmp_path):
    result = cli("demo", "--day", "--tz", "Mars/Base", "--sink", f"jsonl:{tmp_path / 'x.jsonl'}")
    assert result.returncode != 0
    assert "unknown time zone 'Mars/Base'" in result.stderr
