"""Kafka sinks: every event becomes one record of a Kafka topic.

A :class:`KafkaSinkFactory` owns one confluent-kafka ``Producer``; every :class:`KafkaSink` it
creates writes through that producer. The event timestamp becomes the record timestamp.

Delivery is asynchronous and checked. The producer reports failures only
(``delivery.report.only.error``): a Python callback per acknowledged record cost more than
the rest of the sink, and it is not needed to count. Each record is produced with its sink's
callback, which counts the failures; the reports are served every few hundred records; a
record neither failed nor still in the producer's queue was acknowledged. Once a flush
empties the queue, ``delivered`` is exact: every record not reported failed was delivered.
A full producer queue makes :meth:`KafkaSink.collect` wait for room instead of dropping the
record. :meth:`KafkaSink.close` flushes (up to ``flush_timeout`` seconds) and raises
:class:`~doge_datagen.errors.DeliveryError` when any record of the sink was not delivered.

Compression stays off unless ``conf`` sets ``compression.type``: ``"lz4"`` makes JSON values
a fraction of their size, and measured here it saved the producer more CPU than it cost
(fewer bytes to copy and send, fewer requests), but consumers without an LZ4 codec
(kafka-python without the ``lz4`` package) could not read the records.

The producer is created when the first sink of a factory opens (when a run starts), not when
the factory or a sink is created: building a model connects to nothing.

In a run that checkpoints (or resumes), the producer is transactional: its
``transactional.id`` comes from the checkpoint's path and the first sink's name, so a resumed
run's producer has the one of the run it goes on from, and fences it (the broker aborts the
transaction it left open). Each checkpoint commits the transaction before the checkpoint is
written (:meth:`KafkaSink.checkpoint_position`), and the close commits the last one: a
``read_committed`` consumer sees the events up to the last checkpoint once, and those the
resumed run gives again once. Each transaction also commits the number of records the sink
has given in the run (a consumer group's offset), so that a run killed between a commit and
the rename of its checkpoint does not produce the records committed since the checkpoint it
resumes from again. A broker that refuses transactions leaves the run at least once
(a warning says so, and :attr:`KafkaSink.transactions` holds the reason). Without a checkpoint
the producer is idempotent and not transactional, as before.

Note that librdkafka reads a record timestamp of ``0`` as "now": a run starting at epoch
``0`` gets the wall-clock time on the records of its first tick.
"""

import codecs
import hashlib
import logging
import numbers
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Set, Tuple, Union

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.serialization import (
    MessageField,
    SerializationContext,
    SerializationError,
    Serializer,
    StringSerializer,
)

from doge_datagen.core.checks import check_optional_seconds, check_positive_count, check_seconds
from doge_datagen.core.masking import is_secret_key, mask_text
from doge_datagen.core.types import Transition
from doge_datagen.errors import ConfigurationError, DeliveryError, RecordError
from doge_datagen.sinks._json import ENCODE_ERRORS, dumps_bytes, line_buffer
from doge_datagen.sinks.base import Sink

_LOGGER = logging.getLogger(__name__)


class _Repeats(logging.Filter):
    """librdkafka logs a failing connection again on every retry, hundreds of lines a minute
    while a broker is down. The first line of each kind passes; the same line (numbers aside)
    again within ``window`` seconds is dropped."""

    def __init__(self, window: float = 60.0) -> None:
        super().__init__()
        self.window = window
        self._seen: Dict[Tuple[int, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, re.sub(r"\d+", "#", record.getMessage()))
        now = time.monotonic()
        last = self._seen.get(key)
        if last is not None and now - last < self.window:
            return False
        if len(self._seen) > 10_000:  # many kinds of lines: start over rather than grow
            self._seen.clear()
        self._seen[key] = now
        return True


#: Where librdkafka's own log lines go (``conf['logger']`` replaces it).
_CLIENT_LOGGER = logging.getLogger(__name__ + ".librdkafka")
_CLIENT_LOGGER.addFilter(_Repeats())

__all__ = ["JsonValueSerializer", "KafkaSink", "KafkaSinkFactory"]

KeyFunction = Callable[[Any, Transition], Any]
ValueFunction = Callable[[int, Any, Transition], Any]

#: Delivery callbacks are served (``poll(0)``) once per this many records of a sink.
POLL_EVERY = 500
#: How long to wait for room in a full producer queue before trying again, in seconds.
_FULL_QUEUE_WAIT = 0.05
#: How long the last sink waits for the reports of records it purged, in seconds.
_PURGE_WAIT = 5.0
_FATAL = KafkaError._FATAL


def _fatal_error(exc: KafkaException) -> Optional[KafkaError]:
    """The error of a producer that can no longer be used (a fatal error), else None.

    poll() and flush() raise the fatal error itself; produce() raises one with the code
    _FATAL, which does not always carry the fatal flag.
    """
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError) and (error.fatal() or error.code() == _FATAL):
        return error
    return None


#: A flush waits in slices this long, so that hurry() can cut it short.
_FLUSH_SLICE = 0.1

