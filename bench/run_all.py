"""Every benchmark, one table: scenario, our figure, the reference measured in the same run,
the ratio and the target.

    python bench/run_all.py [--quick] [--skip-scale] [--skip-sinks]

--quick shrinks every scenario (a smoke run; the targets are meant for the full sizes).
Each scenario also runs alone: python bench/bench_<name>.py --help.
"""

import argparse
import sys
import time

import bench_dense
import bench_engine
import bench_pacing
import bench_scale
from common import print_table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--skip-scale", action="store_true", help="skip the 1M-subject week")
    parser.add_argument("--skip-sinks", action="store_true", help="skip the Kafka/DB/file sinks")
    args = parser.parse_args()
    q = args.quick
    rows = []
    began = time.perf_counter()
    steps = [
        ("engine", lambda: bench_engine.run(2_000 if q else 10_000, 300 if q else 1_000)),
        ("dense", lambda: bench_dense.run(2_000 if q else 10_000, 20 if q else 100)),
        ("pacing", lambda: bench_pacing.run(20 if q else 100, 100, 10.0, 1_000)),
    ]
    if not args.skip_sinks:
        import bench_sinks

        steps.append(("sinks", lambda: bench_sinks.run(20_000 if q else 200_000)))
    if not args.skip_scale:
        steps.append(
            (
                "scale",
                lambda: bench_scale.run(
                    50_000 if q else 1_000_000, 1_000 if q else 10_080, 5_000 if q else 10_000
                ),
            )
        )
    for name, step in steps:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(step())
    print_table(rows)
    print(
        f"\n{len(rows)} figures in {time.perf_counter() - began:.0f} s; "
        f"{sum(1 for r in rows if r[5])} of {len(rows)} targets met"
    )


if __name__ == "__main__":
    main()
