"""Load drivers: N concurrent borrowers against Rasa's REST channel or the gateway's socket.io.

Closed loop, no think time (as the issue's vanilla figures were taken): each of N workers
runs one conversation after another and sends a message as soon as the previous one was
answered. Every loop stops at the level's end time; every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio

from bench.sio_client import LeanSocketIO
from bench.stats import LevelResult
from bench.utterances import Conversation, conversations

log = logging.getLogger(__name__)

CLIENTS = ("python-socketio", "lean")  # bench/sio_client.py says why two
TURN_TIMEOUT = 30.0       # a reply slower than this is a timeout, not a latency sample
HANDBACK_TIMEOUT = 30.0   # scripted agent returns the borrower to the bot within this
AGENT_REPLY = "您好，我是客服{name}，已收到您的问题，现在为您转回智能助手。"
RESUME_EVENTS = [{"event": "resume"}, {"event": "slot", "name": "unresolved_turns", "value": 0}]


def now() -> float:
    return time.monotonic()


@dataclass
class Level:
    """One measured run: `concurrency` workers, `warmup` s unmeasured, then `seconds` s."""

    concurrency: int
    warmup: float
    seconds: float
    seed: int
    think: float = 0.0  # mean pause before each next message (0: closed loop, no think time)
    client: str = "python-socketio"  # the borrowers' socket.io client, or "lean"

    async def pause(self, rng: random.Random) -> None:
        """A borrower reading and typing: uniform in [think/2, 3*think/2] seconds."""
        if self.think > 0:
            await asyncio.sleep(rng.uniform(self.think / 2, self.think * 1.5))

    def result(self, system: str, t0: float) -> LevelResult:
        return LevelResult(system, self.concurrency, t0 + self.warmup,
                           t0 + self.warmup + self.seconds)


def _stream(level: Level, worker: int) -> Iterator[Conversation]:
    return conversations(level.seed * 1000 + worker)


# --- vanilla: Rasa's REST channel ------------------------------------------------------------


async def run_rest(rasa_urls: list[str], token: str | None, level: Level,
                   system: str) -> LevelResult:
    """N HTTP borrowers posting to /webhooks/rest/webhook (what a plain `rasa run` serves).
    With several Rasa URLs each conversation stays on one, chosen by a hash of its sender id."""
    t0 = now()
    result = level.result(system, t0)
    async with _rest_session() as http:

        async def worker(i: int) -> None:
            rng = random.Random(i)
            for conv in _stream(level, i):
                if now() >= result.end:
                    return
                await rest_conversation(http, rasa_urls, token, conv, level, result, rng)

        await asyncio.gather(*(worker(i) for i in range(level.concurrency)))
    return result


def _rest_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                 timeout=aiohttp.ClientTimeout(total=TURN_TIMEOUT))


@contextlib.asynccontextmanager
async def _borrower_http(level: Level) -> AsyncIterator[aiohttp.ClientSession | None]:
    """The lean client's shared HTTP session (None: each borrower on python-socketio's own).
    No total timeout: it would end a websocket that lives longer; each wait has its own."""
    if level.client not in CLIENTS:
        raise ValueError(f"unknown borrower client {level.client!r}; one of {CLIENTS}")
    if level.client != "lean":
        yield None
        return
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, connect=TURN_TIMEOUT)) as http:
        yield http


async def _paced(conv: Conversation, level: Level, result: LevelResult,
                 rng: random.Random) -> AsyncIterator[tuple[int, str, float]]:
    """A conversation's messages in order, each after the borrower's pause, with the time it
    is sent; none once the level has ended."""
    for n, text in enumerate(conv.turns):
        if now() >= result.end:
            return
        result.texts.add(text)
        if n:
            await level.pause(rng)
        yield n, text, now()


async def rest_conversation(http: aiohttp.ClientSession, rasa_urls: list[str],
                            token: str | None, conv: Conversation, level: Level,
                            result: LevelResult, rng: random.Random) -> None:
    """One conversation over Rasa's REST channel, as a new sender; stops at the level's end."""
    sender = f"bench-{uuid.uuid4().hex}"
    rasa_url = rasa_urls[zlib.crc32(sender.encode()) % len(rasa_urls)]
    async for n, text, sent in _paced(conv, level, result, rng):
        replies: Any = None
        try:
            async with http.post(f"{rasa_url}/webhooks/rest/webhook",
                                 json={"sender": sender, "message": text}) as resp:
                replies = await resp.json(content_type=None)
                if resp.status >= 400:
                    raise aiohttp.ClientResponseError(
                        resp.request_info, (), status=resp.status)
        except asyncio.TimeoutError:
            result.record(sent, None, conv.kind)
            return
        except (aiohttp.ClientError, ValueError):
            result.errors += 1
            await asyncio.sleep(0.1)
            return
        result.record(sent, now(), conv.kind)
        if n == conv.handoff_turn and _has_handoff(replies):
            # No agent in vanilla Rasa: give the conversation straight back, as the
            # gateway does when an agent returns the borrower (not a timed turn).
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.post(
                    f"{rasa_url}/conversations/{sender}/tracker/events",
                    params={"token": token} if token else {}, json=RESUME_EVENTS,
                ) as resp:
                    await resp.read()


def _has_handoff(replies: Any) -> bool:
    return isinstance(replies, list) and any(
        isinstance(r, dict) and isinstance(r.get("custom"), dict) and "handoff" in r["custom"]
        for r in replies
    )


# --- the gateway: socket.io borrowers and scripted agents ---------------------------------


class HandoffClock:
    """Trigger times of handoff messages and the first agent notification of each session."""

    def __init__(self) -> None:
        self.triggered: dict[str, float] = {}
        self.replied: dict[str, float] = {}
        self.notified: dict[str, float] = {}

    def trigger(self, session_id: str, at: float) -> None:
        self.triggered[session_id] = at
        self.notified.pop(session_id, None)
        self.replied.pop(session_id, None)

    def reply(self, session_id: str, at: float) -> None:
        """The borrower got the bot's answer to the trigger (the handoff decision is made)."""
        self.replied[session_id] = at

    def notify(self, session_id: str, at: float) -> None:
        if session_id in self.triggered and session_id not in self.notified:
            self.notified[session_id] = at

    def latencies(self, start: float, end: float) -> list[float]:
        return [self.notified[s] - t for s, t in self.triggered.items()
                if s in self.notified and start <= t < end]

    def after_reply(self, start: float, end: float) -> list[float]:
        """Bot's handoff reply seen by the borrower → agent notified (the gateway's part).
        Both are emitted by the gateway from one batch of effects, so this can be ≤ 0."""
        return [self.notified[s] - self.replied[s] for s, t in self.triggered.items()
                if s in self.notified and s in self.replied and start <= t < end]


