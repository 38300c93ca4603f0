"""The base every sink shares: opening and closing once, per-run counts, error translation,
optional imports that name their extra, masked URLs."""

from typing import Any, List

import pytest

from doge_datagen import DataOnlineGenerator, InMemorySink
from doge_datagen.errors import DeliveryError, RecordError
from doge_datagen.model import Transition
from doge_datagen.sinks.base import Sink, delivery_counts, mask_url, optional_import

TRANSITION = Transition("go", "a", "b", 100)


class Recorder(Sink):
    """A sink keeping what it wrote and what happened to it; fails on demand."""

    def __init__(self) -> None:
        self.name = "recorder:postgresql://u:s3cret@h/db"
        self.calls: List[str] = []
        self.fail_with: Any = None

    def _open(self) -> None:
        self.calls.append("open")

    def _close(self) -> None:
        self.calls.append("close")

    def collect(self, timestamp: int, subject: Any, transition: Transition) -> None:
        with self.translate_errors(
            1, "one record could not be written", delivery=(OSError,), record=(TypeError,)
        ):
            if self.fail_with is not None:
                raise self.fail_with
            self.delivered += 1


def run(sink: Sink, ticks: int = 3) -> Any:
    datagen = DataOnlineGenerator(["a", "b"], "a", object, 2, 1000, ticks, seed=1)
    datagen.add_transition("go", "a", "b", 100, event_sinks=[sink])
    datagen.add_transition("back", "b", "a", 100, event_sinks=[sink])
    return datagen.start()


def test_a_run_opens_and_closes_once_and_the_counts_are_the_runs() -> None:
    sink = Recorder()
    assert not sink.is_open and sink.calls == []

    first = run(sink)
    sink.close()
    second = run(sink)

    assert sink.calls == ["open", "close", "open", "close"]
    assert first.delivery[sink.name] == second.delivery[sink.name] == {"delivered": 6, "failed": 0}
    assert delivery_counts(sink) == (6, 0)
    assert delivery_counts(object()) is None


def test_with_opens_and_closes() -> None:
    sink = Recorder()
    with sink as same:
        assert same is sink and sink.is_open
    assert sink.calls == ["open", "close"] and not sink.is_open


def test_client_errors_become_delivery_or_record_errors_with_counts() -> None:
    sink = Recorder()
    sink.open()
    sink.collect(0, None, TRANSITION)
    sink.fail_with = OSError("disk on fire at postgresql://u:s3cret@h/db")
    with pytest.raises(DeliveryError) as delivery:
        sink.collect(1, None, TRANSITION)
    assert (
        (delivery.value.delivered, delivery.value.failed) == (1, 1) == (sink.delivered, sink.failed)
    )
    assert isinstance(delivery.value.__cause__, OSError)
    assert "one record could not be written" in str(delivery.value)
    assert "s3cret" not in str(delivery.value) and "s3cret" not in repr(sink)

    sink.fail_with = TypeError("not a dict")
    with pytest.raises(RecordError, match="not a dict") as record:
        sink.collect(2, None, TRANSITION)
    assert isinstance(record.value.__cause__, TypeError)
    assert sink.failed == 1  # a record error is the data's fault: nothing counted


def test_a_missing_optional_client_names_the_extra() -> None:
    with pytest.raises(ImportError, match=r"pip install 'doge-datagen\[redis\]'") as raised:
        optional_import("doge_no_such_module_xyz", "redis", "The Redis Streams sink")
    assert "doge_no_such_module_xyz" in str(raised.value)
    assert optional_import("json", "none", "JSON") is __import__("json")


def test_mask_url_keeps_everything_but_the_secrets() -> None:
    assert mask_url("amqp://guest:guest@127.0.0.1:5672/x?routing_key=k") == (
        "amqp://guest:***@127.0.0.1:5672/x?routing_key=k"
    )
    assert mask_url("redis://127.0.0.1:6379/s") == "redis://127.0.0.1:6379/s"
    assert "pw" not in mask_url("kafka://h:1/t?sasl.password=pw&registry.basic.auth.user.info=u:pw")


def test_the_memory_sink_counts_every_open_and_close_call() -> None:
    sink = InMemorySink()
    run(sink)
    with sink:
        pass
    assert (sink.opened, sink.closed) == (2, 2)
    assert sink.delivered == 0 and len(sink) == 6  # events stay, counts are the last opening's
