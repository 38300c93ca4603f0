"""RabbitMQ and NATS JetStream on a fresh server: by default the sinks declare nothing and
their errors say what is missing and how to create it; ``?declare=1`` (``declare=True``)
creates the exchange, queue and binding, or the stream, so that the README's URL forms
deliver every message. Against the machine's RabbitMQ and NATS servers."""

import asyncio
import json
from typing import Any, List, Tuple

import pytest
from support.bus_fixtures import RabbitQueue, _nats_call, unique
from support.services import require_module

from doge_datagen.cli.main import event_key
from doge_datagen.demo import banking_generator, event_row
from doge_datagen.errors import ConfigurationError, DeliveryError
from doge_datagen.sinks.registry import Records, build_sink

RECORDS = Records(row=event_row, key=event_key)


def run_into(url: str) -> int:
    """The banking model's events into the sink ``url`` names; the number of events."""
    require_module("pika", "rabbitmq") if url.startswith("amqp") else require_module("nats", "nats")
    sink = build_sink(url, RECORDS)
    datagen = banking_generator(sink, sink, sink, sink, subjects_num=30, ticks_num=120, seed=4)
    for transition in datagen.transitions:
        transition.event_sinks = [sink]
    summary = datagen.start()
    assert summary.delivery[sink.name] == {"delivered": summary.events, "failed": 0}
    return summary.events


# -- RabbitMQ -------------------------------------------------------------------------------


def test_a_missing_exchange_says_how_to_create_it_and_declare_creates_it(amqp_url):
    exchange = unique("doge-fresh")
    url = f"{amqp_url.rstrip('/')}/{exchange}"
    with pytest.raises(DeliveryError) as caught:
        run_into(url)
    message = str(caught.value)
    assert "does not exist" in message and f"name={exchange}" in message
    assert "declare=1" in message

    queue = RabbitQueue(amqp_url, exchange=exchange, queue=exchange, declare=False)
    try:
        events = run_into(f"{url}?declare=1")
        events += run_into(f"{url}?declare=1")  # declaring again changes nothing
        messages = queue.read()
        assert len(messages) == events > 0
        assert all(json.loads(body)["user_id"] == int(key) for key, body in messages)
    finally:
        queue.close()


def test_declare_on_the_default_exchange_creates_the_routing_keys_queue(amqp_url):
    name = unique("doge-q")
    url = f"{amqp_url.rstrip('/')}/?routing_key={name}"
    with pytest.raises(DeliveryError) as caught:
        run_into(url)
    assert "no queue is bound" in str(caught.value) and "declare=1" in str(caught.value)
    assert f"declare queue name={name}" in str(caught.value)

    events = run_into(f"{url}&declare=1")
    queue = RabbitQueue(amqp_url, exchange="", queue=name, declare=False)
    try:
        assert len(queue.read()) == events > 0
    finally:
        queue._channel.queue_delete(name)
        queue._connection.close()


def test_declare_binds_a_named_queue_to_a_broker_exchange(amqp_url):
    name = unique("doge-q")
    with pytest.raises(ConfigurationError, match="queue=NAME"):
        build_sink(f"{amqp_url.rstrip('/')}/amq.topic?declare=1", RECORDS)
    events = run_into(f"{amqp_url.rstrip('/')}/amq.topic?declare=1&queue={name}")
    queue = RabbitQueue(amqp_url, exchange="amq.topic", queue=name, declare=False)
    try:
        assert len(queue.read()) == events > 0
    finally:
        queue._channel.queue_delete(name)
        queue._connection.close()


# -- NATS JetStream -------------------------------------------------------------------------


def stream_messages(url: str, name: str) -> List[Tuple[str, bytes]]:
    async def read(js: Any) -> List[Tuple[str, bytes]]:
        info = await js.stream_info(name)
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(name, seq)
            found.append((message.subject, message.data))
        return found

    return asyncio.run(_nats_call(url, read))


def stream_exists(url: str, name: str) -> bool:
    import nats

    async def exists(js: Any) -> bool:
        try:
            await js.stream_info(name)
            return True
        except nats.js.errors.NotFoundError:
            return False

    return asyncio.run(_nats_call(url, exists))


def delete_stream(url: str, name: str) -> None:
    async def delete(js: Any) -> None:
        await js.delete_stream(name)

    asyncio.run(_nats_call(url, delete))


def test_a_subject_no_stream_captures_says_how_to_create_one_and_declare_does(nats_url):
    subject = unique("doge.fresh").replace("-", "_")
    stream = subject.replace(".", "_").upper()
    url = f"{nats_url.rstrip('/')}/{subject}"
    with pytest.raises(DeliveryError) as caught:
        run_into(url)
    message = str(caught.value)
    assert f"nats stream add {stream} --subjects '{subject}.>'" in message
    assert "declare=1" in message
    assert not stream_exists(nats_url, stream)

    try:
        events = run_into(f"{url}?declare=1")
        events += run_into(f"{url}?declare=1")  # the stream is there now: used as it is
        messages = stream_messages(nats_url, stream)
        assert len(messages) == events > 0
        assert all(topic == f"{subject}.{json.loads(body)['user_id']}" for topic, body in messages)
    finally:
        delete_stream(nats_url, stream)


def test_a_named_stream_that_is_missing_says_how_to_create_it_and_declare_does(nats_url):
    subject = unique("doge.named").replace("-", "_")
    stream = unique("DOGE_NAMED").replace("-", "_").upper()
    url = f"{nats_url.rstrip('/')}/{subject}?stream={stream}"
    with pytest.raises(ConfigurationError) as caught:
        run_into(url)
    assert f"nats stream add {stream}" in str(caught.value) and "declare=1" in str(caught.value)
    try:
        events = run_into(f"{url}&declare=1")
        assert len(stream_messages(nats_url, stream)) == events > 0
    finally:
        delete_stream(nats_url, stream)


def test_declare_uses_a_stream_that_already_captures_the_subject(nats_stream, nats_url):
    events = run_into(f"{nats_url.rstrip('/')}/{nats_stream.subject}?declare=1")
    assert len(nats_stream.read()) == events > 0
    assert not stream_exists(nats_url, nats_stream.subject.replace(".", "_").upper())
