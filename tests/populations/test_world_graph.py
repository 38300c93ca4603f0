"""The graph of a world: a cluster per population with its machine, a table node per entity
table, a dashed edge per declared message edge; a plain model's graph as it always was."""

import re
import shutil
from typing import Any, Dict, List

import graphviz
import pytest
from support.analysis_check import cli_banking, cli_funnel
from support.models import three_states
from support.services import service_missing
from support.world_analysis_models import market

from doge_datagen import DataOnlineGenerator, DataOnlineGeneratorGrapher
from doge_datagen.analysis.graph import edge_probability
from doge_datagen.cli.main import main
from doge_datagen.populations import World


def clusters(source: str) -> Dict[str, List[str]]:
    """The lines of each ``subgraph cluster_NAME { ... }`` of a graph's source, by NAME."""
    found: Dict[str, List[str]] = {}
    current = None
    for line in source.splitlines():
        opened = re.match(r"\s*subgraph cluster_(\w+) \{$", line)
        if opened:
            current = found.setdefault(opened.group(1), [])
        elif current is not None and line.strip() == "}":
            current = None
        elif current is not None:
            current.append(line.strip())
    return found


def test_each_population_is_a_cluster_with_its_states_and_transitions():
    world = market()
    source = DataOnlineGeneratorGrapher(world).generate_graph().source
    found = clusters(source)
    assert sorted(found) == ["customers", "shops"]
    customers, shops = found["customers"], found["shops"]
    assert 'label="customers (300 subjects)"' in customers
    assert 'label="shops (20 subjects)"' in shops
    assert "browsing [label=browsing penwidth=2 shape=doubleoctagon]" in customers
    assert "away [label=away shape=ellipse]" in customers
    assert "open [label=open penwidth=2 shape=doubleoctagon]" in shops
    assert 'browsing -> away [label="leave (10%)"]' in customers
    assert 'away -> away [label="pay (4%)"]' in customers
    assert 'open -> closed [label="close (5%)"]' in shops
    for name, lines in found.items():
        generator = world.populations[name].generator
        assert generator is not None
        edges = [line for line in lines if "->" in line]
        assert len(edges) == len(generator.transitions)
        assert not any(state in " ".join(lines) for state in _other_states(world, name))


def _other_states(world: World, name: str) -> List[str]:
    return [
        s
        for other, p in world.populations.items()
        if other != name and p.generator is not None
        for s in p.generator.states
    ]


def test_an_entity_table_is_one_table_node_with_its_name_size_and_key():
    source = DataOnlineGeneratorGrapher(market(products=50)).generate_graph().source
    nodes = [line for line in source.splitlines() if "products" in line]
    assert len(nodes) == 1, nodes
    node = nodes[0]
    assert node.lstrip().startswith('"products (table)" [label=<<table')
    assert "<b>products</b>" in node and "50 rows" in node and "key: sku" in node
    assert "shape=plain" in node
    assert "products" not in "".join(sum(clusters(source).values(), []))


def test_a_message_edge_is_dashed_from_the_senders_cluster_to_the_receivers():
    source = DataOnlineGeneratorGrapher(market()).generate_graph().source
    assert "compound=true" in source
    dashed = [line.strip() for line in source.splitlines() if "style=dashed" in line]
    assert dashed == [
        'browsing -> open [label="payment (pay)" lhead=cluster_shops '
        "ltail=cluster_customers style=dashed]"
    ]


def test_a_message_to_the_own_population_stays_inside_its_cluster():
    world = World(60_000, 10, seed=1)
    users: DataOnlineGenerator[Any] = DataOnlineGenerator(
        ["idle", "busy"], "idle", lambda: None, 5, 60_000, 10
    )
    users.add_transition("work", "idle", "busy", 10)
    users.add_transition("pay", "busy", "idle", 20)
    world.add_population("users", users, receive=lambda s, m: True)
    world.declare_messages("users", "pay", "users", "transfer")
    source = DataOnlineGeneratorGrapher(world).generate_graph().source
    dashed = [line.strip() for line in source.splitlines() if "style=dashed" in line]
    assert dashed == ['busy -> idle [label="transfer (pay)" style=dashed]']


def test_the_annotated_world_graph_carries_each_populations_figures_and_message_rates():
    world = market()
    analysis = world.analyze()
    source = DataOnlineGeneratorGrapher(world).generate_graph(annotate=True).source
    shops = analysis["shops"]
    assert f"closed\n{shops.stationary['closed'] * 100:.3g}%" in source
    restock = shops.transition_events_per_tick[2] / shops.seconds_per_tick
    assert f"restock (2%)\n{restock:.3g} ev/s" in source
    rate = analysis.messages[0].per_second
    assert f'label="payment (pay)\n{rate:.3g} msg/s"' in source


