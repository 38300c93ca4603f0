"""The command line of model files.

``doge-datagen run|graph|analyze FILE.yaml`` (or ``FILE.json``) load the file with
:func:`doge_datagen.load`; ``--set NAME=VALUE`` sets a parameter, ``--sink NAME=URL`` replaces
one of the file's sinks and ``--sink URL`` sends every stream to one place (each event once),
``--trust`` lets the file name Python code. ``doge-datagen schema`` prints the JSON Schema of
the format and ``doge-datagen init FILE.yaml`` writes a starter model that runs.
"""

import argparse
import os
import re
import sys
from typing import Any, Dict, List, Optional, Tuple

from doge_datagen.cli._common import UsageError, make_parent_directory
from doge_datagen.model import DataOnlineGenerator

__all__ = [
    "MODEL_FILE_SUFFIXES",
    "add_model_file_commands",
    "is_model_file",
    "load_model",
    "replace_python_sinks",
    "schema_text",
    "sink_overrides",
]

MODEL_FILE_SUFFIXES = (".yaml", ".yml", ".json")

_NAMED_SINK = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)=(.+)$")


def is_model_file(spec: str) -> bool:
    """Whether a command's MODEL argument names a model file rather than MODULE:FUNCTION."""
    return spec.lower().endswith(MODEL_FILE_SUFFIXES)


def sink_overrides(values: Optional[List[str]]) -> Tuple[Dict[str, str], Optional[str]]:
    """``--sink NAME=URL`` (by name) and ``--sink URL`` (every stream), from the options."""
    named: Dict[str, str] = {}
    single: Optional[str] = None
    for value in values or []:
        found = _NAMED_SINK.match(value)
        if found and ":" not in found.group(1):
            if found.group(1) in named:
                raise UsageError(f"--sink {found.group(1)}=... is given twice")
            named[found.group(1)] = found.group(2)
        elif single is not None:
            raise UsageError(
                f"--sink {single!r} and --sink {value!r}: one URL for every stream; "
                "give NAME=URL to replace one sink"
            )
        else:
            single = value
    if single is not None and named:
        raise UsageError("--sink URL sends every stream to one place: give no NAME=URL with it")
    return named, single


def _params(values: Optional[List[str]]) -> Dict[str, str]:
    params: Dict[str, str] = {}
    for value in values or []:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise UsageError(f"--set takes NAME=VALUE, got {value!r}")
        params[name.strip()] = text
    return params


def load_model(spec: str, args: Any = None, sinks: bool = True) -> DataOnlineGenerator:
    """The model file ``spec`` with the command's options: ``--set``, ``--sink``, ``--trust``
    and ``--timestamp-start`` (the run options are applied by the command afterwards).
    ``sinks=False`` (graph, analyze) makes no sink: each stream is counted."""
    from doge_datagen.modelfile.builder import _UNSET, build, read_model

    if not os.path.isfile(spec):
        raise UsageError(f"no model file {spec!r}")
    named, single = sink_overrides(getattr(args, "sink", None))
    model = read_model(
        spec, trust=bool(getattr(args, "trust", False)), params=_params(getattr(args, "set", None))
    )
    start = getattr(args, "timestamp_start", None)
    if start == "now":
        import time

        start = int(time.time()) // 60 * 60_000
    if sinks:
        urls = [*named.values(), *([single] if single else [])]
        if single is None:
            urls += [s.url for s in model.sinks.values() if s.url and s.name not in named]
        for url in urls:
            target = _file_target(url)
            if target is not None:
                make_parent_directory(target)
    return build(
        model,
        sinks=named,
        sink=single,
        timestamp_start=_UNSET if start is None else start,
        make_sinks=sinks,
    )


def _file_target(url: str) -> Optional[str]:
    """The path a file sink's URL writes to (``jsonl:``, ``csv:``, ``parquet:``,
    ``sqlite:///``), whose directory is made before the run; else ``None``."""
    scheme, _, rest = url.partition(":")
    scheme = scheme.lower()
    rest = rest.partition("?")[0]
    if scheme in ("jsonl", "csv", "parquet") and rest and "://" not in url:
        return rest
    if scheme.split("+")[0] == "sqlite" and rest.startswith("///") and len(rest) > 3:
        return rest[3:]
    return None


