"""The package's import graph: no cycles, imports made inside functions and under
``TYPE_CHECKING`` included, each part importing only the floors below it, and nothing inside
the package importing the modules kept for code written against earlier releases."""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "doge_datagen"

# The modules of doge-datagen 1.0.4 (and the state graph's), kept as files of their own.
SHIMS = {
    "doge_datagen.doge",
    "doge_datagen.printing_sink",
    "doge_datagen.memory_sink",
    "doge_datagen.file_sink",
    "doge_datagen.kafka_sink_factory",
    "doge_datagen.kafka_avro_sink_factory",
    "doge_datagen.db_sink_factory",
    "doge_datagen.graph",
}

# Each part, and the parts it may import (besides itself). The floors, from the ground up:
# errors; core; profiles; engine; sinks and values; analysis and metrics; model; the rest.
ALLOWED = {
    "errors": set(),
    "core": {"errors"},
    "profiles": {"errors", "core"},
    "engine": {"errors", "core", "profiles"},
    "sinks": {"errors", "core", "profiles", "engine"},
    "values": {"errors", "core", "engine"},
    "analysis": {"errors", "core", "profiles", "engine"},
    "metrics": {"errors", "core", "engine", "sinks"},
    "model": {"errors", "core", "profiles", "engine", "values", "analysis", "metrics"},
    "demo": {"errors", "core", "profiles", "engine", "sinks", "values", "model"},
    "fit": {"errors", "core", "profiles", "model"},
    "distributed": {"errors", "core", "engine", "metrics", "model"},
    "populations": {"errors", "core", "profiles", "engine", "values", "model"},
    "modelfile": {
        "errors",
        "core",
        "profiles",
        "engine",
        "sinks",
        "values",
        "model",
        "populations",
    },
    "cli": {
        "errors",
        "core",
        "profiles",
        "engine",
        "sinks",
        "values",
        "analysis",
        "metrics",
        "model",
        "demo",
        "fit",
        "distributed",
        "modelfile",
        "populations",
    },
}


def modules(root: Path) -> Dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(root: Path) -> Dict[str, Set[str]]:
    """Module -> the package's modules it imports, wherever the import statement is."""
    known = modules(root)
    package = root.name
    graph: Dict[str, Set[str]] = {}
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        targets: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                found = [f"{module}.{alias.name}" for alias in node.names] + [module]
            else:
                continue
            for target in found:
                if target.split(".")[0] != package:
                    continue
                # "from pkg import sub" names a submodule; "from pkg.mod import name" the module.
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        # A C extension has no .py file: "from doge_datagen.engine import _speedups" resolves
        # above to its package, an edge to a parent that package_graph() leaves out.
        graph[name] = targets
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def package_graph() -> Dict[str, Set[str]]:
    graph = imports(PACKAGE)
    # A package imports its own submodules to re-export them, and a submodule that imports
    # a sibling goes through the package: those are not edges between modules.
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    return graph


def test_the_package_has_no_import_cycle():
    assert cycles(package_graph()) == []


def test_the_cycle_check_finds_a_cycle_through_an_import_inside_a_function(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("from pkg.sub import b\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "b.py").write_text(
        textwrap.dedent(
            """
            def later():
                from pkg import a
                return a
            """
        )
    )
    assert cycles(imports(root)) == [["pkg.a", "pkg.sub.b"]]
    (root / "sub" / "b.py").write_text("def later():\n    return None\n")
    assert cycles(imports(root)) == []


def test_each_part_imports_only_the_floors_below_it():
    wrong = []
    for name, targets in sorted(package_graph().items()):
        if name in SHIMS or part(name) in ("", "__main__"):
            continue
        own = part(name)
        assert own in ALLOWED, f"{name}: a part the layout does not know"
        for target in sorted(targets):
            other = part(target)
            if other != own and other not in ALLOWED[own]:
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_nothing_in_the_package_imports_the_modules_kept_for_earlier_releases():
    users = [
        f"{name} imports {target}"
        for name, targets in sorted(package_graph().items())
        if name not in SHIMS and name != "doge_datagen"
        for target in targets
        if target in SHIMS
    ]
    assert users == []


def test_each_subpackage_says_what_lives_there():
    for init in sorted(PACKAGE.rglob("__init__.py")):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        doc = ast.get_docstring(tree)
        assert doc and len(doc) > 40, f"{init} has no docstring saying what lives there"


@pytest.mark.parametrize(
    "old, new",
    [
        ("doge_datagen.timevarying", "doge_datagen.engine.timevarying"),
        ("doge_datagen.pacing", "doge_datagen.engine.pacing"),
        ("doge_datagen.summary", "doge_datagen.engine.summary"),
        ("doge_datagen.status_page", "doge_datagen.metrics.status_page"),
        ("doge_datagen.fit_cli", "doge_datagen.cli.fit"),
        ("doge_datagen.loading", "doge_datagen.distributed.loading"),
        ("doge_datagen.plots", "doge_datagen.analysis.plots"),
    ],
)
def test_a_module_of_an_earlier_release_is_the_module_at_its_new_place(old, new):
    code = (
        f"import {old} as old, {new} as new\n"
        "assert old is new, (old, new)\n"
        "print(len([name for name in vars(old) if not name.startswith('_')]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0


def test_the_design_notes_draw_every_part_of_the_layout():
    design = (PACKAGE.parent / "doc" / "design.md").read_text(encoding="utf-8")
    floors = design[design.index("## The floors") : design.index("## The files")]
    for name in ALLOWED:
        shown = f"`{name}/`" if (PACKAGE / name).is_dir() else f"`{name}.py`"
        assert shown in floors, f"doc/design.md's floors do not show {shown}"
    for directory in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        assert directory.name in ALLOWED, f"{directory.name}/ is a part the layout does not know"
