"""Fuzzing every borrower and agent socket.io event at the handler layer (no network).

The real namespaces, Delivery and HandoffService run against a temp SQLite store; only the
socket.io server is an in-memory stand-in (sessions, rooms, recorded emits) and Rasa a client
that answers nothing. For every generated payload — wrong types, missing fields, huge strings,
lone surrogates (what invalid UTF-8 decodes to), binary, deeply nested JSON, and plausible
values such as the real session id — the invariant is:

- the handler returns an ack `{"ok": bool, ...}`; no exception escapes;
- a refusal carries a known error code (never `handoff_error`, the code of an unexpected
  exception) and a Chinese message, is also emitted as `error` to the sender,
- and writes nothing: every table has the same number of rows before and after.

Connect handlers are fuzzed too: they either accept or refuse with ConnectionRefusedError.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from handoff import errors
from handoff.agent_namespace import AgentNamespace
from handoff.borrower_auth import BorrowerTokens, mint_borrower_token
from handoff.borrower_namespace import BorrowerNamespace
from handoff.canned import load_canned
from handoff.compliance import Compliance, ComplianceBlocked
from handoff.delivery import AGENT_NS, BORROWER_NS, Delivery
from handoff.policy import Policy
from handoff.service import HandoffService
from handoff.settings import Settings
from handoff.store import Store, schema
from handoff.store_calls import store_runner

REPO = Path(__file__).resolve().parents[3]
T = TypeVar("T")
SECRET = secrets.token_urlsafe(48)
PASSWORD = "fuzz-password-1"
TABLES = (schema.sessions, schema.messages, schema.transitions, schema.notes, schema.csat,
          schema.callbacks, schema.agents)
KNOWN_CODES = {
    cls.code for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.HandoffError)
} | {ComplianceBlocked.code}
FUZZ = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class FakeServer:
    """What the namespaces and Delivery use of socketio.AsyncServer, in memory."""

    def __init__(self) -> None:
        self.sessions: dict[tuple[str, str], dict[str, Any]] = {}
        self.emitted: list[tuple[str, Any, str | None, str | None]] = []
        self.manager = self

    async def emit(self, event: str, data: Any = None, to: str | None = None,
                   room: str | None = None, namespace: str | None = None,
                   **_: Any) -> None:
        self.emitted.append((event, data, to or room, namespace))

    async def get_session(self, sid: str, namespace: str | None = None) -> dict[str, Any]:
        return self.sessions[(namespace or "/", sid)]

    async def save_session(self, sid: str, session: dict[str, Any],
                           namespace: str | None = None) -> None:
        self.sessions[(namespace or "/", sid)] = dict(session)

    async def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        return None

    async def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        return None

    async def disconnect(self, sid: str, namespace: str | None = None, **_: Any) -> None:
        return None

    def get_participants(self, namespace: str, room: str) -> list[str]:
        return []


class SilentRasa:
    """A Rasa that answers every message with no replies (the bot stays quiet)."""

    async def send_message(self, session_id: str, text: str, metadata: Any = None) -> list[Any]:
        return []

    async def append_events(self, session_id: str, events: Any) -> None:
        return None


@dataclass
class Harness:
    service: HandoffService
    store: Store
    server: FakeServer
    borrower: BorrowerNamespace
    agent: AgentNamespace
    delivery: Delivery
    loop: asyncio.AbstractEventLoop
    session_id: str = ""
    agent_token: str = ""
    borrower_token: str = ""
    checked: dict[str, int] = field(default_factory=dict)

    def run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)  # type: ignore[arg-type]

    def counts(self) -> tuple[int, ...]:
        """Row counts once every bot turn in flight has landed: an accepted message forwards
        to Rasa in the background, and that turn's writes belong to it, not to the next check."""
        self.run(self.delivery.drain(timeout=30))
        with self.store.read() as conn:
            return tuple(int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                         for t in TABLES)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    tmp = tmp_path_factory.mktemp("fuzz")
    cfg = Settings.from_env({
        "HANDOFF_VAR_DIR": str(tmp), "HANDOFF_DB_URL": f"sqlite:///{tmp / 'h.sqlite'}",
        "HANDOFF_SECRET": secrets.token_urlsafe(40), "HANDOFF_BORROWER_RATE": "100000/60",
        "HANDOFF_AGENT_RATE": "100000/60", "HANDOFF_SERVICE_HOURS": "00:00-23:59",
        "HANDOFF_POLICY_FILE": str(REPO / "config" / "handoff.yml"),
    })
    store = Store(cfg.db_url)
    service = HandoffService(store, Policy.load(cfg.policy_file), cfg,
                             lambda: datetime.now(timezone.utc))
    server = FakeServer()
    # Store calls run as the gateway runs them on this store (on the loop, for SQLite).
    delivery = Delivery(server, SilentRasa(), service,  # type: ignore[arg-type]
                        store_runner(cfg.store_calls, store.is_sqlite))
    compliance = Compliance.load()
    borrower = BorrowerNamespace(service, delivery, cfg.max_message_length,
                                 tokens=BorrowerTokens(SECRET, False,
                                                       lambda: datetime.now(timezone.utc)))
    agent = AgentNamespace(service, delivery, cfg.max_message_length, compliance=compliance,
                           canned=load_canned(compliance=compliance))
    borrower._set_server(server)
    agent._set_server(server)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    h = Harness(service, store, server, borrower, agent, delivery, loop)
    service.create_agent("alice", "小李", PASSWORD, ["general"], max_sessions=50)
    h.agent_token = service.login("alice", PASSWORD).token
    h.borrower_token = mint_borrower_token("user-1", SECRET, datetime.now(timezone.utc))
    h.run(borrower.on_connect("b1", {}, {"token": h.borrower_token}))
    h.session_id = h.run(borrower.on_session_request("b1", {"session_id": None}))["session_id"]
    h.run(agent.on_connect("a1", {}, {"token": h.agent_token}))
    try:
        yield h
    finally:
        if os.environ.get("FUZZ_STATS"):
            print("\nfuzz outcomes:", dict(sorted(h.checked.items())))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        store.dispose()


