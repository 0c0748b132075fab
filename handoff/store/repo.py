"""Queries of the gateway store. Every function takes an open Connection so the service can
compose several of them into one transaction (persist + state change + audit together).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, select, text, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from handoff.errors import ConflictError, NotFound
from handoff.model import (
    AgentView,
    CallbackView,
    MessageView,
    NoteView,
    SessionView,
    TransitionView,
)
from handoff.store.prepared import Prepared
from handoff.store.schema import agents, callbacks, csat, messages, notes, sessions, transitions

# Statements of the per-message path, built once and run through Prepared, which on SQLite
# sends them straight to the driver (handoff/store/prepared.py; measured in
# docs/benchmarks.md). Elsewhere a prebuilt statement still saves SQLAlchemy re-building and
# re-keying it on every call.
_SESSION_BY_ID = Prepared(
    select(sessions).where(sessions.c.id == bindparam("session_key")), name="session")
_SESSION_BY_ID_FOR_UPDATE = Prepared(_SESSION_BY_ID.statement.with_for_update(),
                                     name="session")
_BUMP_SEQ = (update(sessions).where(sessions.c.id == bindparam("session_key"))
             .values(last_seq=sessions.c.last_seq + 1))
_LAST_SEQ = select(sessions.c.last_seq).where(sessions.c.id == bindparam("session_key"))
# The same bump that also says the new seq: one statement instead of two per stored message.
# Plain SQL because SQLAlchemy 1.4 compiles RETURNING only for PostgreSQL; SQLite has it
# since 3.35 (checked in next_seq).
_BUMP_SEQ_RETURNING = Prepared(text(
    "UPDATE sessions SET last_seq = last_seq + 1 WHERE id = :session_key RETURNING last_seq"
).columns(sessions.c.last_seq))
_SQLITE_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)
_SESSION_COLUMNS = ("id", "identity", "state", "episode", "requeued_front", "unresolved_turns",
                    "last_seq", "version", "created_at", "updated_at")
_INSERT_SESSION = Prepared(sessions.insert(), column_keys=_SESSION_COLUMNS)
_MESSAGE_COLUMNS = ("session_id", "seq", "episode", "sender", "agent_id", "display_name", "text",
                    "payload", "intent", "confidence", "client_msg_id", "created_at")
_INSERT_MESSAGE = Prepared(messages.insert(), column_keys=_MESSAGE_COLUMNS)
_TRANSITION_COLUMNS = ("session_id", "from_state", "to_state", "event", "actor", "reason",
                       "handle_seconds", "created_at")
_INSERT_TRANSITION = Prepared(transitions.insert(), column_keys=_TRANSITION_COLUMNS)
_MESSAGES_SINCE = Prepared(select(messages)
                           .where(and_(messages.c.session_id == bindparam("session_key"),
                                       messages.c.seq > bindparam("seq_key")))
                           .order_by(messages.c.seq), name="message")
_MESSAGES_SINCE_LIMITED = Prepared(_MESSAGES_SINCE.statement.limit(
    bindparam("limit_key")), name="message")
_LAST_MESSAGES = Prepared(select(messages)
                          .where(messages.c.session_id == bindparam("session_key"))
                          .order_by(messages.c.seq.desc()).limit(bindparam("limit_key")),
                          name="message")
_CLIENT_MESSAGE = Prepared(select(messages).where(and_(
    messages.c.session_id == bindparam("session_key"),
    messages.c.client_msg_id == bindparam("client_key"),
)), name="message")
# ...and of the queue reads every hand-off and queued message makes (handoff/queue_view.py).
# What the queue's order, entries and statuses read of a waiting session, no more: every
# queue change reads them all, and whole rows (the slots JSON, four timestamps) made a
# hand-off with 1,000 waiting cost 52 / 36 ms instead of 41 / 24 (docs/benchmarks.md).
_QUEUED_SESSIONS = Prepared(select(sessions.c.id, sessions.c.routing_key, sessions.c.skill,
                                   sessions.c.waiting_since, sessions.c.updated_at,
                                   sessions.c.requeued_front, sessions.c.reason,
                                   sessions.c.intent)
                            .where(sessions.c.state == "queued"), name="queued")
_ASSIGNED_SESSIONS = Prepared(select(sessions.c.id, sessions.c.agent_id, sessions.c.claimed_at)
                              .where(sessions.c.state == "assigned")
                              .order_by(sessions.c.claimed_at, sessions.c.id), name="held")
_RECENT_HANDLE_SECONDS = Prepared(select(transitions.c.handle_seconds)
                                  .where(transitions.c.handle_seconds.is_not(None))
                                  .order_by(transitions.c.id.desc())
                                  .limit(bindparam("limit_key")), name="handled")
_LAST_BORROWER_TEXT = Prepared(
    select(messages.c.text)
    .where(and_(messages.c.session_id == bindparam("session_key"),
                messages.c.sender == "borrower"))
    .order_by(messages.c.seq.desc()).limit(1), name="text")
_AGENT = Prepared(select(agents).where(agents.c.username == bindparam("username_key")),
                  name="agent")
_AGENT_FOR_UPDATE = Prepared(_AGENT.statement.with_for_update(), name="agent")
_ACTIVE_AGENTS = Prepared(
    select(agents).where(agents.c.active.is_(True)).order_by(agents.c.id), name="agent")
# ...and of a hand-off's own writes and the agent's views of it: a session's state changes,
# the claim, the audit trail, the intent of the message that triggered it.
_CLAIM_SESSION = Prepared(
    update(sessions)
    .where(and_(sessions.c.id == bindparam("session_key"), sessions.c.state == "queued",
                sessions.c.version == bindparam("version_key")))
    .values(state="assigned", agent_id=bindparam("agent_val", type_=sessions.c.agent_id.type),
            claimed_at=bindparam("now_val", type_=sessions.c.claimed_at.type),
            requeued_front=False,
            version=bindparam("new_version_val", type_=sessions.c.version.type),
            updated_at=bindparam("now_val", type_=sessions.c.updated_at.type)))
_SESSION_UPDATES: dict[tuple[str, ...], Prepared] = {}  # one per set of columns changed
_LAST_BORROWER_SEQ = Prepared(
    select(func.max(messages.c.seq).label("seq"))
    .where(and_(messages.c.session_id == bindparam("session_key"),
                messages.c.sender == "borrower")), name="last")
_SET_MESSAGE_INTENT = Prepared(
    update(messages)
    .where(and_(messages.c.session_id == bindparam("session_key"),
                messages.c.seq == bindparam("seq_key"), messages.c.sender == "borrower"))
    .values(intent=bindparam("intent_val", type_=messages.c.intent.type),
            confidence=bindparam("confidence_val", type_=messages.c.confidence.type)))
_TRANSITIONS_OF = Prepared(
    select(transitions).where(transitions.c.session_id == bindparam("session_key"))
    .order_by(transitions.c.id), name="transition")
# Reads over a list of sessions or agents: one statement object each, with an expanding IN,
# so SQLAlchemy keys and compiles it once instead of on every call (not on the driver: the
# list's length varies).
_NEWEST_BORROWER = (
    select(messages.c.session_id, func.max(messages.c.seq).label("seq"))
    .where(and_(messages.c.session_id.in_(bindparam("ids_key", expanding=True)),
                messages.c.sender == "borrower"))
    .group_by(messages.c.session_id)
    .subquery()
)
_LAST_BORROWER_TEXTS = select(messages.c.session_id, messages.c.text).join(
    _NEWEST_BORROWER,
    and_(messages.c.session_id == _NEWEST_BORROWER.c.session_id,
         messages.c.seq == _NEWEST_BORROWER.c.seq),
)
_MESSAGES_OF_SESSIONS = (
    select(messages, sessions.c.created_at.label("session_created"))
    .join(sessions, sessions.c.id == messages.c.session_id)
    .where(messages.c.session_id.in_(bindparam("ids_key", expanding=True)))
    .order_by(sessions.c.created_at, messages.c.session_id, messages.c.seq)
)
_NOTES_OF = (select(notes).where(notes.c.session_id.in_(bindparam("ids_key", expanding=True)))
             .order_by(notes.c.id))
_DISPLAY_NAMES = select(agents.c.username, agents.c.display_name).where(
    agents.c.username.in_(bindparam("ids_key", expanding=True)))

# --- sessions ----------------------------------------------------------------------------


def get_session(conn: Connection, session_id: str, *, for_update: bool = False) -> Row | None:
    """The session row; `for_update` locks it on PostgreSQL (SQLite already holds the
    database write lock inside Store.write())."""
    query = _SESSION_BY_ID_FOR_UPDATE if for_update else _SESSION_BY_ID
    return query.first(conn, {"session_key": session_id})


def require_session(conn: Connection, session_id: str, *, for_update: bool = False) -> Row:
    row = get_session(conn, session_id, for_update=for_update)
    if row is None:
        raise unknown_session(session_id)
    return row


def unknown_session(session_id: str) -> NotFound:
    return NotFound(f"unknown session {session_id!r}", message_zh="会话不存在或已失效")


def insert_session(conn: Connection, session_id: str, identity: str | None, now: datetime) -> None:
    _INSERT_SESSION.run(conn, dict(
        id=session_id, identity=identity, state="bot", episode=0, requeued_front=False,
        unresolved_turns=0, last_seq=0, version=1, created_at=now, updated_at=now,
    ))


def update_session(
    conn: Connection, session_id: str, version: int, now: datetime, **values: Any
) -> int:
    """Update the row only if nobody changed it since `version` was read; returns the new
    version. Raises ConflictError when the row moved on (optimistic concurrency)."""
    keys = tuple(sorted(values))
    statement = _SESSION_UPDATES.get(keys)
    if statement is None:
        statement = _SESSION_UPDATES[keys] = Prepared(
            update(sessions)
            .where(and_(sessions.c.id == bindparam("session_key"),
                        sessions.c.version == bindparam("version_key")))
            .values(**{k: bindparam(f"{k}_val", type_=sessions.c[k].type) for k in keys},
                    version=bindparam("new_version_val", type_=sessions.c.version.type),
                    updated_at=bindparam("updated_at_val", type_=sessions.c.updated_at.type)))
    params = {f"{k}_val": v for k, v in values.items()}
    params.update(session_key=session_id, version_key=version, new_version_val=version + 1,
                  updated_at_val=now)
    if statement.run(conn, params) != 1:
        raise ConflictError(f"session {session_id} changed concurrently")
    return version + 1


def claim_session(
    conn: Connection, session_id: str, agent_id: str, version: int, now: datetime
) -> bool:
    """The atomic claim: one conditional UPDATE; True only for the single winner."""
    return _CLAIM_SESSION.run(conn, {
        "session_key": session_id, "version_key": version, "agent_val": agent_id,
        "now_val": now, "new_version_val": version + 1}) == 1


def queued_sessions(conn: Connection) -> list[Row]:
    """Every waiting session's id, routing, wait and hand-off reason (`_QUEUED_SESSIONS`)."""
    return _QUEUED_SESSIONS.all(conn, {})


