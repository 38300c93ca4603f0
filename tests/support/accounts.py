"""The accounts model of the change-event and upsert tests, a consumer's replay of a change
stream, and the current-state table those tests compare against."""

import json
from dataclasses import dataclass
from typing import Any, Dict, List

import sqlalchemy as sa

from doge_datagen import DataOnlineGenerator
from doge_datagen.sinks.registry import Records
from support.db_fixtures import Database

T0 = 1_700_000_000_000


@dataclass
class Account:
    user_id: int
    balance: int = 0
    moves: int = 0


class Accounts:
    def create(self, index: int) -> Account:
        return Account(1000 + index, balance=index * 10)


def deposit(subject: Account, transition: Any) -> bool:
    subject.balance += 7
    subject.moves += 1
    return True


def idle(subject: Account, transition: Any) -> bool:
    return True


def plain_row(timestamp: int, subject: Account, transition: Any) -> Dict[str, Any]:
    return {"ts": timestamp, "user_id": subject.user_id, "event": transition.trigger}


RECORDS = Records(row=plain_row)


def bank(sinks: List[Any], subjects: int = 40, ticks: int = 30, arrivals: Any = None, seed=3):
    """active -> active (deposit, or an idle event that changes nothing), active -> closed
    (final). ``closed`` has no way out."""
    datagen = DataOnlineGenerator(
        ["active", "dormant", "closed"], "active", Accounts(), subjects, 1000, ticks, T0, seed=seed
    )
    if arrivals is not None:
        datagen.arrivals = arrivals
    datagen.add_transition("deposit", "active", "active", 30, deposit, sinks)
    datagen.add_transition("idle", "active", "active", 20, idle, sinks)
    datagen.add_transition("sleep", "active", "dormant", 5, None, sinks)
    datagen.add_transition("wake", "dormant", "active", 20, None, sinks)
    datagen.add_transition("close", "active", "closed", 3, None, sinks)
    return datagen


def envelopes(path: Any) -> List[Dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def replay(stream: List[Dict[str, Any]]) -> Dict[Any, Dict[str, Any]]:
    """A consumer's table: each change applied in order."""
    table: Dict[Any, Dict[str, Any]] = {}
    for change in stream:
        if change["op"] == "d":
            del table[change["key"]]
        else:
            table[change["key"]] = change["after"]
    return table


def final_rows(datagen: Any, key: str = "user_id") -> Dict[Any, Dict[str, Any]]:
    """The subjects' final attributes and state, those in the final state left out."""
    run = datagen._last_run
    states = run.subject_states()
    rows = {}
    for subject, state in zip(run.subjects, states):
        if subject is None or state == "closed":
            continue
        row = {**vars(subject), "state": state}
        rows[row[key]] = row
    return rows


COLUMNS = ("user_id", "balance", "moves", "state")


def accounts_table(db: Database, primary: bool = True) -> Any:
    key = sa.Column("user_id", sa.Integer, primary_key=primary, autoincrement=False)
    return db.create_table(
        None,
        key,
        sa.Column("balance", sa.BigInteger),
        sa.Column("moves", sa.Integer),
        sa.Column("state", sa.String(32)),
    )


def table_rows(db: Database, name: str) -> Dict[Any, Dict[str, Any]]:
    names = ", ".join(db.quote(c) for c in COLUMNS)
    with db.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT {names} FROM {db.quote(name)}").fetchall()
    found = [dict(zip(COLUMNS, row)) for row in rows]
    return {row["user_id"]: row for row in found}
