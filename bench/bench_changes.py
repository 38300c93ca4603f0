"""What change events cost: the banking model's changes as Debezium envelopes into JSON Lines
against its plain records, and its current-state table (upsert mode) in PostgreSQL against
the append mode.

    python bench/bench_changes.py [--subjects 20000] [--ticks 1440] [--rounds 3]

The README's banking model (every move into the sink). Plain: ``FileSink(path, user_row)``.
Envelopes: ``ChangeEventSink(FileSink(path, envelope_row), key="user_id")``: a row of each
user at the start, then a row per move that changes a user, each with before and after.
PostgreSQL ($DOGE_BENCH_POSTGRES_URL, default the local test database): the append mode's
``user_row`` rows (COPY) against ``ChangeEventSink(DbSink(..., mode="upsert",
key="user_id"))`` into a table keyed by user. Figures are CPU and wall seconds of the whole
run (engine and sink; the database's own work shows in wall time only), best of --rounds
with the sides taking turns; the ratio is the rate's, plain time over change-event time.
Targets: envelopes >= 0.5x, upsert >= 0.5x.
"""

import argparse
import gc
import os
import sys
import tempfile
import time
import uuid
from typing import Any, Callable, List, Tuple

from common import Row, print_table

from doge_datagen import FileSink
from doge_datagen.demo import banking_generator, user_row
from doge_datagen.sinks.cdc import ChangeEventSink, envelope_row

TARGET = 0.5
POSTGRES_URL = os.environ.get(
    "DOGE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def run_once(sink: Any, subjects: int, ticks: int, clock: Callable[[], float]) -> float:
    datagen = banking_generator(
        sink, sink, sink, sink, subjects_num=subjects, ticks_num=ticks, seed=1, timestamp_start=0
    )
    for transition in datagen.transitions:
        transition.event_sinks = [sink]
    gc.collect()
    began = clock()
    summary = datagen.start()
    elapsed = clock() - began
    assert summary.events > 0
    return elapsed


def best_of(makers: dict, rounds: int, run: Callable[[Any], float]) -> dict:
    best = {name: float("inf") for name in makers}
    for _ in range(rounds):
        for name, maker in makers.items():
            best[name] = min(best[name], run(maker()))
    return best


def files(subjects: int, ticks: int, rounds: int) -> List[Row]:
    with tempfile.TemporaryDirectory() as directory:
        plain_path = os.path.join(directory, "plain.jsonl")
        changes_path = os.path.join(directory, "changes.jsonl")
        makers = {
            "plain": lambda: FileSink(plain_path, user_row),
            "envelope": lambda: ChangeEventSink(
                FileSink(changes_path, envelope_row), key="user_id"
            ),
        }
        best = best_of(
            makers, rounds, lambda sink: run_once(sink, subjects, ticks, time.process_time)
        )
    ratio = best["plain"] / best["envelope"]
    return [
        (
            f"Debezium envelopes into JSON Lines vs plain records ({subjects:,} users x "
            f"{ticks} ticks, rate)",
            f"{best['envelope']:.2f} s",
            f"{best['plain']:.2f} s",
            ratio,
            f">= {TARGET}x",
            ratio >= TARGET,
        )
    ]


def _tables(engine: Any) -> Tuple[str, str]:
    import sqlalchemy as sa

    suffix = uuid.uuid4().hex[:10]
    metadata = sa.MetaData()
    events = sa.Table(
        f"bench_append_{suffix}",
        metadata,
        sa.Column("timestamp", sa.BigInteger),
        sa.Column("user_id", sa.Integer),
        sa.Column("balance", sa.BigInteger),
        sa.Column("loan_balance", sa.BigInteger),
        sa.Column("event", sa.String(64)),
    )
    users = sa.Table(
        f"bench_upsert_{suffix}",
        metadata,
        sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("balance", sa.BigInteger),
        sa.Column("loan_balance", sa.BigInteger),
        sa.Column("state", sa.String(64)),
    )
    metadata.create_all(engine)
    return events.name, users.name


def postgres(subjects: int, ticks: int, rounds: int) -> List[Row]:
    from doge_datagen.sinks.cdc import change_row
    from doge_datagen.sinks.db import DbSink, _create_engine

    engine = _create_engine(POSTGRES_URL, {})  # with the driver installed, as the sink
    append_table, upsert_table = _tables(engine)
    try:
        makers = {
            "append": lambda: DbSink(POSTGRES_URL, append_table, user_row),
            "upsert": lambda: ChangeEventSink(
                DbSink(POSTGRES_URL, upsert_table, change_row, mode="upsert", key="user_id"),
                key="user_id",
            ),
        }
        best = best_of(
            makers, rounds, lambda sink: run_once(sink, subjects, ticks, time.perf_counter)
        )
    finally:
        with engine.begin() as conn:
            for name in (append_table, upsert_table):
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')
        engine.dispose()
    ratio = best["append"] / best["upsert"]
    return [
        (
            f"DB sink upsert mode vs append mode, PostgreSQL ({subjects:,} users x {ticks} "
            "ticks, rate)",
            f"{best['upsert']:.2f} s",
            f"{best['append']:.2f} s",
            ratio,
            f">= {TARGET}x",
            ratio >= TARGET,
        )
    ]


def run(subjects: int, ticks: int, rounds: int) -> List[Row]:
    return files(subjects, ticks, rounds) + postgres(subjects, ticks, rounds)


def main(argv: Any = None) -> List[Row]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=20_000)
    parser.add_argument("--ticks", type=int, default=1440)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    rows = run(args.subjects, args.ticks, args.rounds)
    print_table(rows)
    return rows


if __name__ == "__main__":
    rows = main()
    sys.exit(0 if all(row[5] for row in rows) else 1)
