"""The gateway's HTTP routes for the UI (handoff/app.py), called as ASGI without a network:
dashboard JSON (supervisors only), /metrics, page security headers, start-up recovery."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from handoff import heap
from handoff.app import Gateway, HttpRouter, build_gateway
from handoff.settings import Settings
from handoff.store import repo
from tests.unit.ui.conftest import PASSWORD


def run(make: Callable[[], Awaitable[None]]) -> None:
    """asyncio.run in a thread of its own: Playwright's sync API (browser tests in the same
    pytest process) leaves an event loop running in the main thread."""
    failure: list[BaseException] = []

    def target() -> None:
        async def main() -> None:
            await make()

        try:
            asyncio.run(main())
        except BaseException as exc:  # re-raised in the test's thread
            failure.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    if failure:
        raise failure[0]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    settings = Settings.from_env({
        "HANDOFF_DB_URL": f"sqlite:///{tmp_path / 'h.sqlite'}",
        "HANDOFF_VAR_DIR": str(tmp_path),
        "HANDOFF_SECRET": secrets.token_urlsafe(40),
        "HANDOFF_RASA_URL": "http://127.0.0.1:9",
        "HANDOFF_GC_YOUNG_THRESHOLD": "12345",
    })
    gw = build_gateway(settings)
    gw.service.create_agent("gina", "小王", PASSWORD, ["general"])
    gw.service.create_agent("boss", "主管", PASSWORD, [], role="supervisor")
    yield gw
    gw.store.dispose()


def call(gateway: Gateway, path: str, *, method: str = "GET", query: str = "",
         headers: dict[str, str] | None = None, body: bytes = b"") -> tuple[int, dict[str, str],
                                                                            bytes]:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path,
             "query_string": query.encode(),
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    run(lambda: HttpRouter(gateway)(scope, receive, send))
    start = sent[0]
    head = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], head, b"".join(m.get("body", b"") for m in sent[1:])


def token(gateway: Gateway, username: str) -> str:
    return gateway.service.login(username, PASSWORD).token


def test_dashboard_needs_a_supervisor_token(gateway: Gateway) -> None:
    status, _, body = call(gateway, "/api/dashboard")
    assert status == 401 and json.loads(body)["code"] == "auth_failed"
    status, _, _ = call(gateway, "/api/dashboard", headers={"Authorization": "Bearer forged"})
    assert status == 401
    status, _, body = call(gateway, "/api/dashboard",
                           headers={"Authorization": f"Bearer {token(gateway, 'gina')}"})
    assert status == 403 and json.loads(body)["message"] == "仅主管可查看数据看板"


def test_dashboard_json_for_a_period(gateway: Gateway) -> None:
    gateway.service.open_session(None, "u1")
    auth = {"Authorization": f"Bearer {token(gateway, 'boss')}"}
    status, head, body = call(gateway, "/api/dashboard", headers=auth)
    assert status == 200 and head["cache-control"] == "no-store"
    data = json.loads(body)  # strict JSON: no Infinity/NaN
    assert data["conversations"] == 1 and data["contained"] == 1
    assert data["containment_rate"] == 1.0
    status, _, body = call(gateway, "/api/dashboard", headers=auth,
                           query="from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00%2B08:00")
    assert status == 200 and json.loads(body)["conversations"] == 0
    for bad in ("from=yesterday", "from=2020-01-02&to=2020-01-01", "from=2000-01-01&to=2020-01-01"):
        status, _, body = call(gateway, "/api/dashboard", headers=auth, query=bad)
        assert status == 400 and json.loads(body)["code"] == "invalid_input", bad


def test_metrics_is_prometheus_text(gateway: Gateway) -> None:
    gateway.service.open_session(None, "u1")
    status, head, body = call(gateway, "/metrics",
                              headers={"Authorization": f"Bearer {token(gateway, 'boss')}"})
    assert status == 200
    assert head["content-type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert "# TYPE loanbot_conversations_total counter" in text
    assert "loanbot_conversations_total 1" in text.splitlines()
    # this node's calls to its Rasa instance(s): none in flight here
    rasa = gateway.rasa.calls_now()
    assert rasa and all(
        f'loanbot_rasa_calls{{instance="{instance}",state="{state}"}} 0' in text.splitlines()
        for instance in rasa for state in ("running", "waiting"))


def test_metrics_needs_a_supervisor_or_the_scraper_token(tmp_path: Path) -> None:
    scraper = secrets.token_urlsafe(40)
    gw = build_gateway(Settings.from_env({
        "HANDOFF_DB_URL": f"sqlite:///{tmp_path / 'm.sqlite'}", "HANDOFF_VAR_DIR": str(tmp_path),
        "HANDOFF_SECRET": secrets.token_urlsafe(40), "HANDOFF_RASA_URL": "http://127.0.0.1:9",
        "HANDOFF_METRICS_TOKEN": scraper,
    }))
    try:
        gw.service.create_agent("gina", "小王", PASSWORD, ["general"])
        status, _, body = call(gw, "/metrics")
        assert status == 401 and json.loads(body)["code"] == "auth_failed"
        for bad in ("forged", scraper + "x", scraper[:-1]):
            status, _, _ = call(gw, "/metrics", headers={"Authorization": f"Bearer {bad}"})
            assert status == 401, bad
        status, _, body = call(gw, "/metrics",
                               headers={"Authorization": f"Bearer {token(gw, 'gina')}"})
        assert status == 403 and json.loads(body)["code"] == "forbidden"
        status, _, body = call(gw, "/metrics", headers={"Authorization": f"Bearer {scraper}"})
        assert status == 200 and b"loanbot_conversations_total" in body
    finally:
        gw.store.dispose()


@pytest.mark.parametrize("path", ["/", "/agent/", "/dashboard/", "/webchat.html"])
def test_pages_are_served_with_a_csp(gateway: Gateway, path: str) -> None:
    status, head, body = call(gateway, path)
    assert status == 200 and head["content-type"].startswith("text/html")
    assert "script-src 'self'" in head["content-security-policy"]
    assert b"<script>" not in body  # no inline script: the CSP would block it


def test_vendored_libraries_are_served(gateway: Gateway) -> None:
    for path in ("/static/vendor/socket.io-client-4.8.1/socket.io.min.js",
                 "/static/vendor/chart.js-4.4.7/chart.umd.js"):
        status, head, _ = call(gateway, path, method="HEAD")
        assert status == 200 and "javascript" in head["content-type"]


def start_and_stop(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Run the gateway's start-up; the heap settling it asks for is recorded, not done (the
    test process's collector is shared by every test)."""
    settled: list[int] = []
    monkeypatch.setattr(heap, "settle", settled.append)

    async def go() -> None:
        await gateway.startup()
        if gateway._ticker is not None:
            gateway._ticker.cancel()

    run(go)
    return settled


def test_startup_puts_present_agents_into_grace(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restart loses every agent socket: start-up must begin their grace periods."""
    gateway.service.agent_connected("gina")
    start_and_stop(gateway, monkeypatch)
    with gateway.store.read() as conn:
        agent = repo.get_agent(conn, "gina")
    assert agent is not None and agent.presence == "offline"
    assert agent.disconnected_at is not None
    assert agent.disconnected_at <= datetime.now(timezone.utc)


def test_startup_settles_the_heap_with_the_configured_threshold(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    assert start_and_stop(gateway, monkeypatch) == [12345]  # HANDOFF_GC_YOUNG_THRESHOLD
