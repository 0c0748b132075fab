"""Engine.IO's ping task ended with its socket (handoff/eio_ping.py).

Driven with a real engine.io server and socket: an open socket is still pinged, a PONG
schedules the next ping, a closed socket is freed at once instead of ping_interval later,
and a ping task already past its sleep is never cut short."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import engineio
import pytest
from engineio import packet
from engineio.async_socket import AsyncSocket

from handoff import eio_ping

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def installed() -> Iterator[None]:
    assert eio_ping.install()
    yield
    eio_ping.uninstall()


def make_socket(ping_interval: float) -> tuple[AsyncSocket, list[Any]]:
    server = engineio.AsyncServer(async_mode="asgi", ping_interval=ping_interval,
                                  ping_timeout=ping_interval, async_handlers=False)
    disconnects: list[Any] = []

    async def on_disconnect(sid: str, reason: Any) -> None:
        disconnects.append(reason)

    server.on("disconnect", on_disconnect)
    return AsyncSocket(server, "sid-1"), disconnects


async def test_an_open_socket_is_pinged_and_a_pong_schedules_the_next_ping() -> None:
    sock, _ = make_socket(ping_interval=0.02)
    sock.schedule_ping()
    first = await asyncio.wait_for(sock.queue.get(), 1)
    assert first.packet_type == packet.PING
    assert sock.last_ping is not None
    await sock.receive(packet.Packet(packet.PONG))
    second = await asyncio.wait_for(sock.queue.get(), 1)
    assert second.packet_type == packet.PING
    await sock.close(wait=False, abort=True)


async def test_a_closed_socket_is_freed_at_once_not_after_the_ping_interval() -> None:
    sock, disconnects = make_socket(ping_interval=60)
    sock.schedule_ping()
    await asyncio.sleep(0)  # the ping task starts its sleep
    (task,) = eio_ping.sleeping_pings(sock)
    await sock.close(wait=False, abort=True)
    assert disconnects == [sock.server.reason.SERVER_DISCONNECT]
    await asyncio.sleep(0)
    assert task.cancelled()
    ref = weakref.ref(sock)
    del sock, task
    gc.collect()
    assert ref() is None, "something still holds the closed socket"


async def test_a_closing_or_closed_socket_starts_no_ping_task() -> None:
    sock, _ = make_socket(ping_interval=60)
    await sock.close(wait=False, abort=True)
    before = len(asyncio.all_tasks())
    sock.schedule_ping()  # a late PONG would do this
    assert len(asyncio.all_tasks()) == before


async def test_a_ping_task_past_its_sleep_is_left_to_finish() -> None:
    sock, _ = make_socket(ping_interval=0.01)
    sent: list[Any] = []
    senders: list[asyncio.Task[Any]] = []
    sending = asyncio.Event()

    async def slow_send(pkt: packet.Packet) -> None:
        task = asyncio.current_task()
        assert task is not None
        senders.append(task)
        sending.set()
        await asyncio.sleep(0.05)
        sent.append(pkt.packet_type)

    sock.send = slow_send  # type: ignore[method-assign]
    sock.schedule_ping()
    await asyncio.wait_for(sending.wait(), 1)
    await sock.close(wait=False, abort=True)  # while the task is sending its PING
    (task,) = senders
    await asyncio.wait_for(task, 1)
    assert sent == [packet.PING]
    assert not task.cancelled()


async def test_every_sleeping_ping_task_ends_with_the_socket() -> None:
    """A client that sends PONGs unasked starts a ping task for each (engine.io does the
    same); closing the socket ends all of them."""
    sock, _ = make_socket(ping_interval=60)
    sock.schedule_ping()
    await sock.receive(packet.Packet(packet.PONG))
    await asyncio.sleep(0)
    tasks = set(eio_ping.sleeping_pings(sock))
    assert len(tasks) == 2
    await sock.close(wait=False, abort=True)
    await asyncio.sleep(0)
    assert all(task.cancelled() for task in tasks)
    assert not eio_ping.sleeping_pings(sock)


async def test_the_stock_ping_task_holds_a_closed_socket() -> None:
    """What the patch is for: without it the closed socket lives until the ping task's sleep
    ends."""
    eio_ping.uninstall()
    sock, _ = make_socket(ping_interval=60)
    sock.schedule_ping()
    await asyncio.sleep(0)
    await sock.close(wait=False, abort=True)
    ref = weakref.ref(sock)
    del sock
    gc.collect()
    held = ref()
    assert held is not None
    for task in asyncio.all_tasks():
        if task.get_coro().__qualname__ == "AsyncSocket._send_ping":
            task.cancel()


def test_installed_only_on_the_release_it_was_written_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    eio_ping.uninstall()
    monkeypatch.setattr(eio_ping, "WRITTEN_FOR", "0.0.0")
    assert not eio_ping.install()
    assert AsyncSocket.close is eio_ping._STOCK["close"]
    monkeypatch.undo()
    assert eio_ping.install()
    assert AsyncSocket.close is eio_ping.close
