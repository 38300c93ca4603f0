"""``fake.NAME(...)`` in model files: the values ``datagen.fake`` gives the same model written
in Python, seed for seed, in one process and in shards; a file's ``locale:``, a locale's view
per call, unique values, and ``examples/customers.yaml``."""

import functools
import json
import re
import unicodedata
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

import doge_datagen
from doge_datagen import DataOnlineGenerator
from doge_datagen.distributed.sharded import run_sharded
from doge_datagen.modelfile import ModelFileError
from doge_datagen.sinks.record import Record
from doge_datagen.sinks.registry import Records, build_sink
from doge_datagen.values._locale import locale_data

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

PEOPLE = """\
name: people
states: [away, shopping]
subjects: 30
tick: 1m
ticks: 500
locale: en_US
subject:
  user_id: index
  name: fake.name()
  email: fake.unique.email(name)
  address: fake.street_address()
  phone: fake.phone_number()
  city: fake['fr_FR'].city()
  home: fake.for_country(fake.choice(['DE', 'JP', 'BR'])).name()
  segment: fake.zipf(5, 1.2)
  since: str(fake.date_between('2020-01-01', '2024-12-31'))
  spent: 0
transitions:
  - trigger: visit
    from: away
    to: shopping
    probability: 2
    sinks: [orders]
  - trigger: buy
    from: shopping
    to: away
    probability: 30
    let:
      amount: round(fake.lognormal(3, 0.5), 2)
    when: fake.bernoulli(0.9)
    do:
      - spent += amount + fake.normal(0, 1)
    sinks: [orders]
  - {trigger: leave, from: shopping, to: away, probability: 40}
sinks:
  orders:
    url: jsonl:out/orders.jsonl
"""

FIELDS = ["timestamp", "user_id", "name", "email", "address", "phone", "city", "home",
          "segment", "since", "spent", ("event", "trigger")]  # fmt: skip


class Person:
    """The Python model's subject."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def people_python(
    orders: Any, seed: Any, subjects: int, ticks: int, locale: str
) -> DataOnlineGenerator:
    """``PEOPLE`` written in Python, with ``datagen.fake``, its events into ``orders``."""
    datagen: DataOnlineGenerator = DataOnlineGenerator(
        ["away", "shopping"], "away", lambda index: make(index), subjects, 60_000, ticks, 0,
        seed=seed,
    )  # fmt: skip
    datagen.fake_locale = locale
    fake = datagen.fake

    def make(index: int) -> Person:
        name = fake.name()
        return Person(
            user_id=index,
            name=name,
            email=fake.unique.email(name),
            address=fake.street_address(),
            phone=fake.phone_number(),
            city=fake["fr_FR"].city(),
            home=fake.for_country(fake.choice(["DE", "JP", "BR"])).name(),
            segment=fake.zipf(5, 1.2),
            since=str(fake.date_between("2020-01-01", "2024-12-31")),
            spent=0,
        )

    def buy(subject: Person, transition: Any) -> bool:
        amount = round(fake.lognormal(3, 0.5), 2)
        if not fake.bernoulli(0.9):
            return False
        subject.spent = subject.spent + (amount + fake.normal(0, 1))
        return True

    datagen.add_transition("visit", "away", "shopping", 2, event_sinks=[orders])
    datagen.add_transition("buy", "shopping", "away", 30, buy, [orders])
    datagen.add_transition("leave", "shopping", "away", 40)
    return datagen


class Recorder:
    """A sink that keeps every field of ``FIELDS`` as a tuple."""

    def __init__(self, out: List[Tuple[Any, ...]]) -> None:
        self.out = out

    def open(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing held."""

    def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
        self.out.append(
            (timestamp, subject.user_id, subject.name, subject.email, subject.address,
             subject.phone, subject.city, subject.home, subject.segment, subject.since,
             subject.spent, transition.trigger)
        )  # fmt: skip


def _people_text(locale: str) -> str:
    return PEOPLE.replace("locale: en_US", f"locale: {locale}")


