"""The C values (``values/_cvalues.c``) against the Python methods they stand in for, in one
process: the same draws and the same text whatever the Fake, its generator, its draw or its
locale data, the C path handing back to Python what it does not cover."""

import copy
import functools
import inspect
import os
import random
from typing import Any, Callable, List

import pytest

from doge_datagen.engine import loop as engine
from doge_datagen.engine.randomness import CREATE_TICK, SubjectRandom
from doge_datagen.values import LOCALES, Fake, _fake
from doge_datagen.values._locale import compile_phone, locale_data, two_to_nine

MAX62 = 2**62 - 1
C_VALUES = ("name", "email", "street_address", "phone_number")

#: A value by name: ``value("email")(name)``.
Value = Callable[[str], Callable[..., Any]]


@pytest.fixture(autouse=True)
def c_values_built() -> None:
    if not hasattr(Fake, "_name_py"):
        if engine._speedups is not None or os.environ.get("CI") == "true":
            pytest.fail("the C values are not built beside the engine's C speed-ups")
        pytest.skip("a build without the C values")


def keyed(seed: Any) -> SubjectRandom:
    rng = SubjectRandom(seed)
    rng.begin(0)
    rng.at_tick(CREATE_TICK)
    return rng


def c_of(fake: Fake) -> Value:
    return lambda name: getattr(fake, name)


def python_of(fake: Fake) -> Value:
    """The Python method behind each C value of ``fake``."""
    return lambda name: getattr(fake, f"_{name}_py")


def same_both_ways(
    make: Callable[[], Fake], steps: Callable[[Value, Fake], List[Any]]
) -> List[Any]:
    """``steps`` run on a Fake from ``make()`` with the C values and on another with the
    Python methods: the same values, and the two generators in the same state after."""
    fake_c, fake_py = make(), make()
    with_c = steps(c_of(fake_c), fake_c)
    with_py = steps(python_of(fake_py), fake_py)
    assert with_c == with_py
    rng_c, rng_py = fake_c._rng, fake_py._rng
    assert getattr(rng_c, "_s", None) == getattr(rng_py, "_s", None)
    assert rng_c.getstate() == rng_py.getstate()
    return with_c


def four(value: Value) -> List[Any]:
    """What a subject factory makes: a name, its e-mail address, a street and a phone."""
    name = value("name")()
    return [name, value("email")(name), value("street_address")(), value("phone_number")()]


def subjects(count: int) -> Callable[[Value, Fake], List[Any]]:
    """``four`` for ``count`` subjects, each with its own stream."""

    def steps(value: Value, fake: Fake) -> List[Any]:
        out: List[Any] = []
        for i in range(count):
            fake._rng._i, fake._rng._s = i, None
            out += four(value)
        return out

    return steps


def test_the_c_values_are_method_descriptors_with_signatures():
    for name in C_VALUES:
        assert type(Fake.__dict__[name]).__name__ == "method_descriptor"
    assert list(inspect.signature(Fake.name).parameters) == ["self", "gender"]
    assert list(inspect.signature(Fake.email).parameters) == ["self", "name"]
    with pytest.raises(TypeError):
        Fake.name(object())  # not a Fake


@pytest.mark.parametrize("generator", [SubjectRandom, random.Random])
def test_a_fakes_draw_is_its_generators_randint_over_62_bits(generator):
    """``fake._r`` is the C Draw: keyed, unkeyed, on a plain random.Random, it returns what
    ``functools.partial(rng.randint, 0, 2**62 - 1)`` returns on a twin generator."""
    rng, twin = generator(7), generator(7)
    draw, reference = Fake(rng)._r, functools.partial(twin.randint, 0, MAX62)
    assert type(draw).__name__ == "Draw"
    keys = isinstance(rng, SubjectRandom)
    if keys:
        for r in (rng, twin):
            r.begin(0)
            r.at_tick(CREATE_TICK)
    seen = []
    for i in range(300):
        if keys:
            rng._i, rng._s = twin._i, twin._s = (i, None) if i % 3 else (None, None)
        seen.append(draw())
        assert seen[-1] == reference()
    assert len(set(seen)) == len(seen) and all(0 <= v <= MAX62 for v in seen)
    with pytest.raises(TypeError, match="no arguments"):
        draw(1)
    wide = _fake._draw(keyed(3).randint, 10, 2**70)  # beyond 64 bits: randint is called
    assert all(10 <= wide() <= 2**70 for _ in range(50))


@pytest.mark.parametrize("locale", LOCALES)
def test_the_c_values_match_the_python_methods(locale):
    """Keyed and unkeyed, a name's e-mail address and another string's, a gender, keywords,
    a name drawn before another: value for value and draw for draw."""

    def steps(value: Value, fake: Fake) -> List[Any]:
        out: List[Any] = []
        for i in range(400):
            fake._rng._i, fake._rng._s = (i, None) if i % 50 else (None, None)
            out += four(value)
            first, second = value("name")(), value("name")(None)
            out += [first, second, value("email")(first), value("email")(second)]
            out += [value("name")(gender="female"), value("email")("Zoë Smith")]
            out += [value("email")(name=second), value("email")()]
        return out

    same_both_ways(lambda: Fake(keyed(2**40 + 9), locale), steps)


