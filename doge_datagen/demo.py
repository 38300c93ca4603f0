"""The banking model of the README, as the demo and the examples run it.

A user of a banking application has an account balance and a loan balance. Offline, money
comes in and goes out; now and then the user logs in, may open the loan screen and may take a
loan. Four streams of events come out of it: clickstream, transactions, balance changes and
loans; the caller decides where each goes.
"""

import random
from typing import Any, Callable, Dict, Optional

from doge_datagen.doge import DataOnlineGenerator, EventSink, Subject, SubjectFactory, Transition

__all__ = [
    "STATES",
    "STREAMS",
    "User",
    "UserFactory",
    "banking_generator",
    "make_callbacks",
    "user_row",
]

STATES = ["offline", "online", "loan_screen"]
STREAMS = ("clickstream", "trx", "balance", "loan")


class User(Subject):
    __slots__ = ("user_id", "balance", "loan_balance")

    def __init__(self, user_id: int, balance: int, loan_balance: int) -> None:
        self.user_id = user_id
        self.balance = balance
        self.loan_balance = loan_balance

    def __repr__(self) -> str:
        return f"User({self.user_id}, balance={self.balance}, loan_balance={self.loan_balance})"


class UserFactory(SubjectFactory[User]):
    """Users numbered from 0 with a random starting balance drawn from ``rng``."""

    def __init__(self, rng: Optional[random.Random] = None) -> None:
        self.current_id = 0
        self.random = rng or random.Random()

    def create(self) -> User:
        user = User(self.current_id, self.random.randint(0, 1000), 0)
        self.current_id += 1
        return user


def make_callbacks(rng: random.Random) -> Dict[str, Callable[[User, Transition], bool]]:
    """The action callbacks of the banking model, drawing from ``rng``."""

    def income_callback(subject: User, transition: Transition) -> bool:
        subject.balance += rng.randint(1000, 5000)
        return True

    def spending_callback(subject: User, transition: Transition) -> bool:
        payment = rng.randint(10, 500)
        if payment > subject.balance:
            return False  # not enough money: the spending does not happen
        subject.balance -= payment
        return True

    def take_loan_callback(subject: User, transition: Transition) -> bool:
        loan = rng.randint(1000, 10000)
        subject.balance += loan
        subject.loan_balance += loan
        return True

    return {
        "income_callback": income_callback,
        "spending_callback": spending_callback,
        "take_loan_callback": take_loan_callback,
    }


def banking_generator(
    clickstream_sink: EventSink,
    trx_sink: EventSink,
    balance_sink: EventSink,
    loan_sink: EventSink,
    subjects_num: int = 10,
    tick_ms: int = 60000,
    ticks_num: Optional[int] = 1000,
    timestamp_start: Any = 0,
    seed: Any = None,
    probability_scale: float = 1.0,
) -> DataOnlineGenerator:
    """The README's banking model writing to the four given sinks.

    Factory and callbacks draw from the generator's seeded ``random``, so a seed fixes the
    whole run. ``probability_scale`` multiplies every probability (1/60 with ``tick_ms=1000``
    gives the same model at one-second ticks).
    """
    factory = UserFactory()
    datagen: DataOnlineGenerator[User] = DataOnlineGenerator(
        STATES, "offline", factory, subjects_num, tick_ms, ticks_num, timestamp_start, seed=seed
    )
    factory.random = datagen.random
    cb = make_callbacks(datagen.random)
    p = probability_scale
    # fmt: off
    datagen.add_transition('income', 'offline', 'offline', 0.01 * p,
                           action_callback=cb["income_callback"], event_sinks=[balance_sink])
    datagen.add_transition('spending', 'offline', 'offline', 0.1 * p,
                           action_callback=cb["spending_callback"],
                           event_sinks=[trx_sink, balance_sink])
    datagen.add_transition('login', 'offline', 'online', 0.1 * p, event_sinks=[clickstream_sink])
    datagen.add_transition('logout', 'online', 'offline', 70 * p, event_sinks=[])
    datagen.add_transition('open_loan_screen ', 'online', 'loan_screen', 30 * p,
                           event_sinks=[clickstream_sink])
    datagen.add_transition('close_loan_screen', 'loan_screen', 'online', 40 * p,
                           event_sinks=[clickstream_sink])
    datagen.add_transition('take_loan', 'loan_screen', 'online', 10 * p,
                           action_callback=cb["take_loan_callback"],
                           event_sinks=[clickstream_sink, loan_sink, balance_sink])
    # fmt: on
    return datagen


def user_row(timestamp: int, subject: User, transition: Transition) -> Dict[str, Any]:
    """A flat record of an event: for files, databases and JSON values."""
    return {
        "timestamp": timestamp,
        "user_id": subject.user_id,
        "balance": subject.balance,
        "loan_balance": subject.loan_balance,
        "event": transition.trigger,
    }
