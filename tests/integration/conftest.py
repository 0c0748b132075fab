"""Fixtures: the gateway under uvicorn (in a thread, free loopback port, temp SQLite DB),
a scripted stand-in Rasa, agents in the store, and real socket.io clients.

Point the gateway at a real Rasa with LOANBOT_TEST_RASA_URL (and LOANBOT_TEST_RASA_TOKEN);
tests that need the stand-in's scripted rules take the `fake_rasa` fixture and skip then.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import socketio
import uvicorn
from sqlalchemy import func, select

from handoff.app import Gateway, build_gateway
from handoff.auth import hash_password
from handoff.settings import Settings
from handoff.store import repo
from handoff.store.schema import messages
from tests.integration.fake_rasa import FakeRasa, free_port

ROOT = Path(__file__).resolve().parents[2]
REAL_RASA_URL = os.environ.get("LOANBOT_TEST_RASA_URL")
PASSWORD = "s3cret-pass!"
WAIT = 8.0

# username, display name, skills, role
AGENTS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("alice", "小李", ("general",), "agent"),
    ("bob", "小王", ("general",), "agent"),
    ("carol", "小陈", ("complaints", "general"), "agent"),
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake_rasa() -> Iterator[FakeRasa]:
    if REAL_RASA_URL:
        pytest.skip("needs the scripted stand-in Rasa (LOANBOT_TEST_RASA_URL is set)")
    with FakeRasa(slow_seconds=1.5) as rasa:
        yield rasa


@dataclass
class GatewayServer:
    """A gateway process-in-a-thread; `service` is reachable for set-up and assertions."""

    gateway: Gateway
    port: int
    server: uvicorn.Server = field(init=False)
    thread: threading.Thread = field(init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = uvicorn.Config(
            self.gateway.app, host="127.0.0.1", port=self.port, ws="wsproto",
            lifespan="on", log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    def message_count(self, session_id: str | None = None) -> int:
        query = select(func.count()).select_from(messages)
        if session_id is not None:
            query = query.where(messages.c.session_id == session_id)
        with self.gateway.store.read() as conn:
            return int(conn.execute(query).scalar_one())

    def stored_texts(self, session_id: str) -> list[tuple[str, str]]:
        query = (
            select(messages.c.sender, messages.c.text)
            .where(messages.c.session_id == session_id)
            .order_by(messages.c.seq)
        )
        with self.gateway.store.read() as conn:
            return [(r.sender, r.text) for r in conn.execute(query)]

    def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        return http_json(f"{self.url}/api/login", {"username": username, "password": password})


def http_json(url: str, body: Any) -> dict[str, Any]:
    """POST JSON; returns {"status": code, **body} also for 4xx answers."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return {"status": resp.status, **json.loads(resp.read())}
    except urllib.error.HTTPError as err:
        return {"status": err.code, **json.loads(err.read())}


def add_agents(gateway: Gateway) -> None:
    now = datetime.now(timezone.utc)
    password_hash = hash_password(PASSWORD)
    with gateway.store.write() as conn:
        for username, name, skills, role in AGENTS:
            repo.insert_agent(conn, username=username, display_name=name,
                              password_hash=password_hash, skills=skills, role=role,
                              max_sessions=3, now=now)


GatewayFactory = Callable[..., GatewayServer]


