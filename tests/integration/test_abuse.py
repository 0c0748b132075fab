"""Bad input and abuse through real socket.io connections (the handler-level fuzz is in
tests/unit/transport/test_fuzz_handlers.py): a flood is refused politely and not stored,
malformed payloads get a clear error, and a frame of invalid UTF-8 cannot hurt the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
from typing import Any

import pytest
import websocket  # websocket-client: raw frames that a socket.io client would never send

from tests.integration.conftest import Client, GatewayFactory, GatewayServer, Helpers
from tests.integration.fake_rasa import GREETING_REPLY, FakeRasa

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"lang": "zh"}
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_a_flood_is_refused_politely_and_not_stored(
    fake_rasa: FakeRasa, gateway_factory: GatewayFactory, clients: list[Client]
) -> None:
    server = gateway_factory(fake_rasa.url, borrower_rate="20/60/2")
    b = await Helpers(server, clients).borrower()
    acks = [await b.say(f"第{n}条") for n in range(3)]
    assert [a["ok"] for a in acks] == [True, True, False]
    refused = acks[2]
    assert refused["code"] == "rate_limited" and 0 < refused["retry_after"] <= 3.0
    assert refused["message"].startswith("您发送消息的速度有点快，请稍等")
    assert (await b.wait_for("error"))["code"] == "rate_limited"
    # rasa-webchat shows neither acks nor `error`: the reason also arrives as a bot sentence.
    said = await b.wait_for("bot_uttered", lambda d: d["metadata"].get("event") == "error")
    assert said == {"text": refused["message"],
                    "metadata": {"sender": "system", "event": "error", "code": "rate_limited"}}
    assert [t for s, t in server.stored_texts(b.session_id) if s == "borrower"] == [
        "第0条", "第1条"]
    await asyncio.sleep(0.3)
    assert "第2条" not in fake_rasa.texts_from(b.session_id)


@pytest.mark.parametrize("extra", [
    {"customData": nested(50)},
    {"customData": {"blob": "x" * 20_000}},
    {"message": "长" * 100_000},
    {"message": ["你好"]},
    {"message": {"text": "你好"}},
    {"client_msg_id": "x" * 500},
])
async def test_malformed_user_uttered_gets_a_clear_error_and_stores_nothing(
    h: Helpers, fake_rasa: FakeRasa, extra: dict[str, Any]
) -> None:
    b = await h.borrower()
    ack = await b.call("user_uttered", {"message": "你好", "session_id": b.session_id, **extra})
    assert ack["ok"] is False and ack["code"] == "invalid_input" and ack["message"]
    assert (await b.wait_for("error"))["code"] == "invalid_input"
    assert h.server.message_count() == 0
    ok = await b.say("你好", customData={"lang": "zh"})  # the socket still works
    assert ok["ok"] is True
    await b.wait_for("bot_uttered", lambda d: d.get("text") == GREETING_REPLY)


async def test_invalid_utf8_frames_do_not_hurt_the_gateway(h: Helpers) -> None:
    server: GatewayServer = h.server
    b = await h.borrower()
    ws_url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"

    def abuse() -> None:
        ws = websocket.create_connection(ws_url, timeout=5)
        try:
            ws.recv()  # engine.io open packet
            ws.send("40")  # socket.io connect to "/"
            ws.recv()
            frame = (b'42["user_uttered",{"message":"' + b"\xff\xfe\xc3("
                     + f'","session_id":"{b.session_id}"}}]'.encode())
            ws.send(frame, opcode=websocket.ABNF.OPCODE_TEXT)
            ws.send(b'42["session_request",{"session_id":' + b"[" * 20_000 + b"]" * 20_000
                    + b"}]", opcode=websocket.ABNF.OPCODE_TEXT)
            # Closing the offending connection is an acceptable answer.
            with contextlib.suppress(websocket.WebSocketException, OSError):
                ws.recv()
        finally:
            ws.close()

    await asyncio.to_thread(abuse)
    assert server.message_count() == 0
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as resp:
        assert resp.status == 200
    # The borrower's own connection and a fresh one still work.
    assert (await b.say("你好"))["ok"] is True
    fresh = await h.borrower()
    assert (await fresh.say("你好"))["ok"] is True
    for session_id in (b.session_id, fresh.session_id):
        assert [t for s, t in server.stored_texts(session_id) if s == "borrower"] == ["你好"]
