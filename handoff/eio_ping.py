"""Engine.IO's ping task ended with its socket, so a closed socket is freed at once.

python-engineio 4.12 starts one task per socket that sleeps `ping_interval` seconds and then
sends a PING (`AsyncSocket._send_ping`, re-started on every PONG). Nothing cancels it when
the socket closes: the task sleeps on, finds the socket closed and ends. Until then it holds
the closed socket and everything the socket holds (its queue, its tasks, socket.io's state
for it). Under load every borrower conversation is a new connection, so the gateway kept
several thousand dead sockets (≈ connections per second × 25 s): measured at 50 concurrent
borrowers in front of the stand-in Rasa, ≈ 5,400 closed sockets with their ping tasks and
timers, about half of the gateway's objects, and each full garbage collection of that heap
stopped the event loop for up to ≈ 190 ms (docs/benchmarks.md, session 9).

Here a socket knows its ping tasks while they sleep, and closing the socket cancels them (a
task already past its sleep is left to finish: it may itself be the one closing the socket,
from `send` → `check_ping_timeout`). A socket that is closing or closed
starts no new ping task; the stock one would only have slept and found it closed. Installed
only on the python-engineio release this was written against (`install`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from engineio import packet
from engineio.async_socket import AsyncSocket

from handoff import eio_release

WRITTEN_FOR = "4.12.3"
_STOCK = {name: getattr(AsyncSocket, name) for name in ("schedule_ping", "_send_ping", "close")}


def schedule_ping(self: AsyncSocket) -> None:
    if self.closing or self.closed:
        return
    self.server.start_background_task(self._send_ping)


def sleeping_pings(sock: AsyncSocket) -> set[asyncio.Task[Any]]:
    """The socket's ping tasks still in their sleep (usually one; a client that sends PONGs
    unasked starts more, in engine.io as here)."""
    tasks: set[asyncio.Task[Any]] = sock.__dict__.setdefault("_loanbot_sleeping_pings", set())
    return tasks


async def send_ping(self: AsyncSocket) -> None:
    """engine.io's `_send_ping`, its sleep the part a close may cancel."""
    self.last_ping = None
    sleeping, task = sleeping_pings(self), asyncio.current_task()
    assert task is not None
    sleeping.add(task)
    try:
        await asyncio.sleep(self.server.ping_interval)
    finally:
        sleeping.discard(task)
    if not self.closing and not self.closed:
        self.last_ping = time.time()
        await self.send(packet.Packet(packet.PING))


async def close(self: AsyncSocket, wait: bool = True, abort: bool = False,
                reason: Any = None) -> None:
    try:
        await _STOCK["close"](self, wait=wait, abort=abort, reason=reason)
    finally:
        # A sleeping task is suspended in its sleep, so it is never the one running this.
        for task in sleeping_pings(self):
            task.cancel()


def install() -> bool:
    """Use these for every engine.io socket in the process, if the installed python-engineio
    is the release they were written for; otherwise keep engine.io's own."""
    if not eio_release.installed_is(WRITTEN_FOR, keeping="ping task"):
        return False
    AsyncSocket.schedule_ping = schedule_ping
    AsyncSocket._send_ping = send_ping
    AsyncSocket.close = close
    return True


def uninstall() -> None:
    """Back to engine.io's own (for the tests)."""
    for name, value in _STOCK.items():
        setattr(AsyncSocket, name, value)
