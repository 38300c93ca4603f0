"""``python -m doge_datagen``: the same as the ``doge-datagen`` command."""

import sys

from doge_datagen.cli import main

sys.exit(main())