class SocketBorrower:
    """One borrower connection to the gateway's "/" namespace (rasa-webchat protocol), on the
    lean client over `http` (bench/sio_client.py) or, without it, python-socketio's."""

    def __init__(self, http: aiohttp.ClientSession | None = None) -> None:
        self.sio: LeanSocketIO | socketio.AsyncClient = (
            LeanSocketIO(http) if http is not None else socketio.AsyncClient(reconnection=False))
        self.replies: list[tuple[int, float]] = []   # (seq, arrival) of bot/system messages
        self.state = "bot"
        self.changed = asyncio.Event()
        self.session_id = ""
        self.sio.on("message", self._on_message)
        self.sio.on("status", self._on_status)
        self.sio.on("session_confirm", self._on_confirm)
        self._confirmed = asyncio.Event()

    def _on_message(self, data: Any) -> None:
        if isinstance(data, dict) and data.get("sender") in ("bot", "system", "agent"):
            self.replies.append((int(data.get("seq") or 0), now()))
            self.changed.set()

    def _on_status(self, data: Any) -> None:
        if isinstance(data, dict) and data.get("state"):
            self.state = str(data["state"])
            self.changed.set()

    def _on_confirm(self, data: Any) -> None:
        self.session_id = str(data if isinstance(data, str) else data.get("session_id"))
        self._confirmed.set()

    async def open(self, url: str) -> None:
        if isinstance(self.sio, LeanSocketIO):
            await self.sio.connect(url, timeout=TURN_TIMEOUT)
        else:
            await self.sio.connect(url, transports=["websocket"], wait_timeout=TURN_TIMEOUT)
        # as our chat page does: `message` events only, no rasa-webchat copies
        await self.sio.emit("session_request", {"session_id": None, "bot_uttered": False})
        await asyncio.wait_for(self._confirmed.wait(), TURN_TIMEOUT)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()

    async def wait(self, predicate: Any, deadline: float) -> bool:
        while not predicate():
            remaining = deadline - now()
            if remaining <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True

    async def say(self, text: str) -> float | None:
        """Send; return the arrival time of the first reply to this message (None: timeout)."""
        ack = await self.sio.call("user_uttered", {"message": text, "session_id": self.session_id},
                                  timeout=TURN_TIMEOUT)
        if not isinstance(ack, dict) or not ack.get("ok"):
            raise RuntimeError(f"user_uttered refused: {ack}")
        seq = int(ack["seq"])
        deadline = now() + TURN_TIMEOUT
        found: list[float] = []

        def answered() -> bool:
            found[:] = [t for s, t in self.replies if s > seq][:1]
            return bool(found)

        if await self.wait(answered, deadline):
            return found[0]
        return None


