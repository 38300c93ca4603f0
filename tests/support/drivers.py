"""One driver per sink for the shared contract suite (``test_contract.py``).

A driver makes its sink (from a sink URL where the sink has a scheme), reads back what
reached the real destination, and says how the destination can be taken away:

* ``make(records, password=None)``: a new sink for a fresh destination (a new topic, table,
  file); ``password`` goes into the URL where the destination accepts one;
* ``read_back()``: the rows stored, as dicts of the same fields and types as the rows sent;
* ``order``: ``"total"`` when the destination keeps the order of every event, ``"key"``
  when only the order of the events of one key (user id) is kept;
* ``make_down(records, password)``: a sink whose server is not there, or ``None``;
* ``break_server()`` / ``restore_server()``: take the server away mid-run and bring it
  back for reading (``None`` when the sink has no server to lose);
* ``exact_after_failure``: whether after a failure exactly ``delivered`` records are stored
  (transactions, files); otherwise between ``delivered`` and ``delivered + failed`` (a
  broker may have stored a record whose acknowledgement was lost).

Each driver is a fixture-built object (see ``conftest.py`` next to this module) so that it
can use the service fixtures; other sink families add theirs to :data:`DRIVERS`.
"""

import csv
import io
import json
import struct
import uuid
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import sqlalchemy as sa

from doge_datagen import InMemorySink
from doge_datagen.cli.main import event_row
from doge_datagen.doge import EventSink, Transition
from doge_datagen.sinks.registry import Records, build_sink

#: The fields of a row and their types: what every driver's read_back() gives.
FIELDS: Dict[str, type] = {
    "timestamp": int,
    "user_id": int,
    "balance": int,
    "loan_balance": int,
    "event": str,
    "from_state": str,
    "to_state": str,
}

AVRO_SCHEMA = {
    "type": "record",
    "name": "Event",
    "namespace": "doge.test",
    "fields": [
        {"name": name, "type": "long" if kind is int else "string"} for name, kind in FIELDS.items()
    ],
}


def row(timestamp: int, subject: Any, transition: Transition) -> Dict[str, Any]:
    return event_row(timestamp, subject, transition)


def key(subject: Any, transition: Transition) -> str:
    return str(subject.user_id)


def typed(raw: Dict[str, Any]) -> Dict[str, Any]:
    """A row read back as text (CSV) with the types of the rows sent."""
    return {name: kind(raw[name]) for name, kind in FIELDS.items()}


class Driver:
    """The defaults: a sink from ``url()``, no server to lose."""

    name = "?"
    order = "total"
    exact_after_failure = True
    #: Where a password can go into the URL of a working destination.
    password_when_up = False

    def records(self) -> Records:
        return Records(row=row, key=key, create_table=self.create_table)

    def create_table(self, engine: Any, table: str) -> None:
        raise AssertionError(f"{self.name}: no table expected")

    def url(self, password: Optional[str] = None) -> str:
        raise NotImplementedError

    def make(self, password: Optional[str] = None) -> EventSink:
        return build_sink(self.url(password), self.records())

    def read_back(self) -> List[Dict[str, Any]]:
        raise NotImplementedError

    def make_down(self, password: Optional[str] = None) -> Optional[EventSink]:
        """A sink whose destination cannot be reached (built lazily: building may raise)."""
        return None

    break_server: Optional[Callable[[], None]] = None
    restore_server: Optional[Callable[[], None]] = None


# -- no server ------------------------------------------------------------------------------


class MemoryDriver(Driver):
    name = "memory"

    def make(self, password: Optional[str] = None) -> EventSink:
        self.sink = InMemorySink(row, name="memory")
        return self.sink

    def read_back(self) -> List[Dict[str, Any]]:
        return [event.value for event in self.sink.events]


class FileDriver(Driver):
    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.name = kind
        self.kind = kind
        self.path = tmp_path / f"events-{uuid.uuid4().hex[:8]}.{kind}"

    def url(self, password: Optional[str] = None) -> str:
        return f"{self.kind}:{self.path}?buffer_lines=64"

    def read_back(self) -> List[Dict[str, Any]]:
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        if self.kind == "jsonl":
            return [json.loads(line) for line in text.splitlines()]
        return [typed(raw) for raw in csv.DictReader(io.StringIO(text))]

    def make_down(self, password: Optional[str] = None) -> Optional[EventSink]:
        # /dev/full opens, and then every write fails with ENOSPC.
        return build_sink(f"{self.kind}:/dev/full?mode=a&buffer_lines=64", self.records())


