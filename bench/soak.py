"""Bounded soak of a scaled-out gateway: `make soak` (not part of `make test`).

Starts two gateway processes (`python -m handoff`) on loopback that share a throw-away
PostgreSQL database and a Redis socket.io channel, and a scripted stand-in Rasa
(tests/integration/fake_rasa.py: it echoes each message and answers "转人工" with the handoff
signal: the soak measures the gateway and its shared state, not the bot). Then N borrowers
talk at once, spread over both nodes; a share of them ask for a human and scripted agents
(also spread over both nodes) claim, chat and close; --waves rounds of that, one after
another. At the end it counts from the database:

  lost        acknowledged messages missing from the store, stored bot/agent/system messages
              a borrower never received, bot-mode borrower messages without exactly one reply
  duplicated  the same message stored twice, or one bot turn answered twice
              (a message delivered twice with the same seq is reported separately)
  bot_in_human  bot messages stored while a human (or the queue) held the session

It is bounded in count (--borrowers) and time (--timeout) and binds only 127.0.0.1.
Exit status 0 only when all three counts are 0 and every borrower finished.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio
from sqlalchemy import create_engine, func, select

from handoff.service import Texts
from handoff.store.schema import messages, pending_turns, transitions
from tests.integration.conftest import http_json
from tests.integration.fake_rasa import ECHO_PREFIX, FakeRasa
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

PASSWORD = "soak-pass-123"
WAIT = 60.0


@dataclass
class Stats:
    acked: list[tuple[str, int, str]] = field(default_factory=list)  # session, seq, who
    received: dict[str, list[tuple[int, str]]] = field(
        default_factory=lambda: defaultdict(list))
    bot_latency: list[float] = field(default_factory=list)
    handoff_wait: list[float] = field(default_factory=list)
    finished: int = 0
    failed: list[str] = field(default_factory=list)
    handoffs: int = 0
    agent_claims: int = 0
    claim_conflicts: int = 0
    reconnects: int = 0
    agent_refetches: int = 0
    killed_at: float | None = None


class Inbox:
    """Events of one socket.io client, with waiting for a matching one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.arrived = asyncio.Event()

    def put(self, name: str, data: Any) -> None:
        self.events.append((name, data))
        self.arrived.set()

    async def take(self, name: str, where: Any = lambda _: True, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            for i, (n, d) in enumerate(self.events):
                if n == name and where(d):
                    del self.events[i]
                    return d
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {name} within {timeout}s")
            self.arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)


class NodeGone(Exception):
    """The borrower's gateway node went away (the soak killed it)."""


