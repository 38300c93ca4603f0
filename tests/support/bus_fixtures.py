"""The event buses the sink tests use: the machine's Redis, RabbitMQ, Mosquitto and NATS, an
independent reader for each, and private servers to break.

Tests reach the shared services on loopback (``DOGE_TEST_REDIS_URL``, ``DOGE_TEST_AMQP_URL``,
``DOGE_TEST_MQTT``, ``DOGE_TEST_NATS_URL`` name others) and use names of their own (streams,
exchanges, queues, topics, subjects) so that runs never see each other's messages. Faults
are caused only to processes a test starts itself: a Redis, Mosquitto or NATS server on a free
port, or a TCP proxy in front of the shared RabbitMQ.
"""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple
from urllib.parse import urlsplit

import pytest

from support.services import TcpProxy, free_port, service_missing

REDIS_URL = os.environ.get("DOGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("DOGE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
MQTT_ADDRESS = os.environ.get("DOGE_TEST_MQTT", "127.0.0.1:1883")
NATS_URL = os.environ.get("DOGE_TEST_NATS_URL", "nats://127.0.0.1:4222")


def unique(prefix: str = "doge") -> str:
    """A name no other test run uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def unused_port() -> int:
    """A loopback port where nothing listens (connections are refused)."""
    return free_port()


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _host_port(url: str, default_port: int) -> Tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"x://{url}")
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _require(what: str, url: str, default_port: int) -> None:
    host, port = _host_port(url, default_port)
    if not port_open(host, port):
        service_missing(f"{what} at {host}:{port}")


# -- the shared services -----------------------------------------------------------------------


@pytest.fixture
def redis_url() -> str:
    _require("Redis", REDIS_URL, 6379)
    return REDIS_URL


@pytest.fixture
def amqp_url() -> str:
    _require("RabbitMQ", AMQP_URL, 5672)
    return AMQP_URL


@pytest.fixture
def mqtt_address() -> Tuple[str, int]:
    _require("Mosquitto (MQTT)", MQTT_ADDRESS, 1883)
    return _host_port(MQTT_ADDRESS, 1883)


@pytest.fixture
def nats_url() -> str:
    _require("NATS", NATS_URL, 4222)
    return NATS_URL


# -- reading back -------------------------------------------------------------------------------


def read_redis_stream(url: str, stream: str, delete: bool = True) -> List[Dict[str, str]]:
    """Every entry of ``stream``, in order, as a dict of text fields (the stream is deleted)."""
    import redis

    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        entries = []
        last = "-"
        while True:
            chunk = client.xrange(stream, min=last, count=10_000)
            if last != "-":
                chunk = chunk[1:]
            if not chunk:
                break
            entries.extend(fields for _, fields in chunk)
            last = chunk[-1][0]
        if delete:
            client.delete(stream)
        return entries
    finally:
        client.close()


class RabbitQueue:
    """An exchange of its own with one queue bound to it (``binding`` routing key, ``#`` for
    a topic exchange); :meth:`read` takes every message off the queue. With ``declare=False``
    it reads (and at :meth:`close` deletes) an exchange and queue someone else declared."""

    def __init__(
        self,
        url: str,
        kind: str = "topic",
        binding: str = "#",
        exchange: str = "",
        queue: str = "",
        declare: bool = True,
    ) -> None:
        import pika

        self.exchange = exchange or unique("doge-ex")
        self.queue = queue or unique("doge-q")
        self._connection = pika.BlockingConnection(pika.URLParameters(url))
        self._channel = self._connection.channel()
        if declare:
            self._channel.exchange_declare(self.exchange, kind, auto_delete=False)
            self._channel.queue_declare(self.queue)
            self._channel.queue_bind(self.queue, self.exchange, binding)

    def read(self) -> List[Tuple[str, bytes]]:
        """``(routing key, body)`` of every message now in the queue, in order."""
        messages = []
        while True:
            method, _, body = self._channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return messages
            messages.append((method.routing_key, body))

    def close(self) -> None:
        self._channel.queue_delete(self.queue)
        self._channel.exchange_delete(self.exchange)
        self._connection.close()


@pytest.fixture
def rabbit_queue(amqp_url: str) -> Iterator[RabbitQueue]:
    queue = RabbitQueue(amqp_url)
    yield queue
    queue.close()


_SUBSCRIBER = r"""
import json, sys
import paho.mqtt.client as mqtt
host, port, topic, qos = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def on_connect(client, userdata, flags, reason, props):
    client.subscribe([(topic, qos), (topic + "/#", qos)])
def on_subscribe(client, userdata, mid, reasons, props):
    print("ready", flush=True)
def on_message(client, userdata, msg):
    print(json.dumps([msg.topic, msg.payload.hex(), msg.qos]), flush=True)
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
client.connect(host, port)
client.loop_forever()
"""


class MqttSubscriber:
    """A subscriber to ``topic`` and ``topic/#`` in a process of its own, so that it keeps
    up with the publisher; :meth:`read` gives ``(topic, payload, qos)`` in arrival order.

    The broker delivers at the lower of the publisher's and the subscription's QoS. Mosquitto
    queues at most 1000 QoS 1/2 messages for a subscriber that falls behind (and drops the
    rest); QoS 0 deliveries to a connected subscriber have no such limit, so ``qos=0`` suits
    runs of more messages.
    """

    def __init__(self, host: str, port: int, topic: str, qos: int = 2) -> None:
        self.topic = topic
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SUBSCRIBER, host, str(port), topic, str(qos)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lines: List[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read_lines, daemon=True)
        self._reader.start()
        if not self._ready.wait(15):
            self.close()
            raise RuntimeError("the MQTT subscriber did not start")

    def _read_lines(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.strip() == "ready":
                self._ready.set()
            else:
                self._lines.append(line)

    def read(self, expected: int, idle: float = 2.0) -> List[Tuple[str, bytes, int]]:
        """Wait until ``expected`` messages came (or none for ``idle`` seconds); return them."""
        seen, last_change = -1, time.monotonic()
        while len(self._lines) < expected:
            if len(self._lines) != seen:
                seen, last_change = len(self._lines), time.monotonic()
            elif time.monotonic() - last_change > idle:
                break
            time.sleep(0.02)
        time.sleep(0.2)  # anything beyond the expected count shows up too
        return [(t, bytes.fromhex(p), q) for t, p, q in map(json.loads, list(self._lines))]

    def close(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


async def _nats_call(url: str, work: Any) -> Any:
    import nats

    connection = await nats.connect(url)
    try:
        return await work(connection.jetstream())
    finally:
        await connection.close()


class NatsStream:
    """A JetStream stream of its own capturing ``subject`` and ``subject.>``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = unique("DOGE").replace("-", "_").upper()
        self.subject = self.name.lower().replace("_", "-")

        async def create(js: Any) -> None:
            await js.add_stream(name=self.name, subjects=[self.subject, f"{self.subject}.>"])

        asyncio.run(_nats_call(url, create))

    def read(self) -> List[Tuple[str, bytes]]:
        """``(subject, payload)`` of every message of the stream, in order."""

        async def read_all(js: Any) -> List[Tuple[str, bytes]]:
            info = await js.stream_info(self.name)
            messages: List[Tuple[str, bytes]] = []
            if not info.state.messages:
                return messages
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                message = await js.get_msg(self.name, seq)
                messages.append((message.subject, message.data))
            return messages

        return asyncio.run(_nats_call(self.url, read_all))

    def delete(self) -> None:
        async def delete(js: Any) -> None:
            await js.delete_stream(self.name)

        asyncio.run(_nats_call(self.url, delete))


@pytest.fixture
def nats_stream(nats_url: str) -> Iterator[NatsStream]:
    stream = NatsStream(nats_url)
    yield stream
    stream.delete()


# -- servers a test owns, to break --------------------------------------------------------------


class OwnServer:
    """A server process started by a test on a free port; stopped (by its PID) at the end."""

    def __init__(self, argv: List[str], port: int, what: str) -> None:
        self.port = port
        self.what = what
        self.process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 15
        while not port_open("127.0.0.1", port, 0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{what} did not start on port {port}")
            time.sleep(0.05)

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
        self.process.wait()

    stop = kill


def _binary(name: str, *candidates: str) -> str:
    for candidate in (shutil.which(name), *candidates):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    service_missing(f"the {name} program")
    raise AssertionError("unreachable")


@pytest.fixture
def own_redis() -> Iterator[OwnServer]:
    binary = _binary("redis-server", "/usr/bin/redis-server")
    port = free_port()
    server = OwnServer(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        port,
        "redis-server",
    )
    yield server
    server.stop()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[OwnServer]:
    binary = _binary("mosquitto", "/usr/sbin/mosquitto")
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    server = OwnServer([binary, "-c", str(config)], port, "mosquitto")
    yield server
    server.stop()


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[OwnServer]:
    binary = _binary("nats-server", "/usr/sbin/nats-server")
    port = free_port()
    store = tmp_path / "jetstream"
    server = OwnServer(
        [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)], port, "nats-server"
    )
    yield server
    server.stop()


@pytest.fixture
def amqp_proxy(amqp_url: str) -> Iterator[Tuple[TcpProxy, str]]:
    """A proxy in front of the shared RabbitMQ, and the AMQP URL that goes through it."""
    proxy = TcpProxy(_host_port(amqp_url, 5672)).start()
    parts = urlsplit(amqp_url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{proxy.address}" if userinfo else proxy.address
    yield proxy, parts._replace(netloc=netloc).geturl()
    proxy.stop()


def wait_for(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


__all__ = [
    "MqttSubscriber",
    "NatsStream",
    "OwnServer",
    "RabbitQueue",
    "free_port",
    "read_redis_stream",
    "unique",
    "unused_port",
    "wait_for",
]
