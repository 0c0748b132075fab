"""Replay marks: advanced only for borrower `message` events actually handed to a socket on
this node; the largest seq wins; shared through Redis across nodes; the manager hook sits
where python-socketio delivers locally (also for events relayed from other nodes)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
import socketio

from handoff.replay_marks import (
    LocalManager,
    LocalMarks,
    MarkDeliveries,
    RedisManager,
    RedisMarks,
)
from tests.integration.scale import REDIS_URL, redis_missing


class Recording(socketio.AsyncManager):
    """python-socketio's AsyncManager without sockets: records emits, knows local rooms."""

    def __init__(self, rooms: dict[str, list[str]]) -> None:
        super().__init__()
        self.local = rooms
        self.sent: list[tuple[str, Any, str | None, Any]] = []

    async def emit(self, event: str, data: Any, namespace: str | None = None, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None,
                   **kwargs: Any) -> None:
        self.sent.append((event, data, namespace, to or room))

    def get_participants(self, namespace: str, room: str) -> Any:
        return iter(self.local[room])


class Hooked(MarkDeliveries, Recording):
    pass


def test_only_borrower_messages_to_a_local_socket_advance_the_mark() -> None:
    manager = Hooked({"s1": ["sid-1"], "empty": []})
    manager.marks = LocalMarks()
    manager.mark_grace_seconds = 0.01

    async def go() -> dict[str, int | None]:
        await manager.emit("message", {"seq": 4}, namespace="/", room="s1")
        await manager.emit("message", {"seq": 9}, namespace="/", room="empty")    # nobody here
        await manager.emit("message", {"seq": 9}, namespace="/", room="elsewhere")  # unknown
        await manager.emit("status", {"seq": 9}, namespace="/", room="s1")      # not a message
        await manager.emit("message", {"seq": 9}, namespace="/agent", room="s1")  # agents
        await manager.emit("message", {"seq": "9"}, namespace="/", room="s1")   # not an int
        await manager.emit("message", {"seq": 2}, namespace="/", to="s1")       # smaller
        assert manager.marks is not None
        assert await manager.marks.get("s1") is None    # not yet: after the grace period
        await manager.marks_settled()
        return {r: await manager.marks.get(r) for r in ("s1", "empty", "elsewhere")}

    assert asyncio.run(go()) == {"s1": 4, "empty": None, "elsewhere": None}
    assert len(manager.sent) == 7  # every event is still delivered


def test_local_marks_keep_the_largest_and_forget_the_oldest_sessions() -> None:
    marks = LocalMarks(limit=2)

    async def go() -> list[int | None]:
        await marks.advance("a", 5)
        await marks.advance("a", 3)
        await marks.advance("b", 1)
        await marks.advance("c", 1)
        return [await marks.get(k) for k in ("a", "b", "c")]

    assert asyncio.run(go()) == [None, 1, 1]


def test_hook_runs_below_the_redis_pubsub_layer_and_above_local_delivery() -> None:
    mro = RedisManager.__mro__
    assert mro.index(socketio.AsyncRedisManager) < mro.index(MarkDeliveries)
    assert mro.index(MarkDeliveries) < mro.index(socketio.AsyncManager)
    assert Hooked.__mro__[1:3] == (MarkDeliveries, Recording)
    assert issubclass(LocalManager, MarkDeliveries)


def test_redis_marks_are_shared_between_nodes() -> None:
    reason = redis_missing()
    if reason:
        pytest.skip(reason)
    prefix = f"loanbot-test-{secrets.token_hex(6)}"

    async def go() -> list[int | None]:
        node_a, node_b = RedisMarks(REDIS_URL, prefix), RedisMarks(REDIS_URL, prefix)
        try:
            await node_a.advance("s", 7)
            await node_b.advance("s", 5)  # late and smaller: ignored
            seen = [await node_b.get("s"), await node_a.get("unknown")]
            await node_a._redis.delete(f"{prefix}:replay:s")
            return seen
        finally:
            await node_a.close()
            await node_b.close()

    assert asyncio.run(go()) == [7, None]


def test_redis_marks_degrade_when_redis_is_unreachable() -> None:
    """A reconnect must not fail because the mark cannot be read: no replay instead."""
    from tests.integration.fake_rasa import free_port

    async def go() -> int | None:
        marks = RedisMarks(f"redis://127.0.0.1:{free_port()}/0", "loanbot-test")
        try:
            await marks.advance("s", 3)  # logged, not raised
            return await marks.get("s")
        finally:
            await marks.close()

    assert asyncio.run(go()) is None


def test_a_socket_gone_before_the_grace_period_ends_leaves_the_mark_alone() -> None:
    """The borrower closed the socket just as the event was queued for it: the gateway reads
    the close a moment later, and nobody received the message, so it must stay replayable."""
    manager = Hooked({"s1": ["sid-1"]})
    manager.marks = LocalMarks()
    manager.mark_grace_seconds = 0.05

    async def go() -> int | None:
        await manager.emit("message", {"seq": 3}, namespace="/", room="s1")
        manager.local["s1"] = []          # the close is read within the grace period
        await manager.marks_settled()
        assert manager.marks is not None
        return await manager.marks.get("s1")

    assert asyncio.run(go()) is None
