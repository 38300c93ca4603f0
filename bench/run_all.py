"""Every benchmark, one table: scenario, our figure, the reference measured in the same run,
the ratio and the target.

    python bench/run_all.py [--quick] [--skip-scale] [--skip-sinks] [--skip-buses]

--quick shrinks every scenario (a smoke run; the targets are meant for the full sizes).
Each scenario also runs alone: python bench/bench_<name>.py --help.
"""

import argparse
import sys
import time

import bench_analysis
import bench_demo
import bench_dense
import bench_draw
import bench_engine
import bench_fit
import bench_metrics
import bench_pacing
import bench_profiles
import bench_randomness
import bench_rate
import bench_scale
import bench_sharded
import bench_values
from common import print_table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--skip-scale", action="store_true", help="skip the 1M-subject week")
    parser.add_argument("--skip-sinks", action="store_true", help="skip the Kafka/DB/file sinks")
    parser.add_argument(
        "--skip-buses", action="store_true", help="skip Redis, RabbitMQ, MQTT, NATS, Parquet"
    )
    parser.add_argument(
        "--skip-soak", action="store_true", help="skip the ten-minute soak (30 s with --quick)"
    )
    args = parser.parse_args()
    q = args.quick
    rows = []
    began = time.perf_counter()
    steps = [
        ("engine", lambda: bench_engine.run(2_000 if q else 10_000, 300 if q else 1_000)),
        ("dense", lambda: bench_dense.run(2_000 if q else 10_000, 20 if q else 100)),
        (
            "draw",
            lambda: bench_draw.run(2_000 if q else 10_000, 300 if q else 1_000, 20 if q else 100),
        ),
        ("pacing", lambda: bench_pacing.run(20 if q else 100, 100, 10.0, 1_000)),
        ("metrics", lambda: bench_metrics.run(5_000 if q else 50_000, 300 if q else 1_440)),
        ("profiles", lambda: bench_profiles.run(2_000 if q else 10_000, 1 if q else 7)),
        ("rate", lambda: bench_rate.run(2_000, 10 if q else 120, 20_000 if q else 100_000)),
        ("fit", lambda: bench_fit.run(200_000 if q else 10_000_000)),
        ("fit-states", lambda: bench_fit.per_tick(30_000 if q else 300_000)),
        ("analysis", lambda: bench_analysis.run(3 if q else 5)),
        ("demo", lambda: bench_demo.run(10_000 if q else 100_000, 1_440, rounds=1 if q else 3)),
        ("randomness", lambda: bench_randomness.run(5_000 if q else 50_000, 1_440)),
        ("sharded", lambda: bench_sharded.run(20_000 if q else 200_000, 1_440, 2, 1 if q else 2)),
        ("values", lambda: bench_values.run(10_000 if q else 100_000, 1_440, 1 if q else 3)),
    ]
    if not args.skip_sinks:
        import bench_sinks

        steps.append(("sinks", lambda: bench_sinks.run(20_000 if q else 200_000)))
    if not args.skip_buses:
        import bench_buses

        steps.append(("buses", lambda: bench_buses.run(5_000 if q else 20_000)))
    if not args.skip_soak and not args.skip_sinks:
        import bench_soak

        steps.append(
            ("soak", lambda: bench_soak.run(30.0 if q else 600.0, 2_000 if q else 5_000, 600.0))
        )
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
