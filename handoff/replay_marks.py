"""Replay marks: the highest message seq delivered to a borrower's socket, per session.

A client that reconnects WITHOUT `last_seq` (the stock rasa-webchat widget keeps its own history
and does not send one) is replayed only what came after the mark. The mark is advanced where
the delivery really happens, on the node that holds the borrower's socket: python-socketio's
manager calls our hook for every local delivery, including events that arrived from another
node over Redis. With several nodes the marks live in Redis, so a reconnect to any node
replays from the same mark; a single node keeps them in memory.

A mark lags rather than leads: it is advanced after the event was handed to the socket, so a
crash can at worst replay a message twice, never skip one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any, Protocol

import socketio

from handoff.inline_emit import InlineDelivery
from handoff.sio_rooms import IndexedRooms

log = logging.getLogger(__name__)

MESSAGE_EVENT = "message"
BORROWER_NS = "/"
LOCAL_LIMIT = 100_000
REDIS_TTL_SECONDS = 7 * 86400
# Long enough for the gateway to read a closing socket's close frame under load.
MARK_GRACE_SECONDS = 0.25

# Set the key to ARGV[1] only if it is larger; refresh the expiry either way.
_ADVANCE_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


class ReplayMarks(Protocol):
    async def get(self, session_id: str) -> int | None: ...

    async def advance(self, session_id: str, seq: int) -> None: ...


class LocalMarks:
    """In-process marks (one gateway node); the least recently advanced are forgotten first."""

    def __init__(self, limit: int = LOCAL_LIMIT) -> None:
        self._marks: OrderedDict[str, int] = OrderedDict()
        self._limit = limit

    async def get(self, session_id: str) -> int | None:
        return self._marks.get(session_id)

    async def advance(self, session_id: str, seq: int) -> None:
        self._marks[session_id] = max(seq, self._marks.get(session_id, 0))
        self._marks.move_to_end(session_id)
        while len(self._marks) > self._limit:
            self._marks.popitem(last=False)


class RedisMarks:
    """Marks shared by every gateway node (keys `<prefix>:replay:<session id>`, 7-day expiry)."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        from redis import asyncio as aioredis

        self._redis: Any = aioredis.Redis.from_url(redis_url)
        self._prefix = prefix
        self._advance = self._redis.register_script(_ADVANCE_LUA)

    def _key(self, session_id: str) -> str:
        return f"{self._prefix}:replay:{session_id}"

    async def get(self, session_id: str) -> int | None:
        """None when unknown, or when Redis cannot be asked (no replay then: the client keeps
        its own history; a reconnect must not fail because of a mark)."""
        try:
            value = await self._redis.get(self._key(session_id))
        except Exception as exc:  # RedisError, OSError: degrade, never block a reconnect
            log.warning("replay mark unavailable for %s…: %s", session_id[:8], exc)
            return None
        return int(value) if value is not None else None

    async def advance(self, session_id: str, seq: int) -> None:
        try:
            await self._advance(keys=[self._key(session_id)], args=[seq, REDIS_TTL_SECONDS])
        except Exception as exc:  # a lagging mark only means a replayed duplicate later
            log.warning("replay mark not advanced for %s…: %s", session_id[:8], exc)

    async def close(self) -> None:
        await self._redis.close()


class MarkDeliveries(socketio.AsyncManager):
    """After every local delivery of a borrower `message` event to a room with a socket on
    this node, advance that session's mark. As a subclass of AsyncManager it sits just above
    the local delivery in any manager's MRO, so under the Redis manager it sees what is
    delivered here on behalf of other nodes (and not the publishing side).

    The mark is advanced `mark_grace_seconds` later, and only if a socket of the session is
    still here then: a socket whose borrower has just closed it is still in the room until the
    gateway has read the close, and an event queued for it then never reaches anyone. Waiting
    keeps the mark behind (a reconnect at worst sees a message twice) and keeps the mark's
    write, a Redis call on several nodes, out of the way of the events emitted next."""

    marks: ReplayMarks | None = None
    mark_grace_seconds: float = MARK_GRACE_SECONDS
    _mark_tasks: set[asyncio.Task[None]] | None = None

    async def emit(self, event: str, data: Any, namespace: str | None = None,
                   room: Any = None, skip_sid: Any = None, callback: Any = None,
                   to: Any = None, **kwargs: Any) -> Any:
        result = await super().emit(
            event, data, namespace=namespace, room=room, skip_sid=skip_sid,
            callback=callback, to=to, **kwargs)
        room = to or room
        if (self.marks is not None and event == MESSAGE_EVENT
                and (namespace or BORROWER_NS) == BORROWER_NS and isinstance(room, str)
                and isinstance(data, dict) and isinstance(data.get("seq"), int)
                and self._local_socket_in(room)):
            if self._mark_tasks is None:
                self._mark_tasks = set()
            task = asyncio.ensure_future(self._advance_later(self.marks, room, data["seq"]))
            self._mark_tasks.add(task)
            task.add_done_callback(self._mark_tasks.discard)
        return result

    async def marks_settled(self) -> None:
        """Wait until every mark due to be advanced has been (tests, shutdown)."""
        while self._mark_tasks:
            await asyncio.gather(*list(self._mark_tasks), return_exceptions=True)

    async def _advance_later(self, marks: ReplayMarks, room: str, seq: int) -> None:
        await asyncio.sleep(self.mark_grace_seconds)
        if self._local_socket_in(room):
            try:
                await marks.advance(room, seq)
            except Exception:  # a lost mark only means a message may be replayed twice
                log.exception("replay mark for a session not advanced")

    def _local_socket_in(self, room: str) -> bool:
        try:
            participants = self.get_participants(BORROWER_NS, room)
            return any(True for _ in participants)
        except (KeyError, TypeError, AttributeError):
            return False


class LocalManager(MarkDeliveries, InlineDelivery, IndexedRooms):
    """One node: in-process rooms (each socket's indexed, handoff.sio_rooms)."""


class RedisManager(socketio.AsyncRedisManager, MarkDeliveries, InlineDelivery, IndexedRooms):
    """Several nodes: rooms over Redis pub/sub; MarkDeliveries sits between the pub/sub layer
    and the local delivery, so it runs where the socket is; the local rooms are indexed as on
    one node."""


