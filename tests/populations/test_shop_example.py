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
