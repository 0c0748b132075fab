"""Engine.IO's websocket loop without a task per packet (handoff/eio_websocket.py).

Driven with a real engine.io server and socket and a scripted websocket, so what is checked
is what engine.io sees: packets handed over in order, queued packets written in order, a
connection closed when the client goes, idles, sends too much or the task is cancelled, and
a busy handler never taken for an idle connection."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import engineio
import pytest
from engineio import packet
from engineio.async_socket import AsyncSocket

from handoff import eio_release, eio_websocket

IDLE = 0.1  # ping_interval + ping_timeout below

pytestmark = pytest.mark.anyio


class ScriptedWebSocket:
    """What engine.io's ASGI driver offers: wait() → text, bytes or None (closed)."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[Any] = asyncio.Queue()
        self.sent: list[Any] = []
        self.closed = False
        self.fail_sends = False
        self.arrived = asyncio.Event()

    async def wait(self) -> Any:
        return await self.incoming.get()

    async def send(self, data: Any) -> None:
        if self.fail_sends:
            raise OSError("connection reset")
        self.sent.append(data)
        self.arrived.set()

    async def close(self) -> None:
        self.closed = True
        self.incoming.put_nowait(None)

    async def sent_count(self, n: int, timeout: float = 2.0) -> list[Any]:
        async def enough() -> None:
            while len(self.sent) < n:
                self.arrived.clear()
                await self.arrived.wait()
        await asyncio.wait_for(enough(), timeout)
        return self.sent


class Harness:
    def __init__(self, slow_seconds: float = 0.0) -> None:
        self.server = engineio.AsyncServer(async_mode="asgi", ping_interval=IDLE / 2,
                                           ping_timeout=IDLE / 2, async_handlers=False,
                                           max_http_buffer_size=1000)
        self.received: list[Any] = []
        self.disconnects: list[Any] = []
        self.slow_seconds = slow_seconds
        self.finished_slow = False

        async def on_message(sid: str, data: Any) -> None:
            self.received.append(data)
            if data == "slow":
                await asyncio.sleep(self.slow_seconds)
                self.finished_slow = True

        async def on_disconnect(sid: str, reason: Any) -> None:
            self.disconnects.append(reason)

        self.server.on("message", on_message)
        self.server.on("disconnect", on_disconnect)
        self.sock = AsyncSocket(self.server, "sid-1")
        self.server.sockets["sid-1"] = self.sock
        self.ws = ScriptedWebSocket()

    def start(self) -> asyncio.Task[None]:
        return asyncio.ensure_future(eio_websocket.websocket_handler(self.sock, self.ws))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def harness() -> Harness:
    return Harness()


async def test_packets_reach_the_handler_in_order_and_queued_ones_go_out_in_order(
        harness: Harness) -> None:
    task = harness.start()
    for text in ("4一", "4二", "4三"):
        harness.ws.incoming.put_nowait(text)
    for text in ("甲", "乙", "丙"):
        await harness.sock.send(packet.Packet(packet.MESSAGE, data=text))
    assert await harness.ws.sent_count(3) == ["4甲", "4乙", "4丙"]
    await asyncio.sleep(0.01)
    assert harness.received == ["一", "二", "三"]
    await harness.ws.close()  # the client goes
    await asyncio.wait_for(task, 1)
    assert harness.disconnects == [harness.server.reason.TRANSPORT_CLOSE]
    assert harness.sock.closed


async def test_a_connection_that_sends_nothing_is_closed_after_the_ping_window(
        harness: Harness) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = harness.start()
    await asyncio.wait_for(task, 2)
    waited = loop.time() - started
    # a loop may run a timer a hair early (asyncio by its clock resolution, libuv by its
    # millisecond clock); seen here: 0.09999999999990905
    assert IDLE - 0.002 <= waited < IDLE + 0.5
    assert harness.ws.closed and harness.sock.closed
    assert harness.disconnects == [harness.server.reason.TRANSPORT_CLOSE]


