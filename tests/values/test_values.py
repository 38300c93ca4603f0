"""``datagen.fake``: values keyed to the subject (any population size, either loop, any
number of shards), unique values, the locales' data and frequencies, the checksums, and
each distribution against its exact law.

Every statistical check has a false-alarm rate of ALPHA = 1e-6 (real scipy quantiles, fixed
seeds), as in tests/engine/test_engine_vs_reference.py.
"""

import functools
import glob
import json
import math
import os
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Dict, List

import pytest
from scipy import stats
from support import value_models
from support.loops import output_by_pure_python

from doge_datagen import ConfigurationError
from doge_datagen.distributed.sharded import run_sharded
from doge_datagen.engine import loop as engine
from doge_datagen.engine.randomness import CREATE_TICK, SubjectRandom
from doge_datagen.values import LOCALES, Fake, iban_valid, luhn_valid, permute_index
from doge_datagen.values._locale import locale_data

ALPHA = 1e-6
Z_LIMIT = float(stats.norm.isf(ALPHA / 2))


def keyed(seed: Any = 1, locale: str = "en_US") -> "tuple[SubjectRandom, Fake]":
    """A subject stream and a Fake on it, keyed as the engine keys a creation."""
    rng = SubjectRandom(seed)
    rng.begin(0)
    rng.at_tick(CREATE_TICK)
    return rng, Fake(rng, locale)


def values_of(datagen: Any) -> Dict[int, Dict[str, Any]]:
    """Each subject's values as its first event shows them (visits excluded)."""
    out: Dict[int, Dict[str, Any]] = {}
    for event in datagen.sinks[0].events:
        row = event.value
        out.setdefault(row["id"], {k: v for k, v in row.items() if k not in ("visits",)})
    return out


def events_of(datagen: Any) -> List[Any]:
    return [
        (e.timestamp, e.trigger, json.dumps(e.value, sort_keys=True))
        for e in datagen.sinks[0].events
    ]


# -- the same values for a subject, whatever the run ---------------------------------------


def test_a_subject_gets_the_same_values_in_a_small_and_a_large_run():
    small = value_models.people(subjects=10, ticks=30, seed=9)
    large = value_models.people(subjects=2000, ticks=30, seed=9)
    small.start()
    large.start()
    a, b = values_of(small), values_of(large)
    assert len(a) >= 5
    for index, values in a.items():
        assert b[index] == values
    # The values differ between subjects and with the seed.
    assert len({v["name"] + v["phone"] for v in b.values()}) == len(b)
    other = value_models.people(subjects=10, ticks=30, seed=10)
    other.start()
    assert values_of(other) != a


def test_both_loops_draw_the_same_values_at_creation_and_at_events(monkeypatch):
    if engine._speedups is None and os.environ.get("CI") != "true":
        pytest.skip("the C speed-ups are not built in this checkout")
    from support.loops import CountingLoop

    outcomes = []
    for speedups in (CountingLoop(engine._speedups), None):
        with monkeypatch.context() as patch:
            patch.setattr(engine, "_speedups", speedups)
            datagen = value_models.people(subjects=300, ticks=60, seed=4)
            datagen.start()
        if speedups is not None:
            assert speedups.runs >= 1, "the C loop did not run"
        outcomes.append(events_of(datagen))
    c_events, python_events = outcomes
    assert len(c_events) > 300
    assert c_events == python_events
    # Visits draw from the subject's stream at the event's tick: they vary.
    visits = {e[2] for e in c_events if e[1] == "enter"}
    assert len(visits) > 100


def test_arrivals_get_their_own_values_in_any_run():
    a = value_models.people(subjects=20, ticks=60, seed=2, arrivals=1.5)
    b = value_models.people(subjects=20, ticks=60, seed=2, arrivals=1.5)
    a.start()
    b.start()
    va = values_of(a)
    assert max(va) >= 40  # arrivals, with indices after the initial subjects
    assert va == values_of(b)