# -- databases ------------------------------------------------------------------------------


def create_events_table(engine: Any, table: str) -> None:
    """The events table with an autoincrement id, so that rows read back in insertion order."""
    columns = [
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        )
    ]
    for name, kind in FIELDS.items():
        columns.append(sa.Column(name, sa.BigInteger if kind is int else sa.String(64)))
    sa.Table(table, sa.MetaData(), *columns).create(engine)


class DbDriver(Driver):
    """A database reached through ``url`` (maybe a proxy) and read back through ``database``."""

    def __init__(self, name: str, database: Any, url: str, proxy: Any = None) -> None:
        self.name = name
        self.database = database
        self.base_url = url
        self.proxy = proxy
        self.table = database.table_name("contract")
        database.drop_at_end(self.table)
        self.password_when_up = name == "postgresql"  # trust authentication ignores it
        if proxy is not None:
            self.break_server = proxy.stop
            self.restore_server = proxy.start

    def create_table(self, engine: Any, table: str) -> None:
        create_events_table(engine, table)

    def url(self, password: Optional[str] = None) -> str:
        url = sa.engine.make_url(self.base_url)
        if password is not None:
            url = url.set(password=password)
        return f"{url.render_as_string(hide_password=False)}?table={self.table}&batch_size=100"

    def read_back(self) -> List[Dict[str, Any]]:
        if not sa.inspect(self.database.engine).has_table(self.table):
            return []
        return self.database.fetch(self.table, list(FIELDS))

    def make_down(self, password: Optional[str] = None) -> Optional[EventSink]:
        from support.services import free_port

        url = sa.engine.make_url(self.base_url).set(port=free_port(), host="127.0.0.1")
        if password is not None:
            url = url.set(password=password)
        return build_sink(
            f"{url.render_as_string(hide_password=False)}?table={self.table}", self.records()
        )


class SqliteDriver(DbDriver):
    def __init__(self, database: Any, tmp_path: Path) -> None:
        super().__init__("sqlite", database, database.url)
        self.tmp_path = tmp_path
        self.moved = f"{self.table}_moved"
        database.drop_at_end(self.moved)
        self.break_server = self._move_table

    def _move_table(self) -> None:
        """The table goes away under the sink (renamed): the next batch fails."""
        with self.database.engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {self.table} RENAME TO {self.moved}")
        self.table, self.moved = self.moved, self.table

    def make_down(self, password: Optional[str] = None) -> Optional[EventSink]:
        missing = self.tmp_path / "no-such-directory" / "doge.db"
        return build_sink(f"sqlite:///{missing}?table={self.table}", self.records())


# -- Kafka ----------------------------------------------------------------------------------


class KafkaDriver(Driver):
    """A topic of one partition on a broker reached through a proxy."""

    def __init__(self, broker: Any, tmp_path: Path, avro: bool = False) -> None:
        from support.kafka_fixtures import create_topic

        self.name = "kafka+avro" if avro else "kafka"
        self.broker = broker
        self.avro = avro
        self.topic = create_topic(broker.address)
        self.break_server = broker.proxy.stop
        self.restore_server = broker.proxy.start
        self.exact_after_failure = False
        self.schema_path = tmp_path / "event.avsc"
        self.schema_path.write_text(json.dumps(AVRO_SCHEMA))

    def _query(self) -> str:
        # Short timeouts: a broker that went away fails the records within seconds.
        query = "flush_timeout=10&message.timeout.ms=5000&socket.connection.setup.timeout.ms=2000"
        if self.avro:
            query += f"&registry=mock://&schema={self.schema_path}"
        return query

    def url(self, password: Optional[str] = None) -> str:
        scheme = "kafka+avro" if self.avro else "kafka"
        return f"{scheme}://{self.broker.address}/{self.topic}?{self._query()}"

    def read_back(self) -> List[Dict[str, Any]]:
        from support.kafka_fixtures import read_all

        rows = []
        for record in read_all(self.broker.address, self.topic, settle=0.5):
            if self.avro:
                value = decode_avro(record.value, AVRO_SCHEMA)
                record_key = decode_avro(record.key, "string")
            else:
                value = json.loads(record.value)
                record_key = record.key.decode()
            assert record_key == str(value["user_id"]), (record_key, value)
            assert record.timestamp == value["timestamp"]
            rows.append(value)
        return rows

    def make_down(self, password: Optional[str] = None) -> Optional[EventSink]:
        from support.services import free_port

        user = f"doge:{password}@" if password is not None else ""
        scheme = "kafka+avro" if self.avro else "kafka"
        return build_sink(
            f"{scheme}://{user}127.0.0.1:{free_port()}/{self.topic}?{self._query()}",
            self.records(),
        )