@pytest.mark.parametrize(
    "seed, subjects, ticks, locale",
    [(1, 30, 500, "en_US"), (2, 200, 300, "de_DE"), ("text", 50, 800, "ja_JP"),
     (9, 80, 400, "pt_BR")],
)  # fmt: skip
def test_a_model_file_gives_the_values_of_the_same_python_model(seed, subjects, ticks, locale):
    from_file: List[Tuple[Any, ...]] = []
    from_python: List[Tuple[Any, ...]] = []
    datagen = doge_datagen.load(
        _people_text(locale),
        sinks={"orders": Recorder(from_file)},
        seed=seed,
        subjects=subjects,
        ticks=ticks,
    )
    datagen.start()
    people_python(Recorder(from_python), seed, subjects, ticks, locale).start()
    assert len(from_file) > 20
    assert {e[-1] for e in from_file} == {"visit", "buy"}
    assert from_file == from_python
    file_subjects = [(s.name, s.email, s.address, s.phone, s.home) for s in datagen.subjects]
    assert len(set(file_subjects)) == subjects
    assert len({s.email for s in datagen.subjects}) == subjects  # fake.unique.email


def test_the_locale_of_the_file_picks_the_names():
    names = {}
    for locale in ("en_US", "ja_JP"):
        datagen = doge_datagen.load(
            _people_text(locale), sinks={"orders": Recorder([])}, seed=5, subjects=40, ticks=1
        )
        datagen.start()
        names[locale] = [s.name for s in datagen.subjects]
    assert all(re.fullmatch(r"[A-Za-z'.\- ]+", n) for n in names["en_US"]), names["en_US"]
    assert all(not n.isascii() for n in names["ja_JP"]), names["ja_JP"]
    # fake['fr_FR'] is French whatever the file's locale.
    datagen = doge_datagen.load(
        _people_text("ja_JP"), sinks={"orders": Recorder([])}, seed=5, subjects=40, ticks=1
    )
    datagen.start()
    french = set(locale_data("fr_FR").cities)
    assert all(s.city in french for s in datagen.subjects)


def _lines(folder: Path) -> List[str]:
    return sorted(line for p in folder.glob("orders*.jsonl") for line in p.read_text().splitlines())


def people_file(out: str, seed: Any, subjects: int, ticks: int) -> DataOnlineGenerator:
    """``PEOPLE`` in German into ``out/orders*.jsonl`` (a shard's generator)."""
    sink = build_sink(f"jsonl:{out}/orders.jsonl", Records(row=Record(FIELDS)))
    return doge_datagen.load(
        _people_text("de_DE"), sinks={"orders": sink}, seed=seed, subjects=subjects, ticks=ticks
    )


@pytest.mark.parametrize("seed, subjects, ticks", [(3, 90, 600), (12, 301, 300)])
def test_in_three_shards_the_model_file_writes_the_python_models_lines(
    tmp_path, seed, subjects, ticks
):
    sharded, python = tmp_path / "sharded", tmp_path / "python"
    sharded.mkdir()
    python.mkdir()
    summary = run_sharded(
        functools.partial(people_file, str(sharded), seed, subjects, ticks), shards=3
    )
    assert len(list(sharded.glob("orders-*-of-00003.jsonl"))) == 3
    orders = build_sink(f"jsonl:{python}/orders.jsonl", Records(row=Record(FIELDS)))
    python_summary = people_python(orders, seed, subjects, ticks, "de_DE").start()
    expected = _lines(python)
    assert summary.events == python_summary.events > 0
    assert len(expected) > 50
    assert _lines(sharded) == expected
    by_user = {}
    for line in expected:
        row = json.loads(line)
        by_user[row["user_id"]] = row["email"]
    assert len(set(by_user.values())) == len(by_user) > 20  # unique across the shards


