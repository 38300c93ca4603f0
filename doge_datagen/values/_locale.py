"""A locale's word lists, loaded from ``data/<locale>.json`` the first time it is used.

Each list a draw picks from is kept with what makes the pick one bisection or one
multiplication: a weighted list has the cumulative weights scaled to 31 bits (the pick is
``bisect_right(cum, u31)``), a list whose items are equally likely needs only its length
(``u31 * n >> 31``). Templates (phone numbers, building numbers, postcodes) are turned into
``str.format`` strings once, so that filling one is a single call.
"""

import itertools
import json
import re
import threading
from bisect import bisect_right
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from doge_datagen.errors import ConfigurationError

__all__ = ["LOCALES", "LocaleData", "locale_data", "common_data", "cumulative31", "COUNTRY_LOCALE"]

DATA = Path(__file__).resolve().parent / "data"

#: The locales that ship with the package.
LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "pl_PL", "es_ES", "pt_BR", "ja_JP")

#: The locale a subject of a country (ISO 3166 alpha-2) gets.
COUNTRY_LOCALE = {
    "US": "en_US",
    "GB": "en_GB",
    "UK": "en_GB",
    "DE": "de_DE",
    "FR": "fr_FR",
    "PL": "pl_PL",
    "ES": "es_ES",
    "BR": "pt_BR",
    "JP": "ja_JP",
}

_SCALE = 1 << 31


def cumulative31(weights: Sequence[float], what: str = "weights") -> List[int]:
    """The cumulative ``weights`` scaled to ``[0, 2**31]``: item ``j`` is drawn for a 31-bit
    ``u`` with ``cum[j-1] <= u < cum[j]``, so with probability ``weights[j] / sum`` to within
    ``2**-31``. The last bound is ``2**31``, so every draw lands on an item."""
    total = 0.0
    for w in weights:
        if not (w >= 0.0) or w == float("inf"):
            raise ConfigurationError(f"{what} must be finite and non-negative, got {w!r}")
        total += w
    if not total > 0.0:
        raise ConfigurationError(f"{what} must have a positive sum, got {list(weights)!r}")
    cum = [round(c / total * _SCALE) for c in itertools.accumulate(weights)]
    cum[-1] = _SCALE
    return cum


#: A weighted pick starts its search at ``guide[u31 >> GUIDE_SHIFT]``.
GUIDE_SHIFT = 19


class Pick:
    """A list to draw from with a 31-bit ``u``: ``values``, and for weighted items ``cum``
    (:func:`cumulative31`) and ``guide``, else None (the items are equally likely: item
    ``u * n >> 31``).

    ``guide[j]`` is the first item whose bound exceeds ``j << GUIDE_SHIFT``: the item of
    ``u`` is at or after ``guide[u >> GUIDE_SHIFT]``, and with 4,096 slots for lists of a
    few thousand names it is found there or one or two steps on. A bisection of the whole
    list makes ten or more comparisons of Python integers, which is most of a name's cost.
    """

    __slots__ = ("values", "cum", "guide", "n")

    def __init__(self, values: Sequence[str], weights: Optional[Sequence[float]] = None) -> None:
        self.values = list(values)
        self.n = len(self.values)
        self.cum: Optional[List[int]] = None
        self.guide: Optional[List[int]] = None
        if weights is not None:
            cum = self.cum = cumulative31(weights)
            self.guide = [bisect_right(cum, j << GUIDE_SHIFT) for j in range(_SCALE >> GUIDE_SHIFT)]

    def index(self, u31: int) -> int:
        cum = self.cum
        if cum is None:
            return (u31 * self.n) >> 31
        i = self.guide[u31 >> GUIDE_SHIFT]  # type: ignore[index]
        while cum[i] <= u31:
            i += 1
        return i


def compile_template(template: str, digit: str = "#") -> Tuple[str, int, int]:
    """``("{}-{}", k, 10**k)`` for a template with ``k`` places of ``digit``: the format
    fills the places, in order, from the ``k`` digits of a number below ``10**k``."""
    escaped = template.replace("{", "{{").replace("}", "}}")
    k = escaped.count(digit)
    return escaped.replace(digit, "{}"), k, 10**k


