"""RabbitMQ (AMQP 0-9-1): every event becomes one message published to an exchange.

Each :class:`RabbitMQSink` holds its own connection and channel, opened by
:meth:`RabbitMQSink.open` when a run starts, with publisher confirms on. Messages are
published with the ``mandatory`` flag, and each publish waits for the broker's answer:

- an acknowledged message counts as ``delivered``;
- a message the broker returns (no queue is bound for its routing key) or refuses (a
  negative acknowledgement) counts as ``failed``, never as delivered;
- a lost connection, or a channel the broker closes (for example a missing exchange), fails
  the message and raises :class:`~doge_datagen.errors.DeliveryError` at once.

:meth:`RabbitMQSink.close` raises ``DeliveryError`` when any message of the run failed.

A sink declares nothing unless asked: with ``declare=True`` (``?declare=1`` in a URL) it
declares, when it opens, a durable topic exchange and a durable queue bound to it with ``#``
(every routing key), or, on the default exchange, the queue its routing key names. Without
it, the errors of a fresh server (no exchange, no queue bound) say what is missing and how
to create it.
"""

import logging
from typing import Any, Optional
from urllib.parse import urlsplit

from doge_datagen.core.checks import check_seconds
from doge_datagen.core.types import Transition
from doge_datagen.errors import ConfigurationError
from doge_datagen.sinks._bus import (
    KeyFunction,
    ValueFunction,
    check_functions,
    encode_or_record_error,
    key_text,
)
from doge_datagen.sinks.base import Sink, mask_url, optional_import

__all__ = ["RabbitMQSink", "RabbitMQSinkFactory"]

_LOGGER = logging.getLogger(__name__)


def _pika() -> Any:
    return optional_import("pika", "rabbitmq", "The RabbitMQ sink")


_DECLARE_HINT = "or add declare=1 to the sink URL (declare=True) to have the sink create it"


def _innermost(exc: BaseException) -> Any:
    """pika nests the cause of a failed connection in its exceptions' arguments (with an
    empty message): the innermost exception says what happened."""
    for _ in range(5):
        inner = [*getattr(exc, "args", ()), getattr(exc, "exception", None)]
        nested = [a for a in inner if isinstance(a, BaseException)]
        if not nested:
            break
        exc = nested[0]
    return exc if str(exc).strip() else type(exc).__name__


