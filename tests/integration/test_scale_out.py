"""Two gateway processes on PostgreSQL + Redis: events cross nodes, and killing a node loses
nothing. A borrower on node A and an agent on node B talk; node A is SIGKILLed; the borrower
reconnects to node B with the same session and gets what it missed; the agent keeps the
session. And the other way round: the agent's node dies and its console reconnects to the
surviving node within the grace period; if it never comes back, the surviving node requeues
its session at the front once the dead node's TTL and the grace have passed (nothing stuck).

Needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (skipped with the reason if
either is absent). The gateways are real `python -m handoff` processes; Rasa is the scripted
stand-in (tests/integration/fake_rasa.py).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from handoff.service import Texts
from handoff.store.schema import messages, sessions, transitions
from tests.integration.conftest import PASSWORD, Agent, Borrower, Client, http_json
from tests.integration.fake_rasa import HANDOFF_NOTICE, SLOW_REPLY, FakeRasa
from tests.integration.scale import (
    REDIS_URL,
    ROOT,
    Node,
    add_agents,
    drop_redis_keys,
    postgres_missing,
    redis_missing,
    scratch_database,
    start_node,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NODE_TTL = 3
GRACE = 20


@pytest.fixture(scope="module")
def services_present() -> None:
    for reason in (postgres_missing(), redis_missing()):
        if reason:
            pytest.skip(reason)


@pytest.fixture
def db_url(services_present: None) -> Iterator[str]:
    with scratch_database("loanbot_scale") as url:
        add_agents(url, [("alice", "小李", ("general",))], PASSWORD)
        yield url


NodeFactory = Callable[..., Node]


@pytest.fixture
def nodes(db_url: str, fake_rasa: FakeRasa, tmp_path: Path) -> Iterator[NodeFactory]:
    """Start gateway nodes sharing one database, one Redis channel and one token secret."""
    env = {
        "HANDOFF_DB_URL": db_url,
        "HANDOFF_REDIS_URL": REDIS_URL,
        "HANDOFF_REDIS_CHANNEL": f"loanbot-test-{secrets.token_hex(6)}",
        "HANDOFF_SECRET": secrets.token_urlsafe(40),
        "HANDOFF_RASA_URL": fake_rasa.url,
        "HANDOFF_RASA_TIMEOUT": "5",
        "HANDOFF_NODE_TTL": str(NODE_TTL),
        "HANDOFF_GRACE_SECONDS": str(GRACE),
        "HANDOFF_SERVICE_HOURS": "00:00-23:59",
        "HANDOFF_BORROWER_RATE": "1000/60",
        "HANDOFF_AGENT_RATE": "1000/60",
        "HANDOFF_POLICY_FILE": str(ROOT / "config" / "handoff.yml"),
    }
    started: list[Node] = []

    def start(node_id: str, **extra: str) -> Node:
        node = start_node(node_id, tmp_path, {**env, **extra})
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()
    drop_redis_keys(f"{env['HANDOFF_REDIS_CHANNEL']}:*")


def ok(ack: Any) -> dict[str, Any]:
    assert isinstance(ack, dict) and ack.get("ok") is True, ack
    return ack


async def borrower_at(node: Node, made: list[Client], session_id: str | None = None,
                      last_seq: int | None = None) -> Borrower:
    b = Borrower()
    made.append(b)
    await b.open(node.url, session_id, last_seq)
    return b


async def agent_at(node: Node, made: list[Client], username: str = "alice") -> Agent:
    token = http_json(f"{node.url}/api/login", {"username": username, "password": PASSWORD})
    a = Agent()
    made.append(a)
    await a.connect(node.url, auth={"token": token["token"]})
    return a


def seqs(client: Client) -> int:
    return max((d.get("metadata", {}).get("seq") or 0
                for n, d in client.events if n == "bot_uttered"), default=0)


def stored(db_url: str, session_id: str) -> list[tuple[str, str]]:
    engine = create_engine(db_url, future=True)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(messages.c.sender, messages.c.text)
                                .where(messages.c.session_id == session_id)
                                .order_by(messages.c.seq))
            return [(r.sender, r.text) for r in rows]
    finally:
        engine.dispose()


def session_row(db_url: str, session_id: str) -> tuple[Any, list[str]]:
    engine = create_engine(db_url, future=True)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(sessions).where(sessions.c.id == session_id)).one()
            events = [r.event for r in conn.execute(
                select(transitions.c.event).where(transitions.c.session_id == session_id)
                .order_by(transitions.c.id))]
            return row, events
    finally:
        engine.dispose()


async def test_borrower_survives_its_node_being_killed(
        nodes: NodeFactory, db_url: str, made: list[Client]) -> None:
    node_a, node_b = nodes("node-a"), nodes("node-b")
    agent = await agent_at(node_b, made)
    await agent.wait_for("queue")
    borrower = await borrower_at(node_a, made)
    sid = borrower.session_id

    ok(await borrower.say("转人工"))
    await borrower.wait_for("status", lambda s: s.get("state") == "queued")
    # The queue update was emitted by node A and reached the agent on node B (Redis manager).
    await agent.wait_for("queue", lambda q: sid in [e["session_id"] for e in q["entries"]])
    ok(await agent.call("claim", {"session_id": sid}))
    joined = Texts.AGENT_JOINED.format(name="小李")
    await borrower.wait_for("bot_uttered", lambda d: d.get("text") == joined)

    ok(await borrower.say("我的还款日能改吗"))
    await agent.wait_for("message", lambda m: m.get("text") == "我的还款日能改吗")
    ok(await agent.call("message", {"session_id": sid, "text": "可以的，请稍等"}))
    await borrower.wait_for("bot_uttered", lambda d: d.get("text") == "可以的，请稍等")
    last_seen = seqs(borrower)

    node_a.kill()
    missed = ["已为您查询到账单", "还款日可改为每月15日"]
    for text in missed:  # the borrower is offline: stored, emitted to an empty room
        ok(await agent.call("message", {"session_id": sid, "text": text}))

    again = await borrower_at(node_b, made, sid, last_seq=last_seen)
    assert again.session_id == sid
    replayed = [await again.wait_for("bot_uttered", lambda d, t=t: d.get("text") == t)
                for t in missed]
    assert all(r["metadata"]["replayed"] for r in replayed)
    assert [r["metadata"]["seq"] for r in replayed] == sorted(r["metadata"]["seq"]
                                                               for r in replayed)
    status = await again.wait_for("status")
    assert (status["state"], status.get("agent_name")) == ("assigned", "小李")

    ok(await again.say("好的，谢谢"))
    await agent.wait_for("message", lambda m: m.get("text") == "好的，谢谢")
    ok(await agent.call("message", {"session_id": sid, "text": "不客气"}))
    await again.wait_for("bot_uttered", lambda d: d.get("text") == "不客气")

    await asyncio.sleep(NODE_TTL + 2)  # node A is now taken for dead by node B
    row, events = session_row(db_url, sid)
    assert (row.state, row.agent_id) == ("assigned", "alice")
    assert "agent_lost" not in events
    assert stored(db_url, sid) == [
        ("borrower", "转人工"), ("bot", HANDOFF_NOTICE), ("system", joined),
        ("borrower", "我的还款日能改吗"), ("agent", "可以的，请稍等"),
        ("agent", missed[0]), ("agent", missed[1]),
        ("borrower", "好的，谢谢"), ("agent", "不客气"),
    ]


async def test_agent_console_moves_to_the_surviving_node_within_the_grace(
        nodes: NodeFactory, db_url: str, made: list[Client]) -> None:
    node_a, node_b = nodes("node-a"), nodes("node-b")
    agent = await agent_at(node_a, made)
    await agent.wait_for("queue")
    borrower = await borrower_at(node_b, made)
    sid = borrower.session_id
    ok(await borrower.say("转人工"))
    await agent.wait_for("queue", lambda q: sid in [e["session_id"] for e in q["entries"]])
    ok(await agent.call("claim", {"session_id": sid}))

    node_a.kill()
    ok(await borrower.say("客服还在吗"))  # stored while the agent has no socket
    await asyncio.sleep(NODE_TTL + 2)  # node A is taken for dead: the grace has started
    _, events = session_row(db_url, sid)
    assert "agent_lost" not in events

    console = await agent_at(node_b, made)
    hello = await console.wait_for("hello")
    [held] = hello["held"]
    assert held["session"]["session_id"] == sid
    assert "客服还在吗" in [m["text"] for m in held["messages"]]
    ok(await console.call("message", {"session_id": sid, "text": "在的，请讲"}))
    await borrower.wait_for("bot_uttered", lambda d: d.get("text") == "在的，请讲")

    await asyncio.sleep(2)
    row, events = session_row(db_url, sid)
    assert (row.state, row.agent_id) == ("assigned", "alice")
    assert "agent_lost" not in events
    texts = stored(db_url, sid)
    assert texts.count(("borrower", "客服还在吗")) == 1
    assert texts[-1] == ("agent", "在的，请讲")


async def test_session_of_an_agent_lost_with_its_node_is_requeued(
        nodes: NodeFactory, db_url: str, made: list[Client]) -> None:
    short = {"HANDOFF_GRACE_SECONDS": "2"}
    node_a, node_b = nodes("node-a", **short), nodes("node-b", **short)
    agent = await agent_at(node_a, made)
    await agent.wait_for("queue")
    borrower = await borrower_at(node_b, made)
    sid = borrower.session_id
    ok(await borrower.say("转人工"))
    await agent.wait_for("queue", lambda q: sid in [e["session_id"] for e in q["entries"]])
    ok(await agent.call("claim", {"session_id": sid}))
    await borrower.wait_for("status", lambda s: s.get("state") == "assigned")

    node_a.kill()  # no disconnect event ever reaches any node: only the heartbeat tells
    lost = await borrower.wait_for("bot_uttered", lambda d: d.get("text") == Texts.AGENT_LOST,
                                   timeout=NODE_TTL + 2 + 8)
    assert lost["metadata"]["sender"] == "system"
    status = await borrower.wait_for("status", lambda s: s.get("state") == "queued")
    assert status["queue_position"] == 1
    row, events = session_row(db_url, sid)
    assert (row.state, row.requeued_front, row.agent_id) == ("queued", True, None)
    assert events.count("agent_lost") == 1


async def test_widget_without_last_seq_gets_what_it_missed_from_another_node(
        nodes: NodeFactory, made: list[Client]) -> None:
    """The stock rasa-webchat widget sends no last_seq: the replay mark (advanced on node A
    where its socket was, kept in Redis) tells node B what it already has."""
    node_a, node_b = nodes("node-a"), nodes("node-b")
    agent = await agent_at(node_b, made)
    await agent.wait_for("queue")
    borrower = await borrower_at(node_a, made)
    sid = borrower.session_id
    ok(await borrower.say("转人工"))
    await agent.wait_for("queue", lambda q: sid in [e["session_id"] for e in q["entries"]])
    ok(await agent.call("claim", {"session_id": sid}))
    ok(await agent.call("message", {"session_id": sid, "text": "已经收到的"}))
    await borrower.wait_for("bot_uttered", lambda d: d.get("text") == "已经收到的")
    await asyncio.sleep(0.3)  # node A records the mark after handing the event to the socket

    node_a.kill()
    for text in ("错过的一", "错过的二"):
        ok(await agent.call("message", {"session_id": sid, "text": text}))
    again = await borrower_at(node_b, made, sid)  # no last_seq
    replayed = [await again.wait_for("bot_uttered", lambda d, t=t: d.get("text") == t)
                for t in ("错过的一", "错过的二")]
    assert all(r["metadata"]["replayed"] for r in replayed)
    await again.no_event("bot_uttered", lambda d: d.get("metadata", {}).get("sender") == "agent",
                         seconds=0.5)  # "已经收到的" is not sent again


async def test_message_in_flight_to_rasa_when_its_node_dies_is_answered_by_another(
        nodes: NodeFactory, db_url: str, fake_rasa: FakeRasa, made: list[Client]) -> None:
    node_a, node_b = nodes("node-a"), nodes("node-b")
    borrower = await borrower_at(node_a, made)
    sid = borrower.session_id
    ack = ok(await borrower.say("慢慢说"))  # stored; the stand-in answers after 1.5 s
    node_a.kill()  # ...but node A dies while waiting for Rasa

    again = await borrower_at(node_b, made, sid, last_seq=ack["seq"])
    reply = await again.wait_for("bot_uttered", lambda d: d.get("text") == SLOW_REPLY,
                                 timeout=NODE_TTL + 2 + 8)
    assert reply["metadata"]["seq"] > ack["seq"]
    assert stored(db_url, sid) == [("borrower", "慢慢说"), ("bot", SLOW_REPLY)]
    # Rasa saw it from node B (and from node A too, unless A died before sending it); the
    # borrower got one answer.
    assert fake_rasa.texts_from(sid) in (["慢慢说"], ["慢慢说", "慢慢说"])
