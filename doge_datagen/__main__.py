"""``python -m doge_datagen``, and the ``doge-datagen`` command."""

import sys
from typing import List, Sequence


def main() -> int:
    """The ``doge-datagen`` command (:func:`doge_datagen.cli.main`).

    A run in local processes (``--workers`` without ``--dask``) first starts the server its
    shards' processes are forked from (:mod:`doge_datagen.process_server`), before this
    process imports the engine, the sinks and the command line: the server's start (about
    0.1 s) then overlaps those imports instead of delaying the first shard.
    """
    if _local_workers(sys.argv[1:]):
        from doge_datagen import process_server

        process_server.start(["doge_datagen.cli", *_model_of(sys.argv[1:])])
    from doge_datagen.cli import main as cli_main

    return cli_main()


def _local_workers(argv: Sequence[str]) -> bool:
    """Whether the command line asks for ``--workers`` and not for ``--dask``; a guess from
    the words alone (the parser decides later), so a wrong guess costs one idle process."""

    def given(option: str) -> bool:
        return any(word == option or word.startswith(option + "=") for word in argv)

    return given("--workers") and not given("--dask")


def _model_of(argv: Sequence[str]) -> List[str]:
    """The module or file of ``run MODULE:FUNCTION``, for the workers' server to load; a guess
    from the words alone, as :func:`_local_workers` is (a wrong one loads a module the shards
    do not need)."""
    if len(argv) > 1 and argv[0] == "run" and not argv[1].startswith("-"):
        from doge_datagen import loading

        return [loading.module_of(argv[1])]
    return []


if __name__ == "__main__":  # not when a shard's process imports the main module again
    sys.exit(main())
