"""The agent side of HandoffService: accounts and log-in, claiming, messages, notes,
transfer, close, transcripts and callbacks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import Connection, Row

from handoff import auth
from handoff.errors import (
    AlreadyClaimed,
    AuthError,
    CapacityReached,
    ConflictError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from handoff.masking import mask_text
from handoff.model import (
    ActionResult,
    AgentEvents,
    AgentView,
    BorrowerEvents,
    CallbackStatus,
    CallbackView,
    ClaimResult,
    Disposition,
    Effect,
    LoginResult,
    MessageResult,
    NoteView,
    QueueSnapshot,
    ToAgents,
    ToBorrower,
    ToRasa,
    Transcript,
)
from handoff.queueing import can_take
from handoff.service_core import RESUME_EVENTS, ServiceCore
from handoff.states import SessionEvent, SessionState, apply
from handoff.store import repo
from handoff.texts import Texts, localise
from handoff.validation import (
    CALLBACK_STATUSES,
    MAX_NOTE_LENGTH,
    ROLES,
    USERNAME,
    check_client_msg_id,
)
from handoff.views import masked_view

log = logging.getLogger("handoff.service")


class AgentFlows(ServiceCore):
    """What agents do with conversations."""

    def create_agent(
        self,
        username: str,
        display_name: str,
        password: str,
        skills: Sequence[str],
        role: str = "agent",
        max_sessions: int | None = None,
    ) -> AgentView:
        """Add an agent. Skills must be ones the policy routes to (typos fail loudly)."""
        if not isinstance(username, str) or not USERNAME.match(username):
            raise ValidationError(
                "username must be 3-64 of a-z 0-9 _ . -", message_zh="用户名格式不正确"
            )
        display_name = (display_name or "").strip()
        if not display_name or len(display_name) > 64:
            raise ValidationError("display name must be 1-64 characters",
                                  message_zh="显示名称需为1-64个字符")
        if role not in ROLES:
            raise ValidationError(f"role must be one of {ROLES}")
        known = self._policy.all_skills()
        skill_list = sorted({s.strip() for s in skills if s.strip()})
        unknown = [s for s in skill_list if s not in known]
        if unknown:
            raise ValidationError(f"unknown skills {unknown}; known: {sorted(known)}")
        if role == "agent" and not skill_list:
            raise ValidationError("an agent needs at least one skill")
        capacity = self._settings.max_sessions_per_agent if max_sessions is None else max_sessions
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= 50:
            raise ValidationError("max_sessions must be 1..50")
        password_hash = auth.hash_password(password)
        now = self._now()
        with self._store.write() as conn:
            repo.insert_agent(
                conn, username=username, display_name=display_name,
                password_hash=password_hash, skills=skill_list, role=role,
                max_sessions=capacity, now=now,
            )
            return repo.agent_view(repo.require_agent(conn, username))

    def login(self, username: str, password: str) -> LoginResult:
        """Check the password (constant time) and issue a signed, expiring token."""
        if not isinstance(username, str) or not isinstance(password, str):
            raise AuthError("username and password must be text", message_zh="用户名或密码错误")
        self._login_limiter.check(username.lower()[:64])
        with self._store.read() as conn:
            row = repo.get_agent(conn, username)
        ok = auth.verify_password(password, row.password_hash if row is not None else None)
        if row is None or not ok or not row.active:
            raise AuthError("bad credentials", message_zh="用户名或密码错误")
        token, expires = auth.issue_token(
            row.username, self._settings.secret, self._settings.token_ttl_seconds, self._now(),
            role=row.role,
        )
        return LoginResult(repo.agent_view(row), token, expires)

    def agent_from_token(self, token: str) -> AgentView:
        """The agent a token belongs to. Raises AuthError (expired, forged, unknown agent)."""
        claims = auth.verify_token(token, self._settings.secret, self._now())
        with self._store.read() as conn:
            row = repo.get_agent(conn, claims["sub"])
        if row is None or not row.active:
            raise AuthError("agent no longer exists")
        return repo.agent_view(row)

    def queue_snapshot(self, agent_id: str) -> QueueSnapshot:
        """The queued sessions this agent may claim (its skills), best first, with ETA."""
        now = self._now()
        with self._store.read() as conn:
            repo.require_agent(conn, agent_id)
            return self._snapshot(conn, agent_id, now)

    def claim(self, agent_id: str, session_id: str) -> ClaimResult:
        """Take a queued session. Atomic: of two agents claiming at once, one gets
        AlreadyClaimed. Raises PermissionDenied (skill), CapacityReached."""
        now = self._now()
        effects: list[Effect] = []
        with self._store.write() as conn:
            # Lock the agent row too: two claims by one agent must not both pass the capacity check.
            agent = repo.require_agent(conn, agent_id, for_update=True)
            row = repo.require_session(conn, session_id, for_update=True)
            if row.state == SessionState.ASSIGNED.value:
                raise AlreadyClaimed(f"session {session_id} is held by another agent")
            apply(row.state, SessionEvent.CLAIMED)  # IllegalTransition unless queued
            load = self._load(conn, agent)
            if not can_take(load, row.skill or self._policy.default_skill):
                raise PermissionDenied(
                    f"agent {agent_id} lacks skill {row.skill}",
                    message_zh="您没有接待该类会话的技能",
                )
            if load.held >= load.max_sessions:
                raise CapacityReached(f"agent {agent_id} holds {load.held} sessions")
            if not repo.claim_session(conn, session_id, agent_id, row.version, now):
                raise AlreadyClaimed(f"session {session_id} was claimed concurrently")
            repo.insert_transition(
                conn, session_id, from_state=row.state, to_state=SessionState.ASSIGNED.value,
                event=SessionEvent.CLAIMED.value, actor=f"agent:{agent_id}", reason=None, now=now,
            )
            row = repo.require_session(conn, session_id)
            effects.extend(
                self._system_message(conn, row, Texts.AGENT_JOINED.format(
                    name=agent.display_name), now)
            )
            reads = self._queue_reads(conn)
            effects.append(self._status_effect(conn, row, now, reads))
            effects.extend(self._queue_effects(conn, now, reads=reads))
            transcript = self._transcript(conn, row)
        return ClaimResult(transcript.session, transcript, tuple(effects))

    def agent_message(
        self, agent_id: str, session_id: str, text: str, client_msg_id: str | None = None
    ) -> MessageResult:
        """Store an agent's message, then relay it to the borrower. Only the holder may send."""
        text = self._check_text(text)
        client_msg_id = check_client_msg_id(client_msg_id)
        now = self._now()
        with self._store.write() as conn:
            agent = repo.require_agent(conn, agent_id)
            row = repo.require_session(conn, session_id, for_update=True)
            if client_msg_id is not None:
                existing = repo.find_client_message(conn, session_id, client_msg_id)
                if existing is not None:
                    if existing.sender != "agent" or existing.agent_id != agent_id:
                        raise ConflictError("client_msg_id reused by another sender")
                    return MessageResult(masked_view(repo.message_view(existing)), "duplicate")
            self._require_holder(row, agent_id)
            self._agent_limiter.check(agent_id)
            message = repo.append_message(
                conn, session_id, episode=row.episode, sender="agent", text=text, now=now,
                agent_id=agent_id, display_name=agent.display_name, client_msg_id=client_msg_id,
            )
        effects = (ToBorrower(session_id, BorrowerEvents.MESSAGE, message.to_dict()),)
        return MessageResult(masked_view(message), "borrower", effects)

    def note(self, agent_id: str, session_id: str, text: str) -> NoteView:
        """Store an internal note (never shown to the borrower). Holder or supervisor."""
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("empty note", message_zh="备注不能为空")
        if len(text) > MAX_NOTE_LENGTH:
            raise ValidationError("note too long", message_zh=f"备注不能超过{MAX_NOTE_LENGTH}字")
        now = self._now()
        with self._store.write() as conn:
            agent = repo.require_agent(conn, agent_id)
            row = repo.require_session(conn, session_id)
            if agent.role != "supervisor":
                self._require_holder(row, agent_id)
            note = repo.insert_note(conn, session_id, agent_id, agent.display_name, text, now)
        return NoteView(note.id, note.session_id, note.agent_id, note.display_name,
                        mask_text(note.text), note.created_at)

    def transfer(
        self,
        agent_id: str,
        session_id: str,
        *,
        to_agent: str | None = None,
        to_skill: str | None = None,
    ) -> ActionResult:
        """Hand a held session to another online agent (with capacity) or back to the queue
        for a skill (keeping its waiting time). Exactly one of to_agent / to_skill."""
        if (to_agent is None) == (to_skill is None):
            raise ValidationError("give exactly one of to_agent and to_skill")
        if to_skill is not None and to_skill not in self._policy.all_skills():
            raise ValidationError(f"unknown skill {to_skill!r}", message_zh="未知的技能组")
        now = self._now()
        effects: list[Effect] = []
        with self._store.write() as conn:
            row = self._session_to_act_on(conn, agent_id, session_id)
            apply(row.state, SessionEvent.TRANSFERRED)
            previous = row.agent_id
            target = None
            if to_agent is not None:
                target = repo.require_agent(conn, to_agent, for_update=True)
                if target.username == previous:
                    raise ValidationError("cannot transfer to the current holder",
                                          message_zh="不能转接给当前接待坐席")
                load = self._load(conn, target)
                if not load.online or target.role not in ("agent", "supervisor"):
                    raise ConflictError(f"agent {to_agent} is not online",
                                        message_zh="对方坐席不在线")
                if load.held >= load.max_sessions:
                    raise CapacityReached(f"agent {to_agent} is full",
                                          message_zh="对方坐席接待已满")
            handle = seconds_since(row.claimed_at, now)
            row = self._transition(
                conn, row, SessionEvent.TRANSFERRED, f"agent:{agent_id}",
                f"to agent {to_agent}" if to_agent else f"to skill {to_skill}", now,
                values=dict(agent_id=None, claimed_at=None, requeued_front=False,
                            skill=to_skill or row.skill),
                handle_seconds=handle,
            )
            if previous:
                effects.append(ToAgents((previous,), AgentEvents.SESSION_ENDED,
                                        {"session_id": session_id, "reason": "transferred"}))
            if target is not None:
                row = self._transition(
                    conn, row, SessionEvent.CLAIMED, f"agent:{agent_id}",
                    f"transferred to {target.username}", now,
                    values=dict(agent_id=target.username, claimed_at=now),
                )
                effects.extend(self._system_message(
                    conn, row, Texts.TRANSFERRED_AGENT.format(name=target.display_name), now))
                effects.append(self._status_effect(conn, row, now))
                effects.append(ToAgents((target.username,), AgentEvents.ASSIGNED,
                                        self._transcript(conn, row).to_dict()))
            else:
                effects.extend(self._system_message(conn, row, Texts.TRANSFERRED_QUEUE, now))
            effects.extend(self._queue_effects(conn, now))
            view = self._view(conn, row)
        return ActionResult(view, tuple(effects))

    def close(self, agent_id: str, session_id: str, disposition: Disposition) -> ActionResult:
        """End the human episode. resolved → closed + CSAT prompt to the borrower;
        return_to_bot → bot mode + ToRasa resume events (docs/contracts.md).
        A supervisor may also close a waiting (queued) session as resolved."""
        if disposition not in ("resolved", "return_to_bot"):
            raise ValidationError("disposition must be resolved or return_to_bot")
        event = (SessionEvent.CLOSED_RESOLVED if disposition == "resolved"
                 else SessionEvent.RETURNED_TO_BOT)
        now = self._now()
        effects: list[Effect] = []
        with self._store.write() as conn:
            row = self._session_to_act_on(conn, agent_id, session_id)
            apply(row.state, event)
            holder = row.agent_id if row.state == SessionState.ASSIGNED.value else None
            handle = seconds_since(row.claimed_at, now) if holder else None
            if disposition == "resolved":
                row = self._transition(
                    conn, row, event, f"agent:{agent_id}", "resolved", now,
                    values=dict(requeued_front=False, waiting_since=None),
                    handle_seconds=handle,
                )
                effects.extend(self._system_message(conn, row, Texts.CLOSED, now))
                effects.append(self._status_effect(conn, row, now))
                if holder:  # only a served borrower is asked to rate the service
                    effects.append(ToBorrower(session_id, BorrowerEvents.CSAT_REQUEST, {
                        "session_id": session_id, "episode": row.episode,
                        "text": localise(conn, session_id, Texts.CSAT_PROMPT),
                    }))
            else:
                row = self._transition(
                    conn, row, event, f"agent:{agent_id}", "return_to_bot", now,
                    values=dict(agent_id=None, claimed_at=None, requeued_front=False,
                                waiting_since=None, unresolved_turns=0),
                    handle_seconds=handle,
                )
                effects.append(ToRasa(session_id, RESUME_EVENTS))
                effects.extend(self._system_message(conn, row, Texts.RETURNED_TO_BOT, now))
                effects.append(self._status_effect(conn, row, now))
            if holder:
                effects.append(ToAgents((holder,), AgentEvents.SESSION_ENDED, {
                    "session_id": session_id,
                    "reason": "closed" if disposition == "resolved" else "returned_to_bot",
                }))
            effects.extend(self._queue_effects(conn, now))
            view = self._view(conn, row)
        return ActionResult(view, tuple(effects))

    def _session_to_act_on(self, conn: Connection, agent_id: str, session_id: str) -> Row:
        """The session (row-locked) an agent transfers or closes: its holder, or a supervisor."""
        caller = repo.require_agent(conn, agent_id)
        row = repo.require_session(conn, session_id, for_update=True)
        if caller.role != "supervisor":
            self._require_holder(row, agent_id)
        return row

    def transcript_for_agent(self, agent_id: str, session_id: str) -> Transcript:
        """The masked transcript (incl. earlier sessions of the same identity), handoff
        reason, slots, intents + confidence, notes. Holder, supervisors, trainers, and agents
        who may claim the queued session may read it."""
        with self._store.read() as conn:
            agent = repo.require_agent(conn, agent_id)
            row = repo.require_session(conn, session_id)
            if agent.role not in ("supervisor", "trainer"):
                may_preview = row.state == SessionState.QUEUED.value and can_take(
                    self._load(conn, agent), row.skill or self._policy.default_skill
                )
                if not may_preview:
                    self._require_holder(row, agent_id)
            return self._transcript(conn, row)

    def list_callbacks(
        self, agent_id: str, status: CallbackStatus | None = "pending"
    ) -> tuple[CallbackView, ...]:
        """Callbacks, soonest window first; full phone numbers only for supervisors."""
        if status is not None and status not in CALLBACK_STATUSES:
            raise ValidationError(f"status must be one of {CALLBACK_STATUSES}")
        with self._store.read() as conn:
            agent = repo.require_agent(conn, agent_id)
            if agent.role not in ("agent", "supervisor"):
                raise PermissionDenied(f"role {agent.role} cannot list callbacks")
            full = agent.role == "supervisor"
            return tuple(
                repo.callback_view(r, mask_text(r.phone), r.phone if full else None)
                for r in repo.list_callbacks(conn, status)
            )

    def set_callback_status(
        self, agent_id: str, callback_id: int, status: CallbackStatus
    ) -> CallbackView:
        """Mark a callback done or cancelled."""
        if status not in CALLBACK_STATUSES:
            raise ValidationError(f"status must be one of {CALLBACK_STATUSES}")
        now = self._now()
        with self._store.write() as conn:
            agent = repo.require_agent(conn, agent_id)
            if agent.role not in ("agent", "supervisor"):
                raise PermissionDenied(f"role {agent.role} cannot handle callbacks")
            if repo.get_callback(conn, callback_id) is None:
                raise NotFound(f"unknown callback {callback_id}")
            repo.set_callback_status(conn, callback_id, status, agent_id, now)
            row = repo.get_callback(conn, callback_id)
            assert row is not None
            full = agent.role == "supervisor"
            return repo.callback_view(row, mask_text(row.phone), row.phone if full else None)

    def list_agents(self) -> tuple[AgentView, ...]:
        """All agents with presence (for the supervisor view and transfer targets)."""
        with self._store.read() as conn:
            return tuple(repo.agent_view(r) for r in repo.list_agents(conn))



def seconds_since(then: datetime | None, now: datetime) -> float | None:
    return max(0.0, (now - then).total_seconds()) if then is not None else None
