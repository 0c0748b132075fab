"""Several gateway nodes on one database: an agent is connected while it has a socket on any
live node; a node that stops beating is taken for dead and only then does the grace start."""

from __future__ import annotations

from dataclasses import replace

import pytest

from handoff.model import ToRasaMessage
from handoff.policy import Policy
from handoff.service import HandoffService
from handoff.settings import Settings
from handoff.store import Store

from .conftest import PASSWORD, FakeClock
from .test_service import queued

TTL = 15


@pytest.fixture
def node_settings(settings: Settings) -> Settings:
    return replace(settings, node_ttl_seconds=TTL, grace_seconds=30)


def _node(store: Store, policy: Policy, settings: Settings, clock: FakeClock,
          node_id: str) -> HandoffService:
    service = HandoffService(store, policy, replace(settings, node_id=node_id), clock)
    service.recover_after_restart()
    return service


@pytest.fixture
def two_nodes(store: Store, policy: Policy, node_settings: Settings,
              clock: FakeClock) -> tuple[HandoffService, HandoffService]:
    a = _node(store, policy, node_settings, clock, "node-a")
    b = _node(store, policy, node_settings, clock, "node-b")
    a.create_agent("gina", "小王", PASSWORD, ["general"])
    return a, b


def pass_time(clock: FakeClock, seconds: int, *alive: HandoffService) -> list[object]:
    """Let time pass in short steps; the live nodes tick as their gateways would (often
    enough to beat within the TTL)."""
    effects: list[object] = []
    while seconds > 0:
        step = min(3, seconds)
        seconds -= step
        clock.advance(step)
        for node in alive:
            effects.extend(node.tick())
    return effects


def presence(service: HandoffService, agent: str) -> str:
    return {v.agent_id: v.presence for v in service.list_agents()}[agent]


def test_socket_leaving_one_node_keeps_agent_served_by_another(
        two_nodes: tuple[HandoffService, HandoffService], clock: FakeClock) -> None:
    a, b = two_nodes
    assert a.agent_connected("gina", "sid-a").first_socket is True
    assert b.agent_connected("gina", "sid-b").first_socket is False
    sid = queued(a)
    b.claim("gina", sid)
    assert a.agent_disconnected("gina", "sid-a") == ()
    assert presence(a, "gina") == "online"
    pass_time(clock, 60, a, b)
    assert a.session(sid).agent_id == "gina"
    b.agent_disconnected("gina", "sid-b")  # the last socket anywhere: grace starts
    assert presence(b, "gina") == "offline"
    pass_time(clock, 31, a, b)
    assert a.session(sid).state == "queued" and a.session(sid).requeued_front


def test_dead_node_starts_grace_from_its_last_heartbeat(
        two_nodes: tuple[HandoffService, HandoffService], clock: FakeClock) -> None:
    a, b = two_nodes
    a.agent_connected("gina", "sid-a")
    sid = queued(b)
    a.claim("gina", sid)
    pass_time(clock, TTL - 1, b)  # node A was killed: no more ticks; late, not yet dead
    assert presence(b, "gina") == "online"
    pass_time(clock, 2, b)  # silent for longer than the TTL: dead
    assert presence(b, "gina") == "offline"
    assert b.session(sid).agent_id == "gina"  # within the grace
    effects = pass_time(clock, 30 - TTL, b)
    assert b.session(sid).state == "queued" and b.session(sid).requeued_front
    assert effects


def test_agent_reconnecting_to_another_node_keeps_sessions_when_a_node_dies(
        two_nodes: tuple[HandoffService, HandoffService], clock: FakeClock) -> None:
    a, b = two_nodes
    a.agent_connected("gina", "sid-a")
    sid = queued(b)
    a.claim("gina", sid)
    pass_time(clock, 1, b)  # node A was killed
    held = b.agent_connected("gina", "sid-b2")  # the console reconnected to node B
    assert [t.session.session_id for t in held.held] == [sid]
    pass_time(clock, 120, b)
    assert presence(b, "gina") == "online"
    assert b.session(sid).agent_id == "gina"


def test_restarting_node_does_not_touch_agents_of_other_nodes(
        store: Store, policy: Policy, node_settings: Settings, clock: FakeClock,
        two_nodes: tuple[HandoffService, HandoffService]) -> None:
    a, b = two_nodes
    b.agent_connected("gina", "sid-b")
    sid = queued(a)
    b.claim("gina", sid)
    restarted_a = _node(store, policy, node_settings, clock, "node-a")
    assert presence(restarted_a, "gina") == "online"
    # ...but restarting node B itself forgets B's old sockets: grace starts.
    restarted_b = _node(store, policy, node_settings, clock, "node-b")
    assert presence(restarted_b, "gina") == "offline"
    pass_time(clock, 31, restarted_a, restarted_b)
    assert restarted_b.session(sid).state == "queued"