class SoakBorrower:
    """A borrower client that, when its node dies, reconnects to another node with the same
    session and the last seq it saw, and repeats an unacknowledged message with the same
    client_msg_id (the gateway stores it at most once)."""

    def __init__(self, index: int, urls: list[str], stats: Stats) -> None:
        self.index = index
        self.urls = urls  # its own node first
        self.stats = stats
        self.sio = socketio.AsyncClient(reconnection=False)
        self.inbox = Inbox()
        self.session_id: str | None = None
        self.last_seq = 0
        self.sio.on("*", self._any)

    async def _any(self, event: str, data: Any = None) -> None:
        if event == "bot_uttered" and isinstance(data, dict):
            seq = (data.get("metadata") or {}).get("seq")
            if isinstance(seq, int) and self.session_id:
                # One stored message may render as several events (text parts, buttons);
                # the same event twice is a duplicate delivery.
                body = {k: v for k, v in data.items() if k != "metadata"}
                self.stats.received[self.session_id].append(
                    (seq, json.dumps(body, sort_keys=True, ensure_ascii=False)))
                self.last_seq = max(self.last_seq, seq)
        self.inbox.put(event, data)

    async def open(self) -> None:
        for attempt, url in enumerate(self.urls * 3):
            try:
                with contextlib.suppress(Exception):
                    await self.sio.disconnect()
                await self.sio.connect(url, transports=["websocket"], wait_timeout=10)
                request: dict[str, Any] = {"session_id": self.session_id}
                if self.session_id:
                    request["last_seq"] = self.last_seq
                    self.stats.reconnects += 1
                await self.sio.emit("session_request", request)
                self.session_id = await self.inbox.take("session_confirm", timeout=10)
                return
            except Exception:
                await asyncio.sleep(min(2.0, 0.2 * (attempt + 1)))
        raise NodeGone("no gateway node accepted the reconnect")

    async def say(self, text: str, client_msg_id: str) -> dict[str, Any]:
        for _ in range(5):
            try:
                if not self.sio.connected:
                    raise NodeGone()
                ack: dict[str, Any] = await self.sio.call(
                    "user_uttered", {"message": text, "session_id": self.session_id,
                                     "client_msg_id": client_msg_id}, timeout=15)
            except Exception:
                await self.open()
                continue
            assert ack.get("ok"), ack
            assert self.session_id is not None
            self.stats.acked.append((self.session_id, ack["seq"], "borrower"))
            return ack
        raise NodeGone(f"{text!r} never acknowledged")

    async def expect(self, where: Any, timeout: float = WAIT) -> Any:
        """The next bot_uttered matching `where`; survives a reconnect (replayed or live)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"borrower {self.index}: expected reply not seen")
            try:
                return await self.inbox.take("bot_uttered", where, timeout=min(left, 2.0))
            except TimeoutError:
                if not self.sio.connected:
                    await self.open()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()


async def borrower(index: int, urls: list[str], turns: int, human: bool, human_turns: int,
                   stats: Stats) -> None:
    me = SoakBorrower(index, urls, stats)
    try:
        await me.open()
        for turn in range(turns):
            text = f"借款问题{index}-{turn}"
            started = time.monotonic()
            await me.say(text, f"b{index}-{turn}")
            await me.expect(lambda d, t=text: d.get("text") == ECHO_PREFIX + t)
            stats.bot_latency.append(time.monotonic() - started)
        if human:
            stats.handoffs += 1
            started = time.monotonic()
            await me.say("转人工", f"b{index}-h")
            await me.expect(lambda d: (d.get("metadata") or {}).get("sender") == "system"
                            and str(d.get("text", "")).startswith("人工客服"), timeout=WAIT * 2)
            stats.handoff_wait.append(time.monotonic() - started)
            for turn in range(human_turns):
                ack = await me.say(f"人工问题{index}-{turn}", f"b{index}-u{turn}")
                assert ack.get("route") in ("agent", "duplicate"), ack
                await me.expect(lambda d, t=turn: d.get("text") == f"客服回复{index}-{t}")
            await me.expect(lambda d: d.get("text") == Texts.CLOSED)
        await asyncio.sleep(1.0)  # let trailing events (status, csat prompt) arrive
        stats.finished += 1
    except Exception as exc:
        stats.failed.append(f"borrower {index}: {type(exc).__name__}: {exc}")
    finally:
        await me.close()


async def agent(username: str, url: str, human_turns: int, stats: Stats,
                stop: asyncio.Event) -> None:
    token = (await asyncio.to_thread(
        http_json, f"{url}/api/login", {"username": username, "password": PASSWORD}))["token"]
    sio = socketio.AsyncClient(reconnection=False)
    inbox = Inbox()
    busy: set[str] = set()
    tasks: set[asyncio.Task[None]] = set()

    @sio.on("*", namespace="/agent")
    async def _any(event: str, data: Any = None) -> None:
        inbox.put(event, data)
        if event == "queue" and isinstance(data, dict):
            for entry in data.get("entries", []):
                s = entry["session_id"]
                if s not in busy and len(busy) < 3:
                    busy.add(s)
                    task = asyncio.ensure_future(serve(s))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)

    def wanted(session_id: str, turn: int) -> Any:
        return lambda m: (m.get("session_id", session_id) == session_id
                          and m.get("sender") == "borrower"
                          and str(m.get("text", "")).startswith("人工问题")
                          and str(m.get("text", "")).endswith(f"-{turn}"))

    async def borrower_text(session_id: str, turn: int) -> str:
        """The borrower's next message: live, or (if the node that stored it died before
        relaying it) from the stored transcript, as an agent refreshing the console would."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                msg = await inbox.take("message", wanted(session_id, turn), timeout=8)
                return str(msg["text"])
            except TimeoutError:
                ack = await sio.call("transcript", {"session_id": session_id},
                                     namespace="/agent", timeout=WAIT)
                found = [m for m in ack.get("transcript", {}).get("messages", [])
                         if wanted(session_id, turn)(m)]
                if found:
                    stats.agent_refetches += 1
                    return str(found[0]["text"])
        raise TimeoutError(f"borrower message {turn} of {session_id[:8]} never seen")

    async def serve(session_id: str) -> None:
        try:
            ack = await sio.call("claim", {"session_id": session_id}, namespace="/agent",
                                 timeout=WAIT)
            if not ack.get("ok"):
                stats.claim_conflicts += 1
                return
            stats.agent_claims += 1
            for turn in range(human_turns):
                text = await borrower_text(session_id, turn)
                index = text[len("人工问题"):].split("-")[0]
                ack = await sio.call("message", {
                    "session_id": session_id, "text": f"客服回复{index}-{turn}",
                    "client_msg_id": f"{username}-{session_id[:12]}-{turn}"},
                    namespace="/agent", timeout=WAIT)
                assert ack.get("ok"), ack
                stats.acked.append((session_id, ack["seq"], "agent"))
            ack = await sio.call("close", {"session_id": session_id, "disposition": "resolved"},
                                 namespace="/agent", timeout=WAIT)
            assert ack.get("ok"), ack
        except Exception as exc:
            stats.failed.append(f"agent {username} on {session_id[:8]}: "
                                f"{type(exc).__name__}: {exc}")
        finally:
            busy.discard(session_id)

    await sio.connect(url, transports=["websocket"], namespaces=["/agent"],
                      auth={"token": token}, wait_timeout=WAIT)
    try:
        while not stop.is_set():
            await asyncio.sleep(0.5)
            with contextlib.suppress(Exception):  # re-read the queue now and then
                if len(busy) < 3:
                    await sio.emit("queue", {}, namespace="/agent")
        if tasks:
            await asyncio.wait(set(tasks), timeout=WAIT)
    finally:
        with contextlib.suppress(Exception):
            await sio.disconnect()


