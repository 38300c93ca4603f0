"""``python -m doge_datagen``: the same as the ``doge-datagen`` command."""

import sys

from doge_datagen.cli import main

if __name__ == "__main__":  # not when a shard's process imports the main module again
    sys.exit(main())
