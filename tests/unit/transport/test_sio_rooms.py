"""handoff.sio_rooms: python-socketio's room bookkeeping, with each socket's rooms indexed.

The reference is python-socketio's own AsyncManager: the same operations in the same order
must leave the same rooms, participants, connections and errors."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
import socketio
from bidict import ValueDuplicationError
from hypothesis import given, settings
from hypothesis import strategies as st

from handoff.replay_marks import LocalManager, RedisManager
from handoff.sio_rooms import IndexedRooms, RoomMembers

NAMESPACES = ["/", "/agent"]
ROOMS = ["a", "b", "c"]


class _Server:
    """What a manager asks of its server: new sids, in the same order for both managers."""

    def __init__(self) -> None:
        counter = itertools.count(1)
        self.eio = type("Eio", (), {"generate_id": staticmethod(lambda: f"s{next(counter)}")})()
        self.logger = None


def manager(cls: type[socketio.AsyncManager]) -> socketio.AsyncManager:
    m = cls()
    m.set_server(_Server())
    return m


def state(m: socketio.AsyncManager) -> dict[Any, Any]:
    """Every room with its members (sid → engine.io sid), by namespace."""
    return {ns: {room: dict(members.items()) for room, members in rooms.items()}
            for ns, rooms in m.rooms.items()}


# an operation: (kind, namespace index, engine.io sid / sid index, room index)
operation = st.tuples(
    st.sampled_from(["connect", "enter", "leave", "disconnect", "pre_disconnect", "close"]),
    st.integers(0, len(NAMESPACES) - 1), st.integers(0, 5), st.integers(0, len(ROOMS) - 1))


async def apply(m: socketio.AsyncManager, sids: list[str], op: tuple[str, int, int, int]) -> Any:
    kind, ns_i, who, room_i = op
    ns, room = NAMESPACES[ns_i], ROOMS[room_i]
    sid = sids[who % len(sids)] if sids else "none"
    try:
        if kind == "connect":
            new = await m.connect(f"eio{who}", ns)
            if new is not None:
                sids.append(new)
            return new
        if kind == "enter":
            return await m.enter_room(sid, ns, room)
        if kind == "leave":
            return await m.leave_room(sid, ns, room)
        if kind == "disconnect":
            return await m.disconnect(sid, ns)
        if kind == "pre_disconnect":
            return m.pre_disconnect(sid, ns)
        return await m.close_room(room, ns)
    except Exception as exc:  # the same failure, both ways
        return type(exc).__name__


QUERIES = ("is_connected", "eio_sid_from_sid", "get_rooms", "participants", "participants_of_two")


def answer(m: socketio.AsyncManager, query: str, ns: str, sid: str, room: Any) -> Any:
    """What a query returns, or the class of what it raises (the same both ways)."""
    try:
        if query == "is_connected":
            return m.is_connected(sid, ns)
        if query == "eio_sid_from_sid":
            return m.eio_sid_from_sid(sid, ns)
        if query == "sid_from_eio_sid":
            return m.sid_from_eio_sid(sid, ns)
        if query == "get_rooms":
            return sorted(m.get_rooms(sid, ns))
        if query == "participants":
            return sorted(m.get_participants(ns, room))
        return sorted(m.get_participants(ns, [room, sid]))
    except Exception as exc:
        return type(exc).__name__


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=40))
def test_the_same_rooms_participants_and_answers_as_python_socketio(ops: list[Any]) -> None:
    async def run() -> None:
        theirs, ours = manager(socketio.AsyncManager), manager(IndexedRooms)
        their_sids: list[str] = []
        our_sids: list[str] = []
        for op in ops:
            assert await apply(ours, our_sids, op) == await apply(theirs, their_sids, op)
            assert state(ours) == state(theirs)
            assert our_sids == their_sids
            assert ours.pending_disconnect == theirs.pending_disconnect
            for ns, sid, room in itertools.product(NAMESPACES, their_sids, ROOMS):
                for query in QUERIES:
                    assert answer(ours, query, ns, sid, room) == answer(
                        theirs, query, ns, sid, room)
            for ns, who in itertools.product(NAMESPACES, range(6)):
                assert (answer(ours, "sid_from_eio_sid", ns, f"eio{who}", None)
                        == answer(theirs, "sid_from_eio_sid", ns, f"eio{who}", None))

    asyncio.run(run())


class _NoScan(dict):  # type: ignore[type-arg]
    """A namespace's rooms that refuse to be walked: only direct look-ups are allowed."""

    def _refuse(self, *_: Any) -> Any:
        raise AssertionError("the namespace's rooms were scanned")

    items = keys = values = copy = __iter__ = _refuse


def test_a_disconnect_and_a_sockets_rooms_do_not_scan_the_namespaces_rooms() -> None:
    async def run() -> None:
        m = manager(IndexedRooms)
        sids = [await m.connect(f"eio{i}", "/") for i in range(50)]
        for i, sid in enumerate(sids):
            await m.enter_room(sid, "/", f"session-{i}")
        m.rooms["/"] = _NoScan(m.rooms["/"])
        assert m.get_rooms(sids[7], "/") == [sids[7], "session-7"]
        await m.disconnect(sids[7], "/")
        assert not m.is_connected(sids[7], "/")
        assert "session-7" not in m.rooms["/"] and sids[7] not in m.rooms["/"]
        assert m.get_rooms(sids[7], "/") == []
        assert m.is_connected(sids[8], "/")

        # python-socketio's own manager does walk them (what this module is for)
        stock = manager(socketio.AsyncManager)
        sid = await stock.connect("eio0", "/")
        stock.rooms["/"] = _NoScan(stock.rooms["/"])
        with pytest.raises(AssertionError, match="scanned"):
            await stock.disconnect(sid, "/")

    asyncio.run(run())


def test_one_engineio_socket_cannot_join_a_room_under_two_sids() -> None:
    members = RoomMembers()
    members["s1"] = "eio1"
    members["s1"] = "eio1"  # the same pair again: nothing changes
    with pytest.raises(ValueDuplicationError):
        members["s2"] = "eio1"
    members["s1"] = "eio2"  # a sid's engine.io sid replaced: the old one is free again
    members["s2"] = "eio1"
    assert dict(members.items()) == {"s1": "eio2", "s2": "eio1"}
    assert members._invm == {"eio2": "s1", "eio1": "s2"}
    del members["s1"]
    assert "s1" not in members and len(members) == 1 and members._invm == {"eio1": "s2"}


def test_connecting_the_same_socket_twice_is_refused_as_before() -> None:
    async def run() -> None:
        m = manager(IndexedRooms)
        assert await m.connect("eio1", "/") == "s1"
        assert await m.connect("eio1", "/") is None
        assert m.sid_from_eio_sid("eio1", "/") == "s1"

    asyncio.run(run())


def test_the_gateways_managers_use_the_indexed_rooms() -> None:
    for cls in (LocalManager, RedisManager):
        assert cls.basic_disconnect is IndexedRooms.basic_disconnect
        assert cls.basic_enter_room is IndexedRooms.basic_enter_room
        assert cls.get_rooms is IndexedRooms.get_rooms