def decode_avro(data: bytes, schema: Any) -> Any:
    """A value in the Confluent wire format: magic byte 0, a 4-byte schema id, Avro."""
    from fastavro import parse_schema, schemaless_reader

    assert data[0] == 0, data[:5]
    (schema_id,) = struct.unpack(">I", data[1:5])
    assert schema_id > 0
    return schemaless_reader(io.BytesIO(data[5:]), parse_schema(schema))


# -- event buses and Parquet ------------------------------------------------------------------


class _ProxiedBus(Driver):
    """A bus server of the machine, reached by the sink through a proxy that can be stopped
    (the shared server itself is never touched) and read back directly."""

    exact_after_failure = False  # a server may have stored what it could not acknowledge

    def __init__(self, request: Any, target: Tuple[str, int]) -> None:
        from support.services import TcpProxy

        self.proxy = TcpProxy(target).start()
        request.addfinalizer(self.proxy.stop)
        self.break_server = self.proxy.stop
        self.restore_server = self.proxy.start

    @staticmethod
    def _user(password: Optional[str], user: str = "doge") -> str:
        return f"{user}:{password}@" if password is not None else ""


def _keyed_row(key: str, raw: Dict[str, Any]) -> Dict[str, Any]:
    value = typed(raw)
    assert key == str(value["user_id"]), (key, value)
    return value


class RedisDriver(_ProxiedBus):
    name = "redis"

    def __init__(self, request: Any) -> None:
        from support.bus_fixtures import unique

        self.server = request.getfixturevalue("redis_url")
        host, port = _address(self.server, 6379)
        super().__init__(request, (host, port))
        self.stream = unique("doge-contract")
        request.addfinalizer(self._delete)

    def url(self, password: Optional[str] = None) -> str:
        return f"redis://{self.proxy.address}/{self.stream}?batch_size=100&timeout=2"

    def read_back(self) -> List[Dict[str, Any]]:
        from support.bus_fixtures import read_redis_stream

        entries = read_redis_stream(self.server, self.stream, delete=False)
        return [_keyed_row(entry.pop("key"), entry) for entry in entries]

    def make_down(self, password: Optional[str] = None) -> Optional[EventSink]:
        from support.services import free_port

        url = f"redis://{self._user(password, '')}127.0.0.1:{free_port()}/{self.stream}?timeout=2"
        return build_sink(url, self.records())

    def _delete(self) -> None:
        from support.bus_fixtures import read_redis_stream

        read_redis_stream(self.server, self.stream)


class RabbitMQDriver(_ProxiedBus):
    name = "amqp"

    def __init__(self, request: Any) -> None:
        from support.bus_fixtures import RabbitQueue

        self.server = request.getfixturevalue("amqp_url")
        super().__init__(request, _address(self.server, 5672))
        self.queue = RabbitQueue(self.server)
        request.addfinalizer(self.queue.close)
        self.read: List[Dict[str, Any]] = []

    def url(self, password: Optional[str] = None) -> str:
        user = self._user(password or "guest", "guest")
        return f"amqp://{user}{self.proxy.address}/{self.queue.exchange}?timeout=2"

    def read_back(self) -> List[Dict[str, Any]]:
        # Reading takes the messages off the queue: keep what earlier calls read.
        self.read += [_keyed_row(k, json.loads(body)) for k, body in self.queue.read()]
        return list(self.read)

    def make_down(self, password: Optional[str] = None) -> Optional[EventSink]:
        from support.services import free_port

        user = self._user(password or "guest", "guest")
        url = f"amqp://{user}127.0.0.1:{free_port()}/{self.queue.exchange}?timeout=2"
        return build_sink(url, self.records())


