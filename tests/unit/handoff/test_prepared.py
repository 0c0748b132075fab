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
        repo.insert_transition(conn, B, from_state="bot", to_state="queued",
                               event="handoff_requested", actor="bot", reason="投诉" * 200,
                               now=NOW, handle_seconds=None)
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
    ("_LAST_BORROWER_SEQ", {"session_key": A}),
    ("_LAST_BORROWER_SEQ", {"session_key": B}),
    ("_TRANSITIONS_OF", {"session_key": B}),
])
def test_rows_are_the_ones_sqlalchemy_returns(store: Store, name: str, params: dict) -> None:
    fast, slow = both(store, getattr(repo, name), params)
    assert fast == slow
    if name in ("_SESSION_BY_ID", "_MESSAGES_SINCE", "_QUEUED_SESSIONS", "_LAST_BORROWER_TEXT",
                "_AGENT", "_ACTIVE_AGENTS", "_LAST_BORROWER_SEQ", "_TRANSITIONS_OF"):
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


def _raw(conn: object, sql: str, *params: object) -> list[tuple]:
    return conn.connection.dbapi_connection.execute(sql, params).fetchall()  # type: ignore[attr-defined]


def _twin_sessions(conn: object, ids: tuple[str, str]) -> None:
    """Two identical queued sessions: one changed by the driver path, one by SQLAlchemy."""
    for sid in ids:
        repo.insert_session(conn, sid, "user-9", NOW)  # type: ignore[arg-type]
        repo.update_session(conn, sid, 1, NOW, state="queued", skill="general",  # type: ignore[arg-type]
                            waiting_since=NOW, requeued_front=True)


def test_a_hand_offs_writes_store_what_sqlalchemy_stores(store: Store) -> None:
    """Each statement a hand-off writes on the driver against the statement it replaced,
    run by SQLAlchemy on a twin row: the same bytes in every column."""
    from sqlalchemy import and_, update

    from handoff.store.schema import messages, sessions

    later = NOW + timedelta(minutes=3, microseconds=7)
    c, d = "c" * 20, "d" * 20
    with store.write() as conn:
        _twin_sessions(conn, (c, d))
        # a state change with several columns, JSON and NULLs among them
        repo.update_session(conn, c, 2, later, state="assigned", agent_id="gina",
                            slots={"amount": 1.5, "名": None}, waiting_since=None,
                            claimed_at=later)
        conn.execute(update(sessions).where(and_(sessions.c.id == d, sessions.c.version == 2))
                     .values(state="assigned", agent_id="gina", slots={"amount": 1.5, "名": None},
                             waiting_since=None, claimed_at=later, version=3, updated_at=later))
        fast, slow = _raw(conn, "SELECT * FROM sessions WHERE id IN (?, ?) ORDER BY id", c, d)
        assert fast[1:] == slow[1:]
        # the claim (needs a queued row of the right version)
        twins = ("e" * 20, "f" * 20)
        _twin_sessions(conn, twins)
        assert repo.claim_session(conn, twins[0], "gina", 2, later) is True
        conn.execute(update(sessions).where(and_(
            sessions.c.id == twins[1], sessions.c.state == "queued", sessions.c.version == 2))
            .values(state="assigned", agent_id="gina", claimed_at=later, requeued_front=False,
                    version=3, updated_at=later))
        fast, slow = _raw(conn, "SELECT * FROM sessions WHERE id IN (?, ?) ORDER BY id", *twins)
        assert fast[1:] == slow[1:] and fast[2] == "assigned"
        assert repo.claim_session(conn, twins[0], "gina", 2, later) is False  # stale version
        # the intent of the message that triggered the hand-off
        assert repo.set_message_intent(conn, A, 3, "complaint", 0.875) is True
        assert repo.set_message_intent(conn, A, 2, "complaint", 0.875) is False  # a bot's
        conn.execute(update(messages).where(and_(messages.c.session_id == A, messages.c.seq == 1,
                                                 messages.c.sender == "borrower"))
                     .values(intent="complaint", confidence=0.875))
        first, third = _raw(conn, "SELECT intent, confidence FROM messages WHERE session_id = ? "
                                  "AND sender = 'borrower' ORDER BY seq", A)
        assert first == third == ("complaint", 0.875)
        # the audit trail: the same row, the long reason cut the same way
        repo.insert_transition(conn, d, from_state="queued", to_state="assigned",
                               event="claimed", actor="gina", reason="原因" * 200, now=later,
                               handle_seconds=12.5)
        conn.execute(repo._INSERT_TRANSITION.statement, dict(
            session_id=c, from_state="queued", to_state="assigned", event="claimed",
            actor="gina", reason=("原因" * 200)[:255], handle_seconds=12.5, created_at=later))
        fast, slow = _raw(conn, "SELECT * FROM transitions WHERE session_id IN (?, ?) "
                                "AND event = 'claimed' ORDER BY session_id DESC", d, c)
        assert fast[2:] == slow[2:]  # columns: id, session_id, then the rest
    with store.read() as conn:
        assert repo.last_borrower_seq(conn, A) == 3 and repo.last_borrower_seq(conn, B) is None
        assert [t.event for t in repo.transitions_of(conn, d)] == ["claimed"]


def test_reads_over_lists_answer_for_any_length(store: Store) -> None:
    with store.write() as conn:
        repo.append_message(conn, B, episode=0, sender="borrower", text="人工", now=NOW)
        repo.insert_note(conn, A, "gina", "小王", "已核实", NOW)
    with store.read() as conn:
        assert repo.last_borrower_texts(conn, [A]) == {A: "第2条"}
        assert repo.last_borrower_texts(conn, [A, B, "x" * 20]) == {A: "第2条", B: "人工"}
        assert repo.last_borrower_texts(conn, []) == {}
        assert [m.seq for m in repo.messages_of_sessions(conn, [A])] == [1, 2, 3]
        assert len(repo.messages_of_sessions(conn, [A, B])) == 4
        assert [n.text for n in repo.notes_of(conn, [B, A])] == ["已核实"]
        assert repo.notes_of(conn, [B]) == []
        assert repo.display_names(conn, ["gina", "nobody", ""]) == {"gina": "小王"}
        assert repo.display_names(conn, ["nobody"]) == {}
