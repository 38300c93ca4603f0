"""Draw a generator's state machine with graphviz, or write it as a Mermaid state diagram."""

import html
import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set

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
        if _is_world(self.generator):
            return self._world_graph(graphviz, name, annotate, graph_attr)
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

    def _world_graph(
        self, graphviz: Any, name: str, annotate: bool, graph_attr: Dict[str, Any]
    ) -> "graphviz.Digraph":
        """A world's graph: a cluster per population (its machine, drawn as a model's), a
        table node per entity table, and a dashed edge per declared message edge, from the
        sending population's cluster to the receiving population's."""
        world: Any = self.generator
        analysis = world.analyze() if annotate else None
        graph = graphviz.Digraph(
            name=name, graph_attr={"rankdir": "LR", "compound": "true", **graph_attr}
        )
        taken = set(world.states)
        anchor: Dict[str, str] = {}  # a node of each population, where its message edges end
        for population in world.populations.values():
            generator = population.generator
            if generator is None:
                node = _free_id(population.name + " (table)", taken)
                anchor[population.name] = node
                graph.node(node, _table_label(population), shape="plain")
                continue
            anchor[population.name] = generator.initial_state
            a = analysis[population.name] if analysis is not None else None
            with graph.subgraph(name="cluster_" + population.name) as cluster:
                cluster.attr(label=f"{population.name} ({population.size} subjects)")
                self._draw_machine(cluster, generator, a)
        for sender, trigger, receiver, kind in world.message_edges:
            source = world.populations[sender].generator
            tail = next(t.from_state for t in source.transitions if t.trigger == trigger)
            attrs = {"style": "dashed"}
            if sender != receiver:
                attrs["ltail"] = "cluster_" + sender
                if world.populations[receiver].generator is not None:
                    attrs["lhead"] = "cluster_" + receiver
            label = f"{kind} ({trigger})"
            if analysis is not None:
                rate = next(
                    m
                    for m in analysis.messages
                    if (m.population, m.trigger, m.to, m.kind) == (sender, trigger, receiver, kind)
                )
                label += f"\n{rate.per_second:.3g} msg/s"
            graph.edge(tail, anchor[receiver], label=label, **attrs)
        return graph

    @staticmethod
    def _draw_machine(graph: Any, generator: Model, analysis: Optional["ModelAnalysis"]) -> None:
        for state in generator.states:
            style = (
                {"penwidth": "2", "shape": "doubleoctagon"}
                if state == generator.initial_state
                else {"shape": "ellipse"}
            )
            label = state
            if analysis is not None:
                label = f"{state}\n{_share(analysis.stationary[state])}"
            graph.node(state, label, **style)
        for k, t in enumerate(generator.transitions):
            label = f"{t.trigger} ({edge_probability(t)})"
            if analysis is not None:
                label += f"\n{_rate(analysis, k)}"
            graph.edge(t.from_state, t.to_state, label=label)

    def to_mermaid(self, *, annotate: bool = False) -> str:
        """The model as a Mermaid ``stateDiagram-v2`` (for documents that render Mermaid):
        ``[*]`` points at the initial state, and states without exits point at ``[*]``.
        A world's populations are composite states, its entity tables plain states, and its
        message edges join them."""
        if _is_world(self.generator):
            return self._world_mermaid(annotate)
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

    def _world_mermaid(self, annotate: bool) -> str:
        world: Any = self.generator
        analysis = world.analyze() if annotate else None
        lines: List[str] = ["stateDiagram-v2", "    direction LR"]
        ids: Dict[str, str] = {}
        for p, population in enumerate(world.populations.values()):
            pid = ids[population.name] = f"p{p}"
            generator = population.generator
            if generator is None:
                key = population.key or "index"
                text = f"{population.name} ({population.size} rows, key {key})"
                lines.append(f'    state "{_mermaid_text(text)}" as {pid}')
                continue
            text = f"{population.name} ({population.size} subjects)"
            lines.append(f'    state "{_mermaid_text(text)}" as {pid} {{')
            a = analysis[population.name] if analysis is not None else None
            body = _mermaid_machine(generator, a, prefix=f"{pid}_")
            lines.extend("    " + line for line in body)
            lines.append("    }")
        for sender, trigger, receiver, kind in world.message_edges:
            label = f"{kind} ({trigger})"
            if analysis is not None:
                rate = sum(
                    m.per_second
                    for m in analysis.messages
                    if (m.population, m.trigger, m.to, m.kind) == (sender, trigger, receiver, kind)
                )
                label += f", {rate:.3g} msg/s"
            lines.append(f"    {ids[sender]} --> {ids[receiver]} : {_mermaid_text(label)}")
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


def _is_world(model: Any) -> bool:
    """Whether ``model`` is a world of several populations (read by its attributes: the
    analysis floor does not import :mod:`doge_datagen.populations`)."""
    return isinstance(getattr(model, "populations", None), dict) and hasattr(model, "message_edges")


def _free_id(wanted: str, taken: Set[str]) -> str:
    """``wanted``, or ``wanted`` with a number, whichever is not a node already."""
    node, n = wanted, 1
    while node in taken:
        n += 1
        node = f"{wanted} {n}"
    taken.add(node)
    return node


def _table_label(population: Any) -> str:
    """An entity table's node: a table of its name, its rows and its key (a Graphviz HTML
    label)."""
    key = population.key or "(index)"
    cells = [
        f"<b>{html.escape(population.name)}</b>",
        f"{population.size} rows",
        f"key: {html.escape(key)}",
    ]
    rows = "".join(f"<tr><td>{cell}</td></tr>" for cell in cells)
    return f'<<table border="0" cellborder="1" cellspacing="0" cellpadding="4">{rows}</table>>'


def _mermaid_machine(
    generator: Model, analysis: Optional["ModelAnalysis"], prefix: str
) -> List[str]:
    """A population's states and transitions as Mermaid lines (its own ``[*]``)."""
    ids = {state: f"{prefix}s{i}" for i, state in enumerate(generator.states)}
    lines: List[str] = []
    for state, sid in ids.items():
        label = state
        if analysis is not None:
            label = f"{state} ({_share(analysis.stationary[state])})"
        lines.append(f'    state "{_mermaid_text(label)}" as {sid}')
    lines.append(f"    [*] --> {ids[generator.initial_state]}")
    for k, t in enumerate(generator.transitions):
        label = f"{t.trigger} ({edge_probability(t)})"
        if analysis is not None:
            label += f", {_rate(analysis, k)}"
        lines.append(f"    {ids[t.from_state]} --> {ids[t.to_state]} : {_mermaid_text(label)}")
    return lines


def _share(value: float) -> str:
    return f"{value * 100:.3g}%"


def _rate(analysis: "ModelAnalysis", k: int) -> str:
    per_second = analysis.transition_events_per_tick[k] / analysis.seconds_per_tick
    return f"{per_second:.3g} ev/s"


def _mermaid_text(text: str) -> str:
    """Mermaid labels end at a line break or a semicolon, and quotes end a state's name."""
    return " ".join(text.split()).replace('"', "'").replace(";", ",")
