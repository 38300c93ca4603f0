"""The banking model written to JSON Lines files, one file per kind of event.

    python examples/doge_file_example.py [--output-dir doge_events] [--format jsonl|csv]
                                         [--subjects N] [--ticks N] [--seed S]

Writes ``clickstream``, ``trx``, ``balance`` and ``loan`` files (``.jsonl``, or ``.csv`` with
``--format csv``) into the output directory, which is created if missing. Existing files are
replaced.
"""

import argparse

from doge_example_common import create_example_data_online_generator, user_row

from doge_datagen import FileSinkFactory

STREAMS = ("clickstream", "trx", "balance", "loan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output-dir", default="doge_events")
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()

    factory = FileSinkFactory(args.output_dir, format=args.format)
    clickstream, trx, balance, loan = (factory.create(name, user_row) for name in STREAMS)
    datagen = create_example_data_online_generator(
        clickstream,
        trx,
        balance,
        loan,
        subjects_num=args.subjects,
        ticks_num=args.ticks,
        seed=args.seed,
    )
    print(datagen.start())


if __name__ == "__main__":
    main()
