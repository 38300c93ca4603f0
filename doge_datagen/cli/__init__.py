"""The ``doge-datagen`` command: ``demo``, ``run``, ``analyze``, ``graph``, ``fit`` and the rest.

- :mod:`~doge_datagen.cli.main`: the parser, the commands and :func:`main`;
- :mod:`~doge_datagen.cli.fit`: the ``fit`` command.
"""

from doge_datagen.cli.main import main

__all__ = ["main"]
