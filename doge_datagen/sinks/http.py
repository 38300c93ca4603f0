"""A sink that POSTs batches of events to an HTTP(S) endpoint.

Rows are encoded as JSON when collected and sent ``batch_size`` at a time (and at least every
``flush_interval`` seconds in a run), as one JSON array or as newline-delimited JSON. A batch
that the server answers with 429 or a 5xx, or that meets a refused or dropped connection or
no answer within ``timeout``, is sent again after a pause that doubles each time (the
server's ``Retry-After`` when it gives one), as long as ``retries`` and ``max_time`` allow.
Any other status (400, 401, 413...) is final. A batch given up on counts as failed and is a
:class:`~doge_datagen.errors.DeliveryError` with the batch's rows as ``pending``.

Every attempt of a batch carries the same ``Idempotency-Key`` header: a batch retried after
a timeout may have reached the server already, and a server that keeps the keys can drop the
repeat. The token (``Authorization: Bearer``), a password and header values never appear in
a message, a log line or a repr.

The client is the standard library's ``http.client``: one kept-alive connection per sink,
nothing to install, and its timeouts and retries are exactly the ones described here.
"""

import base64
import http.client
import json
import logging
import ssl
import time
import uuid
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, cast
from urllib.parse import SplitResult, urlencode, urlsplit

from doge_datagen.core.checks import check_count, check_positive_count, check_seconds
from doge_datagen.core.masking import is_secret_key, mask_text
from doge_datagen.core.types import Transition
from doge_datagen.errors import ConfigurationError, DeliveryError, RecordError
from doge_datagen.sinks.base import DEFAULT_FLUSH_INTERVAL, Sink, check_flush_interval

__all__ = ["FORMATS", "HttpSink"]

_LOGGER = logging.getLogger(__name__)

ValueFunction = Callable[[int, Any, Transition], Any]

