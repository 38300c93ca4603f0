"""``examples/shop.yaml``: products, customers and orders whose keys hold, in JSON Lines
files and in PostgreSQL with the primary and foreign keys declared and in force."""

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, List

import pytest
import sqlalchemy as sa
from support.db_fixtures import make_engine

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop.yaml"


def cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "doge_datagen", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _rows(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_shop_writes_products_customers_and_orders_whose_keys_hold(tmp_path):
    done = cli("run", str(SHOP), "--ticks", "600", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    products = _rows(tmp_path / "out" / "products.jsonl")
    customers = _rows(tmp_path / "out" / "customers.jsonl")
    orders = _rows(tmp_path / "out" / "orders.jsonl")
    assert [p["product_id"] for p in products] == list(range(1, 1001))
    assert [c["customer_id"] for c in customers] == list(range(1, 501))
    assert len({c["email"] for c in customers}) == 500
    assert len(orders) > 100
    assert len({o["order_id"] for o in orders}) == len(orders)
    price = {p["product_id"]: p["price"] for p in products}
    for order in orders:
        assert 1 <= order["customer_id"] <= 500
        assert order["price"] == price[order["product_id"]]  # as the product was created
    # Zipf popularity: product 1 is bought more than any product of the second hundred.
    bought: Dict[int, int] = {}
    for order in orders:
        bought[order["product_id"]] = bought.get(order["product_id"], 0) + 1
    assert bought[1] > max(bought.get(j, 0) for j in range(101, 201))


@pytest.fixture
def shop_database(postgres_url: str):
    """A fresh PostgreSQL database, so the tables are the example's own: customers, products
    and orders."""
    name = f"shop_{uuid.uuid4().hex[:10]}"
    admin = make_engine(postgres_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    url = sa.engine.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.mark.postgres
def test_the_shop_into_postgresql_with_its_keys_in_force(tmp_path, shop_database):
    url = shop_database
    done = cli(
        "run", str(SHOP), "--ticks", "600",
        "--sink", f"customers={url}", "--sink", f"products={url}", "--sink", f"orders={url}",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    engine = make_engine(url)
    try:
        inspector = sa.inspect(engine)
        assert inspector.get_pk_constraint("customers")["constrained_columns"] == ["customer_id"]
        assert inspector.get_pk_constraint("products")["constrained_columns"] == ["product_id"]
        assert inspector.get_pk_constraint("orders")["constrained_columns"] == ["order_id"]
        references = {
            tuple(k["constrained_columns"]): (k["referred_table"], k["referred_columns"])
            for k in inspector.get_foreign_keys("orders")
        }
        assert references == {
            ("customer_id",): ("customers", ["customer_id"]),
            ("product_id",): ("products", ["product_id"]),
        }
        with engine.connect() as connection:
            count = {
                table: connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar()
                for table in ("customers", "products", "orders")
            }
            matching = connection.exec_driver_sql(
                "SELECT COUNT(*) FROM orders o JOIN customers c USING (customer_id) "
                "JOIN products p USING (product_id) WHERE o.price = p.price"
            ).scalar()
            distinct = connection.exec_driver_sql(
                "SELECT COUNT(DISTINCT order_id) FROM orders"
            ).scalar()
        assert count["customers"] == 500 and count["products"] == 1000
        assert count["orders"] > 100
        assert matching == distinct == count["orders"]
        # The same orders as the JSON Lines run of the same seed.
        files = cli("run", str(SHOP), "--ticks", "600", cwd=tmp_path)
        assert files.returncode == 0, files.stderr
        assert len(_rows(tmp_path / "out" / "orders.jsonl")) == count["orders"]
        # The constraints are in force: an order of a customer that does not exist is refused.
        with pytest.raises(sa.exc.IntegrityError):
            with engine.begin() as connection:
                connection.exec_driver_sql(
                    "INSERT INTO orders (order_id, customer_id, product_id, price, ordered_at) "
                    "VALUES (-1, 999999, 1, 1.0, 'x')"
                )
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_the_shop_on_two_workers_writes_the_rows_of_one_process(tmp_path, shop_database):
    url = shop_database
    done = cli(
        "run", str(SHOP), "--ticks", "300", "--workers", "2",
        "--sink", f"customers={url}", "--sink", f"products={url}", "--sink", f"orders={url}",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    one = cli("run", str(SHOP), "--ticks", "300", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            tables = {
                table: sorted(
                    tuple(row)
                    for row in connection.exec_driver_sql(f"SELECT {columns} FROM {table}")
                )
                for table, columns in (
                    ("orders", "order_id, customer_id, product_id, price, ordered_at"),
                    ("customers", "customer_id, name, email, city"),
                    ("products", "product_id, name, category, price"),
                )
            }
    finally:
        engine.dispose()
    for table in ("orders", "customers", "products"):
        rows = sorted(tuple(r.values()) for r in _rows(tmp_path / "out" / f"{table}.jsonl"))
        assert rows and tables[table] == rows, table


def python_shop(ticks: int, seed: int) -> Dict[str, Any]:
    """The shop example written with the Python API; its sinks by name."""
    from doge_datagen import DataOnlineGenerator
    from doge_datagen.modelfile.expressions import iso
    from doge_datagen.populations import World
    from doge_datagen.sinks.memory import InMemorySink

    start = 1767571200000  # 2026-01-05T00:00:00Z
    world = World(60_000, ticks, start, seed=seed)
    rng, fake = world.random, world.fake

    class Product:
        def __init__(self, index: int) -> None:
            self.product_id = index + 1
            self.name = fake.product_name()
            self.category = rng.choice(["books", "games", "garden", "kitchen", "toys"])
            self.price = round(rng.uniform(2, 200), 2)

    class Customer:
        def __init__(self, index: int) -> None:
            self.customer_id = index + 1
            self.name = fake.name()
            self.email = fake.unique.email(self.name)
            self.city = fake.city()
            self.order_id, self.product_id, self.price = 0, 0, 0.0

    sinks = {
        "products": InMemorySink(lambda ts, s, t: {"product_id": s.product_id, "name": s.name,
                                                   "category": s.category, "price": s.price}),
        "customers": InMemorySink(lambda ts, s, t: {"customer_id": s.customer_id,
                                                    "name": s.name, "email": s.email,
                                                    "city": s.city}),
        "orders": InMemorySink(lambda ts, s, t: {"order_id": s.order_id,
                                                 "customer_id": s.customer_id,
                                                 "product_id": s.product_id, "price": s.price,
                                                 "ordered_at": iso(ts)}),
    }  # fmt: skip

    def add_to_cart(s: Any, t: Any) -> bool:
        product = world.pick("products", zipf=1.1)
        s.product_id = product.key
        s.price = product.price
        return True

    def buy(s: Any, t: Any) -> bool:
        s.order_id = (world.timestamp - start) // 60_000 * 1000000 + s.customer_id
        return True

    customers: DataOnlineGenerator[Any] = DataOnlineGenerator(
        ["away", "browsing", "cart"], "away", Customer, 500, 60_000, ticks
    )
    customers.add_transition("visit", "away", "browsing", 2)
    customers.add_transition("leave", "browsing", "away", 25)
    customers.add_transition("add_to_cart", "browsing", "cart", 15, add_to_cart)
    customers.add_transition("abandon", "cart", "browsing", 30)
    customers.add_transition("buy", "cart", "away", 40, buy, [sinks["orders"]])
    world.add_entities("products", Product, 1000, key="product_id", sinks=[sinks["products"]])
    world.add_population("customers", customers, key="customer_id",
                         sinks=[sinks["customers"]])  # fmt: skip
    world.start()
    return sinks


def test_the_file_gives_the_rows_of_the_python_world(tmp_path):
    done = cli("run", str(SHOP), "--ticks", "400", "--seed", "11", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    sinks = python_shop(400, 11)
    for name in ("products", "customers", "orders"):
        expected = [event.value for event in sinks[name].events]
        assert expected and _rows(tmp_path / "out" / f"{name}.jsonl") == expected, name