def test_a_subclass_a_replaced_draw_and_another_generator_draw_alike():
    class Slotted(Fake):
        __slots__ = ()

    class WithDict(Fake):  # instances with a dict beside the slots
        pass

    for cls in (Slotted, WithDict):
        same_both_ways(lambda cls=cls: cls(keyed(5), "fr_FR"), subjects(200))

    def replaced() -> Fake:  # a draw that is not the C Draw: the C values call it
        fake = Fake(keyed(6), "de_DE")
        fake._r = functools.partial(fake._rng.randint, 0, MAX62)
        return fake

    same_both_ways(replaced, subjects(200))

    def unkeyed(value: Value, fake: Fake) -> List[Any]:
        return [v for _ in range(200) for v in four(value)]

    same_both_ways(lambda: Fake(random.Random(11), "pl_PL"), unkeyed)


@pytest.mark.parametrize(
    "buildings",
    [
        [(None, -20, 5), ("No. {}", 1, 9), ("#?", 0, 0)],  # the C path: any number, any format
        [(None, -20, -7), ("No. {}", 1, 9)],  # a negative span: the Python method
    ],
)
def test_locale_data_of_another_shape_goes_to_the_python_methods(buildings):
    """Name tables of another length, building numbers below zero, with a negative span or
    made place by place, phone numbers of more digits than 62 bits hold: the C values do what
    the Python methods do."""
    data = copy.copy(locale_data("en_US"))
    data.name_tables = data.name_tables[:8]  # the C name reads 9 items
    data.buildings = buildings
    data.street_tables = (data.streets, data.buildings, data.street_sep, data.number_first)
    fill, k, m, plan = compile_phone("+1 " + "#" * 22 + " $$")
    data.phones = [(fill, 10**k, two_to_nine(m), 8**m, plan)]  # 10**22: beyond 62 bits

    def make() -> Fake:
        fake = Fake(keyed(12))
        fake._loc = data
        return fake

    out = same_both_ways(make, subjects(300))
    assert any(len(v) > 25 and v.startswith("+1 ") for v in out)  # the long phone numbers
    assert any(v.startswith("No. ") for v in out) and any(v.startswith("-") for v in out)


def test_a_fake_given_other_locale_data_draws_from_it():
    """The C tables belong to the data they were read from: a Fake whose data changes draws
    from the new data."""

    def steps(value: Value, fake: Fake) -> List[Any]:
        out: List[Any] = []
        for i, locale in enumerate(("en_US", "ja_JP", "en_GB", "ja_JP", "en_US")):
            fake._loc = locale_data(locale)
            fake._rng._i, fake._rng._s = i, None
            out += four(value)
        return out

    out = same_both_ways(lambda: Fake(keyed(3)), steps)
    assert any(ord(c) > 0x3000 for c in out[4])  # the Japanese name


#: The commit before the C values were rewritten (method descriptors, tables read once, the
#: Draw): its values, made by its pure-Python package, are the reference for this checkout's.
BEFORE_REWRITE = "c4fa92d26a669e4040f0b898ba58407391807ca3"

_PROBE = """
import doge_datagen
print(doge_datagen.__file__)
from doge_datagen.engine.randomness import SubjectRandom, CREATE_TICK
from doge_datagen.values import Fake, LOCALES
out = []
for seed in (1, 77, 2**50 + 5):
    for locale in LOCALES:
        rng = SubjectRandom(seed); rng.begin(0); rng.at_tick(CREATE_TICK)
        fake = Fake(rng, locale)
        for i in range(250):
            rng._i, rng._s = i, None
            n = fake.name()
            out += [n, fake.email(n), fake.street_address(), fake.phone_number(), fake.city()]
print(repr(out))
"""


def test_the_values_are_those_of_the_commit_before_the_c_rewrite(tmp_path):
    """Same seed, same values: this checkout (with its C values) against the package of
    BEFORE_REWRITE in pure Python, taken from the repository's history at test time."""
    import shutil
    import subprocess
    import sys
    import tarfile

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    git = shutil.which("git")
    known = git is not None and (
        subprocess.run(
            [git, "-C", root, "cat-file", "-e", f"{BEFORE_REWRITE}^{{commit}}"],
            capture_output=True,
        ).returncode
        == 0
    )
    if not known:
        pytest.skip(f"a checkout without the history of {BEFORE_REWRITE[:7]}")
    archive = tmp_path / "before.tar"
    with open(archive, "wb") as out:
        subprocess.run(
            [git, "-C", root, "archive", BEFORE_REWRITE, "doge_datagen"], stdout=out, check=True
        )
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(tmp_path / "before", filter="data")
        else:  # pragma: no cover - Pythons before the extraction filters
            tar.extractall(tmp_path / "before")

    def values(cwd: Any, pure: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE],
            capture_output=True,
            text=True,
            cwd=cwd,  # the current directory is first on the path: that package is imported
            env=dict(os.environ, DOGE_DATAGEN_PURE_PYTHON=pure, PYTHONPATH=str(cwd)),
        )
        assert done.returncode == 0, done.stderr
        where, _, out = done.stdout.partition("\n")
        assert where.startswith(str(cwd)), where  # that package, not another on the path
        return out

    before, now = values(tmp_path / "before", "1"), values(root, "0")
    assert len(now) > 100_000 and now == before
