"""The README's section on profiles and arrivals, now doc/profiles.md: its code runs as
written and does what the text says."""

from collections import Counter
from datetime import datetime, timezone
from typing import Any, Dict
from zoneinfo import ZoneInfo

import pytest
from support.docs import code_blocks, page

import doge_datagen
from doge_datagen import ConfigurationError, InMemorySink
from doge_datagen.demo import UserFactory

SECTION = page("doc/profiles.md")
BLOCKS = code_blocks(SECTION)


def run_block(containing: str) -> Dict[str, Any]:
    """Run the section's blocks up to the one ``containing`` (later ones build on earlier)."""
    (last,) = [n for n, b in enumerate(BLOCKS) if containing in b]
    ns: Dict[str, Any] = {name: getattr(doge_datagen, name) for name in doge_datagen.__all__}
    ns["UserFactory"] = UserFactory
    for name in ("clickstream", "trx", "balance", "loan"):
        ns[f"{name}_sink"] = InMemorySink(lambda ts, s, t: s.user_id, name=name)
    for code in BLOCKS[: last + 1]:
        exec(code, ns)
    return ns


@pytest.fixture(scope="module")
def profiles_block():
    return run_block("sale = piecewise(")


def test_the_profiles_block_runs_and_its_profiles_shape_the_events(profiles_block):
    ns = profiles_block
    assert ns["summary"].events > 0
    paris = ZoneInfo("Europe/Paris")
    logins = [e for e in ns["clickstream_sink"].events if e.trigger == "login"]
    per_day = Counter(datetime.fromtimestamp(e.timestamp / 1000, paris).day for e in logins)
    # Monday 25 to Sunday 1: the sale triples the logins of Friday 29 (in Paris time).
    others = [per_day[d] for d in (25, 26, 27, 28)]
    assert per_day[29] > 2.2 * max(others) and per_day[29] < 4 * min(others)
    income = [e for e in ns["balance_sink"].events if e.trigger == "income"]
    days = {datetime.fromtimestamp(e.timestamp / 1000, timezone.utc).weekday() for e in income}
    assert income and days <= {0, 1, 2, 3, 4}
    assert ns["daily"](datetime(2024, 11, 25, 12)) == 1.6


def test_the_graph_label_is_as_the_readme_shows(profiles_block):
    source = doge_datagen.DataOnlineGeneratorGrapher(profiles_block["shop"]).generate_graph()
    assert "login (0.1% x daily x sale)" in source.source
    assert "`login (0.1% x daily x sale)`" in SECTION


def test_the_error_messages_quoted_are_the_real_ones(profiles_block):
    ns = profiles_block
    from doge_datagen.profiles import hourly

    datagen = ns["DataOnlineGenerator"](["offline", "online"], "offline", UserFactory(), 1, 1, 1)
    datagen.add_transition("logout", "offline", "online", 70)
    peak = hourly([1.0] * 18 + [2.0] + [1.0] * 5, tz="Europe/Paris")
    with pytest.raises(ConfigurationError) as caught:
        datagen.add_transition("login", "offline", "online", 30 * peak)
    quoted = (
        "probabilities from state 'offline' would sum to 130 at 18:00 (Europe/Paris), above 100"
    )
    assert quoted in str(caught.value) and quoted in SECTION.replace("\n", " ")


def test_the_arrivals_block_grows_the_population_and_churn_ends_subjects(capsys):
    ns = run_block("arrivals=0.5 * daily")
    summary, datagen = ns["summary"], ns["members"]
    printed = capsys.readouterr().out.split()[-2:]
    assert printed == [str(summary.arrivals), str(summary.subjects)]
    assert summary.arrivals > 1000 and summary.subjects == 100 + summary.arrivals
    states = Counter(datagen.subject_states())
    assert states["churned"] == summary.events_per_trigger["churn"]
    assert states["active"] + states["churned"] == summary.subjects
