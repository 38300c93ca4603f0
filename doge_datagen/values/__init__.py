"""Realistic values and exact distributions for subjects: ``datagen.fake``.

What lives here:

* :class:`Fake`, the object behind ``datagen.fake``: names, e-mail addresses, addresses,
  phone numbers, companies, bank and card numbers, internet values, words, dates, and
  distributions (uniform, normal, lognormal, exponential, Pareto, Zipf, weighted choice,
  Poisson, Bernoulli, money amounts, sequences), all drawn from ``datagen.random``, so that
  a subject gets the same values in any run and any shard; ``fake.unique`` for values no
  two subjects share; ``fake.faker`` for Faker's other providers.
* the locales (:data:`LOCALES`) and the country each one serves.
* :func:`luhn_valid` and :func:`iban_valid`, the checks the card and bank numbers pass.

The word lists come from Faker's locale data (MIT licence, ``data/LICENSE-Faker``),
converted by ``scripts/convert_faker_data.py``; a locale's file is read the first time that
locale draws a value, not when the package is imported.
"""

from doge_datagen.values._fake import (
    PROVIDERS,
    UNIQUE_PROVIDERS,
    Chooser,
    Fake,
    FakerBridge,
    Unique,
    iban_valid,
    luhn_valid,
    permute_index,
)
from doge_datagen.values._locale import COUNTRY_LOCALE, LOCALES

__all__ = [
    "COUNTRY_LOCALE",
    "Chooser",
    "Fake",
    "FakerBridge",
    "LOCALES",
    "PROVIDERS",
    "UNIQUE_PROVIDERS",
    "Unique",
    "iban_valid",
    "luhn_valid",
    "permute_index",
]
