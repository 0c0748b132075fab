"""Local delivery of socket.io events without a task per recipient.

python-socketio's AsyncManager.emit makes one task per recipient and then awaits them all
(`asyncio.wait`), so every emit costs at least two turns of the event loop before the next
line of the caller runs, even though handing a packet to a socket is only a put on that
socket's unbounded queue. A hand-off emits one event after another (the bot's reply, the
borrower's status, a queue snapshot to each online agent, the new place of every waiting
borrower), so the last of them waited behind all those loop turns, and under load each turn
is long: this is where the agent's notice of a hand-off spent its time at 200 conversations
(docs/benchmarks.md, session 7). Here each recipient's packet is queued inline, in order.

Emits that ask for an acknowledgement (a callback) keep python-socketio's own path.
"""

from __future__ import annotations

import logging
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet

log = logging.getLogger(__name__)


class InlineDelivery(socketio.AsyncManager):
    """Sits just above AsyncManager: the local delivery of the in-process manager, and of the
    Redis manager for events that reached this node."""

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None,
                   **kwargs: Any) -> None:
        if callback is not None:
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid,
                               callback=callback, to=to, **kwargs)
            return
        room = to or room
        if namespace not in self.rooms:
            return
        # the same packet for every recipient, encoded once (as AsyncManager does)
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        encoded = self.server.packet_class(
            packet.EVENT, namespace=namespace, data=[event, *args]).encode()
        eio_packets = [eio_packet.Packet(eio_packet.MESSAGE, p)
                       for p in (encoded if isinstance(encoded, list) else [encoded])]
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            for eio_pkt in eio_packets:
                try:
                    await self.server._send_eio_packet(eio_sid, eio_pkt)
                except Exception as exc:  # a closed socket must not cost the others their event
                    log.debug("event %s not delivered to %s: %r", event, sid, exc)
                    break
