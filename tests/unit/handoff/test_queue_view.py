"""The queue's fan-out (every agent's snapshot, every waiting borrower's place) against its
definition: each entry's ETA from `estimate_wait` over every agent, each agent's entries
filtered by `can_take`, as the views were first written. The views now work out each
skill's capacity and each entry once per queue change; these tests hold them to the same
payloads, for agents of every role and skill mix, busy and free, online and not."""

from __future__ import annotations

from typing import Any

import pytest

from handoff import queue_view
from handoff.model import HandoffSignal, ToAgents, ToBorrower
from handoff.queueing import can_take, estimate_wait
from handoff.service import HandoffService
from handoff.settings import Settings
from handoff.store import Store

from .conftest import PASSWORD, FakeClock

# (routing reason, intent) → the skill config/handoff.yml routes it to
SIGNALS = [
    HandoffSignal("sensitive_intent", intent="report_fraud"),      # fraud
    HandoffSignal("sensitive_intent", intent="complaint"),         # complaints
    HandoffSignal("unresolved_turns", intent="nlu_fallback"),      # general
    HandoffSignal("sensitive_intent", intent="negotiate_repayment"),  # collections
    HandoffSignal("verification_failed"),                          # general
]
TEXTS = ["我的贷款怎么还", "電話 13812345678 打不通", "为什么利率这么高", "我要投訴", ""]