# What a serializer raises for a value it cannot encode.
_ENCODING_ERRORS = (
    TypeError,
    ValueError,
    AttributeError,
    OverflowError,
    KeyError,
    SerializationError,
)


class JsonValueSerializer(Serializer):
    """A value (a dict, a list, a number...) as ``json.dumps(value)``'s text in UTF-8, with no
    schema: what ``value_serializer="json"`` gives. A sink with it (and string keys) encodes
    each value with the C encoder of the JSON Lines files, without a call per record."""

    def __call__(self, obj: Any, ctx: Optional[SerializationContext] = None) -> Optional[bytes]:
        return None if obj is None else dumps_bytes(obj)


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
    """Failed records of one sink between an opening and its close.

    The producer reports failures only (``delivery.report.only.error``): it calls
    :meth:`on_delivery` for each record that failed. A sink gets a fresh instance when it
    reopens, so reports arriving late for an earlier run never mix into a later one.
    """

    __slots__ = ("failed", "first_error")

    def __init__(self) -> None:
        self.failed = 0
        self.first_error: Optional[str] = None

    def on_delivery(self, err: Optional[KafkaError], msg: Message) -> None:
        if err is None:
            return  # an acknowledgement: only reported without delivery.report.only.error
        self.failed += 1
        if self.first_error is None:
            self.first_error = f"{err.name()}: {err.str()}"
            _LOGGER.debug("delivery to %s failed: %s", msg.topic(), self.first_error)