def held_session(h: Harness) -> str:
    """A fresh session queued and claimed by alice, so agent events reach deep code paths."""
    sid = h.service.open_session(None, None).session.session_id
    h.service.record_borrower_message(sid, "转人工")
    h.service.accept_bot_replies(sid, [{"custom": {"handoff": {"reason": "unresolved_turns"}}}])
    h.service.claim("alice", sid)
    return sid


# --- strategies ----------------------------------------------------------------------------

SURROGATES = st.sampled_from(["\ud800", "a\udfffb", "\udc80\udc81", "你好\ud83d"])
any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=40)
huge = st.sampled_from(["长" * 100_000, "a" * 1_000_000, "<script>" * 10_000,
                        "6222021234567890" * 1000])


# Text a person might send, and the same with the headline junk mixed in.
chat_text = st.one_of(st.just("您好，请问怎么还款"), any_text,
                      st.builds(lambda junk_part: f"你好{junk_part}", SURROGATES), huge,
                      st.sampled_from(["<script>alert(1)</script>", "", "   ", "\x00\x07"]))


def nested(depth: int, as_dict: bool) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value} if as_dict else [value]
    return value


deep = st.builds(nested, st.integers(50, 3000), st.booleans())
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), any_text, SURROGATES,
                    st.binary(max_size=20))
json_like = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(any_text, inner, max_size=4), max_leaves=12)
junk = st.one_of(json_like, huge, deep)


def plausible(h: Harness, key: str) -> st.SearchStrategy[Any]:
    """Values that pass the type checks, to reach validation deeper down."""
    by_key: dict[str, st.SearchStrategy[Any]] = {
        "session_id": st.sampled_from([h.session_id] * 3 + ["nope", "x" * 200]),
        "message": chat_text,
        "text": chat_text,
        "client_msg_id": st.one_of(st.none(), st.text(min_size=1, max_size=10),
                                   st.just("x" * 200)),
        "score": st.integers(-3, 8),
        "last_seq": st.integers(-5, 10**12),
        "phone": st.sampled_from(["13812345678", "+86 138 1234 5678", "12345", ""]),
        "window_start": st.sampled_from(["2030-01-01T10:00:00+08:00", "明天", "2020-01-01"]),
        "window_end": st.sampled_from(["2030-01-01T11:00:00+08:00", "后天", "9999-99-99"]),
        "presence": st.sampled_from(["online", "away", "offline", "asleep"]),
        "disposition": st.sampled_from(["resolved", "return_to_bot", "vanish"]),
        "status": st.sampled_from(["pending", "done", "cancelled", "lost"]),
        "to_skill": st.sampled_from([None, "general", "fraud", "nope"]),
        "to_agent": st.sampled_from([None, None, "alice", "nobody"]),
        "comment": st.one_of(st.none(), st.just("服务很好"), any_text),
        "id": st.integers(-1, 5),
        "typing": st.booleans(),
        "auth_token": st.sampled_from([h.borrower_token, "bad.token.x"]),
        "customData": st.one_of(st.none(), st.dictionaries(st.text(max_size=5),
                                                           st.text(max_size=5), max_size=3),
                                deep),
    }
    return by_key.get(key, any_text)