class MqttDriver(_ProxiedBus):
    name = "mqtt"

    def __init__(self, request: Any) -> None:
        from support.bus_fixtures import MqttSubscriber, unique

        host, port = request.getfixturevalue("mqtt_address")
        super().__init__(request, (host, port))
        self.topic = f"doge-contract/{unique('t')}"
        # QoS 0 towards the reader: the broker buffers those without its 1000-message limit.
        self.subscriber = MqttSubscriber(host, port, self.topic, qos=0)
        request.addfinalizer(self.subscriber.close)

    def url(self, password: Optional[str] = None) -> str:
        return f"mqtt://{self.proxy.address}/{self.topic}?qos=1&timeout=2"

    def read_back(self) -> List[Dict[str, Any]]:
        # Everything received since the subscriber started; it waits until a second passes
        # without a new message.
        received = self.subscriber.read(10**9, idle=1.0)
        return [_keyed_row(t.rsplit("/", 1)[1], json.loads(p)) for t, p, _ in received]

    def make_down(self, password: Optional[str] = None) -> Optional[EventSink]:
        from support.services import free_port

        url = f"mqtt://{self._user(password)}127.0.0.1:{free_port()}/{self.topic}?timeout=2"
        return build_sink(url, self.records())


class NatsDriver(_ProxiedBus):
    name = "nats"

    def __init__(self, request: Any) -> None:
        from support.bus_fixtures import NatsStream

        self.server = request.getfixturevalue("nats_url")
        super().__init__(request, _address(self.server, 4222))
        self.stream = NatsStream(self.server)
        request.addfinalizer(self.stream.delete)

    def url(self, password: Optional[str] = None) -> str:
        subject, stream = self.stream.subject, self.stream.name
        return f"nats://{self.proxy.address}/{subject}?stream={stream}&timeout=2"

    def read_back(self) -> List[Dict[str, Any]]:
        return [_keyed_row(s.rsplit(".", 1)[1], json.loads(p)) for s, p in self.stream.read()]

    def make_down(self, password: Optional[str] = None) -> Optional[EventSink]:
        from support.services import free_port

        url = (
            f"nats://{self._user(password)}127.0.0.1:{free_port()}/{self.stream.subject}?timeout=2"
        )
        return build_sink(url, self.records())


class ParquetDriver(Driver):
    name = "parquet"

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / f"events-{uuid.uuid4().hex[:8]}.parquet"

    def url(self, password: Optional[str] = None) -> str:
        return f"parquet:{self.path}?row_group_size=100"

    def read_back(self) -> List[Dict[str, Any]]:
        import pyarrow.parquet as pq

        if not self.path.exists():
            return []
        return [typed(r) for r in pq.read_table(self.path).to_pylist()]


def _address(url: str, default_port: int) -> Tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


# -- Schema Registry formats, HTTP, object storage ------------------------------------------


DATA = Path(__file__).resolve().parents[1] / "data"