def test_a_world_as_mermaid_has_a_composite_state_per_population_and_the_message_edge():
    text = DataOnlineGeneratorGrapher(market()).to_mermaid()
    lines = text.splitlines()
    assert lines[:2] == ["stateDiagram-v2", "    direction LR"]
    assert '    state "products (50 rows, key sku)" as p0' in lines
    assert '    state "customers (300 subjects)" as p1 {' in lines
    assert '        state "browsing" as p1_s0' in lines
    assert "        [*] --> p1_s0" in lines
    assert "        p1_s0 --> p1_s1 : leave (10%)" in lines
    assert '    state "shops (20 subjects)" as p2 {' in lines
    assert "    p1 --> p2 : payment (pay)" in lines
    assert text.count("{") == text.count("}") == 2


# -- a plain model: the graph it always had --------------------------------------------------


def reference_graph(datagen: Any, analysis: Any = None) -> str:
    """A model's graph as the grapher drew it before worlds: a node per state (the initial
    one bold), an edge per transition, figures on both when annotated."""
    graph = graphviz.Digraph(name="doge", graph_attr={"rankdir": "LR"})
    for state in datagen.states:
        style = (
            {"penwidth": "2", "shape": "doubleoctagon"}
            if state == datagen.initial_state
            else {"shape": "ellipse"}
        )
        label = state
        if analysis is not None:
            label = f"{state}\n{analysis.stationary[state] * 100:.3g}%"
        graph.node(state, label, **style)
    for k, t in enumerate(datagen.transitions):
        label = f"{t.trigger} ({edge_probability(t)})"
        if analysis is not None:
            per_second = analysis.transition_events_per_tick[k] / analysis.seconds_per_tick
            label += f"\n{per_second:.3g} ev/s"
        graph.edge(t.from_state, t.to_state, label=label)
    return graph.source


def reference_mermaid(datagen: Any) -> str:
    ids = {state: f"s{i}" for i, state in enumerate(datagen.states)}
    lines = ["stateDiagram-v2", "    direction LR"]
    lines += [f'    state "{state}" as {sid}' for state, sid in ids.items()]
    lines.append(f"    [*] --> {ids[datagen.initial_state]}")
    for t in datagen.transitions:
        label = f"{t.trigger} ({edge_probability(t)})"
        lines.append(f"    {ids[t.from_state]} --> {ids[t.to_state]} : {label}")
    leaving = {t.from_state for t in datagen.transitions if t.to_state != t.from_state}
    lines += [f"    {sid} --> [*]" for state, sid in ids.items() if state not in leaving]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("build", [cli_banking, cli_funnel, lambda: three_states(1, 1, seed=1)[0]])
def test_a_plain_models_graph_is_byte_identical_to_the_models_graph_before_worlds(build):
    datagen = build()
    grapher = DataOnlineGeneratorGrapher(datagen)
    assert grapher.generate_graph().source == reference_graph(datagen)
    annotated = grapher.generate_graph(annotate=True).source
    assert annotated == reference_graph(datagen, datagen.analyze())
    assert grapher.to_mermaid() == reference_mermaid(datagen)
    assert "cluster" not in annotated and "compound" not in annotated


# -- the command line ----------------------------------------------------------------------


def test_the_graph_command_draws_a_world_built_by_a_python_function(tmp_path, capsys):
    target = tmp_path / "world.mmd"
    status = main(["graph", "support.world_analysis_models:small_market", "-o", str(target)])
    out, _ = capsys.readouterr()
    assert status == 0 and "world.mmd" in out
    text = target.read_text()
    assert '    state "customers (30 subjects)" as p1 {' in text
    assert "    p1 --> p2 : payment (pay)" in text
    if shutil.which("dot") is None:
        service_missing("Graphviz's dot program")
    svg = tmp_path / "world.svg"
    status = main(
        ["graph", "support.world_analysis_models:small_market", "--annotate", "-o", str(svg)]
    )
    assert status == 0
    picture = svg.read_text()
    assert "<title>cluster_customers</title>" in picture
    assert "<title>cluster_shops</title>" in picture
    assert "payment (pay)" in picture and "msg/s" in picture
    assert "key: sku" in picture


def test_the_graph_command_refuses_subjects_for_a_world(tmp_path, capsys):
    status = main(
        [
            "graph",
            "support.world_analysis_models:small_market",
            "--subjects",
            "5",
            "-o",
            str(tmp_path / "w.mmd"),
        ]
    )
    _, err = capsys.readouterr()
    assert status == 2
    assert "--subjects does not apply to a world" in err
    assert not (tmp_path / "w.mmd").exists()
