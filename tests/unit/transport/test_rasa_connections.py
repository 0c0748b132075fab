"""The gateway's connections to Rasa: a bounded set per instance, kept open and reused, and
one instance's backlog never holds up calls to another (handoff/rasa_client.py says why)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from handoff.rasa_client import RasaClient


@dataclass
class CountingRasa:
    """A REST webhook on loopback that records which client connection each call came on
    and how many calls it was handling at once."""

    delay: float
    ports: set[int] = field(default_factory=set)
    active: int = 0
    most_active: int = 0
    handled: int = 0
    url: str = ""

    async def webhook(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.ports.add(int(peer[1]))
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            body = await request.json()
            await asyncio.sleep(self.delay)
            self.handled += 1
            return web.json_response([{"recipient_id": body["sender"], "text": "好的"}])
        finally:
            self.active -= 1


@asynccontextmanager
async def serving(*servers: CountingRasa) -> AsyncIterator[None]:
    runners = []
    try:
        for server in servers:
            app = web.Application()
            app.router.add_post("/webhooks/rest/webhook", server.webhook)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            server.url = f"http://127.0.0.1:{port}"
            runners.append(runner)
        yield
    finally:
        for runner in runners:
            await runner.cleanup()


def sessions_owned_by(client: RasaClient, url: str, count: int) -> list[str]:
    found = []
    n = 0
    while len(found) < count:
        session = f"conn-session-{n:05d}-abcdefgh"
        if client.instances_for(session)[0] == url:
            found.append(session)
        n += 1
    return found


def test_calls_beyond_the_cap_wait_and_reuse_the_same_connections() -> None:
    rasa = CountingRasa(delay=0.05)

    async def run() -> list[list[dict[str, str]]]:
        async with serving(rasa):
            client = RasaClient(rasa.url, connections_per_instance=3)
            try:
                sessions = [f"cap-session-{i:03d}-abcdefgh" for i in range(12)]
                first = await asyncio.gather(*(client.send_message(s, "你好") for s in sessions))
                second = await asyncio.gather(*(client.send_message(s, "再见") for s in sessions))
                return [*first, *second]
            finally:
                await client.close()

    replies = asyncio.run(run())
    assert len(replies) == 24 and all(r[0]["text"] == "好的" for r in replies)
    assert rasa.handled == 24
    assert rasa.most_active <= 3
    # the second round went over the connections the first opened: never more than the cap
    assert 1 <= len(rasa.ports) <= 3


def test_one_after_another_is_one_connection() -> None:
    rasa = CountingRasa(delay=0.0)

    async def run() -> None:
        async with serving(rasa):
            client = RasaClient(rasa.url)
            try:
                for turn in range(10):
                    await client.send_message("serial-session-0000000", f"第{turn}句")
            finally:
                await client.close()

    asyncio.run(run())
    assert rasa.handled == 10
    assert len(rasa.ports) == 1


def test_a_backlogged_instance_does_not_hold_up_another() -> None:
    slow, quick = CountingRasa(delay=0.5), CountingRasa(delay=0.0)

    async def run() -> tuple[int, int]:
        async with serving(slow, quick):
            client = RasaClient([slow.url, quick.url], connections_per_instance=2)
            try:
                backlog = [asyncio.ensure_future(client.send_message(s, "慢"))
                           for s in sessions_owned_by(client, slow.url, 8)]
                await asyncio.sleep(0.1)  # the slow instance's two connections are busy
                (other,) = sessions_owned_by(client, quick.url, 1)
                await client.send_message(other, "快")
                # 8 calls, 2 at a time, 0.5 s each: most of the backlog is still waiting
                still_waiting = sum(not call.done() for call in backlog)
                answered_quick = quick.handled
                await asyncio.gather(*backlog)
                return still_waiting, answered_quick
            finally:
                await client.close()

    still_waiting, answered_quick = asyncio.run(run())
    assert answered_quick == 1
    assert still_waiting >= 6
    assert slow.handled == 8 and slow.most_active <= 2


def test_waiting_for_a_connection_counts_against_the_total_not_the_connect_timeout() -> None:
    rasa = CountingRasa(delay=0.3)

    async def run() -> list[list[dict[str, str]]]:
        async with serving(rasa):
            client = RasaClient(rasa.url, connections_per_instance=1, timeout_seconds=10,
                                connect_timeout_seconds=0.1)
            try:
                # one at a time: the last waits ≈ 0.9 s for the connection, far over 0.1 s
                return await asyncio.gather(
                    *(client.send_message(f"queue-session-{i}-abcdefgh", "你好") for i in range(4)))
            finally:
                await client.close()

    replies = asyncio.run(run())
    assert [r[0]["text"] for r in replies] == ["好的"] * 4
    assert rasa.most_active == 1 and len(rasa.ports) == 1


def test_a_client_needs_at_least_one_connection_per_instance() -> None:
    with pytest.raises(ValueError):
        RasaClient("http://127.0.0.1:1", connections_per_instance=0)
