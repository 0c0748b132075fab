"""Borrower socket.io namespace ("/"), speaking rasa-webchat's protocol.

The public rasa-webchat widget works unchanged: `session_request` → `session_confirm`,
`user_uttered` → `bot_uttered`. Everything is keyed by OUR session id (a room of that name),
never by the socket id, because a reconnect gets a new socket id. Decisions are the
service's; this layer validates shapes, calls the service off the event loop and delivers
the returned effects.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import parse_qs

import socketio

from handoff.borrower_auth import BorrowerTokens
from handoff.delivery import (
    AGENT_NS,
    BORROWER_NS,
    BOT_UTTERED,
    Delivery,
    agent_room,
    borrower_view,
    uttered_room,
)
from handoff.delivery import render_bot_uttered as render
from handoff.errors import HandoffError, NotFound, ValidationError
from handoff.model import BorrowerEvents
from handoff.service import HandoffService

log = logging.getLogger(__name__)

ERROR_EVENT = "error"
MAX_ID_LENGTH = 128
T = TypeVar("T")
Handler = Callable[..., Awaitable[Any]]


class BadInput(ValidationError):
    """A payload with the wrong shape (missing field, wrong type), caught before the service."""


def field_str(
    data: Mapping[str, Any], key: str, *, required: bool = True, max_length: int | None = None
) -> str | None:
    """A string field, or a BadInput naming it (in Chinese, for the client)."""
    value = data.get(key)
    if value is None:
        if required:
            raise BadInput(f"missing {key}", message_zh=f"缺少字段：{key}")
        return None
    if not isinstance(value, str):
        raise BadInput(f"{key} must be a string", message_zh=f"字段 {key} 必须是文本")
    if max_length is not None and len(value) > max_length:
        raise BadInput(f"{key} too long", message_zh=f"字段 {key} 过长")
    return value


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def plain_text(value: str) -> str:
    """Chat text is stored verbatim and every client renders it as text (never as HTML), so
    `<script>` typed by a borrower is kept and shown as typed. Control characters and lone
    surrogates are binary junk, not text: refuse them before anything is stored."""
    if _CONTROL_CHARS.search(value):
        raise BadInput(
            "control characters in text", message_zh="消息包含无法识别的字符，请重新输入"
        )
    return value


def field_bool(data: Mapping[str, Any], key: str, default: bool) -> bool:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadInput(f"{key} must be a boolean", message_zh=f"字段 {key} 必须是布尔值")
    return value


def field_int(data: Mapping[str, Any], key: str, *, required: bool = True) -> int | None:
    value = data.get(key)
    if value is None:
        if required:
            raise BadInput(f"missing {key}", message_zh=f"缺少字段：{key}")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{key} must be an integer", message_zh=f"字段 {key} 必须是整数")
    return value


def as_mapping(data: Any, *, allow_none: bool = False) -> Mapping[str, Any]:
    """Event payloads must be JSON objects; binary or scalar payloads are refused."""
    if data is None and allow_none:
        return {}
    if not isinstance(data, dict):
        raise BadInput("payload must be an object", message_zh="消息格式错误，应为 JSON 对象")
    return data


MAX_CUSTOM_DATA = 8 * 1024
MAX_CUSTOM_DEPTH = 8


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of JSON-like data, counted without recursion and only up to `limit`+1."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def custom_data(custom: Any) -> dict[str, Any] | None:
    """rasa-webchat's `customData`, passed to Rasa as message metadata. Anything but an object
    is ignored (the widget may send null); an object that cannot be sent on as small JSON
    (nested deeper than 8, over 8 KB, lone surrogates) is refused before anything is
    stored."""
    if not isinstance(custom, dict):
        return None
    if _depth(custom, MAX_CUSTOM_DEPTH) > MAX_CUSTOM_DEPTH:
        raise BadInput("customData nested too deeply",
                       message_zh="附加数据 customData 过大或格式错误")
    try:
        size = len(json.dumps(custom, ensure_ascii=False).encode("utf-8"))
    except (RecursionError, TypeError, ValueError, UnicodeEncodeError):
        size = MAX_CUSTOM_DATA + 1
    if size > MAX_CUSTOM_DATA:
        raise BadInput("customData too large or not JSON",
                       message_zh="附加数据 customData 过大或格式错误")
    return {"customData": custom}


def connect_token(auth: Any, environ: Mapping[str, Any]) -> Any:
    """The borrower token offered at connect: `auth.token`, else `?token=` in the URL."""
    if isinstance(auth, dict) and auth.get("token") not in (None, ""):
        return auth.get("token")
    query = parse_qs(str(environ.get("QUERY_STRING") or ""))
    values = query.get("token")
    return values[0] if values and values[0] else None


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(value: str, key: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{key} is not ISO time", message_zh=f"字段 {key} 时间格式错误") from None


def guarded(handler: Handler) -> Handler:
    """Turn any failure into an `error` event + a failed ack; never a silent drop."""

    @functools.wraps(handler)
    async def wrapper(self: GatewayNamespace, sid: str, *args: Any) -> Any:
        try:
            return await handler(self, sid, *args)
        except HandoffError as err:
            body = err.to_dict()
            await self.emit(ERROR_EVENT, body, to=sid)
            return {"ok": False, **body}
        except Exception:
            log.exception("handler %s failed", handler.__name__)
            body = HandoffError().to_dict()
            await self.emit(ERROR_EVENT, body, to=sid)
            return {"ok": False, **body}

    return wrapper


class GatewayNamespace(socketio.AsyncNamespace):
    """Shared plumbing: run service calls in a worker thread, deliver effects."""

    def __init__(self, namespace: str, service: HandoffService, delivery: Delivery) -> None:
        super().__init__(namespace)
        self.service = service
        self.delivery = delivery

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # The service is synchronous (database work): on the loop or in a thread, as the
        # store decides (handoff/store_calls.py).
        result: T = await self.delivery.run_store(fn, *args, **kwargs)
        return result


class BorrowerNamespace(GatewayNamespace):
    """Rasa socket.io protocol, served by the gateway."""

    def __init__(self, service: HandoffService, delivery: Delivery, max_length: int,
                 tokens: BorrowerTokens | None = None) -> None:
        super().__init__(BORROWER_NS, service, delivery)
        self.max_length = max_length
        # No token settings = anonymous sessions only (a given token is refused, not ignored).
        self.tokens = tokens or BorrowerTokens(None, False, _utc_now)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """A borrower token may come as socket.io `auth.token` (what Rasa's own channel reads)
        or as `?token=` on the socket URL (the only way the unmodified rasa-webchat widget can
        send one). A bad token refuses the connection; a missing one is decided at
        `session_request` (which may still carry the token)."""
        token = connect_token(auth, environ)
        try:
            identity = self.tokens.identity(token) if token is not None else None
        except HandoffError as err:
            log.info("borrower connection refused: %s", err)
            raise socketio.exceptions.ConnectionRefusedError(
                err.message_zh, err.to_dict()) from None
        await self.save_session(sid, {"session_id": None, "identity": identity})

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        log.debug("borrower socket %s left", sid)

    async def _confirmed(self, sid: str, data: Mapping[str, Any]) -> str:
        """The session this socket confirmed; a different or unknown id is refused."""
        state = await self.get_session(sid)
        current = state.get("session_id")
        asked = field_str(data, "session_id", required=False, max_length=MAX_ID_LENGTH)
        if current is None or (asked is not None and asked != current):
            raise NotFound(
                "session not confirmed on this socket",
                message_zh="会话不存在或未建立，请刷新页面后重试",
            )
        return str(current)

    @guarded
    async def on_session_request(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Open or resume a session, confirm it, and replay what this client missed."""
        payload = as_mapping(data, allow_none=True)
        asked = field_str(payload, "session_id", required=False, max_length=MAX_ID_LENGTH)
        last_seq = field_int(payload, "last_seq", required=False)
        if last_seq is not None and last_seq < 0:
            raise BadInput("negative last_seq", message_zh="字段 last_seq 不能为负数")
        # A client that renders `message` events itself (our chat page) may decline the
        # rasa-webchat copies of each one; replays still come as `bot_uttered`.
        wants_uttered = field_bool(payload, "bot_uttered", True)
        state = await self.get_session(sid)
        identity = state.get("identity")
        given = payload.get("auth_token")
        if given not in (None, ""):
            # A token here replaces the connect-time one (e.g. the app refreshed it).
            identity = self.tokens.identity(given)
        elif identity is None:
            self.tokens.identity(None)  # refuses (auth_failed) when a token is required
        result = await self.call(self.service.open_session, asked or None, identity)
        session_id = result.session.session_id
        old = state.get("session_id")
        if old and old != session_id:
            await self.leave_room(sid, old)
            await self.leave_room(sid, uttered_room(old))
        await self.save_session(sid, {"session_id": session_id, "identity": identity})
        await self.enter_room(sid, session_id)
        if wants_uttered:
            await self.enter_room(sid, uttered_room(session_id))
        else:
            await self.leave_room(sid, uttered_room(session_id))
        # Exactly what rasa's SocketIOInput emits: the bare session id.
        await self.emit("session_confirm", session_id, to=sid)
        await self.emit("status", result.status.to_dict(), to=sid)
        await self.emit("history", {
            "session_id": session_id,
            "messages": [borrower_view(m.to_dict()) for m in result.history],
        }, to=sid)
        if result.callback_offer is not None:
            await self.emit(BorrowerEvents.CALLBACK_OFFER, result.callback_offer, to=sid)
        await self._replay(sid, session_id, last_seq, created=result.created)
        await self.delivery.deliver(result.effects)
        return {"ok": True, "session_id": session_id, "created": result.created,
                "state": result.session.state, "last_seq": result.session.last_seq}

    async def _replay(self, sid: str, session_id: str, last_seq: int | None, created: bool) -> None:
        """Send messages after `last_seq` (or after the session's replay mark), in order."""
        if created:
            return
        since = last_seq if last_seq is not None else await self.delivery.marks.get(session_id)
        if since is None:
            return  # the client keeps its own history and did not ask for a replay
        missed = await self.call(self.service.history_since, session_id, since)
        for message in missed:
            for uttered in render(message.to_dict()):
                uttered["metadata"]["replayed"] = True
                await self.emit(BOT_UTTERED, uttered, to=sid)
        if missed:
            await self.delivery.marks.advance(session_id, max(m.seq for m in missed))

    @guarded
    async def on_user_uttered(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Store first (in arrival order), then route; the ack means 'stored'.

        A refused message (too long, too fast, bad shape) also gets its Chinese reason as a
        `bot_uttered` sentence: rasa-webchat shows neither acks nor `error` events, and a
        borrower must never think a refused message was sent."""
        try:
            return await self._user_uttered(sid, data)
        except HandoffError as err:
            await self.emit(BOT_UTTERED, {"text": err.message_zh, "metadata": {
                "sender": "system", "event": ERROR_EVENT, "code": err.code}}, to=sid)
            raise

    async def _user_uttered(self, sid: str, data: Any) -> dict[str, Any]:
        payload = as_mapping(data)
        session_id = await self._confirmed(sid, payload)
        # Length is the service's rule; the transport only guards memory and type.
        text = plain_text(str(field_str(payload, "message")))
        client_msg_id = field_str(payload, "client_msg_id", required=False,
                                  max_length=MAX_ID_LENGTH)
        metadata = custom_data(payload.get("customData"))
        async with self.delivery.ingress_locks.hold(session_id):
            result = await self.call(
                self.service.record_borrower_message, session_id, text, client_msg_id, metadata
            )
            # Deliver under the lock so Rasa forwards are queued in storage order.
            await self.delivery.deliver(result.effects)
        return {"ok": True, "seq": result.message.seq, "route": result.route}

    @guarded
    async def on_user_typing(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Ephemeral: relayed to the holding agent only, never stored."""
        payload = as_mapping(data)
        session_id = await self._confirmed(sid, payload)
        typing = payload.get("typing", True)
        if not isinstance(typing, bool):
            raise BadInput("typing must be a boolean", message_zh="字段 typing 必须是布尔值")
        view = await self.call(self.service.session, session_id)
        if view.state == "assigned" and view.agent_id:
            await self.delivery.sio.emit(
                "typing",
                {"session_id": session_id, "from": "borrower", "typing": typing},
                room=agent_room(view.agent_id),
                namespace=AGENT_NS,
            )
        return {"ok": True}

    @guarded
    async def on_csat(self, sid: str, data: Any = None) -> dict[str, Any]:
        payload = as_mapping(data)
        session_id = await self._confirmed(sid, payload)
        score = field_int(payload, "score")
        comment = field_str(payload, "comment", required=False, max_length=self.max_length)
        if comment is not None:
            plain_text(comment)
        result = await self.call(self.service.rate, session_id, score, comment)
        await self.delivery.deliver(result.effects)
        return {"ok": True}

    @guarded
    async def on_callback_request(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Book a phone callback (offered when no agent is online or outside hours)."""
        payload = as_mapping(data)
        session_id = await self._confirmed(sid, payload)
        phone = field_str(payload, "phone", max_length=32)
        start = parse_time(str(field_str(payload, "window_start", max_length=64)), "window_start")
        end = parse_time(str(field_str(payload, "window_end", max_length=64)), "window_end")
        view = await self.call(self.service.book_callback, session_id, phone, start, end)
        return {"ok": True, "callback": view.to_dict()}
