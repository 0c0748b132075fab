"""A scaffolded (non-sensitive) intent is answered by action_chitchat with the template of its
name, in the borrower's script; an intent without a template still gets the greeting."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actions import common
from actions.conversation import ActionChitchat
from tests.unit.dialogue.helpers import make_tracker, run_action, texts

ANSWER = "您可以在APP我的设置中申请注销账户。"


@pytest.fixture
def with_template(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = common.load_texts()
    patched = {**real, "close_account": [{"text": ANSWER}]}
    monkeypatch.setattr("actions.conversation.load_texts", lambda: patched)
    monkeypatch.setattr("actions.common.load_texts", lambda: patched)
    yield


@pytest.mark.usefixtures("with_template", "loan_db")
@pytest.mark.parametrize(("text", "expected"), [
    ("怎么注销账户", ANSWER),
    ("怎麼註銷賬戶", "您可以在APP我的設置中申請註銷賬戶。"),
])
def test_new_intent_gets_its_template(text: str, expected: str, domain: dict[str, Any]
                                      ) -> None:
    messages, _ = run_action(ActionChitchat(), make_tracker(text, "close_account"), domain)
    assert texts(messages) == [expected]


@pytest.mark.usefixtures("loan_db")
def test_intent_without_template_gets_the_greeting(domain: dict[str, Any]) -> None:
    messages, _ = run_action(ActionChitchat(), make_tracker("随便", "no_such_intent"), domain)
    assert texts(messages) == [common.render_template("greet")[0]]
