"""The ``doge-datagen`` command (also ``python -m doge_datagen``).

    doge-datagen demo [--sink URL ...] [--out DIR] [run options]
    doge-datagen run MODULE:FUNCTION [run options]
    doge-datagen graph MODULE:FUNCTION -o states.png
    doge-datagen fit EVENTS.jsonl --tick-ms MS --subject F --timestamp F ... -o model.py

Run options: ``--subjects N --ticks N --seed S --speed X --forever --progress/--no-progress``.
Errors are reported as one line on standard error (``--debug`` adds the traceback) with a
non-zero exit status; see :data:`EXIT_CODES`. The run summary is printed for every run that
started, failed and stopped ones included: on standard output, or on standard error when
standard output carries the events (``print:``, a file sink on ``/dev/stdout``).
"""

import argparse
import functools
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO

from doge_datagen.cli._common import (
    UsageError,
    count_argument,
    make_parent_directory,
    positive_count_argument,
)
from doge_datagen.cli.fit import add_fit_parser
from doge_datagen.cli.modelfile import (
    add_model_file_commands,
    is_model_file,
    load_model,
    replace_python_sinks,
)
from doge_datagen.core.text import text_table
from doge_datagen.core.types import EventSink, Transition
from doge_datagen.demo import STREAMS, banking_generator, event_line, event_row
from doge_datagen.distributed import loading
from doge_datagen.engine.summary import RunSummary
from doge_datagen.errors import ConfigurationError, DogeError
from doge_datagen.model import DataOnlineGenerator
from doge_datagen.sinks.base import mask_url
from doge_datagen.sinks.memory import CountingSink

SINK_HELP_NOTES = """\
Client settings go in the query string (kafka://H:P/T?security.protocol=SASL_SSL&...).
A database's table is '?table=NAME' (default 'events', created if missing); Kafka keys are
user ids. A secret can come from the environment instead of the URL: 'password_env=VAR' for
the URL's password, 'KEY_env=VAR' for any setting (e.g. 'sasl.password_env=VAR').
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose epilog (URL forms, examples) is shown as written, after the
    wrapped description and options; it may be a function, called only when help is shown."""

    def format_help(self) -> str:
        epilog = self.epilog() if callable(self.epilog) else self.epilog
        self.epilog = None
        try:
            text = super().format_help()
        finally:
            self.epilog = epilog
        return f"{text}\n{epilog}" if epilog else text


def sink_help() -> str:
    """The end of ``demo --help``: every known sink scheme, plug-ins included, then examples."""
    from doge_datagen.sinks.registry import schemes_help

    return f"sink URLs:\n{schemes_help()}\n{SINK_HELP_NOTES}\n{DEMO_EXAMPLES}"


# The end of each command's --help: commands that run as written, from an empty directory
# (the test suite runs every one; the PostgreSQL one against the server it names).
DEMO_EXAMPLES = """\
examples:
  doge-datagen demo --ticks 60 --seed 1 --out demo-out
  doge-datagen demo --sink print: --subjects 10 --ticks 120 --seed 1
  doge-datagen demo --ticks 60 \\
      --sink 'postgresql://postgres:postgres@localhost:5432/postgres?table=demo_events'
"""
RUN_EXAMPLES = """\
examples:
  doge-datagen run doge_datagen.demo:demo_model --ticks 60 --seed 7
  doge-datagen run doge_datagen.demo:day_model --subjects 100 --rate 20000
  doge-datagen run doge_datagen.demo:demo_model --subjects 2000 --ticks 60 --workers 2
"""
GRAPH_EXAMPLES = """\
examples:
  doge-datagen graph doge_datagen.demo:demo_model -o states.png
  doge-datagen graph doge_datagen.demo:day_model --annotate -o states.svg
  doge-datagen graph doge_datagen.demo:demo_model -o states.mmd
"""
ANALYZE_EXAMPLES = """\
examples:
  doge-datagen analyze doge_datagen.demo:demo_model
  doge-datagen analyze doge_datagen.demo:demo_model --forever --format json
  doge-datagen analyze doge_datagen.demo:day_model --plot rates.png
"""


DEMO_TABLE = "events"
DEMO_TICKS = 1440
DEMO_OUT = "doge-demo-out"

#: What the exit status of ``doge-datagen`` means.
EXIT_CODES = {
    0: "the run completed, or a run without a tick limit was stopped by SIGINT or SIGTERM and "
    "every event was delivered",
    1: "an error: a bad model, a sink that could not deliver, a callback that raised",
    2: "bad command-line usage",
    130: "interrupted by SIGINT (Ctrl-C) where it could not stop gracefully: a run with a tick "
    "limit, or a second signal during the graceful stop",
    143: "terminated by SIGTERM likewise",
    141: "standard output was closed by its reader (``| head``): the run ended there, quietly, "
    "its sinks closed",
}

