"""A sink that delivers at least once (RabbitMQ) across a resume: the events a resumed run
gives again carry the ``event_id`` they had, so a consumer that keeps the ids drops them and
holds exactly the uninterrupted run's events. A run that failed in the process, and runs
killed with SIGKILL at seeded events after a checkpoint, resumed each time."""

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.bus_fixtures import RabbitQueue
from support.logouts import stop_at

from doge_datagen.demo import banking_generator
from doge_datagen.sinks.rabbitmq import RabbitMQSinkFactory
from doge_datagen.sinks.record import Record

RECORD = Record(["event_id", "timestamp", "user_id", ("event", "trigger"), "balance"])


def build(amqp_url, exchange, stop=None, error=None):
    sink = RabbitMQSinkFactory(amqp_url).create(exchange, None, RECORD, name="amqp:events")
    datagen = banking_generator(
        sink, sink, sink, sink, subjects_num=300, ticks_num=400, seed=3, timestamp_start=0
    )
    stop_at(datagen, stop, error)
    return datagen, sink


def test_repeats_after_a_resume_carry_the_same_event_id(tmp_path, amqp_url):
    queues = [RabbitQueue(amqp_url), RabbitQueue(amqp_url)]
    try:
        whole, resumed = queues
        build(amqp_url, whole.exchange)[0].start()
        saved = tmp_path / "run.ckpt"
        build(amqp_url, resumed.exchange, stop=20)[0].start(checkpoint=saved)
        datagen, sink = build(amqp_url, resumed.exchange, stop=30, error=RuntimeError("gone"))
        with pytest.raises(RuntimeError, match="gone"):
            datagen.start(resume=saved)
        assert sink.delivered > 0  # messages past the checkpoint, sent again below
        build(amqp_url, resumed.exchange)[0].start(resume=saved)
        first = [json.loads(body) for _, body in whole.read()]
        again = [json.loads(body) for _, body in resumed.read()]
        by_id = {m["event_id"]: m for m in first}
        assert len(by_id) == len(first) > 300  # unique over the run
        assert len(again) > len(first)  # some messages twice
        assert {m["event_id"] for m in again} == set(by_id)
        assert all(m == by_id[m["event_id"]] for m in again)  # a repeat is the same event
        kept, seen = [], set()
        for m in again:  # what a consumer that drops repeated ids keeps
            if m["event_id"] not in seen:
                seen.add(m["event_id"])
                kept.append(m)
        assert kept == first
    finally:
        for queue in queues:
            queue.close()


SCRIPT = Path(__file__).resolve().parents[1] / "support" / "checkpoint_bus_run.py"


def launch(amqp_url, exchange, saved, *extra):
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), amqp_url, exchange, str(saved), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("trial", range(2))
def test_sigkill_at_seeded_events_then_resumed_repeats_carry_their_event_id(
    tmp_path, amqp_url, trial
):
    rng = random.Random(trial)
    queues = [RabbitQueue(amqp_url), RabbitQueue(amqp_url)]
    whole, resumed = queues
    saved = tmp_path / "run.ckpt"
    try:
        proc = launch(amqp_url, whole.exchange, saved, "--plain")
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        for _ in range(3):
            proc = launch(amqp_url, resumed.exchange, saved, "--kill-at", str(rng.randint(50, 400)))
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == -signal.SIGKILL, err
        proc = launch(amqp_url, resumed.exchange, saved)
        printed, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert printed.startswith("resumed 600")
        first = [json.loads(body) for _, body in whole.read()]
        again = [json.loads(body) for _, body in resumed.read()]
        by_id = {m["event_id"]: m for m in first}
        assert len(by_id) == len(first) > 1000
        assert len(again) > len(first)  # repeats after the kills
        assert {m["event_id"] for m in again} == set(by_id)
        assert all(m == by_id[m["event_id"]] for m in again)
        kept, seen = [], set()
        for m in again:  # what a consumer that drops repeated ids keeps, in order
            if m["event_id"] not in seen:
                seen.add(m["event_id"])
                kept.append(m)
        assert kept == first
    finally:
        for queue in queues:
            queue.close()