class RabbitMQSink(Sink):
    """Publishes one message per event; create it with :meth:`RabbitMQSinkFactory.create`.

    ``delivered`` counts messages the broker confirmed, ``failed`` those it returned as
    unroutable or refused, since the last :meth:`open`; ``returned`` counts the unroutable
    ones alone. ``name`` (``amqp:<exchange>``) labels the sink in run summaries.
    """

    def __init__(
        self,
        factory: "RabbitMQSinkFactory",
        exchange: str,
        key_function: Optional[KeyFunction],
        value_function: ValueFunction,
        *,
        routing_key: str = "",
        mandatory: bool = True,
        properties: Any = None,
        name: Optional[str] = None,
        declare: bool = False,
        queue: Optional[str] = None,
    ) -> None:
        if not isinstance(exchange, str):
            raise ConfigurationError(
                f"exchange must be a string ('' is the default exchange), got {exchange!r}"
            )
        where = f"exchange {exchange!r}"
        check_functions(where, key_function, value_function)
        if not isinstance(routing_key, str):
            raise ConfigurationError(f"{where}: routing_key must be a string, got {routing_key!r}")
        if queue is not None and (not isinstance(queue, str) or not queue):
            raise ConfigurationError(f"{where}: queue must be a non-empty name, got {queue!r}")
        self.declare = bool(declare)
        self.queue = queue or exchange or routing_key or None
        if self.declare and self.queue is None:
            raise ConfigurationError(
                f"{where}: declare on the default exchange needs the queue's name: give "
                "routing_key (the default exchange routes by queue name)"
            )
        if self.declare and self.queue is not None and self.queue.startswith("amq."):
            raise ConfigurationError(
                f"{where}: a queue cannot be named {self.queue!r} (the amq. prefix is the "
                "broker's): give queue=NAME to declare"
            )
        self.factory = factory
        self.exchange = exchange
        self.key_function = key_function
        self.value_function = value_function
        self.routing_key = routing_key
        self.mandatory = bool(mandatory)
        self.properties = properties
        self.name = name or f"amqp:{exchange or '(default)'}"
        self.returned = 0
        self.first_error: Optional[str] = None
        self._connection: Any = None
        self._channel: Any = None
        self._exceptions: Any = None

    # -- opening and closing -----------------------------------------------------------------

    def _open(self) -> None:
        self._exceptions = _pika().exceptions
        self.returned = 0
        self.first_error = None
        self._connection, self._channel = self.factory._connect(self)
        if self.declare:
            self._declare()

    def _declare(self) -> None:
        """The exchange (a durable topic one, unless it is the default or a broker's
        ``amq.`` one), a durable queue, and its binding to every routing key."""
        exchange, queue, channel = self.exchange, self.queue, self._channel
        assert queue is not None
        try:
            if exchange and not exchange.startswith("amq."):
                channel.exchange_declare(exchange, exchange_type="topic", durable=True)
            channel.queue_declare(queue, durable=True)
            if exchange:
                channel.queue_bind(queue, exchange, routing_key="#")
        except (self._exceptions.AMQPError, OSError) as exc:
            self._close_connection()
            raise ConfigurationError(
                f"{self.name}: cannot declare exchange {exchange!r} and queue {queue!r} on "
                f"{self.factory.address}: {_innermost(exc)}"
            ) from exc

    def _close_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - being dropped anyway
                _LOGGER.debug("%s: closing the connection failed", self.name, exc_info=True)

    def _close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - a broken connection is being dropped anyway
                _LOGGER.debug("%s: closing the connection failed", self.name, exc_info=True)
        if self.failed:
            raise self.delivery_error("messages were not accepted", 0, self.first_error)

    def _failed_one(self, reason: str) -> None:
        self.failed += 1
        if self.first_error is None:
            self.first_error = reason
            _LOGGER.debug("%s: %s", self.name, reason)

    # -- the per-event path ------------------------------------------------------------------

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        if not self._is_open:
            self.open()  # used without a run: open on the first event
        routing_key = self.routing_key
        if self.key_function is not None:
            key = self.key_function(subject, transition)
            if key is not None:
                routing_key = key_text(self.name, key, transition)
        body = encode_or_record_error(
            self.name, self.value_function(timestamp, subject, transition), transition
        )
        exceptions = self._exceptions
        try:
            self._channel.basic_publish(
                self.exchange, routing_key, body, self.properties, self.mandatory
            )
        except exceptions.UnroutableError:
            self.returned += 1
            self._failed_one(
                f"returned unroutable: no queue is bound to exchange {self.exchange!r} "
                f"for routing key {routing_key!r}: declare a queue and bind it "
                f"({_binding_example(self.exchange, routing_key)}), {_DECLARE_HINT}"
            )
            return
        except exceptions.NackError:
            self._failed_one("refused by the broker (negative acknowledgement)")
            return
        except (exceptions.AMQPError, OSError) as exc:
            connection, self._connection, self._channel = self._connection, None, None
            if connection.is_open:  # the broker closed the channel only
                try:
                    connection.close()
                except Exception:  # noqa: BLE001 - being dropped anyway
                    _LOGGER.debug("%s: closing the connection failed", self.name, exc_info=True)
            what = f"publishing to exchange {self.exchange!r} on {self.factory.address} failed"
            if getattr(exc, "reply_code", None) == 404:
                what += (
                    f": the exchange does not exist: declare it (rabbitmqadmin declare exchange "
                    f"name={self.exchange} type=topic) and bind a queue to it, {_DECLARE_HINT}"
                )
            error = self.delivery_error(
                what,
                1,
                exc,
                pending=[(routing_key, body)],
            )
            self._is_open = False  # the connection is gone: a later open() starts afresh
            raise error from exc
        self.delivered += 1