class RegistryKafkaDriver(KafkaDriver):
    """``kafka+protobuf`` or ``kafka+jsonschema``: read back with confluent-kafka's own
    deserializers."""

    def __init__(self, broker: Any, tmp_path: Path, scheme: str) -> None:
        super().__init__(broker, tmp_path)
        self.name = scheme

    def _query(self) -> str:
        query = "flush_timeout=10&message.timeout.ms=5000&socket.connection.setup.timeout.ms=2000"
        if self.name == "kafka+protobuf":
            return query + f"&registry=mock://&schema={DATA / 'event_row.proto'}&message=EventRow"
        return query + f"&registry=mock://&schema={DATA / 'event_row.schema.json'}"

    def url(self, password: Optional[str] = None) -> str:
        return f"{self.name}://{self.broker.address}/{self.topic}?{self._query()}"

    def read_back(self) -> List[Dict[str, Any]]:
        from confluent_kafka.serialization import MessageField, SerializationContext

        from support.kafka_fixtures import read_all

        context = SerializationContext(self.topic, MessageField.VALUE)
        if self.name == "kafka+protobuf":
            from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer

            from doge_datagen.sinks.kafka_protobuf import message_class

            cls = message_class(DATA / "event_row.proto", "EventRow")
            protobuf = ProtobufDeserializer(cls, {"use.deprecated.format": False})

            def decode(data: bytes) -> Dict[str, Any]:
                message = protobuf(data, context)
                return {name: getattr(message, name) for name in FIELDS}

        else:
            from confluent_kafka.schema_registry.json_schema import JSONDeserializer

            decode = partial(
                JSONDeserializer((DATA / "event_row.schema.json").read_text()), ctx=context
            )
        rows = []
        for record in read_all(self.broker.address, self.topic, settle=0.5):
            value = decode(record.value)
            assert record.key.decode() == str(value["user_id"]), (record.key, value)
            assert record.timestamp == value["timestamp"]
            rows.append(value)
        return rows

    def make_down(self, password: Optional[str] = None) -> Optional[EventSink]:
        from support.services import free_port

        user = f"doge:{password}@" if password is not None else ""
        return build_sink(
            f"{self.name}://{user}127.0.0.1:{free_port()}/{self.topic}?{self._query()}",
            self.records(),
        )


class HttpDriver(Driver):
    """A scripted HTTP server of the test (``remote_fixtures.Endpoint``), stopped to break."""

    name = "http"
    password_when_up = True  # the server takes any credentials

    def __init__(self, request: Any) -> None:
        from support.remote_fixtures import Endpoint

        self.endpoint = Endpoint().start()
        request.addfinalizer(self.endpoint.stop)
        self.break_server = self.endpoint.stop
        self.restore_server = self.endpoint.start

    def url(self, password: Optional[str] = None) -> str:
        user = f"doge:{password}@" if password is not None else ""
        return f"http://{user}127.0.0.1:{self.endpoint.port}/events?batch_size=100&max_time=2"

    def read_back(self) -> List[Dict[str, Any]]:
        return self.endpoint.rows()

    def make_down(self, password: Optional[str] = None) -> Optional[EventSink]:
        from support.services import free_port

        user = f"doge:{password}@" if password is not None else ""
        return build_sink(f"http://{user}127.0.0.1:{free_port()}/events?max_time=1", self.records())


class ObjectDriver(Driver):
    """JSON Lines parts on moto's S3 server reached through a proxy, or CSV parts on the
    local file system."""

    exact_after_failure = False  # an upload may have completed without its answer

    def __init__(self, request: Any, kind: str) -> None:
        self.name = kind
        if kind == "s3":
            from support.remote_fixtures import new_bucket
            from support.services import TcpProxy

            self.server = request.getfixturevalue("moto_s3")
            self.proxy = TcpProxy(_address(self.server, 80)).start()
            request.addfinalizer(self.proxy.stop)
            self.break_server = self.proxy.stop
            self.restore_server = self.proxy.start
            self.password_when_up = True  # moto takes any secret
            self.bucket = new_bucket(self.server)
        else:
            self.directory = request.getfixturevalue("tmp_path") / f"parts-{uuid.uuid4().hex[:8]}"

    def _s3(self, endpoint: str, password: Optional[str]) -> str:
        from support.remote_fixtures import s3_query

        bounded = 'fs.config_kwargs={"connect_timeout":2,"retries":{"max_attempts":1}}'
        query = s3_query(endpoint, part_size="8KB", buffer_rows="50") + "&" + bounded
        if password is not None:
            query = query.replace("secret_env=DOGE_TEST_S3_SECRET", f"secret={password}")
        return f"s3://{self.bucket}/contract/events.jsonl?{query}"

    def url(self, password: Optional[str] = None) -> str:
        if self.name == "s3":
            return self._s3(f"http://{self.proxy.address}", password)
        return f"file://{self.directory}/events.csv?part_size=8KB&buffer_rows=50"

    def read_back(self) -> List[Dict[str, Any]]:
        if self.name == "s3":
            from support.remote_fixtures import s3_client

            client = s3_client(self.server)
            listed = client.list_objects_v2(Bucket=self.bucket).get("Contents", [])
            bodies = [
                client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
                for key in sorted(o["Key"] for o in listed)
            ]
            return [json.loads(line) for body in bodies for line in body.splitlines()]
        if not self.directory.exists():
            return []
        rows = []
        for part in sorted(self.directory.glob("events-part-*.csv")):
            rows += [typed(raw) for raw in csv.DictReader(io.StringIO(part.read_text()))]
        return rows

    def make_down(self, password: Optional[str] = None) -> Optional[EventSink]:
        if self.name != "s3":
            return None
        from support.services import free_port

        return build_sink(self._s3(f"http://127.0.0.1:{free_port()}", password), self.records())


