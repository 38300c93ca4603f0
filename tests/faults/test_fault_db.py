"""The DB sink's connection is ended by the server in the middle of a run, again and again:
``pg_terminate_backend`` on PostgreSQL, ``KILL`` on MariaDB, in a fast and in a paced run.

The sink reconnects and writes the interrupted batch again, so the table ends up holding every
generated row exactly once, and the summary and the sink's counts say so. Only the sink's own
connections are ended: PostgreSQL finds them by their ``application_name``, MariaDB by a user
made for the test.
"""

import threading
import time
import uuid
from collections import Counter

import pytest
import sqlalchemy as sa
from support.db_fixtures import make_engine
from support.fault_tools import Background, assert_no_duplicates, banking, rows_of

from doge_datagen import DbSinkFactory, DeliveryError
from doge_datagen.demo import user_row

pytestmark = pytest.mark.slow

COLUMNS = "timestamp BIGINT, user_id BIGINT, balance BIGINT, loan_balance BIGINT, event VARCHAR(64)"


class Killer:
    """Ends the sink's connections, in a thread, each time ``every_rows`` more rows were
    written: some kills find the connection idle in the pool, others in a transaction."""

    def __init__(self, kill_once, sink, every_rows: int) -> None:
        self.kill_once = kill_once
        self.sink = sink
        self.every_rows = every_rows
        self.kills = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        last = 0
        while not self.done.wait(0.005):
            if self.sink.delivered - last >= self.every_rows:
                last = self.sink.delivered
                self.kills += self.kill_once()

    def __enter__(self) -> "Killer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join(10)


@pytest.fixture
def postgres_target(postgres_url):
    """(sink URL, admin engine, kill function, table) on PostgreSQL."""
    name = f"doge-fault-{uuid.uuid4().hex[:8]}"
    table = f"doge_fault_{uuid.uuid4().hex[:8]}"
    admin = make_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} ({COLUMNS})"))
    separator = "&" if "?" in postgres_url else "?"

    def kill() -> int:
        with admin.begin() as conn:
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name"
                    ),
                    {"name": name},
                ).fetchall()
            )

    yield f"{postgres_url}{separator}application_name={name}", admin, kill, table
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    admin.dispose()


