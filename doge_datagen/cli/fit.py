"""``doge-datagen fit``: fit a model to a JSON Lines or CSV event log, print the table and
write the model as a module.

    doge-datagen fit events.jsonl --tick-ms 60000 --subject user_id --timestamp ts \\
        --from-state from_state --to-state to_state --trigger event [--hourly] -o model.py
    doge-datagen fit states.csv --tick-ms 60000 --subject user_id --timestamp ts --state state

Kept apart from ``cli.py`` so that the command's options live beside what they drive.
"""

import argparse
import sys
from typing import Any

from doge_datagen.cli._common import positive_count_argument

__all__ = ["add_fit_parser", "cmd_fit"]


#: The end of ``fit --help``: commands that run as written, in this order, in an empty
#: directory (the first writes the log the others read).
FIT_EXAMPLES = """\
examples:
  doge-datagen demo --day --sink jsonl:events.jsonl --subjects 200 --ticks 1440 --seed 1
  doge-datagen fit events.jsonl --tick-ms 60000 --subject user_id --timestamp timestamp \\
      --from-state from_state --to-state to_state --trigger event \\
      --subjects 200 --initial-state offline --hourly -o model.py
  doge-datagen run model.py:build --ticks 60 --seed 2
"""


def _moment(text: str) -> Any:
    """Epoch milliseconds, or an ISO 8601 date-time (naive means UTC)."""
    try:
        return int(text)
    except ValueError:
        pass
    from datetime import datetime

    try:
        return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither epoch milliseconds nor an ISO 8601 date-time"
        ) from None


def cmd_fit(args: argparse.Namespace) -> int:
    from doge_datagen.fit.fitter import fit_events, read_events

    if args.state is None and (args.from_state is None or args.to_state is None):
        from doge_datagen.cli._common import UsageError

        raise UsageError(
            "say how to read the log: --state FIELD (a log of states) or --from-state FIELD "
            "and --to-state FIELD (a log of transitions), with --trigger FIELD optionally"
        )
    model = fit_events(
        read_events(args.events, format=args.format),
        tick_ms=args.tick_ms,
        subject=args.subject,
        timestamp=args.timestamp,
        state=args.state,
        from_state=args.from_state,
        to_state=args.to_state,
        trigger=args.trigger,
        start=args.start,
        end=args.end,
        initial_state=args.initial_state,
        subjects=args.subjects,
        hourly=args.hourly,
        weekly=args.weekly,
    )
    print(model.table())
    if args.output:
        from doge_datagen.cli._common import make_parent_directory

        make_parent_directory(args.output)
        if args.output.lower().endswith((".yaml", ".yml")):
            from doge_datagen.modelfile.fitted import write_fitted_model

            path = write_fitted_model(model, args.output)
            print(f"model written to {path}; run it with: doge-datagen run {path}", file=sys.stderr)
            return 0
        path = model.to_python(args.output)
        print(
            f"model written to {path}; run it with: doge-datagen run {path}:build",
            file=sys.stderr,
        )
    return 0


def add_fit_parser(commands: Any) -> argparse.ArgumentParser:
    fit = commands.add_parser(
        "fit",
        help="fit a model to an event log (JSON Lines or CSV)",
        description="Estimate each transition's per-tick probability (maximum likelihood, "
        "with a 95% Wilson interval) from a log of transitions (--from-state/--to-state, "
        "optionally --trigger) or of states (--state), print the table and write the model "
        "as a module that 'doge-datagen run MODULE.py:build' runs. The file is read once, "
        "streaming; each subject's rows must be in time order.",
        epilog=FIT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("events", metavar="EVENTS", help="a .jsonl or .csv file")
    fit.add_argument(
        "--format", choices=("jsonl", "csv"), help="the file's format (default: by suffix)"
    )
    fit.add_argument(
        "--tick-ms", type=positive_count_argument, required=True, help="the model's tick"
    )
    fit.add_argument("--subject", required=True, metavar="FIELD", help="who (e.g. user_id)")
    fit.add_argument(
        "--timestamp",
        required=True,
        metavar="FIELD",
        help="when: epoch milliseconds or ISO 8601 (naive means UTC)",
    )
    fit.add_argument("--state", metavar="FIELD", help="a log of states: the state field")
    fit.add_argument("--from-state", metavar="FIELD", help="a log of transitions: from")
    fit.add_argument("--to-state", metavar="FIELD", help="a log of transitions: to")
    fit.add_argument("--trigger", metavar="FIELD", help="the event's name (default: 'from->to')")
    fit.add_argument(
        "--initial-state",
        metavar="STATE",
        help="where subjects are before their first row (logs of states) and where the "
        "subjects that never appear stay (see --subjects)",
    )
    fit.add_argument(
        "--subjects",
        type=positive_count_argument,
        metavar="N",
        help="the population, when subjects that never moved are absent from the log",
    )
    fit.add_argument("--start", type=_moment, help="the window's first tick (default: first row)")
    fit.add_argument(
        "--end", type=_moment, help="the window's end, exclusive (default: after the last row)"
    )
    fit.add_argument("--hourly", action="store_true", help="fit an hourly profile (UTC)")
    fit.add_argument(
        "--weekly", action="store_true", help="fit a profile per hour of the week (UTC)"
    )
    fit.add_argument(
        "-o",
        "--output",
        metavar="MODEL.py|MODEL.yaml",
        help="write the model there: a Python module, or a model file for a .yaml path",
    )
    fit.set_defaults(handler=cmd_fit)
    return fit