# -- the drivers the contract suite runs, by name --------------------------------------------


def _memory(request: Any) -> Driver:
    return MemoryDriver()


def _file(kind: str) -> Callable[[Any], Driver]:
    def make(request: Any) -> Driver:
        return FileDriver(kind, request.getfixturevalue("tmp_path"))

    return make


def _sqlite(request: Any) -> Driver:
    return SqliteDriver(request.getfixturevalue("sqlite_db"), request.getfixturevalue("tmp_path"))


def _server_db(kind: str) -> Callable[[Any], Driver]:
    def make(request: Any) -> Driver:
        from support.services import TcpProxy

        database = request.getfixturevalue(f"{'postgres' if kind == 'postgresql' else kind}_db")
        url = sa.engine.make_url(database.url)
        proxy = TcpProxy((url.host or "127.0.0.1", url.port)).start()
        request.addfinalizer(proxy.stop)
        proxied = url.set(host="127.0.0.1", port=proxy.port)
        return DbDriver(kind, database, proxied.render_as_string(hide_password=False), proxy)

    return make


def _kafka(avro: bool) -> Callable[[Any], Driver]:
    def make(request: Any) -> Driver:
        broker = request.getfixturevalue("proxied_kafka")
        if broker.proxy._listener is None:  # a test before this one took it away
            broker.proxy.start()
        return KafkaDriver(broker, request.getfixturevalue("tmp_path"), avro=avro)

    return make


def _registry_kafka(scheme: str) -> Callable[[Any], Driver]:
    def make(request: Any) -> Driver:
        broker = request.getfixturevalue("proxied_kafka")
        if broker.proxy._listener is None:  # a test before this one took it away
            broker.proxy.start()
        return RegistryKafkaDriver(broker, request.getfixturevalue("tmp_path"), scheme)

    return make


#: name -> (pytest marks, function of the pytest request that makes the driver)
DRIVERS: Dict[str, Any] = {
    "memory": ((), _memory),
    "jsonl": ((), _file("jsonl")),
    "csv": ((), _file("csv")),
    "sqlite": ((), _sqlite),
    "postgresql": (("postgres",), _server_db("postgresql")),
    "mariadb": (("mariadb",), _server_db("mariadb")),
    "kafka": (("kafka",), _kafka(avro=False)),
    "kafka+avro": (("kafka",), _kafka(avro=True)),
    "redis": (("redis",), RedisDriver),
    "amqp": (("rabbitmq",), RabbitMQDriver),
    "mqtt": (("mqtt",), MqttDriver),
    "nats": (("nats",), NatsDriver),
    "parquet": ((), lambda request: ParquetDriver(request.getfixturevalue("tmp_path"))),
    "kafka+protobuf": (("kafka",), _registry_kafka("kafka+protobuf")),
    "kafka+jsonschema": (("kafka",), _registry_kafka("kafka+jsonschema")),
    "http": ((), HttpDriver),
    "s3": (("s3",), lambda request: ObjectDriver(request, "s3")),
    "file-parts": ((), lambda request: ObjectDriver(request, "file-parts")),
}


def driver_params(names: Any = None) -> Any:
    """``pytest.param`` for each driver (with its service marks), optionally only ``names``."""
    import pytest

    return [
        pytest.param(name, marks=[getattr(pytest.mark, mark) for mark in marks], id=name)
        for name, (marks, _) in DRIVERS.items()
        if names is None or name in names
    ]
