"""Exceptions raised by doge-datagen.

Every error derives from :class:`DogeError`, and also from the builtin that fits it, so
callers may catch either::

    DogeError
    ├── ConfigurationError (also ValueError)   bad states, transitions, arguments, sink settings
    ├── RecordError (also ValueError)          an event that a sink cannot encode (schema, mapping)
    ├── DeliveryError (also RuntimeError)      records a sink could not deliver
    │   └── SinkCloseError                     several sinks failed while closing
    └── ShardError (also RuntimeError)         a shard of a sharded run failed or was lost
"""

from typing import Any, List, Optional, Sequence


class DogeError(Exception):
    """Base class of every error raised by doge-datagen."""


class ConfigurationError(DogeError, ValueError):
    """A model, an argument or a sink setting is invalid. The message names the culprit."""


class RecordError(DogeError, ValueError):
    """An event could not be turned into a record (for example it does not fit its schema)."""


class DeliveryError(DogeError, RuntimeError):
    """A sink could not deliver some records.

    ``delivered`` and ``failed`` count records; ``pending`` holds records the caller may
    still retry or inspect (for example the rows of a batch the database rejected).
    """

    def __init__(
        self,
        message: str,
        *,
        sink: Optional[str] = None,
        delivered: int = 0,
        failed: int = 0,
        pending: Optional[Sequence[Any]] = None,
    ) -> None:
        super().__init__(message)
        self.sink = sink
        self.delivered = delivered
        self.failed = failed
        self.pending: List[Any] = list(pending) if pending is not None else []


class SinkCloseError(DeliveryError):
    """More than one sink failed while the run was closing them; ``errors`` holds each one."""

    def __init__(self, errors: Sequence[BaseException]) -> None:
        self.errors = list(errors)
        delivered = sum(getattr(e, "delivered", 0) for e in self.errors)
        failed = sum(getattr(e, "failed", 0) for e in self.errors)
        lines = "; ".join(f"{type(e).__name__}: {e}" for e in self.errors)
        super().__init__(
            f"{len(self.errors)} sinks failed while closing: {lines}",
            delivered=delivered,
            failed=failed,
        )


class ShardError(DogeError, RuntimeError):
    """A shard of a sharded run (:func:`doge_datagen.distributed.run_sharded`) failed.

    The message names the shard (its number and range of subjects) and what went wrong in
    it; the other shards were stopped and their sinks closed. ``shard`` is the first failing
    shard's number, ``failures`` maps every failed shard's number to its one-line reason,
    ``summary`` is the merged :class:`~doge_datagen.RunSummary` of what every shard did (a
    shard whose process was lost counts what it last reported), and ``__cause__`` is the
    first shard's own exception where it could be brought back.
    """

    def __init__(self, message: str, *, shard: int, failures: Any, summary: Any = None) -> None:
        super().__init__(message)
        self.shard = shard
        self.failures = dict(failures)
        self.summary = summary


class ExchangeError(DogeError, RuntimeError):
    """A shard of a sharded world (:mod:`doge_datagen.populations`) could not swap its
    messages with the other shards at a tick: another shard failed or the run was stopped.
    The shard ends there; its sinks are flushed and closed as after any error."""
