"""Tables of the gateway store (SQLAlchemy Core; SQLite and PostgreSQL).

Times are stored as naive UTC and come back timezone-aware (UTCDateTime), so both databases
behave the same and comparisons never mix naive and aware values.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; naive input is rejected."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("UTCDateTime needs a timezone-aware datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # defensive: SQLite text
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc)


metadata = MetaData()

agents = Table(
    "agents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(64), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("skills", JSON, nullable=False),
    Column("role", String(16), nullable=False),
    Column("presence", String(16), nullable=False, default="offline"),
    Column("max_sessions", Integer, nullable=False),
    Column("disconnected_at", UTCDateTime, nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("identity", String(128), nullable=True, index=True),
    Column("state", String(16), nullable=False),
    Column("episode", Integer, nullable=False, default=0),
    Column("agent_id", String(64), nullable=True, index=True),
    Column("reason", String(64), nullable=True),
    Column("intent", String(128), nullable=True),
    Column("confidence", Float, nullable=True),
    Column("routing_key", String(128), nullable=True),
    Column("skill", String(64), nullable=True),
    Column("slots", JSON, nullable=True),
    Column("waiting_since", UTCDateTime, nullable=True),
    Column("requeued_front", Boolean, nullable=False, default=False),
    Column("unresolved_turns", Integer, nullable=False, default=0),
    Column("claimed_at", UTCDateTime, nullable=True),
    Column("last_seq", Integer, nullable=False, default=0),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_sessions_state_skill", "state", "skill"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(64), ForeignKey("sessions.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("episode", Integer, nullable=False),
    Column("sender", String(16), nullable=False),
    Column("agent_id", String(64), nullable=True),
    Column("display_name", String(64), nullable=True),
    Column("text", Text, nullable=False),
    Column("payload", JSON, nullable=True),
    Column("intent", String(128), nullable=True),
    Column("confidence", Float, nullable=True),
    Column("client_msg_id", String(128), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("session_id", "seq", name="uq_messages_session_seq"),
    UniqueConstraint("session_id", "client_msg_id", name="uq_messages_session_client_msg"),
)

transitions = Table(
    "transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(64), ForeignKey("sessions.id"), nullable=False, index=True),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("event", String(32), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("reason", String(255), nullable=True),
    Column("handle_seconds", Float, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_transitions_handle", "handle_seconds", "created_at"),
)

notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(64), ForeignKey("sessions.id"), nullable=False, index=True),
    Column("agent_id", String(64), nullable=False),
    Column("display_name", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

csat = Table(
    "csat",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(64), ForeignKey("sessions.id"), nullable=False),
    Column("episode", Integer, nullable=False),
    Column("agent_id", String(64), nullable=True),
    Column("score", SmallInteger, nullable=False),
    Column("comment", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("session_id", "episode", name="uq_csat_session_episode"),
)

callbacks = Table(
    "callbacks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(64), ForeignKey("sessions.id"), nullable=False, index=True),
    Column("phone", String(32), nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("window_end", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("handled_by", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# --- scale-out: which gateway node holds which agent socket (docs/deploy.md) ---------------

gateway_nodes = Table(
    "gateway_nodes",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
)

agent_sockets = Table(
    "agent_sockets",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("sid", String(64), primary_key=True),
    Column("agent_id", String(64), nullable=False, index=True),
    Column("connected_at", UTCDateTime, nullable=False),
)

# A borrower message on its way to Rasa, recorded with the message and removed when Rasa's
# answer (or failure) is stored. If the node forwarding it dies, another node re-forwards it.
pending_turns = Table(
    "pending_turns",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("node_id", String(64), nullable=False, index=True),
    Column("text", Text, nullable=False),
    Column("metadata", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)
