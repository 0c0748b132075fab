"""A borrower queued with nobody to serve them hears about the phone callback exactly once.

The handoff's effects go through the real Delivery (a recording socket.io stand-in), so what is
counted is what rasa-webchat would show: every `bot_uttered` sentence.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import pytest

from handoff.delivery import BOT_UTTERED, Delivery
from handoff.model import Effect, ToBorrower
from handoff.service import HandoffService

from .conftest import PASSWORD, FakeClock

UNRESOLVED = {"custom": {"handoff": {"reason": "unresolved_turns", "unresolved_turns": 3}}}
OUTSIDE_HOURS = datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc)  # 22:00 in Shanghai


class RecordingSio:
    def __init__(self) -> None:
        self.emitted: list[tuple[str, Any]] = []

    async def emit(self, event: str, data: Any, room: str, namespace: str) -> None:
        self.emitted.append((event, data))


class NoRasa:
    """Delivery needs a Rasa client; no effect here goes to Rasa."""


def spoken(effects: tuple[Effect, ...], session_id: str) -> list[str]:
    """The sentences the borrower's widget shows for these effects, in order."""
    sio = RecordingSio()

    async def run_sync(fn: Any, *args: Any) -> Any:
        return fn(*args)

    delivery = Delivery(sio, NoRasa(), None, run_sync)  # type: ignore[arg-type]
    mine = tuple(e for e in effects if isinstance(e, ToBorrower) and e.session_id == session_id)
    asyncio.run(delivery.deliver(mine))
    return [d["text"] for event, d in sio.emitted if event == BOT_UTTERED and d.get("text")]


def hand_off(service: HandoffService) -> tuple[str, tuple[Effect, ...]]:
    sid = service.open_session(None, "user-1").session.session_id
    service.record_borrower_message(sid, "转人工")
    result = service.accept_bot_replies(sid, [UNRESOLVED])
    assert result.handed_off
    return sid, result.effects


def offers(texts: list[str]) -> list[str]:
    return [t for t in texts if "回拨" in t]


@pytest.mark.parametrize("outside_hours", [False, True])
def test_no_agent_online_means_one_callback_offer(
    service: HandoffService, clock: FakeClock, outside_hours: bool
) -> None:
    if outside_hours:
        clock.now = OUTSIDE_HOURS
    sid, effects = hand_off(service)
    texts = spoken(effects, sid)
    assert len(offers(texts)) == 1, texts
    offer_events = [e for e in effects if isinstance(e, ToBorrower)
                    and e.event == "callback_offer"]
    assert len(offer_events) == 1
    # The waiting sentence still says there is nobody online.
    assert any("暂无客服在线" in t for t in texts), texts


def test_outside_hours_with_an_agent_online_is_one_offer_too(
    service: HandoffService, clock: FakeClock
) -> None:
    service.create_agent("gina", "小王", PASSWORD, ["general"])
    service.agent_connected("gina")
    clock.now = OUTSIDE_HOURS
    sid, effects = hand_off(service)
    texts = spoken(effects, sid)
    assert len(offers(texts)) == 1, texts
    assert "09:00-21:00" in offers(texts)[0]


def test_no_offer_when_an_agent_can_serve(service: HandoffService) -> None:
    service.create_agent("gina", "小王", PASSWORD, ["general"])
    service.agent_connected("gina")
    sid, effects = hand_off(service)
    assert offers(spoken(effects, sid)) == []


def test_resuming_a_wait_nobody_can_serve_offers_the_callback_again(
    service: HandoffService, clock: FakeClock
) -> None:
    sid, _ = hand_off(service)
    resumed = service.open_session(sid, "user-1")
    assert resumed.callback_offer is not None
    assert resumed.callback_offer["reason"] == "no_agents" and "回拨" in resumed.callback_offer[
        "text"]
    assert "回拨" not in (resumed.status.text or "")  # still one offer, not two
    service.create_agent("gina", "小王", PASSWORD, ["general"])
    service.agent_connected("gina")
    assert service.open_session(sid, "user-1").callback_offer is None
    fresh = service.open_session(None, "user-2")
    assert fresh.callback_offer is None  # bot mode: nothing to offer
