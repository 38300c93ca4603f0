"""A TCP proxy between a database client and its server that cuts a connection exactly at a
given statement, such as ``COMMIT``: the one moment at which a lost connection leaves the
client not knowing what the server did, and which no timing of a kill hits reliably.

It reads what the client sends as messages (PostgreSQL's frontend protocol, or MySQL and
MariaDB packets), so it knows the text of each statement; what the server sends is passed on
as it comes. Armed by :meth:`DbProxy.cut_at`, it acts on the first statement that starts with
the given text, on any connection:

* ``forward=True``: the statement goes to the server, which carries it out, and its reply
  is withheld: the client never hears that it was done;
* ``forward=False``: the statement never reaches the server.

Then the proxy closes its side towards the server and, by default, waits for the server to
end that session (it does so on reading the end of the stream), so that what the server
holds afterwards is final: a COMMIT forwarded is committed, a transaction whose COMMIT was
kept back is rolled back, an XA transaction left prepared stays prepared. Only then does it
close the client's connection, which the client sees as a connection lost while it waited for
the reply. With ``end_session=False`` the server's side is kept open instead, idle as if the
network had gone, until :meth:`DbProxy.close`.

Every statement that passes is kept in :attr:`DbProxy.statements`: the server's own view of
what a client asked.
"""

import re
import select
import socket
import threading
from typing import List, Optional, Set, Tuple

from sqlalchemy.engine import make_url

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_MYSQL_QUERY = 0x03


class _PostgresReader:
    """Splits PostgreSQL frontend bytes into messages: ``(message, statement text or None)``."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.started = False  # past the startup message: every message has a type byte

    def feed(self, data: bytes) -> List[Tuple[bytes, Optional[str]]]:
        buffer = self.buffer
        buffer += data
        messages: List[Tuple[bytes, Optional[str]]] = []
        while True:
            if not self.started:
                if len(buffer) < 8:
                    break
                length = int.from_bytes(buffer[:4], "big")
                code = int.from_bytes(buffer[4:8], "big")
                if len(buffer) < length:
                    break
                # An SSL or GSS request is answered with one byte; the startup message follows.
                self.started = code not in (_SSL_REQUEST, _GSSENC_REQUEST)
                messages.append((bytes(buffer[:length]), None))
                del buffer[:length]
                continue
            if len(buffer) < 5:
                break
            length = 1 + int.from_bytes(buffer[1:5], "big")
            if len(buffer) < length:
                break
            message = bytes(buffer[:length])
            del buffer[:length]
            statement = None
            if message[:1] == b"Q":  # simple query: the text, NUL-terminated
                statement = message[5:-1].decode(errors="replace")
            elif message[:1] == b"P":  # parse: statement name, then the text
                body = message[5:]
                start = body.index(b"\0") + 1
                statement = body[start : body.index(b"\0", start)].decode(errors="replace")
            messages.append((message, statement))
        return messages


class _MysqlReader:
    """Splits MySQL client bytes into packets: ``(packet, statement text or None)``. A command
    is the first packet of its exchange (sequence number 0); the handshake's are not."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> List[Tuple[bytes, Optional[str]]]:
        buffer = self.buffer
        buffer += data
        packets: List[Tuple[bytes, Optional[str]]] = []
        while len(buffer) >= 4:
            length = 4 + int.from_bytes(buffer[:3], "little")
            if len(buffer) < length:
                break
            packet = bytes(buffer[:length])
            del buffer[:length]
            statement = None
            if packet[3] == 0 and length > 4 and packet[4] == _MYSQL_QUERY:
                statement = packet[5:].decode(errors="replace")
            packets.append((packet, statement))
        return packets


