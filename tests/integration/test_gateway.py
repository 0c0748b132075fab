"""The gateway end to end: real socket.io clients ↔ gateway (uvicorn) ↔ stand-in Rasa."""

from __future__ import annotations

import asyncio
import gc
import types
import urllib.request
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import socketio
from engineio.async_socket import AsyncSocket

from handoff.model import HandoffSignal
from tests.integration.conftest import (
    Borrower,
    GatewayFactory,
    GatewayServer,
    Helpers,
    ShiftableClock,
)
from tests.integration.fake_rasa import (
    GREETING_REPLY,
    HANDOFF_NOTICE,
    SLOW_REPLY,
    FakeRasa,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def ok(ack: Any) -> dict[str, Any]:
    assert isinstance(ack, dict) and ack.get("ok") is True, ack
    return ack


def from_agent(data: dict[str, Any]) -> bool:
    return bool(data.get("metadata", {}).get("sender") == "agent")


async def test_healthz(gateway: GatewayServer) -> None:
    with urllib.request.urlopen(f"{gateway.url}/healthz", timeout=5) as resp:
        assert resp.status == 200


async def test_greeting_round_trip(h: Helpers, fake_rasa: FakeRasa) -> None:
    b = await h.borrower()
    assert isinstance(b.session_id, str) and len(b.session_id) >= 16
    ack = ok(await b.say("你好"))
    reply = await b.wait_for("bot_uttered", lambda d: d.get("text") == GREETING_REPLY)
    assert reply["metadata"]["seq"] > ack["seq"]
    assert reply["metadata"]["sender"] == "bot"
    # Keyed by our session id, never by the socket id.
    assert fake_rasa.texts_from(b.session_id) == ["你好"]
    assert h.server.stored_texts(b.session_id) == [("borrower", "你好"), ("bot", GREETING_REPLY)]


async def test_buttons_arrive_as_quick_replies(h: Helpers) -> None:
    b = await h.borrower()
    await b.say("看看按钮")
    reply = await b.wait_for("bot_uttered", lambda d: "quick_replies" in d)
    assert [q["title"] for q in reply["quick_replies"]] == ["信用贷", "公积金贷"]
    assert all(q["content_type"] == "text" for q in reply["quick_replies"])
    assert set(reply) == {"text", "quick_replies", "metadata"}  # what rasa-webchat renders


async def test_replies_keep_order_within_a_session(h: Helpers) -> None:
    b = await h.borrower()
    await b.say("慢")  # slow reply first
    await b.say("你好")
    first = await b.wait_for("bot_uttered", timeout=10)
    second = await b.wait_for("bot_uttered", timeout=10)
    assert [first["text"], second["text"]] == [SLOW_REPLY, GREETING_REPLY]


async def test_unknown_session_id_gets_a_new_session(h: Helpers) -> None:
    b = await h.borrower("no-such-session")
    assert b.session_id != "no-such-session"


async def test_handoff_payload_queues_the_session(h: Helpers) -> None:
    alice = await h.agent("alice")
    b = await h.borrower()
    await b.say("我要转人工")
    await b.wait_for("bot_uttered", lambda d: d.get("text") == HANDOFF_NOTICE)
    status = await b.wait_for("status", lambda s: s.get("state") == "queued")
    assert status["queue_position"] == 1
    queue = await alice.wait_for(
        "queue", lambda q: any(e["session_id"] == b.session_id for e in q["entries"])
    )
    entry = next(e for e in queue["entries"] if e["session_id"] == b.session_id)
    assert entry["reason"] == "sensitive_intent" and entry["intent"] == "request_human"
    # The handoff signal itself is for the gateway, not the borrower.
    assert not any("handoff" in (d.get("custom") or {}) for n, d in b.events if n == "bot_uttered")
    view = h.server.gateway.service.session(b.session_id)
    assert view.state == "queued" and view.reason == "sensitive_intent"


async def test_immediate_handoff_routes_by_skill(h: Helpers) -> None:
    alice = await h.agent("alice")  # general only
    carol = await h.agent("carol")  # complaints
    b = await h.borrower()
    await h.queued(b, "我要投诉")
    await carol.wait_for("queue", lambda q: any(e["session_id"] == b.session_id
                                                 for e in q["entries"]))
    snapshot = ok(await alice.call("queue"))["queue"]
    assert all(e["session_id"] != b.session_id for e in snapshot["entries"])
    refused = await alice.call("claim", {"session_id": b.session_id})
    assert refused["ok"] is False and refused["code"] == "forbidden"


async def test_claim_race_has_one_winner(h: Helpers) -> None:
    alice, bob = await h.agent("alice"), await h.agent("bob")
    b = await h.borrower()
    await h.queued(b)
    acks = await asyncio.gather(
        alice.call("claim", {"session_id": b.session_id}),
        bob.call("claim", {"session_id": b.session_id}),
    )
    winners = [a for a in acks if a.get("ok")]
    losers = [a for a in acks if not a.get("ok")]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0]["code"] == "already_claimed"
    assert losers[0]["message"]  # Chinese, for the console
    status = await b.wait_for("status", lambda s: s.get("state") == "assigned")
    assert status["agent_name"] in ("小李", "小王")


