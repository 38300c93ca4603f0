"""The ``doge-datagen`` command (also ``python -m doge_datagen``).

    doge-datagen demo [--sink URL ...] [--out DIR] [run options]
    doge-datagen run MODULE:FUNCTION [run options]
    doge-datagen graph MODULE:FUNCTION -o states.png

Run options: ``--subjects N --ticks N --seed S --speed X --forever --progress/--no-progress``.
Errors are reported as one line on standard error with a non-zero exit status.
"""

import argparse
import importlib
import importlib.util
import json
import os
import sqlite3
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple
from urllib.parse import parse_qs, urlsplit

from doge_datagen.demo import STREAMS, banking_generator, user_row
from doge_datagen.doge import DataOnlineGenerator, EventSink, RunSummary, Transition
from doge_datagen.errors import DogeError
from doge_datagen.memory_sink import CountingSink

SINK_HELP = """\
sink URLs:
  jsonl:PATH                     JSON Lines file
  csv:PATH                       CSV file with a header
  sqlite:///PATH                 SQLite database (table 'events', created if missing)
  postgresql://USER@HOST/DB      PostgreSQL (table 'events', created if missing)
  mysql+pymysql://USER@HOST/DB   MariaDB or MySQL (likewise)
  kafka://HOST:PORT/TOPIC        Kafka, JSON values keyed by user id
  print:                         standard output
Add '?table=NAME' to a database URL to pick the table.
"""

DEMO_TABLE = "events"


class UsageError(DogeError, ValueError):
    """A command-line argument that makes no sense; reported as one line."""


# -- the demo's records --------------------------------------------------------------------


def event_row(timestamp: int, subject: Any, transition: Transition) -> Dict[str, Any]:
    """A flat record of a banking event: what the demo writes to every sink."""
    row = user_row(timestamp, subject, transition)
    row["event"] = transition.trigger.strip()
    row["from_state"] = transition.from_state
    row["to_state"] = transition.to_state
    return row


def event_key(subject: Any, transition: Transition) -> str:
    return str(subject.user_id)


def event_json(timestamp: int, subject: Any, transition: Transition) -> str:
    return json.dumps(event_row(timestamp, subject, transition))


_CREATE_EVENTS = (
    "CREATE TABLE IF NOT EXISTS {table} (timestamp BIGINT NOT NULL, user_id BIGINT NOT NULL, "
    "balance BIGINT NOT NULL, loan_balance BIGINT NOT NULL, event VARCHAR(64) NOT NULL, "
    "from_state VARCHAR(64) NOT NULL, to_state VARCHAR(64) NOT NULL)"
)


def ensure_events_table(engine: Any, table: str) -> None:
    """The demo's table, created if missing (sinks themselves never create tables)."""
    if not table.replace("_", "").isalnum():
        raise UsageError(f"table name {table!r} must be letters, digits and underscores")
    from sqlalchemy import text

    with engine.begin() as connection:
        connection.execute(text(_CREATE_EVENTS.format(table=table)))


# -- sinks from URLs ----------------------------------------------------------------------


class _SinkBuilder:
    """Turns sink URLs into sinks; keeps the factories so they can be closed at the end."""

    def __init__(self) -> None:
        self.factories: List[Any] = []

    def build(self, url: str) -> EventSink:
        scheme, _, rest = url.partition(":")
        scheme = scheme.lower()
        if scheme in ("jsonl", "csv"):
            if not rest:
                raise UsageError(f"sink {url!r}: give a path, e.g. {scheme}:events.{scheme}")
            from doge_datagen.file_sink import FileSink

            path = os.path.abspath(rest)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return FileSink(path, event_row, format=scheme)
        if scheme == "print":
            from doge_datagen.printing_sink import PrintingSink

            return PrintingSink(event_json)
        if scheme == "kafka":
            parts = urlsplit(url)
            topic = parts.path.lstrip("/")
            if not parts.netloc or not topic:
                raise UsageError(f"sink {url!r}: expected kafka://HOST:PORT/TOPIC")
            from doge_datagen.kafka_sink_factory import KafkaSinkFactory

            factory = KafkaSinkFactory(parts.netloc, "doge-datagen")
            return factory.create(topic, event_key, event_json)
        if scheme.split("+")[0] in ("sqlite", "postgresql", "postgres", "mysql", "mariadb"):
            db_url, table = _split_table(url)
            from doge_datagen.db_sink_factory import DbSinkFactory

            db_factory = DbSinkFactory(db_url)
            self.factories.append(db_factory)
            ensure_events_table(db_factory.engine, table)
            return db_factory.create(table, event_row)
        raise UsageError(f"unknown sink {url!r}; see 'doge-datagen demo --help' for the forms")

    def close(self) -> None:
        for factory in self.factories:
            factory.close()


