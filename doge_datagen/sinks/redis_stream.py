"""Redis Streams: every event becomes one entry (``XADD``) of a stream.

A :class:`RedisStreamSinkFactory` knows the server; each :class:`RedisStreamSink` it creates
holds its own connection, opened by :meth:`RedisStreamSink.open` when a run starts. Entries
are sent ``batch_size`` at a time in a pipeline (no transaction); the server's reply to each
``XADD`` is checked, so ``delivered`` counts the entries the server stored and ``failed``
those it refused. A lost connection fails the batch in flight and raises
:class:`~doge_datagen.errors.DeliveryError` at once (the client does not retry, so no entry is
written twice); :meth:`RedisStreamSink.close` sends the last batch and raises
``DeliveryError`` when any entry of the run was refused.

An entry holds the event's key (field ``key``, when there is a key function) and its value: a
dict value gives one field per item (values other than text, bytes and numbers written as
JSON), any other value goes into the field ``value`` (text as it is, others as JSON).

With ``explicit_ids=True`` each entry's id is derived from the event, ``TIMESTAMP-N`` (the
event's timestamp in milliseconds, and its place, from 1, among this sink's events of that
timestamp in the stream), instead of the server's clock: a run resumed from a checkpoint
sends again the entries written after it with the same ids, and the server refuses each one
as not above the stream's last id. Those are counted as ``repeated``, not failed: the stream
holds each event once. (An entry of an earlier timestamp than the stream's last is taken as
written already, so the stream must be the run's own.)
"""

import json
import logging
from itertools import chain
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from doge_datagen.core.checks import check_positive_count, check_seconds
from doge_datagen.core.types import Transition
from doge_datagen.errors import ConfigurationError, DeliveryError, RecordError
from doge_datagen.sinks._bus import (
    Destination,
    KeyFunction,
    ValueFunction,
    check_destination,
    check_functions,
    destination_of,
)
from doge_datagen.sinks.base import (
    DEFAULT_FLUSH_INTERVAL,
    Sink,
    check_flush_interval,
    mask_url,
    optional_import,
)

__all__ = ["RedisStreamSink", "RedisStreamSinkFactory"]

_LOGGER = logging.getLogger(__name__)

#: Entries sent per pipeline round trip.
DEFAULT_BATCH_SIZE = 500

_json = json.JSONEncoder(separators=(",", ":")).encode


def _redis() -> Any:
    return optional_import("redis", "redis", "The Redis Streams sink")


def _field_value(name: str, field: Any, value: Any, transition: Transition) -> Any:
    if isinstance(value, (str, bytes, int, float)) and not isinstance(value, bool):
        return value
    try:
        return _json(value)
    except (TypeError, ValueError) as exc:
        raise RecordError(
            f"{name}: field {field!r} of an event of transition {transition.trigger!r} "
            f"cannot be written: {exc}"
        ) from exc