async def claimed(h: Helpers, agent_name: str = "alice") -> tuple[Any, Any]:
    agent = await h.agent(agent_name)
    b = await h.borrower()
    await h.queued(b)
    ok(await agent.call("claim", {"session_id": b.session_id}))
    await b.wait_for("status", lambda s: s.get("state") == "assigned")
    return agent, b


async def test_agent_and_borrower_talk_and_the_bot_keeps_quiet(
    h: Helpers, fake_rasa: FakeRasa
) -> None:
    alice, b = await claimed(h)
    sent_to_rasa = len(fake_rasa.texts_from(b.session_id))
    ok(await alice.call("message", {"session_id": b.session_id, "text": "您好，我是客服小李"}))
    got = await b.wait_for("bot_uttered", from_agent)
    assert got["text"] == "您好，我是客服小李"
    assert got["metadata"]["agent_name"] == "小李"
    raw = await b.wait_for("message", lambda m: m.get("sender") == "agent")
    assert "agent_id" not in raw and "agent_id" not in got["metadata"]  # no internal usernames
    ok(await b.say("我的手机号是13812345678"))
    relayed = await alice.wait_for("message", lambda m: m.get("sender") == "borrower")
    assert relayed["text"] == "我的手机号是138****5678"  # agents see masked numbers
    assert len(fake_rasa.texts_from(b.session_id)) == sent_to_rasa
    # Typing both ways, never stored.
    before = h.server.message_count(b.session_id)
    ok(await b.call("user_typing", {"session_id": b.session_id, "typing": True}))
    typing = await alice.wait_for("typing")
    assert typing == {"session_id": b.session_id, "from": "borrower", "typing": True}
    ok(await alice.call("typing", {"session_id": b.session_id, "typing": True}))
    shown = await b.wait_for("agent_typing")
    assert shown["typing"] is True and shown["agent_name"] == "小李"
    assert h.server.message_count(b.session_id) == before


async def test_only_the_holder_may_message(h: Helpers) -> None:
    _, b = await claimed(h, "alice")
    bob = await h.agent("bob")
    before = h.server.message_count(b.session_id)
    refused = await bob.call("message", {"session_id": b.session_id, "text": "插话"})
    assert refused["ok"] is False and refused["code"] == "not_holder"
    error = await bob.wait_for("error")
    assert error["code"] == "not_holder"
    assert h.server.message_count(b.session_id) == before


async def test_notes_stay_internal(h: Helpers) -> None:
    alice, b = await claimed(h)
    note = ok(await alice.call("note", {"session_id": b.session_id, "text": "客户情绪激动"}))
    assert note["note"]["text"] == "客户情绪激动"
    await b.no_event("bot_uttered", lambda d: "情绪" in (d.get("text") or ""), seconds=0.5)


async def test_transfer_to_agent_and_to_skill(h: Helpers) -> None:
    alice, b = await claimed(h, "alice")
    bob = await h.agent("bob")
    ok(await alice.call("transfer", {"session_id": b.session_id, "to_agent": "bob"}))
    assigned = await bob.wait_for("assigned")
    assert assigned["session"]["session_id"] == b.session_id
    await alice.wait_for("session_ended", lambda e: e["session_id"] == b.session_id)
    ok(await bob.call("message", {"session_id": b.session_id, "text": "我是小王，继续为您服务"}))
    got = await b.wait_for("bot_uttered", from_agent)
    assert got["metadata"]["agent_name"] == "小王"

    carol = await h.agent("carol")
    ok(await bob.call("transfer", {"session_id": b.session_id, "to_skill": "complaints"}))
    await carol.wait_for("queue", lambda q: any(e["session_id"] == b.session_id
                                                 for e in q["entries"]))
    bad = await bob.call("transfer", {"session_id": b.session_id})
    assert bad["ok"] is False and bad["code"] == "invalid_input"