def assigned_sessions(conn: Connection) -> list[Row]:
    """Every session a human holds (id, agent, claim time), oldest claim first."""
    return _ASSIGNED_SESSIONS.all(conn, {})


def held_sessions(conn: Connection, agent_id: str) -> list[Row]:
    return list(
        conn.execute(
            select(sessions)
            .where(and_(sessions.c.state == "assigned", sessions.c.agent_id == agent_id))
            .order_by(sessions.c.claimed_at)
        )
    )


def earlier_sessions(conn: Connection, identity: str, exclude: str) -> list[Row]:
    return list(
        conn.execute(
            select(sessions)
            .where(and_(sessions.c.identity == identity, sessions.c.id != exclude))
            .order_by(sessions.c.created_at)
        )
    )


def session_view(row: Row, agent_name: str | None = None) -> SessionView:
    return SessionView(
        session_id=row.id, identity=row.identity, state=row.state, episode=row.episode,
        agent_id=row.agent_id, agent_name=agent_name, reason=row.reason, intent=row.intent,
        confidence=row.confidence, routing_key=row.routing_key, skill=row.skill,
        waiting_since=row.waiting_since, requeued_front=bool(row.requeued_front),
        unresolved_turns=row.unresolved_turns, last_seq=row.last_seq,
        created_at=row.created_at, updated_at=row.updated_at,
    )


