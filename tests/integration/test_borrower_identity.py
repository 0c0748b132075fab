"""Borrower identity through the real gateway: a signed token from the lender's app binds a
session to a borrower; nobody else (another borrower, an anonymous socket) can join it; the
agent's transcript lists the same borrower's earlier sessions."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import socketio

from handoff.borrower_auth import NEEDS_LOGIN, TOKEN_EXPIRED, mint_borrower_token
from tests.integration.conftest import (
    WAIT,
    Borrower,
    Client,
    GatewayFactory,
    GatewayServer,
    Helpers,
)
from tests.integration.fake_rasa import FakeRasa

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SECRET = secrets.token_urlsafe(48)


def token(subject: str, ttl: int = 900) -> str:
    return mint_borrower_token(subject, SECRET, datetime.now(timezone.utc), ttl_seconds=ttl)


def ok(ack: Any) -> dict[str, Any]:
    assert isinstance(ack, dict) and ack.get("ok") is True, ack
    return ack


class Identified(Borrower):
    """A borrower socket that offers a token at connect (socket.io `auth`, or `?token=`)."""

    async def open_with(self, url: str, auth: dict[str, Any] | None = None,
                        session_id: str | None = None, **request: Any) -> dict[str, Any]:
        await self.connect(url, auth=auth)
        ack = await self.call("session_request", {"session_id": session_id, **request})
        if ack.get("ok"):
            self.session_id = ack["session_id"]
        return ack


@pytest.fixture
def server(fake_rasa: FakeRasa, gateway_factory: GatewayFactory) -> GatewayServer:
    return gateway_factory(fake_rasa.url, borrower_jwt_secret=SECRET)


async def borrower(made: list[Client], url: str, auth: dict[str, Any] | None = None,
                   session_id: str | None = None, **request: Any
                   ) -> tuple[Identified, dict[str, Any]]:
    b = Identified()
    made.append(b)
    ack = await b.open_with(url, auth, session_id, **request)
    return b, ack


async def connect_refusal(url: str, auth: Any) -> Any:
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", lambda data=None: errors.append(data), namespace="/")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(url, transports=["websocket"], namespaces=["/"], auth=auth,
                             wait_timeout=2)
    await client.disconnect()
    assert errors, "the server did not refuse the connection"
    return errors[0]


async def test_a_session_is_bound_to_the_token_identity(
    server: GatewayServer, clients: list[Client]
) -> None:
    owner, ack = await borrower(clients, server.url, {"token": token("user-7")})
    ok(ack)
    assert server.gateway.service.session(owner.session_id).identity == "user-7"
    ok(await owner.say("你好"))
    # The same borrower on a new socket (another tab, a reconnect) resumes it.
    _, again = await borrower(clients, server.url, {"token": token("user-7")}, owner.session_id)
    assert ok(again)["session_id"] == owner.session_id and again["created"] is False
    # Another borrower, or an anonymous socket, cannot join it, and nothing is written.
    before = server.message_count()
    for auth in ({"token": token("user-8")}, None):
        intruder, refused = await borrower(clients, server.url, auth, owner.session_id)
        assert refused["ok"] is False and refused["code"] == "identity_mismatch"
        assert (await intruder.wait_for("error"))["code"] == "identity_mismatch"
        sent = await intruder.call("user_uttered", {"message": "偷看",
                                                    "session_id": owner.session_id})
        assert sent["ok"] is False and sent["code"] == "not_found"
    assert server.message_count() == before


async def test_bad_tokens_are_refused_at_connect(server: GatewayServer) -> None:
    for auth in ({"token": "forged.token.value"},
                 {"token": mint_borrower_token("u", "x" * 40, datetime.now(timezone.utc))},
                 {"token": 42}):
        error = await connect_refusal(server.url, auth)
        assert error["data"]["code"] == "auth_failed" and error["message"]
    expired = mint_borrower_token("u", SECRET, datetime.now(timezone.utc) - timedelta(hours=1),
                                  ttl_seconds=60)
    error = await connect_refusal(server.url, {"token": expired})
    assert error["data"] == {"code": "auth_failed", "message": TOKEN_EXPIRED}


async def test_required_token_and_the_other_ways_to_give_it(
    fake_rasa: FakeRasa, gateway_factory: GatewayFactory, clients: list[Client]
) -> None:
    server = gateway_factory(fake_rasa.url, borrower_jwt_secret=SECRET,
                             require_borrower_token="true")
    anonymous, ack = await borrower(clients, server.url)
    assert ack["ok"] is False and ack == {"ok": False, "code": "auth_failed",
                                          "message": NEEDS_LOGIN}
    assert server.message_count() == 0
    # In session_request (custom clients) ...
    _, by_request = await borrower(clients, server.url, auth_token=token("user-9"))
    sid = ok(by_request)["session_id"]
    assert server.gateway.service.session(sid).identity == "user-9"
    # ... or in the socket URL, the only way the unmodified rasa-webchat widget can send it.
    by_url = Identified()
    clients.append(by_url)
    await by_url.sio.connect(f"{server.url}/?token={token('user-9')}",
                             transports=["websocket"], namespaces=["/"], wait_timeout=WAIT)
    again = ok(await by_url.call("session_request", {"session_id": sid}))
    assert again["session_id"] == sid and again["created"] is False


async def test_transcript_lists_the_borrowers_earlier_sessions(
    server: GatewayServer, clients: list[Client]
) -> None:
    h = Helpers(server, clients)
    alice = await h.agent("alice")
    first, ack = await borrower(clients, server.url, {"token": token("user-7")})
    ok(ack)
    await h.queued(first, "转人工，我的卡号6222021234567890")
    ok(await alice.call("claim", {"session_id": first.session_id}))
    ok(await alice.call("close", {"session_id": first.session_id, "disposition": "resolved"}))
    # Someone else's conversation must not show up in user-7's transcript.
    other, ack = await borrower(clients, server.url, {"token": token("user-8")})
    ok(ack)
    ok(await other.say("别人的话"))
    # Later, user-7 starts a new conversation (new session) and asks for a human again.
    second, ack = await borrower(clients, server.url, {"token": token("user-7")})
    assert ok(ack)["created"] is True and second.session_id != first.session_id
    await h.queued(second, "转人工")
    transcript = ok(await alice.call("claim", {"session_id": second.session_id}))["transcript"]
    earlier = transcript["earlier"]
    assert {m["session_id"] for m in earlier} == {first.session_id}
    texts = [m["text"] for m in earlier if m["sender"] == "borrower"]
    assert texts == ["转人工，我的卡号************7890"]  # masked for the agent
    assert transcript["session"]["identity"] == "user-7"
    assert [m["text"] for m in transcript["messages"] if m["sender"] == "borrower"] == ["转人工"]