async def test_close_resolved_asks_for_csat_once(h: Helpers) -> None:
    alice, b = await claimed(h)
    ok(await alice.call("close", {"session_id": b.session_id, "disposition": "resolved"}))
    request = await b.wait_for("csat_request")
    assert request["session_id"] == b.session_id
    ok(await b.call("csat", {"session_id": b.session_id, "score": 5, "comment": "很好"}))
    csat = await alice.wait_for("csat")
    assert csat["score"] == 5
    again = await b.call("csat", {"session_id": b.session_id, "score": 1})
    assert again["ok"] is False
    bad = await b.call("csat", {"session_id": b.session_id, "score": "五"})
    assert bad["ok"] is False and bad["code"] == "invalid_input"


async def test_return_to_bot_resumes_rasa(h: Helpers, fake_rasa: FakeRasa) -> None:
    alice, b = await claimed(h)
    ok(await alice.call("close", {"session_id": b.session_id, "disposition": "return_to_bot"}))
    await b.wait_for("status", lambda s: s.get("state") == "bot")
    for _ in range(50):
        if fake_rasa.events_for(b.session_id):
            break
        await asyncio.sleep(0.1)
    assert fake_rasa.events_for(b.session_id) == [
        {"event": "resume"},
        {"event": "slot", "name": "unresolved_turns", "value": 0},
    ]
    await b.say("你好")
    await b.wait_for("bot_uttered", lambda d: d.get("text") == GREETING_REPLY)


async def test_reconnect_replays_missed_messages_once_in_order(h: Helpers) -> None:
    alice, b = await claimed(h)
    await b.say("你好")  # stored, goes to alice
    last_seen = h.server.gateway.service.session(b.session_id).last_seq
    await b.close()
    for text in ("第一条", "第二条", "第三条"):
        ok(await alice.call("message", {"session_id": b.session_id, "text": text}))

    again = await h.borrower(b.session_id, last_seq=last_seen)
    assert again.session_id == b.session_id
    replayed = [await again.wait_for("bot_uttered", from_agent) for _ in range(3)]
    assert [r["text"] for r in replayed] == ["第一条", "第二条", "第三条"]
    assert all(r["metadata"]["replayed"] for r in replayed)
    seqs = [r["metadata"]["seq"] for r in replayed]
    assert seqs == sorted(seqs) and seqs[0] > last_seen
    await again.no_event("bot_uttered", from_agent, seconds=0.3)

    # Without last_seq the gateway replays only what no socket of the session received.
    await again.close()
    ok(await alice.call("message", {"session_id": b.session_id, "text": "第四条"}))
    third = await h.borrower(b.session_id)
    got = await third.wait_for("bot_uttered", from_agent)
    assert got["text"] == "第四条"
    await third.no_event("bot_uttered", from_agent, seconds=0.3)
    await third.close()
    fourth = await h.borrower(b.session_id)
    await fourth.no_event("bot_uttered", from_agent, seconds=0.5)


async def test_agent_disconnect_requeues_at_front_after_grace(h: Helpers) -> None:
    alice, b = await claimed(h, "alice")
    bob = await h.agent("bob")
    await alice.close()
    status = await b.wait_for("status", lambda s: s.get("state") == "queued", timeout=6)
    assert status["queue_position"] == 1
    queue = await bob.wait_for("queue", lambda q: any(
        e["session_id"] == b.session_id and e["requeued_front"] for e in q["entries"]
    ))
    assert queue["entries"][0]["session_id"] == b.session_id


async def test_agent_reconnect_within_grace_keeps_the_session(
    fake_rasa: FakeRasa, gateway_factory: GatewayFactory, clients: list[Any]
) -> None:
    server = gateway_factory(fake_rasa.url, grace_seconds="3")
    h = Helpers(server, clients)
    alice, b = await claimed(h, "alice")
    await alice.close()
    await asyncio.sleep(0.5)
    alice2 = await h.agent("alice")
    hello = await alice2.wait_for("hello")
    assert [t["session"]["session_id"] for t in hello["held"]] == [b.session_id]
    await asyncio.sleep(3.5)
    view = server.gateway.service.session(b.session_id)
    assert view.state == "assigned" and view.agent_id == "alice"
    ok(await alice2.call("message", {"session_id": b.session_id, "text": "我还在"}))
    await b.wait_for("bot_uttered", from_agent)


