"""The banking model of the README, as the demo and the examples run it.

A user of a banking application has an account balance and a loan balance. Offline, money
comes in and goes out; now and then the user logs in, may open the loan screen and may take a
loan. Four streams of events come out of it: clickstream, transactions, balance changes and
loans; the caller decides where each goes.
"""

import random
from typing import Any, Callable, Dict, Optional

from doge_datagen.core.types import EventSink, Subject, SubjectFactory, Transition
from doge_datagen.model import DataOnlineGenerator
from doge_datagen.sinks._json import dumps_bytes
from doge_datagen.sinks.record import Record

__all__ = [
    "LOGIN_HOURS",
    "STATES",
    "STREAMS",
    "WEEKDAY_INCOME",
    "NamedUser",
    "User",
    "UserFactory",
    "banking_generator",
    "event_line",
    "event_row",
    "named_event_row",
    "day_model",
    "demo_model",
    "make_callbacks",
    "user_row",
]

STATES = ["offline", "online", "loan_screen"]
STREAMS = ("clickstream", "trx", "balance", "loan")

#: How much more (or less) than on average users log in, per hour of the day: quiet at
#: night, a peak before work, at lunch and in the evening. The factors average 1, so a day
#: holds as many logins as the flat model's.
LOGIN_HOURS = (
    0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.2, 1.6, 1.5, 1.1, 1.2,
    1.6, 1.6, 1.1, 1.0, 1.1, 1.3, 1.7, 1.8, 1.9, 1.5, 1.0, 0.5,
)  # fmt: skip
#: Income (salaries, transfers) arrives on weekdays only; same weekly total as the flat model.
WEEKDAY_INCOME = (1.4, 1.4, 1.4, 1.4, 1.4, 0.0, 0.0)


class User(Subject):
    __slots__ = ("user_id", "balance", "loan_balance")

    def __init__(self, user_id: int, balance: int, loan_balance: int) -> None:
        self.user_id = user_id
        self.balance = balance
        self.loan_balance = loan_balance

    def __repr__(self) -> str:
        return f"User({self.user_id}, balance={self.balance}, loan_balance={self.loan_balance})"


class NamedUser(User):
    """A user with a name, an e-mail address made from it, a street address and a phone
    number (``banking_generator(..., fake=True)``, ``doge-datagen demo --fake``)."""

    __slots__ = ("name", "email", "address", "phone")

    name: str
    email: str
    address: str
    phone: str


class UserFactory(SubjectFactory[User]):
    """Users numbered by their subject index, with a random starting balance from ``rng``.

    ``create(index)`` is what the engine calls (user ``index`` is subject ``index``);
    ``create()`` numbers users from 0 in the order they are made. With ``fake`` (a
    generator's :attr:`~doge_datagen.DataOnlineGenerator.fake`), users are
    :class:`NamedUser` objects, their values drawn after the balance, so that the balance is
    the same with or without them.
    """

    def __init__(self, rng: Optional[random.Random] = None, fake: Any = None) -> None:
        self.current_id = 0
        self.random = rng or random.Random()
        self.fake = fake

    def create(self, index: Optional[int] = None) -> User:
        if index is None:
            index = self.current_id
        self.current_id = index + 1
        fake = self.fake
        if fake is None:
            return User(index, self.random.randint(0, 1000), 0)
        user = NamedUser(index, self.random.randint(0, 1000), 0)
        name = user.name = fake.name()
        user.email = fake.email(name)
        user.address = fake.street_address()
        user.phone = fake.phone_number()
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