#: The body formats and their content types.
FORMATS = {"json": "application/json", "ndjson": "application/x-ndjson"}
#: Statuses after which the same batch is sent again.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
DEFAULT_BATCH_SIZE = 500
#: The "status" of an attempt whose server certificate is not trusted: never retried.
_UNTRUSTED = -1
_SLICE = 0.1  # a pause is cut into slices this long, so that hurry() can end it
# What a kept-alive connection closed by the server raises on its next request.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def _split_url(url: str) -> SplitResult:
    """``url``'s parts, checked: an http:// or https:// URL with a host."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"url must be http://HOST[:PORT]/PATH or https://..., got {url!r}")
    return parts


class HttpSink(Sink):
    """POSTs the rows of ``value_function`` in batches to ``url``.

    :param url: ``http://HOST[:PORT]/PATH`` or ``https://...`` (a query string is kept).
    :param value_function: ``(timestamp, subject, transition) -> dict`` (anything JSON takes).
    :param format: ``"json"`` (a JSON array per request) or ``"ndjson"`` (a line per row).
    :param batch_size: rows per request.
    :param headers: more request headers.
    :param token: sent as ``Authorization: Bearer TOKEN``.
    :param username: with ``password``, sent as HTTP basic authentication.
    :param query: more ``(name, value)`` pairs for the request's query string.
    :param timeout: seconds one request may take (connecting, sending, the answer).
    :param max_time: seconds one batch may take, all its attempts and pauses included.
    :param retries: how many times a batch is sent again after a retryable failure.
    :param backoff: the first pause before a retry, in seconds; it doubles each time, up to
        ``max_backoff``.
    :param ca_file: HTTPS: the certificate authorities to trust (the system's by default).
    :param flush_interval: during a run, a batch waits at most this long to be sent.
    :param name: how the run summary names the sink; the URL without query by default.

    ``delivered`` counts the rows of batches the server answered with a 2xx, ``failed``
    those given up on, ``buffered`` those waiting for their batch; ``requests`` counts
    the requests made, retries included.
    """

    def __init__(
        self,
        url: str,
        value_function: ValueFunction,
        *,
        format: str = "json",
        batch_size: int = DEFAULT_BATCH_SIZE,
        headers: Optional[Mapping[str, str]] = None,
        token: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        query: Iterable[Tuple[str, str]] = (),
        timeout: float = 10.0,
        max_time: float = 60.0,
        retries: int = 8,
        backoff: float = 0.2,
        max_backoff: float = 10.0,
        ca_file: Optional[str] = None,
        flush_interval: Optional[float] = DEFAULT_FLUSH_INTERVAL,
        name: Optional[str] = None,
    ) -> None:
        if not callable(value_function):
            raise ConfigurationError(f"value_function must be callable, got {value_function!r}")
        parts = _split_url(url)
        if format not in FORMATS:
            raise ConfigurationError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
        self.batch_size = check_positive_count("batch_size", batch_size)
        self.timeout = check_seconds("timeout", timeout)
        self.max_time = check_seconds("max_time", max_time)
        self.backoff = check_seconds("backoff", backoff)
        self.max_backoff = check_seconds("max_backoff", max_backoff)
        self.retries = check_count("retries", retries)
        self.flush_interval = check_flush_interval(flush_interval)
        self.format = format
        self.value_function = value_function
        self._set_target(parts, url, query)
        self._secrets: List[str] = []
        self._headers = self._make_headers(parts, headers, token, username, password)
        self._context = self._tls_context(ca_file)
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.name = name or f"{parts.scheme}://{host}:{self._port}{parts.path or '/'}"
        self._items: List[str] = []
        self._encode = json.JSONEncoder().encode
        self._connection: Optional[http.client.HTTPConnection] = None
        self._hurried = False
        self._gave_up = False
        self.requests = 0

    def _set_target(self, parts: SplitResult, url: str, query: Iterable[Tuple[str, str]]) -> None:
        """The host, port and path (with the query) the requests go to."""
        self._https = parts.scheme == "https"
        self._host = cast(str, parts.hostname)  # not empty: checked by _split_url
        try:
            self._port = parts.port or (443 if self._https else 80)
        except ValueError:
            raise ConfigurationError(f"url {url.split('@')[-1]!r} has a bad port") from None
        pairs = list(query)
        path = parts.path or "/"
        if parts.query or pairs:
            path += "?" + "&".join(p for p in (parts.query, urlencode(pairs)) if p)
        self._path = path

    def _make_headers(
        self,
        parts: SplitResult,
        headers: Optional[Mapping[str, str]],
        token: Optional[str],
        username: Optional[str],
        password: Optional[str],
    ) -> Dict[str, str]:
        """The request headers, authentication included; the secret values among them are
        kept, to be masked in messages."""
        sent: Dict[str, str] = {"Content-Type": FORMATS[self.format], "User-Agent": "doge-datagen"}
        for key, value in dict(headers or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ConfigurationError(f"headers must be strings, got {key!r}: {value!r}")
            sent[key] = value
            if is_secret_key(key):
                self._secrets.append(value)
        username = username if username is not None else parts.username
        password = password if password is not None else parts.password
        if token is not None:
            if not isinstance(token, str) or not token:
                raise ConfigurationError("token must be a non-empty string")
            sent["Authorization"] = f"Bearer {token}"
            self._secrets.append(token)
        elif username is not None or password is not None:
            pair = f"{username or ''}:{password or ''}".encode()
            sent["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
            self._secrets += [p for p in (password, sent["Authorization"][6:]) if p]
        return sent

    def _tls_context(self, ca_file: Optional[str]) -> Optional[ssl.SSLContext]:
        """HTTPS: the context that checks the server's certificate (None for http://)."""
        if self._https:
            try:
                return ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigurationError(f"cannot read ca_file {ca_file!r}: {exc}") from exc
        if ca_file is not None:
            raise ConfigurationError("ca_file applies to https:// URLs only")
        return None

    @property
    def buffered(self) -> int:
        """Rows waiting for their batch to be sent."""
        return len(self._items)

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        if not self._is_open:
            self.open()
        value = self.value_function(timestamp, subject, transition)
        try:
            item = self._encode(value)
        except (TypeError, ValueError) as exc:
            raise RecordError(f"{self.name}: cannot encode {value!r} as JSON: {exc}") from exc
        items = self._items
        items.append(item)
        if len(items) >= self.batch_size:
            self.flush()

    def _open(self) -> None:
        self._items = []
        self._hurried = False
        self._gave_up = False
        self.requests = 0

    def hurry(self) -> None:
        """Stop pausing between retries: each batch left gets one more attempt."""
        self._hurried = True

    def flush(self) -> None:
        """Send the buffered rows now, as one batch."""
        items, self._items = self._items, []
        if items:
            self._send(items)

    def _close(self) -> None:
        try:
            self.flush()
        finally:
            self._disconnect()

    # -- requests -----------------------------------------------------------------------------

    def _body(self, items: Sequence[str]) -> bytes:
        if self.format == "json":
            text = "[" + ",".join(items) + "]"
        else:
            text = "\n".join(items) + "\n"
        return text.encode("utf-8")

    def _send(self, items: List[str]) -> None:
        """One batch, sent until the server takes it or the retries or time run out."""
        body = self._body(items)
        headers = {**self._headers, "Idempotency-Key": uuid.uuid4().hex}
        start = time.monotonic()
        deadline = start + self.max_time
        attempts = 0
        # After a batch was given up on, the next ones get one attempt each, not max_time.
        retries = 0 if self._gave_up else self.retries
        while True:
            attempts += 1
            left = deadline - time.monotonic()
            status, retry_after, reason = self._attempt(
                body, headers, max(min(self.timeout, left), 0.05)
            )
            if status is not None and 200 <= status < 300:
                self.delivered += len(items)
                return
            if status is not None and status not in RETRY_STATUSES:
                raise self._given_up(items, attempts, start, reason)
            if attempts > retries or self._hurried:
                raise self._given_up(items, attempts, start, reason)
            pause = min(self.backoff * 2 ** (attempts - 1), self.max_backoff)
            if retry_after is not None:
                pause = retry_after
            if time.monotonic() + pause >= deadline:
                if retry_after is not None:
                    reason += f"; Retry-After {retry_after:g} s goes past max_time"
                raise self._given_up(
                    items, attempts, start, reason + f"; max_time {self.max_time:g} s"
                )
            _LOGGER.debug("%s: %s; retrying in %.2f s", self.name, reason, pause)
            self._pause(pause)

    def _pause(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._hurried:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, _SLICE))

    def _given_up(
        self, items: List[str], attempts: int, start: float, reason: str
    ) -> DeliveryError:
        self._gave_up = True
        elapsed = time.monotonic() - start
        what = (
            f"a batch of {len(items)} rows was not delivered "
            f"({attempts} attempt{'s' if attempts != 1 else ''} in {elapsed:.1f} s)"
        )
        return self.delivery_error(what, len(items), self._masked(reason), pending=items)

    def _masked(self, text: str) -> str:
        return mask_text(text, self._secrets)

    def _attempt(
        self, body: bytes, headers: Dict[str, str], timeout: float
    ) -> Tuple[Optional[int], Optional[float], str]:
        """One request: ``(status or None, Retry-After in seconds or None, what happened)``."""
        self.requests += 1
        reused = self._connection is not None
        try:
            try:
                response, text = self._request(body, headers, timeout)
            except _STALE as exc:
                if not reused:
                    raise
                # A kept-alive connection the server closed while it was idle: once more
                # on a new connection, at once.
                _LOGGER.debug("%s: a kept-alive connection was closed (%s)", self.name, exc)
                self._disconnect()
                response, text = self._request(body, headers, timeout)
        except ssl.SSLCertVerificationError as exc:
            # Trying again cannot make the certificate trusted: final, like a 4xx.
            self._disconnect()
            hint = " (ca_file=PATH names the authorities to trust)"
            return _UNTRUSTED, None, self._masked(f"{type(exc).__name__}: {exc}") + hint
        except (OSError, http.client.HTTPException) as exc:
            self._disconnect()
            kind = "no answer" if isinstance(exc, TimeoutError) else type(exc).__name__
            return None, None, self._masked(f"{kind}: {exc}".strip())
        status = response.status
        shown = " ".join(text.decode("utf-8", "replace").split())[:200]
        reason = f"HTTP {status} {response.reason}" + (f": {shown}" if shown else "")
        if 300 <= status < 400:
            reason += f" (redirects are not followed; Location: {response.getheader('Location')})"
        return status, _retry_after(response.getheader("Retry-After")), reason

    def _request(
        self, body: bytes, headers: Dict[str, str], timeout: float
    ) -> Tuple[http.client.HTTPResponse, bytes]:
        connection = self._connect(timeout)
        connection.request("POST", self._path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read()
        if response.will_close:
            self._disconnect()
        return response, text[:2048]

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        connection = self._connection
        if connection is None:
            if self._https:
                connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout, context=self._context
                )
            else:
                connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
            self._connection = connection
        else:
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
        return connection

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def __repr__(self) -> str:
        state = "open" if self._is_open else "closed"
        return f"<HttpSink {self.name!r} {state} delivered={self.delivered} failed={self.failed}>"


def _retry_after(value: Optional[str]) -> Optional[float]:
    """A ``Retry-After`` header in seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - time.time(), 0.0)
