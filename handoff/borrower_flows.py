"""The borrower side of HandoffService: sessions, messages, bot replies, hand-offs,
CSAT and callbacks."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Row

from handoff import queue_view
from handoff.errors import ConflictError, IdentityMismatch, NotFound, ValidationError
from handoff.masking import mask_text
from handoff.model import (
    ActionResult,
    AgentEvents,
    BorrowerEvents,
    BotRepliesResult,
    CallbackView,
    Effect,
    HandoffSignal,
    MessageResult,
    MessageView,
    OpenResult,
    Route,
    SessionView,
    ToAgents,
    ToBorrower,
    ToRasa,
    ToRasaMessage,
)
from handoff.policy import parse_handoff_payload
from handoff.service_core import RESUME_EVENTS, ServiceCore
from handoff.states import SessionEvent, SessionState
from handoff.store import nodes, repo
from handoff.texts import Texts
from handoff.validation import (
    MAX_COMMENT_LENGTH,
    SESSION_ID,
    check_callback_window,
    check_client_msg_id,
    check_identity,
    normalise_mobile,
)
from handoff.views import masked_message, short_id

log = logging.getLogger("handoff.service")


class BorrowerFlows(ServiceCore):
    """What borrowers (and Rasa's replies to them) do to a conversation."""

    def open_session(self, session_id: str | None, identity: str | None) -> OpenResult:
        """Resume a session or start one (an unknown or missing id → a new unguessable id).

        Raises IdentityMismatch when the id exists but is bound to another identity.
        """
        identity = check_identity(identity)
        now = self._now()
        with self._store.write() as conn:
            row = None
            if isinstance(session_id, str) and SESSION_ID.match(session_id):
                row = repo.get_session(conn, session_id)
            created = row is None
            if row is None:
                new_id = secrets.token_urlsafe(24)
                repo.insert_session(conn, new_id, identity, now)
                row = repo.require_session(conn, new_id)
            elif row.identity != identity:
                raise IdentityMismatch(f"session {row.id} is bound to another identity")
            history = repo.last_messages(conn, row.id, self._settings.history_limit)
            reads = self._queue_reads(conn)
            status = self._status(conn, row, reads)
            view = self._view(conn, row)
            # A borrower coming back to a wait nobody can serve is offered the callback again.
            offer = (queue_view.callback_offer(reads, row.id,
                                               row.skill or self._policy.default_skill, now)
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
        client_msg_id = check_client_msg_id(client_msg_id)
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
                    ToAgents((row.agent_id,), AgentEvents.MESSAGE, masked_message(message))
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
                        short_id(session_id), row.state, mask_text(str(reply)[:200]),
                    )
                    continue
                if not isinstance(reply, dict):
                    log.warning("ignored malformed bot reply for %s: %s", short_id(session_id),
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
                log.warning("bot gave no reply for session %s; handing off", short_id(session_id))
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
                log.info("bot_unavailable ignored for %s in state %s", short_id(session_id),
                         row.state)
                return BotRepliesResult((), 0, False)
            log.warning("bot unavailable for session %s: %s", short_id(session_id),
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
        check_callback_window(window_start, window_end, now, self._settings.service_hours)
        with self._store.write() as conn:
            repo.require_session(conn, session_id)
            callback_id = repo.insert_callback(
                conn, session_id, number, window_start, window_end, now
            )
            row = repo.get_callback(conn, callback_id)
            assert row is not None
            log.info("callback %s booked for session %s (%s)", callback_id, short_id(session_id),
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
