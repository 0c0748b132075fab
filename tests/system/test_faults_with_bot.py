"""Faults of the real bot: the action server killed (Rasa swallows the failed action and
answers nothing) and Rasa killed mid-conversation, each restarted on the same port. The
borrower is told politely and handed to a human; after the restart the bot answers again;
every message is stored once and in order.

The action-server test runs on a stack of its own whose Rasa calls an action server
(LOANBOT_ACTIONS=remote; the shared stack runs the actions inside Rasa, as `make run` does).
The Rasa test borrows the session's bot stack. Both always restart what they killed (in
`finally`), so later tests find their stack as it was.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from handoff.service import Texts
from tests.integration.conftest import Client, GatewayServer
from tests.integration.talk import Talk, agent_socket, ok, queue_and_claim
from tests.stack import BotStack, Service, _spawn, _wait_until_up, bot_stack
from tests.system.conftest import gateway_on

pytestmark = [pytest.mark.needs_model, pytest.mark.integration, pytest.mark.anyio]

BOT_WAIT = 30.0
RATE_QUESTION = "你们的贷款利率是多少"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def gateway(bot: BotStack, tmp_path: Path) -> Iterator[GatewayServer]:
    with gateway_on(bot, tmp_path) as server:
        yield server


@pytest.fixture(scope="module")
def remote_bot(trained_model: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotStack]:
    with bot_stack(tmp_path_factory.mktemp("remote-actions"), trained_model,
                   remote_actions=True) as stack:
        yield stack


@pytest.fixture
def remote_gateway(remote_bot: BotStack, tmp_path: Path) -> Iterator[GatewayServer]:
    with gateway_on(remote_bot, tmp_path) as server:
        yield server


def kill(service: Service) -> None:
    """SIGKILL: a crash, no shutdown hooks."""
    service.process.send_signal(signal.SIGKILL)
    service.process.wait(10)


def respawn(service: Service, env: dict[str, str], health_path: str,
            seconds: float) -> Service:
    """The same command again, so the same port, model and databases."""
    log = service.log.with_name(f"{service.log.stem}-restarted.log")
    process = _spawn([str(a) for a in service.process.args], {**service.env, **env}, log)
    again = Service(service.name, process, service.url, log, service.env)
    _wait_until_up(again, f"{again.url}{health_path}", seconds)
    return again


def not_unavailable(data: dict) -> bool:
    return bool(data.get("text")) and data.get("text") != Texts.BOT_UNAVAILABLE


async def test_action_server_down_is_told_politely_then_answers_after_restart(
    remote_bot: BotStack, remote_gateway: GatewayServer, made: list[Client]
) -> None:
    bot, gateway = remote_bot, remote_gateway
    assert bot.actions is not None
    talk = Talk(made, wait=BOT_WAIT)
    await talk.open(gateway.url)
    kill(bot.actions)
    try:
        ok(await talk.say(RATE_QUESTION))  # Rasa is up; its custom action cannot run
        await talk.wait_for("bot_uttered", lambda d: d.get("text") == Texts.BOT_UNAVAILABLE)
        await talk.wait_for("status", lambda s: s.get("state") == "queued")
        view = gateway.gateway.service.session(str(talk.session_id))
        assert view.reason == "bot_unavailable"
    finally:
        bot.actions = await asyncio.to_thread(  # off the loop: sockets keep their pings
            respawn, bot.actions, {}, "/health", 90)

    again = Talk(made, wait=BOT_WAIT)
    await again.open(gateway.url)
    ok(await again.say(RATE_QUESTION))
    answer = await again.wait_for("bot_uttered", not_unavailable)  # the action ran again
    assert answer["metadata"]["sender"] == "bot"
    assert gateway.gateway.service.session(str(again.session_id)).state == "bot"
    db = gateway.gateway.settings.db_url
    await talk.check(db)
    await again.check(db)


async def test_rasa_killed_mid_conversation_hands_off_then_answers_after_restart(
    bot: BotStack, gateway: GatewayServer, made: list[Client]
) -> None:
    talk = Talk(made, wait=BOT_WAIT)
    await talk.open(gateway.url)
    ok(await talk.say(RATE_QUESTION))
    await talk.wait_for("bot_uttered", not_unavailable)
    kill(bot.rasa)
    try:
        ok(await talk.say("那还款方式有哪些"))
        await talk.wait_for("bot_uttered", lambda d: d.get("text") == Texts.BOT_UNAVAILABLE)
        await talk.wait_for("status", lambda s: s.get("state") == "queued")
    finally:
        bot.rasa = await asyncio.to_thread(respawn, bot.rasa, {}, "/", 240)

    # A human takes over, then gives the borrower back to the restarted bot.
    alice = await agent_socket(gateway.url, "alice", made)
    ok(await alice.call("claim", {"session_id": talk.session_id}))
    await talk.wait_for("status", lambda s: s.get("state") == "assigned")
    ok(await alice.call("close", {"session_id": talk.session_id,
                                  "disposition": "return_to_bot"}))
    await talk.wait_for("status", lambda s: s.get("state") == "bot")
    ok(await talk.say(RATE_QUESTION))
    answer = await talk.wait_for("bot_uttered", lambda d: not_unavailable(d)
                                 and d["metadata"].get("sender") == "bot")
    assert answer["metadata"]["seq"] > 0
    # And a second handoff still works after all that.
    await queue_and_claim(talk, alice)
    await talk.check(gateway.gateway.settings.db_url)