def test_faker_runs_in_a_trusted_file_with_the_python_models_values():
    pytest.importorskip("faker")
    text = PEOPLE.replace("  spent: 0\n", "  spent: 0\n  ean: fake.faker.ean13()\n")
    with pytest.raises(ModelFileError, match=r"^<model>:\d+:\d+: .*fake\.faker.*--trust"):
        doge_datagen.load(text)
    datagen = doge_datagen.load(
        text, trust=True, sinks={"orders": Recorder([])}, seed=4, subjects=5, ticks=1
    )
    datagen.start()
    plain = doge_datagen.load(PEOPLE, sinks={"orders": Recorder([])}, seed=4, subjects=5, ticks=1)
    plain.start()
    eans = [s.ean for s in datagen.subjects]
    assert all(len(e) == 13 and e.isdigit() for e in eans)
    assert len(set(eans)) == 5
    # The other values are those of the file without Faker: the EAN's draw comes after them.
    assert [s.email for s in datagen.subjects] == [s.email for s in plain.subjects]
    again = doge_datagen.load(
        text, trust=True, sinks={"orders": Recorder([])}, seed=4, subjects=5, ticks=1
    )
    again.start()
    assert [s.ean for s in again.subjects] == eans


def test_the_files_locale_is_checked():
    with pytest.raises(ModelFileError, match=r"^<model>:6:9: locale: unknown locale 'de_DF' "
                                             r"\(did you mean 'de_DE'\?\)"):  # fmt: skip
        doge_datagen.load(_people_text("de_DF"))
    datagen = doge_datagen.load(_people_text("de-DE"), sinks={"orders": Recorder([])}, seed=1)
    assert datagen.fake.locale == "de_DE"


def test_a_records_field_cannot_draw_a_fake_value():
    text = PEOPLE + "    record: {timestamp: timestamp, nick: fake.user_name()}\n"
    with pytest.raises(ModelFileError, match="fake values cannot be drawn here"):
        doge_datagen.load(text)


def test_sql_columns_know_the_kinds_of_fake_values(tmp_path):
    text = PEOPLE.replace(
        "    url: jsonl:out/orders.jsonl",
        f"    url: sqlite:///{tmp_path}/people.db\n    record: [user_id, name, segment, spent]",
    )
    datagen = doge_datagen.load(text, seed=1, subjects=20, ticks=200)
    datagen.start()
    import sqlite3

    with sqlite3.connect(tmp_path / "people.db") as db:
        columns = {row[1]: row[2] for row in db.execute("PRAGMA table_info(orders)")}
        rows = db.execute("SELECT name, segment FROM orders").fetchall()
    assert columns["segment"] == "BIGINT"
    assert columns["name"] in ("VARCHAR(255)", "TEXT")
    assert rows and all(isinstance(name, str) and 1 <= seg <= 5 for name, seg in rows)


def _ascii(word: str) -> str:
    folded = unicodedata.normalize("NFKD", word.replace("ß", "ss"))
    return "".join(c for c in folded if c.isascii() and c.isalnum()).lower()


def _customers(out: Path) -> List[Dict[str, Any]]:
    text = (EXAMPLES / "customers.yaml").read_text()
    assert "jsonl:out/" in text
    out.mkdir()
    summary = doge_datagen.load(text.replace("jsonl:out/", f"jsonl:{out}/"), seed=1).start()
    assert summary.events > 100
    return [json.loads(line) for line in (out / "signups.jsonl").read_text().splitlines()]


def test_customers_example_writes_users_with_names_emails_addresses_and_phones(tmp_path):
    rows = _customers(tmp_path / "one")
    assert len(rows) > 50
    assert {row["country"] for row in rows} == {"US", "GB", "DE", "FR"}
    for row in rows:
        assert {"name", "email", "address", "phone", "user_id", "segment"} <= set(row)
        words = [_ascii(w) for w in row["name"].split()]
        local = row["email"].split("@")[0]
        assert words[0][:3] in local and words[-1][:3] in local, row
        assert "\n" in row["address"] and len(re.sub(r"\D", "", row["phone"])) >= 7, row
    emails = {row["user_id"]: row["email"] for row in rows}
    assert len(set(emails.values())) == len(emails)
    assert _customers(tmp_path / "two") == rows  # a seed repeats the run
