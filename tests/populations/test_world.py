"""A world of several populations (:mod:`doge_datagen.populations`): rows before any event,
references read as created, messages handled at the next tick in a fixed order, money kept,
both loops equal; and the same lines in one process and over K shards (processes and Dask)."""

import glob
import json
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List

import distributed
import pytest
from support import world_models
from support.loops import output_by_pure_python

from doge_datagen import DataOnlineGenerator, InMemorySink
from doge_datagen.distributed import run_sharded
from doge_datagen.errors import ConfigurationError
from doge_datagen.populations import World


def lines(folder: Path, stem: str) -> List[Dict[str, Any]]:
    """Every line of ``stem.jsonl`` and of its shard parts, in file order."""
    found: List[Dict[str, Any]] = []
    for path in sorted(glob.glob(str(folder / f"{stem}*.jsonl"))):
        found.extend(json.loads(line) for line in Path(path).read_text().splitlines())
    return found


def multiset(rows: List[Dict[str, Any]]) -> Counter:
    return Counter(json.dumps(row, sort_keys=True) for row in rows)


# -- one process -------------------------------------------------------------------------------


def test_money_is_kept_and_every_transfer_is_received_once(tmp_path):
    world = world_models.payments(str(tmp_path), users=80, ticks=200, seed=11)
    summary = world.start()
    rows = lines(tmp_path, "users")
    moves = lines(tmp_path, "moves")
    received = lines(tmp_path, "received")
    assert [r["user"] for r in rows] == list(range(80))
    assert summary.messages["sent"] == len(received) == summary.messages["delivered"] > 50
    assert summary.messages["undelivered"] == 0 and summary.messages["vetoed"] == 0
    # Each message is handled once, and was sent by a transfer of its sender at its tick.
    keys = Counter((m["sender"], m["sent_at"], m["seq"]) for m in received)
    assert max(keys.values()) == 1
    transfers = Counter((m["user"], m["ts"] // 60_000) for m in moves if m["trigger"] == "transfer")
    assert all(transfers[(sender, tick)] == 1 for sender, tick, _ in keys)
    # Replay each user's records in the order they happened (a tick's messages come before
    # its moves): a message adds its amount; what else changed is income or spending.
    balance = {r["user"]: r["balance"] for r in rows}
    start = sum(balance.values())
    income = spending = 0
    for m in sorted(moves + received, key=lambda r: (r["ts"], r["kind"] != "received")):
        change = m["balance"] - balance[m["user"]]
        balance[m["user"]] = m["balance"]
        if m["kind"] == "received":
            assert change == m["amount"]
        elif m["trigger"] == "income":
            income += change
        elif m["trigger"] == "spend":
            spending -= change
    assert income > 0 and spending > 0
    assert balance == {u.user_id: u.balance for u in world.subjects}
    assert sum(balance.values()) == start + income - spending


def test_a_message_is_handled_at_the_next_tick_before_the_receivers_own_move(tmp_path):
    world = world_models.payments(str(tmp_path), users=30, ticks=300, seed=5)
    world.start()
    received = lines(tmp_path, "received")
    moves = lines(tmp_path, "moves")
    assert received
    assert all(r["ts"] == (r["sent_at"] + 1) * 60_000 for r in received)
    # Where a receiver also moved at the tick it received, its move's record comes after
    # and its balance already holds the amount.
    checked = 0
    by_key = {(m["user"], m["ts"]): m for m in moves}
    got: Dict[Any, int] = Counter()
    last_received: Dict[Any, Dict[str, Any]] = {}
    for r in received:
        got[(r["user"], r["ts"])] += 1
        last_received[(r["user"], r["ts"])] = r
    for key, r in last_received.items():
        move = by_key.get(key)
        if move is not None and move["trigger"] in ("sleep", "wake"):  # no balance change
            assert move["balance"] == r["balance"]
            checked += 1
    assert checked > 0


def test_the_c_loop_and_the_python_loop_write_the_same_lines(tmp_path):
    (tmp_path / "0").mkdir()
    (tmp_path / "1").mkdir()
    probe = (
        "import sys, json, glob;"
        "sys.path.insert(0, 'tests');"
        "from support import world_models;"
        "import os;"
        f"folder = {str(tmp_path)!r} + '/' + os.environ['DOGE_DATAGEN_PURE_PYTHON'];"
        "w = world_models.payments(folder, users=50, ticks=150);"
        "s = w.start();"
        "print(s.events, s.messages, [u.balance for u in w.subjects])"
    )
    seen = output_by_pure_python(probe, ["0", "1"])
    assert seen["0"] == seen["1"]
    for stem in ("users", "moves", "received"):
        assert (tmp_path / "0" / f"{stem}.jsonl").read_text() == (
            tmp_path / "1" / f"{stem}.jsonl"
        ).read_text()


def test_entity_rows_then_customer_rows_come_before_any_order(tmp_path):
    world = world_models.shop(str(tmp_path), customers=50, products=200, ticks=200)
    world.start()
    products = lines(tmp_path, "products")
    orders = lines(tmp_path, "orders")
    assert [p["product_id"] for p in products] == list(range(200))
    assert orders
    ids = {p["product_id"] for p in products}
    assert {o["product_id"] for o in orders} <= ids and {o["gift_id"] for o in orders} <= ids
    assert len({o["order_id"] for o in orders}) == len(orders)
    # the order's price is the product's price as created
    price = {p["product_id"]: p["price"] for p in products}
    assert all(o["price"] == price[o["product_id"]] for o in orders)
    # a gift is picked in proportion to the product's weight: weight 0 is never picked
    weight = {p["product_id"]: p["weight"] for p in products}
    assert all(weight[o["gift_id"]] > 0 for o in orders)


def test_zipf_picks_follow_their_probabilities():
    world = World(1000, 1, 0, seed=1)
    model = DataOnlineGenerator(["s"], "s", lambda: object(), 4000, 1000, 1)
    picked: List[int] = []

    def pick(subject: Any, transition: Any) -> bool:
        picked.append(world.pick("items", zipf=1.2).index)
        return True

    model.add_transition("t", "s", "s", 100, pick)
    world.add_entities("items", lambda index: index, 10)
    world.add_population("people", model)
    world.start()
    assert len(picked) == 4000
    weights = [1 / (j + 1) ** 1.2 for j in range(10)]
    total = sum(weights)
    counts = Counter(picked)
    chi2 = sum(
        (counts[j] - 4000 * w / total) ** 2 / (4000 * w / total) for j, w in enumerate(weights)
    )
    assert chi2 < 48.3  # chi-square, 9 degrees of freedom, p = 1e-6


def test_a_reference_reads_the_subject_as_created_not_as_it_is_now():
    world = World(1000, 50, 0, seed=2)
    model = DataOnlineGenerator(["s"], "s", lambda: None, 20, 1000, 50)
    seen: List[Any] = []

    class Account:
        def __init__(self, index: int) -> None:
            self.index = index
            self.balance = model.random.randint(0, 10**9)

    model.subject_factory = lambda index: Account(index)

    def act(subject: Any, transition: Any) -> bool:
        subject.balance += 1
        other = world.pick("accounts")
        seen.append((other.index, other.balance))
        return True

    model.add_transition("t", "s", "s", 50, act)
    world.add_population("accounts", model)
    created: Dict[int, int] = {}
    world.start()
    for index, balance in seen:
        created.setdefault(index, balance)
        assert created[index] == balance  # always the balance it was created with
    live = {a.index: a.balance for a in world.subjects}
    assert any(live[i] != b for i, b in created.items())


def test_the_errors_name_what_is_wrong():
    world = World(1000, 10, 0, seed=1)
    a = DataOnlineGenerator(["idle"], "idle", lambda: None, 3, 1000, 10)
    b = DataOnlineGenerator(["idle"], "idle", lambda: None, 3, 1000, 10)
    world.add_population("alpha", a)
    with pytest.raises(
        ConfigurationError, match="state 'idle' is in populations 'alpha' and 'beta'"
    ):
        world.add_population("beta", b)
    with pytest.raises(ConfigurationError, match="did you mean 'alpha'"):
        world.pick("alpah")
    with pytest.raises(ConfigurationError, match="send\\(\\) is for actions"):
        world.send(world.ref("alpha", 0), "hello")
    slow = DataOnlineGenerator(["x"], "x", lambda: None, 3, 500, 10)
    with pytest.raises(ConfigurationError, match="tick_ms=500"):
        world.add_population("gamma", slow)
    with pytest.raises(ConfigurationError, match="a world's transitions belong to its populations"):
        world.add_transition("t", "idle", "idle", 1)


def test_sending_to_a_population_without_a_receive_handler_names_it():
    world = World(1000, 10, 0, seed=1)
    model = DataOnlineGenerator(["s"], "s", lambda: None, 3, 1000, 10)
    model.add_transition("poke", "s", "s", 100, lambda s, t: world.send(world.ref("p", 0)))
    world.add_population("p", model)
    sink = InMemorySink()
    model.transitions[0].event_sinks.append(sink)
    with pytest.raises(ConfigurationError, match="population 'p' has no receive handler"):
        world.start()
    assert sink.closed == 1  # the sinks were closed all the same


# -- sharded ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shards", [2, 3, 7])
def test_payments_over_shards_write_the_lines_of_one_process(tmp_path, shards):
    single = tmp_path / "single"
    single.mkdir()
    world_models.payments(str(single), users=70, ticks=100, seed=9).start()
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    import functools

    summary = run_sharded(
        functools.partial(world_models.payments, str(sharded), 70, 100, 9), shards=shards
    )
    for stem in ("users", "moves", "received"):
        assert multiset(lines(sharded, stem)) == multiset(lines(single, stem)), stem
    assert summary.messages["sent"] == summary.messages["delivered"] > 0


def test_shop_over_two_shards_writes_the_lines_of_one_process(tmp_path):
    import functools

    single = tmp_path / "single"
    single.mkdir()
    world_models.shop(str(single), 40, 100, 100, 4).start()
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    run_sharded(functools.partial(world_models.shop, str(sharded), 40, 100, 100, 4), shards=2)
    for stem in ("products", "customers", "orders"):
        assert multiset(lines(sharded, stem)) == multiset(lines(single, stem)), stem
    # the rows are written once, by shard 0
    assert len(lines(sharded, "products")) == 100 and len(lines(sharded, "customers")) == 40


@pytest.fixture(scope="module")
def roomy_cluster():
    """A LocalCluster of two worker processes with four threads each: room for seven shards
    that run at once."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=4, processes=True, dashboard_address=":0"
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.mark.parametrize("shards", [2, 3, 7])
def test_payments_on_dask_write_the_lines_of_one_process(tmp_path, roomy_cluster, shards):
    import functools

    single = tmp_path / "single"
    single.mkdir()
    world_models.payments(str(single), 50, 60, 13, 0.2).start()
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    summary = run_sharded(
        functools.partial(world_models.payments, str(sharded), 50, 60, 13, 0.2),
        shards=shards,
        backend="dask",
        address=roomy_cluster,
    )
    for stem in ("users", "moves", "received"):
        assert multiset(lines(sharded, stem)) == multiset(lines(single, stem)), stem
    assert summary.messages["sent"] == summary.messages["delivered"] > 0


def test_a_dask_cluster_without_room_for_every_shard_is_refused_before_any_line(tmp_path):
    import functools

    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0"
    )
    try:
        with pytest.raises(ConfigurationError, match="has 2 worker threads: give it at least 3"):
            run_sharded(
                functools.partial(world_models.payments, str(tmp_path), 30, 20, 1),
                shards=3,
                backend="dask",
                address=cluster.scheduler_address,
            )
    finally:
        cluster.close()
    assert list(tmp_path.iterdir()) == []


def test_the_example_of_the_populations_page_runs_and_delivers_every_message(capsys):
    import re

    page = (Path(__file__).resolve().parents[2] / "doc" / "populations.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", page, re.S)
    namespace: Dict[str, Any] = {}
    exec(compile(block, "doc/populations.md", "exec"), namespace)
    summary = namespace["summary"]
    assert summary.messages["sent"] == summary.messages["delivered"] > 1000
    assert len(namespace["received"].events) == summary.messages["delivered"]
    balances = sum(u.balance for u in namespace["world"].subjects)
    assert summary.messages["undelivered"] == 0 and balances > 0


def test_two_moving_populations_give_the_draws_of_one_in_both_loops():
    """Each population starts in its own initial state, scheduled by range: a subject's moves
    are those the same machine gives it at its global index, in the C loop and in Python."""
    probe = textwrap.dedent(
        """
        from doge_datagen import DataOnlineGenerator, InMemorySink, World

        sink = InMemorySink(lambda ts, s, t: s)

        def machine(suffix, n, offset):
            m = DataOnlineGenerator(
                ["a" + suffix, "b" + suffix], "a" + suffix, lambda i: i + offset, n, 1000, 300
            )
            m.add_transition("go", "a" + suffix, "b" + suffix, 3, None, [sink])
            m.add_transition("back", "b" + suffix, "a" + suffix, 5, None, [sink])
            return m

        world = World(1000, 300, 0, seed=4)
        world.add_population("first", machine("1", 37, 0))
        world.add_population("second", machine("2", 45, 37))
        world.start()
        got = [(e.timestamp, e.value, e.trigger) for e in sink.events]
        states = world.subject_states()
        sink.events.clear()
        one = machine("1", 82, 0)
        one.seed = 4
        one.start()
        ref = [(e.timestamp, e.value, e.trigger) for e in sink.events]
        print(len(got), got == ref, states[:2], states[40:42])
        """
    )
    seen = output_by_pure_python(probe, ["0", "1"])
    assert seen["0"] == seen["1"]
    count, same = seen["0"].split()[:2]
    assert int(count) > 500 and same == "True"
    assert "2'" in seen["0"].split("] [")[1]  # the second population's states are its own


def test_arrivals_join_the_world_with_their_rows_and_receive_messages(tmp_path):
    world = world_models.payments(str(tmp_path), users=40, ticks=300, seed=21, arrivals=0.2)
    summary = world.start()
    rows = lines(tmp_path, "users")
    received = lines(tmp_path, "received")
    assert summary.arrivals > 30 and len(rows) == 40 + summary.arrivals
    assert [r["user"] for r in rows] == list(range(40 + summary.arrivals))
    # an arrival's row is stamped with its tick; later arrivals get later indices
    late = [r for r in rows if r["user"] >= 40]
    assert all(r["ts"] > 0 for r in late) and late == sorted(late, key=lambda r: r["ts"])
    arrived_at = {r["user"]: r["ts"] for r in late}
    # arrivals are picked and paid, only after the tick they arrived at
    paid = [r for r in received if r["user"] in arrived_at]
    assert paid and all(r["sent_at"] * 60_000 > arrived_at[r["user"]] for r in paid)
    assert summary.messages["sent"] == summary.messages["delivered"]
    closed = [s for s in world.subject_states() if s == "closed"]
    assert closed  # and they leave through a final state


@pytest.mark.parametrize("shards", [2, 3, 7])
def test_a_world_with_arrivals_over_shards_writes_the_lines_of_one_process(tmp_path, shards):
    import functools

    single = tmp_path / "single"
    single.mkdir()
    world_models.payments(str(single), 50, 150, 17, 0.3).start()
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    summary = run_sharded(
        functools.partial(world_models.payments, str(sharded), 50, 150, 17, 0.3), shards=shards
    )
    for stem in ("users", "moves", "received"):
        assert multiset(lines(sharded, stem)) == multiset(lines(single, stem)), stem
    assert summary.arrivals > 20


@pytest.mark.parametrize("backend", ["processes", "dask"])
def test_a_failing_shard_of_a_world_fails_the_run_by_name_and_nothing_hangs(tmp_path, backend):
    import functools

    from doge_datagen.errors import ShardError

    build = functools.partial(world_models.payments_failing, str(tmp_path), 50, 40)
    options: Dict[str, Any] = {"backend": backend}
    if backend == "dask":
        options["address"] = None
    with pytest.raises(ShardError, match="user 50 cannot transfer") as caught:
        run_sharded(build, shards=3, **options)
    assert caught.value.shard == 2  # users 40 .. 59
    # every shard's sinks were closed: each part holds whole lines up to where it stopped
    for path in glob.glob(str(tmp_path / "moves-*.jsonl")):
        for line in Path(path).read_text().splitlines():
            json.loads(line)
    assert len(glob.glob(str(tmp_path / "moves-*.jsonl"))) == 3
