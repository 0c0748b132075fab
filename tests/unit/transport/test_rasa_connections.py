"""The gateway's connections to Rasa: a bounded set per instance, kept open and reused, and
one instance's backlog never holds up calls to another (handoff/rasa_client.py says why)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from handoff.placement import HASH, Placement
from handoff.rasa_client import RasaClient
from tests.integration.fake_rasa import SLOW_REPLY, FakeRasa


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    with FakeRasa(slow_seconds=0.3) as fake:
        yield fake


@pytest.fixture
def quick_rasa() -> Iterator[FakeRasa]:
    with FakeRasa() as fake:
        yield fake


def sessions_owned_by(client: RasaClient, url: str, count: int) -> list[str]:
    found = []
    n = 0
    while len(found) < count:
        session = f"conn-session-{n:05d}-abcdefgh"
        if client.instances_for(session)[0] == url:
            found.append(session)
        n += 1
    return found


def test_calls_beyond_the_cap_wait_and_reuse_the_same_connections(rasa: FakeRasa) -> None:
    async def run() -> list[list[dict[str, str]]]:
        client = RasaClient(rasa.url, connections_per_instance=3)
        try:
            sessions = [f"cap-session-{i:03d}-abcdefgh" for i in range(12)]
            first = await asyncio.gather(*(client.send_message(s, "慢") for s in sessions))
            second = await asyncio.gather(*(client.send_message(s, "慢") for s in sessions))
            return [*first, *second]
        finally:
            await client.close()

    replies = asyncio.run(run())
    assert len(replies) == 24 and all(r[0]["text"] == SLOW_REPLY for r in replies)
    assert len(rasa.messages) == 24
    assert rasa.most_in_flight <= 3
    # the second round went over the connections the first opened: never more than the cap
    assert 1 <= len(rasa.client_ports) <= 3


def test_one_after_another_is_one_connection(quick_rasa: FakeRasa) -> None:
    async def run() -> None:
        client = RasaClient(quick_rasa.url)
        try:
            for turn in range(10):
                await client.send_message("serial-session-0000000", f"第{turn}句")
        finally:
            await client.close()

    asyncio.run(run())
    assert len(quick_rasa.texts_from("serial-session-0000000")) == 10
    assert len(quick_rasa.client_ports) == 1


def test_a_backlogged_instance_does_not_hold_up_another(rasa: FakeRasa,
                                                         quick_rasa: FakeRasa) -> None:
    async def run() -> tuple[int, int]:
        # routed by the hash, so the sessions picked below are the ones each instance gets
        # (least-busy placement would move new sessions off the backlogged instance)
        client = RasaClient([rasa.url, quick_rasa.url], connections_per_instance=2,
                            placement=Placement(HASH))
        try:
            backlog = [asyncio.ensure_future(client.send_message(s, "慢"))
                       for s in sessions_owned_by(client, rasa.url, 8)]
            await asyncio.sleep(0.1)  # the slow instance's two connections are busy
            (other,) = sessions_owned_by(client, quick_rasa.url, 1)
            await client.send_message(other, "你好")
            # 8 calls, 2 at a time, 0.3 s each: most of the backlog is still waiting
            still_waiting = sum(not call.done() for call in backlog)
            answered_quick = len(quick_rasa.messages)
            await asyncio.gather(*backlog)
            return still_waiting, answered_quick
        finally:
            await client.close()

    still_waiting, answered_quick = asyncio.run(run())
    assert answered_quick == 1
    assert still_waiting >= 6
    assert len(rasa.messages) == 8 and rasa.most_in_flight <= 2


def test_waiting_for_a_connection_counts_against_the_total_not_the_connect_timeout(
    rasa: FakeRasa,
) -> None:
    async def run() -> list[list[dict[str, str]]]:
        client = RasaClient(rasa.url, connections_per_instance=1, timeout_seconds=10,
                            connect_timeout_seconds=0.1)
        try:
            # one at a time: the last waits ≈ 0.9 s for the connection, far over 0.1 s
            return await asyncio.gather(
                *(client.send_message(f"queue-session-{i}-abcdefgh", "慢") for i in range(4)))
        finally:
            await client.close()

    replies = asyncio.run(run())
    assert [r[0]["text"] for r in replies] == [SLOW_REPLY] * 4
    assert rasa.most_in_flight == 1 and len(rasa.client_ports) == 1


def test_calls_now_counts_running_and_waiting_per_instance(rasa: FakeRasa) -> None:
    async def run() -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
        client = RasaClient(rasa.url, connections_per_instance=1)
        try:
            calls = [asyncio.ensure_future(client.send_message(f"gauge-{i}-abcdefgh", "慢"))
                     for i in range(3)]
            await asyncio.sleep(0.15)  # one is with Rasa (0.3 s), two wait for its connection
            during = client.calls_now()
            await asyncio.gather(*calls)
            return during, client.calls_now()
        finally:
            await client.close()

    during, after = asyncio.run(run())
    label = f"127.0.0.1:{rasa.port}"
    assert during == {label: (1, 2)}
    assert after == {label: (0, 0)}


def test_instances_are_labelled_by_address_without_credentials() -> None:
    client = RasaClient(["http://bot:s3cret@rasa-1:5005/", "https://rasa-2.internal",
                         "http://[::1]:5005", "http://proxy:8000/rasa-a/"])
    assert client.calls_now() == {"rasa-1:5005": (0, 0), "rasa-2.internal:443": (0, 0),
                                  "[::1]:5005": (0, 0), "proxy:8000/rasa-a": (0, 0)}


def test_a_client_needs_at_least_one_connection_per_instance() -> None:
    with pytest.raises(ValueError):
        RasaClient("http://127.0.0.1:1", connections_per_instance=0)