def _split_table(url: str) -> Tuple[str, str]:
    """Take ``table=NAME`` out of a database URL's query; the rest stays as written."""
    base, sep, query = url.partition("?")
    if url.startswith("postgres://"):
        base = "postgresql://" + base[len("postgres://") :]
    params = parse_qs(query, keep_blank_values=True) if sep else {}
    table = params.pop("table", [DEMO_TABLE])[-1]
    rest = "&".join(f"{k}={v}" for k, values in params.items() for v in values)
    return (f"{base}?{rest}" if rest else base), table


def default_sinks(out_dir: str, builder: _SinkBuilder) -> Tuple[List[EventSink], EventSink]:
    """The embedded defaults: a JSON Lines file per stream, and every event in SQLite."""
    os.makedirs(out_dir, exist_ok=True)
    files = [builder.build(f"jsonl:{os.path.join(out_dir, stream)}.jsonl") for stream in STREAMS]
    return files, builder.build(f"sqlite:///{os.path.join(out_dir, 'events.db')}")


# -- loading a user's model ---------------------------------------------------------------


def load_function(spec: str) -> Callable[..., Any]:
    """``package.module:function`` or ``path/to/file.py:function``."""
    module_name, sep, function_name = spec.rpartition(":")
    if not sep or not module_name or not function_name:
        raise UsageError(f"{spec!r}: expected MODULE:FUNCTION, e.g. my_models:build")
    if module_name.endswith(".py") or os.sep in module_name:
        path = os.path.abspath(module_name)
        if not os.path.isfile(path):
            raise UsageError(f"{spec!r}: no file {module_name!r}")
        module_spec = importlib.util.spec_from_file_location(
            os.path.splitext(os.path.basename(path))[0], path
        )
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, os.path.dirname(path))
        module_spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise UsageError(f"{spec!r}: cannot import module {module_name!r} ({exc})") from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UsageError(f"{spec!r}: module {module_name!r} has no function {function_name!r}")
    return function


def load_generator(spec: str) -> DataOnlineGenerator:
    datagen = load_function(spec)()
    if not isinstance(datagen, DataOnlineGenerator):
        raise UsageError(f"{spec!r} returned {type(datagen).__name__}, not a DataOnlineGenerator")
    return datagen


# -- running and reporting ----------------------------------------------------------------


def apply_run_options(datagen: DataOnlineGenerator, args: argparse.Namespace) -> None:
    if args.subjects is not None:
        datagen.subjects_num = args.subjects
    if args.forever:
        datagen.ticks_num = None
    elif args.ticks is not None:
        datagen.ticks_num = args.ticks
    if args.seed is not None:
        datagen.seed = args.seed


def print_summary(summary: RunSummary, file: TextIO) -> None:
    rate = summary.events_per_second
    stopped = " (stopped)" if summary.stopped else ""
    print(
        f"{summary.events} events from {summary.subjects} subjects over {summary.ticks} ticks"
        f"{stopped} in {summary.elapsed_seconds:.2f} s ({rate:,.0f} events/s), "
        f"seed {summary.seed!r}",
        file=file,
    )
    rows = [("trigger", "events", "vetoed")] + [
        (name, str(n), str(summary.vetoed_per_trigger.get(name, 0)))
        for name, n in summary.events_per_trigger.items()
    ]
    _table(rows, file)
    sink_rows = [("sink", "events", "delivered", "failed")]
    for name, n in summary.events_per_sink.items():
        delivery = summary.delivery.get(name)
        sink_rows.append(
            (
                name,
                str(n),
                str(delivery["delivered"]) if delivery else "-",
                str(delivery["failed"]) if delivery else "-",
            )
        )
    _table(sink_rows, file)
    if summary.lag is not None:
        print(str(summary.lag), file=file)


def _table(rows: Sequence[Sequence[str]], file: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ]
        print("  " + "  ".join(cells), file=file)
        if k == 0:
            print("  " + "  ".join("-" * w for w in widths), file=file)


def _run(datagen: DataOnlineGenerator, args: argparse.Namespace) -> RunSummary:
    apply_run_options(datagen, args)
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    summary = datagen.start(speed=args.speed, progress=progress)
    print_summary(summary, sys.stdout)
    return summary