class RedisStreamSink(Sink):
    """Appends one stream entry per event; create it with :meth:`RedisStreamSinkFactory.create`.

    ``delivered`` counts the entries the server stored (it returned their id), ``failed`` those
    it refused or that a lost connection took with it, since the last :meth:`open`. ``name``
    (``redis:<stream>``) labels the sink in run summaries.
    """

    def __init__(
        self,
        factory: "RedisStreamSinkFactory",
        stream: Destination,
        key_function: Optional[KeyFunction],
        value_function: ValueFunction,
        *,
        maxlen: Optional[int] = None,
        approximate: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
        key_field: str = "key",
        flush_interval: Optional[float] = DEFAULT_FLUSH_INTERVAL,
        name: Optional[str] = None,
        explicit_ids: bool = False,
    ) -> None:
        shown, self._stream_function = check_destination("stream", stream)
        self.stream: Optional[str] = None if self._stream_function else shown
        where = f"stream {shown!r}"
        check_functions(where, key_function, value_function)
        if maxlen is not None:
            check_positive_count(f"{where}: maxlen", maxlen)
        if not isinstance(key_field, str) or not key_field:
            raise ConfigurationError(f"{where}: key_field must be a non-empty string")
        self.factory = factory
        self.key_function = key_function
        self.value_function = value_function
        self.maxlen = maxlen
        self.approximate = bool(approximate)
        self.batch_size = check_positive_count(f"{where}: batch_size", batch_size)
        self.key_field = key_field
        self.flush_interval = check_flush_interval(flush_interval)
        self.name = name or f"redis:{shown}"
        self._client: Any = None
        self._pipe: Any = None
        self._batch: List[Tuple[str, Dict[Any, Any]]] = []
        self.first_error: Optional[str] = None
        self.explicit_ids = bool(explicit_ids)
        #: Per stream, the timestamp of the last entry and its place among that timestamp's.
        self._last_ids: Dict[Any, Tuple[int, int]] = {}
        #: Entries the server refused as already there (explicit ids, since :meth:`open`).
        self.repeated = 0
        self._if_exists: Optional[str] = None
        #: Whether the last open found entries in the stream and added to it (None: streams
        #: named per event, not looked at).
        self.appended: Optional[bool] = None

    @property
    def buffered(self) -> int:
        """Entries collected and not sent yet."""
        return len(self._batch)

    # -- opening and closing -----------------------------------------------------------------

    def if_exists(self, mode: str) -> None:
        """The next run's way with a stream that holds entries: ``"append"`` adds to it (the
        default), ``"replace"`` deletes the stream when the sink opens, ``"fail"`` refuses to
        open. Streams named per event cannot be looked at: only ``"append"``."""
        if self._stream_function is not None and mode != "append":
            raise ConfigurationError(
                f"{self.name}: its streams are named per event, so it cannot {mode} them: "
                "use if_exists='append'"
            )
        self._if_exists = mode

    def _open(self) -> None:
        self._client = self.factory._connect(self)
        choice, self._if_exists = self._if_exists, None
        if self._stream_function is None:
            try:
                held = int(self._client.xlen(self.stream)) > 0
                if held and choice == "fail":
                    raise ConfigurationError(
                        f"{self.name}: stream {self.stream!r} holds entries, and if_exists is "
                        "'fail': give another stream, or append or replace"
                    )
                if held and choice == "replace":
                    self._client.delete(self.stream)
                    held = False
            except BaseException:
                self._release()
                raise
            self.appended = held
        self._pipe = self._client.pipeline(transaction=False)
        self._batch = []
        self.first_error = None
        self._last_ids = {}
        self.repeated = 0

    def _close(self) -> None:
        try:
            self._send()
        finally:
            self._release()
        if self.failed:
            raise self.delivery_error(
                "entries were refused by the server",
                0,
                self.first_error,
            )

    def _release(self) -> None:
        client, self._client, self._pipe = self._client, None, None
        if client is not None:
            client.close()

    # -- the per-event path ------------------------------------------------------------------

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        if not self._is_open:
            self.open()  # used without a run: open on the first event
        stream: Any
        if self._stream_function is None:
            stream = self.stream
        else:
            stream = destination_of(self.name, "stream", self._stream_function, subject, transition)
        value = self.value_function(timestamp, subject, transition)
        if (
            type(value) in (str, bytes)
            and self.maxlen is None
            and not self.explicit_ids
            and self.key_field != "value"
        ):
            # The common entry, a text value and a key: the XADD command is staged as it is,
            # without the general path's argument handling.
            key = None if self.key_function is None else self.key_function(subject, transition)
            if key is None:
                fields: Dict[Any, Any] = {"value": value}
                self._pipe.execute_command("XADD", stream, "*", "value", value)
            else:
                if type(key) not in (str, bytes, int, float):
                    key = _field_value(self.name, "key", key, transition)
                key_field = self.key_field
                fields = {key_field: key, "value": value}
                self._pipe.execute_command("XADD", stream, "*", key_field, key, "value", value)
            batch = self._batch
            batch.append((stream, fields))
            if len(batch) >= self.batch_size:
                self._send()
            return
        if type(value) is dict:
            fields = {}
            for field, item in value.items():
                if type(item) in (str, int, float, bytes):
                    fields[field] = item
                else:
                    fields[field] = _field_value(self.name, field, item, transition)
        elif isinstance(value, (str, bytes)):
            fields = {"value": value}
        else:
            fields = {"value": _field_value(self.name, "value", value, transition)}
        if self.key_function is not None:
            key = self.key_function(subject, transition)
            if key is not None:
                fields = {self.key_field: _field_value(self.name, "key", key, transition), **fields}
        if self.explicit_ids:
            last = self._last_ids.get(stream)
            place = last[1] + 1 if last is not None and last[0] == timestamp else 0
            if timestamp < 0:
                raise RecordError(
                    f"{self.name}: timestamp {timestamp} cannot be an entry id (ids are "
                    "milliseconds from 0)"
                )
            self._last_ids[stream] = (timestamp, place)
            self._pipe.xadd(
                stream,
                fields,
                id=f"{timestamp}-{place + 1}",
                maxlen=self.maxlen,
                approximate=self.approximate,
            )
        elif self.maxlen is None and fields:
            self._pipe.execute_command("XADD", stream, "*", *chain.from_iterable(fields.items()))
        else:
            self._pipe.xadd(stream, fields, maxlen=self.maxlen, approximate=self.approximate)
        batch = self._batch
        batch.append((stream, fields))
        if len(batch) >= self.batch_size:
            self._send()

    def _send(self) -> None:
        """Execute the pipeline and count each entry from the server's reply."""
        batch = self._batch
        if not batch:
            return
        self._batch = []
        redis = _redis()
        try:
            with self.translate_errors(
                len(batch),
                f"lost the connection to Redis at {self.factory.address}",
                delivery=(redis.ConnectionError, redis.TimeoutError, OSError),
                pending=batch,
            ):
                try:
                    replies = self._pipe.execute(raise_on_error=False)
                finally:
                    self._pipe.reset()
        except DeliveryError:
            # The connection is gone: this opening is over (a later open() starts afresh).
            self._release()
            self._is_open = False
            raise
        delivered = 0
        for reply in replies:
            if isinstance(reply, Exception):
                if self.explicit_ids and "equal or smaller than the target" in str(reply):
                    self.repeated += 1  # written before the checkpoint the run resumed from
                    continue
                self.failed += 1
                if self.first_error is None:
                    self.first_error = str(reply)
                    _LOGGER.debug("%s: XADD refused: %s", self.name, reply)
            else:
                delivered += 1
        self.delivered += delivered

    def flush(self) -> None:
        """Send the entries collected so far."""
        if self._is_open:
            self._send()