#: Where a demo with --seed and without --timestamp-start starts: Monday 2024-01-01 00:00
#: UTC, so that a seed alone repeats a run (``--timestamp-start now`` starts at this minute).
SEEDED_START_MS = 1_704_067_200_000

#: Seconds ``--dask ADDRESS`` waits for the scheduler to answer, before anything is made.
DASK_CONNECT_SECONDS = 10


# -- the demo's records --------------------------------------------------------------------


def event_key(subject: Any, transition: Transition) -> str:
    return str(subject.user_id)


def event_json(timestamp: int, subject: Any, transition: Transition) -> str:
    return event_line(timestamp, subject, transition)


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


def ensure_named_events_table(engine: Any, table: str) -> None:
    """The table of ``demo --fake``: the demo's, with the users' names and e-mail addresses."""
    if not table.replace("_", "").isalnum():
        raise UsageError(f"table name {table!r} must be letters, digits and underscores")
    from sqlalchemy import text

    create = _CREATE_EVENTS.format(table=table)[:-1]
    with engine.begin() as connection:
        connection.execute(text(f"{create}, name VARCHAR(200), email VARCHAR(200))"))


# -- sinks from URLs ----------------------------------------------------------------------


class _SinkBuilder:
    """Turns sink URLs into sinks through the scheme registry (plug-ins included)."""

    def __init__(self, named: bool = False) -> None:
        from doge_datagen.demo import named_event_row
        from doge_datagen.sinks.registry import Records

        self.records = Records(
            row=named_event_row if named else event_row,
            key=event_key,
            create_table=ensure_named_events_table if named else ensure_events_table,
        )

    def build(self, url: str) -> EventSink:
        from doge_datagen.sinks.registry import SinkURL, SinkURLError, build_sink

        try:
            return build_sink(SinkURL(url), self.records)
        except SinkURLError as exc:  # the URL itself is wrong: a usage error
            raise UsageError(f"{exc}; see 'doge-datagen demo --help' for the forms") from None

    def build_all(self, urls: Sequence[str]) -> List[EventSink]:
        """The sinks of ``urls``, in order, every URL checked before anything is made: first
        the sinks that touch nothing until they open (files, brokers), then the directories
        their files need, then the database sinks, which create their table and read it."""
        from doge_datagen.sinks.registry import SinkURL, SinkURLError, find_scheme
        from doge_datagen.sinks.url_builders import check_db_url

        built: Dict[int, EventSink] = {}
        databases = []
        for k, url in enumerate(urls):
            try:
                parsed = SinkURL(url)
                if find_scheme(parsed.scheme).build == "doge_datagen.sinks.url_builders:build_db":
                    check_db_url(parsed)
                    databases.append(k)
                    continue
            except SinkURLError:
                pass  # reported by build(), with the scheme's own words
            built[k] = self.build(url)
        for url in urls:
            target = sink_target(url)
            if target is not None:
                make_parent_directory(target)
        for k in databases:
            built[k] = self.build(urls[k])
        return [built[k] for k in range(len(urls))]

    def close(self) -> None:
        """Nothing to release: each sink releases its client when it closes."""


def sink_target(url: str) -> Optional[str]:
    """What a sink URL writes to, for telling two sinks on one target apart: the resolved
    path of a file (``jsonl:``, ``csv:``, ``sqlite:///``), else ``None`` (servers)."""
    scheme, _, rest = url.partition(":")
    scheme = scheme.lower()
    rest = rest.partition("?")[0]
    if scheme in ("jsonl", "csv", "parquet") and rest:
        return os.path.realpath(rest)
    if scheme.split("+")[0] == "sqlite" and rest.startswith("///") and len(rest) > 3:
        return os.path.realpath(rest[3:])
    return None


def check_distinct_targets(urls: Sequence[str]) -> None:
    """Two sinks writing to one file would overwrite each other while the summary counted
    both as delivered: refuse them before anything is opened."""
    seen: Dict[str, str] = {}
    for url in urls:
        target = sink_target(url)
        if target is None:
            continue
        if target in seen and not _is_stdout(target):
            raise UsageError(
                f"sinks {seen[target]!r} and {url!r} both write to {target!r}; "
                "give each sink its own file"
            )
        seen.setdefault(target, url)


def _is_stdout(path: str) -> bool:
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):
        return False


def default_sink_urls(out_dir: str) -> List[str]:
    """The embedded defaults: a JSON Lines file per stream (in :data:`STREAMS`' order), and
    every event in SQLite."""
    files = [f"jsonl:{os.path.join(out_dir, stream)}.jsonl" for stream in STREAMS]
    return [*files, f"sqlite:///{os.path.join(out_dir, 'events.db')}"]