class ShiftableClock:
    """UTC now plus a shift a test can move forward (token expiry, waiting times)."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.shift


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[GatewayFactory]:
    """Start gateways with a temp DB; keyword args become HANDOFF_* environment values."""
    started: list[GatewayServer] = []

    def start(
        rasa_url: str | None = None, clock: Callable[[], datetime] | None = None, **env: str
    ) -> GatewayServer:
        rasa = rasa_url or REAL_RASA_URL
        if rasa is None:
            raise AssertionError("give rasa_url (the fake_rasa fixture) or LOANBOT_TEST_RASA_URL")
        var_dir = tmp_path / f"var{len(started)}"
        environ = {
            "HANDOFF_DB_URL": f"sqlite:///{var_dir / 'handoff.sqlite'}",
            "HANDOFF_VAR_DIR": str(var_dir),
            "HANDOFF_SECRET": secrets.token_urlsafe(40),
            "HANDOFF_RASA_URL": rasa,
            "HANDOFF_RASA_TIMEOUT": "5",
            "HANDOFF_GRACE_SECONDS": "1",
            "HANDOFF_SERVICE_HOURS": "00:00-23:59",
            "HANDOFF_BORROWER_RATE": "1000/60",
            "HANDOFF_AGENT_RATE": "1000/60",
            "HANDOFF_POLICY_FILE": str(ROOT / "config" / "handoff.yml"),
            # gateways in the test process share its collector: no freeze here (test_main and
            # test_heap check the real process and settle itself)
            "HANDOFF_GC_YOUNG_THRESHOLD": "0",
            **{f"HANDOFF_{k.upper()}": v for k, v in env.items()},
        }
        if REAL_RASA_URL:
            environ["HANDOFF_RASA_TOKEN"] = os.environ.get("LOANBOT_TEST_RASA_TOKEN", "")
        gateway = build_gateway(Settings.from_env(environ), clock=clock or ShiftableClock())
        add_agents(gateway)
        server = GatewayServer(gateway, free_port())
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def rasa_url(request: pytest.FixtureRequest) -> str:
    """A real Rasa when LOANBOT_TEST_RASA_URL is set, else the stand-in (same instance as the
    test's `fake_rasa`)."""
    if REAL_RASA_URL:
        return REAL_RASA_URL
    fake: FakeRasa = request.getfixturevalue("fake_rasa")
    return fake.url


@pytest.fixture
def gateway(rasa_url: str, gateway_factory: GatewayFactory) -> GatewayServer:
    return gateway_factory(rasa_url)


# --- socket.io clients -----------------------------------------------------------------


class Client:
    """A real socket.io client (websocket transport) that records every event it gets."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self._arrived = asyncio.Event()
        self.sio.on("*", self._record, namespace=namespace)

    async def _record(self, event: str, *args: Any) -> None:
        self.events.append((event, args[0] if args else None))
        self._arrived.set()

    async def connect(self, url: str, auth: dict[str, Any] | None = None) -> None:
        await self.sio.connect(url, transports=["websocket"], namespaces=[self.namespace],
                               auth=auth, wait_timeout=WAIT)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()

    async def call(self, event: str, data: Any = None) -> Any:
        return await self.sio.call(event, data, namespace=self.namespace, timeout=WAIT)

    async def emit(self, event: str, data: Any = None) -> None:
        await self.sio.emit(event, data, namespace=self.namespace)

    async def wait_for(
        self, event: str, where: Callable[[Any], bool] = lambda _: True, timeout: float = WAIT
    ) -> Any:
        """The first not-yet-taken event of that name matching `where` (taken out)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for i, (name, data) in enumerate(self.events):
                if name == event and where(data):
                    del self.events[i]
                    return data
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                seen = [(n, d) for n, d in self.events][-10:]
                raise AssertionError(f"no {event!r} within {timeout}s; last events: {seen}")
            self._arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    def texts(self) -> list[str]:
        """Texts of bot_uttered events received and not yet taken."""
        return [d.get("text") for n, d in self.events if n == "bot_uttered" and d.get("text")]

    async def no_event(self, event: str, where: Callable[[Any], bool] = lambda _: True,
                       seconds: float = 1.0) -> None:
        await asyncio.sleep(seconds)
        matches = [d for n, d in self.events if n == event and where(d)]
        assert not matches, f"unexpected {event}: {matches}"


class Borrower(Client):
    session_id: str

    def __init__(self) -> None:
        super().__init__("/")

    async def open(self, url: str, session_id: str | None = None,
                   last_seq: int | None = None, **extra: Any) -> str:
        await self.connect(url)
        request: dict[str, Any] = {"session_id": session_id, **extra}
        if last_seq is not None:
            request["last_seq"] = last_seq
        await self.emit("session_request", request)
        self.session_id = await self.wait_for("session_confirm")
        return self.session_id

    async def say(self, text: str, **extra: Any) -> Any:
        return await self.call(
            "user_uttered", {"message": text, "session_id": self.session_id, **extra}
        )


class Agent(Client):
    def __init__(self) -> None:
        super().__init__("/agent")


@dataclass
class Helpers:
    server: GatewayServer
    made: list[Client]

    async def borrower(self, session_id: str | None = None,
                       last_seq: int | None = None, **extra: Any) -> Borrower:
        b = Borrower()
        self.made.append(b)
        await b.open(self.server.url, session_id, last_seq, **extra)
        return b

    async def agent(self, username: str) -> Agent:
        token = self.server.login(username)["token"]
        a = Agent()
        self.made.append(a)
        await a.connect(self.server.url, auth={"token": token})
        await a.wait_for("queue")
        return a

    async def queued(self, borrower: Borrower, text: str = "转人工") -> None:
        """Borrower asks for a human and the session reaches the queue."""
        await borrower.say(text)
        await borrower.wait_for("status", lambda s: s.get("state") == "queued")


@pytest.fixture
def h(fake_rasa: FakeRasa, gateway: GatewayServer, clients: list[Client]) -> Helpers:
    """Helpers for tests that rely on the stand-in's scripted replies."""
    return Helpers(gateway, clients)
