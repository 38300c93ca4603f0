"""The original module path of the SQL database sink, now :mod:`doge_datagen.sinks.db`."""

from doge_datagen.sinks.db import (
    COPY,
    DEFAULT_BATCH_SIZE,
    EXECUTEMANY,
    INSERT,
    DbSink,
    DbSinkFactory,
    RowMapper,
)

__all__ = [
    "COPY",
    "DEFAULT_BATCH_SIZE",
    "EXECUTEMANY",
    "INSERT",
    "DbSink",
    "DbSinkFactory",
    "RowMapper",
]
