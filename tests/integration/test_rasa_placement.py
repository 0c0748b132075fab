"""The gateway in front of two stand-in Rasa: with one gateway node (the default placement) a
new session starts on the less busy instance and stays there; asked for the hash, it keeps
to the hash."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from handoff.sharding import owner
from tests.integration.conftest import Borrower, GatewayFactory
from tests.integration.fake_rasa import FakeRasa

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def _borrower_owned_by(url: str, gateway_url: str, urls: list[str],
                             made: list[Any]) -> Borrower:
    """A new borrower whose session the rendezvous hash gives to `url`."""
    for _ in range(64):
        b = Borrower()
        made.append(b)
        await b.open(gateway_url)
        if owner(b.session_id, urls) == url:
            return b
    raise AssertionError("64 sessions and none hashed to the instance")


async def _reply(borrower: Borrower) -> dict[str, Any]:
    reply: dict[str, Any] = await borrower.wait_for(
        "bot_uttered", lambda d: d.get("metadata", {}).get("sender") == "bot", timeout=10)
    return reply


async def test_a_new_session_starts_on_the_less_busy_rasa_and_stays_there(
        gateway_factory: GatewayFactory, made: list[Any]) -> None:
    with FakeRasa(slow_seconds=1.5) as a, FakeRasa(slow_seconds=1.5) as b:
        urls = [a.url, b.url]
        server = gateway_factory(a.url, rasa_urls=",".join(urls))
        # a session the hash gives to `a`, placed there (both idle), keeps it busy
        hog = await _borrower_owned_by(a.url, server.url, urls, made)
        assert (await hog.say("慢"))["ok"]
        await asyncio.sleep(0.3)
        newcomer = await _borrower_owned_by(a.url, server.url, urls, made)
        assert (await newcomer.say("你好"))["ok"]
        assert (await _reply(newcomer))["text"]
        await _reply(hog)
        # `a` is idle again: the session stays where it started
        assert (await newcomer.say("第二句"))["ok"]
        await _reply(newcomer)
        assert b.texts_from(newcomer.session_id) == ["你好", "第二句"]
        assert a.texts_from(newcomer.session_id) == []
        assert a.texts_from(hog.session_id) == ["慢"]


async def test_several_gateway_nodes_keep_to_the_hash(
        gateway_factory: GatewayFactory, made: list[Any]) -> None:
    """HANDOFF_RASA_PLACEMENT=hash (the default with the Redis manager): the busy owner
    still gets the session, as every node would compute."""
    with FakeRasa(slow_seconds=1.5) as a, FakeRasa(slow_seconds=1.5) as b:
        urls = [a.url, b.url]
        server = gateway_factory(a.url, rasa_urls=",".join(urls), rasa_placement="hash")
        hog = await _borrower_owned_by(a.url, server.url, urls, made)
        assert (await hog.say("慢"))["ok"]
        await asyncio.sleep(0.3)
        newcomer = await _borrower_owned_by(a.url, server.url, urls, made)
        assert (await newcomer.say("你好"))["ok"]
        await _reply(newcomer)
        assert a.texts_from(newcomer.session_id) == ["你好"]
        assert b.texts_from(newcomer.session_id) == []
