"""The banking model printed to standard output.

python examples/doge_printing_example.py [--subjects N] [--ticks N] [--seed S]
"""

import argparse

from doge_example_common import User, banking_into

from doge_datagen import PrintingSink, Transition


def format_function(timestamp: int, user: User, transition: Transition) -> str:
    return (
        "[{}] User id: {}, balance: {}, loan_balance: {} made a transition {} from {} to {}".format(
            timestamp,
            user.user_id,
            user.balance,
            user.loan_balance,
            transition.trigger,
            transition.from_state,
            transition.to_state,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    sink = PrintingSink(format_function)
    datagen = banking_into(sink, subjects_num=args.subjects, ticks_num=args.ticks, seed=args.seed)
    datagen.start()


if __name__ == "__main__":
    main()
