"""Render the analysis pictures of the banking demo: the expected events per hour over a week
with what a week-long run produced laid over it, and the state graph annotated with long-run
shares and expected events per second.

python examples/doge_analysis_example.py [--out doc] [--subjects 1000] [--seed 1]

Writes OUT/rates-week.png and OUT/states-annotated.png (the images of the README).
"""

import argparse
import os
import tempfile

from doge_datagen import DataOnlineGeneratorGrapher
from doge_datagen.analysis.plots import plot_rates
from doge_datagen.demo import demo_model, user_row
from doge_datagen.sinks.file import FileSink

WEEK_TICKS = 7 * 24 * 60  # one-minute ticks


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="doc", help="directory of the pictures")
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    datagen = demo_model(args.subjects, WEEK_TICKS, seed=args.seed, day=True)
    analysis = datagen.analyze()
    graph = DataOnlineGeneratorGrapher(datagen)
    annotated = graph.render(os.path.join(args.out, "states-annotated.png"), annotate=True)
    print(f"annotated state graph written to {annotated}")

    # A week of the same model into a JSON Lines file, laid over the expected curves.
    with tempfile.TemporaryDirectory() as tmp:
        events = os.path.join(tmp, "events.jsonl")
        sink = FileSink(events, user_row, format="jsonl")
        for transition in datagen.transitions:
            transition.event_sinks = [sink]
        summary = datagen.start()
        print(f"{summary.events} events in a week, {summary.vetoed} vetoed by callbacks")
        rates = plot_rates(
            analysis,
            os.path.join(args.out, "rates-week.png"),
            observed=events,
            triggers=["login", "spending", "open_loan_screen", "income", "take_loan"],
            title=f"Banking demo, {args.subjects:,} users: expected events per hour "
            "(lines) and one seeded week (dots)",
        )
    print(f"rate plot written to {rates}")


if __name__ == "__main__":
    main()