@pytest.fixture
def mariadb_target(mariadb_url):
    """(sink URL, admin engine, kill function, table) on MariaDB, as a user of its own."""
    user = f"dogefault{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    table = f"doge_fault_{uuid.uuid4().hex[:8]}"
    admin = make_engine(mariadb_url)
    database = admin.url.database
    hosts = ("localhost", "127.0.0.1", "::1")
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} ({COLUMNS})"))
        for host in hosts:
            conn.exec_driver_sql(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")
            conn.exec_driver_sql(f"GRANT ALL ON `{database}`.* TO '{user}'@'{host}'")

    def kill() -> int:
        with admin.connect() as conn:
            ids = conn.execute(
                sa.text("SELECT id FROM information_schema.processlist WHERE user = :u"),
                {"u": user},
            ).scalars()
            killed = 0
            for connection_id in ids:
                try:
                    conn.exec_driver_sql(f"KILL {int(connection_id)}")
                    killed += 1
                except sa.exc.DBAPIError:  # it ended meanwhile
                    pass
            return killed

    url = admin.url.set(username=user, password=password).render_as_string(hide_password=False)
    yield url, admin, kill, table
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        for host in hosts:
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'{host}'")
    admin.dispose()


def prepared_batches(admin, rollback=False):
    """The sink's XA transactions the server holds prepared (rolled back if ``rollback``)."""
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        found = [row[3].decode() for row in conn.exec_driver_sql("XA RECOVER")]
        found = [xid for xid in found if xid.startswith("doge-")]
        if rollback:
            for xid in found:
                conn.exec_driver_sql(f"XA ROLLBACK '{xid}'")
    return found


@pytest.mark.parametrize("paced", [False, True], ids=["fast", "paced"])
@pytest.mark.parametrize(
    "database",
    [
        pytest.param("postgres_target", marks=pytest.mark.postgres),
        pytest.param("mariadb_target", marks=pytest.mark.mariadb),
    ],
)
def test_connection_ended_by_the_server_mid_run(database, paced, request):
    url, admin, kill, table = request.getfixturevalue(database)
    # Small batches written often: many transactions for the kills to land in.
    factory = DbSinkFactory(url, batch_size=50, flush_interval=0.02, retry_backoff=0.05)
    sink = factory.create(table, user_row)
    # A fast run of about 10,000 events, or a paced one of about four seconds.
    datagen, truth = banking([sink], subjects=4000 if paced else 10000, ticks=500, seed=5)
    with Killer(kill, sink, every_rows=300 if paced else 1500) as killer:
        run = Background(lambda: datagen.start(speed=8000 if paced else None))
        run.join(120)
    factory.close()

    events = rows_of(truth)
    with admin.begin() as conn:
        stored = [
            dict(row._mapping)
            for row in conn.execute(
                sa.text(f"SELECT timestamp, user_id, balance, loan_balance, event FROM {table}")
            )
        ]
    assert killer.kills >= 3, ("the fault did not happen", run.error)
    assert_no_duplicates(stored, table)
    if database == "mariadb_target":
        # No batch is left prepared, holding its locks (its outcome was settled, not guessed).
        assert not prepared_batches(admin, rollback=True)
    counts = run.summary.delivery[sink.name]
    if run.error is None:
        # Nothing lost, nothing twice: the table holds exactly the generated rows.
        assert Counter(map(repr, stored)) == Counter(map(repr, events))
        assert counts == {"delivered": len(events), "failed": 0}
    else:
        # The one case the sink cannot settle on its own: a connection lost during COMMIT on
        # a database that cannot be asked about it. The batch is reported, never guessed.
        assert isinstance(run.error, DeliveryError), run.error
        assert "during the COMMIT" in str(run.error) and "postgres" not in database
        pending = run.error.pending or []
        assert len(stored) in (counts["delivered"], counts["delivered"] + len(pending))
    assert counts["delivered"] + counts["failed"] == run.summary.events == len(events) > 500
    assert len(stored) >= counts["delivered"]


@pytest.mark.mariadb
def test_a_prepare_that_completes_after_the_connection_is_lost_is_not_left_behind(
    mariadb_target,
):
    """A connection lost during XA PREPARE: the server's session may still be finishing it.

    The batch's session is still alive, its PREPARE not yet done, when the sink asks about
    it. Asking at once would read "not prepared, so rolled back", write the rows again, and
    leave the late-prepared batch holding its locks (a DROP TABLE then waits for ever). The
    sink ends the session first, so what it reads is final.
    """
    import pymysql

    from doge_datagen.sinks.db import _Disconnected

    url, admin, _kill, table = mariadb_target
    address = sa.engine.make_url(url)
    factory = DbSinkFactory(url)
    sink = factory.create(table, user_row)
    sink.open()
    old = pymysql.connect(
        host=address.host, port=address.port or 3306, user=address.username,
        password=address.password, database=address.database, autocommit=True,
    )  # fmt: skip
    token = f"doge-{uuid.uuid4().hex}"
    old.cursor().execute(f"XA START '{token}'")
    old.cursor().execute(
        f"INSERT INTO {table} (timestamp, user_id, balance, loan_balance, event) "
        "VALUES (1, 2, 3, 4, 'late')"
    )
    old.cursor().execute(f"XA END '{token}'")

    def prepare_late():
        time.sleep(0.5)
        try:
            old.cursor().execute(f"XA PREPARE '{token}'")
        except pymysql.err.Error:  # the sink ended this session first
            pass
        finally:
            try:
                old.close()
            except pymysql.err.Error:
                pass

    late = threading.Thread(target=prepare_late)
    late.start()
    lost = _Disconnected(ConnectionError("lost"), "prepare", token, old.thread_id())
    try:
        known = sink._resolve_commit(lost)
        late.join(10)
        prepared = prepared_batches(admin)
        with admin.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()
    finally:
        late.join(10)
        prepared_batches(admin, rollback=True)  # never left behind, whatever the sink said
        sink.close()
        factory.close()
    assert known and lost.phase == "write"  # rolled back: the batch is to be written again
    assert token not in prepared  # and it stays rolled back
    assert rows == 0