def test_a_sharded_run_gives_each_subject_the_values_of_one_process(tmp_path):
    path = str(tmp_path / "values")
    single = value_models.people(subjects=240, ticks=40, seed=6, arrivals=1.0)
    single.start()
    expected = sorted(events_of(single), key=lambda e: e[2])
    summary = run_sharded(functools.partial(value_models.people, path, 240, 40, 6, 1.0), shards=3)
    parts = sorted(glob.glob(path + ".*"))
    assert [os.path.basename(p) for p in parts] == ["values.0", "values.1", "values.2"]
    lines = []
    for part in parts:
        with open(part) as f:
            lines.extend(json.loads(line) for line in f)
    got = sorted(
        ((r["timestamp"], r["trigger"], json.dumps(r, sort_keys=True)) for r in lines),
        key=lambda e: e[2],
    )
    assert summary.events == len(expected) > 240
    assert got == expected
    # Unique e-mail addresses and user names stay unique across the shards.
    firsts = {r["id"]: r for r in lines}
    assert len({r["unique_email"] for r in firsts.values()}) == len(firsts)
    assert len({r["user"] for r in firsts.values()}) == len(firsts)
    assert sorted(r["seq"] for r in firsts.values()) == sorted(1000 + i for i in firsts)


# -- unique values -------------------------------------------------------------------------


def test_the_index_permutation_is_one_to_one_over_a_million_subjects():
    key = SubjectRandom(5)._key
    values = [permute_index(i, key) for i in range(1_000_000)]
    assert len(set(values)) == 1_000_000
    assert all(0 <= v < 1 << 20 for v in values)
    # It shuffles: neighbours land far apart, and another key gives another order.
    assert sum(abs(values[i + 1] - values[i]) > 1000 for i in range(1000)) > 990
    other = SubjectRandom(6)._key
    assert [permute_index(i, other) for i in range(1000)] != values[:1000]
    # Each block of indices maps onto itself, so blocks never collide.
    for block in (20, 21, 33):
        lo, hi = 1 << block, (1 << block) + 4096
        out = [permute_index(i, key) for i in range(lo, hi)]
        assert len(set(out)) == len(out)
        assert all((1 << block) <= v < (1 << (block + 1)) for v in out)
    with pytest.raises(ConfigurationError, match="not negative"):
        permute_index(-1, key)


def test_the_small_block_is_a_permutation_of_its_whole_range():
    key = SubjectRandom(11)._key
    values = {permute_index(i, key) for i in range(1 << 20)}
    assert values == set(range(1 << 20))


@pytest.mark.slow
def test_unique_emails_of_a_million_subjects_are_all_different():
    rng, fake = keyed(8)
    unique = fake.unique
    seen = set()
    for i in range(1_000_000):
        rng._i, rng._s = i, None
        seen.add(unique.email())
    assert len(seen) == 1_000_000
    # Names repeat among a million subjects; only the number keeps the addresses apart.
    rng._i = None


def test_unique_values_need_a_subject():
    fake = Fake(SubjectRandom(1))
    with pytest.raises(ConfigurationError, match="belong to a subject"):
        fake.unique.email()
    with pytest.raises(ConfigurationError, match="belong to a subject"):
        fake.sequence()


def test_unique_uuids_are_version_4_and_differ():
    import uuid

    rng, fake = keyed(3)
    seen = set()
    for i in range(20_000):
        rng._i, rng._s = i, None
        value = uuid.UUID(fake.unique.uuid4())
        assert value.version == 4 and value.variant == uuid.RFC_4122
        seen.add(value)
    assert len(seen) == 20_000


# -- locales and data ----------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_every_locale_draws_from_its_own_lists(locale):
    data = locale_data(locale)
    rng, fake = keyed(2, locale)
    firsts = set(data.first_any.values)
    lasts = set(data.last.values)
    for i in range(300):
        rng._i, rng._s = i, None
        first = fake.first_name()
        assert first in firsts
        assert fake.last_name() in lasts
        assert fake.first_name("male") in set(data.first_male.values)
        assert fake.city() in data.cities
        assert fake.company() in data.companies
        assert fake.job() in data.jobs
        assert fake.word() in data.words
        email = fake.email()
        assert email.isascii() and email.count("@") == 1
        assert email.split("@")[1] in data.email_domains
        assert iban_valid(fake.iban())
        street = fake.street_address()
        assert any(s in street for s in data.streets)
    assert fake.country == data.country


def test_a_name_gives_its_email():
    rng, fake = keyed(4, "de_DE")
    rng._i, rng._s = 0, None
    assert (
        fake.email("Jürgen Weiß")
        .split("@")[0]
        .replace(".", "")
        .startswith(("jurgenweiss", "jweiss"))
    )
    assert fake["pl_PL"].email("Łucja Żak").split("@")[0][:1] == "l"
    for _ in range(20):
        assert fake["ja_JP"].email("佐藤 晃").startswith(("sato.akira", "sakira", "satoakira"))