# --- messages ----------------------------------------------------------------------------


def find_client_message(conn: Connection, session_id: str, client_msg_id: str) -> Row | None:
    return _CLIENT_MESSAGE.first(
        conn, {"session_key": session_id, "client_key": client_msg_id})


def append_message(
    conn: Connection,
    session_id: str,
    *,
    episode: int,
    sender: str,
    text: str,
    now: datetime,
    payload: dict[str, Any] | None = None,
    agent_id: str | None = None,
    display_name: str | None = None,
    intent: str | None = None,
    confidence: float | None = None,
    client_msg_id: str | None = None,
) -> MessageView:
    """Store a message with the next seq of its session. The increment is one UPDATE, which
    row-locks (PostgreSQL) or runs under the write lock (SQLite), so seqs never collide."""
    seq = next_seq(conn, session_id)
    values = dict(
        session_id=session_id, seq=seq, episode=episode, sender=sender, agent_id=agent_id,
        display_name=display_name, text=text, payload=payload, intent=intent,
        confidence=confidence, client_msg_id=client_msg_id, created_at=now,
    )
    if client_msg_id is None:  # seq comes from the row-locked counter: nothing can collide
        _INSERT_MESSAGE.run(conn, values)
    else:
        try:
            with conn.begin_nested():
                _INSERT_MESSAGE.run(conn, values)
        except IntegrityError:
            raise ConflictError(f"message {client_msg_id!r} already stored") from None
    return MessageView(
        session_id=session_id, seq=seq, sender=sender,  # type: ignore[arg-type]
        text=text, created_at=now, payload=payload, agent_id=agent_id,
        display_name=display_name, intent=intent, confidence=confidence,
        client_msg_id=client_msg_id, episode=episode,
    )