# -- loading a user's model ---------------------------------------------------------------


def load_function(spec: str) -> Callable[..., Any]:
    """``package.module:function`` (found from the current directory too, as ``python -m``
    finds it) or ``path/to/file.py:function`` (:mod:`doge_datagen.loading`)."""
    if not loading.is_file(spec.rpartition(":")[0]) and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return loading.load_function(spec)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from exc


def load_generator(spec: str, args: Any = None, sinks: bool = True) -> DataOnlineGenerator:
    """The model ``spec``'s function builds. A spec that names nothing is a usage error (2);
    a function that raises or builds something else is a bad model (1). A model file
    (``FILE.yaml``, ``FILE.json``) is loaded with the command's options (``args``)."""
    if is_model_file(spec):
        return load_model(spec, args, sinks=sinks)
    datagen = load_function(spec)()
    if not isinstance(datagen, DataOnlineGenerator):
        raise ConfigurationError(
            f"{spec!r} returned {type(datagen).__name__}, not a DataOnlineGenerator"
        )
    if sinks and getattr(args, "sink", None):
        replace_python_sinks(datagen, args.sink)
    return datagen


# -- running and reporting ----------------------------------------------------------------


def check_run_options(args: argparse.Namespace) -> None:
    """Refuse options that contradict each other instead of silently picking one."""
    if args.forever and args.ticks is not None:
        raise UsageError("--forever and --ticks contradict each other: give one of them")
    if getattr(args, "rate", None) is not None and args.speed is not None:
        raise UsageError("--rate and --speed contradict each other: give one of them")
    if getattr(args, "sink", None) and getattr(args, "out", None) is not None:
        raise UsageError(
            "--out names the directory of the default sinks, which --sink replaces: "
            "give one of them"
        )
    resume = getattr(args, "resume", None)
    if_exists = getattr(args, "if_exists", None)
    if if_exists is not None and sharded(args):
        raise UsageError("--if-exists applies to a run in one process, not to --workers or --dask")
    if if_exists not in (None, "append") and resume is not None:
        raise UsageError(
            f"--if-exists {if_exists} contradicts --resume, which goes on with the data the "
            "sinks hold"
        )
    if getattr(args, "force", False) and resume is None:
        raise UsageError("--force applies to --resume: give --resume PATH")
    if resume is not None:
        # A model built afresh draws a seed of its own, and an unseeded demo starts at the
        # current minute: the resumed run takes the checkpoint's (a shard's file, sharded).
        if sharded(args):
            from doge_datagen.distributed.sharded import stored_run_options as run_options
        else:
            from doge_datagen.engine.checkpoint import run_options

        stored = run_options(resume)
        if args.seed is None:
            args.seed = stored["seed"]
        if hasattr(args, "timestamp_start") and args.timestamp_start is None:
            args.timestamp_start = stored["timestamp_start"]


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
        f"{stopped}{_failed_mark(summary)} in {summary.elapsed_seconds:.2f} s "
        f"({rate:,.0f} events/s), "
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
    for name, appended in summary.appended.items():
        said = "appended to data already there" if appended else "started empty"
        print(f"  {name}: {said}", file=file)
    for name, delivery in summary.delivery.items():
        if "late" in delivery:  # a disordered sink (late=, duplicate=, drop=, truth=)
            truth = (
                f"; truth: {delivery['truth_delivered']} delivered, "
                f"{delivery['truth_failed']} failed"
                if "truth_delivered" in delivery
                else ""
            )
            print(
                f"  {name}: {delivery['late']} late, {delivery['duplicated']} duplicated, "
                f"{delivery['dropped']} dropped{truth}",
                file=file,
            )
    if summary.shards:
        print_shards(summary, file)
    if summary.lag is not None:
        print(str(summary.lag), file=file)
    if summary.rate_asked is not None:
        print(summary.rate_line(), file=file)


def print_shards(summary: RunSummary, file: TextIO) -> None:
    """A sharded run's summary: each shard's row, then the total."""
    rows = [("shard", "subjects", "events", "vetoed", "seconds", "events/s")]
    first = 0
    for k, part in enumerate(summary.shards):
        rows.append(
            (
                str(k),
                f"{first}..{first + part.subjects - 1}" if part.subjects else "-",
                str(part.events),
                str(part.vetoed),
                f"{part.elapsed_seconds:.2f}",
                f"{part.events_per_second:,.0f}",
            )
        )
        first += part.subjects
    rows.append(
        (
            "total",
            str(summary.subjects),
            str(summary.events),
            str(summary.vetoed),
            f"{summary.elapsed_seconds:.2f}",
            f"{summary.events_per_second:,.0f}",
        )
    )
    _table(rows, file)


