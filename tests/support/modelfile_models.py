"""Model-file models for the tests, importable by the workers of sharded runs.

``banking_file(out, seed, subjects, ticks)`` is ``examples/banking.yaml`` with every stream
into a JSON Lines file of the full event row under ``out``; ``banking_python`` is the Python
banking model of :mod:`doge_datagen.demo` into the same files. The rows name the stream.
"""

from pathlib import Path
from typing import Any, List, Tuple

import doge_datagen
from doge_datagen import DataOnlineGenerator
from doge_datagen.demo import STREAMS, banking_generator
from doge_datagen.sinks.record import Record
from doge_datagen.sinks.registry import Records, build_sink

BANKING_YAML = Path(__file__).resolve().parents[2] / "examples" / "banking.yaml"

ROW = Record(
    ["timestamp", "user_id", "balance", "loan_balance", ("event", "trigger"), "from_state",
     "to_state"]
)  # fmt: skip


class Recorder:
    """A sink that keeps ``(stream, timestamp, user, balances, trigger, states)`` tuples."""

    def __init__(self, stream: str, out: List[Tuple[Any, ...]]) -> None:
        self.stream = stream
        self.out = out
        self.opened = False

    def open(self) -> None:
        self.opened = True

    def close(self) -> None:
        """Nothing held."""

    def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
        self.out.append(
            (self.stream, timestamp, subject.user_id, subject.balance, subject.loan_balance,
             transition.trigger, transition.from_state, transition.to_state)
        )  # fmt: skip


def file_sinks(out: str) -> dict:
    return {s: build_sink(f"jsonl:{out}/{s}.jsonl", Records(row=ROW)) for s in STREAMS}


def banking_file(out: str, seed: int, subjects: int, ticks: int) -> DataOnlineGenerator:
    return doge_datagen.load(
        BANKING_YAML, sinks=file_sinks(out), seed=seed, subjects=subjects, ticks=ticks
    )


def banking_python(out: str, seed: int, subjects: int, ticks: int) -> DataOnlineGenerator:
    sinks = file_sinks(out)
    return banking_generator(
        *(sinks[s] for s in STREAMS), subjects_num=subjects, ticks_num=ticks, seed=seed
    )


def refuse_logout(subject: Any, transition: Any) -> bool:
    """An ``action:`` of the trust tests: vetoes every logout."""
    return False


class Customer:
    """A subject made by Python code (``factory:`` of a trusted model file)."""

    __slots__ = ("user_id", "balance", "loan_balance")

    def __init__(self, user_id: int, balance: int) -> None:
        self.user_id = user_id
        self.balance = balance
        self.loan_balance = 0


def make_customer(index: int, rng: Any) -> Customer:
    """``factory:`` of the trust tests: the banking model's users, from Python."""
    return Customer(index, rng.randint(0, 1000))


def memory_sink(records: Any) -> Any:
    """``sink:`` of the trust tests: an in-memory sink that keeps each event's row."""
    from doge_datagen.sinks.memory import InMemorySink

    sink = InMemorySink(name="rows", value_function=records.row)
    return sink