def _subject_row(timestamp: int, subject: Any, transition: Any) -> Dict[str, Any]:
    """A Python model's event as a flat record: the timestamp, the subject's public
    attributes, the trigger and the states."""
    row: Dict[str, Any] = {"timestamp": timestamp}
    names: List[str] = []
    for cls in reversed(type(subject).__mro__):
        slots = cls.__dict__.get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    for name in names:
        if not name.startswith("_") and hasattr(subject, name):
            row[name] = getattr(subject, name)
    for name, value in getattr(subject, "__dict__", {}).items():
        if not name.startswith("_"):
            row[name] = value
    row["event"] = transition.trigger
    row["from_state"] = transition.from_state
    row["to_state"] = transition.to_state
    return row


def replace_python_sinks(datagen: DataOnlineGenerator, values: Optional[List[str]]) -> None:
    """``--sink NAME=URL`` for a Python model: the sinks whose ``name`` is NAME are replaced
    by the URL's sink; ``--sink URL`` sends every event that reaches a sink there, once. The
    records hold the timestamp, the subject's attributes, the trigger and the states."""
    named, single = sink_overrides(values)
    if not named and single is None:
        return
    from doge_datagen.sinks.registry import Records, build_sink

    records = Records(row=_subject_row)
    if single is not None:
        target = _file_target(single)
        if target is not None:
            make_parent_directory(target)
        one = build_sink(single, records)
        for transition in datagen.transitions:
            transition.event_sinks = [one] if transition.event_sinks else []
        return
    known = {getattr(s, "name", None) for s in datagen.sinks} - {None}
    for name in named:
        if name not in known:
            listed = ", ".join(sorted(str(k) for k in known)) or "none"
            raise UsageError(f"--sink {name}=...: the model has no sink named {name!r} ({listed})")
    built: Dict[str, Any] = {}
    for name, url in named.items():
        target = _file_target(url)
        if target is not None:
            make_parent_directory(target)
        built[name] = build_sink(url, records)
    for transition in datagen.transitions:
        transition.event_sinks = [
            built.get(str(getattr(s, "name", "")), s) for s in transition.event_sinks
        ]


def schema_text() -> str:
    """The JSON Schema of the format, as shipped with the package."""
    from importlib.resources import files

    return (files("doge_datagen.modelfile") / "schema.json").read_text(encoding="utf-8")


def cmd_schema(args: argparse.Namespace) -> int:
    sys.stdout.write(schema_text())
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from doge_datagen.modelfile.starter import STARTER

    path = args.file
    if not is_model_file(path):
        raise UsageError(f"{path!r}: a model file ends in .yaml, .yml or .json")
    if path.lower().endswith(".json"):
        raise UsageError("init writes YAML (with comments): give a .yaml path")
    if os.path.exists(path) and not args.force:
        raise UsageError(f"{path!r} exists; --force replaces it")
    make_parent_directory(path)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(STARTER)
    print(f"model written to {path}; run it with: doge-datagen run {path}")
    return 0


def _add_file_options(parser: argparse.ArgumentParser, with_sinks: bool) -> None:
    group = parser.add_argument_group("model files (FILE.yaml, FILE.json)")
    group.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="set a parameter of the model file's params (repeatable)",
    )
    group.add_argument(
        "--trust",
        action="store_true",
        help="let the model file name Python code (action:, factory:, sink:)",
    )
    if with_sinks:
        group.add_argument(
            "--sink",
            action="append",
            metavar="NAME=URL|URL",
            help="replace the model file's sink NAME, or send every stream to URL, each event "
            "once (repeatable for NAME=URL)",
        )
        if not any("--timestamp-start" in a.option_strings for a in parser._actions):
            group.add_argument(
                "--timestamp-start",
                metavar="MS|now",
                help="epoch milliseconds of the first tick (default: the model file's)",
            )


def add_model_file_commands(commands: Any) -> None:
    """Model-file options on ``run``, ``graph`` and ``analyze``; the ``schema`` and ``init``
    commands."""
    for name, with_sinks in (("run", True), ("graph", False), ("analyze", False)):
        parser = commands.choices.get(name)
        if parser is not None:
            _add_file_options(parser, with_sinks)
            for action in parser._actions:
                if action.dest == "model":
                    action.metavar = "MODULE:FUNCTION|FILE.yaml"
    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of model files",
        description="Print the JSON Schema of model files, for editors (YAML language servers "
        "read '# yaml-language-server: $schema=PATH' on a file's first line).",
    )
    schema.set_defaults(handler=cmd_schema)
    init = commands.add_parser(
        "init",
        help="write a starter model file",
        description="Write a commented starter model file that runs as written.",
    )
    init.add_argument("file", metavar="FILE.yaml")
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.set_defaults(handler=cmd_init)
