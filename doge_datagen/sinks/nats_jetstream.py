"""NATS JetStream: every event becomes one message published to a subject a stream captures.

nats-py is an asyncio client; the sink keeps its API synchronous by running the client on an
event loop of its own, on a background thread started by :meth:`NatsSink.open` (which also
connects, within ``timeout``, and checks that the named stream exists). ``collect()`` hands
messages to that loop ``batch_size`` at a time; one task publishes them in order with
JetStream's asynchronous publish, and each stream acknowledgement (``PubAck``) counts the
message as delivered, each error reply (no stream for the subject, a stream other than the
expected one, a full stream) as failed.

At most ``max_outstanding`` messages wait for their acknowledgement: ``collect()`` waits for
room, and a server that acknowledges nothing for ``timeout`` seconds fails the run with
:class:`~doge_datagen.errors.DeliveryError`. :meth:`NatsSink.close` waits (up to
``timeout``) for the last acknowledgements, counts the others as failed, closes the
connection, stops the loop and raises ``DeliveryError`` when any message failed.

A sink creates no stream unless asked: with ``declare=True`` (``?declare=1`` in a URL) it
creates, when it opens, a stream capturing ``SUBJECT`` and ``SUBJECT.>`` if none captures
them (named ``stream``, or after the subject). Without it, a fresh server's errors (no
stream for the subject, no stream of that name) say what is missing and how to create it.
"""

import asyncio
import logging
import re
import threading
import time
from collections import deque
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple, Union

from doge_datagen.core.checks import check_positive_count, check_seconds
from doge_datagen.core.types import Transition
from doge_datagen.errors import ConfigurationError
from doge_datagen.sinks._bus import (
    Destination,
    KeyFunction,
    ValueFunction,
    check_destination,
    check_functions,
    destination_of,
    encode_or_record_error,
    key_text,
)
from doge_datagen.sinks.base import (
    DEFAULT_FLUSH_INTERVAL,
    Sink,
    check_flush_interval,
    mask_url,
    optional_import,
)

__all__ = ["NatsSink", "NatsSinkFactory"]

_LOGGER = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 256
DEFAULT_MAX_OUTSTANDING = 4000

Message = Tuple[str, bytes]


def _nats() -> Any:
    return optional_import("nats", "nats", "The NATS JetStream sink")


def _check_subject(what: str, subject: str) -> None:
    if any(c in subject for c in " \t\r\n*>") or subject.startswith(".") or subject.endswith("."):
        raise ConfigurationError(
            f"{what} {subject!r} is not a subject to publish to (no spaces, wildcards, or "
            "leading/trailing dots)"
        )


def _stream_name(subject: str) -> str:
    """The stream ``declare`` creates for ``subject`` when none is named: ``doge.events``
    gives ``DOGE_EVENTS``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", subject).upper()


def _create_hint(subject: str, stream: str) -> str:
    return (
        f"create one (nats stream add {stream} --subjects '{subject}.>'), or add declare=1 "
        "to the sink URL (declare=True) to have the sink create it"
    )


async def _cancel_tasks() -> None:
    """Cancel the loop's other tasks and let them finish, before the loop stops."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=1.0)


