"""How the queue looks right now: agents' loads, the ordered queue, borrowers' positions and
ETAs, agents' queue snapshots, and the callback offer. Reads only; plain functions of a
connection, so every service flow computes them the same way inside its own transaction."""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy.engine import Connection, Row

from bot.text import to_script
from handoff.errors import NotFound
from handoff.masking import mask_text
from handoff.model import (
    JSON,
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
    Capacity,
    QueueItem,
    agents_able,
    capacity,
    order_queue,
    positions,
    typical_handle_seconds,
    visible_queue,
    wait_at,
)
from handoff.settings import Settings
from handoff.states import SessionState
from handoff.store import repo
from handoff.texts import Texts, borrower_script, localise, script_of

PREVIEW_LENGTH = 60


def agent_loads(conn: Connection) -> list[AgentLoad]:
    """Every agent with its presence, skills, capacity and the sessions it holds."""
    return loads_from(repo.list_agents(conn), repo.assigned_sessions(conn))


def loads_from(agent_rows: list[Row], assigned: list[Row]) -> list[AgentLoad]:
    held: dict[str, int] = {}
    for r in assigned:
        held[r.agent_id] = held.get(r.agent_id, 0) + 1
    return [
        AgentLoad(a.username, a.role, frozenset(a.skills or ()), a.presence == "online",
                  a.max_sessions, held.get(a.username, 0))
        for a in agent_rows
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


class QueueReads:
    """The queue as one transaction sees it once its writes are done, each part read once.

    Why: a hand-off asks for the borrower's position, the callback offer and every online
    agent's snapshot, and each of those needs the agents' loads, the ordered queue and the
    typical handle time; read per question, the same rows were fetched 2–3 times per
    transaction (a sixth of the gateway's CPU in the session-4 profile). Build one after the
    transaction's last write: it does not see later ones.
    """

    def __init__(self, conn: Connection, policy: Policy, settings: Settings) -> None:
        self.conn = conn
        self.policy = policy
        self.settings = settings
        # Made once per queue change for every agent's snapshot and borrower's status:
        self._capacities: dict[str, Capacity] = {}
        self._entries: dict[tuple[str, datetime], tuple[QueueEntry, JSON]] = {}
        self._visible: dict[tuple[str, frozenset[str], datetime],
                            tuple[int, list[tuple[QueueEntry, JSON]]]] = {}

    @cached_property
    def _assigned(self) -> list[Row]:
        return repo.assigned_sessions(self.conn)

    @cached_property
    def loads(self) -> list[AgentLoad]:
        return loads_from(repo.list_agents(self.conn), self._assigned)

    @cached_property
    def _queue(self) -> tuple[list[QueueItem], list[Row]]:
        return ordered_queue(self.conn, self.policy)

    @property
    def ordered(self) -> list[QueueItem]:
        return self._queue[0]

    @property
    def rows(self) -> list[Row]:
        return self._queue[1]

    @cached_property
    def rows_by_id(self) -> dict[str, Row]:
        return {r.id: r for r in self.rows}

    @cached_property
    def positions_by_id(self) -> dict[str, int]:
        return positions(self.ordered)

    @cached_property
    def typical(self) -> float:
        return typical_handle_seconds(
            repo.recent_handle_seconds(self.conn), self.settings.default_handle_seconds
        )

    @cached_property
    def previews(self) -> dict[str, str]:
        return repo.last_borrower_texts(self.conn, [r.id for r in self.rows])

    def held(self, agent_id: str) -> list[str]:
        """The sessions `agent_id` holds, oldest claim first."""
        return [r.id for r in self._assigned if r.agent_id == agent_id]

    def eta(self, position: int, skill: str) -> int | None:
        """`queueing.estimate_wait`, with each skill's capacity worked out once."""
        cap = self._capacities.get(skill)
        if cap is None:
            cap = self._capacities[skill] = capacity(self.loads, skill)
        return wait_at(position, cap, self.typical)

    def entry(self, item: QueueItem, now: datetime) -> tuple[QueueEntry, JSON]:
        """A queued session's entry and its JSON, made once for every agent who may see it:
        it reads the same to all of them."""
        key = (item.session_id, now)
        made = self._entries.get(key)
        if made is None:
            made = self._entries[key] = _entry(self, item, now)
        return made

    def visible(self, load: AgentLoad, now: datetime) -> tuple[int, list[tuple[QueueEntry,
                                                                              JSON]]]:
        """How many sessions `load` may claim, and the first settings.queue_view_limit of
        them, best first; agents alike in role and skills share one list (each agent's
        snapshot differs only in what it holds)."""
        key = (load.role, load.skills, now)
        found = self._visible.get(key)
        if found is None:
            mine = visible_queue(self.ordered, load)
            found = self._visible[key] = (len(mine), [
                self.entry(item, now) for item in mine[:self.settings.queue_view_limit]])
        return found

    def load_of(self, agent_id: str) -> AgentLoad:
        return next(load for load in self.loads if load.agent_id == agent_id)


def _entry(reads: QueueReads, item: QueueItem, now: datetime) -> tuple[QueueEntry, JSON]:
    row = reads.rows_by_id[item.session_id]
    position = reads.positions_by_id[item.session_id]
    preview = reads.previews.get(item.session_id, "")
    entry = QueueEntry(
        session_id=item.session_id, routing_key=item.routing_key, skill=item.skill,
        position=position,
        waiting_seconds=max(0, int((now - item.waiting_since).total_seconds())),
        eta_seconds=reads.eta(position, item.skill),
        requeued_front=item.requeued_front, reason=row.reason or item.routing_key,
        intent=row.intent, preview=mask_text(preview[:PREVIEW_LENGTH]),
    )
    return entry, entry.to_dict()


def session_status(reads: QueueReads, row: Row) -> StatusPayload:
    """What the borrower's status line shows: the state, the agent, or position and ETA."""
    agent_name = None
    if row.state == SessionState.ASSIGNED.value and row.agent_id:
        agent_name = repo.display_names(reads.conn, [row.agent_id]).get(row.agent_id)
    if row.state != SessionState.QUEUED.value:
        return StatusPayload(row.id, row.state, agent_name=agent_name)
    position = reads.positions_by_id.get(row.id, 1)
    return queued_status(row.id, position,
                         reads.eta(position, row.skill or reads.policy.default_skill),
                         borrower_script(reads.conn, row.id))


def queued_status(session_id: str, position: int, eta: int | None,
                  script: str) -> StatusPayload:
    if eta is None:
        text = Texts.WAIT_UNKNOWN
    elif eta == 0:
        text = Texts.WAIT_SOON
    else:
        text = Texts.WAIT_ETA.format(ahead=position - 1, minutes=max(1, round(eta / 60)))
    return StatusPayload(session_id, "queued", queue_position=position, eta_seconds=eta,
                         text=to_script(text, script))


def snapshot(reads: QueueReads, agent_id: str, now: datetime) -> QueueSnapshot:
    """The queued sessions this agent may claim, best first, with ETA."""
    me = reads.load_of(agent_id)
    total, shown = reads.visible(me, now)
    return QueueSnapshot(agent_id, tuple(entry for entry, _ in shown),
                         tuple(reads.held(agent_id)), me.max_sessions, total)


def snapshot_payload(reads: QueueReads, load: AgentLoad, now: datetime) -> JSON:
    """`snapshot(...).to_dict()`, from the entries' JSON built once for every agent."""
    total, shown = reads.visible(load, now)
    return {
        "agent_id": load.agent_id,
        "entries": [data for _, data in shown],
        "held": reads.held(load.agent_id),
        "capacity": load.max_sessions,
        "total": total,
    }


def queue_effects(
    reads: QueueReads, now: datetime, *,
    borrowers: bool = True, skip_agent: str | None = None, skip_session: str | None = None,
    joined: str | None = None,
) -> list[Effect]:
    """Fresh queue snapshots for every online agent, and new positions/ETAs for every
    waiting borrower (the queue moved).

    `joined`: the change was only that this session joined the queue from the bot (no
    agent's load and no handle time changed, so no ETA formula input but the positions):
    only the borrowers behind it that need the same skill have a new place to be told. At a
    lender's peak that spares a hand-off re-telling a whole queue what it already knows.
    """
    effects: list[Effect] = [
        ToAgents((load.agent_id,), AgentEvents.QUEUE, snapshot_payload(reads, load, now))
        for load in reads.loads
        if load.online and load.agent_id != skip_agent and load.role in ("agent", "supervisor")
    ]
    if borrowers:
        for item in reads.ordered if joined is None else behind(reads.ordered, joined):
            if item.session_id == skip_session:
                continue
            position = reads.positions_by_id[item.session_id]
            status = queued_status(
                item.session_id, position, reads.eta(position, item.skill),
                script_of(reads.previews.get(item.session_id, "")),
            )
            effects.append(ToBorrower(item.session_id, BorrowerEvents.STATUS,
                                      status.to_dict()))
    return effects


def behind(ordered: list[QueueItem], joined: str) -> list[QueueItem]:
    """The sessions whose position `joined` moved by joining `ordered` (every one, if it is
    not there)."""
    for index, item in enumerate(ordered):
        if item.session_id == joined:
            return [later for later in ordered[index + 1:] if later.skill == item.skill]
    return ordered


def callback_offer(reads: QueueReads, session_id: str, skill: str,
                   now: datetime) -> dict[str, Any] | None:
    """The `callback_offer` payload when nobody can serve `skill` now (outside service
    hours, or no able agent online), else None."""
    settings = reads.settings
    reason = callback_reason(now, settings.service_hours, len(agents_able(reads.loads, skill)))
    if reason is None:
        return None
    hours = settings.service_hours
    offer = (
        Texts.OFFER_OUTSIDE_HOURS.format(
            start=hours.start.strftime("%H:%M"), end=hours.end.strftime("%H:%M"))
        if reason == "outside_hours" else Texts.OFFER_NO_AGENTS
    )
    return {"session_id": session_id, "reason": reason,
            "text": localise(reads.conn, session_id, offer)}
