"""Draw a generator's state machine with graphviz, or write it as a Mermaid state diagram."""

import os
from typing import TYPE_CHECKING, Any, List, Optional

from doge_datagen.core.types import Model, Transition

if TYPE_CHECKING:  # pragma: no cover
    import graphviz

    from doge_datagen.analysis.markov import ModelAnalysis


class DataOnlineGeneratorGrapher:
    """Builds a :class:`graphviz.Digraph` of a :class:`DataOnlineGenerator`: one node per
    state (the initial one drawn bold), one edge per transition labelled
    ``trigger (probability%)``, or ``trigger (base% x profile-name)`` when its probability
    follows a profile (:mod:`doge_datagen.profiles`).

    With ``annotate=True`` the model analysis (:mod:`doge_datagen.analysis`) adds the
    long-run share of the subjects to each node and the expected events per second (all
    subjects, simulated time) to each edge.
    """

    def __init__(self, generator: Model) -> None:
        self.generator = generator

    def generate_graph(
        self, name: str = "doge", *, annotate: bool = False, **graph_attr: Any
    ) -> "graphviz.Digraph":
        try:
            import graphviz
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "drawing the state graph needs the graphviz package: pip install graphviz"
            ) from exc
        analysis = self._analysis() if annotate else None
        graph = graphviz.Digraph(name=name, graph_attr={"rankdir": "LR", **graph_attr})
        for state in self.generator.states:
            style = (
                {"penwidth": "2", "shape": "doubleoctagon"}
                if state == self.generator.initial_state
                else {"shape": "ellipse"}
            )
            label = state
            if analysis is not None:
                label = f"{state}\n{_share(analysis.stationary[state])}"
            graph.node(state, label, **style)
        for k, t in enumerate(self.generator.transitions):
            label = f"{t.trigger} ({edge_probability(t)})"
            if analysis is not None:
                label += f"\n{_rate(analysis, k)}"
            graph.edge(t.from_state, t.to_state, label=label)
        return graph

    def to_mermaid(self, *, annotate: bool = False) -> str:
        """The model as a Mermaid ``stateDiagram-v2`` (for documents that render Mermaid):
        ``[*]`` points at the initial state, and states without exits point at ``[*]``."""
        analysis = self._analysis() if annotate else None
        ids = {state: f"s{i}" for i, state in enumerate(self.generator.states)}
        lines: List[str] = ["stateDiagram-v2", "    direction LR"]
        for state, sid in ids.items():
            label = state
            if analysis is not None:
                label = f"{state} ({_share(analysis.stationary[state])})"
            lines.append(f'    state "{_mermaid_text(label)}" as {sid}')
        lines.append(f"    [*] --> {ids[self.generator.initial_state]}")
        for k, t in enumerate(self.generator.transitions):
            label = f"{t.trigger} ({edge_probability(t)})"
            if analysis is not None:
                label += f", {_rate(analysis, k)}"
            lines.append(f"    {ids[t.from_state]} --> {ids[t.to_state]} : {_mermaid_text(label)}")
        leaving = {t.from_state for t in self.generator.transitions if t.to_state != t.from_state}
        for state, sid in ids.items():
            if state not in leaving:
                lines.append(f"    {sid} --> [*]")
        return "\n".join(lines) + "\n"

    def render(
        self, path: str = "states.png", format: Optional[str] = None, *, annotate: bool = False
    ) -> str:
        """Write the graph to ``path`` (its extension, ``.png``, ``.svg`` or ``.mmd`` for
        Mermaid, picks the format unless ``format`` is given) without opening a viewer; return
        the path written. PNG and SVG need Graphviz's ``dot`` program on the PATH."""
        root, ext = os.path.splitext(path)
        fmt = format or (ext.lstrip(".") or "png")
        if fmt in ("mmd", "mermaid"):
            with open(path, "w", encoding="utf-8") as out:
                out.write(self.to_mermaid(annotate=annotate))
            return path
        graph = self.generate_graph(annotate=annotate)
        graph.format = fmt
        written = graph.render(filename=root + ".gv", outfile=path, cleanup=True, view=False)
        return str(written)

    def _analysis(self) -> "ModelAnalysis":
        from doge_datagen.analysis.markov import analyze

        return analyze(self.generator)


def edge_probability(transition: Transition) -> str:
    """``30%``, or ``0.1% x daily`` for a probability that follows a profile."""
    label = getattr(transition.probability, "label", None)
    return label() if callable(label) else f"{transition.probability:g}%"


def _share(value: float) -> str:
    return f"{value * 100:.3g}%"


def _rate(analysis: "ModelAnalysis", k: int) -> str:
    per_second = analysis.transition_events_per_tick[k] / analysis.seconds_per_tick
    return f"{per_second:.3g} ev/s"


def _mermaid_text(text: str) -> str:
    """Mermaid labels end at a line break or a semicolon, and quotes end a state's name."""
    return " ".join(text.split()).replace('"', "'").replace(";", ",")