async def test_rasa_down_hands_off_as_bot_unavailable(h: Helpers, fake_rasa: FakeRasa) -> None:
    b = await h.borrower()
    fake_rasa.go_down()
    ok(await b.say("你好"))
    polite = await b.wait_for("bot_uttered", lambda d: bool(d.get("text")))
    assert "人工" in polite["text"] or "客服" in polite["text"]
    await b.wait_for("status", lambda s: s.get("state") == "queued")
    view = h.server.gateway.service.session(b.session_id)
    assert view.reason == "bot_unavailable"


async def test_late_bot_reply_is_dropped_once_a_human_holds_the_session(
    h: Helpers, fake_rasa: FakeRasa
) -> None:
    alice = await h.agent("alice")
    b = await h.borrower()
    await b.say("慢慢说")  # the stand-in answers after 1.5 s
    await asyncio.sleep(0.3)
    service = h.server.gateway.service
    await asyncio.to_thread(
        service.request_handoff, b.session_id, HandoffSignal(reason="sensitive_intent",
                                                             intent="request_human"), "system"
    )
    ok(await alice.call("claim", {"session_id": b.session_id}))
    await asyncio.sleep(2.0)
    assert SLOW_REPLY not in b.texts()
    assert ("bot", SLOW_REPLY) not in h.server.stored_texts(b.session_id)


async def test_queue_position_and_eta_updates(h: Helpers) -> None:
    alice = await h.agent("alice")
    first, second = await h.borrower(), await h.borrower()
    await h.queued(first)
    await second.say("转人工")
    status = await second.wait_for("status", lambda s: s.get("state") == "queued")
    assert status["queue_position"] == 2
    assert isinstance(status["eta_seconds"], int) and status["eta_seconds"] >= 0
    # The Chinese sentence reaches rasa-webchat too.
    await second.wait_for("bot_uttered", lambda d: d.get("text") == status["text"])
    ok(await alice.call("claim", {"session_id": first.session_id}))
    moved = await second.wait_for("status", lambda s: s.get("queue_position") == 1)
    assert moved["state"] == "queued"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, "invalid_input"),  # no message
        ({"message": 123}, "invalid_input"),
        ({"message": ""}, "invalid_input"),
        ({"message": "   "}, "invalid_input"),
        ({"message": "借" * 350_000}, "invalid_input"),  # about 1 MB of UTF-8
        ({"message": "你好", "session_id": "not-my-session"}, "not_found"),
        ({"message": ["你好"]}, "invalid_input"),
        ({"message": b"\xe4\xbd\xa0\xe5\xa5\xbd"}, "invalid_input"),  # binary attachment
        ({"message": "你好", "client_msg_id": 7}, "invalid_input"),
        ({"message": "你好", "session_id": 12345}, "invalid_input"),
    ],
)
async def test_bad_borrower_payloads_get_an_error_and_store_nothing(
    h: Helpers, fake_rasa: FakeRasa, payload: dict[str, Any], code: str
) -> None:
    b = await h.borrower()
    body = {"session_id": b.session_id, **payload}
    before = h.server.message_count()
    ack = await b.call("user_uttered", body)
    assert ack["ok"] is False and ack["code"] == code
    error = await b.wait_for("error")
    assert error["code"] == code and error["message"]
    assert h.server.message_count() == before
    assert fake_rasa.texts_from(b.session_id) == []


async def test_script_tags_are_kept_as_plain_text(h: Helpers, fake_rasa: FakeRasa) -> None:
    b = await h.borrower()
    payload = "<script>alert(1)</script><img src=x onerror=alert(1)>"
    ack = await b.say(payload)
    assert ack["ok"] is True
    await b.wait_for("bot_uttered")
    assert h.server.message_count(b.session_id) >= 1
    assert fake_rasa.texts_from(b.session_id) == [payload]


@pytest.mark.parametrize("text", ["abc\x00def", "\x07bell", "lone \ud800 surrogate"])
async def test_control_characters_are_refused(
    h: Helpers, fake_rasa: FakeRasa, text: str
) -> None:
    b = await h.borrower()
    ack = await b.say(text)
    assert ack["ok"] is False and ack["code"] == "invalid_input"
    await b.wait_for("error")
    assert h.server.message_count(b.session_id) == 0
    assert fake_rasa.texts_from(b.session_id) == []


@pytest.mark.parametrize("payload", ["just a string", b"\x00\x01binary", 42, None])
async def test_non_object_payloads_are_refused(h: Helpers, payload: Any) -> None:
    b = await h.borrower()
    ack = await b.call("user_uttered", payload)
    assert ack["ok"] is False and ack["code"] == "invalid_input"
    assert h.server.message_count() == 0