@pytest.fixture(params=[None, "4"], ids=["whole-queue", "first-4"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The gateway's settings, and the same with agents shown only the first 4 sessions."""
    if request.param is None:
        return settings
    return Settings.from_env({
        "HANDOFF_VAR_DIR": str(settings.var_dir),
        "HANDOFF_DB_URL": settings.db_url,
        "HANDOFF_GRACE_SECONDS": "30",
        "HANDOFF_BORROWER_RATE": "1000/60",
        "HANDOFF_AGENT_RATE": "1000/60",
        "HANDOFF_QUEUE_VIEW_LIMIT": request.param,
    })


@pytest.fixture
def crowded(service: HandoffService, clock: FakeClock) -> HandoffService:
    """Agents of every kind, some holding sessions, and a queue of every skill."""
    service.create_agent("gina", "小王", PASSWORD, ["general"], max_sessions=2)
    service.create_agent("fred", "小赵", PASSWORD, ["general", "fraud"], max_sessions=1)
    service.create_agent("cora", "小陈", PASSWORD, ["complaints", "collections"], max_sessions=1)
    service.create_agent("gail", "小李", PASSWORD, ["general"], max_sessions=2)  # like gina
    service.create_agent("olga", "小周", PASSWORD, ["general", "fraud"])  # stays offline
    service.create_agent("boss", "主管", PASSWORD, [], role="supervisor", max_sessions=1)
    service.create_agent("tina", "训练师", PASSWORD, [], role="trainer")
    for name in ("gina", "fred", "cora", "gail", "boss", "tina"):
        service.agent_connected(name)
    for i in range(31):
        sid = service.open_session(None, f"user-{i}").session.session_id
        text = TEXTS[i % len(TEXTS)]
        if text:
            service.record_borrower_message(sid, text)
        service.request_handoff(sid, SIGNALS[i % len(SIGNALS)], "bot")
        clock.advance(7 + i)
    # some agents busy: claims change the free slots the ETAs are made of
    for agent in ("gina", "cora", "boss"):
        head = service.queue_snapshot(agent).entries[0].session_id
        service.claim(agent, head)
    clock.advance(30)
    return service


def reference_effects(reads: queue_view.QueueReads, now: Any) -> tuple[dict[str, Any],
                                                                         dict[str, Any]]:
    """Every online agent's snapshot and every waiting borrower's status, computed per
    agent and per entry from all the agents' loads, as the first version did."""
    snapshots = {}
    for me in reads.loads:
        if not me.online or me.role not in ("agent", "supervisor"):
            continue
        entries = []
        for item in reads.ordered:
            if not can_take(me, item.skill):
                continue
            row = reads.rows_by_id[item.session_id]
            position = reads.positions_by_id[item.session_id]
            preview = reads.previews.get(item.session_id, "")
            entries.append({
                "session_id": item.session_id, "routing_key": item.routing_key,
                "skill": item.skill, "position": position,
                "waiting_seconds": max(0, int((now - item.waiting_since).total_seconds())),
                "eta_seconds": estimate_wait(position, item.skill, reads.loads, reads.typical),
                "requeued_front": item.requeued_front, "reason": row.reason or item.routing_key,
                "intent": row.intent,
                "preview": queue_view.mask_text(preview[:queue_view.PREVIEW_LENGTH]),
            })
        snapshots[me.agent_id] = {"agent_id": me.agent_id,
                                  "entries": entries[:reads.settings.queue_view_limit],
                                  "held": reads.held(me.agent_id),
                                  "capacity": me.max_sessions, "total": len(entries)}
    statuses = {}
    for item in reads.ordered:
        position = reads.positions_by_id[item.session_id]
        eta = estimate_wait(position, item.skill, reads.loads, reads.typical)
        statuses[item.session_id] = queue_view.queued_status(
            item.session_id, position, eta,
            queue_view.script_of(reads.previews.get(item.session_id, ""))).to_dict()
    return snapshots, statuses


def effects_by_recipient(reads: queue_view.QueueReads, now: Any) -> tuple[dict[str, Any],
                                                                          dict[str, Any]]:
    effects = queue_view.queue_effects(reads, now)
    agents = {e.agent_ids[0]: e.payload for e in effects if isinstance(e, ToAgents)}
    assert all(len(e.agent_ids) == 1 for e in effects if isinstance(e, ToAgents))
    borrowers = {e.session_id: e.payload for e in effects if isinstance(e, ToBorrower)}
    return agents, borrowers


def test_fan_out_equals_the_per_agent_definition(crowded: HandoffService, store: Store,
                                                 clock: FakeClock) -> None:
    with store.read() as conn:
        reads = crowded._queue_reads(conn)
        expected_agents, expected_borrowers = reference_effects(reads, clock.now)
        agents, borrowers = effects_by_recipient(crowded._queue_reads(conn), clock.now)
    assert agents == expected_agents
    assert borrowers == expected_borrowers
    # the scenario covers what the ETAs and filters turn on
    assert set(agents) == {"gina", "fred", "cora", "gail", "boss"}  # not offline olga, trainer
    etas = {e["eta_seconds"] for snap in agents.values() for e in snap["entries"]}
    assert None not in etas or len(etas) > 1
    assert any(e > 0 for e in etas if e is not None) and 0 in etas
    assert agents["boss"]["total"] == len(borrowers) > agents["gina"]["total"] > 0
    shown = [len(snap["entries"]) for snap in agents.values()]
    if reads.settings.queue_view_limit == 4:
        assert max(shown) == 4 and agents["boss"]["total"] > 4
    else:
        assert [snap["total"] for snap in agents.values()] == shown
    assert agents["gina"]["held"] and not agents["gail"]["held"]


def test_snapshot_equals_its_payload_and_the_definition(crowded: HandoffService, store: Store,
                                                        clock: FakeClock) -> None:
    for later in (0, 95):
        clock.advance(later)
        with store.read() as conn:
            expected, _ = reference_effects(crowded._queue_reads(conn), clock.now)
            for agent in expected:
                reads = crowded._queue_reads(conn)
                load = reads.load_of(agent)
                assert queue_view.snapshot(reads, agent, clock.now).to_dict() == expected[agent]
                assert queue_view.snapshot_payload(reads, load, clock.now) == expected[agent]
        assert crowded.queue_snapshot("fred").to_dict() == expected["fred"]


def test_each_skill_and_entry_worked_out_once_per_change(
    crowded: HandoffService, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = queue_view.capacity

    def counted(agents: Any, skill: str) -> Any:
        calls.append(skill)
        return real(agents, skill)

    monkeypatch.setattr(queue_view, "capacity", counted)
    with store.read() as conn:
        reads = crowded._queue_reads(conn)
        agents, _ = effects_by_recipient(reads, clock.now)
    assert sorted(calls) == sorted({item.skill for item in reads.ordered})
    # each entry's JSON is made once: gina and gail (alike), fred and boss share the objects
    assert [id(e) for e in agents["gina"]["entries"]] == [id(e) for e in agents["gail"]["entries"]]
    boss_entries = {id(e) for e in agents["boss"]["entries"]}
    assert all(id(e) in boss_entries for e in agents["fred"]["entries"])


@pytest.mark.parametrize("signal", [SIGNALS[1], SIGNALS[4], SIGNALS[2]],
                         ids=["complaint-last-of-its-skill", "verification-ahead-of-unresolved",
                              "unresolved-last"])
def test_a_handoff_leaves_everyone_told_as_the_definition(
    crowded: HandoffService, store: Store, clock: FakeClock, signal: HandoffSignal,
) -> None:
    """Through the service: after one more hand-off every agent has the definition's
    snapshot, and every waiting borrower has been told the definition's status, by this
    hand-off exactly when it differs from what they were told before."""
    with store.read() as conn:
        _, told = reference_effects(crowded._queue_reads(conn), clock.now)
    sid = crowded.open_session(None, "late").session.session_id
    crowded.record_borrower_message(sid, "我要投诉你们")
    clock.advance(3)
    result = crowded.request_handoff(sid, signal, "bot")
    with store.read() as conn:
        expected_agents, expected_borrowers = reference_effects(
            crowded._queue_reads(conn), clock.now)
    sent_agents = {e.agent_ids[0]: e.payload for e in result.effects
                   if isinstance(e, ToAgents) and e.event == "queue"}
    sent_status = {e.session_id: e.payload for e in result.effects
                   if isinstance(e, ToBorrower) and e.event == "status"}
    assert sent_agents == expected_agents
    assert sent_status[sid] == expected_borrowers[sid]
    changed = {k for k, v in expected_borrowers.items() if k != sid and told.get(k) != v}
    assert set(sent_status) - {sid} == changed
    told.update(sent_status)
    assert told == expected_borrowers
    if signal is SIGNALS[4]:
        assert changed  # it went ahead of the unresolved ones: they moved back
