"""The load generator's borrowers against a real gateway: the lean socket.io client
(bench/sio_client.py) and python-socketio's, through the benchmark's own conversation driver."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bench.drivers import (
    HandoffClock,
    Level,
    ScriptedAgents,
    SocketBorrower,
    _borrower_http,
    gateway_conversation,
)
from bench.sio_client import LeanSocketIO
from bench.utterances import Conversation
from tests.integration.conftest import PASSWORD, WAIT, GatewayServer
from tests.integration.fake_rasa import ECHO_PREFIX, GREETING_REPLY, FakeRasa

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _until(predicate: Any, seconds: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_the_lean_client_holds_a_conversation(
        fake_rasa: FakeRasa, gateway: GatewayServer, http: aiohttp.ClientSession) -> None:
    client = LeanSocketIO(http)
    events: list[tuple[str, Any]] = []
    for name in ("session_confirm", "message", "status"):
        client.on(name, lambda data, name=name: events.append((name, data)))
    await client.connect(gateway.url, timeout=WAIT)
    assert client.sid
    await client.emit("session_request", {"session_id": None, "bot_uttered": False})
    await _until(lambda: any(n == "session_confirm" for n, _ in events))
    session_id = next(d for n, d in events if n == "session_confirm")
    session_id = session_id if isinstance(session_id, str) else session_id["session_id"]

    ack = await client.call("user_uttered", {"message": "你好", "session_id": session_id},
                            timeout=WAIT)
    assert ack["ok"] is True and ack["seq"] >= 1
    await _until(lambda: any(n == "message" and d.get("text") == GREETING_REPLY
                             for n, d in events))
    assert gateway.stored_texts(session_id) == [("borrower", "你好"), ("bot", GREETING_REPLY)]

    refused = await client.call("user_uttered", {"message": "", "session_id": session_id},
                                timeout=WAIT)
    assert refused["ok"] is False  # the gateway's clear error reaches the lean client too

    await client.disconnect()
    await _until(lambda: not gateway.gateway.sio.eio.sockets)
    with pytest.raises(ConnectionError):
        await client.emit("user_uttered", {"message": "还在吗", "session_id": session_id})


async def test_the_lean_client_answers_the_servers_pings(
        fake_rasa: FakeRasa, gateway: GatewayServer, http: aiohttp.ClientSession) -> None:
    eio = gateway.gateway.sio.eio
    eio.ping_interval, eio.ping_timeout = 0.2, 0.3
    client = LeanSocketIO(http)
    await client.connect(gateway.url, timeout=WAIT)
    await asyncio.sleep(1.5)  # several pings; an unanswered one closes the socket in 0.5 s
    confirmed: list[Any] = []
    client.on("session_confirm", confirmed.append)
    await client.emit("session_request", {"session_id": None, "bot_uttered": False})
    await _until(lambda: bool(confirmed))
    assert len(eio.sockets) == 1
    await client.disconnect()


async def test_a_refused_connection_fails_the_waiter(
        gateway_factory: Any, fake_rasa: FakeRasa, http: aiohttp.ClientSession) -> None:
    """A gateway refuses a bad borrower token at connect; the lean client says so."""
    server = gateway_factory(fake_rasa.url, require_borrower_token="true",
                             borrower_jwt_secret=secrets.token_urlsafe(40))
    client = LeanSocketIO(http)
    with pytest.raises(ConnectionRefusedError):
        await client.connect(server.url, timeout=WAIT, auth={"token": "not-a-token"})
    await client.disconnect()


@pytest.mark.parametrize("client", ["lean", "python-socketio"])
async def test_a_benchmark_conversation_through_either_client(
        client: str, fake_rasa: FakeRasa, gateway: GatewayServer) -> None:
    level = Level(1, warmup=0, seconds=60, seed=1, client=client)
    result = level.result("gateway", asyncio.get_running_loop().time())
    result.start, result.end = 0.0, float("inf")
    clock = HandoffClock()
    agents = ScriptedAgents(gateway.url, [("alice", PASSWORD, "小李")], clock)
    await agents.start()
    conv = Conversation("chitchat", ["你好", "转人工", "利率多少"], handoff_turn=1)
    try:
        async with _borrower_http(level) as http:
            await gateway_conversation(gateway.url, clock, conv, level, result,
                                       random.Random(0), http)
    finally:
        await agents.stop()
    assert result.errors == 0
    assert [answered is not None for _, answered, _ in result.log] == [True, True, True]
    assert agents.handled == 1 and len(clock.latencies(0.0, float("inf"))) == 1
    (session_id,) = clock.triggered
    texts = gateway.stored_texts(session_id)
    assert texts[:2] == [("borrower", "你好"), ("bot", GREETING_REPLY)]
    assert ("agent", "您好，我是客服小李，已收到您的问题，现在为您转回智能助手。") in texts
    assert texts[-2:] == [("borrower", "利率多少"), ("bot", ECHO_PREFIX + "利率多少")]


async def test_an_unknown_client_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown borrower client"):
        async with _borrower_http(Level(1, 0, 1, 1, client="curl")):
            pass


def test_the_borrower_defaults_to_python_socketio_without_a_session() -> None:
    assert not isinstance(SocketBorrower().sio, LeanSocketIO)
