"""Who is connected: agent sockets and presence, reconnect grace periods, gateway nodes'
heartbeats, restart recovery and re-forwarding borrower turns a dead node left pending."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection, Row

from handoff.errors import ValidationError
from handoff.model import ConnectResult, Effect, Presence, ToRasaMessage
from handoff.service_core import ServiceCore
from handoff.states import SessionState
from handoff.store import nodes, repo
from handoff.validation import PRESENCES
from handoff.views import short_id

log = logging.getLogger("handoff.service")


class PresenceFlows(ServiceCore):
    """Agent presence and gateway node liveness; expires grace periods (tick)."""

    def agent_connected(self, agent_id: str, socket_id: str | None = None) -> ConnectResult:
        """An agent socket connected: presence online, reconnect grace cancelled.

        With `socket_id` the socket is recorded for this gateway node (settings.node_id), so
        other nodes know the agent is still connected when one of its sockets goes away.
        Returns the agent, its queue snapshot, and transcripts of the sessions it still holds.
        """
        now = self._now()
        with self._store.write() as conn:
            # Row lock: a socket leaving on another node decides "last socket?" after us.
            row = repo.require_agent(conn, agent_id, for_update=True)
            first = True
            if socket_id is not None:
                first = nodes.live_sockets(conn, agent_id, self._alive_after(now)) == 0
                nodes.add_socket(conn, self._settings.node_id, socket_id, agent_id, now)
            repo.set_agent_presence(conn, agent_id, "online", None)
            reads = self._queue_reads(conn)
            effects = self._queue_effects(conn, now, skip_agent=agent_id, reads=reads)
            snapshot = self._snapshot(conn, agent_id, now, reads)
            held = tuple(
                self._transcript(conn, s) for s in repo.held_sessions(conn, agent_id)
            )
            agent = repo.agent_view(repo.require_agent(conn, row.username))
        return ConnectResult(agent, snapshot, held, tuple(effects), first_socket=first)

    def agent_presence(self, agent_id: str, presence: Presence) -> tuple[Effect, ...]:
        """Set online/away/offline. Only online agents count for ETA and callback offers.

        "offline" is a deliberate log-off: held sessions go back to the front of the queue at
        once (no grace period)."""
        if presence not in PRESENCES:
            raise ValidationError(f"presence must be one of {PRESENCES}")
        now = self._now()
        effects: list[Effect] = []
        with self._store.write() as conn:
            repo.require_agent(conn, agent_id)
            repo.set_agent_presence(conn, agent_id, presence, None)
            if presence == "offline":
                effects.extend(self._requeue_held(conn, agent_id, now, "agent logged off"))
            effects.extend(self._queue_effects(conn, now))
        return tuple(effects)

    def agent_disconnected(
        self, agent_id: str, socket_id: str | None = None
    ) -> tuple[Effect, ...]:
        """An agent socket went away. Without `socket_id` (or when it was the agent's last
        socket on any live gateway node) the grace period starts (settings.grace_seconds);
        held sessions stay with the agent until it expires (see tick()). With other sockets
        left (this node or another), nothing changes and no effects are returned.
        """
        now = self._now()
        with self._store.write() as conn:
            repo.require_agent(conn, agent_id, for_update=True)
            if socket_id is not None:
                nodes.remove_socket(conn, self._settings.node_id, socket_id)
                if nodes.live_sockets(conn, agent_id, self._alive_after(now)) > 0:
                    return ()
            repo.set_agent_presence(conn, agent_id, "offline", now)
            effects = self._queue_effects(conn, now)
        if self._settings.grace_seconds == 0:
            effects.extend(self.tick())
        return tuple(effects)

    def recover_after_restart(self) -> int:
        """Call once when the gateway starts: no agent has a socket yet, so every agent the
        store still shows as present starts its grace period now (reconnecting in time keeps
        its sessions; tick() requeues the rest). Returns how many agents were marked."""
        now = self._now()
        with self._store.write() as conn:
            # This node's sockets from before the restart are gone; agents served by other
            # live gateway nodes are not touched.
            nodes.heartbeat(conn, self._settings.node_id, now)
            nodes.forget_node_sockets(conn, self._settings.node_id)
            self._last_heartbeat = now
            marked = 0
            for agent in repo.list_agents(conn):
                if nodes.live_sockets(conn, agent.username, self._alive_after(now)) > 0:
                    continue
                if agent.presence != "offline" or repo.held_sessions(conn, agent.username):
                    repo.set_agent_presence(conn, agent.username, "offline",
                                            agent.disconnected_at or now)
                    marked += 1
        log.info("restart recovery: %d agents in grace", marked)
        return marked

    def tick(self) -> tuple[Effect, ...]:
        """Expire grace periods: sessions of agents gone longer than the grace go back to the
        FRONT of the queue (agent_lost). Call about once a second."""
        now = self._now()
        effects: list[Effect] = self._heartbeat_if_due(now)
        effects.extend(self._reap_dead_nodes(now))
        cutoff = now - timedelta(seconds=self._settings.grace_seconds)
        with self._store.read() as conn:
            if not repo.agents_lost_before(conn, cutoff):
                return tuple(effects)
        with self._store.write() as conn:
            for agent in repo.agents_lost_before(conn, cutoff):
                repo.set_agent_presence(conn, agent.username, "offline", None)
                effects.extend(
                    self._requeue_held(conn, agent.username, now, "agent connection lost")
                )
            if effects:
                effects.extend(self._queue_effects(conn, now))
        return tuple(effects)

    def node_heartbeat(self) -> bool:
        """Record that this gateway node is alive. Returns True when the node's row was
        missing (first beat, or other nodes took this node for dead): the caller should then
        re-attach its live agent sockets (reattach_sockets)."""
        now = self._now()
        with self._store.write() as conn:
            created = nodes.heartbeat(conn, self._settings.node_id, now)
        self._last_heartbeat = now
        return created

    def reattach_sockets(self, sockets: Sequence[tuple[str, str]]) -> tuple[Effect, ...]:
        """(agent_id, socket_id) pairs this node still serves, after it was taken for dead:
        record them again and cancel those agents' grace periods."""
        now = self._now()
        with self._store.write() as conn:
            for agent_id, socket_id in sockets:
                if repo.get_agent(conn, agent_id, for_update=True) is None:
                    continue
                nodes.add_socket(conn, self._settings.node_id, socket_id, agent_id, now)
                repo.set_agent_presence(conn, agent_id, "online", None)
            effects = self._queue_effects(conn, now) if sockets else []
        return tuple(effects)

    def node_stopped(self) -> tuple[Effect, ...]:
        """This node shuts down: forget it and start the grace of agents it alone served."""
        now = self._now()
        with self._store.write() as conn:
            return tuple(self._forget_node(conn, self._settings.node_id, now))

    def _alive_after(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self._settings.node_ttl_seconds)

    def _heartbeat_if_due(self, now: datetime) -> list[Effect]:
        every = timedelta(seconds=self._settings.node_ttl_seconds / 3)
        if self._last_heartbeat is not None and now - self._last_heartbeat < every:
            return []
        first = self._last_heartbeat is None
        if not self.node_heartbeat() or first:
            return self._adopt_orphan_turns()
        log.warning("gateway node %s was taken for dead by other nodes; re-registering",
                    self._settings.node_id)
        sockets = list(self.local_agent_sockets()) if self.local_agent_sockets else []
        return list(self.reattach_sockets(sockets)) + self._adopt_orphan_turns()

    def recover_pending_turns(self) -> tuple[Effect, ...]:
        """Call once at start-up (after recover_after_restart): borrower messages this node's
        previous run stored but never got Rasa's answer for are forwarded again, and so are
        those of nodes that are gone."""
        with self._store.write() as conn:
            own = nodes.adopt_turns(conn, self._settings.node_id, self._settings.node_id)
            effects = self._forwards(conn, own)
        return tuple(effects) + tuple(self._adopt_orphan_turns())

    def _adopt_orphan_turns(self) -> list[Effect]:
        """Pending turns of nodes no longer registered (dead and reaped, or stopped): this
        node forwards them to Rasa again. Rasa may see such a message twice if the dead node
        had already sent it; the borrower gets one answer, because only one was stored."""
        with self._store.read() as conn:
            if not nodes.orphan_turn_nodes(conn):
                return []
        with self._store.write() as conn:
            adopted = [row for node_id in nodes.orphan_turn_nodes(conn)
                       for row in nodes.adopt_turns(conn, node_id, self._settings.node_id)]
            return self._forwards(conn, adopted)

    def _forwards(self, conn: Connection, turns: Sequence[Row]) -> list[Effect]:
        effects: list[Effect] = []
        for turn in turns:
            row = repo.get_session(conn, turn.session_id)
            if row is None or row.state != SessionState.BOT.value:
                nodes.drop_turn(conn, turn.session_id, turn.seq)  # a human has it now
                continue
            log.warning("re-forwarding borrower message %s of session %s to Rasa",
                        turn.seq, short_id(turn.session_id))
            effects.append(ToRasaMessage(turn.session_id, turn.text, turn.seq,
                                         dict(turn.metadata or {"seq": turn.seq})))
        return effects

    def _reap_dead_nodes(self, now: datetime) -> list[Effect]:
        """Nodes silent for longer than the node TTL are dead: their agent sockets are gone,
        and agents with no socket left anywhere start their grace period from the node's
        last heartbeat."""
        alive_after = self._alive_after(now)
        with self._store.read() as conn:
            if not nodes.dead_nodes(conn, alive_after):
                return []
        effects: list[Effect] = []
        with self._store.write() as conn:
            for node in nodes.dead_nodes(conn, alive_after):
                if node.node_id == self._settings.node_id:
                    continue  # we are alive; our own beat is merely late
                log.warning("gateway node %s silent since %s: taking it for dead",
                            node.node_id, node.heartbeat_at.isoformat())
                effects.extend(self._forget_node(conn, node.node_id, node.heartbeat_at))
        effects.extend(self._adopt_orphan_turns())  # what the dead node was sending to Rasa
        return effects

    def _forget_node(self, conn: Connection, node_id: str, since: datetime) -> list[Effect]:
        now = self._now()
        changed = False
        for agent_id in nodes.remove_node(conn, node_id):
            agent = repo.get_agent(conn, agent_id, for_update=True)
            if agent is None or nodes.live_sockets(conn, agent_id, self._alive_after(now)) > 0:
                continue
            if agent.disconnected_at is None:
                repo.set_agent_presence(conn, agent_id, "offline", since)
                changed = True
        return self._queue_effects(conn, now) if changed else []
