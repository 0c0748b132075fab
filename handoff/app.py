"""Gateway app factory: settings → store, service, socket.io server, ASGI app.

The socket.io client manager is in-process by default; with HANDOFF_REDIS_URL set it is a
Redis pub/sub manager so several gateway processes can share rooms. Plain HTTP (health,
login, the supervisor dashboard JSON, Prometheus metrics, static files for the chat page,
agent console and dashboard) is a tiny ASGI router rather than a framework, because the
gateway serves only a handful of routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import mimetypes
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import socketio

from handoff import dashboard, eio_ping, eio_websocket, health, heap, metrics, trainer_api
from handoff.agent_namespace import AgentNamespace
from handoff.borrower_auth import BorrowerTokens
from handoff.borrower_namespace import BorrowerNamespace
from handoff.canned import load_canned
from handoff.compliance import Compliance
from handoff.delivery import Delivery
from handoff.errors import (
    AuthError,
    HandoffError,
    PermissionDenied,
    StoreUnavailable,
    ValidationError,
)
from handoff.placement import Placement
from handoff.policy import Policy
from handoff.rasa_client import RasaClient
from handoff.replay_marks import LocalManager, LocalMarks, RedisManager, RedisMarks, ReplayMarks
from handoff.service import HandoffService
from handoff.settings import Settings
from handoff.sio_packet import LoanPacket
from handoff.store import Store
from handoff.store_calls import store_runner

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

STATIC_DIR = Path(__file__).parent / "static"
MAX_LOGIN_BODY = 16 * 1024
# Well above the text limit so an over-long message (even 1 MB of Chinese, JSON-escaped) gets
# a clear `error` event rather than a dropped connection; larger frames are refused by
# engine.io, which closes the connection.
MAX_SOCKET_FRAME = 4 * 1024 * 1024
TICK_SECONDS = 1.0
WORKER_THREADS = 32
DEFAULT_PERIOD = timedelta(days=1)
MAX_PERIOD = timedelta(days=366)
# Our pages load scripts and styles only from this origin and talk only to it; with every
# data value rendered through textContent this is the second line against XSS.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https:; connect-src 'self' ws: wss:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Gateway:
    """Everything one gateway process runs; `app` is what uvicorn serves."""

    settings: Settings
    store: Store
    service: HandoffService
    rasa: RasaClient
    sio: socketio.AsyncServer
    delivery: Delivery
    unresolved_limit: int = 3
    clock: Callable[[], datetime] = utc_now
    app: socketio.ASGIApp = field(init=False)
    _ticker: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        router = HttpRouter(self)
        self.app = socketio.ASGIApp(
            self.sio, other_asgi_app=router, on_startup=self.startup, on_shutdown=self.shutdown
        )

    async def startup(self) -> None:
        # Service calls run in worker threads; the default pool (cores + 4) is small.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="handoff")
        )
        # No agent socket survived a restart: start every still-present agent's grace period
        # before the first tick, so tick() can requeue their sessions if they do not return.
        run_store = self.delivery.run_store
        await run_store(self.service.recover_after_restart)
        await self.delivery.deliver(await run_store(self.service.recover_pending_turns))
        self._ticker = asyncio.ensure_future(self._tick_forever())
        heap.settle(self.settings.gc_young_threshold)  # all that lives as long as we do is built

    async def shutdown(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.delivery.drain()
        # Other gateway nodes should not wait for this node's heartbeat to expire.
        try:
            await self.delivery.deliver(await self.delivery.run_store(self.service.node_stopped))
        except Exception:
            log.exception("could not deregister this gateway node")
        await self.rasa.close()
        if isinstance(self.delivery.marks, RedisMarks):
            await self.delivery.marks.close()
        self.store.dispose()

    async def _tick_forever(self) -> None:
        """Grace-period expiry and other timed work lives in the service's tick()."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                effects = await self.delivery.run_store(self.service.tick)
                await self.delivery.deliver(effects)
            except StoreUnavailable:  # an outage, already logged by the store: no traceback
                continue
            except Exception:  # keep ticking: one failure must not stop requeues
                log.exception("tick failed")


def client_manager(redis_url: str | None, channel: str = "loanbot-socketio",
                   marks: ReplayMarks | None = None) -> socketio.AsyncManager:
    """In-process rooms by default; Redis pub/sub when several processes share them (every
    node of one deployment on the same channel). Either way the manager advances the
    borrowers' replay marks where the delivery happens (handoff.replay_marks)."""
    manager: LocalManager | RedisManager = (
        RedisManager(redis_url, channel=channel) if redis_url else LocalManager()
    )
    manager.marks = marks
    return manager