def payloads(h: Harness, keys: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Whole objects of plausible values (reach the service), objects with some fields junk
    or missing, and non-objects (junk, null)."""
    good = st.fixed_dictionaries({k: plausible(h, k) for k in keys})
    mixed = st.fixed_dictionaries({}, optional={k: st.one_of(plausible(h, k), junk)
                                                for k in keys})
    extra = st.builds(lambda base, more: {**more, **base}, good,
                      st.dictionaries(any_text, junk, max_size=2))
    return st.one_of(good, good, mixed, mixed, extra, junk, st.just(None))


BORROWER_EVENTS: dict[str, tuple[str, ...]] = {
    "session_request": ("session_id", "last_seq", "auth_token"),
    "user_uttered": ("message", "session_id", "client_msg_id", "customData"),
    "user_typing": ("session_id", "typing"),
    "csat": ("session_id", "score", "comment"),
    "callback_request": ("session_id", "phone", "window_start", "window_end"),
}
AGENT_EVENTS: dict[str, tuple[str, ...]] = {
    "presence": ("presence",),
    "queue": (),
    "claim": ("session_id",),
    "message": ("session_id", "text", "client_msg_id"),
    "canned": (),
    "typing": ("session_id", "typing"),
    "note": ("session_id", "text"),
    "transfer": ("session_id", "to_agent", "to_skill"),
    "close": ("session_id", "disposition"),
    "transcript": ("session_id",),
    "callbacks": ("status",),
    "callback_status": ("id", "status"),
    "agents": (),
}


def check_one(h: Harness, namespace: Any, ns_name: str, sid: str, event: str,
              payload: Any) -> None:
    handler = getattr(namespace, f"on_{event}")
    # An earlier accepted message may still be on its way to (the silent) Rasa, whose empty
    # answer hands the session off in the background: let it land before counting rows.
    h.run(namespace.delivery.drain())
    before = h.counts()
    mark = len(h.server.emitted)
    ack = h.run(handler(sid, payload))
    after = h.counts()
    assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), ack
    outcome = f"{event}:{'ok' if ack['ok'] else ack.get('code')}"
    h.checked[outcome] = h.checked.get(outcome, 0) + 1
    if ack["ok"]:
        return
    assert ack["code"] != "handoff_error", f"unexpected exception for {event}: {payload!r:.300}"
    assert ack["code"] in KNOWN_CODES, ack
    assert isinstance(ack["message"], str) and ack["message"], ack
    errors_sent = [d for e, d, to, ns in h.server.emitted[mark:]
                   if e == "error" and to == sid and ns == ns_name]
    assert errors_sent and errors_sent[-1]["code"] == ack["code"]
    assert after == before, f"{event} refused ({ack['code']}) but wrote rows: {before}→{after}"


@pytest.mark.parametrize("event", sorted(BORROWER_EVENTS))
def test_borrower_events_survive_fuzzing(harness: Harness, event: str) -> None:
    h = harness

    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        payload = data.draw(payloads(h, BORROWER_EVENTS[event]), label="payload")
        check_one(h, h.borrower, BORROWER_NS, "b1", event, payload)
        if event == "session_request":  # it may have moved the socket to another session
            h.run(h.borrower.on_session_request("b1", {"session_id": h.session_id}))

    run()


@pytest.mark.parametrize("event", sorted(AGENT_EVENTS))
def test_agent_events_survive_fuzzing(harness: Harness, event: str) -> None:
    h = harness
    held = held_session(h)
    keys = AGENT_EVENTS[event]

    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        payload = data.draw(payloads(h, keys), label="payload")
        if isinstance(payload, dict) and "session_id" in payload and data.draw(st.booleans()):
            payload["session_id"] = held  # a session alice holds (until a fuzzed close)
        check_one(h, h.agent, AGENT_NS, "a1", event, payload)
        if event == "presence":
            h.run(h.agent.on_presence("a1", {"presence": "online"}))

    run()


@FUZZ
@given(auth=st.one_of(junk, st.fixed_dictionaries({}, optional={"token": junk})),
       query=st.one_of(st.none(), any_text, SURROGATES, st.just("token=a.b.c&x=1")))
def test_connect_handlers_accept_or_refuse_cleanly(harness: Harness, auth: Any,
                                                   query: str | None) -> None:
    h = harness
    environ = {} if query is None else {"QUERY_STRING": query}
    before = h.counts()
    for namespace in (h.borrower, h.agent):
        try:
            h.run(namespace.on_connect("fuzz", environ, auth))
        except socketio.exceptions.ConnectionRefusedError as refusal:
            data = refusal.error_args.get("data") if isinstance(refusal.error_args, dict) else None
            assert isinstance(data, dict) and data["code"] in KNOWN_CODES, refusal.error_args
    assert h.counts()[:6] == before[:6]  # agents may change presence, never gain rows


def test_lone_surrogates_and_huge_texts_are_refused_by_name(harness: Harness) -> None:
    """Not left to chance: the headline cases of the issue, each refused and nothing stored."""
    h = harness
    h.run(h.borrower.on_session_request("b1", {"session_id": h.session_id}))
    for text in ("半个\ud800字符", "长" * 100_000, "\x00"):
        before = h.counts()
        ack = h.run(h.borrower.on_user_uttered("b1", {"message": text,
                                                      "session_id": h.session_id}))
        assert ack["ok"] is False and ack["code"] == "invalid_input"
        assert h.counts() == before
    ack = h.run(h.borrower.on_user_uttered("b1", {"message": "你好", "session_id": h.session_id,
                                                  "customData": nested(5000, True)}))
    assert ack["ok"] is False and ack["code"] == "invalid_input"
    # ... while the same socket still works.
    assert h.run(h.borrower.on_user_uttered("b1", {"message": "你好",
                                                   "session_id": h.session_id}))["ok"] is True


def test_a_socket_whose_token_turned_bad_gets_auth_failed(harness: Harness) -> None:
    h = harness
    forged = h.agent_token + "x"
    h.server.sessions[(AGENT_NS, "a2")] = {"agent_id": "alice", "token": forged}
    before = h.counts()
    ack = h.run(h.agent.on_message("a2", {"session_id": h.session_id, "text": "你好"}))
    assert ack["ok"] is False and ack["code"] == "auth_failed"
    assert h.counts() == before


WELL_FORMED: dict[str, dict[str, Any]] = {
    "presence": {"presence": "online"},
    "queue": {},
    "claim": {"session_id": "S"},
    "message": {"session_id": "S", "text": "您好"},
    "canned": {},
    "typing": {"session_id": "S", "typing": True},
    "note": {"session_id": "S", "text": "备注"},
    "transfer": {"session_id": "S", "to_skill": "general"},
    "close": {"session_id": "S", "disposition": "resolved"},
    "transcript": {"session_id": "S"},
    "callbacks": {"status": "pending"},
    "callback_status": {"id": 1, "status": "done"},
    "agents": {},
}


def test_every_agent_event_is_covered() -> None:
    handlers = {name[3:] for name in dir(AgentNamespace)
                if name.startswith("on_") and name not in ("on_connect", "on_disconnect")}
    assert handlers == set(AGENT_EVENTS) == set(WELL_FORMED)
    borrower = {name[3:] for name in dir(BorrowerNamespace)
                if name.startswith("on_") and name not in ("on_connect", "on_disconnect")}
    assert borrower == set(BORROWER_EVENTS)


@pytest.mark.parametrize("event", sorted(WELL_FORMED))
def test_every_agent_event_needs_a_valid_token(harness: Harness, event: str) -> None:
    """A well-formed event from a socket whose token no longer verifies does nothing."""
    h = harness
    sid = held_session(h)
    payload = {k: (sid if v == "S" else v) for k, v in WELL_FORMED[event].items()}
    forged = h.agent_token[:-2] + ("xx" if not h.agent_token.endswith("xx") else "yy")
    h.server.sessions[(AGENT_NS, "intruder")] = {"agent_id": "alice", "token": forged}
    before = h.counts()
    ack = h.run(getattr(h.agent, f"on_{event}")("intruder", payload))
    assert ack == {"ok": False, "code": "auth_failed", "message": "身份验证失败，请重新登录"}
    assert h.counts() == before
