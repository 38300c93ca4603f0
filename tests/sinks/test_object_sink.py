"""File sinks on object storage: a local S3-compatible server (moto) and the local file
system through fsspec URLs, in parts that become visible only when whole."""

import csv
import io
import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, List

import pytest
from support.remote_fixtures import S3_KEY, S3_SECRET, new_bucket, s3_client, s3_query
from support.services import free_port

from doge_datagen import DeliveryError, InMemorySink
from doge_datagen.cli.main import event_row
from doge_datagen.demo import banking_generator
from doge_datagen.errors import ConfigurationError
from doge_datagen.model import EventSink
from doge_datagen.sinks.registry import Records, SinkURLError, build_sink

START = 1_700_000_000_000
RECORDS = Records(row=event_row, key=lambda subject, transition: str(subject.user_id))
INT_FIELDS = ("timestamp", "user_id", "balance", "loan_balance")


class Every(EventSink):
    """Calls ``check`` at every ``n``-th event (placed after the sink under test)."""

    def __init__(self, n: int, check: Any) -> None:
        self.n, self.check, self.seen, self.checks = n, check, 0, 0

    def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
        self.seen += 1
        if self.seen % self.n == 0:
            self.check()
            self.checks += 1


def run_banking(sink: Any, *after: EventSink, seed: int = 11) -> List[Dict[str, Any]]:
    witness = InMemorySink(event_row)
    datagen = banking_generator(
        sink, sink, sink, sink, subjects_num=1000, ticks_num=300, timestamp_start=START,
        seed=seed,
    )  # fmt: skip
    for transition in datagen.transitions:
        transition.event_sinks = [sink, witness, *after]
    datagen.start()
    return [event.value for event in witness.events]


def parse(data: bytes, kind: str) -> List[Dict[str, Any]]:
    """The rows of a whole object; raises on a truncated one."""
    if kind == "jsonl":
        assert data.endswith(b"\n") or not data
        return [json.loads(line) for line in data.decode().splitlines()]
    if kind == "csv":
        found = list(csv.DictReader(io.StringIO(data.decode())))
        return [{k: int(v) if k in INT_FIELDS else v for k, v in r.items()} for r in found]
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data)).to_pylist()


# -- S3 -------------------------------------------------------------------------------------


def s3_objects(endpoint: str, bucket: str) -> Dict[str, bytes]:
    client = s3_client(endpoint)
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


@pytest.mark.s3
@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet"])
def test_s3_parts_are_published_whole_and_hold_every_row(moto_s3: str, kind: str) -> None:
    bucket = new_bucket(moto_s3)
    size = 4_000 if kind == "parquet" else 20_000
    extra = "&buffer_rows=100"
    url = f"s3://{bucket}/run/events.{kind}?part_size={size // 1000}KB&{s3_query(moto_s3)}{extra}"
    sink = build_sink(url, RECORDS)

    def only_whole_parts() -> None:
        objects = s3_objects(moto_s3, bucket)
        visible = sum(len(parse(data, kind)) for data in objects.values())
        assert visible == sink.delivered  # nothing visible that is not counted, or partial
        assert all(key.startswith("run/events-part-") for key in objects)

    checker = Every(150, only_whole_parts)
    sent = run_banking(sink, checker)

    objects = s3_objects(moto_s3, bucket)
    names = sorted(objects)
    assert names == [f"run/events-part-{i:05d}.{kind}" for i in range(len(names))]
    assert [p.split("/", 1)[1] for p in sink.parts] == names
    assert len(names) >= 3 and checker.checks >= 3
    read = [row for name in names for row in parse(objects[name], kind)]
    assert read == sent
    assert (sink.delivered, sink.failed) == (len(sent), 0)
    if kind != "parquet":  # lines: each part within its size
        assert all(len(data) <= size for data in objects.values())
        assert max(len(data) for data in objects.values()) > size * 0.9


@pytest.mark.s3
def test_s3_one_object_appears_at_close_and_a_second_run_appends(moto_s3: str) -> None:
    bucket = new_bucket(moto_s3)
    sink = build_sink(f"jsonl:s3://{bucket}/events.jsonl?{s3_query(moto_s3)}", RECORDS)
    checker = Every(
        500, lambda: pytest.fail("visible before close") if s3_objects(moto_s3, bucket) else None
    )
    first = run_banking(sink, checker)
    assert checker.checks > 0
    assert parse(s3_objects(moto_s3, bucket)["events.jsonl"], "jsonl") == first

    second = run_banking(sink, seed=12)
    assert parse(s3_objects(moto_s3, bucket)["events.jsonl"], "jsonl") == first + second
    assert (sink.delivered, sink.failed) == (len(second), 0)