def build_gateway(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> Gateway:
    """Wire the gateway from settings (environment by default)."""
    settings = settings or Settings.from_env()
    store = Store(settings.db_url)
    policy = Policy.load(settings.policy_file)
    service = HandoffService(store, policy, settings, clock)
    rasa = RasaClient(
        settings.rasa_urls or settings.rasa_url,
        timeout_seconds=settings.rasa_timeout_seconds, token=settings.rasa_token,
        connections_per_instance=settings.rasa_connections,
        placement=Placement(settings.rasa_placement),
    )
    marks: ReplayMarks = (RedisMarks(settings.redis_url, settings.redis_channel)
                          if settings.redis_url else LocalMarks())
    eio_websocket.install()  # engine.io's websocket loop without a task per packet
    eio_ping.install()  # a closed socket's ping task ends with it, not 25 s later
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=client_manager(settings.redis_url, settings.redis_channel, marks),
        cors_allowed_origins=list(settings.cors_origins) or None,
        max_http_buffer_size=MAX_SOCKET_FRAME,
        logger=False,
        engineio_logger=False,
        serializer=LoanPacket,  # the binary check that stops at its answer (sio_packet.py)
    )
    delivery = Delivery(sio, rasa, service, store_runner(settings.store_calls, store.is_sqlite),
                        marks)
    compliance = Compliance.load()
    canned = load_canned(compliance=compliance)
    tokens = BorrowerTokens(settings.borrower_jwt_secret, settings.require_borrower_token, clock)
    sio.register_namespace(BorrowerNamespace(service, delivery, settings.max_message_length,
                                             tokens=tokens))
    agents_ns = AgentNamespace(service, delivery, settings.max_message_length,
                               compliance=compliance, canned=canned)
    sio.register_namespace(agents_ns)
    service.local_agent_sockets = agents_ns.local_sockets
    return Gateway(settings, store, service, rasa, sio, delivery,
                   unresolved_limit=policy.unresolved_turn_limit, clock=clock)


def create_app(settings: Settings | None = None) -> socketio.ASGIApp:
    """The ASGI app uvicorn serves (socket.io + the HTTP router)."""
    return build_gateway(settings).app