class Cut:
    """One armed cut: where, how, and whether (and at which statement) it happened."""

    def __init__(self, prefix: str, forward: bool, end_session: bool, after: int = 0) -> None:
        self.pattern = re.compile(r"\s*" + re.escape(prefix), re.IGNORECASE)
        self.forward = forward
        self.end_session = end_session
        self.after = after
        self.statement: Optional[str] = None
        self.done = threading.Event()

    def matches(self, statement: str) -> bool:
        return self.pattern.match(statement) is not None

    def fires(self, statement: str) -> bool:
        """Whether the cut happens at ``statement`` (counting the ones it lets pass)."""
        if not self.matches(statement):
            return False
        self.after -= 1
        return self.after < 0


class DbProxy:
    """Forwards a loopback port to the server of ``url`` (PostgreSQL, MySQL or MariaDB);
    :attr:`url` is the same URL through the proxy."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend == "postgresql":
            self._reader = _PostgresReader
            default_port = 5432
            # The proxy must read the stream: no TLS (nor GSS encryption) through it.
            parsed = parsed.update_query_dict({"sslmode": "disable", "gssencmode": "disable"})
        elif backend in ("mysql", "mariadb"):
            self._reader = _MysqlReader  # type: ignore[assignment]
            default_port = 3306
        else:
            raise ValueError(f"no proxy for {backend} URLs")
        self.target = (parsed.host or "127.0.0.1", parsed.port or default_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = parsed.set(host="127.0.0.1", port=self.port).render_as_string(
            hide_password=False
        )
        #: Every statement clients sent through the proxy, in the order it read them.
        self.statements: List[str] = []
        self._cuts: List[Cut] = []  # armed, in order
        self._lock = threading.Lock()
        self._sockets: List[socket.socket] = []
        self._held: Set[socket.socket] = set()  # server sides kept open by a cut
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_at(
        self, prefix: str, *, forward: bool, end_session: bool = True, after: int = 0
    ) -> Cut:
        """Cut the connection that sends the next statement starting with ``prefix`` (any
        case, leading blanks ignored), once, after letting ``after`` such statements pass.
        Cuts armed one after the other act in that order: the second is armed by the first."""
        cut = Cut(prefix, forward, end_session, after)
        with self._lock:
            self._cuts.append(cut)
        return cut

    def sent(self, prefix: str) -> List[str]:
        """The statements sent so far that start with ``prefix``."""
        probe = Cut(prefix, False, False)
        with self._lock:
            return [s for s in self.statements if probe.matches(s)]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
        self._listener.close()
        for sock in sockets:
            _close(sock)

    def __enter__(self) -> "DbProxy":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- relaying ---------------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._closed:
                    client.close()
                    server.close()
                    return
                self._sockets += [client, server]
            threading.Thread(target=self._relay, args=(client, server), daemon=True).start()

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        reader = self._reader()
        try:
            while True:
                ready, _, _ = select.select([client, server], [], [])
                if server in ready:
                    data = server.recv(1 << 16)
                    if not data:
                        return
                    client.sendall(data)
                if client in ready:
                    data = client.recv(1 << 16)
                    if not data:
                        return
                    for message, statement in reader.feed(data):
                        cut = None
                        if statement is not None:
                            with self._lock:
                                self.statements.append(statement)
                                if self._cuts and self._cuts[0].fires(statement):
                                    cut = self._cuts.pop(0)
                        if cut is not None and statement is not None:
                            self._do_cut(cut, statement, message, client, server)
                            return
                        server.sendall(message)
        except (OSError, ValueError):  # a socket closed by close()
            return
        finally:
            _close(client)
            if server not in self._held:
                _close(server)

    def _do_cut(
        self, cut: Cut, statement: str, message: bytes, client: socket.socket, server: socket.socket
    ) -> None:
        if cut.forward:
            server.sendall(message)
        if cut.end_session:
            # End of stream to the server, which then ends the session; read (and drop)
            # whatever it still says until it has closed its side.
            server.shutdown(socket.SHUT_WR)
            server.settimeout(30)
            while server.recv(1 << 16):
                pass
        else:
            self._held.add(server)
        cut.statement = statement
        _close(client)
        cut.done.set()


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
