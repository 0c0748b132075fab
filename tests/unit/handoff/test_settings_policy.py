"""Settings from HANDOFF_* variables and the policy file: defaults, and loud failures."""

from __future__ import annotations

import os
import stat
from datetime import datetime, time, timezone
from pathlib import Path

import pytest

from handoff.errors import ConfigError, RateLimited
from handoff.model import HandoffSignal
from handoff.policy import (
    Policy,
    RateLimiter,
    callback_reason,
    in_service_hours,
    parse_handoff_payload,
)
from handoff.settings import RateLimit, Settings, parse_service_hours

from .conftest import POLICY_FILE


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HANDOFF_VAR_DIR": str(tmp_path), **extra}


def test_defaults(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path))
    assert s.db_url == f"sqlite:///{tmp_path}/handoff.sqlite"
    assert (s.host, s.port, s.rasa_url) == ("127.0.0.1", 8080, "http://127.0.0.1:5005")
    assert s.max_message_length == 2000
    assert s.service_hours.tz.key == "Asia/Shanghai"
    assert (s.service_hours.start, s.service_hours.end) == (time(9), time(21))
    assert s.queue_view_limit == 50
    assert Settings.from_env(env(tmp_path, HANDOFF_QUEUE_VIEW_LIMIT="7")).queue_view_limit == 7


def test_generated_secret_is_stored_privately_and_reused(tmp_path: Path) -> None:
    first = Settings.from_env(env(tmp_path)).secret
    path = tmp_path / "handoff_secret"
    assert len(first) >= 32 and path.read_text() == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert Settings.from_env(env(tmp_path)).secret == first


def test_given_secret_wins_and_writes_nothing(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path, HANDOFF_SECRET="k" * 40))
    assert s.secret == "k" * 40
    assert not (tmp_path / "handoff_secret").exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HANDOFF_PORT", "eighty"),
        ("HANDOFF_PORT", "70000"),
        ("HANDOFF_PORT", ""),
        ("HANDOFF_DB_URL", "mysql://x"),
        ("HANDOFF_RASA_URL", "127.0.0.1:5005"),
        ("HANDOFF_SECRET", "short"),
        ("HANDOFF_SERVICE_HOURS", "21:00-09:00"),
        ("HANDOFF_SERVICE_HOURS", "nine to five"),
        ("HANDOFF_TIMEZONE", "Mars/Olympus"),
        ("HANDOFF_BORROWER_RATE", "fast"),
        ("HANDOFF_AGENT_RATE", "0/60"),
        ("HANDOFF_MAX_MESSAGE_LENGTH", "0"),
        ("HANDOFF_GRACE_SECONDS", "-1"),
        ("HANDOFF_QUEUE_VIEW_LIMIT", "0"),
        ("HANDOFF_QUEUE_VIEW_LIMIT", "all"),
    ],
)
def test_bad_values_fail_loudly(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env(tmp_path, **{name: value}))
    assert name.removeprefix("HANDOFF_") in str(info.value) or name in str(info.value)


def test_overrides(tmp_path: Path) -> None:
    s = Settings.from_env(env(
        tmp_path, HANDOFF_PORT="9090", HANDOFF_DB_URL="postgres://u@h/db",
        HANDOFF_BORROWER_RATE="5/10", HANDOFF_CORS_ORIGINS="https://a.cn, https://b.cn",
        HANDOFF_RASA_URL="http://rasa:5005/",
    ))
    assert s.port == 9090 and s.db_url == "postgresql://u@h/db"
    assert s.borrower_rate == RateLimit(5, 10.0)
    assert s.cors_origins == ("https://a.cn", "https://b.cn")
    assert s.rasa_url == "http://rasa:5005"


def test_policy_file_loads(policy: Policy) -> None:
    assert policy.priority_order[0] == "report_fraud"
    assert "request_human" in policy.sensitive_intents
    assert policy.all_skills() >= {"general", "fraud", "complaints", "collections"}


def test_routing_key() -> None:
    policy = Policy.load(POLICY_FILE)
    assert policy.routing_key(HandoffSignal("sensitive_intent", intent="complaint")) == "complaint"
    assert policy.routing_key(HandoffSignal("unresolved_turns", intent="ask_rate")) == (
        "unresolved_turns"
    )
    assert policy.routing_key(HandoffSignal("sensitive_intent")) == "sensitive_intent"


@pytest.mark.parametrize(
    "text",
    ["[]", "default_skill: general\nunresolved_turn_limit: 3\nverification_attempt_limit: 0",
     "unresolved_turn_limit: 3\nverification_attempt_limit: 3",
     "default_skill: g\nunresolved_turn_limit: 3\nverification_attempt_limit: 3\nskills: [a]",
     "default_skill: g\nunresolved_turn_limit: 3\nverification_attempt_limit: 3\n"
     "priority_order: [a, a]",
     ": : :"],
)
def test_bad_policy_fails(tmp_path: Path, text: str) -> None:
    path = tmp_path / "p.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        Policy.load(path)


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        Policy.load(tmp_path / "nope.yml")


def test_parse_handoff_payload() -> None:
    assert parse_handoff_payload(None) is None
    assert parse_handoff_payload({"schedule": {}}) is None
    signal = parse_handoff_payload({"handoff": {
        "reason": "sensitive_intent", "intent": "report_fraud", "confidence": 0.93,
        "unresolved_turns": 1, "slots": {"amount": 50000}}})
    assert signal == HandoffSignal("sensitive_intent", "report_fraud", 0.93, 1, {"amount": 50000})
    # a malformed signal still reaches a human, with safe defaults
    assert parse_handoff_payload({"handoff": "yes"}) == HandoffSignal("unresolved_turns")


def test_service_hours_and_callback_reason() -> None:
    hours = parse_service_hours("09:00-21:00", "Asia/Shanghai")
    inside = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)  # 09:00 Shanghai
    last = datetime(2026, 11, 23, 12, 59, tzinfo=timezone.utc)  # 20:59
    closing = datetime(2026, 11, 23, 13, 0, tzinfo=timezone.utc)  # 21:00
    assert in_service_hours(inside, hours) and in_service_hours(last, hours)
    assert not in_service_hours(closing, hours)
    assert callback_reason(inside, hours, 2) is None
    assert callback_reason(inside, hours, 0) == "no_agents"
    assert callback_reason(closing, hours, 5) == "outside_hours"
    with pytest.raises(ValueError):
        in_service_hours(datetime(2026, 11, 23, 10), hours)


def test_rate_limiter_window() -> None:
    now = [0.0]
    limiter = RateLimiter(RateLimit(2, 10), monotonic=lambda: now[0])
    limiter.check("s")
    limiter.check("s")
    limiter.check("other")
    with pytest.raises(RateLimited) as info:
        limiter.check("s")
    assert info.value.retry_after == pytest.approx(10)
    now[0] = 10.5
    limiter.check("s")