def cmd_demo(args: argparse.Namespace) -> int:
    builder = _SinkBuilder()
    try:
        if args.sink:
            chosen = [builder.build(url) for url in args.sink]
            placeholder: EventSink = CountingSink()
            streams: List[EventSink] = [placeholder] * len(STREAMS)
            where = ", ".join(args.sink)
        else:
            streams, database = default_sinks(args.out, builder)
            chosen = [database]
            where = f"{args.out}/ ({', '.join(s + '.jsonl' for s in STREAMS)}, events.db)"
        clickstream, trx, balance, loan = streams
        datagen = banking_generator(
            clickstream,
            trx,
            balance,
            loan,
            subjects_num=1000 if args.subjects is None else args.subjects,
            ticks_num=args.ticks,
            timestamp_start=demo_start(args),
            seed=args.seed,
        )
        # Every move (logouts too) reaches each chosen sink exactly once.
        for transition in datagen.transitions:
            if args.sink:
                transition.event_sinks = list(chosen)
            else:
                transition.event_sinks.extend(chosen)
        print(f"banking demo writing to {where}", file=sys.stderr)
        _run(datagen, args)
    finally:
        builder.close()
    return 0


def demo_start(args: argparse.Namespace) -> int:
    """Epoch ms of the demo's first tick: --timestamp-start, else the current minute.

    (Kafka reads a record timestamp of 0 as "now", so the demo does not start at epoch 0.)
    """
    if args.timestamp_start is not None:
        return int(args.timestamp_start)
    return int(time.time()) // 60 * 60_000


def cmd_run(args: argparse.Namespace) -> int:
    _run(load_generator(args.model), args)
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from doge_datagen.graph import DataOnlineGeneratorGrapher

    path = DataOnlineGeneratorGrapher(load_generator(args.model)).render(args.output)
    print(f"state graph written to {path}")
    return 0


def _add_run_options(parser: argparse.ArgumentParser, ticks_default: Optional[int]) -> None:
    group = parser.add_argument_group("run options")
    group.add_argument("--subjects", type=_count, help="number of subjects")
    group.add_argument(
        "--ticks",
        type=_count,
        default=ticks_default,
        help=f"number of ticks (default {ticks_default})",
    )
    group.add_argument("--seed", type=int, help="seed for a reproducible run")
    group.add_argument(
        "--speed",
        type=_positive_float,
        help="pace the run: 1 = real time, 60 = one simulated minute per second",
    )
    group.add_argument(
        "--forever", action="store_true", help="run until SIGINT or SIGTERM (Ctrl-C)"
    )
    group.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress on stderr (default: when stderr is a terminal)",
    )


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="doge-datagen",
        description="Simulate actors with a probabilistic state machine and stream their events.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run the banking model into files and SQLite, or into the sinks you name",
        description="Run the banking model of the README. Without --sink, events go to JSON Lines "
        "files (one per stream) and a SQLite database under --out; with --sink, every event goes "
        "to each sink named.",
        epilog=SINK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--sink", action="append", metavar="URL", help="where events go (repeatable)")
    demo.add_argument("--out", default="doge-demo-out", help="directory of the default sinks")
    demo.add_argument(
        "--timestamp-start",
        type=_count,
        metavar="MS",
        help="epoch milliseconds of the first tick (default: the current minute)",
    )
    _add_run_options(demo, ticks_default=1440)
    demo.set_defaults(handler=cmd_demo)

    run = commands.add_parser(
        "run",
        help="run your own model",
        description="Run the DataOnlineGenerator returned by FUNCTION() of MODULE "
        "(a module name or a .py file).",
    )
    run.add_argument("model", metavar="MODULE:FUNCTION")
    _add_run_options(run, ticks_default=None)
    run.set_defaults(handler=cmd_run)

    graph = commands.add_parser(
        "graph",
        help="render a model's state graph",
        description="Render the state graph of the DataOnlineGenerator returned by FUNCTION().",
    )
    graph.add_argument("model", metavar="MODULE:FUNCTION")
    graph.add_argument("-o", "--output", default="states.png", help="a .png or .svg path")
    graph.set_defaults(handler=cmd_graph)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("doge-datagen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (``doge-datagen demo | head``): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (DogeError, ValueError, ImportError, OSError, sqlite3.Error) as exc:
        print(f"doge-datagen: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # a database or broker client error: still one line
        print(f"doge-datagen: error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
