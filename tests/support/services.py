"""Helpers the tests share for reaching real services, and for making them go away.

``service_missing`` skips a test whose service is not there on a developer's machine and
fails it when ``CI=true``. ``TcpProxy`` sits between a client and a real server on loopback:
stopping it makes the server unreachable (refused connections, dropped sockets) without
touching the server itself, which other tests share.
"""

import importlib
import os
import socket
import threading
from typing import Any, List, Optional, Tuple

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_missing(what: str) -> None:
    """Skip (developer machine) or fail (CI) the current test because ``what`` is missing."""
    if IN_CI:
        pytest.fail(f"{what} is required when CI=true", pytrace=False)
    pytest.skip(f"{what} is not available", allow_module_level=True)


def require_module(name: str, extra: str) -> Any:
    """Import ``name`` from an optional extra; skip without it on a developer's machine, fail
    with ``CI=true``, where ``scripts/test.sh`` installs every extra the tests use."""
    try:
        return importlib.import_module(name)
    except ImportError:
        service_missing(f"{name} (pip install 'doge-datagen[{extra}]')")


def free_port() -> int:
    """A loopback port nothing listens on (at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target``; :meth:`stop` drops every connection and
    refuses new ones, :meth:`start` listens again on the same port."""

    def __init__(self, target: Tuple[str, int], port: Optional[int] = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._listener: Optional[socket.socket] = None
        self._sockets: List[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "TcpProxy":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            # Relay small writes at once: Nagle's algorithm against the peer's delayed ACK
            # would add tens of milliseconds to each request-reply round trip.
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
