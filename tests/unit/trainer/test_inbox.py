"""The trainer inbox over real gateway transcripts: what counts as unresolved or handoff,
grouping by normalised text, masking, predictions, the NLU YAML export and export marks."""

from __future__ import annotations

from typing import Any

import pytest

from bot.text import to_script
from bot.trainer.inbox import (
    build_inbox,
    mark_exported,
    normalised_key,
    to_nlu_yaml,
    unresolved_reply_texts,
)
from handoff.service import HandoffService
from handoff.store import Store
from tests.unit.handoff.conftest import FakeClock

UNRESOLVED = "抱歉，我没有理解您的意思。您可以换个说法，或选择下面的问题："
NOT_HELPFUL = "抱歉没能帮到您。您可以换个说法再问一次，或选择下面的问题："
ANSWER = {"text": "信用贷年化利率7.2%起，具体以审批结果为准。"}


def handoff_reply(reason: str, intent: str, confidence: float) -> dict[str, Any]:
    return {"custom": {"handoff": {"reason": reason, "intent": intent,
                                   "confidence": confidence, "unresolved_turns": 0}}}


def turn(service: HandoffService, sid: str, text: str, *replies: dict[str, Any],
         clock: FakeClock | None = None) -> None:
    service.record_borrower_message(sid, text)
    service.accept_bot_replies(sid, list(replies))
    if clock is not None:
        clock.advance(1)


def new_session(service: HandoffService, identity: str) -> str:
    return service.open_session(None, identity).session.session_id


def test_reply_texts_come_from_the_domain() -> None:
    texts = unresolved_reply_texts()
    assert normalised_key(UNRESOLVED) in {normalised_key(t) for t in texts}
    assert normalised_key(NOT_HELPFUL) in {normalised_key(t) for t in texts}


@pytest.mark.parametrize(("a", "b"), [
    ("公积金能提前还吗？？", "公积金能提前还吗"),
    ("公積金能提前還嗎", "公积金能提前还吗"),
    ("ＡＢＣ  贷款 😊", "abc 贷款"),
])
def test_normalised_key_groups_variants(a: str, b: str) -> None:
    assert normalised_key(a) == normalised_key(b)


def test_unresolved_and_handoff_turns_are_collected_grouped_and_masked(
    service: HandoffService, store: Store
) -> None:
    one, two, three, four = (new_session(service, f"user-{i}") for i in range(4))
    turn(service, one, "公积金能提前还吗？", {"text": UNRESOLVED})
    turn(service, one, "利率多少", ANSWER)  # understood: not in the inbox
    # the same question in Traditional, answered with the Traditional unresolved text
    turn(service, two, "公積金能提前還嗎", {"text": to_script(UNRESOLVED, "traditional")})
    turn(service, two, "没用", {"text": NOT_HELPFUL})
    turn(service, three, "我要投诉 电话13812345678",
         {"text": "您的问题需要人工客服为您处理，正在为您转接，请稍候。"},
         handoff_reply("sensitive_intent", "complaint", 0.91))
    turn(service, four, "你好", ANSWER)
    service.bot_unavailable(four, "timeout")  # an outage is not an NLU failure

    items = build_inbox(store)
    by_key = {item.key: item for item in items}
    assert set(by_key) == {"公积金能提前还吗", "没用", "我要投诉 电话138****5678"}

    repeated = by_key["公积金能提前还吗"]
    assert (repeated.count, repeated.unresolved, repeated.handoffs) == (2, 2, 0)
    assert len(repeated.sessions) == 2
    assert items[0] is repeated  # most frequent first

    complaint = by_key["我要投诉 电话138****5678"]
    assert complaint.text == "我要投诉 电话138****5678"
    assert (complaint.handoffs, complaint.unresolved) == (1, 0)
    assert complaint.handoff_reasons == {"sensitive_intent": 1}
    assert (complaint.intent, complaint.confidence) == ("complaint", pytest.approx(0.91))
    assert all("13812345678" not in str(item.to_dict()) for item in items)


def test_predictions_fill_only_items_without_an_intent(service: HandoffService,
                                                       store: Store) -> None:
    sid = new_session(service, "user-p")
    turn(service, sid, "能不能延期", {"text": UNRESOLVED})
    turn(service, sid, "转人工", {"text": "正在为您转接"},
         handoff_reply("sensitive_intent", "request_human", 0.99))
    asked: list[list[str]] = []

    def predictor(texts: Any) -> dict[str, tuple[str | None, float | None]]:
        asked.append(list(texts))
        return {t: ("negotiate_repayment", 0.42) for t in texts}

    items = {i.key: i for i in build_inbox(store, predictor=predictor)}
    assert asked == [["能不能延期"]]
    assert (items["能不能延期"].intent, items["能不能延期"].confidence) == (
        "negotiate_repayment", 0.42)
    assert items["转人工"].intent == "request_human"


def test_export_is_rasa_nlu_yaml_and_marks_items(service: HandoffService, store: Store,
                                                  tmp_path: Any) -> None:
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    sid = new_session(service, "user-e")
    turn(service, sid, "你们的APP闪退", {"text": UNRESOLVED})
    turn(service, sid, "我要投诉", {"text": "正在为您转接"},
         handoff_reply("sensitive_intent", "complaint", 0.88))
    items = build_inbox(store)
    text = to_nlu_yaml(items, "batch-1")
    data = RasaYAMLReader().reads(text)
    examples = {(m.get("text"), m.get("intent")) for m in data.intent_examples}
    assert examples == {("你们的APP闪退", "nlu_fallback"), ("我要投诉", "complaint")}

    assert mark_exported(store, items, "batch-1") == 2
    assert build_inbox(store) == []
    again = build_inbox(store, include_exported=True)
    assert {i.exported_batch for i in again} == {"batch-1"}
    assert mark_exported(store, again, "batch-2") == 0  # an item keeps its first batch

    # a new failure after the export shows up again; what the (queued) borrower writes after
    # the handoff, in the same clock tick, is not taken for the handoff trigger
    service.record_borrower_message(sid, "还要等多久")
    other = new_session(service, "user-f")
    turn(service, other, "怎么注销账户", {"text": UNRESOLVED})
    assert [i.key for i in build_inbox(store)] == ["怎么注销账户"]
