"""Every benchmark, one table: scenario, our figure, the reference measured in the same run,
the ratio and the target; then every ratio the project promises (bench/promises.py), with its
target and whether this run met it.

    python bench/run_all.py [--quick] [--only STEP,...] [--skip-scale] [--skip-sinks]
                            [--skip-buses] [--skip-soak] [--markdown README.md]

--quick shrinks every scenario (a smoke run; the targets are meant for the full sizes).
--markdown FILE writes the promises' table between its markers in FILE (the README's
"Performance" table). Each step's module also runs alone: python bench/bench_<name>.py --help.
A step that fails (a service that is not there, say) is reported and the others go on; the
command exits with status 1 if any promise was not met or could not be measured.
"""

import argparse
import datetime
import importlib
import os
import platform
import sys
import time
import traceback
from typing import Any, Callable, Dict, List, NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import promises  # noqa: E402


class Step(NamedTuple):
    """A step of the run: ``module``'s rows from ``call(module, quick)``; ``group`` is the
    ``--skip-*`` option that leaves it out."""

    name: str
    module: str
    call: Callable[[Any, bool], List[Any]]
    group: str = ""


def _sizes(quick: bool, small: int, full: int) -> int:
    return small if quick else full


#: Every step, in the order run. Each bench/bench_*.py is one (tests/docs/test_bench_promises.py
#: checks it), and every promise's step is here.
STEPS: List[Step] = [
    Step("engine", "bench_engine",
         lambda m, q: m.run(_sizes(q, 2_000, 10_000), _sizes(q, 300, 1_000))),
    Step("dense", "bench_dense",
         lambda m, q: m.run(_sizes(q, 2_000, 10_000), _sizes(q, 20, 100))),
    Step("draw", "bench_draw",
         lambda m, q: m.run(_sizes(q, 2_000, 10_000), _sizes(q, 300, 1_000), _sizes(q, 20, 100))),
    Step("pacing", "bench_pacing", lambda m, q: m.run(_sizes(q, 20, 100), 100, 10.0, 1_000)),
    Step("metrics", "bench_metrics",
         lambda m, q: m.run(_sizes(q, 5_000, 50_000), _sizes(q, 300, 1_440))),
    Step("profiles", "bench_profiles",
         lambda m, q: m.run(_sizes(q, 2_000, 10_000), _sizes(q, 1, 7))),
    Step("rate", "bench_rate",
         lambda m, q: m.run(2_000, _sizes(q, 10, 120), _sizes(q, 20_000, 100_000))),
    Step("fit", "bench_fit", lambda m, q: m.run(_sizes(q, 200_000, 10_000_000))),
    Step("fit-states", "bench_fit", lambda m, q: m.per_tick(_sizes(q, 30_000, 300_000))),
    Step("analysis", "bench_analysis", lambda m, q: m.run(_sizes(q, 3, 5))),
    Step("checkpoint", "bench_checkpoint",
         lambda m, q: m.measure(_sizes(q, 100_000, 1_000_000), _sizes(q, 2_000, 20_000))),
    Step("modelfile", "bench_modelfile",
         lambda m, q: m.run(_sizes(q, 5_000, 50_000), 1440, _sizes(q, 1, 3))),
    Step("populations", "bench_populations",
         lambda m, q: m.run(_sizes(q, 20_000, 200_000), 1_440, _sizes(q, 1, 3),
                            _sizes(q, 300, 2_000))),
    Step("demo", "bench_demo",
         lambda m, q: m.run(_sizes(q, 10_000, 100_000), 1_440, rounds=_sizes(q, 1, 3))),
    Step("randomness", "bench_randomness",
         lambda m, q: m.run(_sizes(q, 5_000, 50_000), 1_440)),
    Step("sharded", "bench_sharded",
         lambda m, q: m.run(_sizes(q, 20_000, 200_000), 1_440, 2, _sizes(q, 1, 3))),
    Step("values", "bench_values",
         lambda m, q: m.run(_sizes(q, 10_000, 100_000), 1_440, _sizes(q, 1, 3))),
    Step("user_sinks", "bench_user_sinks",
         lambda m, q: m.run(_sizes(q, 20_000, 100_000), 60, _sizes(q, 1, 3)), "sinks"),
    Step("sinks", "bench_sinks", lambda m, q: m.run(_sizes(q, 20_000, 200_000)), "sinks"),
    Step("disorder", "bench_disorder",
         lambda m, q: m.measure(_sizes(q, 5_000, 20_000), _sizes(q, 300, 1_440), _sizes(q, 1, 3)),
         "sinks"),
    Step("changes", "bench_changes",
         lambda m, q: m.run(_sizes(q, 5_000, 20_000), 1_440, _sizes(q, 1, 3)), "sinks"),
    Step("registry_formats", "bench_registry_formats",
         lambda m, q: m.run(_sizes(q, 10_000, 100_000)), "sinks"),
    Step("buses", "bench_buses", lambda m, q: m.run(_sizes(q, 5_000, 20_000)), "buses"),
    Step("soak", "bench_soak",
         lambda m, q: m.run(_sizes(q, 30, 600) * 1.0, _sizes(q, 2_000, 5_000), 600.0), "soak"),
    Step("scale", "bench_scale",
         lambda m, q: m.run(_sizes(q, 50_000, 1_000_000), _sizes(q, 1_000, 10_080),
                            _sizes(q, 5_000, 10_000)), "scale"),
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", help="comma-separated steps: " + ", ".join(s.name for s in STEPS))
    parser.add_argument("--skip-scale", action="store_true", help="skip the 1M-subject week")
    parser.add_argument(
        "--skip-sinks", action="store_true", help="skip the Kafka/DB/file sinks and the soak"
    )
    parser.add_argument(
        "--skip-buses", action="store_true", help="skip Redis, RabbitMQ, MQTT, NATS, Parquet"
    )
    parser.add_argument(
        "--skip-soak", action="store_true", help="skip the ten-minute soak (30 s with --quick)"
    )
    parser.add_argument("--markdown", metavar="FILE", help="write the promises' table into FILE")
    args = parser.parse_args()
    skipped = {
        group
        for group, skip in (
            ("scale", args.skip_scale),
            ("sinks", args.skip_sinks),
            ("soak", args.skip_soak or args.skip_sinks),
            ("buses", args.skip_buses),
        )
        if skip
    }
    chosen = [s for s in STEPS if s.group not in skipped]
    if args.only:
        names = args.only.split(",")
        unknown = sorted(set(names) - {s.name for s in STEPS})
        if unknown:
            parser.error(f"unknown steps: {', '.join(unknown)}")
        chosen = [s for s in chosen if s.name in names]

    from common import print_table

    rows: List[Any] = []
    ran: List[str] = []
    failed: Dict[str, str] = {}
    began = time.perf_counter()
    for step in chosen:
        print(f"running {step.name} ...", file=sys.stderr, flush=True)
        try:
            rows.extend(step.call(importlib.import_module(step.module), args.quick))
        except Exception as exc:  # a missing service, say: the other steps still run
            traceback.print_exc(file=sys.stderr)
            failed[step.name] = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        else:
            ran.append(step.name)
    took = time.perf_counter() - began
    print_table(rows)

    results, unclaimed = promises.judge(rows, ran, failed)
    print("\npromises:")
    area = max(len(r.promise.category) for r in results)
    width = max(len(r.promise.what) for r in results)
    target = max(len(r.promise.target) for r in results)
    for result in results:
        p = result.promise
        print(
            f"  {p.category:<{area}} {p.what:<{width}}  {p.target:<{target}} "
            f"{promises._ratio(result.measured):>9}  {promises.verdict(result)}"
        )
        for problem in result.problems:
            print(f"      {problem}")
    for row in unclaimed:
        print(f"  a target no promise holds: {row[0]!r} ({row[4]})")
    measured = [r for r in results if r.met is not None]
    met = sum(1 for r in measured if r.met)
    print(
        f"\n{len(rows)} figures in {took:.0f} s; {met} of {len(measured)} promises measured "
        f"met, {len(results) - len(measured)} not measured"
        + (f"; steps failed: {', '.join(failed)}" if failed else "")
    )
    if args.markdown:
        how = (
            f"Measured by `python bench/run_all.py{' --quick' if args.quick else ''}"
            f"{' --only ' + args.only if args.only else ''}` on "
            f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end"
            + (" (`--quick`: smoke sizes; the targets are meant for the full sizes)"
               if args.quick else "")
            + "."
        )  # fmt: skip
        with open(args.markdown, encoding="utf-8") as f:
            text = f.read()
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(promises.replace_table(text, promises.markdown_table(results, how)))
        print(f"wrote the table into {args.markdown}", file=sys.stderr)
    if failed or unclaimed or met < len(results):
        sys.exit(1)


if __name__ == "__main__":
    main()