async def test_message_before_session_request_is_refused(h: Helpers) -> None:
    from tests.integration.conftest import Borrower

    raw = Borrower()
    h.made.append(raw)
    await raw.connect(h.server.url)
    ack = await raw.call("user_uttered", {"message": "你好", "session_id": "abc"})
    assert ack["ok"] is False and ack["code"] == "not_found"
    assert h.server.message_count() == 0


async def test_bad_agent_payloads(h: Helpers) -> None:
    alice = await h.agent("alice")
    unknown = await alice.call("claim", {"session_id": "nope"})
    assert unknown["ok"] is False and unknown["code"] == "not_found"
    missing = await alice.call("message", {"text": "你好"})
    assert missing["ok"] is False and missing["code"] == "invalid_input"
    wrong = await alice.call("presence", {"presence": "sleeping"})
    assert wrong["ok"] is False and wrong["code"] == "invalid_input"
    binary = await alice.call("note", b"\x00")
    assert binary["ok"] is False and binary["code"] == "invalid_input"
    assert h.server.message_count() == 0


async def refused(url: str, auth: Any) -> Any:
    """Connect to /agent expecting a refusal; returns the connect_error payload."""
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", lambda data=None: errors.append(data), namespace="/agent")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(url, transports=["websocket"], namespaces=["/agent"], auth=auth,
                             wait_timeout=1)
    await client.disconnect()
    assert errors, "the server did not refuse the connection (it may just be slow)"
    return errors[0]


async def test_agent_socket_needs_a_valid_token(gateway: GatewayServer) -> None:
    for auth in (None, {"token": ""}, {"token": "forged.token.value"}, {"token": 5}):
        error = await refused(gateway.url, auth)
        assert error["data"]["code"] == "auth_failed" and error["message"]
    assert gateway.login("alice", "wrong-password")["status"] == 401


async def test_expired_token_is_refused(
    fake_rasa: FakeRasa, gateway_factory: GatewayFactory
) -> None:
    clock = ShiftableClock()
    server = gateway_factory(fake_rasa.url, clock=clock, token_ttl="60")
    token = server.login("alice")["token"]
    clock.shift = timedelta(seconds=120)
    error = await refused(server.url, {"token": token})
    assert error["data"] == {"code": "auth_failed", "message": "登录已过期，请重新登录"}
    assert error["message"] == "登录已过期，请重新登录"


async def test_callback_booking_reaches_the_agents_list(h: Helpers) -> None:
    alice = await h.agent("alice")
    b = await h.borrower()
    await h.queued(b)
    tz = ZoneInfo("Asia/Shanghai")
    tomorrow = (datetime.now(tz) + timedelta(days=1)).replace(hour=10, minute=0, second=0,
                                                              microsecond=0)
    booked = ok(await b.call("callback_request", {
        "session_id": b.session_id, "phone": "138 1234 5678",
        "window_start": tomorrow.isoformat(),
        "window_end": (tomorrow + timedelta(hours=1)).isoformat(),
    }))
    assert booked["callback"]["phone_masked"] == "138****5678"
    listed = ok(await alice.call("callbacks", {"status": "pending"}))["callbacks"]
    assert [c["id"] for c in listed] == [booked["callback"]["id"]]
    assert "13812345678" not in str(listed)
    bad = await b.call("callback_request", {"session_id": b.session_id, "phone": "12345",
                                            "window_start": "明天", "window_end": "后天"})
    assert bad["ok"] is False and bad["code"] == "invalid_input"


async def test_every_tab_of_a_session_gets_the_messages(h: Helpers) -> None:
    alice, b = await claimed(h)
    tab2 = await h.borrower(b.session_id)
    ok(await alice.call("message", {"session_id": b.session_id, "text": "两个窗口都能看到"}))
    for tab in (b, tab2):
        got = await tab.wait_for("bot_uttered", from_agent)
        assert got["text"] == "两个窗口都能看到"


