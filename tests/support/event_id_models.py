"""The banking demo with records that carry ``event_id``, for the event-id tests; built in
every worker of a sharded run (by reference, so importable)."""

from doge_datagen import DataOnlineGenerator, FileSink
from doge_datagen.demo import banking_generator
from doge_datagen.sinks.record import Record

RECORD = Record(["event_id", "timestamp", "user_id", ("event", "trigger"), "balance"])


def into_jsonl(path: str, subjects: int = 1000, ticks: int = 500) -> DataOnlineGenerator:
    sink = FileSink(path, RECORD)
    return banking_generator(
        sink, sink, sink, sink, subjects_num=subjects, ticks_num=ticks, seed=11, timestamp_start=0
    )
