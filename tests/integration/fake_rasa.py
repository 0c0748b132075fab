"""A stand-in Rasa HTTP server for gateway tests.

It speaks the two endpoints the gateway uses (REST webhook, tracker events) and answers by
scripted rules keyed on the borrower's text, so tests can trigger a greeting, the exact
handoff signal from docs/contracts.md, buttons, a slow reply and an outage on demand.
It runs its own event loop in a thread so tests can drive it from any loop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

GREETING_REPLY = "您好！我是贷款助手，请问有什么可以帮您？"
HANDOFF_NOTICE = "正在为您转接人工客服，请稍候。"
SLOW_REPLY = "这是一条很慢的回复。"
ECHO_PREFIX = "机器人收到："

# The exact custom payload the action server sends (docs/contracts.md, "The handoff signal").
HANDOFF_CUSTOM: dict[str, Any] = {
    "handoff": {
        "reason": "sensitive_intent",
        "intent": "request_human",
        "confidence": 0.93,
        "unresolved_turns": 0,
        "slots": {"amount": 50000, "term": 12},
    }
}
COMPLAINT_CUSTOM: dict[str, Any] = {
    "handoff": {
        "reason": "sensitive_intent",
        "intent": "complaint",
        "confidence": 0.88,
        "unresolved_turns": 1,
        "slots": {},
    }
}


_Fake = TypeVar("_Fake", bound="FakeRasa")


def free_port() -> int:
    """Ask the OS for a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FakeRasa:
    """Scripted Rasa: see :meth:`_reply_for` for the rules."""

    slow_seconds: float = 2.0
    port: int = 0  # 0: a free port, chosen again if another process takes it before we bind
    messages: list[dict[str, Any]] = field(default_factory=list)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    paused: set[str] = field(default_factory=set)
    tokens: list[str | None] = field(default_factory=list)  # ?token= of tracker-event calls
    client_ports: set[int] = field(default_factory=set)  # the connections webhook calls came on
    in_flight: int = 0
    most_in_flight: int = 0  # webhook calls being handled at once, at most

    def __post_init__(self) -> None:
        self._auto_port = self.port == 0
        if self._auto_port:
            self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self: _Fake) -> _Fake:
        """`with FakeRasa() as rasa:` — started for the block, stopped after it."""
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def go_down(self) -> None:
        """Close the listening socket: the gateway now gets 'connection refused'."""
        asyncio.run_coroutine_threadsafe(self._site_stop(), self._loop).result(10)

    def come_up(self) -> None:
        asyncio.run_coroutine_threadsafe(self._site_start(), self._loop).result(10)

    def texts_from(self, sender: str) -> list[str]:
        with self._lock:
            return [m["message"] for m in self.messages if m["sender"] == sender]

    def events_for(self, sender: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events.get(sender, []))

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", self._webhook)
        app.router.add_post("/conversations/{sender}/tracker/events", self._events)
        app.router.add_get("/", self._health)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        for attempt in range(5):
            try:
                await self._site_start()
                return
            except OSError:
                # free_port() only found a port free a moment ago; someone else got it.
                if not self._auto_port or attempt == 4:
                    raise
                self.port = free_port()

    async def _site_start(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()

    async def _site_stop(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- handlers ------------------------------------------------------------------------
    async def _health(self, _: web.Request) -> web.Response:
        return web.Response(text="Hello from Rasa: 3.6.21 (fake)")

    async def _events(self, request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        self.tokens.append(request.query.get("token"))
        body = await request.json()
        events = body if isinstance(body, list) else [body]
        with self._lock:
            self.events[sender].extend(events)
            if any(e.get("event") == "resume" for e in events):
                self.paused.discard(sender)
        return web.json_response({"sender_id": sender, "events": events})

    async def _webhook(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.client_ports.add(int(peer[1]))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        body = await request.json()
        sender = str(body.get("sender"))
        text = str(body.get("message", ""))
        if "坏" in text:
            return web.json_response({"error": "boom"}, status=500)
        with self._lock:
            self.messages.append(
                {"sender": sender, "message": text, "metadata": body.get("metadata")}
            )
            paused = sender in self.paused
        if paused:  # ConversationPaused: Rasa stays silent.
            return web.json_response([])
        replies = await self._reply_for(sender, text)
        return web.json_response(replies)

    async def _reply_for(self, sender: str, text: str) -> list[dict[str, Any]]:
        """Rules: 你好 → greeting; 转人工 → handoff signal; 投诉 → complaint handoff;
        慢 → slow reply; 按钮 → buttons; 两段 → two replies; anything else → echo.
        (坏 → HTTP 500 is handled before recording a reply.)"""
        if "转人工" in text or "投诉" in text:
            with self._lock:
                self.paused.add(sender)
            custom = HANDOFF_CUSTOM if "转人工" in text else COMPLAINT_CUSTOM
            return [
                {"recipient_id": sender, "text": HANDOFF_NOTICE},
                {"recipient_id": sender, "custom": custom},
            ]
        if "你好" in text:
            return [{"recipient_id": sender, "text": GREETING_REPLY}]
        if "慢" in text:
            await asyncio.sleep(self.slow_seconds)
            return [{"recipient_id": sender, "text": SLOW_REPLY}]
        if "按钮" in text:
            return [
                {
                    "recipient_id": sender,
                    "text": "请选择产品：",
                    "buttons": [
                        {"title": "信用贷", "payload": "/choose{\"product\":\"credit\"}"},
                        {"title": "公积金贷", "payload": "/choose{\"product\":\"provident_fund\"}"},
                    ],
                }
            ]
        if "两段" in text:
            return [
                {"recipient_id": sender, "text": "第一段"},
                {"recipient_id": sender, "text": "第二段"},
            ]
        return [{"recipient_id": sender, "text": f"{ECHO_PREFIX}{text}"}]
