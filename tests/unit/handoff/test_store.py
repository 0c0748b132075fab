"""The store on temp SQLite and (when reachable) a throw-away PostgreSQL database:
idempotent client_msg_id, strictly increasing seq, and the atomic claim under a thread race."""

from __future__ import annotations

import secrets
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from handoff.errors import (
    AlreadyClaimed,
    CapacityReached,
    ConflictError,
    NotFound,
    StoreUnavailable,
)
from handoff.model import HandoffSignal
from handoff.policy import Policy
from handoff.service import HandoffService
from handoff.settings import Settings
from handoff.store import Store, nodes, repo

from .conftest import PASSWORD, FakeClock

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
THREADS = 8


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, future=True, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any driver/network failure means "not reachable"
        return f"PostgreSQL at 127.0.0.1:5432 is unreachable: {exc.__class__.__name__}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    reason = _pg_available()
    if reason:
        pytest.skip(reason)
    name = f"handoff_test_{secrets.token_hex(6)}"
    admin = create_engine(PG_ADMIN_URL, future=True, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
            ), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'race.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


def _queued_session(store: Store, sid: str = "s" * 20) -> None:
    with store.write() as conn:
        repo.insert_session(conn, sid, "user-1", NOW)
        repo.update_session(conn, sid, 1, NOW, state="queued", skill="general",
                            routing_key="request_human", waiting_since=NOW)


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    store.dispose()


def test_sqlite_writes_keep_one_connection_and_take_the_write_lock(tmp_path: Path) -> None:
    """Writes reuse one kept connection; each still begins IMMEDIATE (another process cannot
    write meanwhile), reads begin deferred (another process can), and a failed write
    rolls back and leaves the store usable."""
    path = tmp_path / "k.sqlite"
    store = Store(f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    checkouts = []
    event.listen(store.engine.pool, "checkout", lambda *_: checkouts.append(1))
    for i in range(3):
        with store.write() as conn:
            repo.insert_session(conn, f"{i}" * 20, None, NOW)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
    assert len(checkouts) == 1  # taken from the pool once, then kept
    with store.read() as conn:
        other.execute("BEGIN IMMEDIATE")  # a reader holds no write lock
        other.execute("ROLLBACK")
        assert len(repo.queued_sessions(conn)) == 0
    with pytest.raises(ValueError), store.write() as conn:
        repo.insert_session(conn, "x" * 20, None, NOW)
        raise ValueError("a bug half-way")
    with pytest.raises(IntegrityError), store.write() as conn:  # a driver error: reconnects
        repo.insert_session(conn, "y" * 20, None, NOW)
        repo.insert_session(conn, "0" * 20, None, NOW)
    with store.write() as conn:
        repo.insert_session(conn, "z" * 20, None, NOW)
    with store.read() as conn:
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM sessions ORDER BY id")]
    assert ids == ["0" * 20, "1" * 20, "2" * 20, "z" * 20]
    other.execute("BEGIN IMMEDIATE")  # nothing left holding the lock
    other.execute("ROLLBACK")
    other.close()
    store.dispose()
    assert store._writer is None


def test_a_write_lock_held_too_long_is_store_unavailable_and_the_store_recovers(
        tmp_path: Path) -> None:
    """BEGIN IMMEDIATE goes to the driver: its "database is locked" must still come out as
    StoreUnavailable (a clear error, nothing stored), and the next write must work."""
    path = tmp_path / "l.sqlite"
    store = Store(f"sqlite:///{path}")
    with store.write() as conn:
        repo.insert_session(conn, "a" * 20, None, NOW)
        conn.exec_driver_sql("PRAGMA busy_timeout=50")  # the kept writer gives up quickly
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreUnavailable), store.write() as conn:
        repo.insert_session(conn, "b" * 20, None, NOW)
    other.execute("ROLLBACK")
    other.close()
    with store.write() as conn:
        repo.insert_session(conn, "c" * 20, None, NOW)
    with store.read() as conn:
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM sessions ORDER BY id")]
    assert ids == ["a" * 20, "c" * 20]
    store.dispose()