def next_seq(conn: Connection, session_id: str) -> int:
    """Advance the session's message counter and return the new value."""
    if conn.dialect.name == "postgresql" or (conn.dialect.name == "sqlite" and _SQLITE_RETURNING):
        row = _BUMP_SEQ_RETURNING.first(conn, {"session_key": session_id})
        if row is None:
            raise unknown_session(session_id)
        return int(row.last_seq)
    bumped = conn.execute(_BUMP_SEQ, {"session_key": session_id})
    if bumped.rowcount != 1:
        raise unknown_session(session_id)
    return int(conn.execute(_LAST_SEQ, {"session_key": session_id}).scalar_one())


def messages_since(
    conn: Connection, session_id: str, last_seq: int, limit: int | None = None
) -> list[MessageView]:
    params = {"session_key": session_id, "seq_key": last_seq}
    if limit is None:
        return [message_view(r) for r in _MESSAGES_SINCE.all(conn, params)]
    return [message_view(r) for r in _MESSAGES_SINCE_LIMITED.all(
        conn, {**params, "limit_key": limit})]


def last_messages(conn: Connection, session_id: str, count: int) -> list[MessageView]:
    rows = _LAST_MESSAGES.all(conn, {"session_key": session_id, "limit_key": count})
    return [message_view(r) for r in reversed(rows)]


def messages_of_sessions(conn: Connection, session_ids: Sequence[str]) -> list[MessageView]:
    if not session_ids:
        return []
    rows = conn.execute(_MESSAGES_OF_SESSIONS, {"ids_key": list(session_ids)})
    return [message_view(r) for r in rows]


def last_borrower_text(conn: Connection, session_id: str) -> str | None:
    """The session's newest borrower text (its script decides how gateway texts are shown)."""
    row = _LAST_BORROWER_TEXT.first(conn, {"session_key": session_id})
    return None if row is None else str(row.text)


