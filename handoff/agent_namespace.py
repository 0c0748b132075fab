"""Agent socket.io namespace ("/agent") for the agent console.

Authenticated at connect time with the token from POST /api/login (in the socket.io `auth`
dict); every later event acts as that agent. Each socket joins `agent:<id>` (so all of an
agent's tabs see the same thing) and `skill:<skill>` rooms. When an agent's last socket goes
away (on every gateway node: the service records sockets per node) the service starts a
grace period; a reconnect within it, on any node, cancels the requeue.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import socketio

from handoff.borrower_namespace import (
    ERROR_EVENT,
    BadInput,
    GatewayNamespace,
    as_mapping,
    field_int,
    field_str,
    guarded,
    plain_text,
)
from handoff.borrower_namespace import MAX_ID_LENGTH as ID_MAX
from handoff.canned import CannedReply
from handoff.compliance import Compliance, ComplianceBlocked
from handoff.delivery import AGENT_NS, BORROWER_NS, Delivery, agent_room, skill_room
from handoff.errors import AuthError, HandoffError, NotSessionHolder, StoreUnavailable
from handoff.masking import mask_text
from handoff.model import AgentEvents, Disposition, Presence
from handoff.service import HandoffService

log = logging.getLogger(__name__)

PRESENCES = ("online", "away", "offline")
DISPOSITIONS = ("resolved", "return_to_bot")
CALLBACK_STATUSES = ("pending", "done", "cancelled")
MAX_RETRY_SECONDS = 30.0


class AgentNamespace(GatewayNamespace):
    def __init__(
        self,
        service: HandoffService,
        delivery: Delivery,
        max_length: int,
        compliance: Compliance | None = None,
        canned: tuple[CannedReply, ...] = (),
    ) -> None:
        super().__init__(AGENT_NS, service, delivery)
        self.max_length = max_length
        # No rules given = the shipped config/compliance.yml: never run without the check.
        self.compliance = compliance if compliance is not None else Compliance.load()
        self.canned = canned
        # Sockets per agent on this node (the service keeps the cross-node record; this copy
        # lets the node re-register them if other nodes took it for dead).
        self._sockets: dict[str, set[str]] = {}
        self._retries: set[asyncio.Task[None]] = set()

    async def _agent_id(self, sid: str) -> str:
        state = await self.get_session(sid)
        agent_id = state.get("agent_id")
        if not agent_id:  # cannot happen after a successful connect; refuse anyway
            raise AuthError("socket has no agent")
        return str(agent_id)

    async def _agent(self, sid: str) -> str:
        """The acting agent, re-checking the token on every event: an expired token or a
        deactivated agent loses the socket at once, not at the next reconnect."""
        state = await self.get_session(sid)
        try:
            agent = await self.call(self.service.agent_from_token, state.get("token") or "")
        except AuthError as err:
            await self.emit(ERROR_EVENT, err.to_dict(), to=sid)
            await self.disconnect(sid)
            raise
        return agent.agent_id

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            if not isinstance(token, str) or not token:
                raise AuthError("no token")
            agent = await self.call(self.service.agent_from_token, token)
            result = await self.call(self.service.agent_connected, agent.agent_id, sid)
        except HandoffError as err:
            # Clients get connect_error {message: <Chinese>, data: {code, message}}.
            refusal = socketio.exceptions.ConnectionRefusedError(err.message_zh, err.to_dict())
            raise refusal from None
        await self.save_session(sid, {"agent_id": agent.agent_id, "token": token})
        await self.enter_room(sid, agent_room(agent.agent_id))
        for skill in agent.skills:
            await self.enter_room(sid, skill_room(skill))
        self._sockets.setdefault(agent.agent_id, set()).add(sid)
        # socket.io clients buffer events that arrive before the connect ack, so these are
        # safe to send from the connect handler.
        await self.emit("hello", {
            "agent": result.agent.to_dict(),
            "held": [t.to_dict() for t in result.held],
            "first_socket": result.first_socket,
        }, to=sid)
        await self.emit(AgentEvents.QUEUE, result.snapshot.to_dict(), to=sid)
        await self.delivery.deliver(result.effects)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        try:
            agent_id = await self._agent_id(sid)
        except (AuthError, KeyError):
            return
        sockets = self._sockets.get(agent_id, set())
        sockets.discard(sid)
        if not sockets:
            self._sockets.pop(agent_id, None)
        try:
            # The service decides whether this was the agent's last socket on any node.
            effects = await self.call(self.service.agent_disconnected, agent_id, sid)
        except StoreUnavailable:
            # Unrecorded, the agent would look present forever and its sessions would never
            # be requeued: retry until the database is back.
            log.warning("agent_disconnected for %s not recorded (database down); retrying",
                        agent_id)
            self._retries.add(asyncio.ensure_future(self._record_disconnect_later(agent_id, sid)))
            return
        except HandoffError:
            log.exception("agent_disconnected failed for %s", agent_id)
            return
        await self.delivery.deliver(effects)

    def local_sockets(self) -> list[tuple[str, str]]:
        """(agent_id, socket_id) of every agent socket on this node."""
        return [(agent, sid) for agent, sids in list(self._sockets.items()) for sid in list(sids)]

    async def _record_disconnect_later(self, agent_id: str, sid: str) -> None:
        delay = 1.0
        try:
            while True:
                await asyncio.sleep(delay)
                try:
                    # Also when the agent is back meanwhile: the service only forgets this
                    # socket, and starts the grace only if no socket is left on any node
                    # (returning early would leave this socket recorded as live forever).
                    effects = await self.call(self.service.agent_disconnected, agent_id, sid)
                except StoreUnavailable:
                    delay = min(delay * 2, MAX_RETRY_SECONDS)
                    continue
                await self.delivery.deliver(effects)
                return
        finally:
            self._retries.discard(asyncio.current_task())

    # --- events ------------------------------------------------------------------------

    @guarded
    async def on_presence(self, sid: str, data: Any = None) -> dict[str, Any]:
        payload = as_mapping(data)
        presence = field_str(payload, "presence")
        if presence not in PRESENCES:
            raise BadInput("bad presence", message_zh="状态只能是 online、away 或 offline")
        agent_id = await self._agent(sid)
        effects = await self.call(self.service.agent_presence, agent_id,
                                  cast(Presence, presence))
        await self.delivery.deliver(effects)
        return {"ok": True, "presence": presence}

    @guarded
    async def on_queue(self, sid: str, data: Any = None) -> dict[str, Any]:
        agent_id = await self._agent(sid)
        snapshot = await self.call(self.service.queue_snapshot, agent_id)
        await self.emit(AgentEvents.QUEUE, snapshot.to_dict(), to=sid)
        return {"ok": True, "queue": snapshot.to_dict()}

    @guarded
    async def on_claim(self, sid: str, data: Any = None) -> dict[str, Any]:
        payload = as_mapping(data)
        session_id = str(field_str(payload, "session_id", max_length=ID_MAX))
        agent_id = await self._agent(sid)
        result = await self.call(self.service.claim, agent_id, session_id)
        await self.delivery.deliver(result.effects)
        return {"ok": True, "transcript": result.transcript.to_dict()}

    @guarded
    async def on_message(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Stored by the service before it is relayed; the ack carries the stored seq."""
        payload = as_mapping(data)
        session_id = str(field_str(payload, "session_id", max_length=ID_MAX))
        text = plain_text(str(field_str(payload, "text")))
        client_msg_id = field_str(payload, "client_msg_id", required=False, max_length=ID_MAX)
        agent_id = await self._agent(sid)
        # Compliance before the service stores anything: a blocked text is never sent.
        try:
            verdict = self.compliance.enforce(text)
        except ComplianceBlocked:
            log.warning("compliance: blocked message from %s in %s…: %s", agent_id,
                        session_id[:8], mask_text(text)[:200])
            raise
        result = await self.call(self.service.agent_message, agent_id, session_id, text,
                                 client_msg_id)
        await self.delivery.deliver(result.effects)
        ack: dict[str, Any] = {"ok": True, "seq": result.message.seq, "route": result.route}
        if verdict.warnings:
            warning = {"session_id": session_id, "seq": result.message.seq,
                       "reason": verdict.reason,
                       "hits": [h.to_dict() for h in verdict.warnings]}
            log.info("compliance: warning for %s in %s…: %s", agent_id, session_id[:8],
                     ",".join(h.rule_id for h in verdict.warnings))
            await self.emit("compliance_warning", warning, to=sid)
            ack["warning"] = warning
        return ack

    @guarded
    async def on_canned(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The canned replies (config/canned_replies.yml) for the console's `/` search."""
        await self._agent(sid)
        return {"ok": True, "replies": [r.to_dict() for r in self.canned]}

    @guarded
    async def on_typing(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Ephemeral typing indicator to the borrower; only the holder may send it."""
        payload = as_mapping(data)
        session_id = str(field_str(payload, "session_id", max_length=ID_MAX))
        typing = payload.get("typing", True)
        if not isinstance(typing, bool):
            raise BadInput("typing must be a boolean", message_zh="字段 typing 必须是布尔值")
        agent_id = await self._agent(sid)
        view = await self.call(self.service.session, session_id)
        if view.state != "assigned" or view.agent_id != agent_id:
            raise NotSessionHolder("typing in a session not held")
        await self.delivery.sio.emit(
            "agent_typing",
            {"session_id": session_id, "typing": typing, "agent_name": view.agent_name},
            room=session_id,
            namespace=BORROWER_NS,
        )
        return {"ok": True}

    @guarded
    async def on_note(self, sid: str, data: Any = None) -> dict[str, Any]:
        payload = as_mapping(data)
        session_id = str(field_str(payload, "session_id", max_length=ID_MAX))
        text = plain_text(str(field_str(payload, "text")))
        agent_id = await self._agent(sid)
        note = await self.call(self.service.note, agent_id, session_id, text)
        await self.delivery.sio.emit(AgentEvents.NOTE, note.to_dict(),
                                     room=agent_room(agent_id), namespace=AGENT_NS)
        return {"ok": True, "note": note.to_dict()}

    @guarded
    async def on_transfer(self, sid: str, data: Any = None) -> dict[str, Any]:
        payload = as_mapping(data)
        session_id = str(field_str(payload, "session_id", max_length=ID_MAX))
        to_agent = field_str(payload, "to_agent", required=False, max_length=ID_MAX)
        to_skill = field_str(payload, "to_skill", required=False, max_length=ID_MAX)
        if (to_agent is None) == (to_skill is None):
            raise BadInput("exactly one of to_agent / to_skill",
                           message_zh="请指定转接的坐席或技能组（二选一）")
        agent_id = await self._agent(sid)
        result = await self.call(self.service.transfer, agent_id, session_id,
                                 to_agent=to_agent, to_skill=to_skill)
        await self.delivery.deliver(result.effects)
        return {"ok": True, "session": result.session.to_dict()}

    @guarded
    async def on_close(self, sid: str, data: Any = None) -> dict[str, Any]:
        payload = as_mapping(data)
        session_id = str(field_str(payload, "session_id", max_length=ID_MAX))
        disposition = field_str(payload, "disposition", required=False) or "resolved"
        if disposition not in DISPOSITIONS:
            raise BadInput("bad disposition",
                           message_zh="结束方式只能是 resolved 或 return_to_bot")
        agent_id = await self._agent(sid)
        result = await self.call(self.service.close, agent_id, session_id,
                                 cast(Disposition, disposition))
        await self.delivery.deliver(result.effects)
        return {"ok": True, "session": result.session.to_dict()}

    @guarded
    async def on_transcript(self, sid: str, data: Any = None) -> dict[str, Any]:
        payload = as_mapping(data)
        session_id = str(field_str(payload, "session_id", max_length=ID_MAX))
        agent_id = await self._agent(sid)
        transcript = await self.call(self.service.transcript_for_agent, agent_id, session_id)
        return {"ok": True, "transcript": transcript.to_dict()}

    @guarded
    async def on_callbacks(self, sid: str, data: Any = None) -> dict[str, Any]:
        payload = as_mapping(data, allow_none=True)
        status = field_str(payload, "status", required=False)
        if status is not None and status not in CALLBACK_STATUSES:
            raise BadInput("bad status", message_zh="回呼状态只能是 pending、done 或 cancelled")
        agent_id = await self._agent(sid)
        views = await self.call(self.service.list_callbacks, agent_id, status)
        items = [v.to_dict() for v in views]
        await self.emit("callbacks", {"callbacks": items}, to=sid)
        return {"ok": True, "callbacks": items}

    @guarded
    async def on_callback_status(self, sid: str, data: Any = None) -> dict[str, Any]:
        payload = as_mapping(data)
        callback_id = int(field_int(payload, "id") or 0)
        status = field_str(payload, "status")
        if status not in ("done", "cancelled"):
            raise BadInput("bad status", message_zh="回呼状态只能是 done 或 cancelled")
        agent_id = await self._agent(sid)
        view = await self.call(self.service.set_callback_status, agent_id, callback_id,
                               status)
        return {"ok": True, "callback": view.to_dict()}

    @guarded
    async def on_agents(self, sid: str, data: Any = None) -> dict[str, Any]:
        await self._agent(sid)
        agents = await self.call(self.service.list_agents)
        return {"ok": True, "agents": [a.to_dict() for a in agents]}

