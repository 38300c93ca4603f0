"""Models whose subjects carry ``datagen.fake`` values, for the value tests (importable by
the workers of a sharded run)."""

import json
from typing import Any, Dict, Optional

from doge_datagen import DataOnlineGenerator, EventSink, InMemorySink
from doge_datagen.core import shards


def person(datagen: DataOnlineGenerator, index: int) -> Dict[str, Any]:
    """A subject with values of several kinds, made while it is created."""
    fake = datagen.fake
    name = fake.name()
    country = ("US", "DE", "JP", "BR")[fake.integer(0, 3)]
    local = fake.for_country(country)
    return {
        "id": index,
        "name": name,
        "email": fake.email(name),
        "unique_email": fake.unique.email(name),
        "user": fake.unique.user_name(),
        "uuid": fake.uuid4(),
        "seq": fake.sequence(1000),
        "country": country,
        "local_name": local.name(),
        "address": local.address(),
        "phone": fake.phone_number(),
        "iban": fake.iban(),
        "card": fake.credit_card_number(),
        "amount": str(fake.money(1, 500)),
        "visits": [],
    }


def row(timestamp: int, subject: Dict[str, Any], transition: Any) -> Dict[str, Any]:
    return dict(subject, timestamp=timestamp, trigger=transition.trigger)


class LinesOut(EventSink):
    """Each event's row as a line of JSON in ``PATH.<shard>`` (``PATH.all`` for a run
    without shards)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.file: Any = None

    def open(self) -> None:
        shard = shards.current()
        self.file = open(f"{self.path}.{'all' if shard is None else shard.index}", "w")

    def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
        self.file.write(json.dumps(row(timestamp, subject, transition)) + "\n")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def people(
    path: Optional[str] = None,
    subjects: int = 200,
    ticks: int = 40,
    seed: Any = 3,
    arrivals: Optional[float] = None,
) -> DataOnlineGenerator:
    """Subjects with values, visiting now and then; each visit draws values too (in the
    callback, from the subject's stream at that tick). Events go to a JSON Lines file at
    ``path``, or to an in-memory sink (``datagen.sinks[0]``)."""
    datagen: DataOnlineGenerator[Any] = DataOnlineGenerator(
        ["home", "shop"],
        "home",
        lambda index: person(datagen, index),
        subjects,
        60_000,
        ticks,
        0,
        seed=seed,
        arrivals=arrivals,
    )
    sink: Any = InMemorySink(row) if path is None else LinesOut(path)

    def visit(subject: Dict[str, Any], transition: Any) -> bool:
        fake = datagen.fake
        subject["visits"] = subject["visits"] + [
            [fake.product_name(), str(fake.price()), fake.ipv4(), fake.poisson(4)]
        ]
        return fake.bernoulli(0.9)

    datagen.add_transition("enter", "home", "shop", 10, action_callback=visit, event_sinks=[sink])
    datagen.add_transition("leave", "shop", "home", 50, event_sinks=[sink])
    return datagen
