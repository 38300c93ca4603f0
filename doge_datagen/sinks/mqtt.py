"""MQTT (paho-mqtt 2.x): every event becomes one message published to a topic.

Each :class:`MqttSink` holds its own client, connected by :meth:`MqttSink.open` when a run
starts (the connection acknowledgement is awaited, within ``timeout``), with paho's network
loop on a background thread. What counts as delivered depends on the QoS:

- QoS 1 and 2: the broker's acknowledgement (``PUBACK``, or ``PUBCOMP`` for QoS 2);
- QoS 0: the message was written to the connection (the protocol has no acknowledgement).

At most ``max_outstanding`` messages wait for their acknowledgement at a time: ``collect()``
waits for room, and a broker that acknowledges nothing for ``timeout`` seconds fails the run
with :class:`~doge_datagen.errors.DeliveryError`. :meth:`MqttSink.close` waits (up to
``timeout``) for the last acknowledgements, counts what is still unacknowledged as failed,
and raises ``DeliveryError`` when any message failed.
"""

import logging
import threading
import time
import uuid
from typing import Any, List, Optional

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
from doge_datagen.sinks.base import Sink, optional_import

__all__ = ["MqttSink", "MqttSinkFactory"]

_LOGGER = logging.getLogger(__name__)

DEFAULT_MAX_OUTSTANDING = 1000


def _mqtt() -> Any:
    return optional_import("paho.mqtt.client", "mqtt", "The MQTT sink")


def _check_topic(what: str, topic: str) -> None:
    if "+" in topic or "#" in topic:
        raise ConfigurationError(
            f"{what} {topic!r} has a wildcard (+ or #): it cannot be published to"
        )


