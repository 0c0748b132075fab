"""Several Rasa instances: each session always reaches its owner; a refused connection moves
the call to the session's next instance; other failures are not retried elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from handoff.placement import HASH, LEAST_BUSY, Placement
from handoff.rasa_client import RasaClient, RasaUnavailable
from handoff.sharding import owner
from tests.integration.fake_rasa import FakeRasa, free_port


@pytest.fixture
def three() -> Iterator[list[FakeRasa]]:
    with FakeRasa(slow_seconds=1.0) as a, FakeRasa(slow_seconds=1.0) as b, \
            FakeRasa(slow_seconds=1.0) as c:
        yield [a, b, c]


def owned_by(url: str, urls: list[str], count: int, prefix: str) -> list[str]:
    """`count` session ids that the rendezvous hash gives to `url`."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        session = f"{prefix}-{n:04d}-0123456789"
        if owner(session, urls) == url:
            found.append(session)
        n += 1
    return found


async def _talk(client: RasaClient, pairs: list[tuple[str, str]]) -> None:
    try:
        for sender, text in pairs:
            await client.send_message(sender, text)
    finally:
        await client.close()


def test_each_session_always_goes_to_its_owner(three: list[FakeRasa]) -> None:
    urls = [f.url for f in three]
    sessions = [f"session-{i:03d}-abcdefghijklmnop" for i in range(30)]
    pairs = [(s, f"第{turn}句") for turn in range(3) for s in sessions]
    asyncio.run(_talk(RasaClient(urls), pairs))
    by_url = {f.url: f for f in three}
    for session in sessions:
        mine = by_url[owner(session, urls)]
        assert mine.texts_from(session) == ["第0句", "第1句", "第2句"]
        assert all(not f.texts_from(session) for f in three if f is not mine)
    assert all(f.messages for f in three)  # the sessions are spread over all instances


def test_resume_events_go_to_the_same_instance_as_messages(three: list[FakeRasa]) -> None:
    urls = [f.url for f in three]
    client = RasaClient(urls)

    async def run() -> None:
        try:
            await client.send_message("resume-session-0000000", "你好")
            await client.append_events("resume-session-0000000", [{"event": "resume"}])
        finally:
            await client.close()

    asyncio.run(run())
    mine = {f.url: f for f in three}[owner("resume-session-0000000", urls)]
    assert mine.events_for("resume-session-0000000") == [{"event": "resume"}]


def test_refused_owner_fails_over_to_the_runner_up(three: list[FakeRasa]) -> None:
    urls = [f.url for f in three]
    client = RasaClient(urls)
    session = "failover-session-000000"
    first, second = client.instances_for(session)[:2]
    by_url = {f.url: f for f in three}
    by_url[first].go_down()
    asyncio.run(_talk(client, [(session, "你好")]))
    assert by_url[second].texts_from(session) == ["你好"]


def test_all_refused_is_unavailable() -> None:
    client = RasaClient([f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"])
    with pytest.raises(RasaUnavailable):
        asyncio.run(_talk(client, [("s", "你好")]))


def test_server_error_is_not_retried_on_another_instance(three: list[FakeRasa]) -> None:
    urls = [f.url for f in three]
    with pytest.raises(RasaUnavailable):
        asyncio.run(_talk(RasaClient(urls), [("error-session-0000000", "坏了")]))
    assert not any(f.messages for f in three)  # "坏" answers 500 before recording


def test_needs_a_url() -> None:
    with pytest.raises(ValueError):
        RasaClient([])


def test_a_new_session_goes_to_the_less_busy_instance_and_stays_there() -> None:
    """Least-busy placement (one gateway node): with the hash owner busy, a new session
    starts on the other instance, and every later message and its resume events follow it
    there even once the owner is idle again."""
    with FakeRasa(slow_seconds=0.5) as a, FakeRasa(slow_seconds=0.5) as b:
        urls = [a.url, b.url]
        session = "placed-session-000000"
        busy_url = owner(session, urls)
        busy, other = (a, b) if busy_url == a.url else (b, a)
        client = RasaClient(urls, placement=Placement(LEAST_BUSY))

        async def run() -> None:
            try:
                # three slow calls keep the owner busy (sessions that live there)
                hogs = owned_by(busy_url, urls, 3, "hog")
                slow = [asyncio.ensure_future(client.send_message(h, "慢")) for h in hogs]
                await asyncio.sleep(0.1)
                await client.send_message(session, "第0句")
                await asyncio.gather(*slow)
                await client.send_message(session, "第1句")
                await client.append_events(session, [{"event": "resume"}])
            finally:
                await client.close()

        asyncio.run(run())
        assert other.texts_from(session) == ["第0句", "第1句"]
        assert other.events_for(session) == [{"event": "resume"}]
        assert not busy.texts_from(session) and not busy.events_for(session)


def test_hash_placement_keeps_the_owner_however_busy() -> None:
    with FakeRasa(slow_seconds=0.3) as a, FakeRasa(slow_seconds=0.3) as b:
        urls = [a.url, b.url]
        session = "hashed-session-000000"
        client = RasaClient(urls, placement=Placement(HASH))

        async def run() -> None:
            try:
                hogs = owned_by(owner(session, urls), urls, 3, "hog")
                slow = [asyncio.ensure_future(client.send_message(h, "慢")) for h in hogs]
                await asyncio.sleep(0.1)
                await client.send_message(session, "你好")
                await asyncio.gather(*slow)
            finally:
                await client.close()

        asyncio.run(run())
        mine = {a.url: a, b.url: b}[owner(session, urls)]
        assert mine.texts_from(session) == ["你好"]


def test_a_refusing_instance_gets_no_new_sessions_and_a_moved_session_stays_moved() -> None:
    """Least-busy placement and fail-over: an instance that is down has no calls outstanding,
    so without a memory of its refusals every new session would be placed on it and pay a
    refused connection (or a connect timeout) on every call."""
    with FakeRasa() as a, FakeRasa() as b:
        urls = [a.url, b.url]
        client = RasaClient(urls, placement=Placement(LEAST_BUSY))
        owned_by_a = owned_by(a.url, urls, 4, "down")
        moved, fresh = owned_by_a[0], owned_by_a[1:]
        tried: list[str] = []
        post = client._post

        async def logged(base: str, path: str, payload: bytes, urgent: bool) -> Any:
            tried.append(base)
            return await post(base, path, payload, urgent)

        client._post = logged  # type: ignore[method-assign]

        async def run() -> None:
            try:
                await client.send_message(moved, "第0句")       # placed on a (idle: the hash)
                a.go_down()
                await client.close()    # its kept connection gone too, as when a Rasa stops
                await client.send_message(moved, "第1句")       # refused by a, answered by b
                tried.clear()
                for session in fresh:                           # a's by the hash, placed on b
                    await client.send_message(session, "你好")
                assert tried == [b.url] * len(fresh)
                a.come_up()
                await client.send_message(moved, "第2句")       # stays where it was answered
            finally:
                await client.close()

        asyncio.run(run())
        assert a.texts_from(moved) == ["第0句"]
        assert b.texts_from(moved) == ["第1句", "第2句"]
        assert all(b.texts_from(s) == ["你好"] for s in fresh)
