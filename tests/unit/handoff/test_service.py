"""HandoffService flows end to end, without a server: effects are inspected directly."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from handoff.errors import (
    AlreadyClaimed,
    AuthError,
    CapacityReached,
    ConflictError,
    IdentityMismatch,
    IllegalTransition,
    NotFound,
    NotSessionHolder,
    PermissionDenied,
    RateLimited,
    ValidationError,
)
from handoff.model import Effect, HandoffSignal, ToAgents, ToBorrower, ToRasa, ToRasaMessage
from handoff.policy import Policy
from handoff.service import RESUME_EVENTS, HandoffService, Texts, normalise_mobile
from handoff.settings import Settings
from handoff.store import Store, repo

from .conftest import PASSWORD, FakeClock

FRAUD = {"custom": {"handoff": {"reason": "sensitive_intent", "intent": "report_fraud",
                                "confidence": 0.93, "unresolved_turns": 0,
                                "slots": {"phone": "13812345678", "amount": 50000}}}}
UNRESOLVED = {"custom": {"handoff": {"reason": "unresolved_turns", "intent": "nlu_fallback",
                                     "confidence": 0.31, "unresolved_turns": 3, "slots": {}}}}


def borrower_events(effects: Iterable[Effect], event: str, sid: str | None = None) -> list[dict]:
    return [e.payload for e in effects if isinstance(e, ToBorrower) and e.event == event
            and (sid is None or e.session_id == sid)]


def agent_events(effects: Iterable[Effect], event: str, agent: str) -> list[dict]:
    return [e.payload for e in effects
            if isinstance(e, ToAgents) and e.event == event and agent in e.agent_ids]


@pytest.fixture
def agents(service: HandoffService) -> HandoffService:
    service.create_agent("gina", "小王", PASSWORD, ["general"], max_sessions=2)
    service.create_agent("fred", "小赵", PASSWORD, ["general", "fraud"])
    service.create_agent("boss", "主管", PASSWORD, [], role="supervisor")
    service.create_agent("tina", "训练师", PASSWORD, [], role="trainer")
    for name in ("gina", "fred"):
        service.agent_connected(name)
    return service


def queued(service: HandoffService, identity: str = "user-1",
           reply: dict[str, Any] = UNRESOLVED, text: str = "怎么还不了款") -> str:
    sid = service.open_session(None, identity).session.session_id
    service.record_borrower_message(sid, text)
    result = service.accept_bot_replies(sid, [{"text": "正在为您转接人工"}, reply])
    assert result.handed_off
    return sid


# --- sessions ----------------------------------------------------------------------------


def test_open_session_ids_are_unguessable_and_bound(service: HandoffService) -> None:
    first = service.open_session(None, "user-1")
    assert first.created and len(first.session.session_id) >= 32
    again = service.open_session(first.session.session_id, "user-1")
    assert not again.created and again.session.session_id == first.session.session_id
    with pytest.raises(IdentityMismatch):
        service.open_session(first.session.session_id, "user-2")
    with pytest.raises(IdentityMismatch):
        service.open_session(first.session.session_id, None)
    chosen = "attacker-chosen-id-123456"
    fresh = service.open_session(chosen, "user-2")
    assert fresh.created and fresh.session.session_id != chosen
    assert service.open_session("x", None).session.session_id != "x"


def test_borrower_message_goes_to_bot_and_is_idempotent(service: HandoffService,
                                                        store: Store) -> None:
    sid = service.open_session(None, "user-1").session.session_id
    result = service.record_borrower_message(sid, "借5万", "c-1", {"lang": "zh"})
    assert result.route == "bot"
    assert result.effects == (ToRasaMessage(sid, "借5万", 1, {"lang": "zh", "seq": 1}),)
    retry = service.record_borrower_message(sid, "借5万", "c-1")
    assert retry.route == "duplicate" and retry.effects == () and retry.message.seq == 1
    with store.read() as conn:
        assert len(repo.messages_since(conn, sid, 0)) == 1


@pytest.mark.parametrize("text", ["", "   ", "长" * 2001, None])
def test_bad_borrower_text_stores_nothing(service: HandoffService, store: Store,
                                          text: Any) -> None:
    sid = service.open_session(None, None).session.session_id
    with pytest.raises(ValidationError):
        service.record_borrower_message(sid, text)
    with store.read() as conn:
        assert repo.messages_since(conn, sid, 0) == []
        assert repo.require_session(conn, sid).last_seq == 0


def test_max_length_message_is_accepted(service: HandoffService) -> None:
    sid = service.open_session(None, None).session.session_id
    assert service.record_borrower_message(sid, "长" * 2000).route == "bot"


def test_unknown_session(service: HandoffService) -> None:
    with pytest.raises(NotFound):
        service.record_borrower_message("nope" * 6, "你好")


def test_rate_limit_stores_nothing(store: Store, policy: Policy, tmp_path: Any,
                                   clock: FakeClock) -> None:
    settings = Settings.from_env({"HANDOFF_VAR_DIR": str(tmp_path / "v2"),
                                  "HANDOFF_BORROWER_RATE": "2/60"})
    service = HandoffService(store, policy, settings, clock)
    sid = service.open_session(None, None).session.session_id
    service.record_borrower_message(sid, "1")
    service.record_borrower_message(sid, "2", "c2")
    with pytest.raises(RateLimited):
        service.record_borrower_message(sid, "3")
    # a retry of an already stored message is not a new message and is not limited
    assert service.record_borrower_message(sid, "2", "c2").route == "duplicate"
    assert [m.text for m in service.history_since(sid, 0)] == ["1", "2"]


# --- bot replies and handoff ---------------------------------------------------------------


def test_bot_replies_are_stored_and_relayed(service: HandoffService) -> None:
    sid = service.open_session(None, None).session.session_id
    service.record_borrower_message(sid, "还款方式")
    buttons = [{"title": "等额本息", "payload": "/choose"}]
    result = service.accept_bot_replies(sid, [
        {"recipient_id": sid, "text": "请选择还款方式", "buttons": buttons},
        {"recipient_id": sid, "custom": {"schedule": {"rows": []}}},
        {"recipient_id": sid},  # nothing to show
    ])
    assert [m.seq for m in result.stored] == [2, 3] and not result.handed_off
    sent = borrower_events(result.effects, "message", sid)
    assert sent[0]["text"] == "请选择还款方式" and sent[0]["payload"] == {"buttons": buttons}
    assert sent[1]["payload"] == {"custom": {"schedule": {"rows": []}}}


def test_handoff_signal_queues_and_drops_the_rest(agents: HandoffService,
                                                  store: Store) -> None:
    service = agents
    sid = service.open_session(None, "user-1").session.session_id
    service.record_borrower_message(sid, "有人冒用我的身份借款")
    result = service.accept_bot_replies(sid, [{"text": "正在为您转接人工"}, FRAUD,
                                              {"text": "还有什么可以帮您？"}])
    assert result.handed_off and result.dropped == 1
    view = service.session(sid)
    assert (view.state, view.reason, view.routing_key, view.skill, view.episode) == (
        "queued", "sensitive_intent", "report_fraud", "fraud", 1)
    status = borrower_events(result.effects, "status", sid)[-1]
    assert status["queue_position"] == 1 and status["eta_seconds"] == 0
    assert agent_events(result.effects, "queue", "fred")[-1]["entries"][0]["session_id"] == sid
    assert agent_events(result.effects, "queue", "gina")[-1]["entries"] == []  # no fraud skill
    with store.read() as conn:
        texts = [m.text for m in repo.messages_since(conn, sid, 0)]
        first = repo.messages_since(conn, sid, 0)[0]
    assert "还有什么可以帮您？" not in texts
    assert (first.intent, first.confidence) == ("report_fraud", 0.93)
    assert borrower_events(result.effects, "callback_offer") == []


def test_late_bot_reply_after_claim_is_dropped(agents: HandoffService, store: Store) -> None:
    service = agents
    sid = queued(service)
    service.claim("gina", sid)
    with store.read() as conn:
        before = repo.require_session(conn, sid).last_seq
    late = service.accept_bot_replies(sid, [{"text": "迟到的机器人回复"}])
    assert late.dropped == 1 and late.stored == () and late.effects == ()
    with store.read() as conn:
        assert repo.require_session(conn, sid).last_seq == before


def test_bot_unavailable_queues_for_general(agents: HandoffService) -> None:
    service = agents
    sid = service.open_session(None, None).session.session_id
    service.record_borrower_message(sid, "你好")
    result = service.bot_unavailable(sid, "connection refused")
    assert result.handed_off
    view = service.session(sid)
    assert (view.state, view.reason, view.skill) == ("queued", "bot_unavailable", "general")
    assert borrower_events(result.effects, "message", sid)[0]["text"] == Texts.BOT_UNAVAILABLE
    assert service.bot_unavailable(sid).handed_off is False  # already queued: no-op


@pytest.mark.parametrize("replies", [[], [{"text": "  "}], ["not a reply"]])
def test_a_silent_bot_turn_is_handed_off_not_left_unanswered(
    agents: HandoffService, replies: list[Any]
) -> None:
    """Rasa swallows a failed custom action (action server down) and answers nothing."""
    service = agents
    sid = service.open_session(None, None).session.session_id
    service.record_borrower_message(sid, "利率多少")
    result = service.accept_bot_replies(sid, replies)
    assert result.handed_off and result.stored == ()
    view = service.session(sid)
    assert (view.state, view.reason) == ("queued", "bot_unavailable")
    assert [m["text"] for m in borrower_events(result.effects, "message", sid)] == [
        Texts.BOT_UNAVAILABLE]


def test_request_handoff_outside_bot_mode_is_illegal(agents: HandoffService) -> None:
    sid = queued(agents)
    with pytest.raises(IllegalTransition):
        agents.request_handoff(sid, HandoffSignal("unresolved_turns"), "bot")


def test_callback_offered_without_agents_and_outside_hours(service: HandoffService,
                                                           clock: FakeClock) -> None:
    sid = queued(service)
    result_offer = borrower_events(
        service.accept_bot_replies(sid, []).effects, "callback_offer")
    assert result_offer == []  # nothing new for an empty batch
    status = service.open_session(sid, "user-1").status
    assert status.state == "queued" and status.eta_seconds is None
    assert status.text == Texts.WAIT_UNKNOWN
    clock.now = datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc)  # 22:00 in Shanghai
    sid2 = service.open_session(None, "user-2").session.session_id
    service.record_borrower_message(sid2, "转人工")
    offers = borrower_events(service.accept_bot_replies(sid2, [UNRESOLVED]).effects,
                             "callback_offer", sid2)
    assert offers[0]["reason"] == "outside_hours" and "09:00-21:00" in offers[0]["text"]


def test_no_agent_callback_offer(service: HandoffService) -> None:
    sid = service.open_session(None, None).session.session_id
    service.record_borrower_message(sid, "转人工")
    offers = borrower_events(service.accept_bot_replies(sid, [UNRESOLVED]).effects,
                             "callback_offer", sid)
    assert offers[0]["reason"] == "no_agents"


# --- queue, claim, messages ----------------------------------------------------------------


def test_queue_order_positions_and_eta(agents: HandoffService, clock: FakeClock) -> None:
    service = agents
    a = queued(service, "u-a")
    clock.advance(60)
    b = queued(service, "u-b")
    clock.advance(60)
    fraud = queued(service, "u-f", FRAUD)
    snap = service.queue_snapshot("fred")
    assert [e.session_id for e in snap.entries] == [fraud, a, b]
    assert [e.position for e in snap.entries] == [1, 1, 2]
    assert snap.entries[1].waiting_seconds == 120
    assert [e.session_id for e in service.queue_snapshot("gina").entries] == [a, b]
    assert [e.session_id for e in service.queue_snapshot("boss").entries] == [fraud, a, b]
    # fill gina (2) and fred (3) slots of general: then b must wait one typical handle time
    for i in range(5):
        service.claim("gina" if i < 2 else "fred", queued(service, f"fill{i}"))
    status = service.open_session(b, "u-b").status
    assert status.queue_position == 2
    assert status.eta_seconds == 300  # default typical handle time, one wave
    assert "1位用户" in (status.text or "")


def test_claim_rules(agents: HandoffService) -> None:
    service = agents
    fraud = queued(service, "u-f", FRAUD)
    with pytest.raises(PermissionDenied):
        service.claim("gina", fraud)
    with pytest.raises(PermissionDenied):
        service.transcript_for_agent("gina", fraud)
    result = service.claim("fred", fraud)
    assert result.session.agent_id == "fred" and result.session.agent_name == "小赵"
    assert borrower_events(result.effects, "status", fraud)[0]["agent_name"] == "小赵"
    with pytest.raises(AlreadyClaimed):
        service.claim("boss", fraud)
    bot_session = service.open_session(None, None).session.session_id
    with pytest.raises(IllegalTransition):
        service.claim("fred", bot_session)
    service.claim("gina", queued(service, "u1"))
    service.claim("gina", queued(service, "u2"))
    with pytest.raises(CapacityReached):
        service.claim("gina", queued(service, "u3"))
    with pytest.raises(PermissionDenied):
        service.claim("tina", queued(service, "u4"))


def test_conversation_with_agent_is_masked_for_agent_only(agents: HandoffService) -> None:
    service = agents
    sid = queued(service)
    service.claim("gina", sid)
    sent = service.record_borrower_message(sid, "我的卡号6222021234567890", "b-1")
    assert sent.route == "agent"
    to_agent = agent_events(sent.effects, "message", "gina")
    assert to_agent[0]["text"] == "我的卡号************7890"
    assert sent.message.text == "我的卡号6222021234567890"  # the borrower's own ack
    reply = service.agent_message("gina", sid, "收到，请稍等", "a-1")
    assert reply.route == "borrower"
    assert borrower_events(reply.effects, "message", sid)[0]["display_name"] == "小王"
    assert service.agent_message("gina", sid, "收到，请稍等", "a-1").route == "duplicate"
    with pytest.raises(NotSessionHolder):
        service.agent_message("fred", sid, "我来插话")
    with pytest.raises(ConflictError):
        service.agent_message("gina", sid, "x", "b-1")  # a borrower's client id
    history = service.history_since(sid, sent.message.seq - 1)
    assert [m.text for m in history] == ["我的卡号6222021234567890", "收到，请稍等"]


def test_transcript_masks_and_includes_earlier_sessions(agents: HandoffService) -> None:
    service = agents
    old = queued(service, "user-9", text="我的手机13812345678")
    service.claim("gina", old)
    service.note("gina", old, "客户身份证11010119900307123X")
    service.close("gina", old, "resolved")
    new = queued(service, "user-9", FRAUD, text="又被冒用了")
    with pytest.raises(NotSessionHolder):
        service.note("gina", new, "x")  # gina cannot hold or see it
    transcript = service.claim("fred", new).transcript
    assert transcript.session.reason == "sensitive_intent"
    assert transcript.slots == {"phone": "138****5678", "amount": 50000}
    assert transcript.messages[0].intent == "report_fraud"
    assert transcript.messages[0].confidence == 0.93
    assert transcript.earlier[0].text == "我的手机138****5678"
    assert transcript.notes[0].text == "客户身份证**************123X"
    assert [t.event for t in transcript.transitions] == ["handoff_requested", "claimed"]
    assert transcript.transitions[1].actor == "agent:fred"
    assert service.transcript_for_agent("tina", new).slots["phone"] == "138****5678"
    # another identity's transcript does not leak into this one
    other = queued(service, "user-10", text="别人的消息")
    assert service.transcript_for_agent("gina", other).earlier == ()


# --- closing, CSAT, returning --------------------------------------------------------------


def test_close_resolved_csat_and_borrower_returns(agents: HandoffService) -> None:
    service = agents
    sid = queued(service)
    service.claim("gina", sid)
    with pytest.raises(ConflictError):
        service.rate(sid, 5)  # nothing to rate while being served
    closed = service.close("gina", sid, "resolved")
    assert closed.session.state == "closed"
    assert borrower_events(closed.effects, "csat_request", sid)[0]["episode"] == 1
    assert agent_events(closed.effects, "session_ended", "gina")[0]["reason"] == "closed"
    with pytest.raises(ValidationError):
        service.rate(sid, 6)
    rated = service.rate(sid, 5, "很好，电话13812345678")
    assert agent_events(rated.effects, "csat", "gina")[0]["comment"] == "很好，电话138****5678"
    with pytest.raises(ConflictError):
        service.rate(sid, 4)
    back = service.record_borrower_message(sid, "我还有问题")
    assert back.route == "bot"
    assert isinstance(back.effects[0], ToRasa) and back.effects[0].events == RESUME_EVENTS
    assert isinstance(back.effects[1], ToRasaMessage)
    assert service.session(sid).state == "bot"


def test_return_to_bot_then_handoff_again(agents: HandoffService) -> None:
    service = agents
    sid = queued(service)
    service.claim("gina", sid)
    result = service.close("gina", sid, "return_to_bot")
    rasa = [e for e in result.effects if isinstance(e, ToRasa)]
    assert rasa == [ToRasa(sid, (
        {"event": "resume"}, {"event": "slot", "name": "unresolved_turns", "value": 0}))]
    assert service.session(sid).state == "bot"
    assert service.record_borrower_message(sid, "再问一个").route == "bot"
    again = service.accept_bot_replies(sid, [UNRESOLVED])
    assert again.handed_off and service.session(sid).episode == 2
    with pytest.raises(IllegalTransition):
        service.close("boss", sid, "return_to_bot")  # queued cannot go back to the bot
    closed = service.close("boss", sid, "resolved")  # a supervisor may close a waiting one
    assert closed.session.state == "closed"
    assert borrower_events(closed.effects, "csat_request") == []  # nobody served this episode
    with pytest.raises(ConflictError):
        service.rate(sid, 5)


def test_only_holder_or_supervisor_closes(agents: HandoffService) -> None:
    service = agents
    sid = queued(service)
    service.claim("gina", sid)
    with pytest.raises(NotSessionHolder):
        service.close("fred", sid, "resolved")
    with pytest.raises(ValidationError):
        service.close("gina", sid, "whatever")  # type: ignore[arg-type]
    assert service.close("boss", sid, "resolved").session.state == "closed"


# --- transfer ----------------------------------------------------------------------------


def test_transfer_to_skill_keeps_waiting_time(agents: HandoffService, clock: FakeClock) -> None:
    service = agents
    sid = queued(service)
    waited_since = service.session(sid).waiting_since
    clock.advance(100)
    service.claim("gina", sid)
    clock.advance(50)
    result = service.transfer("gina", sid, to_skill="fraud")
    view = result.session
    assert (view.state, view.skill, view.agent_id) == ("queued", "fraud", None)
    assert view.waiting_since == waited_since
    assert agent_events(result.effects, "session_ended", "gina")[0]["reason"] == "transferred"
    assert [e.session_id for e in service.queue_snapshot("fred").entries] == [sid]
    with pytest.raises(ValidationError):
        service.transfer("fred", sid, to_skill="astrology")
    with pytest.raises(ValidationError):
        service.transfer("fred", sid)


def test_transfer_to_agent(agents: HandoffService) -> None:
    service = agents
    sid = queued(service)
    service.claim("gina", sid)
    with pytest.raises(ConflictError):
        service.transfer("gina", sid, to_agent="boss")  # boss is not online
    result = service.transfer("gina", sid, to_agent="fred")
    assert result.session.agent_id == "fred" and result.session.state == "assigned"
    assigned = agent_events(result.effects, "assigned", "fred")
    assert assigned[0]["session"]["session_id"] == sid
    assert borrower_events(result.effects, "message", sid)[-1]["text"] == "已为您转接至客服小赵。"
    with pytest.raises(NotSessionHolder):
        service.agent_message("gina", sid, "还在吗")
    events = [t.event for t in service.transcript_for_agent("fred", sid).transitions]
    assert events[-2:] == ["transferred", "claimed"]


# --- presence, grace, requeue --------------------------------------------------------------


def test_agent_lost_after_grace_goes_to_front(agents: HandoffService, clock: FakeClock) -> None:
    service = agents
    lost = queued(service, "u-lost")
    service.claim("fred", lost)
    clock.advance(10)
    fraud = queued(service, "u-fraud", FRAUD)
    service.agent_disconnected("fred")
    clock.advance(29)
    assert service.tick() == ()
    assert service.session(lost).agent_id == "fred"
    clock.advance(2)
    effects = service.tick()
    view = service.session(lost)
    assert (view.state, view.requeued_front, view.agent_id) == ("queued", True, None)
    assert borrower_events(effects, "message", lost)[-1]["text"] == Texts.AGENT_LOST
    assert agent_events(effects, "session_ended", "fred")[0]["reason"] == "lost"
    assert service.tick() == ()
    service.agent_connected("fred")
    assert [e.session_id for e in service.queue_snapshot("fred").entries] == [lost, fraud]
    assert service.claim("fred", lost).session.requeued_front is False


def test_reconnect_within_grace_keeps_sessions(agents: HandoffService,
                                               clock: FakeClock) -> None:
    service = agents
    sid = queued(service)
    service.claim("gina", sid)
    service.agent_disconnected("gina")
    clock.advance(20)
    connected = service.agent_connected("gina")
    assert [t.session.session_id for t in connected.held] == [sid]
    assert connected.snapshot.held == (sid,)
    clock.advance(60)
    assert service.tick() == ()
    assert service.session(sid).agent_id == "gina"


def test_logging_off_requeues_at_once(agents: HandoffService) -> None:
    service = agents
    sid = queued(service)
    service.claim("gina", sid)
    effects = service.agent_presence("gina", "offline")
    assert service.session(sid).state == "queued"
    assert agent_events(effects, "session_ended", "gina")
    with pytest.raises(ValidationError):
        service.agent_presence("gina", "asleep")  # type: ignore[arg-type]


def test_away_agents_do_not_count_for_eta(agents: HandoffService) -> None:
    service = agents
    service.agent_presence("gina", "away")
    service.agent_presence("fred", "away")
    sid = queued(service)
    assert service.open_session(sid, "user-1").status.eta_seconds is None


# --- callbacks ---------------------------------------------------------------------------


def test_book_and_list_callbacks(agents: HandoffService) -> None:
    service = agents
    sid = queued(service)
    start = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)  # 10:00 Shanghai tomorrow
    booked = service.book_callback(sid, "+86 138-1234-5678", start, start + timedelta(hours=1))
    assert booked.phone_masked == "138****5678" and booked.phone is None
    assert service.list_callbacks("gina")[0].phone is None
    assert service.list_callbacks("boss")[0].phone == "13812345678"
    done = service.set_callback_status("boss", booked.id, "done")
    assert done.status == "done" and service.list_callbacks("gina") == ()
    assert len(service.list_callbacks("gina", None)) == 1
    with pytest.raises(PermissionDenied):
        service.list_callbacks("tina")
    with pytest.raises(NotFound):
        service.set_callback_status("boss", 999, "done")


@pytest.mark.parametrize(
    ("phone", "start_hour_utc", "hours"),
    [
        ("12345678901", 2, 1),  # not a mobile
        ("1381234567", 2, 1),  # too short
        ("13812345678", 14, 1),  # 22:00 Shanghai: outside hours
        ("13812345678", 12, 2),  # ends 22:00
        ("13812345678", -30, 1),  # in the past
    ],
)
def test_bad_callbacks_rejected(agents: HandoffService, phone: str, start_hour_utc: int,
                                hours: int) -> None:
    sid = queued(agents)
    start = datetime(2026, 11, 24, 0, 0, tzinfo=timezone.utc) + timedelta(hours=start_hour_utc)
    with pytest.raises(ValidationError):
        agents.book_callback(sid, phone, start, start + timedelta(hours=hours))
    assert agents.list_callbacks("boss", None) == ()


def test_normalise_mobile() -> None:
    assert normalise_mobile("0086 139 8765 4321") == "13987654321"
    with pytest.raises(ValidationError):
        normalise_mobile("+1 415 555 0100")


# --- auth --------------------------------------------------------------------------------


def test_login_and_tokens(agents: HandoffService, clock: FakeClock) -> None:
    service = agents
    login = service.login("gina", PASSWORD)
    assert login.agent.display_name == "小王"
    assert service.agent_from_token(login.token).agent_id == "gina"
    with pytest.raises(AuthError):
        service.login("gina", "wrong password")
    with pytest.raises(AuthError):
        service.login("nobody", PASSWORD)
    clock.advance(8 * 3600 + 1)
    with pytest.raises(AuthError):
        service.agent_from_token(login.token)


def test_create_agent_validation(service: HandoffService) -> None:
    with pytest.raises(ValidationError):
        service.create_agent("ab", "名字", PASSWORD, ["general"])
    with pytest.raises(ValidationError):
        service.create_agent("valid", "名字", PASSWORD, ["genral"])
    with pytest.raises(ValidationError):
        service.create_agent("valid", "名字", PASSWORD, [])
    with pytest.raises(ValidationError):
        service.create_agent("valid", "名字", PASSWORD, ["general"], role="king")
    service.create_agent("valid", "名字", PASSWORD, ["general"])
    with pytest.raises(ConflictError):
        service.create_agent("valid", "名字", PASSWORD, ["general"])
    assert [a.agent_id for a in service.list_agents()] == ["valid"]


def test_every_transition_is_audited(agents: HandoffService, store: Store) -> None:
    service = agents
    sid = queued(service)
    service.claim("gina", sid)
    service.close("gina", sid, "return_to_bot")
    with store.read() as conn:
        audit = repo.transitions_of(conn, sid)
    assert [(t.from_state, t.to_state, t.event, t.actor) for t in audit] == [
        ("bot", "queued", "handoff_requested", "bot"),
        ("queued", "assigned", "claimed", "agent:gina"),
        ("assigned", "bot", "returned_to_bot", "agent:gina"),
    ]
    assert "unresolved_turns" in (audit[0].reason or "")


def test_annotate_message_and_history_validation(service: HandoffService) -> None:
    sid = service.open_session(None, None).session.session_id
    seq = service.record_borrower_message(sid, "利率多少").message.seq
    service.annotate_message(sid, seq, "ask_interest_rate", 0.88)
    history = service.history_since(sid, 0)
    assert (history[0].intent, history[0].confidence) == ("ask_interest_rate", 0.88)
    with pytest.raises(ValidationError):
        service.annotate_message(sid, seq, "ask_interest_rate", 1.5)
    with pytest.raises(NotFound):
        service.annotate_message(sid, seq + 5, "ask_interest_rate", 0.5)
    with pytest.raises(ValidationError):
        service.history_since(sid, -1)
    assert service.history_since(sid, seq) == ()


def test_traditional_writer_gets_traditional_gateway_texts(agents: HandoffService) -> None:
    service = agents
    sid = service.open_session(None, "user-tw").session.session_id
    service.record_borrower_message(sid, "我要轉人工客服，謝謝")
    result = service.accept_bot_replies(sid, [UNRESOLVED])
    system = borrower_events(result.effects, "message", sid)[0]["text"]
    assert "轉接" in system and "转接" not in system
    claimed = service.claim("gina", sid)
    assert "爲您服務" in borrower_events(claimed.effects, "message", sid)[0]["text"] or (
        "為您服務" in borrower_events(claimed.effects, "message", sid)[0]["text"])
    closed = service.close("gina", sid, "resolved")
    assert "服務" in borrower_events(closed.effects, "csat_request", sid)[0]["text"]
    # a Simplified writer keeps Simplified
    other = queued(service, "user-cn")
    assert service.open_session(other, "user-cn").status.text == Texts.WAIT_SOON


def test_recover_after_restart_starts_grace_for_everyone(agents: HandoffService,
                                                         clock: FakeClock) -> None:
    service = agents
    kept = queued(service, "u-kept")
    lost = queued(service, "u-lost")
    service.claim("gina", kept)
    service.claim("fred", lost)
    assert service.recover_after_restart() == 2  # gina and fred were online
    assert {a.agent_id: a.presence for a in service.list_agents()}["gina"] == "offline"
    clock.advance(10)
    service.agent_connected("gina")  # back within the grace period
    clock.advance(25)
    effects = service.tick()
    assert service.session(kept).agent_id == "gina"
    assert service.session(lost).state == "queued" and service.session(lost).requeued_front
    assert agent_events(effects, "queue", "gina")  # gina sees the requeued session


# --- the handoff notice --------------------------------------------------------------------


def _notices(service: HandoffService, sid: str) -> list[str]:
    return [m.text for m in service.history_since(sid, 0) if Texts.QUEUED in m.text
            or "转接人工" in m.text]


def test_bot_notice_is_not_repeated_by_the_gateway(service: HandoffService) -> None:
    sid = service.open_session(None, "user-1").session.session_id
    service.record_borrower_message(sid, "有人冒充你们客服")
    result = service.accept_bot_replies(sid, [{"text": "正在为您转接人工客服"}, FRAUD])
    assert result.handed_off
    assert _notices(service, sid) == ["正在为您转接人工客服"]


def test_gateway_announces_a_silent_bot_handoff(service: HandoffService) -> None:
    sid = service.open_session(None, "user-1").session.session_id
    service.record_borrower_message(sid, "有人冒充你们客服")
    result = service.accept_bot_replies(sid, [FRAUD])
    assert result.handed_off
    assert _notices(service, sid) == [Texts.QUEUED]