def test_graceful_stop_hands_agents_to_the_grace_at_once(
        two_nodes: tuple[HandoffService, HandoffService]) -> None:
    a, b = two_nodes
    a.agent_connected("gina", "sid-a")
    a.node_stopped()
    assert presence(b, "gina") == "offline"


def test_node_taken_for_dead_reregisters_its_sockets(
        two_nodes: tuple[HandoffService, HandoffService], clock: FakeClock) -> None:
    a, b = two_nodes
    a.local_agent_sockets = lambda: [("gina", "sid-a")]
    a.agent_connected("gina", "sid-a")
    sid = queued(b)
    a.claim("gina", sid)
    clock.advance(TTL + 1)  # node A stalled: B takes it for dead
    b.tick()
    assert presence(b, "gina") == "offline"
    a.tick()  # A wakes up, finds its registry row gone and re-registers
    assert presence(a, "gina") == "online"
    pass_time(clock, 60, a, b)
    assert a.session(sid).agent_id == "gina"


# --- borrower messages on their way to Rasa when a node dies ---------------------------------


def forwards(effects: list[object]) -> list[tuple[str, int]]:
    return [(e.session_id, e.seq) for e in effects if isinstance(e, ToRasaMessage)]


HANDOFF_REPLY = {"custom": {"handoff": {"reason": "sensitive_intent", "intent": "request_human",
                                        "confidence": 0.9, "unresolved_turns": 0, "slots": {}}}}


def test_unanswered_turn_of_a_dead_node_is_forwarded_once_by_one_survivor(
        store: Store, policy: Policy, node_settings: Settings, clock: FakeClock,
        two_nodes: tuple[HandoffService, HandoffService]) -> None:
    a, b = two_nodes
    c = _node(store, policy, node_settings, clock, "node-c")
    sid = a.open_session(None, "u1").session.session_id
    sent = a.record_borrower_message(sid, "借5万每月还多少", metadata={"customData": {"k": 1}})
    assert forwards(list(sent.effects)) == [(sid, sent.message.seq)]
    # node A dies before Rasa's answer is stored
    effects = pass_time(clock, TTL + 6, b, c)
    assert forwards(effects) == [(sid, sent.message.seq)]
    [again] = [e for e in effects if isinstance(e, ToRasaMessage)]
    assert again.text == "借5万每月还多少"
    assert again.metadata == {"customData": {"k": 1}, "seq": sent.message.seq}
    b.accept_bot_replies(sid, [{"text": "每月约4300元"}])
    assert forwards(pass_time(clock, 30, b, c)) == []


def test_answered_turns_are_not_forwarded_again(
        two_nodes: tuple[HandoffService, HandoffService], clock: FakeClock) -> None:
    a, b = two_nodes
    sid = a.open_session(None, "u1").session.session_id
    a.record_borrower_message(sid, "你好")
    a.accept_bot_replies(sid, [{"text": "您好"}])
    a.record_borrower_message(sid, "利率多少")
    a.bot_unavailable(sid, "timeout")  # a failure settles the turn too
    assert forwards(pass_time(clock, TTL + 6, b)) == []


def test_turn_is_dropped_not_forwarded_once_a_human_has_the_session(
        two_nodes: tuple[HandoffService, HandoffService], clock: FakeClock) -> None:
    a, b = two_nodes
    sid = a.open_session(None, "u1").session.session_id
    a.record_borrower_message(sid, "转人工")
    a.record_borrower_message(sid, "快点")  # sent before the handoff reply came back
    a.accept_bot_replies(sid, [HANDOFF_REPLY])  # answers the first: queued
    assert forwards(pass_time(clock, TTL + 6, b)) == []
    assert b.session(sid).state == "queued"


def test_restarted_node_forwards_what_its_previous_run_left_unanswered(
        store: Store, policy: Policy, node_settings: Settings, clock: FakeClock,
        two_nodes: tuple[HandoffService, HandoffService]) -> None:
    a, _ = two_nodes
    sid = a.open_session(None, "u1").session.session_id
    first = a.record_borrower_message(sid, "第一句")
    second = a.record_borrower_message(sid, "第二句")
    restarted = _node(store, policy, node_settings, clock, "node-a")
    assert forwards(list(restarted.recover_pending_turns())) == [
        (sid, first.message.seq), (sid, second.message.seq)]
