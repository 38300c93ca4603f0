"""The grapher: a graphviz Digraph of the model, rendered without a viewer."""

import shutil

import pytest

graphviz = pytest.importorskip("graphviz")  # an optional part: the core runs without it

from conftest import service_missing  # noqa: E402
from models import three_states  # noqa: E402

from doge_datagen import DataOnlineGeneratorGrapher  # noqa: E402


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