def expand(template: str) -> List[str]:
    """A template's ``%`` (a digit 1-9) and ``$`` (2-9) places, spelled out: every
    expansion is equally likely, so a uniform pick of them is the template's law."""
    options = []
    for c in template:
        if c == "%":
            options.append("123456789")
        elif c == "$":
            options.append("23456789")
        else:
            options.append(c)
    return ["".join(p) for p in itertools.product(*options)]


def compile_phone(
    template: str,
) -> Tuple[Callable[[str, str], str], int, int, Optional[bytes]]:
    """``(fill, k, m, plan)`` for a phone template with ``k`` places ``#`` (any digit) and ``m``
    places ``$`` (2 to 9): ``fill(D, E)`` is the number, ``D`` being ``str(10**k + x)`` for
    the ``k`` digits of ``x`` (its leading 1 skipped), ``E`` one of :func:`two_to_nine`'s
    strings of ``m`` characters. ``fill`` is one f-string: the literal parts are read from a
    tuple, the drawn ones are slices, so a number is made in one call with no list or
    join. ``plan`` says the same for the C path, as bytes: the literal parts as they are
    (ASCII), each drawn one as three bytes, ``0x80`` (a slice of ``D``) or ``0x81`` (of
    ``E``), its start and its end; None for a template that is not ASCII."""
    literals: List[str] = []
    plan: List[Optional[bytes]] = []
    pieces: List[str] = []
    counts = {"#": 0, "$": 0}
    text = ""
    k = 0
    while k < len(template):
        c = template[k]
        if c in counts:
            if text:
                pieces.append(f"{{L[{len(literals)}]}}")
                literals.append(text)
                plan.append(text.encode("ascii", "replace") if text.isascii() else None)
                text = ""
            end = k
            while end < len(template) and template[end] == c:
                end += 1
            start = counts[c]
            counts[c] += end - k
            # D is str(10**k + digits): its first character is the leading 1.
            off = 1 if c == "#" else 0
            name = "D" if c == "#" else "E"
            pieces.append(f"{{{name}[{start + off}:{counts[c] + off}]}}")
            plan.append(bytes((0x80 if c == "#" else 0x81, start + off, counts[c] + off)))
            k = end
            continue
        text += c
        k += 1
    if text:
        pieces.append(f"{{L[{len(literals)}]}}")
        literals.append(text)
        plan.append(text.encode("ascii", "replace") if text.isascii() else None)
    code = 'lambda D, E, L=L: f"' + "".join(pieces) + '"'
    fill = eval(code, {"L": tuple(literals)})  # noqa: S307 - code made above from slices only
    parts = [part for part in plan if part is not None]
    compiled = None if len(parts) < len(plan) or max(counts.values()) > 250 else b"".join(parts)
    return fill, counts["#"], counts["$"], compiled


_TWO_TO_NINE: Dict[int, Tuple[str, ...]] = {}


def two_to_nine(m: int) -> Tuple[str, ...]:
    """Every string of ``m`` digits from 2 to 9, in order (``8**m`` of them): the ``$``
    places of a phone number are one pick from it."""
    table = _TWO_TO_NINE.get(m)
    if table is None:
        table = _TWO_TO_NINE[m] = tuple("".join(p) for p in itertools.product("23456789", repeat=m))
    return table


def building_format(template: str) -> Tuple[Optional[str], int, int]:
    """``(fmt, low, span)``: a building number of the template is ``fmt.format(n)`` (``fmt``
    None: ``str(n)``) for ``n`` uniform in ``[low, low + span)`` when the template has one
    run of digits, ``%`` then ``#``s (``"%##"``: 100 to 999); else ``(template, 0, 0)``,
    filled place by place."""
    match = re.fullmatch(r"([^%#]*)%(#*)([^%#]*)", template)
    if match is None:
        return template, 0, 0
    prefix, hashes, suffix = match.groups()
    low = 10 ** len(hashes)
    fmt = prefix.replace("{", "{{").replace("}", "}}") + "{}"
    fmt += suffix.replace("{", "{{").replace("}", "}}")
    return (None if fmt == "{}" else fmt), low, 9 * low