class KafkaSink(Sink):
    """Produces one record per event to ``topic``; create it with :meth:`KafkaSinkFactory.create`.

    ``delivered`` and ``failed`` count the records acknowledged and refused so far (after
    :meth:`close`, records given up on count as failed); ``produced`` counts the records
    handed to the producer. While records are in flight, ``delivered`` is a lower bound (the
    records neither failed nor still queued in the producer, whose queue the sinks of a
    factory share); after a flush that emptied the queue (a checkpoint, :meth:`flush`,
    :meth:`close`) it is exact. ``name`` (``kafka:<topic>``) labels the sink in run summaries.

    :meth:`open` (called when a run starts) takes the factory's producer; a closed sink may be
    opened again (a second run of the same generator), its counts starting again from zero.
    A sink used without a run opens on its first :meth:`collect`.
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
        # A UTF-8 StringSerializer does what produce() does with a str: skip the extra call;
        # JSON values with such keys take the JSON encoder straight.
        plain_key = _is_plain_utf8(key_serializer)
        json_value = type(value_serializer) is JsonValueSerializer
        # A buffer of the sink's own: its encode() is the C encoder's, called straight.
        self._encode_value: Optional[Callable[[Any], bytes]] = (
            line_buffer().encode if plain_key and json_value else None
        )
        self._serialize = not (plain_key and (_is_plain_utf8(value_serializer) or json_value))
        self._key_ctx = SerializationContext(topic, MessageField.KEY)
        self._value_ctx = SerializationContext(topic, MessageField.VALUE)
        self._factory = factory
        self.producer: Optional[Producer] = None
        self._produce: Callable[..., None] = self._open_and_produce
        self._counts = _Counts()
        self._on_delivery = self._counts.on_delivery
        self._final: Optional[Tuple[int, int]] = None
        # Records of a retired producer whose reports never came (counted as failed).
        self._lost = 0
        self._until_poll = POLL_EVERY
        self.produced = 0
        self._if_exists: Optional[str] = None  # the run's, for the next open only
        #: Whether the last open looked (``if_exists``) and found records in the topic.
        self.appended: Optional[bool] = None
        #: In a run that checkpoints: ``"on"`` while the producer runs transactions, else
        #: why the broker refused them (the run is then at least once); None otherwise.
        self.transactions: Optional[str] = None
        #: Records a resumed run gave again that a transaction had committed after the
        #: checkpoint (not produced a second time).
        self.repeated = 0
        # The run's records before this opening (a resumed run: the checkpoint's), the
        # checkpoint's count that a resumed run's next open compares with what was committed,
        # the records still to drop, and the consumer whose group keeps the count committed
        # with each transaction.
        self._records_before = 0
        self._resume_records: Optional[int] = None
        self._skip = 0
        self._progress: Any = None

    # -- checkpoints -------------------------------------------------------------------------

    def follow_run(self, run: Any) -> None:
        """Before a run opens the sink: a run that checkpoints or resumes produces in
        transactions, under an id derived from the checkpoint's path and the sink's name
        (a resumed run takes the stored one, :meth:`resume_at`); any other run does not."""
        checkpointer = getattr(run, "checkpointer", None)
        if checkpointer is None and getattr(run, "resume_state", None) is None:
            self._factory._plan_transactions(None)
            return
        path = Path(checkpointer.path) if checkpointer is not None else Path("resumed")
        digest = hashlib.sha256(f"{path.resolve()}\0{self.name}".encode()).hexdigest()
        self._factory._plan_transactions(f"doge-datagen-{digest[:32]}", checkpointer is None)

    def checkpoint_position(self) -> Optional[Dict[str, Any]]:
        """For a run's checkpoint, before it is written: every record produced so far
        acknowledged, and in transactions, the transaction committed (and the next one
        begun). Returns the transactional id, which a resumed run takes again; None when
        the producer is not transactional (at least once)."""
        if self.producer is None:
            return None
        if self._factory._commit(self) is None:
            return None
        return {"transactional_id": self._factory._transactional_id, "records": self._records()}

    def flush(self) -> None:
        """Every record produced so far acknowledged (a :class:`DeliveryError` when one
        failed); in transactions, the transaction committed and the next begun. A sink that
        wraps this one (a change-event sink) calls it at each checkpoint: without it, a run
        that checkpoints would commit nothing before its end."""
        if self.producer is not None:
            self._factory._commit(self)

    def resume_at(self, position: Dict[str, Any]) -> None:
        """A resumed run: its producer takes the stored transactional id, which fences the
        producer of the run that wrote the checkpoint and aborts its open transaction."""
        self._factory._plan_transactions(str(position["transactional_id"]), stored=True)
        self._resume_records = int(position.get("records", 0))

    def if_exists(self, mode: str) -> None:
        """The next run's way with a topic that holds records: ``"append"`` adds to it (what
        the sink always does), ``"fail"`` refuses to open when it holds any; ``"replace"`` is
        refused: a topic's records are removed by its owner (deleting records or the topic),
        not by a producer."""
        if mode == "replace":
            raise ConfigurationError(
                f"{self.name}: a producer cannot remove a topic's records, so the sink cannot "
                "replace them: use if_exists='append' or 'fail'"
            )
        self._if_exists = mode

    def _topic_holds_records(self, producer: Producer) -> bool:
        """Whether any partition of the topic holds a record (its high watermark above its
        low one); a topic that does not exist holds none."""
        from confluent_kafka import Consumer, TopicPartition

        timeout = self._factory.connect_timeout or 10.0
        try:
            metadata = producer.list_topics(self.topic, timeout=timeout)
            found = metadata.topics.get(self.topic)
            if found is None or found.error is not None or not found.partitions:
                return False
            settings = {
                key: value
                for key, value in self._factory.conf.items()
                if key == "bootstrap.servers" or key.startswith(("security.", "sasl.", "ssl."))
            }
            consumer = Consumer({**settings, "group.id": "doge-datagen-if-exists"})
            try:
                for partition in found.partitions:
                    low, high = consumer.get_watermark_offsets(
                        TopicPartition(self.topic, partition), timeout=timeout
                    )
                    if high > low:
                        return True
            finally:
                consumer.close()
        except KafkaException as exc:
            raise ConfigurationError(
                f"{self.name}: cannot look at topic {self.topic!r}: "
                f"{mask_text(str(exc), self._factory._secrets)}"
            ) from None
        return False

    def _open(self) -> None:
        producer = self._factory._acquire(self)
        choice, self._if_exists = self._if_exists, None
        if choice == "fail":
            try:
                held = self._topic_holds_records(producer)
            except BaseException:
                self._factory._release(self, producer)
                raise
            if held:
                self._factory._release(self, producer)
                raise ConfigurationError(
                    f"{self.name}: topic {self.topic!r} holds records, and if_exists is "
                    "'fail': give another topic, or append"
                )
            self.appended = False
        self.producer = producer
        self._produce = producer.produce
        self._poll: Callable[[float], int] = producer.poll
        self._counts = _Counts()
        self._on_delivery = self._counts.on_delivery
        self._final = None
        self._lost = 0
        self._until_poll = POLL_EVERY
        self.produced = 0
        self.repeated = 0
        self._records_before, resumed = self._resume_records or 0, self._resume_records
        self._resume_records = None
        self._progress = None
        if self._factory._transactional:
            self._open_progress(resumed)

    def _open_progress(self, resumed: Optional[int]) -> None:
        """A consumer group of the sink's own keeps the number of records the run has
        committed, in each transaction (``send_offsets_to_transaction``: the offset of the
        topic's partition 0). A resumed run reads it back: the records committed after its
        checkpoint (a kill between a commit and the checkpoint's rename) are not produced
        again."""
        from confluent_kafka import Consumer

        factory = self._factory
        digest = hashlib.sha256(self.name.encode()).hexdigest()[:12]
        settings = {
            key: value
            for key, value in factory.conf.items()
            if key == "bootstrap.servers" or key.startswith(("security.", "sasl.", "ssl."))
        }
        group = f"{factory._transactional_id}-{digest}"
        consumer = Consumer({**settings, "group.id": group, "enable.auto.commit": False})
        self._progress = (consumer, consumer.consumer_group_metadata())
        if resumed is None:
            return
        try:
            found = consumer.committed(
                [TopicPartition(self.topic, 0)], timeout=factory.connect_timeout or 30.0
            )
            committed = found[0].offset
        except KafkaException as exc:
            raise ConfigurationError(
                f"{self.name}: cannot read the records the run committed (group {group!r}): "
                f"{mask_text(str(exc), factory._secrets)}"
            ) from None
        if committed > resumed:
            self._skip = committed - resumed
            self.collect = self._collect_again  # type: ignore[method-assign]

    def _collect_again(self, timestamp: int, subject: Any, transition: Transition) -> None:
        """A resumed run's collect while the records committed after its checkpoint come
        again: counted in ``repeated``, not produced."""
        if self._skip > 0:
            self._skip -= 1
            self.repeated += 1
            self.key_function(subject, transition)
            self.value_function(timestamp, subject, transition)
            if not self._skip:
                del self.collect
            return
        KafkaSink.collect(self, timestamp, subject, transition)

    def _records(self) -> int:
        """The records of the run so far, from its first tick (those of a resumed run's
        checkpoint included)."""
        return self._records_before + self.produced + self.repeated

    def _reset_counts(self) -> None:
        """The counts live in a fresh ``_Counts`` made by :meth:`_open`."""

    @property
    def closed(self) -> bool:
        """Whether the sink is closed (or was never opened)."""
        return not self._is_open

    @property
    def delivered(self) -> int:  # type: ignore[override]
        """Records the broker acknowledged: those neither failed nor still in the producer's
        queue (a lower bound while records are in flight, exact once a flush emptied it)."""
        if self._final is not None:
            return self._final[0]
        producer = self.producer
        queued = len(producer) if producer is not None else 0
        return max(self.produced - self._counts.failed - self._lost - queued, 0)

    @property
    def failed(self) -> int:  # type: ignore[override]
        """Records that failed, including (after close) those still queued at the timeout."""
        return self._counts.failed + self._lost if self._final is None else self._final[1]

    def _unresolved(self, queued: int) -> int:
        """Of the sink's records, how many may be among the ``queued`` ones of its producer
        (which the factory's sinks share): all of them, up to its records not yet counted."""
        return min(queued, max(self.produced - self._counts.failed - self._lost, 0))

    # -- the per-event path ------------------------------------------------------------------

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        key = self.key_function(subject, transition)
        value = self.value_function(timestamp, subject, transition)
        encode = self._encode_value
        if encode is not None and value is not None:
            try:
                value = encode(value)
            except ENCODE_ERRORS as exc:
                raise self._record_error("value", transition, exc) from exc
        elif self._serialize:
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
        except KafkaException as exc:
            self._produce_after_fatal(exc, value, key, timestamp)
        self.produced += 1
        self._until_poll -= 1
        if not self._until_poll:
            self._until_poll = POLL_EVERY
            self._serve(0)

    def _produce_after_fatal(
        self, exc: KafkaException, value: Any, key: Any, timestamp: int
    ) -> None:
        """produce() refused the record. After a fatal error the producer refuses every record
        from then on: an idempotent producer whose broker came back without its state (a
        restart of a broker with memory-only storage) cannot retry without risking duplicates.

        The factory then retires that producer (what it still held is counted as failed, never
        sent twice) and starts a new one, and this record, which the old producer never took,
        goes to the new one: a broker restart costs the records in flight, not the rest of
        the run. Any other refusal, or a new producer refusing too, is a
        :class:`DeliveryError`.
        """
        error = _fatal_error(exc)
        if error is None or self.producer is None:
            raise self._refused(exc) from exc
        self._replace_producer(error)
        try:
            self._produce(self.topic, value, key, -1, self._on_delivery, None, timestamp)
        except BufferError:
            self._produce_when_room(value, key, timestamp, after_fatal=True)
        except KafkaException as again:
            raise self._refused(again) from again

    def _serve(self, timeout: float) -> None:
        """``poll(timeout)``: serve delivery reports. A producer that hits a fatal error
        raises it from there too; it is then replaced as when produce() refuses a record."""
        try:
            self._poll(timeout)
        except KafkaException as exc:
            error = _fatal_error(exc)
            if error is None or self.producer is None:
                raise self._refused(exc, counted=False) from exc
            self._replace_producer(error)

    def _replace_producer(self, error: KafkaError) -> None:
        if self._counts.first_error is None:
            self._counts.first_error = f"{error.name()}: {error.str()}"
        assert self.producer is not None
        if self._factory._transactional:
            # The open transaction is lost with the producer (fenced by another run with
            # the same id, or failed): a new one cannot take it over, the run resumes.
            raise DeliveryError(
                f"{self.name}: the transactional producer failed ({error.name()}: "
                f"{mask_text(error.str(), self._factory._secrets)}); resume the run from "
                "its last checkpoint",
                sink=self.name,
                delivered=self.delivered,
                failed=self.failed,
            )
        self._factory._replace_fatal(self.producer, error)

    def _use(self, producer: Producer) -> None:
        """Write through ``producer`` from now on (a replacement after a fatal error)."""
        self.producer = producer
        self._produce = producer.produce
        self._poll = producer.poll

    def _refused(self, exc: KafkaException, counted: bool = True) -> DeliveryError:
        """The producer failed for good: the record it refused (if ``counted``) counts as
        failed; the queued ones fail when the sink closes."""
        if counted:
            self.produced += 1
            self._counts.failed += 1
        error = exc.args[0] if exc.args else exc
        reason = error.str() if isinstance(error, KafkaError) else str(error)
        return DeliveryError(
            f"{self.name}: the producer refuses records: {reason}",
            sink=self.name,
            delivered=self.delivered,
            failed=self.failed,
        )

    def _produce_when_room(
        self, value: Any, key: Any, timestamp: int, after_fatal: bool = False
    ) -> None:
        """The producer queue is full: serve delivery reports until the record fits."""
        _LOGGER.debug("%s: producer queue full, waiting for delivery reports", self.name)
        while True:
            self._serve(_FULL_QUEUE_WAIT)
            try:
                self._produce(self.topic, value, key, -1, self._on_delivery, None, timestamp)
                return
            except BufferError:
                continue
            except KafkaException as exc:
                if after_fatal:  # the producer that replaced a fatal one refuses too
                    raise self._refused(exc) from exc
                self._produce_after_fatal(exc, value, key, timestamp)
                return

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

    def poll(self) -> None:
        """Serve delivery reports (and librdkafka's log lines), so that ``delivered`` and
        ``failed`` are current between ticks and while a paced run waits."""
        if self.producer is not None:
            self._serve(0)

    def hurry(self) -> None:
        """Cut the remaining waits short: a flush in progress or to come gives up at once,
        and what is still queued counts as failed (a second signal during a graceful stop)."""
        self._factory.hurry()

    # -- closing -----------------------------------------------------------------------------

    def _close(self) -> None:
        """Flush, then raise :class:`DeliveryError` if any record was not delivered.

        Records still queued when ``flush_timeout`` runs out count as failed. The sinks of a
        factory share the queue, and the producer does not tell whose records are left: a
        sink that closes before the others counts all of them, up to its own records not
        yet reported. Closing the last open sink of a factory also purges and closes the
        shared producer, which reports each purged record to its own sink.
        """
        producer = self.producer
        self.producer = None
        self._produce = self._open_and_produce
        if self._skip:  # a run that ended while committed records still came again
            self._skip = 0
            del self.collect
        if producer is None:
            return
        try:
            purged, queued = self._factory._release(self, producer)
        finally:
            if self._progress is not None:
                self._progress[0].close()
                self._progress = None
        # Every record not reported failed nor left in the queue was delivered. Records still
        # queued when a flush ran out of time count as failed; the factory's sinks share the
        # queue, so a sink that closes before the others counts it all, up to its own records.
        undelivered = self._unresolved(queued)
        failed = self._counts.failed + self._lost + undelivered
        delivered = self.produced - failed
        self._final = (max(delivered, 0), failed)
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

    def _open_and_produce(
        self,
        topic: str,
        value: Any,
        key: Any,
        partition: int,
        callback: Any,
        on_delivery: Any,
        timestamp: Any,
    ) -> None:
        """Stands in for ``produce`` while the sink is not open: open it, then produce."""
        self.open()
        self._produce(topic, value, key, partition, self._on_delivery, None, timestamp)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<KafkaSink {self.name!r} {state} produced={self.produced}>"


class KafkaSinkFactory:
    """Creates :class:`KafkaSink` instances sharing one confluent-kafka ``Producer``.

    :param bootstrap_servers: ``host:port`` addresses, as a list or a comma-separated string.
        May be ``None`` when ``conf`` holds ``bootstrap.servers``.
    :param client_id: the Kafka ``client.id``.
    :param buffer_size: how many records the producer queue holds
        (``queue.buffering.max.messages``); a full queue makes ``collect()`` wait for room.
        The first three arguments are positional, in the order of the first releases, so
        that ``KafkaSinkFactory(servers, client_id, 50000)`` keeps its meaning; the rest are
        keywords.
    :param conf: librdkafka settings (SASL, TLS, ``linger.ms``, ...); they override the ones
        derived from the other arguments.
    :param flush_timeout: how long, in seconds, :meth:`KafkaSink.close` waits for records to be
        acknowledged before counting the rest as failed.
    :param connect_timeout: when the first sink opens (a run starts), the cluster must answer a
        metadata request within this many seconds, else the run fails at once with a
        :class:`~doge_datagen.errors.DeliveryError` naming the address, instead of generating
        every event for a broker that is not there. ``None`` skips the check (records then
        wait for the broker up to librdkafka's ``message.timeout.ms``).

    librdkafka's log lines go to the logger ``doge_datagen.sinks.kafka.librdkafka`` (the same
    line again within a minute is dropped) unless ``conf`` names a ``logger``. The
    producer is idempotent (``enable.idempotence``) unless ``conf`` says otherwise, so
    librdkafka's retries after a broker outage do not write a record twice. It reports
    failed deliveries only (``delivery.report.only.error``, which ``conf`` may not set):
    the sinks count the rest. ``conf={"compression.type": "lz4"}`` costs the producer less
    CPU than it saves, where the consumers read LZ4. After a fatal
    error (a broker that came back without the producer's state) the records the producer
    still held count as failed and a new producer takes over; ``producers_replaced`` counts
    how often that happened.
    """

    def __init__(
        self,
        bootstrap_servers: Union[str, Iterable[str], None] = None,
        client_id: Optional[str] = None,
        buffer_size: int = 100000,
        *,
        conf: Optional[Mapping[str, Any]] = None,
        flush_timeout: float = 60.0,
        connect_timeout: Optional[float] = 10.0,
    ) -> None:
        if isinstance(buffer_size, Mapping):
            raise ConfigurationError(
                "buffer_size must be a positive integer, got a dict: the third argument is the "
                "queue size, as in the first releases; pass librdkafka settings as conf=..."
            )
        if conf is not None and not isinstance(conf, Mapping):
            raise ConfigurationError(f"conf must be a dict of librdkafka settings, got {conf!r}")
        extra: Dict[str, Any] = dict(conf or {})
        for key in extra:
            if not isinstance(key, str):
                raise ConfigurationError(f"conf keys must be strings, got {key!r}")
        check_positive_count("buffer_size", buffer_size)
        check_seconds("flush_timeout", flush_timeout, zero=True)
        check_optional_seconds("connect_timeout", connect_timeout)
        if client_id is not None and not isinstance(client_id, str):
            raise ConfigurationError(f"client_id must be a string, got {client_id!r}")
        if "delivery.report.only.error" in extra:
            raise ConfigurationError(
                "conf 'delivery.report.only.error' is the sinks' own: they count deliveries "
                "from the failures the producer reports"
            )
        settings: Dict[str, Any] = {
            "queue.buffering.max.messages": buffer_size,
            "logger": _CLIENT_LOGGER,
            "enable.idempotence": True,
        }
        servers = _bootstrap_string(bootstrap_servers)
        if servers is not None:
            settings["bootstrap.servers"] = servers
        if client_id:
            settings["client.id"] = client_id
        settings.update(extra)
        # A Python call per acknowledged record would cost more than the rest of the sink:
        # the producer reports failures only, and the sinks count the rest (see KafkaSink).
        settings["delivery.report.only.error"] = True
        if not settings.get("bootstrap.servers"):
            raise ConfigurationError(
                "no Kafka address: give bootstrap_servers or 'bootstrap.servers' in conf"
            )
        self.conf: Dict[str, Any] = settings
        self.buffer_size = buffer_size
        self.flush_timeout = float(flush_timeout)
        self.connect_timeout = None if connect_timeout is None else float(connect_timeout)
        self._hurried = False
        self._secrets = [
            str(value) for key, value in settings.items() if is_secret_key(key) and value
        ]
        self._open_sinks: Set[KafkaSink] = set()
        self._gave_up = False
        self.producers_replaced = 0
        self._producer: Optional[Producer] = None
        # Transactions (a run that checkpoints): the id the next producer takes, whether the
        # live producer runs them, and the records produced when the last one began.
        self._transactional_id: Optional[str] = None
        self._transactional = False
        self._begun_at = 0
        self._commit_at_close = False
        self._unclean = False
        #: Why the broker refused transactions, when it did (the run is at least once).
        self.transactions_refused: Optional[str] = None
        # librdkafka checks every setting when a client is made. A client without brokers
        # (and with its log silenced) checks them now without connecting anywhere.
        check = {k: v for k, v in settings.items() if k not in ("bootstrap.servers", "logger")}
        self._new_producer({**check, "log_level": 0})

    def _new_producer(self, conf: Optional[Mapping[str, Any]] = None) -> Producer:
        try:
            return Producer(dict(self.conf if conf is None else conf))
        except (KafkaException, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"invalid Kafka producer configuration: {mask_text(str(exc), self._secrets)}"
            ) from exc

    @property
    def producer(self) -> Producer:
        """The producer shared by the open sinks (made on first use, and again once every
        sink was closed)."""
        if self._producer is None:
            self._producer = self._new_producer()
        return self._producer

    def create(
        self,
        topic: str,
        key_function: KeyFunction,
        value_function: ValueFunction,
        key_serializer: Serializer = StringSerializer("utf_8"),  # noqa: B008 (stateless)
        value_serializer: Union[Serializer, str] = StringSerializer("utf_8"),  # noqa: B008
        *,
        name: Optional[str] = None,
    ) -> KafkaSink:
        """Create a sink producing to ``topic``.

        :param key_function: ``(subject, transition) -> key``; ``None`` means a record without key.
        :param value_function: ``(timestamp, subject, transition) -> value``.
        :param key_serializer: turns the key into bytes, called with a ``SerializationContext``.
        :param value_serializer: turns the value into bytes, likewise; ``"json"`` writes
            ``json.dumps(value)``'s text (:class:`JsonValueSerializer`), so that
            ``value_function`` may return a dict.
        :param name: how run summaries name the sink; ``kafka:<topic>`` by default.
        """
        if not isinstance(topic, str) or not topic:
            raise ConfigurationError(f"topic must be a non-empty string, got {topic!r}")
        if isinstance(value_serializer, str):
            if value_serializer != "json":
                raise ConfigurationError(
                    f"topic {topic!r}: value_serializer {value_serializer!r} is not a "
                    "serializer; the only name it takes is 'json'"
                )
            value_serializer = JsonValueSerializer()
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
        fresh = self._producer is None
        if fresh and self._transactional_id is not None:
            producer = self._transactional_producer(sink)
        else:
            producer = self.producer
        if fresh:
            self._hurried = False
            if self.connect_timeout is not None:
                self._check_reachable(producer, sink, self.connect_timeout)
        self._open_sinks.add(sink)
        sink.transactions = None
        if self._transactional_id is not None:
            sink.transactions = "on" if self._transactional else self.transactions_refused
        return producer

    # -- transactions (a run that checkpoints) ------------------------------------------------

    def _plan_transactions(
        self, transactional_id: Optional[str], commit_at_close: bool = False, stored: bool = False
    ) -> None:
        """The id the next producer runs transactions under (None: no transactions). The
        first sink of a run to ask names it; a resumed run's stored id replaces it.
        ``commit_at_close``: the run writes no checkpoint that would commit its events."""
        if self._producer is not None:
            return  # a producer is live: the plan applies to the next one
        if stored:
            self._transactional_id = transactional_id
            return
        if transactional_id is None or self._transactional_id is None:
            self._transactional_id = transactional_id
            self._commit_at_close = commit_at_close

    def _transactional_producer(self, sink: KafkaSink) -> Producer:
        """A producer with the planned ``transactional.id``, its transactions initialised
        (fencing a producer with the same id and aborting its open transaction) and the first
        begun; a broker that refuses gives a plain idempotent producer, at least once."""
        assert self._transactional_id is not None
        conf = {**self.conf, "transactional.id": self._transactional_id}
        timeout = self.connect_timeout or 30.0
        producer = self._new_producer(conf)
        try:
            producer.init_transactions(timeout)
            producer.begin_transaction()
        except KafkaException as exc:
            error = exc.args[0] if exc.args else exc
            reason = error.str() if isinstance(error, KafkaError) else str(error)
            self.transactions_refused = (
                f"the broker refused transactions ({mask_text(reason, self._secrets)})"
            )
            _LOGGER.warning(
                "%s: %s; the run is at least once: events after a checkpoint are sent again "
                "on a resume",
                sink.name,
                self.transactions_refused,
            )
            self._transactional = False
            self._producer = self._new_producer()
            return self._producer
        self.transactions_refused = None
        self._transactional = True
        self._begun_at = 0
        self._producer = producer
        return producer

    def _produced(self) -> int:
        return sum(sink.produced + sink.repeated for sink in self._open_sinks)

    def _commit(self, sink: KafkaSink) -> Optional[Dict[str, Any]]:
        """Every record produced so far acknowledged; in transactions, the transaction
        committed and the next begun (nothing to commit when no record came since). A
        record that failed, or a commit the broker refuses, is a :class:`DeliveryError`:
        the checkpoint is not written and the run resumes from the one before."""
        producer = self._producer
        if producer is None:
            return None
        remaining = self._flush(producer, self.flush_timeout)
        if remaining or sink.failed:
            failed = sink.failed + remaining
            raise DeliveryError(
                f"{sink.name}: {failed} records not delivered before a checkpoint",
                sink=sink.name,
                delivered=sink.delivered,
                failed=failed,
            )
        if not self._transactional:
            return None
        produced = self._produced()
        if produced != self._begun_at:
            try:
                for each in self._open_sinks:
                    if each._progress is not None:
                        producer.send_offsets_to_transaction(
                            [TopicPartition(each.topic, 0, each._records())],
                            each._progress[1],
                            self.flush_timeout,
                        )
                producer.commit_transaction(self.flush_timeout)
                producer.begin_transaction()
            except KafkaException as exc:
                error = exc.args[0] if exc.args else exc
                reason = error.str() if isinstance(error, KafkaError) else str(error)
                raise DeliveryError(
                    f"{sink.name}: the transaction of the records before a checkpoint was not "
                    f"committed ({mask_text(reason, self._secrets)}); resume the run from its "
                    "last checkpoint",
                    sink=sink.name,
                    delivered=sink.delivered,
                    failed=sink.failed,
                ) from None
            self._begun_at = produced
        return {"transactional_id": self._transactional_id}

    def _end_transaction(self, producer: Producer, clean: bool) -> Optional[str]:
        """The last sink closes. A run that checkpoints committed its events with its last
        checkpoint: what came after it (a run that failed) is aborted, and a resume gives it
        again. A resumed run that writes no checkpoint commits at its close when every
        record was delivered (``clean``) and the run did not fail: a run that raised closes
        its sinks while its error is being handled. Returns why a commit was refused."""
        failing = sys.exc_info()[1] is not None
        commit = self._commit_at_close and clean and not self._hurried and not failing
        try:
            if commit:
                producer.commit_transaction(self.flush_timeout)
            else:
                producer.abort_transaction(_PURGE_WAIT)
        except KafkaException as exc:
            if not commit:
                return None  # nothing to keep: the broker aborts it when it times out
            error = exc.args[0] if exc.args else exc
            reason = error.str() if isinstance(error, KafkaError) else str(error)
            return mask_text(reason, self._secrets)
        return None

    def _check_reachable(self, producer: Producer, sink: KafkaSink, timeout: float) -> None:
        """A bounded metadata request: a cluster that does not answer fails the run now."""
        try:
            producer.list_topics(timeout=timeout)
        except KafkaException as exc:
            self._producer = None
            servers = mask_text(str(self.conf.get("bootstrap.servers")), self._secrets)
            reason = mask_text(str(exc.args[0] if exc.args else exc), self._secrets)
            raise DeliveryError(
                f"{sink.name}: the Kafka cluster at {servers} did not answer within "
                f"{timeout:g} s ({reason}); is the broker running and the "
                "address right?",
                sink=sink.name,
                delivered=0,
                failed=0,
            ) from None

    def hurry(self) -> None:
        """Give up waiting: the flush in progress (if any) and later ones stop at once."""
        self._hurried = True

    def _replace_fatal(self, producer: Producer, error: KafkaError) -> None:
        """Retire ``producer`` after its fatal ``error`` and give every open sink a new one.

        The records the old producer still holds are purged: their delivery callbacks count
        them as failed in the sinks that produced them (librdkafka cannot retry them without
        risking duplicates, and neither do we). ``producers_replaced`` counts the
        replacements of this factory's lifetime.
        """
        if producer is not self._producer:
            return  # another sink of this factory replaced it already
        _LOGGER.warning(
            "the Kafka producer hit a fatal error (%s: %s); its queued records count as "
            "failed and a new producer takes over",
            error.name(),
            mask_text(error.str(), self._secrets),
        )
        try:
            producer.purge()
            remaining = producer.flush(_PURGE_WAIT)
        except KafkaException:  # pragma: no cover - a fatal producer still purges and flushes
            remaining = 1
        if not remaining:
            close = getattr(producer, "close", None)
            if close is not None:
                close()
        else:  # pragma: no cover - as above
            # Reports that will never come: each sink counts what may be its own as failed.
            for sink in self._open_sinks:
                sink._lost += sink._unresolved(remaining)
        self._producer = self._new_producer()
        self.producers_replaced += 1
        for sink in self._open_sinks:
            sink._use(self._producer)

    def _flush(self, producer: Producer, timeout: float) -> int:
        """``producer.flush(timeout)`` in short slices, stopping early after :meth:`hurry`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                remaining = producer.flush(max(0.0, min(_FLUSH_SLICE, left)))
            except KafkaException:
                # A fatal error: the producer delivers nothing more; what it holds is
                # counted as not delivered.
                return max(len(producer), 1)
            if not remaining or left <= 0 or self._hurried:
                return remaining

    def _release(self, sink: KafkaSink, producer: Producer) -> Tuple[bool, int]:
        """Flush for a closing sink; when it is the last one, end the transaction (if any)
        and retire the producer.

        Returns whether records still queued after the flush were purged, and how many
        records the producer still holds (0: every record was acknowledged or reported
        failed).
        """
        self._open_sinks.discard(sink)
        last = not self._open_sinks and producer is self._producer
        # Once a flush ran out of time, later sinks of the same producer do not wait again.
        remaining = self._flush(producer, 0 if self._gave_up else self.flush_timeout)
        self._gave_up = remaining > 0
        if not last:
            self._unclean = self._unclean or remaining > 0 or sink.failed > 0
            return False, remaining
        self._producer = None
        self._gave_up = False
        refused = None
        if self._transactional:
            clean = not (self._unclean or remaining or sink.failed)
            refused = self._end_transaction(producer, clean)
        self._transactional = False
        self._transactional_id = None
        self._unclean = False
        purged = remaining > 0
        if purged:
            # The producer is going away: fail what it still holds, which serves the delivery
            # callbacks (as failures) of every sink that produced those records.
            _LOGGER.debug("purging %d records still queued after the flush", remaining)
            try:
                producer.purge()
                remaining = producer.flush(_PURGE_WAIT)
            except KafkaException:  # a fatal error: the closing sinks count what is left
                remaining = max(len(producer), 1)
        if not remaining:
            # close() waits without limit for queued records: only call it on an empty queue.
            close = getattr(producer, "close", None)
            if close is not None:
                close()
        if refused is not None:
            failed = sink.failed + sink._unresolved(remaining)
            raise DeliveryError(
                f"{sink.name}: the transaction of the run's last records was not committed "
                f"({refused})",
                sink=sink.name,
                delivered=sink.produced - failed,
                failed=failed,
            )
        return purged, remaining

    def __repr__(self) -> str:
        return (
            f"<KafkaSinkFactory {self.conf.get('bootstrap.servers')!r} "
            f"open_sinks={len(self._open_sinks)}>"
        )
