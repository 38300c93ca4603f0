"""What every sink of doge-datagen shares: a name, delivery counts, ``open()``/``close()``,
one translation of client errors into :mod:`doge_datagen.errors`, and optional imports that
name the extra to install.

A sink's life::

    sink = factory.create(...)     # checks its arguments; opens nothing, writes nothing
    sink.open()                    # the run starts: files and connections are opened here
    sink.collect(...)  ...         # events
    sink.close()                   # flush, release; raises DeliveryError with the counts
    sink.open()                    # a later run may use the sink again

Building a model therefore has no side effect: ``doge-datagen graph`` or a model that is built
and never run leaves every output as it was. ``open()`` and ``close()`` are idempotent, and
``collect()`` on a sink nobody opened opens it (code written before ``open()`` existed keeps
working). ``delivered`` and ``failed`` count the records of the current opening: they start
again from zero at each ``open()``, so that a run's summary reports that run.
"""

import importlib
import logging
import time
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Iterator, Optional, Sequence, Tuple, Type, Union

from doge_datagen.core.checks import check_optional_seconds
from doge_datagen.core.delivery import delivery_counts
from doge_datagen.core.masking import MASK, is_secret_key, mask_secrets, mask_text, mask_url
from doge_datagen.core.types import EventSink
from doge_datagen.errors import DeliveryError, RecordError

__all__ = [
    "DEFAULT_FLUSH_INTERVAL",
    "MASK",
    "Sink",
    "delivery_counts",
    "is_secret_key",
    "mask_text",
    "mask_url",
    "optional_import",
]

_LOGGER = logging.getLogger(__name__)

#: Seconds a record may wait in a buffering sink (files, databases) before it is written out,
#: so that a paced run's events show up while it runs, not only when a buffer fills.
DEFAULT_FLUSH_INTERVAL = 1.0

ErrorTypes = Union[Type[BaseException], Tuple[Type[BaseException], ...]]


def optional_import(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module``, or raise ImportError saying which extra of doge-datagen brings it.

    Optional clients are imported where a sink needs them, never at ``import doge_datagen``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{what} needs the Python package {module.split('.')[0]!r}, which is not "
            f"installed: pip install 'doge-datagen[{extra}]'"
        ) from exc


class Sink(EventSink):
    """The base of doge-datagen's sinks.

    Subclasses implement :meth:`collect` and, where they hold a file or a connection,
    :meth:`_open` and :meth:`_close`; the base keeps the state so that opening and closing
    happen once each per run. ``name`` labels the sink in summaries, progress and errors;
    ``delivered`` and ``failed`` count records since the last :meth:`open`.
    """

    #: How summaries, progress and errors name the sink.
    name: str = "sink"
    #: Records the destination has taken (written, committed, acknowledged).
    delivered: int = 0
    #: Records that could not be delivered.
    failed: int = 0
    #: A buffering sink's time bound: :meth:`poll` writes out records that waited this many
    #: seconds. ``None`` for sinks that do not buffer.
    flush_interval: Optional[float] = None
    _is_open: bool = False
    _dirty_since: Optional[float] = None

    @property
    def is_open(self) -> bool:
        """Whether the sink is open (between :meth:`open` and :meth:`close`)."""
        return self._is_open

    def open(self) -> None:
        """Open files or connections for a run; the counts start from zero. Idempotent."""
        if self._is_open:
            return
        self._reset_counts()
        self._open()
        self._is_open = True
        _LOGGER.debug("%s: opened", self.name)

    def close(self) -> None:
        """Flush and release what :meth:`open` took; a closed sink may be opened again.

        Closing a sink that is not open does nothing, so a run's close and a ``with`` block's
        close never flush or report twice.
        """
        if not self._is_open:
            return
        self._is_open = False
        self._close()
        _LOGGER.debug(
            "%s: closed (%d delivered, %d failed)", self.name, self.delivered, self.failed
        )

    def __enter__(self) -> "Sink":
        self.open()
        return self

    def poll(self) -> None:
        """Called by the engine after each tick and while a paced run waits for its next tick.

        A buffering sink writes out what has waited ``flush_interval`` seconds (its size
        bound alone would keep a slow run's events in memory for minutes); a sink with
        asynchronous acknowledgements serves them, so that ``delivered`` is current for the
        progress display. The default handles the first case for sinks with ``buffered`` and
        ``flush()``; it costs one clock read while something is buffered.
        """
        interval = self.flush_interval
        if interval is None or not self._is_open:
            return
        if not getattr(self, "buffered", 0):
            self._dirty_since = None
            return
        now = time.monotonic()
        since = self._dirty_since
        if since is None:
            self._dirty_since = now
        elif now - since >= interval:
            self._dirty_since = None
            self.flush()  # type: ignore[attr-defined]

    # -- for subclasses --------------------------------------------------------------------

    def _open(self) -> None:
        """Open the destination. The default does nothing."""

    def _close(self) -> None:
        """Flush and release the destination; raise :class:`DeliveryError` for what failed."""

    def _reset_counts(self) -> None:
        self.delivered = 0
        self.failed = 0

    def delivery_error(
        self,
        what: str,
        count: int,
        reason: Any = None,
        *,
        pending: Optional[Sequence[Any]] = None,
    ) -> DeliveryError:
        """A :class:`DeliveryError` for ``count`` records that failed, with the sink's counts.

        ``count`` is added to ``failed``. The message names the sink, what failed and how
        many records were delivered before; URL passwords and secret settings in ``reason``
        are masked.
        """
        self.failed += count
        counts = f"{self.delivered} delivered, {self.failed} failed"
        text = f"{mask_secrets(self.name)}: {what} ({counts})"
        if reason is not None:
            text += f": {_reason(reason)}"
        return DeliveryError(
            text, sink=self.name, delivered=self.delivered, failed=self.failed, pending=pending
        )

    @contextmanager
    def translate_errors(
        self,
        count: int,
        what: str,
        *,
        delivery: ErrorTypes = (OSError,),
        record: ErrorTypes = (),
        pending: Optional[Sequence[Any]] = None,
    ) -> Iterator[None]:
        """Turn a client's exceptions into doge-datagen's, in one place.

        Inside the block, an exception of a ``record`` type becomes a :class:`RecordError`
        (the data is at fault, nothing is counted); one of a ``delivery`` type becomes a
        :class:`DeliveryError` counting ``count`` records as failed. Both keep the original as
        ``__cause__``.
        """
        try:
            yield
        except (DeliveryError, RecordError):
            raise
        except record as exc:
            raise RecordError(f"{mask_secrets(self.name)}: {what}: {_reason(exc)}") from exc
        except delivery as exc:
            raise self.delivery_error(what, count, exc, pending=pending) from exc

    def __repr__(self) -> str:
        state = "open" if self._is_open else "closed"
        return (
            f"<{type(self).__name__} {mask_secrets(mask_url(self.name))!r} {state} "
            f"delivered={self.delivered} failed={self.failed}>"
        )


def check_flush_interval(value: Any) -> Optional[float]:
    """A time bound in seconds (> 0, finite) or ``None`` for none."""
    return check_optional_seconds("flush_interval", value)


def _reason(reason: Any) -> str:
    """One line saying what went wrong, any URL password or secret setting in it masked."""
    if isinstance(reason, BaseException):
        original = getattr(reason, "orig", None) or reason
        text = str(original).strip() or type(original).__name__
    else:
        text = str(reason)
    return mask_secrets(" ".join(text.split()))
