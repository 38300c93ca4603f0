"""``datagen.fake``: realistic values and exact distributions drawn from ``datagen.random``.

Every value is made from 62-bit draws (``randint(0, 2**62 - 1)``, about two steps of the
stream) of the generator it is given. With the model's ``datagen.random`` that is, while subject
``i`` is created or handles an event, subject ``i``'s own stream: what a subject gets does
not depend on the other subjects, their number, or the shard it runs in. A pick from a list
uses 31 bits of a draw (a name takes the two halves of one draw for its first and last
name), so most values cost one or two draws and one string operation.

Unique values (:attr:`Fake.unique`) and sequences are not remembered: they are built
from the subject's global index, through a keyed permutation for the unique ones, so two
subjects can never get the same one, whichever processes made them.
"""

import functools
import math
import uuid
from bisect import bisect_right
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, cast

from doge_datagen.core.checks import check_count, check_finite, check_positive
from doge_datagen.errors import ConfigurationError
from doge_datagen.values._locale import (
    COUNTRY_LOCALE,
    LOCALES,
    LocaleData,
    common_data,
    locale_data,
)

__all__ = ["Fake", "PROVIDERS", "UNIQUE_PROVIDERS", "permute_index", "luhn_valid", "iban_valid"]

_MASK64 = (1 << 64) - 1
_MASK31 = (1 << 31) - 1
_MAX62 = (1 << 62) - 1
_TWO_POW_53 = 9007199254740992.0
_TWO_PI = 2.0 * math.pi
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_GOLDEN = 0x9E3779B97F4A7C15

_DIGITS = "0123456789"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_TLD = {
    "en_US": "com",
    "en_GB": "co.uk",
    "de_DE": "de",
    "fr_FR": "fr",
    "pl_PL": "pl",
    "es_ES": "es",
    "pt_BR": "com.br",
    "ja_JP": "jp",
}

# Product names: the package's own short English lists.
_PRODUCT_ADJECTIVES = (
    "Compact", "Classic", "Smart", "Wireless", "Portable", "Premium", "Eco", "Deluxe",
    "Mini", "Pro", "Ultra", "Lightweight", "Heavy-Duty", "Foldable", "Vintage", "Modern",
)  # fmt: skip
_PRODUCT_MATERIALS = (
    "Steel", "Bamboo", "Leather", "Cotton", "Ceramic", "Glass", "Oak", "Aluminium", "Wool",
    "Linen", "Carbon", "Copper", "Walnut", "Marble", "Canvas", "Titanium",
)  # fmt: skip
_PRODUCT_NOUNS = (
    "Kettle", "Backpack", "Lamp", "Headphones", "Chair", "Desk", "Mug", "Watch", "Jacket",
    "Speaker", "Blender", "Bottle", "Notebook", "Umbrella", "Sneakers", "Wallet", "Keyboard",
    "Toaster", "Tent", "Bicycle", "Pillow", "Scarf", "Clock", "Skillet", "Drone",
    "Thermos", "Router", "Monitor", "Sofa", "Bookshelf", "Helmet", "Camera",
)  # fmt: skip

# User agents: browser layouts with versions drawn in a recent range.
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{0}.0.{1}.{2} Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{0}.0.{1}.{2} Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{0}.0.{1}.{2} Safari/537.36",
    "Mozilla/5.0 (Linux; Android {3}; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{0}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{5}.0) Gecko/20100101 Firefox/{5}.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:{5}.0) Gecko/20100101 Firefox/{5}.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/{4}.{3} Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS {4}_{3} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/{4}.{3} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{0}.0.0.0 Safari/537.36 Edg/{0}.0.{1}.{2}",
)

# Public unicast first octets (no 0, 10, 127, multicast or reserved).
_IPV4_FIRST = tuple(o for o in range(1, 224) if o not in (10, 127))

_CARDS = {
    "visa": ((("4",), 16),),
    "mastercard": ((tuple(str(p) for p in range(51, 56)), 16),),
    "amex": ((("34", "37"), 15),),
    "discover": ((("6011",), 16),),
}
_CARD_KINDS = tuple(_CARDS)

#: What makes a Fake's ``_r`` from ``(rng.randint, 0, 2**62 - 1)``: ``functools.partial``, or
#: with the C values their ``Draw``, the same calls, which the C values draw from without one.
_draw: Callable[[Callable[[int, int], int], int, int], Callable[[], int]] = functools.partial

_GENDERS = {
    None: 0, "male": 1, "m": 1, "M": 1, "female": 2, "f": 2, "F": 2,
}  # fmt: skip

#: The value providers and distributions a model can call by name (``fake.<name>(...)``).
PROVIDERS = frozenset(
    """first_name last_name name email user_name phone_number street_address city postcode
    country_code address company job iban credit_card_number ipv4 ipv6 mac_address
    user_agent url word words sentence product_name price currency_code date_between
    datetime_between timestamp_between uuid4 latitude longitude coordinates
    uniform integer normal lognormal exponential pareto zipf choice bernoulli poisson
    money sequence""".split()
)
#: The values of :attr:`Fake.unique` (``fake.unique.<name>(...)``).
UNIQUE_PROVIDERS = frozenset({"id", "email", "user_name", "uuid4"})


