"""Queries for the gateway-node registry: node heartbeats and the agent sockets each node holds.

An agent is "connected" while it has a socket on a live node (heartbeat newer than the node
TTL), whichever node that is, so one node losing a socket (or dying) does not start the
agent's grace period while another node still serves it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Row

from handoff.store.prepared import Prepared
from handoff.store.schema import agent_sockets, gateway_nodes, pending_turns


def heartbeat(conn: Connection, node_id: str, now: datetime) -> bool:
    """Record that `node_id` is alive; True when its row had to be (re)created."""
    done = conn.execute(
        update(gateway_nodes).where(gateway_nodes.c.node_id == node_id).values(heartbeat_at=now)
    ).rowcount
    if done:
        return False
    conn.execute(insert(gateway_nodes).values(node_id=node_id, heartbeat_at=now, started_at=now))
    return True


def dead_nodes(conn: Connection, alive_after: datetime) -> list[Row]:
    return list(conn.execute(
        select(gateway_nodes).where(gateway_nodes.c.heartbeat_at < alive_after)
    ))


def remove_node(conn: Connection, node_id: str) -> list[str]:
    """Forget a node and its sockets; returns the agents that had a socket there."""
    agents = sorted({r.agent_id for r in conn.execute(
        select(agent_sockets.c.agent_id).where(agent_sockets.c.node_id == node_id)
    )})
    conn.execute(delete(agent_sockets).where(agent_sockets.c.node_id == node_id))
    conn.execute(delete(gateway_nodes).where(gateway_nodes.c.node_id == node_id))
    return agents


def forget_node_sockets(conn: Connection, node_id: str) -> None:
    conn.execute(delete(agent_sockets).where(agent_sockets.c.node_id == node_id))


def add_socket(conn: Connection, node_id: str, sid: str, agent_id: str, now: datetime) -> None:
    conn.execute(delete(agent_sockets).where(
        and_(agent_sockets.c.node_id == node_id, agent_sockets.c.sid == sid)
    ))
    conn.execute(insert(agent_sockets).values(
        node_id=node_id, sid=sid, agent_id=agent_id, connected_at=now
    ))


def remove_socket(conn: Connection, node_id: str, sid: str) -> None:
    conn.execute(delete(agent_sockets).where(
        and_(agent_sockets.c.node_id == node_id, agent_sockets.c.sid == sid)
    ))


def live_sockets(conn: Connection, agent_id: str, alive_after: datetime) -> int:
    """The agent's sockets on nodes that are alive."""
    return int(conn.execute(
        select(func.count())
        .select_from(agent_sockets.join(
            gateway_nodes, gateway_nodes.c.node_id == agent_sockets.c.node_id))
        .where(and_(agent_sockets.c.agent_id == agent_id,
                    gateway_nodes.c.heartbeat_at >= alive_after))
    ).scalar_one())


# --- borrower messages on their way to Rasa ------------------------------------------------


# Per-message statements, built once and prepared (see handoff/store/prepared.py).
_INSERT_PENDING = Prepared(insert(pending_turns), column_keys=(
    "session_id", "seq", "node_id", "text", "metadata", "created_at"))
_DELETE_OLDEST_PENDING = Prepared(delete(pending_turns).where(and_(
    pending_turns.c.session_id == bindparam("session_key"),
    pending_turns.c.seq == select(func.min(pending_turns.c.seq))
    .where(pending_turns.c.session_id == bindparam("session_key")).scalar_subquery())))


def add_pending_turn(conn: Connection, node_id: str, session_id: str, seq: int, text: str,
                     metadata: dict[str, Any] | None, now: datetime) -> None:
    _INSERT_PENDING.run(conn, dict(
        session_id=session_id, seq=seq, node_id=node_id, text=text, metadata=metadata,
        created_at=now,
    ))


def resolve_oldest_turn(conn: Connection, session_id: str) -> None:
    """A session's turns reach Rasa one at a time in seq order, so an answer (or a failure)
    settles the oldest pending one."""
    _DELETE_OLDEST_PENDING.run(conn, {"session_key": session_id})


def adopt_turns(conn: Connection, from_node: str, to_node: str) -> list[Row]:
    """Move a node's pending turns to another node; returns them in (session, seq) order.
    The UPDATE's row locks make two nodes adopting at once split, not double, the work."""
    rows = list(conn.execute(
        select(pending_turns).where(pending_turns.c.node_id == from_node)
        .order_by(pending_turns.c.session_id, pending_turns.c.seq)
        .with_for_update()
    ))
    if from_node != to_node and rows:
        conn.execute(update(pending_turns).where(pending_turns.c.node_id == from_node)
                     .values(node_id=to_node))
    return rows


def orphan_turn_nodes(conn: Connection) -> list[str]:
    """Nodes that own pending turns but are no longer registered (reaped or stopped)."""
    registered = select(gateway_nodes.c.node_id)
    return sorted({r.node_id for r in conn.execute(
        select(pending_turns.c.node_id).where(pending_turns.c.node_id.not_in(registered))
    )})


def drop_turn(conn: Connection, session_id: str, seq: int) -> None:
    conn.execute(delete(pending_turns).where(and_(
        pending_turns.c.session_id == session_id, pending_turns.c.seq == seq)))
