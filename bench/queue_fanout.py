"""What one queue change costs the gateway at a lender's peak: `python -m bench.queue_fanout`.

Every change of the queue (a hand-off joins it, an agent closes a session and claims the
next) sends each online agent a fresh snapshot of the sessions it may claim and tells each
waiting borrower their place again. Its cost grows with the queue (Q) and the agents (A),
so the load benchmark (`python -m bench`, a handful waiting) does not show it. This runs the
gateway's service (handoff.service, the SQLite store, no sockets) with A agents online and
busy and Q borrowers waiting, then times R rounds of: one more hand-off, one agent closing
a session, the same agent claiming the head of the queue. Each step's CPU time on the
gateway's event loop, and the JSON its effects put on the wire, per (Q, A).

The messages vary as real ones do (the benchmark's own utterance generator), the sessions
need different skills, and agents differ in skills, so nothing is the same twice.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

from bench.stats import percentile
from bench.utterances import conversations
from handoff.model import Effect, HandoffSignal, ToAgents, ToBorrower
from handoff.policy import Policy
from handoff.service import HandoffService
from handoff.settings import Settings
from handoff.store import Store

ROOT = Path(__file__).resolve().parents[1]
POLICY_FILE = ROOT / "config" / "handoff.yml"
PASSWORD = "bench-" + secrets.token_urlsafe(12)  # agents made and dropped with the run
# What the bot's hand-offs carry, spread over the skills config/handoff.yml routes to.
SIGNALS = (
    HandoffSignal("sensitive_intent", intent="complaint"),
    HandoffSignal("unresolved_turns", intent="nlu_fallback", unresolved_turns=3),
    HandoffSignal("sensitive_intent", intent="request_human"),
    HandoffSignal("verification_failed"),
    HandoffSignal("sensitive_intent", intent="report_fraud"),
)
AGENT_SKILLS = (("general", "complaints"), ("general", "complaints", "fraud"),
                ("general",), ("complaints",))


class Clock:
    """The service's clock, moved by the run (waiting times and handle times vary)."""

    def __init__(self) -> None:
        # 10:00 in Shanghai: inside the default service hours
        self.now = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Result:
    waiting: int
    agents: int
    rounds: int
    handoff_cpu_ms_p50: float
    handoff_cpu_ms_p95: float
    close_cpu_ms_p50: float
    claim_cpu_ms_p50: float
    handoff_agent_bytes: int
    handoff_borrower_bytes: int
    handoff_json_ms: float
    handoff_effects: int  # the most effects one hand-off had


def wire_bytes(effects: tuple[Effect, ...]) -> tuple[int, int, float]:
    """Bytes of JSON the effects put on the wire to agents and to borrowers, and the CPU
    time of encoding them (as the socket.io server does: one encoding per emit)."""
    start = time.process_time()
    agents = borrowers = 0
    for effect in effects:
        if isinstance(effect, ToAgents):
            agents += len(json.dumps(effect.payload, separators=(",", ":")).encode()) * len(
                effect.agent_ids)
        elif isinstance(effect, ToBorrower):
            borrowers += len(json.dumps(effect.payload, separators=(",", ":")).encode())
    return agents, borrowers, (time.process_time() - start) * 1000


