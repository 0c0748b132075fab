"""Values the service returns: read-only views, results, and *effects*.

The service does no network I/O. Every notification it wants delivered comes back as an
effect; the transport delivers effects in list order:

- `ToBorrower(session_id, event, payload)`  emit `event` to the borrower's socket(s) of that session
- `ToAgents(agent_ids, event, payload)`     emit `event` to each listed agent (all their sockets)
- `ToRasaMessage(session_id, text, seq, metadata)`  POST the text to Rasa's REST webhook with
  sender=session_id, then hand the replies to `HandoffService.accept_bot_replies(session_id,
  replies)`; if Rasa is unreachable call `HandoffService.bot_unavailable(session_id)` instead
- `ToRasa(session_id, events)`  POST the tracker events to
  `/conversations/{session_id}/tracker/events` (resume after a return to the bot)

Payloads are JSON-ready dicts. Texts inside payloads sent to agents are already masked.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

SessionStateName = Literal["bot", "queued", "assigned", "closed"]
Sender = Literal["borrower", "bot", "agent", "system"]
Role = Literal["agent", "supervisor", "trainer"]
Presence = Literal["online", "away", "offline"]
Disposition = Literal["resolved", "return_to_bot"]
Route = Literal["bot", "queued", "agent", "borrower", "duplicate"]
CallbackStatus = Literal["pending", "done", "cancelled"]

JSON = dict[str, Any]


class BorrowerEvents:
    """socket.io event names the transport emits to borrowers (payload shape in the comment)."""

    MESSAGE = "message"  # MessageView.to_dict()
    STATUS = "status"  # StatusPayload: session_id, state, queue_position, eta_seconds, agent_name
    CSAT_REQUEST = "csat_request"  # {session_id, episode, text}
    CALLBACK_OFFER = "callback_offer"  # {session_id, reason, text}


class AgentEvents:
    """socket.io event names the transport emits to agents."""

    QUEUE = "queue"  # QueueSnapshot.to_dict() for that agent
    MESSAGE = "message"  # MessageView.to_dict(), masked
    ASSIGNED = "assigned"  # Transcript.to_dict() of a session now held by the agent
    SESSION_ENDED = "session_ended"  # {session_id, reason: closed|returned_to_bot|transferred|lost}
    NOTE = "note"  # NoteView.to_dict()
    CSAT = "csat"  # {session_id, episode, score, comment}


# --- effects -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ToBorrower:
    session_id: str
    event: str
    payload: JSON


@dataclass(frozen=True)
class ToAgents:
    agent_ids: tuple[str, ...]
    event: str
    payload: JSON


@dataclass(frozen=True)
class ToRasaMessage:
    session_id: str
    text: str
    seq: int
    metadata: JSON = field(default_factory=dict)


@dataclass(frozen=True)
class ToRasa:
    session_id: str
    events: tuple[JSON, ...]


Effect = ToBorrower | ToAgents | ToRasaMessage | ToRasa


# --- views -------------------------------------------------------------------------------


def _json_fields(view: Any) -> JSON:
    """A view's fields as JSON-ready values: every datetime field becomes ISO 8601.

    For flat views (no nested dataclasses) only: it copies containers like `asdict` does,
    without `asdict`'s recursive walk, which cost more than the rest of building a message
    event (a message view is built for every message the gateway stores).
    """
    names = _FIELD_NAMES.get(type(view))
    if names is None:
        names = _FIELD_NAMES[type(view)] = tuple(f.name for f in fields(view))
    data: JSON = {}
    for name in names:
        value = getattr(view, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, (dict, list)):
            value = copy.deepcopy(value)
        data[name] = value
    return data


# Each view class's field names, in order: `dataclasses.fields` builds them anew on every
# call (a status's conversion 4.5 µs with it, 1.7 without; a queue change converts one per
# borrower it tells).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


@dataclass(frozen=True)
class MessageView:
    session_id: str
    seq: int
    sender: Sender
    text: str
    created_at: datetime
    payload: JSON | None = None
    agent_id: str | None = None
    display_name: str | None = None
    intent: str | None = None
    confidence: float | None = None
    client_msg_id: str | None = None
    episode: int = 0

    def to_dict(self) -> JSON:
        return _json_fields(self)


@dataclass(frozen=True)
class SessionView:
    session_id: str
    identity: str | None
    state: SessionStateName
    episode: int  # number of handoffs so far; 0 = never handed off
    agent_id: str | None
    agent_name: str | None
    reason: str | None
    intent: str | None
    confidence: float | None
    routing_key: str | None
    skill: str | None
    waiting_since: datetime | None
    requeued_front: bool
    unresolved_turns: int
    last_seq: int
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> JSON:
        return _json_fields(self)


@dataclass(frozen=True)
class StatusPayload:
    """What a borrower is told about where their conversation stands."""

    session_id: str
    state: SessionStateName
    queue_position: int | None = None
    eta_seconds: int | None = None
    agent_name: str | None = None
    text: str | None = None

    def to_dict(self) -> JSON:
        return _json_fields(self)


@dataclass(frozen=True)
class QueueEntry:
    session_id: str
    routing_key: str
    skill: str
    position: int  # 1-based, among sessions needing the same skill
    waiting_seconds: int
    eta_seconds: int | None  # None when no agent with the skill is online
    requeued_front: bool
    reason: str
    intent: str | None
    preview: str  # last borrower message, masked

    def to_dict(self) -> JSON:
        return _json_fields(self)


@dataclass(frozen=True)
class QueueSnapshot:
    agent_id: str
    # only sessions this agent may claim, best first; the first settings.queue_view_limit
    entries: tuple[QueueEntry, ...]
    held: tuple[str, ...]  # session ids the agent holds
    capacity: int
    total: int  # every session this agent may claim (entries may show only the first ones)

    def to_dict(self) -> JSON:
        return {
            "agent_id": self.agent_id,
            "entries": [e.to_dict() for e in self.entries],
            "held": list(self.held),
            "capacity": self.capacity,
            "total": self.total,
        }


@dataclass(frozen=True)
class NoteView:
    id: int
    session_id: str
    agent_id: str
    display_name: str
    text: str
    created_at: datetime

    def to_dict(self) -> JSON:
        return _json_fields(self)


@dataclass(frozen=True)
class TransitionView:
    session_id: str
    from_state: str
    to_state: str
    event: str
    actor: str  # "borrower", "bot", "system", or "agent:<id>"
    reason: str | None
    created_at: datetime

    def to_dict(self) -> JSON:
        return _json_fields(self)


@dataclass(frozen=True)
class Transcript:
    """Everything an agent sees about a session; every text is masked."""

    session: SessionView
    slots: JSON  # from the bot's handoff signal, values masked
    messages: tuple[MessageView, ...]  # this session, in seq order
    earlier: tuple[MessageView, ...]  # earlier sessions of the same identity, oldest first
    notes: tuple[NoteView, ...]
    transitions: tuple[TransitionView, ...]

    def to_dict(self) -> JSON:
        return {
            "session": self.session.to_dict(),
            "slots": self.slots,
            "messages": [m.to_dict() for m in self.messages],
            "earlier": [m.to_dict() for m in self.earlier],
            "notes": [n.to_dict() for n in self.notes],
            "transitions": [t.to_dict() for t in self.transitions],
        }


@dataclass(frozen=True)
class AgentView:
    agent_id: str  # the username; stable and unique
    display_name: str
    role: Role
    skills: tuple[str, ...]
    presence: Presence
    max_sessions: int

    def to_dict(self) -> JSON:
        return asdict(self)


@dataclass(frozen=True)
class CallbackView:
    id: int
    session_id: str
    phone_masked: str
    phone: str | None  # the full number, only in views for supervisors (who make the calls)
    window_start: datetime
    window_end: datetime
    status: CallbackStatus
    created_at: datetime

    def to_dict(self) -> JSON:
        return _json_fields(self)


@dataclass(frozen=True)
class HandoffSignal:
    """The bot's `{"handoff": {...}}` payload (docs/contracts.md), or a gateway-made one."""

    reason: str
    intent: str | None = None
    confidence: float | None = None
    unresolved_turns: int = 0
    slots: JSON = field(default_factory=dict)


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenResult:
    session: SessionView
    created: bool  # a new session was made (unknown or missing id)
    history: tuple[MessageView, ...]  # the latest messages, for the chat page to render
    status: StatusPayload
    effects: tuple[Effect, ...] = ()
    # For a resumed queued session nobody can serve now: the `callback_offer` payload, sent
    # to the resuming socket only (the other tabs already had it).
    callback_offer: JSON | None = None


@dataclass(frozen=True)
class MessageResult:
    message: MessageView
    # where it went: borrower messages → "bot" | "queued" | "agent"; agent messages →
    # "borrower"; "duplicate" = a retried client_msg_id, the stored message, nothing re-sent
    route: Route
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True)
class BotRepliesResult:
    stored: tuple[MessageView, ...]
    dropped: int  # replies not relayed because the session left bot mode
    handed_off: bool
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True)
class ActionResult:
    """Result of agent/borrower actions: the session after the action plus effects."""

    session: SessionView
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True)
class ClaimResult:
    session: SessionView
    transcript: Transcript
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True)
class ConnectResult:
    """What an agent's console needs after (re)connecting."""

    agent: AgentView
    snapshot: QueueSnapshot
    held: tuple[Transcript, ...]  # sessions the agent still holds (e.g. within the grace)
    effects: tuple[Effect, ...] = ()
    first_socket: bool = True  # no other socket of this agent on any live gateway node


@dataclass(frozen=True)
class LoginResult:
    agent: AgentView
    token: str
    expires_at: datetime
