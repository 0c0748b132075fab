"""python-socketio's rooms, with each socket's own rooms indexed.

python-socketio keeps `rooms[namespace][room]` as a bidict of sid → engine.io sid. Two of its
costs grow with the gateway's traffic:

- a socket's disconnect looks for its rooms by testing every room of the namespace
  (`basic_disconnect`, and `get_rooms` likewise). Each borrower has two rooms of their own
  (their sid, their session), so at a lender's peak, with thousands of borrowers connected,
  every disconnect scans thousands of rooms on the event loop;
- each join is a bidict `put`: its duplicate checks, rollback bookkeeping and a `typing`
  protocol check, 15–26 µs where a dict store is well under one (three joins per borrower
  connection; measured in docs/benchmarks.md, session 17).

`IndexedRooms` keeps the same `rooms` structure, each room a `RoomMembers` (the two dicts
python-socketio reads, `_fwdm` and `_invm`, and bidict's rule that one engine.io sid cannot
be in a room under two sids: connecting a socket twice still raises `ValueDuplicationError`,
which `connect` reads as "already connected"), plus an index of each socket's rooms per
namespace, which disconnect and `get_rooms` read instead of scanning. It sits below the
gateway's managers (handoff.replay_marks) and above `AsyncManager`, so the Redis manager's
local rooms get it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import socketio
from bidict import ValueDuplicationError


class RoomMembers:
    """sid → engine.io sid of one room, and the reverse (read for the namespace's None room)."""

    __slots__ = ("_fwdm", "_invm")

    def __init__(self) -> None:
        self._fwdm: dict[Any, Any] = {}
        self._invm: dict[Any, Any] = {}

    def __setitem__(self, sid: Any, eio_sid: Any) -> None:
        holder = self._invm.get(eio_sid, self)
        if holder is not self and holder != sid:
            raise ValueDuplicationError(eio_sid)
        old = self._fwdm.get(sid, self)
        if old is not self:
            del self._invm[old]
        self._fwdm[sid] = eio_sid
        self._invm[eio_sid] = sid

    def __delitem__(self, sid: Any) -> None:
        del self._invm[self._fwdm.pop(sid)]

    def __getitem__(self, sid: Any) -> Any:
        return self._fwdm[sid]

    def get(self, sid: Any, default: Any = None) -> Any:
        return self._fwdm.get(sid, default)

    def __contains__(self, sid: object) -> bool:
        return sid in self._fwdm

    def __len__(self) -> int:
        return len(self._fwdm)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._fwdm)

    def items(self) -> Any:
        return self._fwdm.items()

    def __repr__(self) -> str:
        return f"RoomMembers({self._fwdm!r})"


class IndexedRooms(socketio.AsyncManager):
    """BaseManager's room bookkeeping with a per-socket index of rooms."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (namespace, sid) → the socket's rooms, in the order it joined them
        self._rooms_of: dict[tuple[Any, Any], dict[Any, None]] = {}

    def basic_enter_room(self, sid: Any, namespace: Any, room: Any,
                         eio_sid: Any = None) -> None:
        rooms = self.rooms.get(namespace)
        if rooms is None:
            if eio_sid is None:
                raise ValueError("sid is not connected to requested namespace")
            rooms = self.rooms[namespace] = {}
        members = rooms.get(room)
        if members is None:
            members = rooms[room] = RoomMembers()
        if eio_sid is None:
            eio_sid = rooms[None][sid]
        members[sid] = eio_sid
        self._rooms_of.setdefault((namespace, sid), {})[room] = None

    def basic_leave_room(self, sid: Any, namespace: Any, room: Any) -> None:
        try:
            rooms = self.rooms[namespace]
            members = rooms[room]
            del members[sid]
        except KeyError:
            return
        own = self._rooms_of.get((namespace, sid))
        if own is not None:
            own.pop(room, None)
            if not own:
                del self._rooms_of[(namespace, sid)]
        if len(members) == 0:
            del rooms[room]
            if len(rooms) == 0:
                del self.rooms[namespace]

    def basic_disconnect(self, sid: Any, namespace: Any, **kwargs: Any) -> None:
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        if sid in self.callbacks:
            del self.callbacks[sid]
        pending = self.pending_disconnect.get(namespace)
        if pending is not None and sid in pending:
            pending.remove(sid)
            if len(pending) == 0:
                del self.pending_disconnect[namespace]

    def get_rooms(self, sid: Any, namespace: Any) -> list[Any]:
        """The socket's rooms in the order it joined them (python-socketio lists them in the
        order the rooms were made; neither is a documented promise)."""
        return [r for r in self._rooms_of.get((namespace, sid), ()) if r is not None]