@dataclass
class ScriptedAgents:
    """Agents that claim whatever reaches their queue, say one sentence and hand back."""

    url: str
    accounts: list[tuple[str, str, str]]   # username, password, display name
    clock: HandoffClock
    clients: list[socketio.AsyncClient] = field(default_factory=list)
    handled: int = 0
    _claiming: set[str] = field(default_factory=set)

    async def start(self) -> None:
        async with aiohttp.ClientSession() as http:
            for username, password, name in self.accounts:
                async with http.post(f"{self.url}/api/login",
                                     json={"username": username, "password": password}) as resp:
                    body = await resp.json()
                    if resp.status != 200:
                        raise RuntimeError(f"agent login failed: {body}")
                client = socketio.AsyncClient(reconnection=False)
                self._wire(client, name)
                await client.connect(self.url, transports=["websocket"], namespaces=["/agent"],
                                     auth={"token": body["token"]}, wait_timeout=10)
                self.clients.append(client)

    def _wire(self, client: socketio.AsyncClient, name: str) -> None:
        async def on_queue(data: Any) -> None:
            entries = data.get("entries", []) if isinstance(data, dict) else []
            at = now()
            for entry in entries:
                self.clock.notify(entry["session_id"], at)
            for entry in entries:
                sid = entry["session_id"]
                if sid not in self._claiming:
                    self._claiming.add(sid)
                    asyncio.ensure_future(self._handle(client, sid, name))

        client.on("queue", on_queue, namespace="/agent")

    async def _handle(self, client: socketio.AsyncClient, session_id: str, name: str) -> None:
        try:
            ack = await client.call("claim", {"session_id": session_id}, namespace="/agent",
                                    timeout=TURN_TIMEOUT)
            if not ack.get("ok"):
                return
            await client.call("message", {"session_id": session_id,
                                          "text": AGENT_REPLY.format(name=name)},
                              namespace="/agent", timeout=TURN_TIMEOUT)
            await client.call("close", {"session_id": session_id,
                                        "disposition": "return_to_bot"},
                              namespace="/agent", timeout=TURN_TIMEOUT)
            self.handled += 1
        except Exception as exc:  # a failed hand-back shows up as the borrower's timeout
            log.warning("agent could not handle %s: %s", session_id[:8], exc)
        finally:
            self._claiming.discard(session_id)

    async def stop(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.disconnect()


async def run_gateway(url: str, agents: ScriptedAgents, level: Level,
                      system: str) -> LevelResult:
    """N socket.io borrowers, each conversation on its own new session and connection."""
    t0 = now()
    result = level.result(system, t0)
    clock = agents.clock
    clock.triggered.clear()
    clock.replied.clear()
    clock.notified.clear()

    async def worker(i: int, http: aiohttp.ClientSession | None) -> None:
        rng = random.Random(i)
        for conv in itertools.islice(_stream(level, i), 100_000):
            if now() >= result.end:
                return
            await gateway_conversation(url, clock, conv, level, result, rng, http)

    async with _borrower_http(level) as http:
        await asyncio.gather(*(worker(i, http) for i in range(level.concurrency)))
    result.handoffs = clock.latencies(result.start, result.end)
    result.handoffs_after_reply = clock.after_reply(result.start, result.end)
    return result


async def gateway_conversation(url: str, clock: HandoffClock, conv: Conversation, level: Level,
                               result: LevelResult, rng: random.Random,
                               http: aiohttp.ClientSession | None = None) -> None:
    """One conversation through the gateway on a new session and socket; a hand-off waits
    for the scripted agent to give the borrower back. Stops at the level's end."""
    borrower = SocketBorrower(http)
    try:
        await borrower.open(url)
        async for n, text, sent in _paced(conv, level, result, rng):
            if n == conv.handoff_turn:
                clock.trigger(borrower.session_id, sent)
            answered = await borrower.say(text)
            result.record(sent, answered, conv.kind)
            if answered is None:
                break
            if n == conv.handoff_turn:
                clock.reply(borrower.session_id, answered)
                # wait until queued, the scripted agent answers and hands back
                # (status follows the reply in the same delivery: 0.5 s is ample)
                await borrower.wait(lambda b=borrower: b.state != "bot", now() + 0.5)
                await borrower.wait(lambda b=borrower: b.state == "bot",
                                    now() + HANDBACK_TIMEOUT)
    except Exception as exc:
        result.errors += 1
        log.warning("borrower failed: %s", exc)
        await asyncio.sleep(0.1)
    finally:
        await borrower.close()


async def run_interleaved(url: str, agents: ScriptedAgents, rasa_urls: list[str],
                          token: str | None, level: Level,
                          system: str) -> tuple[LevelResult, LevelResult]:
    """One borrower at a time, the same conversations through the gateway and straight to
    the same Rasa over REST, alternating conversation by conversation (and which goes first).

    Why: the gateway's overhead is a difference of a few milliseconds between two latencies
    of ten or so, and this machine's speed drifts by more than that between two windows of
    15 s measured one after the other. Interleaved, both see the same machine.
    """
    t0 = now()
    via_gateway = level.result(f"{system}-interleaved", t0)
    direct = level.result(f"rasa-behind-{system}", t0)
    clock = agents.clock
    async with _rest_session() as http, _borrower_http(level) as ws_http:
        rng = random.Random(0)
        for k, conv in enumerate(itertools.islice(_stream(level, 0), 100_000)):
            if now() >= via_gateway.end:
                break
            gateway_first = k % 2 == 0
            for through_gateway in (gateway_first, not gateway_first):
                if through_gateway:
                    await gateway_conversation(url, clock, conv, level, via_gateway, rng,
                                               ws_http)
                else:
                    await rest_conversation(http, rasa_urls, token, conv, level, direct, rng)
    return via_gateway, direct
