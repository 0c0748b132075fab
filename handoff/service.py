"""HandoffService: the gateway core. It owns every conversation; the transport calls it.

API CHANGES since the first published version (11:20 UTC), all before 11:35:
- agent_connected() returns ConnectResult (agent, queue snapshot, transcripts of held
  sessions, effects) instead of a bare QueueSnapshot.
- added create_agent() (used by the CLI and tests), recover_after_restart() (11:40; call it
  once at start-up); CallbackView gained `phone`
  (full number for supervisors only, else None); Route gained "borrower".

How the transport uses it (details in docs/gateway.md, effect types in handoff/model.py):
- Every method is synchronous, thread-safe, and does its database work in one transaction.
  Call it from async code with `await anyio.to_thread.run_sync(...)` (or asyncio.to_thread).
- Every method returns effects; deliver them in order after the call returns. Nothing is
  relayed by the service itself, and every message is stored before it is returned.
- Errors are `handoff.errors.HandoffError` subclasses; send `err.to_dict()` to the client.
- Call `recover_after_restart()` once at start-up, then `tick()` about once a second: it
  expires agents' reconnect grace periods.
- Agent ids are usernames. Borrower `identity` is the lender-app user id (or None if anonymous).
- A message's sender gets it back in the method's result (the ack); effects carry it only to
  the other side.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Row

from bot.text import detect_script, to_script
from handoff import auth
from handoff.errors import (
    AlreadyClaimed,
    AuthError,
    CapacityReached,
    ConflictError,
    IdentityMismatch,
    NotFound,
    NotSessionHolder,
    PermissionDenied,
    ValidationError,
)
from handoff.limits import BucketLimiter
from handoff.masking import mask_text, mask_value
from handoff.model import (
    ActionResult,
    AgentEvents,
    AgentView,
    BorrowerEvents,
    BotRepliesResult,
    CallbackStatus,
    CallbackView,
    ClaimResult,
    ConnectResult,
    Disposition,
    Effect,
    HandoffSignal,
    LoginResult,
    MessageResult,
    MessageView,
    NoteView,
    OpenResult,
    Presence,
    QueueEntry,
    QueueSnapshot,
    Route,
    SessionView,
    StatusPayload,
    ToAgents,
    ToBorrower,
    ToRasa,
    ToRasaMessage,
    Transcript,
)
from handoff.policy import Policy, RateLimiter, callback_reason, parse_handoff_payload
from handoff.queueing import (
    AgentLoad,
    QueueItem,
    agents_able,
    can_take,
    estimate_wait,
    order_queue,
    positions,
    typical_handle_seconds,
    visible_queue,
)
from handoff.settings import RateLimit, Settings
from handoff.states import SessionEvent, SessionState, apply
from handoff.store import Store, nodes, repo
from handoff.store.schema import sessions as sessions_table

Clock = Callable[[], datetime]

log = logging.getLogger(__name__)

# Tracker events that give a conversation back to the bot (docs/contracts.md).
RESUME_EVENTS: tuple[dict[str, Any], ...] = (
    {"event": "resume"},
    {"event": "slot", "name": "unresolved_turns", "value": 0},
)

ROLES = ("agent", "supervisor", "trainer")
PRESENCES = ("online", "away", "offline")
CALLBACK_STATUSES = ("pending", "done", "cancelled")
MAX_NOTE_LENGTH = 4000
MAX_COMMENT_LENGTH = 500
MAX_CLIENT_MSG_ID = 128
PREVIEW_LENGTH = 60
CALLBACK_HORIZON = timedelta(days=14)
_SESSION_ID = re.compile(r"^[A-Za-z0-9_\-]{16,64}$")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{2,63}$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


class Texts:
    """Every sentence the gateway itself says to borrowers (Chinese)."""

    QUEUED = "正在为您转接人工客服，请稍候。"
    BOT_UNAVAILABLE = "智能助手暂时无法回复，正在为您转接人工客服，请稍候。"
    AGENT_JOINED = "人工客服{name}为您服务。"
    TRANSFERRED_QUEUE = "正在为您转接其他客服，请稍候。"
    TRANSFERRED_AGENT = "已为您转接至客服{name}。"
    AGENT_LOST = "客服连接中断，正在为您重新转接，您将优先接入。"
    CLOSED = "本次人工服务已结束，感谢您的耐心。"
    RETURNED_TO_BOT = "人工服务已结束，智能助手将继续为您服务。"
    CSAT_PROMPT = "请为本次人工服务打分（1-5分，5分为非常满意）。"
    WAIT_SOON = "即将为您接入人工客服。"
    WAIT_ETA = "您前面还有{ahead}位用户，预计等待约{minutes}分钟。"
    # Wait only: the callback offer is the separate `callback_offer` sentence (one offer).
    WAIT_UNKNOWN = "当前暂无客服在线，暂时无法估计等待时间，请您耐心等待。"
    OFFER_OUTSIDE_HOURS = (
        "当前不在人工服务时间（每日{start}-{end}），您可以预约电话回拨，我们将在服务时间内联系您。"
    )
    OFFER_NO_AGENTS = "当前人工客服繁忙，您可以继续等待，或预约电话回拨。"


class HandoffService:
    """Decides what happens to each conversation and records it; returns effects."""

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

    # --- borrower side -------------------------------------------------------------------

    def open_session(self, session_id: str | None, identity: str | None) -> OpenResult:
        """Resume a session or start one (an unknown or missing id → a new unguessable id).

        Raises IdentityMismatch when the id exists but is bound to another identity.
        """
        identity = _check_identity(identity)
        now = self._now()
        with self._store.write() as conn:
            row = None
            if isinstance(session_id, str) and _SESSION_ID.match(session_id):
                row = repo.get_session(conn, session_id)
            created = row is None
            if row is None:
                new_id = secrets.token_urlsafe(24)
                repo.insert_session(conn, new_id, identity, now)
                row = repo.require_session(conn, new_id)
            elif row.identity != identity:
                raise IdentityMismatch(f"session {row.id} is bound to another identity")
            history = repo.last_messages(conn, row.id, self._settings.history_limit)
            status = self._status(conn, row, now)
            view = self._view(conn, row)
            # A borrower coming back to a wait nobody can serve is offered the callback again.
            offer = (self._callback_offer(conn, row.id, row.skill or self._policy.default_skill,
                                          now)
                     if row.state == SessionState.QUEUED.value else None)
        return OpenResult(session=view, created=created, history=tuple(history), status=status,
                          callback_offer=offer)

    def record_borrower_message(
        self,
        session_id: str,
        text: str,
        client_msg_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> MessageResult:
        """Store a borrower message first, then say where it goes.

        route "bot" → effects hold a ToRasaMessage; "queued" → stored, agents' queue preview
        updated; "agent" → relayed (masked) to the holding agent; "duplicate" → a retried
        client_msg_id, the stored message is returned and nothing is sent again.
        A closed session reopens in bot mode (borrower_returned) with Rasa resume events.
        Raises ValidationError (empty / longer than settings.max_message_length), RateLimited.
        """
        text = self._check_text(text)
        client_msg_id = _check_client_msg_id(client_msg_id)
        if metadata is not None and not isinstance(metadata, dict):
            raise ValidationError("metadata must be an object")
        now = self._now()
        effects: list[Effect] = []
        with self._store.write() as conn:
            row = repo.require_session(conn, session_id, for_update=True)
            if client_msg_id is not None:
                existing = repo.find_client_message(conn, session_id, client_msg_id)
                if existing is not None:
                    if existing.sender != "borrower":
                        raise ConflictError("client_msg_id reused by another sender")
                    return MessageResult(repo.message_view(existing), "duplicate")
            self._borrower_limiter.check(session_id)
            if row.state == SessionState.CLOSED.value:
                row = self._transition(
                    conn, row, SessionEvent.BORROWER_RETURNED, "borrower", "new message", now,
                    values=dict(agent_id=None, waiting_since=None, requeued_front=False,
                                unresolved_turns=0, claimed_at=None),
                )
                effects.append(ToRasa(session_id, RESUME_EVENTS))
            message = repo.append_message(
                conn, session_id, episode=row.episode, sender="borrower", text=text, now=now,
                client_msg_id=client_msg_id,
            )
            route: Route
            if row.state == SessionState.BOT.value:
                route = "bot"
                forward = {**(metadata or {}), "seq": message.seq}
                # Recorded with the message: if this node dies before Rasa's answer is stored,
                # another node re-forwards it (tick → _adopt_orphan_turns).
                nodes.add_pending_turn(conn, self._settings.node_id, session_id, message.seq,
                                       text, forward, now)
                effects.append(ToRasaMessage(session_id, text, message.seq, forward))
            elif row.state == SessionState.QUEUED.value:
                route = "queued"
                effects.extend(self._queue_effects(conn, now, borrowers=False))
            else:
                route = "agent"
                effects.append(
                    ToAgents((row.agent_id,), AgentEvents.MESSAGE, _masked_message(message))
                )
        return MessageResult(message, route, tuple(effects))

    def accept_bot_replies(
        self, session_id: str, replies: Sequence[dict[str, Any]]
    ) -> BotRepliesResult:
        """Store and relay Rasa's replies, but only while the session is in bot mode.

        Replies arriving when a human holds (or the queue holds) the session are dropped and
        logged (the late-reply rule). A reply whose `custom` carries `{"handoff": {...}}` queues
        the session; any reply after it in the same batch is dropped. A bot-mode turn with
        nothing to show (a failed custom action) is handed off like bot_unavailable.
        """
        if not isinstance(replies, (list, tuple)):
            raise ValidationError("replies must be a list")
        now = self._now()
        stored: list[MessageView] = []
        effects: list[Effect] = []
        dropped = 0
        handed_off = False
        with self._store.write() as conn:
            row = repo.require_session(conn, session_id, for_update=True)
            nodes.resolve_oldest_turn(conn, session_id)
            for reply in replies:
                if row.state != SessionState.BOT.value:
                    dropped += 1
                    log.warning(
                        "dropped late bot reply for session %s in state %s: %s",
                        _short(session_id), row.state, mask_text(str(reply)[:200]),
                    )
                    continue
                if not isinstance(reply, dict):
                    log.warning("ignored malformed bot reply for %s: %s", _short(session_id),
                                mask_text(repr(reply)[:200]))
                    continue
                signal = parse_handoff_payload(reply.get("custom"))
                if signal is not None:
                    # The bot already told the borrower a human is coming (docs/contracts.md):
                    # the gateway adds its own notice only when the bot said nothing first.
                    announced = any(m.text.strip() for m in stored)
                    row, handoff_effects = self._handoff(
                        conn, row, signal, SessionEvent.HANDOFF_REQUESTED, "bot", now,
                        text=None if announced else Texts.QUEUED,
                    )
                    effects.extend(handoff_effects)
                    handed_off = True
                    continue
                message = self._store_bot_reply(conn, row, reply, now)
                if message is not None:
                    stored.append(message)
                    effects.append(
                        ToBorrower(session_id, BorrowerEvents.MESSAGE, message.to_dict())
                    )
            if row.state == SessionState.BOT.value and not stored and not handed_off:
                # Rasa answered a bot-mode turn with nothing to show: a custom action failed
                # (action server down; Rasa logs it and carries on silently). Never leave the
                # borrower without an answer: say so and queue for a human, as when Rasa is down.
                log.warning("bot gave no reply for session %s; handing off", _short(session_id))
                signal = HandoffSignal(reason="bot_unavailable",
                                       unresolved_turns=row.unresolved_turns)
                row, silent_effects = self._handoff(
                    conn, row, signal, SessionEvent.BOT_UNAVAILABLE, "system", now,
                    text=Texts.BOT_UNAVAILABLE, why="bot gave no reply",
                )
                effects.extend(silent_effects)
                handed_off = True
        return BotRepliesResult(tuple(stored), dropped, handed_off, tuple(effects))

    def bot_unavailable(self, session_id: str, detail: str = "") -> BotRepliesResult:
        """Rasa could not be reached: tell the borrower and queue for a human (reason
        bot_unavailable). No-op (empty result) when the session is not in bot mode."""
        now = self._now()
        with self._store.write() as conn:
            row = repo.require_session(conn, session_id, for_update=True)
            nodes.resolve_oldest_turn(conn, session_id)
            if row.state != SessionState.BOT.value:
                log.info("bot_unavailable ignored for %s in state %s", _short(session_id),
                         row.state)
                return BotRepliesResult((), 0, False)
            log.warning("bot unavailable for session %s: %s", _short(session_id),
                        mask_text(detail))
            signal = HandoffSignal(reason="bot_unavailable", unresolved_turns=row.unresolved_turns)
            _, effects = self._handoff(
                conn, row, signal, SessionEvent.BOT_UNAVAILABLE, "system", now,
                text=Texts.BOT_UNAVAILABLE, why=mask_text(detail) or "bot_unavailable",
            )
        return BotRepliesResult((), 0, True, tuple(effects))

    def request_handoff(self, session_id: str, signal: HandoffSignal, actor: str) -> ActionResult:
        """Queue a bot-mode session for a human (used by accept_bot_replies and bot_unavailable;
        public for tests and tools). Raises IllegalTransition when not in bot mode."""
        now = self._now()
        with self._store.write() as conn:
            row = repo.require_session(conn, session_id, for_update=True)
            row, effects = self._handoff(
                conn, row, signal, SessionEvent.HANDOFF_REQUESTED, actor, now
            )
            view = self._view(conn, row)
        return ActionResult(view, tuple(effects))

    def annotate_message(
        self, session_id: str, seq: int, intent: str, confidence: float | None
    ) -> None:
        """Record the NLU intent/confidence of a borrower message once it is known."""
        if not isinstance(intent, str) or not intent or len(intent) > 128:
            raise ValidationError("intent must be a name")
        if confidence is not None and not 0.0 <= float(confidence) <= 1.0:
            raise ValidationError("confidence must be within 0..1")
        with self._store.write() as conn:
            repo.require_session(conn, session_id)
            if not repo.set_message_intent(conn, session_id, seq, intent, confidence):
                raise NotFound(f"no borrower message {seq} in session {session_id}")

    def rate(self, session_id: str, score: int, comment: str | None = None) -> ActionResult:
        """Store the borrower's CSAT (1–5) for the last human episode; once per episode."""
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise ValidationError("score must be 1..5", message_zh="请选择1到5分")
        if comment is not None:
            if not isinstance(comment, str):
                raise ValidationError("comment must be text")
            comment = comment.strip() or None
            if comment is not None and len(comment) > MAX_COMMENT_LENGTH:
                raise ValidationError(
                    "comment too long", message_zh=f"评价内容不能超过{MAX_COMMENT_LENGTH}字"
                )
        now = self._now()
        effects: list[Effect] = []
        with self._store.write() as conn:
            row = repo.require_session(conn, session_id, for_update=True)
            if row.state != SessionState.CLOSED.value or row.episode < 1 or not row.agent_id:
                raise ConflictError(
                    "nothing to rate", message_zh="当前没有可评价的人工服务"
                )
            repo.insert_csat(conn, session_id, row.episode, row.agent_id, score, comment, now)
            if row.agent_id:
                effects.append(
                    ToAgents(
                        (row.agent_id,), AgentEvents.CSAT,
                        {"session_id": session_id, "episode": row.episode, "score": score,
                         "comment": mask_text(comment) if comment else None},
                    )
                )
            view = self._view(conn, row)
        return ActionResult(view, tuple(effects))

    def book_callback(
        self, session_id: str, phone: str, window_start: datetime, window_end: datetime
    ) -> CallbackView:
        """Book a phone callback (mainland mobile; a future window inside service hours)."""
        number = normalise_mobile(phone)
        now = self._now()
        self._check_callback_window(window_start, window_end, now)
        with self._store.write() as conn:
            repo.require_session(conn, session_id)
            callback_id = repo.insert_callback(
                conn, session_id, number, window_start, window_end, now
            )
            row = repo.get_callback(conn, callback_id)
            assert row is not None
            log.info("callback %s booked for session %s (%s)", callback_id, _short(session_id),
                     mask_text(number))
            return repo.callback_view(row, mask_text(number), None)

    def history_since(self, session_id: str, last_seq: int) -> tuple[MessageView, ...]:
        """Borrower-visible messages with seq > last_seq, for replay after a reconnect."""
        if isinstance(last_seq, bool) or not isinstance(last_seq, int) or last_seq < 0:
            raise ValidationError("last_seq must be a non-negative integer")
        with self._store.read() as conn:
            repo.require_session(conn, session_id)
            return tuple(repo.messages_since(conn, session_id, last_seq))

    def session(self, session_id: str) -> SessionView:
        """The current view of a session. Raises NotFound."""
        with self._store.read() as conn:
            return self._view(conn, repo.require_session(conn, session_id))

    # --- agent side ----------------------------------------------------------------------

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
        if not isinstance(username, str) or not _USERNAME.match(username):
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

    def agent_connected(self, agent_id: str, socket_id: str | None = None) -> ConnectResult:
        """An agent socket connected: presence online, reconnect grace cancelled.

        With `socket_id` the socket is recorded for this gateway node (settings.node_id), so
        other nodes know the agent is still connected when one of its sockets goes away.
        Returns the agent, its queue snapshot, and transcripts of the sessions it still holds.
        """
        now = self._now()
        with self._store.write() as conn:
            # Row lock: a socket leaving on another node decides "last socket?" after us.
            row = repo.require_agent(conn, agent_id, for_update=True)
            first = True
            if socket_id is not None:
                first = nodes.live_sockets(conn, agent_id, self._alive_after(now)) == 0
                nodes.add_socket(conn, self._settings.node_id, socket_id, agent_id, now)
            repo.set_agent_presence(conn, agent_id, "online", None)
            effects = self._queue_effects(conn, now, skip_agent=agent_id)
            snapshot = self._snapshot(conn, agent_id, now)
            held = tuple(
                self._transcript(conn, s) for s in repo.held_sessions(conn, agent_id)
            )
            agent = repo.agent_view(repo.require_agent(conn, row.username))
        return ConnectResult(agent, snapshot, held, tuple(effects), first_socket=first)

    def agent_presence(self, agent_id: str, presence: Presence) -> tuple[Effect, ...]:
        """Set online/away/offline. Only online agents count for ETA and callback offers.

        "offline" is a deliberate log-off: held sessions go back to the front of the queue at
        once (no grace period)."""
        if presence not in PRESENCES:
            raise ValidationError(f"presence must be one of {PRESENCES}")
        now = self._now()
        effects: list[Effect] = []
        with self._store.write() as conn:
            repo.require_agent(conn, agent_id)
            repo.set_agent_presence(conn, agent_id, presence, None)
            if presence == "offline":
                effects.extend(self._requeue_held(conn, agent_id, now, "agent logged off"))
            effects.extend(self._queue_effects(conn, now))
        return tuple(effects)

    def agent_disconnected(
        self, agent_id: str, socket_id: str | None = None
    ) -> tuple[Effect, ...]:
        """An agent socket went away. Without `socket_id` (or when it was the agent's last
        socket on any live gateway node) the grace period starts (settings.grace_seconds);
        held sessions stay with the agent until it expires (see tick()). With other sockets
        left (this node or another), nothing changes and no effects are returned.
        """
        now = self._now()
        with self._store.write() as conn:
            repo.require_agent(conn, agent_id, for_update=True)
            if socket_id is not None:
                nodes.remove_socket(conn, self._settings.node_id, socket_id)
                if nodes.live_sockets(conn, agent_id, self._alive_after(now)) > 0:
                    return ()
            repo.set_agent_presence(conn, agent_id, "offline", now)
            effects = self._queue_effects(conn, now)
        if self._settings.grace_seconds == 0:
            effects.extend(self.tick())
        return tuple(effects)

    def recover_after_restart(self) -> int:
        """Call once when the gateway starts: no agent has a socket yet, so every agent the
        store still shows as present starts its grace period now (reconnecting in time keeps
        its sessions; tick() requeues the rest). Returns how many agents were marked."""
        now = self._now()
        with self._store.write() as conn:
            # This node's sockets from before the restart are gone; agents served by other
            # live gateway nodes are not touched.
            nodes.heartbeat(conn, self._settings.node_id, now)
            nodes.forget_node_sockets(conn, self._settings.node_id)
            self._last_heartbeat = now
            marked = 0
            for agent in repo.list_agents(conn):
                if nodes.live_sockets(conn, agent.username, self._alive_after(now)) > 0:
                    continue
                if agent.presence != "offline" or repo.held_sessions(conn, agent.username):
                    repo.set_agent_presence(conn, agent.username, "offline",
                                            agent.disconnected_at or now)
                    marked += 1
        log.info("restart recovery: %d agents in grace", marked)
        return marked

    def tick(self) -> tuple[Effect, ...]:
        """Expire grace periods: sessions of agents gone longer than the grace go back to the
        FRONT of the queue (agent_lost). Call about once a second."""
        now = self._now()
        effects: list[Effect] = self._heartbeat_if_due(now)
        effects.extend(self._reap_dead_nodes(now))
        cutoff = now - timedelta(seconds=self._settings.grace_seconds)
        with self._store.read() as conn:
            if not repo.agents_lost_before(conn, cutoff):
                return tuple(effects)
        with self._store.write() as conn:
            for agent in repo.agents_lost_before(conn, cutoff):
                repo.set_agent_presence(conn, agent.username, "offline", None)
                effects.extend(
                    self._requeue_held(conn, agent.username, now, "agent connection lost")
                )
            if effects:
                effects.extend(self._queue_effects(conn, now))
        return tuple(effects)

    # --- several gateway nodes (docs/deploy.md) -------------------------------------------

    def node_heartbeat(self) -> bool:
        """Record that this gateway node is alive. Returns True when the node's row was
        missing (first beat, or other nodes took this node for dead): the caller should then
        re-attach its live agent sockets (reattach_sockets)."""
        now = self._now()
        with self._store.write() as conn:
            created = nodes.heartbeat(conn, self._settings.node_id, now)
        self._last_heartbeat = now
        return created

    def reattach_sockets(self, sockets: Sequence[tuple[str, str]]) -> tuple[Effect, ...]:
        """(agent_id, socket_id) pairs this node still serves, after it was taken for dead:
        record them again and cancel those agents' grace periods."""
        now = self._now()
        with self._store.write() as conn:
            for agent_id, socket_id in sockets:
                if repo.get_agent(conn, agent_id, for_update=True) is None:
                    continue
                nodes.add_socket(conn, self._settings.node_id, socket_id, agent_id, now)
                repo.set_agent_presence(conn, agent_id, "online", None)
            effects = self._queue_effects(conn, now) if sockets else []
        return tuple(effects)

    def node_stopped(self) -> tuple[Effect, ...]:
        """This node shuts down: forget it and start the grace of agents it alone served."""
        now = self._now()
        with self._store.write() as conn:
            return tuple(self._forget_node(conn, self._settings.node_id, now))

    def _alive_after(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self._settings.node_ttl_seconds)

    def _heartbeat_if_due(self, now: datetime) -> list[Effect]:
        every = timedelta(seconds=self._settings.node_ttl_seconds / 3)
        if self._last_heartbeat is not None and now - self._last_heartbeat < every:
            return []
        first = self._last_heartbeat is None
        if not self.node_heartbeat() or first:
            return self._adopt_orphan_turns()
        log.warning("gateway node %s was taken for dead by other nodes; re-registering",
                    self._settings.node_id)
        sockets = list(self.local_agent_sockets()) if self.local_agent_sockets else []
        return list(self.reattach_sockets(sockets)) + self._adopt_orphan_turns()

    def recover_pending_turns(self) -> tuple[Effect, ...]:
        """Call once at start-up (after recover_after_restart): borrower messages this node's
        previous run stored but never got Rasa's answer for are forwarded again, and so are
        those of nodes that are gone."""
        with self._store.write() as conn:
            own = nodes.adopt_turns(conn, self._settings.node_id, self._settings.node_id)
            effects = self._forwards(conn, own)
        return tuple(effects) + tuple(self._adopt_orphan_turns())

    def _adopt_orphan_turns(self) -> list[Effect]:
        """Pending turns of nodes no longer registered (dead and reaped, or stopped): this
        node forwards them to Rasa again. Rasa may see such a message twice if the dead node
        had already sent it; the borrower gets one answer, because only one was stored."""
        with self._store.read() as conn:
            if not nodes.orphan_turn_nodes(conn):
                return []
        with self._store.write() as conn:
            adopted = [row for node_id in nodes.orphan_turn_nodes(conn)
                       for row in nodes.adopt_turns(conn, node_id, self._settings.node_id)]
            return self._forwards(conn, adopted)

    def _forwards(self, conn: Connection, turns: Sequence[Row]) -> list[Effect]:
        effects: list[Effect] = []
        for turn in turns:
            row = repo.get_session(conn, turn.session_id)
            if row is None or row.state != SessionState.BOT.value:
                nodes.drop_turn(conn, turn.session_id, turn.seq)  # a human has it now
                continue
            log.warning("re-forwarding borrower message %s of session %s to Rasa",
                        turn.seq, _short(turn.session_id))
            effects.append(ToRasaMessage(turn.session_id, turn.text, turn.seq,
                                         dict(turn.metadata or {"seq": turn.seq})))
        return effects

    def _reap_dead_nodes(self, now: datetime) -> list[Effect]:
        """Nodes silent for longer than the node TTL are dead: their agent sockets are gone,
        and agents with no socket left anywhere start their grace period from the node's
        last heartbeat."""
        alive_after = self._alive_after(now)
        with self._store.read() as conn:
            if not nodes.dead_nodes(conn, alive_after):
                return []
        effects: list[Effect] = []
        with self._store.write() as conn:
            for node in nodes.dead_nodes(conn, alive_after):
                if node.node_id == self._settings.node_id:
                    continue  # we are alive; our own beat is merely late
                log.warning("gateway node %s silent since %s: taking it for dead",
                            node.node_id, node.heartbeat_at.isoformat())
                effects.extend(self._forget_node(conn, node.node_id, node.heartbeat_at))
        effects.extend(self._adopt_orphan_turns())  # what the dead node was sending to Rasa
        return effects

    def _forget_node(self, conn: Connection, node_id: str, since: datetime) -> list[Effect]:
        now = self._now()
        changed = False
        for agent_id in nodes.remove_node(conn, node_id):
            agent = repo.get_agent(conn, agent_id, for_update=True)
            if agent is None or nodes.live_sockets(conn, agent_id, self._alive_after(now)) > 0:
                continue
            if agent.disconnected_at is None:
                repo.set_agent_presence(conn, agent_id, "offline", since)
                changed = True
        return self._queue_effects(conn, now) if changed else []

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
            effects.append(self._status_effect(conn, row, now))
            effects.extend(self._queue_effects(conn, now))
            transcript = self._transcript(conn, row)
        return ClaimResult(transcript.session, transcript, tuple(effects))

    def agent_message(
        self, agent_id: str, session_id: str, text: str, client_msg_id: str | None = None
    ) -> MessageResult:
        """Store an agent's message, then relay it to the borrower. Only the holder may send."""
        text = self._check_text(text)
        client_msg_id = _check_client_msg_id(client_msg_id)
        now = self._now()
        with self._store.write() as conn:
            agent = repo.require_agent(conn, agent_id)
            row = repo.require_session(conn, session_id, for_update=True)
            if client_msg_id is not None:
                existing = repo.find_client_message(conn, session_id, client_msg_id)
                if existing is not None:
                    if existing.sender != "agent" or existing.agent_id != agent_id:
                        raise ConflictError("client_msg_id reused by another sender")
                    return MessageResult(_masked_view(repo.message_view(existing)), "duplicate")
            self._require_holder(row, agent_id)
            self._agent_limiter.check(agent_id)
            message = repo.append_message(
                conn, session_id, episode=row.episode, sender="agent", text=text, now=now,
                agent_id=agent_id, display_name=agent.display_name, client_msg_id=client_msg_id,
            )
        effects = (ToBorrower(session_id, BorrowerEvents.MESSAGE, message.to_dict()),)
        return MessageResult(_masked_view(message), "borrower", effects)

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
            caller = repo.require_agent(conn, agent_id)
            row = repo.require_session(conn, session_id, for_update=True)
            if caller.role != "supervisor":
                self._require_holder(row, agent_id)
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
            handle = _seconds_since(row.claimed_at, now)
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
            caller = repo.require_agent(conn, agent_id)
            row = repo.require_session(conn, session_id, for_update=True)
            if caller.role != "supervisor":
                self._require_holder(row, agent_id)
            apply(row.state, event)
            holder = row.agent_id if row.state == SessionState.ASSIGNED.value else None
            handle = _seconds_since(row.claimed_at, now) if holder else None
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
                        "text": self._localise(conn, session_id, Texts.CSAT_PROMPT),
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

    # --- internals -----------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return now

    def _check_text(self, text: Any) -> str:
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("empty message", message_zh="消息不能为空")
        if len(text) > self._settings.max_message_length:
            raise ValidationError(
                "message too long",
                message_zh=(f"消息过长（最多{self._settings.max_message_length}字），"
                            "请分几条发送"),
            )
        return text

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
            conn, row, event, actor, why or _why(signal), now,
            values=dict(
                episode=row.episode + 1, agent_id=None, claimed_at=None, reason=signal.reason,
                intent=signal.intent, confidence=signal.confidence, routing_key=routing_key,
                skill=skill, slots=signal.slots, waiting_since=now, requeued_front=False,
                unresolved_turns=signal.unresolved_turns,
            ),
        )
        effects = self._system_message(conn, row, text, now) if text is not None else []
        effects.append(self._status_effect(conn, row, now))
        offer = self._callback_offer(conn, row.id, skill, now)
        if offer is not None:
            effects.append(ToBorrower(row.id, BorrowerEvents.CALLBACK_OFFER, offer))
        effects.extend(self._queue_effects(conn, now, skip_session=row.id))
        log.info("session %s queued: reason=%s key=%s skill=%s", _short(row.id), signal.reason,
                 routing_key, skill)
        return row, effects

    def _callback_offer(self, conn: Connection, session_id: str, skill: str,
                        now: datetime) -> dict[str, Any] | None:
        """The `callback_offer` payload when nobody can serve `skill` now (outside service
        hours, or no able agent online), else None."""
        loads = self._loads(conn)
        reason = callback_reason(
            now, self._settings.service_hours, len(agents_able(loads, skill))
        )
        if reason is None:
            return None
        hours = self._settings.service_hours
        offer = (
            Texts.OFFER_OUTSIDE_HOURS.format(
                start=hours.start.strftime("%H:%M"), end=hours.end.strftime("%H:%M"))
            if reason == "outside_hours" else Texts.OFFER_NO_AGENTS
        )
        return {"session_id": session_id, "reason": reason,
                "text": self._localise(conn, session_id, offer)}

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
            log.warning("session %s requeued at front: %s (%s)", _short(row.id), why, agent_id)
        return effects

    def _store_bot_reply(
        self, conn: Connection, row: Row, reply: dict[str, Any], now: datetime
    ) -> MessageView | None:
        text = reply.get("text")
        text = text if isinstance(text, str) else ""
        payload = {k: reply[k] for k in ("buttons", "custom", "image", "attachment")
                   if reply.get(k) is not None}
        if not text.strip() and not payload:
            return None
        return repo.append_message(
            conn, row.id, episode=row.episode, sender="bot", text=text, now=now,
            payload=payload or None,
        )

    def _script(self, conn: Connection, session_id: str) -> str:
        """The script (simplified/traditional) of the borrower's latest message."""
        return detect_script(repo.last_borrower_texts(conn, [session_id]).get(session_id, ""))

    def _localise(self, conn: Connection, session_id: str, text: str) -> str:
        """A gateway sentence in the borrower's script (Traditional writers read Traditional)."""
        return to_script(text, self._script(conn, session_id))

    def _system_message(self, conn: Connection, row: Row, text: str,
                        now: datetime) -> list[Effect]:
        text = self._localise(conn, row.id, text)
        message = repo.append_message(
            conn, row.id, episode=row.episode, sender="system", text=text, now=now
        )
        effects: list[Effect] = [ToBorrower(row.id, BorrowerEvents.MESSAGE, message.to_dict())]
        if row.state == SessionState.ASSIGNED.value and row.agent_id:
            effects.append(ToAgents((row.agent_id,), AgentEvents.MESSAGE,
                                    _masked_message(message)))
        return effects

    # queue views

    def _loads(self, conn: Connection) -> list[AgentLoad]:
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

    def _load(self, conn: Connection, agent: Row) -> AgentLoad:
        for load in self._loads(conn):
            if load.agent_id == agent.username:
                return load
        raise NotFound(f"unknown agent {agent.username}")

    def _queue(self, conn: Connection) -> tuple[list[QueueItem], list[Row]]:
        rows = repo.queued_sessions(conn)
        items = [
            QueueItem(r.id, r.routing_key or "unresolved_turns",
                      r.skill or self._policy.default_skill,
                      r.waiting_since or r.updated_at, bool(r.requeued_front))
            for r in rows
        ]
        return order_queue(items, self._policy), rows

    def _typical(self, conn: Connection) -> float:
        return typical_handle_seconds(
            repo.recent_handle_seconds(conn), self._settings.default_handle_seconds
        )

    def _status(self, conn: Connection, row: Row, now: datetime) -> StatusPayload:
        agent_name = None
        if row.state == SessionState.ASSIGNED.value and row.agent_id:
            agent_name = repo.display_names(conn, [row.agent_id]).get(row.agent_id)
        if row.state != SessionState.QUEUED.value:
            return StatusPayload(row.id, row.state, agent_name=agent_name)
        ordered, _ = self._queue(conn)
        pos = positions(ordered)
        loads = self._loads(conn)
        return self._queued_status(row.id, row.skill or self._policy.default_skill,
                                   pos.get(row.id, 1), loads, self._typical(conn),
                                   self._script(conn, row.id))

    def _queued_status(self, session_id: str, skill: str, position: int,
                       loads: list[AgentLoad], typical: float,
                       script: str) -> StatusPayload:
        eta = estimate_wait(position, skill, loads, typical)
        if eta is None:
            text = Texts.WAIT_UNKNOWN
        elif eta == 0:
            text = Texts.WAIT_SOON
        else:
            text = Texts.WAIT_ETA.format(ahead=position - 1, minutes=max(1, round(eta / 60)))
        return StatusPayload(session_id, "queued", queue_position=position, eta_seconds=eta,
                             text=to_script(text, script))

    def _status_effect(self, conn: Connection, row: Row, now: datetime) -> ToBorrower:
        return ToBorrower(row.id, BorrowerEvents.STATUS, self._status(conn, row, now).to_dict())

    def _snapshot(self, conn: Connection, agent_id: str, now: datetime) -> QueueSnapshot:
        ordered, rows = self._queue(conn)
        loads = self._loads(conn)
        return self._snapshot_from(agent_id, ordered, rows, loads, self._typical(conn), now,
                                   repo.last_borrower_texts(conn, [r.id for r in rows]),
                                   [r.id for r in repo.held_sessions(conn, agent_id)])

    def _snapshot_from(
        self, agent_id: str, ordered: list[QueueItem], rows: list[Row],
        loads: list[AgentLoad], typical: float, now: datetime, previews: dict[str, str],
        held: list[str],
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

    def _queue_effects(
        self, conn: Connection, now: datetime, *, borrowers: bool = True,
        skip_agent: str | None = None, skip_session: str | None = None,
    ) -> list[Effect]:
        """Fresh queue snapshots for every online agent, and new positions/ETAs for every
        waiting borrower (the queue moved)."""
        ordered, rows = self._queue(conn)
        loads = self._loads(conn)
        typical = self._typical(conn)
        previews = repo.last_borrower_texts(conn, [r.id for r in rows])
        held: dict[str, list[str]] = {}
        for load in loads:
            if load.online and load.agent_id != skip_agent and load.role in (
                    "agent", "supervisor"):
                held[load.agent_id] = [r.id for r in repo.held_sessions(conn, load.agent_id)]
        effects: list[Effect] = [
            ToAgents((agent_id,), AgentEvents.QUEUE, self._snapshot_from(
                agent_id, ordered, rows, loads, typical, now, previews, ids).to_dict())
            for agent_id, ids in held.items()
        ]
        if borrowers:
            pos = positions(ordered)
            for item in ordered:
                if item.session_id == skip_session:
                    continue
                status = self._queued_status(
                    item.session_id, item.skill, pos[item.session_id], loads, typical,
                    detect_script(previews.get(item.session_id, "")),
                )
                effects.append(ToBorrower(item.session_id, BorrowerEvents.STATUS,
                                          status.to_dict()))
        return effects

    def _view(self, conn: Connection, row: Row) -> SessionView:
        name = repo.display_names(conn, [row.agent_id]).get(row.agent_id) if row.agent_id else None
        return repo.session_view(row, name)

    def _transcript(self, conn: Connection, row: Row) -> Transcript:
        earlier_ids = (
            [r.id for r in repo.earlier_sessions(conn, row.identity, row.id)
             if r.created_at <= row.created_at]
            if row.identity else []
        )
        return Transcript(
            session=self._view(conn, row),
            slots=mask_value(row.slots or {}),
            messages=tuple(_masked_view(m) for m in repo.messages_since(conn, row.id, 0)),
            earlier=tuple(_masked_view(m) for m in repo.messages_of_sessions(conn, earlier_ids)),
            notes=tuple(
                NoteView(n.id, n.session_id, n.agent_id, n.display_name, mask_text(n.text),
                         n.created_at)
                for n in repo.notes_of(conn, [*earlier_ids, row.id])
            ),
            transitions=tuple(repo.transitions_of(conn, row.id)),
        )

    def _check_callback_window(self, start: datetime, end: datetime, now: datetime) -> None:
        if not isinstance(start, datetime) or not isinstance(end, datetime):
            raise ValidationError("callback window needs two datetimes")
        if start.tzinfo is None or end.tzinfo is None:
            raise ValidationError("callback window needs timezone-aware datetimes")
        if end <= start or end <= now:
            raise ValidationError("callback window must end after it starts and in the future",
                                  message_zh="请选择未来的回拨时间段")
        if start > now + CALLBACK_HORIZON:
            raise ValidationError("callback window too far ahead",
                                  message_zh="只能预约14天内的回拨")
        hours = self._settings.service_hours
        local_start, local_end = start.astimezone(hours.tz), end.astimezone(hours.tz)
        if (local_start.date() != local_end.date() or local_start.time() < hours.start
                or local_end.time() > hours.end):
            raise ValidationError(
                "callback window outside service hours",
                message_zh=(f"请在服务时间（{hours.start.strftime('%H:%M')}-"
                            f"{hours.end.strftime('%H:%M')}）内选择回拨时间"),
            )


# --- pure helpers ------------------------------------------------------------------------


def normalise_mobile(phone: Any) -> str:
    """A mainland mobile number as 11 digits; accepts spaces, hyphens and +86/0086/86."""
    if not isinstance(phone, str):
        raise ValidationError("phone must be text", message_zh="请输入正确的手机号码")
    digits = re.sub(r"[\s\-()]", "", phone)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix):]
            break
    if not _MOBILE.match(digits):
        raise ValidationError("not a mainland mobile number", message_zh="请输入正确的手机号码")
    return digits


