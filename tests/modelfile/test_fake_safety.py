"""Escapes through ``fake``: only the value providers of ``datagen.fake`` are reachable from a
model file (``fake.NAME(...)``, ``fake.unique.NAME(...)``, a locale's view), no attribute
starting with ``_``, no other attribute or method, Faker only when trusted; each refused when
the file is checked, before any sink is made."""

import os
from pathlib import Path

import pytest

import doge_datagen
from doge_datagen.modelfile import ModelFileError
from doge_datagen.values import PROVIDERS, UNIQUE_PROVIDERS, Fake, Unique

BANKING = (Path(__file__).resolve().parents[2] / "examples" / "banking.yaml").read_text()

WHEN = "when: payment <= balance"
LET = "payment: randint(10, 500)"
SUBJECT = "balance: randint(0, 1000)"
RECORD = "record: {timestamp: timestamp, user_id: user_id, event: trigger}"

# (place, replaced by, what the error says)
ATTEMPTS = [
    (WHEN, "when: fake._rng", "starting with '_'"),
    (WHEN, "when: fake._rng.seed(1)", "can be called"),
    (WHEN, "when: fake._r()", "starting with '_'"),
    (WHEN, "when: fake.__class__", "starting with '_'"),
    (WHEN, "when: fake.__reduce__()", "starting with '_'"),
    (WHEN, "when: fake.name.__self__", "attribute"),
    (WHEN, "when: fake.name().__class__", "starting with '_'"),
    (WHEN, "when: fake.name().upper()", "can be called"),
    (WHEN, "when: fake.unique._fake", "starting with '_'"),
    (WHEN, "when: fake['de_DE']._rng", "starting with '_'"),
    (WHEN, "when: fake.for_country('DE')._model", "starting with '_'"),
    (WHEN, "when: fake.faker", "not a value"),
    (WHEN, "when: fake.faker.name()", "--trust"),
    (WHEN, "when: fake.faker.seed_instance(1)", "--trust"),
    (WHEN, "when: fake.faker._faker()", "starting with '_'"),
    (WHEN, "when: fake['de_DE'].faker.binary(10**9)", "--trust"),
    (WHEN, "when: fake.provider('name')", "not available"),
    (WHEN, "when: fake.chooser([1], [1])", "not available"),
    (WHEN, "when: fake.random", "not available"),
    (WHEN, "when: fake", "not a value"),
    (WHEN, "when: fake['de_DE']", "not a value"),
    (WHEN, "when: fake.unique", "not a value"),
    (WHEN, "when: fake.for_country('DE')", "not a value"),
    (WHEN, "when: str(fake)", "not a value"),
    (WHEN, "when: fake.name", "is called"),
    (WHEN, "when: fake['xx_XX'].name()", "unknown locale"),
    (WHEN, "when: fake[0].name()", "unknown locale"),
    (WHEN, "when: fake.name(locale='fr_FR')", "fake['fr_FR'].name()"),
    (WHEN, "when: \"fake.name(**{'gender': 'male'})\"", "** argument"),
    (WHEN, "when: fake.for_country('DE', 'en_US', 1).name()", "for_country"),
    (WHEN, "when: fake.unique.name()", "not available"),
    (WHEN, "when: fake.unique.for_country('DE').name()", "can be called"),
    (WHEN, "when: fake.nmae()", "did you mean 'fake.name'"),
    (WHEN, "when: fake.words(10**9)", "bounded"),
    (WHEN, "when: fake.sentence(words=10**7)", "bounded"),
    (WHEN, "when: fake.zipf(10**12)", "bounded"),
    (WHEN, "when: getattr(fake, '_rng')", "unknown name 'getattr'"),
    (WHEN, "when: fake.name(__import__('os').system('touch pwned'))", "can be called"),
    (WHEN, "when: fake.name(__import__('os'))", "starting with '_'"),
    (LET, "payment: fake.uniform.__globals__", "starting with '_'"),
    (SUBJECT, "balance: (fake.integer)", "is called"),
    (SUBJECT, "balance: '[fake][0].name()'", "can be called"),
    (SUBJECT, "balance: \"{'f': fake}['f'].name()\"", "can be called"),
    (RECORD, "record: {timestamp: timestamp, name: fake.name()}", "cannot be drawn here"),
    ("name: banking", "name: banking\nlocale: xx_XX", "unknown locale"),
]  # fmt: skip


def _model(out: Path, replace: str, by: str) -> str:
    text = BANKING.replace("jsonl:out/", f"jsonl:{out}/")
    assert replace in text, replace
    return text.replace(replace, by, 1)


@pytest.mark.parametrize("replace, by, says", ATTEMPTS, ids=[by[:40] for _, by, _ in ATTEMPTS])
def test_an_escape_through_fake_is_refused_before_any_sink(
    tmp_path, monkeypatch, replace, by, says
):
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(tmp_path)
    text = _model(out, replace, by)
    with pytest.raises(ModelFileError) as refused:
        doge_datagen.load(text)
    message = str(refused.value)
    assert message.startswith("<model>:"), message
    assert says in message, message
    assert os.listdir(out) == []
    assert not (tmp_path / "pwned").exists()


def test_a_size_from_the_run_stops_it_with_a_clear_error(tmp_path):
    text = _model(tmp_path, LET, "payment: len(fake.words(balance * 10**4))")
    datagen = doge_datagen.load(text, seed=1, subjects=50, ticks=5000)
    with pytest.raises(Exception, match="expressions are bounded"):
        datagen.start()


def test_faker_is_reachable_in_a_trusted_file_only(tmp_path):
    pytest.importorskip("faker")
    text = _model(tmp_path, SUBJECT, "balance: len(fake.faker.ean8())")
    with pytest.raises(ModelFileError, match="--trust"):
        doge_datagen.load(text)
    datagen = doge_datagen.load(text, trust=True, seed=1, subjects=5, ticks=10)
    datagen.start()
    assert [s.balance for s in datagen.subjects] == [8] * 5


def test_the_names_reachable_are_public_methods_of_fake_and_unique():
    for name in PROVIDERS:
        assert not name.startswith("_")
        assert callable(getattr(Fake, name)), name
    public = {n for n in dir(Unique) if not n.startswith("_")}
    assert UNIQUE_PROVIDERS == public
    assert "faker" not in PROVIDERS and "provider" not in PROVIDERS
