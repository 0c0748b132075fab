"""The public rasa-webchat widget (vendored, unchanged) against the gateway in chromium.

rasa-webchat dispatches on the exact keys of each `bot_uttered`, so this is the check that the
gateway's payloads really are Rasa's. Needs Debian's chromium (scripts/browser-deps.sh).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import Helpers
from tests.integration.fake_rasa import GREETING_REPLY, HANDOFF_NOTICE, FakeRasa

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.anyio]


async def test_widget_shows_bot_buttons_and_agent_messages(
    h: Helpers, fake_rasa: FakeRasa, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} missing: run scripts/browser-deps.sh")
    from playwright.async_api import async_playwright

    alice = await h.agent("alice")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{h.server.url}/webchat.html")
            await page.click(".rw-launcher")
            # The page's initPayload "你好" → greeting, rendered as a bot bubble.
            await page.get_by_text(GREETING_REPLY).wait_for(timeout=8000)

            await page.fill(".rw-new-message", "看看按钮")
            await page.keyboard.press("Enter")
            await page.locator(".rw-reply", has_text="信用贷").wait_for(timeout=8000)

            await page.fill(".rw-new-message", "转人工")
            await page.keyboard.press("Enter")
            await page.get_by_text(HANDOFF_NOTICE).first.wait_for(timeout=8000)
            queue = await alice.wait_for("queue", lambda q: bool(q["entries"]))
            session_id = queue["entries"][0]["session_id"]
            claim = await alice.call("claim", {"session_id": session_id})
            assert claim["ok"], claim
            await alice.call("message", {"session_id": session_id, "text": "您好，我是客服小李"})
            await page.get_by_text("您好，我是客服小李").wait_for(timeout=8000)
            await page.get_by_text("人工客服小李为您服务。").wait_for(timeout=8000)
            await page.screenshot(path=str(tmp_path / "widget.png"))
            shot_dir = os.environ.get("LOANBOT_SCREENSHOT_DIR")
            if shot_dir:
                await page.screenshot(path=str(Path(shot_dir) / "webchat-widget.png"))
        finally:
            await browser.close()