# The demo's models are DataOnlineGenerator[Any], not [User]: code using them may keep them
# in a variable typed with a subject class of its own.
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
    day: bool = False,
    tz: Any = None,
    fake: bool = False,
) -> DataOnlineGenerator[Any]:
    """The README's banking model writing to the four given sinks.

    Factory and callbacks draw from the generator's seeded ``random``, which gives each
    subject its own stream, and users are numbered by subject index: a seed fixes the
    whole run, and user ``n`` lives the same life whether 10 or a million users run, in
    one process or in shards. ``probability_scale`` multiplies every probability (1/60
    with ``tick_ms=1000`` gives the same model at one-second ticks).

    ``day=True`` gives the model a day and a week: logins follow :data:`LOGIN_HOURS` and
    income arrives on weekdays (:data:`WEEKDAY_INCOME`), in time zone ``tz`` (UTC if none).

    ``fake=True`` gives every user a name, an e-mail address, a street address and a phone
    number from ``datagen.fake`` (:class:`NamedUser`; :func:`named_event_row` writes them).
    """
    factory = UserFactory()
    datagen: DataOnlineGenerator[User] = DataOnlineGenerator(
        STATES, "offline", factory, subjects_num, tick_ms, ticks_num, timestamp_start, seed=seed
    )
    factory.random = datagen.random
    if fake:
        factory.fake = datagen.fake
    cb = make_callbacks(datagen.random)
    p = probability_scale
    income: Any = 0.01 * p
    login: Any = 0.1 * p
    if day:
        from doge_datagen.profiles import hourly, weekly

        income = income * weekly(WEEKDAY_INCOME, tz=tz, name="weekdays")
        login = login * hourly(LOGIN_HOURS, tz=tz, name="daily")
    # fmt: off
    datagen.add_transition('income', 'offline', 'offline', income,
                           action_callback=cb["income_callback"], event_sinks=[balance_sink])
    datagen.add_transition('spending', 'offline', 'offline', 0.1 * p,
                           action_callback=cb["spending_callback"],
                           event_sinks=[trx_sink, balance_sink])
    datagen.add_transition('login', 'offline', 'online', login, event_sinks=[clickstream_sink])
    datagen.add_transition('logout', 'online', 'offline', 70 * p, event_sinks=[])
    datagen.add_transition('open_loan_screen', 'online', 'loan_screen', 30 * p,
                           event_sinks=[clickstream_sink])
    datagen.add_transition('close_loan_screen', 'loan_screen', 'online', 40 * p,
                           event_sinks=[clickstream_sink])
    datagen.add_transition('take_loan', 'loan_screen', 'online', 10 * p,
                           action_callback=cb["take_loan_callback"],
                           event_sinks=[clickstream_sink, loan_sink, balance_sink])
    # fmt: on
    return datagen


#: The demo's record of an event: :func:`user_row` with the move's states. A
#: :class:`~doge_datagen.sinks.record.Record`: called, it returns the dict; a file sink writes
#: its lines from the values, through a template made once.
event_row = Record(
    [
        "timestamp",
        "user_id",
        "balance",
        "loan_balance",
        ("event", "trigger"),
        "from_state",
        "to_state",
    ]
)


#: :data:`event_row` with the user's name and e-mail address (``demo --fake``), a
#: :class:`~doge_datagen.sinks.record.Record` too.
named_event_row = Record([*zip(event_row.names, event_row.sources), "name", "email"])


def event_line(timestamp: int, subject: Any, transition: Transition) -> str:
    """``json.dumps(event_row(...))``: one event as a line of JSON."""
    return dumps_bytes(event_row(timestamp, subject, transition)).decode("ascii")


def day_model() -> DataOnlineGenerator[Any]:
    """The banking model with its day (:data:`LOGIN_HOURS`, :data:`WEEKDAY_INCOME`), 1,000
    users for a week of one-minute ticks from a Monday, each stream into a counting sink:
    what ``doge-datagen run|graph|analyze doge_datagen.demo:day_model`` loads."""
    return demo_model(ticks_num=7 * 1440, day=True)


def user_row(timestamp: int, subject: User, transition: Transition) -> Dict[str, Any]:
    """A flat record of an event: for files, databases and JSON values."""
    return {
        "timestamp": timestamp,
        "user_id": subject.user_id,
        "balance": subject.balance,
        "loan_balance": subject.loan_balance,
        "event": transition.trigger,
    }


#: Monday 2024-01-01 00:00 UTC: where :func:`demo_model` starts, so that its week is a
#: calendar week.
MONDAY_MS = 1_704_067_200_000


def demo_model(
    subjects_num: int = 1000,
    ticks_num: Optional[int] = 1440,
    timestamp_start: Any = MONDAY_MS,
    seed: Any = 1,
    **options: Any,
) -> DataOnlineGenerator[Any]:
    """The banking model as ``doge-datagen demo`` runs it, each stream into a counting sink
    named after it: a model to analyse, graph or run from the command line without sinks to
    set up (``doge-datagen analyze doge_datagen.demo:demo_model``). ``options`` go to
    :func:`banking_generator`."""
    from doge_datagen.sinks.memory import CountingSink

    clickstream, trx, balance, loan = (CountingSink(stream) for stream in STREAMS)
    return banking_generator(
        clickstream,
        trx,
        balance,
        loan,
        subjects_num=subjects_num,
        ticks_num=ticks_num,
        timestamp_start=timestamp_start,
        seed=seed,
        **options,
    )
