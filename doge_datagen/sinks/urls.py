"""A sink URL taken apart (:class:`SinkURL`), what a model's records look like to a sink made
from one (:class:`Records`), and the error for a URL that is wrong in itself.

The builders of each scheme (:mod:`~doge_datagen.sinks.url_builders`,
:mod:`~doge_datagen.sinks.bus_urls`, :mod:`~doge_datagen.sinks.remote_urls`) and the sinks that
wrap another one (change events, disorder) take these; :mod:`~doge_datagen.sinks.registry`
maps schemes to builders.
"""

import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

from doge_datagen.core.types import EventSink, Transition
from doge_datagen.errors import ConfigurationError
from doge_datagen.sinks._json import dumps_bytes
from doge_datagen.sinks.base import mask_url

__all__ = [
    "ENV_SUFFIX",
    "KeyFunction",
    "Records",
    "RowFunction",
    "SinkURL",
    "SinkURLError",
    "refuse_unknown_settings",
]

#: ``KEY_env=VAR`` takes the setting ``KEY`` from the environment variable ``VAR``.
ENV_SUFFIX = "_env"


class SinkURLError(ConfigurationError):
    """A sink URL that is wrong in itself: unknown scheme, bad port, missing or unknown part.
    The message names the part (the URL shown with its password masked)."""


KeyFunction = Callable[[Any, Transition], Any]
RowFunction = Callable[[int, Any, Transition], Dict[str, Any]]


@dataclass
class Records:
    """What a model's events look like, for sinks made from URLs.

    :param row: ``(timestamp, subject, transition) -> dict``: one flat record per event, the
        columns of a table, the fields of a JSON document or of an Avro record.
    :param key: ``(subject, transition) -> str``: the key of a keyed destination (Kafka's
        record key); events of one key stay in order. ``None`` writes records without a key.
    :param create_table: ``(engine, table_name) -> None``, called before a database sink is
        made, to create its table if missing. ``None`` expects the table to exist.
    :param jsonl: ``(path, **file_sink_options) -> sink``: a sink for ``jsonl:PATH`` that
        writes the same lines as a ``FileSink`` of ``row`` would. ``None``: a ``FileSink``
        (which writes a :class:`~doge_datagen.sinks.record.Record`'s lines from a template).
    :param create: a database sink makes its table when it is missing, when the run starts
        (``DbSinkFactory.create(..., create=True)``), with ``columns`` (``{field: SQL type}``,
        the others' types seen in the first row), ``primary_key`` and ``foreign_keys``
        (``{field: "table(column)"}``).
    :param avro_schema: the Avro record schema (JSON text) of a ``kafka+avro://`` sink whose
        URL names none (``schema=PATH``).
    """

    row: RowFunction
    key: Optional[KeyFunction] = None
    create_table: Optional[Callable[[Any, str], None]] = None
    jsonl: Optional[Callable[..., EventSink]] = None
    create: bool = False
    columns: Optional[Dict[str, str]] = None
    primary_key: Optional[Sequence[str]] = None
    foreign_keys: Optional[Dict[str, str]] = None
    avro_schema: Optional[str] = None

    def json(self, timestamp: int, subject: Any, transition: Transition) -> str:
        """The row as one line of JSON (``json.dumps``'s text)."""
        return dumps_bytes(self.row(timestamp, subject, transition)).decode("utf-8")


