"""The trainer inbox page (/trainer/) in Debian chromium against a live gateway: a trainer
sees the message that led to a handoff, masked, with the bot's intent and confidence; markup
typed by a borrower stays text; a plain agent is turned away."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from playwright.sync_api import expect

from handoff.auth import hash_password
from handoff.store import repo
from tests.browser.conftest import PASSWORD, Live, login, say

pytestmark = [pytest.mark.browser, pytest.mark.integration]

THIRD = "<b>卡号6222021234567890123</b>还款失败"
MASKED = "<b>卡号***************0123</b>还款失败"


def add_trainer(live: Live) -> None:
    with live.server.gateway.store.write() as conn:
        repo.insert_agent(conn, username="tina", display_name="训练师小周",
                          password_hash=hash_password(PASSWORD), skills=(),
                          role="trainer", max_sessions=1, now=datetime.now(timezone.utc))


def test_trainer_sees_the_handoff_message_masked(live: Live) -> None:
    add_trainer(live)
    chat = live.chat()
    for text in ("第一个看不懂的问题", "第二个看不懂的问题", THIRD):
        say(chat, text)
    expect(chat.locator("#status[data-state='queued']")).to_be_visible()

    page = live.page("/trainer/")
    login(page, "tina")
    row = page.locator("#inbox tbody tr").filter(has_text=MASKED)
    expect(row).to_have_count(1)
    cells = row.locator("td")
    expect(cells.nth(1)).to_have_text("1")  # count
    expect(cells.nth(3)).to_have_text("1")  # handoffs
    expect(cells.nth(4)).to_have_text("nlu_fallback")
    expect(cells.nth(5)).to_have_text("0.31")
    assert "6222021234567890123" not in page.content()
    assert page.locator("#inbox b").count() == 0  # borrower markup shown as text
    live.shot(page, "trainer-inbox")

    agent_page = live.page("/trainer/")
    login(agent_page, "alice")
    expect(agent_page.locator("#login-error")).to_have_text("仅训练师或主管可查看训练收件箱")
    assert not live.dialogs and not live.errors, (live.dialogs, live.errors)