def test_driver_transaction_carries_sqlalchemy_statements_too(tmp_path: Path) -> None:
    """write() sends BEGIN/COMMIT to the driver; a statement through SQLAlchemy inside it
    joins that transaction: both kinds commit together, roll back together, and the
    Connection is left with no transaction of its own either way."""
    store = Store(f"sqlite:///{tmp_path / 'd.sqlite'}")
    with store.write() as conn:
        repo.insert_session(conn, "a" + "0" * 19, None, NOW)
        conn.execute(text("UPDATE sessions SET unresolved_turns = 1"))  # Connection.execute
        repo.append_message(conn, "a" + "0" * 19, episode=1, sender="borrower", text="你好",
                            now=NOW)
        assert conn.in_transaction()
    assert not store._writer.in_transaction()
    with pytest.raises(ValueError), store.write() as conn:
        repo.append_message(conn, "a" + "0" * 19, episode=1, sender="borrower", text="二",
                            now=NOW)
        conn.execute(text("UPDATE sessions SET unresolved_turns = 5"))
        raise ValueError("a bug half-way")
    assert not store._writer.in_transaction()
    with store.write() as conn:  # only prepared statements: SQLAlchemy never begins
        repo.append_message(conn, "a" + "0" * 19, episode=1, sender="borrower", text="三",
                            now=NOW)
        assert not conn.in_transaction()
    with store.read() as conn:
        texts = [r[0] for r in conn.exec_driver_sql("SELECT text FROM messages ORDER BY seq")]
        turns = conn.exec_driver_sql("SELECT unresolved_turns FROM sessions").scalar()
    assert texts == ["你好", "三"] and turns == 1
    store.dispose()


