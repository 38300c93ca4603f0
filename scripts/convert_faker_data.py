"""Convert Faker's locale data into the compact files of ``doge_datagen/values/data/``.

Run once, with Faker installed, whenever the word lists should be refreshed::

    .venv/bin/python scripts/convert_faker_data.py

Lists Faker keeps as plain data (first and last names with their frequencies where it has
them, jobs, words, e-mail domains, phone formats, the bank account formats) are copied as
they are. Values Faker builds from its own templates (street names, cities, companies) are
drawn from Faker a fixed number of times with a fixed seed and kept as distinct lists, so
the files do not change from one conversion to the next with the same Faker version. Only
the words come from Faker: doge-datagen's draws and formats are its own code.
"""

import collections
import itertools
import json
import pathlib
import re
import sys
import unicodedata

import faker
from faker import Faker

OUT = pathlib.Path(__file__).resolve().parent.parent / "doge_datagen" / "values" / "data"

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "pl_PL", "es_ES", "pt_BR", "ja_JP"]

# What Faker does not say in a form worth copying: the order of a street address, the
# building number formats ('#' a digit, '%' a digit from 1 to 9) and the postal layout.
LAYOUT = {
    "en_US": ("{n} {street}", ["%", "%#", "%##", "%###", "%####"], "{street}\n{city}, {postcode}"),
    "en_GB": ("{n} {street}", ["%", "%#", "%##"], "{street}\n{city}\n{postcode}"),
    "de_DE": ("{street} {n}", ["%", "%#", "%##", "%#a"], "{street}\n{postcode} {city}"),
    "fr_FR": ("{n}, {street}", ["%", "%#", "%##"], "{street}\n{postcode} {city}"),
    "pl_PL": ("{street} {n}", ["%", "%#", "%##"], "{street}\n{postcode} {city}"),
    "es_ES": ("{street} {n}", ["%", "%#", "%##"], "{street}\n{postcode} {city}"),
    "pt_BR": ("{street}, {n}", ["%", "%#", "%##", "%###"], "{street}\n{postcode} {city}"),
    "ja_JP": ("{street}{n}", ["%-%", "%-%#", "%#-%"], "〒{postcode} {city}{street}"),
}
COUNTRY = {
    "en_US": ("US", "USD"),
    "en_GB": ("GB", "GBP"),
    "de_DE": ("DE", "EUR"),
    "fr_FR": ("FR", "EUR"),
    "pl_PL": ("PL", "PLN"),
    "es_ES": ("ES", "EUR"),
    "pt_BR": ("BR", "BRL"),
    "ja_JP": ("JP", "JPY"),
}
WORDS_FROM = {"en_GB": "en_US"}  # Faker's en_GB words are its Latin ones
SAMPLES = 20000
KEEP = 2000


def provider(fake, kind):
    for p in fake.factories[0].providers:
        if type(p).__module__.split(".")[2] == kind:
            return p
    raise LookupError(kind)


def weighted(values):
    """{"v": [...], "w": [...]} from an ordered mapping of weights, or counts of a list."""
    if hasattr(values, "items"):
        pairs = [(k, float(w)) for k, w in values.items()]
    else:
        pairs = list(collections.Counter(values).items())
    out = {"v": [k for k, _ in pairs]}
    weights = [w for _, w in pairs]
    if len(set(weights)) > 1:
        out["w"] = weights
    return out


def mail_form(text):
    """The ASCII form of a name for an e-mail address: accents dropped, lower case."""
    text = text.replace("ł", "l").replace("Ł", "L").replace("ß", "ss").replace("ø", "o")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if c.isascii() and (c.isalnum()))
    return text.lower()


def distinct(draw, n=SAMPLES, keep=KEEP):
    seen = {}
    for _ in range(n):
        value = draw()
        if value not in seen:
            seen[value] = None
            if len(seen) == keep:
                break
    return list(seen)


