"""The README's performance table and bench/run_all.py know the same promises, and the table
is made from a run's results as it says; without running any benchmark."""

import ast
import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


@pytest.fixture(scope="module")
def bench_modules():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("promises"), importlib.import_module("run_all")
    finally:
        sys.path.remove(str(BENCH))


def test_the_readme_table_has_one_line_per_promise_in_order(bench_modules):
    promises, _ = bench_modules
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(promises.TABLE_START) == readme.count(promises.TABLE_END) == 1
    expected = [(p.category, p.what, p.target) for p in promises.PROMISES]
    assert promises.table_rows(readme) == expected


def test_every_bench_is_a_step_and_every_promise_names_one(bench_modules):
    promises, run_all = bench_modules
    files = {path.stem for path in BENCH.glob("bench_*.py")}
    modules = {step.module for step in run_all.STEPS}
    assert files <= modules  # a step whose file is missing fails alone when run_all runs it
    names = [step.name for step in run_all.STEPS]
    assert len(names) == len(set(names))
    assert {p.step for p in promises.PROMISES} <= set(names)
    whats = [p.what for p in promises.PROMISES]
    assert len(whats) == len(set(whats))


def test_every_bench_that_states_a_target_has_a_promise(bench_modules):
    """A benchmark whose docstring names a target (``Target: ...``, ``target >= 0.8x``) is
    measured by a step that some promise holds; bench_draw, which only shows its figures,
    is the one without."""
    promises, run_all = bench_modules
    module_of = {step.name: step.module for step in run_all.STEPS}
    promised = {module_of[p.step] for p in promises.PROMISES}
    stating = set()
    for path in BENCH.glob("bench_*.py"):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if re.search(r"\btargets?\b", doc, re.IGNORECASE):
            stating.add(path.stem)
    assert "bench_draw" not in stating and len(stating) >= 20
    assert sorted(stating - promised) == []


def test_the_table_is_formatted_from_the_results(bench_modules):
    promises = bench_modules[0]
    P = promises.Promise
    at_least = P("engine", "fast engine", "engine", "^engine", ">=", 50)
    at_most = P("fit", "cheap fit", "fit", "^fit", "<=", 1.5)
    band = P("pacing", "rate", "rate", "^rate", "within", 0.95, 1.05)
    never = P("sinks", "a sink", "sinks", "^sink", ">=", 0.8)
    broken = P("values", "values", "values", "^values", "<", 1)
    results = [
        promises.Result(at_least, [61.0, 57.25], []),
        promises.Result(at_most, [1.2, 1.75], []),
        promises.Result(band, [0.999], []),
        promises.Result(never, [], []),
        promises.Result(broken, [], ["values failed: OSError: no broker"]),
    ]
    table = promises.markdown_table(results, "Measured by `x`.")
    assert table.splitlines() == [
        "| area | promise | target | measured | met |",
        "|---|---|---|---|---|",
        "| engine | fast engine | >= 50x | 57.2x | yes |",
        "| fit | cheap fit | <= 1.5x | 1.75x | NO |",
        "| pacing | rate | 0.95x to 1.05x | 0.999x | yes |",
        "| sinks | a sink | >= 0.8x | not run | not run |",
        "| values | values | < 1x | not run | failed |",
        "",
        "Measured by `x`.",
    ]
    text = f"before\n{promises.TABLE_START}\nold line\n{promises.TABLE_END}\nafter\n"
    replaced = promises.replace_table(text, table)
    assert replaced.startswith(f"before\n{promises.TABLE_START}\n| area |")
    assert replaced.endswith(f"Measured by `x`.\n{promises.TABLE_END}\nafter\n")
    assert "old line" not in replaced
    assert promises.table_rows(replaced) == [
        ("engine", "fast engine", ">= 50x"),
        ("fit", "cheap fit", "<= 1.5x"),
        ("pacing", "rate", "0.95x to 1.05x"),
        ("sinks", "a sink", ">= 0.8x"),
        ("values", "values", "< 1x"),
    ]


def test_a_row_is_judged_by_its_promise_not_by_its_benchmark(bench_modules):
    promises = bench_modules[0]
    (tuned,) = [p for p in promises.PROMISES if p.what.endswith("tuned per-tick loop (speed-up)")]
    rows = [
        ("sparse banking 10,000x1,000, engine vs tuned per-tick", "a", "b", 49.0, ">= 50x", True),
        ("a new scenario", "a", "b", 2.0, ">= 3x", False),
        ("shown only", "a", "b", 2.0, "(shown)", True),
        ("shown too", "a", "b", 2.0, "-", True),
        ("within a band", "a", "b", 1.02, "within 10 %", True),
    ]
    results, unclaimed = promises.judge(rows, ran=["engine", "fit"], failed={"sinks": "gone"})
    by_what = {r.promise.what: r for r in results}
    engine = by_what[tuned.what]
    assert engine.ratios == [49.0] and engine.met is False
    assert any("disagrees" in problem for problem in engine.problems)
    assert unclaimed == [rows[1], rows[4]]
    # A step that ran but made none of a promise's rows; a step that failed; one not run.
    fit = [r for r in results if r.promise.step == "fit"]
    assert fit and all(r.met is None and r.problems for r in fit)
    sinks = [r for r in results if r.promise.step == "sinks"]
    assert sinks and all(promises.verdict(r) == "failed" for r in sinks)
    values = [r for r in results if r.promise.step == "values"]
    assert values and all(promises.verdict(r) == "not run" for r in values)


def test_a_promise_met_is_computed_from_the_ratio(bench_modules):
    P = bench_modules[0].Promise
    assert P("a", "b", "c", "d", ">=", 1.7).met(1.7)
    assert not P("a", "b", "c", "d", ">=", 1.7).met(1.69)
    assert not P("a", "b", "c", "d", "<", 1).met(1.0)
    assert P("a", "b", "c", "d", "==", 1).met(1.0)
    assert not P("a", "b", "c", "d", "<=", 1).met(float("nan"))
    assert P("a", "b", "c", "d", "within", 0.95, 1.05).met(1.05)
    assert not P("a", "b", "c", "d", "within", 0.95, 1.05).met(0.94)
    with pytest.raises(ValueError, match="unknown comparison"):
        P("a", "b", "c", "d", "~", 1)


def test_two_promises_holding_one_row_are_both_reported(bench_modules):
    promises = bench_modules[0]
    rows = [("sparse banking 1x1, engine vs tuned per-tick", "a", "b", 60.0, ">= 50x", True)]
    original = list(promises.PROMISES)
    try:
        promises.PROMISES.append(
            promises.Promise("engine", "again", "engine", "tuned per-tick$", ">=", 1)
        )
        results, _ = promises.judge(rows, ran=[])
    finally:
        promises.PROMISES[:] = original
    held = [r for r in results if r.ratios]
    assert len(held) == 2 and all(r.met is False for r in held)
