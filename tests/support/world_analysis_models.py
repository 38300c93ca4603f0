"""A world of two populations and an entity table, for the world's graph and analysis.

Customers pay shops: ``pay`` fires at the same probability in each customer state, so a
customer pays with probability ``PAY_PERCENT / 100`` at every tick whatever its state, and the
run's count of payments (one ``payment`` message each) is exactly binomial over
``customers x ticks`` trials. Shops open and close and handle the payments they receive.
Products are an entity table that payments refer to.
"""

from typing import Any, Optional

from doge_datagen import DataOnlineGenerator, InMemorySink, SubjectFactory
from doge_datagen.populations import World

TICK_MS = 60_000
PAY_PERCENT = 4.0


class Customer:
    def __init__(self, customer_id: int) -> None:
        self.customer_id = customer_id
        self.paid = 0


class Shop:
    def __init__(self, shop_id: int) -> None:
        self.shop_id = shop_id
        self.takings = 0


class Product:
    def __init__(self, sku: int, price: int) -> None:
        self.sku = sku
        self.price = price


def customer_model(customers: int = 300, ticks: Optional[int] = 400) -> DataOnlineGenerator:
    """The customers' machine (its factory and action are set by :func:`market`)."""
    model: DataOnlineGenerator[Any] = DataOnlineGenerator(
        ["browsing", "away"], "browsing", lambda: None, customers, TICK_MS, ticks
    )
    model.add_transition("pay", "browsing", "browsing", PAY_PERCENT)
    model.add_transition("pay", "away", "away", PAY_PERCENT)
    model.add_transition("leave", "browsing", "away", 10)
    model.add_transition("return", "away", "browsing", 25)
    return model


def shop_model(shops: int = 20, ticks: Optional[int] = 400) -> DataOnlineGenerator:
    """The shops' machine: open, closed, and a self-loop that restocks."""
    model: DataOnlineGenerator[Any] = DataOnlineGenerator(
        ["open", "closed"], "open", lambda: None, shops, TICK_MS, ticks
    )
    model.add_transition("close", "open", "closed", 5)
    model.add_transition("reopen", "closed", "open", 15)
    model.add_transition("restock", "open", "open", 2)
    return model


def market(
    customers: int = 300,
    shops: int = 20,
    products: int = 50,
    ticks: Optional[int] = 400,
    seed: int = 11,
) -> World:
    """Customers who pay shops for products: two populations, one entity table and one
    declared message edge (``customers.pay`` -> ``shops``, kind ``payment``)."""
    world = World(TICK_MS, ticks, 0, seed=seed)
    buyers = customer_model(customers, ticks)
    sellers = shop_model(shops, ticks)
    received = InMemorySink(lambda ts, s, t: (s.shop_id, t.message.amount), name="received")

    class Customers(SubjectFactory[Customer]):
        def create(self, index: int) -> Customer:
            return Customer(index)

    class Shops(SubjectFactory[Shop]):
        def create(self, index: int) -> Shop:
            return Shop(index)

    def make_product(index: int) -> Product:
        return Product(index, world.random.randint(1, 100))

    def pay(subject: Customer, transition: Any) -> bool:
        product = world.pick("products", zipf=1.2)
        subject.paid += product.price
        world.send(world.pick("shops"), "payment", amount=product.price, sku=product.key)
        return True

    def receive(subject: Shop, message: Any) -> bool:
        subject.takings += message.amount
        return True

    buyers.subject_factory = Customers()
    sellers.subject_factory = Shops()
    for transition in buyers.transitions:
        if transition.trigger == "pay":
            transition.action_callback = pay
    world.add_entities("products", make_product, products, key="sku")
    world.add_population("customers", buyers, key="customer_id")
    world.add_population("shops", sellers, key="shop_id", receive=receive, receive_sinks=[received])
    world.declare_messages("customers", "pay", "shops", "payment")
    return world


def small_market() -> World:
    """:func:`market` at a size the command-line tests analyse and draw."""
    return market(customers=30, shops=4, products=10, ticks=100)