@pytest.mark.parametrize("locale", ["en_US", "de_DE", "pl_PL", "pt_BR"])
def test_a_name_just_drawn_gives_the_email_its_words_give(locale):
    """email(name) of the name just drawn reads the e-mail forms of its two picks; any other
    string with the same words gives the same forms."""
    rng, fake = keyed(6, locale)
    data = locale_data(locale)
    for i in range(2000):
        rng._i, rng._s = i, None
        name = fake.name()
        copy = " ".join(name.split(" "))
        assert copy == name and copy is not name
        assert fake._mail_pair(name, data) == fake._mail_pair(copy, data)


def test_locales_are_chosen_per_model_per_call_and_per_country():
    rng, fake = keyed(1)
    rng._i, rng._s = 0, None
    de = set(locale_data("de_DE").last.values)
    assert fake["de_DE"].last_name() in de
    assert fake.for_country("de").locale == "de_DE"
    assert fake.for_country("JP").locale == "ja_JP"
    assert fake.for_country("ZZ").locale == "en_US"
    assert fake.for_country("ZZ", default="fr_FR").locale == "fr_FR"
    with pytest.raises(ConfigurationError, match="unknown locale 'xx_XX'"):
        fake["xx_XX"]
    datagen = value_models.people(subjects=1)
    assert datagen.fake.locale == "en_US"
    datagen.fake_locale = "pt_BR"
    assert datagen.fake.locale == "pt_BR"
    with pytest.raises(ConfigurationError, match="unknown locale"):
        datagen.fake_locale = "klingon"


