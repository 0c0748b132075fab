"""Queue order, skill routing, positions and the wait estimate."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handoff.policy import Policy
from handoff.queueing import (
    AgentLoad,
    QueueItem,
    agents_able,
    can_take,
    estimate_wait,
    order_queue,
    positions,
    typical_handle_seconds,
    visible_queue,
)

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


def item(sid: str, key: str, minutes_ago: int, skill: str = "general",
         front: bool = False) -> QueueItem:
    return QueueItem(sid, key, skill, T0 - timedelta(minutes=minutes_ago), front)


def agent(aid: str, skills: set[str], *, online: bool = True, max_sessions: int = 2,
          held: int = 0, role: str = "agent") -> AgentLoad:
    return AgentLoad(aid, role, frozenset(skills), online, max_sessions, held)


def test_priority_beats_waiting_time(policy: Policy) -> None:
    queue = [
        item("a", "unresolved_turns", 30),
        item("b", "negotiate_repayment", 20),
        item("c", "report_fraud", 1),
        item("d", "complaint", 5),
        item("e", "verification_failed", 10),
    ]
    assert [i.session_id for i in order_queue(queue, policy)] == ["c", "d", "e", "b", "a"]


def test_unlisted_keys_share_last_rank_and_order_by_wait(policy: Policy) -> None:
    queue = [item("new", "request_human", 1), item("old", "unresolved_turns", 9),
             item("mid", "bot_unavailable", 5)]
    assert [i.session_id for i in order_queue(queue, policy)] == ["old", "mid", "new"]


def test_requeued_after_agent_loss_goes_to_front(policy: Policy) -> None:
    queue = [item("fraud", "report_fraud", 50), item("lost", "request_human", 1, front=True)]
    assert [i.session_id for i in order_queue(queue, policy)] == ["lost", "fraud"]


def test_equal_keys_and_times_are_ordered_by_id(policy: Policy) -> None:
    queue = [item("b", "complaint", 3), item("a", "complaint", 3)]
    assert [i.session_id for i in order_queue(queue, policy)] == ["a", "b"]


def test_skill_routing_from_policy(policy: Policy) -> None:
    assert policy.skill_for("report_fraud") == "fraud"
    assert policy.skill_for("complaint") == "complaints"
    assert policy.skill_for("something_new") == "general"


def test_visibility_by_skill_and_role(policy: Policy) -> None:
    ordered = order_queue(
        [item("f", "report_fraud", 1, "fraud"), item("g", "request_human", 2),
         item("c", "complaint", 3, "complaints")],
        policy,
    )
    general = agent("g1", {"general"})
    fraud = agent("f1", {"fraud", "general"})
    boss = agent("s1", set(), role="supervisor")
    trainer = agent("t1", {"general"}, role="trainer")
    assert [i.session_id for i in visible_queue(ordered, general)] == ["g"]
    assert [i.session_id for i in visible_queue(ordered, fraud)] == ["f", "g"]
    assert [i.session_id for i in visible_queue(ordered, boss)] == ["f", "c", "g"]
    assert visible_queue(ordered, trainer) == []
    assert not can_take(general, "fraud")


def test_positions_are_per_skill(policy: Policy) -> None:
    ordered = order_queue(
        [item("g1", "request_human", 9), item("f1", "report_fraud", 1, "fraud"),
         item("g2", "request_human", 3), item("f2", "report_fraud", 0, "fraud")],
        policy,
    )
    assert positions(ordered) == {"f1": 1, "f2": 2, "g1": 1, "g2": 2}


def test_eta_none_without_able_agents() -> None:
    agents = [agent("a", {"fraud"}), agent("b", {"general"}, online=False)]
    assert estimate_wait(1, "general", agents, 300) is None


def test_eta_zero_with_free_slots() -> None:
    agents = [agent("a", {"general"}, max_sessions=2, held=1)]
    assert estimate_wait(1, "general", agents, 300) == 0


@pytest.mark.parametrize(
    ("position", "expected"),
    # one agent with 2 slots, both busy: each wave of 2 sessions takes one typical time
    [(1, 300), (2, 300), (3, 600), (4, 600), (5, 900)],
)
def test_eta_waves(position: int, expected: int) -> None:
    agents = [agent("a", {"general"}, max_sessions=2, held=2)]
    assert estimate_wait(position, "general", agents, 300) == expected


def test_eta_counts_free_slots_and_supervisors() -> None:
    agents = [agent("a", {"general"}, max_sessions=2, held=2),
              agent("s", set(), role="supervisor", max_sessions=1, held=0)]
    # 3 slots, 1 free: position 1 is served now; position 2 waits one wave
    assert estimate_wait(1, "general", agents, 120) == 0
    assert estimate_wait(2, "general", agents, 120) == 120
    assert estimate_wait(5, "general", agents, 120) == 240


def test_eta_rejects_zero_position() -> None:
    with pytest.raises(ValueError):
        estimate_wait(0, "general", [], 1)


def test_typical_handle_is_median_or_default() -> None:
    assert typical_handle_seconds([], 300) == 300
    assert typical_handle_seconds([100, 200, 10_000], 300) == 200
    assert typical_handle_seconds([0, -1], 42) == 42


def test_agents_able_only_online_with_skill() -> None:
    agents = [agent("a", {"general"}), agent("b", {"general"}, online=False),
              agent("c", {"fraud"})]
    assert [a.agent_id for a in agents_able(agents, "general")] == ["a"]


keys = st.sampled_from(["report_fraud", "complaint", "verification_failed",
                        "negotiate_repayment", "request_human", "unresolved_turns"])


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(keys, st.integers(0, 600), st.booleans()), max_size=30))
def test_order_properties(policy: Policy, specs: list[tuple[str, int, bool]]) -> None:
    queue = [item(f"s{i:02d}", key, minutes, front=front)
             for i, (key, minutes, front) in enumerate(specs)]
    ordered = order_queue(queue, policy)
    assert sorted(i.session_id for i in ordered) == sorted(i.session_id for i in queue)
    for a, b in zip(ordered, ordered[1:], strict=False):
        assert a.requeued_front or not b.requeued_front  # requeued first
        if a.requeued_front == b.requeued_front:
            ra, rb = policy.priority_rank(a.routing_key), policy.priority_rank(b.routing_key)
            assert ra <= rb
            if ra == rb:
                assert a.waiting_since <= b.waiting_since  # longest wait first
