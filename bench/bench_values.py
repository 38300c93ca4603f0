"""Realistic values: ``datagen.fake`` against Mimesis and Faker, and the demo with them.

    python bench/bench_values.py [--subjects 100000] [--ticks 1440] [--rounds 3]

Four fields per subject (a name, an e-mail address from it, a street address, a phone
number), for ``--subjects`` subjects:

* ours: ``datagen.fake`` with ``datagen.random`` keyed to each subject in turn, as the engine
  keys it while it creates subjects (each subject its own stream);
* Mimesis seeded once (``Person``/``Address`` with one seed, drawing on);
* Faker seeded once (``Faker("en_US")`` with ``seed_instance``).

Then the banking demo (``banking_generator``, ``--ticks`` one-minute ticks, a counting sink)
with those four fields made for every user (``fake=True``) against the plain demo, in this
process; and the command as a user runs it, ``doge-datagen demo --sink jsonl:PATH`` with
``--fake`` (the four fields per user, the name and e-mail address in every event) against
the same command without, each a process of its own (its CPU time) running this checkout's
package (``PYTHONPATH``), as the in-process sides do. Each figure is the best
of ``--rounds`` CPU times, the sides taking turns. Targets: at least 3x faster than
Mimesis, 50x faster than Faker, and the demo with values at most 1.5x the plain demo.
"""

import argparse
import gc
import os
import sys
import tempfile
import time
from typing import Callable, Dict, List

from bench_demo import demo_once
from common import ROOT, Row, print_table  # also puts the checkout first on sys.path

from doge_datagen import CountingSink
from doge_datagen.demo import banking_generator
from doge_datagen.engine.randomness import CREATE_TICK, SubjectRandom
from doge_datagen.values import Fake


def cpu(fn: Callable[[], object]) -> float:
    gc.collect()
    began = time.process_time()
    fn()
    return time.process_time() - began


def ours(n: int) -> Callable[[], object]:
    rng = SubjectRandom(1)
    fake = Fake(rng, "en_US")
    fake.name()  # the locale's data is read before the clock starts, as in a run

    def go() -> None:
        rng.begin(0)
        rng.at_tick(CREATE_TICK)
        name, email, street, phone = fake.name, fake.email, fake.street_address, fake.phone_number
        for i in range(n):
            rng._i, rng._s = i, None  # what the engine does before it creates subject i
            full = name()
            (full, email(full), street(), phone())
        rng._i = None

    return go


def mimesis_once(n: int) -> Callable[[], object]:
    from mimesis import Address, Person
    from mimesis.locales import Locale

    person = Person(Locale.EN, seed=1)
    address = Address(Locale.EN, seed=1)

    def go() -> None:
        full_name, email, street, phone = (
            person.full_name,
            person.email,
            address.address,
            person.phone_number,
        )
        for _ in range(n):
            (full_name(), email(), street(), phone())

    return go


def faker_once(n: int) -> Callable[[], object]:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(1)
    fake.name()

    def go() -> None:
        name, email, street, phone = fake.name, fake.email, fake.street_address, fake.phone_number
        for _ in range(n):
            (name(), email(), street(), phone())

    return go


def demo(n: int, ticks: int, with_values: bool) -> Callable[[], object]:
    def go() -> None:
        sink = CountingSink()
        datagen = banking_generator(
            sink, sink, sink, sink, subjects_num=n, ticks_num=ticks, seed=1, fake=with_values
        )
        datagen.start()

    return go


def run(subjects: int, ticks: int, rounds: int = 3, faker_subjects: int = 0) -> List[Row]:
    """The table's rows: the four fields against Mimesis and Faker, and the demo with them.
    Faker runs on ``faker_subjects`` (default a tenth of ``subjects``), its time scaled up."""
    n = subjects
    n_faker = faker_subjects or max(1, n // 10)
    sides: Dict[str, Callable[[], object]] = {
        "ours": ours(n),
        "mimesis": mimesis_once(n),
        "faker": faker_once(n_faker),
        "demo": demo(n, ticks, False),
        "demo+values": demo(n, ticks, True),
    }
    best = {name: float("inf") for name in sides}
    best["command"] = best["command --fake"] = float("inf")
    with tempfile.TemporaryDirectory(prefix="doge-bench-values-") as tmp:
        path = os.path.join(tmp, "events.jsonl")
        for _ in range(rounds):
            for name, fn in sides.items():
                best[name] = min(best[name], cpu(fn))
            for name, extra in (("command", ()), ("command --fake", ("--fake",))):
                seconds = demo_once(ROOT, n, ticks, path, extra)[0]
                best[name] = min(best[name], seconds)
    best["faker"] *= n / n_faker
    rows: List[Row] = []
    per = 1e6 / n
    for ref, target in (("mimesis", 3.0), ("faker", 50.0)):
        ratio = best[ref] / best["ours"]
        rows.append(
            (
                f"values: 4 fields x {n:,} subjects vs {ref} seeded once",
                f"{best['ours']:.2f} s ({best['ours'] * per:.1f} us/subject)",
                f"{best[ref]:.2f} s ({best[ref] * per:.1f} us/subject)",
                ratio,
                f">= {target:g}x faster",
                ratio >= target,
            )
        )
    ratio = best["demo+values"] / best["demo"]
    rows.append(
        (
            f"values: banking demo, {n:,} users x {ticks} ticks, with the 4 fields vs plain",
            f"{best['demo+values']:.2f} s",
            f"{best['demo']:.2f} s",
            ratio,
            "<= 1.5x the time",
            ratio <= 1.5,
        )
    )
    ratio = best["command --fake"] / best["command"]
    rows.append(
        (
            f"values: doge-datagen demo --sink jsonl:, {n:,} users x {ticks} ticks, --fake vs not",
            f"{best['command --fake']:.2f} s",
            f"{best['command']:.2f} s",
            ratio,
            "<= 1.5x the time",
            ratio <= 1.5,
        )
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--ticks", type=int, default=1440)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--faker-subjects",
        type=int,
        default=0,
        help="subjects for Faker (default --subjects / 10; its time is scaled up)",
    )
    args = parser.parse_args()
    rows = run(args.subjects, args.ticks, args.rounds, args.faker_subjects)
    print(f"CPU seconds, best of {args.rounds} (Faker on a tenth of the subjects, scaled)")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
