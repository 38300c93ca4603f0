"""What watching a run costs: the banking model unpaced, with a metrics server attached
(sampled every second, and scraped every second by another process, as Prometheus and the
status page would)
against the same run without one.

    python bench/bench_metrics.py [--subjects 50000] [--ticks 1440] [--repeat 5]

The engine keeps no extra count for the metrics (the subjects per state are derived from the
per-transition counts it keeps anyway), so the cost is the sampler thread's and the scrapes'
share of the GIL. Target: metrics on within 1.1x of metrics off. The two runs alternate and
the best of each is compared, so that a noisy neighbour hits both alike.
"""

import argparse
import subprocess
import sys
import time
from typing import Dict, List

from common import Row, banking, print_table, timed

from doge_datagen.engine.summary import sink_labels
from doge_datagen.metrics.exporter import MetricsServer, RunProbe

# Prometheus and a browser on the status page, as another process would scrape: once a second.
_SCRAPER = """
import sys, time, urllib.request
while True:
    for path in ("metrics", ""):
        with urllib.request.urlopen(sys.argv[1] + path, timeout=10) as response:
            response.read()
    time.sleep(1.0)
"""


def run(subjects: int, ticks: int, repeat: int = 5, seed: int = 1) -> List[Row]:
    counts: Dict[str, int] = {}
    server = MetricsServer(0)

    def off() -> None:
        datagen, sink = banking(subjects, ticks, seed)
        datagen.start()
        counts["off"] = sink.count

    def on() -> None:
        datagen, sink = banking(subjects, ticks, seed)
        datagen.start(metrics=server)
        counts["on"] = sink.count

    scraper = subprocess.Popen([sys.executable, "-c", _SCRAPER, server.url])
    try:
        t_off = t_on = float("inf")
        for _ in range(repeat):
            t_off = min(t_off, timed(off))
            t_on = min(t_on, timed(on))
    finally:
        scraper.terminate()
        scraper.wait()
        server.close()
    assert counts["on"] == counts["off"], counts
    ratio = t_on / t_off
    # What the sampler thread does once a second: one snapshot of a finished run of the
    # same model (per-trigger counts, per-state counts derived from them, sink counts).
    datagen, _ = banking(subjects, 10, seed)
    datagen.start()
    sinks = datagen.sinks
    probe = RunProbe(datagen._last_run, sinks, sink_labels(sinks))  # noqa: SLF001
    began = time.perf_counter()
    for _ in range(1000):
        probe.snapshot()
    t_snapshot = (time.perf_counter() - began) / 1000
    interval = server.interval
    share = t_snapshot / interval
    return [
        (
            f"banking {subjects:,}x{ticks:,} unpaced, metrics on vs off",
            f"{t_on:.3f}s ({counts['on'] / t_on:,.0f} ev/s)",
            f"{t_off:.3f}s ({counts['off'] / t_off:,.0f} ev/s)",
            ratio,
            "<= 1.1x",
            ratio <= 1.1,
        ),
        (
            "one metrics snapshot (the sampler's work per interval)",
            f"{t_snapshot * 1e6:.0f} us",
            f"interval {interval:g} s",
            share,
            "<= 0.01x",
            share <= 0.01,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=50_000)
    parser.add_argument("--ticks", type=int, default=1_440)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    began = time.perf_counter()
    print_table(run(args.subjects, args.ticks, args.repeat))
    print(f"\n{time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
