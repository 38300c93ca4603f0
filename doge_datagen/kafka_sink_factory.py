"""Kafka sinks: every event becomes one record of a Kafka topic.

A :class:`KafkaSinkFactory` owns one confluent-kafka ``Producer``; every :class:`KafkaSink` it
creates writes through that producer. The event timestamp becomes the record timestamp.

Delivery is asynchronous and checked: each record is produced with a delivery callback that
counts it as delivered or failed, the callbacks are served every few hundred records, and a
full producer queue makes :meth:`KafkaSink.collect` wait for room instead of dropping the
record. :meth:`KafkaSink.close` flushes (up to ``flush_timeout`` seconds) and raises
:class:`~doge_datagen.errors.DeliveryError` when any record of the sink was not delivered.

Note that librdkafka reads a record timestamp of ``0`` as "now": a run starting at epoch
``0`` gets the wall-clock time on the records of its first tick.
"""

import codecs
import logging
import numbers
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Set, Tuple, Union

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.serialization import (
    MessageField,
    SerializationContext,
    SerializationError,
    Serializer,
    StringSerializer,
)

from doge_datagen.doge import EventSink, Transition
from doge_datagen.errors import ConfigurationError, DeliveryError, RecordError

_LOGGER = logging.getLogger(__name__)

__all__ = ["KafkaSink", "KafkaSinkFactory"]

KeyFunction = Callable[[Any, Transition], Any]
ValueFunction = Callable[[int, Any, Transition], Any]

#: Delivery callbacks are served (``poll(0)``) once per this many records of a sink.
POLL_EVERY = 500
#: How long to wait for room in a full producer queue before trying again, in seconds.
_FULL_QUEUE_WAIT = 0.05
#: How long the last sink waits for the reports of records it purged, in seconds.
_PURGE_WAIT = 5.0

# What a serializer raises for a value it cannot encode.
_ENCODING_ERRORS = (
    TypeError,
    ValueError,
    AttributeError,
    OverflowError,
    KeyError,
    SerializationError,
)


def _is_plain_utf8(serializer: Any) -> bool:
    """Whether ``serializer`` is a UTF-8 StringSerializer, which ``produce()`` can replace."""
    if type(serializer) is not StringSerializer:
        return False
    try:
        return codecs.lookup(serializer.codec).name == "utf-8"
    except (LookupError, TypeError):
        return False


def _bootstrap_string(bootstrap_servers: Union[str, Iterable[str], None]) -> Optional[str]:
    if bootstrap_servers is None:
        return None
    if isinstance(bootstrap_servers, str):
        servers = [s.strip() for s in bootstrap_servers.split(",")]
    else:
        try:
            servers = [s.strip() if isinstance(s, str) else s for s in bootstrap_servers]
        except TypeError:
            raise ConfigurationError(
                f"bootstrap_servers must be a list of host:port strings or a comma-separated "
                f"string, got {bootstrap_servers!r}"
            ) from None
    for server in servers:
        if not isinstance(server, str) or not server:
            raise ConfigurationError(
                "bootstrap_servers must hold non-empty host:port strings, "
                f"got {bootstrap_servers!r}"
            )
    return ",".join(servers) if servers else None


class _Counts:
    """Delivery counts of one sink between an opening and its close.

    The producer calls :meth:`on_delivery` for each record. A sink gets a fresh instance when
    it reopens, so reports arriving late for an earlier run never mix into a later one.
    """

    __slots__ = ("delivered", "failed", "first_error")

    def __init__(self) -> None:
        self.delivered = 0
        self.failed = 0
        self.first_error: Optional[str] = None

    def on_delivery(self, err: Optional[KafkaError], msg: Message) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1
            if self.first_error is None:
                self.first_error = f"{err.name()}: {err.str()}"
                _LOGGER.debug("delivery to %s failed: %s", msg.topic(), self.first_error)


