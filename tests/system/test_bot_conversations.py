"""The real trained bot over Rasa's REST channel: answers, follow-ups and the handoff signal.

These run the model `make test` trained, the real action server and a freshly seeded loan
store, exactly as the gateway talks to them.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
import requests

from tests.stack import BotStack

pytestmark = [pytest.mark.needs_model, pytest.mark.integration]


def say(bot: BotStack, sender: str, text: str) -> list[dict[str, Any]]:
    response = requests.post(
        f"{bot.rasa.url}/webhooks/rest/webhook",
        json={"sender": sender, "message": text},
        timeout=60,
    )
    response.raise_for_status()
    replies = response.json()
    assert isinstance(replies, list)
    return replies


def texts(replies: list[dict[str, Any]]) -> str:
    return "\n".join(r.get("text", "") for r in replies if r.get("text"))


def handoff_of(replies: list[dict[str, Any]]) -> dict[str, Any] | None:
    for reply in replies:
        custom = reply.get("custom")
        if isinstance(custom, dict) and "handoff" in custom:
            return dict(custom["handoff"])
    return None


def new_sender() -> str:
    return f"test-{uuid.uuid4().hex}"


def resume(bot: BotStack, sender: str) -> None:
    response = requests.post(
        f"{bot.rasa.url}/conversations/{sender}/tracker/events",
        params={"token": bot.rasa_token},
        json=[{"event": "resume"}, {"event": "slot", "name": "unresolved_turns", "value": 0}],
        timeout=30,
    )
    response.raise_for_status()


def test_greets_in_chinese(bot: BotStack) -> None:
    reply = texts(say(bot, new_sender(), "你好"))
    assert re.search(r"[\u4e00-\u9fff]", reply), reply


def test_admits_being_a_bot(bot: BotStack) -> None:
    reply = texts(say(bot, new_sender(), "你是机器人吗"))
    assert any(word in reply for word in ("机器人", "智能", "AI")), reply


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("我要转人工", "request_human"),
        ("你们催收天天打电话骚扰我家人，我要投诉", "complaint"),
        ("我失业了这个月实在还不上了，能不能延期", "negotiate_repayment"),
        ("有人冒充你们客服让我转账，我是不是被骗了", "report_fraud"),
        ("我想换绑一张还款银行卡", "change_account_info"),
    ],
)
def test_sensitive_intent_hands_off_at_once_and_pauses(
    bot: BotStack, text: str, intent: str
) -> None:
    sender = new_sender()
    replies = say(bot, sender, text)
    handoff = handoff_of(replies)
    assert handoff is not None, replies
    assert handoff["reason"] == "sensitive_intent"
    assert handoff["intent"] == intent
    assert "人工" in texts(replies) or "客服" in texts(replies)
    # Paused: the bot stays silent until the gateway resumes the conversation.
    assert say(bot, sender, "你好") == []


UNRESOLVED = ["给我讲个笑话吧", "今天北京天气怎么样", "推荐一只能涨的股票"]


def test_three_unresolved_turns_hand_off(bot: BotStack) -> None:
    sender = new_sender()
    assert handoff_of(say(bot, sender, UNRESOLVED[0])) is None
    assert handoff_of(say(bot, sender, UNRESOLVED[1])) is None
    handoff = handoff_of(say(bot, sender, UNRESOLVED[2]))
    assert handoff is not None
    assert handoff["reason"] == "unresolved_turns"
    assert handoff["unresolved_turns"] == 3


def test_a_resolved_turn_resets_the_unresolved_count(bot: BotStack) -> None:
    sender = new_sender()
    say(bot, sender, UNRESOLVED[0])
    say(bot, sender, UNRESOLVED[1])
    answered = say(bot, sender, "信用贷的年化利率是多少")
    assert "年化" in texts(answered)
    assert handoff_of(say(bot, sender, UNRESOLVED[2])) is None
    assert handoff_of(say(bot, sender, UNRESOLVED[0])) is None


def test_resume_after_handoff_then_second_handoff(bot: BotStack) -> None:
    sender = new_sender()
    assert handoff_of(say(bot, sender, "转人工")) is not None
    resume(bot, sender)
    assert texts(say(bot, sender, "你好"))
    assert handoff_of(say(bot, sender, "我要人工客服")) is not None


def _money_values(text: str) -> set[Decimal]:
    return {Decimal(m.replace(",", "")) for m in re.findall(r"\d[\d,]*\.\d{2}", text)}


def _answer_product_question(bot: BotStack, sender: str, replies: list[dict[str, Any]]) -> str:
    """If the bot asks which product, pick 信用贷 by its button; return the answer text."""
    for reply in replies:
        for button in reply.get("buttons") or []:
            if "credit" in str(button.get("payload", "")):
                return texts(say(bot, sender, str(button["payload"])))
    return texts(replies)


def test_repayment_numbers_are_exact(bot: BotStack) -> None:
    from actions.finance.schedule import build_schedule
    from actions.store.repository import LoanRepository

    sender = new_sender()
    first = say(bot, sender, "借5万分12期等额本息每月还多少")
    answer = _answer_product_question(bot, sender, first)
    product = LoanRepository(bot.loan_db_url).get_product("credit")
    assert product is not None
    expected = build_schedule(50000, product.apr, 12, "equal_installment")
    values = _money_values(answer)
    assert expected.first_payment in values, answer
    assert expected.total_interest in values, answer

    follow_up = texts(say(bot, sender, "那36期呢"))
    longer = build_schedule(50000, product.apr, 36, "equal_installment")
    assert longer.first_payment in _money_values(follow_up), follow_up

    switched = texts(say(bot, sender, "换成等额本金"))
    principal_first = build_schedule(50000, product.apr, 36, "equal_principal")
    assert principal_first.first_payment in _money_values(switched), switched


def test_traditional_in_traditional_out(bot: BotStack) -> None:
    from bot.text import detect_script

    reply = texts(say(bot, new_sender(), "請問信用貸的年化利率是多少"))
    assert reply
    assert detect_script(reply) == "traditional", reply
