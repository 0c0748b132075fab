"""Prepared statements (handoff/store/prepared.py) against SQLAlchemy's own execution.

The driver path must be indistinguishable from `Connection.execute`: the same rows with the
same Python values (aware UTC datetimes, JSON, booleans), the same bytes stored, the same
exception classes, and no parameter values in error texts.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from handoff.store import Store, nodes, repo
from handoff.store.prepared import Prepared

NOW = datetime(2026, 12, 5, 2, 0, 0, 250000, tzinfo=timezone.utc)
A, B = "a" * 20, "b" * 20


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'p.sqlite'}")
    with s.write() as conn:
        repo.insert_session(conn, A, "user-1", NOW)
        repo.insert_session(conn, B, None, NOW)
        repo.update_session(conn, B, 1, NOW + timedelta(seconds=1), state="queued",
                            skill="general", slots={"amount": 50000, "手机": "138"},
                            waiting_since=NOW, requeued_front=True)
        for i, (sender, payload) in enumerate([("borrower", None),
                                               ("bot", {"buttons": [{"title": "信用贷"}]}),
                                               ("borrower", None)]):
            repo.append_message(conn, A, episode=0, sender=sender, text=f"第{i}条", now=NOW,
                                payload=payload, client_msg_id=f"c{i}")
        nodes.add_pending_turn(conn, "node-1", A, 3, "第2条", {"seq": 3, "k": [1, 2]}, NOW)
        repo.insert_agent(conn, username="gina", display_name="小王", password_hash="x",
                          skills=["general", "fraud"], role="agent", max_sessions=3, now=NOW)
    return s


def both(store: Store, prepared: Prepared, params: dict) -> tuple[list, list]:
    with store.read() as conn:
        fast = [tuple(r) for r in prepared.all(conn, params)]
        slow = [tuple(r) for r in conn.execute(prepared.statement, params)]
    return fast, slow


@pytest.mark.parametrize("name, params", [
    ("_SESSION_BY_ID", {"session_key": B}),
    ("_SESSION_BY_ID_FOR_UPDATE", {"session_key": A}),
    ("_QUEUED_SESSIONS", {}),
    ("_ASSIGNED_SESSIONS", {}),
    ("_ACTIVE_AGENTS", {}),
    ("_RECENT_HANDLE_SECONDS", {"limit_key": 50}),
    ("_MESSAGES_SINCE", {"session_key": A, "seq_key": 0}),
    ("_MESSAGES_SINCE_LIMITED", {"session_key": A, "seq_key": 1, "limit_key": 1}),
    ("_LAST_MESSAGES", {"session_key": A, "limit_key": 2}),
    ("_CLIENT_MESSAGE", {"session_key": A, "client_key": "c1"}),
    ("_LAST_BORROWER_TEXT", {"session_key": A}),
    ("_AGENT", {"username_key": "gina"}),
    ("_AGENT_FOR_UPDATE", {"username_key": "gina"}),
])
def test_rows_are_the_ones_sqlalchemy_returns(store: Store, name: str, params: dict) -> None:
    fast, slow = both(store, getattr(repo, name), params)
    assert fast == slow
    if name in ("_SESSION_BY_ID", "_MESSAGES_SINCE", "_QUEUED_SESSIONS", "_LAST_BORROWER_TEXT",
                "_AGENT", "_ACTIVE_AGENTS"):
        assert fast  # the comparison is not of two empty lists


def test_last_borrower_text_is_the_newest_borrower_message(store: Store) -> None:
    with store.read() as conn:
        assert repo.last_borrower_text(conn, A) == "第2条"
        assert repo.last_borrower_text(conn, B) is None
        assert repo.last_borrower_texts(conn, [A, B]) == {A: "第2条"}


def test_row_values_keep_their_types(store: Store) -> None:
    with store.read() as conn:
        session = repo.require_session(conn, B)
        message = repo.find_client_message(conn, A, "c1")
    assert session.waiting_since == NOW and session.waiting_since.tzinfo is not None
    assert session.requeued_front is True and session.slots == {"amount": 50000, "手机": "138"}
    assert message is not None and message.payload == {"buttons": [{"title": "信用贷"}]}
    assert message.created_at == NOW


def test_stored_bytes_are_the_ones_sqlalchemy_stores(store: Store) -> None:
    values = dict(session_id=B, seq=7, episode=1, sender="bot", agent_id=None,
                  display_name=None, text="年化利率7.2%起", payload={"custom": {"x": True}},
                  intent="ask_rate", confidence=0.875, client_msg_id=None, created_at=NOW)
    with store.write() as conn:
        repo._INSERT_MESSAGE.run(conn, values)
        conn.execute(repo._INSERT_MESSAGE.statement, {**values, "seq": 8})
        raw = conn.connection.dbapi_connection.execute(
            "SELECT * FROM messages WHERE session_id = ? ORDER BY seq", (B,)).fetchall()
    fast, slow = raw
    assert (fast[2], slow[2]) == (7, 8)  # columns: id, session_id, seq, then the rest
    assert fast[1] == slow[1] and fast[3:] == slow[3:]


def test_returning_and_settling(store: Store) -> None:
    with store.write() as conn:
        assert repo.next_seq(conn, A) == 4
        assert nodes._DELETE_OLDEST_PENDING.run(conn, {"session_key": A}) == 1
        assert nodes._DELETE_OLDEST_PENDING.run(conn, {"session_key": A}) == 0


def test_driver_errors_are_sqlalchemy_errors_without_values(store: Store) -> None:
    values = dict(session_id=A, seq=9, episode=0, sender="borrower", agent_id=None,
                  display_name=None, text="身份证110101199003077777", payload=None,
                  intent=None, confidence=None, client_msg_id="c0", created_at=NOW)
    with pytest.raises(IntegrityError) as caught, store.write() as conn:
        repo._INSERT_MESSAGE.run(conn, values)
    assert "110101199003077777" not in str(caught.value)
    with store.read() as conn:  # nothing stored, and the store still works
        assert [m.seq for m in repo.messages_since(conn, A, 0)] == [1, 2, 3]


def test_a_new_session_row_is_stored_as_sqlalchemy_stores_it(store: Store) -> None:
    values = dict(id="c" * 20, identity="user-9", state="bot", episode=0, requeued_front=False,
                  unresolved_turns=0, last_seq=0, version=1, created_at=NOW, updated_at=NOW)
    with store.write() as conn:
        repo.insert_session(conn, "c" * 20, "user-9", NOW)
        conn.execute(repo._INSERT_SESSION.statement, {**values, "id": "d" * 20})
        fast, slow = conn.connection.dbapi_connection.execute(
            "SELECT * FROM sessions WHERE id IN (?, ?) ORDER BY id", ("c" * 20, "d" * 20)
        ).fetchall()
    assert (fast[0], slow[0]) == ("c" * 20, "d" * 20)
    assert fast[1:] == slow[1:]


def test_a_lost_connection_is_judged_as_sqlalchemy_judges_it(store: Store) -> None:
    with store.engine.connect() as conn:
        conn.connection.dbapi_connection.close()
        with pytest.raises(DBAPIError) as fast:
            repo._SESSION_BY_ID.first(conn, {"session_key": A})
        with pytest.raises(DBAPIError) as slow:
            conn.execute(repo._SESSION_BY_ID.statement, {"session_key": A})
    assert type(fast.value) is type(slow.value)
    assert fast.value.connection_invalidated and slow.value.connection_invalidated
