"""No full ID number, bank card or mobile number in the gateway's logs.

A conversation full of personal numbers goes through the real gateway — bot mode, handoff,
agent chat, a compliance-blocked agent message, a note, a callback booking, CSAT, refused
input — and the logs are searched for the full numbers:

1. `python -m handoff` as a real process with its production logging (INFO, uvicorn access
   lines, the masking filter on the root handler), output to a file;
2. the gateway in-process with every logger at DEBUG and **no** masking filter, so our own
   code must never log a raw number in the first place (the filter is the second line).
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from handoff.auth import hash_password
from handoff.masking import MaskingFilter
from handoff.store import Store, repo
from tests.integration.conftest import (
    PASSWORD,
    Agent,
    Borrower,
    Client,
    GatewayFactory,
    http_json,
)
from tests.integration.fake_rasa import FakeRasa, free_port
from tests.stack import GATEWAY_PYTHON

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ROOT = Path(__file__).resolve().parents[2]
ID_NUMBER = "110101199003071234"  # 18 digits
BANK_CARD = "6222021234567890123"  # 19 digits
MOBILE = "13812345678"
FULL_NUMBERS = (ID_NUMBER, BANK_CARD, MOBILE, "6222021234567890")


def ok(ack: Any) -> dict[str, Any]:
    assert isinstance(ack, dict) and ack.get("ok") is True, ack
    return ack


async def converse(url: str, made: list[Client]) -> str:
    """Drive a whole conversation with personal numbers on every path; returns the session."""
    b = Borrower()
    made.append(b)
    await b.open(url)
    ok(await b.say(f"你好，我的身份证号是{ID_NUMBER}"))
    ok(await b.say(f"银行卡{BANK_CARD}，手机{MOBILE}"))  # echoed by the stand-in bot
    await b.wait_for("bot_uttered", lambda d: BANK_CARD in (d.get("text") or ""))
    refused = await b.say(f"{'长' * 3000}{ID_NUMBER}")
    assert refused["ok"] is False and refused["code"] == "invalid_input"
    ok(await b.say(f"转人工，卡号{BANK_CARD}"))
    await b.wait_for("status", lambda s: s.get("state") == "queued")

    token = http_json(f"{url}/api/login", {"username": "alice", "password": PASSWORD})["token"]
    alice = Agent()
    made.append(alice)
    await alice.connect(url, auth={"token": token})
    await alice.wait_for("queue")
    transcript = ok(await alice.call("claim", {"session_id": b.session_id}))["transcript"]
    assert BANK_CARD not in str(transcript)  # masked for the agent
    await b.wait_for("status", lambda s: s.get("state") == "assigned")
    ok(await b.say(f"身份证{ID_NUMBER}，卡号{BANK_CARD}，手机{MOBILE}"))
    await alice.wait_for("message", lambda m: m.get("sender") == "borrower")
    ok(await alice.call("message", {"session_id": b.session_id,
                                    "text": f"好的，已登记您的手机{MOBILE}"}))
    blocked = await alice.call("message", {"session_id": b.session_id,
                                           "text": f"请告诉我完整的卡号，是{BANK_CARD}吗"})
    assert blocked["ok"] is False and blocked["code"] == "compliance_blocked"
    ok(await alice.call("note", {"session_id": b.session_id,
                                 "text": f"客户身份证{ID_NUMBER}，卡{BANK_CARD}"}))
    tomorrow = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=1)).replace(
        hour=10, minute=0, second=0, microsecond=0)
    ok(await b.call("callback_request", {
        "session_id": b.session_id, "phone": MOBILE, "window_start": tomorrow.isoformat(),
        "window_end": (tomorrow + timedelta(hours=1)).isoformat()}))
    ok(await alice.call("callbacks", {"status": "pending"}))
    ok(await alice.call("close", {"session_id": b.session_id, "disposition": "resolved"}))
    await b.wait_for("csat_request")
    ok(await b.call("csat", {"session_id": b.session_id, "score": 5,
                             "comment": f"很好，卡号{BANK_CARD}"}))
    await alice.wait_for("csat")
    return b.session_id


def leaks(text: str) -> list[str]:
    return [n for n in FULL_NUMBERS if n in text]


async def test_production_logging_of_python_m_handoff_has_no_full_numbers(
    tmp_path: Path, fake_rasa: FakeRasa, clients: list[Client]
) -> None:
    port = free_port()
    db_url = f"sqlite:///{tmp_path / 'handoff.sqlite'}"
    store = Store(db_url)
    with store.write() as conn:
        repo.insert_agent(conn, username="alice", display_name="小李",
                          password_hash=hash_password(PASSWORD), skills=["general"],
                          role="agent", max_sessions=3, now=datetime.now(timezone.utc))
    store.dispose()
    env = {
        **os.environ, "RASA_TELEMETRY_ENABLED": "false", "HANDOFF_HOST": "127.0.0.1",
        "HANDOFF_PORT": str(port), "HANDOFF_VAR_DIR": str(tmp_path), "HANDOFF_DB_URL": db_url,
        "HANDOFF_SECRET": secrets.token_urlsafe(40), "HANDOFF_RASA_URL": fake_rasa.url,
        "HANDOFF_SERVICE_HOURS": "00:00-23:59", "HANDOFF_BORROWER_RATE": "1000/60",
    }
    log_path = tmp_path / "gateway.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([GATEWAY_PYTHON, "-m", "handoff"], cwd=ROOT, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                        break
                except (urllib.error.URLError, ConnectionError):
                    assert time.monotonic() < deadline, "gateway did not come up"
                    time.sleep(0.2)
            session_id = await converse(url, clients)
            for client in clients:
                await client.close()
        finally:
            process.terminate()
            process.wait(15)
    logged = log_path.read_text(encoding="utf-8")
    assert f"session {session_id[:8]}" in logged  # the gateway did log the conversation
    assert "callback" in logged and "compliance: blocked" in logged
    assert leaks(logged) == [], [line for line in logged.splitlines() if leaks(line)]


async def test_our_code_never_logs_full_numbers_even_without_the_filter(
    fake_rasa: FakeRasa, gateway_factory: GatewayFactory, clients: list[Client],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = gateway_factory(fake_rasa.url)
    for handler in logging.getLogger().handlers:
        assert not any(isinstance(f, MaskingFilter) for f in handler.filters)
    with caplog.at_level(logging.DEBUG):
        await converse(server.url, clients)
    formatter = logging.Formatter("%(name)s %(message)s")
    lines = [formatter.format(r) for r in caplog.records]
    assert any("compliance: blocked" in line for line in lines)
    assert [line for line in lines if leaks(line)] == []
