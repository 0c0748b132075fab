"""Borrower message limits (handoff/limits.py): the token bucket with an injected clock, its
config in config/handoff.yml with env overrides, and what a refused borrower is told."""

from __future__ import annotations

from pathlib import Path

import pytest

from handoff.errors import ConfigError, RateLimited, ValidationError
from handoff.limits import BucketLimiter, TokenBucket, slow_down_message
from handoff.policy import Policy
from handoff.service import HandoffService
from handoff.settings import RateLimit, Settings
from handoff.store import Store

from .conftest import POLICY_FILE, FakeClock


class Ticks:
    """A monotonic clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_the_long_run_rate() -> None:
    bucket = TokenBucket.full(capacity=3, refill_per_second=0.5, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(2.0)  # one token every 2 s
    assert bucket.take(1.0) == pytest.approx(1.0)  # a refused try does not push the wait out
    assert bucket.take(2.0) == 0.0
    assert bucket.take(2.0) == pytest.approx(2.0)
    assert bucket.take(100.0) == 0.0  # long idle: full again, but never above capacity
    assert [bucket.take(100.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(2.0)]


def test_bucket_ignores_a_clock_that_steps_back() -> None:
    bucket = TokenBucket.full(capacity=1, refill_per_second=1.0, now=50.0)
    assert bucket.take(50.0) == 0.0
    assert bucket.take(10.0) == pytest.approx(1.0)  # no refill from the past
    assert bucket.take(51.0) == 0.0


def test_bucket_needs_sane_numbers() -> None:
    with pytest.raises(ValueError):
        TokenBucket.full(capacity=0, refill_per_second=1.0, now=0.0)
    with pytest.raises(ValueError):
        TokenBucket.full(capacity=1, refill_per_second=0.0, now=0.0)


def test_limiter_is_per_key_and_says_politely_how_long_to_wait() -> None:
    ticks = Ticks()
    limiter = BucketLimiter(RateLimit(20, 60.0, 2), monotonic=ticks)
    limiter.check("a")
    limiter.check("a")
    with pytest.raises(RateLimited) as info:
        limiter.check("a")
    assert info.value.retry_after == pytest.approx(3.0)  # 20 per minute = one per 3 s
    body = info.value.to_dict()
    assert body == {"code": "rate_limited", "retry_after": 3.0,
                    "message": "您发送消息的速度有点快，请稍等3秒后再发送，感谢您的理解。"}
    limiter.check("b")  # another session has its own bucket
    ticks.now += 3.0
    limiter.check("a")


def test_limiter_memory_is_bounded() -> None:
    ticks = Ticks()
    limiter = BucketLimiter(RateLimit(1, 60.0), monotonic=ticks, max_keys=100)
    for n in range(1000):
        limiter.check(f"s{n}")
    assert len(limiter) <= 100
    # The newest key is still limited: forgetting never frees the session that just sent.
    with pytest.raises(RateLimited):
        limiter.check("s999")


def test_wait_message_rounds_up() -> None:
    assert "稍等1秒" in slow_down_message(0.2)
    assert "稍等3秒" in slow_down_message(2.01)


# --- configuration ------------------------------------------------------------------------


def settings_with(tmp_path: Path, policy_text: str | None, **env: str) -> Settings:
    values = {"HANDOFF_VAR_DIR": str(tmp_path / "var")}
    if policy_text is not None:
        path = tmp_path / "handoff.yml"
        path.write_text(policy_text, encoding="utf-8")
        values["HANDOFF_POLICY_FILE"] = str(path)
    return Settings.from_env({**values, **env})


def test_shipped_config_sets_the_limits(tmp_path: Path) -> None:
    s = settings_with(tmp_path, POLICY_FILE.read_text(encoding="utf-8"))
    assert s.borrower_rate == RateLimit(20, 60.0, 5)
    assert s.max_message_length == 2000


def test_file_values_and_env_overrides(tmp_path: Path) -> None:
    text = "limits:\n  max_message_chars: 300\n  borrower_burst: 2\n  borrower_per_minute: 6\n"
    s = settings_with(tmp_path, text)
    assert s.borrower_rate == RateLimit(6, 60.0, 2) and s.max_message_length == 300
    s = settings_with(tmp_path, text, HANDOFF_BORROWER_RATE="10/30/4",
                      HANDOFF_MAX_MESSAGE_LENGTH="50")
    assert s.borrower_rate == RateLimit(10, 30.0, 4) and s.max_message_length == 50
    assert settings_with(tmp_path, "other: 1\n").borrower_rate == RateLimit(20, 60.0, 5)


@pytest.mark.parametrize("text", [
    "limits: 5\n",
    "limits:\n  borrower_burst: 0\n",
    "limits:\n  borrower_per_minute: many\n",
    "limits:\n  max_message_chars: true\n",
    "limits:\n  burst: 3\n",  # a typo must not silently fall back to the default
    "limits: [\n",
])
def test_bad_limits_fail_loudly(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        settings_with(tmp_path, text)


@pytest.mark.parametrize("raw", ["20/60/0", "20/60/x", "1/2/3/4"])
def test_bad_env_rate_fails_loudly(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigError, match="HANDOFF_BORROWER_RATE"):
        settings_with(tmp_path, None, HANDOFF_BORROWER_RATE=raw)


# --- through the service -------------------------------------------------------------------


def test_service_refuses_a_flood_politely_and_stores_nothing(
    tmp_path: Path, store: Store, policy: Policy, clock: FakeClock
) -> None:
    settings = settings_with(tmp_path, None, HANDOFF_BORROWER_RATE="20/60/3",
                             HANDOFF_MAX_MESSAGE_LENGTH="10")
    service = HandoffService(store, policy, settings, clock)
    sid = service.open_session(None, None).session.session_id
    for n in range(3):
        service.record_borrower_message(sid, f"第{n}条", f"c{n}")
    with pytest.raises(RateLimited) as info:
        service.record_borrower_message(sid, "第3条", "c3")
    assert "请稍等" in info.value.message_zh
    assert service.record_borrower_message(sid, "第0条", "c0").route == "duplicate"
    with pytest.raises(ValidationError) as too_long:
        service.record_borrower_message(sid, "长" * 11)
    assert too_long.value.message_zh == "消息过长（最多10字），请分几条发送"
    assert [m.text for m in service.history_since(sid, 0)] == ["第0条", "第1条", "第2条"]
