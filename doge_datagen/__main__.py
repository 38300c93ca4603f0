"""``python -m doge_datagen``, and the ``doge-datagen`` command."""

import sys


def main() -> int:
    """The ``doge-datagen`` command (:func:`doge_datagen.cli.main`)."""
    from doge_datagen.cli.main import main as cli_main

    return cli_main()


if __name__ == "__main__":  # not when a shard's process imports the main module again
    sys.exit(main())
