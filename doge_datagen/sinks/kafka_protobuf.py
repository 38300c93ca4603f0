"""Kafka sinks writing Protobuf messages in the Confluent Schema Registry wire format.

The message type comes from a ``.proto`` file compiled when the sink is made (by protoc from
``grpcio-tools``, into descriptors; no generated code is written anywhere), so a model needs
no build step: :func:`message_class` returns a class that confluent-kafka's
``ProtobufSerializer`` takes as if it were generated. Each record is magic byte 0, the schema
id, the message indexes of the type within its file, then the message; the file's imports
are registered as references, except Protobuf's well-known types
(``google/protobuf/timestamp.proto``...), which every registry knows.

The value function returns a dict; the fields of the message are taken from it by name (keys
that are not fields are left out, fields that are not keys keep their defaults). Keys are
written as UTF-8 strings. Install with ``pip install 'doge-datagen[protobuf]'``.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union, cast

from confluent_kafka.serialization import StringSerializer

from doge_datagen.errors import ConfigurationError, RecordError
from doge_datagen.sinks._schema_registry import CheckedSerializer, RegistrySinkFactory
from doge_datagen.sinks.base import optional_import
from doge_datagen.sinks.kafka import KafkaSink, KeyFunction, ValueFunction

__all__ = ["KafkaProtobufSinkFactory", "message_class"]

_EXTRA = "protobuf"
#: protoc gets this long to compile a file.
_COMPILE_TIMEOUT = 60.0


def _protobuf() -> Tuple[Any, Any, Any]:
    descriptor_pb2 = optional_import("google.protobuf.descriptor_pb2", _EXTRA, "Protobuf values")
    descriptor_pool = optional_import("google.protobuf.descriptor_pool", _EXTRA, "Protobuf values")
    message_factory = optional_import("google.protobuf.message_factory", _EXTRA, "Protobuf values")
    # confluent-kafka's Protobuf serializer imports google.type (googleapis-common-protos).
    optional_import("google.type.date_pb2", _EXTRA, "Protobuf values")
    return descriptor_pb2, descriptor_pool, message_factory


def _compile(proto: Path, include: Sequence[Path]) -> bytes:
    """The ``FileDescriptorSet`` of ``proto`` and its imports, as protoc writes it.

    protoc runs in a child process so that its messages (a syntax error, an import not
    found) can be read and put into the error, rather than written to the terminal.
    """
    grpc_tools = optional_import("grpc_tools", _EXTRA, "Compiling a .proto file")
    well_known = Path(str(grpc_tools.__file__)).parent / "_proto"
    with tempfile.TemporaryDirectory(prefix="doge-proto-") as work:
        out = Path(work) / "set.pb"
        command = [sys.executable, "-m", "grpc_tools.protoc"]
        command += [f"-I{path}" for path in (*include, proto.parent)]
        command += [f"-I{well_known}", f"--descriptor_set_out={out}", "--include_imports"]
        command.append(str(proto))
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=_COMPILE_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigurationError(f"cannot run protoc on {str(proto)!r}: {exc}") from exc
        if done.returncode != 0 or not out.exists():
            lines = " ".join(done.stderr.split()) or f"protoc exited with {done.returncode}"
            raise ConfigurationError(f"{str(proto)!r} does not compile: {lines}")
        return out.read_bytes()


def message_class(
    proto: Union[str, "os.PathLike[str]"], message: str, include: Iterable[Any] = ()
) -> Any:
    """The class of ``message`` (``Event`` or ``package.Event``) of the ``.proto`` file
    ``proto``, compiled now; imports are looked for beside the file, in ``include`` and among
    Protobuf's well-known types."""
    descriptor_pb2, descriptor_pool, message_factory = _protobuf()
    path = Path(proto)
    if not path.is_file():
        raise ConfigurationError(f"no .proto file {str(path)!r}")
    if not isinstance(message, str) or not message:
        raise ConfigurationError(f"{str(path)!r}: name the message type, got {message!r}")
    files = descriptor_pb2.FileDescriptorSet.FromString(
        _compile(path.resolve(), [Path(p) for p in include])
    )
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:  # imports come before the files that import them
        pool.Add(file)
    main = files.file[-1]
    names = _message_names(main)
    full = message if message in names else _full_name(main, message, names, path)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(full))


def _message_names(file: Any) -> List[str]:
    prefix = f"{file.package}." if file.package else ""
    found: List[str] = []

    def walk(types: Any, outer: str) -> None:
        for kind in types:
            name = f"{outer}{kind.name}"
            found.append(name)
            walk(kind.nested_type, f"{name}.")

    walk(file.message_type, prefix)
    return found