@contextmanager
def service_with_queue(waiting: int, agents: int, seed: int) -> Iterator[
        tuple[HandoffService, Clock, Callable[[], str]]]:
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp:
        settings = Settings.from_env({
            "HANDOFF_VAR_DIR": str(Path(tmp) / "var"),
            "HANDOFF_DB_URL": f"sqlite:///{Path(tmp) / 'var' / 'handoff.sqlite'}",
            "HANDOFF_BORROWER_RATE": "1000000/60",
            "HANDOFF_AGENT_RATE": "1000000/60",
        })
        store = Store(settings.db_url)
        clock = Clock()
        service = HandoffService(store, Policy.load(POLICY_FILE), settings, clock)
        rng = random.Random(seed)
        texts = (turn for c in conversations(seed) for turn in c.turns)
        count = iter(range(10**9))

        def new_borrower() -> str:
            """A new borrower who has written one message (each a different one)."""
            sid = service.open_session(None, f"borrower-{next(count)}").session.session_id
            service.record_borrower_message(sid, next(texts))
            return sid

        def handed_off() -> str:
            """A new borrower whose message the bot hands to a human."""
            sid = new_borrower()
            service.request_handoff(sid, rng.choice(SIGNALS), "bot")
            clock.advance(rng.uniform(0.5, 5))
            return sid

        try:
            for i in range(agents):
                name = f"agent{i:03d}"
                service.create_agent(name, f"坐席{i}", PASSWORD,
                                     list(AGENT_SKILLS[i % len(AGENT_SKILLS)]), max_sessions=1)
                service.agent_connected(name)
                claimable = [e.session_id for e in service.queue_snapshot(name).entries]
                while not claimable:
                    handed_off()
                    claimable = [e.session_id for e in service.queue_snapshot(name).entries]
                service.claim(name, claimable[0])
            while service.queue_snapshot("agent001").total < waiting:
                handed_off()
            yield service, clock, new_borrower
        finally:
            store.dispose()


def cpu_ms(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.process_time()
    out = call()
    return (time.process_time() - start) * 1000, out


def measure(waiting: int, agents: int, rounds: int, seed: int) -> Result:
    with service_with_queue(waiting, agents, seed) as (service, clock, new_borrower):
        handoffs, closes, claims = [], [], []
        wire: list[tuple[int, int, float]] = []
        effects: list[int] = []
        agent = "agent001"  # general, complaints and fraud: it may claim any of SIGNALS
        for round_ in range(rounds):
            sid = new_borrower()
            # every kind in turn: some join at the back of their skill, some ahead of others
            signal = SIGNALS[round_ % len(SIGNALS)]
            ms, result = cpu_ms(partial(service.request_handoff, sid, signal, "bot"))
            handoffs.append(ms)
            wire.append(wire_bytes(result.effects))
            effects.append(len(result.effects))
            clock.advance(40)
            held = service.queue_snapshot(agent).held[0]
            ms, _ = cpu_ms(partial(service.close, agent, held, "resolved"))
            closes.append(ms)
            head = service.queue_snapshot(agent).entries[0].session_id
            ms, _ = cpu_ms(partial(service.claim, agent, head))
            claims.append(ms)
        return Result(
            waiting, agents, rounds,
            round(statistics.median(handoffs), 2),
            round(percentile(handoffs, 95) or 0.0, 2),
            round(statistics.median(closes), 2), round(statistics.median(claims), 2),
            int(statistics.median(w[0] for w in wire)),
            int(statistics.median(w[1] for w in wire)),
            round(statistics.median(w[2] for w in wire), 2), max(effects),
        )


def table(results: list[Result]) -> str:
    lines = [
        "| waiting | agents | hand-off CPU ms p50 / p95 | close ms p50 | claim ms p50 "
        "| a hand-off's JSON to agents / borrowers | its encoding ms | most effects |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.waiting} | {r.agents} | {r.handoff_cpu_ms_p50} / {r.handoff_cpu_ms_p95} "
            f"| {r.close_cpu_ms_p50} | {r.claim_cpu_ms_p50} "
            f"| {r.handoff_agent_bytes:,} / {r.handoff_borrower_bytes:,} B "
            f"| {r.handoff_json_ms} | {r.handoff_effects} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.queue_fanout", description=__doc__)
    parser.add_argument("--waiting", default="20,200,1000",
                        help="borrowers waiting, comma-separated")
    parser.add_argument("--agents", default="5,20", help="agents online, comma-separated")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    results = []
    for waiting in (int(x) for x in args.waiting.split(",")):
        for agents in (int(x) for x in args.agents.split(",")):
            results.append(measure(waiting, agents, args.rounds, args.seed))
            print(json.dumps(asdict(results[-1])), file=sys.stderr)
    print(f"Python {sys.version.split()[0]}; `python -m bench.queue_fanout "
          f"--waiting {args.waiting} --agents {args.agents} --rounds {args.rounds}`\n")
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