class LocaleData:
    """The word lists and formats of one locale, ready for the draws."""

    def __init__(self, locale: str, raw: Dict[str, Any]) -> None:
        self.locale = locale
        self.source: str = raw.get("source", "")
        first_m, first_f = raw["first_male"], raw["first_female"]
        self.first_male = Pick(first_m["v"], first_m.get("w"))
        self.first_female = Pick(first_f["v"], first_f.get("w"))
        # Either gender, half the weight each (a gender's names keep their frequencies).
        wm = first_m.get("w") or [1.0] * len(first_m["v"])
        wf = first_f.get("w") or [1.0] * len(first_f["v"])
        sm, sf = sum(wm), sum(wf)
        self.first_any = Pick(
            first_m["v"] + first_f["v"], [w / sm for w in wm] + [w / sf for w in wf]
        )
        self.first_any_mail = raw["first_male_mail"] + raw["first_female_mail"]
        self.last = Pick(raw["last"]["v"], raw["last"].get("w"))
        self.last_mail: List[str] = raw["last_mail"]
        self.first_male_mail: List[str] = raw["first_male_mail"]
        self.first_female_mail: List[str] = raw["first_female_mail"]
        #: A name's words -> their e-mail forms (accents dropped), for email(name).
        self.mail_of: Dict[str, str] = {}
        for names, forms in (
            (self.first_any.values, self.first_any_mail),
            (self.last.values, self.last_mail),
        ):
            self.mail_of.update(zip(names, forms))
        self.last_first = raw["name_format"].startswith("{last}")
        # The C methods read each value's tables as one tuple: one lookup, not three or four.
        # The name's two picks, flat, for name(): (values, cum, guide, n) each.
        self.name_picks: Tuple[Any, ...] = (
            self.first_any.values, self.first_any.cum, self.first_any.guide, self.first_any.n,
            self.last.values, self.last.cum, self.last.guide, self.last.n,
        )  # fmt: skip
        self.streets: List[str] = raw["streets"]
        # The building number and the street, in the locale's order, with what is between.
        layout = raw["street_format"]
        self.number_first: bool = layout.index("{n}") < layout.index("{street}")
        self.street_sep: str = layout.replace("{n}", "").replace("{street}", "")
        self.buildings = [building_format(b) for b in raw["building_formats"]]
        self.street_tables = (self.streets, self.buildings, self.street_sep, self.number_first)
        self.cities: List[str] = raw["cities"]
        self.address_format: str = raw["address_format"]
        #: '#' a digit, '?' a capital letter (filled place by place: postcodes are short).
        self.postcodes: List[str] = raw["postcode_formats"]
        #: (fill, 10**k, two_to_nine(m), 8**m, plan) per phone format.
        self.phones = []
        for f in raw["phone_formats"]:
            fill, k, m, plan = compile_phone(f)
            self.phones.append((fill, 10**k, two_to_nine(m), 8**m, plan))
        self.companies: List[str] = raw["companies"]
        self.jobs: List[str] = raw["jobs"]
        self.words: List[str] = raw["words"]
        self.email_domains: List[str] = raw["email_domains"]
        self.name_tables = (*self.name_picks, self.last_first)
        self.mail_tables = (self.first_any_mail, self.last_mail, self.email_domains)
        self.country: str = raw["country"]
        self.currency: str = raw["currency"]
        self.iban_country: str = raw["iban_country"]
        self.bban_format: str = raw["bban_format"]


_cache: Dict[str, LocaleData] = {}
_common: Dict[str, Any] = {}
_lock = threading.Lock()


def locale_data(locale: str) -> LocaleData:
    """The data of ``locale`` (``"de_DE"``; ``"de-DE"`` too), read on first use."""
    data = _cache.get(locale)
    if data is not None:
        return data
    if not isinstance(locale, str):
        raise ConfigurationError(f"a locale is a name such as 'en_US', got {locale!r}")
    name = locale.replace("-", "_")
    if name not in LOCALES:
        raise ConfigurationError(f"unknown locale {locale!r}: the locales are {', '.join(LOCALES)}")
    with _lock:
        data = _cache.get(name)
        if data is None:
            raw = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
            data = _cache[name] = LocaleData(name, raw)
        _cache[locale] = data
    return data


def common_data() -> Dict[str, Any]:
    """The lists every locale shares (country and currency codes)."""
    if not _common:
        with _lock:
            if not _common:
                _common.update(json.loads((DATA / "common.json").read_text(encoding="utf-8")))
    return _common