class HttpRouter:
    """GET /healthz (alive), GET /readyz (database/Redis reachable), POST /api/login,
    GET /api/dashboard, GET /metrics, static files; everything else 404 (JSON)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        method, path = scope["method"], scope["path"]
        if path == "/healthz" and method in ("GET", "HEAD"):
            await json_response(send, 200, {"status": "ok"})
        elif path == "/readyz" and method in ("GET", "HEAD"):
            ready, body = await health.readiness(self.gateway.store, self.gateway.sio.manager)
            await json_response(send, 200 if ready else 503, body)
        elif path == "/api/login":
            if method != "POST":
                await json_response(send, 405, {"code": "method_not_allowed",
                                                "message": "请使用 POST"})
            else:
                await self.login(receive, send)
        elif path == "/api/dashboard" and method == "GET":
            await self.dashboard(scope, send)
        elif path == "/metrics" and method == "GET":
            await self.metrics(scope, send)
        elif path == "/api/trainer/inbox" and method == "GET":
            await self.trainer_inbox(scope, send)
        elif method in ("GET", "HEAD"):
            await self.static(path, send, head=method == "HEAD")
        else:
            await json_response(send, 404, {"code": "not_found", "message": "未找到"})

    async def login(self, receive: Receive, send: Send) -> None:
        try:
            body = await read_body(receive, MAX_LOGIN_BODY)
            data = json.loads(body.decode("utf-8")) if body else None
            if not isinstance(data, dict):
                raise ValidationError("login body", message_zh="请求格式错误，应为 JSON 对象")
            username, password = data.get("username"), data.get("password")
            if not isinstance(username, str) or not isinstance(password, str) or not username:
                raise ValidationError("login fields", message_zh="请填写用户名和密码")
            result = await asyncio.to_thread(self.gateway.service.login, username, password)
        except (UnicodeDecodeError, json.JSONDecodeError):
            await json_response(send, 400, {"code": "invalid_input",
                                            "message": "请求格式错误，应为 JSON 对象"})
            return
        except BodyTooLarge:
            await json_response(send, 413, {"code": "invalid_input", "message": "请求内容过大"})
            return
        except HandoffError as err:
            status = 400 if isinstance(err, ValidationError) else 401
            if err.code == "rate_limited":
                status = 429
            await json_response(send, status, err.to_dict())
            return
        await json_response(send, 200, {
            "token": result.token,
            "expires_at": result.expires_at.isoformat(),
            "agent": result.agent.to_dict(),
        })

    async def dashboard(self, scope: Scope, send: Send) -> None:
        """Dashboard figures for ?from=&to= (ISO 8601; default the last 24 h). Supervisors
        only: `Authorization: Bearer <token from /api/login>`."""
        try:
            await self._supervisor(bearer_token(scope))
            now = self.gateway.clock()
            start, end = parse_period(scope, now)
            figures = await asyncio.to_thread(self._figures, start, end, now)
        except HandoffError as err:
            status = {"auth_failed": 401, "forbidden": 403}.get(err.code, 400)
            await json_response(send, status, err.to_dict())
            return
        await json_response(send, 200, figures)

    async def trainer_inbox(self, scope: Scope, send: Send) -> None:
        """The trainer inbox (handoff/trainer_api.py); trainers and supervisors only."""
        try:
            token = bearer_token(scope)
        except HandoffError as err:
            await json_response(send, 401, err.to_dict())
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        status, body = await trainer_api.handle(self.gateway, token, query)
        await json_response(send, status, body)

    def _figures(self, start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
        with self.gateway.store.read() as conn:
            return dashboard.compute(conn, start, end, now,
                                     unresolved_limit=self.gateway.unresolved_limit)

    async def _supervisor(self, token: str) -> None:
        """AuthError unless `token` is a live supervisor's; PermissionDenied for other roles."""
        agent = await asyncio.to_thread(self.gateway.service.agent_from_token, token)
        if agent.role != "supervisor":
            raise PermissionDenied("needs the supervisor role",
                                   message_zh="仅主管可查看数据看板")

    async def metrics(self, scope: Scope, send: Send) -> None:
        """Prometheus text: all-time counters and the queue now (no personal data, but
        business figures): `Authorization: Bearer` with a supervisor's login token, or the
        scraper's HANDOFF_METRICS_TOKEN."""
        try:
            token = bearer_token(scope)
            scraper = self.gateway.settings.metrics_token
            if not (scraper and hmac.compare_digest(token.encode(), scraper.encode())):
                await self._supervisor(token)
        except HandoffError as err:
            status = {"auth_failed": 401, "forbidden": 403}.get(err.code, 400)
            await json_response(send, status, err.to_dict())
            return
        now = self.gateway.clock()
        figures = await asyncio.to_thread(
            self._figures, datetime(1970, 1, 1, tzinfo=timezone.utc), now + timedelta(days=1),
            now,
        )
        data = metrics.render(figures, self.gateway.rasa.calls_now()).encode("utf-8")
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/plain; version=0.0.4; charset=utf-8"),
            (b"content-length", str(len(data)).encode()),
            (b"cache-control", b"no-store"),
        ]})
        await send({"type": "http.response.body", "body": data})

    async def static(self, path: str, send: Send, *, head: bool) -> None:
        """Files under handoff/static/; `/` is index.html. No path escapes the folder."""
        relative = "index.html" if path in ("/", "") else path.lstrip("/")
        if relative.startswith("static/"):
            relative = relative[len("static/"):]
        root = STATIC_DIR.resolve()
        target = (root / relative).resolve()
        if target.is_dir():
            target = target / "index.html"
        if root not in target.parents or not target.is_file():
            await json_response(send, 404, {"code": "not_found", "message": "未找到"})
            return
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        body = b"" if head else target.read_bytes()
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(target.stat().st_size).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"cache-control", b"no-cache"),
        ]
        if content_type.startswith("text/html"):
            headers += [(b"content-security-policy", CSP.encode()),
                        (b"referrer-policy", b"no-referrer")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass


def bearer_token(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            text = value.decode("latin-1")
            if text.lower().startswith("bearer ") and text[7:].strip():
                return text[7:].strip()
    raise AuthError("no bearer token", message_zh="请先登录")


def parse_period(scope: Scope, now: datetime) -> tuple[datetime, datetime]:
    """?from=&to= as ISO 8601 (a bare time counts as UTC); default the last 24 hours."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))

    def when(key: str) -> datetime | None:
        values = query.get(key)
        if not values or not values[0]:
            return None
        try:
            value = datetime.fromisoformat(values[0].replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"bad {key}", message_zh=f"参数 {key} 时间格式错误") from None
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    end = when("to") or now
    start = when("from") or end - DEFAULT_PERIOD
    if start >= end or end - start > MAX_PERIOD:
        raise ValidationError("bad period",
                              message_zh="时间范围无效（开始须早于结束，且不超过一年）")
    return start, end


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def json_response(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"no-store"),
    ]})
    await send({"type": "http.response.body", "body": data})
