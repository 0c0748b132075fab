"""How the queue looks right now: agents' loads, the ordered queue, borrowers' positions and
ETAs, agents' queue snapshots, and the callback offer. Reads only; plain functions of a
connection, so every service flow computes them the same way inside its own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Row

from bot.text import detect_script, to_script
from handoff.errors import NotFound
from handoff.masking import mask_text
from handoff.model import (
    AgentEvents,
    BorrowerEvents,
    Effect,
    QueueEntry,
    QueueSnapshot,
    StatusPayload,
    ToAgents,
    ToBorrower,
)
from handoff.policy import Policy, callback_reason
from handoff.queueing import (
    AgentLoad,
    QueueItem,
    agents_able,
    estimate_wait,
    order_queue,
    positions,
    typical_handle_seconds,
    visible_queue,
)
from handoff.settings import Settings
from handoff.states import SessionState
from handoff.store import repo
from handoff.store.schema import sessions as sessions_table
from handoff.texts import Texts, borrower_script, localise

PREVIEW_LENGTH = 60


def agent_loads(conn: Connection) -> list[AgentLoad]:
    """Every agent with its presence, skills, capacity and the sessions it holds."""
    held = dict(
        conn.execute(
            select(sessions_table.c.agent_id, func.count())
            .where(sessions_table.c.state == SessionState.ASSIGNED.value)
            .group_by(sessions_table.c.agent_id)
        ).all()
    )
    return [
        AgentLoad(a.username, a.role, frozenset(a.skills or ()), a.presence == "online",
                  a.max_sessions, int(held.get(a.username, 0)))
        for a in repo.list_agents(conn)
    ]


def agent_load(conn: Connection, agent: Row) -> AgentLoad:
    for load in agent_loads(conn):
        if load.agent_id == agent.username:
            return load
    raise NotFound(f"unknown agent {agent.username}")


def ordered_queue(conn: Connection, policy: Policy) -> tuple[list[QueueItem], list[Row]]:
    """Queued sessions in serving order, and their rows."""
    rows = repo.queued_sessions(conn)
    items = [
        QueueItem(r.id, r.routing_key or "unresolved_turns",
                  r.skill or policy.default_skill,
                  r.waiting_since or r.updated_at, bool(r.requeued_front))
        for r in rows
    ]
    return order_queue(items, policy), rows


def typical_seconds(conn: Connection, settings: Settings) -> float:
    return typical_handle_seconds(
        repo.recent_handle_seconds(conn), settings.default_handle_seconds
    )


def session_status(conn: Connection, row: Row, policy: Policy,
                   settings: Settings) -> StatusPayload:
    """What the borrower's status line shows: the state, the agent, or position and ETA."""
    agent_name = None
    if row.state == SessionState.ASSIGNED.value and row.agent_id:
        agent_name = repo.display_names(conn, [row.agent_id]).get(row.agent_id)
    if row.state != SessionState.QUEUED.value:
        return StatusPayload(row.id, row.state, agent_name=agent_name)
    ordered, _ = ordered_queue(conn, policy)
    pos = positions(ordered)
    loads = agent_loads(conn)
    return queued_status(row.id, row.skill or policy.default_skill,
                         pos.get(row.id, 1), loads, typical_seconds(conn, settings),
                         borrower_script(conn, row.id))


def queued_status(session_id: str, skill: str, position: int, loads: list[AgentLoad],
                  typical: float, script: str) -> StatusPayload:
    eta = estimate_wait(position, skill, loads, typical)
    if eta is None:
        text = Texts.WAIT_UNKNOWN
    elif eta == 0:
        text = Texts.WAIT_SOON
    else:
        text = Texts.WAIT_ETA.format(ahead=position - 1, minutes=max(1, round(eta / 60)))
    return StatusPayload(session_id, "queued", queue_position=position, eta_seconds=eta,
                         text=to_script(text, script))