def last_borrower_texts(conn: Connection, session_ids: Iterable[str]) -> dict[str, str]:
    """The newest borrower text of each session (queue previews)."""
    ids = list(session_ids)
    if not ids:
        return {}
    rows = conn.execute(_LAST_BORROWER_TEXTS, {"ids_key": ids})
    return {r.session_id: r.text for r in rows}


def set_message_intent(
    conn: Connection, session_id: str, seq: int, intent: str, confidence: float | None
) -> bool:
    return _SET_MESSAGE_INTENT.run(conn, {
        "session_key": session_id, "seq_key": seq, "intent_val": intent,
        "confidence_val": confidence}) == 1


def last_borrower_seq(conn: Connection, session_id: str) -> int | None:
    row = _LAST_BORROWER_SEQ.first(conn, {"session_key": session_id})
    return None if row is None or row.seq is None else int(row.seq)


def message_view(row: Row) -> MessageView:
    return MessageView(
        session_id=row.session_id, seq=row.seq, sender=row.sender, text=row.text,
        created_at=row.created_at, payload=row.payload, agent_id=row.agent_id,
        display_name=row.display_name, intent=row.intent, confidence=row.confidence,
        client_msg_id=row.client_msg_id, episode=row.episode,
    )


# --- transitions (audit) -----------------------------------------------------------------


def insert_transition(
    conn: Connection,
    session_id: str,
    *,
    from_state: str,
    to_state: str,
    event: str,
    actor: str,
    reason: str | None,
    now: datetime,
    handle_seconds: float | None = None,
) -> None:
    _INSERT_TRANSITION.run(conn, dict(
        session_id=session_id, from_state=from_state, to_state=to_state, event=event,
        actor=actor, reason=(reason or None) and reason[:255], handle_seconds=handle_seconds,
        created_at=now,
    ))


def transitions_of(conn: Connection, session_id: str) -> list[TransitionView]:
    rows = _TRANSITIONS_OF.all(conn, {"session_key": session_id})
    return [
        TransitionView(
            session_id=r.session_id, from_state=r.from_state, to_state=r.to_state,
            event=r.event, actor=r.actor, reason=r.reason, created_at=r.created_at,
        )
        for r in rows
    ]


def recent_handle_seconds(conn: Connection, limit: int = 50) -> list[float]:
    rows = _RECENT_HANDLE_SECONDS.all(conn, {"limit_key": limit})
    return [float(r.handle_seconds) for r in rows]


# --- notes, csat, callbacks --------------------------------------------------------------


def insert_note(
    conn: Connection, session_id: str, agent_id: str, display_name: str, text: str, now: datetime
) -> NoteView:
    result = conn.execute(
        notes.insert().values(
            session_id=session_id, agent_id=agent_id, display_name=display_name, text=text,
            created_at=now,
        )
    )
    return NoteView(
        id=int(result.inserted_primary_key[0]), session_id=session_id, agent_id=agent_id,
        display_name=display_name, text=text, created_at=now,
    )


def notes_of(conn: Connection, session_ids: Sequence[str]) -> list[NoteView]:
    if not session_ids:
        return []
    rows = conn.execute(_NOTES_OF, {"ids_key": list(session_ids)})
    return [
        NoteView(id=r.id, session_id=r.session_id, agent_id=r.agent_id,
                 display_name=r.display_name, text=r.text, created_at=r.created_at)
        for r in rows
    ]


def insert_csat(
    conn: Connection, session_id: str, episode: int, agent_id: str | None, score: int,
    comment: str | None, now: datetime,
) -> None:
    try:
        with conn.begin_nested():
            conn.execute(
                csat.insert().values(
                    session_id=session_id, episode=episode, agent_id=agent_id, score=score,
                    comment=comment, created_at=now,
                )
            )
    except IntegrityError:
        raise ConflictError(
            "csat already given", message_zh="您已评价过本次服务，感谢您的反馈"
        ) from None