def _failed_mark(summary: RunSummary) -> str:
    undelivered = sum(
        d.get("failed", 0) + d.get("truth_failed", 0) for d in summary.delivery.values()
    )
    return f" ({undelivered} not delivered)" if undelivered else ""


def _table(rows: Sequence[Sequence[str]], file: TextIO) -> None:
    for line in text_table(rows):
        print(line, file=file)


def stdout_carries_events(datagen: DataOnlineGenerator) -> bool:
    """Whether some sink of the run writes its events to standard output, in which case the
    summary goes to standard error so that a pipe (``| jq .``) gets events only."""
    from doge_datagen.sinks.printing import PrintingSink

    for sink in datagen.sinks:
        if isinstance(sink, PrintingSink):
            target = sink.file
            if target is None or target is sys.stdout or target is sys.__stdout__:
                return True
        path = getattr(sink, "path", None)
        if path is not None and _is_stdout(str(path)):
            return True
    return False


def _run(datagen: DataOnlineGenerator, args: argparse.Namespace) -> RunSummary:
    apply_run_options(datagen, args)
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    report_to = sys.stderr if stdout_carries_events(datagen) else sys.stdout
    try:
        summary = datagen.start(
            speed=args.speed,
            progress=progress,
            metrics=args.metrics,
            rate=getattr(args, "rate", None),
            checkpoint=args.checkpoint,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            force=args.force,
            if_exists=args.if_exists,
        )
    except BaseException as exc:
        # A failed or interrupted run still says what it did and what the sinks delivered;
        # one whose reader closed standard output (``| head``) ends quietly.
        partial = getattr(exc, "summary", None)
        if isinstance(partial, RunSummary) and not _reader_gone(exc):
            _print_summary_safely(partial, report_to)
        raise
    print_summary(summary, report_to)
    return summary