def test_importing_the_package_reads_no_locale_data():
    probe = (
        "import sys, doge_datagen\n"
        "from doge_datagen import DataOnlineGenerator\n"
        "d = DataOnlineGenerator(['a'], 'a', lambda: 0, 1, 1000, 1, seed=1)\n"
        "print(any(m.startswith('doge_datagen.values') for m in sys.modules))\n"
        "from doge_datagen.values import _locale\n"
        "print(sorted(_locale._cache))\n"
        "d.fake.name()\n"
        "print(sorted(_locale._cache))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["False", "[]", "['en_US']"]


def test_faker_providers_are_seeded_from_the_subject_stream():
    if os.environ.get("CI") == "true":
        import faker  # noqa: F401  # the test extra installs it: missing in CI is a failure
    else:
        pytest.importorskip("faker")
    rng, fake = keyed(7)
    out = []
    for _ in range(2):
        rng._i, rng._s = 3, None
        out.append((fake.faker.ean13(), fake.faker.license_plate()))
    assert out[0] == out[1]
    rng._i, rng._s = 4, None
    assert fake.faker.ean13() != out[0][0]
    with pytest.raises(ConfigurationError, match="no provider 'no_such_thing'"):
        fake.faker.no_such_thing()


# -- checksums -----------------------------------------------------------------------------


def test_the_checks_know_valid_and_invalid_numbers():
    assert luhn_valid("4111111111111111") and luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112") and not luhn_valid("79927398710")
    assert iban_valid("GB82WEST12345698765432") and iban_valid("DE89370400440532013000")
    assert not iban_valid("GB82WEST12345698765433") and not iban_valid("DE88370400440532013000")


@pytest.mark.parametrize("locale", LOCALES)
def test_every_card_and_iban_drawn_passes_its_check(locale):
    rng, fake = keyed(12, locale)
    kinds = Counter()
    for i in range(5000):
        rng._i, rng._s = i, None
        card = fake.credit_card_number()
        assert card.isdigit() and luhn_valid(card), card
        kinds[card[0]] += 1
        iban = fake.iban()
        assert iban_valid(iban), iban
        # One wrong digit is caught.
        last = iban[-1]
        if last.isdigit():
            assert not iban_valid(iban[:-1] + str((int(last) + 1) % 10))
    assert set(kinds) == {"3", "4", "5", "6"}
    assert len(fake.credit_card_number("amex")) == 15
    with pytest.raises(ConfigurationError, match="unknown card kind 'diners'"):
        fake.credit_card_number("diners")


# -- frequencies and distributions ---------------------------------------------------------


def chi_square_test(observed: Counter, expected: Dict[Any, float], label: str) -> None:
    """Pearson's chi-square of the counts against expected counts, the cells with fewer than
    10 expected merged into one; fails with probability ALPHA under the null."""
    cells = []
    rest_o = rest_e = 0.0
    for key, e in expected.items():
        if e < 10:
            rest_o += observed.get(key, 0)
            rest_e += e
        else:
            cells.append((observed.get(key, 0), e))
    unexpected = sum(v for k, v in observed.items() if k not in expected)
    assert unexpected == 0, (label, [k for k in observed if k not in expected][:5])
    if rest_e > 0:
        cells.append((rest_o, rest_e))
    stat = sum((o - e) ** 2 / e for o, e in cells)
    df = len(cells) - 1
    assert df >= 1
    assert stat <= stats.chi2.isf(ALPHA, df), (label, stat, df)


def draws(fn: Any, n: int, seed: int = 1) -> List[Any]:
    """``n`` values of ``fn(fake)``, ten per subject stream, as a run would draw them."""
    rng, fake = keyed(seed)
    out = []
    for i in range(n // 10):
        rng._i, rng._s = i, None
        out.extend(fn(fake) for _ in range(10))
    return out


def test_first_and_last_names_follow_the_data_frequencies():
    data = locale_data("en_US")
    assert data.first_any.cum is not None and data.last.cum is not None  # weighted lists
    n = 200_000
    firsts = Counter(draws(lambda f: f.first_name(), n))
    lasts = Counter(draws(lambda f: f.last_name(), n, seed=2))
    for pick, observed, label in ((data.first_any, firsts, "first"), (data.last, lasts, "last")):
        weights = Counter()
        prev = 0
        for value, bound in zip(pick.values, pick.cum):
            weights[value] += (bound - prev) / (1 << 31)
            prev = bound
        chi_square_test(observed, {k: w * n for k, w in weights.items()}, label)
    # The commonest last name is drawn about as often as the data says (a real frequency,
    # not a uniform pick): Smith is about 1% of the US list, a uniform pick 0.1%.
    assert lasts["Smith"] > 5 * n / len(data.last.values)


def test_a_uniform_list_is_uniform():
    data = locale_data("de_DE")
    rng, fake = keyed(3, "de_DE")
    n = 100_000
    observed = Counter()
    for i in range(n // 10):
        rng._i, rng._s = i, None
        for _ in range(10):
            observed[fake.city()] += 1
    chi_square_test(observed, {c: n / len(data.cities) for c in data.cities}, "cities")


def z_check(sample: List[float], mean: float, variance: float, fourth: float, label: str) -> None:
    """Sample mean and variance against the exact ones: z tests with the exact standard
    errors (the variance's uses the fourth central moment)."""
    n = len(sample)
    m = math.fsum(sample) / n
    assert abs(m - mean) <= Z_LIMIT * math.sqrt(variance / n), (label, "mean", m, mean)
    s2 = math.fsum((x - mean) ** 2 for x in sample) / n
    se = math.sqrt((fourth - variance**2) / n)
    assert abs(s2 - variance) <= Z_LIMIT * se, (label, "variance", s2, variance)


def cdf_check(sample: List[float], dist: Any, label: str, bins: int = 50) -> None:
    """Chi-square over ``bins`` cells of equal probability under ``dist``."""
    edges = dist.ppf([k / bins for k in range(1, bins)])
    observed = Counter(int(sum(x > e for e in edges)) for x in sample)
    chi_square_test(observed, {k: len(sample) / bins for k in range(bins)}, label)


N = 100_000


def test_uniform_normal_and_exponential_moments_and_laws():
    u = draws(lambda f: f.uniform(2.0, 5.0), N)
    z_check(u, 3.5, 9 / 12, 81 / 80, "uniform")
    cdf_check(u, stats.uniform(2.0, 3.0), "uniform")
    g = draws(lambda f: f.normal(10.0, 2.0), N)
    z_check(g, 10.0, 4.0, 3 * 16.0, "normal")
    cdf_check(g, stats.norm(10.0, 2.0), "normal")
    e = draws(lambda f: f.exponential(0.5), N)
    z_check(e, 2.0, 4.0, 9 * 16.0, "exponential")
    cdf_check(e, stats.expon(scale=2.0), "exponential")


def test_lognormal_and_pareto_laws():
    ln = draws(lambda f: f.lognormal(1.0, 0.5), N)
    cdf_check(ln, stats.lognorm(0.5, scale=math.e), "lognormal")
    z_check([math.log(x) for x in ln], 1.0, 0.25, 3 * 0.0625, "log of lognormal")
    p = draws(lambda f: f.pareto(3.0, 2.0), N)
    assert min(p) >= 2.0
    cdf_check(p, stats.pareto(3.0, scale=2.0), "pareto")


def test_zipf_weighted_choice_and_bernoulli_frequencies():
    z = Counter(draws(lambda f: f.zipf(20, 1.2), N))
    h = sum(k**-1.2 for k in range(1, 21))
    chi_square_test(z, {k: N * k**-1.2 / h for k in range(1, 21)}, "zipf")
    c = Counter(draws(lambda f: f.choice("abcd", [1, 2, 3, 4]), N))
    chi_square_test(c, {x: N * w / 10 for x, w in zip("abcd", [1, 2, 3, 4])}, "choice")
    rng, fake = keyed(4)
    pick = fake.chooser(["x", "y"], [0.9, 0.1])
    ch = Counter()
    for i in range(N // 10):
        rng._i, rng._s = i, None
        ch.update(pick() for _ in range(10))
    chi_square_test(ch, {"x": 0.9 * N, "y": 0.1 * N}, "chooser")
    b = Counter(draws(lambda f: f.bernoulli(0.3), N))
    chi_square_test(b, {True: 0.3 * N, False: 0.7 * N}, "bernoulli")
    i = Counter(draws(lambda f: f.integer(-3, 3), N))
    chi_square_test(i, {k: N / 7 for k in range(-3, 4)}, "integer")


@pytest.mark.parametrize("lam", [0.7, 4.0, 9.9, 10.0, 37.5, 900.0])
def test_poisson_follows_its_law_on_both_sides_of_the_method_change(lam):
    sample = draws(lambda f: f.poisson(lam), N, seed=int(lam * 10))
    observed = Counter(sample)
    top = int(lam + 12 * math.sqrt(lam) + 20)
    expected = {k: N * float(stats.poisson.pmf(k, lam)) for k in range(top)}
    chi_square_test(observed, expected, f"poisson {lam}")
    z_check([float(x) for x in sample], lam, lam, lam * (1 + 3 * lam), f"poisson {lam}")


def test_money_is_exact_and_uniform_on_its_grid():
    sample = draws(lambda f: f.money("1.00", "2.00", 2), N)
    assert all(isinstance(x, Decimal) and x.as_tuple().exponent == -2 for x in sample)
    chi_square_test(Counter(sample), {Decimal(100 + k) / 100: N / 101 for k in range(101)}, "money")
    cents = [float(x) for x in sample]
    z_check(
        cents,
        1.5,
        (101**2 - 1) / 12 / 10**4,
        (101**2 - 1) * (3 * 101**2 - 7) / 240 / 10**8,
        "money",
    )
    three = draws(lambda f: f.money(0, 1, 3), 1000)
    assert all(x.as_tuple().exponent == -3 and 0 <= x <= 1 for x in three)


def test_dates_and_times_fall_in_their_range_uniformly():
    start, end = date(2024, 2, 1), date(2024, 2, 29)
    d = Counter(draws(lambda f: f.date_between(start, end), N))
    chi_square_test(d, {start + timedelta(days=k): N / 29 for k in range(29)}, "dates")
    a = datetime(2024, 1, 1, tzinfo=timezone.utc)
    b = a + timedelta(hours=24)
    t = draws(lambda f: f.datetime_between(a, b), N)
    assert all(a <= x < b and x.tzinfo is timezone.utc for x in t)
    chi_square_test(Counter(x.hour for x in t), {h: N / 24 for h in range(24)}, "hours")
    ms = draws(lambda f: f.timestamp_between(1000, 1010), 10_000)
    assert set(ms) == set(range(1000, 1010))


def test_coordinates_fill_the_disc_around_a_point():
    center = (48.8566, 2.3522)
    pts = draws(lambda f: f.coordinates(center, 10.0), N)
    radii = []
    for lat, lon in pts:
        dy = (lat - center[0]) * 111.32
        dx = (lon - center[1]) * 111.32 * math.cos(math.radians(center[0]))
        radii.append(math.hypot(dx, dy))
    assert max(radii) <= 10.001
    # Uniform over the disc: (r / R)^2 is uniform.
    cdf_check([(r / 10.0) ** 2 for r in radii], stats.uniform(0, 1), "disc", bins=20)


def test_bad_arguments_are_named():
    rng, fake = keyed(1)
    for call, message in (
        (lambda: fake.first_name("robot"), "gender must be"),
        (lambda: fake.zipf(0), "zipf needs n >= 1"),
        (lambda: fake.bernoulli(1.5), "bernoulli needs 0 <= p <= 1"),
        (lambda: fake.money(5, 1), "money needs low <= high"),
        (lambda: fake.normal(0, -1), "sigma must be >= 0"),
        (lambda: fake.exponential(0), "rate must be a positive number"),
        (lambda: fake.choice([]), "at least one item"),
        (lambda: fake.choice("ab", [1]), "as many weights as items"),
        (lambda: fake.date_between("2024-02-02", "2024-02-01"), "start <= end"),
        (lambda: fake.date_between("yesterday", "2024-02-01"), "start must be a date"),
        (lambda: fake.poisson(-1), "lam >= 0"),
        (lambda: fake.coordinates((91, 0)), "near must be a latitude"),
        (lambda: fake.provider("nope"), "unknown value 'nope'"),
    ):
        with pytest.raises(ConfigurationError, match=message):
            call()
    assert fake.provider("name") == fake.name


def test_the_other_values_have_their_shapes():
    import ipaddress
    import uuid

    rng, fake = keyed(5)
    for i in range(2000):
        rng._i, rng._s = i, None
        ip = ipaddress.IPv4Address(fake.ipv4())
        assert ip.packed[0] not in (0, 10, 127) and not ip.is_multicast and not ip.is_reserved
        v6 = ipaddress.IPv6Address(fake.ipv6())
        assert int(v6) >> 125 == 1
        mac = fake.mac_address()
        assert len(mac) == 17 and int(mac[:2], 16) & 3 == 2
        assert uuid.UUID(fake.uuid4()).version == 4
        assert fake.user_agent().startswith("Mozilla/5.0 (")
        assert fake.url().startswith("https://www.")
        assert fake.sentence().endswith(".")
        assert len(fake.product_name().split()) >= 3
        price = fake.price(5, 50)
        assert Decimal(5) <= price <= Decimal(50) and price.as_tuple().exponent == -2
        assert len(fake.currency_code()) == 3 and len(fake.country_code()) == 2
        assert -90 <= fake.latitude() <= 90 and -180 <= fake.longitude() < 180
        assert fake.postcode().isdigit() and len(fake.postcode()) == 5
    gb = fake["en_GB"]
    assert all(" " in gb.postcode() for _ in range(100))


def test_the_values_are_the_same_without_the_c_speedups():
    """DOGE_DATAGEN_PURE_PYTHON=1 draws with the Python randint and makes every value in
    Python; with the speed-ups, randint and the four commonest values are C: the same stream
    steps and the same text, in every locale, for several seeds, in locale views, from an
    unkeyed generator, mixed with the Python values, and for the demo's users."""
    probe = (
        "from doge_datagen import CountingSink\n"
        "from doge_datagen.demo import banking_generator\n"
        "from doge_datagen.engine.randomness import SubjectRandom, CREATE_TICK\n"
        "from doge_datagen.values import Fake, LOCALES\n"
        "print(type(Fake.__dict__['name']).__name__)\n"
        "out = []\n"
        "for seed, locale in [(s, l) for s in (21, 2**40 + 3) for l in LOCALES]:\n"
        "    rng = SubjectRandom(seed); rng.begin(0); rng.at_tick(CREATE_TICK)\n"
        "    fake = Fake(rng, locale)\n"
        "    for i in range(300):\n"
        "        rng._i, rng._s = i, None\n"
        "        n = fake.name()\n"
        "        out += [n, fake.email(n), fake.email(), fake.email('Zoë Smith'),\n"
        "                fake.name('female'), fake.phone_number(), fake.street_address(),\n"
        "                fake.user_name(n), fake.address(), fake.name(gender=None),\n"
        "                fake.email(name=n), str(fake.normal()), str(fake.integer(0, 10**30))]\n"
        "        view = fake.for_country('DE' if i % 2 else 'JP')\n"
        "        m = view.name(); fake.name()\n"
        "        out += [m, view.email(m), fake.email(m), view.street_address(),\n"
        "                view.phone_number()]\n"
        "    rng._i = None  # the generator's own Mersenne Twister\n"
        "    n = fake.name()\n"
        "    out += [n, fake.email(n), fake.street_address(), fake.phone_number()]\n"
        "for seed in (1, 8):\n"
        "    sink = CountingSink()\n"
        "    datagen = banking_generator(sink, sink, sink, sink, subjects_num=200, ticks_num=60,\n"
        "                                seed=seed, fake=True)\n"
        "    datagen.start()\n"
        "    factory = datagen.subject_factory\n"
        "    datagen.random.begin(0); datagen.random.at_tick(CREATE_TICK)\n"
        "    for i in range(200):\n"
        "        datagen.random._i, datagen.random._s = i, None\n"
        "        u = factory.create(i)\n"
        "        out.append((u.user_id, u.balance, u.name, u.email, u.address, u.phone))\n"
        "print(repr(out))\n"
    )
    seen = {}
    for pure, out in output_by_pure_python(probe, ("0", "1")).items():
        kind, _, values = out.partition("\n")
        seen[pure] = (kind, values)
    assert seen["1"][0] == "function"
    if engine._speedups is not None or os.environ.get("CI") == "true":
        assert seen["0"][0] == "method_descriptor", "the C values are not built"
    assert len(seen["0"][1]) > 100_000 and seen["0"][1] == seen["1"][1]


def test_the_demo_with_fake_adds_names_and_emails_and_keeps_the_events(tmp_path):
    def run(*extra: str) -> Any:
        out = tmp_path / ("fake" if extra else "plain")
        done = subprocess.run(
            [sys.executable, "-m", "doge_datagen", "demo", "--no-progress", "--subjects", "60"]
            + ["--ticks", "600", "--seed", "3", "--out", str(out), *extra],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        rows = [json.loads(line) for line in (out / "clickstream.jsonl").read_text().splitlines()]
        import sqlite3

        with sqlite3.connect(out / "events.db") as db:
            columns = [c[1] for c in db.execute("PRAGMA table_info(events)")]
            assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] > len(rows)
        return rows, columns

    plain, plain_columns = run()
    named, named_columns = run("--fake")
    assert len(plain) > 20
    assert "name" not in plain_columns and named_columns == plain_columns + ["name", "email"]
    assert [{k: v for k, v in r.items() if k not in ("name", "email")} for r in named] == plain
    by_user = {}
    for r in named:
        assert "@" in r["email"] and " " in r["name"]
        assert by_user.setdefault(r["user_id"], (r["name"], r["email"])) == (r["name"], r["email"])
    assert len(set(by_user.values())) == len(by_user) > 5


def test_a_fake_pickles_without_its_word_lists_and_draws_the_same():
    import pickle

    rng, fake = keyed(9, "fr_FR")
    rng._i, rng._s = 5, None
    fake.name()
    data = pickle.dumps(fake)
    assert len(data) < 10_000  # the generator and the locale's name, not its lists (100 kB)
    copy = pickle.loads(data)
    assert copy.locale == "fr_FR" and copy._loc is None
    assert [copy.name() for _ in range(5)] == [fake.name() for _ in range(5)]


def test_every_phone_formats_plan_writes_what_its_fill_writes():
    """The C path writes a phone number from the format's plan (bytes), the Python one with
    its ``fill``: for every format of every locale, the same text for the same digits."""
    from doge_datagen.values._locale import locale_data

    checked = 0
    for locale in LOCALES:
        for fill, p, table, q, plan in locale_data(locale).phones:
            assert plan is not None, (locale, fill)
            for x in (0, 1, p // 3, p - 1):
                digits = str(p + x)
                e = table[x % q]
                expected = fill(digits, e)
                out, k = [], 0
                while k < len(plan):
                    if plan[k] < 0x80:
                        out.append(chr(plan[k]))
                        k += 1
                        continue
                    source = digits if plan[k] == 0x80 else e
                    out.append(source[plan[k + 1] : plan[k + 2]])
                    k += 3
                assert "".join(out) == expected, (locale, expected)
                checked += 1
    assert checked > 1000