def phone_formats(fake, phones):
    """Faker's phone formats with its placeholders (area codes) drawn out; '#', '%' and '$'
    stay for the draw (a digit, 1-9, 2-9)."""
    out = {}
    for fmt in phones.formats:
        if "{{" not in fmt:
            out[fmt] = None
            continue
        for _ in range(200):
            out[re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: getattr(fake, m.group(1))(), fmt)] = None
    return [f.replace("!", "#").replace("@", "%") for f in out]


def postcode_formats(fake):
    """The layouts of Faker's postcodes ('#' a digit, '?' a capital letter), each as likely."""
    return distinct(lambda: re.sub("[A-Z]", "?", re.sub("[0-9]", "#", fake.postcode())), 5000)


def convert(locale):
    fake = Faker(locale)
    fake.seed_instance(2024)
    person = provider(fake, "person")
    data = {"locale": locale}
    if locale == "ja_JP":
        for key, attr in (
            ("first_male", "first_name_male_pairs"),
            ("first_female", "first_name_female_pairs"),
        ):
            pairs = getattr(person, attr)
            data[key] = weighted([p[0] for p in pairs])
            data[key + "_mail"] = [mail_form(p[2]) for p in pairs]
        last = person.last_name_pairs
        data["last"] = weighted(collections.OrderedDict((k[0], w) for k, w in last.items()))
        data["last_mail"] = [mail_form(k[2]) for k in last]
        data["name_format"] = "{last} {first}"
    else:
        data["first_male"] = weighted(person.first_names_male)
        data["first_female"] = weighted(person.first_names_female)
        # pl_PL keeps the last names both genders use apart (its last_names is a stub).
        data["last"] = weighted(getattr(person, "unisex_last_names", None) or person.last_names)
        for key in ("first_male", "first_female", "last"):
            data[key + "_mail"] = [mail_form(v) for v in data[key]["v"]]
        data["name_format"] = "{first} {last}"
    street_format, building, address_format = LAYOUT[locale]
    if locale == "ja_JP":
        data["streets"] = distinct(lambda: fake.town() + fake.chome())
        data["cities"] = distinct(lambda: fake.prefecture() + fake.city())
    else:
        data["streets"] = distinct(fake.street_name)
        data["cities"] = distinct(fake.city)
    data["street_format"] = street_format
    data["building_formats"] = building
    data["address_format"] = address_format
    data["postcode_formats"] = postcode_formats(fake)
    data["phone_formats"] = phone_formats(fake, provider(fake, "phone_number"))
    data["companies"] = distinct(fake.company, keep=1000)
    data["jobs"] = list(dict.fromkeys(provider(fake, "job").jobs))
    words = provider(Faker(WORDS_FROM.get(locale, locale)), "lorem").word_list
    data["words"] = list(dict.fromkeys(words))
    data["email_domains"] = list(provider(fake, "internet").free_email_domains)
    country, currency = COUNTRY[locale]
    bank = provider(fake, "bank")
    data["country"] = country
    data["currency"] = currency
    data["iban_country"] = bank.country_code
    data["bban_format"] = bank.bban_format
    return data


def common():
    address = faker.providers.address.Provider
    currency = faker.providers.currency.Provider
    return {
        "country_codes": list(address.alpha_2_country_codes),
        "currency_codes": [code for code, _ in currency.currencies],
    }


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    version = faker.VERSION
    for locale in LOCALES:
        data = convert(locale)
        data["source"] = f"Faker {version}"
        path = OUT / f"{locale}.json"
        path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")
        print(f"{path.name}: {path.stat().st_size // 1024} KiB")
    data = common()
    data["source"] = f"Faker {version}"
    (OUT / "common.json").write_text(json.dumps(data, separators=(",", ":")) + "\n")
    license_path = pathlib.Path(faker.__file__).parent.parent
    for found in itertools.chain(
        license_path.glob("[Ff]aker-*.dist-info/licenses/LICENSE*"),
        license_path.glob("[Ff]aker-*.dist-info/LICENSE*"),
    ):
        (OUT / "LICENSE-Faker").write_text(found.read_text())
        break
    else:
        print("Faker's licence file not found: keep LICENSE-Faker as it is", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