def _reader_gone(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was caused by, a write to a pipe whose reader has gone."""
    seen = 0
    cause: Optional[BaseException] = exc
    while cause is not None and seen < 10:
        if isinstance(cause, BrokenPipeError):
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


def exit_status(summary: Optional[RunSummary], default: int = 0) -> int:
    """0 (or ``default``), unless a second signal cut the graceful stop short: then 130 for
    SIGINT and 143 for SIGTERM, as a shell reports a process ended by that signal."""
    signals = getattr(summary, "signals", None) or []
    if len(signals) >= 2:
        return 128 + int(signals[-1])
    return default


def _print_summary_safely(summary: RunSummary, file: TextIO) -> None:
    try:
        print_summary(summary, file)
        file.flush()
    except (OSError, ValueError):  # the reader is gone: the error line still goes to stderr
        pass


def cmd_demo(args: argparse.Namespace) -> int:
    check_run_options(args)
    if args.sink:
        check_distinct_targets(args.sink)
    if args.out is None:
        args.out = DEMO_OUT
    if args.ticks is None and not args.forever:
        args.ticks = DEMO_TICKS
    # Resolved once, here: every shard of a sharded run starts at the same minute.
    args.timestamp_start = demo_start(args)
    if args.sink:
        where = ", ".join(mask_url(url) for url in args.sink)
    else:
        where = f"{args.out}/ ({', '.join(s + '.jsonl' for s in STREAMS)}, events.db)"
    if sharded(args):
        print(f"banking demo writing to {where}", file=sys.stderr)
        return exit_status(_run_sharded(functools.partial(demo_model, _for_workers(args)), args))
    datagen = demo_model(args)
    print(f"banking demo writing to {where}", file=sys.stderr)
    return exit_status(_run(datagen, args))


def demo_model(args: argparse.Namespace) -> DataOnlineGenerator:
    """The banking model of ``doge-datagen demo ARGS`` with its sinks (nothing is opened).

    A sharded demo calls it in every worker (``functools.partial(demo_model, args)``)."""
    # The model first, with stand-ins for its four streams: a bad option stops the command
    # before any sink, file, directory or table is made.
    clickstream, trx, balance, loan = streams = [CountingSink(stream) for stream in STREAMS]
    datagen = banking_generator(
        clickstream,
        trx,
        balance,
        loan,
        subjects_num=1000 if args.subjects is None else args.subjects,
        ticks_num=args.ticks,
        timestamp_start=demo_start(args),
        seed=args.seed,
        day=args.day,
        tz=args.tz,
        fake=getattr(args, "fake", False),
    )
    named = getattr(args, "fake", False)
    sinks = _SinkBuilder(named).build_all(args.sink or default_sink_urls(args.out))
    # Every move (logouts too) reaches each chosen sink exactly once; without --sink, each
    # stream goes to its file and every move to the database.
    real = {id(stand_in): sink for stand_in, sink in zip(streams, sinks)}
    for transition in datagen.transitions:
        if args.sink:
            transition.event_sinks = list(sinks)
        else:
            transition.event_sinks = [real[id(s)] for s in transition.event_sinks] + sinks[-1:]
    apply_run_options(datagen, args)
    return datagen


def demo_start(args: argparse.Namespace) -> int:
    """Epoch ms of the demo's first tick: --timestamp-start (``now``: the current minute);
    without it, :data:`SEEDED_START_MS` for a seeded run, so that the seed alone repeats it,
    else the current minute.

    (Kafka reads a record timestamp of 0 as "now", so the demo does not start at epoch 0.)
    """
    start = args.timestamp_start
    if start is None and args.seed is not None:
        return SEEDED_START_MS
    if start is None or start == "now":
        return int(time.time()) // 60 * 60_000
    return int(start)


def cmd_run(args: argparse.Namespace) -> int:
    check_run_options(args)
    if sharded(args):
        return exit_status(_run_sharded(functools.partial(run_model, _for_workers(args)), args))
    return exit_status(_run(load_generator(args.model, args), args))


def run_model(args: argparse.Namespace) -> DataOnlineGenerator:
    """The model of ``doge-datagen run MODULE:FUNCTION ARGS``, with the run options applied;
    a sharded run calls it in every worker."""
    datagen = load_generator(args.model, args)
    apply_run_options(datagen, args)
    return datagen


# -- sharded runs -------------------------------------------------------------------------


def sharded(args: argparse.Namespace) -> bool:
    """Whether ``--workers`` or ``--dask`` asks for a sharded run."""
    return args.workers is not None or args.dask is not None


def _for_workers(args: argparse.Namespace) -> argparse.Namespace:
    """The options as the shards' workers get them: without this process's metrics server."""
    return argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "metrics"})


def _run_sharded(build: Callable[[], DataOnlineGenerator], args: argparse.Namespace) -> RunSummary:
    """Run ``build``'s model in shards (``--workers K`` processes, or on ``--dask``)."""
    from doge_datagen.distributed.sharded import run_sharded

    if getattr(args, "rate", None) is not None:
        raise UsageError("--rate is not available with --workers or --dask")
    address = None if args.dask in (None, "local") else args.dask
    # The scheduler is reached first: an address that does not answer stops the command
    # before any sink or table is made.
    threads = _dask_threads(address) if address is not None or args.workers is None else 0
    shards = args.workers if args.workers is not None else threads
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    model = build()
    report_to = sys.stderr if stdout_carries_events(model) else sys.stdout
    try:
        summary = run_sharded(
            build,
            shards=shards,
            backend="processes" if args.dask is None else "dask",
            address=address,
            speed=args.speed,
            progress=progress,
            metrics=args.metrics,
            checkpoint=args.checkpoint,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            force=args.force,
        )
    except BaseException as exc:
        partial = getattr(exc, "summary", None)
        if isinstance(partial, RunSummary):
            _print_summary_safely(partial, report_to)
        raise
    print_summary(summary, report_to)
    if summary.signals and model.ticks_num is not None:
        # The coordinator stopped every shard gracefully; a run with a tick limit that a
        # signal cut short still ends as an interrupted one does without workers (130, 143).
        raise KeyboardInterrupt() if summary.signals[-1] == signal.SIGINT else Terminated()
    return summary


def _dask_threads(address: Optional[str]) -> int:
    """How many shards ``--dask`` without ``--workers`` runs: one per worker thread of the
    cluster at ``address``, or per core for a local cluster."""
    if address is None:
        return os.cpu_count() or 1
    from doge_datagen.distributed.sharded import _dask

    distributed = _dask()
    try:
        with distributed.Client(address, timeout=DASK_CONNECT_SECONDS) as client:
            return max(1, sum(client.nthreads().values()))
    except (OSError, TimeoutError, ValueError, distributed.TimeoutError) as exc:
        raise ConfigurationError(
            f"cannot reach the Dask scheduler at {address!r} within {DASK_CONNECT_SECONDS} s "
            f"({type(exc).__name__}: {_one_line(exc)})"
        ) from exc


def cmd_graph(args: argparse.Namespace) -> int:
    from doge_datagen.analysis.graph import DataOnlineGeneratorGrapher

    datagen = load_generator(args.model, args, sinks=False)
    if args.subjects is not None:
        _refuse_for_world(datagen, "--subjects", "each population has its own size")
        datagen.subjects_num = args.subjects
    make_parent_directory(args.output)
    path = DataOnlineGeneratorGrapher(datagen).render(args.output, annotate=args.annotate)
    print(f"state graph written to {path}")
    return 0


def _add_run_options(parser: argparse.ArgumentParser, ticks_default: Optional[int]) -> None:
    group = parser.add_argument_group("run options")
    group.add_argument("--subjects", type=count_argument, help="number of subjects")
    group.add_argument(
        "--ticks",
        type=count_argument,
        help=f"number of ticks (default {ticks_default or 'from the model'})",
    )
    group.add_argument("--seed", type=int, help="seed for a reproducible run")
    group.add_argument(
        "--speed",
        type=_positive_float,
        help="pace the run: 1 = real time, 60 = one simulated minute per second",
    )
    group.add_argument(
        "--rate",
        type=_positive_float,
        metavar="N",
        help="pace the run so that it produces N events per second, on average (the speed "
        "comes from the model analysis; vetoes by callbacks make it fall short)",
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
    group.add_argument(
        "--metrics-port",
        type=_metrics_address,
        metavar="[HOST:]PORT",
        help="serve Prometheus /metrics, a status page at / and /healthz while the run goes "
        "on, on 127.0.0.1 or on HOST (':PORT' for every interface)",
    )
    group.add_argument(
        "--workers",
        type=positive_count_argument,
        metavar="K",
        help="run in K shards of subjects, one process each (same events as one process); "
        "with --dask, K Dask tasks",
    )
    group.add_argument(
        "--dask",
        metavar="ADDRESS|local",
        help="run the shards on the Dask scheduler at ADDRESS (tcp://HOST:8786), or on a "
        "local cluster; without --workers, one shard per worker thread",
    )
    group.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="write the run's state to PATH every --checkpoint-every seconds and when it "
        "ends or stops (subjects, pending moves, each file's offset); with --workers or "
        "--dask, one file per shard, named as file parts are",
    )
    group.add_argument(
        "--checkpoint-every",
        type=_positive_float,
        default=10.0,
        metavar="S",
        help="seconds between checkpoints (default 10)",
    )
    group.add_argument(
        "--resume",
        metavar="PATH",
        help="go on from the checkpoint at PATH, with the run's other options as they were "
        "(its seed and start unless given); files are cut back to the checkpoint",
    )
    group.add_argument(
        "--force",
        action="store_true",
        help="with --resume: go on even when the model differs from the checkpoint's",
    )
    group.add_argument(
        "--if-exists",
        choices=("append", "replace", "fail"),
        default=None,
        help="what every sink does with data already where it writes: append to it, replace "
        "it (truncate a file, delete a table's rows or a stream) or fail; by default files "
        "replace and servers append, as in 1.0.4",
    )
    group.add_argument(
        "--max-lag-ticks",
        type=_positive_float,
        default=10.0,
        metavar="N",
        help="/healthz fails while the pacer is more than N ticks behind (default 10)",
    )


def _metrics_address(text: str) -> str:
    from doge_datagen.metrics.exporter import parse_address

    try:
        parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _add_debug(parser: argparse.ArgumentParser) -> None:
    # Also accepted after the command; SUPPRESS keeps a --debug given before it.
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="on an error, show the traceback as well",
    )


