"""Compliance rules for agent messages (handoff/compliance.py, config/compliance.yml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from handoff.canned import load_canned
from handoff.compliance import Compliance, ComplianceBlocked, compact
from handoff.errors import ConfigError


@pytest.fixture(scope="module")
def rules() -> Compliance:
    return Compliance.load()


@pytest.mark.parametrize("text, rule", [
    ("我们这个包过的", "promise_approval"),
    ("保证下款，放心申请", "promise_approval"),
    ("百分百通过", "promise_approval"),
    ("１００％通过", "promise_approval"),            # full-width digits and percent
    ("我們包過", "promise_approval"),                # Traditional
    ("保 证 下 款", "promise_approval"),             # spaced out
    ("再不还就爆你通讯录", "threat_collection"),
    ("明天我们上门找你", "threat_collection"),
    ("我们会起诉你家人", "threat_collection"),
    ("请提供您的完整银行卡号", "ask_full_card"),
    ("身份证号全部发一下", "ask_full_card"),
    ("把验证码告诉我", "ask_secret"),
    ("请报一下您的登录密码", "ask_secret"),
    ("卡背面的ＣＶＶ发我", "ask_secret"),
])
def test_blocked_phrases(rules: Compliance, text: str, rule: str) -> None:
    verdict = rules.check(text)
    assert verdict.blocked, text
    assert rule in {h.rule_id for h in verdict.hits}
    with pytest.raises(ComplianceBlocked) as caught:
        rules.enforce(text)
    assert caught.value.code == "compliance_blocked"
    assert caught.value.message_zh.startswith("消息未发送：")


def test_warn_rules_pass_with_reason(rules: Compliance) -> None:
    verdict = rules.enforce("这款产品零利息")
    assert not verdict.blocked
    assert [h.rule_id for h in verdict.warnings] == ["rate_claims"]
    assert "绝对化用语" in verdict.reason


@pytest.mark.parametrize("text", [
    "您好，请问有什么可以帮您？",
    "请勿向任何人透露验证码",
    "您的申请正在审核中，结果以系统为准",
    "请提供卡号后四位",
    "提前还款按实际天数计息",
])
def test_ordinary_replies_pass(rules: Compliance, text: str) -> None:
    assert rules.check(text).hits == ()


def test_block_reason_lists_each_rule_once(rules: Compliance) -> None:
    verdict = rules.check("包过！保证下款！不还就上门")
    assert verdict.blocked
    assert verdict.reason.count("不得承诺审批") == 1
    assert "暴力催收" in verdict.reason


def test_compact_normalises() -> None:
    assert compact("  包 過！ＡＢＣ ") == "包过abc"


@pytest.mark.parametrize("body, message", [
    ("rules: 3", "rules"),
    ("rules:\n  - {id: x, action: ban, reason: 原因, phrases: [a]}", "block or warn"),
    ("rules:\n  - {id: x, action: block, phrases: [a]}", "reason"),
    ("rules:\n  - {id: x, action: block, reason: 原因}", "no phrases"),
    ("rules:\n  - {id: x, action: block, reason: 原因, patterns: ['(']}", "bad pattern"),
])
def test_bad_config_is_refused(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "c.yml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        Compliance.load(path)


def test_shipped_canned_replies_pass_compliance(rules: Compliance) -> None:
    replies = load_canned(compliance=rules)
    assert len(replies) >= 5
    assert len({r.shortcut for r in replies}) == len(replies)
    for reply in replies:
        assert not rules.check(reply.text).blocked


def test_canned_reply_breaking_a_rule_is_a_config_error(tmp_path: Path,
                                                         rules: Compliance) -> None:
    path = tmp_path / "canned.yml"
    path.write_text("replies:\n  - {shortcut: a, title: 承诺, text: 我们包过}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="compliance"):
        load_canned(path, compliance=rules)
    path.write_text("replies:\n  - {shortcut: a, title: t, text: x}\n"
                    "  - {shortcut: a, title: t2, text: y}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate"):
        load_canned(path)
