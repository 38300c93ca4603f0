"""Draw a generator's state machine with graphviz."""

import os
from typing import TYPE_CHECKING, Any, Optional

from doge_datagen.doge import DataOnlineGenerator

if TYPE_CHECKING:  # pragma: no cover
    import graphviz


class DataOnlineGeneratorGrapher:
    """Builds a :class:`graphviz.Digraph` of a :class:`DataOnlineGenerator`: one node per
    state (the initial one drawn bold), one edge per transition labelled
    ``trigger (probability%)``."""

    def __init__(self, generator: DataOnlineGenerator) -> None:
        self.generator = generator

    def generate_graph(self, name: str = "doge", **graph_attr: Any) -> "graphviz.Digraph":
        try:
            import graphviz
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "drawing the state graph needs the graphviz package: pip install graphviz"
            ) from exc
        graph = graphviz.Digraph(name=name, graph_attr={"rankdir": "LR", **graph_attr})
        for state in self.generator.states:
            style = (
                {"penwidth": "2", "shape": "doubleoctagon"}
                if state == self.generator.initial_state
                else {"shape": "ellipse"}
            )
            graph.node(state, state, **style)
        for t in self.generator.transitions:
            graph.edge(t.from_state, t.to_state, label=f"{t.trigger} ({t.probability:g}%)")
        return graph

    def render(self, path: str = "states.png", format: Optional[str] = None) -> str:
        """Write the graph to ``path`` (its extension, ``.png`` or ``.svg``, picks the format
        unless ``format`` is given) without opening a viewer; return the path written.
        Rendering needs Graphviz's ``dot`` program on the PATH."""
        root, ext = os.path.splitext(path)
        fmt = format or (ext.lstrip(".") or "png")
        graph = self.generate_graph()
        graph.format = fmt
        written = graph.render(filename=root + ".gv", outfile=path, cleanup=True, view=False)
        return str(written)