class SinkURL:
    """A parsed sink URL: scheme, hosts, path, user, password and settings.

    Settings come from the query string; ``KEY_env=VAR`` reads ``KEY`` from the environment
    variable ``VAR`` (``password_env`` gives the URL's password). ``str()`` and ``repr()``
    show the URL with its password masked.
    """

    def __init__(self, url: str) -> None:
        if not isinstance(url, str) or not url:
            raise SinkURLError(f"a sink URL must be a non-empty string, got {url!r}")
        self.url = url
        if any(ord(c) < 32 or ord(c) == 127 for c in url):
            raise SinkURLError(
                f"sink {self.masked!r}: a URL cannot hold control characters (a NUL, a line "
                "break); percent-encode them"
            )
        scheme, sep, rest = url.partition(":")
        if not sep or not scheme:
            raise SinkURLError(f"sink {self.masked!r}: expected SCHEME:..., e.g. jsonl:out.jsonl")
        self.scheme = scheme.lower()
        self.opaque = not rest.startswith("//")
        query = ""
        if self.opaque:
            self.netloc = ""
            self.path, _, query = rest.partition("?")
        else:
            parts = urlsplit(url)
            self.netloc = parts.netloc
            self.path = parts.path
            query = parts.query
        userinfo, at, hosts = self.netloc.rpartition("@")
        self.hosts_text = hosts if at else self.netloc
        user, colon, password = userinfo.partition(":")
        self.username: Optional[str] = unquote(user) if at and user else None
        self.password: Optional[str] = unquote(password) if at and colon else None
        self.params: Dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key.endswith(ENV_SUFFIX) and len(key) > len(ENV_SUFFIX):
                key = key[: -len(ENV_SUFFIX)]
                value = self._from_environment(key, value)
            if key == "password":
                self.password = value
                continue
            self.params[key] = value

    def _from_environment(self, key: str, variable: str) -> str:
        if not variable:
            raise SinkURLError(f"sink {self.masked!r}: {key}{ENV_SUFFIX} names no variable")
        value = os.environ.get(variable)
        if value is None:
            raise SinkURLError(
                f"sink {self.masked!r}: environment variable {variable!r} (for {key!r}) is not set"
            )
        return value

    @property
    def masked(self) -> str:
        """The URL as written, its password masked."""
        return mask_url(self.url)

    @property
    def topic(self) -> str:
        """The path without its leading slash (a topic, a stream, an exchange, a subject)."""
        return unquote(self.path.lstrip("/"))

    def hosts(self, default_port: Optional[int] = None) -> List[Tuple[str, int]]:
        """``(host, port)`` of every comma-separated address; a bad port is named."""
        found = []
        for address in self.hosts_text.split(","):
            address = address.strip()
            if not address:
                continue
            if address.startswith("["):  # [::1]:9092
                host, _, port_text = address[1:].partition("]")
                port_text = port_text.lstrip(":")
            else:
                host, _, port_text = (
                    address.rpartition(":") if ":" in address else (address, "", "")
                )
            if not port_text:
                if default_port is None:
                    raise SinkURLError(f"sink {self.masked!r}: no port in {address!r}")
                port = default_port
            elif port_text.isdigit() and int(port_text) == 0:
                raise SinkURLError(f"sink {self.masked!r}: port 0 is not a port to connect to")
            else:
                if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                    raise SinkURLError(
                        f"sink {self.masked!r}: port {port_text!r} is not a number from 1 to 65535"
                    )
                port = int(port_text)
            if not host:
                raise SinkURLError(f"sink {self.masked!r}: no host in {address!r}")
            if not address.startswith("[") and ":" in host:  # host:port: (IPv6 needs [...])
                raise SinkURLError(
                    f"sink {self.masked!r}: {address!r} is not HOST:PORT (an IPv6 address "
                    "goes in brackets: [::1]:PORT)"
                )
            found.append((host, port))
        if not found:
            raise SinkURLError(f"sink {self.masked!r}: no HOST:PORT")
        return found

    def pop(self, key: str, default: Any = None, kind: Callable[[str], Any] = str) -> Any:
        """Take the setting ``key`` out of :attr:`params`, converted by ``kind``."""
        if key not in self.params:
            return default
        text = self.params.pop(key)
        try:
            return kind(text)
        except (TypeError, ValueError):
            raise SinkURLError(
                f"sink {self.masked!r}: {key}={text!r} is not a valid {kind.__name__}"
            ) from None

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"SinkURL({self.masked!r})"


def refuse_unknown_settings(url: SinkURL, allowed: Sequence[str] = ()) -> None:
    """Refuse settings left in ``url.params`` that a builder did not take."""
    left = [k for k in url.params if k not in allowed]
    if left:
        raise SinkURLError(f"sink {url.masked!r}: unknown setting {left[0]!r}")