def csat_of(conn: Connection, session_id: str, episode: int) -> Row | None:
    return conn.execute(
        select(csat).where(and_(csat.c.session_id == session_id, csat.c.episode == episode))
    ).first()


def insert_callback(
    conn: Connection, session_id: str, phone: str, start: datetime, end: datetime, now: datetime
) -> int:
    result = conn.execute(
        callbacks.insert().values(
            session_id=session_id, phone=phone, window_start=start, window_end=end,
            status="pending", created_at=now, updated_at=now,
        )
    )
    return int(result.inserted_primary_key[0])


def get_callback(conn: Connection, callback_id: int) -> Row | None:
    return conn.execute(select(callbacks).where(callbacks.c.id == callback_id)).first()


def list_callbacks(conn: Connection, status: str | None) -> list[Row]:
    query = select(callbacks).order_by(callbacks.c.window_start, callbacks.c.id)
    if status is not None:
        query = query.where(callbacks.c.status == status)
    return list(conn.execute(query))


def set_callback_status(
    conn: Connection, callback_id: int, status: str, agent_id: str, now: datetime
) -> None:
    conn.execute(
        update(callbacks)
        .where(callbacks.c.id == callback_id)
        .values(status=status, handled_by=agent_id, updated_at=now)
    )


def callback_view(row: Row, phone_masked: str, phone: str | None) -> CallbackView:
    return CallbackView(
        id=row.id, session_id=row.session_id, phone_masked=phone_masked, phone=phone,
        window_start=row.window_start, window_end=row.window_end, status=row.status,
        created_at=row.created_at,
    )


# --- agents ------------------------------------------------------------------------------


def insert_agent(
    conn: Connection, *, username: str, display_name: str, password_hash: str,
    skills: Sequence[str], role: str, max_sessions: int, now: datetime,
) -> None:
    try:
        with conn.begin_nested():
            conn.execute(
                agents.insert().values(
                    username=username, display_name=display_name, password_hash=password_hash,
                    skills=list(skills), role=role, presence="offline", max_sessions=max_sessions,
                    active=True, created_at=now,
                )
            )
    except IntegrityError:
        raise ConflictError(
            f"agent {username!r} exists", message_zh="该用户名已存在"
        ) from None


def get_agent(conn: Connection, username: str, *, for_update: bool = False) -> Row | None:
    """The agent's row (read on every agent event: the token is re-checked each time)."""
    query = _AGENT_FOR_UPDATE if for_update else _AGENT
    return query.first(conn, {"username_key": username})


def require_agent(conn: Connection, username: str, *, for_update: bool = False) -> Row:
    row = get_agent(conn, username, for_update=for_update)
    if row is None or not row.active:
        raise NotFound(f"unknown agent {username!r}", message_zh="坐席不存在")
    return row


def list_agents(conn: Connection) -> list[Row]:
    return _ACTIVE_AGENTS.all(conn, {})


def set_agent_presence(
    conn: Connection, username: str, presence: str, disconnected_at: datetime | None
) -> None:
    conn.execute(
        update(agents)
        .where(agents.c.username == username)
        .values(presence=presence, disconnected_at=disconnected_at)
    )


def agents_lost_before(conn: Connection, cutoff: datetime) -> list[Row]:
    """Agents whose last socket left before `cutoff` and who did not come back."""
    return list(
        conn.execute(
            select(agents).where(
                and_(agents.c.disconnected_at.is_not(None), agents.c.disconnected_at <= cutoff)
            )
        )
    )


def agent_view(row: Row) -> AgentView:
    return AgentView(
        agent_id=row.username, display_name=row.display_name, role=row.role,
        skills=tuple(row.skills or ()), presence=row.presence, max_sessions=row.max_sessions,
    )


def display_names(conn: Connection, usernames: Iterable[str]) -> dict[str, str]:
    names = [u for u in set(usernames) if u]
    if not names:
        return {}
    rows = conn.execute(_DISPLAY_NAMES, {"ids_key": names})
    return {r.username: r.display_name for r in rows}
