"""The grapher: a graphviz Digraph of the model, rendered without a viewer."""

import shutil

import graphviz  # a required dependency (install_requires): a missing one fails, never skips
import pytest
from support.models import three_states
from support.services import service_missing

from doge_datagen import DataOnlineGeneratorGrapher


def test_one_node_per_state_and_one_labelled_edge_per_transition():
    datagen, _ = three_states(1, 1, seed=1)
    graph = DataOnlineGeneratorGrapher(datagen).generate_graph()
    assert isinstance(graph, graphviz.Digraph)
    source = graph.source
    for state in ("A", "B", "C"):
        assert f"\t{state} [label={state}" in source
    assert source.count("->") == len(datagen.transitions) == 5
    assert 'A -> B [label="a_to_b (5%)"]' in source
    assert 'C -> C [label="c_loop (10%)"]' in source


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_render_writes_the_chosen_file_and_nothing_else(tmp_path, suffix, magic, monkeypatch):
    if shutil.which("dot") is None:
        service_missing("Graphviz's dot program")
    opened = []
    monkeypatch.setattr("graphviz.backend.viewing.view", lambda *a, **k: opened.append(a))
    datagen, _ = three_states(1, 1, seed=1)
    target = tmp_path / ("states" + suffix)
    written = DataOnlineGeneratorGrapher(datagen).render(str(target))
    assert written == str(target)
    assert target.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # the .gv source is cleaned up
    assert opened == []


def test_a_profiled_edge_shows_its_base_and_the_profile_name():
    from doge_datagen.profiles import hourly, weekly

    datagen, _ = three_states(1, 1, seed=1)
    datagen.transitions[0].probability = 0.5 * hourly([1.0] * 24, name="daily")
    datagen.transitions[2].probability = 20 * hourly([1.0] * 24, name="daily") * weekly([1] * 7)
    source = DataOnlineGeneratorGrapher(datagen).generate_graph().source
    assert 'A -> B [label="a_to_b (0.5% x daily)"]' in source
    assert 'B -> A [label="b_to_a (20% x daily x weekly)"]' in source
    assert 'A -> C [label="a_to_c (3%)"]' in source
