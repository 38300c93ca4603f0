"""Worlds (several populations, :mod:`doge_datagen.populations`) for the tests, built in every
shard by reference, so importable: a payments network whose users send each other money, and
a shop whose customers buy products picked by popularity.

Each writes JSON Lines files under a folder (shards write their parts beside them); every
record carries the tick and the subject, so runs are compared as multisets of lines.
"""

from pathlib import Path
from typing import Any

from doge_datagen import DataOnlineGenerator, FileSink, SubjectFactory
from doge_datagen.populations import World

TICK_MS = 60_000


class User:
    def __init__(self, user_id: int, balance: int) -> None:
        self.user_id = user_id
        self.balance = balance


def payments(
    folder: str, users: int = 60, ticks: int = 120, seed: int = 7, arrivals: float = 0.0
) -> World:
    """Users who earn, spend and send each other money (``transfer`` messages); with
    ``arrivals``, that many new users per tick on average, who leave by closing their
    account."""
    out = Path(folder)
    world = World(TICK_MS, ticks, 0, seed=seed)
    states = ["active", "asleep"] + (["closed"] if arrivals else [])
    model: DataOnlineGenerator[User] = DataOnlineGenerator(
        states, "active", lambda: None, users, TICK_MS, ticks, arrivals=arrivals or None
    )

    def line(kind: str) -> Any:
        def record(timestamp: int, subject: User, transition: Any) -> dict:
            row = {"ts": timestamp, "kind": kind, "user": subject.user_id}
            row["balance"] = subject.balance
            row["trigger"] = transition.trigger
            message = getattr(transition, "message", None)
            if message is not None:
                row["amount"] = message.amount
                row["sender"] = message.sender.index
                row["seq"] = message.seq
                row["sent_at"] = message.sent_at
            return row

        return record

    rows = FileSink(str(out / "users.jsonl"), line("row"))
    moves = FileSink(str(out / "moves.jsonl"), line("move"))
    received = FileSink(str(out / "received.jsonl"), line("received"))

    class Users(SubjectFactory[User]):
        def create(self, index: int) -> User:
            return User(index, model.random.randint(100, 1_000))

    model.subject_factory = Users()

    def income(subject: User, transition: Any) -> bool:
        subject.balance += model.random.randint(10, 100)
        return True

    def spend(subject: User, transition: Any) -> bool:
        amount = model.random.randint(1, 80)
        if amount > subject.balance:
            return False
        subject.balance -= amount
        return True

    def transfer(subject: User, transition: Any) -> bool:
        amount = model.random.randint(1, 120)
        to = world.pick("users")
        if amount > subject.balance or to.index == subject.user_id:
            return False
        subject.balance -= amount
        world.send(to, "transfer", amount=amount)
        if model.random.random() < 0.25:  # a tip, a second message in the same event
            tip = min(subject.balance, 3)
            subject.balance -= tip
            world.send(to, "transfer", amount=tip)
        return True

    def receive(subject: User, message: Any) -> bool:
        subject.balance += message.amount
        return True

    model.add_transition("income", "active", "active", 3, income, [moves])
    model.add_transition("spend", "active", "active", 6, spend, [moves])
    model.add_transition("transfer", "active", "active", 10, transfer, [moves])
    model.add_transition("sleep", "active", "asleep", 2, None, [moves])
    model.add_transition("wake", "asleep", "active", 20, None, [moves])
    if arrivals:

        def close(subject: User, transition: Any) -> bool:
            return subject.balance == 0 or model.random.random() < 0.5

        model.add_transition("close", "asleep", "closed", 1, close, [moves])
    world.add_population(
        "users", model, key="user_id", sinks=[rows], receive=receive, receive_sinks=[received]
    )
    world.declare_messages("users", "transfer", "users", "transfer")
    return world


class Product:
    def __init__(self, product_id: int, price: float, weight: int) -> None:
        self.product_id = product_id
        self.price = price
        self.weight = weight


class Customer:
    def __init__(self, customer_id: int) -> None:
        self.customer_id = customer_id
        self.spent = 0.0
        self.orders = 0


def shop(
    folder: str, customers: int = 40, products: int = 100, ticks: int = 120, seed: int = 3
) -> World:
    """Products (an entity table) and customers who browse and buy them, by Zipf popularity."""
    out = Path(folder)
    world = World(TICK_MS, ticks, 0, seed=seed)
    model: DataOnlineGenerator[Customer] = DataOnlineGenerator(
        ["away", "browsing"], "away", lambda: None, customers, TICK_MS, ticks
    )

    class Customers(SubjectFactory[Customer]):
        def create(self, index: int) -> Customer:
            return Customer(index)

    def make_product(index: int) -> Product:
        return Product(index, round(model.random.uniform(1, 100), 2), model.random.randint(0, 5))

    model.subject_factory = Customers()
    product_rows = FileSink(
        str(out / "products.jsonl"),
        lambda ts, p, t: {"product_id": p.product_id, "price": p.price, "weight": p.weight},
    )
    customer_rows = FileSink(
        str(out / "customers.jsonl"), lambda ts, c, t: {"customer_id": c.customer_id, "ts": ts}
    )
    orders = FileSink(str(out / "orders.jsonl"), lambda ts, c, t: dict(c.last_order, ts=ts))

    def buy(subject: Customer, transition: Any) -> bool:
        product = world.pick("products", zipf=1.1)
        gift = world.pick("products", by="weight")
        subject.orders += 1
        subject.spent += product.price
        subject.last_order = {
            "order_id": f"{subject.customer_id}-{subject.orders}",
            "customer_id": subject.customer_id,
            "product_id": product.key,
            "price": product.price,
            "gift_id": gift.product_id,
        }
        return True

    model.add_transition("visit", "away", "browsing", 10)
    model.add_transition("buy", "browsing", "browsing", 20, buy, [orders])
    model.add_transition("leave", "browsing", "away", 30)
    world.add_entities("products", make_product, products, key="product_id", sinks=[product_rows])
    world.add_population("customers", model, key="customer_id", sinks=[customer_rows])
    return world


def payments_failing(folder: str, bad_user: int, at_tick: int) -> World:
    """The payments world in which user ``bad_user`` fails when it moves at ``at_tick`` or
    later: a shard fails while the others wait for its messages."""
    world = payments(folder, users=60, ticks=200, seed=3)
    users = world.populations["users"].generator
    assert users is not None
    transfer = next(t for t in users.transitions if t.trigger == "transfer")
    action = transfer.action_callback

    def failing(subject: User, transition: Any) -> bool:
        if subject.user_id == bad_user and world.timestamp >= at_tick * TICK_MS:
            raise RuntimeError(f"user {bad_user} cannot transfer")
        return bool(action(subject, transition))  # type: ignore[misc]

    transfer.action_callback = failing
    return world
