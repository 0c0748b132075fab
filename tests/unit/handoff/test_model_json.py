"""Views as JSON: what every message event and session view sent to a socket is made of."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

from handoff.model import MessageView, SessionView

NOW = datetime(2026, 12, 5, 2, 0, 0, 123456, tzinfo=timezone.utc)


def test_message_json_has_every_field_iso_times_and_copied_payload() -> None:
    payload = {"buttons": [{"title": "信用贷", "payload": "/choose"}]}
    view = MessageView(session_id="s" * 20, seq=3, sender="bot", text="请选择产品",
                       created_at=NOW, payload=payload, episode=1)
    data = view.to_dict()
    expected = asdict(view)
    expected["created_at"] = "2026-12-05T02:00:00.123456+00:00"
    assert data == expected
    json.dumps(data)  # JSON-ready as it is
    data["payload"]["buttons"].append({"title": "x"})
    assert len(view.payload["buttons"]) == 1  # type: ignore[index]  # the view is not aliased


def test_session_json_turns_every_datetime_to_iso() -> None:
    view = SessionView(
        session_id="s" * 20, identity=None, state="queued", episode=1, agent_id=None,
        agent_name=None, reason="sensitive_intent", intent="report_fraud", confidence=0.9,
        routing_key="report_fraud", skill="fraud", waiting_since=NOW, requeued_front=False,
        unresolved_turns=0, last_seq=4, created_at=NOW - timedelta(minutes=5), updated_at=NOW,
    )
    data = view.to_dict()
    assert data["waiting_since"] == NOW.isoformat()
    assert data["created_at"] == (NOW - timedelta(minutes=5)).isoformat()
    assert set(data) == set(asdict(view))


def test_status_and_queue_entry_json_equal_asdict() -> None:
    from handoff.model import QueueEntry, StatusPayload

    status = StatusPayload(session_id="s" * 20, state="queued", queue_position=3,
                           eta_seconds=240, text="您前面还有2位用户，预计等待约4分钟。")
    entry = QueueEntry(session_id="s" * 20, routing_key="complaint", skill="complaints",
                       position=1, waiting_seconds=75, eta_seconds=None, requeued_front=True,
                       reason="sensitive_intent", intent="complaint", preview="我要投诉****")
    for view in (status, entry, StatusPayload(session_id="t" * 20, state="bot"), entry):
        assert view.to_dict() == asdict(view)
        assert list(view.to_dict()) == list(asdict(view))  # the fields' order, every time
        json.dumps(view.to_dict())