def _check_identity(identity: Any) -> str | None:
    if identity is None:
        return None
    if not isinstance(identity, str) or not identity.strip() or len(identity) > 128:
        raise ValidationError("identity must be 1-128 characters")
    return identity


def _check_client_msg_id(client_msg_id: Any) -> str | None:
    if client_msg_id is None:
        return None
    if (not isinstance(client_msg_id, str) or not client_msg_id
            or len(client_msg_id) > MAX_CLIENT_MSG_ID):
        raise ValidationError(f"client_msg_id must be 1-{MAX_CLIENT_MSG_ID} characters")
    return client_msg_id


def _masked_view(message: MessageView) -> MessageView:
    return MessageView(
        session_id=message.session_id, seq=message.seq, sender=message.sender,
        text=mask_text(message.text), created_at=message.created_at,
        payload=mask_value(message.payload) if message.payload is not None else None,
        agent_id=message.agent_id, display_name=message.display_name, intent=message.intent,
        confidence=message.confidence, client_msg_id=message.client_msg_id,
        episode=message.episode,
    )


def _masked_message(message: MessageView) -> dict[str, Any]:
    return _masked_view(message).to_dict()


def _short(session_id: str) -> str:
    """A session id for logs: enough to correlate, not enough to resume the session."""
    return session_id[:8] + "…"


def _seconds_since(then: datetime | None, now: datetime) -> float | None:
    return max(0.0, (now - then).total_seconds()) if then is not None else None


def _why(signal: HandoffSignal) -> str:
    parts = [signal.reason]
    if signal.intent:
        parts.append(f"intent={signal.intent}")
    if signal.confidence is not None:
        parts.append(f"confidence={signal.confidence:.2f}")
    return " ".join(parts)