def _start(text: str) -> Any:
    if text.strip().lower() == "now":
        return "now"
    try:
        return count_argument(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither epoch milliseconds nor 'now'"
        ) from None


def _zone_name(text: str) -> str:
    from doge_datagen.profiles import _zone

    try:
        _zone(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def version_text() -> str:
    """What ``--version`` prints: the version, which loop the engine runs and where the
    package was loaded from. The C loop is optional: an install without a C compiler runs the
    Python loop, several times slower, and pip does not always show the build's warning."""
    import doge_datagen
    from doge_datagen.engine import HAS_SPEEDUPS

    if HAS_SPEEDUPS:
        loop = "C loop"
    elif os.environ.get("DOGE_DATAGEN_PURE_PYTHON", "") not in ("", "0"):
        loop = "Python loop (DOGE_DATAGEN_PURE_PYTHON is set)"
    else:
        loop = (
            "Python loop, several times slower: the C extension doge_datagen._speedups is "
            "not built (no C compiler when doge-datagen was installed?)"
        )
    return (
        f"doge-datagen {doge_datagen.__version__}\n"
        f"engine: {loop}\n"
        f"package: {os.path.dirname(os.path.abspath(doge_datagen.__file__))}"
    )


class _Version(argparse.Action):
    """``--version``: :func:`version_text` as it is (argparse's version action reflows it)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=argparse.SUPPRESS,
            help="show the version, which loop the engine runs and where it is installed",
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="doge-datagen",
        description="Simulate actors with a probabilistic state machine and stream their events.",
    )
    parser.add_argument("--version", action=_Version)
    parser.add_argument(
        "--debug", action="store_true", help="on an error, show the traceback as well"
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="show the library's log lines (and its clients': librdkafka, ...) from this "
        "level on, on standard error (default: warnings and errors only)",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    _add_demo_parser(commands)
    _add_run_parser(commands)
    _add_graph_parser(commands)
    _add_analyze_parser(commands)
    _add_debug(add_fit_parser(commands))
    add_model_file_commands(commands)
    return parser


def _add_demo_parser(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the banking model into files and SQLite, or into the sinks you name",
        description="Run the banking model of the README. Without --sink, events go to JSON Lines "
        "files (one per stream) and a SQLite database under --out; with --sink, every event goes "
        "to each sink named.",
        epilog=sink_help,  # a function: _Parser calls it when help is shown
    )
    _add_debug(demo)
    demo.add_argument("--sink", action="append", metavar="URL", help="where events go (repeatable)")
    demo.add_argument(
        "--out", metavar="DIR", help=f"directory of the default sinks (default {DEMO_OUT})"
    )
    demo.add_argument(
        "--timestamp-start",
        type=_start,
        metavar="MS|now",
        help="epoch milliseconds of the first tick, or 'now', the current minute (default: "
        "2024-01-01T00:00Z with --seed, so that a seed alone repeats a run; else now)",
    )
    demo.add_argument(
        "--day",
        action="store_true",
        help="give the model a day: logins follow the hour of the day, income comes on weekdays",
    )
    demo.add_argument(
        "--tz",
        type=_zone_name,
        metavar="ZONE",
        help="time zone of --day's hours and days (a zoneinfo name, default UTC)",
    )
    demo.add_argument(
        "--fake",
        action="store_true",
        help="give every user a name and an e-mail address, written in each event",
    )
    _add_run_options(demo, ticks_default=DEMO_TICKS)
    demo.set_defaults(handler=cmd_demo)


def _add_run_parser(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="run your own model",
        description="Run the DataOnlineGenerator returned by FUNCTION() of MODULE "
        "(a module name or a .py file).",
        epilog=RUN_EXAMPLES,
    )
    run.add_argument("model", metavar="MODULE:FUNCTION")
    _add_debug(run)
    _add_run_options(run, ticks_default=None)
    run.set_defaults(handler=cmd_run)


def _add_graph_parser(commands: Any) -> None:
    graph = commands.add_parser(
        "graph",
        help="render a model's state graph",
        description="Render the state graph of the DataOnlineGenerator returned by FUNCTION() "
        "(of a World: a box per population with its states and transitions, a table per "
        "entity table, and a dashed edge per declared message edge).",
        epilog=GRAPH_EXAMPLES,
    )
    graph.add_argument("model", metavar="MODULE:FUNCTION")
    _add_debug(graph)
    graph.add_argument(
        "-o", "--output", default="states.png", help="a .png, .svg or .mmd (Mermaid) path"
    )
    graph.add_argument(
        "--annotate",
        action="store_true",
        help="write the long-run share on each state and the expected events/s on each edge",
    )
    graph.add_argument(
        "--subjects",
        type=count_argument,
        help="number of subjects for --annotate (default: the model's)",
    )
    graph.set_defaults(handler=cmd_graph)


# -- model analysis and its pictures --------------------------------------------------------


def cmd_analyze(args: argparse.Namespace) -> int:
    if args.forever and args.ticks is not None:
        raise UsageError("--forever and --ticks contradict each other: give one of them")
    if args.observed is not None and args.plot is None:
        raise UsageError("--observed lays a run over the rate plot: give --plot PATH too")
    if args.plot is not None:  # checked before the report is worked out and printed
        from doge_datagen.analysis.plots import check_plot_path

        try:
            check_plot_path(args.plot)
        except ConfigurationError as exc:
            raise UsageError(f"--plot: {exc}") from None
        if args.observed is not None and not os.path.isfile(args.observed):
            raise UsageError(f"--observed: no file {args.observed!r}")
    datagen = load_generator(args.model, args, sinks=False)
    if args.subjects is not None:
        _refuse_for_world(datagen, "--subjects", "each population has its own size")
        datagen.subjects_num = args.subjects
    if args.plot is not None:
        _refuse_for_world(
            datagen, "--plot", "the plot draws one population's rates; a world has several"
        )
    if args.forever:
        datagen.ticks_num = None
    elif args.ticks is not None:
        datagen.ticks_num = args.ticks
    analysis = datagen.analyze()
    # With --format json standard output carries JSON only; messages go to standard error.
    messages = sys.stderr if args.format == "json" else sys.stdout
    if args.format == "json":
        print(analysis.to_json())
    else:
        print(analysis.format_text(), end="")
    if args.plot is not None:
        from doge_datagen.analysis.plots import plot_rates

        make_parent_directory(args.plot)
        path = plot_rates(analysis, args.plot, observed=args.observed)
        print(f"rate plot written to {path}", file=messages)
    return 0


def _refuse_for_world(datagen: DataOnlineGenerator, option: str, why: str) -> None:
    """A usage error for an option that applies to one population, when ``datagen`` is a
    world of several."""
    from doge_datagen.populations import World

    if isinstance(datagen, World):
        raise UsageError(f"{option} does not apply to a world of populations: {why}")


def _add_analyze_parser(commands: Any) -> None:
    analyze = commands.add_parser(
        "analyze",
        help="what a model will do, worked out without running it",
        description="Read the DataOnlineGenerator returned by FUNCTION() of MODULE and print its "
        "per-tick transition matrix, long-run shares (or where subjects end up, when final "
        "states exist), mean dwell times, expected events per tick and per second per trigger "
        "and per sink (in the long run and over the run's ticks), and unreachable states, "
        "states without exits and triggers that can never fire. Vetoes by action callbacks "
        "cannot be seen: measured counts fall short where callbacks veto. Of a World: each "
        "population's report, its events per second, and each declared message edge's rate.",
        epilog=ANALYZE_EXAMPLES,
    )
    analyze.add_argument("model", metavar="MODULE:FUNCTION")
    _add_debug(analyze)
    analyze.add_argument("--subjects", type=count_argument, help="number of subjects")
    analyze.add_argument("--ticks", type=count_argument, help="number of ticks of the run")
    analyze.add_argument("--forever", action="store_true", help="a run without a tick limit")
    analyze.add_argument("--format", choices=("text", "json"), default="text")
    analyze.add_argument(
        "--plot",
        metavar="PATH",
        help="draw expected events per hour per trigger over a week (.png, .svg, .pdf); "
        "needs matplotlib: pip install 'doge-datagen[plot]'",
    )
    analyze.add_argument(
        "--observed",
        metavar="EVENTS.jsonl",
        help="lay the events of a run (JSON Lines with timestamp and event) over the plot",
    )
    analyze.set_defaults(handler=cmd_analyze)


class Terminated(BaseException):
    """SIGTERM outside a graceful stop: unwinds like Ctrl-C, so that the sinks are closed and
    the summary printed, and ends with status 143."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated(f"terminated by signal {signum}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.metrics = None
    debug = bool(getattr(args, "debug", False))
    if getattr(args, "log_level", None):
        # The command is an application: it may configure logging (the library never does).
        logging.basicConfig(
            level=args.log_level.upper(),
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        if getattr(args, "metrics_port", None) is not None:
            # Bound before any sink or table is touched, so a port in use stops nothing half-made.
            from doge_datagen.metrics.exporter import MetricsServer

            name = "banking demo" if args.command == "demo" else args.model
            args.metrics = MetricsServer(
                args.metrics_port, max_lag_ticks=args.max_lag_ticks, name=name
            )
            print(
                f"metrics on {args.metrics.url}metrics, status page on {args.metrics.url}",
                file=sys.stderr,
            )
        return int(args.handler(args))
    except KeyboardInterrupt as exc:
        _report(exc, debug, "interrupted")
        return 130
    except Terminated as exc:
        _report(exc, debug, "terminated")
        return 143
    except BrokenPipeError:
        # The reader of our output went away (``doge-datagen demo | head``): the run ends
        # there, its sinks closed, with no message and the status of a process that SIGPIPE
        # ended, as other Unix tools' in a pipe.
        return _reader_went_away()
    except UsageError as exc:
        _report(exc, debug, f"error: {_one_line(exc)}")
        return 2
    except (DogeError, ValueError, ImportError, OSError, sqlite3.Error) as exc:
        if _reader_gone(exc):
            return _reader_went_away()
        _report(exc, debug, f"error: {_one_line(exc)}")
        return exit_status(getattr(exc, "summary", None), 1)
    except Exception as exc:  # a database or broker client error: still one line
        _report(exc, debug, f"error: {type(exc).__name__}: {_one_line(exc)}")
        return exit_status(getattr(exc, "summary", None), 1)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if args.metrics is not None:
            args.metrics.close()


def _reader_went_away() -> int:
    try:
        # What Python would flush to the closed pipe at exit goes nowhere instead.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141  # 128 + SIGPIPE


def _report(exc: BaseException, debug: bool, line: str) -> None:
    """One line, then the notes the engine attached (which subject, transition and tick);
    with ``--debug`` the whole traceback first. A note of several lines is a traceback (a
    failed shard's, sent back by its worker): shown with ``--debug`` only, as the others."""
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    print(f"doge-datagen: {line}", file=sys.stderr)
    if not debug or sys.version_info < (3, 11):  # 3.11+ prints notes with the traceback
        for note in getattr(exc, "__notes__", ()):
            if debug or "\n" not in str(note).strip():
                print(f"  {_one_line(note)}", file=sys.stderr)


def _one_line(exc: Any) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, BaseException):
        return text or type(exc).__name__
    return text
