"""The whole conversation path with nothing stood in: socket.io borrower → gateway → the real
trained Rasa + action server → back; handoff to a real agent client and back to the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import (
    Agent,
    Borrower,
    Client,
    GatewayServer,
    Helpers,
)
from tests.stack import BotStack
from tests.system.conftest import gateway_on

pytestmark = [pytest.mark.needs_model, pytest.mark.integration, pytest.mark.anyio]

BOT_WAIT = 30.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def real_gateway(bot: BotStack, tmp_path: Path) -> Iterator[GatewayServer]:
    with gateway_on(bot, tmp_path) as server:
        yield server


@pytest.fixture
async def h(real_gateway: GatewayServer) -> AsyncIterator[Helpers]:
    made: list[Client] = []
    yield Helpers(real_gateway, made)
    for client in made:
        with contextlib.suppress(Exception):
            await client.close()


async def bot_text(borrower: Borrower) -> str:
    reply = await borrower.wait_for("bot_uttered", lambda d: bool(d.get("text")), BOT_WAIT)
    return str(reply["text"])


async def claim(agent: Agent, session_id: str) -> dict:
    queue = await agent.call("queue", {})
    assert session_id in str(queue), queue
    ack = await agent.call("claim", {"session_id": session_id})
    assert ack["ok"], ack
    return dict(ack)


async def test_bot_answers_then_a_complaint_reaches_an_agent_and_returns_to_the_bot(
    h: Helpers,
) -> None:
    borrower = await h.borrower()
    await borrower.say("你好")
    assert await bot_text(borrower)

    await borrower.say("你们的催收天天打电话骚扰我家人，我要投诉")
    status = await borrower.wait_for("status", lambda s: s.get("state") == "queued", BOT_WAIT)
    assert status["queue_position"] == 1
    await asyncio.sleep(0.5)
    notices = [t for s, t in h.server.stored_texts(borrower.session_id) if "转接" in t]
    assert len(notices) == 1, notices

    agent = await h.agent("carol")  # the complaints skill
    claimed = await claim(agent, borrower.session_id)
    transcript = claimed.get("transcript") or claimed
    assert "complaint" in str(transcript)

    await agent.call("message", {"session_id": borrower.session_id, "text": "您好，我是小陈"})
    reply = await borrower.wait_for(
        "bot_uttered", lambda d: d.get("text") == "您好，我是小陈", BOT_WAIT)
    assert reply["metadata"].get("agent_name") == "小陈"

    # The bot stays silent while the agent holds the session.
    await borrower.say("信用贷利率多少")
    await agent.wait_for("message", lambda m: m.get("text") == "信用贷利率多少", BOT_WAIT)
    assert all(s != "bot" for s, _ in h.server.stored_texts(borrower.session_id)[-1:])

    ack = await agent.call(
        "close", {"session_id": borrower.session_id, "disposition": "return_to_bot"}
    )
    assert ack["ok"], ack
    await borrower.wait_for("status", lambda s: s.get("state") == "bot", BOT_WAIT)
    await borrower.say("信用贷的年化利率是多少")
    answer = await borrower.wait_for(
        "bot_uttered", lambda d: "年化" in str(d.get("text", "")), BOT_WAIT)
    assert answer["text"]

    # A second handoff works after returning to the bot.
    await borrower.say("转人工")
    await borrower.wait_for("status", lambda s: s.get("state") == "queued", BOT_WAIT)


async def test_three_unresolved_turns_queue_the_session(h: Helpers) -> None:
    borrower = await h.borrower()
    for text in ("给我讲个笑话吧", "今天北京天气怎么样", "推荐一只能涨的股票"):
        await borrower.say(text)
    status = await borrower.wait_for("status", lambda s: s.get("state") == "queued", BOT_WAIT)
    assert status["session_id"] == borrower.session_id
