"""Queue order, skill routing, positions and waiting-time estimates — all pure.

Order (best first):
1. sessions requeued because their agent was lost (they were already being served);
2. priority of the routing key (config priority_order; unlisted keys share the last rank);
3. waiting time, longest first (`waiting_since` is kept across requeues and transfers);
4. session id, so the order is total and stable.

Routing: each session needs one skill (config `skills`, else `default_skill`). An agent sees and
may claim a session when it has that skill; supervisors see every session; trainers none.

Position: 1-based among queued sessions needing the same skill, in the order above.

Estimated wait (seconds), for a session at position `p` needing skill `s`:
    slots = Σ max_sessions  over online agents who can take `s`
    free  = Σ max(0, max_sessions − held) over the same agents
    typical = median of the last 50 handle times (claim → close/return/transfer),
              or settings.default_handle_seconds when there are none
    eta = None                              if slots == 0 (nobody can serve: offer a callback)
    eta = 0                                 if p ≤ free
    eta = ceil((p − free) / slots) × typical otherwise
Each "wave" of `slots` sessions takes one typical handle time. Agents serving several skills
are counted for each; the estimate is an honest approximation, not a promise.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from handoff.policy import Policy


@dataclass(frozen=True)
class QueueItem:
    session_id: str
    routing_key: str
    skill: str
    waiting_since: datetime
    requeued_front: bool = False


@dataclass(frozen=True)
class AgentLoad:
    agent_id: str
    role: str
    skills: frozenset[str]
    online: bool
    max_sessions: int
    held: int


def sort_key(item: QueueItem, policy: Policy) -> tuple[int, int, datetime, str]:
    return (
        0 if item.requeued_front else 1,
        policy.priority_rank(item.routing_key),
        item.waiting_since,
        item.session_id,
    )


def order_queue(items: Iterable[QueueItem], policy: Policy) -> list[QueueItem]:
    """The queue, best first (see the module docstring)."""
    return sorted(items, key=lambda item: sort_key(item, policy))


def can_take(agent: AgentLoad, skill: str) -> bool:
    """Whether the agent may see and claim a session needing `skill`."""
    if agent.role == "supervisor":
        return True
    if agent.role != "agent":
        return False
    return skill in agent.skills


def visible_queue(ordered: Sequence[QueueItem], agent: AgentLoad) -> list[QueueItem]:
    return [item for item in ordered if can_take(agent, item.skill)]


def positions(ordered: Sequence[QueueItem]) -> dict[str, int]:
    """1-based position of each session among those needing the same skill."""
    counters: dict[str, int] = {}
    result: dict[str, int] = {}
    for item in ordered:
        counters[item.skill] = counters.get(item.skill, 0) + 1
        result[item.session_id] = counters[item.skill]
    return result


def typical_handle_seconds(samples: Sequence[float], default: float) -> float:
    """Median of recent handle times (robust to one forgotten session), else the default."""
    valid = [s for s in samples if s > 0]
    return float(statistics.median(valid)) if valid else float(default)


@dataclass(frozen=True)
class Capacity:
    """What the online agents able to serve one skill offer: all their slots, and the free."""

    slots: int
    free: int


def capacity(agents: Iterable[AgentLoad], skill: str) -> Capacity:
    able = agents_able(agents, skill)
    return Capacity(sum(a.max_sessions for a in able),
                    sum(max(0, a.max_sessions - a.held) for a in able))


def wait_at(position: int, cap: Capacity, typical_seconds: float) -> int | None:
    """The estimate (formula above) from the skill's capacity, worked out once per queue view:
    recomputed per session from every agent, a queue of Q with A agents cost O(Q·A) per
    snapshot, O(Q·A²) for every agent's."""
    if position < 1:
        raise ValueError("position is 1-based")
    if cap.slots <= 0:
        return None
    if position <= cap.free:
        return 0
    return int(math.ceil((position - cap.free) / cap.slots) * typical_seconds)


def estimate_wait(
    position: int, skill: str, agents: Iterable[AgentLoad], typical_seconds: float
) -> int | None:
    """Estimated seconds until a session at `position` is picked up (formula above)."""
    return wait_at(position, capacity(agents, skill), typical_seconds)


def agents_able(agents: Iterable[AgentLoad], skill: str) -> list[AgentLoad]:
    """Online agents who could take a session needing `skill` (for notifications, callbacks)."""
    return [a for a in agents if a.online and can_take(a, skill)]