def _full_name(file: Any, message: str, names: List[str], path: Path) -> str:
    matches = [n for n in names if n.rsplit(".", 1)[-1] == message or n.endswith(f".{message}")]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConfigurationError(
            f"{str(path)!r} has no message {message!r} (it has: {', '.join(names) or 'none'})"
        )
    raise ConfigurationError(
        f"{str(path)!r}: {message!r} is ambiguous ({', '.join(matches)}); give the full name"
    )


class _ToMessage:
    """Turns a row (dict) into a message of ``cls``: the fields of the same names."""

    __slots__ = ("cls", "fields", "topic")

    def __init__(self, cls: Any, topic: str) -> None:
        self.cls = cls
        self.fields = tuple(field.name for field in cls.DESCRIPTOR.fields)
        self.topic = topic

    def __call__(self, row: Any) -> Any:
        if not isinstance(row, Mapping):
            if isinstance(row, self.cls):
                return row
            raise RecordError(
                f"topic {self.topic!r}: the value must be a dict or a {self.cls.DESCRIPTOR.name} "
                f"message, got {type(row).__name__}"
            )
        get = row.get
        values = {}
        for name in self.fields:
            value = get(name)
            if value is not None:
                values[name] = value
        try:
            return self.cls(**values)
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
            raise RecordError(self._describe(values, exc)) from exc

    def _describe(self, values: Dict[str, Any], exc: BaseException) -> str:
        for name, value in values.items():
            try:
                self.cls(**{name: value})
            except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as one:
                field = self.cls.DESCRIPTOR.fields_by_name[name]
                return (
                    f"topic {self.topic!r}: field {name!r} of {self.cls.DESCRIPTOR.full_name}: "
                    f"{value!r} does not fit {_type_name(field)} ({one})"
                )
        return (
            f"topic {self.topic!r}: the value does not fit {self.cls.DESCRIPTOR.full_name}: {exc}"
        )


def _type_name(field: Any) -> str:
    if field.message_type is not None:
        return cast(str, field.message_type.full_name)
    if field.enum_type is not None:
        return cast(str, field.enum_type.full_name)
    names = {
        1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64",
        7: "fixed32", 8: "bool", 9: "string", 12: "bytes", 13: "uint32", 15: "sfixed32",
        16: "sfixed64", 17: "sint32", 18: "sint64",
    }  # fmt: skip
    return names.get(field.type, f"type {field.type}")


class KafkaProtobufSinkFactory(RegistrySinkFactory):
    """Creates :class:`~doge_datagen.sinks.kafka.KafkaSink` instances writing Protobuf values.

    :param bootstrap_servers: Kafka addresses, a list or a comma-separated string.
    :param schema_registry_url: the Schema Registry URL; ``mock://`` for an in-memory one.
    :param client_id: the Kafka ``client.id``.
    :param buffer_size: how many records the producer queue holds.
    :param conf: librdkafka settings, as for :class:`KafkaSinkFactory`.
    :param schema_registry_conf: more registry client settings (``basic.auth.user.info``...).
    :param flush_timeout: how long, in seconds, closing a sink waits for acknowledgements.
    :param connect_timeout: how long the cluster has to answer when a run starts.
    """

    def _check_installed(self) -> None:
        _protobuf()

    def create(
        self,
        topic: str,
        key_function: KeyFunction,
        value_function: ValueFunction,
        message_type: Any,
        *,
        serializer_conf: Optional[Mapping[str, Any]] = None,
        name: Optional[str] = None,
    ) -> KafkaSink:
        """Create a sink writing string keys and Protobuf values to ``topic``.

        :param key_function: ``(subject, transition) -> str``; ``None`` means no key.
        :param value_function: ``(timestamp, subject, transition) -> dict`` (or a message).
        :param message_type: the message class, from :func:`message_class` or generated code.
        :param serializer_conf: ``ProtobufSerializer`` settings (``auto.register.schemas``...).
        :param name: how run summaries name the sink; ``kafka:<topic>`` by default.
        """
        from confluent_kafka.schema_registry.protobuf import ProtobufSerializer

        if not isinstance(topic, str) or not topic:
            raise ConfigurationError(f"topic must be a non-empty string, got {topic!r}")
        if getattr(message_type, "DESCRIPTOR", None) is None:
            raise ConfigurationError(
                f"topic {topic!r}: message_type must be a Protobuf message class, got "
                f"{message_type!r}"
            )
        settings = {"use.deprecated.format": False, **dict(serializer_conf or {})}
        try:
            serializer = ProtobufSerializer(message_type, self.schema_registry_client, settings)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"topic {topic!r}: cannot build the Protobuf serializer: {exc}"
            ) from exc
        checked = CheckedSerializer(
            serializer, _ToMessage(message_type, topic), "value", topic, self._registry
        )
        return self.kafka_sink_factory.create(
            topic, key_function, value_function, StringSerializer("utf_8"), checked, name=name
        )