class MqttSink(Sink):
    """Publishes one message per event; create it with :meth:`MqttSinkFactory.create`.

    ``delivered`` counts the messages acknowledged by the broker (QoS 1, 2) or written to the
    connection (QoS 0), ``failed`` those refused, dropped or still unacknowledged at
    :meth:`close`, since the last :meth:`open`; ``published`` counts the messages handed to
    the client. ``name`` (``mqtt:<topic>``) labels the sink in run summaries.
    """

    def __init__(
        self,
        factory: "MqttSinkFactory",
        topic: Destination,
        key_function: Optional[KeyFunction],
        value_function: ValueFunction,
        *,
        qos: int = 1,
        retain: bool = False,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
        name: Optional[str] = None,
    ) -> None:
        shown, self._topic_function = check_destination("topic", topic)
        where = f"topic {shown!r}"
        if self._topic_function is None:
            _check_topic("topic", shown)
        check_functions(where, key_function, value_function)
        if qos not in (0, 1, 2) or isinstance(qos, bool):
            raise ConfigurationError(f"{where}: qos must be 0, 1 or 2, got {qos!r}")
        self.factory = factory
        self.topic: Optional[str] = None if self._topic_function else shown
        self.key_function = key_function
        self.value_function = value_function
        self.qos = qos
        self.retain = bool(retain)
        self.max_outstanding = check_positive_count(f"{where}: max_outstanding", max_outstanding)
        self.name = name or f"mqtt:{shown}"
        self.published = 0
        self.first_error: Optional[str] = None
        self._client: Any = None
        self._acked = 0
        self._refused = 0
        self._progress = threading.Condition()
        self._waiting = False
        self._wake_at = 0
        self._connected = threading.Event()
        self._connect_error: Optional[str] = None

    # -- counts ------------------------------------------------------------------------------

    @property
    def outstanding(self) -> int:
        """Messages handed to the client and neither acknowledged nor failed yet."""
        return self.published - self._acked - self._refused - self._dropped

    # -- callbacks, on paho's network thread -------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._connect_error = f"the broker refused the connection: {reason}"
        self._connected.set()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._refused += 1
            if self.first_error is None:
                self.first_error = f"the broker refused a message: {reason}"
        else:
            self._acked += 1
        # Wake a waiting collect()/close() only once enough room is free, not on every ack.
        if self._waiting and self.outstanding <= self._wake_at:
            with self._progress:
                self._progress.notify_all()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        _LOGGER.debug("%s: disconnected from %s: %s", self.name, self.factory.address, reason)
        if self._waiting:
            with self._progress:
                self._progress.notify_all()

    # -- opening and closing -----------------------------------------------------------------

    def _reset_counts(self) -> None:
        super()._reset_counts()
        self.published = 0
        self._acked = 0
        self._refused = 0
        self._dropped = 0
        self.first_error = None

    def _open(self) -> None:
        self._connected.clear()
        self._connect_error = None
        self._client = self.factory._connect(self)

    # The counts live in three fields, each written by one thread only: ``_acked`` and
    # ``_refused`` by paho's network thread (acknowledgements), ``_dropped`` by the caller's.
    # ``failed`` is their view for the base class, whose additions land in ``_dropped``.

    @property
    def delivered(self) -> int:
        return self._acked

    @delivered.setter
    def delivered(self, value: int) -> None:
        self._acked = value

    @property
    def failed(self) -> int:
        return self._refused + self._dropped

    @failed.setter
    def failed(self, value: int) -> None:
        self._dropped = value - self._refused

    def _wait(self, wake_at: int, timeout: float) -> bool:
        """Wait until at most ``wake_at`` messages are outstanding; ``False`` when no
        acknowledgement came for ``timeout`` seconds before that."""
        with self._progress:
            self._wake_at = wake_at
            self._waiting = True
            try:
                seen = self._acked + self._refused
                deadline = time.monotonic() + timeout
                while self.outstanding > wake_at:
                    now = time.monotonic()
                    progress = self._acked + self._refused
                    if progress != seen:
                        seen, deadline = progress, now + timeout
                    elif now >= deadline:
                        return False
                    self._progress.wait(min(deadline - now, 0.5))
            finally:
                self._waiting = False
        return True

    def _stop_client(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.disconnect()
        finally:
            client.loop_stop()

    def _give_up(self) -> int:
        """Stop the client; what it still holds counts as failed. Returns that count."""
        self._stop_client()
        lost = self.outstanding
        self._dropped += lost
        return lost

    def _close(self) -> None:
        timeout = self.factory.timeout
        acknowledged = self._wait(0, timeout)
        lost = self._give_up()
        if lost and not acknowledged and self.first_error is None:
            self.first_error = f"{lost} messages still unacknowledged after {timeout} s"
        if self.failed:
            raise self.delivery_error("messages were not delivered", 0, self.first_error)

    # -- the per-event path ------------------------------------------------------------------

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        if not self._is_open:
            self.open()  # used without a run: open on the first event
        topic: Any
        if self._topic_function is None:
            topic = self.topic
        else:
            topic = destination_of(self.name, "topic", self._topic_function, subject, transition)
        if self.key_function is not None:
            key = self.key_function(subject, transition)
            if key is not None:
                topic = f"{topic}/{key_text(self.name, key, transition)}"
        body = encode_or_record_error(
            self.name, self.value_function(timestamp, subject, transition), transition
        )
        if self.published - self._acked - self._refused - self._dropped >= self.max_outstanding:
            self._wait_for_room(topic, body)
        try:
            info = self._client.publish(topic, body, self.qos, self.retain)
        except ValueError as exc:
            from doge_datagen.errors import RecordError

            raise RecordError(
                f"{self.name}: cannot publish an event of transition {transition.trigger!r} "
                f"to topic {topic!r}: {exc}"
            ) from exc
        self.published += 1
        rc = info.rc
        if rc:
            mqtt = _mqtt()
            if self.qos == 0 or rc != mqtt.MQTT_ERR_NO_CONN:
                # Dropped by the client (QoS 0 while disconnected, a full queue): not sent.
                self._dropped += 1
                if self.first_error is None:
                    self.first_error = f"the client dropped a message: {mqtt.error_string(rc)}"
            # QoS 1/2 while disconnected: the client keeps it and sends it on reconnection.

    def _wait_for_room(self, topic: str, body: bytes) -> None:
        timeout = self.factory.timeout
        if self._wait(self.max_outstanding // 2, timeout):
            return
        lost = self._give_up()
        self._is_open = False
        # The event being collected is not sent: it fails too.
        raise self.delivery_error(
            f"the broker at {self.factory.address} acknowledged nothing for {timeout} s "
            f"({lost} messages unacknowledged)",
            1,
            pending=[(topic, body)],
        )


class MqttSinkFactory:
    """Creates :class:`MqttSink` objects publishing to one MQTT broker.

    :param host: the broker's host name or address.
    :param port: its port (1883, or 8883 with TLS).
    :param username: user name, if the broker wants one.
    :param password: its password (never shown in names, errors or ``repr``).
    :param client_id: MQTT client id prefix; each sink adds a unique suffix.
    :param tls: ``True`` for TLS with the system's certificates, or a dict of
        ``Client.tls_set()`` arguments (``ca_certs``, ``certfile``, ``keyfile``).
    :param keepalive: seconds between keep-alive pings.
    :param timeout: seconds allowed to connect, and for the broker to acknowledge messages.
    :param inflight: QoS 1/2 messages sent and not yet acknowledged at most, at the protocol
        level (more wait in the client). Keep it within what the broker accepts: Mosquitto's
        ``max_inflight_messages`` is 20, and it acknowledges but drops QoS 2 messages beyond.

    Nothing is connected before a sink is opened.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        username: Optional[str] = None,
        password: Optional[str] = None,
        client_id: str = "doge-datagen",
        tls: Any = None,
        keepalive: int = 60,
        timeout: float = 10.0,
        inflight: int = 20,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise ConfigurationError(f"host must be a non-empty string, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigurationError(f"port must be a number from 1 to 65535, got {port!r}")
        if tls is not None and not isinstance(tls, (bool, dict)):
            raise ConfigurationError("tls must be True or a dict of tls_set() arguments")
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.client_id = str(client_id)
        self.tls = tls
        self.keepalive = check_positive_count("keepalive", keepalive)
        self.inflight = check_positive_count("inflight", inflight)
        self.timeout = check_seconds("timeout", timeout)
        self.address = f"{host}:{port}"

    def create(
        self,
        topic: Destination,
        key_function: Optional[KeyFunction],
        value_function: ValueFunction,
        *,
        qos: int = 1,
        retain: bool = False,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
        name: Optional[str] = None,
    ) -> MqttSink:
        """A sink publishing to ``topic`` (a name, or a function ``(subject, transition)``).

        :param key_function: ``(subject, transition) -> key``, added to the topic as one more
            level (``topic/key``); ``None`` (or a ``None`` key) publishes to the topic itself.
        :param value_function: ``(timestamp, subject, transition) -> payload`` (bytes, text,
            or anything else as JSON).
        :param qos: 0, 1 or 2.
        :param max_outstanding: messages awaiting acknowledgement at most.
        :param name: how run summaries name the sink; ``mqtt:<topic>`` by default.
        """
        return MqttSink(
            self,
            topic,
            key_function,
            value_function,
            qos=qos,
            retain=retain,
            max_outstanding=max_outstanding,
            name=name,
        )

    def _connect(self, sink: MqttSink) -> Any:
        mqtt = _mqtt()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"{self.client_id}-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv311,
        )
        client.on_connect = sink._on_connect
        client.on_publish = sink._on_publish
        client.on_disconnect = sink._on_disconnect
        # Flow control is the sink's (max_outstanding); the client queues without limit and
        # keeps no more than `inflight` messages in flight, as the broker expects.
        client.max_inflight_messages_set(self.inflight)
        client.max_queued_messages_set(0)
        client.connect_timeout = self.timeout
        if self.username is not None:
            client.username_pw_set(self.username, self._password)
        if self.tls:
            client.tls_set(**(self.tls if isinstance(self.tls, dict) else {}))
        started: List[Any] = []
        with sink.translate_errors(
            0, f"cannot reach the MQTT broker at {self.address}", delivery=(OSError,)
        ):
            try:
                client.connect(self.host, self.port, self.keepalive)
                client.loop_start()
                started.append(client)
                if not sink._connected.wait(self.timeout):
                    raise TimeoutError(f"no answer to CONNECT within {self.timeout} s")
                if sink._connect_error:
                    raise ConnectionRefusedError(sink._connect_error)
            except BaseException:
                if started:
                    client.disconnect()
                    client.loop_stop()
                raise
        return client

    def __repr__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"<MqttSinkFactory mqtt://{user}{self.address}>"
