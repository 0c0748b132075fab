"""Delivers the service's effects to socket.io rooms and to Rasa.

The service decides and records; this module only moves bytes. It also owns the two
per-session orderings the transport needs: borrower messages are stored in arrival order
(`ingress` lock) and forwarded to Rasa one at a time in that order (`rasa` lock), so bot
replies never overtake each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

import socketio

from handoff.errors import StoreUnavailable
from handoff.model import (
    BorrowerEvents,
    BotRepliesResult,
    Effect,
    ToAgents,
    ToBorrower,
    ToRasa,
    ToRasaMessage,
)
from handoff.rasa_client import RasaClient, RasaUnavailable
from handoff.replay_marks import LocalMarks, ReplayMarks

log = logging.getLogger(__name__)

BORROWER_NS = "/"
AGENT_NS = "/agent"
BOT_UTTERED = "bot_uttered"
BORROWER_HIDDEN = ("agent_id", "intent", "confidence")
MEMO_LIMIT = 100_000
STORE_RETRY_SECONDS = 120.0
V = TypeVar("V")


def short_id(session_id: str) -> str:
    """A session id for logs: enough to correlate, not enough to resume the session."""
    return session_id[:8] + "…"


def uttered_room(session_id: str) -> str:
    """The session's sockets that want rasa-webchat's `bot_uttered` renderings (every socket
    unless it said `"bot_uttered": false` in session_request, as our own chat page does)."""
    return f"uttered:{session_id}"


def agent_room(agent_id: str) -> str:
    return f"agent:{agent_id}"


def skill_room(skill: str) -> str:
    return f"skill:{skill}"


class BotReplies(Protocol):
    """The two service calls the Rasa forwarder needs (HandoffService satisfies it)."""

    def accept_bot_replies(self, session_id: str, replies: Any) -> BotRepliesResult: ...

    def bot_unavailable(self, session_id: str, detail: str = "") -> BotRepliesResult: ...


def remember(memo: OrderedDict[str, V], key: str, value: V) -> None:
    """Bounded per-session memo: the least recently updated sessions are forgotten first, so
    a long-running gateway does not grow without limit."""
    memo[key] = value
    memo.move_to_end(key)
    while len(memo) > MEMO_LIMIT:
        memo.popitem(last=False)


class SessionLocks:
    """Named asyncio locks that disappear when nobody holds or waits for them."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:
                del self._users[key]
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)


def borrower_view(message: Mapping[str, Any]) -> dict[str, Any]:
    """A stored message as borrowers may see it: the agent's display name, not internal
    usernames or NLU scores."""
    return {k: v for k, v in message.items() if k not in BORROWER_HIDDEN}


