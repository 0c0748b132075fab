"""The sensitive-intent safety net: which phrases fire, and when the classifier keeps its say."""

from __future__ import annotations

import pytest
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.components.sensitive_intent_guard import CUE_KEY, apply_guard
from bot.sensitive_cues import CueConfigError, SensitiveCues, should_override
from bot.text import normalise


@pytest.fixture(scope="module")
def cues() -> SensitiveCues:
    return SensitiveCues.from_file()


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("转人工", "request_human"),
        ("给我找个真人", "request_human"),
        ("我要打12378投诉你们", "complaint"),
        ("催收天天打电话给我父母", "complaint"),
        ("这个月实在还不上了", "negotiate_repayment"),
        ("能不能减免一点罚息", "negotiate_repayment"),
        ("有人冒充你们客服让我转账", "report_fraud"),
        ("这笔借款不是我本人操作的", "report_fraud"),
        ("我想换绑一张银行卡", "change_account_info"),
        ("怎么注销账户", "change_account_info"),
        ("中介说能帮我把逾期记录洗白", "report_fraud"),
        ("放款前要先交解冻费才能到账", "report_fraud"),
        ("我要去消协告你们", "complaint"),
        ("我换号了", "change_account_info"),
        (normalise("有人冒充客服騙我，我被騙了"), "report_fraud"),
    ],
)
def test_cues_fire(cues: SensitiveCues, text: str, intent: str) -> None:
    assert cues.match(text) == intent


@pytest.mark.parametrize(
    "text",
    ["信用贷利率多少", "你是真人客服吗", "有没有砍头息", "借5万分12期每月还多少", "", "人",
     "还款3150元", "晚还了几天还能申请消除逾期记录吗", "我告诉你们我的手机号"],
)
def test_cues_stay_quiet_on_ordinary_questions(cues: SensitiveCues, text: str) -> None:
    assert cues.match(text) is None


def test_fraud_outranks_complaint(cues: SensitiveCues) -> None:
    assert cues.match("有人冒充客服骗我，我要投诉") == "report_fraud"


def test_bad_cue_files_fail_loudly() -> None:
    with pytest.raises(CueConfigError):
        SensitiveCues.from_mapping({"complaint": ["(unclosed"]})
    with pytest.raises(CueConfigError):
        SensitiveCues.from_mapping({"complaint": []})
    with pytest.raises(CueConfigError):
        SensitiveCues.from_mapping(["not", "a", "mapping"])


def test_override_rules() -> None:
    assert should_override("complaint", "out_of_scope", 0.99)
    assert should_override("complaint", "ask_rate", 0.6)
    assert not should_override("complaint", "ask_rate", 0.99)
    assert not should_override("complaint", "complaint", 0.2)
    assert not should_override(None, "greet", 0.1)
    sensitive = frozenset({"complaint", "report_fraud"})
    assert should_override("complaint", "report_fraud", 1.0, sensitive)
    assert not should_override("complaint", "report_fraud", 1.0)
    assert not should_override("report_fraud", "ask_overdue", 0.99)
    assert should_override("report_fraud", "ask_overdue", 0.99, always=True)


def _message(text: str, intent: str, confidence: float) -> Message:
    message = Message(data={TEXT: text})
    message.set(INTENT, {"name": intent, "confidence": confidence})
    message.set(INTENT_RANKING_KEY, [
        {"name": intent, "confidence": confidence},
        {"name": "request_human", "confidence": 0.01},
    ])
    return message


def test_guard_reranks_and_marks_the_override(cues: SensitiveCues) -> None:
    message = _message("能帮我叫个客服吗", "out_of_scope", 0.97)
    apply_guard(message, cues)
    assert message.get(INTENT)["name"] == "request_human"
    assert message.get(INTENT)["confidence"] >= 0.95
    ranking = message.get(INTENT_RANKING_KEY)
    assert ranking[0]["name"] == "request_human"
    assert [r["name"] for r in ranking].count("request_human") == 1
    assert message.get(CUE_KEY) == "request_human"


def test_guard_leaves_confident_informational_predictions(cues: SensitiveCues) -> None:
    message = _message("如果还不上会上征信吗", "ask_overdue", 0.99)
    apply_guard(message, cues)
    assert message.get(INTENT)["name"] == "ask_overdue"
    assert message.get(CUE_KEY) is None


def test_always_cues_win_over_confident_informational_predictions(cues: SensitiveCues) -> None:
    message = _message("有人自称你们客服让我把钱转到安全账户", "ask_repayment", 1.0)
    apply_guard(message, cues)
    assert message.get(INTENT)["name"] == "report_fraud"
    message = _message("这个月被多扣了一期钱", "ask_repayment", 1.0)
    apply_guard(message, cues)
    assert message.get(INTENT)["name"] == "complaint"


def test_always_flag_round_trips_through_the_model_file(cues: SensitiveCues) -> None:
    again = SensitiveCues.from_mapping(cues.to_mapping())
    assert again == cues
    assert any(c.always for c in again.rules) and not all(c.always for c in again.rules)
    with pytest.raises(CueConfigError):
        SensitiveCues.from_mapping({"complaint": [{"sometimes": "投诉"}]})
