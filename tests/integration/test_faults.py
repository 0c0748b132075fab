"""Faults with real processes: the gateway killed -9 and restarted (SQLite and PostgreSQL),
PostgreSQL and Redis crashing under a running gateway, Rasa killed mid-turn, an agent's
network dropping. After each: every message sent is stored exactly once, in order, and every
borrower client received the stored messages in order (replay on reconnect included).

PostgreSQL and Redis are private instances started here (never the shared ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from handoff.service import Texts
from tests.integration.conftest import Client, GatewayFactory, Helpers
from tests.integration.fake_rasa import GREETING_REPLY, SLOW_REPLY, FakeRasa
from tests.integration.processes import (
    PrivatePostgres,
    Proc,
    TcpProxy,
    add_agents,
    fake_rasa_process,
    gateway_process,
    private_postgres,
    private_redis,
    readyz,
)
from tests.integration.talk import Talk, agent_socket, has_text, ok, queue_and_claim, session_row

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as cluster:
        yield cluster


def fresh_database(cluster: PrivatePostgres) -> str:
    """A new database in the private cluster (one per test: no leftovers shared)."""
    import psycopg2

    name = f"faults_{secrets.token_hex(4)}"
    conn = psycopg2.connect(host="127.0.0.1", port=cluster.port, user="postgres",
                            dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    conn.close()
    return cluster.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'handoff.sqlite'}"
    return fresh_database(request.getfixturevalue("postgres"))


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


def started(procs: list[Proc], proc: Proc) -> Proc:
    procs.append(proc)
    proc.start()
    return proc


# --- the gateway killed and restarted ----------------------------------------------------


async def test_gateway_killed_and_restarted_keeps_sessions_and_transcripts(
    db_url: str, fake_rasa: FakeRasa, procs: list[Proc], made: list[Client], tmp_path: Path
) -> None:
    add_agents(db_url)
    # A grace long enough that a slow restart on a busy machine still finds alice in it.
    gw = started(procs, gateway_process(tmp_path / "gw", db_url, fake_rasa.url,
                                        grace_seconds="20"))
    alice = await agent_socket(gw.url, "alice", made)

    waiting, served = Talk(made), Talk(made)
    await waiting.open(gw.url)
    ok(await waiting.say("你好"))
    await waiting.wait_for("bot_uttered", has_text(GREETING_REPLY))
    ok(await waiting.say("转人工"))
    await waiting.wait_for("status", lambda s: s.get("state") == "queued")

    await served.open(gw.url)
    await queue_and_claim(served, alice)
    ok(await served.agent_says(alice, "您好，我是小李"))
    await served.wait_for("bot_uttered", has_text("您好，我是小李"))
    ok(await served.say("我想提前还款"))
    await alice.wait_for("message", has_text("我想提前还款"))

    await asyncio.to_thread(gw.kill)
    for client in made:
        await client.close()
    # The crash lost nothing that was acknowledged: both sessions are where they were.
    assert session_row(db_url, served.session_id)[:2] == ("assigned", "alice")
    assert session_row(db_url, waiting.session_id)[0] == "queued"

    await asyncio.to_thread(gw.start)  # same port, same database
    alice = await agent_socket(gw.url, "alice", made)  # back within the grace period
    hello = await alice.wait_for("hello")
    [held] = hello["held"]
    assert held["session"]["session_id"] == served.session_id
    assert [m["text"] for m in held["messages"] if m["sender"] == "borrower"] == served.sent

    await waiting.open(gw.url)
    await waiting.wait_for("status", lambda s: s.get("state") == "queued")
    await served.open(gw.url)
    await served.wait_for("status", lambda s: s.get("state") == "assigned")

    ok(await served.say("重启后还在吗"))
    await alice.wait_for("message", has_text("重启后还在吗"))
    ok(await served.agent_says(alice, "在的"))
    await served.wait_for("bot_uttered", has_text("在的"))
    ok(await alice.call("claim", {"session_id": waiting.session_id}))
    await waiting.wait_for("status", lambda s: s.get("state") == "assigned")
    ok(await waiting.say("终于接通了"))
    await alice.wait_for("message", has_text("终于接通了"))
    ok(await waiting.agent_says(alice, "让您久等了"))
    await waiting.wait_for("bot_uttered", has_text("让您久等了"))

    await waiting.check(db_url)
    await served.check(db_url)


# --- PostgreSQL crashes under a running gateway ------------------------------------------


async def test_postgres_restart_gives_clear_errors_then_recovers(
    postgres: PrivatePostgres, fake_rasa: FakeRasa, procs: list[Proc], made: list[Client],
    tmp_path: Path,
) -> None:
    url = fresh_database(postgres)
    add_agents(url)
    gw = started(procs, gateway_process(tmp_path / "gw", url, fake_rasa.url,
                                        grace_seconds="1"))
    alice = await agent_socket(gw.url, "alice", made)
    bob = await agent_socket(gw.url, "bob", made)
    bot_talk, human_talk, bobs_talk = Talk(made), Talk(made), Talk(made)
    await bot_talk.open(gw.url)
    ok(await bot_talk.say("你好"))
    await bot_talk.wait_for("bot_uttered", has_text(GREETING_REPLY))
    await human_talk.open(gw.url)
    await queue_and_claim(human_talk, alice)
    await bobs_talk.open(gw.url)
    await queue_and_claim(bobs_talk, bob)

    ok(await bot_talk.say("慢慢说"))  # the stand-in answers in 1.5 s: after the crash
    reply_due = asyncio.get_running_loop().time() + fake_rasa.slow_seconds + 1.0
    await asyncio.to_thread(postgres.stop, "immediate")
    try:
        await bob.close()  # bob's socket goes while his leaving cannot be recorded
        for talk, text, msg_id in ((bot_talk, "在吗", "b-1"), (human_talk, "人呢", "h-1")):
            ack = await talk.say(text, msg_id)
            assert ack["ok"] is False and ack["code"] == "store_unavailable", ack
            error = await talk.wait_for("error")
            assert error["code"] == "store_unavailable" and "未发送" in error["message"]
        ack = await human_talk.agent_says(alice, "请稍等", "a-1")
        assert ack["ok"] is False and ack["code"] == "store_unavailable", ack
        assert await asyncio.to_thread(readyz, gw.url) == (503, {
            "status": "unavailable", "database": "unavailable", "redis": "not_used"})
        await asyncio.sleep(max(0.0, reply_due - asyncio.get_running_loop().time()))
    finally:
        await asyncio.to_thread(postgres.start)
    assert (await asyncio.to_thread(readyz, gw.url))[0] == 200

    # The reply Rasa gave during the outage was kept and is stored and relayed now.
    await bot_talk.wait_for("bot_uttered", has_text(SLOW_REPLY))
    # No restart of the gateway, no manual step: the same retries now succeed.
    first = ok(await bot_talk.say("在吗", "b-1"))
    assert first["route"] == "bot"
    await bot_talk.wait_for("bot_uttered", has_text("机器人收到：在吗"))
    again = ok(await bot_talk.say("在吗", "b-1"))  # the client retried once more
    assert (again["route"], again["seq"]) == ("duplicate", first["seq"])
    ok(await human_talk.say("人呢", "h-1"))
    await alice.wait_for("message", has_text("人呢"))
    ok(await human_talk.agent_says(alice, "请稍等", "a-1"))
    await human_talk.wait_for("bot_uttered", has_text("请稍等"))

    # Bob's leaving was recorded once the database came back: grace, then requeue.
    await bobs_talk.wait_for("status", lambda s: s.get("state") == "queued")
    assert session_row(url, str(bobs_talk.session_id))[:2] == ("queued", None)

    await bot_talk.check(url)
    await human_talk.check(url)
    await bobs_talk.check(url)


# --- Rasa killed in the middle of a turn -------------------------------------------------


async def test_rasa_killed_mid_turn_hands_off_politely_and_answers_after_restart(
    procs: list[Proc], made: list[Client], tmp_path: Path
) -> None:
    rasa = started(procs, fake_rasa_process(tmp_path / "rasa", slow_seconds=3.0))
    db = f"sqlite:///{tmp_path / 'handoff.sqlite'}"
    add_agents(db)
    gw = started(procs, gateway_process(tmp_path / "gw", db, rasa.url))
    talk = Talk(made)
    await talk.open(gw.url)
    ok(await talk.say("你好"))
    await talk.wait_for("bot_uttered", has_text(GREETING_REPLY))

    ok(await talk.say("慢慢说"))  # Rasa is now working on this turn ...
    await asyncio.sleep(0.5)
    await asyncio.to_thread(rasa.kill)  # ... and dies before it answers
    await talk.wait_for("bot_uttered", has_text(Texts.BOT_UNAVAILABLE))
    await talk.wait_for("status", lambda s: s.get("state") == "queued")
    assert session_row(db, str(talk.session_id))[::2] == ("queued", "bot_unavailable")

    await asyncio.to_thread(rasa.start)
    alice = await agent_socket(gw.url, "alice", made)
    ok(await alice.call("claim", {"session_id": talk.session_id}))
    ok(await alice.call("close", {"session_id": talk.session_id,
                                  "disposition": "return_to_bot"}))
    ok(await talk.say("你好"))  # the restarted Rasa answers again
    await talk.wait_for("bot_uttered", has_text(GREETING_REPLY))
    newcomer = Talk(made)
    await newcomer.open(gw.url)
    ok(await newcomer.say("你好"))
    await newcomer.wait_for("bot_uttered", has_text(GREETING_REPLY))

    rows = await talk.check(db)
    assert [t for _, s, t in rows if s == "bot"].count(GREETING_REPLY) == 2
    await newcomer.check(db)


# --- an agent's network drops ------------------------------------------------------------


@pytest.mark.parametrize("drop", ["reset", "silent"])
async def test_agent_network_drop_keeps_session_through_grace_then_requeues(
    drop: str, fake_rasa: FakeRasa, gateway_factory: GatewayFactory, made: list[Client]
) -> None:
    """`reset`: the connection dies with an RST, seen at once. `silent`: packets just stop,
    seen only when engine.io's heartbeat times out (shortened here from 25 s + 20 s)."""
    server = gateway_factory(fake_rasa.url, grace_seconds="2")
    server.gateway.sio.eio.ping_interval = 1
    server.gateway.sio.eio.ping_timeout = 1
    proxy = TcpProxy(server.port)
    proxy.start()
    try:
        h = Helpers(server, made)
        alice = await agent_socket(proxy.url, "alice", made, token_url=server.url)
        talk = Talk(made)
        await talk.open(server.url)
        await queue_and_claim(talk, alice)
        ok(await talk.say("我要查询进度"))
        await alice.wait_for("message", has_text("我要查询进度"))

        if drop == "reset":
            proxy.cut()  # the agent's connection dies without a goodbye
        else:
            proxy.blackhole()  # nothing gets through any more, not even a close
        ack = ok(await talk.say("你还在吗"))
        assert ack["route"] == "agent"  # within the grace the session stays with alice
        assert server.gateway.service.session(str(talk.session_id)).agent_id == "alice"

        await talk.wait_for("bot_uttered", has_text(Texts.AGENT_LOST))
        await talk.wait_for("status", lambda s: s.get("state") == "queued"
                            and s.get("queue_position") == 1)
        bob = await h.agent("bob")
        claim = ok(await bob.call("claim", {"session_id": talk.session_id}))
        texts = [m["text"] for m in claim["transcript"]["messages"] if m["sender"] == "borrower"]
        assert texts == talk.sent == ["转人工", "我要查询进度", "你还在吗"]
        ok(await talk.agent_says(bob, "我来接手"))
        await talk.wait_for("bot_uttered", has_text("我来接手"))

        alice_again = await agent_socket(server.url, "alice", made)
        assert (await alice_again.wait_for("hello"))["held"] == []
        await talk.check(server.gateway.settings.db_url)
    finally:
        proxy.stop()


