"""The session state machine: one pure function over a fixed transition table.

    ┌──────────── borrower_returned ─────────────┐
    ▼                                            │
   bot ── handoff_requested | bot_unavailable ─▶ queued ── claimed ─▶ assigned
    ▲                                            ▲  │                 │  │  │
    │                                            │  └ closed_resolved ┼──┼─▶ closed
    │                                            └── agent_lost ──────┘  │
    │                                            └── transferred ────────┘
    └───────────────────── returned_to_bot ──────────────────────────────┘

A transfer always passes through the queue: to a skill it waits there; to a named agent the
service applies `transferred` then `claimed` for that agent in one transaction (two audit rows).
`closed_resolved` from `queued` lets a supervisor close a waiting session (e.g. a booked callback).
"""

from __future__ import annotations

from enum import Enum

from handoff.errors import IllegalTransition


class SessionState(str, Enum):
    BOT = "bot"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    CLOSED = "closed"


class SessionEvent(str, Enum):
    HANDOFF_REQUESTED = "handoff_requested"
    BOT_UNAVAILABLE = "bot_unavailable"
    CLAIMED = "claimed"
    TRANSFERRED = "transferred"
    AGENT_LOST = "agent_lost"
    CLOSED_RESOLVED = "closed_resolved"
    RETURNED_TO_BOT = "returned_to_bot"
    BORROWER_RETURNED = "borrower_returned"


S, E = SessionState, SessionEvent

TRANSITIONS: dict[tuple[SessionState, SessionEvent], SessionState] = {
    (S.BOT, E.HANDOFF_REQUESTED): S.QUEUED,
    (S.BOT, E.BOT_UNAVAILABLE): S.QUEUED,
    (S.QUEUED, E.CLAIMED): S.ASSIGNED,
    (S.QUEUED, E.CLOSED_RESOLVED): S.CLOSED,
    (S.ASSIGNED, E.TRANSFERRED): S.QUEUED,
    (S.ASSIGNED, E.AGENT_LOST): S.QUEUED,
    (S.ASSIGNED, E.CLOSED_RESOLVED): S.CLOSED,
    (S.ASSIGNED, E.RETURNED_TO_BOT): S.BOT,
    (S.CLOSED, E.BORROWER_RETURNED): S.BOT,
}


def apply(state: SessionState | str, event: SessionEvent | str) -> SessionState:
    """The state after `event`; raises IllegalTransition for any pair not in the table."""
    try:
        current, happened = SessionState(state), SessionEvent(event)
    except ValueError:
        raise IllegalTransition(str(state), str(event)) from None
    try:
        return TRANSITIONS[(current, happened)]
    except KeyError:
        raise IllegalTransition(current.value, happened.value) from None


def allowed_events(state: SessionState | str) -> frozenset[SessionEvent]:
    """Events legal in `state` (for UIs and tests)."""
    current = SessionState(state)
    return frozenset(e for (s, e) in TRANSITIONS if s is current)