def _binding_example(exchange: str, routing_key: str) -> str:
    if not exchange:
        return f"rabbitmqadmin declare queue name={routing_key}"
    return (
        f"rabbitmqadmin declare queue name=QUEUE; rabbitmqadmin declare binding "
        f"source={exchange} destination=QUEUE routing_key=#"
    )


class RabbitMQSinkFactory:
    """Creates :class:`RabbitMQSink` objects publishing to one RabbitMQ server.

    :param url: ``amqp://USER:PASSWORD@HOST:PORT/VHOST`` (``amqps://`` for TLS; the default
        virtual host ``/`` is written ``%2F`` or left out).
    :param timeout: seconds allowed to connect and for each broker answer; an unreachable
        or stalled broker is reported within it.

    Nothing is connected before a sink is opened.
    """

    def __init__(self, url: str = "amqp://guest:guest@127.0.0.1:5672/", *, timeout: float = 10.0):
        if not isinstance(url, str):
            raise ConfigurationError(f"url must be an amqp:// URL, got {type(url).__name__}")
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps"):
            raise ConfigurationError(f"url scheme must be amqp or amqps, got {mask_url(url)!r}")
        try:
            port = parts.port
        except ValueError:
            raise ConfigurationError(f"url port is not a number: {mask_url(url)!r}") from None
        self.url = url
        self.timeout = check_seconds("timeout", timeout)
        self.address = f"{parts.hostname or 'localhost'}:{port or 5672}"

    def create(
        self,
        exchange: str,
        key_function: Optional[KeyFunction],
        value_function: ValueFunction,
        *,
        routing_key: str = "",
        mandatory: bool = True,
        properties: Any = None,
        name: Optional[str] = None,
        declare: bool = False,
        queue: Optional[str] = None,
    ) -> RabbitMQSink:
        """A sink publishing to ``exchange`` (``""`` is the default exchange).

        :param key_function: ``(subject, transition) -> routing key``; ``None`` (or a
            ``None`` key) publishes with ``routing_key``.
        :param value_function: ``(timestamp, subject, transition) -> body`` (bytes, text, or
            anything else as JSON).
        :param mandatory: have the broker return messages no queue takes, counted as failed.
        :param properties: a ``pika.BasicProperties`` sent with every message.
        :param name: how run summaries name the sink; ``amqp:<exchange>`` by default.
        :param declare: when the sink opens, declare the exchange (durable, ``topic``) and a
            durable queue bound to it with ``#``; on the default exchange, the queue named
            by ``routing_key``. Off by default: the sink then declares nothing.
        :param queue: the queue ``declare`` declares (default: the exchange's name).
        """
        return RabbitMQSink(
            self,
            exchange,
            key_function,
            value_function,
            routing_key=routing_key,
            mandatory=mandatory,
            properties=properties,
            name=name,
            declare=declare,
            queue=queue,
        )

    def parameters(self) -> Any:
        """``pika.URLParameters`` for this server with the factory's timeouts."""
        pika = _pika()
        try:
            params = pika.URLParameters(self.url)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"invalid AMQP URL {mask_url(self.url)}: {exc}") from exc
        params.connection_attempts = 1
        params.socket_timeout = self.timeout
        params.stack_timeout = self.timeout
        params.blocked_connection_timeout = self.timeout
        return params

    def _connect(self, sink: RabbitMQSink) -> Any:
        pika = _pika()
        try:
            connection = pika.BlockingConnection(self.parameters())
            try:
                channel = connection.channel()
                channel.confirm_delivery()
            except BaseException:
                connection.close()
                raise
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise sink.delivery_error(
                f"cannot reach RabbitMQ at {self.address}", 0, _innermost(exc)
            ) from exc
        return connection, channel

    def __repr__(self) -> str:
        return f"<RabbitMQSinkFactory {mask_url(self.url)!r}>"
