"""Servers for the HTTP and object storage sinks' tests, started here on free loopback ports.

``Endpoint`` is a real HTTP server (``http.server`` in a thread) that records every request
and answers from a script: a status with headers, a stall longer than the client waits, a
dropped connection; :meth:`Endpoint.stop` closes its socket, so connections are refused.

``moto_s3`` is moto's S3-compatible server (``ThreadedMotoServer``) for the session;
``DOGE_TEST_S3=http://host:port`` points the tests at another S3-compatible server instead.
Without moto the tests are skipped on a developer's machine and fail when ``CI=true``.
"""

import json
import os
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import pytest

from support.services import free_port, service_missing

S3_ENV = "DOGE_TEST_S3"
#: The credentials the tests give the S3 sinks (moto takes any).
S3_KEY, S3_SECRET = "doge-test-key", "doge-test-secret-" + uuid.uuid4().hex


class Endpoint:
    """A scripted HTTP server: ``script`` holds the answers to the next requests, in order
    (``(status, headers, body)``, ``("stall", seconds)`` or ``("drop",)``); once it is empty
    every request gets ``200``. ``requests`` records ``(path, headers, body)`` of each
    request, ``accepted`` the bodies answered with a 2xx."""

    def __init__(self) -> None:
        self.port = free_port()
        self.script: List[Tuple[Any, ...]] = []
        self.requests: List[Tuple[str, Dict[str, str], bytes]] = []
        self.accepted: List[Tuple[Dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.released = threading.Event()  # ends the stalls when the server stops
        self._server: Optional[ThreadingHTTPServer] = None
        self.connections: Set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, tls: Any = None) -> "Endpoint":
        """Listen (again) on the port; ``tls``: an ``ssl.SSLContext`` to serve HTTPS."""
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def setup(self) -> None:
                super().setup()
                with endpoint.lock:
                    endpoint.connections.add(self.connection)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with endpoint.lock:
                    endpoint.requests.append((self.path, headers, body))
                    action = endpoint.script.pop(0) if endpoint.script else (200, {}, b"")
                if action[0] == "stall":
                    endpoint.released.wait(action[1])
                    self.close_connection = True
                    return
                if action[0] == "drop":
                    self.close_connection = True
                    return
                status, extra, answer = action
                if 200 <= status < 300:  # recorded before the client can see the answer
                    with endpoint.lock:
                        endpoint.accepted.append((headers, body))
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.released.clear()
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        """Stop answering and close the socket: new connections are refused."""
        server, self._server = self._server, None
        self.released.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        with self.lock:  # kept-alive connections too: the server is gone
            connections, self.connections = self.connections, set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()

    def rows(self) -> List[Any]:
        """Every row of the accepted bodies (JSON arrays or NDJSON), in arrival order."""
        found: List[Any] = []
        for headers, body in self.accepted:
            if headers.get("content-type") == "application/x-ndjson":
                found += [json.loads(line) for line in body.decode().splitlines()]
            else:
                found += json.loads(body)
        return found


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    """A scripted HTTP server of this test."""
    server = Endpoint().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """The endpoint URL of an S3-compatible server: ``$DOGE_TEST_S3`` or moto started here."""
    existing = os.environ.get(S3_ENV)
    if existing:
        yield existing
        return
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        service_missing(f"moto's S3 server (pip install 'moto[server]': {exc})")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                service_missing(f"moto's S3 server (it did not listen on {url})")
            time.sleep(0.05)
    try:
        yield url
    finally:
        server.stop()


def s3_client(endpoint_url: str) -> Any:
    """A boto3 S3 client of the test server, to make buckets and read objects back."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )


def new_bucket(endpoint_url: str) -> str:
    name = f"doge-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint_url).create_bucket(Bucket=name)
    return name


def s3_query(endpoint_url: str, **more: str) -> str:
    """The settings of an S3 sink URL for the test server, credentials from the environment."""
    os.environ["DOGE_TEST_S3_KEY"] = S3_KEY
    os.environ["DOGE_TEST_S3_SECRET"] = S3_SECRET
    settings = {
        "endpoint_url": endpoint_url,
        "key_env": "DOGE_TEST_S3_KEY",
        "secret_env": "DOGE_TEST_S3_SECRET",
        **more,
    }
    return "&".join(f"{k}={v}" for k, v in settings.items())
