"""Engine.IO's websocket loop without a task and a timer per packet.

python-engineio 4.12 reads each websocket packet through `asyncio.ensure_future` plus
`asyncio.wait_for` (a new task and a new timer for every packet received), and its writer
waits for each batch the same way (`poll`: `wait_for(queue.get(), ...)`). Every borrower
turn therefore made three tasks and three timers on the gateway before any of our code ran,
and each added loop turns between a frame arriving and our handler, and between a reply being
queued and its frame being written. At one conversation at a time those run cold, after the
gateway slept through Rasa's turn, which is what the gateway's overhead is made of
(docs/benchmarks.md, session 8).

Here one reading loop awaits the websocket directly, and one timer per socket, re-armed only
when it fires, ends a connection that has sent nothing for `ping_interval + ping_timeout`
seconds, as engine.io's own per-packet timeout did. The writer awaits its queue directly; the
reader puts the same `None` on it when it stops. Everything else (upgrade from polling,
packet decoding, `receive`, close) is engine.io's own code, and the handler is installed only
on the engine.io version it was written against (`install`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from engineio import exceptions, packet
from engineio.async_socket import AsyncSocket

from handoff import eio_release

log = logging.getLogger(__name__)

# The python-engineio release whose AsyncSocket._websocket_handler this replaces.
WRITTEN_FOR = "4.12.3"
_STOCK_HANDLER = AsyncSocket._websocket_handler


class IdleDeadline:
    """Cancels a reading task that has waited `seconds` since the last packet.

    A packet only records the time (`touch`); the one timer re-arms itself for the time that
    is left when it fires. A task busy with a packet (not waiting) is never cancelled."""

    def __init__(self, task: asyncio.Task[Any], seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = task
        self._seconds = seconds
        self.last = self._loop.time()
        self.waiting = False
        self.expired = False
        self._handle = self._loop.call_later(seconds, self._check)

    def touch(self) -> None:
        self.last = self._loop.time()

    def _check(self) -> None:
        left = self.last + self._seconds - self._loop.time()
        if left > 0 or not self.waiting:
            self._handle = self._loop.call_later(max(left, 0.05), self._check)
            return
        self.expired = True
        self._task.cancel()

    def cancel(self) -> None:
        self._handle.cancel()


async def _writer(sock: AsyncSocket, ws: Any) -> None:
    """Send what is queued for the socket, batch by batch, until `None` or a failed send;
    then close the websocket (engine.io's writer, without a timer per wait)."""
    queue = sock.queue
    while True:
        try:
            first = await queue.get()
        except asyncio.CancelledError:
            break
        queue.task_done()
        if first is None:
            break
        packets = [first]
        while True:
            try:
                pkt = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            queue.task_done()
            if pkt is None:
                queue.put_nowait(None)  # seen by the next wait, after this batch is sent
                break
            packets.append(pkt)
        try:
            for pkt in packets:
                await ws.send(pkt.encode())
        except BaseException:  # noqa: BLE001 - engine.io's writer stops on any failed send
            break
    await ws.close()


async def websocket_handler(self: AsyncSocket, ws: Any) -> None:
    """AsyncSocket._websocket_handler with one reading loop (see the module's docstring)."""
    server = self.server

    async def websocket_wait() -> Any:
        data = await ws.wait()
        if data and len(data) > server.max_http_buffer_size:
            raise ValueError("packet is too large")
        return data

    if self.connected:
        # An upgrade from polling: engine.io's own probe exchange, unchanged.
        self.upgrading = True
        try:
            pkt = await websocket_wait()
        except OSError:
            return
        decoded = packet.Packet(encoded_packet=pkt)
        if decoded.packet_type != packet.PING or decoded.data != "probe":
            server.logger.info("%s: Failed websocket upgrade, no PING packet", self.sid)
            self.upgrading = False
            return
        await ws.send(packet.Packet(packet.PONG, data="probe").encode())
        await self.queue.put(packet.Packet(packet.NOOP))  # end poll
        try:
            pkt = await websocket_wait()
        except OSError:
            self.upgrading = False
            return
        decoded = packet.Packet(encoded_packet=pkt)
        if decoded.packet_type != packet.UPGRADE:
            self.upgraded = False
            server.logger.info("%s: Failed websocket upgrade, expected UPGRADE packet, "
                               "received %s instead.", self.sid, pkt)
            self.upgrading = False
            return
        self.upgraded = True
        self.upgrading = False
    else:
        self.connected = True
        self.upgraded = True

    writer_task = asyncio.ensure_future(_writer(self, ws))
    server.logger.info("%s: Upgrade to websocket successful", self.sid)
    reader = asyncio.current_task()
    assert reader is not None
    deadline = IdleDeadline(reader, server.ping_interval + server.ping_timeout)
    try:
        while True:
            deadline.waiting = True
            try:
                p = await websocket_wait()
            except BaseException:  # noqa: BLE001 - closed, too large, idle or cancelled: stop
                break
            finally:
                deadline.waiting = False
            if p is None:
                break  # connection closed by the client
            deadline.touch()
            try:
                await self.receive(packet.Packet(encoded_packet=p))
            except exceptions.UnknownPacketError:
                pass
            except exceptions.SocketIsClosedError:
                server.logger.info("Receive error -- socket is closed")
                break
            except Exception:  # as engine.io: log it and keep the connection
                server.logger.exception("Unknown receive error")
    finally:
        deadline.cancel()
    if deadline.expired:
        log.debug("engine.io socket %s sent nothing for %.0f s; closing", self.sid,
                  server.ping_interval + server.ping_timeout)
    await self.queue.put(None)  # unlock the writer so it can exit
    await writer_task
    await self.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)


def install() -> bool:
    """Use this handler for every engine.io websocket in the process, if the installed
    python-engineio is the release it was written for; otherwise keep engine.io's own."""
    if not eio_release.installed_is(WRITTEN_FOR, keeping="websocket loop"):
        return False
    AsyncSocket._websocket_handler = websocket_handler
    return True


def uninstall() -> None:
    """Back to engine.io's own handler (for the test of `install`)."""
    AsyncSocket._websocket_handler = _STOCK_HANDLER
