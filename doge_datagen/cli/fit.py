"""``doge-datagen fit``: fit a model to a JSON Lines or CSV event log, print the table and
write the model as a module or as a model file.

    doge-datagen fit events.jsonl --tick-ms 60000 --subject user_id --timestamp ts \\
        --from-state from_state --to-state to_state --trigger event [--hourly] -o model.py
    doge-datagen fit states.csv --tick-ms 60000 --subject user_id --timestamp ts --state state
    doge-datagen fit events.jsonl ... --format yaml > model.yaml

``--format`` names the log's format (``jsonl``, ``csv``) as it always has; its values
``yaml`` and ``python``, which no log is read in, name the model's instead (as
``--output-format`` does), so that ``--format yaml`` asks for a model file.

Kept apart from ``cli.py`` so that the command's options live beside what they drive.
"""

import argparse
import sys
from typing import Any, Optional, Tuple

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


#: ``--format`` values that name the log's format; the others name the model's.
INPUT_FORMATS = ("jsonl", "csv")
#: ``--output-format`` values, and the -o suffixes that choose one when it is not given.
OUTPUT_FORMATS = ("python", "yaml")
_SUFFIXES = {".py": "python", ".yaml": "yaml", ".yml": "yaml"}


def _formats(args: argparse.Namespace) -> Tuple[Optional[str], str]:
    """The log's format (None: by suffix) and the model's (``python`` or ``yaml``)."""
    from doge_datagen.cli._common import UsageError

    log_format, output_format = args.format, args.output_format
    if log_format in OUTPUT_FORMATS:
        if output_format is not None and output_format != log_format:
            raise UsageError(
                f"--format {log_format} and --output-format {output_format} name two formats "
                "for the model; give one"
            )
        log_format, output_format = None, log_format
    by_suffix = None
    if args.output:
        by_suffix = next(
            (kind for suffix, kind in _SUFFIXES.items() if args.output.lower().endswith(suffix)),
            None,
        )
    if output_format is None:
        output_format = by_suffix or "python"
    elif by_suffix is not None and by_suffix != output_format:
        raise UsageError(
            f"-o {args.output} names a {'model file' if by_suffix == 'yaml' else 'Python module'}"
            f" but the format asked for is {output_format}"
        )
    return log_format, output_format


def cmd_fit(args: argparse.Namespace) -> int:
    from doge_datagen.fit.fitter import fit_events, read_events

    log_format, output_format = _formats(args)
    if args.state is None and (args.from_state is None or args.to_state is None):
        from doge_datagen.cli._common import UsageError

        raise UsageError(
            "say how to read the log: --state FIELD (a log of states) or --from-state FIELD "
            "and --to-state FIELD (a log of transitions), with --trigger FIELD optionally"
        )
    model = fit_events(
        read_events(args.events, format=log_format),
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
    if not args.output and output_format == "yaml":
        # The model file on standard output (fit ... --format yaml > model.yaml), the table
        # beside it on standard error.
        from doge_datagen.modelfile.fitted import fitted_model_text

        print(model.table(), file=sys.stderr)
        sys.stdout.write(fitted_model_text(model))
        return 0
    print(model.table())
    if args.output:
        from doge_datagen.cli._common import make_parent_directory

        make_parent_directory(args.output)
        if output_format == "yaml":
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
        "as a module that 'doge-datagen run MODULE.py:build' runs, or as a model file "
        "(--format yaml, or -o MODEL.yaml) that 'doge-datagen run MODEL.yaml' runs. The log "
        "is read once, streaming; each subject's rows must be in time order.",
        epilog=FIT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("events", metavar="EVENTS", help="a .jsonl or .csv file")
    fit.add_argument(
        "--format",
        choices=INPUT_FORMATS + OUTPUT_FORMATS,
        help="jsonl or csv: the log's format (default: by suffix); yaml or python: the "
        "model's, as --output-format",
    )
    fit.add_argument(
        "--output-format",
        choices=OUTPUT_FORMATS,
        help="write the model as a Python module (python) or as a model file that "
        "'doge-datagen run FILE.yaml' runs (yaml); default: by the suffix of -o (.yaml, .yml), "
        "else python. A model file without -o goes to standard output, the table to "
        "standard error",
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
        help="write the model there: a Python module, or a model file for a .yaml path or "
        "with --format yaml",
    )
    fit.set_defaults(handler=cmd_fit)
    return fit
