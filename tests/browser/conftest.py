"""Playwright driving Debian's chromium (/usr/bin/chromium); never a downloaded browser.

Plus a live gateway on loopback (the integration harness: gateway in a thread, temp SQLite
store, the agents alice/bob/carol) with a supervisor, and a stand-in Rasa that adds two
scripted rules to tests/integration/fake_rasa.py: a repayment schedule, and the bot's
"unresolved turns" handoff on the third message in a row it cannot answer.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from handoff.auth import hash_password
from handoff.store import repo
from tests.integration.conftest import (  # noqa: F401  (fixtures re-exported for tests here)
    PASSWORD,
    GatewayFactory,
    GatewayServer,
    gateway_factory,
)
from tests.integration.fake_rasa import FakeRasa

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Flags a closed-network, root-run headless chromium needs (see the machine notes).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SUPERVISOR = ("sam", "主管老张")
UNRESOLVED_LIMIT = 3
UNRESOLVED_PREFIX = "抱歉，我没有理解："
UNRESOLVED_HANDOFF_NOTICE = "抱歉，我暂时无法解答，正在为您转接人工客服。"
SCHEDULE: dict[str, Any] = {
    "method": "equal_installment",
    "method_label": "等额本息",
    "principal": "10000.00",
    "annual_rate": "0.0730",
    "term_months": 3,
    "total_interest": "121.96",
    "total_payment": "10121.96",
    "first_payment": "3373.99",
    "last_payment": "3373.98",
    "rows": [
        {"period": 1, "payment": "3373.99", "principal": "3313.16", "interest": "60.83",
         "remaining": "6686.84"},
        {"period": 2, "payment": "3373.99", "principal": "3333.31", "interest": "40.68",
         "remaining": "3353.53"},
        {"period": 3, "payment": "3373.98", "principal": "3353.53", "interest": "20.45",
         "remaining": "0.00"},
    ],
}


# Module scope: a live sync Playwright marks the main thread as running an event loop, which
# would break asyncio-based tests in later modules if it outlived the browser tests.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"{CHROMIUM} missing: run scripts/browser-deps.sh (make test does) to install "
            "Debian's chromium and fonts-noto-cjk"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


class ScriptedRasa(FakeRasa):
    """FakeRasa plus: 还款计划 → a schedule card; anything it would only echo counts as an
    unresolved turn, and the third in a row sends the handoff signal (unresolved_turns)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.unresolved: dict[str, int] = defaultdict(int)

    async def _events(self, request: Any) -> Any:
        response = await super()._events(request)
        with self._lock:
            if any(e.get("event") == "resume" for e in self.events[request.match_info["sender"]]):
                self.unresolved[request.match_info["sender"]] = 0
        return response

    async def _reply_for(self, sender: str, text: str) -> list[dict[str, Any]]:
        if "还款计划" in text:
            self.unresolved[sender] = 0
            return [
                {"recipient_id": sender, "text": "为您试算的还款计划如下："},
                {"recipient_id": sender, "custom": {"schedule": SCHEDULE}},
            ]
        replies = await super()._reply_for(sender, text)
        echoed = len(replies) == 1 and str(replies[0].get("text", "")).startswith("机器人收到：")
        if not echoed:
            self.unresolved[sender] = 0
            return replies
        self.unresolved[sender] += 1
        if self.unresolved[sender] < UNRESOLVED_LIMIT:
            return [{"recipient_id": sender, "text": f"{UNRESOLVED_PREFIX}{text}"}]
        self.unresolved[sender] = 0
        with self._lock:
            self.paused.add(sender)
        return [
            {"recipient_id": sender, "text": UNRESOLVED_HANDOFF_NOTICE},
            {"recipient_id": sender, "custom": {"handoff": {
                "reason": "unresolved_turns", "intent": "nlu_fallback", "confidence": 0.31,
                "unresolved_turns": UNRESOLVED_LIMIT, "slots": {"application_id": "LN20261123001"},
            }}},
        ]


@pytest.fixture
def scripted_rasa() -> Iterator[ScriptedRasa]:
    with ScriptedRasa(slow_seconds=1.5) as rasa:
        yield rasa


@dataclass
class Live:
    """A running gateway + stand-in Rasa, and helpers to open its pages in chromium."""

    server: GatewayServer
    rasa: ScriptedRasa
    browser: Any
    artifacts: Path
    contexts: list[Any]
    dialogs: list[str]
    errors: list[str]

    @property
    def url(self) -> str:
        return self.server.url

    def page(self, path: str, *, mobile: bool = False) -> Any:
        """A fresh browser context (own storage) on `path`; dialogs and page errors recorded."""
        options: dict[str, Any] = {"locale": "zh-CN"}
        if mobile:
            options.update(viewport={"width": 390, "height": 780}, is_mobile=True,
                           has_touch=True, device_scale_factor=2)
        else:
            options.update(viewport={"width": 1360, "height": 860})
        context = self.browser.new_context(**options)
        self.contexts.append(context)
        return self.open_in(context, path)

    def open_in(self, context: Any, path: str) -> Any:
        """A new tab of an existing context (same localStorage: a borrower coming back)."""
        page = context.new_page()
        page.set_default_timeout(8000)

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda err: self.errors.append(str(err)))
        page.goto(f"{self.url}{path}")
        return page

    def chat(self) -> Any:
        page = self.page("/", mobile=True)
        page.locator("body[data-session='ready']").wait_for()
        return page

    def console(self, username: str = "alice") -> Any:
        page = self.page("/agent/")
        login(page, username)
        page.locator("#conn[data-state='online']").wait_for()
        page.locator("#me").filter(has_text=username).wait_for()
        return page

    def dashboard(self, username: str = SUPERVISOR[0]) -> Any:
        page = self.page("/dashboard/")
        login(page, username)
        page.locator("#board-view").wait_for(state="visible")
        return page

    def shot(self, page: Any, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def login(page: Any, username: str, password: str = PASSWORD) -> None:
    page.fill("#login-user", username)
    page.fill("#login-pass", password)
    page.click("#login-form button[type=submit]")


def say(page: Any, text: str) -> None:
    """Type a borrower message into the chat page and send it."""
    page.fill("#input", text)
    page.click("#send")


def add_supervisor(server: GatewayServer) -> None:
    with server.gateway.store.write() as conn:
        repo.insert_agent(conn, username=SUPERVISOR[0], display_name=SUPERVISOR[1],
                          password_hash=hash_password(PASSWORD), skills=("general",),
                          role="supervisor", max_sessions=3, now=datetime.now(timezone.utc))


@pytest.fixture
def live(
    browser: Any,
    scripted_rasa: ScriptedRasa,
    gateway_factory: GatewayFactory,  # noqa: F811
    artifacts_dir: Path,
) -> Iterator[Live]:
    server = gateway_factory(scripted_rasa.url)
    add_supervisor(server)
    state = Live(server, scripted_rasa, browser, artifacts_dir, [], [], [])
    try:
        yield state
    finally:
        for context in state.contexts:
            context.close()


