"""The banking model written to a Parquet file with typed columns.

    python examples/doge_parquet_example.py [--output FILE] [--row-group-size N]
        [--subjects N] [--ticks N] [--seed S]

Writes ``doge_events.parquet`` by default (replaced if it exists). Read it back with
``pyarrow.parquet.read_table('doge_events.parquet')`` or ``polars.read_parquet(...)``.
"""

import argparse
import sys

from doge_example_common import add_run_arguments, run_into, user_row

from doge_datagen import ParquetSink

SCHEMA = {
    "timestamp": "int64",
    "user_id": "int32",
    "balance": "int64",
    "loan_balance": "int64",
    "event": "string",
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", default="doge_events.parquet")
    parser.add_argument("--row-group-size", type=int, default=65536)
    add_run_arguments(parser)
    args = parser.parse_args()

    sink = ParquetSink(args.output, user_row, SCHEMA, row_group_size=args.row_group_size)
    return run_into(sink, args)


if __name__ == "__main__":
    sys.exit(main())