class KafkaSink(EventSink):
    """Produces one record per event to ``topic``; create it with :meth:`KafkaSinkFactory.create`.

    ``delivered`` and ``failed`` count the records acknowledged and refused so far (after
    :meth:`close`, records given up on count as failed); ``produced`` counts the records
    handed to the producer. ``name`` (``kafka:<topic>``) labels the sink in run summaries.

    A closed sink reopens on its next :meth:`collect` (for example a second run of the same
    generator), with its counts starting again from zero.
    """

    def __init__(
        self,
        factory: "KafkaSinkFactory",
        topic: str,
        key_function: KeyFunction,
        value_function: ValueFunction,
        key_serializer: Serializer,
        value_serializer: Serializer,
        name: Optional[str] = None,
    ) -> None:
        self.topic = topic
        self.name = name or f"kafka:{topic}"
        self.key_function = key_function
        self.value_function = value_function
        self.key_serializer = key_serializer
        self.value_serializer = value_serializer
        # A UTF-8 StringSerializer does what produce() does with a str: skip the extra call.
        self._serialize = not (_is_plain_utf8(key_serializer) and _is_plain_utf8(value_serializer))
        self._key_ctx = SerializationContext(topic, MessageField.KEY)
        self._value_ctx = SerializationContext(topic, MessageField.VALUE)
        self._factory = factory
        self._open(factory._acquire(self))

    def _open(self, producer: Producer) -> None:
        self.producer: Optional[Producer] = producer
        self._produce: Callable[..., None] = producer.produce
        self._poll: Callable[[float], int] = producer.poll
        self._counts = _Counts()
        self._on_delivery = self._counts.on_delivery
        self._final: Optional[Tuple[int, int]] = None
        self._until_poll = POLL_EVERY
        self.produced = 0
        self.closed = False

    @property
    def delivered(self) -> int:
        """Records the broker acknowledged."""
        return self._counts.delivered if self._final is None else self._final[0]

    @property
    def failed(self) -> int:
        """Records that failed, including (after close) those still queued at the timeout."""
        return self._counts.failed if self._final is None else self._final[1]

    # -- the per-event path ------------------------------------------------------------------

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        key = self.key_function(subject, transition)
        value = self.value_function(timestamp, subject, transition)
        if self._serialize:
            if key is not None:
                try:
                    key = self.key_serializer(key, self._key_ctx)
                except _ENCODING_ERRORS as exc:
                    raise self._record_error("key", transition, exc) from exc
            try:
                value = self.value_serializer(value, self._value_ctx)
            except _ENCODING_ERRORS as exc:
                raise self._record_error("value", transition, exc) from exc
        try:
            # Positional arguments are parsed much faster than keywords. The C signature is
            # produce(topic, value, key, partition, callback, on_delivery, timestamp, headers);
            # partition -1 lets the partitioner choose.
            self._produce(self.topic, value, key, -1, self._on_delivery, None, timestamp)
        except BufferError:
            self._produce_when_room(value, key, timestamp)
        except (TypeError, ValueError, OverflowError) as exc:
            self._produce_converted(value, key, timestamp, transition, exc)
        self.produced += 1
        self._until_poll -= 1
        if not self._until_poll:
            self._until_poll = POLL_EVERY
            self._poll(0)

    def _produce_when_room(self, value: Any, key: Any, timestamp: int) -> None:
        """The producer queue is full: serve delivery reports until the record fits."""
        _LOGGER.debug("%s: producer queue full, waiting for delivery reports", self.name)
        while True:
            self._poll(_FULL_QUEUE_WAIT)
            try:
                self._produce(self.topic, value, key, -1, self._on_delivery, None, timestamp)
                return
            except BufferError:
                continue

    def _produce_converted(
        self, value: Any, key: Any, timestamp: Any, transition: Transition, exc: Exception
    ) -> None:
        """produce() refused an argument: a fractional timestamp, or a key/value not str/bytes."""
        if type(timestamp) is not int and isinstance(timestamp, numbers.Real):
            try:
                whole = int(round(timestamp))
            except (ValueError, OverflowError) as bad:
                raise self._timestamp_error(timestamp, transition, bad) from bad
            try:
                self._produce(self.topic, value, key, -1, self._on_delivery, None, whole)
                return
            except BufferError:
                self._produce_when_room(value, key, whole)
                return
            except (TypeError, ValueError, OverflowError) as again:
                exc = again
        if not isinstance(timestamp, numbers.Real) or isinstance(exc, OverflowError):
            raise self._timestamp_error(timestamp, transition, exc) from exc
        part = "key" if key is not None and not isinstance(key, (str, bytes)) else "value"
        raise self._record_error(part, transition, exc) from exc

    def _timestamp_error(
        self, timestamp: Any, transition: Transition, exc: Exception
    ) -> RecordError:
        return RecordError(
            f"topic {self.topic!r}: timestamp {timestamp!r} of an event of transition "
            f"{transition.trigger!r} is not a record timestamp (epoch milliseconds): {exc}"
        )

    def _record_error(self, part: str, transition: Transition, exc: BaseException) -> RecordError:
        return RecordError(
            f"topic {self.topic!r}: cannot serialize the {part} of an event of transition "
            f"{transition.trigger!r}: {exc}"
        )

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Flush, then raise :class:`DeliveryError` if any record was not delivered.

        Records still queued when ``flush_timeout`` runs out count as failed. Closing the
        last open sink of a factory also purges and closes the shared producer.
        """
        if self.closed:
            return
        self.closed = True
        producer = self.producer
        self.producer = None
        self._produce = self._reopen_and_produce
        if producer is None:
            return
        purged = self._factory._release(self, producer)
        counts = self._counts
        undelivered = max(self.produced - counts.delivered - counts.failed, 0)
        self._final = (counts.delivered, counts.failed + undelivered)
        delivered, failed = self._final
        if failed:
            raise DeliveryError(
                self._failure_message(failed, undelivered, purged),
                sink=self.name,
                delivered=delivered,
                failed=failed,
            )

    def _failure_message(self, failed: int, undelivered: int, purged: bool) -> str:
        text = f"{self.name}: {failed} of {self.produced} records were not delivered"
        timeout = self._factory.flush_timeout
        if undelivered:
            text += f" ({undelivered} still unacknowledged after the flush timeout of {timeout} s)"
        elif purged:
            text += f" (records still queued after the flush timeout of {timeout} s were purged)"
        if self._counts.first_error:
            text += f"; first error: {self._counts.first_error}"
        return text

    def _reopen_and_produce(
        self,
        topic: str,
        value: Any,
        key: Any,
        partition: int,
        callback: Any,
        on_delivery: Any,
        timestamp: Any,
    ) -> None:
        """Stands in for ``produce`` after close: reopen the sink, then produce."""
        _LOGGER.debug("%s: reopening after close", self.name)
        self._open(self._factory._acquire(self))
        self._produce(topic, value, key, partition, self._on_delivery, None, timestamp)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<KafkaSink {self.name!r} {state} produced={self.produced}>"


class KafkaSinkFactory:
    """Creates :class:`KafkaSink` instances sharing one confluent-kafka ``Producer``.

    :param bootstrap_servers: ``host:port`` addresses, as a list or a comma-separated string.
        May be ``None`` when ``conf`` holds ``bootstrap.servers``.
    :param client_id: the Kafka ``client.id``.
    :param conf: librdkafka settings (SASL, TLS, ``linger.ms``, ...); they override the ones
        derived from the other arguments.
    :param buffer_size: how many records the producer queue holds
        (``queue.buffering.max.messages``); a full queue makes ``collect()`` wait for room.
    :param flush_timeout: how long, in seconds, :meth:`KafkaSink.close` waits for records to be
        acknowledged before counting the rest as failed.

    librdkafka's log lines go to this module's logger unless ``conf`` names a ``logger``.
    """

    def __init__(
        self,
        bootstrap_servers: Union[str, Iterable[str], None] = None,
        client_id: Optional[str] = None,
        conf: Optional[Mapping[str, Any]] = None,
        buffer_size: int = 100000,
        flush_timeout: float = 60.0,
    ) -> None:
        if conf is not None and not isinstance(conf, Mapping):
            raise ConfigurationError(f"conf must be a dict of librdkafka settings, got {conf!r}")
        extra: Dict[str, Any] = dict(conf or {})
        for key in extra:
            if not isinstance(key, str):
                raise ConfigurationError(f"conf keys must be strings, got {key!r}")
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
            raise ConfigurationError(f"buffer_size must be a positive integer, got {buffer_size!r}")
        if (
            isinstance(flush_timeout, bool)
            or not isinstance(flush_timeout, (int, float))
            or not flush_timeout >= 0
        ):
            raise ConfigurationError(
                f"flush_timeout must be a number of seconds >= 0, got {flush_timeout!r}"
            )
        if client_id is not None and not isinstance(client_id, str):
            raise ConfigurationError(f"client_id must be a string, got {client_id!r}")
        if str(extra.get("delivery.report.only.error", "false")).lower() in ("true", "1"):
            raise ConfigurationError(
                "conf 'delivery.report.only.error' must stay false: the sinks count deliveries"
            )
        settings: Dict[str, Any] = {"queue.buffering.max.messages": buffer_size, "logger": _LOGGER}
        servers = _bootstrap_string(bootstrap_servers)
        if servers is not None:
            settings["bootstrap.servers"] = servers
        if client_id:
            settings["client.id"] = client_id
        settings.update(extra)
        if not settings.get("bootstrap.servers"):
            raise ConfigurationError(
                "no Kafka address: give bootstrap_servers or 'bootstrap.servers' in conf"
            )
        self.conf: Dict[str, Any] = settings
        self.buffer_size = buffer_size
        self.flush_timeout = float(flush_timeout)
        self._open_sinks: Set[KafkaSink] = set()
        self._gave_up = False
        self._producer: Optional[Producer] = self._new_producer()

    def _new_producer(self) -> Producer:
        try:
            return Producer(dict(self.conf))
        except KafkaException as exc:
            raise ConfigurationError(f"invalid Kafka producer configuration: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"invalid Kafka producer configuration: {exc}") from exc

    @property
    def producer(self) -> Producer:
        """The producer shared by the open sinks (a new one once every sink was closed)."""
        if self._producer is None:
            self._producer = self._new_producer()
        return self._producer

    def create(
        self,
        topic: str,
        key_function: KeyFunction,
        value_function: ValueFunction,
        key_serializer: Serializer = StringSerializer("utf_8"),  # noqa: B008 (stateless)
        value_serializer: Serializer = StringSerializer("utf_8"),  # noqa: B008 (stateless)
        *,
        name: Optional[str] = None,
    ) -> KafkaSink:
        """Create a sink producing to ``topic``.

        :param key_function: ``(subject, transition) -> key``; ``None`` means a record without key.
        :param value_function: ``(timestamp, subject, transition) -> value``.
        :param key_serializer: turns the key into bytes, called with a ``SerializationContext``.
        :param value_serializer: turns the value into bytes, likewise.
        :param name: how run summaries name the sink; ``kafka:<topic>`` by default.
        """
        if not isinstance(topic, str) or not topic:
            raise ConfigurationError(f"topic must be a non-empty string, got {topic!r}")
        for role, function in (("key_function", key_function), ("value_function", value_function)):
            if not callable(function):
                raise ConfigurationError(f"topic {topic!r}: {role} {function!r} is not callable")
        for role, serializer in (
            ("key_serializer", key_serializer),
            ("value_serializer", value_serializer),
        ):
            if not callable(serializer):
                raise ConfigurationError(f"topic {topic!r}: {role} {serializer!r} is not callable")
        return KafkaSink(
            self, topic, key_function, value_function, key_serializer, value_serializer, name
        )

    # -- bookkeeping of the shared producer ---------------------------------------------------

    def _acquire(self, sink: KafkaSink) -> Producer:
        producer = self.producer
        self._open_sinks.add(sink)
        return producer

    def _release(self, sink: KafkaSink, producer: Producer) -> bool:
        """Flush for a closing sink; when it is the last one, retire the producer.

        Returns whether records still queued after the flush were purged.
        """
        self._open_sinks.discard(sink)
        last = not self._open_sinks and producer is self._producer
        # Once a flush ran out of time, later sinks of the same producer do not wait again.
        remaining = producer.flush(0 if self._gave_up else self.flush_timeout)
        self._gave_up = remaining > 0
        if not last:
            return False
        self._producer = None
        self._gave_up = False
        purged = remaining > 0
        if purged:
            # The producer is going away: fail what it still holds, which serves the delivery
            # callbacks (as failures) of every sink that produced those records.
            _LOGGER.debug("purging %d records still queued after the flush", remaining)
            producer.purge()
            remaining = producer.flush(_PURGE_WAIT)
        if not remaining:
            # close() waits without limit for queued records: only call it on an empty queue.
            close = getattr(producer, "close", None)
            if close is not None:
                close()
        return purged

    def __repr__(self) -> str:
        return (
            f"<KafkaSinkFactory {self.conf.get('bootstrap.servers')!r} "
            f"open_sinks={len(self._open_sinks)}>"
        )