class NatsSink(Sink):
    """Publishes one JetStream message per event; create it with :meth:`NatsSinkFactory.create`.

    ``delivered`` counts the messages a stream acknowledged, ``failed`` those refused or
    unacknowledged at :meth:`close`, since the last :meth:`open`; ``published`` counts the
    messages handed to the loop. ``name`` (``nats:<subject>``) labels the sink in run
    summaries.
    """

    def __init__(
        self,
        factory: "NatsSinkFactory",
        subject: Destination,
        key_function: Optional[KeyFunction],
        value_function: ValueFunction,
        *,
        stream: Optional[str] = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
        flush_interval: Optional[float] = DEFAULT_FLUSH_INTERVAL,
        name: Optional[str] = None,
        declare: bool = False,
    ) -> None:
        shown, self._subject_function = check_destination("subject", subject)
        where = f"subject {shown!r}"
        if self._subject_function is None:
            _check_subject("subject", shown)
        check_functions(where, key_function, value_function)
        if stream is not None and (not isinstance(stream, str) or not stream):
            raise ConfigurationError(f"{where}: stream must be a non-empty name, got {stream!r}")
        if declare and self._subject_function is not None:
            raise ConfigurationError(
                f"{where}: declare needs a fixed subject, not a function, to know what the "
                "stream captures"
            )
        self.declare = bool(declare)
        self.factory = factory
        self.subject: Optional[str] = None if self._subject_function else shown
        self.key_function = key_function
        self.value_function = value_function
        self.stream = stream
        self.batch_size = check_positive_count(f"{where}: batch_size", batch_size)
        self.max_outstanding = check_positive_count(f"{where}: max_outstanding", max_outstanding)
        self.flush_interval = check_flush_interval(flush_interval)
        self.name = name or f"nats:{shown}"
        self.published = 0
        self.first_error: Optional[str] = None
        self._batch: List[Message] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._queue: Any = None
        self._sender: Any = None
        self._nc: Any = None
        self._progress = threading.Condition()
        self._waiting = False
        self._wake_at = 0
        #: Publishes not counted yet, in the order they were sent (on the loop thread).
        self._acks: Deque[Any] = deque()
        self._watched: Any = None

    # -- counts, kept on the loop thread ------------------------------------------------------

    @property
    def outstanding(self) -> int:
        """Messages handed to the loop and neither acknowledged nor failed yet."""
        return self.published - self.delivered - self.failed

    @property
    def buffered(self) -> int:
        """Messages collected and not handed to the loop yet."""
        return len(self._batch)

    def _reset_counts(self) -> None:
        super()._reset_counts()
        self.published = 0
        self.first_error = None

    def _failure(self, count: int, reason: Any) -> None:
        self.failed += count
        if self.first_error is None:
            self.first_error = str(reason) or type(reason).__name__
            _LOGGER.debug("%s: %s", self.name, self.first_error)
        self._notify()

    def _notify(self) -> None:
        if self._waiting:
            with self._progress:
                self._progress.notify_all()

    def _count_acks(self, _: Any = None) -> None:
        """Count the finished publishes at the head of ``_acks``, in the order they were
        sent: a stream acknowledgement as delivered, an error reply as failed.

        One callback watches the first unfinished publish, rather than one per message:
        acknowledgements come in runs, read from the connection together, and one call
        counts a run. The head always has the callback, so every publish is counted once
        it finishes.
        """
        acks = self._acks
        delivered = 0
        while acks and acks[0].done():
            future = acks.popleft()
            if future.cancelled():
                self._failure(1, "publish cancelled")
                continue
            error = future.exception()
            if error is None:
                delivered += 1
            else:
                self._failure(1, error)
        self.delivered += delivered
        if acks and acks[0] is not self._watched:
            self._watched = acks[0]
            acks[0].add_done_callback(self._count_acks)
        # Wake a waiting collect() only once its batch has room, not on every run of
        # acknowledgements: each wake-up hands the interpreter to the other thread.
        if self._waiting and self.published - self.delivered - self.failed <= self._wake_at:
            self._notify()

    # -- the loop thread ----------------------------------------------------------------------

    def _run(self, coroutine: Any, timeout: float) -> Any:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise TimeoutError(f"no answer within {timeout} s") from None

    async def _connect(self) -> None:
        nats = _nats()
        factory = self.factory

        async def on_error(exc: Exception) -> None:
            _LOGGER.debug("%s: client error: %s", self.name, exc)

        settings = {
            "connect_timeout": factory.timeout,
            "allow_reconnect": factory.max_reconnect_attempts > 0,
            # nats-py retries the first connection without end when this is 0.
            "max_reconnect_attempts": max(factory.max_reconnect_attempts, 1),
            "reconnect_time_wait": 2.0 if factory.max_reconnect_attempts > 0 else 0.1,
            "error_cb": on_error,
            **factory.options,
        }
        self._nc = await nats.connect(factory.servers, **settings)
        js = self._nc.jetstream(
            timeout=factory.timeout, publish_async_max_pending=self.max_outstanding
        )
        if self.declare:
            try:
                await self._declare(js)
            except BaseException:
                await self._nc.close()
                raise
        if self.stream is not None:
            try:
                await js.stream_info(self.stream)
            except nats.js.errors.NotFoundError:
                await self._nc.close()
                subject = self.subject or "SUBJECT"
                raise ConfigurationError(
                    f"{self.name}: JetStream has no stream {self.stream!r} on {factory.address}: "
                    + _create_hint(subject, self.stream)
                ) from None
            except BaseException:
                await self._nc.close()
                raise
        self._queue = asyncio.Queue()
        self._acks, self._watched = deque(), None
        self._sender = asyncio.ensure_future(self._send(js, self._queue))

    async def _declare(self, js: Any) -> None:
        """A stream capturing the subject and its keys, unless one does already (the
        stream named ``stream``, or any stream when none is named)."""
        errors = _nats().js.errors
        subject = self.subject
        assert subject is not None
        name = self.stream or _stream_name(subject)
        try:
            if self.stream is not None:
                await js.stream_info(self.stream)
            else:
                await js.find_stream_name_by_subject(f"{subject}.>")
            return
        except errors.NotFoundError:
            pass
        try:
            await js.add_stream(name=name, subjects=[subject, f"{subject}.>"])
        except errors.Error as exc:
            raise ConfigurationError(
                f"{self.name}: cannot create stream {name!r} for subjects '{subject}' and "
                f"'{subject}.>' on {self.factory.address}: {exc}"
            ) from exc
        _LOGGER.info("%s: created stream %r on %s", self.name, name, self.factory.address)

    async def _send(self, js: Any, queue: "asyncio.Queue[Optional[List[Message]]]") -> None:
        """Publish the batches in the order they came; count each acknowledgement."""
        stream = self.stream
        acks = self._acks
        while True:
            batch = await queue.get()
            if batch is None:
                return
            for n, (subject, data) in enumerate(batch):
                try:
                    future = await js.publish_async(subject, data, stream=stream)
                except Exception as exc:  # noqa: BLE001 - counted, reported at close
                    self._failure(len(batch) - n, exc)
                    break
                acks.append(future)
            self._count_acks()

    async def _drain(self, timeout: float) -> None:
        """Wait for the sender to finish and the last acknowledgements, then disconnect."""
        await self._queue.put(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._sender), timeout)
            deadline = time.monotonic() + timeout
            while self.outstanding > 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        except asyncio.TimeoutError:
            pass
        finally:
            self._sender.cancel()
            try:
                await asyncio.wait_for(self._nc.close(), timeout)
            except Exception:  # noqa: BLE001 - the connection is dropped anyway
                _LOGGER.debug("%s: closing the connection failed", self.name, exc_info=True)

    def _start_loop(self) -> None:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=loop.run_forever, name=f"doge-nats-{self.name}", daemon=True
        )
        thread.start()
        self._loop, self._thread = loop, thread

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._run(_cancel_tasks(), 2.0)
        except Exception:  # noqa: BLE001 - the loop is stopped anyway
            _LOGGER.debug("%s: cancelling the loop's tasks failed", self.name, exc_info=True)
        self._loop = self._thread = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(self.factory.timeout)
        if not thread.is_alive():
            loop.close()

    # -- opening and closing -----------------------------------------------------------------

    def _open(self) -> None:
        self._batch = []
        self._start_loop()
        nats = _nats()
        try:
            with self.translate_errors(
                0,
                f"cannot reach NATS JetStream at {self.factory.address}",
                delivery=(nats.errors.Error, OSError, TimeoutError),
            ):
                self._run(self._connect(), self.factory.timeout * 2 + 1)
        except BaseException:
            self._stop_loop()
            raise

    def _close(self) -> None:
        try:
            self._submit()
            self._run(self._drain(self.factory.timeout), self.factory.timeout * 3 + 1)
        except TimeoutError:
            _LOGGER.debug("%s: the loop did not finish in time", self.name)
        finally:
            self._stop_loop()
        lost = self.outstanding
        if lost > 0:
            self._failure(lost, f"{lost} messages unacknowledged after {self.factory.timeout} s")
        if self.failed:
            reason = self.first_error
            if reason is not None and "no response from stream" in reason:
                subject = self.subject or "SUBJECT"
                reason = (
                    f"{reason}: no stream captures subject '{subject}' and its keys: "
                    + _create_hint(subject, self.stream or _stream_name(subject))
                )
            raise self.delivery_error("messages were not acknowledged", 0, reason)

    # -- the per-event path ------------------------------------------------------------------

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        if not self._is_open:
            self.open()  # used without a run: open on the first event
        if self._subject_function is None:
            target = self.subject
        else:
            target = destination_of(
                self.name, "subject", self._subject_function, subject, transition
            )
        if self.key_function is not None:
            key = self.key_function(subject, transition)
            if key is not None:
                target = f"{target}.{key_text(self.name, key, transition)}"
        body = encode_or_record_error(
            self.name, self.value_function(timestamp, subject, transition), transition
        )
        batch = self._batch
        batch.append((target, body))  # type: ignore[arg-type]
        if len(batch) >= self.batch_size:
            self._submit()

    def _submit(self) -> None:
        batch = self._batch
        if not batch or self._loop is None:
            return
        if self.outstanding + len(batch) > self.max_outstanding:
            self._wait_for_room(len(batch))
        self._batch = []
        self.published += len(batch)
        self._loop.call_soon_threadsafe(self._queue.put_nowait, batch)

    def _wait_for_room(self, needed: int) -> None:
        timeout = self.factory.timeout
        deadline = time.monotonic() + timeout
        with self._progress:
            self._wake_at = self.max_outstanding - needed
            self._waiting = True
            try:
                while self.outstanding + needed > self.max_outstanding:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._progress.wait(min(left, 0.5))
            finally:
                self._waiting = False
        if self.outstanding + needed <= self.max_outstanding:
            return
        # Nothing moves: give up on this run. What the loop still holds counts as failed.
        pending = self._batch
        self._batch = []
        try:
            self._run(asyncio.wait_for(self._nc.close(), 1.0), 2.0)
        except Exception:  # noqa: BLE001 - the connection is dropped anyway
            _LOGGER.debug("%s: closing the connection failed", self.name, exc_info=True)
        self._stop_loop()
        self._is_open = False
        lost = self.outstanding
        raise self.delivery_error(
            f"NATS at {self.factory.address} acknowledged nothing for {timeout} s "
            f"({lost} messages unacknowledged, {len(pending)} not sent)",
            lost + len(pending),
            pending=pending,
        )

    def flush(self) -> None:
        """Hand the messages collected so far to the loop."""
        self._submit()