class RedisStreamSinkFactory:
    """Creates :class:`RedisStreamSink` objects writing to one Redis server.

    :param url: ``redis://[[USER]:PASSWORD@]HOST:PORT/DB`` (``rediss://`` for TLS).
    :param timeout: seconds allowed to connect and for each reply; an unreachable server is
        reported within it.
    :param options: more keyword arguments for ``redis.Redis`` (``ssl_ca_certs``, ...).

    Nothing is connected before a sink is opened.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        timeout: float = 10.0,
        options: Optional[Dict[str, Any]] = None,
    ) -> None:
        if not isinstance(url, str):
            raise ConfigurationError(f"url must be a redis:// URL, got {type(url).__name__}")
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ConfigurationError(
                f"url scheme must be redis, rediss or unix, got {mask_url(url)!r}"
            )
        try:
            port = parts.port
        except ValueError:
            raise ConfigurationError(f"url port is not a number: {mask_url(url)!r}") from None
        if options is not None and not isinstance(options, dict):
            raise ConfigurationError(f"options must be a dict, got {type(options).__name__}")
        self.url = url
        self.timeout = check_seconds("timeout", timeout)
        self.options = dict(options or {})
        self.address = f"{parts.hostname or 'localhost'}:{port or 6379}"

    def create(
        self,
        stream: Destination,
        key_function: Optional[KeyFunction],
        value_function: ValueFunction,
        *,
        maxlen: Optional[int] = None,
        approximate: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
        key_field: str = "key",
        flush_interval: Optional[float] = DEFAULT_FLUSH_INTERVAL,
        name: Optional[str] = None,
        explicit_ids: bool = False,
    ) -> RedisStreamSink:
        """A sink appending to ``stream`` (a name, or a function ``(subject, transition)``).

        :param key_function: ``(subject, transition) -> key``, stored in field ``key_field``;
            ``None`` (or a ``None`` key) stores no key.
        :param value_function: ``(timestamp, subject, transition) -> value``; a dict gives the
            entry's fields.
        :param maxlen: keep each stream to about this many entries (``MAXLEN ~``; exactly
            this many with ``approximate=False``); ``None`` keeps everything.
        :param batch_size: entries per pipeline round trip.
        :param flush_interval: seconds a message may wait in the batch during a run before
            it is sent anyway (``None``: only full batches and :meth:`close` send).
        :param name: how run summaries name the sink; ``redis:<stream>`` by default.
        :param explicit_ids: entry ids ``TIMESTAMP-N`` derived from the event, so that a
            resumed run does not store an entry twice (see the module's text).
        """
        return RedisStreamSink(
            self,
            stream,
            key_function,
            value_function,
            maxlen=maxlen,
            approximate=approximate,
            batch_size=batch_size,
            key_field=key_field,
            flush_interval=flush_interval,
            name=name,
            explicit_ids=explicit_ids,
        )

    def client(self) -> Any:
        """A new ``redis.Redis`` client for this server (connected on first use)."""
        redis = _redis()
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        settings: Dict[str, Any] = {
            "socket_connect_timeout": self.timeout,
            "socket_timeout": self.timeout,
            # A retried pipeline could store its entries twice: failures are counted instead.
            "retry": Retry(NoBackoff(), 0),
            **self.options,
        }
        try:
            return redis.Redis.from_url(self.url, **settings)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"invalid Redis settings for {mask_url(self.url)}: {exc}"
            ) from exc

    def _connect(self, sink: RedisStreamSink) -> Any:
        redis = _redis()
        client = self.client()
        with sink.translate_errors(
            0,
            f"cannot reach Redis at {self.address}",
            delivery=(
                redis.ConnectionError,
                redis.TimeoutError,
                redis.AuthenticationError,
                OSError,
            ),
        ):
            try:
                client.ping()
            except BaseException:
                client.close()
                raise
        return client

    def __repr__(self) -> str:
        return f"<RedisStreamSinkFactory {mask_url(self.url)!r}>"