async def test_packets_keep_the_connection_open_past_the_window(harness: Harness) -> None:
    task = harness.start()
    for _ in range(8):  # 0.32 s of pongs, every 0.04 s: three windows of 0.1 s
        harness.ws.incoming.put_nowait("3")
        await asyncio.sleep(IDLE * 0.4)
        assert not task.done()
    await asyncio.wait_for(task, 2)  # then silence: closed
    assert harness.sock.closed


async def test_a_busy_handler_is_not_taken_for_an_idle_connection() -> None:
    harness = Harness(slow_seconds=IDLE * 3)
    task = harness.start()
    harness.ws.incoming.put_nowait("4slow")
    await asyncio.wait_for(task, 3)
    assert harness.finished_slow  # ran to its end, not cancelled half-way


async def test_a_packet_over_the_size_limit_closes_the_connection(harness: Harness) -> None:
    task = harness.start()
    harness.ws.incoming.put_nowait("4" + "长" * 2000)
    await asyncio.wait_for(task, 1)
    assert harness.received == [] and harness.sock.closed and harness.ws.closed


async def test_a_failed_send_stops_the_writer_and_closes(harness: Harness) -> None:
    task = harness.start()
    harness.ws.fail_sends = True
    await harness.sock.send(packet.Packet(packet.MESSAGE, data="丢"))
    await asyncio.wait_for(task, 1)
    assert harness.ws.closed and harness.sock.closed


async def test_cancelling_the_task_closes_the_socket_cleanly(harness: Harness) -> None:
    task = harness.start()
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait_for(task, 1)  # engine.io's loop ends quietly, as its own does
    assert harness.ws.closed and harness.sock.closed
    assert harness.disconnects == [harness.server.reason.TRANSPORT_CLOSE]


async def test_an_upgrade_from_polling_does_the_probe_exchange(harness: Harness) -> None:
    harness.sock.connected = True  # a polling session asking to upgrade
    task = harness.start()
    harness.ws.incoming.put_nowait("2probe")
    assert await harness.ws.sent_count(1) == ["3probe"]
    assert (await harness.sock.queue.get()).packet_type == packet.NOOP  # ends the poll
    harness.ws.incoming.put_nowait("5")
    harness.ws.incoming.put_nowait("4升级后")
    await asyncio.sleep(0.02)
    assert harness.sock.upgraded and harness.received == ["升级后"]
    await harness.ws.close()
    await asyncio.wait_for(task, 1)


async def test_an_upgrade_without_the_probe_is_refused(harness: Harness) -> None:
    harness.sock.connected = True
    task = harness.start()
    harness.ws.incoming.put_nowait("4不是探测")
    await asyncio.wait_for(task, 1)
    assert not harness.sock.upgraded and harness.received == []


def test_installed_only_on_the_release_it_was_written_for(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    try:
        assert eio_websocket.install()
        assert AsyncSocket._websocket_handler is eio_websocket.websocket_handler
        eio_websocket.uninstall()
        monkeypatch.setattr(eio_release.metadata, "version", lambda _name: "4.99.0")
        with caplog.at_level(logging.WARNING, logger="handoff.eio_release"):
            assert not eio_websocket.install()
        assert AsyncSocket._websocket_handler is not eio_websocket.websocket_handler
        assert "keeping its own websocket loop" in caplog.text
    finally:
        monkeypatch.undo()
        eio_websocket.install()  # as the gateway runs


async def test_the_writer_stops_at_the_readers_none_in_the_middle_of_a_batch(
        harness: Harness) -> None:
    """As engine.io's poll: a None taken in the middle of a batch is put back, so the writer
    sends what it holds (and what was queued behind) and then stops instead of waiting."""
    queue = harness.sock.queue
    queue.put_nowait(packet.Packet(packet.MESSAGE, data="先"))
    queue.put_nowait(None)  # the reader stopped
    queue.put_nowait(packet.Packet(packet.MESSAGE, data="后"))
    writer = asyncio.ensure_future(eio_websocket._writer(harness.sock, harness.ws))
    await asyncio.sleep(0.1)
    assert writer.done()  # stopped by itself (a cancelled writer also ends quietly)
    assert harness.ws.sent == ["4先", "4后"] and harness.ws.closed
