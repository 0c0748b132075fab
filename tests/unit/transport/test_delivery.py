"""Delivery: rendering for rasa-webchat, per-session ordering, Rasa failure → bot_unavailable."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import pytest

import handoff.delivery as delivery_module
from handoff.delivery import AGENT_NS, BORROWER_NS, Delivery, SessionLocks, render_bot_uttered
from handoff.model import BotRepliesResult, ToAgents, ToBorrower, ToRasa, ToRasaMessage
from handoff.rasa_client import RasaUnavailable


def msg(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "session_id": "s", "seq": 3, "sender": "bot", "text": "您好",
        "created_at": "2026-11-23T00:00:00+00:00", "payload": None,
        "agent_id": None, "display_name": None,
    }
    return {**base, **over}


def keys(events: list[dict[str, Any]]) -> list[set[str]]:
    """What rasa-webchat dispatches on: the keys left after it drops `metadata`."""
    return [set(e) - {"metadata"} for e in events]


def test_bot_text_renders_with_seq_metadata() -> None:
    out = render_bot_uttered(msg())
    assert keys(out) == [{"text"}]
    assert out[0]["text"] == "您好"
    assert out[0]["metadata"]["seq"] == 3
    assert out[0]["metadata"]["sender"] == "bot"


def test_buttons_become_quick_replies_exactly_like_rasa_socketio_output() -> None:
    out = render_bot_uttered(msg(text="请选择\n\n您要哪种？",
                                 payload={"buttons": [{"title": "是", "payload": "/affirm"}]}))
    # rasa-webchat renders buttons only for exactly {text, quick_replies}.
    assert keys(out) == [{"text"}, {"text", "quick_replies"}]
    assert out[1]["quick_replies"] == [
        {"content_type": "text", "title": "是", "payload": "/affirm"}
    ]
    assert [e["metadata"]["seq"] for e in out] == [3, 3]


def test_image_and_custom_are_separate_events() -> None:
    out = render_bot_uttered(
        msg(text="还款计划如下", payload={"image": "http://x/a.png",
                                    "custom": {"schedule": {"rows": []}}})
    )
    assert keys(out) == [{"text"}, {"attachment"}, {"custom"}]
    assert out[1]["attachment"] == {"type": "image", "payload": {"src": "http://x/a.png"}}
    assert out[2]["custom"] == {"schedule": {"rows": []}}


def test_agent_message_carries_agent_name() -> None:
    out = render_bot_uttered(msg(sender="agent", agent_id="alice", display_name="客服小李"))
    assert out[0]["metadata"]["sender"] == "agent"
    assert out[0]["metadata"]["agent_name"] == "客服小李"
    assert "agent_id" not in out[0]["metadata"]


def test_borrower_messages_are_not_echoed() -> None:
    assert render_bot_uttered(msg(sender="borrower")) == []


def test_empty_message_renders_nothing() -> None:
    assert render_bot_uttered(msg(text="  ", payload=None)) == []


def test_session_locks_are_fifo_and_cleaned_up() -> None:
    locks = SessionLocks()
    order: list[int] = []

    async def worker(n: int) -> None:
        async with locks.hold("s"):
            await asyncio.sleep(0.01 * (5 - n))  # earlier workers are slower
            order.append(n)

    async def go() -> None:
        await asyncio.gather(*(worker(n) for n in range(5)))

    asyncio.run(go())
    assert order == [0, 1, 2, 3, 4]
    assert len(locks) == 0


class FakeSio:
    def __init__(self) -> None:
        self.emitted: list[tuple[str, Any, str, str]] = []
        self.manager = self

    async def emit(self, event: str, data: Any, room: str, namespace: str) -> None:
        self.emitted.append((event, data, room, namespace))

    def get_participants(self, namespace: str, room: str) -> list[str]:
        return ["sid1"]


class StubRasa:
    """Replies after a delay given in the text ('0.2' sleeps 0.2 s); 'down' fails."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Sequence[Mapping[str, Any]]]] = []

    async def send_message(self, session_id: str, text: str,
                           metadata: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        if text == "down":
            raise RasaUnavailable("refused")
        await asyncio.sleep(float(text))
        return [{"recipient_id": session_id, "text": f"re:{text}"}]

    async def append_events(self, session_id: str, events: Sequence[Mapping[str, Any]]) -> None:
        self.events.append((session_id, events))


class RecordingService:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def accept_bot_replies(self, session_id: str, replies: Any) -> BotRepliesResult:
        self.calls.append(("accept", session_id, [r["text"] for r in replies]))
        effect = ToBorrower(session_id, "message", msg(session_id=session_id,
                                                       text=replies[0]["text"]))
        return BotRepliesResult(stored=(), dropped=0, handed_off=False, effects=(effect,))

    def bot_unavailable(self, session_id: str, detail: str = "") -> BotRepliesResult:
        self.calls.append(("unavailable", session_id, detail))
        return BotRepliesResult(stored=(), dropped=0, handed_off=True)


async def to_thread(fn: Any, *args: Any) -> Any:
    return fn(*args)


def make() -> tuple[Delivery, FakeSio, StubRasa, RecordingService]:
    sio, rasa, service = FakeSio(), StubRasa(), RecordingService()
    return Delivery(sio, rasa, service, to_thread), sio, rasa, service  # type: ignore[arg-type]


def test_replies_stay_in_order_per_session_even_when_the_first_is_slow() -> None:
    delivery, sio, _, service = make()

    async def go() -> None:
        await delivery.deliver([ToRasaMessage("s", "0.3", 1), ToRasaMessage("s", "0", 2)])
        await delivery.drain()

    asyncio.run(go())
    assert [c[2] for c in service.calls] == [["re:0.3"], ["re:0"]]
    texts = [d["text"] for e, d, _, _ in sio.emitted if e == "bot_uttered"]
    assert texts == ["re:0.3", "re:0"]
    assert len(delivery.rasa_locks) == 0


def test_other_sessions_are_not_held_up() -> None:
    delivery, _, _, service = make()

    async def go() -> None:
        await delivery.deliver([ToRasaMessage("slow", "0.3", 1), ToRasaMessage("fast", "0", 1)])
        await delivery.drain()

    asyncio.run(go())
    assert [c[1] for c in service.calls] == ["fast", "slow"]


def test_rasa_down_calls_bot_unavailable() -> None:
    delivery, _, _, service = make()

    async def go() -> None:
        await delivery.deliver([ToRasaMessage("s", "down", 1)])
        await delivery.drain()

    asyncio.run(go())
    assert service.calls == [("unavailable", "s", "refused")]


def test_effects_reach_their_rooms_and_namespaces() -> None:
    delivery, sio, rasa, _ = make()

    async def go() -> None:
        await delivery.deliver([
            ToAgents(("alice", "bob"), "queue", {"entries": []}),
            ToBorrower("s", "status", {"state": "queued", "text": "排队中"}),
            ToRasa("s", ({"event": "resume"},)),
        ])
        await delivery.drain()

    asyncio.run(go())
    assert ("queue", {"entries": []}, "agent:alice", AGENT_NS) in sio.emitted
    assert ("queue", {"entries": []}, "agent:bob", AGENT_NS) in sio.emitted
    assert ("status", {"state": "queued", "text": "排队中"}, "s", BORROWER_NS) in sio.emitted
    uttered = [d for e, d, _, _ in sio.emitted if e == "bot_uttered"]
    assert uttered and uttered[0]["text"] == "排队中"
    assert rasa.events == [("s", ({"event": "resume"},))]


@pytest.mark.parametrize("sender", ["bot", "agent", "system"])
def test_non_borrower_senders_render(sender: str) -> None:
    assert len(render_bot_uttered(msg(sender=sender))) == 1


def test_created_at_is_passed_through() -> None:
    when = datetime(2026, 11, 23, tzinfo=timezone.utc).isoformat()
    out = render_bot_uttered(msg(created_at=when))
    assert out[0]["metadata"]["created_at"] == when


def test_waiting_sentence_is_said_only_when_it_changes() -> None:
    delivery, sio, _, _ = make()

    async def go() -> None:
        for text in ("前面还有1位", "前面还有1位", "前面还有0位"):
            await delivery.to_borrower("s", "status", {"state": "queued", "text": text})

    asyncio.run(go())
    statuses = [d for e, d, _, _ in sio.emitted if e == "status"]
    said = [d["text"] for e, d, _, _ in sio.emitted if e == "bot_uttered"]
    assert len(statuses) == 3
    assert said == ["前面还有1位", "前面还有0位"]


def test_borrowers_do_not_see_agent_usernames_or_nlu_scores() -> None:
    delivery, sio, _, _ = make()
    message = msg(sender="agent", agent_id="alice", display_name="客服小李", intent="x",
                  confidence=0.5)
    asyncio.run(delivery.to_borrower("s", "message", message))
    raw = next(d for e, d, _, _ in sio.emitted if e == "message")
    assert not {"agent_id", "intent", "confidence"} & set(raw)


def test_per_session_memos_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery_module, "MEMO_LIMIT", 2)
    memo: OrderedDict[str, int] = OrderedDict()
    for key, value in (("a", 1), ("b", 2), ("a", 3), ("c", 4)):
        delivery_module.remember(memo, key, value)
    assert dict(memo) == {"a": 3, "c": 4}  # "b" was the least recently updated