def count_from_db(db_url: str, stats: Stats) -> dict[str, Any]:
    engine = create_engine(db_url, future=True)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(
                messages.c.session_id, messages.c.seq, messages.c.sender, messages.c.text,
                messages.c.client_msg_id, messages.c.created_at)).all()
            pending_left = conn.execute(select(func.count()).select_from(pending_turns)
                                        ).scalar_one()
            moves = conn.execute(select(
                transitions.c.session_id, transitions.c.to_state, transitions.c.event,
                transitions.c.created_at
            ).order_by(transitions.c.id)).all()
    finally:
        engine.dispose()
    stored = {(r.session_id, r.seq): r for r in rows}
    sessions_seen = set(stats.received) | {s for s, _, _ in stats.acked}

    lost_acked = [a for a in stats.acked if (a[0], a[1]) not in stored]
    lost_delivery: list[tuple[str, int]] = []
    dup_delivery = 0
    for session_id in sessions_seen:
        expected = sorted(r.seq for r in rows
                          if r.session_id == session_id and r.sender != "borrower")
        got = stats.received.get(session_id, [])
        dup_delivery += len(got) - len(set(got))
        seen = {seq for seq, _ in got}
        lost_delivery.extend((session_id, s) for s in expected if s not in seen)
    # Every bot-mode borrower message gets exactly one echo reply.
    echoes = Counter((r.session_id, r.text[len(ECHO_PREFIX):]) for r in rows
                     if r.sender == "bot" and r.text.startswith(ECHO_PREFIX))
    asked = [(r.session_id, r.text) for r in rows
             if r.sender == "borrower" and r.text.startswith("借款问题")]
    unanswered = [a for a in asked if echoes[a] == 0]
    dup_echo = sum(n - 1 for n in echoes.values() if n > 1)
    dup_stored = sum(n - 1 for n in Counter(
        (r.session_id, r.sender, r.text) for r in rows
        if r.sender in ("borrower", "agent")).values() if n > 1)
    # Bot messages stored while a human or the queue held the session.
    held: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    opened: dict[str, Any] = {}
    for m in moves:
        if m.to_state in ("queued", "assigned"):
            opened.setdefault(m.session_id, m.created_at)
        elif m.session_id in opened:
            held[m.session_id].append((opened.pop(m.session_id), m.created_at))
    for session_id, since in opened.items():
        held[session_id].append((since, None))
    bot_in_human = [
        (r.session_id, r.seq) for r in rows if r.sender == "bot" and any(
            start < r.created_at and (end is None or r.created_at <= end)
            for start, end in held.get(r.session_id, ()))
    ]
    claims = Counter(m.session_id for m in moves if m.event == "claimed")
    return {
        "double_claims": sum(1 for n in claims.values() if n > 1),
        "pending_turns_left": int(pending_left),
        "stored_messages": len(rows),
        "acked_messages": len(stats.acked),
        "lost": len(lost_acked) + len(lost_delivery) + len(unanswered),
        "lost_detail": {"acked_not_stored": len(lost_acked),
                        "stored_not_delivered": len(lost_delivery),
                        "bot_turn_unanswered": len(unanswered)},
        "duplicated": dup_stored + dup_echo,
        "duplicated_detail": {"stored_twice": dup_stored, "bot_reply_twice": dup_echo},
        # Transport level, not the store: the same stored message (same seq) reaching a client
        # twice, e.g. live and again in the replay after a reconnect; clients drop a seq they
        # already have (our chat page does).
        "delivered_twice_same_seq": dup_delivery,
        "bot_in_human": len(bot_in_human),
    }


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(args: argparse.Namespace, nodes: list[Node], stats: Stats) -> None:
    rng = random.Random(args.seed)
    human = set(rng.sample(range(args.borrowers), round(args.borrowers * args.handoff_share)))
    stop = asyncio.Event()
    # With a node to kill, agents sit on the other nodes (a console losing its node is
    # tests/integration/test_scale_out.py's job); borrowers are spread over all nodes.
    agent_nodes = nodes[1:] if args.kill_node_after and len(nodes) > 1 else nodes
    agents = [asyncio.ensure_future(agent(f"soak{i:02d}", agent_nodes[i % len(agent_nodes)].url,
                                          args.human_turns, stats, stop))
              for i in range(args.agents)]
    killer = None
    if args.kill_node_after:
        async def kill_later() -> None:
            await asyncio.sleep(args.kill_node_after)
            await asyncio.to_thread(nodes[0].kill)
            stats.killed_at = round(time.monotonic() - started, 1)
        started = time.monotonic()
        killer = asyncio.ensure_future(kill_later())
    await asyncio.sleep(1.0)
    urls = [n.url for n in nodes]
    for wave in range(args.waves):
        borrowers = []
        for i in range(args.borrowers):
            index = wave * args.borrowers + i
            mine = index % len(nodes)
            borrowers.append(asyncio.ensure_future(borrower(
                index, urls[mine:] + urls[:mine], args.turns, i in human,
                args.human_turns, stats)))
            if i % 20 == 19:
                await asyncio.sleep(0.2)  # ramp up: 200 websocket handshakes at once is a storm
        await asyncio.gather(*borrowers)
    stop.set()
    if killer is not None:
        killer.cancel()
    await asyncio.gather(*agents, return_exceptions=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--borrowers", type=int, default=200)
    parser.add_argument("--handoff-share", type=float, default=0.2)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--turns", type=int, default=4, help="bot turns per borrower")
    parser.add_argument("--human-turns", type=int, default=2)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--waves", type=int, default=3,
                        help="rounds of --borrowers concurrent borrowers, one after another")
    parser.add_argument("--timeout", type=float, default=420.0, help="whole run, seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kill-node-after", type=float, default=0.0,
                        help="SIGKILL the first gateway node this many seconds in (0: never);"
                             " its borrowers reconnect to another node")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if not 1 <= args.borrowers <= 1000 or not 1 <= args.nodes <= 4 or not 1 <= args.waves <= 20:
        parser.error("bounded: 1-1000 borrowers, 1-4 nodes, 1-20 waves")
    for reason in (postgres_missing(), redis_missing()):
        if reason:
            print(f"soak needs PostgreSQL and Redis: {reason}", file=sys.stderr)
            return 2

    fake = FakeRasa(slow_seconds=1.0)
    fake.start()
    rasa_url = fake.url
    stats = Stats()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, \
            scratch_database("loanbot_soak") as db_url:
        add_agents(db_url, [(f"soak{i:02d}", f"坐席{i:02d}", ("general",))
                            for i in range(args.agents)], PASSWORD, max_sessions=5)
        env = {
            "HANDOFF_DB_URL": db_url, "HANDOFF_REDIS_URL": REDIS_URL,
            "HANDOFF_REDIS_CHANNEL": f"loanbot-soak-{secrets.token_hex(6)}",
            "HANDOFF_SECRET": secrets.token_urlsafe(40), "HANDOFF_RASA_URL": rasa_url,
            "HANDOFF_RASA_TIMEOUT": "30", "HANDOFF_SERVICE_HOURS": "00:00-23:59",
            "HANDOFF_BORROWER_RATE": "100000/60", "HANDOFF_AGENT_RATE": "100000/60",
            "HANDOFF_POLICY_FILE": str(ROOT / "config" / "handoff.yml"),
            "HANDOFF_GRACE_SECONDS": "60", "HANDOFF_NODE_TTL": "6",
        }
        nodes = [start_node(f"soak-node-{i}", Path(tmp), env) for i in range(args.nodes)]
        try:
            try:
                asyncio.run(asyncio.wait_for(drive(args, nodes, stats), args.timeout))
            except asyncio.TimeoutError:
                stats.failed.append(f"time limit {args.timeout}s reached")
            elapsed = time.monotonic() - started
            time.sleep(1.0)
            figures = count_from_db(db_url, stats)
        finally:
            for node in nodes:
                node.stop()
            fake.stop()
            drop_redis_keys(f"{env['HANDOFF_REDIS_CHANNEL']}:*")
            crashed = [n.node_id for i, n in enumerate(nodes)
                       if n.process.returncode not in (0, -15, None)
                       and not (args.kill_node_after and i == 0)]
    figures.update({
        "borrowers": args.borrowers, "waves": args.waves, "finished": stats.finished,
        "failed": len(stats.failed),
        "handoffs": stats.handoffs, "claims": stats.agent_claims,
        "claim_conflicts": stats.claim_conflicts, "nodes": args.nodes, "agents": args.agents,
        "node_killed_at_s": stats.killed_at, "borrower_reconnects": stats.reconnects,
        "agent_transcript_refetches": stats.agent_refetches,
        "seconds": round(elapsed, 1),
        "bot_turn_p50_ms": round(pct(stats.bot_latency, 0.5) * 1000),
        "bot_turn_p95_ms": round(pct(stats.bot_latency, 0.95) * 1000),
        "bot_turns_per_s": round(len(stats.bot_latency) / elapsed, 1) if elapsed else 0,
        "handoff_to_agent_p50_s": round(statistics.median(stats.handoff_wait), 2)
        if stats.handoff_wait else None,
        "rasa": "scripted stand-in (tests/integration/fake_rasa.py)",
        "crashed_nodes": crashed,
    })
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    for line in stats.failed[:10]:
        print("FAILED:", line, file=sys.stderr)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n")
    clean = (figures["lost"] == 0 and figures["duplicated"] == 0
             and figures["bot_in_human"] == 0 and figures["double_claims"] == 0
             and figures["pending_turns_left"] == 0
             and stats.finished == args.borrowers * args.waves and not crashed)
    return 0 if clean else 1


if __name__ == "__main__":
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    sys.exit(main())
