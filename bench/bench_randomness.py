"""Per-subject randomness: the banking model, whose factory and callbacks draw from
``datagen.random``, with its per-subject streams against the same model given a plain
``random.Random``.

    python bench/bench_randomness.py [--subjects 50000] [--ticks 1440] [--rounds 3]

Both sides run the same events' worth of work (the same engine draws; the callbacks draw as
often), alternately, best of ``--rounds``, in CPU seconds. Target: at most 1.2x.
"""

import argparse
import gc
import random
import time
from typing import List

from common import Row, banking, print_table

from doge_datagen.demo import make_callbacks


def one_run(subjects: int, ticks: int, plain: bool) -> float:
    datagen, sink = banking(subjects, ticks)
    if plain:
        rng = random.Random(datagen.seed)
        datagen.random = rng
        datagen.subject_factory.random = rng
        callbacks = make_callbacks(rng)
        for transition in datagen.transitions:
            if transition.action_callback is not None:
                transition.action_callback = callbacks[transition.action_callback.__name__]
    gc.collect()
    began = time.process_time()
    datagen.start()
    return time.process_time() - began


def run(subjects: int, ticks: int, rounds: int = 3) -> List[Row]:
    keyed = plain = float("inf")
    for _ in range(rounds):
        plain = min(plain, one_run(subjects, ticks, plain=True))
        keyed = min(keyed, one_run(subjects, ticks, plain=False))
    ratio = keyed / plain
    return [
        (
            f"banking {subjects:,}x{ticks:,}: per-subject streams vs plain random.Random",
            f"{keyed:.3f}s CPU",
            f"{plain:.3f}s CPU",
            ratio,
            "<= 1.2x",
            ratio <= 1.2,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=50_000)
    parser.add_argument("--ticks", type=int, default=1_440)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print_table(run(args.subjects, args.ticks, args.rounds))


if __name__ == "__main__":
    main()
