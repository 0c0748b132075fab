"""GET /api/trainer/inbox through the gateway's real HTTP router (ASGI, no network):
trainer/supervisor only, masked items, `?all=1` for exported ones, Rasa down → no guesses."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.trainer.inbox import build_inbox, mark_exported
from handoff.app import Gateway, build_gateway
from handoff.settings import Settings
from tests.unit.ui.conftest import PASSWORD
from tests.unit.ui.test_http import call

UNRESOLVED = "抱歉，我没有理解您的意思。您可以换个说法，或选择下面的问题："


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    settings = Settings.from_env({
        "HANDOFF_DB_URL": f"sqlite:///{tmp_path / 'h.sqlite'}",
        "HANDOFF_VAR_DIR": str(tmp_path),
        "HANDOFF_SECRET": secrets.token_urlsafe(40),
        "HANDOFF_RASA_URL": "http://127.0.0.1:9",  # nothing listens: no predictions
    })
    gw = build_gateway(settings)
    gw.service.create_agent("gina", "小王", PASSWORD, ["general"])
    gw.service.create_agent("tina", "训练师", PASSWORD, [], role="trainer")
    gw.service.create_agent("boss", "主管", PASSWORD, [], role="supervisor")
    yield gw
    gw.store.dispose()


def auth(gateway: Gateway, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.service.login(username, PASSWORD).token}"}


def test_only_trainers_and_supervisors(gateway: Gateway) -> None:
    status, _, body = call(gateway, "/api/trainer/inbox")
    assert status == 401
    status, _, body = call(gateway, "/api/trainer/inbox", headers=auth(gateway, "gina"))
    assert status == 403 and json.loads(body)["message"] == "仅训练师或主管可查看训练收件箱"
    for user in ("tina", "boss"):
        status, _, body = call(gateway, "/api/trainer/inbox", headers=auth(gateway, user))
        assert status == 200 and json.loads(body)["items"] == []


def test_lists_masked_items_and_exported_on_request(gateway: Gateway) -> None:
    service = gateway.service
    sid = service.open_session(None, "u1").session.session_id
    service.record_borrower_message(sid, "卡号6222021234567890123怎么改")
    service.accept_bot_replies(sid, [{"text": UNRESOLVED}])
    headers = auth(gateway, "tina")
    status, _, body = call(gateway, "/api/trainer/inbox", headers=headers)
    data = json.loads(body)
    assert status == 200 and data["predicted"] is False  # Rasa is down
    [item] = data["items"]
    assert item["text"] == "卡号***************0123怎么改"
    assert (item["count"], item["unresolved"], item["intent"]) == (1, 1, None)
    assert "6222021234567890123" not in body.decode()

    mark_exported(gateway.store, build_inbox(gateway.store), "b1")
    assert json.loads(call(gateway, "/api/trainer/inbox", headers=headers)[2])["items"] == []
    data = json.loads(call(gateway, "/api/trainer/inbox", headers=headers, query="all=1")[2])
    assert [i["exported_batch"] for i in data["items"]] == ["b1"]
    status, _, _ = call(gateway, "/api/trainer/inbox", headers=headers, query="limit=0")
    assert status == 400


def test_page_is_served(gateway: Gateway) -> None:
    status, head, body = call(gateway, "/trainer/")
    assert status == 200 and "训练收件箱" in body.decode()
    assert "content-security-policy" in head
    status, _, body = call(gateway, "/static/js/trainer.js")
    assert status == 200 and b"/api/trainer/inbox" in body
