"""The analysis of a world: each population's figures are its own generator's, a message edge's
rate is its sending trigger's, and a seeded run's message count agrees with it.

The statistical check has a false-alarm rate of ALPHA = 1e-6 (scipy's binomial quantiles, a
fixed seed, so the test is deterministic): every customer pays with the same probability in
each state, so the run's payments, one message each, are binomial over customers x ticks."""

import json

import pytest
from scipy import stats
from support.world_analysis_models import PAY_PERCENT, customer_model, market, shop_model

from doge_datagen.analysis import ModelAnalysis
from doge_datagen.cli.main import main
from doge_datagen.populations.analysis import MessageRate, WorldAnalysis

ALPHA = 1e-6


def test_the_analysis_is_a_mapping_of_population_to_its_model_analysis():
    analysis = market().analyze()
    assert isinstance(analysis, WorldAnalysis)
    assert list(analysis) == ["customers", "shops"] and len(analysis) == 2
    assert all(isinstance(analysis[name], ModelAnalysis) for name in analysis)
    assert [(e.name, e.size, e.key) for e in analysis.entities] == [("products", 50, "sku")]
    with pytest.raises(KeyError, match="no population 'products' with transitions"):
        analysis["products"]


@pytest.mark.parametrize("ticks", [400, None])
def test_each_populations_shares_and_events_are_those_of_its_own_generator(ticks):
    analysis = market(customers=300, shops=20, ticks=ticks).analyze()
    for name, alone in (
        ("customers", customer_model(300, ticks).analyze()),
        ("shops", shop_model(20, ticks).analyze()),
    ):
        assert analysis[name].stationary == pytest.approx(alone.stationary, rel=1e-12)
        assert analysis[name].events_per_tick == pytest.approx(alone.events_per_tick, rel=1e-12)
        assert analysis.events_per_second[name] == pytest.approx(
            alone.total_events_per_second, rel=1e-12
        )
        if ticks is None:
            assert analysis.run_events is None
        else:
            assert analysis.run_events is not None
            assert analysis.run_events[name] == pytest.approx(alone.run_total_events, rel=1e-12)
    # The shares are not trivial: the customers spend 25 / 35 of the time browsing.
    assert analysis["customers"].stationary["browsing"] == pytest.approx(25 / 35, rel=1e-9)
    assert analysis["shops"].stationary["open"] == pytest.approx(0.75, rel=1e-9)


def test_a_message_edges_rate_is_its_sending_triggers_expected_rate():
    customers, ticks = 300, 400
    analysis = market(customers=customers, ticks=ticks).analyze()
    (rate,) = analysis.messages
    assert isinstance(rate, MessageRate)
    assert (rate.population, rate.trigger, rate.to, rate.kind) == (
        "customers",
        "pay",
        "shops",
        "payment",
    )
    sender = analysis["customers"]
    assert rate.per_tick == pytest.approx(sender.events_per_tick["pay"], rel=1e-12)
    assert rate.per_second == pytest.approx(sender.events_per_second["pay"], rel=1e-12)
    assert rate.run == pytest.approx(sender.run_events["pay"], rel=1e-12)
    # pay fires at PAY_PERCENT in every state: the rate does not depend on the shares.
    assert rate.per_tick == pytest.approx(customers * PAY_PERCENT / 100, rel=1e-9)
    assert rate.run == pytest.approx(customers * ticks * PAY_PERCENT / 100, rel=1e-9)
    assert rate.run_per_second == pytest.approx(rate.per_second, rel=1e-9)
    assert analysis.messages_per_second("shops") == pytest.approx(rate.per_second)
    assert analysis.messages_per_second("customers") == 0


def test_a_runs_message_count_agrees_with_the_analysed_rate():
    customers, ticks = 300, 400
    world = market(customers=customers, ticks=ticks, seed=2026)
    expected = world.analyze().messages[0].run
    summary = world.start()
    sent = summary.messages["sent"]
    trials, p = customers * ticks, PAY_PERCENT / 100
    assert expected == pytest.approx(trials * p, rel=1e-9)
    low, high = stats.binom.ppf(ALPHA / 2, trials, p), stats.binom.isf(ALPHA / 2, trials, p)
    assert low <= sent <= high, (sent, expected, low, high)
    assert summary.messages["delivered"] + summary.messages["undelivered"] == sent
    assert sum(s.takings for s in world.subjects[customers:]) > 0


def test_the_report_has_the_world_tables_then_each_populations_report():
    analysis = market().analyze()
    text = analysis.format_text()
    assert text.startswith(
        "World analysis: 2 populations, 1 entity table, ticks of 60 s, 400 ticks\n"
    )
    rows = [line.split() for line in text.splitlines()]
    assert ["customers", "300", "54.86", "0.9143", "0", "21,906", "0.9128"] in rows
    assert ["shops", "20", "1.8", "0.03", "0.2", "718", "0.02992"] in rows
    assert ["products", "50", "sku"] in rows
    message = next(line.split() for line in text.splitlines() if "payment" in line)
    assert message == ["customers", "pay", "shops", "payment", "12", "0.2", "4,800", "0.2"]
    first = text.index("== Population 'customers' ==")
    second = text.index("== Population 'shops' ==")
    assert first < second
    assert analysis["customers"].format_text().rstrip() in text[first:second]
    assert analysis["shops"].format_text().rstrip() in text[second:]
    assert str(analysis) == text
    data = json.loads(analysis.to_json())
    assert data["messages"][0]["per_second"] == pytest.approx(0.2)
    assert data["populations"]["shops"]["stationary"]["open"] == pytest.approx(0.75)
    assert data["entities"] == [{"name": "products", "size": 50, "key": "sku"}]


def test_the_analyze_command_reads_a_world_built_by_a_python_function(capsys):
    status = main(["analyze", "support.world_analysis_models:small_market"])
    out, _ = capsys.readouterr()
    assert status == 0
    expected = market(customers=30, shops=4, products=10, ticks=100).analyze()
    assert out == expected.format_text()
    status = main(
        ["analyze", "support.world_analysis_models:small_market", "--forever", "--format", "json"]
    )
    out, _ = capsys.readouterr()
    assert status == 0
    data = json.loads(out)
    assert data["ticks"] is None and data["run_events"] is None
    assert data["messages"][0]["per_tick"] == pytest.approx(30 * PAY_PERCENT / 100)
    assert set(data["populations"]) == {"customers", "shops"}


@pytest.mark.parametrize(
    "option, value, message",
    [("--subjects", "5", "--subjects does not apply"), ("--plot", "r.png", "--plot does not")],
)
def test_the_analyze_command_refuses_single_population_options_for_a_world(
    option, value, message, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    status = main(["analyze", "support.world_analysis_models:small_market", option, value])
    _, err = capsys.readouterr()
    assert status == 2 and message in err
    assert list(tmp_path.iterdir()) == []
