"""Dashboard figures (handoff/dashboard.py) and their Prometheus form (handoff/metrics.py),
from conversations played through the real service on a temp SQLite store."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from handoff import dashboard, metrics
from handoff.service import HandoffService
from handoff.store import Store
from tests.unit.ui.conftest import PASSWORD, START, FakeClock


def handoff(reason: str, intent: str | None = None) -> dict[str, Any]:
    return {"custom": {"handoff": {"reason": reason, "intent": intent, "confidence": 0.9,
                                   "unresolved_turns": 3 if reason == "unresolved_turns" else 0,
                                   "slots": {}}}}


@pytest.fixture
def played(service: HandoffService, clock: FakeClock) -> HandoffService:
    """Three conversations: one the bot handles, one served and rated 4, one unresolved."""
    service.create_agent("gina", "小王", PASSWORD, ["general"])
    service.agent_connected("gina")

    contained = service.open_session(None, "u1").session.session_id
    service.record_borrower_message(contained, "利率多少")
    service.accept_bot_replies(contained, [{"text": "年化7.3%起"}])

    served = service.open_session(None, "u2").session.session_id
    service.record_borrower_message(served, "我要转人工")
    service.accept_bot_replies(served, [handoff("sensitive_intent", "request_human")])
    clock.advance(40)
    service.claim("gina", served)
    clock.advance(120)
    service.close("gina", served, "resolved")
    service.rate(served, 4, "不错")

    unresolved = service.open_session(None, "u3").session.session_id
    for text in ("早先的问题", "额度怎么算", "我的手机13812345678"):
        clock.advance(5)
        service.record_borrower_message(unresolved, text)
        service.accept_bot_replies(unresolved, [{"text": "抱歉没听懂"}])
    service.record_borrower_message(unresolved, "额度怎么算")
    service.accept_bot_replies(unresolved, [handoff("unresolved_turns")])
    clock.advance(30)
    return service


def figures(store: Store, clock: FakeClock, **period: Any) -> dict[str, Any]:
    start = period.get("start", START - timedelta(hours=1))
    end = period.get("end", clock.now + timedelta(seconds=1))
    with store.read() as conn:
        return dashboard.compute(conn, start, end, clock.now)


def test_figures_follow_the_definitions(played: HandoffService, store: Store,
                                        clock: FakeClock) -> None:
    f = figures(store, clock)
    assert (f["conversations"], f["contained"], f["handed_off"]) == (3, 1, 2)
    assert f["containment_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert f["handoffs_by_reason"] == {"sensitive_intent": 1, "unresolved_turns": 1}
    assert f["queue_now"]["length"] == 1
    assert f["queue_now"]["by_skill"] == {"general": 1}
    assert f["queue_now"]["longest_wait_seconds"] == pytest.approx(30)

    wait = f["waiting"]
    assert (wait["count"], wait["average"], wait["median"]) == (1, 40.0, 40.0)
    assert [b["count"] for b in wait["buckets"]] == [0, 1, 0, 0, 0, 0]
    assert wait["buckets"][1]["label"] == "30秒–1分钟"
    assert wait["buckets"][-1]["le"] is None

    handle = f["handle"]
    assert (handle["count"], handle["average"]) == (1, 120.0)
    assert [b["count"] for b in handle["buckets"]] == [0, 1, 0, 0, 0, 0]

    assert f["csat"] == {"count": 1, "average": 4.0,
                         "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}}
    # The last 3 borrower turns before the unresolved handoff, masked, most frequent first;
    # the earlier turn is not one of them.
    assert f["top_unresolved"] == [
        {"text": "额度怎么算", "count": 2},
        {"text": "我的手机138****5678", "count": 1},
    ]
    assert "13812345678" not in str(f)


def test_period_excludes_earlier_activity(played: HandoffService, store: Store,
                                          clock: FakeClock) -> None:
    f = figures(store, clock, start=clock.now)
    assert f["conversations"] == 0 and f["containment_rate"] is None
    assert f["handoffs_by_reason"] == {} and f["csat"]["average"] is None
    assert f["waiting"]["count"] == 0 and f["waiting"]["average"] is None
    assert f["queue_now"]["length"] == 1  # the queue is "now", whatever the period


def test_metrics_text_matches_the_dashboard(played: HandoffService, store: Store,
                                            clock: FakeClock) -> None:
    text = metrics.render(figures(store, clock), {"rasa-1:5005": (16, 3), "rasa-2:5005": (2, 0)})
    lines = text.splitlines()
    for family in ("conversations_total", "handoffs_total", "queue_length",
                   "queue_wait_seconds", "handle_seconds", "csat_ratings_total",
                   "csat_average", "containment_ratio"):
        assert f"# HELP loanbot_{family} " in text
        assert re.search(rf"^# TYPE loanbot_{family} (counter|gauge|histogram)$", text, re.M)
    assert "loanbot_conversations_total 3" in lines
    assert "loanbot_conversations_contained_total 1" in lines
    assert 'loanbot_handoffs_total{reason="unresolved_turns"} 1' in lines
    assert 'loanbot_queue_length{skill="general"} 1' in lines
    assert 'loanbot_queue_wait_seconds_bucket{le="30"} 0' in lines
    assert 'loanbot_queue_wait_seconds_bucket{le="60"} 1' in lines
    assert 'loanbot_queue_wait_seconds_bucket{le="+Inf"} 1' in lines
    assert "loanbot_queue_wait_seconds_count 1" in lines
    assert 'loanbot_csat_ratings_total{score="4"} 1' in lines
    assert "loanbot_csat_average 4" in lines
    assert "# TYPE loanbot_rasa_calls gauge" in lines
    assert 'loanbot_rasa_calls{instance="rasa-1:5005",state="running"} 16' in lines
    assert 'loanbot_rasa_calls{instance="rasa-1:5005",state="waiting"} 3' in lines
    assert 'loanbot_rasa_calls{instance="rasa-2:5005",state="waiting"} 0' in lines
    # Every sample line is `name{labels} value` with a number (or NaN) value.
    for line in lines:
        if line and not line.startswith("#"):
            assert re.fullmatch(r'loanbot_[a-z_]+(\{[^}]*\})? (-?[0-9.]+|NaN|\+Inf)', line), line


def test_metrics_escape_label_values() -> None:
    empty: dict[str, Any] = {
        "conversations": 0, "contained": 0, "containment_rate": None,
        "handoffs_by_reason": {'we"ird\nreason': 2},
        "queue_now": {"by_skill": {}, "longest_wait_seconds": 0},
        "waiting": {"buckets": [{"le": None, "count": 0}], "sum": 0, "count": 0},
        "handle": {"buckets": [{"le": None, "count": 0}], "sum": 0, "count": 0},
        "csat": {"distribution": {}, "average": None},
    }
    text = metrics.render(empty)
    assert 'loanbot_handoffs_total{reason="we\\"ird\\nreason"} 2' in text
    assert "loanbot_containment_ratio NaN" in text
    assert 'loanbot_queue_length{skill="general"} 0' in text


def test_percentile_and_labels() -> None:
    assert dashboard.percentile([1, 2, 3, 4, 10], 0.9) == 10
    assert dashboard.percentile([5], 0.5) == 5
    assert dashboard.bucket_label(0, (30, 60)) == "≤30秒"
    assert dashboard.bucket_label(2, (30, 60)) == ">1分钟"
    assert dashboard.handoff_reason("bot_unavailable", "connection refused") == "bot_unavailable"
    assert dashboard.handoff_reason("handoff_requested", "sensitive_intent intent=x") == \
        "sensitive_intent"