async def test_a_socket_may_decline_the_webchat_copies(h: Helpers) -> None:
    """Our chat page renders `message` events and says bot_uttered: false; a rasa-webchat
    tab of the same session still gets every `bot_uttered`; replays reach both."""
    native = await h.borrower(bot_uttered=False)
    widget = await h.borrower(native.session_id)
    ok(await native.say("你好"))
    for tab in (native, widget):
        message = await tab.wait_for("message", lambda m: m.get("sender") == "bot")
        assert message["text"] == GREETING_REPLY
    assert (await widget.wait_for("bot_uttered"))["text"] == GREETING_REPLY
    await native.no_event("bot_uttered", seconds=0.5)

    # a hand-off: the status sentence is a bot_uttered for the widget only
    alice = await h.agent("alice")
    ok(await native.say("转人工"))
    await widget.wait_for("bot_uttered", lambda d: d["metadata"].get("event") == "status")
    await native.wait_for("status", lambda s: s.get("state") == "queued")
    await native.no_event("bot_uttered", seconds=0.3)

    # a replay after a reconnect still comes as bot_uttered (the page renders those)
    ok(await alice.call("claim", {"session_id": native.session_id}))
    seen = h.server.gateway.service.session(native.session_id).last_seq
    await native.close()
    ok(await alice.call("message", {"session_id": native.session_id, "text": "您好，我是客服"}))
    back = await h.borrower(native.session_id, last_seq=seen, bot_uttered=False)
    replayed = await back.wait_for("bot_uttered", from_agent)
    assert replayed["text"] == "您好，我是客服" and replayed["metadata"]["replayed"]


@pytest.mark.parametrize("value", ["no", 0, [], {"a": 1}])
async def test_bot_uttered_must_be_a_boolean(h: Helpers, value: Any) -> None:
    b = Borrower()
    h.made.append(b)
    await b.connect(h.server.url)
    ack = await b.call("session_request", {"session_id": None, "bot_uttered": value})
    assert ack["ok"] is False and ack["code"] == "invalid_input"


async def test_token_expiring_mid_shift_drops_the_socket(
    fake_rasa: FakeRasa, gateway_factory: GatewayFactory, clients: list[Any]
) -> None:
    clock = ShiftableClock()
    server = gateway_factory(fake_rasa.url, clock=clock, token_ttl="60")
    alice = await Helpers(server, clients).agent("alice")
    ok(await alice.call("queue"))
    clock.shift = timedelta(seconds=120)
    await alice.emit("queue", {})
    error = await alice.wait_for("error")
    assert error["code"] == "auth_failed" and error["message"]
    for _ in range(50):
        if not alice.sio.connected:
            break
        await asyncio.sleep(0.1)
    assert not alice.sio.connected


async def test_resume_sends_recent_history(h: Helpers) -> None:
    b = await h.borrower()
    await b.say("你好")
    await b.wait_for("bot_uttered", lambda d: d.get("text") == GREETING_REPLY)
    await b.close()
    again = await h.borrower(b.session_id)
    history = await again.wait_for("history")
    assert [(m["sender"], m["text"]) for m in history["messages"]] == [
        ("borrower", "你好"), ("bot", GREETING_REPLY)
    ]


async def test_writing_after_a_close_resumes_rasa_before_the_message(
    h: Helpers, fake_rasa: FakeRasa
) -> None:
    alice, b = await claimed(h)
    ok(await alice.call("close", {"session_id": b.session_id, "disposition": "resolved"}))
    await b.wait_for("csat_request")
    ack = ok(await b.say("你好"))
    assert ack["route"] == "bot"
    # The stand-in stays silent while paused, so the greeting proves resume came first.
    await b.wait_for("bot_uttered", lambda d: d.get("text") == GREETING_REPLY)
    assert fake_rasa.events_for(b.session_id)[0] == {"event": "resume"}


async def test_no_ping_task_holds_a_borrower_who_left(h: Helpers, gateway: GatewayServer) -> None:
    """A closed connection is not kept alive by engine.io's ping task for ping_interval
    (handoff/eio_ping.py): under load that kept thousands of dead sockets in the gateway."""
    eio = gateway.gateway.sio.eio
    assert eio.ping_interval >= 5  # the stock task would hold each socket that long
    borrowers = [await h.borrower() for _ in range(3)]
    for borrower in borrowers:
        ok(await borrower.say("你好"))
        await borrower.close()

    def held_by_ping_tasks() -> int:
        gc.collect()
        closed = [o for o in gc.get_objects()
                  if isinstance(o, AsyncSocket) and o.server is eio and o.closed]
        return sum(1 for sock in closed for ref in gc.get_referrers(sock)
                   if isinstance(ref, types.FrameType) and "ping" in ref.f_code.co_name)

    deadline = asyncio.get_running_loop().time() + 3
    while (held := held_by_ping_tasks()) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert held == 0, f"{held} closed engine.io sockets still held by their ping tasks"