class NatsSinkFactory:
    """Creates :class:`NatsSink` objects publishing to one NATS server (or cluster).

    :param servers: ``nats://[USER:PASSWORD@]HOST:PORT``, or a list of them.
    :param timeout: seconds allowed to connect, and for the stream to acknowledge messages.
    :param max_reconnect_attempts: how often the client tries to reconnect after losing the
        connection; by default it does not, and what was not acknowledged counts as failed.
    :param options: more keyword arguments for ``nats.connect`` (``user_credentials``,
        ``tls``, ...).

    Nothing is connected before a sink is opened. The sinks create no stream unless
    ``create(..., declare=True)`` asks: a stream must capture the subjects they publish to.
    """

    def __init__(
        self,
        servers: Union[str, Sequence[str]] = "nats://127.0.0.1:4222",
        *,
        timeout: float = 10.0,
        max_reconnect_attempts: int = 0,
        options: Optional[Dict[str, Any]] = None,
    ) -> None:
        listed = [servers] if isinstance(servers, str) else list(servers or [])
        if not listed or not all(isinstance(s, str) and s for s in listed):
            raise ConfigurationError(
                f"servers must be a nats:// URL or a list of them, got {mask_url(servers)!r}"
            )
        if options is not None and not isinstance(options, dict):
            raise ConfigurationError(f"options must be a dict, got {type(options).__name__}")
        if isinstance(max_reconnect_attempts, bool) or not isinstance(max_reconnect_attempts, int):
            raise ConfigurationError(
                f"max_reconnect_attempts must be a whole number, got {max_reconnect_attempts!r}"
            )
        self.servers = listed
        self.timeout = check_seconds("timeout", timeout)
        self.max_reconnect_attempts = max_reconnect_attempts
        self.options = dict(options or {})
        self.address = ",".join(mask_url(s) for s in listed)

    def create(
        self,
        subject: Destination,
        key_function: Optional[KeyFunction],
        value_function: ValueFunction,
        *,
        stream: Optional[str] = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
        flush_interval: Optional[float] = DEFAULT_FLUSH_INTERVAL,
        name: Optional[str] = None,
        declare: bool = False,
    ) -> NatsSink:
        """A sink publishing to ``subject`` (a name, or a function ``(subject, transition)``).

        :param key_function: ``(subject, transition) -> key``, added to the subject as one
            more token (``subject.key``); ``None`` (or a ``None`` key) publishes to the
            subject itself.
        :param value_function: ``(timestamp, subject, transition) -> payload`` (bytes, text,
            or anything else as JSON).
        :param stream: the stream expected to store the messages: it must exist when the sink
            opens, and a message another stream (or none) captures counts as failed.
        :param batch_size: messages handed to the loop at a time.
        :param max_outstanding: messages awaiting acknowledgement at most.
        :param flush_interval: seconds a message may wait in the batch during a run before
            it is sent anyway (``None``: only full batches and :meth:`close` send).
        :param name: how run summaries name the sink; ``nats:<subject>`` by default.
        :param declare: when the sink opens, create a stream capturing ``subject`` and
            ``subject.>`` unless one does (named ``stream``, else after the subject:
            ``DOGE_EVENTS`` for ``doge.events``). Off by default: the sink creates nothing.
        """
        return NatsSink(
            self,
            subject,
            key_function,
            value_function,
            stream=stream,
            batch_size=batch_size,
            max_outstanding=max_outstanding,
            flush_interval=flush_interval,
            name=name,
            declare=declare,
        )

    def __repr__(self) -> str:
        return f"<NatsSinkFactory {self.address!r}>"
