"""The state and the shared steps of every HandoffService flow (borrower, agent, presence).

The flows (handoff/borrower_flows.py, agent_flows.py, presence_flows.py) are mixins of this
one base: it alone owns the store, policy, settings, clock and rate limiters, and the steps
that change a session (transition, hand-off, requeue, system message) so every flow records
them the same way. Read-only queue computations are plain functions in handoff/queue_view.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Row

from handoff import queue_view
from handoff.errors import NotSessionHolder
from handoff.limits import BucketLimiter
from handoff.model import (
    AgentEvents,
    BorrowerEvents,
    Effect,
    HandoffSignal,
    QueueSnapshot,
    SessionView,
    StatusPayload,
    ToAgents,
    ToBorrower,
    Transcript,
)
from handoff.policy import Policy, RateLimiter
from handoff.queueing import AgentLoad
from handoff.settings import RateLimit, Settings
from handoff.states import SessionEvent, SessionState, apply
from handoff.store import Store, repo
from handoff.texts import Texts, localise
from handoff.validation import check_text
from handoff.views import masked_message, session_view, short_id, transcript

Clock = Callable[[], datetime]

log = logging.getLogger("handoff.service")

# Tracker events that give a conversation back to the bot (docs/contracts.md).
RESUME_EVENTS: tuple[dict[str, Any], ...] = (
    {"event": "resume"},
    {"event": "slot", "name": "unresolved_turns", "value": 0},
)


class ServiceCore:
    """State shared by all flows, and the steps that change a session."""

    def __init__(self, store: Store, policy: Policy, settings: Settings, clock: Clock) -> None:
        self._store = store
        self._policy = policy
        self._settings = settings
        self._clock = clock
        # Token bucket per session (config/handoff.yml `limits`); refusals store nothing.
        self._borrower_limiter = BucketLimiter(settings.borrower_rate)
        self._agent_limiter = RateLimiter(settings.agent_rate)
        self._login_limiter = RateLimiter(RateLimit(10, 300.0))
        self._last_heartbeat: datetime | None = None
        # The transport sets this: (agent_id, socket_id) pairs connected to this node, used to
        # re-register them if other nodes took this node for dead (a long stall).
        self.local_agent_sockets: Callable[[], Sequence[tuple[str, str]]] | None = None

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return now

    def _check_text(self, text: Any) -> str:
        return check_text(text, self._settings.max_message_length)

    def _require_holder(self, row: Row, agent_id: str) -> None:
        if row.state != SessionState.ASSIGNED.value or row.agent_id != agent_id:
            raise NotSessionHolder(f"agent {agent_id} does not hold session {row.id}")

    def _transition(
        self,
        conn: Connection,
        row: Row,
        event: SessionEvent,
        actor: str,
        why: str | None,
        now: datetime,
        *,
        values: dict[str, Any] | None = None,
        handle_seconds: float | None = None,
    ) -> Row:
        """Apply `event`, persist the new state (optimistic version check) and audit it."""
        new_state = apply(row.state, event)
        repo.update_session(conn, row.id, row.version, now, state=new_state.value,
                            **(values or {}))
        repo.insert_transition(
            conn, row.id, from_state=row.state, to_state=new_state.value, event=event.value,
            actor=actor, reason=why, now=now, handle_seconds=handle_seconds,
        )
        return repo.require_session(conn, row.id)

    def _handoff(
        self,
        conn: Connection,
        row: Row,
        signal: HandoffSignal,
        event: SessionEvent,
        actor: str,
        now: datetime,
        *,
        text: str | None = Texts.QUEUED,
        why: str | None = None,
    ) -> tuple[Row, list[Effect]]:
        routing_key = self._policy.routing_key(signal)
        skill = self._policy.skill_for(routing_key)
        if signal.intent:
            last_seq = repo.last_borrower_seq(conn, row.id)
            if last_seq is not None:
                repo.set_message_intent(conn, row.id, last_seq, signal.intent, signal.confidence)
        row = self._transition(
            conn, row, event, actor, why or handoff_reason(signal), now,
            values=dict(
                episode=row.episode + 1, agent_id=None, claimed_at=None, reason=signal.reason,
                intent=signal.intent, confidence=signal.confidence, routing_key=routing_key,
                skill=skill, slots=signal.slots, waiting_since=now, requeued_front=False,
                unresolved_turns=signal.unresolved_turns,
            ),
        )
        effects = self._system_message(conn, row, text, now) if text is not None else []
        reads = self._queue_reads(conn)  # the writes are done: status, offer, snapshots share it
        effects.append(self._status_effect(conn, row, now, reads))
        offer = queue_view.callback_offer(reads, row.id, skill, now)
        if offer is not None:
            effects.append(ToBorrower(row.id, BorrowerEvents.CALLBACK_OFFER, offer))
        effects.extend(self._queue_effects(conn, now, skip_session=row.id, reads=reads,
                                           joined=row.id))
        log.info("session %s queued: reason=%s key=%s skill=%s", short_id(row.id), signal.reason,
                 routing_key, skill)
        return row, effects

    def _requeue_held(self, conn: Connection, agent_id: str, now: datetime,
                      why: str) -> list[Effect]:
        """Sessions of a lost agent go back to the FRONT of the queue, keeping their wait."""
        effects: list[Effect] = []
        for held in repo.held_sessions(conn, agent_id):
            row = self._transition(
                conn, held, SessionEvent.AGENT_LOST, "system", why, now,
                values=dict(agent_id=None, claimed_at=None, requeued_front=True,
                            waiting_since=held.waiting_since or now),
            )
            effects.extend(self._system_message(conn, row, Texts.AGENT_LOST, now))
            effects.append(ToAgents((agent_id,), AgentEvents.SESSION_ENDED,
                                    {"session_id": row.id, "reason": "lost"}))
            log.warning("session %s requeued at front: %s (%s)", short_id(row.id), why, agent_id)
        return effects

    def _system_message(self, conn: Connection, row: Row, text: str,
                        now: datetime) -> list[Effect]:
        text = localise(conn, row.id, text)
        message = repo.append_message(
            conn, row.id, episode=row.episode, sender="system", text=text, now=now
        )
        effects: list[Effect] = [ToBorrower(row.id, BorrowerEvents.MESSAGE, message.to_dict())]
        if row.state == SessionState.ASSIGNED.value and row.agent_id:
            effects.append(ToAgents((row.agent_id,), AgentEvents.MESSAGE,
                                    masked_message(message)))
        return effects

    def _status_effect(self, conn: Connection, row: Row, now: datetime,
                       reads: queue_view.QueueReads | None = None) -> ToBorrower:
        return ToBorrower(row.id, BorrowerEvents.STATUS,
                          self._status(conn, row, reads).to_dict())

    # read-only views (handoff/queue_view.py, handoff/views.py) with this service's config.
    # Pass `reads` only when it was built after the transaction's last write.

    def _queue_reads(self, conn: Connection) -> queue_view.QueueReads:
        return queue_view.QueueReads(conn, self._policy, self._settings)

    def _queue_effects(
        self, conn: Connection, now: datetime, *, borrowers: bool = True,
        skip_agent: str | None = None, skip_session: str | None = None,
        reads: queue_view.QueueReads | None = None, joined: str | None = None,
    ) -> list[Effect]:
        return queue_view.queue_effects(reads or self._queue_reads(conn), now,
                                        borrowers=borrowers, skip_agent=skip_agent,
                                        skip_session=skip_session, joined=joined)

    def _snapshot(self, conn: Connection, agent_id: str, now: datetime,
                  reads: queue_view.QueueReads | None = None) -> QueueSnapshot:
        return queue_view.snapshot(reads or self._queue_reads(conn), agent_id, now)

    def _status(self, conn: Connection, row: Row,
                reads: queue_view.QueueReads | None = None) -> StatusPayload:
        return queue_view.session_status(reads or self._queue_reads(conn), row)

    def _load(self, conn: Connection, agent: Row) -> AgentLoad:
        return queue_view.agent_load(conn, agent)

    def _view(self, conn: Connection, row: Row) -> SessionView:
        return session_view(conn, row)

    def _transcript(self, conn: Connection, row: Row) -> Transcript:
        return transcript(conn, row)


def handoff_reason(signal: HandoffSignal) -> str:
    """The audit reason of a hand-off: why, and the intent/confidence behind it."""
    parts = [signal.reason]
    if signal.intent:
        parts.append(f"intent={signal.intent}")
    if signal.confidence is not None:
        parts.append(f"confidence={signal.confidence:.2f}")
    return " ".join(parts)
