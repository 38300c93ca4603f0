"""The banking model of the README, shared by every example.

The model itself lives in ``doge_datagen.demo`` so that the ``doge-datagen demo`` command and
these examples run the very same thing; each example only decides where the events go. Read
``doge_datagen/demo.py`` for the states, transitions, subjects and callbacks.
"""

import os
import sys

# Run from a checkout without installing: make the package importable.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from doge_datagen.demo import (  # noqa: E402
    STATES,
    User,
    UserFactory,
    banking_generator,
    make_callbacks,
    user_row,
)

create_example_data_online_generator = banking_generator

__all__ = [
    "STATES",
    "User",
    "UserFactory",
    "create_example_data_online_generator",
    "make_callbacks",
    "user_row",
]
