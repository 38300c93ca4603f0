"""``redis://...?explicit_ids=true``: entry ids from the events, so that a run given again (a
resume's repeats) is refused entry by entry, through the command line too."""

import subprocess
import sys

import pytest
from support.bus_fixtures import unique

from doge_datagen import ConfigurationError
from doge_datagen.cli.main import event_key, event_row
from doge_datagen.sinks.registry import Records, build_sink

RECORDS = Records(row=event_row, key=event_key)


def test_the_url_setting_turns_explicit_ids_on():
    assert build_sink("redis://127.0.0.1:6379/s?explicit_ids=true", RECORDS).explicit_ids
    assert not build_sink("redis://127.0.0.1:6379/s?explicit_ids=0", RECORDS).explicit_ids
    assert not build_sink("redis://127.0.0.1:6379/s", RECORDS).explicit_ids
    with pytest.raises(ConfigurationError, match="explicit_ids"):
        build_sink("redis://127.0.0.1:6379/s?explicit_ids=perhaps", RECORDS)


def test_the_same_run_twice_through_the_url_stores_each_entry_once(redis_url):
    import redis

    stream = unique("doge-ids")
    url = f"{redis_url.rsplit('/', 1)[0]}/{stream}?explicit_ids=true"
    client = redis.Redis.from_url(redis_url)

    def demo():
        return subprocess.run(
            [sys.executable, "-m", "doge_datagen", "demo", "--subjects", "200", "--ticks", "120"]
            + ["--seed", "5", "--timestamp-start", "1700000000000", "--no-progress"]
            + ["--sink", url],
            capture_output=True,
            text=True,
            timeout=120,
        )

    try:
        first = demo()
        assert first.returncode == 0, first.stderr
        entries = client.xrange(stream)
        assert len(entries) > 20
        assert entries[0][0].decode().startswith("1700000")  # the event's timestamp
        again = demo()
        assert again.returncode == 0, again.stderr
        assert client.xrange(stream) == entries  # every entry refused as already there
    finally:
        client.delete(stream)
        client.close()
