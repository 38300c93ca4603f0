"""``examples/payments.yaml``: money is conserved to the unit, every transfer is sent once and
received once, and the file gives exactly the events of the same world written in Python."""

import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

import doge_datagen
from doge_datagen import DataOnlineGenerator, SubjectFactory
from doge_datagen.populations import World
from doge_datagen.sinks.memory import InMemorySink

ROOT = Path(__file__).resolve().parents[2]
PAYMENTS = ROOT / "examples" / "payments.yaml"
SINKS = ("users", "income", "spending", "sent", "received")
START = 1767571200000  # 2026-01-05T00:00:00Z, the example's timestamp_start


def _run_file(tmp_path: Path, **options: Any) -> Tuple[World, Dict[str, List[Dict[str, Any]]]]:
    urls = {name: f"jsonl:{tmp_path}/{name}.jsonl" for name in SINKS}
    world = doge_datagen.load(str(PAYMENTS), sinks=urls, **options)
    assert isinstance(world, World)
    world.start()
    rows = {
        name: [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
        for name in SINKS
    }
    return world, rows


@pytest.mark.parametrize("seed, users, ticks", [(7, 1000, 1440), (1, 40, 3000), (99, 300, 500)])
def test_money_is_conserved_and_every_transfer_is_sent_and_received_once(
    tmp_path, seed, users, ticks
):
    world, rows = _run_file(tmp_path, seed=seed, ticks=ticks, users=users)
    assert len(rows["users"]) == users
    start = sum(r["balance"] for r in rows["users"])
    income = sum(r["amount"] for r in rows["income"])
    spending = sum(r["amount"] for r in rows["spending"])
    final = sum(subject.balance for subject in world.subjects)
    assert rows["income"] and rows["spending"] and rows["sent"]
    assert final == start + income - spending
    sent = [(r["transfer_id"], r["sender"], r["receiver"], r["amount"]) for r in rows["sent"]]
    received = [
        (r["transfer_id"], r["sender"], r["receiver"], r["amount"]) for r in rows["received"]
    ]
    assert len(set(sent)) == len(sent)
    assert sorted(sent) == sorted(received)
    assert world.messages["sent"] == world.messages["delivered"] == len(sent)
    # Each is received at the tick after it was sent.
    when = {r["transfer_id"]: r["timestamp"] for r in rows["sent"]}
    assert all(r["timestamp"] == when[r["transfer_id"]] + 60_000 for r in rows["received"])
    assert all(r["sender"] != r["receiver"] for r in rows["sent"])


class _User:
    __slots__ = ("user_id", "name", "balance", "amount", "counterpart", "transfer_id")

    def __init__(self, user_id: int, name: str, balance: int) -> None:
        self.user_id = user_id
        self.name = name
        self.balance = balance
        self.amount = 0
        self.counterpart = 0
        self.transfer_id = ""


def python_payments(users: int, ticks: int, seed: int) -> Tuple[World, Dict[str, InMemorySink]]:
    """The payments example written with the Python API."""
    world = World(60_000, ticks, START, seed=seed)
    rng = world.random
    people: DataOnlineGenerator[Any] = DataOnlineGenerator(
        ["active"], "active", lambda: None, users, 60_000, ticks
    )

    class Users(SubjectFactory[Any]):
        def create(self, index: int) -> Any:
            name = world.fake.name()
            return _User(index + 1, name, rng.randint(0, 1000))

    people.subject_factory = Users()

    def money(ts: int, s: Any, t: Any) -> Dict[str, Any]:
        return {"timestamp": ts, "user_id": s.user_id, "amount": s.amount, "balance": s.balance}

    sinks = {
        "users": InMemorySink(
            lambda ts, s, t: {"user_id": s.user_id, "name": s.name, "balance": s.balance}
        ),
        "income": InMemorySink(money),
        "spending": InMemorySink(money),
        "sent": InMemorySink(
            lambda ts, s, t: {
                "timestamp": ts,
                "transfer_id": s.transfer_id,
                "sender": s.user_id,
                "receiver": s.counterpart,
                "amount": s.amount,
                "balance": s.balance,
            }  # fmt: skip
        ),
        "received": InMemorySink(
            lambda ts, s, t: {
                "timestamp": ts,
                "transfer_id": t.message.transfer_id,
                "sender": t.message.sender.key,
                "receiver": s.user_id,
                "amount": t.message.amount,
                "balance": s.balance,
            }  # fmt: skip
        ),
    }

    def income(s: Any, t: Any) -> bool:
        pay = rng.randint(1000, 3000)
        s.balance += pay
        s.amount = pay
        return True

    def spending(s: Any, t: Any) -> bool:
        cost = rng.randint(5, 200)
        if not cost <= s.balance:
            return False
        s.balance -= cost
        s.amount = cost
        return True

    def transfer(s: Any, t: Any) -> bool:
        receiver = world.pick("users")
        value = rng.randint(1, 500)
        if not (value <= s.balance and receiver.key != s.user_id):
            return False
        s.balance -= value
        s.amount = value
        s.counterpart = receiver.key
        s.transfer_id = f"{s.user_id}-{(world.timestamp - START) // 60_000}"
        world.send(receiver, "transfer", amount=value, transfer_id=s.transfer_id)
        return True

    def receive(s: Any, message: Any) -> bool:
        s.balance += message.amount
        return True

    people.add_transition("income", "active", "active", 0.2, income, [sinks["income"]])
    people.add_transition("spending", "active", "active", 2, spending, [sinks["spending"]])
    people.add_transition("transfer", "active", "active", 1, transfer, [sinks["sent"]])
    world.add_population("users", people, key="user_id", sinks=[sinks["users"]],
                         receive=receive, receive_sinks=[sinks["received"]])  # fmt: skip
    return world, sinks


@pytest.mark.parametrize("seed, users, ticks", [(7, 200, 600), (3, 50, 1500)])
def test_the_file_gives_the_events_of_the_python_world(tmp_path, seed, users, ticks):
    world, rows = _run_file(tmp_path, seed=seed, ticks=ticks, users=users)
    python, sinks = python_payments(users, ticks, seed)
    python.start()
    for name in SINKS:
        expected = [event.value for event in sinks[name].events]
        assert expected, name
        assert rows[name] == expected, name
    assert [s.balance for s in world.subjects] == [s.balance for s in python.subjects]


def test_the_command_line_runs_the_example(tmp_path, monkeypatch):
    from doge_datagen.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["run", str(PAYMENTS), "--set", "users=30", "--ticks", "200"]) == 0
    users = (tmp_path / "out" / "users.jsonl").read_text().splitlines()
    assert len(users) == 30
    assert (tmp_path / "out" / "received.jsonl").read_text()


