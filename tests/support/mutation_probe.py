"""Mutation probe: deliberate bugs in the engine, one at a time, each of which must fail the
suite. It shows that the tests catch what their names claim (a statistical test with no power
against a late retry, say, would let its mutant survive).

    .venv/bin/python tests/support/mutation_probe.py [--only NAME ...] [--tests FILE ...] [--list]

For each mutant the package is copied to a temporary directory, one snippet of the engine is
replaced, and pytest runs the engine's tests against the copy (``PYTHONPATH`` puts it first)
until the first failure. The table says which test caught each mutant; the exit status is 1 if
any survived or if a snippet is no longer in the engine (then the probe needs updating).
Not collected by pytest (its name does not start with ``test_``).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

ROOT = Path(__file__).resolve().parents[2]

#: The tests run against each mutant: everything that runs the engine in-process.
TESTS = [
    "tests/engine/test_doge.py",
    "tests/engine/test_engine.py",
    "tests/engine/test_properties.py",
    "tests/sinks/test_printing_and_memory_sinks.py",
    "tests/engine/test_online.py",
    "tests/engine/test_engine_vs_reference.py",
]


class Mutant(NamedTuple):
    name: str
    what: str
    file: str
    old: str
    new: str


MUTANTS = [
    Mutant(
        "veto-retries-late",
        "a vetoed subject retries one tick late (on a drawn transition below 100 %)",
        "engine.py",
        "                        vetoes[k] += 1\n                        table = from_table\n",
        "                        vetoes[k] += 1\n"
        "                        self.schedule(i, from_table, following + 1, n_ticks)\n"
        "                        continue\n",
    ),
    Mutant(
        "veto-moves-anyway",
        "a vetoed subject still moves (silently, without an event)",
        "engine.py",
        "                        vetoes[k] += 1\n                        table = from_table\n",
        "                        vetoes[k] += 1\n",
    ),
    Mutant(
        "veto-not-counted",
        "vetoes are not counted in the summary",
        "engine.py",
        "                        vetoes[k] += 1\n",
        "                        vetoes[k] += 0\n",
    ),
    Mutant(
        "wait-off-by-one",
        "the geometric wait is one tick too long",
        "engine.py",
        "at += int((log((h >> 32) + 1) - _LN_2_POW_32) * inv_log_stay)",
        "at += int((log((h >> 32) + 1) - _LN_2_POW_32) * inv_log_stay) + 1",
    ),
    Mutant(
        "leave-rate-low",
        "states are left 10 % less often than their probabilities say",
        "engine.py",
        "leave = min(total / 100.0, 1.0)",
        "leave = min(total / 110.0, 1.0)",
    ),
    Mutant(
        "choice-biased",
        "the choice between a state's transitions ignores their odds (cut-offs out of 100)",
        "engine.py",
        "thresholds.append(min(int(running / total * _TWO_POW_32), _TWO_POW_32))",
        "thresholds.append(min(int(running / 100.0 * _TWO_POW_32), _TWO_POW_32))",
    ),
    Mutant(
        "choice-always-first",
        "the first transition of a state is always the one taken (hot loop)",
        "engine.py",
        "                        while low >= thresholds[j]:\n",
        "                        while low >= thresholds[j] and j < 0:\n",
    ),
    Mutant(
        "order-within-tick",
        "subjects act in reverse creation order within a tick",
        "engine.py",
        "            bucket.sort()\n",
        "            bucket.sort(reverse=True)\n",
    ),
    Mutant(
        "timestamp-off-by-one",
        "events carry the timestamp of the next tick",
        "engine.py",
        "tick * tick_ms if whole_ms else round(tick * tick_ms)  # type: ignore[assignment]",
        "(tick + 1) * tick_ms if whole_ms else round((tick + 1) * tick_ms)",
    ),
    Mutant(
        "failing-sink-drops-event",
        "a sink that raises keeps the event from the sinks listed after it",
        "engine.py",
        "_deliver_rest(sinks, sink, exc, timestamp, subject, transition)\n",
        "pass\n",
    ),
    Mutant(
        "close-stops-at-first-error",
        "closing stops at the first sink that fails to close",
        "engine.py",
        "            errors.append(exc)\n    return errors\n",
        "            errors.append(exc)\n            break\n    return errors\n",
    ),
    Mutant(
        "seed-ignored",
        "the engine's draws ignore the seed",
        "engine.py",
        '    return int.from_bytes(digest[:8], "little")\n',
        "    return 0x5EED\n",
    ),
]


def apply(package: Path, mutant: Mutant) -> None:
    path = package / mutant.file
    text = path.read_text()
    found = text.count(mutant.old)
    if not found:
        raise LookupError(f"{mutant.name}: snippet not found in {mutant.file}")
    path.write_text(text.replace(mutant.old, mutant.new))


def run_suite(
    package_parent: Path, timeout: float, tests: List[str]
) -> Tuple[Optional[str], float]:
    """Run the tests against the mutated copy; return the first failing test (or None)."""
    # The mutants are made in the Python loop: the C loop (which tests/engine/test_speedups.py holds
    # to the Python one) stays out of the way.
    env = dict(
        os.environ,
        PYTHONPATH=str(package_parent),
        PYTHONDONTWRITEBYTECODE="1",
        DOGE_DATAGEN_PURE_PYTHON="1",
    )
    began = time.monotonic()
    # pytest runs from the copy's directory: ``python -m`` puts the working directory first on
    # sys.path, so the mutated package is the one imported (from ROOT it would be the real one).
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    command += ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT)]
    command += [str(ROOT / test) for test in tests]
    try:
        done = subprocess.run(
            command,
            cwd=package_parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return f"(the suite did not finish within {timeout:.0f} s)", time.monotonic() - began
    elapsed = time.monotonic() - began
    if done.returncode == 0:
        return None, elapsed
    failed = re.search(r"^(?:FAILED|ERROR) \S*?(tests/\S+)", done.stdout, re.MULTILINE)
    return (failed.group(1) if failed else f"(pytest exit {done.returncode})"), elapsed


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="mutant names to run")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=float, default=600.0, help="per mutant, seconds")
    parser.add_argument(
        "--tests",
        nargs="*",
        help="test files to run instead of the engine's (e.g. only the "
        "statistical ones, to see that they have power on their own)",
    )
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.name:28}  {m.what}")
        return 0
    rows = []
    survived = 0
    for mutant in chosen:
        with tempfile.TemporaryDirectory(prefix="doge-mutant-") as tmp:
            package = Path(tmp) / "doge_datagen"
            shutil.copytree(ROOT / "doge_datagen", package)
            try:
                apply(package, mutant)
            except LookupError as exc:
                rows.append((mutant.name, f"NOT APPLIED: {exc}", 0.0))
                survived += 1
                continue
            check = subprocess.run(
                [sys.executable, "-c", "import doge_datagen; print(doge_datagen.__file__)"],
                cwd=tmp,
                env=dict(os.environ, PYTHONPATH=tmp),
                capture_output=True,
                text=True,
            )
            assert check.stdout.startswith(tmp), f"the copy is not the one imported: {check}"
            caught, elapsed = run_suite(Path(tmp), args.timeout, args.tests or TESTS)
        if caught is None:
            survived += 1
            caught = "SURVIVED"
        rows.append((mutant.name, caught, elapsed))
        print(f"{mutant.name:28}  {caught}  ({elapsed:.0f} s)", file=sys.stderr, flush=True)
    width = max(len(r[0]) for r in rows)
    print(f"{'mutant':{width}}  caught by")
    print(f"{'-' * width}  {'-' * 9}")
    for name, caught, _ in rows:
        print(f"{name:{width}}  {caught}")
    print(f"\n{len(rows) - survived} of {len(rows)} mutants caught")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