def _mix64(x: int) -> int:
    """SplitMix64's output function: a bijection of the 64-bit integers."""
    z = ((x ^ (x >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def permute_index(index: int, key: int) -> int:
    """A keyed bijection of the whole numbers that keeps each block of indices in place:
    ``[0, 2**20)``, then ``[2**k, 2**(k+1))`` for ``k >= 20``, each shuffled within itself.

    Inside a block of ``2**k`` it is three rounds of adding a key, multiplying by an odd
    number and folding the high half into the low one, each a bijection modulo ``2**k``.
    Two different indices therefore never give the same number, with no record of what was
    given: that is what makes :attr:`Fake.unique` values unique across processes.
    """
    if index < 0:
        raise ConfigurationError(f"a subject index is not negative, got {index}")
    if index < 1 << 20:
        bits, base, x = 20, 0, index
    else:
        bits = index.bit_length() - 1
        base = 1 << bits
        x = index - base
    mask = base - 1 if base else (1 << 20) - 1
    shift = (bits + 1) // 2
    k = key
    for _ in range(3):
        k = _mix64((k + _GOLDEN) & _MASK64)
        x = (x + k) & mask
        x = (x * (k | 1)) & mask
        x ^= x >> shift
    return base + x


def luhn_valid(number: str) -> bool:
    """Whether ``number``'s digits pass the Luhn check."""
    total = 0
    for pos, c in enumerate(reversed(number)):
        d = ord(c) - 48
        if pos & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _luhn_digit(body: str) -> str:
    total = 0
    for pos, c in enumerate(reversed(body)):
        d = ord(c) - 48
        if not pos & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str(-total % 10)


def _iban_number(text: str) -> int:
    return int("".join(str(int(c, 36)) for c in text))


def iban_valid(iban: str) -> bool:
    """Whether ``iban`` passes the ISO 13616 check (mod 97 of the rearranged number is 1)."""
    iban = iban.replace(" ", "")
    return len(iban) > 4 and iban.isalnum() and _iban_number(iban[4:] + iban[:4]) % 97 == 1


def _mail_form(word: str) -> str:
    import unicodedata

    word = word.replace("ł", "l").replace("Ł", "L").replace("ß", "ss").replace("ø", "o")
    word = unicodedata.normalize("NFKD", word)
    return "".join(c for c in word if c.isascii() and c.isalnum()).lower()


def _as_date(value: Any, what: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigurationError(f"{what} must be a date or an ISO date string, got {value!r}")


def _as_datetime(value: Any, what: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigurationError(f"{what} must be a datetime or an ISO string, got {value!r}")


class Chooser:
    """A weighted choice whose cumulative weights are worked out once
    (:meth:`Fake.chooser`): each call is one draw and one bisection."""

    __slots__ = ("_fake", "_items", "_cum")

    def __init__(self, fake: "Fake", items: Sequence[Any], weights: Sequence[float]) -> None:
        items = list(items)
        weights = [check_finite("a weight", w) for w in weights]
        if len(items) != len(weights) or not items:
            raise ConfigurationError(
                f"a weighted choice needs as many weights as items (and at least one), got "
                f"{len(items)} items and {len(weights)} weights"
            )
        if any(w < 0 for w in weights) or not sum(weights) > 0:
            raise ConfigurationError(f"weights must be non-negative with a positive sum: {weights}")
        total = math.fsum(weights)
        cum = [c / total for c in accumulate(weights)]
        cum[-1] = 1.0
        self._fake, self._items, self._cum = fake, items, cum

    def __call__(self) -> Any:
        u = (self._fake._r() >> 9) / _TWO_POW_53
        return self._items[bisect_right(self._cum, u)]


class Fake:
    """Realistic values and distributions, drawn from one generator (``datagen.fake``).

    ``locale`` is the default locale (``"en_US"``); ``fake["de_DE"]`` draws in another one,
    ``fake.for_country("DE")`` in a country's. ``model`` (the generator it belongs to) gives
    the subject's global index to :attr:`unique` values and :meth:`sequence`.
    """

    __slots__ = (
        "_rng", "_r", "_model", "_loc", "_locale_name", "_views", "_unique", "_faker", "_named",
        "_ctables", "__weakref__",
    )  # fmt: skip

    def __init__(self, rng: Any, locale: str = "en_US", model: Any = None) -> None:
        self._rng = rng
        #: 62 random bits from the subject's stream. ``randint`` is the generator's fastest
        #: draw (in C with the speed-ups): the top 63 bits of a 64-bit output, taken when below
        #: 2**62, so about two steps of the stream a draw (the rest are passed over).
        self._r: Callable[[], int] = _draw(rng.randint, 0, _MAX62)
        self._model = model
        self._loc: Optional[LocaleData] = None
        #: The C values' reading of ``_loc`` (their tables), made at their first value.
        self._ctables: Any = None
        self._views: Dict[str, Fake] = {}
        self._unique: Optional[Unique] = None
        self._faker: Optional[FakerBridge] = None
        #: The last name() drawn (of either gender) and its two picks: (text, first, last).
        self._named: Optional[Tuple[str, int, int]] = None
        if not isinstance(locale, str) or locale.replace("-", "_") not in LOCALES:
            raise ConfigurationError(
                f"unknown locale {locale!r}: the locales are {', '.join(LOCALES)}"
            )
        self._views[locale.replace("-", "_")] = self
        self._locale_name = locale.replace("-", "_")

    # The locale's data is read at its first draw, not when the generator is made: the
    # draws read ``self._loc or self._load()``, a slot, rather than through a property.
    def _load(self) -> LocaleData:
        loc = self._loc = locale_data(self._locale_name)
        return loc

    @property
    def locale(self) -> str:
        """This generator's locale."""
        return self._locale_name

    def __getitem__(self, locale: str) -> "Fake":
        """The same draws in another locale: ``fake["de_DE"].name()``."""
        view = self._views.get(locale)
        if view is None:
            view = Fake(self._rng, locale, self._model)
            view._views = self._views
            self._views[locale] = self._views[view._locale_name] = view
        return view

    def for_country(self, country: Optional[str], default: Optional[str] = None) -> "Fake":
        """The generator of a country's locale (ISO 3166 alpha-2, ``"DE"``): a subject with a
        ``country`` gets the names and addresses of its country. A country without a locale
        here gets ``default`` (by default this generator's locale)."""
        code = COUNTRY_LOCALE.get(str(country).upper()) if country is not None else None
        if code is None:
            return self if default is None else self[default]
        return self[code]

    def provider(self, name: str) -> Callable[..., Any]:
        """The value provider or distribution called ``name`` (a model file's ``fake.name``)."""
        if name not in PROVIDERS:
            raise ConfigurationError(
                f"unknown value {name!r}: the values are {', '.join(sorted(PROVIDERS))}"
            )
        return cast(Callable[..., Any], getattr(self, name))

    def __repr__(self) -> str:
        return f"Fake(locale={self._locale_name!r})"

    def __reduce__(self) -> Any:
        # The generator, the locale and the model: the word lists are read again where the
        # copy is used (a shard's process), not sent with it.
        return (Fake, (self._rng, self._locale_name, self._model))

    # -- the draws ---------------------------------------------------------------------------

    def _unit(self) -> float:
        """A float in [0, 1) with 53 random bits."""
        return (self._r() >> 9) / _TWO_POW_53

    def _index(self) -> int:
        """The global index of the subject being created or handled."""
        i = getattr(self._rng, "_i", None)
        if i is None:
            raise ConfigurationError(
                "unique values and sequences belong to a subject: draw them in a subject "
                "factory, a callback or a sink while the run goes on"
            )
        run = getattr(self._model, "_last_run", None)
        return int(i) + (run.first if run is not None else 0)

    def _key(self) -> int:
        key = getattr(self._rng, "_key", None)
        if key is None:
            from doge_datagen.engine.randomness import _stream_key

            key = _stream_key(getattr(self._model, "seed", None))
        return int(key)

    # -- people ------------------------------------------------------------------------------

    def first_name(self, gender: Optional[str] = None) -> str:
        """A first name, with the locale data's frequencies (``gender``: "male"/"female")."""
        d = self._loc or self._load()
        g = _GENDERS.get(gender, -1) if gender is None or isinstance(gender, str) else -1
        if g < 0:
            raise ConfigurationError(f"gender must be 'male', 'female' or None, got {gender!r}")
        pick = d.first_any if g == 0 else d.first_male if g == 1 else d.first_female
        return pick.values[pick.index(self._r() >> 31)]

    def last_name(self) -> str:
        """A last name, with the locale data's frequencies where it has them."""
        pick = (self._loc or self._load()).last
        return pick.values[pick.index(self._r() >> 31)]

    def name(self, gender: Optional[str] = None) -> str:
        """A full name: one draw, its halves picking the first and the last name."""
        d = self._loc or self._load()
        if gender is not None:
            g = _GENDERS.get(gender, -1) if isinstance(gender, str) else -1
            if g < 0:
                raise ConfigurationError(f"gender must be 'male', 'female' or None, got {gender!r}")
            first = d.first_male if g == 1 else d.first_female
            u = self._r()
            hi, lo = u >> 31, u & _MASK31
            f = first.values[first.index(hi)]
            s = d.last.values[d.last.index(lo)]
            return f"{s} {f}" if d.last_first else f"{f} {s}"
        fv, fc, fg, fn, lv, lc, lg, ln = d.name_picks  # cum and guide: both or neither
        u = self._r()
        hi = u >> 31
        lo = u & _MASK31
        if fg is None:
            i = (hi * fn) >> 31
        else:
            i = fg[hi >> 19]
            while fc[i] <= hi:
                i += 1
        if lg is None:
            j = (lo * ln) >> 31
        else:
            j = lg[lo >> 19]
            while lc[j] <= lo:
                j += 1
        out = f"{lv[j]} {fv[i]}" if d.last_first else f"{fv[i]} {lv[j]}"
        # email(name) of this very string reads the two names' e-mail forms from here.
        self._named = (out, i, j)
        return out

    def _mail_pair(self, name: Optional[str], d: LocaleData) -> Tuple[str, str]:
        """The e-mail forms of a first and a last name: from ``name`` (its first and last
        words; the last is "" for a name of one word), else drawn."""
        if name is None:
            u = self._r()
            return (
                d.first_any_mail[d.first_any.index(u >> 31)],
                d.last_mail[d.last.index(u & _MASK31)],
            )
        named = self._named
        if named is not None and named[0] is name:
            return d.first_any_mail[named[1]], d.last_mail[named[2]]
        if not isinstance(name, str):
            raise ConfigurationError(f"name must be a string, got {name!r}")
        words = name.split()
        mail_of = d.mail_of
        if len(words) == 2:
            a = mail_of.get(words[0])
            b = mail_of.get(words[1])
            if a and b:
                return a, b
        # Names of several words ("Ana Cecília", "van der Dussen"): a split of the words into
        # two names of the data, as name() made them.
        for k in range(1, len(words)):
            a = mail_of.get(" ".join(words[:k]))
            b = mail_of.get(" ".join(words[k:]))
            if a and b:
                return a, b
        forms = [f for f in (mail_of.get(w) or _mail_form(w) for w in words) if f]
        if not forms:
            return "user", ""
        return forms[0], forms[-1] if len(forms) > 1 else ""

    def email(self, name: Optional[str] = None) -> str:
        """An e-mail address at a free mail domain of the locale, from ``name`` when given
        (``fake.email(fake.name())`` matches the name), else from a drawn one."""
        d = self._loc or self._load()
        named = self._named
        if named is not None and named[0] is name:  # the name just drawn: no lookups
            first = d.first_any_mail[named[1]]
            last = d.last_mail[named[2]]
        else:
            first, last = self._mail_pair(name, d)
        u = self._r()
        domains = d.email_domains
        domain = domains[((u >> 31) * len(domains)) >> 31]
        style = u & 3
        if not last:
            return f"{first}{(u >> 8) % 100}@{domain}"
        if style == 0:
            return f"{first}.{last}@{domain}"
        if style == 1:
            return f"{first}.{last}{(u >> 8) % 100}@{domain}"
        if style == 2:
            return f"{first[:1]}{last}@{domain}"
        return f"{first}{last}{(u >> 8) % 1000}@{domain}"

    def user_name(self, name: Optional[str] = None) -> str:
        """A user name (``jsmith``, ``john.smith``, ``smith_john42``), from ``name`` if given."""
        first, last = self._mail_pair(name, self._loc or self._load())
        u = self._r()
        style = u & 3
        if not last:
            return f"{first}{(u >> 8) % 100}"
        if style == 0:
            return f"{first[:1]}{last}"
        if style == 1:
            return f"{first}.{last}"
        if style == 2:
            return f"{last}_{first}{(u >> 8) % 100}"
        return f"{first}{(u >> 8) % 1000}"

    def phone_number(self) -> str:
        """A phone number in one of the locale's formats, each format as likely."""
        phones = (self._loc or self._load()).phones
        n = len(phones)
        u = self._r()
        fill, p, table, q, _ = phones[u % n]
        u //= n
        if p * q * n > _MAX62:  # too few bits left over from the pick of the format
            u = self._r()
        return fill(str(p + u % p), table[(u // p) % q])

    def company(self) -> str:
        """A company name."""
        values = (self._loc or self._load()).companies
        return values[((self._r() >> 31) * len(values)) >> 31]

    def job(self) -> str:
        """A job title."""
        values = (self._loc or self._load()).jobs
        return values[((self._r() >> 31) * len(values)) >> 31]

    # -- places ------------------------------------------------------------------------------

    def street_address(self) -> str:
        """A building number and a street, in the locale's order."""
        d = self._loc or self._load()
        streets = d.streets
        buildings = d.buildings
        u = self._r()
        street = streets[((u >> 31) * len(streets)) >> 31]
        lo = u & _MASK31
        nb = len(buildings)
        fmt, low, span = buildings[lo % nb]
        if not span:
            number = self._fill(fmt)  # type: ignore[arg-type]  # a template when no span
        elif fmt is None:
            number = str(low + (lo // nb) % span)
        else:
            number = fmt.format(low + (lo // nb) % span)
        if d.number_first:
            return f"{number}{d.street_sep}{street}"
        return f"{street}{d.street_sep}{number}"

    def city(self) -> str:
        """A city name."""
        values = (self._loc or self._load()).cities
        return values[((self._r() >> 31) * len(values)) >> 31]

    def postcode(self) -> str:
        """A postcode in one of the locale's layouts."""
        formats = (self._loc or self._load()).postcodes
        u = self._r()
        n = len(formats)
        return self._fill(formats[u % n], u // n)

    def _fill(self, template: str, x: Optional[int] = None) -> str:
        """``template`` with each ``#`` a digit, each ``%`` a digit from 1 to 9 and each ``?``
        a capital letter, from ``x`` or from new draws (two for a long template)."""
        if x is None:
            x = self._r()
            if len(template) > 12:
                x |= self._r() << 62
        out = []
        for c in template:
            if c == "#":
                x, r = divmod(x, 10)
                out.append(_DIGITS[r])
            elif c == "%":
                x, r = divmod(x, 9)
                out.append(_DIGITS[r + 1])
            elif c == "?":
                x, r = divmod(x, 26)
                out.append(_UPPER[r])
            else:
                out.append(c)
        return "".join(out)

    def country_code(self) -> str:
        """An ISO 3166 alpha-2 country code, each as likely (the locale's own: ``fake.country``)."""
        codes: List[str] = common_data()["country_codes"]
        return codes[((self._r() >> 31) * len(codes)) >> 31]

    @property
    def country(self) -> str:
        """The locale's country (ISO 3166 alpha-2)."""
        return (self._loc or self._load()).country

    def address(self) -> str:
        """A postal address on several lines, in the locale's layout."""
        d = self._loc or self._load()
        return d.address_format.format(
            street=self.street_address(), city=self.city(), postcode=self.postcode()
        )

    def latitude(self) -> float:
        """A latitude in degrees, uniform over the sphere's surface (6 decimals)."""
        return round(math.degrees(math.asin(2.0 * self._unit() - 1.0)), 6)

    def longitude(self) -> float:
        """A longitude in degrees, uniform in [-180, 180) (6 decimals)."""
        return round(360.0 * self._unit() - 180.0, 6)

    def coordinates(
        self, near: Tuple[float, float], radius_km: float = 10.0
    ) -> Tuple[float, float]:
        """``(latitude, longitude)`` uniform over the disc of ``radius_km`` around ``near``
        (on the plane tangent there, which is close for radii of up to some hundred km)."""
        try:
            lat0, lon0 = (float(v) for v in near)
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"near must be a (latitude, longitude) pair, got {near!r}"
            ) from None
        if not (-90.0 <= lat0 <= 90.0 and -180.0 <= lon0 <= 180.0):
            raise ConfigurationError(f"near must be a latitude and a longitude, got {near!r}")
        radius = check_positive("radius_km", radius_km)
        r = radius * math.sqrt(self._unit())
        theta = _TWO_PI * self._unit()
        lat = lat0 + r * math.cos(theta) / 111.32
        cos_lat = max(math.cos(math.radians(lat0)), 1e-9)
        lon = lon0 + r * math.sin(theta) / (111.32 * cos_lat)
        lon = (lon + 180.0) % 360.0 - 180.0
        return round(max(-90.0, min(90.0, lat)), 6), round(lon, 6)

    # -- money, banking, internet ------------------------------------------------------------

    def iban(self) -> str:
        """An IBAN of the locale's country (Faker's layout of its bank account number), with
        valid ISO 13616 check digits."""
        d = self._loc or self._load()
        bban = self._fill(d.bban_format)
        country = d.iban_country
        check = 98 - _iban_number(bban + country + "00") % 97
        return f"{country}{check:02d}{bban}"

    def credit_card_number(self, kind: Optional[str] = None) -> str:
        """A card number with a valid Luhn check digit: ``kind`` "visa", "mastercard", "amex"
        or "discover" (by default one of them, each as likely)."""
        u = self._r()
        if kind is None:
            kind = _CARD_KINDS[u % len(_CARD_KINDS)]
        spec = _CARDS.get(kind)
        if spec is None:
            raise ConfigurationError(
                f"unknown card kind {kind!r}: the kinds are {', '.join(_CARD_KINDS)}"
            )
        prefixes, length = spec[0]
        prefix = prefixes[(u >> 8) % len(prefixes)]
        body_len = length - len(prefix) - 1
        body = f"{prefix}{self._r() % 10**body_len:0{body_len}d}"
        return body + _luhn_digit(body)

    def currency_code(self) -> str:
        """An ISO 4217 currency code, each as likely."""
        codes: List[str] = common_data()["currency_codes"]
        return codes[((self._r() >> 31) * len(codes)) >> 31]

    def price(self, low: float = 1.0, high: float = 1000.0, decimals: int = 2) -> Decimal:
        """A shop price: log-uniform between ``low`` and ``high`` (as many cheap items as
        dear ones per factor of ten), to ``decimals`` places."""
        lo = check_positive("low", low)
        hi = check_positive("high", high)
        if hi < lo:
            raise ConfigurationError(f"price needs low <= high, got {low} and {high}")
        value = lo * math.exp(math.log(hi / lo) * self._unit())
        return Decimal(repr(round(value, decimals))).quantize(Decimal(1).scaleb(-decimals))

    def ipv4(self) -> str:
        """A public unicast IPv4 address."""
        u = self._r()
        first = _IPV4_FIRST[(u >> 31) % len(_IPV4_FIRST)]
        return f"{first}.{(u >> 16) & 255}.{(u >> 8) & 255}.{u & 255}"

    def ipv6(self) -> str:
        """A global unicast IPv6 address (in 2000::/3), in its compressed form."""
        import ipaddress

        value = (self._r() << 66) | (self._r() << 4) | (self._r() & 15)
        value = (value & ((1 << 125) - 1)) | (1 << 125)
        return str(ipaddress.IPv6Address(value))

    def mac_address(self) -> str:
        """A locally administered unicast MAC address."""
        b = self._r().to_bytes(8, "little")
        return f"{(b[0] & 0xFC) | 2:02x}:{b[1]:02x}:{b[2]:02x}:{b[3]:02x}:{b[4]:02x}:{b[5]:02x}"

    def user_agent(self) -> str:
        """A browser's User-Agent string with a recent version."""
        u = self._r()
        template = _USER_AGENTS[u % len(_USER_AGENTS)]
        return template.format(
            110 + (u >> 8) % 20,
            5000 + (u >> 16) % 1400,
            (u >> 31) % 200,
            10 + (u >> 40) % 5,
            15 + (u >> 44) % 3,
            110 + (u >> 48) % 20,
        )

    def url(self) -> str:
        """A web address at the locale's top-level domain."""
        d = self._loc or self._load()
        u = self._r()
        names = d.last_mail
        host = names[((u >> 31) * len(names)) >> 31] or "example"
        tld = _TLD.get(d.locale, "com")
        words = [w for w in (_mail_form(d.words[(u & _MASK31) * len(d.words) >> 31]),) if w]
        path = f"/{words[0]}" if words and (u >> 8) & 1 else "/"
        return f"https://www.{host}.{tld}{path}"

    # -- text --------------------------------------------------------------------------------

    def word(self) -> str:
        """A word of the locale."""
        values = (self._loc or self._load()).words
        return values[((self._r() >> 31) * len(values)) >> 31]

    def words(self, n: int = 3) -> List[str]:
        """``n`` words of the locale."""
        n = check_count("n", n)
        values = (self._loc or self._load()).words
        m = len(values)
        return [values[((self._r() >> 31) * m) >> 31] for _ in range(n)]

    def sentence(self, words: Optional[int] = None) -> str:
        """A sentence of ``words`` words (by default 4 to 10)."""
        if words is None:
            words = 4 + self._r() % 7
        items = self.words(words)
        if (self._loc or self._load()).locale == "ja_JP":
            return "".join(items) + "。"
        if not items:
            return ""
        items[0] = items[0][:1].upper() + items[0][1:]
        return " ".join(items) + "."

    def product_name(self) -> str:
        """A product name such as "Portable Bamboo Lamp" (English)."""
        u = self._r()
        return (
            f"{_PRODUCT_ADJECTIVES[u & 15]} {_PRODUCT_MATERIALS[(u >> 4) & 15]} "
            f"{_PRODUCT_NOUNS[((u >> 31) * len(_PRODUCT_NOUNS)) >> 31]}"
        )

    # -- dates and ids -----------------------------------------------------------------------

    def date_between(self, start: Any, end: Any) -> date:
        """A date from ``start`` to ``end``, both included, each day as likely."""
        a = _as_date(start, "start")
        b = _as_date(end, "end")
        if b < a:
            raise ConfigurationError(f"date_between needs start <= end, got {a} and {b}")
        return a + timedelta(days=self.integer(0, (b - a).days))

    def datetime_between(self, start: Any, end: Any) -> datetime:
        """A time from ``start`` (included) to ``end`` (excluded), uniform, to the
        microsecond (aware times keep their zone)."""
        a = _as_datetime(start, "start")
        b = _as_datetime(end, "end")
        span = (b - a) // timedelta(microseconds=1)
        if span <= 0:
            raise ConfigurationError(f"datetime_between needs start < end, got {a} and {b}")
        return a + timedelta(microseconds=self.integer(0, span - 1))

    def timestamp_between(self, start_ms: int, end_ms: int) -> int:
        """Epoch milliseconds from ``start_ms`` (included) to ``end_ms`` (excluded)."""
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start_ms, end_ms)):
            raise ConfigurationError(
                f"timestamp_between takes whole milliseconds, got {start_ms!r}, {end_ms!r}"
            )
        if end_ms <= start_ms:
            raise ConfigurationError(
                f"timestamp_between needs start_ms < end_ms, got {start_ms} and {end_ms}"
            )
        return self.integer(start_ms, end_ms - 1)

    def uuid4(self) -> str:
        """A version-4 UUID from the subject's stream (so a run repeats it)."""
        value = (self._r() << 66) | (self._r() << 4) | (self._r() & 15)
        return str(uuid.UUID(int=value, version=4))

    def sequence(self, start: int = 0, step: int = 1) -> int:
        """``start + step * index`` for the subject's global index: numbers that follow the
        population, the same for a subject in any run or shard."""
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, step)):
            raise ConfigurationError(f"sequence takes whole numbers, got {start!r}, {step!r}")
        return start + step * self._index()

    # -- distributions -----------------------------------------------------------------------

    def uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        """Uniform in ``[low, high)``."""
        a = check_finite("low", low)
        b = check_finite("high", high)
        if b < a:
            raise ConfigurationError(f"uniform needs low <= high, got {low} and {high}")
        return a + (b - a) * ((self._r() >> 9) / _TWO_POW_53)

    def integer(self, low: int, high: int) -> int:
        """A whole number from ``low`` to ``high``, both included, each as likely (no bias:
        a draw beyond the largest multiple of the range is drawn again)."""
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
            raise ConfigurationError(f"integer takes whole numbers, got {low!r}, {high!r}")
        n = high - low + 1
        if n <= 0:
            raise ConfigurationError(f"integer needs low <= high, got {low} and {high}")
        drawn: int = self._rng.randint(low, high)
        return drawn

    def normal(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        """Normal with mean ``mu`` and standard deviation ``sigma`` (Box-Muller on two
        draws; nothing is held back for the next call, so each call is its own)."""
        mu = check_finite("mu", mu)
        sigma = check_finite("sigma", sigma)
        if sigma < 0:
            raise ConfigurationError(f"sigma must be >= 0, got {sigma}")
        u1 = 1.0 - (self._r() >> 9) / _TWO_POW_53
        u2 = (self._r() >> 9) / _TWO_POW_53
        return mu + sigma * math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)

    def lognormal(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        """``exp(X)`` for ``X`` normal with mean ``mu`` and deviation ``sigma``."""
        return math.exp(self.normal(mu, sigma))

    def exponential(self, rate: float = 1.0) -> float:
        """Exponential with rate ``rate`` (mean ``1 / rate``)."""
        rate = check_positive("rate", rate)
        return -math.log(1.0 - (self._r() >> 9) / _TWO_POW_53) / rate

    def pareto(self, alpha: float, scale: float = 1.0) -> float:
        """Pareto with shape ``alpha`` and minimum ``scale``: ``P(X > x) = (scale/x)**alpha``."""
        alpha = check_positive("alpha", alpha)
        scale = check_positive("scale", scale)
        drawn: float = scale * (1.0 - (self._r() >> 9) / _TWO_POW_53) ** (-1.0 / alpha)
        return drawn

    def zipf(self, n: int, s: float = 1.0) -> int:
        """A rank from 1 to ``n`` with ``P(k)`` proportional to ``k ** -s``."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ConfigurationError(f"zipf needs n >= 1 items, got {n!r}")
        s = check_finite("s", s)
        if s < 0:
            raise ConfigurationError(f"zipf needs s >= 0, got {s}")
        cum = _zipf_table(n, s)
        return bisect_right(cum, (self._r() >> 9) / _TWO_POW_53) + 1

    def choice(self, items: Sequence[Any], weights: Optional[Sequence[float]] = None) -> Any:
        """One of ``items``: each as likely, or with probabilities proportional to
        ``weights`` (:meth:`chooser` works the weights out once for repeated choices)."""
        if not len(items):
            raise ConfigurationError("choice needs at least one item")
        if weights is None:
            return items[self.integer(0, len(items) - 1)]
        return Chooser(self, items, weights)()

    def chooser(self, items: Sequence[Any], weights: Sequence[float]) -> Chooser:
        """A weighted choice over ``items`` to call many times: ``pick = fake.chooser(...)``,
        then ``pick()``."""
        return Chooser(self, items, weights)

    def bernoulli(self, p: float) -> bool:
        """True with probability ``p``."""
        p = check_finite("p", p)
        if not 0.0 <= p <= 1.0:
            raise ConfigurationError(f"bernoulli needs 0 <= p <= 1, got {p}")
        return (self._r() >> 9) / _TWO_POW_53 < p

    def poisson(self, lam: float) -> int:
        """Poisson with mean ``lam``: inversion below 10, Hormann's transformed rejection
        (PTRS, exact) from 10 on."""
        lam = check_finite("lam", lam)
        if lam < 0:
            raise ConfigurationError(f"poisson needs lam >= 0, got {lam}")
        if lam == 0.0:
            return 0
        if lam < 10.0:
            u = (self._r() >> 9) / _TWO_POW_53
            k = 0
            p = math.exp(-lam)
            cdf = p
            while u >= cdf and p > 0.0:
                k += 1
                p *= lam / k
                cdf += p
            return k
        slam = math.sqrt(lam)
        loglam = math.log(lam)
        b = 0.931 + 2.53 * slam
        a = -0.059 + 0.02483 * b
        invalpha = 1.1239 + 1.1328 / (b - 3.4)
        vr = 0.9277 - 3.6224 / (b - 2.0)
        while True:
            u = (self._r() >> 9) / _TWO_POW_53 - 0.5
            v = (self._r() >> 9) / _TWO_POW_53
            us = 0.5 - abs(u)
            k = math.floor((2.0 * a / us + b) * u + lam + 0.43) if us > 0 else -1
            if us >= 0.07 and v <= vr:
                return int(k)
            if k < 0 or (us < 0.013 and v > us):
                continue
            if v <= 0.0:
                continue
            if (math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b)) <= (
                -lam + k * loglam - math.lgamma(k + 1)
            ):
                return int(k)

    def money(
        self,
        low: Union[int, float, str, Decimal],
        high: Union[int, float, str, Decimal],
        decimals: int = 2,
    ) -> Decimal:
        """An amount from ``low`` to ``high`` (both included) with ``decimals`` places, each
        amount of that grid as likely, as an exact ``Decimal``."""
        if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 18:
            raise ConfigurationError(f"decimals must be a whole number 0..18, got {decimals!r}")
        try:
            a = Decimal(str(low)).scaleb(decimals)
            b = Decimal(str(high)).scaleb(decimals)
        except ArithmeticError:
            raise ConfigurationError(f"money needs numbers, got {low!r} and {high!r}") from None
        lo = int(a.to_integral_value(rounding="ROUND_CEILING"))
        hi = int(b.to_integral_value(rounding="ROUND_FLOOR"))
        if hi < lo:
            raise ConfigurationError(
                f"money needs low <= high with an amount of {decimals} decimals between, "
                f"got {low} and {high}"
            )
        return Decimal(self.integer(lo, hi)).scaleb(-decimals)

    # -- unique values and Faker -------------------------------------------------------------

    @property
    def unique(self) -> "Unique":
        """Values no two subjects share, made from the subject's index (no record kept)."""
        u = self._unique
        if u is None:
            u = self._unique = Unique(self)
        return u

    @property
    def faker(self) -> "FakerBridge":
        """Faker's providers, seeded from the subject's stream: ``fake.faker.ean13()``.
        Needs ``pip install 'doge-datagen[fake]'``; each call costs what Faker costs (tens
        of microseconds and more), but a run repeats its values."""
        f = self._faker
        if f is None:
            f = self._faker = FakerBridge(self)
        return f


_ZIPF: Dict[Tuple[int, float], List[float]] = {}


def _zipf_table(n: int, s: float) -> List[float]:
    table = _ZIPF.get((n, s))
    if table is None:
        weights = [k**-s for k in range(1, n + 1)]
        total = math.fsum(weights)
        table = [c / total for c in accumulate(weights)]
        table[-1] = 1.0
        if len(_ZIPF) > 64:
            _ZIPF.clear()
        _ZIPF[(n, s)] = table
    return table


class Unique:
    """Values unique over the population (:attr:`Fake.unique`): each is built around
    :func:`permute_index` of the subject's global index, which no other subject of the
    run (in any shard) has, so nothing needs to be remembered or shared."""

    __slots__ = ("_fake",)

    def __init__(self, fake: Fake) -> None:
        self._fake = fake

    def id(self) -> int:
        """A number no other subject gets (the permuted index)."""
        f = self._fake
        return permute_index(f._index(), f._key())

    def email(self, name: Optional[str] = None) -> str:
        """An e-mail address no other subject gets: the name, then the unique number (a
        name's e-mail form has no digits, so the number alone tells addresses apart)."""
        f = self._fake
        number = permute_index(f._index(), f._key())
        d = f._loc or f._load()
        first, last = f._mail_pair(name, d)
        u = f._r()
        local = f"{first}{'.' if u & 1 else '_'}{last}" if last else first
        domains = d.email_domains
        return f"{local}{number}@{domains[((u >> 31) * len(domains)) >> 31]}"

    def user_name(self, name: Optional[str] = None) -> str:
        """A user name no other subject gets."""
        f = self._fake
        number = permute_index(f._index(), f._key())
        first, last = f._mail_pair(name, f._loc or f._load())
        return f"{first[:1]}{last}{number}" if last else f"{first}{number}"

    def uuid4(self) -> str:
        """A version-4 UUID no other subject gets: 64 of its random bits are a bijection of
        the subject's index, the other 58 come from its stream."""
        f = self._fake
        h = _mix64((f._index() + f._key()) & _MASK64)
        free = (h << 58) | (f._r() >> 4)
        value = (
            ((free >> 74) << 80)
            | (4 << 76)
            | (((free >> 62) & 0xFFF) << 64)
            | (2 << 62)
            | (free & ((1 << 62) - 1))
        )
        return str(uuid.UUID(int=value))


class FakerBridge:
    """Faker's providers, each call on a Faker seeded from the subject's stream."""

    __slots__ = ("_fake", "_instance")

    def __init__(self, fake: Fake) -> None:
        self._fake = fake
        self._instance: Any = None

    def _faker(self) -> Any:
        inst = self._instance
        if inst is None:
            try:
                from faker import Faker
            except ImportError:
                raise ConfigurationError(
                    "fake.faker needs Faker: pip install 'doge-datagen[fake]'"
                ) from None
            inst = self._instance = Faker(self._fake.locale)
        return inst

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        inst = self._faker()
        if not callable(getattr(inst, name, None)):
            raise ConfigurationError(f"Faker has no provider {name!r}")

        def call(*args: Any, **kwargs: Any) -> Any:
            inst.seed_instance(self._fake._r())
            return getattr(inst, name)(*args, **kwargs)

        call.__name__ = name
        return call


def _use_speedups() -> None:
    """With the C speed-ups built, the four values a subject factory makes most (``name``,
    ``email``, ``street_address``, ``phone_number``) are the same methods in C, with the same
    draws and text; what they do not cover (a gender, a name other than the one just drawn)
    goes to the Python methods above, kept as ``_name_py`` and so on. A Fake's draw ``_r`` is
    then the C ``Draw``: with the engine's C ``randint``, the C values move the subject's
    stream on without a call. Not with ``DOGE_DATAGEN_PURE_PYTHON=1``, as for the engine's C
    loop."""
    global _draw
    import os

    if os.environ.get("DOGE_DATAGEN_PURE_PYTHON", "") not in ("", "0"):
        return
    try:
        from doge_datagen.values import _cvalues  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - a checkout without the built extension
        return
    for name in ("name", "email", "street_address", "phone_number"):
        setattr(Fake, f"_{name}_py", getattr(Fake, name))
        setattr(Fake, name, _cvalues.method(Fake, name))
    _draw = _cvalues.Draw


_use_speedups()
