"""What agents and logs may see of a session: masked transcripts and message views."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection, Row

from handoff.masking import mask_text, mask_value
from handoff.model import MessageView, NoteView, SessionView, Transcript
from handoff.store import repo


def session_view(conn: Connection, row: Row) -> SessionView:
    """A session with its holder's display name."""
    name = repo.display_names(conn, [row.agent_id]).get(row.agent_id) if row.agent_id else None
    return repo.session_view(row, name)


def transcript(conn: Connection, row: Row) -> Transcript:
    """The masked transcript of a session (and of the same identity's earlier sessions)."""
    earlier_ids = (
        [r.id for r in repo.earlier_sessions(conn, row.identity, row.id)
         if r.created_at <= row.created_at]
        if row.identity else []
    )
    return Transcript(
        session=session_view(conn, row),
        slots=mask_value(row.slots or {}),
        messages=tuple(masked_view(m) for m in repo.messages_since(conn, row.id, 0)),
        earlier=tuple(masked_view(m) for m in repo.messages_of_sessions(conn, earlier_ids)),
        notes=tuple(
            NoteView(n.id, n.session_id, n.agent_id, n.display_name, mask_text(n.text),
                     n.created_at)
            for n in repo.notes_of(conn, [*earlier_ids, row.id])
        ),
        transitions=tuple(repo.transitions_of(conn, row.id)),
    )


def masked_view(message: MessageView) -> MessageView:
    """A message as agents see it: identifiers in text and payload masked."""
    return MessageView(
        session_id=message.session_id, seq=message.seq, sender=message.sender,
        text=mask_text(message.text), created_at=message.created_at,
        payload=mask_value(message.payload) if message.payload is not None else None,
        agent_id=message.agent_id, display_name=message.display_name, intent=message.intent,
        confidence=message.confidence, client_msg_id=message.client_msg_id,
        episode=message.episode,
    )


def masked_message(message: MessageView) -> dict[str, Any]:
    return masked_view(message).to_dict()


def short_id(session_id: str) -> str:
    """A session id for logs: enough to correlate, not enough to resume the session."""
    return session_id[:8] + "…"