def render_bot_uttered(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Render a stored message (MessageView.to_dict()) as rasa-webchat ``bot_uttered`` events.

    Mirrors rasa's ``SocketIOOutput`` exactly, because rasa-webchat dispatches on the exact
    set of keys (after dropping ``metadata``): text is split on blank lines, buttons become
    ``quick_replies`` on the last part, an image or attachment and ``custom`` are separate
    events. Borrower messages are not echoed (the widget shows its own). Every event's
    ``metadata`` carries the message's seq so clients can ask for a replay.
    """
    sender = message.get("sender")
    if sender == "borrower":
        return []
    raw_payload = message.get("payload")
    payload: Mapping[str, Any] = raw_payload if isinstance(raw_payload, dict) else {}
    events: list[dict[str, Any]] = []
    text = message.get("text")
    buttons = payload.get("buttons")
    if isinstance(text, str) and text.strip():
        if isinstance(buttons, list) and buttons:
            parts = text.strip().split("\n\n") or [text]
            events.extend({"text": part} for part in parts)
            events[-1]["quick_replies"] = [
                {"content_type": "text", "title": str(b.get("title", "")),
                 "payload": str(b.get("payload", ""))}
                for b in buttons
                if isinstance(b, dict)
            ]
        else:
            events.extend({"text": part} for part in text.strip().split("\n\n") if part)
    image = payload.get("image")
    if isinstance(image, str) and image:
        events.append({"attachment": {"type": "image", "payload": {"src": image}}})
    if payload.get("attachment"):
        events.append({"attachment": payload["attachment"]})
    custom = payload.get("custom")
    if isinstance(custom, dict) and custom:
        events.append({"custom": custom})
    metadata: dict[str, Any] = {
        "seq": message.get("seq"),
        "sender": sender,
        "session_id": message.get("session_id"),
        "created_at": message.get("created_at"),
    }
    if sender == "agent":
        metadata["agent_name"] = message.get("display_name")
    for event in events:
        event["metadata"] = dict(metadata)
    return events


class Delivery:
    """Moves effects to their destinations, in the order the service returned them."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        rasa: RasaClient,
        service: BotReplies,
        run_sync: Callable[..., Awaitable[Any]],
        marks: ReplayMarks | None = None,
    ) -> None:
        self.sio = sio
        self.rasa = rasa
        self.service = service
        self._run_sync = run_sync
        self.ingress_locks = SessionLocks()
        self.rasa_locks = SessionLocks()
        self._tasks: set[asyncio.Task[None]] = set()
        # Highest seq delivered to a borrower socket per session, advanced by the socket.io
        # manager where the socket is (handoff.replay_marks); shared via Redis when scaled.
        self.marks: ReplayMarks = marks if marks is not None else LocalMarks()
        self._last_status_text: OrderedDict[str, str] = OrderedDict()

    @property
    def run_store(self) -> Callable[..., Awaitable[Any]]:
        """How synchronous service calls run here (handoff/store_calls.py)."""
        return self._run_sync

    async def deliver(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            try:
                await self._deliver_one(effect)
            except Exception:  # one bad delivery must not stop the rest
                log.exception("delivery of %r failed", type(effect).__name__)

    async def _deliver_one(self, effect: Effect) -> None:
        if isinstance(effect, ToBorrower):
            await self.to_borrower(effect.session_id, effect.event, effect.payload)
        elif isinstance(effect, ToAgents):
            for agent_id in effect.agent_ids:
                await self.sio.emit(
                    effect.event, effect.payload, room=agent_room(agent_id), namespace=AGENT_NS
                )
        elif isinstance(effect, ToRasaMessage):
            self._spawn(self.forward_to_rasa(effect))
        elif isinstance(effect, ToRasa):
            self._spawn(self.send_tracker_events(effect))

    async def to_borrower(self, session_id: str, event: str, payload: Mapping[str, Any]) -> None:
        """Emit a service event to the session's sockets, plus the rasa-webchat rendering the
        widget understands to those that want it (uttered_room)."""
        body = borrower_view(payload) if event == BorrowerEvents.MESSAGE else dict(payload)
        await self.sio.emit(event, body, room=session_id, namespace=BORROWER_NS)
        if event == BorrowerEvents.MESSAGE:
            for uttered in render_bot_uttered(payload):
                await self.sio.emit(BOT_UTTERED, uttered, room=uttered_room(session_id),
                                    namespace=BORROWER_NS)
        elif event in (
            BorrowerEvents.STATUS,
            BorrowerEvents.CSAT_REQUEST,
            BorrowerEvents.CALLBACK_OFFER,
        ):
            text = payload.get("text")
            if event == BorrowerEvents.STATUS:
                # The queue moves often; say a waiting-time sentence only when it changes.
                if text == self._last_status_text.get(session_id):
                    return
                if text:
                    remember(self._last_status_text, session_id, text)
                else:
                    self._last_status_text.pop(session_id, None)
            if isinstance(text, str) and text:
                await self.sio.emit(
                    BOT_UTTERED,
                    {"text": text, "metadata": {"sender": "system", "event": event,
                                                "session_id": session_id}},
                    room=uttered_room(session_id),
                    namespace=BORROWER_NS,
                )

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for in-flight Rasa calls, and any they started (used at shutdown)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.wait(set(self._tasks), timeout=left)

    async def forward_to_rasa(self, effect: ToRasaMessage) -> None:
        """One in-flight Rasa call per session; the service drops replies that come late."""
        async with self.rasa_locks.hold(effect.session_id):
            try:
                replies = await self.rasa.send_message(
                    effect.session_id, effect.text, {**effect.metadata, "seq": effect.seq}
                )
            except RasaUnavailable as exc:
                log.warning("Rasa unavailable for %s: %s", short_id(effect.session_id), exc)
                result = await self._store_retrying(
                    self.service.bot_unavailable, effect.session_id, str(exc)
                )
            else:
                result = await self._store_retrying(
                    self.service.accept_bot_replies, effect.session_id, replies
                )
            if result is None:
                return
            if result.dropped:
                log.info("dropped %d late bot replies for %s", result.dropped,
                         short_id(effect.session_id))
            await self.deliver(result.effects)

    async def _store_retrying(self, fn: Callable[..., BotRepliesResult], session_id: str,
                              arg: Any) -> BotRepliesResult | None:
        """Bot replies that arrive while the database is down are kept and stored once it is
        back (in order: the session's Rasa lock is held meanwhile), not dropped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STORE_RETRY_SECONDS
        delay = 0.5
        while True:
            try:
                result: BotRepliesResult = await self._run_sync(fn, session_id, arg)
                return result
            except StoreUnavailable:
                if loop.time() + delay > deadline:
                    log.error("bot replies for %s lost: database down for over %.0f s",
                              short_id(session_id), STORE_RETRY_SECONDS)
                    return None
                log.warning("bot replies for %s wait for the database", short_id(session_id))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def send_tracker_events(self, effect: ToRasa) -> None:
        """Resume events; retried a few times because a lost resume leaves Rasa paused."""
        async with self.rasa_locks.hold(effect.session_id):
            for attempt in range(3):
                try:
                    await self.rasa.append_events(effect.session_id, effect.events)
                    return
                except RasaUnavailable as exc:
                    log.warning("tracker events for %s failed (%s), attempt %d",
                                short_id(effect.session_id), exc, attempt + 1)
                    await asyncio.sleep(0.5 * (attempt + 1))
            log.error("gave up sending tracker events for %s", short_id(effect.session_id))
