"""A broker that stops answering, dies, or dies and comes back, in the middle of a run.

Every scenario ends with the run's summary, the sink's delivered/failed counts and the records
read back from the broker in agreement: every generated event is either read back or counted
as failed (or, for a broker that lost its memory-only storage, acknowledged before it died),
and no record is stored twice (the producer is idempotent).
"""

import json
import time

import pytest
from support.fault_tools import (
    Background,
    Broker,
    assert_no_duplicates,
    assert_subset,
    banking,
    jsonl_rows,
    kafka_rows,
    rows_of,
    wait_for,
)
from support.kafka_fixtures import create_topic, read_all

from doge_datagen import DeliveryError, FileSink, KafkaSinkFactory
from doge_datagen.demo import user_row

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def key(subject, transition):
    return str(subject.user_id)


def value(timestamp, subject, transition):
    return json.dumps(user_row(timestamp, subject, transition))


@pytest.fixture
def broker(tmp_path):
    own = Broker(tmp_path)
    own.start()
    yield own
    own.stop()


def paced_run(broker, tmp_path, **factory_options):
    """About 6 s of the banking model at 10 ms per tick into Kafka and a JSON Lines file."""
    topic = create_topic(broker.bootstrap, partitions=1, prefix="doge-fault")
    factory = KafkaSinkFactory(broker.bootstrap, "doge-fault", **factory_options)
    kafka = factory.create(topic, key, value)
    jsonl = FileSink(tmp_path / "beside.jsonl", user_row)
    datagen, truth = banking([kafka, jsonl], subjects=3000, ticks=600, seed=11)
    run = Background(lambda: datagen.start(speed=6000))
    return topic, kafka, jsonl, truth, run


def test_broker_paused_for_5_seconds_mid_run(broker, tmp_path):
    topic, kafka, jsonl, truth, run = paced_run(broker, tmp_path)
    wait_for(lambda: len(truth) > 300, 30, "events before the pause")
    broker.pause()
    time.sleep(5)
    broker.resume()
    run.join(120)

    assert run.error is None, run.error
    summary = run.result
    events = rows_of(truth)
    assert summary.events == len(events) > 1000
    assert summary.delivery[kafka.name] == {"delivered": len(events), "failed": 0}
    records = kafka_rows(read_all(broker.bootstrap, topic, expected=len(events)))
    assert records == events  # all of them, once each, in order
    assert jsonl_rows(jsonl.path) == events


def test_broker_killed_and_not_restarted(broker, tmp_path):
    topic, kafka, jsonl, truth, run = paced_run(
        broker, tmp_path, flush_timeout=3.0, conf={"message.timeout.ms": 3000}
    )
    wait_for(lambda: kafka.delivered > 200, 30, "acknowledged records before the kill")
    broker.kill()
    run.join(120)

    assert isinstance(run.error, DeliveryError), run.error
    summary = run.summary
    events = rows_of(truth)
    counts = summary.delivery[kafka.name]
    # Nothing silently lost: every event was acknowledged before the broker died, or is
    # counted as failed, and the error says so.
    assert counts["delivered"] + counts["failed"] == summary.events == len(events)
    assert counts["delivered"] > 200 and counts["failed"] > 0
    assert (run.error.delivered, run.error.failed) == (counts["delivered"], counts["failed"])
    # The sink after Kafka holds every event (a failing sink does not drop them elsewhere).
    assert jsonl_rows(jsonl.path) == events
    assert summary.delivery[jsonl.name] == {"delivered": len(events), "failed": 0}


def test_broker_killed_and_restarted(broker, tmp_path):
    topic, kafka, jsonl, truth, run = paced_run(broker, tmp_path, flush_timeout=10.0)
    wait_for(lambda: kafka.delivered > 200, 30, "acknowledged records before the kill")
    broker.kill()
    kafka.poll()  # reports already received from the dead broker; no new ones can come
    # The producer reports failures only: while records are in flight, delivered is a lower
    # bound (records neither failed nor queued), and produced - failed an upper one.
    before, at_most = kafka.delivered, kafka.produced - kafka.failed
    assert 0 < before <= at_most
    time.sleep(1.5)
    broker.start()  # same port, empty memory-only storage
    run.join(120)

    summary = run.summary
    events = rows_of(truth)
    counts = summary.delivery[kafka.name]
    assert counts["delivered"] + counts["failed"] == summary.events == len(events)
    # What the new broker holds: records acknowledged after the restart, each once, each one
    # the run generated. (Those acknowledged before died with the old broker's memory.)
    records = kafka_rows(read_all(broker.bootstrap, topic, expected=counts["delivered"] - at_most))
    assert_no_duplicates(records, "the restarted broker")
    assert_subset(records, events, "the restarted broker")
    assert counts["delivered"] - at_most <= len(records) <= counts["delivered"] - before
    if run.error is None:
        assert counts["failed"] == 0
    else:
        # The idempotent producer may find that the new broker does not know it (a fatal
        # error: retrying could duplicate): the records it held count as failed, never
        # dropped or written twice, and a new producer delivers the rest of the run.
        assert isinstance(run.error, DeliveryError), run.error
        assert 0 < run.error.failed <= counts["failed"]
    assert jsonl_rows(jsonl.path) == events