def snapshot(conn: Connection, agent_id: str, now: datetime, policy: Policy,
             settings: Settings) -> QueueSnapshot:
    """The queued sessions this agent may claim, best first, with ETA."""
    ordered, rows = ordered_queue(conn, policy)
    loads = agent_loads(conn)
    return snapshot_from(agent_id, ordered, rows, loads, typical_seconds(conn, settings), now,
                         repo.last_borrower_texts(conn, [r.id for r in rows]),
                         [r.id for r in repo.held_sessions(conn, agent_id)])


def snapshot_from(
    agent_id: str, ordered: list[QueueItem], rows: list[Row], loads: list[AgentLoad],
    typical: float, now: datetime, previews: dict[str, str], held: list[str],
) -> QueueSnapshot:
    by_id = {r.id: r for r in rows}
    me = next(load for load in loads if load.agent_id == agent_id)
    pos = positions(ordered)
    entries = []
    for item in visible_queue(ordered, me):
        row = by_id[item.session_id]
        preview = previews.get(item.session_id, "")
        entries.append(QueueEntry(
            session_id=item.session_id, routing_key=item.routing_key, skill=item.skill,
            position=pos[item.session_id],
            waiting_seconds=max(0, int((now - item.waiting_since).total_seconds())),
            eta_seconds=estimate_wait(pos[item.session_id], item.skill, loads, typical),
            requeued_front=item.requeued_front, reason=row.reason or item.routing_key,
            intent=row.intent, preview=mask_text(preview[:PREVIEW_LENGTH]),
        ))
    return QueueSnapshot(agent_id, tuple(entries), tuple(held), me.max_sessions)


def queue_effects(
    conn: Connection, now: datetime, policy: Policy, settings: Settings, *,
    borrowers: bool = True, skip_agent: str | None = None, skip_session: str | None = None,
) -> list[Effect]:
    """Fresh queue snapshots for every online agent, and new positions/ETAs for every
    waiting borrower (the queue moved)."""
    ordered, rows = ordered_queue(conn, policy)
    loads = agent_loads(conn)
    typical = typical_seconds(conn, settings)
    previews = repo.last_borrower_texts(conn, [r.id for r in rows])
    held: dict[str, list[str]] = {}
    for load in loads:
        if load.online and load.agent_id != skip_agent and load.role in (
                "agent", "supervisor"):
            held[load.agent_id] = [r.id for r in repo.held_sessions(conn, load.agent_id)]
    effects: list[Effect] = [
        ToAgents((agent_id,), AgentEvents.QUEUE, snapshot_from(
            agent_id, ordered, rows, loads, typical, now, previews, ids).to_dict())
        for agent_id, ids in held.items()
    ]
    if borrowers:
        pos = positions(ordered)
        for item in ordered:
            if item.session_id == skip_session:
                continue
            status = queued_status(
                item.session_id, item.skill, pos[item.session_id], loads, typical,
                detect_script(previews.get(item.session_id, "")),
            )
            effects.append(ToBorrower(item.session_id, BorrowerEvents.STATUS,
                                      status.to_dict()))
    return effects


def callback_offer(conn: Connection, session_id: str, skill: str, now: datetime,
                   settings: Settings) -> dict[str, Any] | None:
    """The `callback_offer` payload when nobody can serve `skill` now (outside service
    hours, or no able agent online), else None."""
    loads = agent_loads(conn)
    reason = callback_reason(now, settings.service_hours, len(agents_able(loads, skill)))
    if reason is None:
        return None
    hours = settings.service_hours
    offer = (
        Texts.OFFER_OUTSIDE_HOURS.format(
            start=hours.start.strftime("%H:%M"), end=hours.end.strftime("%H:%M"))
        if reason == "outside_hours" else Texts.OFFER_NO_AGENTS
    )
    return {"session_id": session_id, "reason": reason,
            "text": localise(conn, session_id, offer)}
