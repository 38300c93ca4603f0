"""The banking model written to a SQL table through DbSinkFactory.

    python examples/doge_db_example.py [--db-url URL] [--table events]
                                       [--subjects N] [--ticks N] [--seed S]

The database URL comes from ``--db-url``, else from the ``DOGE_DB_URL`` environment variable,
else it is ``sqlite:///doge_events.db`` (a file in the current directory). Examples:

    postgresql://postgres:postgres@localhost:5432/postgres
    mysql+pymysql://root@localhost:3306/test

The sink writes into an existing table and never creates one: this script creates the table
(``events`` by default) if it is missing, with an autoincrement ``id`` and one column per key
of ``row_mapper_function``. Rows already in the table stay; each run adds its own.
"""

import argparse
import os
from typing import Any, Dict

from doge_example_common import User, banking_into

from doge_datagen import DbSinkFactory, Transition

DEFAULT_URL = "sqlite:///doge_events.db"


def row_mapper_function(timestamp: int, subject: User, transition: Transition) -> Dict[str, Any]:
    row = {
        "timestamp": timestamp,
        "user_id": subject.user_id,
        "balance": subject.balance,
        "loan_balance": subject.loan_balance,
        "event": transition.trigger,
    }
    return row


def create_events_table(engine: Any, table_name: str) -> None:
    """Create the table the rows go to, unless it exists."""
    from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table

    Table(
        table_name,
        MetaData(),
        Column(
            "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        Column("timestamp", BigInteger, nullable=False),
        Column("user_id", Integer, nullable=False),
        Column("balance", BigInteger, nullable=False),
        Column("loan_balance", BigInteger, nullable=False),
        Column("event", String(64), nullable=False),
    ).create(engine, checkfirst=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--db-url",
        default=os.environ.get("DOGE_DB_URL", DEFAULT_URL),
        help="database URL (default: $DOGE_DB_URL or %(default)s)",
    )
    parser.add_argument("--table", default="events")
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()

    factory = DbSinkFactory(args.db_url)
    create_events_table(factory.engine, args.table)
    sink = factory.create(args.table, row_mapper_function)
    datagen = banking_into(sink, subjects_num=args.subjects, ticks_num=args.ticks, seed=args.seed)
    summary = datagen.start()
    factory.close()
    print(summary)
    print(f"{sink.written} rows written to {args.table!r} in {factory.url}")


if __name__ == "__main__":
    main()