def test_an_unreachable_store_fails_with_counts_and_never_shows_the_credentials(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = f"http://127.0.0.1:{free_port()}"
    options = 'fs.config_kwargs={"connect_timeout":1,"retries":{"max_attempts":1}}'
    url = f"s3://bucket/events.jsonl?part_size=20KB&{s3_query(dead)}&{options}"
    sink = build_sink(url, RECORDS)
    with pytest.raises(DeliveryError) as raised:
        run_banking(sink)
    error = raised.value
    assert "cannot publish" in str(error) and "events-part-00000.jsonl" in str(error)
    assert sink.delivered == 0 and sink.failed > 0
    assert (error.delivered, error.failed) == (0, sink.failed)
    ours = [str(error), repr(error), repr(sink), sink.name, *capfd.readouterr()]
    ours += list(getattr(error, "__notes__", []))
    assert all(S3_SECRET not in text and S3_KEY not in text for text in ours)
    # botocore's own debug log shows the signed requests: the key id (an identifier, by
    # AWS's design) in their Authorization header, never the secret.
    assert "Sending http request" in caplog.text and S3_SECRET not in caplog.text


# -- the local file system ------------------------------------------------------------------


def test_local_parts_are_renamed_into_place_whole(tmp_path: Path) -> None:
    directory = tmp_path / "out"
    sink = build_sink(f"file://{directory}/events.jsonl?part_size=30KB&buffer_rows=64", RECORDS)

    def only_whole_parts() -> None:
        names = sorted(os.listdir(directory))
        parts = [n for n in names if not n.startswith(".")]
        temporary = [n for n in names if n.startswith(".")]
        assert len(temporary) == 1 and temporary[0].endswith(".tmp")  # the part being written
        rows = sum(len(parse((directory / n).read_bytes(), "jsonl")) for n in parts)
        assert rows == sink.delivered

    checker = Every(150, only_whole_parts)
    sent = run_banking(sink, checker)

    names = sorted(os.listdir(directory))
    assert names == [f"events-part-{i:05d}.jsonl" for i in range(len(names))]
    assert len(names) >= 3 and checker.checks >= 3
    assert [r for n in names for r in parse((directory / n).read_bytes(), "jsonl")] == sent
    assert all((directory / n).stat().st_size <= 30_000 for n in names)


def test_bad_object_urls_are_named(tmp_path: Path) -> None:
    with pytest.raises(SinkURLError, match="part_size='lots' is not a size"):
        build_sink(f"file://{tmp_path}/e.jsonl?part_size=lots", RECORDS)
    with pytest.raises(ConfigurationError, match="give format=jsonl, csv or parquet"):
        build_sink(f"file://{tmp_path}/e.txt", RECORDS)
    with pytest.raises(ConfigurationError, match="no file system 'nosuchfs'"):
        build_sink("jsonl:nosuchfs://x/e.jsonl", RECORDS)
    with pytest.raises(SinkURLError, match="credentials go in settings"):
        build_sink("s3://AKIA:secret@bucket/e.jsonl", RECORDS)
    with pytest.raises(SinkURLError, match="unknown setting 'partsize'"):
        build_sink(f"file://{tmp_path}/e.jsonl?partsize=1MB", RECORDS)


def test_a_shard_writes_parts_of_its_own(tmp_path: Path) -> None:
    from doge_datagen.core import shards

    one, two = shards.split(10, 2)
    records = Records(row=lambda ts, n, t: {"timestamp": ts, "n": n})
    for shard in (one, two):
        sink = build_sink(f"file://{tmp_path}/events.jsonl?part_size=200", records)
        with shards.running(shard):
            sink.open()
            for n in range(12):
                sink.collect(START + n, n, None)  # type: ignore[arg-type]
            sink.close()
    names = sorted(os.listdir(tmp_path))
    assert names[0] == f"events-{one.label}-part-00000.jsonl"
    assert {n.split("-part-")[0] for n in names} == {f"events-{one.label}", f"events-{two.label}"}
    assert sum(len(parse((tmp_path / n).read_bytes(), "jsonl")) for n in names) == 24
