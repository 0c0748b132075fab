"""The tiny HTTP router: health, login, static files (no path escapes the static folder)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest
import socketio

from handoff.app import HttpRouter, client_manager
from handoff.borrower_namespace import BadInput, as_mapping, field_int, field_str
from handoff.errors import AuthError
from handoff.model import AgentView, LoginResult


class StubService:
    def login(self, username: str, password: str) -> LoginResult:
        if password != "right-password":
            raise AuthError("bad password", message_zh="用户名或密码错误")
        agent = AgentView(username, "客服小李", "agent", ("general",), "offline", 3)
        return LoginResult(agent, "tok", datetime(2030, 1, 1, tzinfo=timezone.utc))


def request(method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    router = HttpRouter(SimpleNamespace(service=StubService()))  # type: ignore[arg-type]
    sent: list[MutableMapping[str, Any]] = []
    incoming = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> MutableMapping[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path}
    asyncio.run(router(scope, receive, send))
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


def test_healthz() -> None:
    status, headers, body = request("GET", "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    assert headers["content-type"].startswith("application/json")


def test_readyz_names_the_dependency_that_is_down(tmp_path: Any) -> None:
    from handoff import health
    from handoff.store import Store

    class DownRedis:
        async def ping(self) -> bool:
            raise ConnectionError("refused")

    store = Store(f"sqlite:///{tmp_path / 'h.sqlite'}")
    up = asyncio.run(health.readiness(store, socketio.AsyncManager()))
    assert up == (True, {"status": "ready", "database": "ok", "redis": "not_used"})
    down = asyncio.run(health.readiness(store, SimpleNamespace(redis=DownRedis())))
    assert down == (False, {"status": "unavailable", "database": "ok", "redis": "unavailable"})
    gone = Store("postgresql+psycopg2://postgres@127.0.0.1:9/none", create_tables=False)
    assert asyncio.run(health.readiness(gone, None))[1]["database"] == "unavailable"
    store.dispose()


def test_index_is_served_as_html() -> None:
    status, headers, body = request("GET", "/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "在线客服".encode() in body


@pytest.mark.parametrize(
    "path", ["/../pyproject.toml", "/static/../../pyproject.toml", "/%2e%2e/app.py", "/nope.js"]
)
def test_no_escape_from_static(path: str) -> None:
    status, _, body = request("GET", path)
    assert status == 404
    assert json.loads(body)["code"] == "not_found"


def test_login_ok() -> None:
    login = {"username": "alice", "password": "right-password"}
    status, _, body = request("POST", "/api/login", json.dumps(login).encode())
    data = json.loads(body)
    assert status == 200
    assert data["token"] == "tok" and data["agent"]["agent_id"] == "alice"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"username": "alice", "password": "wrong"}', 401, "auth_failed"),
        (b"not json", 400, "invalid_input"),
        (b"[1, 2]", 400, "invalid_input"),
        (b'{"username": "alice"}', 400, "invalid_input"),
        (b'{"username": 5, "password": "x"}', 400, "invalid_input"),
        (b"\xff\xfe", 400, "invalid_input"),
        (b"{" + b" " * 20000 + b"}", 413, "invalid_input"),
    ],
)
def test_login_refusals(body: bytes, status: int, code: str) -> None:
    got, _, raw = request("POST", "/api/login", body)
    data = json.loads(raw)
    assert got == status and data["code"] == code
    assert data["message"]  # Chinese text for the console


def test_login_needs_post() -> None:
    status, _, _ = request("GET", "/api/login")
    assert status == 405


def test_field_validators() -> None:
    assert field_str({"a": "x"}, "a") == "x"
    assert field_str({}, "a", required=False) is None
    with pytest.raises(BadInput):
        field_str({}, "a")
    with pytest.raises(BadInput):
        field_str({"a": 1}, "a")
    with pytest.raises(BadInput):
        field_str({"a": "xx"}, "a", max_length=1)
    assert field_int({"n": 2}, "n") == 2
    with pytest.raises(BadInput):
        field_int({"n": True}, "n")
    with pytest.raises(BadInput):
        field_int({"n": "2"}, "n")
    with pytest.raises(BadInput):
        as_mapping(b"\x00binary")
    with pytest.raises(BadInput):
        as_mapping(None)
    assert as_mapping(None, allow_none=True) == {}


def test_client_manager_is_in_process_unless_redis_is_configured() -> None:
    for off in (None, ""):
        manager = client_manager(off)
        assert isinstance(manager, socketio.AsyncManager)
        assert not isinstance(manager, socketio.AsyncRedisManager)
    # Constructing does not connect, so no Redis server is needed here.
    assert isinstance(client_manager("redis://127.0.0.1:6399/0"), socketio.AsyncRedisManager)