def test_two_workers_write_the_lines_of_one_process(tmp_path):
    import subprocess
    import sys

    def run(*options: str) -> Dict[str, List[str]]:
        where = tmp_path / (options[-1] if options else "one")
        where.mkdir()
        done = subprocess.run(
            [sys.executable, "-m", "doge_datagen", "run", str(PAYMENTS), "--set", "users=200",
             "--ticks", "400", *options],
            cwd=where, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        lines: Dict[str, List[str]] = {}
        for path in (where / "out").glob("*.jsonl"):
            name = path.name.split("-")[0].split(".")[0]
            lines.setdefault(name, []).extend(path.read_text().splitlines())
        return {name: sorted(found) for name, found in lines.items()}

    one, two = run(), run("--workers", "2")
    assert sorted(one) == sorted(SINKS)
    assert all(one[name] for name in SINKS)
    assert two == one


def test_one_sink_gets_every_row_and_event_once(tmp_path):
    world, rows = _run_file(tmp_path, seed=4, ticks=300, users=60)
    one = doge_datagen.load(str(PAYMENTS), sink=f"jsonl:{tmp_path}/all.jsonl", seed=4,
                            ticks=300, users=60)  # fmt: skip
    one.start()
    lines = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    by_event: Dict[str, int] = {}
    for line in lines:
        by_event[line["event"]] = by_event.get(line["event"], 0) + 1
    assert by_event == {
        "create": len(rows["users"]),
        "income": len(rows["income"]),
        "spending": len(rows["spending"]),
        "transfer": len(rows["sent"]) + len(rows["received"]),  # sent, then received
    }
    assert {line["population"] for line in lines} == {"users"}
    assert [line["balance"] for line in lines if line["event"] == "create"] == [
        row["balance"] for row in rows["users"]
    ]


def test_graph_draws_the_transfer_message(tmp_path, monkeypatch):
    from doge_datagen.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["graph", str(PAYMENTS), "-o", "payments.dot"]) == 0
    text = (tmp_path / "payments.dot").read_text()
    edge = text[text.index("transfer (transfer)") :].split("]")[0]
    assert "dashed" in edge
    assert not (tmp_path / "out").exists()  # no sink is made to draw it
