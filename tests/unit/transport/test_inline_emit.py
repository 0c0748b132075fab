"""Local delivery hands each recipient its packet inline (handoff/inline_emit.py says why):
no loop turn between an emit and the caller's next line, every recipient served in order,
one failing socket costs nobody else their event, acknowledged emits keep python-socketio's
path."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
from engineio import packet as eio_packet

from handoff.inline_emit import InlineDelivery
from handoff.replay_marks import LocalManager, RedisManager


class FakeServer:
    """What the manager needs of socketio.AsyncServer: the packet class and the two sends."""

    packet_class = socketio.packet.Packet

    def __init__(self, broken: set[str] | None = None) -> None:
        self.sent: list[tuple[str, str]] = []   # (engine.io sid, encoded engine.io packet)
        self.broken = broken or set()

    async def _send_eio_packet(self, eio_sid: str, pkt: eio_packet.Packet) -> None:
        if eio_sid in self.broken:
            raise RuntimeError("socket is closed")
        self.sent.append((eio_sid, pkt.encode()))

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        self.sent.append((eio_sid, pkt.encode()))


def manager_with(rooms: dict[str, list[str]], server: FakeServer) -> InlineDelivery:
    manager = LocalManager()
    manager.set_server(server)  # type: ignore[arg-type]
    manager.initialize()
    for room, sids in rooms.items():
        for sid in sids:
            manager.basic_enter_room(sid, "/agent", None, eio_sid=f"eio-{sid}")
            manager.basic_enter_room(sid, "/agent", room, eio_sid=f"eio-{sid}")
    return manager


def test_an_emit_is_handed_to_every_recipient_before_the_loop_turns() -> None:
    server = FakeServer()
    manager = manager_with({"skill:loan": ["a", "b", "c"]}, server)

    async def go() -> list[int]:
        turned: list[int] = []
        asyncio.get_running_loop().call_soon(turned.append, 1)
        await manager.emit("queue", {"n": 1}, "/agent", room="skill:loan", skip_sid="b")
        await manager.emit("queue", {"n": 2}, "/agent", to="skill:loan")
        return list(turned)   # a copy: the callback runs once the loop turns

    assert asyncio.run(go()) == []   # python-socketio's AsyncManager lets the loop turn here
    assert [sid for sid, _ in server.sent] == ["eio-a", "eio-c", "eio-a", "eio-b", "eio-c"]
    assert server.sent[0][1] == '42/agent,["queue",{"n":1}]'
    assert server.sent[-1][1] == '42/agent,["queue",{"n":2}]'


def test_a_failing_socket_costs_the_others_nothing() -> None:
    server = FakeServer(broken={"eio-b"})
    manager = manager_with({"skill:loan": ["a", "b", "c"]}, server)
    asyncio.run(manager.emit("queue", ["x", 1], "/agent", room="skill:loan"))
    assert [sid for sid, _ in server.sent] == ["eio-a", "eio-c"]


def test_unknown_rooms_and_namespaces_deliver_nothing() -> None:
    server = FakeServer()
    manager = manager_with({"skill:loan": ["a"]}, server)

    async def go() -> None:
        await manager.emit("queue", {}, "/agent", room="nobody-here")
        await manager.emit("queue", {}, "/elsewhere", room="skill:loan")

    asyncio.run(go())
    assert server.sent == []


def test_tuples_spread_into_arguments_and_none_sends_none() -> None:
    server = FakeServer()
    manager = manager_with({"r": ["a"]}, server)

    async def go() -> None:
        await manager.emit("two", ("x", 2), "/agent", room="r")
        await manager.emit("bare", None, "/agent", room="r")

    asyncio.run(go())
    assert [p for _, p in server.sent] == ['42/agent,["two","x",2]', '42/agent,["bare"]']


def test_an_emit_with_a_callback_keeps_python_socketios_path() -> None:
    server = FakeServer()
    manager = manager_with({"r": ["a"]}, server)
    asyncio.run(manager.emit("ask", {"q": 1}, "/agent", room="r", callback=lambda *a: None))
    ((sid, encoded),) = server.sent
    assert sid == "eio-a" and encoded.startswith('2/agent,') and '["ask",{"q":1}]' in encoded


def test_both_managers_deliver_locally_through_it() -> None:
    for manager in (LocalManager, RedisManager):
        mro = manager.__mro__
        below = mro[mro.index(InlineDelivery) + 1:mro.index(socketio.AsyncManager)]
        # nothing between it and AsyncManager delivers events (handoff.sio_rooms keeps rooms)
        assert mro.index(InlineDelivery) < mro.index(socketio.AsyncManager)
        assert all("emit" not in vars(cls) for cls in below)