# --- Redis crashes between two gateway nodes ---------------------------------------------


async def test_redis_restart_loses_no_message_and_cross_node_delivery_recovers(
    fake_rasa: FakeRasa, procs: list[Proc], made: list[Client], tmp_path: Path
) -> None:
    with private_redis() as redis:
        db = f"sqlite:///{tmp_path / 'handoff.sqlite'}"
        add_agents(db)
        secret = secrets.token_urlsafe(40)
        node_a = started(procs, gateway_process(tmp_path / "a", db, fake_rasa.url,
                                                redis_url=redis.url, secret=secret))
        node_b = started(procs, gateway_process(tmp_path / "b", db, fake_rasa.url,
                                                redis_url=redis.url, secret=secret))
        alice = await agent_socket(node_b.url, "alice", made)
        talk = Talk(made)
        await talk.open(node_a.url)
        await queue_and_claim(talk, alice)  # claimed on B, borrower told on A via Redis
        ok(await talk.say("第一句"))
        await alice.wait_for("message", has_text("第一句"))

        await asyncio.to_thread(redis.kill)
        ok(await talk.say("第二句"))  # stored; only the other node's relay is at risk
        ok(await talk.agent_says(alice, "收到吗"))
        for node in (node_a, node_b):  # operators see which dependency is down
            assert await asyncio.to_thread(readyz, node.url) == (503, {
                "status": "unavailable", "database": "ok", "redis": "unavailable"})
        await asyncio.to_thread(redis.start)

        # Recovery needs no manual step: the nodes reconnect to Redis by themselves.
        recovered = False
        for attempt in range(20):
            text = f"探测{attempt}"
            ok(await talk.say(text))
            with contextlib.suppress(AssertionError):
                await alice.wait_for("message", has_text(text), timeout=1.0)
                recovered = True
                break
        assert recovered, "cross-node delivery did not come back after Redis restarted"
        for node in (node_a, node_b):
            assert (await asyncio.to_thread(readyz, node.url))[0] == 200
        ok(await talk.agent_says(alice, "恢复了"))
        await talk.wait_for("bot_uttered", has_text("恢复了"))

        # Whatever the outage kept from a client comes back on reconnect, once, in order.
        await talk.open(node_a.url)
        transcript = ok(await alice.call("transcript", {"session_id": talk.session_id}))
        texts = [m["text"] for m in transcript["transcript"]["messages"]
                 if m["sender"] == "borrower"]
        assert texts == talk.sent
        await talk.check(db)