def test_a_failed_commit_is_sqlalchemy_error_and_nothing_is_kept(tmp_path: Path) -> None:
    """COMMIT goes to the driver too: when it fails (here a deferred foreign key) the error
    is SQLAlchemy's IntegrityError, as through SQLAlchemy, nothing of the transaction is
    kept, and the next write works."""
    path = tmp_path / "c.sqlite"
    store = Store(f"sqlite:///{path}")
    with store.write() as conn:
        conn.exec_driver_sql("CREATE TABLE child (id INTEGER PRIMARY KEY, parent TEXT "
                             "REFERENCES sessions(id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(IntegrityError), store.write() as conn:
        repo.insert_session(conn, "p" * 20, None, NOW)
        conn.connection.dbapi_connection.execute("INSERT INTO child (parent) VALUES ('none')")
    with store.write() as conn:
        repo.insert_session(conn, "q" * 20, None, NOW)
    with store.read() as conn:
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM sessions ORDER BY id")]
        children = conn.exec_driver_sql("SELECT count(*) FROM child").scalar()
    assert ids == ["q" * 20] and children == 0
    store.dispose()


@pytest.mark.parametrize("through_sqlalchemy", [True, False],
                         ids=["sqlalchemy-began", "driver-only"])
def test_a_rollback_that_fails_drops_the_connection_and_the_next_write_works(
        tmp_path: Path, through_sqlalchemy: bool) -> None:
    """The driver connection dies inside a write (closed here), so the rollback fails too:
    that surfaces as the connection lost (StoreUnavailable, with the bug that caused it in the
    chain) and the kept connection is dropped, not kept with a transaction the next BEGIN
    would trip over."""
    store = Store(f"sqlite:///{tmp_path / 'r.sqlite'}")
    with store.write() as conn:
        repo.insert_session(conn, "a" * 20, None, NOW)
    broken = store._writer
    with pytest.raises(StoreUnavailable) as caught, store.write() as conn:
        repo.insert_session(conn, "b" * 20, None, NOW)
        if through_sqlalchemy:  # SQLAlchemy's own transaction is open too
            conn.execute(text("UPDATE sessions SET unresolved_turns = 1"))
        conn.connection.dbapi_connection.close()
        raise ValueError("a bug half-way")
    chain: list[BaseException] = []
    err: BaseException | None = caught.value
    while err is not None:
        chain.append(err)
        err = err.__cause__ or err.__context__
    assert any(isinstance(e, DBAPIError) for e in chain)
    assert isinstance(chain[-1], ValueError)  # the bug is still there to be read
    assert store._writer is None
    with store.write() as conn:
        repo.insert_session(conn, "c" * 20, None, NOW)
    assert store._writer is not broken
    with store.read() as conn:
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM sessions ORDER BY id")]
    assert ids == ["a" * 20, "c" * 20]
    store.dispose()


def test_a_statement_on_a_lost_connection_is_the_store_unavailable(tmp_path: Path) -> None:
    """A prepared statement (run on the driver) that finds its connection gone is judged by
    the dialect as SQLAlchemy judges its own: a lost connection, so StoreUnavailable (what the
    flows retry), and the next write gets a fresh connection."""
    store = Store(f"sqlite:///{tmp_path / 'l.sqlite'}")
    with store.write() as conn:
        repo.insert_session(conn, "a" * 20, None, NOW)
    with pytest.raises(StoreUnavailable), store.write() as conn:
        conn.connection.dbapi_connection.close()
        repo.append_message(conn, "a" * 20, episode=1, sender="borrower", text="你好", now=NOW)
    assert store._writer is None
    with store.write() as conn:
        repo.append_message(conn, "a" * 20, episode=1, sender="borrower", text="再来", now=NOW)
    with store.read() as conn:
        texts = [r[0] for r in conn.exec_driver_sql("SELECT text FROM messages")]
    assert texts == ["再来"]
    store.dispose()


def test_times_come_back_aware_utc(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 't.sqlite'}")
    with store.write() as conn:
        repo.insert_session(conn, "t" * 20, None, NOW)
    with store.read() as conn:
        row = repo.require_session(conn, "t" * 20)
    assert row.created_at == NOW and row.created_at.tzinfo is not None
    store.dispose()


def test_client_msg_id_is_unique_per_session(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'm.sqlite'}")
    with store.write() as conn:
        repo.insert_session(conn, "a" * 20, None, NOW)
        repo.insert_session(conn, "b" * 20, None, NOW)
        repo.append_message(conn, "a" * 20, episode=0, sender="borrower", text="hi", now=NOW,
                            client_msg_id="c1")
        # the same client id in another session is a different message
        repo.append_message(conn, "b" * 20, episode=0, sender="borrower", text="hi", now=NOW,
                            client_msg_id="c1")
    with pytest.raises(ConflictError), store.write() as conn:
        repo.append_message(conn, "a" * 20, episode=0, sender="borrower", text="again",
                            now=NOW, client_msg_id="c1")
    with store.read() as conn:
        # nothing half-stored: the failed transaction did not bump the session's seq either
        assert [m.text for m in repo.messages_since(conn, "a" * 20, 0)] == ["hi"]
        assert repo.require_session(conn, "a" * 20).last_seq == 1
    store.dispose()


def _race(n: int, work: Callable[[int], object]) -> tuple[list[object], list[BaseException]]:
    barrier = threading.Barrier(n)
    results: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            value = work(i)
            with lock:
                results.append(value)
        except BaseException as exc:  # collected and asserted on by the caller
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


@pytest.mark.timeout(120)
def test_seq_and_pending_turns_one_statement_each(db_url: str) -> None:
    """The RETURNING bump and the one-statement settle of the oldest pending turn, on both
    databases: seqs count per session, an unknown session is NotFound and stores nothing."""
    store = Store(db_url)
    a, b = "a" * 20, "b" * 20
    with store.write() as conn:
        for sid in (a, b):
            repo.insert_session(conn, sid, None, NOW)
        assert [repo.next_seq(conn, a) for _ in range(3)] == [1, 2, 3]
        assert repo.next_seq(conn, b) == 1
        for seq in (3, 1, 2):
            nodes.add_pending_turn(conn, "node-1", a, seq, f"t{seq}", None, NOW)
        nodes.add_pending_turn(conn, "node-1", b, 1, "other", None, NOW)
    with pytest.raises(NotFound), store.write() as conn:
        repo.next_seq(conn, "z" * 20)
    left = []
    for _ in range(4):
        with store.write() as conn:
            nodes.resolve_oldest_turn(conn, a)  # the fourth finds nothing to settle
            left.append(sorted((r.session_id[0], r.seq) for r in nodes.adopt_turns(
                conn, "node-1", "node-1")))
    assert left == [[("a", 2), ("a", 3), ("b", 1)], [("a", 3), ("b", 1)], [("b", 1)],
                    [("b", 1)]]
    with store.read() as conn:
        assert repo.get_session(conn, "z" * 20) is None
    store.dispose()


def test_seq_without_returning_on_an_old_sqlite(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite before 3.35 has no RETURNING: the counter is bumped, then read."""
    monkeypatch.setattr(repo, "_SQLITE_RETURNING", False)
    store = Store(f"sqlite:///{tmp_path / 'old.sqlite'}")
    with store.write() as conn:
        repo.insert_session(conn, "a" * 20, None, NOW)
        assert [repo.next_seq(conn, "a" * 20) for _ in range(3)] == [1, 2, 3]
    with pytest.raises(NotFound), store.write() as conn:
        repo.next_seq(conn, "z" * 20)
    store.dispose()


def test_conditional_update_claim_has_one_winner(db_url: str) -> None:
    """Every thread read the same version before racing; only one UPDATE may match."""
    store = Store(db_url)
    sid = "r" * 20
    _queued_session(store, sid)
    with store.read() as conn:
        version = repo.require_session(conn, sid).version

    def claim(i: int) -> bool:
        with store.write() as conn:
            return repo.claim_session(conn, sid, f"agent{i}", version, NOW)

    results, errors = _race(THREADS, claim)
    assert errors == []
    assert sorted(bool(r) for r in results) == [False] * (THREADS - 1) + [True]
    with store.read() as conn:
        row = repo.require_session(conn, sid)
    assert row.state == "assigned" and row.agent_id.startswith("agent")
    store.dispose()


@pytest.mark.timeout(180)
def test_service_claim_race_and_concurrent_seq(db_url: str, tmp_path: Path,
                                               policy: Policy) -> None:
    settings = Settings.from_env({
        "HANDOFF_VAR_DIR": str(tmp_path / "var"), "HANDOFF_DB_URL": db_url,
        "HANDOFF_BORROWER_RATE": "1000/60",
    })
    store = Store(settings.db_url)
    service = HandoffService(store, policy, settings, FakeClock())
    for i in range(THREADS):
        service.create_agent(f"agent{i}", f"坐席{i}", PASSWORD, ["general"])
        service.agent_connected(f"agent{i}")
    sid = service.open_session(None, "user-1").session.session_id

    # concurrent borrower messages: every seq used exactly once, in order
    def send(i: int) -> int:
        return service.record_borrower_message(sid, f"消息{i}", f"c{i}").message.seq

    seqs, errors = _race(THREADS, send)
    assert errors == []
    assert sorted(int(str(s)) for s in seqs) == list(range(1, THREADS + 1))

    service.request_handoff(sid, HandoffSignal("sensitive_intent", "request_human"), "bot")

    def claim(i: int) -> str:
        return service.claim(f"agent{i}", sid).session.agent_id or ""

    winners, errors = _race(THREADS, claim)
    assert len(winners) == 1, errors
    assert len(errors) == THREADS - 1
    assert all(isinstance(e, AlreadyClaimed) for e in errors), errors
    assert service.session(sid).agent_id == winners[0]
    with store.read() as conn:
        claims = [t for t in repo.transitions_of(conn, sid) if t.event == "claimed"]
    assert len(claims) == 1
    store.dispose()


@pytest.mark.timeout(180)
def test_one_agent_claiming_many_respects_capacity(db_url: str, tmp_path: Path,
                                                    policy: Policy) -> None:
    settings = Settings.from_env({"HANDOFF_VAR_DIR": str(tmp_path / "var"),
                                  "HANDOFF_DB_URL": db_url})
    store = Store(settings.db_url)
    service = HandoffService(store, policy, settings, FakeClock())
    service.create_agent("solo", "小单", PASSWORD, ["general"], max_sessions=1)
    service.agent_connected("solo")
    sids = []
    for i in range(4):
        sid = service.open_session(None, f"user-{i}").session.session_id
        service.request_handoff(sid, HandoffSignal("unresolved_turns"), "bot")
        sids.append(sid)

    results, errors = _race(4, lambda i: service.claim("solo", sids[i]))
    assert len(results) == 1
    assert len(errors) == 3 and all(isinstance(e, CapacityReached) for e in errors), errors
    store.dispose()


def test_full_flow_on_postgres(pg_url: str, tmp_path: Path, policy: Policy) -> None:
    """Types (JSON, booleans, aware times) and savepoints behave on PostgreSQL as on SQLite."""
    settings = Settings.from_env({"HANDOFF_VAR_DIR": str(tmp_path / "var"),
                                  "HANDOFF_DB_URL": pg_url})
    store = Store(settings.db_url)
    clock = FakeClock()
    service = HandoffService(store, policy, settings, clock)
    service.create_agent("wang", "小王", PASSWORD, ["general", "fraud"])
    service.create_agent("boss", "主管", PASSWORD, [], role="supervisor")
    service.agent_connected("wang")
    sid = service.open_session(None, "user-1").session.session_id
    service.record_borrower_message(sid, "有人盗刷13812345678", "c1")
    assert service.record_borrower_message(sid, "有人盗刷13812345678", "c1").route == "duplicate"
    service.accept_bot_replies(sid, [{"custom": {"handoff": {
        "reason": "sensitive_intent", "intent": "report_fraud", "confidence": 0.9,
        "slots": {"amount": 50000}}}}])
    transcript = service.claim("wang", sid).transcript
    assert transcript.slots == {"amount": 50000}
    assert transcript.messages[0].text == "有人盗刷138****5678"
    assert transcript.session.waiting_since == clock.now
    service.note("wang", sid, "已核实")
    clock.advance(120)
    service.close("wang", sid, "resolved")
    service.rate(sid, 4, "不错")
    with pytest.raises(ConflictError):
        service.rate(sid, 5)
    start = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
    service.book_callback(sid, "13812345678", start, start.replace(hour=3))
    assert service.list_callbacks("boss")[0].phone == "13812345678"
    assert service.login("wang", PASSWORD).agent.skills == ("fraud", "general")
    with store.read() as conn:
        assert repo.recent_handle_seconds(conn) == [120.0]
    store.dispose()



def test_an_unreachable_database_is_store_unavailable() -> None:
    """Connection failures become StoreUnavailable: a clear error for the client, and a
    HandoffError the transport already knows how to send (docs/gateway.md, "Faults")."""
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = Store(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/none", create_tables=False)
    for transaction in (store.write, store.read):
        with pytest.raises(StoreUnavailable) as caught, transaction() as conn:
            conn.exec_driver_sql("SELECT 1")
        assert caught.value.to_dict()["code"] == "store_unavailable"
    store.dispose()
