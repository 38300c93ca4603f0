"""A model fitted from an event log: states, transitions, probabilities and hourly profiles.

- :mod:`~doge_datagen.fit.fitter`: :func:`fit_events`, :func:`read_events` and the
  :class:`FittedModel` they give;
- :mod:`~doge_datagen.fit._columns`: the columnar fit of large JSON Lines logs (numpy).

The command (``doge-datagen fit``) lives in :mod:`doge_datagen.cli.fit`.
"""

from doge_datagen.fit.fitter import (
    FittedModel,
    FittedProfile,
    FittedTransition,
    fit_events,
    read_events,
)

__all__ = ["FittedModel", "FittedProfile", "FittedTransition", "fit_events", "read_events"]
