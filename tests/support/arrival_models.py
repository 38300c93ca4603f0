"""Models with arrivals for the sharded-run tests, built in every worker (by reference)."""

from datetime import datetime, timezone

from doge_datagen import DataOnlineGenerator
from doge_datagen.demo import LOGIN_HOURS
from doge_datagen.profiles import hourly
from support import shard_models

MONDAY_MS = round(datetime(2024, 5, 6, tzinfo=timezone.utc).timestamp() * 1000)


def day_with_arrivals(path: str, subjects: int, seed: int) -> DataOnlineGenerator:
    """The demo's day in Paris for two days into JSON Lines, with new users arriving by the
    hour of the day (0.4 a minute on average)."""
    datagen = shard_models.demo(
        "--day",
        "--tz",
        "Europe/Paris",
        "--sink",
        f"jsonl:{path}",
        "--subjects",
        str(subjects),
        "--seed",
        str(seed),
        "--ticks",
        "2880",
        "--timestamp-start",
        str(MONDAY_MS),
    )
    datagen.arrivals = 0.4 * hourly(LOGIN_HOURS, tz="Europe/Paris")
    return datagen
