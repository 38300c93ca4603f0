"""Helpers shared by the benchmarks: the banking model, the reference loop, timing and the table."""

import gc
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("", "tests"):
    path = os.path.join(ROOT, sub)
    if path not in sys.path:
        sys.path.insert(0, path)


from doge_datagen import CountingSink, DataOnlineGenerator  # noqa: E402
from doge_datagen.demo import banking_generator  # noqa: E402


def banking(
    subjects: int, ticks: int, seed: int = 1, one_second_ticks: bool = False
) -> Tuple[DataOnlineGenerator, CountingSink]:
    """The README's banking model into one counting sink (1-minute ticks, or 1-second ticks
    with every probability divided by 60 and 60 times the ticks)."""
    sink = CountingSink()
    if one_second_ticks:
        datagen = banking_generator(
            sink,
            sink,
            sink,
            sink,
            subjects_num=subjects,
            tick_ms=1000,
            ticks_num=ticks * 60,
            seed=seed,
            probability_scale=1 / 60,
        )
    else:
        datagen = banking_generator(
            sink, sink, sink, sink, subjects_num=subjects, ticks_num=ticks, seed=seed
        )
    return datagen, sink


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    """Best wall-clock time of ``repeat`` calls, with the garbage collector settled first."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return best


Row = Tuple[str, str, str, float, str, bool]


def print_table(rows: Sequence[Row], file: Optional[Any] = None) -> None:
    """scenario | ours | reference | ratio | target | met."""
    header = ("scenario", "ours", "reference", "ratio", "target", "met")
    body: List[Tuple[str, ...]] = [header] + [
        (s, o, r, f"{ratio:.2f}x", t, "yes" if met else "NO") for s, o, r, ratio, t, met in rows
    ]
    widths = [max(len(row[i]) for row in body) for i in range(len(header))]
    for k, row in enumerate(body):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)), file=file)
        if k == 0:
            print("  ".join("-" * w for w in widths), file=file)


def run_scenarios(
    title: str,
    scenarios: "Dict[str, Callable[[int], List[Row]]]",
    records: int,
    only: Optional[str] = None,
) -> List[Row]:
    """Run each scenario (or ``only`` that one) with ``records`` records; its rows, in order."""
    rows: List[Row] = []
    for name, scenario in scenarios.items():
        if only is None or only == name:
            print(f"  {title}: {name} ...", file=sys.stderr, flush=True)
            began = time.perf_counter()
            rows.extend(scenario(records))
            print(f"  {title}: {name} took {time.perf_counter() - began:.0f} s", file=sys.stderr)
    return rows


def scenarios_main(
    doc: Optional[str], run: Callable[[int, Optional[str]], List[Row]], names: Any, records: int
) -> None:
    """The command line of a benchmark made of named scenarios: ``--records N --only NAME``."""
    import argparse

    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=records)
    parser.add_argument("--only", choices=sorted(names))
    args = parser.parse_args()
    print_table(run(args.records, args.only))
